/* Template of the SIMD kernels for int8 and f16 weights, included once by each of
 * packed_{int8,f16}_{avx2,avx512}.c after defining the element type and vector primitives. */
/* No include guard: one inclusion per translation unit, with these defined beforehand:
 *   PQ_WT           weight element type (int8_t or uint16_t)
 *   PQ_VW           vector width in floats (8 or 16)
 *   pq_vf           the f32 vector type
 *   pq_vzero(), pq_vload(p), pq_vstore(p, v), pq_vfma(a, b, acc), pq_vadd(a, b), pq_vhsum(v)
 *   pq_wload(p)     PQ_VW weights at p widened to f32 (exact)
 *   pq_wscalar(v)   one weight widened to f32 (exact, same value as pq_wload) */
#include <stddef.h>
#include <stdint.h>

#include "backends/packed_panel.h"

#define PQ_AI static inline __attribute__((always_inline))

/* out[j] = sum_c x[c] * f32(w[j * cols + c]) for j < NR (NR <= 4): two accumulators per row
 * (2 * PQ_VW columns per step), summed lane-wise, horizontally, then the tail in order. */
PQ_AI void pq_wide_rows(const PQ_WT *w, int64_t cols, const float *x, int NR, float *out) {
    pq_vf a0[4], a1[4];
    for (int j = 0; j < NR; j++)
        a0[j] = a1[j] = pq_vzero();
    int64_t c = 0;
    for (; c + 2 * PQ_VW <= cols; c += 2 * PQ_VW) {
        pq_vf x0 = pq_vload(x + c), x1 = pq_vload(x + c + PQ_VW);
        for (int j = 0; j < NR; j++) {
            a0[j] = pq_vfma(x0, pq_wload(w + j * cols + c), a0[j]);
            a1[j] = pq_vfma(x1, pq_wload(w + j * cols + c + PQ_VW), a1[j]);
        }
    }
    if (c + PQ_VW <= cols) {
        pq_vf x0 = pq_vload(x + c);
        for (int j = 0; j < NR; j++)
            a0[j] = pq_vfma(x0, pq_wload(w + j * cols + c), a0[j]);
        c += PQ_VW;
    }
    for (int j = 0; j < NR; j++) {
        float sum = pq_vhsum(pq_vadd(a0[j], a1[j]));
        for (int64_t t = c; t < cols; t++) {
            float p = x[t] * pq_wscalar(w[j * cols + t]);
            sum += p;
        }
        out[j] = sum;
    }
}

/* y[r] = (s ? s[r] : 1) * sum_c x[c] * f32(w[r][c]), four rows at a time sharing the x loads. */
static void pq_wide_gemv(const PQ_WT *w, const float *s, int64_t rows, int64_t cols, const float *x,
                         float *y) {
    float out[4];
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        pq_wide_rows(w + r * cols, cols, x, 4, out);
        for (int j = 0; j < 4; j++)
            y[r + j] = s ? s[r + j] * out[j] : out[j];
    }
    for (; r < rows; r++) {
        pq_wide_rows(w + r * cols, cols, x, 1, out);
        y[r] = s ? s[r] * out[0] : out[0];
    }
}

/* out[i * NR + j] = dot(x row i, panel row j) for i < MR (<= 2), j < NR (<= 4): the NR panel
 * loads of a step are shared by the MR activation rows (MR * NR accumulators). */
PQ_AI void pq_panel_block(const float *x, int64_t cols, const float *p, int MR, int NR,
                          float *out) {
    pq_vf acc[2][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = pq_vzero();
    int64_t c = 0;
    for (; c + PQ_VW <= cols; c += PQ_VW) {
        pq_vf wv[4];
        for (int j = 0; j < NR; j++)
            wv[j] = pq_vload(p + j * cols + c);
        for (int i = 0; i < MR; i++) {
            pq_vf xv = pq_vload(x + i * cols + c);
            for (int j = 0; j < NR; j++)
                acc[i][j] = pq_vfma(xv, wv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float sum = pq_vhsum(acc[i][j]);
            for (int64_t t = c; t < cols; t++) {
                float q = x[i * cols + t] * p[j * cols + t];
                sum += q;
            }
            out[i * NR + j] = sum;
        }
}

PQ_AI void pq_panel_store(float *y, int64_t ldy, const float *s, int MR, int NR, const float *out) {
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            y[i * ldy + j] = s ? s[j] * out[i * NR + j] : out[i * NR + j];
}

/* y[m * ldy + r] = (s ? s[r] : 1) * dot(x row m, panel row r), r < pr, m < M, in blocks of
 * 2 activation rows x 4 panel rows (edges 2x1, 1x4, 1x1). */
static void pq_panel_gemm(const float *p, int64_t pr, int64_t cols, const float *x, int64_t M,
                          const float *s, float *y, int64_t ldy) {
    float out[8];
    int64_t m = 0;
    for (; m + 2 <= M; m += 2) {
        const float *xm = x + m * cols;
        float *ym = y + m * ldy;
        int64_t r = 0;
        for (; r + 4 <= pr; r += 4) {
            pq_panel_block(xm, cols, p + r * cols, 2, 4, out);
            pq_panel_store(ym + r, ldy, s ? s + r : NULL, 2, 4, out);
        }
        for (; r < pr; r++) {
            pq_panel_block(xm, cols, p + r * cols, 2, 1, out);
            pq_panel_store(ym + r, ldy, s ? s + r : NULL, 2, 1, out);
        }
    }
    for (; m < M; m++) {
        const float *xm = x + m * cols;
        float *ym = y + m * ldy;
        int64_t r = 0;
        for (; r + 4 <= pr; r += 4) {
            pq_panel_block(xm, cols, p + r * cols, 1, 4, out);
            pq_panel_store(ym + r, ldy, s ? s + r : NULL, 1, 4, out);
        }
        for (; r < pr; r++) {
            pq_panel_block(xm, cols, p + r * cols, 1, 1, out);
            pq_panel_store(ym + r, ldy, s ? s + r : NULL, 1, 1, out);
        }
    }
}

/* Panel by panel: widen pq_panel_rows(rows, cols) weight rows to f32 (exact) into panel, then
 * every activation row against it; y is M x rows. */
static void pq_wide_gemm(const PQ_WT *w, const float *s, int64_t rows, int64_t cols, const float *x,
                         int64_t M, float *y, float *panel) {
    int64_t pr = pq_panel_rows(rows, cols);
    for (int64_t r0 = 0; r0 < rows; r0 += pr) {
        int64_t n = rows - r0 < pr ? rows - r0 : pr, cnt = n * cols, i = 0;
        const PQ_WT *src = w + r0 * cols;
        for (; i + PQ_VW <= cnt; i += PQ_VW)
            pq_vstore(panel + i, pq_wload(src + i));
        for (; i < cnt; i++)
            panel[i] = pq_wscalar(src[i]);
        pq_panel_gemm(panel, n, cols, x, M, s ? s + r0 : NULL, y + r0, rows);
    }
}
