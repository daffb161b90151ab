/* AVX-512 VBMI rows of the INT8 convolution's padded, phase-split input copy (pq_i8_pad_task in
 * int8_ops.c): a stride-2 row's two column phases straight from the input row. */
#include <immintrin.h>

#include "int8_internal.h"

__attribute__((target("avx512vbmi"))) void
pq_i8_split2__avx512(const uint8_t *x, int64_t W, int64_t pl, uint8_t zp, size_t wq, uint8_t *d) {
    __m512i zq = _mm512_set1_epi8((char)zp);
    _Alignas(64) uint8_t ev[64], od[64];
    for (int j = 0; j < 64; j++) {
        ev[j] = (uint8_t)(2 * j);
        od[j] = (uint8_t)(2 * j + 1);
    }
    __m512i ie = _mm512_load_si512((const void *)ev), io = _mm512_load_si512((const void *)od);
    for (size_t i0 = 0; i0 < wq; i0 += 64) {
        /* padded columns 2 i0 .. 2 i0 + 127 are input columns c0 .. c0 + 127 (zp outside) */
        int64_t c0 = 2 * (int64_t)i0 - pl;
        __m512i lo = _mm512_mask_loadu_epi8(zq, pq_i8_bits64(-c0, W - c0), x + c0);
        __m512i hi = _mm512_mask_loadu_epi8(zq, pq_i8_bits64(-c0 - 64, W - c0 - 64), x + c0 + 64);
        __mmask64 k = pq_i8_bits64(0, (int64_t)(wq - i0));
        _mm512_mask_storeu_epi8(d + i0, k, _mm512_permutex2var_epi8(lo, ie, hi));
        _mm512_mask_storeu_epi8(d + wq + i0, k, _mm512_permutex2var_epi8(lo, io, hi));
    }
}
