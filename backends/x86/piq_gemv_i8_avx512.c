/* AVX-512 VNNI + VBMI integer-activation PiQ GEMV: 64 codes per step decoded to bytes (3-bit: a
 * masked load, vpermb and vpmultishiftqb; 2-bit: a broadcast load and vpmultishiftqb), dotted with
 * the int8 activations by vpdpbusd; 16 rows at a time, their 16 group sums transposed into one
 * vector for the f32 epilogue (lane = row), bit-exact with the scalar reference. */
#include <immintrin.h>
#include <string.h>

#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/quant.h"

/* The file is built with the AVX-512 F/BW/VL/DQ/VNNI flags; VBMI is added per function. */
#define PQ_I8Z_FN static inline __attribute__((always_inline, target("avx512vbmi")))
#define PQ_I8Z_ROWS 16

/* Bytes of one 64-code step: 3-bit 24, 2-bit 16. */
#define PQ_I8Z_STEP_BYTES(bits) ((bits)*8)

/* Unsigned codes u (0 .. 2^bits - 1) of the 64 codes at c as bytes; bytes outside the load mask m
 * read as 0 (full: all 3 * 8 or 2 * 8 bytes, no mask needed).
 * bits = 3, natural order: vpermb puts the 3 bytes of code block k (8 codes) in qword k,
 * vpmultishiftqb moves code i of the block to byte i (bit offset 3 i), the and keeps it.
 * bits = 2, order pq_i8z_xperm2: the 16 bytes go to all four 128-bit lanes (a broadcast load, no
 * shuffle), and qword h of lane L takes codes 32 h + 8 L + i (bit offset 16 L + 2 i of the qword)
 * to byte i; the activations are permuted to match once per step, for all 16 rows. */
PQ_I8Z_FN __m512i pq_i8z_decode(int bits, const uint8_t *c, __mmask64 m, int full) {
    if (bits == 3) {
        const __m512i perm3 = _mm512_set_epi64(
            0x1717171717171615LL, 0x1414141414141312LL, 0x111111111111100FLL, 0x0E0E0E0E0E0E0D0CLL,
            0x0B0B0B0B0B0B0A09LL, 0x0808080808080706LL, 0x0505050505050403LL, 0x0202020202020100LL);
        const __m512i ctrl3 = _mm512_set1_epi64(0x15120F0C09060300LL);
        __m512i v = _mm512_maskz_loadu_epi8(m, c);
        v = _mm512_permutexvar_epi8(perm3, v);
        v = _mm512_multishift_epi64_epi8(ctrl3, v);
        return _mm512_and_si512(v, _mm512_set1_epi8(7));
    }
    const __m512i ctrl2 = _mm512_set_epi64(
        0x3E3C3A3836343230LL, 0x3E3C3A3836343230LL, 0x2E2C2A2826242220LL, 0x2E2C2A2826242220LL,
        0x1E1C1A1816141210LL, 0x1E1C1A1816141210LL, 0x0E0C0A0806040200LL, 0x0E0C0A0806040200LL);
    __m128i b = full ? _mm_loadu_si128((const __m128i *)c) : _mm_maskz_loadu_epi8((__mmask16)m, c);
    __m512i v = _mm512_multishift_epi64_epi8(ctrl2, _mm512_broadcast_i32x4(b));
    return _mm512_and_si512(v, _mm512_set1_epi8(3));
}

/* The 64 activation bytes of a step in the order pq_i8z_decode gives the codes: bits 3 natural;
 * bits 2 byte 8 (2 L + h) + i = activation 32 h + 8 L + i. */
PQ_I8Z_FN __m512i pq_i8z_xload(int bits, const int8_t *x) {
    __m512i xv = _mm512_load_si512((const void *)x);
    if (bits == 3) return xv;
    const __m512i idx = _mm512_set_epi64(
        0x3F3E3D3C3B3A3938LL, 0x1F1E1D1C1B1A1918LL, 0x3736353433323130LL, 0x1716151413121110LL,
        0x2F2E2D2C2B2A2928LL, 0x0F0E0D0C0B0A0908LL, 0x2726252423222120LL, 0x0706050403020100LL);
    return _mm512_permutexvar_epi8(idx, xv);
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

/* Lane r = the sum of the 16 lanes of a_r (exact i32). */
PQ_I8Z_FN __m512i pq_i8z_reduce16(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m512i a4,
                                  __m512i a5, __m512i a6, __m512i a7, __m512i a8, __m512i a9,
                                  __m512i a10, __m512i a11, __m512i a12, __m512i a13, __m512i a14,
                                  __m512i a15) {
    __m512i u0 = pq_i8z_sum4(pq_i8z_sum2(a0, a1), pq_i8z_sum2(a2, a3));
    __m512i u1 = pq_i8z_sum4(pq_i8z_sum2(a4, a5), pq_i8z_sum2(a6, a7));
    __m512i u2 = pq_i8z_sum4(pq_i8z_sum2(a8, a9), pq_i8z_sum2(a10, a11));
    __m512i u3 = pq_i8z_sum4(pq_i8z_sum2(a12, a13), pq_i8z_sum2(a14, a15));
    return pq_i8z_sum8(pq_i8z_sum8(u0, u1), pq_i8z_sum8(u2, u3));
}

/* y[0 .. nr) for rows w, w + row_bytes, ... (nr <= 16; missing rows repeat the last one and are
 * not stored). The tile reads its rows group by group (16 interleaved streams, which the hardware
 * prefetchers follow poorly), so it prefetches the next tile's bytes [pf, pf_end) into L2 as one
 * linear stream, an equal share per group. */
PQ_I8Z_FN void pq_i8z_tile(int bits, const uint8_t *w, size_t row_bytes, int nr, int64_t cols,
                           int64_t group, float mult, const pq_piq_i8_act *a, float *y,
                           const uint8_t *pf, const uint8_t *pf_end) {
    const int sb = PQ_I8Z_STEP_BYTES(bits);
    const int32_t off = 1 << (bits - 1);
    int32_t ro[PQ_I8Z_ROWS];
    for (int r = 0; r < PQ_I8Z_ROWS; r++)
        ro[r] = (int32_t)((size_t)(r < nr ? r : nr - 1) * row_bytes);
    const __m512i vro = _mm512_loadu_si512(ro);
    const __m512 vmult = _mm512_set1_ps(mult);
    __m512 yacc = _mm512_setzero_ps();
    const uint8_t *p = w;
    size_t pf_step =
        pf < pf_end ? ((size_t)(pf_end - pf) / (size_t)a->nblocks + 127) & ~(size_t)63 : 0;
    for (int64_t g = 0; g < a->nblocks; g++) {
        int64_t n = cols - g * group < group ? cols - g * group : group;
        int64_t cbytes = (int64_t)bits * ((n + 7) / 8);
        int64_t nch = (n + 63) / 64;
        int lastb = (int)(cbytes - (nch - 1) * sb);
        const __mmask64 mfull = ((__mmask64)1 << sb) - 1;
        const __mmask64 mlast = ((__mmask64)1 << lastb) - 1;
        const int8_t *xg = a->q + g * a->stride;
        for (const uint8_t *q = pf; q < pf + pf_step && q < pf_end; q += 64)
            _mm_prefetch((const char *)q, _MM_HINT_T1);
        pf += pf_step;
#define PQ_I8Z_REP(X)                                                                              \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define PQ_I8Z_DECL(r) __m512i a##r = _mm512_setzero_si512();
#define PQ_I8Z_DOT(r) a##r = _mm512_dpbusd_epi32(a##r, pq_i8z_decode(bits, c + ro[r], m, full), xv);
        PQ_I8Z_REP(PQ_I8Z_DECL)
        const uint8_t *c = p + 2;
        int64_t ch = 0;
        for (; ch + 1 < nch; ch++, c += sb) {
            const __mmask64 m = mfull;
            const int full = 1;
            __m512i xv = pq_i8z_xload(bits, xg + 64 * ch);
            PQ_I8Z_REP(PQ_I8Z_DOT)
        }
        {
            const __mmask64 m = mlast;
            const int full = 0;
            __m512i xv = pq_i8z_xload(bits, xg + 64 * ch);
            PQ_I8Z_REP(PQ_I8Z_DOT)
        }
        __m512i d =
            pq_i8z_reduce16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
#undef PQ_I8Z_DECL
#undef PQ_I8Z_DOT
#undef PQ_I8Z_REP
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
    const uint8_t *end = w + (size_t)rows * row_bytes;
    for (int64_t r = 0; r < rows; r += PQ_I8Z_ROWS) {
        int nr = rows - r < PQ_I8Z_ROWS ? (int)(rows - r) : PQ_I8Z_ROWS;
        const uint8_t *t = w + (size_t)r * row_bytes, *next = t + (size_t)nr * row_bytes;
        const uint8_t *next_end = next + PQ_I8Z_ROWS * row_bytes;
        pq_i8z_tile(bits, t, row_bytes, nr, cols, group, mult, a, y + r, next,
                    next_end < end ? next_end : end);
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
