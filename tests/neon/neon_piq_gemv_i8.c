/* NEON part of the integer-activation PiQ GEMV tests (included by neon_test.c, which provides
 * check, rng_next, rng_unif, guarded, guard_ok, NELEM, GUARD and POISON): both NEON kernels
 * (widening; sdot when the CPU has it) bit-exact against the scalar reference over formats,
 * sizes 0/1/tails/large, groups, row counts, misaligned weights, poisoned outputs, outliers, a
 * NaN activation and extreme codes. The kernel sources are compiled in here (run.sh's source
 * list stays as it is). */
#include "backends/arm/piq_gemv_i8_neon.c"
#include "backends/quant/piq_gemv_i8.c"

static int same_bits_or_nan(float a, float b) {
    if (a != a && b != b) return 1;
    return memcmp(&a, &b, 4) == 0;
}

/* Random packed rows: random bytes, valid scale words (extreme: every code the largest). */
static void pgn_random_packed(enum pq_qformat f, int64_t rows, int64_t cols, int64_t group,
                              uint8_t *w, int extreme) {
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    for (size_t i = 0; i < row_bytes * (size_t)rows; i++)
        w[i] = (uint8_t)rng_next();
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *p = w + (size_t)r * row_bytes;
        for (int64_t c = 0; c < cols; c += group) {
            int64_t n = cols - c < group ? cols - c : group;
            float m = 0.01f + fabsf(rng_unif());
            uint16_t a = pq_scale_clamp(pq_f32_to_f16((rng_next() & 1) ? m : -m));
            p[0] = (uint8_t)a;
            p[1] = (uint8_t)(a >> 8);
            size_t cb = pq_packed_code_bytes(f, n);
            if (extreme) memset(p + 2, 0xFF, cb);
            p += 2 + cb;
        }
    }
}

static void test_piq_gemv_i8(pq_piq_i8_gemv_fn gemv, const char *name) {
    static const int64_t cols_list[] = {0,  1,  7,  8,  9,   15,  16,  17,  31,   32,
                                        33, 63, 64, 65, 127, 255, 256, 257, 1000, 4096};
    static const int64_t groups[] = {8, 16, 32, 40, 64, 256, 8192};
    static const int64_t rows_list[] = {0, 1, 3, 4, 5, 9};
    int cases = 0, bad = 0;
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++)
        for (int ci = 0; ci < NELEM(cols_list); ci++)
            for (int gi = 0; gi < NELEM(groups); gi++)
                for (int ri = 0; ri < NELEM(rows_list); ri++) {
                    enum pq_qformat fm = (enum pq_qformat)f;
                    int64_t cols = cols_list[ci], group = groups[gi], rows = rows_list[ri];
                    int variant = (int)(rng_next() % 4);
                    size_t row_bytes = pq_packed_row_bytes(fm, cols, group);
                    size_t woff = (size_t)(ci + ri) % 4, nb = row_bytes * (size_t)rows;
                    uint8_t *wb = guarded(nb, woff);
                    pgn_random_packed(fm, rows, cols, group, wb + woff, variant == 3);
                    float *x = malloc(sizeof(float) * (size_t)(cols + 1));
                    x[0] = 0.0f;
                    for (int64_t c = 0; c < cols; c++) {
                        x[c] = rng_unif();
                        if (variant == 1 && c % 5 == 0) x[c] *= 1000.0f;
                        if (variant == 3) x[c] = (c & 1) ? 1.0f : -1.0f;
                    }
                    if (variant == 2 && cols > 3) x[cols / 2] = NAN;
                    int64_t qc = cols > 0 ? cols : 1;
                    void *abuf = malloc(pq_piq_i8_act_bytes(qc, group));
                    pq_piq_i8_act act;
                    pq_piq_i8_act_init(&act, qc, group, abuf);
                    pq_piq_i8_quantize(x, &act);
                    act.cols = cols;
                    size_t yoff = 4 * (size_t)(ri % 3), yn = sizeof(float) * (size_t)rows;
                    uint8_t *yr = guarded(yn, 0), *yg = guarded(yn, yoff);
                    pq_piq_gemv_i8_ukernel__scalar(fm, wb + woff, rows, cols, group, &act,
                                                   (float *)yr);
                    gemv(fm, wb + woff, rows, cols, group, &act, (float *)(yg + yoff));
                    int ok = guard_ok(yg, yoff, yn) && guard_ok(wb, woff, nb);
                    for (int64_t r = 0; r < rows && cols > 0; r++)
                        ok = ok && same_bits_or_nan(((float *)(yg + yoff))[r], ((float *)yr)[r]);
                    if (cols == 0)
                        for (size_t i = 0; i < yn; i++)
                            ok = ok && yg[yoff + i] == POISON;
                    if (!ok && bad++ < 5)
                        check(0, "piq gemv int8 %s %s rows %lld cols %lld group %lld variant %d",
                              name, pq_qformat_name(fm), (long long)rows, (long long)cols,
                              (long long)group, variant);
                    free(abuf);
                    free(x);
                    free(wb);
                    free(yr);
                    free(yg);
                    cases++;
                }
    check(bad == 0, "piq gemv int8 %s: %d of %d cases differ from the scalar reference", name, bad,
          cases);
}

static void test_piq_gemv_i8_all(void) {
    check(pq_piq_i8_kernels_for("neon") == &pq_piq_i8_kernels_neon &&
              pq_piq_i8_kernels_for("avx512") == NULL && pq_piq_i8_kernels_for("avx2") == NULL,
          "integer PiQ GEMV tables on aarch64");
    check(pq_piq_i8_kernels_get() == &pq_piq_i8_kernels_neon, "integer PiQ GEMV picks neon");
    test_piq_gemv_i8(pq_piq_gemv_i8_ukernel__neon, "neon widening");
    if (pq_piq_i8_neon_has_dot())
        test_piq_gemv_i8(pq_piq_gemv_i8_ukernel__neondot, "neon sdot");
    else
        printf("piq gemv int8 neon sdot: skipped (CPU without the dot-product extension)\n");
    test_piq_gemv_i8(pq_piq_i8_kernels_neon.gemv, "neon table");
}
