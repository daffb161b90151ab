/* AVX2 evaluation of the mse/weighted scale search (SPEC section 4) with results identical, bit for
 * bit, to the scalar definition in calibrate.c: same f32 steps, f32 division, rne, clamp; every
 * candidate's SSE is still a sequential double sum in index order (candidates sit in SIMD lanes,
 * never elements). Speed comes from lanes, one division for both orientations, and pruning. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "backends/quant/quant.h"
#include "ir/dtype.h"

/* No fused multiply-adds: every SSE/least-squares term is the separately rounded product and sum
 * of SPEC section 4 (GCC in ISO C mode does not contract; clang would, within an expression). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* Must match calibrate.c. */
#define PQ_MSE_CANDIDATES 64
#define PQ_MSE_REFINE_ROUNDS 10
/* Elements between two pruning checks. */
#define PQ_PRUNE_EVERY 16

bool pq_calib_search__avx2(enum pq_qformat f, const float *w, const float *h, int64_t n,
                           uint16_t *out);

/* Rounded, clamped codes as floats (pq_qcode without its NaN case: callers pass finite w). */
static inline __m256 pq_cal_code(__m256 v, __m256 lo, __m256 hi) {
    __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_min_ps(_mm256_max_ps(r, lo), hi);
}

/* One lane group of 4 candidates: acc += h_j (w_j - q * s)^2 for the codes q (floats) of v. */
#define PQ_CAL_TERMS(acc, q, s, wd, hd)                                                            \
    do {                                                                                           \
        __m256 wh_ = _mm256_mul_ps((q), (s));                                                      \
        __m256d e0_ = _mm256_sub_pd((wd), _mm256_cvtps_pd(_mm256_castps256_ps128(wh_)));           \
        __m256d e1_ = _mm256_sub_pd((wd), _mm256_cvtps_pd(_mm256_extractf128_ps(wh_, 1)));         \
        e0_ = _mm256_mul_pd(e0_, e0_);                                                             \
        e1_ = _mm256_mul_pd(e1_, e1_);                                                             \
        if (h) {                                                                                   \
            e0_ = _mm256_mul_pd((hd), e0_);                                                        \
            e1_ = _mm256_mul_pd((hd), e1_);                                                        \
        }                                                                                          \
        (acc)[0] = _mm256_add_pd((acc)[0], e0_);                                                   \
        (acc)[1] = _mm256_add_pd((acc)[1], e1_);                                                   \
    } while (0)

/* Adds the h_j (w_j - w_hat_j)^2 terms of 16 candidates for j in [0, n) to their sums: lanes
 * of sp are 8 steps of orientation +1, lanes of sn their negatives (the other orientation), so
 * one division serves both: w / (-s) == -(w / s) exactly. accp[0..1] / accn[0..1] hold the 8 + 8
 * double sums, each in index order. Returns false, leaving the sums partial, as soon as every
 * lane's partial sum exceeds bound (sums only grow: every term is >= 0). */
static bool pq_cal_batch(const float *w, const float *h, int64_t n, __m256 sp, __m256 sn, __m256 lo,
                         __m256 hi, double bound, __m256d accp[2], __m256d accn[2]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256d vb = _mm256_set1_pd(bound);
    __m256d ap[2] = {accp[0], accp[1]}, an[2] = {accn[0], accn[1]};
    int64_t j = 0;
    bool done = true;
    while (j < n) {
        int64_t e = j + PQ_PRUNE_EVERY < n ? j + PQ_PRUNE_EVERY : n;
        for (; j < e; j++) {
            __m256 v = _mm256_div_ps(_mm256_set1_ps(w[j]), sp);
            __m256 qp = pq_cal_code(v, lo, hi);
            __m256 qn = pq_cal_code(_mm256_xor_ps(v, sign), lo, hi);
            __m256d wd = _mm256_set1_pd((double)w[j]);
            __m256d hd = h ? _mm256_set1_pd((double)h[j]) : wd;
            PQ_CAL_TERMS(ap, qp, sp, wd, hd);
            PQ_CAL_TERMS(an, qn, sn, wd, hd);
        }
        if (j < n) {
            int gt = _mm256_movemask_pd(_mm256_cmp_pd(ap[0], vb, _CMP_GT_OQ)) &
                     _mm256_movemask_pd(_mm256_cmp_pd(ap[1], vb, _CMP_GT_OQ)) &
                     _mm256_movemask_pd(_mm256_cmp_pd(an[0], vb, _CMP_GT_OQ)) &
                     _mm256_movemask_pd(_mm256_cmp_pd(an[1], vb, _CMP_GT_OQ));
            if (gt == 0xF) {
                done = false;
                break;
            }
        }
    }
    accp[0] = ap[0];
    accp[1] = ap[1];
    accn[0] = an[0];
    accn[1] = an[1];
    return done;
}

/* SSE of one scale step (pq_calib_group_sse), or a value > bound once the partial sum exceeds
 * bound. Terms are computed 8 at a time, then added one by one in index order. */
static double pq_cal_sse1(const float *w, const float *h, int64_t n, float step, __m256 lo,
                          __m256 hi, int bits, double bound) {
    const __m256 vs = _mm256_set1_ps(step);
    double sse = 0.0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 wv = _mm256_loadu_ps(w + j);
        __m256 wh = _mm256_mul_ps(pq_cal_code(_mm256_div_ps(wv, vs), lo, hi), vs);
        __m256d e0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(wv)),
                                   _mm256_cvtps_pd(_mm256_castps256_ps128(wh)));
        __m256d e1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(wv, 1)),
                                   _mm256_cvtps_pd(_mm256_extractf128_ps(wh, 1)));
        e0 = _mm256_mul_pd(e0, e0);
        e1 = _mm256_mul_pd(e1, e1);
        if (h) {
            e0 = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(h + j)), e0);
            e1 = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(h + j + 4)), e1);
        }
        double t[8];
        _mm256_storeu_pd(t, e0);
        _mm256_storeu_pd(t + 4, e1);
        for (int k = 0; k < 8; k++)
            sse += t[k];
        if (sse > bound) return sse;
    }
    for (; j < n; j++) {
        float wh = (float)pq_qcode(w[j], step, bits) * step;
        double e = (double)w[j] - (double)wh;
        sse += h ? (double)h[j] * (e * e) : e * e;
    }
    return sse;
}

/* True when steps sa and sb give the same codes for every weight. */
static bool pq_cal_same_codes(const float *w, int64_t n, float sa, float sb, __m256 lo, __m256 hi,
                              int bits) {
    const __m256 va = _mm256_set1_ps(sa), vb = _mm256_set1_ps(sb);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 wv = _mm256_loadu_ps(w + j);
        __m256 qa = pq_cal_code(_mm256_div_ps(wv, va), lo, hi);
        __m256 qb = pq_cal_code(_mm256_div_ps(wv, vb), lo, hi);
        if (_mm256_movemask_ps(_mm256_cmp_ps(qa, qb, _CMP_NEQ_UQ))) return false;
    }
    for (; j < n; j++)
        if (pq_qcode(w[j], sa, bits) != pq_qcode(w[j], sb, bits)) return false;
    return true;
}

/* S_wq = sum h w q and S_qq = sum h q q (double, index order) for the codes of step. */
static void pq_cal_lsq(const float *w, const float *h, int64_t n, float step, __m256 lo, __m256 hi,
                       int bits, double *swq_out, double *sqq_out) {
    const __m256 vs = _mm256_set1_ps(step);
    double swq = 0.0, sqq = 0.0;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 wv = _mm256_loadu_ps(w + j);
        __m256 q = pq_cal_code(_mm256_div_ps(wv, vs), lo, hi);
        double tw[8], tq[8];
        for (int half = 0; half < 2; half++) {
            __m128 qh = half ? _mm256_extractf128_ps(q, 1) : _mm256_castps256_ps128(q);
            __m128 wh = half ? _mm256_extractf128_ps(wv, 1) : _mm256_castps256_ps128(wv);
            __m256d qd = _mm256_cvtps_pd(qh);
            __m256d wq = _mm256_mul_pd(_mm256_cvtps_pd(wh), qd);
            __m256d qq = _mm256_mul_pd(qd, qd);
            if (h) {
                __m256d hd = _mm256_cvtps_pd(_mm_loadu_ps(h + j + 4 * half));
                wq = _mm256_mul_pd(hd, wq);
                qq = _mm256_mul_pd(hd, qq);
            }
            _mm256_storeu_pd(tw + 4 * half, wq);
            _mm256_storeu_pd(tq + 4 * half, qq);
        }
        for (int k = 0; k < 8; k++) {
            swq += tw[k];
            sqq += tq[k];
        }
    }
    for (; j < n; j++) {
        double q = (double)pq_qcode(w[j], step, bits);
        double hj = h ? (double)h[j] : 1.0;
        swq += hj * ((double)w[j] * q);
        sqq += hj * (q * q);
    }
    *swq_out = swq;
    *sqq_out = sqq;
}

/* The mse/weighted search of calibrate.c for a group of n finite weights with max|w| > 0.
 * Returns false (out untouched) when a precondition of the fast path does not hold: then the
 * caller runs the scalar definition. */
bool pq_calib_search__avx2(enum pq_qformat f, const float *w, const float *h, int64_t n,
                           uint16_t *out) {
    float mx = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(w[j])) return false;
        float v = fabsf(w[j]);
        if (v > mx) mx = v;
    }
    if (h)
        for (int64_t j = 0; j < n; j++)
            if (!isfinite(h[j]) || h[j] < 0.0f) return false;
    if (mx == 0.0f) return false;
    int bits = pq_qformat_bits(f);
    float mult = pq_qformat_step_mult(f);
    float qn = (float)(1 << (bits - 1));
    const __m256 lo = _mm256_set1_ps(-qn), hi = _mm256_set1_ps(qn - 1.0f);

    /* Candidate words and steps, exactly as the scalar search forms them. */
    uint16_t cand[2][PQ_MSE_CANDIDATES];
    float step[2][PQ_MSE_CANDIDATES];
    static const float orient[2] = {1.0f, -1.0f};
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < PQ_MSE_CANDIDATES; i++) {
            float t = ((0.2f + (float)i / 63.0f) * mx) / qn;
            cand[o][i] = pq_scale_clamp(pq_f32_to_f16((orient[o] * t) / mult));
            step[o][i] = pq_qstep(f, cand[o][i]);
        }
    for (int i = 0; i < PQ_MSE_CANDIDATES; i++) /* the shared division needs s(-) == -s(+) */
        if (step[1][i] != -step[0][i] || step[0][i] == 0.0f) return false;

    /* Batches of 8 i values x 2 orientations, in the order of the table below: first those
     * around the usual optimum (so a tight bound prunes the others early), then outwards; the
     * result does not depend on the order. Pruned candidates have an SSE above an SSE actually
     * reached, so they cannot be the (first) minimum: they are recorded as +inf. */
    enum { NB = PQ_MSE_CANDIDATES / 8 };
    static const int order3[NB][8] = {
        {36, 38, 40, 42, 44, 46, 48, 50}, {37, 39, 41, 43, 45, 47, 49, 51},
        {28, 29, 30, 31, 32, 33, 34, 35}, {52, 53, 54, 55, 56, 57, 58, 59},
        {20, 21, 22, 23, 24, 25, 26, 27}, {60, 61, 62, 63, 16, 17, 18, 19},
        {8, 9, 10, 11, 12, 13, 14, 15},   {0, 1, 2, 3, 4, 5, 6, 7},
    };
    static const int order2[NB][8] = {
        {28, 30, 32, 34, 36, 38, 40, 42}, {29, 31, 33, 35, 37, 39, 41, 43},
        {20, 21, 22, 23, 24, 25, 26, 27}, {44, 45, 46, 47, 48, 49, 50, 51},
        {12, 13, 14, 15, 16, 17, 18, 19}, {52, 53, 54, 55, 56, 57, 58, 59},
        {60, 61, 62, 63, 8, 9, 10, 11},   {0, 1, 2, 3, 4, 5, 6, 7},
    };
    const int(*order)[8] = bits == 3 ? order3 : order2;
    double sse[2][PQ_MSE_CANDIDATES];
    double bound = INFINITY;
    for (int k = 0; k < NB; k++) {
        const int *ix = order[k];
        /* Lanes whose words repeat the previous i's words have that i's SSE and cannot win
         * (ties keep the earlier i); a batch made only of such lanes is skipped (tiny groups
         * pinned by the clamp). */
        bool dup = true;
        for (int l = 0; l < 8 && dup; l++)
            dup = ix[l] > 0 && cand[0][ix[l]] == cand[0][ix[l] - 1] &&
                  cand[1][ix[l]] == cand[1][ix[l] - 1];
        float spl[8], snl[8];
        for (int l = 0; l < 8; l++) {
            spl[l] = step[0][ix[l]];
            snl[l] = step[1][ix[l]];
            sse[0][ix[l]] = sse[1][ix[l]] = INFINITY;
        }
        if (dup) continue;
        __m256d accp[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
        __m256d accn[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
        if (!pq_cal_batch(w, h, n, _mm256_loadu_ps(spl), _mm256_loadu_ps(snl), lo, hi, bound, accp,
                          accn))
            continue;
        double rp[8], rn[8];
        _mm256_storeu_pd(rp, accp[0]);
        _mm256_storeu_pd(rp + 4, accp[1]);
        _mm256_storeu_pd(rn, accn[0]);
        _mm256_storeu_pd(rn + 4, accn[1]);
        for (int l = 0; l < 8; l++) {
            sse[0][ix[l]] = rp[l];
            sse[1][ix[l]] = rn[l];
            if (rp[l] < bound) bound = rp[l];
            if (rn[l] < bound) bound = rn[l];
        }
    }
    uint16_t best = PQ_SCALE_F16_MIN;
    double best_sse = INFINITY;
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < PQ_MSE_CANDIDATES; i++)
            if (sse[o][i] < best_sse) { /* strict: ties keep the earlier orientation, then i */
                best_sse = sse[o][i];
                best = cand[o][i];
            }

    /* Least-squares refinement, as in calibrate.c. */
    uint16_t cur = best;
    for (int round = 0; round < PQ_MSE_REFINE_ROUNDS; round++) {
        float scur = pq_qstep(f, cur);
        double swq, sqq;
        pq_cal_lsq(w, h, n, scur, lo, hi, bits, &swq, &sqq);
        if (sqq == 0.0) break;
        uint16_t a = pq_scale_clamp(pq_f32_to_f16((float)(swq / sqq / (double)mult)));
        float sa = pq_qstep(f, a);
        double s = pq_cal_sse1(w, h, n, sa, lo, hi, bits, best_sse);
        if (s < best_sse) {
            best_sse = s;
            best = a;
        }
        if (a == cur || pq_cal_same_codes(w, n, scur, sa, lo, hi, bits)) break;
        cur = a;
    }
    *out = best;
    return true;
}

#endif
