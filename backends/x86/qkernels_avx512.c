/* AVX-512 (F/BW/VL/DQ) kernels for packed PiQ/Q rows: 16-wide decode for the fused GEMV and for
 * dequantize, a blocked GEMM on 32-row f32 panels, and a 16-wide Walsh-Hadamard butterfly;
 * quantize reuses the AVX2 body (qkernels_avx2_impl.h, compiled here with AVX-512 flags). Same bit-exactness contract. */
#include "backends/x86/qkernels_avx2_impl.h"

/* Sixteen signed codes of the 16-code run at p (2 packed 8-blocks) as floats.
 * bits = 3: 6 bytes; 8 bytes are read from p - 2 (the scale word or the previous block precedes
 * every block, and p + 5 is the run's last byte, so nothing outside the row is touched). Lanes
 * 0-7 take the word at p - 1, lanes 8-15 the word at p + 2, each shifted by 8 + 3 (i mod 8); the
 * low 4 bits index a table that repeats the 8 codes. bits = 2: the 4 bytes at p, lane i shifted
 * by 2 i. */
PQ_INLINE __m512 pq_decode16(int bits, const uint8_t *p) {
    if (bits == 3) {
        uint64_t v;
        memcpy(&v, p - 2, 8);
        const __m512i pick = _mm512_setr_epi32(0x04030201, 0x04030201, 0x04030201, 0x04030201,
                                               0x04030201, 0x04030201, 0x04030201, 0x04030201,
                                               0x07060504, 0x07060504, 0x07060504, 0x07060504,
                                               0x07060504, 0x07060504, 0x07060504, 0x07060504);
        const __m512i sh =
            _mm512_setr_epi32(8, 11, 14, 17, 20, 23, 26, 29, 8, 11, 14, 17, 20, 23, 26, 29);
        const __m512 tab = _mm512_setr_ps(-4.f, -3.f, -2.f, -1.f, 0.f, 1.f, 2.f, 3.f, -4.f, -3.f,
                                          -2.f, -1.f, 0.f, 1.f, 2.f, 3.f);
        __m512i w = _mm512_shuffle_epi8(_mm512_set1_epi64((long long)v), pick);
        return _mm512_permutexvar_ps(_mm512_srlv_epi32(w, sh), tab);
    } else {
        const __m512i sh =
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512 tab = _mm512_setr_ps(-2.f, -1.f, 0.f, 1.f, -2.f, -1.f, 0.f, 1.f, -2.f, -1.f,
                                          0.f, 1.f, -2.f, -1.f, 0.f, 1.f);
        __m512i w = _mm512_set1_epi32((int)pq_ld32(p));
        return _mm512_permutexvar_ps(_mm512_srlv_epi32(w, sh), tab);
    }
}

PQ_INLINE __m256 pq_fold16(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

/* ---- dequantize --------------------------------------------------------------------------- */

PQ_INLINE void pq_dequant_span16(int bits, const uint8_t *codes, float step, int64_t n,
                                 float *out) {
    __m512 vstep = _mm512_set1_ps(step);
    int64_t nb = n / 8, j = 0; /* j counts 8-blocks */
    for (; j + 2 <= nb; j += 2)
        _mm512_storeu_ps(out + 8 * j, _mm512_mul_ps(pq_decode16(bits, codes + j * bits), vstep));
    if (j < nb)
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(pq_decode8(bits, codes + j * bits),
                                                    _mm512_castps512_ps256(vstep)));
    int64_t rem = n - 8 * nb;
    if (rem)
        _mm256_maskstore_ps(
            out + 8 * nb, pq_mask8(rem),
            _mm256_mul_ps(pq_decode8(bits, codes + nb * bits), _mm512_castps512_ps256(vstep)));
}

static void pq_q_dequantize_row_ukernel__avx512(enum pq_qformat f, const uint8_t *src, int64_t cols,
                                                int64_t group, float *dst) {
    if (cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    const float mult = pq_qformat_step_mult(f);
    int64_t ngroups = (cols + group - 1) / group;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        float step = pq_step(src, mult);
        if (bits == 3)
            pq_dequant_span16(3, src + 2, step, n, dst + g * group);
        else
            pq_dequant_span16(2, src + 2, step, n, dst + g * group);
        src += 2 + pq_packed_code_bytes(f, n);
    }
}

/* ---- fused dequant-GEMV ------------------------------------------------------------------- */

PQ_INLINE void pq_gemv_rows16(int bits, int R, const uint8_t *w, size_t row_bytes, int64_t cols,
                              int64_t group, float mult, const float *x, float *y) {
    __m256 tot[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        tot[r] = _mm256_setzero_ps();
    int64_t ngroups = (cols + group - 1) / group;
    const uint8_t *p = w;
    for (int64_t g = 0; g < ngroups; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        const float *xg = x + g * group;
        const uint8_t *c[4];
        __m512 acc0[4], acc1[4];
        __m256 acc8[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            c[r] = p + (size_t)r * row_bytes + 2;
            acc0[r] = _mm512_setzero_ps();
            acc1[r] = _mm512_setzero_ps();
            acc8[r] = _mm256_setzero_ps();
        }
        int64_t nb = n / 8, j = 0; /* j counts 8-blocks */
        for (; j + 4 <= nb; j += 4) {
            __m512 x0 = _mm512_loadu_ps(xg + 8 * j);
            __m512 x1 = _mm512_loadu_ps(xg + 8 * j + 16);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                acc0[r] = _mm512_fmadd_ps(pq_decode16(bits, c[r] + j * bits), x0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(pq_decode16(bits, c[r] + (j + 2) * bits), x1, acc1[r]);
            }
        }
        if (j + 2 <= nb) {
            __m512 x0 = _mm512_loadu_ps(xg + 8 * j);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc0[r] = _mm512_fmadd_ps(pq_decode16(bits, c[r] + j * bits), x0, acc0[r]);
            j += 2;
        }
        if (j < nb) {
            __m256 x0 = _mm256_loadu_ps(xg + 8 * j);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc8[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + j * bits), x0, acc8[r]);
        }
        int64_t rem = n - 8 * nb;
        if (rem) {
            __m256 x0 = _mm256_maskload_ps(xg + 8 * nb, pq_mask8(rem));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc8[r] = _mm256_fmadd_ps(pq_decode8(bits, c[r] + nb * bits), x0, acc8[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 s = _mm256_add_ps(pq_fold16(_mm512_add_ps(acc0[r], acc1[r])), acc8[r]);
            __m256 vstep = _mm256_set1_ps(pq_step(p + (size_t)r * row_bytes, mult));
            tot[r] = _mm256_fmadd_ps(s, vstep, tot[r]);
        }
        p += 2 + (size_t)bits * (size_t)((n + 7) / 8);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        y[r] = pq_hsum8(tot[r]);
}

PQ_INLINE void pq_gemv_bits16(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                              int64_t cols, int64_t group, const float *x, float *y) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    const float mult = pq_qformat_step_mult(f);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        pq_gemv_rows16(bits, 4, w + (size_t)r * row_bytes, row_bytes, cols, group, mult, x, y + r);
    for (; r < rows; r++)
        pq_gemv_rows16(bits, 1, w + (size_t)r * row_bytes, row_bytes, cols, group, mult, x, y + r);
}

static void pq_q_gemv_ukernel__avx512(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                      int64_t cols, int64_t group, const float *x, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_gemv_bits16(3, f, w, rows, cols, group, x, y);
    else
        pq_gemv_bits16(2, f, w, rows, cols, group, x, y);
}

/* ---- blocked dequant-GEMM ----------------------------------------------------------------- */

/* As the AVX2 blocked GEMM (qkernels_avx2_impl.h) with 16-float vectors: panels of up to 32
 * weight rows x PQ_GEMM_KC columns (32 KB), decoded k-major by one 16-lane gather per packed
 * block of 16 rows, and a 12 x 32 micro-kernel (24 zmm accumulators, embedded-broadcast FMAs).
 * Each output is one FMA chain over k in column order. */
#define PQ_GEMM512_MR 12

PQ_INLINE __m512i pq_row_offsets16(int64_t nr, size_t row_bytes) {
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    lane = _mm512_min_epi32(lane, _mm512_set1_epi32((int)(nr - 1)));
    return _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)row_bytes));
}

/* Decodes columns [c0, c0 + len) (c0 a multiple of 8) of nr (1..16) rows starting at w into
 * P[k][0..16) (row stride ldp floats); whole 8-blocks are written (padding codes are q = 0). */
PQ_INLINE void pq_panel_decode16(int bits, const uint8_t *w, int64_t nr, size_t row_bytes,
                                 int64_t cols, int64_t group, size_t group_bytes, float mult,
                                 int64_t c0, int64_t len, float *P, int64_t ldp) {
    const __m512i off = pq_row_offsets16(nr, row_bytes);
    const __m512 tab3 = _mm512_setr_ps(-4.f, -3.f, -2.f, -1.f, 0.f, 1.f, 2.f, 3.f, -4.f, -3.f,
                                       -2.f, -1.f, 0.f, 1.f, 2.f, 3.f);
    const __m512 tab2 = _mm512_setr_ps(-2.f, -1.f, 0.f, 1.f, -2.f, -1.f, 0.f, 1.f, -2.f, -1.f,
                                       0.f, 1.f, -2.f, -1.f, 0.f, 1.f);
    const __m512 vmult = _mm512_set1_ps(mult);
    int64_t c = c0, end = c0 + len;
    while (c < end) {
        int64_t g = c / group, gs = g * group;
        int64_t ge = gs + group < cols ? gs + group : cols;
        int64_t e = ge < end ? ge : end;
        const uint8_t *gp = w + (size_t)g * group_bytes;
        /* the f16 scale words of the 16 rows: the low halves of a 32-bit gather */
        __m512i sw = _mm512_i32gather_epi32(off, (const void *)gp, 1);
        __m512 vstep = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(sw)), vmult);
        const uint8_t *bp = gp + 2 + (size_t)((c - gs) / 8) * (size_t)bits;
        for (; c < e; c += 8, bp += bits) {
            float *o = P + (c - c0) * ldp;
            if (bits == 3) {
                __m512i wd = _mm512_i32gather_epi32(off, (const void *)(bp - 1), 1);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m512 q = _mm512_permutexvar_ps(_mm512_srli_epi32(wd, 8 + 3 * i), tab3);
                    _mm512_store_ps(o + i * ldp, _mm512_mul_ps(q, vstep));
                }
            } else {
                __m512i wd = _mm512_i32gather_epi32(off, (const void *)(bp - 2), 1);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m512 q = _mm512_permutexvar_ps(_mm512_srli_epi32(wd, 16 + 2 * i), tab2);
                    _mm512_store_ps(o + i * ldp, _mm512_mul_ps(q, vstep));
                }
            }
        }
    }
}

/* Y[m][0..nr) (+)= sum_k X[m][k] P[k][0..nr) for MR rows, NV (1, 2) vectors of 16 panel
 * columns with lane masks m0/m1. */
PQ_INLINE void pq_gemm_ukr16(int NV, int MR, const float *P, int64_t ldp, const float *x,
                             int64_t ldx, int64_t len, float *y, int64_t ldy, __mmask16 m0,
                             __mmask16 m1, int accumulate) {
    __m512 acc[PQ_GEMM512_MR][2];
#pragma GCC unroll 12
    for (int m = 0; m < MR; m++) {
        acc[m][0] = accumulate ? _mm512_maskz_loadu_ps(m0, y + m * ldy) : _mm512_setzero_ps();
        if (NV == 2)
            acc[m][1] =
                accumulate ? _mm512_maskz_loadu_ps(m1, y + m * ldy + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < len; k++) {
        __m512 w0 = _mm512_load_ps(P + k * ldp);
        __m512 w1 = NV == 2 ? _mm512_load_ps(P + k * ldp + 16) : w0;
#pragma GCC unroll 12
        for (int m = 0; m < MR; m++) {
            __m512 xb = _mm512_set1_ps(x[m * ldx + k]);
            acc[m][0] = _mm512_fmadd_ps(w0, xb, acc[m][0]);
            if (NV == 2) acc[m][1] = _mm512_fmadd_ps(w1, xb, acc[m][1]);
        }
    }
#pragma GCC unroll 12
    for (int m = 0; m < MR; m++) {
        _mm512_mask_storeu_ps(y + m * ldy, m0, acc[m][0]);
        if (NV == 2) _mm512_mask_storeu_ps(y + m * ldy + 16, m1, acc[m][1]);
    }
}

#define PQ_UKR16_CASE(NV, MR)                                                                      \
    case MR:                                                                                       \
        pq_gemm_ukr16(NV, MR, P, ldp, xm, ldx, len, ym, ldy, m0, m1, acc);                         \
        break;

PQ_INLINE void pq_gemm_ukr16_nv(int NV, const float *P, int64_t ldp, const float *x, int64_t ldx,
                                int64_t len, int64_t batch, float *y, int64_t ldy, __mmask16 m0,
                                __mmask16 m1, int acc) {
    int64_t m = 0;
    for (; m + PQ_GEMM512_MR <= batch; m += PQ_GEMM512_MR)
        pq_gemm_ukr16(NV, PQ_GEMM512_MR, P, ldp, x + m * ldx, ldx, len, y + m * ldy, ldy, m0, m1,
                      acc);
    const float *xm = x + m * ldx;
    float *ym = y + m * ldy;
    switch (batch - m) {
        PQ_UKR16_CASE(NV, 11)
        PQ_UKR16_CASE(NV, 10)
        PQ_UKR16_CASE(NV, 9)
        PQ_UKR16_CASE(NV, 8)
        PQ_UKR16_CASE(NV, 7)
        PQ_UKR16_CASE(NV, 6)
        PQ_UKR16_CASE(NV, 5)
        PQ_UKR16_CASE(NV, 4)
        PQ_UKR16_CASE(NV, 3)
        PQ_UKR16_CASE(NV, 2)
        PQ_UKR16_CASE(NV, 1)
    default:
        break;
    }
}

PQ_INLINE __mmask16 pq_kmask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

PQ_INLINE void pq_gemm_bits16(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                              int64_t cols, int64_t group, const float *x, int64_t batch, float *y) {
    _Alignas(64) float P[PQ_GEMM_KC * 32];
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    size_t group_bytes = 2 + pq_packed_code_bytes(f, group);
    const float mult = pq_qformat_step_mult(f);
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
        int64_t nr = rows - r0 < 32 ? rows - r0 : 32;
        int NV = nr > 16 ? 2 : 1;
        int64_t ldp = 16 * NV;
        __mmask16 m0 = pq_kmask16(nr), m1 = pq_kmask16(nr > 16 ? nr - 16 : 0);
        const uint8_t *wr = w + (size_t)r0 * row_bytes;
        for (int64_t c0 = 0; c0 < cols; c0 += PQ_GEMM_KC) {
            int64_t len = cols - c0 < PQ_GEMM_KC ? cols - c0 : PQ_GEMM_KC;
            pq_panel_decode16(bits, wr, nr < 16 ? nr : 16, row_bytes, cols, group, group_bytes,
                              mult, c0, len, P, ldp);
            if (NV == 2) {
                pq_panel_decode16(bits, wr + 16 * row_bytes, nr - 16, row_bytes, cols, group,
                                  group_bytes, mult, c0, len, P + 16, ldp);
                pq_gemm_ukr16_nv(2, P, ldp, x + c0, cols, len, batch, y + r0, rows, m0, m1,
                                 c0 > 0);
            } else {
                pq_gemm_ukr16_nv(1, P, ldp, x + c0, cols, len, batch, y + r0, rows, m0, m1,
                                 c0 > 0);
            }
        }
    }
}

/* Batch 1 uses the 16-wide GEMV; larger batches the blocked GEMM above. */
static void pq_q_gemm_ukernel__avx512(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                      int64_t cols, int64_t group, const float *x, int64_t batch,
                                      float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0 || batch <= 0) return;
    if (batch == 1)
        pq_q_gemv_ukernel__avx512(f, w, rows, cols, group, x, y);
    else if (pq_qformat_bits(f) == 3)
        pq_gemm_bits16(3, f, w, rows, cols, group, x, batch, y);
    else
        pq_gemm_bits16(2, f, w, rows, cols, group, x, batch, y);
}

/* ---- Walsh-Hadamard butterfly ------------------------------------------------------------- */

/* Stages h = 1, 2, 4, 8 inside one vector of 16: the lower lane of each pair gets v + s (a + b),
 * the upper one s - v (a - b), exactly the scalar operations. */
PQ_INLINE __m512 pq_fwht16(__m512 v) {
    __m512 s = _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), (__mmask16)0xAAAA, s, v);
    s = _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2));
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), (__mmask16)0xCCCC, s, v);
    s = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1));
    v = _mm512_mask_sub_ps(_mm512_add_ps(v, s), (__mmask16)0xF0F0, s, v);
    s = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2));
    return _mm512_mask_sub_ps(_mm512_add_ps(v, s), (__mmask16)0xFF00, s, v);
}

/* As pq_fwht_pass (qkernels_avx2_impl.h) with 16-float vectors: L (0..3) stages h0 .. h0 2^(L-1)
 * (h0 >= 16) in registers; inreg first applies stages 1..8; last multiplies by scale. */
PQ_INLINE void pq_fwht_pass16(int L, int inreg, float *x, int64_t n, int64_t h0, int last,
                              float scale) {
    const int V = 1 << L;
    const int64_t span = h0 << L;
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t j = 0; j < n; j += span) {
        for (int64_t i = 0; i < h0; i += 16) {
            float *base = x + j + i;
            __m512 v[8];
#pragma GCC unroll 8
            for (int t = 0; t < V; t++) {
                v[t] = _mm512_loadu_ps(base + t * h0);
                if (inreg) v[t] = pq_fwht16(v[t]);
            }
#pragma GCC unroll 3
            for (int s = 0; s < L; s++) {
                int d = 1 << s;
#pragma GCC unroll 8
                for (int t = 0; t < V; t++) {
                    if (t & d) continue;
                    __m512 a = v[t], b = v[t + d];
                    v[t] = _mm512_add_ps(a, b);
                    v[t + d] = _mm512_sub_ps(a, b);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < V; t++)
                _mm512_storeu_ps(base + t * h0, last ? _mm512_mul_ps(v[t], vs) : v[t]);
        }
    }
}

static void pq_f32_fwht_ukernel__avx512(float *x, int64_t n, float scale) {
    if (n < 16) { /* one 8-vector: the AVX2 kernel (scalar below 8) */
        pq_f32_fwht_ukernel__avx2(x, n, scale);
        return;
    }
    int m = 0;
    while (((int64_t)1 << m) < n)
        m++;
    int left = m - 4; /* stages with h >= 16 */
    int L = left < 3 ? left : 3;
    int last = (left - L) == 0;
    switch (L) {
    case 0:
        pq_fwht_pass16(0, 1, x, n, 16, last, scale);
        break;
    case 1:
        pq_fwht_pass16(1, 1, x, n, 16, last, scale);
        break;
    case 2:
        pq_fwht_pass16(2, 1, x, n, 16, last, scale);
        break;
    default:
        pq_fwht_pass16(3, 1, x, n, 16, last, scale);
        break;
    }
    int64_t h0 = (int64_t)16 << L;
    left -= L;
    while (left > 0) {
        L = left < 3 ? left : 3;
        last = (left - L) == 0;
        switch (L) {
        case 1:
            pq_fwht_pass16(1, 0, x, n, h0, last, scale);
            break;
        case 2:
            pq_fwht_pass16(2, 0, x, n, h0, last, scale);
            break;
        default:
            pq_fwht_pass16(3, 0, x, n, h0, last, scale);
            break;
        }
        h0 <<= L;
        left -= L;
    }
}

static void pq_f32_fwht_rows_ukernel__avx512(float *x, int64_t rows, int64_t n, float scale) {
    for (int64_t r = 0; r < rows; r++)
        pq_f32_fwht_ukernel__avx512(x + r * n, n, scale);
}

const pq_qkernels pq_qkernels_avx512 = {
    .isa = "avx512",
    .quantize_row = pq_q_quantize_row_ukernel__avx2, /* AVX2 body, divide-bound either way */
    .dequantize_row = pq_q_dequantize_row_ukernel__avx512,
    .gemv = pq_q_gemv_ukernel__avx512,
    .gemm = pq_q_gemm_ukernel__avx512,
    .fwht = pq_f32_fwht_ukernel__avx512,
    .fwht_rows = pq_f32_fwht_rows_ukernel__avx512,
};
