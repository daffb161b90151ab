/* The divide-free f32 division of the x86 INT8 element-wise kernels (backends/int8/qdiv_x86.h,
 * exposed as pq_qdq_kernels.div) against the IEEE f32 quotient x / s, bit for bit, on millions of
 * values: random bit patterns (every class), values next to the rounding ties (k + 1/2) s,
 * quotients near the overflow and subnormal thresholds; scales that are powers of two, near 1,
 * tiny, huge, subnormal, random, negative, 0, inf and NaN. Then the quantizer itself on near-ties
 * vs scalar. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/int8/qdq_ops.h"
#include "ir/alloc.h"

static uint64_t g_s = 0x452821E638D01377ULL;
static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
}

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* A random finite normal float of either sign. */
static float rnd_normal(void) {
    uint32_t u = (uint32_t)rnd();
    uint32_t e = 1 + (uint32_t)(rnd() % 254);
    return bits_f((u & 0x807FFFFFu) | (e << 23));
}

/* The i-th test value for divisor s (kinds cycle through the classes). */
static float sample(float s, uint64_t i) {
    switch (i % 8) {
    case 0: /* any bit pattern: subnormals, infinities, NaNs included */
        return bits_f((uint32_t)rnd());
    case 1:
    case 2:
        return rnd_normal();
    case 3:
    case 4:
    case 5: { /* within a few ulps of (k + 1/2) s, |k| < 1024: the integer rounding's ties */
        double k = (double)(int64_t)(rnd() % 2048) - 1024.0 + 0.5;
        float t = (float)(k * (double)s);
        int d = (int)(rnd() % 9) - 4;
        for (; d > 0; d--)
            t = nextafterf(t, INFINITY);
        for (; d < 0; d++)
            t = nextafterf(t, -INFINITY);
        return t;
    }
    case 6: /* quotients near the f32 overflow threshold */
        return (float)((double)FLT_MAX * (double)s *
                       (1.0 + ((double)(rnd() % 2001) - 1000.0) * 1e-9));
    default: /* quotients near and below the smallest normal */
        return (float)((double)FLT_MIN * (double)s * ((double)(rnd() % 4000) / 1000.0));
    }
}

/* Whether q is an acceptable x / s: the same bits (or both NaN), or, for quotients below the
 * normal range, within one subnormal ulp (both then round to the integer 0). Counts those. */
static bool same_quotient(float x, float s, float q, size_t *subn) {
    float r = x / s;
    if (f_bits(q) == f_bits(r) || (isnan(q) && isnan(r))) return true;
    if (fabsf(r) <= FLT_MIN && fabsf(q) <= FLT_MIN && signbit(q) == signbit(r)) {
        int64_t d = (int64_t)f_bits(q) - (int64_t)f_bits(r);
        if (d >= -1 && d <= 1 && nearbyintf(q) == 0.0f && nearbyintf(r) == 0.0f) {
            (*subn)++;
            return true;
        }
    }
    return false;
}

#define NVAL 262144

static void check_div(const char *isa) {
    const pq_qdq_kernels *k = pq_qdq_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    cr_assert_not_null(k->div);
    float fixed[] = {1.0f,
                     0.5f,
                     2.0f,
                     0x1p-20f,
                     0x1p20f,
                     0x1p-126f,
                     0x1p127f,
                     0x1p-149f, /* subnormal */
                     1e-40f,
                     nextafterf(1.0f, 0.0f),
                     nextafterf(1.0f, 2.0f),
                     1.0f + 3 * FLT_EPSILON,
                     1.0f - 5 * FLT_EPSILON / 2,
                     3.0f,
                     0.1f,
                     0.0173f,
                     1.0f / 255.0f,
                     0x1.fffffep-1f, /* all-ones significand */
                     0x1.fffffep+5f,
                     1e-30f,
                     1e30f,
                     3e38f,
                     FLT_MAX,
                     -0.25f,
                     -0.0173f,
                     0.0f,
                     -0.0f,
                     INFINITY,
                     NAN};
    int nfixed = (int)(sizeof fixed / sizeof fixed[0]), nscales = nfixed + 150;
    float *x = pq_malloc(NVAL * sizeof(float)), *q = pq_malloc((NVAL + 1) * sizeof(float));
    cr_assert(x && q);
    size_t total = 0, subn = 0;
    for (int si = 0; si < nscales; si++) {
        float s;
        if (si < nfixed)
            s = fixed[si];
        else if (si % 3 == 0) /* random positive normal */
            s = fabsf(rnd_normal());
        else if (si % 3 == 1) /* quantization-like: [1e-4, 1) */
            s = (float)(1e-4 + (double)(rnd() % 1000000) / 1e6);
        else /* near 1, a few ulps either side */
            s = bits_f(f_bits(1.0f) + (uint32_t)(rnd() % 64) - 32u);
        size_t n = si < nfixed ? NVAL : NVAL / 4;
        for (size_t i = 0; i < n; i++)
            x[i] = sample(s, i + (size_t)si);
        size_t len = n - (size_t)(si % 16); /* tails */
        q[len] = 1234.5f;                   /* guard */
        k->div(x, len, s, q);
        cr_assert_eq(q[len], 1234.5f, "%s: div wrote past its end", isa);
        for (size_t i = 0; i < len; i++)
            if (!same_quotient(x[i], s, q[i], &subn))
                cr_assert_fail("%s: %a / %a: got %a, f32 division %a", isa, (double)x[i], (double)s,
                               (double)q[i], (double)(x[i] / s));
        total += len;
    }
    /* quotients exactly on a subnormal midpoint: (M S 2^-130) / (S 2^20) = M 2^-150, M odd */
    for (uint32_t S = 3; S < 4000; S += 2) {
        float s = ldexpf((float)S, 20);
        size_t n = 0;
        for (uint32_t M = 1; M < 64; M += 2)
            x[n++] = ldexpf((float)(M * S), -130);
        k->div(x, n, s, q);
        for (size_t i = 0; i < n; i++)
            if (!same_quotient(x[i], s, q[i], &subn))
                cr_assert_fail("%s: %a / %a: got %a, f32 division %a", isa, (double)x[i], (double)s,
                               (double)q[i], (double)(x[i] / s));
        total += n;
    }
    pq_free(x);
    pq_free(q);
    cr_log_info("qdiv %s: %zu quotients bit-exact (%zu below FLT_MIN one subnormal ulp apart)", isa,
                total, subn);
}

Test(qdiv_x86, div_avx2) {
    check_div("avx2");
}
Test(qdiv_x86, div_avx512) {
    check_div("avx512");
}

/* The quantizer end to end on near-ties and random values for many scales, vs the scalar kernel. */
static void check_quant(const char *isa) {
    const pq_qdq_kernels *k = pq_qdq_kernels_for(isa), *ref = pq_qdq_kernels_for("scalar");
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    enum { N = 32768 };
    float *x = pq_malloc(N * sizeof(float));
    uint8_t *y = pq_malloc(N), *yr = pq_malloc(N);
    cr_assert(x && y && yr);
    size_t total = 0;
    for (int si = 0; si < 120; si++) {
        float s = si % 4 == 0   ? ldexpf(1.0f, (int)(rnd() % 40) - 20)
                  : si % 4 == 1 ? (float)(1e-4 + (double)(rnd() % 1000000) / 1e6)
                  : si % 4 == 2 ? bits_f(f_bits(1.0f) + (uint32_t)(rnd() % 64) - 32u)
                                : fabsf(rnd_normal());
        int32_t zp = (int32_t)(rnd() % 256);
        bool u8 = si % 5 != 0;
        if (!u8) zp -= 128;
        for (size_t i = 0; i < N; i++)
            x[i] = sample(s, i % 8 < 2 ? 3 : i); /* weighted towards the ties */
        size_t len = N - (size_t)(si % 16);
        k->quant(x, len, s, zp, u8, y);
        ref->quant(x, len, s, zp, u8, yr);
        for (size_t i = 0; i < len; i++)
            if (y[i] != yr[i])
                cr_assert_fail("%s quant: x %a s %a zp %d: %u, scalar %u", isa, (double)x[i],
                               (double)s, (int)zp, y[i], yr[i]);
        total += len;
    }
    pq_free(x);
    pq_free(y);
    pq_free(yr);
    cr_log_info("quant %s: %zu near-tie bytes bit-exact vs scalar", isa, total);
}

Test(qdiv_x86, quant_near_ties_avx2) {
    check_quant("avx2");
}
Test(qdiv_x86, quant_near_ties_avx512) {
    check_quant("avx512");
}
