/* Tests of compiled-graph packed tensors in the artifact (frontends/artifact.h): a u8 1-D
 * constant holding packed PiQ/Q bytes is stored as a PIQ3/PIQ2 tensor and read back as the same
 * u8 constant (in_graph_packed), beside old-style replaced float weights; tampering and writer
 * argument checks. The frontends layer is op-agnostic, so plain ops consume the constants. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/artifact.h"
#include "ir/alloc.h"

static pq_error err;
static char tmpdir[64];
static char path[256];

static void setup(void) {
    strcpy(tmpdir, "/tmp/pq_artp_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/model.gguf", tmpdir);
    pq_error_clear(&err);
}

static void teardown(void) {
    unlink(path);
    rmdir(tmpdir);
}

static uint32_t add_val(pq_graph *g, const char *name, enum pq_dtype dt, const pq_shape *s) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, name, dt, s, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

/* A u8 constant of n bytes (pattern seeded by seed) or an f32 constant of the given dims. */
static uint32_t add_u8(pq_graph *g, const char *name, size_t n, unsigned seed) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_U8, 1, (int64_t[]){(int64_t)n}, &err);
    cr_assert_not_null(t, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)t->data)[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 8));
    uint32_t id = add_val(g, name, PQ_DTYPE_U8, NULL);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK, "%s", err.msg);
    return id;
}

static uint32_t add_f32(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = (float)i * 0.01f - 0.3f;
    uint32_t id = add_val(g, name, PQ_DTYPE_F32, NULL);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK, "%s", err.msg);
    return id;
}

static void node(pq_graph *g, enum pq_op op, const uint32_t *in, uint32_t nin, uint32_t out) {
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(g, op, NULL, in, nin, &out, 1, &nid, &err), PQ_OK, "%s",
                 err.msg);
}

/* Sizes of the two in-graph packed weights: a large one (sidecar) and a small one. */
#define BIG_ROWS 24
#define BIG_COLS 100
#define BIG_G 32
#define SMALL_ROWS 3
#define SMALL_COLS 20
#define SMALL_G 16

static const int64_t big_onnx[2] = {BIG_COLS, BIG_ROWS}; /* a MatMul B [K, N] */
static const int64_t small_onnx[4] = {SMALL_ROWS, 5, 2, 2};

/* x -> Identity(big.packed), Identity(small.packed), MatMul(x, W) with a float W the old way. */
static pq_graph *model(enum pq_qformat fmt) {
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    g->name = pq_graph_strdup(g, "compiled");
    pq_graph_add_opset(g, "", 17, &err);
    pq_shape sx = pq_shape_from_dims(2, (int64_t[]){2, 20});
    uint32_t x = add_val(g, "x", PQ_DTYPE_F32, &sx);
    pq_graph_add_input(g, x, &err);
    uint32_t big =
        add_u8(g, "fc.weight.packed", pq_packed_bytes(fmt, BIG_ROWS, BIG_COLS, BIG_G), 1);
    uint32_t small =
        add_u8(g, "conv.weight.packed", pq_packed_bytes(fmt, SMALL_ROWS, SMALL_COLS, SMALL_G), 2);
    uint32_t w = add_f32(g, "W", 2, (int64_t[]){20, 3});
    uint32_t ids[3] = {big, small, w};
    const char *outs[3] = {"o_big", "o_small", "y"};
    for (int i = 0; i < 3; i++) {
        uint32_t o = add_val(g, outs[i], PQ_DTYPE_UNDEFINED, NULL);
        if (i < 2)
            node(g, PQ_OP_IDENTITY, &ids[i], 1, o);
        else
            node(g, PQ_OP_MATMUL, (uint32_t[]){x, w}, 2, o);
        pq_graph_add_output(g, o, &err);
    }
    return g;
}

static uint8_t w_packed[64];

/* The three packed entries: two in the graph (data NULL), W replaced (old path). */
static void entries(enum pq_qformat fmt, pq_artifact_tensor out[3]) {
    static const int64_t w_onnx[2] = {20, 3};
    for (size_t i = 0; i < sizeof w_packed; i++)
        w_packed[i] = (uint8_t)(i * 97 + 5);
    out[0] = (pq_artifact_tensor){"fc.weight.packed", fmt, BIG_ROWS, BIG_COLS, BIG_G, NULL, 0,
                                  big_onnx,           2};
    out[1] = (pq_artifact_tensor){
        "conv.weight.packed", fmt, SMALL_ROWS, SMALL_COLS, SMALL_G, NULL, 0, small_onnx, 4};
    out[2] = (pq_artifact_tensor){"W",    fmt, 3, 20, 8, w_packed, pq_packed_bytes(fmt, 3, 20, 8),
                                  w_onnx, 2};
}

static const pq_tensor *constant(const pq_graph *g, const char *name) {
    uint32_t v = pq_graph_find_value(g, name);
    cr_assert_neq(v, PQ_NONE, "%s", name);
    cr_assert_not_null(g->values[v].constant, "%s", name);
    return g->values[v].constant;
}

static const pq_artifact_packed *find_packed(const pq_artifact *a, const char *name) {
    for (uint32_t i = 0; i < a->n_packed; i++)
        if (!strcmp(a->packed[i].name, name)) return &a->packed[i];
    cr_assert_fail("no packed entry '%s'", name);
    return NULL;
}

Test(artifact_packed, roundtrip_every_format, .init = setup, .fini = teardown) {
    enum pq_qformat fmts[] = {PQ_QFORMAT_PIQ3, PQ_QFORMAT_PIQ2, PQ_QFORMAT_Q3, PQ_QFORMAT_Q2};
    for (int f = 0; f < 4; f++) {
        pq_graph *g = model(fmts[f]);
        pq_artifact_tensor ts[3];
        entries(fmts[f], ts);
        cr_assert_eq(pq_artifact_write(g, "passes: [lower-quant]", ts, 3, NULL, path, &err), PQ_OK,
                     "%s", err.msg);
        pq_artifact *a = NULL;
        cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(a->n_packed, 3);
        bool three = fmts[f] == PQ_QFORMAT_PIQ3 || fmts[f] == PQ_QFORMAT_Q3;
        for (int i = 0; i < 2; i++) {
            const pq_artifact_packed *p = find_packed(a, ts[i].name);
            cr_assert(p->in_graph_packed, "%s", ts[i].name);
            cr_assert_eq(p->fmt, fmts[f]);
            cr_assert(p->rows == ts[i].rows && p->cols == ts[i].cols && p->group == ts[i].group);
            cr_assert_eq(p->onnx_rank, ts[i].onnx_rank);
            for (int d = 0; d < p->onnx_rank; d++)
                cr_assert_eq(p->onnx_dims[d], ts[i].onnx_dims[d]);
            const pq_tensor *c0 = constant(g, ts[i].name), *c1 = constant(a->graph, ts[i].name);
            cr_assert(c1->dtype == PQ_DTYPE_U8 && c1->rank == 1 && c1->dims[0] == c0->dims[0]);
            cr_assert_eq(p->size, (size_t)c0->dims[0]);
            cr_assert(memcmp(c0->data, c1->data, p->size) == 0, "%s: bytes identical", ts[i].name);
            cr_assert(memcmp(p->data, c0->data, p->size) == 0);
            cr_assert_neq((const void *)p->data, c1->data, "the graph holds its own copy");
            /* file layout: a PIQ3/PIQ2 tensor [cols, rows] with piqc.k / piqc.group */
            const pq_gguf_tensor *t = pq_gguf_find_tensor(a->gguf, ts[i].name);
            cr_assert_not_null(t);
            cr_assert_eq(t->type, three ? PQ_GGUF_T_PIQ3 : PQ_GGUF_T_PIQ2);
            cr_assert_eq(t->type, three ? 40u : 41u);
            cr_assert(t->n_dims == 2 && t->dims[0] == ts[i].cols && t->dims[1] == ts[i].rows);
            char key[96];
            uint32_t u;
            snprintf(key, sizeof key, "piqc.k.%s", ts[i].name);
            cr_assert_eq(pq_gguf_get_u32(a->gguf, key, &u, &err), PQ_OK, "%s", err.msg);
            cr_assert_eq(u, (uint32_t)pq_qformat_k(fmts[f]));
            snprintf(key, sizeof key, "piqc.group.%s", ts[i].name);
            cr_assert_eq(pq_gguf_get_u32(a->gguf, key, &u, &err), PQ_OK, "%s", err.msg);
            cr_assert_eq(u, (uint32_t)ts[i].group);
            snprintf(key, sizeof key, "piqc.dtype.%s", ts[i].name);
            cr_assert_null(pq_gguf_find(a->gguf, key));
        }
        /* the old path in the same file: W is replaced and left for the caller to dequantize */
        const pq_artifact_packed *pw = find_packed(a, "W");
        cr_assert(!pw->in_graph_packed);
        cr_assert(memcmp(pw->data, w_packed, pw->size) == 0);
        const pq_tensor *wc = constant(a->graph, "W");
        cr_assert(wc->dtype == PQ_DTYPE_F32 && wc->rank == 2);
        /* the graph outlives the artifact */
        pq_graph *kept = a->graph;
        a->graph = NULL;
        pq_artifact_destroy(a);
        const pq_tensor *c0 = constant(g, "fc.weight.packed");
        const pq_tensor *c1 = constant(kept, "fc.weight.packed");
        cr_assert(memcmp(c0->data, c1->data, (size_t)c0->dims[0]) == 0);
        pq_graph_destroy(kept);
        pq_graph_destroy(g);
    }
}

Test(artifact_packed, entry_data_may_repeat_the_constant, .init = setup, .fini = teardown) {
    pq_graph *g = model(PQ_QFORMAT_PIQ3);
    pq_artifact_tensor ts[3];
    entries(PQ_QFORMAT_PIQ3, ts);
    const pq_tensor *c = constant(g, "fc.weight.packed");
    uint8_t *copy = malloc(c->nbytes);
    memcpy(copy, c->data, c->nbytes);
    ts[0].data = copy;
    ts[0].size = c->nbytes;
    cr_assert_eq(pq_artifact_write(g, "", ts, 3, NULL, path, &err), PQ_OK, "%s", err.msg);
    copy[5] ^= 1;
    cr_assert_eq(pq_artifact_write(g, "", ts, 3, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'fc.weight.packed'") && strstr(err.msg, "differ"), "%s", err.msg);
    free(copy);
    pq_graph_destroy(g);
}

Test(artifact_packed, flipped_byte_is_caught, .init = setup, .fini = teardown) {
    pq_graph *g = model(PQ_QFORMAT_PIQ3);
    pq_artifact_tensor ts[3];
    entries(PQ_QFORMAT_PIQ3, ts);
    cr_assert_eq(pq_artifact_write(g, "p", ts, 3, NULL, path, &err), PQ_OK, "%s", err.msg);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n);
    cr_assert_eq(fread(b, 1, n, f), n);
    fclose(f);
    const pq_tensor *c = constant(g, "fc.weight.packed");
    unsigned char *at = NULL;
    for (size_t i = 0; i + c->nbytes <= n && !at; i++)
        if (memcmp(b + i, c->data, c->nbytes) == 0) at = b + i;
    cr_assert_not_null(at, "the packed bytes are stored as they are");
    at[c->nbytes / 2] ^= 0x10;
    f = fopen(path, "wb");
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    pq_artifact *a = NULL;
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_INVALID);
    cr_assert_null(a);
    cr_assert(strstr(err.msg, "tensor 'fc.weight.packed': SHA-256 mismatch"), "%s", err.msg);
    free(b);
    pq_graph_destroy(g);
}

Test(artifact_packed, writer_rejects_inconsistent_u8, .init = setup, .fini = teardown) {
    pq_graph *g = model(PQ_QFORMAT_PIQ3);
    pq_artifact_tensor ts[3];
    entries(PQ_QFORMAT_PIQ3, ts);
    pq_artifact_tensor bad = ts[0];
    bad.cols = BIG_COLS + 8; /* needs more bytes than the constant has */
    static const int64_t wide[2] = {BIG_COLS + 8, BIG_ROWS};
    bad.onnx_dims = wide;
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'fc.weight.packed'") && strstr(err.msg, "u8 constant"), "%s",
              err.msg);
    bad = ts[0];
    static const int64_t wrong[2] = {BIG_COLS, BIG_ROWS + 1};
    bad.onnx_dims = wrong;
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "rows x cols"), "%s", err.msg);
    bad = ts[0];
    bad.fmt = PQ_QFORMAT_PIQ2; /* fewer bytes than the constant */
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "no file after failed writes");
    pq_graph_destroy(g);
}
