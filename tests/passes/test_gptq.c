/* Tests of fake-quant with calib gptq (SPEC 4) and of per-layer quant_format: results equal
 * pq_quantize_matrix_gptq on the same Hessian bit for bit, Hessians are collected sequentially
 * (layer 2 sees layer 1 quantized), determinism, fallbacks, errors, and digits / transformer17 end
 * to end (accuracy and output cosine vs FP32, mse beside gptq, with and without hadamard). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "frontends/frontends.h"
#include "ir/text.h"
#include "pass_test_util.h"
#include "passes/passes.h"
#include "runtime/calib.h"

extern const pq_pass pq_pass_fake_quant;

/* ---- a calibration provider over one in-memory input, recording every Hessian it hands out -- */

typedef struct tprov {
    pq_calib_provider p;
    pq_tensor *in;
    pq_tensor *ins[1];
    pq_calib_set cs;
    uint32_t n;
    char names[16][64];
    double *h[16];
    int64_t cols[16], rows[16];
} tprov;

static enum pq_status tp_hessian(void *vctx, const pq_graph *g, uint32_t node, double **h,
                                 int64_t *cols, int64_t *ns, pq_error *err) {
    tprov *tp = vctx;
    pq_graph *c = NULL;
    PQ_TRY(pq_graph_clone(g, &c, err));
    enum pq_status st = pq_runtime_prepare(c, err);
    uint32_t nid = PQ_NONE;
    for (uint32_t i = 0; i < c->n_nodes && st == PQ_OK; i++)
        if (!strcmp(c->nodes[i].name, g->nodes[node].name)) nid = i;
    if (st == PQ_OK) cr_assert_neq(nid, PQ_NONE);
    if (st == PQ_OK) st = pq_calib_hessian(c, &tp->cs, nid, h, cols, ns, err);
    pq_graph_destroy(c);
    if (st == PQ_OK && tp->n < 16) {
        snprintf(tp->names[tp->n], 64, "%s", g->nodes[node].name);
        size_t bytes = sizeof(double) * (size_t)(*cols * *cols);
        tp->h[tp->n] = malloc(bytes);
        memcpy(tp->h[tp->n], *h, bytes);
        tp->cols[tp->n] = *cols;
        tp->rows[tp->n] = *ns;
        tp->n++;
    }
    return st;
}

/* Provider over tensor in (owned by tp from now on). */
static void tp_init(tprov *tp, pq_tensor *in) {
    memset(tp, 0, sizeof *tp);
    tp->in = in;
    tp->ins[0] = in;
    tp->cs = (pq_calib_set){tp->ins, 1, in->dims[0]};
    tp->p.ctx = tp;
    tp->p.hessian = tp_hessian;
    tp->p.samples = (uint64_t)in->dims[0];
}

static void tp_free(tprov *tp) {
    for (uint32_t i = 0; i < tp->n; i++)
        free(tp->h[i]);
    pq_tensor_destroy(tp->in);
}

static const double *tp_find(const tprov *tp, const char *node, int64_t *cols) {
    for (uint32_t i = 0; i < tp->n; i++)
        if (!strcmp(tp->names[i], node)) {
            *cols = tp->cols[i];
            return tp->h[i];
        }
    cr_assert_fail("no Hessian was asked for node '%s'", node);
    return NULL;
}

/* ---- small graphs ---------------------------------------------------------------------------- */

static float lcg_value(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int)(*s >> 40) % 20001 - 10000) / 10000.0f;
}

/* Parses text IR where every "Z<n>" stands for a list of n zeros, fills each constant named in
 * fill[] with deterministic values in [-scale, scale] and prepares the graph. */
static pq_graph *build(const char *tmpl, const char *const *fill, uint32_t nfill, float scale) {
    size_t cap = strlen(tmpl) + 1;
    for (const char *p = strchr(tmpl, 'Z'); p; p = strchr(p + 1, 'Z'))
        cap += 3 * (size_t)atoi(p + 1);
    char *text = malloc(cap), *o = text;
    for (const char *p = tmpl; *p;) {
        if (*p == 'Z' && p[1] >= '0' && p[1] <= '9') {
            char *end = NULL;
            long n = strtol(p + 1, &end, 10);
            for (long i = 0; i < n; i++)
                o += sprintf(o, i ? ", 0" : "0");
            p = end;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    free(text);
    uint64_t s = 12345;
    for (uint32_t f = 0; f < nfill; f++) {
        uint32_t v = pq_graph_find_value(g, fill[f]);
        cr_assert_neq(v, PQ_NONE, "%s", fill[f]);
        float *d = g->values[v].constant->data;
        for (int64_t i = 0; i < pq_tensor_numel(g->values[v].constant); i++)
            d[i] = scale * lcg_value(&s);
    }
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *random_input(int rank, const int64_t *dims, uint64_t seed) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        d[i] = lcg_value(&seed) * 2.0f;
    return t;
}

/* x [N, 64] -> fc1 (W1 [64, 32]) -> + b1 -> Relu -> fc2 (W2 [32, 16]) */
static const char *const mlp_text = "piqc 1\ngraph mlp {\n"
                                    "  input %x: f32[N, 64]\n"
                                    "  const %w1: f32[64, 32] = [Z2048]\n"
                                    "  const %b1: f32[32] = [Z32]\n"
                                    "  const %w2: f32[32, 16] = [Z512]\n"
                                    "  %h = MatMul(%x, %w1)  # fc1\n"
                                    "  %hb = Add(%h, %b1)  # add1\n"
                                    "  %r = Relu(%hb)  # relu1\n"
                                    "  %y = MatMul(%r, %w2)  # fc2\n"
                                    "  output %y\n}\n";

static pq_graph *mlp(void) {
    static const char *const fill[] = {"w1", "b1", "w2"};
    return build(mlp_text, fill, 3, 0.5f);
}

static pq_tensor *mlp_input(void) {
    int64_t dims[2] = {96, 64};
    return random_input(2, dims, 777);
}

static uint32_t node_named(const pq_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    cr_assert_fail("no node '%s'", name);
    return PQ_NONE;
}

/* The FakeQuant node reading the value named wname, or PQ_NONE. */
static uint32_t find_fq(const pq_graph *g, const char *wname) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_FAKE_QUANT &&
            !strcmp(g->values[g->nodes[i].inputs[0]].name, wname))
            return i;
    return PQ_NONE;
}

static const pq_quant_record *find_record(const pq_pass_ctx *ctx, const char *wname) {
    for (uint32_t i = 0; i < ctx->n_records; i++)
        if (!strcmp(ctx->records[i].value_name, wname)) return &ctx->records[i];
    cr_assert_fail("no record for '%s'", wname);
    return NULL;
}

/* H = X^T X of input 0 of node `name`, accumulated from captured chunks (feature-last rows). */
typedef struct hcap {
    uint32_t node;
    int64_t k;
    double *h;
    int64_t rows;
} hcap;

static enum pq_status hcap_observe(void *vctx, const pq_graph *g, uint32_t node,
                                   const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)g;
    (void)n_in;
    (void)err;
    hcap *c = vctx;
    if (node != c->node) return PQ_OK;
    const float *x = in[0]->data;
    int64_t nr = pq_tensor_numel(in[0]) / c->k;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t i = 0; i < c->k; i++)
            for (int64_t j = 0; j < c->k; j++)
                c->h[i * c->k + j] += (double)x[r * c->k + i] * (double)x[r * c->k + j];
    c->rows += nr;
    return PQ_OK;
}

static double *direct_hessian(pq_graph *g, const char *node, int64_t k, pq_tensor *in) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *ins[1] = {in};
    pq_calib_set cs = {ins, 1, in->dims[0]};
    hcap c = {node_named(g, node), k, calloc((size_t)(k * k), sizeof(double)), 0};
    cr_assert_eq(pq_calib_run(g, &cs, hcap_observe, &c, &err), PQ_OK, "%s", err.msg);
    return c.h;
}

/* Frobenius norm of a - b relative to that of b. */
static double rel_diff(const double *a, const double *b, int64_t n) {
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        s += b[i] * b[i];
    }
    return sqrt(d / (s > 0 ? s : 1));
}

/* Library GPTQ of view wv of graph g (original weights) with Hessian h: packed bytes and w_hat
 * (view layout), both malloc'ed. */
static void library_gptq(const pq_graph *g, const pq_weight_view *wv, const double *h,
                         enum pq_qformat f, int64_t group, uint8_t **packed, float **w_hat) {
    pq_error err;
    pq_error_clear(&err);
    float *m = NULL;
    int64_t R = wv->batch * wv->rows, C = wv->cols;
    cr_assert_eq(pq_weight_view_read(g, wv, &m, &err), PQ_OK);
    *packed = malloc(pq_packed_bytes(f, R, C, group));
    *w_hat = malloc(sizeof(float) * (size_t)(R * C));
    cr_assert_eq(pq_quantize_matrix_gptq(wv->name, m, R, C, f, group, h, *packed, &err), PQ_OK,
                 "%s", err.msg);
    cr_assert_eq(pq_dequantize_matrix(*packed, R, C, f, group, *w_hat, &err), PQ_OK);
    pq_free(m);
}

/* Asserts that fake-quant's result for weight wname of g (after the pass) is exactly the library
 * result: scale words, the replaced weight constant (= w_hat in the stored layout) and the
 * FakeQuant output when given (outs: the FakeQuant output tensor). */
static void assert_matches_library(pq_graph *g, const pq_weight_view *wv0, const uint8_t *packed,
                                   const float *w_hat, enum pq_qformat f, int64_t group,
                                   const pq_tensor *fq_out) {
    pq_error err;
    pq_error_clear(&err);
    int64_t R = wv0->batch * wv0->rows, C = wv0->cols, ng = (C + group - 1) / group;
    uint32_t fq = find_fq(g, wv0->name);
    cr_assert_neq(fq, PQ_NONE, "no FakeQuant on '%s'", wv0->name);
    const pq_tensor *s = g->values[g->nodes[fq].inputs[1]].constant;
    cr_assert(s && s->dtype == PQ_DTYPE_F16 && s->dims[0] == R && s->dims[1] == ng);
    const uint16_t *sw = s->data;
    size_t row_bytes = pq_packed_row_bytes(f, C, group),
           gbytes = 2 + pq_packed_code_bytes(f, group);
    for (int64_t r = 0; r < R; r++)
        for (int64_t gi = 0; gi < ng; gi++) {
            const uint8_t *a = packed + (size_t)r * row_bytes + (size_t)gi * gbytes;
            uint16_t want = (uint16_t)(a[0] | (a[1] << 8));
            cr_assert_eq(sw[r * ng + gi], want, "'%s' row %lld group %lld: %04x vs %04x", wv0->name,
                         (long long)r, (long long)gi, sw[r * ng + gi], want);
        }
    /* the weight constant is the reconstruction (read through the same view) */
    pq_weight_view wv = *wv0;
    wv.value = g->nodes[fq].inputs[0];
    float *m = NULL;
    cr_assert_eq(pq_weight_view_read(g, &wv, &m, &err), PQ_OK);
    cr_assert(!memcmp(m, w_hat, sizeof(float) * (size_t)(R * C)), "'%s': weight != w_hat",
              wv0->name);
    if (fq_out) { /* FakeQuant(w_hat, scales) == w_hat bit for bit */
        cr_assert_eq(pq_tensor_numel(fq_out), R * C);
        cr_assert(!memcmp(fq_out->data, g->values[wv.value].constant->data,
                          sizeof(float) * (size_t)(R * C)),
                  "'%s': FakeQuant(w_hat) != w_hat", wv0->name);
    }
    pq_free(m);
}

/* Runs fake-quant with opts on g with provider tp (NULL: none). */
static enum pq_status run_fq(pq_graph *g, const char *opts, tprov *tp, pq_pass_ctx *ctx,
                             pq_error *err) {
    pq_pass_ctx_init(ctx);
    ctx->verbose = 0;
    ctx->calib = tp ? &tp->p : NULL;
    return pq_test_run_pass(g, &pq_pass_fake_quant, opts, ctx, true, err);
}

/* ---- tests ----------------------------------------------------------------------------------- */

Test(gptq, needs_calibration_data) {
    pq_graph *g = mlp();
    pq_pass_ctx ctx;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(run_fq(g, "{calib: gptq, min-elements: 0}", NULL, &ctx, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "calib 'gptq' needs calibration data (--calib-data)"), "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0u, "graph changed on error");
    pq_pass_ctx_free(&ctx);
    /* a provider without Hessians */
    pq_calib_provider p = {.samples = 10};
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    ctx.calib = &p;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, "{calib: gptq, min-elements: 0}", &ctx,
                                  true, &err),
                 PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "cannot collect Hessians"), "%s", err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0u, "graph changed on error");
    pq_pass_ctx_free(&ctx);
    /* int8 everywhere: gptq is ignored, no data needed */
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant,
                                  "{format: int8, calib: gptq, min-elements: 0}", &ctx, true, &err),
                 PQ_OK, "%s", err.msg);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* Layer 1 reads the graph input, so its Hessian is X^T X of the calibration data itself: the pass
 * must give exactly pq_quantize_matrix_gptq's scale words and reconstruction, and FakeQuant of the
 * replaced weight must be that reconstruction bit for bit. Layer 2 (sequential): its Hessian is
 * collected with layer 1 quantized, differs from the FP32 one, and equals the one computed from
 * the FP32 graph with W1 := w_hat1; its result equals the library's on that Hessian. */
Test(gptq, equals_library_and_is_sequential) {
    pq_graph *g0 = mlp();
    pq_graph *g = mlp();
    tprov tp;
    tp_init(&tp, mlp_input());
    pq_pass_ctx ctx;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(run_fq(g, "{calib: gptq, group: 16, min-elements: 0}", &tp, &ctx, &err), PQ_OK,
                 "%s", err.msg);
    cr_assert_eq(ctx.n_records, 2u);
    cr_assert_eq(tp.n, 2u, "one Hessian per layer, got %u", tp.n);
    cr_assert_str_eq(tp.names[0], "fc1", "graph order");
    cr_assert_str_eq(tp.names[1], "fc2");
    cr_assert_eq(tp.rows[0], 96);
    cr_assert_str_eq(find_record(&ctx, "w1")->calib, "gptq");
    cr_assert_str_eq(find_record(&ctx, "w2")->calib, "gptq");

    /* layer 1: H = X^T X of the raw inputs, computed here */
    pq_weight_view v1, v2;
    cr_assert(pq_select_view(g0, node_named(g0, "fc1"), &v1));
    cr_assert(pq_select_view(g0, node_named(g0, "fc2"), &v2));
    cr_assert_eq(v1.cols, 64);
    cr_assert_eq(v1.rows, 32);
    double *h1 = calloc(64 * 64, sizeof(double));
    const float *x = tp.in->data;
    for (int64_t r = 0; r < 96; r++)
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                h1[i * 64 + j] += (double)x[r * 64 + i] * (double)x[r * 64 + j];
    int64_t cols = 0;
    const double *got1 = tp_find(&tp, "fc1", &cols);
    cr_assert_eq(cols, 64);
    cr_assert_leq(rel_diff(got1, h1, 64 * 64), 1e-13);
    uint8_t *p1 = NULL, *p2 = NULL;
    float *wh1 = NULL, *wh2 = NULL;
    library_gptq(g0, &v1, h1, PQ_QFORMAT_PIQ3, 16, &p1, &wh1);

    /* FakeQuant outputs as extra graph outputs */
    uint32_t fq1 = find_fq(g, "w1"), fq2 = find_fq(g, "w2");
    cr_assert_neq(fq1, PQ_NONE);
    cr_assert_neq(fq2, PQ_NONE);
    uint32_t first = g->n_outputs;
    cr_assert_eq(pq_graph_add_output(g, g->nodes[fq1].outputs[0], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, g->nodes[fq2].outputs[0], &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    fq1 = find_fq(g, "w1");
    fq2 = find_fq(g, "w2");
    pq_tensor **outs = pq_test_run(g, tp.in);
    assert_matches_library(g, &v1, p1, wh1, PQ_QFORMAT_PIQ3, 16, outs[first]);

    /* layer 2: FP32 Hessian vs the one from the graph with W1 := w_hat1 */
    double *h2_fp32 = direct_hessian(g0, "fc2", 32, tp.in);
    pq_graph *gq = NULL;
    cr_assert_eq(pq_graph_clone(g0, &gq, &err), PQ_OK);
    pq_weight_view vq = v1;
    vq.value = pq_graph_find_value(gq, "w1");
    cr_assert_eq(pq_weight_view_write(gq, &vq, wh1, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(gq, &err), PQ_OK);
    double *h2_q = direct_hessian(gq, "fc2", 32, tp.in);
    const double *got2 = tp_find(&tp, "fc2", &cols);
    cr_assert_eq(cols, 32);
    double d_fp32 = rel_diff(got2, h2_fp32, 32 * 32), d_q = rel_diff(got2, h2_q, 32 * 32);
    fprintf(stderr,
            "gptq sequential: layer-2 H vs FP32-input H: rel diff %.3g; vs H from the "
            "fake-quantized layer 1: %.3g\n",
            d_fp32, d_q);
    cr_assert_gt(d_fp32, 1e-3, "layer 2's Hessian looks like the FP32 one (%.3g)", d_fp32);
    cr_assert_leq(d_q, 1e-13, "layer 2's Hessian is not the sequential one (%.3g)", d_q);
    library_gptq(g0, &v2, h2_q, PQ_QFORMAT_PIQ3, 16, &p2, &wh2);
    assert_matches_library(g, &v2, p2, wh2, PQ_QFORMAT_PIQ3, 16, outs[first + 1]);
    /* the FP32-input Hessian would give another result */
    uint8_t *p2f = NULL;
    float *wh2f = NULL;
    library_gptq(g0, &v2, h2_fp32, PQ_QFORMAT_PIQ3, 16, &p2f, &wh2f);
    cr_assert(memcmp(wh2f, wh2, sizeof(float) * 32 * 16), "same result from FP32 inputs");

    /* metrics measure against the original weight, which the note keeps */
    const pq_weight_note *note = pq_pass_find_note(&ctx, "w1");
    cr_assert(note && note->original);
    cr_assert(!memcmp(note->original->data,
                      g0->values[pq_graph_find_value(g0, "w1")].constant->data,
                      sizeof(float) * 64 * 32));
    const pq_quant_record *r1 = find_record(&ctx, "w1");
    float *m1 = NULL;
    cr_assert_eq(pq_weight_view_read(g0, &v1, &m1, &err), PQ_OK);
    double e2 = 0;
    for (int i = 0; i < 64 * 32; i++)
        e2 += ((double)m1[i] - (double)wh1[i]) * ((double)m1[i] - (double)wh1[i]);
    cr_assert_leq(fabs(r1->sum_e2 - e2), 1e-9 * e2, "record sum_e2 %.9g vs %.9g", r1->sum_e2, e2);

    pq_free(m1);
    free(p1);
    free(p2);
    free(p2f);
    free(wh1);
    free(wh2);
    free(wh2f);
    free(h1);
    free(h2_fp32);
    free(h2_q);
    pq_test_free_outputs(outs, g->n_outputs);
    pq_graph_destroy(gq);
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
}

Test(gptq, deterministic) {
    pq_graph *a = mlp(), *b = mlp();
    tprov ta, tb;
    tp_init(&ta, mlp_input());
    tp_init(&tb, mlp_input());
    pq_pass_ctx ca, cb;
    pq_error err;
    pq_error_clear(&err);
    const char *opts = "{calib: gptq, format: piq2, group: 8, min-elements: 0}";
    cr_assert_eq(run_fq(a, opts, &ta, &ca, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(run_fq(b, opts, &tb, &cb, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(a->n_values, b->n_values);
    uint32_t nconst = 0;
    for (uint32_t v = 0; v < a->n_values; v++) {
        const pq_tensor *x = a->values[v].constant, *y = b->values[v].constant;
        cr_assert_eq(!x, !y);
        if (!x) continue;
        cr_assert_eq(x->nbytes, y->nbytes);
        cr_assert(!memcmp(x->data, y->data, x->nbytes), "constant '%s' differs", a->values[v].name);
        nconst++;
    }
    cr_assert_geq(nconst, 5u);
    for (uint32_t i = 0; i < ca.n_records; i++)
        cr_assert_eq(ca.records[i].sum_e2, cb.records[i].sum_e2);
    pq_pass_ctx_free(&ca);
    pq_pass_ctx_free(&cb);
    tp_free(&ta);
    tp_free(&tb);
    pq_graph_destroy(a);
    pq_graph_destroy(b);
}

/* A Conv layer (cnn_bn's first Conv) equals the library on the Hessian pq_calib_hessian gives for
 * the unchanged graph (its input is the graph input). */
Test(gptq, conv_layer_equals_library) {
    pq_graph *g0 = pq_test_load_onnx("tests/models/cnn_bn/model.onnx");
    pq_graph *g = pq_test_load_onnx("tests/models/cnn_bn/model.onnx");
    pq_error err;
    pq_error_clear(&err);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/models/cnn_bn/input_x.npy", PQ_SOURCE_DIR);
    pq_tensor *in = NULL;
    cr_assert_eq(pq_npy_read(path, &in, &err), PQ_OK, "%s", err.msg);
    tprov tp;
    tp_init(&tp, in);
    pq_pass_ctx ctx;
    cr_assert_eq(
        run_fq(g, "{calib: gptq, group: 32, min-elements: 0, targets: [Conv]}", &tp, &ctx, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_geq(tp.n, 1u);
    uint32_t nid = node_named(g0, tp.names[0]);
    pq_weight_view v;
    cr_assert(pq_select_view(g0, nid, &v));
    cr_assert_eq(v.op, PQ_OP_CONV);
    double *h = NULL;
    int64_t cols = 0, rows = 0;
    cr_assert_eq(pq_calib_hessian(g0, &tp.cs, nid, &h, &cols, &rows, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(cols, v.cols);
    cr_assert_eq(rel_diff(tp.h[0], h, cols * cols), 0.0);
    fprintf(stderr, "gptq conv: '%s' %lld x %lld, H from %lld rows\n", v.name, (long long)v.rows,
            (long long)v.cols, (long long)rows);
    uint8_t *p = NULL;
    float *wh = NULL;
    library_gptq(g0, &v, h, PQ_QFORMAT_PIQ3, 32, &p, &wh);
    assert_matches_library(g, &v, p, wh, PQ_QFORMAT_PIQ3, 32, NULL);
    free(p);
    free(wh);
    pq_free(h);
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
}

/* Grouped Conv and a batched MatMul weight have no (single) Hessian: mse, recorded as such, with
 * exactly pq_quantize_matrix's mse scales; the weight constant is left as it was. */
Test(gptq, falls_back_to_mse) {
    static const char *const fill[] = {"wd", "wb"};
    pq_graph *g0 = build("piqc 1\ngraph t {\n"
                         "  input %x: f32[N, 4, 6, 6]\n"
                         "  const %wd: f32[4, 1, 3, 3] = [Z36]\n"
                         "  const %wb: f32[4, 6, 8] = [Z192]\n"
                         "  %c = Conv(%x, %wd) {group = 4, pads = [1, 1, 1, 1]}  # dw\n"
                         "  %m = MatMul(%c, %wb)  # bmm\n"
                         "  output %m\n}\n",
                         fill, 2, 0.5f);
    pq_graph *g = NULL;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_graph_clone(g0, &g, &err), PQ_OK);
    int64_t dims[4] = {5, 4, 6, 6};
    tprov tp;
    tp_init(&tp, random_input(4, dims, 9));
    pq_pass_ctx ctx;
    cr_assert_eq(run_fq(g, "{calib: gptq, group: 8, min-elements: 0}", &tp, &ctx, &err), PQ_OK,
                 "%s", err.msg);
    cr_assert_eq(ctx.n_records, 2u);
    const char *names[2] = {"wd", "wb"};
    for (int i = 0; i < 2; i++) {
        const pq_quant_record *r = find_record(&ctx, names[i]);
        cr_assert_str_eq(r->calib, "mse", "'%s': %s", names[i], r->calib);
        uint32_t fq = find_fq(g, names[i]);
        cr_assert_neq(fq, PQ_NONE);
        const pq_tensor *w = g->values[g->nodes[fq].inputs[0]].constant;
        const pq_tensor *w0 = g0->values[pq_graph_find_value(g0, names[i])].constant;
        cr_assert(!memcmp(w->data, w0->data, w0->nbytes), "'%s' changed", names[i]);
        pq_weight_view v;
        cr_assert(pq_select_view(g0, node_named(g0, i ? "bmm" : "dw"), &v));
        int64_t R = v.batch * v.rows, C = v.cols;
        float *m = NULL;
        cr_assert_eq(pq_weight_view_read(g0, &v, &m, &err), PQ_OK);
        uint8_t *p = malloc(pq_packed_bytes(PQ_QFORMAT_PIQ3, R, C, 8));
        cr_assert_eq(
            pq_quantize_matrix(v.name, m, R, C, PQ_QFORMAT_PIQ3, 8, PQ_CALIB_MSE, NULL, p, &err),
            PQ_OK);
        const uint16_t *sw = g->values[g->nodes[fq].inputs[1]].constant->data;
        int64_t ng = (C + 7) / 8;
        size_t row_bytes = pq_packed_row_bytes(PQ_QFORMAT_PIQ3, C, 8);
        for (int64_t rr = 0; rr < R; rr++)
            for (int64_t gi = 0; gi < ng; gi++) {
                const uint8_t *a = p + (size_t)rr * row_bytes + (size_t)gi * (2 + 3);
                cr_assert_eq(sw[rr * ng + gi], (uint16_t)(a[0] | (a[1] << 8)));
            }
        free(p);
        pq_free(m);
    }
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
}

/* A weight also read by a node the pass does not select keeps its value there: the GPTQ
 * reconstruction goes into a private copy. */
Test(gptq, shared_with_unselected_node_gets_private_copy) {
    static const char *const fill[] = {"w"};
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 16]\n"
                        "  const %w: f32[16, 16] = [Z256]\n"
                        "  %y = MatMul(%x, %w)  # fc\n"
                        "  %v = Neg(%w)  # other\n"
                        "  output %y\n"
                        "  output %v\n}\n",
                        fill, 1, 0.5f);
    const pq_tensor *w0 = g->values[pq_graph_find_value(g, "w")].constant;
    float before[256];
    memcpy(before, w0->data, sizeof before);
    int64_t dims[2] = {40, 16};
    tprov tp;
    tp_init(&tp, random_input(2, dims, 3));
    pq_pass_ctx ctx;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(run_fq(g, "{calib: gptq, group: 16, min-elements: 0}", &tp, &ctx, &err), PQ_OK,
                 "%s", err.msg);
    uint32_t w = pq_graph_find_value(g, "w");
    cr_assert(!memcmp(g->values[w].constant->data, before, sizeof before), "shared weight changed");
    uint32_t fq = find_fq(g, "w.gptq");
    cr_assert_neq(fq, PQ_NONE, "no FakeQuant on the private copy");
    cr_assert_eq(g->nodes[node_named(g, "other")].inputs[0], w);
    cr_assert_str_eq(find_record(&ctx, "w")->calib, "gptq");
    const pq_weight_note *note = pq_pass_find_note(&ctx, "w.gptq");
    cr_assert(note && note->original);
    cr_assert(!memcmp(note->original->data, before, sizeof before));
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
}

/* Mixed precision: quant_format on the consumer decides the layer's format (group from the pass;
 * int8/f16 none; calib the option's or the format's default). */
Test(mixed_precision, quant_format_on_the_consumer) {
    pq_graph *g = mlp();
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_node_set_string(g, node_named(g, "fc1"), "quant_format", "q3", &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(g, node_named(g, "fc2"), "quant_format", "int8", &err), PQ_OK);
    pq_pass_ctx ctx;
    cr_assert_eq(run_fq(g, "{format: piq2, group: 16, min-elements: 0}", NULL, &ctx, &err), PQ_OK,
                 "%s", err.msg);
    const pq_quant_record *r1 = find_record(&ctx, "w1"), *r2 = find_record(&ctx, "w2");
    cr_assert_str_eq(r1->format, "q3");
    cr_assert_str_eq(r1->calib, "absmax", "q3's default calibration");
    cr_assert_eq(r1->group, 16);
    cr_assert_str_eq(r2->format, "int8");
    cr_assert_str_eq(r2->calib, "-");
    cr_assert_eq(r2->group, 0);
    cr_assert_str_eq(pq_node_attr_string(&g->nodes[find_fq(g, "w1")], "format", ""), "q3");
    cr_assert_eq(pq_node_attr_int(&g->nodes[find_fq(g, "w1")], "qgroup", 0), 16);
    cr_assert_str_eq(pq_node_attr_string(&g->nodes[find_fq(g, "w2")], "format", ""), "int8");
    /* the q3 layer's scales are pq_quantize_matrix's (absmax, G = 16) */
    pq_graph *g0 = mlp();
    pq_weight_view v;
    cr_assert(pq_select_view(g0, node_named(g0, "fc1"), &v));
    float *m = NULL;
    cr_assert_eq(pq_weight_view_read(g0, &v, &m, &err), PQ_OK);
    uint8_t *p = malloc(pq_packed_bytes(PQ_QFORMAT_Q3, 32, 64, 16));
    cr_assert_eq(
        pq_quantize_matrix("w1", m, 32, 64, PQ_QFORMAT_Q3, 16, PQ_CALIB_ABSMAX, NULL, p, &err),
        PQ_OK);
    const uint16_t *sw = g->values[g->nodes[find_fq(g, "w1")].inputs[1]].constant->data;
    cr_assert_eq(sw[0], (uint16_t)(p[0] | (p[1] << 8)));
    free(p);
    pq_free(m);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);

    /* an explicit calib applies to the layer's own format; gptq only where the layer is packed */
    g = mlp();
    cr_assert_eq(pq_node_set_string(g, node_named(g, "fc2"), "quant_format", "f16", &err), PQ_OK);
    tprov tp;
    tp_init(&tp, mlp_input());
    cr_assert_eq(
        run_fq(g, "{format: piq3, calib: gptq, group: 16, min-elements: 0}", &tp, &ctx, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_eq(tp.n, 1u, "Hessians asked: %u", tp.n);
    cr_assert_str_eq(find_record(&ctx, "w1")->calib, "gptq");
    cr_assert_str_eq(find_record(&ctx, "w2")->format, "f16");
    cr_assert_str_eq(find_record(&ctx, "w2")->calib, "-");
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
}

Test(mixed_precision, bad_quant_format_names_the_node) {
    pq_graph *g = mlp();
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_node_set_string(g, node_named(g, "fc2"), "quant_format", "q5", &err), PQ_OK);
    pq_pass_ctx ctx;
    cr_assert_eq(run_fq(g, "{min-elements: 0}", NULL, &ctx, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "node 'fc2' (MatMul): attribute 'quant_format' must be"), "%s",
              err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0u, "graph changed on error");
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

/* ---- end to end ------------------------------------------------------------------------------ */

typedef struct e2e_result {
    double accuracy; /* -1 without labels */
    double cosine;   /* outputs vs FP32 */
    double sd_db;    /* weight SD over all records */
} e2e_result;

/* Imports model, runs the canonical clean-up, optionally hadamard, fake-quant with fq_opts and
 * lower-quant, with calibration data calib_rel; runs on input_rel and compares with FP32. */
static e2e_result e2e(const char *model, const char *input_rel, const char *labels_rel,
                      bool hadamard, const char *fq_opts) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g0 = pq_test_load_onnx(model);
    pq_graph *g = pq_test_load_onnx(model);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, input_rel);
    pq_tensor *in = NULL;
    cr_assert_eq(pq_npy_read(path, &in, &err), PQ_OK, "%s", err.msg);
    tprov tp;
    tp_init(&tp, in);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    ctx.calib = &tp.p;
    static const char *const pre[] = {"fold-constants", "canonicalize",    "dce", "cse",
                                      "fold-batchnorm", "fuse-activations"};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        cr_assert_eq(pq_test_run_pass(g, pq_pass_find(pre[i]), NULL, &ctx, true, &err), PQ_OK,
                     "%s: %s", pre[i], err.msg);
    if (hadamard)
        cr_assert_eq(pq_test_run_pass(g, pq_pass_find("hadamard"), "{seed: 42}", &ctx, true, &err),
                     PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, fq_opts, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_test_run_pass(g, pq_pass_find("lower-quant"), NULL, &ctx, true, &err), PQ_OK,
                 "%s", err.msg);
    pq_tensor **ref = pq_test_run(g0, in), **out = pq_test_run(g, in);
    const float *a = ref[0]->data, *b = out[0]->data;
    int64_t n = pq_tensor_numel(ref[0]);
    cr_assert_eq(pq_tensor_numel(out[0]), n);
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    e2e_result r = {-1, dot / sqrt(na * nb), 0};
    if (labels_rel) {
        snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, labels_rel);
        pq_tensor *lab = NULL;
        cr_assert_eq(pq_npy_read(path, &lab, &err), PQ_OK, "%s", err.msg);
        const int64_t *l = lab->data;
        int64_t rows = ref[0]->dims[0], k = ref[0]->dims[1], ok = 0;
        for (int64_t i = 0; i < rows; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < k; j++)
                if (b[i * k + j] > b[i * k + best]) best = j;
            ok += best == l[i];
        }
        r.accuracy = (double)ok / (double)rows;
        pq_tensor_destroy(lab);
    }
    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    for (uint32_t i = 0; i < ctx.n_records; i++) {
        acc.n += ctx.records[i].n;
        acc.sum_e2 += ctx.records[i].sum_e2;
        acc.sum_w2 += ctx.records[i].sum_w2;
    }
    r.sd_db = 10 * log10(acc.sum_e2 / acc.sum_w2);
    pq_test_free_outputs(ref, g0->n_outputs);
    pq_test_free_outputs(out, g->n_outputs);
    pq_pass_ctx_free(&ctx);
    tp_free(&tp);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
    return r;
}

Test(gptq_e2e, digits_accuracy_and_cosine, .timeout = 300) {
    static const char *const fmts[] = {"piq3", "piq2"};
    for (int f = 0; f < 2; f++)
        for (int had = 0; had < 2; had++) {
            char mse[128], gq[128];
            snprintf(mse, sizeof mse, "{format: %s, group: 256, calib: mse}", fmts[f]);
            snprintf(gq, sizeof gq, "{format: %s, group: 256, calib: gptq}", fmts[f]);
            e2e_result a = e2e("examples/digits/model.onnx", "examples/digits/test_x.npy",
                               "examples/digits/labels.npy", had, mse);
            e2e_result b = e2e("examples/digits/model.onnx", "examples/digits/test_x.npy",
                               "examples/digits/labels.npy", had, gq);
            fprintf(stderr,
                    "digits %s%s G=256: mse  accuracy %.2f%% cosine %.6f weight SD %.2f dB | gptq "
                    "accuracy %.2f%% cosine %.6f weight SD %.2f dB (calibration = test_x)\n",
                    fmts[f], had ? "+hadamard" : "", 100 * a.accuracy, a.cosine, a.sd_db,
                    100 * b.accuracy, b.cosine, b.sd_db);
            cr_assert_geq(b.accuracy, 0.90, "gptq %s: accuracy %.4f", fmts[f], b.accuracy);
            cr_assert_geq(b.cosine, 0.95, "gptq %s: cosine %.4f", fmts[f], b.cosine);
        }
}

Test(gptq_e2e, transformer17_cosine, .timeout = 300) {
    for (int had = 0; had < 2; had++) {
        const char *mse = "{format: piq3, group: 32, calib: mse, min-elements: 256}";
        const char *gq = "{format: piq3, group: 32, calib: gptq, min-elements: 256}";
        e2e_result a = e2e("tests/models/transformer17/model.onnx",
                           "tests/models/transformer17/input_tokens.npy", NULL, had, mse);
        e2e_result b = e2e("tests/models/transformer17/model.onnx",
                           "tests/models/transformer17/input_tokens.npy", NULL, had, gq);
        fprintf(stderr,
                "transformer17 piq3%s G=32: mse cosine %.6f weight SD %.2f dB | gptq cosine %.6f "
                "weight SD %.2f dB (2 sequences of 8 tokens, calibration = evaluation input)\n",
                had ? "+hadamard" : "", a.cosine, a.sd_db, b.cosine, b.sd_db);
        cr_assert_geq(b.cosine, 0.9, "cosine %.4f", b.cosine);
    }
}
