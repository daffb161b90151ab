/* MaxPool on u8 / s8 planes of at most 64 bytes with AVX-512 VBMI (qdq_ops.h): a plane in one
 * register, every window tap one vpermb of it (zero outside the plane), the maxima of those. */
#include <immintrin.h>

#include "qdq_ops.h"

__attribute__((target("avx512vbmi"))) void
pq_i8_pool_small__avx512vbmi(const uint8_t *x, int64_t nc, int64_t hw, uint8_t *y, int64_t ohw,
                             int taps, const uint8_t (*idx)[64], const uint64_t *km, uint8_t bias) {
    __mmask64 li = hw >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << hw) - 1);
    __mmask64 lo = ohw >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << ohw) - 1);
    __m512i vb = _mm512_set1_epi8((char)bias);
    for (int64_t c = 0; c < nc; c++, x += hw, y += ohw) {
        /* s8 as u8 ^ 0x80: the order of the bytes then is the order of the values, and a zero
         * byte (a tap outside the plane) is never above an in-plane one */
        __m512i a = _mm512_xor_si512(_mm512_maskz_loadu_epi8(li, x), vb);
        __m512i m = _mm512_maskz_permutexvar_epi8(km[0], _mm512_load_si512(idx[0]), a);
        for (int t = 1; t < taps; t++)
            m = _mm512_max_epu8(m,
                                _mm512_maskz_permutexvar_epi8(km[t], _mm512_load_si512(idx[t]), a));
        _mm512_mask_storeu_epi8(y, lo, _mm512_xor_si512(m, vb));
    }
}
