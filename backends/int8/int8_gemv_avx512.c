/* One row against packed panels on AVX-512 VNNI (a QLinearMatMul of one row, the classifier of a
 * small CNN): four independent accumulator pairs over the quads instead of one dependent chain,
 * summed (exact, wrapping i32) before the shared epilogue; bytes as the 8 x 32 micro-kernel's. */
#include <immintrin.h>
#include <string.h>

#include "int8_gemm.h"
#include "int8_internal.h"
#include "int8_requant_avx512.h"

void pq_i8_gemv_rq__avx512vnni(size_t kq, const uint8_t *a, const uint8_t *p,
                               const pq_i8_tile_ep *ep) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, t0 = s0, t1 = s0, u0 = s0, u1 = s0, v0 = s0;
    __m512i v1 = s0;
    size_t q = 0;
#define PQ_I8G_STEP(X0, X1, Q)                                                                     \
    do {                                                                                           \
        int32_t qv;                                                                                \
        memcpy(&qv, a + 4 * (Q), 4);                                                               \
        __m512i av = _mm512_set1_epi32(qv);                                                        \
        const uint8_t *pp = p + (Q)*4 * PQ_I8Z_NR;                                                 \
        X0 = _mm512_dpbusd_epi32(X0, av, _mm512_loadu_si512((const void *)pp));                    \
        X1 = _mm512_dpbusd_epi32(X1, av, _mm512_loadu_si512((const void *)(pp + 64)));             \
    } while (0)
    for (; q + 4 <= kq; q += 4) {
        PQ_I8G_STEP(s0, s1, q);
        PQ_I8G_STEP(t0, t1, q + 1);
        PQ_I8G_STEP(u0, u1, q + 2);
        PQ_I8G_STEP(v0, v1, q + 3);
    }
    for (; q < kq; q++)
        PQ_I8G_STEP(s0, s1, q);
#undef PQ_I8G_STEP
    __m512i acc[1][2] = {{_mm512_add_epi32(_mm512_add_epi32(s0, t0), _mm512_add_epi32(u0, v0)),
                          _mm512_add_epi32(_mm512_add_epi32(s1, t1), _mm512_add_epi32(u1, v1))}};
    pq_i8_avx512_finish(1, acc, NULL, ep);
}
