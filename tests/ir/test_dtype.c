/* Tests of element types and the f16/bf16 conversions (round to nearest even, subnormals,
 * infinities, NaN). */
#include <criterion/criterion.h>
#include <math.h>

#include "ir/ir.h"

Test(dtype, f16_exact_values) {
    cr_assert_eq(pq_f32_to_f16(1.0f), 0x3C00);
    cr_assert_eq(pq_f32_to_f16(-2.0f), 0xC000);
    cr_assert_eq(pq_f32_to_f16(65504.0f), 0x7BFF);
    cr_assert_eq(pq_f32_to_f16(65520.0f), 0x7C00); /* rounds up to inf */
    cr_assert_eq(pq_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
    cr_assert_eq(pq_f32_to_f16(0x1p-25f), 0x0000); /* tie -> even (0) */
    cr_assert_eq(pq_f32_to_f16(0x1.8p-25f), 0x0001);
    cr_assert_eq(pq_f32_to_f16(0x1p-14f), 0x0400); /* smallest normal */
    cr_assert_eq(pq_f32_to_f16(INFINITY), 0x7C00);
    cr_assert_eq(pq_f32_to_f16(-INFINITY), 0xFC00);
    cr_assert(isnan(pq_f16_to_f32(pq_f32_to_f16(NAN))));
    /* ties to even: 1 + 2^-11 lies halfway between 1 and 1+2^-10 -> 1 */
    cr_assert_eq(pq_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);
    cr_assert_eq(pq_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);
}

Test(dtype, f16_roundtrip_all_codes) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = pq_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        cr_assert_eq(pq_f32_to_f16(f), h, "code %04x", h);
    }
}

Test(dtype, bf16) {
    cr_assert_eq(pq_f32_to_bf16(1.0f), 0x3F80);
    cr_assert_eq(pq_bf16_to_f32(0x3F80), 1.0f);
    cr_assert(isnan(pq_bf16_to_f32(pq_f32_to_bf16(NAN))));
}

Test(dtype, names) {
    enum pq_dtype t;
    cr_assert(pq_dtype_from_name("i64", &t));
    cr_assert_eq(t, PQ_DTYPE_I64);
    cr_assert_not(pq_dtype_from_name("f8", &t));
    cr_assert_eq(pq_dtype_size(PQ_DTYPE_BOOL), 1);
}
