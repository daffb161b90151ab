/* NEON part of the INT8 epilogue and depthwise tests (included by neon_test.c, which provides
 * check, rng_next, guarded, guard_ok, NELEM, GUARD and POISON): the NEON tables' requant with
 * every fused activation (int8_requant_neon.h) against pq_i8_requant__scalar, and
 * pq_i8_dwc__neon (16 channels in the
 * lanes, backends/arm/int8_dwc_neon.c) bit-exact against a direct i64 depthwise with the
 * requantization of int8_gemm.h (pq_i8_rq1 / pq_i8_rq1_act, the scalar epilogue) over the
 * depthwise geometries of tests/backends/test_int8_kernels.c and more (1x1, 7x7, 16x16 taps,
 * unequal strides, wide rows split into bands, pads wider than the input), 1..16 channels per
 * call, zero points at the ends, extreme bytes, bias or none, every fused activation, row ranges,
 * non-finite multipliers; poisoned output planes and scratch guards. */
#include "backends/arm/int8_dwc_neon.h"

typedef struct dwc_geo {
    int64_t C, H, W, KH, KW, sh, sw, dh, dw;
    int64_t pads[4]; /* top, left, bottom, right */
} dwc_geo;

static const dwc_geo dwc_geos[] = {
    {8, 10, 10, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}},   /* mobilenet-style 3x3 */
    {4, 9, 9, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}},     /* dilation 2 */
    {24, 29, 40, 5, 5, 2, 2, 1, 1, {2, 2, 2, 2}},  /* 5x5 stride 2, two lane blocks */
    {8, 12, 70, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}},   /* rows of 70 (16-column tails) */
    {40, 14, 13, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}},  /* 40 channels: blocks 16, 16, 8 */
    {33, 15, 21, 3, 3, 2, 2, 1, 1, {0, 1, 1, 0}},  /* stride 2, asymmetric pads, 1-channel tail */
    {19, 9, 23, 3, 3, 1, 1, 2, 2, {2, 1, 0, 2}},   /* dilation 2, asymmetric */
    {17, 7, 7, 5, 5, 2, 2, 1, 1, {2, 2, 2, 2}},    /* 7x7 -> 4x4 */
    {16, 6, 5, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}},    /* 1x1 */
    {5, 11, 12, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}},   /* 7x7 taps */
    {3, 17, 17, 16, 16, 1, 1, 1, 1, {0, 0, 0, 0}}, /* 256 taps: the exactness bound */
    {12, 13, 9, 3, 3, 2, 1, 1, 1, {1, 1, 1, 1}},   /* stride 2 x 1 */
    {7, 9, 14, 3, 5, 1, 3, 1, 1, {0, 2, 2, 1}},    /* 3x5, stride 1 x 3 */
    {16, 40, 230, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}}, /* wide rows: bands of a few output rows */
    {9, 3, 2, 3, 3, 1, 1, 1, 1, {2, 2, 2, 2}},     /* pads wider than the input */
    {2, 1, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}},     /* one pixel */
    {11, 30, 31, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}},  /* stride 2, odd sizes */
};

/* The activations of test_int8_kernels.c's fused-activation sweep. */
static const pq_i8_act dwc_acts[] = {
    {.kind = PQ_I8_ACT_HARD_SWISH},
    {.kind = PQ_I8_ACT_HARD_SIGMOID, .alpha = 1.0f / 6.0f, .beta = 0.5f},
    {.kind = PQ_I8_ACT_HARD_SIGMOID, .alpha = 0.2f, .beta = 0.5f},
    {.kind = PQ_I8_ACT_LEAKY_RELU, .alpha = 0.1f},
    {.kind = PQ_I8_ACT_CLIP, .alpha = -1.0f, .beta = 2.5f},
    {.kind = PQ_I8_ACT_RELU},
    {.kind = PQ_I8_ACT_SIGMOID},
    {.kind = PQ_I8_ACT_SWISH},
};

static int64_t g_dwc_distinct, g_dwc_outputs;

/* One geometry, one variant: every channel block through pq_i8_dwc__neon against the direct
 * depthwise. act_i < 0: none. mode 0: finite multipliers spreading the outputs; 1: some channels
 * with inf / -inf / NaN / 0 / huge multipliers. rchunks: output row ranges per block. */
static int dwc_case(const dwc_geo *g, int zpx, int zpy, int bias_on, int ext, int act_i, int mode,
                    int rchunks, int scr_off) {
    int64_t C = g->C, H = g->H, W = g->W, KK = g->KH * g->KW;
    int64_t OH = (H + g->pads[0] + g->pads[2] - ((g->KH - 1) * g->dh + 1)) / g->sh + 1;
    int64_t OW = (W + g->pads[1] + g->pads[3] - ((g->KW - 1) * g->dw + 1)) / g->sw + 1;
    size_t osp = (size_t)(OH * OW), hw = (size_t)(H * W);
    uint8_t *x = malloc((size_t)C * hw);
    int8_t *w = malloc((size_t)(C * KK));
    int32_t *bias = malloc((size_t)C * sizeof(int32_t));
    float *m = malloc((size_t)C * sizeof(float));
    uint8_t *yd = malloc((size_t)C * osp);
    int64_t *acc = malloc((size_t)C * osp * sizeof(int64_t));
    for (size_t i = 0; i < (size_t)C * hw; i++)
        x[i] = ext ? (uint8_t)((i & 1) ? 255 : 0) : (uint8_t)(rng_next() >> 40);
    for (int64_t i = 0; i < C * KK; i++)
        w[i] = ext ? (int8_t)((i % 3) ? -128 : 127) : (int8_t)(rng_next() >> 40);
    for (int64_t c = 0; c < C; c++)
        bias[c] = bias_on ? (int32_t)((int64_t)(rng_next() % 4001) - 2000) : 0;
    pq_i8_act act = act_i >= 0 ? dwc_acts[act_i] : (pq_i8_act){.kind = PQ_I8_ACT_NONE};
    act.inv_sy = 40.0f;
    /* the direct depthwise in i64 */
    for (int64_t c = 0; c < C; c++) {
        int64_t amax = 1;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t s = 0;
                for (int64_t kh = 0; kh < g->KH; kh++)
                    for (int64_t kw = 0; kw < g->KW; kw++) {
                        int64_t ih = oh * g->sh - g->pads[0] + kh * g->dh;
                        int64_t iw = ow * g->sw - g->pads[1] + kw * g->dw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        s += ((int64_t)x[(size_t)c * hw + (size_t)(ih * W + iw)] - zpx) *
                             w[c * KK + kh * g->KW + kw];
                    }
                acc[(size_t)c * osp + (size_t)(oh * OW + ow)] = s;
                int64_t v = s + bias[c] < 0 ? -(s + bias[c]) : s + bias[c];
                amax = v > amax ? v : amax;
            }
        /* spread: |real| up to 3 with an activation (times inv_sy 40), 150 codes without */
        m[c] = (float)((act_i >= 0 ? 3.0 : 150.0) / (double)amax * (1.0 + (double)(c % 3) / 4));
        if (mode == 1) {
            static const float special[] = {INFINITY, -INFINITY, NAN, 0.0f, 1e30f, -1e-30f};
            if (c % 2 == 0) m[c] = special[(c / 2) % NELEM(special)];
        }
    }
    for (int64_t c = 0; c < C; c++)
        for (size_t p = 0; p < osp; p++) {
            int32_t t = (int32_t)(uint32_t)((uint64_t)acc[(size_t)c * osp + p] + (uint32_t)bias[c]);
            yd[(size_t)c * osp + p] =
                act_i >= 0 ? pq_i8_rq1_act(t, m[c], &act, zpy) : pq_i8_rq1(t, m[c], zpy);
        }
    int ok = 1;
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
        int nc = (int)(C - c0 < 16 ? C - c0 : 16);
        /* 16 poisoned output planes, a guard before and after */
        size_t ybytes = 16 * osp;
        uint8_t *yb = guarded(ybytes, GUARD);
        uint8_t *y = yb + GUARD;
        pq_i8_dwc a = {.x = x + (size_t)c0 * hw,
                       .y = y,
                       .w = w + c0 * KK,
                       .bias = bias_on ? bias + c0 : NULL,
                       .m = m + c0,
                       .act = act_i >= 0 ? &act : NULL,
                       .zp_x = zpx,
                       .zp_y = zpy,
                       .nc = nc,
                       .H = H,
                       .W = W,
                       .OH = OH,
                       .OW = OW,
                       .KH = g->KH,
                       .KW = g->KW,
                       .sh = g->sh,
                       .sw = g->sw,
                       .dh = g->dh,
                       .dw = g->dw,
                       .pt = g->pads[0],
                       .pl = g->pads[1]};
        size_t sb = pq_i8_dwc_scratch(&a, PQ_I8_DWC_NEON_LANES);
        uint8_t *scr = guarded(sb, (size_t)scr_off);
        memset(scr + scr_off, 0x4B, sb); /* stale scratch: f32 0x4B4B4B4B = 13.3M */
        a.scratch = scr + scr_off;
        int64_t rc = rchunks > OH ? OH : rchunks;
        for (int64_t r = 0; r < rc; r++) {
            a.oh_begin = OH * r / rc;
            a.oh_end = rc == 1 ? 0 : OH * (r + 1) / rc; /* 0: to OH */
            if (rc > 1 && a.oh_end <= a.oh_begin) continue;
            pq_i8_dwc__neon(&a);
        }
        ok &= guard_ok(scr, (size_t)scr_off, sb);
        ok &= guard_ok(yb, GUARD, ybytes);
        for (int c = 0; c < 16; c++)
            for (size_t p = 0; p < osp; p++) {
                uint8_t got = y[(size_t)c * osp + p];
                if (c >= nc) {
                    ok &= got == POISON;
                } else {
                    ok &= got == yd[(size_t)(c0 + c) * osp + p];
                }
            }
        free(yb);
        free(scr);
    }
    /* distinct output values (the test is not all saturated) */
    if (mode == 0 && !ext) {
        uint8_t seen[256] = {0};
        for (size_t i = 0; i < (size_t)C * osp; i++)
            seen[yd[i]] = 1;
        for (int i = 0; i < 256; i++)
            g_dwc_distinct += seen[i];
        g_dwc_outputs++;
    }
    free(x), free(w), free(bias), free(m), free(yd), free(acc);
    return ok;
}

static void test_int8_dwc(void) {
    check(pq_i8_kernels_neon(0)->dwc == pq_i8_dwc__neon &&
              pq_i8_kernels_neon(0)->dwc_lanes == PQ_I8_DWC_NEON_LANES &&
              (!pq_i8_kernels_neon(1) || pq_i8_kernels_neon(1)->dwc == pq_i8_dwc__neon),
          "int8 neon tables use the 16-lane depthwise");
    static const int zps[][2] = {{128, 128}, {0, 0}, {255, 255}, {7, 200}};
    int fails = 0, cases = 0;
    for (int gi = 0; gi < NELEM(dwc_geos); gi++) {
        const dwc_geo *g = &dwc_geos[gi];
        for (int v = 0; v < 12; v++) {
            int zi = v % 4, act_i = v < 6 ? -1 : (v - 6 + gi) % NELEM(dwc_acts);
            int ext = v == 3, bias_on = v % 2 == 0, mode = v == 5 || v == 11;
            int rchunks = v % 3 == 1 ? 3 : 1, scr_off = v % 4 == 2 ? 4 : 0;
            int ok =
                dwc_case(g, zps[zi][0], zps[zi][1], bias_on, ext, act_i, mode, rchunks, scr_off);
            if (!ok && fails++ < 10)
                printf("int8 neon dwc: geometry %d variant %d (zp %d/%d act %d ext %d mode %d "
                       "rows %d) differs\n",
                       gi, v, zps[zi][0], zps[zi][1], act_i, ext, mode, rchunks);
            cases++;
        }
    }
    check(fails == 0, "int8 neon depthwise (16 lanes) vs direct reference: %d of %d cases differ",
          fails, cases);
    check(g_dwc_distinct > 40 * g_dwc_outputs,
          "int8 neon depthwise outputs spread (%lld distinct values over %lld cases)",
          (long long)g_dwc_distinct, (long long)g_dwc_outputs);
}

/* The table's requant against pq_i8_requant__scalar: every activation (and none), per-lane and
 * per-call multipliers incl. inf / NaN / 0 / huge ones, zero points at the ends, wrapping adds,
 * lengths with tails, ties. */
static void test_int8_requant_act(const pq_i8_kernels *k) {
    static const size_t ns[] = {1, 7, 8, 9, 16, 37, 100};
    static const int zps[] = {0, 3, 128, 255};
    int ok = 1, cases = 0;
    for (int ai = -1; ai < NELEM(dwc_acts); ai++)
        for (int ni = 0; ni < NELEM(ns); ni++)
            for (int zi = 0; zi < NELEM(zps); zi++)
                for (int mode = 0; mode < 3; mode++) {
                    size_t n = ns[ni];
                    int32_t acc[100];
                    float mv[100];
                    pq_i8_act act = ai >= 0 ? dwc_acts[ai] : (pq_i8_act){.kind = PQ_I8_ACT_NONE};
                    act.inv_sy = (float)(1 + zi) * 10.0f;
                    for (size_t i = 0; i < n; i++) {
                        acc[i] = (int32_t)(rng_next() % 2001) - 1000;
                        if (i % 9 == 4) acc[i] = (int32_t)(rng_next() >> 33); /* wraps with add */
                        mv[i] = ai >= 0 ? 3.0f / 1000.0f * (float)(1 + i % 3)
                                        : (i % 5 == 0 ? 0.5f : 0.13f * (float)(1 + i % 3));
                        if (mode == 2 && i % 4 == 1) {
                            static const float sp[] = {INFINITY, -INFINITY, NAN, 0.0f, 1e30f};
                            mv[i] = sp[(i / 4) % NELEM(sp)];
                        }
                    }
                    int32_t add = (int32_t)(rng_next() % 201) - 100;
                    if (zi == 3) add = INT32_MAX - 500;
                    float ms = mode == 0 ? 0.5f : 0.0071f;
                    uint8_t y[100 + GUARD], yr[100];
                    memset(y, POISON, sizeof y);
                    const float *m = mode ? mv : NULL;
                    const pq_i8_act *ap = ai >= 0 ? &act : NULL;
                    k->requant(acc, n, add, ms, m, ap, zps[zi], y);
                    pq_i8_requant__scalar(acc, n, add, ms, m, ap, zps[zi], yr);
                    int good = memcmp(y, yr, n) == 0;
                    for (size_t i = n; i < n + GUARD; i++)
                        good &= y[i] == POISON;
                    if (!good && ok)
                        printf("int8 %s requant act %d n %zu zp %d mode %d differs\n", k->name, ai,
                               n, zps[zi], mode);
                    ok &= good;
                    cases++;
                }
    /* a fused activation with act kind NONE still multiplies by 1 / s_y (pq_i8_rq1_act) */
    check(ok, "int8 %s requant with fused activations vs scalar (%d cases)", k->name, cases);
    /* HardSwish / HardSigmoid's linear step is one fused multiply-add: accumulators whose byte
     * differs from a separate multiply and add (found by the x86 test
     * int8_kernels::hard_act_linear_step_fused, same m and 1 / s_y), with the bytes of the fused
     * definition */
    static const pq_i8_act hard[2] = {{PQ_I8_ACT_HARD_SWISH, 0, 0, 85.0f},
                                      {PQ_I8_ACT_HARD_SIGMOID, 0.2f, 0.5f, 255.0f}};
    static const float hard_m[2] = {0.3579101f / 4194304.0f, 0.3127931f / 4194304.0f};
    static const int32_t hard_acc[2][6] = {
        {9273005, 10160889, 12346354, 12346355, 12987384, 12987385},
        {8413610, 8939461, 9202390, 9465312, 9728241, 10254092}};
    static const uint8_t hard_y[2][6] = {{42, 48, 60, 60, 64, 64}, {159, 161, 162, 163, 164, 166}};
    for (int a = 0; a < 2; a++) { /* 24 values (three vector steps of 8, no scalar tail) */
        int32_t acc[24];
        uint8_t y[24], yr[24], want[24];
        for (int i = 0; i < 24; i++) {
            acc[i] = hard_acc[a][i % 6];
            want[i] = hard_y[a][i % 6];
        }
        k->requant(acc, 24, 0, hard_m[a], NULL, &hard[a], 0, y);
        pq_i8_requant__scalar(acc, 24, 0, hard_m[a], NULL, &hard[a], 0, yr);
        check(memcmp(y, want, 24) == 0 && memcmp(yr, want, 24) == 0,
              "int8 %s requant: act %d's linear step fused (the bytes that tell it apart)", k->name,
              (int)hard[a].kind);
    }
}
