/* Portable INT8 kernels: the scalar micro-kernel (i16 pairs, the AVX2 layout) and the scalar
 * requantization epilogue, which mirrors the reference (NaN and infinite multipliers included)
 * and is the fallback of every SIMD epilogue. */
#include "int8_gemm.h"

#include <string.h>

void pq_i8_requant__scalar(const int32_t *acc, size_t n, int32_t add, float ms, const float *mv,
                           const pq_i8_act *act, int32_t zp, uint8_t *y) {
    for (size_t j = 0; j < n; j++) {
        int32_t t = (int32_t)((uint32_t)acc[j] + (uint32_t)add);
        y[j] = act ? pq_i8_rq1_act(t, mv ? mv[j] : ms, act, zp) : pq_i8_rq1(t, mv ? mv[j] : ms, zp);
    }
}

#define PQ_I8S_MR 4
#define PQ_I8S_NR 8

/* Packed i16 pairs: rows a[r][2q + t], panel p[(q * 8 + j) * 2 + t]. Products fit i32; the sum
 * wraps like the SIMD accumulators (unsigned arithmetic, no undefined overflow). One row at a
 * time: with the rows as the inner loop, gcc 12 at -O3 vectorized across them and read past the
 * last row (a segfault when the rows ended at a page; test int8_kernels/ukernel_reads_in_bounds).
 */
static void pq_i8_gemm_ukernel__scalar(int mr, size_t kq, const void *a, size_t lda, size_t qs,
                                       const void *p, int32_t *c) {
    for (int r = 0; r < mr; r++) {
        uint32_t acc[PQ_I8S_NR] = {0};
        const int16_t *pp = p;
        const uint8_t *ar = (const uint8_t *)a + (size_t)r * lda;
        for (size_t q = 0; q < kq; q++, pp += 2 * PQ_I8S_NR) {
            int16_t pair[2];
            memcpy(pair, ar + q * qs, sizeof pair);
            int32_t a0 = pair[0], a1 = pair[1];
            for (int j = 0; j < PQ_I8S_NR; j++)
                acc[j] += (uint32_t)(a0 * pp[2 * j] + a1 * pp[2 * j + 1]);
        }
        for (int j = 0; j < PQ_I8S_NR; j++)
            c[r * PQ_I8S_NR + j] = (int32_t)acc[j];
    }
}

const pq_i8_kernels pq_i8_kernels_scalar = {
    .isa = PQ_I8_SCALAR,
    .name = "scalar",
    .mr = PQ_I8S_MR,
    .nr = PQ_I8S_NR,
    .kb = 2,
    .elem = 2,
    .flip = false,
    .ukernel = {pq_i8_gemm_ukernel__scalar, pq_i8_gemm_ukernel__scalar},
    .ukernel_rq = {NULL, NULL},
    .requant = pq_i8_requant__scalar,
};
