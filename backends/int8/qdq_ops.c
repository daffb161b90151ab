/* QuantizeLinear / DequantizeLinear / MaxPool fast paths for the INT8 glue (qdq_ops.h): case
 * checks, typed scalar loops (the reference's formulas without the generic per-element loads),
 * the u8/s8 2-D max pool and the choice of SIMD kernels (qdq_ops_avx2.c, qdq_ops_avx512.c;
 * backends/arm/qdq_ops_neon.c on aarch64). */
#include "qdq_ops.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backends/cpu.h"
#include "backends/onednn/onednn_impl.h"
#include "backends/threadpool.h"
#include "ir/alloc.h"
#include "ir/attrs.h"
#include "ir/ir.h"

/* ---- scalar kernels ---- */

static void pq_qdq_quant__scalar(const float *x, size_t n, float s, int32_t zp, bool is_u8,
                                 uint8_t *y) {
    float lo = is_u8 ? 0.0f : -128.0f, hi = is_u8 ? 255.0f : 127.0f, z = (float)zp;
    for (size_t i = 0; i < n; i++) {
        /* |q| <= 2^24 is exact in f32, and beyond that both f32 and the reference's double sum
         * clamp to the same end of the range */
        float q = nearbyintf(x[i] / s) + z;
        if (q != q) q = z;
        q = q < lo ? lo : (q > hi ? hi : q);
        y[i] = (uint8_t)(int32_t)q;
    }
}

static void pq_qdq_dequant__scalar(const uint8_t *x, size_t n, bool is_u8, int32_t zp, float s,
                                   float *y) {
    if (is_u8)
        for (size_t i = 0; i < n; i++)
            y[i] = (float)((int32_t)x[i] - zp) * s;
    else
        for (size_t i = 0; i < n; i++)
            y[i] = (float)((int32_t)(int8_t)x[i] - zp) * s;
}

static void pq_qdq_div__scalar(const float *x, size_t n, float s, float *q) {
    for (size_t i = 0; i < n; i++)
        q[i] = x[i] / s;
}

const pq_qdq_kernels pq_qdq_kernels_scalar = {.name = "scalar",
                                              .quant = pq_qdq_quant__scalar,
                                              .dequant = pq_qdq_dequant__scalar,
                                              .div = pq_qdq_div__scalar};

/* ---- selection ---- */

const pq_qdq_kernels *pq_qdq_kernels_for(const char *isa) {
    if (!isa) return NULL;
    if (!strcmp(isa, "scalar")) return &pq_qdq_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(isa, "avx2")) return pq_cpu_has_avx2() ? &pq_qdq_kernels_avx2 : NULL;
    if (!strcmp(isa, "avx512")) return pq_cpu_has_avx512() ? &pq_qdq_kernels_avx512 : NULL;
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon")) return &pq_qdq_kernels_neon;
#endif
    return NULL;
}

static const pq_qdq_kernels *pq_qdq_selected;
static pthread_once_t pq_qdq_once = PTHREAD_ONCE_INIT;

static void pq_qdq_select(void) {
    const char *f = pq_isa_forced();
    if (f && pq_qdq_kernels_for(f)) {
        pq_qdq_selected = pq_qdq_kernels_for(f);
        return;
    }
    if ((pq_qdq_selected = pq_qdq_kernels_for("avx512"))) return;
    if ((pq_qdq_selected = pq_qdq_kernels_for("avx2"))) return;
    if ((pq_qdq_selected = pq_qdq_kernels_for("neon"))) return;
    pq_qdq_selected = &pq_qdq_kernels_scalar;
}

const pq_qdq_kernels *pq_qdq_kernels_get(void) {
    pthread_once(&pq_qdq_once, pq_qdq_select);
    return pq_qdq_selected;
}

/* ---- node glue ---- */

static const pq_tensor *pq_qdq_in(const pq_kernel_args *a, uint32_t i) {
    return i < a->n_in ? a->in[i] : NULL;
}

/* One f32 scale element (rank 0, or rank 1 with one element: per tensor in the reference). */
static bool pq_qdq_scale(const pq_tensor *s, float *v) {
    if (!s || s->dtype != PQ_DTYPE_F32 || !s->data || s->rank > 1 || pq_tensor_numel(s) != 1)
        return false;
    *v = *(const float *)s->data;
    return true;
}

/* The zero point (absent: 0) of a quantized tensor of dtype q (u8 or s8; absent zp: u8). */
static bool pq_qdq_zp(const pq_tensor *z, enum pq_dtype q, int32_t *zp) {
    if (!z) {
        *zp = 0;
        return true;
    }
    if (z->dtype != q || !z->data || z->rank > 1 || pq_tensor_numel(z) != 1) return false;
    *zp = q == PQ_DTYPE_U8 ? (int32_t) * (const uint8_t *)z->data
                           : (int32_t) * (const int8_t *)z->data;
    return true;
}

static bool pq_qdq_same_numel(const pq_tensor *x, const pq_tensor *y) {
    return x && y && x->data && y->data && pq_tensor_numel(x) == pq_tensor_numel(y);
}

enum pq_status pq_qdq_quantize_run(const pq_qdq_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_qdq_kernels_get();
    if (a->n_in < 2 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = pq_qdq_in(a, 0);
    pq_tensor *Y = a->out[0];
    float s;
    int32_t zp;
    if (!X || X->dtype != PQ_DTYPE_F32 || (Y->dtype != PQ_DTYPE_U8 && Y->dtype != PQ_DTYPE_I8) ||
        !pq_qdq_same_numel(X, Y) || !pq_qdq_scale(pq_qdq_in(a, 1), &s) ||
        !pq_qdq_zp(pq_qdq_in(a, 2), Y->dtype, &zp))
        return PQ_ERR_UNSUPPORTED;
    k->quant(X->data, (size_t)pq_tensor_numel(X), s, zp, Y->dtype == PQ_DTYPE_U8, Y->data);
    return PQ_OK;
}

enum pq_status pq_qdq_dequantize_run(const pq_qdq_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_qdq_kernels_get();
    if (a->n_in < 2 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = pq_qdq_in(a, 0);
    pq_tensor *Y = a->out[0];
    float s;
    int32_t zp;
    if (!X || (X->dtype != PQ_DTYPE_U8 && X->dtype != PQ_DTYPE_I8) || Y->dtype != PQ_DTYPE_F32 ||
        !pq_qdq_same_numel(X, Y) || !pq_qdq_scale(pq_qdq_in(a, 1), &s) ||
        !pq_qdq_zp(pq_qdq_in(a, 2), X->dtype, &zp))
        return PQ_ERR_UNSUPPORTED;
    k->dequant(X->data, (size_t)pq_tensor_numel(X), X->dtype == PQ_DTYPE_U8, zp, s, Y->data);
    return PQ_OK;
}

/* ---- MaxPool on bytes ---- */

#define PQ_I8_POOL_MAX_W 4096

/* INTS attribute name with exactly n entries into v (absent: def for every entry). */
static bool pq_i8_pool_ints(const pq_node *node, const char *name, int n, int64_t def, int64_t *v) {
    const int64_t *p;
    uint32_t c;
    if (!pq_node_attr_ints(node, name, &p, &c)) {
        if (pq_node_attr(node, name)) return false;
        for (int i = 0; i < n; i++)
            v[i] = def;
        return true;
    }
    if (c != (uint32_t)n) return false;
    for (int i = 0; i < n; i++)
        v[i] = p[i];
    return true;
}

/* The tap pattern of a pool on planes of at most 64 bytes (pq_i8_pool_small__avx512vbmi) for
 * one input and output plane shape. */
#define PQ_I8_POOL_SMALL_TAPS 16
typedef struct pq_i8_pool_small {
    _Alignas(64) uint8_t idx[PQ_I8_POOL_SMALL_TAPS][64];
    uint64_t km[PQ_I8_POOL_SMALL_TAPS];
    int64_t H, W, OH, OW;
} pq_i8_pool_small;

/* A MaxPool node's 2-D attributes (and, in the session's copy, the small-plane pattern of the
 * last shape, or NULL). */
typedef struct pq_i8_pool_attrs {
    int64_t k[2], s[2], d[2], p[4];
    pq_i8_pool_small *small;
} pq_i8_pool_attrs;

/* Decodes them (false: auto_pad other than NOTSET, malformed or out-of-range values). */
static bool pq_i8_pool_decode(const pq_node *node, pq_i8_pool_attrs *o) {
    const char *ap = pq_node_attr_string(node, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0) return false;
    if (!pq_i8_pool_ints(node, "kernel_shape", 2, 0, o->k) ||
        !pq_i8_pool_ints(node, "strides", 2, 1, o->s) ||
        !pq_i8_pool_ints(node, "dilations", 2, 1, o->d) ||
        !pq_i8_pool_ints(node, "pads", 4, 0, o->p))
        return false;
    for (int i = 0; i < 2; i++)
        if (o->k[i] < 1 || o->s[i] < 1 || o->d[i] < 1 || o->p[i] < 0 || o->p[i + 2] < 0)
            return false;
    o->small = NULL;
    return true;
}

#if !defined(PQ_NO_SESSION_CACHE)
static void pq_i8_pool_attrs_free(void *v) {
    pq_i8_pool_attrs *o = v;
    if (o) pq_free(o->small);
    pq_free(o);
}
#endif

/* The attributes of a->node, decoded once per session node (the bound session cache holds them
 * in the node's second entry, pq_dnnl_node_aux; attributes do not change while a session runs)
 * or per call without a cache: *o a copy, *kept the session's own (NULL without a cache). */
static bool pq_i8_pool_attrs_get(const pq_kernel_args *a, pq_i8_pool_attrs *o,
                                 pq_i8_pool_attrs **kept) {
    *kept = NULL;
#if defined(PQ_NO_SESSION_CACHE) /* the NEON test program links this file without the backends */
    return pq_i8_pool_decode(a->node, o);
#else
    pq_onednn_cache *c = pq_dnnl_current();
    if (!c || !a->node) return pq_i8_pool_decode(a->node, o);
    pq_error scratch;
    pq_error_clear(&scratch);
    pq_dnnl_node *e = pq_dnnl_node_aux(c, a->node, &scratch);
    if (e && e->val) {
        *kept = e->val;
        *o = **kept;
        return true;
    }
    if (!pq_i8_pool_decode(a->node, o)) return false;
    if (e && (e->val = pq_malloc(sizeof *o))) {
        memcpy(e->val, o, sizeof *o);
        e->destroy = pq_i8_pool_attrs_free;
        *kept = e->val;
    }
    return true;
#endif
}

/* One plane: y[oh][ow] = max over the in-range window. u8 compares as unsigned, s8 after ^0x80
 * (order-preserving bijection), done by the caller's bias. row: the vertical max of the window
 * rows with p[1] zero bytes before it and zeros after (a zero never wins: every window holds an
 * in-range element, and biased bytes are >= 0); hm: the stride-1 horizontal max. */
static void pq_i8_pool_plane(const uint8_t *x, int64_t H, int64_t W, uint8_t *y, int64_t OH,
                             int64_t OW, const int64_t *k, const int64_t *s, const int64_t *d,
                             const int64_t *p, uint8_t bias, uint8_t *row, uint8_t *hm) {
    int64_t nh = (OW - 1) * s[1] + 1; /* horizontal positions needed */
    uint8_t *vr = row + p[1];
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t h0 = oh * s[0] - p[0];
        bool any = false;   /* the first in-range row is copied, later ones max-ed in */
        bool fused = false; /* or all of them at once */
#if defined(__SSE2__)
        /* up to 4 in-range rows in one pass (16 columns per step), the rest below */
        const uint8_t *xs[4];
        int nr = 0;
        int64_t kh = 0;
        for (; kh < k[0]; kh++) {
            int64_t ih = h0 + kh * d[0];
            if (ih < 0 || ih >= H) continue;
            if (nr == 4) break; /* a fifth in-range row: the loops below */
            xs[nr++] = x + ih * W;
        }
        if (kh == k[0] && nr > 0) { /* every in-range row taken */
            __m128i vb = _mm_set1_epi8((char)bias);
            int64_t w = 0;
            for (; w + 16 <= W; w += 16) {
                __m128i m = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(xs[0] + w)), vb);
                for (int i = 1; i < nr; i++)
                    m = _mm_max_epu8(
                        m, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(xs[i] + w)), vb));
                _mm_storeu_si128((__m128i *)(vr + w), m);
            }
            for (; w < W; w++) {
                uint8_t m = xs[0][w] ^ bias;
                for (int i = 1; i < nr; i++)
                    m = (uint8_t)(xs[i][w] ^ bias) > m ? (uint8_t)(xs[i][w] ^ bias) : m;
                vr[w] = m;
            }
            fused = true;
        }
#endif
        for (int64_t kh = 0; kh < k[0] && !fused; kh++) {
            int64_t ih = h0 + kh * d[0];
            if (ih < 0 || ih >= H) continue;
            const uint8_t *xr = x + ih * W;
            if (!any) {
                for (int64_t w = 0; w < W; w++)
                    vr[w] = xr[w] ^ bias;
                any = true;
            } else {
                for (int64_t w = 0; w < W; w++) {
                    uint8_t v = xr[w] ^ bias;
                    vr[w] = v > vr[w] ? v : vr[w];
                }
            }
        }
        uint8_t *yr = y + oh * OW;
        if (k[1] == 3 && s[1] == 2 && d[1] == 1) { /* y[ow] = max of row[2 ow .. 2 ow + 2] */
            int64_t ow = 0;
#if defined(__SSE2__)
            /* 16 outputs from the even bytes at 2 ow, the odd ones and the even ones at 2 ow + 2,
             * the last 8 to 15 of a row from one more such step (loads reach 2 OW + 17 < len + 48
             * bytes: zeros, see pq_i8_pool_task) */
            __m128i lo = _mm_set1_epi16(0x00FF), vb = _mm_set1_epi8((char)bias);
            for (; ow + 8 <= OW; ow += 16) {
                const uint8_t *r = row + 2 * ow;
                __m128i a = _mm_loadu_si128((const __m128i *)r);
                __m128i b = _mm_loadu_si128((const __m128i *)(r + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(r + 2));
                __m128i e = _mm_loadu_si128((const __m128i *)(r + 18));
                __m128i ev = _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
                __m128i od = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
                __m128i e2 = _mm_packus_epi16(_mm_and_si128(c, lo), _mm_and_si128(e, lo));
                __m128i m = _mm_xor_si128(_mm_max_epu8(_mm_max_epu8(ev, od), e2), vb);
                if (ow + 16 > OW) { /* 8 .. 15 left: the first 8 */
                    _mm_storel_epi64((__m128i *)(yr + ow), m);
                    ow += 8;
                    break;
                }
                _mm_storeu_si128((__m128i *)(yr + ow), m);
            }
#endif
            for (; ow < OW; ow++) {
                uint8_t m = row[2 * ow] > row[2 * ow + 1] ? row[2 * ow] : row[2 * ow + 1];
                m = row[2 * ow + 2] > m ? row[2 * ow + 2] : m;
                yr[ow] = m ^ bias;
            }
            continue;
        }
        /* hm[x] = max_kw row[x + kw * d] (row index x is input column x - p[1]) */
        memcpy(hm, row, (size_t)nh);
        for (int64_t kw = 1; kw < k[1]; kw++) {
            const uint8_t *r = row + kw * d[1];
            for (int64_t t = 0; t < nh; t++)
                hm[t] = r[t] > hm[t] ? r[t] : hm[t];
        }
        int64_t st = s[1]; /* a local: the byte stores below could alias s for the compiler */
        if (st == 1) {
            for (int64_t ow = 0; ow < OW; ow++)
                yr[ow] = hm[ow] ^ bias;
        } else if (st == 2) { /* the even bytes of hm, 16 outputs per step where SSE2 is there */
            int64_t ow = 0;
#if defined(__SSE2__)
            __m128i lo = _mm_set1_epi16(0x00FF), vb = _mm_set1_epi8((char)bias);
            for (; ow + 16 <= OW; ow += 16) {
                __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(hm + 2 * ow)), lo);
                __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(hm + 2 * ow + 16)), lo);
                _mm_storeu_si128((__m128i *)(yr + ow), _mm_xor_si128(_mm_packus_epi16(a, b), vb));
            }
#endif
            for (; ow < OW; ow++)
                yr[ow] = hm[2 * ow] ^ bias;
        } else {
            for (int64_t ow = 0; ow < OW; ow++)
                yr[ow] = hm[ow * st] ^ bias;
        }
    }
}

/* Planes [b, e) of one max pool. */
typedef struct pq_i8_pool_job {
    const uint8_t *X;
    uint8_t *Y;
    int64_t NC, H, W, OH, OW, k[2], s[2], d[2], p[4];
    uint8_t bias;
} pq_i8_pool_job;

#if defined(__SSE2__)
/* 2x2 windows, stride 2, no padding, every window inside the plane: two rows max-ed, then the
 * pairs of columns, 8 outputs per 16 input bytes (small CNN planes spent most of their time in
 * the general path's per-row set-up). A short step (OW not a multiple of 8: small planes) loads
 * 16 bytes anyway while they end before x_end (the input tensor's end: the extra bytes are other
 * rows', unused) and stores 8 while they end before y_end (the end of this task's outputs: the
 * extra bytes are later outputs of the task, written after), else goes through copies. */
static void pq_i8_pool2x2_plane(const uint8_t *x, int64_t W, uint8_t *y, int64_t OH, int64_t OW,
                                uint8_t bias, const uint8_t *x_end, const uint8_t *y_end) {
    __m128i vb = _mm_set1_epi8((char)bias), lo = _mm_set1_epi16(0x00FF);
    for (int64_t oh = 0; oh < OH; oh++) {
        const uint8_t *r0 = x + 2 * oh * W, *r1 = r0 + W;
        uint8_t *yr = y + oh * OW;
        for (int64_t ow = 0; ow < OW; ow += 8) {
            int64_t n = OW - ow < 8 ? OW - ow : 8;
            __m128i a, b;
            if (n == 8 || x_end - (r1 + 2 * ow) >= 16) {
                a = _mm_loadu_si128((const __m128i *)(r0 + 2 * ow));
                b = _mm_loadu_si128((const __m128i *)(r1 + 2 * ow));
            } else {
                uint8_t t0[16] = {0}, t1[16] = {0};
                memcpy(t0, r0 + 2 * ow, (size_t)(2 * n));
                memcpy(t1, r1 + 2 * ow, (size_t)(2 * n));
                a = _mm_loadu_si128((const __m128i *)t0);
                b = _mm_loadu_si128((const __m128i *)t1);
            }
            __m128i v = _mm_max_epu8(_mm_xor_si128(a, vb), _mm_xor_si128(b, vb));
            __m128i h = _mm_max_epu8(v, _mm_srli_epi16(v, 8)); /* even bytes: the pair's max */
            __m128i q = _mm_xor_si128(_mm_packus_epi16(_mm_and_si128(h, lo), lo), vb);
            if (n == 8 || y_end - (yr + ow) >= 8) {
                _mm_storel_epi64((__m128i *)(yr + ow), q);
            } else {
                uint8_t t[16];
                _mm_storeu_si128((__m128i *)t, q);
                memcpy(yr + ow, t, (size_t)n);
            }
        }
    }
}
#endif

static void pq_i8_pool_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8_pool_job *j = ctx;
#if defined(__SSE2__)
    if (j->k[0] == 2 && j->k[1] == 2 && j->s[0] == 2 && j->s[1] == 2 && j->d[0] == 1 &&
        j->d[1] == 1 && !j->p[0] && !j->p[1] && 2 * j->OH <= j->H && 2 * j->OW <= j->W) {
        const uint8_t *x_end = j->X + j->NC * j->H * j->W;
        uint8_t *y_end = j->Y + e * j->OH * j->OW;
        for (int64_t c = b; c < e; c++)
            pq_i8_pool2x2_plane(j->X + c * j->H * j->W, j->W, j->Y + c * j->OH * j->OW, j->OH,
                                j->OW, j->bias, x_end, y_end);
        return;
    }
#endif
    /* the padded vertical-max row: p[1] zeros, W values, zeros to the last window's end */
    /* (48 zero bytes past both ends: the 3-wide stride-2 loads of pq_i8_pool_plane) */
    uint8_t row[2 * PQ_I8_POOL_MAX_W + 64], hm[PQ_I8_POOL_MAX_W + 64];
    int64_t nh = (j->OW - 1) * j->s[1] + 1, len = nh + (j->k[1] - 1) * j->d[1];
    memset(row, 0, (size_t)(len > j->p[1] + j->W ? len : j->p[1] + j->W) + 48);
    for (int64_t c = b; c < e; c++)
        pq_i8_pool_plane(j->X + c * j->H * j->W, j->H, j->W, j->Y + c * j->OH * j->OW, j->OH, j->OW,
                         j->k, j->s, j->d, j->p, j->bias, row, hm);
}

/* Planes of at most 64 bytes, at most 64 outputs and PQ_I8_POOL_SMALL_TAPS taps (the pools of
 * small CNNs): one byte permute of the whole plane per tap (pq_i8_pool_small__avx512vbmi) with
 * the AVX-512 kernels on a CPU with VBMI, the pattern kept in the node's attributes (kept, or
 * built on the stack without them); false (nothing written) otherwise. */
static bool pq_i8_pool_small_run(const pq_i8_pool_job *j, pq_i8_pool_attrs *kept) {
#if defined(__x86_64__)
    int64_t taps = j->k[0] * j->k[1];
    if (j->H * j->W > 64 || j->OH * j->OW > 64 || taps > PQ_I8_POOL_SMALL_TAPS) return false;
    if (pq_qdq_kernels_get() != &pq_qdq_kernels_avx512 || !pq_cpu_has_avx512_vbmi()) return false;
    pq_i8_pool_small local, *ps = kept ? kept->small : NULL;
    if (!ps || ps->H != j->H || ps->W != j->W || ps->OH != j->OH || ps->OW != j->OW) {
        if (kept && !kept->small) kept->small = pq_malloc_aligned(sizeof *ps);
        ps = kept && kept->small ? kept->small : &local;
        memset(ps, 0, sizeof *ps);
        for (int64_t kh = 0, t = 0; kh < j->k[0]; kh++)
            for (int64_t kw = 0; kw < j->k[1]; kw++, t++)
                for (int64_t oh = 0, o = 0; oh < j->OH; oh++) {
                    int64_t ih = oh * j->s[0] - j->p[0] + kh * j->d[0];
                    for (int64_t ow = 0; ow < j->OW; ow++, o++) {
                        int64_t iw = ow * j->s[1] - j->p[1] + kw * j->d[1];
                        if (ih < 0 || ih >= j->H || iw < 0 || iw >= j->W) continue;
                        ps->idx[t][o] = (uint8_t)(ih * j->W + iw);
                        ps->km[t] |= (uint64_t)1 << o;
                    }
                }
        ps->H = j->H;
        ps->W = j->W;
        ps->OH = j->OH;
        ps->OW = j->OW;
    }
    pq_i8_pool_small__avx512vbmi(j->X, j->NC, j->H * j->W, j->Y, j->OH * j->OW, (int)taps,
                                 (const uint8_t(*)[64])ps->idx, ps->km, j->bias);
    return true;
#else
    (void)j;
    (void)kept;
    return false;
#endif
}

enum pq_status pq_i8_max_pool_run(const pq_kernel_args *a) {
    if (a->n_in < 1 || a->n_out < 1 || !a->out[0] || (a->n_out > 1 && a->out[1]))
        return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (!X || (X->dtype != PQ_DTYPE_U8 && X->dtype != PQ_DTYPE_I8) || Y->dtype != X->dtype ||
        X->rank != 4 || Y->rank != 4 || !X->data || !Y->data || X->dims[0] != Y->dims[0] ||
        X->dims[1] != Y->dims[1] || X->dims[3] > PQ_I8_POOL_MAX_W)
        return PQ_ERR_UNSUPPORTED;
    pq_i8_pool_attrs at, *kept;
    if (!pq_i8_pool_attrs_get(a, &at, &kept)) return PQ_ERR_UNSUPPORTED;
    const int64_t *k = at.k, *s = at.s, *d = at.d, *p = at.p;
    int64_t NC = X->dims[0] * X->dims[1], H = X->dims[2], W = X->dims[3];
    int64_t OH = Y->dims[2], OW = Y->dims[3];
    if (pq_tensor_numel(Y) == 0) return PQ_OK;
    /* every window holds an in-range element (else the reference's -inf path decides) */
    int64_t in[2] = {H, W}, out[2] = {OH, OW};
    for (int i = 0; i < 2; i++)
        for (int64_t o = 0; o < out[i]; o++) {
            bool hit = false;
            for (int64_t t = 0; t < k[i] && !hit; t++) {
                int64_t v = o * s[i] - p[i] + t * d[i];
                hit = v >= 0 && v < in[i];
            }
            if (!hit) return PQ_ERR_UNSUPPORTED;
        }
    /* the padded row (pads, then the windows' reach) must fit the task's buffers */
    int64_t nh = (OW - 1) * s[1] + 1, len = nh + (k[1] - 1) * d[1];
    if (nh > PQ_I8_POOL_MAX_W || len > 2 * PQ_I8_POOL_MAX_W || p[1] + W > 2 * PQ_I8_POOL_MAX_W)
        return PQ_ERR_UNSUPPORTED;
    pq_i8_pool_job j = {.X = X->data,
                        .Y = Y->data,
                        .NC = NC,
                        .H = H,
                        .W = W,
                        .OH = OH,
                        .OW = OW,
                        .k = {k[0], k[1]},
                        .s = {s[0], s[1]},
                        .d = {d[0], d[1]},
                        .p = {p[0], p[1], p[2], p[3]},
                        .bias = X->dtype == PQ_DTYPE_I8 ? 0x80 : 0};
    /* threads only from 1M window elements (a pool wake-up costs more than a small pool) */
    int th = (double)NC * (double)(OH * OW) * (double)(k[0] * k[1]) < 1e6 ? 1 : a->n_threads;
    if (th == 1 && pq_i8_pool_small_run(&j, kept)) return PQ_OK;
    pq_parallel_for(th, NC, pq_i8_pool_task, &j);
    return PQ_OK;
}

enum pq_status pq_fast_qdq_quantize(const pq_kernel_args *a) {
    return pq_qdq_quantize_run(NULL, a);
}

enum pq_status pq_fast_qdq_dequantize(const pq_kernel_args *a) {
    return pq_qdq_dequantize_run(NULL, a);
}

enum pq_status pq_fast_i8_max_pool(const pq_kernel_args *a) {
    return pq_i8_max_pool_run(a);
}
