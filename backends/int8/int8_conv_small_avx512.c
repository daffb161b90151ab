/* The AVX-512 VBMI gather of the small-convolution path (int8_conv_small.h): one vpermi2b over two
 * input planes per 64-byte store of the panels, masked to the taps inside the image, zp_x blended
 * into the padding. */
#include <immintrin.h>

#include "int8_conv_small.h"

__attribute__((target("avx512vbmi"))) void
pq_i8_small_pack__avx512vbmi(const pq_i8_small *s, const uint8_t *x, uint8_t zp, uint8_t *dst) {
    size_t hw = (size_t)(s->g.H * s->g.W);
    __mmask64 lm = hw >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << hw) - 1);
    __m512i vz = _mm512_set1_epi8((char)zp);
    const pq_i8_small_ent *e = s->e;
    for (size_t i = 0; i < s->n; i++, e++) {
        /* masked loads: no byte past a plane is touched (the last plane ends the tensor) */
        __m512i a = _mm512_maskz_loadu_epi8(lm, x + e->oa);
        __m512i b = _mm512_maskz_loadu_epi8(lm, x + e->ob);
        __m512i v = _mm512_maskz_permutex2var_epi8(e->kval, a, _mm512_load_si512(e->idx), b);
        _mm512_store_si512(dst + e->dst, _mm512_mask_mov_epi8(v, e->kpad, vz));
    }
}
