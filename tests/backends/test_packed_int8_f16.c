/* Tests of the int8 / f16 weight kernels (backends/packed_int8.h, packed_f16.h) and of
 * PackedMatMul / PackedConv with format int8 / f16: every ISA vs the scalar reference vs a
 * dequantize + reference MatMul / Conv oracle, sizes with tails, M = 1 and M > 1, guards. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/packed_f16.h"
#include "backends/packed_int8.h"
#include "backends/packed_panel.h"
#include "backends/packed_wide.h"
#include "backends/piqc_ops.h"
#include "piqc_harness.h"
#include "skip_note.h"

static const char *const k_isas[] = {"scalar", "avx2", "avx512"};
#define N_ISAS 3
#define GUARD 16
#define POISON 0x7fc0dead /* a NaN pattern */

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Uniform in [-a, a). */
static float frand(uint32_t *s, float a) {
    return ((float)lcg(s) / (float)(1u << 24) * 2.0f - 1.0f) * a;
}

/* n floats after an offset of `mis` floats (misaligned when mis is odd) with GUARD poisoned
 * floats after; returns the usable pointer, *base the allocation. */
static float *guarded(int64_t n, int mis, float **base) {
    *base = pq_malloc((size_t)(n + mis + GUARD) * sizeof(float));
    cr_assert_not_null(*base);
    float *p = *base + mis;
    uint32_t poison = POISON;
    for (int64_t i = 0; i < n + GUARD; i++)
        memcpy(&p[i], &poison, 4);
    return p;
}

static void assert_guard(const float *p, int64_t n, const char *what) {
    uint32_t poison = POISON;
    for (int64_t i = n; i < n + GUARD; i++)
        cr_assert(memcmp(&p[i], &poison, 4) == 0, "%s: wrote past the end (element %lld)", what,
                  (long long)i);
}

/* One weight of rows x cols: int8 codes + scales, or f16 bits; w_hat the f32 values the fake-quant
 * graph uses ((float)q * s, or f32(h)). */
typedef struct wcase {
    bool int8;
    int64_t rows, cols;
    int8_t *q;
    float *s;
    uint16_t *h;
    float *w_hat;
} wcase;

static wcase make_w(bool int8, int64_t rows, int64_t cols, uint32_t seed) {
    wcase w = {int8, rows, cols, NULL, NULL, NULL, NULL};
    uint32_t st = seed * 2654435761u + 1u;
    w.w_hat = pq_malloc((size_t)(rows * cols) * sizeof(float));
    if (int8) {
        w.q = pq_malloc((size_t)(rows * cols) + 1);
        w.s = pq_malloc((size_t)rows * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            w.s[r] = 0.001f + (float)(lcg(&st) % 1000) * 1e-5f;
            for (int64_t c = 0; c < cols; c++) {
                int8_t v = (int8_t)((int)(lcg(&st) % 255) - 127); /* [-127, 127] */
                w.q[r * cols + c] = v;
                w.w_hat[r * cols + c] = (float)v * w.s[r];
            }
        }
    } else {
        w.h = pq_malloc((size_t)(rows * cols) * 2 + 2);
        for (int64_t i = 0; i < rows * cols; i++) {
            w.h[i] = pq_f32_to_f16(frand(&st, 0.5f));
            w.w_hat[i] = pq_f16_to_f32(w.h[i]);
        }
    }
    return w;
}

static void free_w(wcase *w) {
    pq_free(w->q);
    pq_free(w->s);
    pq_free(w->h);
    pq_free(w->w_hat);
}

/* |got - want| <= 1e-5 * sum_c |x| |w_hat| + 1e-6 for each of M x rows outputs. */
static void check_vs_oracle(const wcase *w, const float *x, int64_t M, const float *y,
                            const char *what) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t r = 0; r < w->rows; r++) {
            double want = 0, bound = 0;
            for (int64_t c = 0; c < w->cols; c++) {
                want += (double)x[m * w->cols + c] * w->w_hat[r * w->cols + c];
                bound += fabs((double)x[m * w->cols + c] * w->w_hat[r * w->cols + c]);
            }
            double got = y[m * w->rows + r];
            cr_assert(fabs(got - want) <= 1e-5 * bound + 1e-6,
                      "%s rows %lld cols %lld M %lld: y[%lld][%lld] = %.9g, want %.9g (bound %g)",
                      what, (long long)w->rows, (long long)w->cols, (long long)M, (long long)m,
                      (long long)r, got, want, bound);
        }
}

/* Runs gemv (M = 1) or gemm of one ISA on w with misaligned x / weights and guarded y / panel. */
static void run_kernel(const char *isa, const wcase *w, const float *x, int64_t M, float *y) {
    int64_t rows = w->rows, cols = w->cols;
    float *pbase = NULL;
    int64_t pn = pq_panel_rows(rows, cols) * cols;
    float *panel = guarded(pn, 0, &pbase);
    if (w->int8) {
        const pq_w8_kernels *k = pq_w8_kernels_for(isa);
        /* misaligned codes: copy one byte in */
        int8_t *qb = pq_malloc((size_t)(rows * cols) + 1);
        memcpy(qb + 1, w->q, (size_t)(rows * cols));
        if (M == 1)
            k->gemv(qb + 1, w->s, rows, cols, x, y);
        else
            k->gemm(qb + 1, w->s, rows, cols, x, M, y, panel);
        pq_free(qb);
    } else {
        const pq_f16_kernels *k = pq_f16_kernels_for(isa);
        uint16_t *hb = pq_malloc((size_t)(rows * cols + 1) * 2);
        memcpy(hb + 1, w->h, (size_t)(rows * cols) * 2);
        if (M == 1)
            k->gemv(hb + 1, rows, cols, x, y);
        else
            k->gemm(hb + 1, rows, cols, x, M, y, panel);
        pq_free(hb);
    }
    assert_guard(panel, pn, "panel");
    pq_free(pbase);
}

static bool isa_ok(int i, bool int8) {
    bool ok = int8 ? pq_w8_kernels_for(k_isas[i]) != NULL : pq_f16_kernels_for(k_isas[i]) != NULL;
    if (!ok) PQ_TEST_NOTE("ISA %s not available on this CPU/build: skipped", k_isas[i]);
    return ok;
}

static void sweep(bool int8) {
    static const int64_t sizes[] = {1, 7, 31, 257};
    static const int64_t ms[] = {1, 2, 3, 5};
    int n_checked = 0;
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t ci = 0; ci < 4; ci++) {
            int64_t rows = sizes[ri], cols = sizes[ci];
            wcase w = make_w(int8, rows, cols, (uint32_t)(ri * 4 + ci + 1));
            for (size_t mi = 0; mi < 4; mi++) {
                int64_t M = ms[mi];
                float *xb, *rb;
                float *x = guarded(M * cols, 1, &xb);
                uint32_t st = (uint32_t)(M * 77 + rows);
                for (int64_t i = 0; i < M * cols; i++)
                    x[i] = frand(&st, 2.0f);
                float *ref = guarded(M * rows, 0, &rb);
                run_kernel("scalar", &w, x, M, ref);
                assert_guard(ref, M * rows, "scalar y");
                check_vs_oracle(&w, x, M, ref, "scalar");
                for (int i = 1; i < N_ISAS; i++) {
                    if (!isa_ok(i, int8)) continue;
                    float *yb;
                    float *y = guarded(M * rows, 1, &yb);
                    run_kernel(k_isas[i], &w, x, M, y);
                    assert_guard(y, M * rows, k_isas[i]);
                    check_vs_oracle(&w, x, M, y, k_isas[i]);
                    /* and against the scalar reference: same bound (both are f32 sums) */
                    for (int64_t j = 0; j < M * rows; j++) {
                        double bound = 0;
                        int64_t m = j / rows, r = j % rows;
                        for (int64_t c = 0; c < cols; c++)
                            bound += fabs((double)x[m * cols + c] * w.w_hat[r * cols + c]);
                        cr_assert(fabs((double)y[j] - ref[j]) <= 2e-5 * bound + 1e-6,
                                  "%s vs scalar: element %lld: %.9g vs %.9g", k_isas[i],
                                  (long long)j, (double)y[j], (double)ref[j]);
                    }
                    n_checked++;
                    pq_free(yb);
                }
                pq_free(rb);
                pq_free(xb);
            }
            free_w(&w);
        }
    cr_log_info("%s: %d SIMD kernel runs checked", int8 ? "int8" : "f16", n_checked);
}

Test(packed_int8_kernels, every_isa_vs_scalar_vs_dequantized_sizes_with_tails) {
    sweep(true);
}

Test(packed_f16_kernels, every_isa_vs_scalar_vs_dequantized_sizes_with_tails) {
    sweep(false);
}

/* Wide rows: cols 5000 (panel of 4 rows, 20 KB per row) and cols 33 (panel of 496 rows, so
 * rows 1000 takes 3 panels, the last partial). */
Test(packed_int8_kernels, panels_of_few_and_many_rows) {
    int64_t shapes[2][2] = {{9, 5000}, {1000, 33}};
    for (int f = 0; f < 2; f++)
        for (int s = 0; s < 2; s++) {
            wcase w = make_w(f == 0, shapes[s][0], shapes[s][1], 99 + (uint32_t)s);
            int64_t M = 7;
            float *xb, *yb;
            float *x = guarded(M * w.cols, 0, &xb);
            uint32_t st = 5;
            for (int64_t i = 0; i < M * w.cols; i++)
                x[i] = frand(&st, 1.0f);
            float *y = guarded(M * w.rows, 0, &yb);
            for (int i = 0; i < N_ISAS; i++) {
                if (!isa_ok(i, f == 0)) continue;
                run_kernel(k_isas[i], &w, x, M, y);
                assert_guard(y, M * w.rows, k_isas[i]);
                check_vs_oracle(&w, x, M, y, k_isas[i]);
            }
            pq_free(xb);
            pq_free(yb);
            free_w(&w);
        }
}

/* ---- ops ---- */

static const char *g_isa;
static enum pq_status run_pmm_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_matmul_run(pq_qkernels_for(g_isa), a);
}
static enum pq_status run_pconv_isa(const pq_kernel_args *a) {
    return pq_piqc_packed_conv_run(pq_qkernels_for(g_isa), a);
}

/* The weight input(s) of a packed node: codes (i8 [rows*cols]) and scales, or f16 [rows*cols]. */
static void weight_tensors(const wcase *w, pq_tensor **wt, pq_tensor **st) {
    int64_t n[1] = {w->rows * w->cols}, r[1] = {w->rows};
    *wt = pq_tp_tensor(w->int8 ? PQ_DTYPE_I8 : PQ_DTYPE_F16, 1, n);
    memcpy((*wt)->data, w->int8 ? (const void *)w->q : (const void *)w->h, (*wt)->nbytes);
    *st = NULL;
    if (w->int8) {
        *st = pq_tp_tensor(PQ_DTYPE_F32, 1, r);
        memcpy((*st)->data, w->s, (*st)->nbytes);
    }
}

static void assert_close(const pq_tensor *y, const pq_tensor *want, const float *bound,
                         const char *what) {
    cr_assert_eq(pq_tensor_numel(y), pq_tensor_numel(want), "%s", what);
    const float *a = y->data, *b = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(y); i++)
        cr_assert(fabsf(a[i] - b[i]) <= 1e-5f * bound[i] + 1e-6f, "%s: element %lld: %.9g vs %.9g",
                  what, (long long)i, (double)a[i], (double)b[i]);
}

/* Runs node t with the reference table, the fast dispatcher and every ISA; compares to want. */
static void run_all(pq_tp *t, pq_kernel_fn isa_fn, const pq_tensor *want, const float *bound,
                    bool int8) {
    pq_error err;
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    assert_close(y, want, bound, "ref");
    pq_tensor_destroy(y);
    cr_assert_eq(pq_tp_run(t, pq_kernel_run, &y, &err), PQ_OK, "%s", err.msg);
    assert_close(y, want, bound, "fast");
    pq_tensor_destroy(y);
    for (int i = 0; i < N_ISAS; i++) {
        if (!isa_ok(i, int8) || !pq_qkernels_for(k_isas[i])) continue;
        g_isa = k_isas[i];
        cr_assert_eq(pq_tp_run(t, isa_fn, &y, &err), PQ_OK, "%s", err.msg);
        assert_close(y, want, bound, k_isas[i]);
        pq_tensor_destroy(y);
    }
}

static void check_matmul(bool int8, int rank, const int64_t *xd, int64_t N, bool bias) {
    int64_t K = xd[rank - 1];
    wcase w = make_w(int8, N, K, (uint32_t)(N * 3 + K));
    pq_tensor *x = pq_tp_rand(rank, xd, 32, 1.0f);
    int64_t bd[1] = {N}, wtd[2] = {K, N};
    pq_tensor *b = bias ? pq_tp_rand(1, bd, 33, 1.0f) : NULL;
    pq_tensor *wt = pq_tp_tensor(PQ_DTYPE_F32, 2, wtd);
    float *pwt = wt->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            pwt[k * N + n] = w.w_hat[n * K + k];
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
                s += fabs((double)w.w_hat[n * K + k] * px[m * K + k]);
            if (b) {
                ((float *)want->data)[m * N + n] += ((const float *)b->data)[n];
                s += fabs(((const float *)b->data)[n]);
            }
            bound[m * N + n] = (float)s;
        }
    pq_tensor *wq, *sc;
    weight_tensors(&w, &wq, &sc);
    const pq_tensor *in[4] = {x, wq, b, sc};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, int8 ? 4 : (bias ? 3 : 2));
    pq_tp_str(&t, "format", int8 ? "int8" : "f16");
    pq_tp_int(&t, "rows", N);
    pq_tp_int(&t, "cols", K);
    pq_tensor *y;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(y->rank, rank);
    cr_assert_eq(y->dims[rank - 1], N);
    pq_tensor_destroy(y);
    run_all(&t, run_pmm_isa, want, bound, int8);
    pq_tp_free(&t);
    pq_tp_free(&mm);
    pq_free(bound);
    pq_tensor_destroy(want);
    pq_tensor_destroy(wt);
    pq_tensor_destroy(wq);
    pq_tensor_destroy(sc);
    pq_tensor_destroy(b);
    pq_tensor_destroy(x);
    free_w(&w);
}

Test(packed_wide_matmul, int8_and_f16_gemv_and_gemm_vs_dequantized_matmul) {
    for (int f = 0; f < 2; f++) {
        int64_t x1[1] = {40};
        check_matmul(f == 0, 1, x1, 9, true);
        int64_t x2[2] = {1, 257};
        check_matmul(f == 0, 2, x2, 31, false);
        int64_t x3[2] = {5, 31};
        check_matmul(f == 0, 2, x3, 7, true);
        int64_t x4[3] = {2, 3, 72};
        check_matmul(f == 0, 3, x4, 33, false);
    }
}

typedef struct conv_case {
    int nsp;
    int64_t n, c, m, group, in[2], k[2], s, p;
} conv_case;

static void check_conv(bool int8, const conv_case *cc) {
    int64_t cg = cc->c / cc->group, kk = 1;
    for (int i = 0; i < cc->nsp; i++)
        kk *= cc->k[i];
    int64_t cols = cg * kk;
    wcase w = make_w(int8, cc->m, cols, 41);
    int64_t xd[4] = {cc->n, cc->c}, wd[4] = {cc->m, cg}, bd[1] = {cc->m};
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    pq_tensor *x = pq_tp_rand(cc->nsp + 2, xd, 42, 1.0f);
    pq_tensor *b = pq_tp_rand(1, bd, 43, 1.0f);
    pq_tensor *wf = pq_tp_tensor(PQ_DTYPE_F32, cc->nsp + 2, wd);
    memcpy(wf->data, w.w_hat, (size_t)(cc->m * cols) * sizeof(float));
    int64_t ks[2] = {cc->k[0], cc->k[1]}, st[2] = {cc->s, cc->s};
    int64_t pads[4] = {cc->p, cc->p, cc->p, cc->p};
    const pq_tensor *ci[3] = {x, wf, b};
    pq_tp conv = pq_tp_node(PQ_OP_CONV, ci, 3);
    pq_tensor *wq, *sc;
    weight_tensors(&w, &wq, &sc);
    const pq_tensor *in[4] = {x, wq, b, sc};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_CONV, in, int8 ? 4 : 3);
    pq_tp *both[2] = {&conv, &t};
    for (int j = 0; j < 2; j++) {
        pq_tp_ints(both[j], "kernel_shape", ks, (uint32_t)cc->nsp);
        pq_tp_ints(both[j], "strides", st, (uint32_t)cc->nsp);
        pq_tp_ints(both[j], "pads", pads, 2u * (uint32_t)cc->nsp);
        pq_tp_int(both[j], "group", cc->group);
    }
    pq_tp_str(&t, "format", int8 ? "int8" : "f16");
    pq_tp_int(&t, "rows", cc->m);
    pq_tp_int(&t, "cols", cols);
    pq_error err;
    pq_tensor *want;
    cr_assert_eq(pq_tp_run(&conv, NULL, &want, &err), PQ_OK, "%s", err.msg);
    int64_t osp = pq_tensor_numel(want) / (cc->n * cc->m);
    float *bound = pq_malloc((size_t)pq_tensor_numel(want) * sizeof(float));
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++) {
            double s = fabs(((const float *)b->data)[m]);
            for (int64_t c = 0; c < cols; c++)
                s += fabs(w.w_hat[m * cols + c]); /* max |x| = 1 */
            for (int64_t o = 0; o < osp; o++)
                bound[(n * cc->m + m) * osp + o] = (float)s;
        }
    run_all(&t, run_pconv_isa, want, bound, int8);
    pq_free(bound);
    pq_tp_free(&t);
    pq_tp_free(&conv);
    pq_tensor_destroy(want);
    pq_tensor_destroy(wf);
    pq_tensor_destroy(wq);
    pq_tensor_destroy(sc);
    pq_tensor_destroy(b);
    pq_tensor_destroy(x);
    free_w(&w);
}

Test(packed_wide_conv, int8_and_f16_2d_grouped_1d_vs_dequantized_conv) {
    conv_case c1 = {2, 2, 3, 8, 1, {9, 7}, {3, 3}, 1, 1};
    conv_case c2 = {2, 1, 4, 6, 1, {10, 11}, {3, 3}, 2, 1};
    conv_case g2 = {2, 2, 4, 6, 2, {6, 5}, {3, 3}, 1, 1};
    conv_case d1 = {1, 2, 5, 7, 1, {13, 1}, {5, 1}, 2, 2};
    for (int f = 0; f < 2; f++) {
        check_conv(f == 0, &c1);
        check_conv(f == 0, &c2);
        check_conv(f == 0, &g2);
        check_conv(f == 0, &d1);
    }
}

/* Bad inputs are INVALID with the node named: int8 without scales, wrong code dtype or count, f16
 * with scales. */
Test(packed_wide_matmul, bad_inputs_are_invalid_naming_the_node) {
    wcase w = make_w(true, 4, 8, 3);
    pq_tensor *wq, *sc;
    weight_tensors(&w, &wq, &sc);
    int64_t xd[2] = {2, 8}, hd[1] = {32}, bad[1] = {31};
    pq_tensor *x = pq_tp_rand(2, xd, 2, 1.0f);
    pq_tensor *h = pq_tp_tensor(PQ_DTYPE_F16, 1, hd);
    pq_tensor *q31 = pq_tp_tensor(PQ_DTYPE_I8, 1, bad);
    struct {
        const pq_tensor *in[4];
        uint32_t n;
        const char *fmt, *needle;
    } cases[] = {
        {{x, wq, NULL, NULL}, 2, "int8", "scales"}, {{x, h, NULL, sc}, 4, "int8", "i8"},
        {{x, q31, NULL, sc}, 4, "int8", "31"},      {{x, h, NULL, sc}, 4, "f16", "scales"},
        {{x, wq, NULL, NULL}, 2, "f16", "f16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, cases[i].in, cases[i].n);
        pq_tp_str(&t, "format", cases[i].fmt);
        pq_tp_int(&t, "rows", 4);
        pq_tp_int(&t, "cols", 8);
        pq_error err;
        pq_tensor *y;
        cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_ERR_INVALID, "case %zu", i);
        cr_assert(strstr(err.msg, "'n0'") && strstr(err.msg, "PackedMatMul") &&
                      strstr(err.msg, cases[i].needle),
                  "case %zu: %s", i, err.msg);
        pq_tp_free(&t);
    }
    pq_tensor_destroy(q31);
    pq_tensor_destroy(h);
    pq_tensor_destroy(x);
    pq_tensor_destroy(wq);
    pq_tensor_destroy(sc);
    free_w(&w);
}

/* The text IR prints and parses an int8 PackedMatMul with an omitted bias (input 2 empty). */
Test(packed_wide_matmul, text_ir_round_trip_with_omitted_bias) {
    wcase w = make_w(true, 2, 4, 3); /* small: printed inline */
    pq_tensor *wq, *sc;
    weight_tensors(&w, &wq, &sc);
    int64_t xd[2] = {2, 4};
    pq_tensor *x = pq_tp_rand(2, xd, 2, 1.0f);
    const pq_tensor *in[4] = {x, wq, NULL, sc};
    pq_tp t = pq_tp_node(PQ_OP_PACKED_MAT_MUL, in, 4);
    pq_tp_str(&t, "format", "int8");
    pq_tp_int(&t, "rows", 2);
    pq_tp_int(&t, "cols", 4);
    pq_error err;
    cr_assert_eq(pq_graph_infer_shapes(t.g, &err), PQ_OK, "%s", err.msg);
    char *t1 = NULL, *t2 = NULL;
    cr_assert_eq(pq_text_print_string(t.g, NULL, &t1, &err), PQ_OK, "%s", err.msg);
    pq_graph *h = NULL;
    cr_assert_eq(pq_text_parse(t1, strlen(t1), NULL, 0, &h, &err), PQ_OK, "%s\n%s", err.msg, t1);
    cr_assert_eq(pq_text_print_string(h, NULL, &t2, &err), PQ_OK);
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(h->nodes[0].n_inputs, 4u, "%s", t1);
    cr_assert_eq(h->nodes[0].inputs[2], PQ_NONE, "%s", t1);
    pq_free(t1);
    pq_free(t2);
    pq_graph_destroy(h);
    pq_tp_free(&t);
    pq_tensor_destroy(x);
    pq_tensor_destroy(wq);
    pq_tensor_destroy(sc);
    free_w(&w);
}
