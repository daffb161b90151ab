/* AVX-512 VNNI + VBMI integer-activation PiQ GEMV: 64 codes per step decoded to bytes with one
 * masked load, vpermb and vpmultishiftqb, dotted with the int8 activations by vpdpbusd; 16 rows
 * at a time, their 16 group sums transposed into one vector for the f32 epilogue (lane = row). */
#include <immintrin.h>
#include <string.h>

#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/quant.h"

/* The file is built with the AVX-512 F/BW/VL/DQ/VNNI flags; VBMI is added per function. */
#define PQ_I8Z_FN static inline __attribute__((always_inline, target("avx512vbmi")))
#define PQ_I8Z_ROWS 16
#define PQ_I8Z_PREFETCH 8 /* groups ahead whose bytes are prefetched, per row */

/* Bytes of one 64-code step: 3-bit 24, 2-bit 16. */
#define PQ_I8Z_STEP_BYTES(bits) ((bits) * 8)

/* Unsigned codes u (0 .. 2^bits - 1) of the 64 codes at c as bytes, natural order; bytes outside
 * the load mask read as 0. vpermb puts the bits bytes of code block k (8 codes) in qword k,
 * vpmultishiftqb moves code i of the block to byte i (bit offset bits * i), the and keeps it. */
PQ_I8Z_FN __m512i pq_i8z_decode(int bits, const uint8_t *c, __mmask64 m) {
    const __m512i perm3 = _mm512_set_epi64(
        0x1717171717171615LL, 0x1414141414141312LL, 0x111111111111100FLL, 0x0E0E0E0E0E0E0D0CLL,
        0x0B0B0B0B0B0B0A09LL, 0x0808080808080706LL, 0x0505050505050403LL, 0x0202020202020100LL);
    const __m512i perm2 = _mm512_set_epi64(
        0x0F0F0F0F0F0F0F0ELL, 0x0D0D0D0D0D0D0D0CLL, 0x0B0B0B0B0B0B0B0ALL, 0x0909090909090908LL,
        0x0707070707070706LL, 0x0505050505050504LL, 0x0303030303030302LL, 0x0101010101010100LL);
    const __m512i ctrl3 = _mm512_set1_epi64(0x15120F0C09060300LL);
    const __m512i ctrl2 = _mm512_set1_epi64(0x0E0C0A0806040200LL);
    __m512i v = _mm512_maskz_loadu_epi8(m, c);
    if (bits == 3) {
        v = _mm512_permutexvar_epi8(perm3, v);
        v = _mm512_multishift_epi64_epi8(ctrl3, v);
        return _mm512_and_si512(v, _mm512_set1_epi8(7));
    }
    v = _mm512_permutexvar_epi8(perm2, v);
    v = _mm512_multishift_epi64_epi8(ctrl2, v);
    return _mm512_and_si512(v, _mm512_set1_epi8(3));
}

/* Pairwise step of the 16-row transpose-sum (see pq_i8z_reduce16). */
PQ_I8Z_FN __m512i pq_i8z_sum2(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}

PQ_I8Z_FN __m512i pq_i8z_sum4(__m512i ab, __m512i cd) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

PQ_I8Z_FN __m512i pq_i8z_sum8(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Lane r = the sum of the 16 lanes of acc[r] (exact i32). */
PQ_I8Z_FN __m512i pq_i8z_reduce16(const __m512i acc[16]) {
    __m512i u[4];
    for (int k = 0; k < 4; k++)
        u[k] = pq_i8z_sum4(pq_i8z_sum2(acc[4 * k], acc[4 * k + 1]),
                           pq_i8z_sum2(acc[4 * k + 2], acc[4 * k + 3]));
    return pq_i8z_sum8(pq_i8z_sum8(u[0], u[1]), pq_i8z_sum8(u[2], u[3]));
}

/* y[0 .. nr) for rows w, w + row_bytes, ... (nr <= 16; missing rows repeat the last one and are
 * not stored). */
PQ_I8Z_FN void pq_i8z_tile(int bits, const uint8_t *w, size_t row_bytes, int nr, int64_t cols,
                           int64_t group, float mult, const pq_piq_i8_act *a, float *y) {
    const int sb = PQ_I8Z_STEP_BYTES(bits);
    const int32_t off = 1 << (bits - 1);
    int32_t ro[PQ_I8Z_ROWS];
    for (int r = 0; r < PQ_I8Z_ROWS; r++)
        ro[r] = (int32_t)((size_t)(r < nr ? r : nr - 1) * row_bytes);
    const __m512i vro = _mm512_loadu_si512(ro);
    const __m512 vmult = _mm512_set1_ps(mult);
    size_t gbytes_full = 2 + pq_packed_code_bytes(bits == 3 ? PQ_QFORMAT_PIQ3 : PQ_QFORMAT_PIQ2,
                                                  group < cols ? group : cols);
    __m512 yacc = _mm512_setzero_ps();
    const uint8_t *p = w;
    for (int64_t g = 0; g < a->nblocks; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        int64_t cbytes = (int64_t)bits * ((n + 7) / 8);
        int64_t nch = (n + 63) / 64;
        int lastb = (int)(cbytes - (nch - 1) * sb);
        const __mmask64 mfull = ((__mmask64)1 << sb) - 1;
        const __mmask64 mlast = ((__mmask64)1 << lastb) - 1;
        const int8_t *xg = a->q + g * a->stride;
        const uint8_t *pf = p + PQ_I8Z_PREFETCH * gbytes_full;
        for (int r = 0; r < nr; r++)
            _mm_prefetch((const char *)(pf + ro[r]), _MM_HINT_T0);
        __m512i acc[PQ_I8Z_ROWS];
        for (int r = 0; r < PQ_I8Z_ROWS; r++)
            acc[r] = _mm512_setzero_si512();
        const uint8_t *c = p + 2;
        for (int64_t ch = 0; ch < nch; ch++, c += sb) {
            __mmask64 m = ch + 1 < nch ? mfull : mlast;
            __m512i xv = _mm512_load_si512((const void *)(xg + 64 * ch));
#pragma GCC unroll 16
            for (int r = 0; r < PQ_I8Z_ROWS; r++)
                acc[r] = _mm512_dpbusd_epi32(acc[r], pq_i8z_decode(bits, c + ro[r], m), xv);
        }
        __m512i d = pq_i8z_reduce16(acc);
        d = _mm512_sub_epi32(d, _mm512_set1_epi32(off * a->sum[g]));
        __m512i sw = _mm512_i32gather_epi32(vro, (const void *)p, 1);
        __m512 step = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(sw)), vmult);
        __m512 cg = _mm512_mul_ps(step, _mm512_set1_ps(a->scale[g]));
        __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(d), cg);
        yacc = _mm512_add_ps(yacc, t);
        p += 2 + cbytes;
    }
    _mm512_mask_storeu_ps(y, (__mmask16)((1u << nr) - 1u), yacc);
}

PQ_I8Z_FN void pq_i8z_gemv_bits(int bits, enum pq_qformat f, const uint8_t *w, int64_t rows,
                                int64_t cols, int64_t group, const pq_piq_i8_act *a, float *y) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    float mult = pq_qformat_step_mult(f);
    for (int64_t r = 0; r < rows; r += PQ_I8Z_ROWS) {
        int nr = rows - r < PQ_I8Z_ROWS ? (int)(rows - r) : PQ_I8Z_ROWS;
        pq_i8z_tile(bits, w + (size_t)r * row_bytes, row_bytes, nr, cols, group, mult, a, y + r);
    }
}

__attribute__((target("avx512vbmi"))) static void
pq_piq_gemv_i8_ukernel__avx512(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                               int64_t group, const pq_piq_i8_act *a, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    if (pq_qformat_bits(f) == 3)
        pq_i8z_gemv_bits(3, f, w, rows, cols, group, a, y);
    else
        pq_i8z_gemv_bits(2, f, w, rows, cols, group, a, y);
}

const pq_piq_i8_kernels pq_piq_i8_kernels_avx512 = {
    .isa = "avx512",
    .gemv = pq_piq_gemv_i8_ukernel__avx512,
};
