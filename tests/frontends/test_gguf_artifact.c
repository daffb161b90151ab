/* Tests of the piqc artifact (frontends/artifact.h): graph + constants (every storage case:
 * inline, sidecar, u8/bool via piqc.dtype, long and reserved names, subgraph and attribute
 * tensors) + packed weights + provenance round trip; tamper detection; writer argument checks. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/artifact.h"
#include "ir/alloc.h"
#include "ir/text.h"

static pq_error err;
static char tmpdir[64];
static char path[256];

static void setup(void) {
    strcpy(tmpdir, "/tmp/pq_art_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/model.gguf", tmpdir);
    pq_error_clear(&err);
}

static void teardown(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static uint32_t add_val(pq_graph *g, const char *name, enum pq_dtype dt, const pq_shape *s) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, name, dt, s, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

/* Constant of n elements with values i * scale + shift. */
static uint32_t add_const(pq_graph *g, const char *name, enum pq_dtype dt, int rank,
                          const int64_t *dims, double scale, double shift) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(dt, t->data, (size_t)i, (double)i * scale + shift);
    uint32_t id = add_val(g, name, dt, NULL);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK, "%s", err.msg);
    return id;
}

static uint32_t node(pq_graph *g, enum pq_op op, const uint32_t *in, uint32_t nin, uint32_t out) {
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(g, op, NULL, in, nin, &out, 1, &nid, &err), PQ_OK, "%s",
                 err.msg);
    return nid;
}

static const char *LONG_NAME =
    "model.encoder.layers.11.attention.self.query.weight.with.a.very.long.suffix_quantized";

static pq_graph *branch(pq_graph *parent, double shift) {
    pq_graph *s = pq_graph_create(parent, &err);
    cr_assert_not_null(s);
    uint32_t c = add_const(s, "sub_w", PQ_DTYPE_F32, 1, (int64_t[]){18}, 0.25, shift);
    uint32_t o = add_val(s, "o", PQ_DTYPE_UNDEFINED, NULL);
    node(s, PQ_OP_NEG, &c, 1, o);
    pq_graph_add_output(s, o, &err);
    return s;
}

static pq_graph *model(void) {
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    g->name = pq_graph_strdup(g, "art");
    pq_graph_add_opset(g, "", 17, &err);
    pq_shape sx = pq_shape_from_dims(2, (int64_t[]){2, 20});
    uint32_t x = add_val(g, "x", PQ_DTYPE_F32, &sx);
    pq_graph_add_input(g, x, &err);
    pq_shape s0 = pq_shape_from_dims(0, NULL);
    uint32_t cond = add_val(g, "cond", PQ_DTYPE_BOOL, &s0);
    pq_graph_add_input(g, cond, &err);
    uint32_t w = add_const(g, "W", PQ_DTYPE_F32, 2, (int64_t[]){20, 3}, 0.01, -0.3);
    uint32_t b = add_const(g, "b", PQ_DTYPE_F32, 1, (int64_t[]){3}, 1.0, 0.5);
    add_const(g, "W2", PQ_DTYPE_F32, 2, (int64_t[]){3, 40}, 0.5, -7);
    add_const(g, "W2_copy", PQ_DTYPE_F32, 2, (int64_t[]){3, 40}, 0.5, -7); /* same bytes */
    add_const(g, "u8c", PQ_DTYPE_U8, 1, (int64_t[]){20}, 3, 1);
    add_const(g, "boolc", PQ_DTYPE_BOOL, 1, (int64_t[]){4}, 1, 0);
    add_const(g, "shape", PQ_DTYPE_I64, 1, (int64_t[]){2}, 1e12, -5);
    add_const(g, "scalar", PQ_DTYPE_F64, 0, NULL, 0, 2.5);
    add_const(g, "empty", PQ_DTYPE_F32, 2, (int64_t[]){0, 5}, 0, 0);
    add_const(g, "h", PQ_DTYPE_F16, 1, (int64_t[]){33}, 0.125, -2);
    add_const(g, "u16c", PQ_DTYPE_U16, 1, (int64_t[]){17}, 1000, 0);
    add_const(g, LONG_NAME, PQ_DTYPE_F32, 1, (int64_t[]){17}, -1, 0);
    add_const(g, "config", PQ_DTYPE_F32, 1, (int64_t[]){2}, 1, 1);
    add_const(g, "piqc.bin.0", PQ_DTYPE_I32, 1, (int64_t[]){2}, 1, 1);
    uint32_t y = add_val(g, "y", PQ_DTYPE_UNDEFINED, NULL);
    node(g, PQ_OP_MATMUL, (uint32_t[]){x, w}, 2, y);
    uint32_t z = add_val(g, "z", PQ_DTYPE_UNDEFINED, NULL);
    node(g, PQ_OP_ADD, (uint32_t[]){y, b}, 2, z);
    /* a Constant node whose value attribute is large (sidecar bytes of its own) */
    uint32_t k = add_val(g, "k", PQ_DTYPE_UNDEFINED, NULL);
    uint32_t kn = node(g, PQ_OP_CONSTANT, NULL, 0, k);
    pq_tensor *at = pq_tensor_create(PQ_DTYPE_F32, 1, (int64_t[]){20}, &err);
    for (int i = 0; i < 20; i++)
        ((float *)at->data)[i] = (float)i * 7.0f;
    cr_assert_eq(pq_node_set_tensor(g, kn, "value", at, &err), PQ_OK);
    /* an If with constants inside its branches */
    uint32_t o = add_val(g, "o", PQ_DTYPE_UNDEFINED, NULL);
    uint32_t ifn = node(g, PQ_OP_IF, &cond, 1, o);
    cr_assert_eq(pq_node_set_graph(g, ifn, "then_branch", branch(g, 1.0), &err), PQ_OK);
    cr_assert_eq(pq_node_set_graph(g, ifn, "else_branch", branch(g, -1.0), &err), PQ_OK);
    pq_graph_add_output(g, z, &err);
    pq_graph_add_output(g, k, &err);
    pq_graph_add_output(g, o, &err);
    return g;
}

static uint8_t packed_bytes[4096];

static pq_artifact_tensor packed_w(enum pq_qformat fmt, int64_t group) {
    static const int64_t onnx[2] = {20, 3};
    for (size_t i = 0; i < sizeof packed_bytes; i++)
        packed_bytes[i] = (uint8_t)(i * 97 + 5);
    pq_artifact_tensor p = {
        "W", fmt, 3, 20, group, packed_bytes, pq_packed_bytes(fmt, 3, 20, group), onnx, 2};
    return p;
}

static char *print(const pq_graph *g) {
    pq_text_bin bin = {0};
    char *s = NULL;
    cr_assert_eq(pq_text_print_string(g, &bin, &s, &err), PQ_OK, "%s", err.msg);
    pq_text_bin_free(&bin);
    return s;
}

static unsigned char *slurp(size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

Test(artifact, roundtrip, .init = setup, .fini = teardown) {
    pq_graph *g = model();
    pq_artifact_tensor pw = packed_w(PQ_QFORMAT_PIQ3, 16);
    pq_provenance prov = {"ab12", 8, "mse", NULL};
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    cr_assert_eq(pq_artifact_write(g, "passes: [fold, quantize]", &pw, 1, &prov, path, &err), PQ_OK,
                 "%s", err.msg);
    pq_artifact *a = NULL;
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(a->pipeline, "passes: [fold, quantize]");
    cr_assert_str_eq(a->version, PIQC_VERSION);
    cr_assert(a->has_provenance);
    cr_assert_str_eq(a->provenance.calib_sha256, "ab12");
    cr_assert_eq(a->provenance.calib_samples, 8);
    cr_assert_str_eq(a->provenance.calib_method, "mse");
    cr_assert_str_eq(a->provenance.timestamp, "1970-01-02T00:00:00Z");
    /* packed weight */
    cr_assert_eq(a->n_packed, 1);
    const pq_artifact_packed *p = &a->packed[0];
    cr_assert_str_eq(p->name, "W");
    cr_assert_eq(p->fmt, PQ_QFORMAT_PIQ3);
    cr_assert(p->rows == 3 && p->cols == 20 && p->group == 16);
    cr_assert_eq(p->size, pw.size);
    cr_assert(memcmp(p->data, packed_bytes, p->size) == 0);
    cr_assert(p->onnx_rank == 2 && p->onnx_dims[0] == 20 && p->onnx_dims[1] == 3);
    cr_assert_eq(p->value, pq_graph_find_value(a->graph, "W"));
    const pq_tensor *wc = a->graph->values[p->value].constant;
    cr_assert(wc && wc->dtype == PQ_DTYPE_F32 && wc->rank == 2 && wc->dims[0] == 20);
    /* the graph equals the original with W's float data replaced by zeros (not stored) */
    pq_tensor *ow = g->values[pq_graph_find_value(g, "W")].constant;
    memset(ow->data, 0, ow->nbytes);
    char *t1 = print(g), *t2 = print(a->graph);
    cr_assert_str_eq(t1, t2);
    pq_free(t1);
    pq_free(t2);
    /* constants by value, including the reserved and the long names */
    const char *names[] = {"W2", "W2_copy", "u8c",     "boolc",  "shape",      "scalar",
                           "h",  "u16c",    LONG_NAME, "config", "piqc.bin.0", "b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const pq_tensor *c0 = g->values[pq_graph_find_value(g, names[i])].constant;
        uint32_t v = pq_graph_find_value(a->graph, names[i]);
        cr_assert_neq(v, PQ_NONE, "%s", names[i]);
        const pq_tensor *c1 = a->graph->values[v].constant;
        cr_assert_not_null(c1, "%s", names[i]);
        cr_assert_eq(c0->dtype, c1->dtype, "%s", names[i]);
        cr_assert_eq(c0->rank, c1->rank, "%s", names[i]);
        cr_assert(memcmp(c0->data, c1->data, c0->nbytes) == 0, "%s", names[i]);
    }
    /* file layout keys */
    const pq_gguf *gg = a->gguf;
    const char *s;
    uint32_t u32;
    cr_assert_eq(pq_gguf_get_string(gg, "general.architecture", &s, NULL, &err), PQ_OK);
    cr_assert_str_eq(s, "piqc");
    cr_assert_eq(pq_gguf_get_u32(gg, "piqc.format_version", &u32, &err), PQ_OK);
    cr_assert_eq(u32, 1);
    cr_assert_eq(pq_gguf_get_u32(gg, "piqc.k.W", &u32, &err), PQ_OK);
    cr_assert_eq(u32, 4);
    cr_assert_eq(pq_gguf_get_u32(gg, "piqc.group.W", &u32, &err), PQ_OK);
    cr_assert_eq(u32, 16);
    cr_assert_eq(pq_gguf_get_string(gg, "piqc.dtype.u8c", &s, NULL, &err), PQ_OK);
    cr_assert_str_eq(s, "u8");
    cr_assert_eq(pq_gguf_get_string(gg, "piqc.dtype.boolc", &s, NULL, &err), PQ_OK);
    cr_assert_str_eq(s, "bool");
    cr_assert_null(pq_gguf_find(gg, "piqc.dtype.W2"));
    cr_assert_not_null(pq_gguf_find(gg, "piqc.sha256.config"));
    cr_assert_null(pq_gguf_find_tensor(gg, "config"));
    const pq_gguf_tensor *wt = pq_gguf_find_tensor(gg, "W");
    cr_assert(wt && wt->type == PQ_GGUF_T_PIQ3 && wt->dims[0] == 20 && wt->dims[1] == 3);
    const pq_gguf_tensor *w2 = pq_gguf_find_tensor(gg, "W2");
    cr_assert(w2 && w2->type == PQ_GGUF_T_F32 && w2->n_dims == 2 && w2->dims[0] == 40 &&
                  w2->dims[1] == 3,
              "GGUF order is innermost first");
    cr_assert_eq(pq_gguf_find_tensor(gg, "u8c")->type, PQ_GGUF_T_I8);
    cr_assert_eq(pq_gguf_find_tensor(gg, "u16c")->type, PQ_GGUF_T_I16);
    char shortname[64];
    pq_gguf_short_name(LONG_NAME, shortname);
    cr_assert_not_null(pq_gguf_find_tensor(gg, shortname));
    char key[96];
    snprintf(key, sizeof key, "piqc.name.%s", shortname);
    cr_assert_eq(pq_gguf_get_string(gg, key, &s, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(s, LONG_NAME);
    /* the graph text holds no float data of W (no SHA prefix of the quantized original) */
    cr_assert_eq(pq_gguf_get_string(gg, "piqc.graph", &s, NULL, &err), PQ_OK);
    cr_assert_null(strstr(s, "inline"));
    pq_artifact_destroy(a);
    pq_graph_destroy(g);
    unsetenv("SOURCE_DATE_EPOCH");
}

Test(artifact, uniform_formats_and_no_provenance, .init = setup, .fini = teardown) {
    enum pq_qformat fmts[] = {PQ_QFORMAT_Q3, PQ_QFORMAT_Q2, PQ_QFORMAT_PIQ2};
    for (int i = 0; i < 3; i++) {
        pq_graph *g = model();
        pq_artifact_tensor pw = packed_w(fmts[i], 8);
        cr_assert_eq(pq_artifact_write(g, NULL, &pw, 1, NULL, path, &err), PQ_OK, "%s", err.msg);
        pq_artifact *a = NULL;
        cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(a->n_packed, 1);
        cr_assert_eq(a->packed[0].fmt, fmts[i]);
        cr_assert_eq(a->packed[0].group, 8);
        cr_assert_str_eq(a->pipeline, "");
        cr_assert(!a->has_provenance);
        uint32_t k;
        cr_assert_eq(pq_gguf_get_u32(a->gguf, "piqc.k.W", &k, &err), PQ_OK);
        cr_assert_eq(k, (uint32_t)pq_qformat_k(fmts[i]));
        pq_artifact_destroy(a);
        pq_graph_destroy(g);
    }
    /* no packed weights at all: everything dense */
    pq_graph *g = model();
    cr_assert_eq(pq_artifact_write(g, "", NULL, 0, NULL, path, &err), PQ_OK, "%s", err.msg);
    pq_artifact *a = NULL;
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(a->n_packed, 0);
    char *t1 = print(g), *t2 = print(a->graph);
    cr_assert_str_eq(t1, t2);
    pq_free(t1);
    pq_free(t2);
    pq_artifact_destroy(a);
    pq_graph_destroy(g);
}

Test(artifact, tamper_is_detected, .init = setup, .fini = teardown) {
    pq_graph *g = model();
    pq_artifact_tensor pw = packed_w(PQ_QFORMAT_PIQ3, 16);
    cr_assert_eq(pq_artifact_write(g, "p", &pw, 1, NULL, path, &err), PQ_OK, "%s", err.msg);
    size_t n;
    unsigned char *b = slurp(&n);
    pq_artifact *a;
    /* a packed weight byte */
    unsigned char *at = NULL;
    for (size_t i = 0; i + pw.size <= n && !at; i++)
        if (memcmp(b + i, packed_bytes, pw.size) == 0) at = b + i;
    cr_assert_not_null(at);
    at[10] ^= 4;
    spit(b, n);
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "tensor 'W': SHA-256 mismatch"), "%s", err.msg);
    at[10] ^= 4;
    /* one character of the graph text (a node's op) */
    unsigned char *op = NULL;
    for (size_t i = 0; i + 6 <= n && !op; i++)
        if (memcmp(b + i, "MatMul", 6) == 0) op = b + i;
    cr_assert_not_null(op);
    op[0] = 'N';
    spit(b, n);
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "header: SHA-256 mismatch"), "%s", err.msg);
    op[0] = 'M';
    spit(b, n);
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_OK, "%s", err.msg);
    pq_artifact_destroy(a);
    free(b);
    pq_graph_destroy(g);
}

Test(artifact, not_an_artifact, .init = setup, .fini = teardown) {
    pq_gguf *gg = pq_gguf_create(&err);
    cr_assert_eq(pq_gguf_set_string(gg, "general.architecture", "llama", &err), PQ_OK);
    cr_assert_eq(pq_gguf_write(gg, path, &err), PQ_OK, "%s", err.msg);
    pq_artifact *a = (pq_artifact *)1;
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_INVALID);
    cr_assert_null(a);
    cr_assert(strstr(err.msg, "not a piqc artifact"), "%s", err.msg);
    cr_assert_eq(pq_gguf_set_string(gg, "general.architecture", "piqc", &err), PQ_OK);
    cr_assert_eq(pq_gguf_set_u32(gg, "piqc.format_version", 2, &err), PQ_OK);
    cr_assert_eq(pq_gguf_write(gg, path, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "format version 2"), "%s", err.msg);
    cr_assert_eq(pq_gguf_set_u32(gg, "piqc.format_version", 1, &err), PQ_OK);
    cr_assert_eq(pq_gguf_write(gg, path, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_artifact_read(path, &a, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piqc.graph"), "%s", err.msg);
    cr_assert_eq(pq_artifact_read("/nonexistent/x.gguf", &a, &err), PQ_ERR_IO);
    pq_gguf_destroy(gg);
}

Test(artifact, writer_rejects_bad_packed, .init = setup, .fini = teardown) {
    pq_graph *g = model();
    pq_artifact_tensor pw = packed_w(PQ_QFORMAT_PIQ3, 16);
    pq_artifact_tensor bad = pw;
    bad.name = "nope";
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'nope'") && strstr(err.msg, path), "%s", err.msg);
    bad = pw;
    bad.size--;
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "packed tensor 'W'"), "%s", err.msg);
    bad = pw;
    bad.group = 12;
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    bad = pw;
    static const int64_t wrong[2] = {3, 20};
    bad.onnx_dims = wrong;
    cr_assert_eq(pq_artifact_write(g, "", &bad, 1, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "ONNX shape"), "%s", err.msg);
    pq_artifact_tensor two[2] = {pw, pw};
    cr_assert_eq(pq_artifact_write(g, "", two, 2, NULL, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
    pq_provenance prov = {NULL, 0, "mse", NULL};
    cr_assert_eq(pq_artifact_write(g, "", &pw, 1, &prov, path, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "SOURCE_DATE_EPOCH"), "%s", err.msg);
    unsetenv("SOURCE_DATE_EPOCH");
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "no file after failed writes");
    /* unwritable destination */
    char bad_path[300];
    snprintf(bad_path, sizeof bad_path, "%s/missing/m.gguf", tmpdir);
    cr_assert_eq(pq_artifact_write(g, "", &pw, 1, NULL, bad_path, &err), PQ_ERR_IO);
    pq_graph_destroy(g);
}

Test(artifact, out_of_memory_is_clean, .init = setup, .fini = teardown) {
    pq_graph *g = model();
    pq_artifact_tensor pw = packed_w(PQ_QFORMAT_PIQ3, 16);
    bool ok = false;
    for (long n = 0; n < 5000 && !ok; n += 3) {
        pq_alloc_fail_after(n);
        enum pq_status st = pq_artifact_write(g, "p", &pw, 1, NULL, path, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK)
            ok = true;
        else
            cr_assert_eq(st, PQ_ERR_NOMEM, "after %ld: %s", n, err.msg);
    }
    cr_assert(ok);
    ok = false;
    for (long n = 0; n < 5000 && !ok; n += 3) {
        pq_artifact *a = NULL;
        pq_alloc_fail_after(n);
        enum pq_status st = pq_artifact_read(path, &a, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            ok = true;
            pq_artifact_destroy(a);
        } else {
            cr_assert_eq(st, PQ_ERR_NOMEM, "after %ld: %s", n, err.msg);
            cr_assert_null(a);
        }
    }
    cr_assert(ok);
    pq_graph_destroy(g);
}
