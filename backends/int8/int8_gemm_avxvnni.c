/* AVX-VNNI (VEX-encoded 256-bit vpdpbusd) INT8 GEMM: u8 x s8 quads summed into i32 lanes without
 * intermediate saturation. Built with -mavxvnni (the _avxvnni file-name rule); an empty table
 * (NULL kernels, never selected) when the compiler does not know the ISA. */
#include <string.h>

#include "int8_gemm.h"

#if defined(__AVXVNNI__)
#include <immintrin.h>

#include "int8_requant_x86.h"

#define PQ_I8V_MR 6
#define PQ_I8V_NR 16

/* rows_u8: dpbusd(acc, rows (u8), panel (s8)); else dpbusd(acc, panel (u8), rows (s8)). With
 * toff non-NULL the rows are read at ntaps bases a + toff[t], kq quads each, the panel's quads
 * following one another across taps (the implicit-GEMM form, pq_i8_taps_fn). */
static inline __attribute__((always_inline)) void
pq_i8_avxvnni_tile_taps(int MR, int rows_u8, size_t kq, const uint8_t *a0, size_t lda, size_t qs,
                        const size_t *toff, int ntaps, const uint8_t *p, int32_t *c,
                        const pq_i8_tile_ep *ep) {
    /* named accumulators: an array indexed in the loop made gcc spill and copy them */
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define PQ_I8V_ROW(R)                                                                              \
    if (MR > R) {                                                                                  \
        int32_t quad;                                                                              \
        memcpy(&quad, a + (size_t)R * lda + o, 4);                                                 \
        __m256i av = _mm256_set1_epi32(quad);                                                      \
        if (rows_u8) {                                                                             \
            c##R##0 = _mm256_dpbusd_avx_epi32(c##R##0, av, b0);                                    \
            c##R##1 = _mm256_dpbusd_avx_epi32(c##R##1, av, b1);                                    \
        } else {                                                                                   \
            c##R##0 = _mm256_dpbusd_avx_epi32(c##R##0, b0, av);                                    \
            c##R##1 = _mm256_dpbusd_avx_epi32(c##R##1, b1, av);                                    \
        }                                                                                          \
    }
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *a = toff ? a0 + toff[t] : a0;
        size_t o = 0;
        for (size_t q = 0; q < kq; q++, p += 4 * PQ_I8V_NR, o += qs) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)p);
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(p + 32));
            PQ_I8V_ROW(0)
            PQ_I8V_ROW(1)
            PQ_I8V_ROW(2)
            PQ_I8V_ROW(3)
            PQ_I8V_ROW(4)
            PQ_I8V_ROW(5)
        }
    }
#undef PQ_I8V_ROW
    __m256i acc[PQ_I8V_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                 {c30, c31}, {c40, c41}, {c50, c51}};
    if (!c == !ep) __builtin_unreachable(); /* exactly one (constant after inlining) */
    if (!c) {
        pq_i8_ep16 e;
        pq_i8_ep16_init(&e, ep);
        pq_i8_ep16_rows(MR, &e, ep, acc);
        return;
    }
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_si256((__m256i *)(c + r * PQ_I8V_NR), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(c + r * PQ_I8V_NR + 8), acc[r][1]);
    }
}

static inline __attribute__((always_inline)) void
pq_i8_avxvnni_tile(int MR, int rows_u8, size_t kq, const uint8_t *a, size_t lda, size_t qs,
                   const uint8_t *p, int32_t *c, const pq_i8_tile_ep *ep) {
    pq_i8_avxvnni_tile_taps(MR, rows_u8, kq, a, lda, qs, NULL, 1, p, c, ep);
}

#define PQ_I8V_SWITCH(U, C, EP)                                                                    \
    switch (mr) {                                                                                  \
    case 1:                                                                                        \
        pq_i8_avxvnni_tile(1, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    case 2:                                                                                        \
        pq_i8_avxvnni_tile(2, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    case 3:                                                                                        \
        pq_i8_avxvnni_tile(3, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    case 4:                                                                                        \
        pq_i8_avxvnni_tile(4, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    case 5:                                                                                        \
        pq_i8_avxvnni_tile(5, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    default:                                                                                       \
        pq_i8_avxvnni_tile(6, U, kq, a, lda, qs, p, C, EP);                                        \
        break;                                                                                     \
    }

static void pq_i8_gemm_ukernel__avxvnni_6x16_su(int mr, size_t kq, const void *a, size_t lda,
                                                size_t qs, const void *p, int32_t *c) {
    PQ_I8V_SWITCH(0, c, NULL)
}

static void pq_i8_gemm_ukernel__avxvnni_6x16_us(int mr, size_t kq, const void *a, size_t lda,
                                                size_t qs, const void *p, int32_t *c) {
    PQ_I8V_SWITCH(1, c, NULL)
}

static void pq_i8_gemm_ukernel_rq__avxvnni_6x16_su(int mr, size_t kq, const void *a, size_t lda,
                                                   size_t qs, const void *p,
                                                   const pq_i8_tile_ep *ep) {
    PQ_I8V_SWITCH(0, NULL, ep)
}

static void pq_i8_gemm_ukernel_rq__avxvnni_6x16_us(int mr, size_t kq, const void *a, size_t lda,
                                                   size_t qs, const void *p,
                                                   const pq_i8_tile_ep *ep) {
    PQ_I8V_SWITCH(1, NULL, ep)
}

/* The implicit-GEMM tile (pq_i8_taps_fn): 6 output positions x 16 channels, every tap. */
static void pq_i8_taps__avxvnni_6x16(int mr, const uint8_t *x, size_t lda, const size_t *toff,
                                     int ntaps, size_t cq, const void *p, const pq_i8_tile_ep *ep) {
    const uint8_t *pp = p;
#define PQ_I8V_TAPS(R) pq_i8_avxvnni_tile_taps(R, 1, cq, x, lda, 4, toff, ntaps, pp, NULL, ep)
    switch (mr) {
    case 1:
        PQ_I8V_TAPS(1);
        break;
    case 2:
        PQ_I8V_TAPS(2);
        break;
    case 3:
        PQ_I8V_TAPS(3);
        break;
    case 4:
        PQ_I8V_TAPS(4);
        break;
    case 5:
        PQ_I8V_TAPS(5);
        break;
    default:
        PQ_I8V_TAPS(6);
        break;
    }
#undef PQ_I8V_TAPS
}

static void pq_i8_requant__avxvnni(const int32_t *acc, size_t n, int32_t add, float ms,
                                   const float *mv, const pq_i8_act *act, int32_t zp, uint8_t *y) {
    pq_i8_requant_body__avx2(acc, n, add, ms, mv, act, zp, y);
}

static void pq_i8_dwc__avxvnni(const pq_i8_dwc *a) {
    pq_i8_dwc_body__avx2(a);
}

const pq_i8_kernels pq_i8_kernels_avxvnni = {
    .isa = PQ_I8_AVXVNNI,
    .name = "avxvnni",
    .mr = PQ_I8V_MR,
    .nr = PQ_I8V_NR,
    .kb = 4,
    .elem = 1,
    .flip = false,
    .ukernel = {pq_i8_gemm_ukernel__avxvnni_6x16_su, pq_i8_gemm_ukernel__avxvnni_6x16_us},
    .ukernel_rq = {pq_i8_gemm_ukernel_rq__avxvnni_6x16_su, pq_i8_gemm_ukernel_rq__avxvnni_6x16_us},
    .requant = pq_i8_requant__avxvnni,
    .dwc = pq_i8_dwc__avxvnni,
    .dwc_lanes = 16,
    .taps = pq_i8_taps__avxvnni_6x16,
};
#else
const pq_i8_kernels pq_i8_kernels_avxvnni = {
    .isa = PQ_I8_AVXVNNI, .name = "avxvnni", .mr = 1, .nr = 1, .kb = 4, .elem = 1};
#endif
