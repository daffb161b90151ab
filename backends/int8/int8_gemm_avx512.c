/* AVX-512 VNNI INT8 GEMM: 512-bit vpdpbusd (u8 x s8 quads into i32 lanes, no intermediate
 * saturation), 8 rows x 32 lanes per micro-kernel call, and a masked AVX-512 requantization
 * epilogue (double multiply, round half to even, clamp) with no scalar tail. */
#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"

#define PQ_I8Z_MR 8
#define PQ_I8Z_NR 32

/* rows_u8: dpbusd(acc, rows (u8), panel (s8)); else dpbusd(acc, panel (u8), rows (s8)). */
static inline __attribute__((always_inline)) void pq_i8_avx512_tile(int MR, int rows_u8, size_t kq,
                                                                    const uint8_t *a, size_t lda,
                                                                    const uint8_t *p, int32_t *c) {
    __m512i acc[PQ_I8Z_MR][2];
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t q = 0; q < kq; q++, p += 4 * PQ_I8Z_NR) {
        __m512i b0 = _mm512_loadu_si512((const void *)p);
        __m512i b1 = _mm512_loadu_si512((const void *)(p + 64));
        for (int r = 0; r < MR; r++) {
            int32_t quad;
            memcpy(&quad, a + (size_t)r * lda + 4 * q, 4);
            __m512i av = _mm512_set1_epi32(quad);
            if (rows_u8) {
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
            } else {
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, av);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, av);
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_si512((void *)(c + r * PQ_I8Z_NR), acc[r][0]);
        _mm512_storeu_si512((void *)(c + r * PQ_I8Z_NR + 16), acc[r][1]);
    }
}

#define PQ_I8Z_SWITCH(U)                                                                           \
    switch (mr) {                                                                                  \
    case 1:                                                                                        \
        pq_i8_avx512_tile(1, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 2:                                                                                        \
        pq_i8_avx512_tile(2, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 3:                                                                                        \
        pq_i8_avx512_tile(3, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 4:                                                                                        \
        pq_i8_avx512_tile(4, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 5:                                                                                        \
        pq_i8_avx512_tile(5, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 6:                                                                                        \
        pq_i8_avx512_tile(6, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    case 7:                                                                                        \
        pq_i8_avx512_tile(7, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    default:                                                                                       \
        pq_i8_avx512_tile(8, U, kq, a, lda, p, c);                                                 \
        break;                                                                                     \
    }

static void pq_i8_gemm_ukernel__avx512vnni_8x32_su(int mr, size_t kq, const void *a, size_t lda,
                                                   const void *p, int32_t *c) {
    PQ_I8Z_SWITCH(0)
}

static void pq_i8_gemm_ukernel__avx512vnni_8x32_us(int mr, size_t kq, const void *a, size_t lda,
                                                   const void *p, int32_t *c) {
    PQ_I8Z_SWITCH(1)
}

/* 8 lanes: nearbyint(((double)acc + bias) * m) clamped to [-1024, 1024] (values beyond leave
 * [0, 255] after adding a zero point in [0, 255] either way), as i32. Finite bias and m. */
static inline __m256i pq_i8_rq8__avx512(__m256i acc, __m512d bias, __m512d m) {
    __m512d v = _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepi32_pd(acc), bias), m);
    v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(-1024.0)), _mm512_set1_pd(1024.0));
    return _mm512_cvtpd_epi32(v);
}

static void pq_i8_requant__avx512(const int32_t *acc, size_t n, double bias, double ms,
                                  const double *mv, int32_t zp, uint8_t *y) {
    __m512d vb = _mm512_set1_pd(bias), vm = _mm512_set1_pd(ms);
    __m512i vz = _mm512_set1_epi32(zp), lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
    for (size_t j = 0; j < n; j += 16) {
        size_t left = n - j < 16 ? n - j : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1u);
        __mmask8 k0 = (__mmask8)(k & 0xff), k1 = (__mmask8)(k >> 8);
        __m512i a = _mm512_maskz_loadu_epi32(k, acc + j);
        __m512d m0 = mv ? _mm512_maskz_loadu_pd(k0, mv + j) : vm;
        __m512d m1 = mv ? _mm512_maskz_loadu_pd(k1, mv + j + 8) : vm;
        __m256i q0 = pq_i8_rq8__avx512(_mm512_castsi512_si256(a), vb, m0);
        __m256i q1 = pq_i8_rq8__avx512(_mm512_extracti64x4_epi64(a, 1), vb, m1);
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, vz), lo), hi);
        _mm_mask_storeu_epi8(y + j, k, _mm512_cvtepi32_epi8(q));
    }
}

const pq_i8_kernels pq_i8_kernels_avx512 = {
    .isa = PQ_I8_AVX512,
    .name = "avx512",
    .mr = PQ_I8Z_MR,
    .nr = PQ_I8Z_NR,
    .kb = 4,
    .elem = 1,
    .flip = false,
    .ukernel = {pq_i8_gemm_ukernel__avx512vnni_8x32_su, pq_i8_gemm_ukernel__avx512vnni_8x32_us},
    .requant = pq_i8_requant__avx512,
};
