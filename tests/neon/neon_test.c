/* Self-contained NEON kernel test (no Criterion: it is cross-compiled statically for aarch64 and
 * run under qemu-aarch64 by run.sh). Sweeps the sizes of tests/backends/test_quant_simd.c comparing
 * pq_qkernels_neon with the scalar reference; prints "N passed, N failed". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/arm/qkernels_neon.h"
#include "backends/quant/fwht.h"
#include "backends/quant/qkernels.h"
#include "backends/quant/quant.h"
#include "ir/alloc.h"
#include "ir/dtype.h"
#include "ir/packed.h"

/* INT8 u8 x s8 GEMM (backends/int8/): the portable driver and scalar kernels are compiled into
 * this program directly so run.sh needs no new source list. */
#include "backends/arm/int8_gemm_neon.c"
#include "backends/int8/int8_gemm.c"
#include "backends/int8/int8_gemm_scalar.c"

#define PQ_GEMV_RTOL 1e-5 /* |y - y_double| <= 1e-5 * sum|w_hat x| */
#define GUARD 64
#define POISON 0xA5
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int g_pass, g_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void check(int ok, const char *fmt, ...) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 20) {
        va_list ap;
        va_start(ap, fmt);
        fputs("FAIL: ", stdout);
        vprintf(fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    }
}

static const int64_t k_cols[] = {0,  1,  7,  8,   9,   15,  16,   17,  31,
                                 33, 63, 65, 255, 256, 257, 1000, 4096};
static const int64_t k_groups[] = {8, 32, 64, 256};

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rng_next(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}
static float rng_unif(void) {
    return (float)((double)(rng_next() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static uint8_t *guarded(size_t n, size_t off) {
    uint8_t *b = malloc(n + off + GUARD);
    if (!b) {
        puts("out of memory");
        exit(2);
    }
    memset(b, POISON, n + off + GUARD);
    return b;
}
static int guard_ok(const uint8_t *base, size_t off, size_t n) {
    for (size_t i = 0; i < off; i++)
        if (base[i] != POISON) return 0;
    for (size_t i = 0; i < GUARD; i++)
        if (base[off + n + i] != POISON) return 0;
    return 1;
}

static void random_scales(uint16_t *s, int64_t n, int pow2) {
    for (int64_t i = 0; i < n; i++) {
        float m = pow2 ? ldexpf(1.0f, (int)(rng_next() % 5) - 3) : 0.05f + 2.0f * fabsf(rng_unif());
        if (rng_next() & 1) m = -m;
        s[i] = pq_scale_clamp(pq_f32_to_f16(m));
    }
}

static void random_row(enum pq_qformat f, const uint16_t *scales, int64_t cols, int64_t group,
                       float *w, int special) {
    for (int64_t c = 0; c < cols; c++) {
        float step = pq_qstep(f, scales[c / group]);
        uint64_t k = rng_next() % 16;
        int n = (int)(rng_next() % 11) - 5;
        if (k < 4)
            w[c] = ((float)n + 0.5f) * step;
        else if (special && k == 4)
            w[c] = NAN;
        else if (special && k == 5)
            w[c] = (rng_next() & 1) ? INFINITY : -INFINITY;
        else if (special && k == 6)
            w[c] = (rng_next() & 1) ? 3e38f : -1e30f;
        else if (special && k == 7)
            w[c] = (rng_next() & 1) ? 0.0f : -0.0f;
        else
            w[c] = rng_unif() * 5.5f * step;
    }
}

static void test_quantize(const pq_qkernels *k) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++)
                for (int variant = 0; variant < 3; variant++) {
                    enum pq_qformat fm = (enum pq_qformat)f;
                    int64_t cols = k_cols[ci], group = k_groups[gi];
                    int64_t ngroups = cols > 0 ? (cols + group - 1) / group : 0;
                    size_t bytes = pq_packed_row_bytes(fm, cols, group);
                    size_t off = (size_t)variant + 1;
                    uint16_t scales[600];
                    uint8_t *wb = guarded(4 * (size_t)cols, 4 * off);
                    float *w = (float *)(wb + 4 * off);
                    random_scales(scales, ngroups, variant == 1);
                    random_row(fm, scales, cols, group, w, variant == 2);
                    uint8_t *ref = guarded(bytes, 0), *got = guarded(bytes, off);
                    pq_qkernels_scalar.quantize_row(fm, w, cols, group, scales, ref);
                    k->quantize_row(fm, w, cols, group, scales, got + off);
                    check(guard_ok(got, off, bytes) && memcmp(got + off, ref, bytes) == 0,
                          "quantize %s cols %lld group %lld variant %d", pq_qformat_name(fm),
                          (long long)cols, (long long)group, variant);
                    uint8_t *dref = guarded(4 * (size_t)cols, 0),
                            *dgot = guarded(4 * (size_t)cols, 4 * off);
                    pq_qkernels_scalar.dequantize_row(fm, ref, cols, group, (float *)dref);
                    k->dequantize_row(fm, got + off, cols, group, (float *)(dgot + 4 * off));
                    check(guard_ok(dgot, 4 * off, 4 * (size_t)cols) &&
                              memcmp(dgot + 4 * off, dref, 4 * (size_t)cols) == 0,
                          "dequantize %s cols %lld group %lld variant %d", pq_qformat_name(fm),
                          (long long)cols, (long long)group, variant);
                    /* random bytes (any codes, non-zero padding), valid scale words */
                    for (size_t i = 0; i < bytes; i++)
                        ref[i] = (uint8_t)rng_next();
                    uint8_t *p = ref;
                    for (int64_t c = 0; c < cols; c += group) {
                        int64_t n = cols - c < group ? cols - c : group;
                        uint16_t a = pq_scale_clamp((uint16_t)rng_next());
                        p[0] = (uint8_t)a;
                        p[1] = (uint8_t)(a >> 8);
                        p += 2 + pq_packed_code_bytes(fm, n);
                    }
                    pq_qkernels_scalar.dequantize_row(fm, ref, cols, group, (float *)dref);
                    k->dequantize_row(fm, ref, cols, group, (float *)(dgot + 4 * off));
                    check(memcmp(dgot + 4 * off, dref, 4 * (size_t)cols) == 0,
                          "dequantize random bytes %s cols %lld group %lld", pq_qformat_name(fm),
                          (long long)cols, (long long)group);
                    free(wb);
                    free(ref);
                    free(got);
                    free(dref);
                    free(dgot);
                }
}

static void test_gemm(const pq_qkernels *k, int use_gemm) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(k_cols); ci++)
            for (int gi = 0; gi < NELEM(k_groups); gi++)
                for (int64_t rows = 1; rows <= 5; rows++) {
                    enum pq_qformat fm = (enum pq_qformat)f;
                    int64_t cols = k_cols[ci], group = k_groups[gi];
                    if (cols == 0) continue;
                    int64_t batch = use_gemm ? 1 + (int64_t)(rng_next() % 7) : 1;
                    int64_t ngroups = (cols + group - 1) / group;
                    size_t rb = pq_packed_row_bytes(fm, cols, group);
                    uint16_t scales[600];
                    float *w = malloc(4 * (size_t)cols);
                    float *what = malloc(4 * (size_t)(rows * cols));
                    uint8_t *packed = malloc(rb * (size_t)rows);
                    float *x = malloc(4 * (size_t)(batch * cols) + 4);
                    uint8_t *yb = guarded(4 * (size_t)(batch * rows), 4);
                    float *y = (float *)(yb + 4);
                    for (int64_t r = 0; r < rows; r++) {
                        random_scales(scales, ngroups, 0);
                        random_row(fm, scales, cols, group, w, 0);
                        pq_qkernels_scalar.quantize_row(fm, w, cols, group, scales,
                                                        packed + r * rb);
                        pq_qkernels_scalar.dequantize_row(fm, packed + r * rb, cols, group,
                                                          what + r * cols);
                    }
                    float *xs = x + (rows & 1); /* misaligned by one float for odd row counts */
                    for (int64_t i = 0; i < batch * cols; i++)
                        xs[i] = rng_unif();
                    if (use_gemm)
                        k->gemm(fm, packed, rows, cols, group, xs, batch, y);
                    else
                        k->gemv(fm, packed, rows, cols, group, xs, y);
                    int ok = guard_ok(yb, 4, 4 * (size_t)(batch * rows));
                    for (int64_t b = 0; b < batch; b++)
                        for (int64_t r = 0; r < rows; r++) {
                            double ref = 0, mag = 0;
                            for (int64_t c = 0; c < cols; c++) {
                                double p = (double)what[r * cols + c] * xs[b * cols + c];
                                ref += p;
                                mag += fabs(p);
                            }
                            if (!(fabs((double)y[b * rows + r] - ref) <=
                                  PQ_GEMV_RTOL * mag + 1e-30))
                                ok = 0;
                        }
                    check(ok, "%s %s rows %lld cols %lld group %lld batch %lld",
                          use_gemm ? "gemm" : "gemv", pq_qformat_name(fm), (long long)rows,
                          (long long)cols, (long long)group, (long long)batch);
                    free(w);
                    free(what);
                    free(packed);
                    free(x);
                    free(yb);
                }
}

static void test_fwht(const pq_qkernels *k) {
    for (int64_t n = 8; n <= 1024; n *= 2) {
        float *v = malloc(4 * (size_t)n);
        int ok = 1;
        for (int64_t c = 0; c < n; c++) {
            memset(v, 0, 4 * (size_t)n);
            v[c] = 1.0f;
            k->fwht(v, n, 1.0f);
            for (int64_t i = 0; i < n; i++) {
                float e = (__builtin_popcountll((unsigned long long)(i & c)) & 1) ? -1.0f : 1.0f;
                if (v[i] != e) ok = 0;
            }
            k->fwht(v, n, 1.0f);
            for (int64_t i = 0; i < n; i++)
                if (v[i] != (i == c ? (float)n : 0.0f)) ok = 0;
        }
        check(ok, "fwht H*H = n I, n %lld", (long long)n);
        free(v);
    }
    for (int64_t n = 8; n <= 65536; n *= 2)
        for (int64_t rows = 1; rows <= 3; rows++) {
            size_t total = (size_t)(rows * n), off = (size_t)(n + rows) % 4;
            uint8_t *b = guarded(4 * total, 4 * off);
            float *x = (float *)(b + 4 * off), *ref = malloc(4 * total);
            for (size_t i = 0; i < total; i++)
                ref[i] = x[i] = rng_unif() * 100.0f;
            float scale = (float)(1.0 / sqrt((double)n));
            k->fwht_rows(x, rows, n, scale);
            pq_qkernels_scalar.fwht_rows(ref, rows, n, scale);
            check(guard_ok(b, 4 * off, 4 * total) && memcmp(x, ref, 4 * total) == 0,
                  "fwht bit-identical n %lld rows %lld", (long long)n, (long long)rows);
            free(b);
            free(ref);
        }
}

/* ---- INT8 GEMM: NEON (sdot and widening) bit-exact vs scalar vs a direct int64 loop ---- */

/* The f32 requantization of int8_gemm.h written out: (float)(acc + bias) * m, half to even. */
static uint8_t i8_direct(int64_t s, int32_t bias, float m, int zp) {
    float v = (float)(int32_t)((uint32_t)s + (uint32_t)bias) * m;
    double q = (double)nearbyintf(v) + zp;
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

/* Both operand orders: matmul (rows u8 A, panel s8 B, per-column multipliers) and conv (rows s8
 * weights, panel u8 columns, per-row corrections, bias and multipliers). */
static void test_int8_gemm(const pq_i8_kernels *k) {
    static const int64_t Ms[] = {1, 7, 50}, Ns[] = {1, 5, 16, 33}, Ks[] = {1, 3, 17, 64, 100};
    static const int zps[] = {0, 128, 255};
    for (int mi = 0; mi < NELEM(Ms); mi++)
        for (int ni = 0; ni < NELEM(Ns); ni++)
            for (int ki = 0; ki < NELEM(Ks); ki++)
                for (int zi = 0; zi < NELEM(zps); zi++)
                    for (int ext = 0; ext < 2; ext++) {
                        int64_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                        int zp = zps[zi];
                        uint8_t *A = malloc((size_t)(M * K)), *X = malloc((size_t)(K * N));
                        int8_t *B = malloc((size_t)(K * N)), *Wt = malloc((size_t)(M * K));
                        float *mc = malloc((size_t)N * sizeof(float));
                        float *mrow = malloc((size_t)M * sizeof(float));
                        int32_t *bias = malloc((size_t)M * sizeof(int32_t));
                        uint8_t *y = guarded((size_t)(M * N), 1), *ys = guarded((size_t)(M * N), 1);
                        uint8_t *yd = malloc((size_t)(M * N));
                        for (int64_t i = 0; i < M * K; i++) {
                            A[i] = ext ? 255 : (uint8_t)(rng_next() >> 40);
                            Wt[i] = ext ? (int8_t)(i % 2 ? 127 : -128) : (int8_t)(rng_next() >> 40);
                        }
                        for (int64_t i = 0; i < K * N; i++) {
                            X[i] = ext ? 255 : (uint8_t)(rng_next() >> 40);
                            B[i] = ext ? (int8_t)((i / N) % 2 ? 127 : -128)
                                       : (int8_t)(rng_next() >> 40);
                        }
                        for (int64_t j = 0; j < N; j++)
                            mc[j] = (float)((1.0 + (double)(j % 3)) / (128.0 * (double)K));
                        for (int64_t i = 0; i < M; i++) {
                            mrow[i] = (float)((1.0 + (double)(i % 5)) / (96.0 * (double)K));
                            bias[i] = (int32_t)((int64_t)(rng_next() % 20001) - 10000);
                        }
                        /* matmul order */
                        for (int64_t i = 0; i < M; i++)
                            for (int64_t j = 0; j < N; j++) {
                                int64_t s = 0;
                                for (int64_t t = 0; t < K; t++)
                                    s += (int64_t)(A[i * K + t] - zp) * B[t * N + j];
                                yd[i * N + j] = i8_direct(s, 0, mc[j], 7);
                            }
                        pq_i8_gemm_u8s8(k, (size_t)M, (size_t)N, (size_t)K, A, (size_t)K, zp, B,
                                        (size_t)N, mc, 7, y + 1, (size_t)N, NULL);
                        pq_i8_gemm_u8s8(&pq_i8_kernels_scalar, (size_t)M, (size_t)N, (size_t)K, A,
                                        (size_t)K, zp, B, (size_t)N, mc, 7, ys + 1, (size_t)N,
                                        NULL);
                        check(guard_ok(y, 1, (size_t)(M * N)) &&
                                  memcmp(y + 1, yd, (size_t)(M * N)) == 0 &&
                                  memcmp(ys + 1, yd, (size_t)(M * N)) == 0,
                              "int8 %s matmul M %lld N %lld K %lld zp %d ext %d", k->name,
                              (long long)M, (long long)N, (long long)K, zp, ext);
                        /* conv order */
                        for (int64_t i = 0; i < M; i++)
                            for (int64_t j = 0; j < N; j++) {
                                int64_t s = 0;
                                for (int64_t t = 0; t < K; t++)
                                    s += (int64_t)(X[t * N + j] - zp) * Wt[i * K + t];
                                yd[i * N + j] = i8_direct(s, bias[i], mrow[i], 3);
                            }
                        const pq_i8_kernels *ks[2] = {k, &pq_i8_kernels_scalar};
                        uint8_t *outs[2] = {y, ys};
                        for (int v = 0; v < 2; v++) {
                            const pq_i8_kernels *kk = ks[v];
                            void *pr = malloc((size_t)M * pq_i8_row_bytes(kk, (size_t)K) + 64);
                            void *pp = malloc(pq_i8_panels_bytes(kk, (size_t)K, (size_t)N) + 64);
                            int32_t *corr = malloc((size_t)M * sizeof(int32_t));
                            pq_i8_pack_rows(kk, (const uint8_t *)Wt, (size_t)K, (size_t)M,
                                            (size_t)K, false, pr);
                            pq_i8_pack_panels(kk, X, (size_t)N, (size_t)K, (size_t)N, true, pp);
                            pq_i8_corr_rows(Wt, (size_t)K, (size_t)M, (size_t)K,
                                            pq_i8_zp_eff(kk, zp), corr);
                            for (int64_t i = 0; i < M; i++)
                                corr[i] = (int32_t)((uint32_t)corr[i] + (uint32_t)bias[i]);
                            pq_i8_epilogue ep = {
                                .add_row = corr, .m_row = mrow, .zp_y = 3, .finite = true};
                            memset(outs[v] + 1, POISON, (size_t)(M * N));
                            pq_i8_gemm_packed(kk, false, (size_t)M, (size_t)N, (size_t)K, pr, pp,
                                              &ep, outs[v] + 1, (size_t)N);
                            free(pr), free(pp), free(corr);
                        }
                        check(guard_ok(y, 1, (size_t)(M * N)) &&
                                  memcmp(y + 1, yd, (size_t)(M * N)) == 0 &&
                                  memcmp(ys + 1, yd, (size_t)(M * N)) == 0,
                              "int8 %s conv-order M %lld N %lld K %lld zp %d ext %d", k->name,
                              (long long)M, (long long)N, (long long)K, zp, ext);
                        free(A), free(X), free(B), free(Wt), free(mc), free(mrow), free(bias);
                        free(y), free(ys), free(yd);
                    }
    /* the epilogue alone, incl. ties (x.5 at half to even), huge and NaN/inf multipliers */
    int32_t acc[37];
    float mv[37];
    uint8_t a1[37], a2[37];
    for (int i = 0; i < 37; i++) {
        acc[i] = (i - 18) * 3 + (i % 4 == 0 ? 1 << 30 : 0);
        mv[i] = i % 7 == 0 ? 0.5f : 1.0f / 6.0f * (float)(1 + i % 3);
    }
    k->requant(acc, 37, 1, 0.0f, mv, NULL, 128, a1);
    pq_i8_requant__scalar(acc, 37, 1, 0.0f, mv, NULL, 128, a2);
    check(memcmp(a1, a2, 37) == 0, "int8 %s requant vector multipliers", k->name);
    k->requant(acc, 37, -3, 0.5f, NULL, NULL, 0, a1);
    pq_i8_requant__scalar(acc, 37, -3, 0.5f, NULL, NULL, 0, a2);
    check(memcmp(a1, a2, 37) == 0, "int8 %s requant scalar multiplier (ties)", k->name);
    /* fused activations (the NEON table runs them through the scalar epilogue) */
    pq_i8_act act = {.kind = PQ_I8_ACT_HARD_SWISH, .inv_sy = 40.0f};
    k->requant(acc, 37, -3, 0.01f, NULL, &act, 20, a1);
    pq_i8_requant__scalar(acc, 37, -3, 0.01f, NULL, &act, 20, a2);
    check(memcmp(a1, a2, 37) == 0, "int8 %s requant with a fused HardSwish", k->name);
}

/* Integer-activation PiQ GEMV (backends/arm/piq_gemv_i8_neon.c). */
#include "neon_piq_gemv_i8.c"
/* u8/s8 QLinearAdd / QLinearMul (backends/arm/qlinear_eltwise_neon.c). */
#include "neon_qlinear.c"
/* QuantizeLinear / DequantizeLinear (backends/arm/qdq_ops_neon.c). */
#include "neon_qdq.c"
/* INT8 depthwise with channels in lanes (backends/arm/int8_dwc_neon.c). */
#include "neon_dwc.c"

int main(void) {
    const pq_qkernels *k = &pq_qkernels_neon;
    check(pq_qkernels_get() == k, "dispatch picks neon on aarch64");
    check(pq_qkernels_for("neon") == k && pq_qkernels_for("avx2") == NULL,
          "pq_qkernels_for on aarch64");
    float s[16];
    const float expect[16] = {-1, 1, 1, -1, -1, 1, 1, 1, 1, 1, 1, -1, -1, 1, -1, 1};
    pq_rht_signs(42, 16, s);
    check(memcmp(s, expect, sizeof s) == 0, "rht sign vector seed 42");
    test_quantize(k);
    test_gemm(k, 0);
    test_gemm(k, 1);
    test_fwht(k);
    check(pq_i8_kernels_for(PQ_I8_NEON) != NULL && pq_i8_kernels_for(PQ_I8_AVX2) == NULL,
          "int8 kernels: neon on aarch64, no avx2");
    check(pq_i8_kernels_get()->isa == PQ_I8_NEON, "int8 dispatch picks neon");
    test_int8_gemm(pq_i8_kernels_neon(0));
    if (pq_i8_kernels_neon(1))
        test_int8_gemm(pq_i8_kernels_neon(1));
    else
        printf("int8 neon sdot: skipped (CPU without the dot-product extension)\n");
    test_piq_gemv_i8_all();
    test_qlinear_all();
    test_qdq_all();
    test_int8_dwc();
    test_int8_requant_act(pq_i8_kernels_neon(0));
    if (pq_i8_kernels_neon(1)) test_int8_requant_act(pq_i8_kernels_neon(1));
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
