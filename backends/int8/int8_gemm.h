/* INT8 GEMM for QLinearConv / QLinearMatMul: u8 x s8 -> i32 micro-kernels per ISA (AVX-512 VNNI,
 * AVX-VNNI, AVX2 widening, NEON sdot / widening, scalar), operand packing, and the requantization
 * epilogue. Bit-exact with the reference kernels (backends/ref/ref_extra_nn.c). No IR types here,
 * so the NEON test program links this without the rest of piqc.
 *
 * Requantization (f32, the formula of onnxruntime's MLAS requantizer, so that piqc's INT8 outputs
 * and onnxruntime's on the exported QDQ model agree; the reference kernels of
 * backends/ref/ref_extra_nn.c compute the same):
 *   acc  = sum_k (x_u8 - zp_x) * (w_s8 - zp_w)      exact i32 (zp_w must be 0 in these kernels)
 *   m    = ((float)s_x * (float)s_w[oc]) / (float)s_y      f32 ops, once per output channel /
 * column t    = acc + bias_i32[oc]                               i32, wrapping (two's complement)
 *   v    = (float)t * m                                     f32 (the conversion rounds to nearest
 * even) y_u8 = clamp(nearbyintf(v) + zp_y, 0, 255)              round half to even (default FP
 * mode) A NaN v (a non-finite multiplier) gives zp_y. The SIMD epilogues clamp v to [-zp_y, 255 -
 * zp_y] before the conversion (the same result: the bounds are integers and rounding is monotone),
 * and need finite multipliers (the drivers check once per call and use the scalar epilogue
 * otherwise). The bias is folded into the per-channel i32 correction below, so the epilogue adds
 * one i32.
 *
 * Zero-point correction: sum_k (x - zp_x) w = sum_k x w - zp_x * sum_k w. The term
 * -zp_x * sum_k w[oc][k] is computed once per output channel (i32, wrapping like the accumulator)
 * and added to the raw u8 x s8 accumulator in the epilogue, so the main loop runs on the raw
 * bytes. Padding of a convolution holds zp_x (contributes 0 after correction). */
#ifndef PQ_INT8_GEMM_H
#define PQ_INT8_GEMM_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ir/status.h"

enum pq_i8_isa {
    PQ_I8_SCALAR,
    PQ_I8_AVX2,    /* vpmaddwd on zero-/sign-extended i16 (never vpmaddubsw, which saturates) */
    PQ_I8_AVXVNNI, /* 256-bit vpdpbusd (VEX), built when the compiler knows -mavxvnni */
    PQ_I8_AVX512,  /* 512-bit vpdpbusd (AVX-512 VNNI) */
    PQ_I8_NEON, /* sdot when the CPU has dotprod, else vmull_s8 + vpadalq_s16 (u8 flipped to s8) */
    PQ_I8_AMX, /* AMX-INT8 tiles (tdpbusd / tdpbsud, 16 x 64-byte rows) with the AVX-512 epilogue */
    PQ_I8_ISA_COUNT
};

#define PQ_I8_MAX_MR 32

/* c[r * nr + j] = sum_{q < kq} sum_{t < kb} a[r][q * kb + t] * p[(q * nr + j) * kb + t] for
 * r < mr (1..mr_max), j < nr. The kb elements a[r][q * kb .. q * kb + kb - 1] (4 bytes) are at
 * a + r * lda + q * qs: qs = 4 for packed rows (pq_i8_pack_rows); lda = 4, qs = 4 * nr reads the
 * lanes of a packed panel as rows. Element types as packed by the table's pack rules (elem bytes,
 * flip). */
typedef void (*pq_i8_ukernel_fn)(int mr, size_t kq, const void *a, size_t lda, size_t qs,
                                 const void *p, int32_t *c);
/* A fused activation of the epilogue (kind PQ_I8_ACT_NONE: the plain requantization). */
enum pq_i8_act_kind {
    PQ_I8_ACT_NONE,
    PQ_I8_ACT_RELU,         /* max(r, 0) */
    PQ_I8_ACT_CLIP,         /* min(max(r, alpha), beta) */
    PQ_I8_ACT_LEAKY_RELU,   /* r < 0 ? alpha * r : r */
    PQ_I8_ACT_HARD_SIGMOID, /* min(max(fma(alpha, r, beta), 0), 1) */
    PQ_I8_ACT_HARD_SWISH,   /* r * min(max(fma(r, (1/6)f, 0.5), 0), 1) */
    PQ_I8_ACT_SIGMOID,      /* pq_i8_sigmoid_f32(r) */
    PQ_I8_ACT_SWISH,        /* r * pq_i8_sigmoid_f32(r) */
};
typedef struct pq_i8_act {
    enum pq_i8_act_kind kind;
    float alpha, beta;
    float inv_sy; /* 1.0f / s_y */
} pq_i8_act;

/* For the SIMD epilogues: BODY(KIND) in a switch on the activation kind, with KIND a constant for
 * the common activations (none, Relu, Clip, HardSwish, Swish), so that an always-inline body's own
 * switch on it folds away (no switch per vector); the others pass kind itself. */
#define PQ_I8_ACT_SPECIALISE(kind, BODY)                                                           \
    switch (kind) {                                                                                \
    case PQ_I8_ACT_NONE:                                                                           \
        BODY(PQ_I8_ACT_NONE);                                                                      \
        break;                                                                                     \
    case PQ_I8_ACT_RELU:                                                                           \
        BODY(PQ_I8_ACT_RELU);                                                                      \
        break;                                                                                     \
    case PQ_I8_ACT_CLIP:                                                                           \
        BODY(PQ_I8_ACT_CLIP);                                                                      \
        break;                                                                                     \
    case PQ_I8_ACT_HARD_SWISH:                                                                     \
        BODY(PQ_I8_ACT_HARD_SWISH);                                                                \
        break;                                                                                     \
    case PQ_I8_ACT_SWISH:                                                                          \
        BODY(PQ_I8_ACT_SWISH);                                                                     \
        break;                                                                                     \
    default:                                                                                       \
        BODY((int)(kind));                                                                         \
        break;                                                                                     \
    }

/* The coefficient tables of pq_i8_sigmoid_f32: t[k][i] multiplies f^k on [i, i + 1) (a
 * least-squares quartic per unit interval, fitted by piqc in double precision and rounded). */
static inline const float (*pq_i8_sigmoid_table(void))[16] {
    static const float t[5][16] = {
        {5.000000000e-01f, 7.310566902e-01f, 8.807964325e-01f, 9.525742531e-01f, 9.820139408e-01f,
         9.933072329e-01f, 9.975274205e-01f, 9.990889430e-01f, 9.996646643e-01f, 9.998766184e-01f,
         9.999545813e-01f, 9.999833107e-01f, 9.999938607e-01f, 9.999977350e-01f, 9.999991655e-01f,
         9.999997020e-01f},
        {2.499069571e-01f, 1.967043728e-01f, 1.050279662e-01f, 4.517201707e-02f, 1.765644737e-02f,
         6.644980051e-03f, 2.465263708e-03f, 9.097470902e-04f, 3.350611078e-04f, 1.233140938e-04f,
         4.537176210e-05f, 1.669229096e-05f, 6.140880032e-06f, 2.259120947e-06f, 8.310864814e-07f,
         3.057399454e-07f},
        {9.430086357e-04f, -4.615726322e-02f, -4.027301073e-02f, -2.041158266e-02f,
         -8.462932892e-03f, -3.254333278e-03f, -1.216921723e-03f, -4.503819218e-04f,
         -1.660534908e-04f, -6.113744894e-05f, -2.249795034e-05f, -8.277445886e-06f,
         -3.045225867e-06f, -1.120292723e-06f, -4.121349093e-07f, -1.516162627e-07f},
        {-2.389314957e-02f, -3.917027730e-03f, 7.372354623e-03f, 5.408016499e-03f, 2.486800309e-03f,
         9.904366452e-04f, 3.750422911e-04f, 1.394390420e-04f, 5.149668868e-05f, 1.897168841e-05f,
         6.982967079e-06f, 2.569387107e-06f, 9.452920153e-07f, 3.477626365e-07f, 1.279359481e-07f,
         4.706516776e-08f},
        {4.099593498e-03f, 3.112161532e-03f, -3.490592353e-04f, -7.289992063e-04f,
         -3.871980589e-04f, -1.609728060e-04f, -6.185936945e-05f, -2.312104152e-05f,
         -8.555398381e-06f, -3.154091019e-06f, -1.161237606e-06f, -4.273189802e-07f,
         -1.572185937e-07f, -5.783975610e-08f, -2.127836041e-08f, -7.827911652e-09f},
    };
    return t;
}

/* The INT8 epilogue's logistic function 1 / (1 + e^-r), defined by this sequence of f32
 * operations, which the SIMD epilogues repeat lane for lane with table lookups, so every ISA gives
 * the same bytes: a = min(|r|, 16), i = min(trunc(a), 15), f = a - i, p = the quartic of interval
 * i at f (Horner, pq_i8_sigmoid_table, each step one fused multiply-add: fmaf, rounded once, as
 * every ISA's FMA instruction), and 1 - p for r < 0. Within 3e-6 of the exact function; no
 * division, no exponential. A NaN stays NaN. (The fused steps halve the dependent chain of the
 * SIMD epilogues: efficientnet_b0's Swish layers ran 10% faster than with separate products and
 * sums.) */
static inline float pq_i8_sigmoid_f32(float r) {
    if (r != r) return r; /* NaN (non-finite multipliers): stays NaN, the byte zp */
    const float(*t)[16] = pq_i8_sigmoid_table();
    float a = r < 0.0f ? -r : r;
    a = a > 16.0f ? 16.0f : a;
    int i = (int)a;
    i = i > 15 ? 15 : i;
    float f = a - (float)i;
    float p = t[4][i];
    for (int k = 3; k >= 0; k--)
        p = fmaf(p, f, t[k][i]);
    return r < 0.0f ? 1.0f - p : p;
}

/* The activation in f32 operations, in this order; the linear step of HardSigmoid / HardSwish
 * (alpha r + beta, r / 6 + 1 / 2) is one fused multiply-add (fmaf, rounded once: every ISA's
 * vfmadd / vfmaq gives the same bits); nothing else is fused. */
static inline float pq_i8_act_f32(const pq_i8_act *a, float r) {
    float h;
    switch (a->kind) {
    case PQ_I8_ACT_RELU:
        return r < 0.0f ? 0.0f : r;
    case PQ_I8_ACT_CLIP:
        r = r < a->alpha ? a->alpha : r;
        return r > a->beta ? a->beta : r;
    case PQ_I8_ACT_LEAKY_RELU:
        return r < 0.0f ? a->alpha * r : r;
    case PQ_I8_ACT_HARD_SIGMOID:
        h = fmaf(a->alpha, r, a->beta);
        h = h < 0.0f ? 0.0f : h;
        return h > 1.0f ? 1.0f : h;
    case PQ_I8_ACT_HARD_SWISH:
        h = fmaf(r, 1.0f / 6.0f, 0.5f);
        h = h < 0.0f ? 0.0f : h;
        h = h > 1.0f ? 1.0f : h;
        return r * h;
    case PQ_I8_ACT_SIGMOID:
        return pq_i8_sigmoid_f32(r);
    case PQ_I8_ACT_SWISH:
        return r * pq_i8_sigmoid_f32(r);
    default:
        return r;
    }
}

/* y[j] = requant(acc[j] + add, mv ? mv[j] : ms, zp) (the formula above; with act non-NULL the
 * fused-activation form, ms / mv then s_x * s_w), j < n. SIMD variants require finite
 * multipliers (and act parameters). */
typedef void (*pq_i8_requant_fn)(const int32_t *acc, size_t n, int32_t add, float ms,
                                 const float *mv, const pq_i8_act *act, int32_t zp, uint8_t *y);

/* The epilogue of one micro-kernel call: row r (< mr), lane j (< nj) stores
 * y[r * ldy + j] = requant(acc + add_row[r] + add_col[j], m_row ? m_row[r] : m_col[j], zp).
 * add_row / add_col may be NULL (nothing added); exactly one of m_row / m_col is non-NULL and
 * finite. Arrays indexed by lane hold nj entries. */
typedef struct pq_i8_tile_ep {
    const int32_t *add_row, *add_col;
    const float *m_row, *m_col;
    const pq_i8_act *act; /* NULL: no activation */
    int32_t zp;
    uint8_t *y;
    size_t ldy;
    int nj;
} pq_i8_tile_ep;
/* A piece of a convolution tile for the quad packer: lanes [j, j + n) of the tile (n <= nr, one
 * panel) come from bytes src .. src + n - 1 of every tap row and go to byte dst of the panels
 * (dst = panel * panel bytes + lane * 4, the quad offset added per quad). overrun: a 16-lane store
 * may run past the last lane (it lands in lanes a later chunk or quad rewrites). */
typedef struct pq_i8_chunk {
    size_t src, dst, j;
    uint32_t n;
    bool overrun;
} pq_i8_chunk;
/* Packs quad (4 taps) of every chunk: rb[t] is tap row t's base (NULL: a K-tail row, packed as
 * zeros from ztail + j, ztail holding bytes that pack to 0), qoff the quad's byte offset inside a
 * panel, each byte ^ x. slack: 16 bytes may be read past every row's run; last: no later quad
 * (an overrun must then stay inside its panel). */
typedef void (*pq_i8_packq_fn)(const uint8_t *const rb[4], const pq_i8_chunk *ch, size_t nch,
                               size_t qoff, uint8_t x, bool slack, bool last, const uint8_t *ztail,
                               uint8_t *dst);
/* Depthwise tap sums of one channel: acc[oh * OW + ow] = sum_{kh, kw} w[kh * KW + kw] *
 * x(oh * sh + kh * dh, ow * sw + kw * dw) with x(r, c) = pad[(c % sw) * ps + r * rs + c / sw], a
 * zero-padded f32 plane of input - zp_x split into sw column phases. The values are integers
 * (|x| <= 255, |w| <= 128) and KH * KW <= 256 keeps |acc| < 2^24, so every f32 evaluation order
 * is exact and the i32 sums equal the reference's. */
typedef struct pq_i8_dw_geom {
    size_t rs, ps;
    int OH, OW, KH, KW, sh, sw, dh, dw;
    const size_t *off; /* KH * KW tap offsets: (kw * dw % sw) * ps + kh * dh * rs + kw * dw / sw */
} pq_i8_dw_geom;
typedef void (*pq_i8_dw_fn)(const float *pad, const pq_i8_dw_geom *g, const float *w, int32_t *acc);
/* The portable version (any ISA's table may point at it). */
void pq_i8_dw__portable(const float *pad, const pq_i8_dw_geom *g, const float *w, int32_t *acc);
/* The padded, phase-split f32 plane of one channel x (H x W bytes) for pq_i8_dw_fn: rows r < hr
 * (ih = r - pt), phase ph < sw, column q < wq (iw = q * sw + ph - pl) hold x - zp, or 0 outside
 * the input; row r of phase ph at pad + ph * g->ps + r * g->rs (rs = wq). row: scratch of
 * sw * wq + 64 floats. */
typedef void (*pq_i8_dwpad_fn)(const uint8_t *x, int64_t H, int64_t W, int64_t pt, int64_t pl,
                               float zp, size_t hr, const pq_i8_dw_geom *g, float *row, float *pad);
void pq_i8_dwpad__portable(const uint8_t *x, int64_t H, int64_t W, int64_t pt, int64_t pl, float zp,
                           size_t hr, const pq_i8_dw_geom *g, float *row, float *pad);

/* Depthwise convolution with the channels in vector lanes (group = C, one output channel per
 * group): channels [0, nc) of one image, nc <= the table's dwc_lanes. The input planes are copied
 * channel-last into a zero-padded f32 plane of x - zp_x (exact integers, as pq_i8_dw_fn), every
 * tap is one multiply-add of dwc_lanes channels, the requantization (bias, finite multipliers,
 * fused activation) runs on the channel lanes and the bytes go back to NCHW planes: bit-exact
 * with the reference. */
typedef struct pq_i8_dwc {
    const uint8_t *x;     /* channel 0 of the block; planes of H x W bytes */
    uint8_t *y;           /* output channel 0; planes of OH x OW bytes */
    const int8_t *w;      /* [nc][KH * KW] */
    const int32_t *bias;  /* nc, or NULL */
    const float *m;       /* nc finite multipliers (pq_i8_mult, or s_x * s_w with act) */
    const pq_i8_act *act; /* NULL: none */
    int32_t zp_x, zp_y;
    int nc;
    int64_t H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl;
    int64_t oh_begin, oh_end; /* output rows [oh_begin, oh_end) (oh_end 0: to OH) */
    void *scratch;            /* pq_i8_dwc_scratch bytes, 64-byte aligned */
} pq_i8_dwc;
typedef void (*pq_i8_dwc_fn)(const pq_i8_dwc *a);

/* Output rows per band of pq_i8_dwc_fn: the padded plane is built per band of output rows, about
 * 64 KiB of it (lanes f32 per column). */
static inline int64_t pq_i8_dwc_band(const pq_i8_dwc *a, int lanes) {
    int64_t wp = (a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1;
    int64_t bh = (int64_t)65536 / (a->sh * wp * lanes * (int64_t)sizeof(float));
    return bh < 1 ? 1 : (bh > a->OH ? a->OH : bh);
}

/* The f32 plane of the channel-lane depthwise kernels (pq_i8_dwc_fn; lanes channels per plane
 * column, x - zp_x per channel): wp columns, hb rows per band of bh output rows; input column iw
 * < wn lands at column cl + iw, columns [0, cl) and [cr, wp) are padding. */
typedef struct pq_i8_dwc_plane {
    size_t wp, hb, cl, cr;
    int64_t bh, wn;
} pq_i8_dwc_plane;

/* The plane geometry of a, and toff[k] the float offset in the plane of tap k (kh, kw) from an
 * output position's top-left column. */
static inline pq_i8_dwc_plane pq_i8_dwc_plane_of(const pq_i8_dwc *a, int lanes, int *toff) {
    pq_i8_dwc_plane pg;
    pg.bh = pq_i8_dwc_band(a, lanes);
    pg.hb = (size_t)((pg.bh - 1) * a->sh + (a->KH - 1) * a->dh + 1);
    pg.wp = (size_t)((a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1);
    pg.wn = (int64_t)pg.wp - a->pl < a->W ? (int64_t)pg.wp - a->pl : a->W;
    pg.cl = (size_t)a->pl < pg.wp ? (size_t)a->pl : pg.wp;
    pg.cr = pg.wn > 0 ? (size_t)(a->pl + pg.wn) : pg.cl;
    for (int kh = 0, k = 0; kh < a->KH; kh++)
        for (int kw = 0; kw < a->KW; kw++, k++)
            toff[k] = (int)(((size_t)(kh * a->dh) * pg.wp + (size_t)(kw * a->dw)) * (size_t)lanes);
    return pg;
}

/* Zero (= zp - zp) in the rows rows of a band's plane P starting at padded input row ih0: every
 * row outside the input, the padding columns of the others. */
static inline void pq_i8_dwc_plane_pads(const pq_i8_dwc *a, const pq_i8_dwc_plane *pg, int lanes,
                                        int64_t ih0, size_t rows, float *P) {
    size_t L = (size_t)lanes;
    for (size_t rr = 0; rr < rows; rr++) {
        int64_t ih = ih0 + (int64_t)rr;
        float *d = P + rr * pg->wp * L;
        if (ih < 0 || ih >= a->H || pg->wn <= 0) {
            memset(d, 0, pg->wp * L * sizeof(float));
            continue;
        }
        memset(d, 0, pg->cl * L * sizeof(float));
        memset(d + pg->cr * L, 0, (pg->wp - pg->cr) * L * sizeof(float));
    }
}

/* The AVX-512 tap-quad depthwise kernel's limits: left padding (the channel-last rows' slack in
 * positions) and quad columns per row. */
#define PQ_I8_DWCQ_PAD 8
#define PQ_I8_DWCQ_MAXQ 4096

/* Its geometry for a (16 lanes, dilation 1 across columns): G quads of four taps per kernel row,
 * nq quad columns per row, bh output rows per band (about 16 KiB of quads, the channel-last input
 * rows beside them in L1), hb plane rows per band, ubytes the bytes of those input rows with
 * their slack (PQ_I8_DWCQ_PAD positions before, the last windows' overhang after), a multiple of
 * 64. */
typedef struct pq_i8_dwcq_geom {
    int64_t G, nq, bh, hb, ubytes;
} pq_i8_dwcq_geom;

static inline pq_i8_dwcq_geom pq_i8_dwcq_geometry(const pq_i8_dwc *a) {
    pq_i8_dwcq_geom q;
    q.G = (a->KW + 3) / 4;
    q.nq = a->OW + 4 * (q.G - 1) / a->sw;
    int64_t bh = (int64_t)16384 / (a->sh * q.nq * 64);
    q.bh = bh < 1 ? 1 : (bh > a->OH ? a->OH : bh);
    q.hb = (q.bh - 1) * a->sh + (a->KH - 1) * a->dh + 1;
    int64_t over = (q.nq - 1) * a->sw + 4 - a->pl - a->W; /* past the last row's end */
    q.ubytes = (PQ_I8_DWCQ_PAD + q.hb * a->W + (over > 0 ? over : 0)) * 16;
    q.ubytes = (q.ubytes + 63) / 64 * 64;
    return q;
}

/* The AVX-512 column-lane depthwise kernel (int8_dwc_cols_avx512.c): at stride 1 it works on a
 * zp-padded copy of the channel's input rows, back to back at a pitch of OW + KW - 1 bytes, with
 * a 64-byte permute and store parameters per 64 positions of it; its scratch bytes for output
 * rows [0, OH) (two such copies, else a row of zp), and slack. */
static inline size_t pq_i8_dwcc_bytes(const pq_i8_dwc *a) {
    if (a->sw != 1 || a->sh != 1) return (size_t)a->W + 192;
    size_t p = (size_t)(a->OW + a->KW - 1), rows = (size_t)(a->OH + (a->KH - 1) * a->dh);
    size_t wins = ((size_t)a->OH * p + 63) / 64;
    return 2 * ((rows * p + 192 + 63) / 64 * 64) + wins * 72;
}

/* Scratch bytes of pq_i8_dwc_fn for the geometry of a (lanes: the table's dwc_lanes): the padded
 * plane of one band, the tap weights as f32 vectors, the requantized bytes [position][lane] and
 * slack; with 16 lanes at least the tap-quad kernel's byte and quad planes and weight quads, and
 * the column-lane kernel's row copy. */
static inline size_t pq_i8_dwc_scratch(const pq_i8_dwc *a, int lanes) {
    size_t hb = (size_t)((pq_i8_dwc_band(a, lanes) - 1) * a->sh + (a->KH - 1) * a->dh + 1);
    size_t wp = (size_t)((a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1);
    size_t osp = (size_t)(a->OH * a->OW), L = (size_t)lanes;
    size_t tail = (osp + L) * L + 256, f32 = (hb * wp + (size_t)(a->KH * a->KW) + L) * L * 4;
    if (lanes == 16 && a->sw >= 1) {
        pq_i8_dwcq_geom q = pq_i8_dwcq_geometry(a);
        size_t quads =
            (size_t)q.ubytes + (size_t)q.hb * (size_t)q.nq * 64 + (size_t)(a->KH * q.G) * 64;
        if (quads > f32) f32 = quads;
        if (pq_i8_dwcc_bytes(a) > f32) f32 = pq_i8_dwcc_bytes(a);
    }
    return f32 + tail;
}

/* A micro-kernel with the epilogue fused: the accumulators never leave the registers. */
typedef void (*pq_i8_ukernel_rq_fn)(int mr, size_t kq, const void *a, size_t lda, size_t qs,
                                    const void *p, const pq_i8_tile_ep *ep);

typedef struct pq_i8_kernels {
    enum pq_i8_isa isa;
    const char *name;
    int mr;    /* rows per micro-kernel call (broadcast operand) */
    int nr;    /* lanes per micro-kernel call (packed panel operand) */
    int kb;    /* consecutive k per lane in the panel (4 for dot-product, 2 for madd pairs) */
    int elem;  /* bytes per packed element: 1 (raw bytes) or 2 (i16, pre-widened) */
    bool flip; /* u8 operands packed as u8 ^ 0x80 (s8) and zero points lowered by 128 */
    /* ukernel[1]: the row operand is u8, the panel s8; ukernel[0]: rows s8, panel u8 */
    pq_i8_ukernel_fn ukernel[2];
    /* the same with the epilogue fused (NULL: ukernel, then requant row by row) */
    pq_i8_ukernel_rq_fn ukernel_rq[2];
    pq_i8_requant_fn requant;
    /* the quad packer for this table's panels (NULL: the portable one; only for elem 1, kb 4) */
    pq_i8_packq_fn packq;
    /* depthwise tap sums and their input plane (NULL: the portable ones) */
    pq_i8_dw_fn dw;
    pq_i8_dwpad_fn dwpad;
    /* depthwise with channels in lanes (NULL: the per-channel dw / dwpad path) */
    pq_i8_dwc_fn dwc;
    int dwc_lanes;
    /* the packed depth in quads is a multiple of this (0 or 1: none; AMX: 16, one tile row of
     * 64 bytes), the extra quads packed as zeros */
    int kq_align;
    /* the table whose micro-kernels run when the row operand is read from a packed panel (quads
     * qs != 4 bytes apart; same panel geometry), or NULL when this table's kernels handle it */
    const struct pq_i8_kernels *strided;
    /* byte transposes of the conv drivers, NULL: the SSE2 / portable ones (the AVX-512 tables'
     * 64-column versions, int8_conv_taps_avx512.c): dst[c * ldd + r] = src[r * lds + c] for r <
     * rows, c < cols; and the implicit GEMM's channel-last copy of one input row of channels
     * [c0, c0 + cn) (cn <= 16; src: channel c0's row, planes hw bytes apart): column iw < wend
     * lands at dst + co[iw] (SIZE_MAX: not copied) as cn bytes (E 1) or zero-extended i16 (E 2) */
    void (*transpose)(const uint8_t *src, size_t lds, size_t rows, size_t cols, uint8_t *dst,
                      size_t ldd);
    void (*taps_copy)(const uint8_t *src, size_t hw, size_t cn, int64_t wend, const size_t *co,
                      size_t E, uint8_t *dst);
    /* one u8 row (kq quads, 4 bytes apart) against one panel with the fused epilogue (a batch-1
     * QLinearMatMul: its K split over independent accumulators), or NULL: ukernel_rq with mr 1 */
    void (*gemv_rq)(size_t kq, const uint8_t *a, const uint8_t *p, const pq_i8_tile_ep *ep);
    /* implicit-GEMM convolution tile (pq_i8_taps_fn), or NULL */
    void (*taps)(int mr, const uint8_t *x, size_t lda, const size_t *toff, int ntaps, size_t cq,
                 const void *p, const pq_i8_tile_ep *ep);
} pq_i8_kernels;

/* An implicit-GEMM convolution tile: rows r < mr (<= the table's mr) are output positions whose
 * tap t reads the channel bytes x + toff[t] + r * lda .. + 4 * cq - 1 (channel-last: u8, or
 * zero-extended i16 for elem-2 tables), lanes are the nr output channels of panel p
 * ([ntaps * cq][nr][4 bytes]: unit q of tap t at t * cq + q, kb channels per unit); cq is a
 * multiple of the table's kq_align. The epilogue ep as for the fused micro-kernels (per lane
 * corrections and multipliers). */
typedef void (*pq_i8_taps_fn)(int mr, const uint8_t *x, size_t lda, const size_t *toff, int ntaps,
                              size_t cq, const void *p, const pq_i8_tile_ep *ep);

/* Kernels of one ISA, or NULL when this build or CPU cannot run them. */
const pq_i8_kernels *pq_i8_kernels_for(enum pq_i8_isa isa);
/* The kernels PIQC_ISA asks for (scalar|avx2|avxvnni|avx512|amx|neon; the widening AVX2 path for
 * avx2) when the CPU has them, else the best available: AMX > AVX-512 VNNI > AVX-VNNI > AVX2 >
 * NEON > scalar. Never NULL. */
const pq_i8_kernels *pq_i8_kernels_get(void);
/* The name PIQC_ISA uses for an ISA ("scalar", "avx2", "avxvnni", "avx512", "neon", "amx"). */
const char *pq_i8_isa_name(enum pq_i8_isa isa);

/* Per-ISA tables (NULL-free pointers; availability is checked by pq_i8_kernels_for). */
extern const pq_i8_kernels pq_i8_kernels_scalar;
extern const pq_i8_kernels pq_i8_kernels_avx2;
extern const pq_i8_kernels pq_i8_kernels_avxvnni;
extern const pq_i8_kernels pq_i8_kernels_avx512;
/* AMX (int8_gemm_amx.c): the AVX-512 VNNI table's packing, depthwise and epilogue with 32 x 32
 * tile micro-kernels (depth padded to 64 bytes), or NULL unless the compiler knows AMX-INT8, the
 * CPU has AMX-TILE and AMX-INT8 and the kernel grants this process the tile data state
 * (arch_prctl ARCH_REQ_XCOMP_PERM, asked once). */
const pq_i8_kernels *pq_i8_kernels_amx(void);
/* Makes this thread's next AMX micro-kernel call load its tile configuration again: call at the
 * start of every task that runs the AMX table's kernels (a no-op without AMX). */
void pq_i8_amx_forget(void);
/* NEON (backends/arm/int8_gemm_neon.c, aarch64 only): dot != 0 gives the sdot kernels (NULL
 * when the CPU lacks the dot-product extension), dot == 0 the vmull_s8 / vpadalq_s16 widening
 * ones. PQ_I8_NEON selects the sdot kernels when the CPU has them. */
const pq_i8_kernels *pq_i8_kernels_neon(int dot);
/* The scalar epilogue, exact for any multiplier (NaN and infinities as the reference). */
void pq_i8_requant__scalar(const int32_t *acc, size_t n, int32_t add, float ms, const float *mv,
                           const pq_i8_act *act, int32_t zp, uint8_t *y);

/* The requantization multiplier (s_x * s_w) / s_y in f32 operations (the formula above). */
static inline float pq_i8_mult(float s_x, float s_w, float s_y) {
    float p = s_x * s_w;
    return p / s_y;
}

/* The byte of a requantized value v: clamp(nearbyintf(v) + zp, 0, 255), NaN -> zp (zp in
 * [0, 255]). Rounds with the 1.5 * 2^23 trick on the clamped value (|v| <= 255: exact, half to
 * even). */
static inline uint8_t pq_i8_rqv(float v, int32_t zp) {
    if (v != v) return (uint8_t)zp;
    float lo = (float)-zp, hi = (float)(255 - zp);
    v = v < lo ? lo : (v > hi ? hi : v);
    v = (v + 12582912.0f) - 12582912.0f;
    return (uint8_t)((int32_t)v + zp);
}

/* One output byte of the plain requantization: pq_i8_rqv((float)t * m, zp). */
static inline uint8_t pq_i8_rq1(int32_t t, float m, int32_t zp) {
    return pq_i8_rqv((float)t * m, zp);
}

/* One output byte with a fused activation: pq_i8_rqv(act((float)t * m) * inv_sy, zp). */
static inline uint8_t pq_i8_rq1_act(int32_t t, float m, const pq_i8_act *a, int32_t zp) {
    return pq_i8_rqv(pq_i8_act_f32(a, (float)t * m) * a->inv_sy, zp);
}

/* ---- packing (ISA-independent code driven by the table's geometry) ---- */

/* The packed depth of K: K rounded up to kb * kq_align elements. */
size_t pq_i8_kpad(const pq_i8_kernels *k, size_t K);
/* Bytes of one packed row of K elements (pq_i8_kpad(K) times elem). */
size_t pq_i8_row_bytes(const pq_i8_kernels *k, size_t K);
/* Bytes of the packed panels of a K x n matrix (n rounded up to nr). */
size_t pq_i8_panels_bytes(const pq_i8_kernels *k, size_t K, size_t n);
/* Packs rows [M][K] (lda apart; u8 when is_u8 else s8) into dst: M rows of pq_i8_row_bytes,
 * K tail zero. */
void pq_i8_pack_rows(const pq_i8_kernels *k, const uint8_t *a, size_t lda, size_t M, size_t K,
                     bool is_u8, void *dst);
/* Packs a row-major K x n matrix (ldb apart; u8 when is_u8 else s8) into ceil(n / nr) panels of
 * [ceil(K / kb)][nr][kb] elements, zero-padded (a packed zero) in the K and lane tails. */
void pq_i8_pack_panels(const pq_i8_kernels *k, const uint8_t *b, size_t ldb, size_t K, size_t n,
                       bool is_u8, void *dst);

/* The epilogue of a GEMM: requantization parameters per row (output channel of a conv) or per
 * column (output column of a matmul). Exactly one of m_row / m_col is non-NULL. */
typedef struct pq_i8_epilogue {
    const int32_t
        *add_row; /* M i32 added to every accumulator of a row (correction + bias), or NULL */
    const int32_t *add_col; /* N i32 added per column, or NULL */
    const float *m_row;     /* M multipliers */
    const float *m_col;     /* N multipliers */
    const pq_i8_act *act;   /* fused activation, or NULL */
    int32_t zp_y;
    bool finite; /* every multiplier finite (the SIMD epilogue may run) */
} pq_i8_epilogue;

/* y[M][N] (ldy apart) = requant(A B + corrections): a = packed rows (pq_i8_pack_rows of M rows),
 * p = packed panels (pq_i8_pack_panels of N columns), K the unpadded depth. rows_u8 tells which
 * operand is u8. Cannot fail. */
void pq_i8_gemm_packed(const pq_i8_kernels *k, bool rows_u8, size_t M, size_t N, size_t K,
                       const void *a, const void *p, const pq_i8_epilogue *ep, uint8_t *y,
                       size_t ldy);
/* The same with A given as the lanes of packed panels (pq_i8_pack_panels layout of a K x M
 * matrix, or the convolution packer's): row r is lane r % nr of panel r / nr. */
void pq_i8_gemm_panel_rows(const pq_i8_kernels *k, bool rows_u8, size_t M, size_t N, size_t K,
                           const void *a, const void *p, const pq_i8_epilogue *ep, uint8_t *y,
                           size_t ldy);

/* Zero-point corrections -zp * sum_k w (wrapping i32): per row of a row-major [M][K] s8 matrix
 * (corr[M]) or per column of a row-major [K][N] s8 matrix (corr[N]). zp is the u8 operand's zero
 * point as the kernels see it (pq_i8_zp_eff). */
void pq_i8_corr_rows(const int8_t *w, size_t ldw, size_t M, size_t K, int32_t zp, int32_t *corr);
void pq_i8_corr_cols(const int8_t *w, size_t ldw, size_t K, size_t N, int32_t zp, int32_t *corr);
/* The u8 zero point in the kernels' domain: zp, or zp - 128 when the table flips u8 to s8. */
static inline int32_t pq_i8_zp_eff(const pq_i8_kernels *k, int32_t zp) {
    return k->flip ? zp - 128 : zp;
}

/* Whole GEMM y[M][N] = requant(A[M][K] B[K][N]) with A u8 (zero point zp_a, rows lda apart) and
 * B s8 (zero point 0, ldb apart), m_col[N] multipliers, no bias: packs both operands and runs
 * pq_i8_gemm_packed. NOMEM (message in err when err is non-NULL). Used by tests and NEON. */
enum pq_status pq_i8_gemm_u8s8(const pq_i8_kernels *k, size_t M, size_t N, size_t K,
                               const uint8_t *A, size_t lda, int32_t zp_a, const int8_t *B,
                               size_t ldb, const float *m_col, int32_t zp_y, uint8_t *y, size_t ldy,
                               pq_error *err);

#endif
