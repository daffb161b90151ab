/* Tests of the fake-quant pass: scale words and FakeQuant outputs equal pq_quantize_matrix /
 * pq_dequantize_matrix bit for bit, records equal `piqc quantize`'s report, sharing, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/quant/fwht.h"
#include "backends/quant/quant.h"
#include "pass_test_util.h"
#include "passes/passes.h"
#include "passes/rotate.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_fake_quant;

typedef struct pq_fq_model {
    const char *model, *input;
} pq_fq_model;

static const pq_fq_model pq_fq_models[] = {
    {"examples/digits/model.onnx", "examples/digits/test_x.npy"},
    {"tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy"},
    {"tests/models/transformer17/model.onnx", "tests/models/transformer17/input_tokens.npy"},
};
#define PQ_FQ_N_MODELS (sizeof pq_fq_models / sizeof pq_fq_models[0])

/* The FakeQuant node reading the value named wname as its weight, or PQ_NONE. */
static uint32_t find_fq(const pq_graph *g, const char *wname) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        if (n->op == PQ_OP_FAKE_QUANT && !strcmp(g->values[n->inputs[0]].name, wname)) return i;
    }
    return PQ_NONE;
}

static const pq_quant_record *find_record(const pq_pass_ctx *ctx, const char *wname) {
    for (uint32_t i = 0; i < ctx->n_records; i++)
        if (!strcmp(ctx->records[i].value_name, wname)) return &ctx->records[i];
    return NULL;
}

/* Stored index of view element i (transposed views are [batch, K, N] stored). */
static int64_t stored_index(const pq_weight_view *wv, int64_t i) {
    if (!wv->transposed) return i;
    int64_t mat = wv->rows * wv->cols, b = i / mat, r = (i % mat) / wv->cols, k = i % wv->cols;
    return b * mat + k * wv->rows + r;
}

/* fake-quant with opts on every model: each weight's scales equal pq_quantize_matrix's scale
 * words and the FakeQuant output (run as an extra graph output) equals pq_dequantize_matrix of
 * those packed bytes, bit for bit. */
static void check_bit_exact(const char *opts, enum pq_qformat f, enum pq_calib calib,
                            int64_t group) {
    for (size_t mi = 0; mi < PQ_FQ_N_MODELS; mi++) {
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g0 = pq_test_load_onnx(pq_fq_models[mi].model);
        pq_graph *g = pq_test_load_onnx(pq_fq_models[mi].model);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, opts, &ctx, true, &err), PQ_OK,
                     "%s: %s", pq_fq_models[mi].model, err.msg);
        pq_weight_view *views = NULL;
        uint32_t nv = 0;
        cr_assert_eq(pq_weights_find(g0, 1024, &views, &nv, &err), PQ_OK);
        cr_assert(nv > 0, "%s has no weights", pq_fq_models[mi].model);
        cr_assert_eq(ctx.n_records, nv, "%s: %u records for %u weights", pq_fq_models[mi].model,
                     ctx.n_records, nv);
        uint32_t first_out = g->n_outputs;
        for (uint32_t i = 0; i < nv; i++) {
            uint32_t fq = find_fq(g, views[i].name);
            cr_assert_neq(fq, PQ_NONE, "no FakeQuant on '%s'", views[i].name);
            cr_assert_eq(pq_graph_add_output(g, g->nodes[fq].outputs[0], &err), PQ_OK);
        }
        cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
        pq_tensor **outs = pq_test_run_npy(g, pq_fq_models[mi].input);
        for (uint32_t i = 0; i < nv; i++) {
            const pq_weight_view *wv = &views[i];
            int64_t R = wv->batch * wv->rows, C = wv->cols, ng = (C + group - 1) / group;
            float *m = NULL;
            cr_assert_eq(pq_weight_view_read(g0, wv, &m, &err), PQ_OK);
            size_t bytes = pq_packed_bytes(f, R, C, group);
            uint8_t *p = pq_malloc(bytes);
            float *wh = pq_malloc(sizeof(float) * (size_t)(R * C));
            cr_assert_eq(pq_quantize_matrix(wv->name, m, R, C, f, group, calib, NULL, p, &err),
                         PQ_OK, "%s", err.msg);
            cr_assert_eq(pq_dequantize_matrix(p, R, C, f, group, wh, &err), PQ_OK);
            /* scale words */
            const pq_node *fq = &g->nodes[find_fq(g, wv->name)];
            const pq_tensor *s = g->values[fq->inputs[1]].constant;
            cr_assert(s && s->dtype == PQ_DTYPE_F16 && s->rank == 2);
            cr_assert(s->dims[0] == R && s->dims[1] == ng, "'%s': scales shape", wv->name);
            const uint16_t *sw = s->data;
            size_t row_bytes = pq_packed_row_bytes(f, C, group);
            size_t gbytes = 2 + pq_packed_code_bytes(f, group);
            for (int64_t r = 0; r < R; r++)
                for (int64_t gi = 0; gi < ng; gi++) {
                    const uint8_t *a = p + (size_t)r * row_bytes + (size_t)gi * gbytes;
                    uint16_t want = (uint16_t)(a[0] | (a[1] << 8));
                    cr_assert_eq(sw[r * ng + gi], want, "'%s' row %lld group %lld: %04x vs %04x",
                                 wv->name, (long long)r, (long long)gi, sw[r * ng + gi], want);
                }
            /* FakeQuant output, bit for bit, in the stored layout */
            const pq_tensor *o = outs[first_out + i];
            cr_assert_eq(pq_tensor_numel(o), R * C);
            const float *od = o->data;
            for (int64_t k = 0; k < R * C; k++) {
                float got = od[stored_index(wv, k)];
                cr_assert(!memcmp(&got, &wh[k], sizeof got), "'%s' element %lld: %.9g vs %.9g",
                          wv->name, (long long)k, (double)got, (double)wh[k]);
            }
            pq_free(m);
            pq_free(p);
            pq_free(wh);
        }
        pq_test_free_outputs(outs, g->n_outputs);
        pq_free(views);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
        pq_graph_destroy(g0);
    }
}

Test(fake_quant, piq3_mse_scales_and_output_bit_exact) {
    check_bit_exact(NULL, PQ_QFORMAT_PIQ3, PQ_CALIB_MSE, 256);
}
Test(fake_quant, piq3_absmax_scales_and_output_bit_exact) {
    check_bit_exact("{calib: absmax}", PQ_QFORMAT_PIQ3, PQ_CALIB_ABSMAX, 256);
}
Test(fake_quant, piq2_g64_mse_bit_exact) {
    check_bit_exact("{format: piq2, group: 64}", PQ_QFORMAT_PIQ2, PQ_CALIB_MSE, 64);
}
Test(fake_quant, q3_defaults_to_absmax_baseline) {
    check_bit_exact("{format: q3, group: 32}", PQ_QFORMAT_Q3, PQ_CALIB_ABSMAX, 32);
}

/* Records equal the metrics of pq_quantize_weights (what `piqc quantize` reports). */
static void check_records(const char *opts, const char *fmt, enum pq_calib calib, int64_t group) {
    for (size_t mi = 0; mi < PQ_FQ_N_MODELS; mi++) {
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g = pq_test_load_onnx(pq_fq_models[mi].model);
        pq_qreport rep;
        memset(&rep, 0, sizeof rep);
        cr_assert(pq_qchoice_parse(fmt, &rep.fmt));
        rep.calib = calib;
        rep.group = group;
        cr_assert_eq(pq_quantize_weights(g, NULL, &rep, &err), PQ_OK, "%s", err.msg);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, opts, &ctx, true, &err), PQ_OK, "%s",
                     err.msg);
        cr_assert_eq(ctx.n_records, rep.n);
        pq_metrics_acc agg;
        pq_metrics_acc_init(&agg);
        for (uint32_t i = 0; i < rep.n; i++) {
            const pq_qtensor *t = &rep.tensors[i];
            const pq_quant_record *r = find_record(&ctx, t->view.name);
            cr_assert(r, "no record for '%s'", t->view.name);
            cr_assert_str_eq(r->format, fmt);
            cr_assert_eq(r->rows, t->view.batch * t->view.rows);
            cr_assert_eq(r->cols, t->view.cols);
            cr_assert(!r->rotated);
            pq_metrics_acc acc = {r->n,   r->sum_e2,   r->sum_w2,        r->sum_h2,
                                  r->dot, r->outliers, r->outliers_kept, r->stored_bytes};
            pq_metrics m;
            pq_metrics_acc_finish(&acc, &m);
            cr_assert_eq(m.n, t->metrics.n);
            cr_assert_eq(m.mse, t->metrics.mse, "'%s' mse %.17g vs %.17g", t->view.name, m.mse,
                         t->metrics.mse);
            cr_assert_eq(m.sd_db, t->metrics.sd_db);
            cr_assert_eq(m.cosine, t->metrics.cosine);
            cr_assert_eq(m.outliers, t->metrics.outliers);
            cr_assert_eq(m.outliers_kept, t->metrics.outliers_kept);
            cr_assert_eq(m.bpw_actual, t->metrics.bpw_actual, "'%s' bpw %.9g vs %.9g", t->view.name,
                         m.bpw_actual, t->metrics.bpw_actual);
            agg.n += acc.n;
            agg.sum_e2 += acc.sum_e2;
            agg.sum_w2 += acc.sum_w2;
            agg.sum_h2 += acc.sum_h2;
            agg.dot += acc.dot;
            agg.outliers += acc.outliers;
            agg.outliers_kept += acc.outliers_kept;
            agg.stored_bytes += acc.stored_bytes;
        }
        pq_metrics am;
        pq_metrics_acc_finish(&agg, &am);
        cr_assert_eq(am.sd_db, rep.aggregate.sd_db);
        cr_assert_eq(am.cosine, rep.aggregate.cosine);
        cr_assert_eq(am.bpw_actual, rep.aggregate.bpw_actual);
        pq_qreport_free(&rep);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
}

Test(fake_quant, records_match_quantize_report_piq3) {
    check_records(NULL, "piq3", PQ_CALIB_MSE, 256);
}
Test(fake_quant, records_match_quantize_report_q3_absmax_g64) {
    check_records("{format: q3, group: 64}", "q3", PQ_CALIB_ABSMAX, 64);
}
Test(fake_quant, records_match_quantize_report_int8) {
    check_records("{format: int8}", "int8", PQ_CALIB_MSE, 256);
}

/* x[4,32] -> MatMul(x, W) -> MatMul(., W) -> y: W [32, 32] shared by both. */
static pq_graph *shared_graph(float bad_value, int64_t bad_index) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    int64_t xd[2] = {4, 32}, wd[2] = {32, 32};
    pq_shape xs = pq_shape_from_dims(2, xd);
    uint32_t x, w, h, y;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &xs, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    float *wdata = pq_malloc(sizeof(float) * 1024);
    for (int i = 0; i < 1024; i++)
        wdata[i] = sinf((float)i * 0.37f) * 0.1f;
    if (bad_index >= 0) wdata[bad_index] = bad_value;
    cr_assert_eq(pq_build_const_f32(g, "W", 2, wd, wdata, &w, &err), PQ_OK);
    pq_free(wdata);
    uint32_t in1[2] = {x, w};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm1", in1, 2, &h, NULL, &err), PQ_OK);
    uint32_t in2[2] = {h, w};
    cr_assert_eq(pq_build(g, PQ_OP_MATMUL, "mm2", in2, 2, &y, NULL, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

Test(fake_quant, shared_weight_quantized_once) {
    pq_error err;
    pq_graph *g = shared_graph(0, -1);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, NULL, &ctx, true, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 1u);
    cr_assert_eq(ctx.n_records, 1u);
    uint32_t fq_out = g->nodes[find_fq(g, "W")].outputs[0], seen = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_MATMUL) {
            cr_assert_eq(g->nodes[i].inputs[1], fq_out, "'%s' does not read the FakeQuant",
                         g->nodes[i].name);
            seen++;
        }
    cr_assert_eq(seen, 2u);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

Test(fake_quant, nonfinite_weight_names_tensor_and_index) {
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g = shared_graph(bad[k], 17 + k);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, NULL, &ctx, false, &err),
                     PQ_ERR_INVALID);
        char want[32];
        snprintf(want, sizeof want, "index %d ", 17 + k);
        cr_assert(strstr(err.msg, "'W'") && strstr(err.msg, want), "message: %s", err.msg);
        cr_assert_eq(ctx.n_records, 0u);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
}

Test(fake_quant, option_errors) {
    static const struct {
        const char *opts;
        enum pq_status st;
        const char *msg;
    } cases[] = {
        {"{group: 100}", PQ_ERR_INVALID, "option 'group' = 100"},
        {"{calib: weighted}", PQ_ERR_INVALID,
         "calib 'weighted' needs calibration data (--calib-data)"},
        {"{calib: gptq}", PQ_ERR_INVALID, "calib 'gptq' needs calibration data (--calib-data)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g = shared_graph(0, -1);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, cases[i].opts, &ctx, false, &err),
                     cases[i].st, "%s: %s", cases[i].opts, err.msg);
        cr_assert(strstr(err.msg, cases[i].msg), "%s: message '%s'", cases[i].opts, err.msg);
        cr_assert_eq(pq_test_count_op(g, PQ_OP_FAKE_QUANT), 0u, "graph changed on error");
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
}

/* A weighted run with a provider: the importance reaches calibration (same scale words as
 * pq_quantize_matrix with that importance). */
static enum pq_status fake_importance(void *c, const pq_graph *g, const uint32_t *values,
                                      uint32_t n, float **out, pq_error *err) {
    (void)c;
    (void)err;
    for (uint32_t i = 0; i < n; i++) {
        const pq_tensor *t = g->values[values[i]].constant;
        int64_t cols = t->dims[0]; /* MatMul [K, N]: K columns in the view */
        out[i] = pq_malloc(sizeof(float) * (size_t)cols);
        for (int64_t j = 0; j < cols; j++)
            out[i][j] = 0.25f + (float)(j % 7);
    }
    return PQ_OK;
}

Test(fake_quant, weighted_uses_provider_importance) {
    pq_error err;
    pq_graph *g = shared_graph(0, -1);
    pq_graph *g0 = shared_graph(0, -1);
    pq_calib_provider prov = {.ctx = NULL, .importance = fake_importance, .samples = 8};
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    ctx.calib = &prov;
    cr_assert_eq(
        pq_test_run_pass(g, &pq_pass_fake_quant, "{calib: weighted, group: 8}", &ctx, true, &err),
        PQ_OK, "%s", err.msg);
    cr_assert_str_eq(ctx.records[0].calib, "weighted");
    pq_weight_view *views = NULL;
    uint32_t nv = 0;
    cr_assert_eq(pq_weights_find(g0, 1024, &views, &nv, &err), PQ_OK);
    float *m = NULL, h[32];
    for (int j = 0; j < 32; j++)
        h[j] = 0.25f + (float)(j % 7);
    cr_assert_eq(pq_weight_view_read(g0, &views[0], &m, &err), PQ_OK);
    size_t bytes = pq_packed_bytes(PQ_QFORMAT_PIQ3, 32, 32, 8);
    uint8_t *p = pq_malloc(bytes);
    cr_assert_eq(
        pq_quantize_matrix("W", m, 32, 32, PQ_QFORMAT_PIQ3, 8, PQ_CALIB_WEIGHTED, h, p, &err),
        PQ_OK);
    const uint16_t *sw = g->values[g->nodes[find_fq(g, "W")].inputs[1]].constant->data;
    size_t gb = 2 + pq_packed_code_bytes(PQ_QFORMAT_PIQ3, 8);
    for (int64_t k = 0; k < 32 * 4; k++)
        cr_assert_eq(sw[k], (uint16_t)(p[k * gb] | (p[k * gb + 1] << 8)), "group %lld",
                     (long long)k);
    pq_free(p);
    pq_free(m);
    pq_free(views);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
    pq_graph_destroy(g0);
}

/* A weight rotated offline (note with original and seed): the record measures the un-rotated
 * reconstruction against the original. */
Test(fake_quant, rotated_weight_measured_against_original) {
    pq_error err;
    pq_graph *g = shared_graph(0, -1);
    uint32_t w = pq_graph_find_value(g, "W");
    pq_tensor *orig = pq_tensor_clone(g->values[w].constant, &err);
    /* rotate the view (rows = N, cols = K) of W in place: W is [K, N] stored, transposed view */
    pq_weight_view *views = NULL;
    uint32_t nv = 0;
    cr_assert_eq(pq_weights_find(g, 1024, &views, &nv, &err), PQ_OK);
    float *m = NULL;
    cr_assert_eq(pq_weight_view_read(g, &views[0], &m, &err), PQ_OK);
    cr_assert_eq(pq_rotate_view_in(m, 32, 32, 1, 7, false, &err), PQ_OK);
    cr_assert_eq(pq_weight_view_write(g, &views[0], m, &err), PQ_OK);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_weight_note *note = pq_pass_note(&ctx, "W");
    note->original = orig;
    note->rotated_in = true;
    note->seed_in = 7;
    cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, "{group: 32}", &ctx, true, &err), PQ_OK,
                 "%s", err.msg);
    const pq_quant_record *r = find_record(&ctx, "W");
    cr_assert(r && r->rotated);
    /* expected: quantize rotated view, dequantize, rotate back, compare with the original */
    size_t bytes = pq_packed_bytes(PQ_QFORMAT_PIQ3, 32, 32, 32);
    uint8_t *p = pq_malloc(bytes);
    float wh[1024], steps[32];
    cr_assert_eq(
        pq_quantize_matrix("W", m, 32, 32, PQ_QFORMAT_PIQ3, 32, PQ_CALIB_MSE, NULL, p, &err),
        PQ_OK);
    cr_assert_eq(pq_dequantize_matrix(p, 32, 32, PQ_QFORMAT_PIQ3, 32, wh, &err), PQ_OK);
    cr_assert_eq(pq_packed_group_steps(p, 32, 32, PQ_QFORMAT_PIQ3, 32, steps, &err), PQ_OK);
    cr_assert_eq(pq_rotate_view_in(wh, 32, 32, 1, 7, true, &err), PQ_OK);
    float ov[1024];
    const float *od = orig->data;
    for (int r0 = 0; r0 < 32; r0++)
        for (int k = 0; k < 32; k++)
            ov[r0 * 32 + k] = od[k * 32 + r0];
    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    cr_assert_eq(pq_metrics_acc_add(&acc, ov, wh, 32, 32, 32, steps, &err), PQ_OK);
    cr_assert_eq(r->sum_e2, acc.sum_e2);
    cr_assert_eq(r->sum_w2, acc.sum_w2);
    cr_assert_eq(r->dot, acc.dot);
    cr_assert_eq(r->outliers_kept, acc.outliers_kept);
    pq_free(p);
    pq_free(m);
    pq_free(views);
    pq_pass_ctx_free(&ctx);
    pq_graph_destroy(g);
}

Test(fake_quant, f16_and_int8_formats) {
    static const char *const fmts[2] = {"{format: f16}", "{format: int8}"};
    for (int k = 0; k < 2; k++) {
        pq_error err;
        pq_graph *g = shared_graph(0, -1);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, fmts[k], &ctx, true, &err), PQ_OK,
                     "%s: %s", fmts[k], err.msg);
        cr_assert_eq(ctx.n_records, 1u);
        const pq_quant_record *r = &ctx.records[0];
        cr_assert_eq(r->group, 0);
        cr_assert_str_eq(r->calib, "-");
        cr_assert_eq(r->stored_bytes, k == 0 ? 2048u : 1024u + 4u * 32u);
        const pq_node *fq = &g->nodes[find_fq(g, "W")];
        cr_assert_eq(pq_node_input(fq, 1) == PQ_NONE, k == 0, "%s: scales input", fmts[k]);
        pq_tensor **outs = NULL;
        int64_t xd[2] = {4, 32};
        pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, xd, &err);
        outs = pq_test_run(g, x);
        cr_assert(isfinite(((const float *)outs[0]->data)[0]));
        pq_test_free_outputs(outs, g->n_outputs);
        pq_tensor_destroy(x);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
    }
}

/* hadamard then fake-quant on real models (Conv: rotation over input channels at every kernel
 * position; MatMul/Gemm: over input features): each record's reference is the original weight
 * (sum w^2 equal to the un-rotated weight's, exactly) and the reconstruction was rotated back
 * (SD well below 0 dB; a wrong un-rotation gives about +3 dB). */
Test(fake_quant, after_hadamard_metrics_against_original) {
    const pq_pass *had = pq_pass_find("hadamard");
    if (!had) cr_skip_test("hadamard pass not registered");
    static const char *const models[2] = {"tests/models/cnn_bn/model.onnx",
                                          "tests/models/transformer17/model.onnx"};
    for (int mi = 0; mi < 2; mi++) {
        pq_error err;
        pq_error_clear(&err);
        pq_graph *g0 = pq_test_load_onnx(models[mi]);
        pq_graph *g = pq_test_load_onnx(models[mi]);
        pq_pass_ctx ctx;
        pq_pass_ctx_init(&ctx);
        ctx.verbose = 0;
        cr_assert_eq(pq_test_run_pass(g, had, NULL, &ctx, true, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(pq_test_run_pass(g, &pq_pass_fake_quant, NULL, &ctx, true, &err), PQ_OK, "%s",
                     err.msg);
        uint32_t rotated = 0;
        for (uint32_t i = 0; i < ctx.n_records; i++) {
            const pq_quant_record *r = &ctx.records[i];
            if (!r->rotated) continue;
            rotated++;
            const pq_weight_note *note = pq_pass_find_note(&ctx, r->value_name);
            cr_assert(note && note->original);
            uint32_t v0 = pq_graph_find_value(g0, r->value_name);
            const pq_tensor *t = v0 != PQ_NONE ? g0->values[v0].constant : note->original;
            cr_assert_eq(pq_tensor_numel(t), r->n);
            double sw = 0;
            /* sum of squares in the view's order: same terms, same order for row-major views;
             * transposed views sum the same terms in another order, so compare with a bound */
            const float *d = t->data;
            for (int64_t k = 0; k < r->n; k++)
                sw += (double)d[k] * (double)d[k];
            cr_assert(fabs(sw - r->sum_w2) <= 1e-12 * sw, "'%s': sum w^2 %.17g vs %.17g",
                      r->value_name, sw, r->sum_w2);
            double sd = 10.0 * log10(r->sum_e2 / r->sum_w2);
            cr_assert(sd < -10.0, "'%s': SD %.2f dB after un-rotation", r->value_name, sd);
        }
        cr_assert(rotated > 0, "%s: nothing rotated", models[mi]);
        pq_pass_ctx_free(&ctx);
        pq_graph_destroy(g);
        pq_graph_destroy(g0);
    }
}
