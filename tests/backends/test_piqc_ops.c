/* Tests of piqc's own ops: Hadamard vs pq_rht_forward per fiber (bit-exact, every ISA), FakeQuant
 * bit-exact vs pack + dequantize, PackedMatMul / PackedConv vs dequantize + reference MatMul / Conv
 * (every ISA), inference errors naming the node, and text IR round trip. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/piqc_ops.h"
#include "backends/quant/fwht.h"
#include "backends/quant/quant.h"
#include "piqc_harness.h"
#include "skip_note.h"

/* ---- harness (declared in piqc_harness.h) ---- */

pq_tensor *pq_tp_tensor(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

pq_tensor *pq_tp_rand(int rank, const int64_t *dims, uint32_t seed, float scale) {
    pq_tensor *t = pq_tp_tensor(PQ_DTYPE_F32, rank, dims);
    uint32_t s = seed * 2654435761u + 7u;
    float *p = t->data;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f) * scale;
    }
    return t;
}

pq_tp pq_tp_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in) {
    pq_error err;
    pq_tp t;
    t.g = pq_graph_create(NULL, &err);
    cr_assert_not_null(t.g);
    uint32_t ins[8], out;
    for (uint32_t i = 0; i < n_in; i++) {
        ins[i] = PQ_NONE;
        if (!in[i]) continue;
        cr_assert_eq(pq_graph_add_value(t.g, NULL, in[i]->dtype, NULL, &ins[i], &err), PQ_OK);
        pq_tensor *c = pq_tensor_clone(in[i], &err);
        cr_assert_not_null(c);
        cr_assert_eq(pq_graph_set_constant(t.g, ins[i], c, &err), PQ_OK, "%s", err.msg);
    }
    cr_assert_eq(pq_graph_add_value(t.g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(t.g, op, "n0", ins, n_in, &out, 1, &t.nid, &err), PQ_OK, "%s",
                 err.msg);
    return t;
}

void pq_tp_int(pq_tp *t, const char *name, int64_t v) {
    pq_error err;
    cr_assert_eq(pq_node_set_int(t->g, t->nid, name, v, &err), PQ_OK);
}
void pq_tp_float(pq_tp *t, const char *name, float v) {
    pq_error err;
    cr_assert_eq(pq_node_set_float(t->g, t->nid, name, v, &err), PQ_OK);
}
void pq_tp_str(pq_tp *t, const char *name, const char *v) {
    pq_error err;
    cr_assert_eq(pq_node_set_string(t->g, t->nid, name, v, &err), PQ_OK);
}
void pq_tp_ints(pq_tp *t, const char *name, const int64_t *v, uint32_t n) {
    pq_error err;
    cr_assert_eq(pq_node_set_ints(t->g, t->nid, name, v, n, &err), PQ_OK);
}

enum pq_status pq_tp_run(pq_tp *t, pq_kernel_fn fn, pq_tensor **out, pq_error *err) {
    *out = NULL;
    pq_error_clear(err);
    const pq_node *n = &t->g->nodes[t->nid];
    PQ_TRY(pq_infer_node(t->g, t->nid, err));
    const pq_tensor *in[8];
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] == PQ_NONE ? NULL : t->g->values[n->inputs[i]].constant;
    const pq_value *v = &t->g->values[n->outputs[0]];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&v->shape, dims), "output shape not static");
    *out = pq_tp_tensor(v->dtype, v->shape.rank, dims);
    memset((*out)->data, 0xFF, (*out)->nbytes);
    pq_tensor *outs[1] = {*out};
    pq_kernel_args a = {t->g, n, in, n->n_inputs, outs, 1, NULL, 1, err};
    return fn ? fn(&a) : pq_ref_run(&a);
}

void pq_tp_free(pq_tp *t) {
    pq_graph_destroy(t->g);
    t->g = NULL;
}

/* ---- ISA sweep ---- */

static const char *const k_isas[] = {"scalar", "avx2", "avx512"};
#define N_ISAS 3
static const pq_qkernels *g_isa;

static enum pq_status run_hadamard_isa(const pq_kernel_args *a) {
    return pq_piqc_hadamard_run(g_isa, a);
}
static enum pq_status run_pmm_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_matmul_run(g_isa, a);
}
static enum pq_status run_pconv_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_conv_run(g_isa, a);
}

/* Sets g_isa to ISA i's table; false (and a visible note) when this CPU/build lacks it. */
static bool use_isa(int i) {
    g_isa = pq_qkernels_for(k_isas[i]);
    if (!g_isa) PQ_TEST_NOTE("ISA %s not available on this CPU/build: skipped", k_isas[i]);
    return g_isa != NULL;
}

static void assert_same_bits(const pq_tensor *a, const float *want, int64_t n, const char *what) {
    cr_assert_eq(pq_tensor_numel(a), n, "%s: numel", what);
    const float *p = a->data;
    for (int64_t i = 0; i < n; i++)
        cr_assert(memcmp(&p[i], &want[i], sizeof(float)) == 0, "%s: element %lld: %.9g vs %.9g",
                  what, (long long)i, (double)p[i], (double)want[i]);
}

/* ---- Hadamard ---- */

/* Expected forward (or inverse) transform of x along axis, fiber by fiber with pq_rht_*. */
static float *hadamard_expected(const pq_tensor *x, int axis, uint64_t seed, bool inverse) {
    int64_t outer = 1, n = x->dims[axis], inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        inner *= x->dims[i];
    const float *px = x->data;
    float *want = pq_malloc((size_t)pq_tensor_numel(x) * sizeof(float));
    float *fib = pq_malloc((size_t)n * sizeof(float));
    pq_error err;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            for (int64_t i = 0; i < n; i++)
                fib[i] = px[(o * n + i) * inner + j];
            enum pq_status st =
                inverse ? pq_rht_inverse(fib, n, seed, &err) : pq_rht_forward(fib, n, seed, &err);
            cr_assert_eq(st, PQ_OK, "%s", err.msg);
            for (int64_t i = 0; i < n; i++)
                want[(o * n + i) * inner + j] = fib[i];
        }
    pq_free(fib);
    return want;
}

static void check_hadamard(int rank, const int64_t *dims, int axis_attr, uint64_t seed,
                           bool inverse) {
    pq_tensor *x = pq_tp_rand(rank, dims, 11, 2.0f);
    int axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
    float *want = hadamard_expected(x, axis, seed, inverse);
    const pq_tensor *in[1] = {x};
    pq_tp t = pq_tp_node(PQ_OP_HADAMARD, in, 1);
    pq_tp_int(&t, "axis", axis_attr);
    pq_tp_int(&t, "seed", (int64_t)seed);
    if (inverse) pq_tp_int(&t, "inverse", 1);
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    assert_same_bits(y, want, pq_tensor_numel(x), "ref");
    pq_tensor_destroy(y);
    cr_assert_eq(pq_tp_run(&t, pq_kernel_run, &y, &err), PQ_OK, "%s", err.msg);
    assert_same_bits(y, want, pq_tensor_numel(x), "fast");
    pq_tensor_destroy(y);
    for (int i = 0; i < N_ISAS; i++) {
        if (!use_isa(i)) continue;
        cr_assert_eq(pq_tp_run(&t, run_hadamard_isa, &y, &err), PQ_OK, "%s", err.msg);
        assert_same_bits(y, want, pq_tensor_numel(x), k_isas[i]);
        pq_tensor_destroy(y);
    }
    pq_tp_free(&t);
    pq_free(want);
    pq_tensor_destroy(x);
}

Test(piqc_hadamard, last_axis_matches_rht_forward_bit_exact) {
    int64_t d[2] = {5, 64};
    check_hadamard(2, d, -1, 42, false);
    int64_t d3[3] = {2, 3, 1024};
    check_hadamard(3, d3, 2, 7, false);
}

Test(piqc_hadamard, channel_axis_of_nchw_matches_rht_forward_bit_exact) {
    int64_t d[4] = {2, 32, 3, 5};
    check_hadamard(4, d, 1, 42, false);
    int64_t d2[4] = {1, 16, 7, 9};
    check_hadamard(4, d2, -3, 5, true);
}

Test(piqc_hadamard, non_power_of_two_length_uses_blocks) {
    int64_t d[2] = {3, 24}; /* block 8 */
    check_hadamard(2, d, -1, 42, false);
    int64_t d2[3] = {2, 40, 3}; /* block 8, inner axis */
    check_hadamard(3, d2, 1, 9, false);
    int64_t d3[2] = {4, 96}; /* block 32 */
    check_hadamard(2, d3, 1, 3, true);
}

Test(piqc_hadamard, inverse_of_forward_returns_input) {
    int64_t d[4] = {2, 64, 3, 4};
    pq_tensor *x = pq_tp_rand(4, d, 3, 5.0f);
    const pq_tensor *in[1] = {x};
    pq_tp f = pq_tp_node(PQ_OP_HADAMARD, in, 1);
    pq_tp_int(&f, "axis", 1);
    pq_error err;
    pq_tensor *y, *z;
    cr_assert_eq(pq_tp_run(&f, NULL, &y, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *in2[1] = {y};
    pq_tp b = pq_tp_node(PQ_OP_HADAMARD, in2, 1);
    pq_tp_int(&b, "axis", 1);
    pq_tp_int(&b, "inverse", 1);
    cr_assert_eq(pq_tp_run(&b, NULL, &z, &err), PQ_OK, "%s", err.msg);
    const float *px = x->data, *pz = z->data;
    float mx = 0.0f;
    for (int64_t i = 0; i < pq_tensor_numel(x); i++)
        mx = fmaxf(mx, fabsf(px[i]));
    for (int64_t i = 0; i < pq_tensor_numel(x); i++)
        cr_assert(fabsf(pz[i] - px[i]) <= 8.0f * FLT_EPSILON * mx, /* a few ulp of max|x| */
                  "element %lld: %.9g vs %.9g", (long long)i, (double)pz[i], (double)px[i]);
    pq_tensor_destroy(y);
    pq_tensor_destroy(z);
    pq_tp_free(&f);
    pq_tp_free(&b);
    pq_tensor_destroy(x);
}

Test(piqc_hadamard, length_without_block_is_invalid_naming_the_node) {
    int64_t d[2] = {2, 12};
    pq_tensor *x = pq_tp_rand(2, d, 1, 1.0f);
    const pq_tensor *in[1] = {x};
    pq_tp t = pq_tp_node(PQ_OP_HADAMARD, in, 1);
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert_null(y);
    cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "Hadamard") && strstr(err.msg, "12"), "%s",
              err.msg);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
}

/* ---- FakeQuant ---- */

/* The rows x cols weight view of w as a dense matrix (batch matrices stacked). */
static float *view_matrix(const pq_tensor *w, bool tr, int64_t *batch, int64_t *rows,
                          int64_t *cols) {
    pq_fake_quant_view(w->rank, w->dims, tr, batch, rows, cols);
    int64_t B = *batch, R = *rows, C = *cols;
    float *m = pq_malloc((size_t)(B * R * C) * sizeof(float));
    const float *p = w->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++)
                m[(b * R + r) * C + c] = tr ? p[b * R * C + c * R + r] : p[r * C + c];
    return m;
}

static void check_fake_quant_packed(enum pq_qformat f, int rank, const int64_t *dims, bool tr,
                                    int64_t qgroup, uint32_t seed) {
    pq_tensor *w = pq_tp_rand(rank, dims, seed, 1.5f);
    int64_t B, R, C;
    float *m = view_matrix(w, tr, &B, &R, &C);
    size_t nb = pq_packed_bytes(f, B * R, C, qgroup);
    uint8_t *packed = pq_malloc(nb);
    float *deq = pq_malloc((size_t)(B * R * C) * sizeof(float));
    pq_error err;
    cr_assert_eq(pq_quantize_matrix("w", m, B * R, C, f, qgroup, PQ_CALIB_MSE, NULL, packed, &err),
                 PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_dequantize_matrix(packed, B * R, C, f, qgroup, deq, &err), PQ_OK);
    /* scale words out of the packed rows */
    int64_t ng = (C + qgroup - 1) / qgroup;
    int64_t sd[2] = {B * R, ng};
    pq_tensor *s = pq_tp_tensor(PQ_DTYPE_F16, 2, sd);
    uint16_t *ps = s->data;
    size_t rb = pq_packed_row_bytes(f, C, qgroup);
    for (int64_t r = 0; r < B * R; r++) {
        const uint8_t *row = packed + (size_t)r * rb;
        for (int64_t g = 0; g < ng; g++) {
            ps[r * ng + g] = (uint16_t)(row[0] | row[1] << 8);
            int64_t n = C - g * qgroup < qgroup ? C - g * qgroup : qgroup;
            row += 2 + pq_packed_code_bytes(f, n);
        }
    }
    const pq_tensor *in[2] = {w, s};
    pq_tp t = pq_tp_node(PQ_OP_FAKE_QUANT, in, 2);
    pq_tp_str(&t, "format", pq_qformat_name(f));
    pq_tp_int(&t, "qgroup", qgroup);
    pq_tp_int(&t, "transposed", tr);
    pq_tp_str(&t, "ste", "lsq");
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(y->rank, w->rank);
    /* back to w's layout for comparison */
    float *want = pq_malloc((size_t)(B * R * C) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++)
                want[tr ? b * R * C + c * R + r : r * C + c] = deq[(b * R + r) * C + c];
    assert_same_bits(y, want, B * R * C, pq_qformat_name(f));
    pq_tensor_destroy(y);
    pq_tp_free(&t);
    pq_free(want);
    pq_tensor_destroy(s);
    pq_free(deq);
    pq_free(packed);
    pq_free(m);
    pq_tensor_destroy(w);
}

Test(piqc_fake_quant, packed_formats_bit_exact_vs_pack_dequantize) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        int64_t d1[3] = {5, 3, 7}; /* rows 5, cols 21: partial last group of 5 at G=16 */
        check_fake_quant_packed((enum pq_qformat)f, 3, d1, false, 16, 1 + f);
        int64_t d2[2] = {9, 300}; /* G = 256: one full + one partial group */
        check_fake_quant_packed((enum pq_qformat)f, 2, d2, false, 256, 5 + f);
        int64_t d3[3] = {2, 20, 6}; /* transposed batch: 2 x (6 rows x 20 cols), partial group */
        check_fake_quant_packed((enum pq_qformat)f, 3, d3, true, 8, 9 + f);
        int64_t d4[2] = {37, 11}; /* transposed MatMul weight [K, N] */
        check_fake_quant_packed((enum pq_qformat)f, 2, d4, true, 32, 13 + f);
    }
}

Test(piqc_fake_quant, int8_bit_exact_vs_int8_quantize) {
    for (int tr = 0; tr < 2; tr++) {
        int64_t d[3] = {3, 10, 6};
        pq_tensor *w = pq_tp_rand(3, d, 21 + tr, 3.0f);
        int64_t B, R, C;
        float *m = view_matrix(w, tr, &B, &R, &C);
        int8_t *q = pq_malloc((size_t)(B * R * C));
        int64_t sd[1] = {B * R};
        pq_tensor *s = pq_tp_tensor(PQ_DTYPE_F32, 1, sd);
        pq_error err;
        cr_assert_eq(pq_int8_quantize_weights("w", m, B * R, C, q, s->data, &err), PQ_OK);
        float *want = pq_malloc((size_t)(B * R * C) * sizeof(float));
        const float *ps = s->data;
        for (int64_t b = 0; b < B; b++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t c = 0; c < C; c++)
                    want[tr ? b * R * C + c * R + r : r * C + c] =
                        (float)q[(b * R + r) * C + c] * ps[b * R + r];
        const pq_tensor *in[2] = {w, s};
        pq_tp t = pq_tp_node(PQ_OP_FAKE_QUANT, in, 2);
        pq_tp_str(&t, "format", "int8");
        pq_tp_int(&t, "transposed", tr);
        pq_tensor *y;
        cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
        assert_same_bits(y, want, B * R * C, "int8");
        pq_tensor_destroy(y);
        pq_tp_free(&t);
        pq_free(want);
        pq_free(q);
        pq_free(m);
        pq_tensor_destroy(s);
        pq_tensor_destroy(w);
    }
}

Test(piqc_fake_quant, f16_rounds_through_the_repo_conversion) {
    int64_t d[2] = {4, 33};
    pq_tensor *w = pq_tp_rand(2, d, 4, 70000.0f); /* includes values beyond f16 range */
    float *want = pq_malloc(4 * 33 * sizeof(float));
    const float *pw = w->data;
    for (int i = 0; i < 4 * 33; i++)
        want[i] = pq_f16_to_f32(pq_f32_to_f16(pw[i]));
    const pq_tensor *in[2] = {w, NULL};
    pq_tp t = pq_tp_node(PQ_OP_FAKE_QUANT, in, 2);
    pq_tp_str(&t, "format", "f16");
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    assert_same_bits(y, want, 4 * 33, "f16");
    pq_tensor_destroy(y);
    pq_tp_free(&t);
    pq_free(want);
    pq_tensor_destroy(w);
}

Test(piqc_fake_quant, bad_scales_and_format_are_invalid) {
    int64_t d[2] = {4, 20}, sd[2] = {4, 2};
    pq_tensor *w = pq_tp_rand(2, d, 4, 1.0f);
    pq_tensor *s = pq_tp_tensor(PQ_DTYPE_F16, 2, sd); /* needs [4, 3] at G = 8 */
    const pq_tensor *in[2] = {w, s};
    pq_tp t = pq_tp_node(PQ_OP_FAKE_QUANT, in, 2);
    pq_tp_str(&t, "format", "piq3");
    pq_tp_int(&t, "qgroup", 8);
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "scales"), "%s", err.msg);
    pq_tp_str(&t, "format", "piq4");
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piq4"), "%s", err.msg);
    pq_tp_free(&t);
    pq_tensor_destroy(s);
    pq_tensor_destroy(w);
}

/* ---- PackedMatMul ---- */

/* Packs a random rows x cols weight; *what receives w_hat (rows x cols). */
static pq_tensor *make_packed(enum pq_qformat f, int64_t rows, int64_t cols, int64_t qgroup,
                              uint32_t seed, float **w_hat) {
    int64_t d[2] = {rows, cols};
    pq_tensor *w = pq_tp_rand(2, d, seed, 0.5f);
    int64_t nd[1] = {(int64_t)pq_packed_bytes(f, rows, cols, qgroup)};
    pq_tensor *p = pq_tp_tensor(PQ_DTYPE_U8, 1, nd);
    pq_error err;
    cr_assert_eq(
        pq_quantize_matrix("w", w->data, rows, cols, f, qgroup, PQ_CALIB_MSE, NULL, p->data, &err),
        PQ_OK, "%s", err.msg);
    *w_hat = pq_malloc((size_t)(rows * cols) * sizeof(float));
    cr_assert_eq(pq_dequantize_matrix(p->data, rows, cols, f, qgroup, *w_hat, &err), PQ_OK);
    pq_tensor_destroy(w);
    return p;
}

static void set_packed_attrs(pq_tp *t, enum pq_qformat f, int64_t qgroup, int64_t rows,
                             int64_t cols) {
    pq_tp_str(t, "format", pq_qformat_name(f));
    pq_tp_int(t, "qgroup", qgroup);
    pq_tp_int(t, "rows", rows);
    pq_tp_int(t, "cols", cols);
}

/* |got - want| <= 1e-5 * bound + 1e-6: float accumulation order differs between kernels, so the
 * tolerance is relative to bound = sum |w_hat| |x| (+ |bias|) of each output. */
static void assert_close_bound(const pq_tensor *y, const pq_tensor *want, const float *bound,
                               const char *what) {
    cr_assert_eq(pq_tensor_numel(y), pq_tensor_numel(want), "%s", what);
    const float *a = y->data, *b = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(y); i++)
        cr_assert(fabsf(a[i] - b[i]) <= 1e-5f * bound[i] + 1e-6f, "%s: element %lld: %.9g vs %.9g",
                  what, (long long)i, (double)a[i], (double)b[i]);
}

static void check_packed_matmul(enum pq_qformat f, int rank, const int64_t *xd, int64_t N,
                                int64_t qgroup, bool bias) {
    int64_t K = xd[rank - 1];
    float *wh;
    pq_tensor *pw = make_packed(f, N, K, qgroup, 31, &wh);
    pq_tensor *x = pq_tp_rand(rank, xd, 32, 1.0f);
    int64_t bd[1] = {N}, wtd[2] = {K, N};
    pq_tensor *b = bias ? pq_tp_rand(1, bd, 33, 1.0f) : NULL;
    /* reference: MatMul(x, W_hat^T) (+ bias) with the reference kernels */
    pq_tensor *wt = pq_tp_tensor(PQ_DTYPE_F32, 2, wtd);
    float *pwt = wt->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            pwt[k * N + n] = wh[n * K + k];
    const pq_tensor *mi[2] = {x, wt};
    pq_tp mm = pq_tp_node(PQ_OP_MATMUL, mi, 2);
    pq_error err;
    pq_tensor *want;
    cr_assert_eq(pq_tp_run(&mm, NULL, &want, &err), PQ_OK, "%s", err.msg);
    int64_t M = pq_tensor_numel(x) / K;
    float *bound = pq_malloc((size_t)(M * N) * sizeof(float));
    const float *px = x->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += fabs((double)wh[n * K + k] * px[m * K + k]);
            if (b) {
                ((float *)want->data)[m * N + n] += ((const float *)b->data)[n];
                s += fabs(((const float *)b->data)[n]);
            }
            bound[m * N + n] = (float)s;
        }
    const pq_tensor *in[3] = {x, pw, b};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, bias ? 3 : 2);
    set_packed_attrs(&t, f, qgroup, N, K);
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(y->rank, rank);
    cr_assert_eq(y->dims[rank - 1], N);
    assert_close_bound(y, want, bound, "ref");
    pq_tensor_destroy(y);
    cr_assert_eq(pq_tp_run(&t, pq_kernel_run, &y, &err), PQ_OK, "%s", err.msg);
    assert_close_bound(y, want, bound, "fast");
    pq_tensor_destroy(y);
    for (int i = 0; i < N_ISAS; i++) {
        if (!use_isa(i)) continue;
        cr_assert_eq(pq_tp_run(&t, run_pmm_isa, &y, &err), PQ_OK, "%s", err.msg);
        assert_close_bound(y, want, bound, k_isas[i]);
        pq_tensor_destroy(y);
    }
    pq_tp_free(&t);
    pq_tp_free(&mm);
    pq_free(bound);
    pq_tensor_destroy(want);
    pq_tensor_destroy(wt);
    pq_tensor_destroy(b);
    pq_tensor_destroy(x);
    pq_tensor_destroy(pw);
    pq_free(wh);
}

Test(piqc_packed_matmul, gemv_m1_every_isa_vs_dequantized_matmul) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        int64_t xd[1] = {40};
        check_packed_matmul((enum pq_qformat)f, 1, xd, 9, 16, true);
        int64_t xd2[2] = {1, 300};
        check_packed_matmul((enum pq_qformat)f, 2, xd2, 17, 256, false);
    }
}

Test(piqc_packed_matmul, gemm_m_gt_1_every_isa_vs_dequantized_matmul) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        int64_t xd[2] = {5, 40};
        check_packed_matmul((enum pq_qformat)f, 2, xd, 9, 16, true);
        int64_t xd3[3] = {2, 3, 72};
        check_packed_matmul((enum pq_qformat)f, 3, xd3, 33, 32, false);
    }
}

Test(piqc_packed_matmul, wrong_bytes_or_k_is_invalid_naming_the_node) {
    float *wh;
    pq_tensor *pw = make_packed(PQ_QFORMAT_PIQ3, 8, 32, 16, 1, &wh);
    int64_t xd[2] = {2, 32};
    pq_tensor *x = pq_tp_rand(2, xd, 2, 1.0f);
    const pq_tensor *in[2] = {x, pw};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, 2);
    set_packed_attrs(&t, PQ_QFORMAT_PIQ3, 16, 9, 32); /* rows 9: byte count disagrees */
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "PackedMatMul") &&
                  strstr(err.msg, "bytes"),
              "%s", err.msg);
    set_packed_attrs(&t, PQ_QFORMAT_PIQ3, 16, 16, 16); /* same bytes, K disagrees with x */
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "cols"), "%s", err.msg);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
    pq_tensor_destroy(pw);
    pq_free(wh);
}

/* ---- PackedConv ---- */

typedef struct pconv_case {
    int nsp;
    int64_t n, c, m, group, in[2], k[2], s, p;
} pconv_case;

static void check_packed_conv(const pconv_case *cc, enum pq_qformat f, int64_t qgroup) {
    int64_t cg = cc->c / cc->group, kk = 1;
    for (int i = 0; i < cc->nsp; i++)
        kk *= cc->k[i];
    int64_t cols = cg * kk;
    float *wh;
    pq_tensor *pw = make_packed(f, cc->m, cols, qgroup, 41, &wh);
    int64_t xd[4] = {cc->n, cc->c}, wd[4] = {cc->m, cg}, bd[1] = {cc->m};
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    pq_tensor *x = pq_tp_rand(cc->nsp + 2, xd, 42, 1.0f);
    pq_tensor *b = pq_tp_rand(1, bd, 43, 1.0f);
    pq_tensor *w = pq_tp_tensor(PQ_DTYPE_F32, cc->nsp + 2, wd);
    memcpy(w->data, wh, (size_t)(cc->m * cols) * sizeof(float));
    int64_t ks[2] = {cc->k[0], cc->k[1]}, st[2] = {cc->s, cc->s};
    int64_t pads[4] = {cc->p, cc->p, cc->p, cc->p};
    const pq_tensor *ci[3] = {x, w, b};
    pq_tp conv = pq_tp_node(PQ_OP_CONV, ci, 3);
    const pq_tensor *in[3] = {x, pw, b};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_CONV, in, 3);
    pq_tp *both[2] = {&conv, &t};
    for (int j = 0; j < 2; j++) {
        pq_tp_ints(both[j], "kernel_shape", ks, (uint32_t)cc->nsp);
        pq_tp_ints(both[j], "strides", st, (uint32_t)cc->nsp);
        pq_tp_ints(both[j], "pads", pads, 2u * (uint32_t)cc->nsp);
        pq_tp_int(both[j], "group", cc->group);
    }
    set_packed_attrs(&t, f, qgroup, cc->m, cols);
    pq_error err;
    pq_tensor *want, *y;
    cr_assert_eq(pq_tp_run(&conv, NULL, &want, &err), PQ_OK, "%s", err.msg);
    /* bound: sum |w| |x| over the window (upper bound: max|x| = 1) + |b| */
    int64_t osp = pq_tensor_numel(want) / (cc->n * cc->m);
    float *bound = pq_malloc((size_t)pq_tensor_numel(want) * sizeof(float));
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++) {
            double s = fabs(((const float *)b->data)[m]);
            for (int64_t c = 0; c < cols; c++)
                s += fabs(wh[m * cols + c]);
            for (int64_t o = 0; o < osp; o++)
                bound[(n * cc->m + m) * osp + o] = (float)s;
        }
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(y->rank, want->rank);
    for (int i = 0; i < y->rank; i++)
        cr_assert_eq(y->dims[i], want->dims[i]);
    assert_close_bound(y, want, bound, "ref");
    pq_tensor_destroy(y);
    cr_assert_eq(pq_tp_run(&t, pq_kernel_run, &y, &err), PQ_OK, "%s", err.msg);
    assert_close_bound(y, want, bound, "fast");
    pq_tensor_destroy(y);
    for (int i = 0; i < N_ISAS; i++) {
        if (!use_isa(i)) continue;
        cr_assert_eq(pq_tp_run(&t, run_pconv_isa, &y, &err), PQ_OK, "%s", err.msg);
        assert_close_bound(y, want, bound, k_isas[i]);
        pq_tensor_destroy(y);
    }
    pq_free(bound);
    pq_tp_free(&t);
    pq_tp_free(&conv);
    pq_tensor_destroy(want);
    pq_tensor_destroy(w);
    pq_tensor_destroy(b);
    pq_tensor_destroy(x);
    pq_tensor_destroy(pw);
    pq_free(wh);
}

Test(piqc_packed_conv, conv2d_3x3_pad1_stride1_and_2_every_isa) {
    pconv_case c1 = {2, 2, 3, 8, 1, {9, 7}, {3, 3}, 1, 1};
    pconv_case c2 = {2, 1, 4, 6, 1, {10, 11}, {3, 3}, 2, 1};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        check_packed_conv(&c1, (enum pq_qformat)f, 16); /* cols 27: partial group */
        check_packed_conv(&c2, (enum pq_qformat)f, 256);
    }
}

Test(piqc_packed_conv, grouped_and_1d_every_isa) {
    pconv_case g2 = {2, 2, 4, 6, 2, {6, 5}, {3, 3}, 1, 1};  /* group 2 */
    pconv_case d1 = {1, 2, 5, 7, 1, {13, 1}, {5, 1}, 2, 2}; /* 1-D */
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        check_packed_conv(&g2, (enum pq_qformat)f, 8);
        check_packed_conv(&d1, (enum pq_qformat)f, 8);
    }
}

/* Many images: im2col tiles run across image boundaries (cols 72: 910 positions a tile, 1440 in
 * all), 20 output channels (panel tails); a 5-wide kernel takes the generic window copy. */
Test(piqc_packed_conv, batched_tiles_across_images_every_isa) {
    pconv_case b40 = {2, 40, 8, 20, 1, {6, 6}, {3, 3}, 1, 1};
    pconv_case k5 = {2, 3, 2, 5, 1, {9, 8}, {5, 5}, 1, 2};
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        check_packed_conv(&b40, (enum pq_qformat)f, 32);
        check_packed_conv(&k5, (enum pq_qformat)f, 8);
    }
}

/* ---- op table, importer and text IR ---- */

Test(piqc_ops, are_internal_ops_with_rules_and_kernels) {
    enum pq_op ops[4] = {PQ_OP_HADAMARD, PQ_OP_FAKE_QUANT, PQ_OP_PACKED_MAT_MUL, PQ_OP_PACKED_CONV};
    for (int i = 0; i < 4; i++) {
        cr_assert(pq_op_get(ops[i])->flags & PQ_OPF_INTERNAL, "%s", pq_op_name(ops[i]));
        cr_assert_not_null(pq_infer_table[ops[i]]);
        cr_assert_not_null(pq_ref_kernels[ops[i]]);
    }
}

Test(piqc_ops, text_ir_round_trip) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t x, y, z, n0, n1;
    int64_t d[2] = {2, 16};
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, NULL, &x, &err), PQ_OK);
    g->values[x].shape.rank = 2;
    g->values[x].shape.dims[0] = pq_dim_of(d[0]);
    g->values[x].shape.dims[1] = pq_dim_of(d[1]);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_value(g, "y", PQ_DTYPE_UNDEFINED, NULL, &y, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_value(g, "z", PQ_DTYPE_UNDEFINED, NULL, &z, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_HADAMARD, "rot", &x, 1, &y, 1, &n0, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, n0, "seed", 7, &err), PQ_OK);
    uint32_t fin[2] = {y, PQ_NONE};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_FAKE_QUANT, "fq", fin, 2, &z, 1, &n1, &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(g, n1, "format", "f16", &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, z, &err), PQ_OK);
    cr_assert_eq(pq_graph_infer_shapes(g, &err), PQ_OK, "%s", err.msg);
    char *t1 = NULL, *t2 = NULL;
    cr_assert_eq(pq_text_print_string(g, NULL, &t1, &err), PQ_OK, "%s", err.msg);
    cr_assert(strstr(t1, "Hadamard") && strstr(t1, "FakeQuant"), "%s", t1);
    pq_graph *h = NULL;
    cr_assert_eq(pq_text_parse(t1, strlen(t1), NULL, 0, &h, &err), PQ_OK, "%s\n%s", err.msg, t1);
    cr_assert_eq(pq_text_print_string(h, NULL, &t2, &err), PQ_OK);
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(h->nodes[0].op, PQ_OP_HADAMARD);
    pq_free(t1);
    pq_free(t2);
    pq_graph_destroy(h);
    pq_graph_destroy(g);
}
