/* AVX2 INT8 GEMM without VNNI: both operands pre-widened to i16 at pack time (u8 zero-extended,
 * s8 sign-extended) and multiplied with vpmaddwd, whose pair sums of u8 x s8 products cannot
 * saturate. vpmaddubsw is never used: it saturates the i16 pair sum (255*127*2 > 32767). */
#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"
#include "int8_requant_x86.h"

#define PQ_I8A_MR 6
#define PQ_I8A_NR 16

/* With toff non-NULL the rows are read at ntaps bases a0 + toff[t], kq pairs each, the panel's
 * pairs following one another across taps (the implicit-GEMM form, pq_i8_taps_fn, on the
 * zero-extended i16 copy). */
static inline __attribute__((always_inline)) void
pq_i8_avx2_tile_taps(int MR, size_t kq, const uint8_t *a0, size_t lda, size_t qs,
                     const size_t *toff, int ntaps, const int16_t *p, int32_t *c,
                     const pq_i8_tile_ep *ep) {
    /* named accumulators: an array indexed in the loop made gcc spill and copy them */
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define PQ_I8A_ROW(R)                                                                              \
    if (MR > R) {                                                                                  \
        int32_t pair;                                                                              \
        memcpy(&pair, a + (size_t)R * lda + o, 4);                                                 \
        __m256i av = _mm256_set1_epi32(pair);                                                      \
        c##R##0 = _mm256_add_epi32(c##R##0, _mm256_madd_epi16(av, b0));                            \
        c##R##1 = _mm256_add_epi32(c##R##1, _mm256_madd_epi16(av, b1));                            \
    }
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *a = toff ? a0 + toff[t] : a0;
        size_t o = 0;
        for (size_t q = 0; q < kq; q++, p += 2 * PQ_I8A_NR, o += qs) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)p);
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(p + 16));
            PQ_I8A_ROW(0)
            PQ_I8A_ROW(1)
            PQ_I8A_ROW(2)
            PQ_I8A_ROW(3)
            PQ_I8A_ROW(4)
            PQ_I8A_ROW(5)
        }
    }
#undef PQ_I8A_ROW
    __m256i acc[PQ_I8A_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                 {c30, c31}, {c40, c41}, {c50, c51}};
    if (!c == !ep) __builtin_unreachable(); /* exactly one (constant after inlining) */
    if (!c) {
        pq_i8_ep16 e;
        pq_i8_ep16_init(&e, ep);
        pq_i8_ep16_rows(MR, &e, ep, acc);
        return;
    }
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_si256((__m256i *)(c + r * PQ_I8A_NR), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(c + r * PQ_I8A_NR + 8), acc[r][1]);
    }
}

static inline __attribute__((always_inline)) void
pq_i8_avx2_tile(int MR, size_t kq, const uint8_t *a, size_t lda, size_t qs, const int16_t *p,
                int32_t *c, const pq_i8_tile_ep *ep) {
    pq_i8_avx2_tile_taps(MR, kq, a, lda, qs, NULL, 1, p, c, ep);
}

#define PQ_I8A_SWITCH(C, EP)                                                                       \
    switch (mr) {                                                                                  \
    case 1:                                                                                        \
        pq_i8_avx2_tile(1, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    case 2:                                                                                        \
        pq_i8_avx2_tile(2, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    case 3:                                                                                        \
        pq_i8_avx2_tile(3, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    case 4:                                                                                        \
        pq_i8_avx2_tile(4, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    case 5:                                                                                        \
        pq_i8_avx2_tile(5, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    default:                                                                                       \
        pq_i8_avx2_tile(6, kq, a, lda, qs, p, C, EP);                                              \
        break;                                                                                     \
    }

static void pq_i8_gemm_ukernel__avx2_6x16(int mr, size_t kq, const void *a, size_t lda, size_t qs,
                                          const void *p, int32_t *c) {
    PQ_I8A_SWITCH(c, NULL)
}

static void pq_i8_gemm_ukernel_rq__avx2_6x16(int mr, size_t kq, const void *a, size_t lda,
                                             size_t qs, const void *p, const pq_i8_tile_ep *ep) {
    PQ_I8A_SWITCH(NULL, ep)
}

/* The implicit-GEMM tile (pq_i8_taps_fn): 6 output positions x 16 channels, every tap, on the
 * i16 copy (2 channels per 4-byte unit) and i16 weight panels. */
static void pq_i8_taps__avx2_6x16(int mr, const uint8_t *x, size_t lda, const size_t *toff,
                                  int ntaps, size_t cq, const void *p, const pq_i8_tile_ep *ep) {
    const int16_t *pp = p;
#define PQ_I8A_TAPS(R) pq_i8_avx2_tile_taps(R, cq, x, lda, 4, toff, ntaps, pp, NULL, ep)
    switch (mr) {
    case 1:
        PQ_I8A_TAPS(1);
        break;
    case 2:
        PQ_I8A_TAPS(2);
        break;
    case 3:
        PQ_I8A_TAPS(3);
        break;
    case 4:
        PQ_I8A_TAPS(4);
        break;
    case 5:
        PQ_I8A_TAPS(5);
        break;
    default:
        PQ_I8A_TAPS(6);
        break;
    }
#undef PQ_I8A_TAPS
}

static void pq_i8_requant__avx2(const int32_t *acc, size_t n, int32_t add, float ms,
                                const float *mv, const pq_i8_act *act, int32_t zp, uint8_t *y) {
    pq_i8_requant_body__avx2(acc, n, add, ms, mv, act, zp, y);
}

static void pq_i8_dwc__avx2(const pq_i8_dwc *a) {
    pq_i8_dwc_body__avx2(a);
}

const pq_i8_kernels pq_i8_kernels_avx2 = {
    .isa = PQ_I8_AVX2,
    .name = "avx2",
    .mr = PQ_I8A_MR,
    .nr = PQ_I8A_NR,
    .kb = 2,
    .elem = 2,
    .flip = false,
    .ukernel = {pq_i8_gemm_ukernel__avx2_6x16, pq_i8_gemm_ukernel__avx2_6x16},
    .ukernel_rq = {pq_i8_gemm_ukernel_rq__avx2_6x16, pq_i8_gemm_ukernel_rq__avx2_6x16},
    .requant = pq_i8_requant__avx2,
    .dwc = pq_i8_dwc__avx2,
    .dwc_lanes = 16,
    .taps = pq_i8_taps__avx2_6x16,
};
