/* NEON part of the QuantizeLinear / DequantizeLinear tests (included by neon_test.c after
 * neon_qlinear.c, whose tensor helpers it uses): the NEON kernels (backends/arm/qdq_ops_neon.c)
 * bit-exact against the scalar ones with the inputs of tests/backends/test_int8_qdq.c (ties, near
 * ties, NaN, infinities, huge and denormal values; scales 0, negative, tiny, huge and NaN; zero
 * points at both ends), lengths with tails, misaligned pointers and poisoned outputs; the node
 * runners with the NEON table, their unsupported cases and the aarch64 selection. */
#include "backends/int8/qdq_ops.h"

static const size_t qq_lens[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 4099};

/* f32 data around the quantization grid of s (as test_int8_qdq.c's sample()). */
static float qq_sample(float s, int kind) {
    int64_t k = (int64_t)(rng_next() % 700) - 350;
    static const float sp[] = {NAN,    INFINITY,    -INFINITY,   0.0f, -0.0f, 3e38f,       -3e38f,
                               1e-40f, 16777216.0f, 16777217.0f, 2.5f, -2.5f, -16777216.0f};
    switch (kind % 8) {
    case 0:
        return ((float)k + 0.5f) * s;
    case 1:
        return nextafterf(((float)k + 0.5f) * s, INFINITY);
    case 2:
        return (float)k * s;
    case 3:
        return ((float)(rng_next() % 2000000) / 1000.0f - 1000.0f) * s;
    case 4:
        return sp[rng_next() % NELEM(sp)];
    default:
        return ((float)(rng_next() % 100000) / 1000.0f - 50.0f) * s;
    }
}

static int qq_same_f32(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_qdq_kernels(void) {
    const pq_qdq_kernels *k = &pq_qdq_kernels_neon, *s = &pq_qdq_kernels_scalar;
    static const float qscales[] = {1.0f, 0.0173f, 3.5f, 1e-20f, -0.25f, 0.0f, NAN, INFINITY};
    static const float dscales[] = {1.0f, 0.0173f, 3e38f, 1e-30f, -0.25f, 0.0f, NAN, -INFINITY};
    static const int zp_u8[] = {0, 128, 255, 3}, zp_s8[] = {-128, 0, 127, -7};
    int qok = 1, dok = 1, cases = 0;
    for (int u = 0; u < 2; u++)
        for (int si = 0; si < NELEM(qscales); si++)
            for (int zi = 0; zi < 4; zi++)
                for (int li = 0; li < NELEM(qq_lens); li++) {
                    size_t n = qq_lens[li], off = (size_t)(li % 3) + 1;
                    int zp = u ? zp_u8[zi] : zp_s8[zi];
                    /* quantize: misaligned f32 input, guarded bytes */
                    uint8_t *xb = guarded(4 * n, 4 * off);
                    float *x = (float *)(xb + 4 * off);
                    for (size_t i = 0; i < n; i++)
                        x[i] = qq_sample(qscales[si], (int)(rng_next() % 8));
                    uint8_t *y = guarded(n, off), *yr = guarded(n, 0);
                    k->quant(x, n, qscales[si], zp, u, y + off);
                    s->quant(x, n, qscales[si], zp, u, yr);
                    int good = guard_ok(y, off, n) && memcmp(y + off, yr, n) == 0;
                    if (!good && qok)
                        printf("qdq quantize %s s %g zp %d n %zu\n", u ? "u8" : "s8",
                               (double)qscales[si], zp, n);
                    qok &= good;
                    /* dequantize: misaligned bytes, guarded f32 output */
                    uint8_t *q = guarded(n, off);
                    for (size_t i = 0; i < n; i++)
                        q[off + i] = (uint8_t)(i < 256 ? i : rng_next() >> 50);
                    uint8_t *fb = guarded(4 * n, 4 * off);
                    float *f = (float *)(fb + 4 * off), *fr = malloc(4 * n + 4);
                    k->dequant(q + off, n, u, zp, dscales[si], f);
                    s->dequant(q + off, n, u, zp, dscales[si], fr);
                    good = guard_ok(fb, 4 * off, 4 * n) && qq_same_f32(f, fr, n);
                    if (!good && dok)
                        printf("qdq dequantize %s s %g zp %d n %zu\n", u ? "u8" : "s8",
                               (double)dscales[si], zp, n);
                    dok &= good;
                    cases++;
                    free(xb), free(y), free(yr), free(q), free(fb), free(fr);
                }
    check(qok, "qdq neon quantize vs scalar (%d cases)", cases);
    check(dok, "qdq neon dequantize vs scalar (%d cases)", cases);
}

/* A QuantizeLinear / DequantizeLinear node with n_in inputs, run by the node runner with table k
 * (x [n] of dtype xt, scale tensor sc, zero point tensor zp or NULL) into a poisoned output. */
static enum pq_status qq_run(enum pq_op op, const pq_qdq_kernels *k, pq_tensor *x, pq_tensor *sc,
                             pq_tensor *zp, pq_tensor *y) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t ins[3], out, nid;
    uint32_t n_in = zp ? 3 : 2;
    enum pq_status st = g ? PQ_OK : PQ_ERR_NOMEM;
    for (uint32_t i = 0; st == PQ_OK && i < n_in; i++)
        st = pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &err);
    if (st == PQ_OK) st = pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &err);
    if (st == PQ_OK) st = pq_graph_add_node(g, op, "n", ins, n_in, &out, 1, &nid, &err);
    if (st == PQ_OK) {
        const pq_tensor *in[3] = {x, sc, zp};
        pq_tensor *o[1] = {y};
        memset(y->data, POISON, y->nbytes);
        pq_kernel_args a = {g, &g->nodes[nid], in, n_in, o, 1, NULL, 1, &err};
        st =
            op == PQ_OP_QUANTIZE_LINEAR ? pq_qdq_quantize_run(k, &a) : pq_qdq_dequantize_run(k, &a);
    }
    pq_graph_destroy(g);
    return st;
}

static void test_qdq_runner(void) {
    const pq_qdq_kernels *k = &pq_qdq_kernels_neon, *s = &pq_qdq_kernels_scalar;
    check(pq_qdq_kernels_get() == k, "qdq dispatch picks neon on aarch64");
    check(pq_qdq_kernels_for("neon") == k && pq_qdq_kernels_for("scalar") == s &&
              pq_qdq_kernels_for("avx2") == NULL && pq_qdq_kernels_for("avx512") == NULL,
          "pq_qdq_kernels_for on aarch64");
    int64_t n = 1003;
    const int64_t one = 1;
    for (int u = 0; u < 2; u++)
        for (int has_zp = 0; has_zp < 2; has_zp++) {
            enum pq_dtype qt = u || !has_zp ? PQ_DTYPE_U8 : PQ_DTYPE_I8;
            float sv = 0.0173f;
            uint8_t zv = u ? 131 : (uint8_t)-5;
            pq_tensor *x = ql_tensor(PQ_DTYPE_F32, 1, &n), *sc = ql_tensor(PQ_DTYPE_F32, 1, &one);
            pq_tensor *zp = has_zp ? ql_scalar(qt, &zv) : NULL;
            memcpy(sc->data, &sv, 4);
            for (int64_t i = 0; i < n; i++)
                ((float *)x->data)[i] = qq_sample(sv, (int)(rng_next() % 8));
            pq_tensor *q = ql_tensor(qt, 1, &n), *qr = ql_tensor(qt, 1, &n);
            enum pq_status a = qq_run(PQ_OP_QUANTIZE_LINEAR, k, x, sc, zp, q);
            enum pq_status b = qq_run(PQ_OP_QUANTIZE_LINEAR, s, x, sc, zp, qr);
            check(a == PQ_OK && b == PQ_OK && memcmp(q->data, qr->data, (size_t)n) == 0,
                  "qdq runner quantize %s zp %d", pq_dtype_name(qt), has_zp);
            pq_tensor *f = ql_tensor(PQ_DTYPE_F32, 1, &n), *fr = ql_tensor(PQ_DTYPE_F32, 1, &n);
            a = qq_run(PQ_OP_DEQUANTIZE_LINEAR, k, q, sc, zp, f);
            b = qq_run(PQ_OP_DEQUANTIZE_LINEAR, s, q, sc, zp, fr);
            check(a == PQ_OK && b == PQ_OK && qq_same_f32(f->data, fr->data, (size_t)n),
                  "qdq runner dequantize %s zp %d", pq_dtype_name(qt), has_zp);
            /* unsupported: a per-axis (2-element) scale; the output stays poisoned */
            int64_t two = 2;
            pq_tensor *sc2 = ql_tensor(PQ_DTYPE_F32, 1, &two);
            memset(sc2->data, 0, sc2->nbytes);
            a = qq_run(PQ_OP_QUANTIZE_LINEAR, k, x, sc2, zp, q);
            int untouched = 1;
            for (int64_t i = 0; i < n; i++)
                untouched &= ((uint8_t *)q->data)[i] == POISON;
            check(a == PQ_ERR_UNSUPPORTED && untouched, "qdq runner per-axis scale unsupported");
            pq_tensor_destroy(x), pq_tensor_destroy(sc), pq_tensor_destroy(zp);
            pq_tensor_destroy(q), pq_tensor_destroy(qr), pq_tensor_destroy(f);
            pq_tensor_destroy(fr), pq_tensor_destroy(sc2);
        }
}

static void test_qdq_all(void) {
    test_qdq_kernels();
    test_qdq_runner();
}
