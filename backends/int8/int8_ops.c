/* QLinearConv / QLinearMatMul glue over the INT8 GEMM: case checks (UNSUPPORTED -> reference),
 * per-channel multipliers per call; constant weights packed (with their zero-point corrections)
 * once per session node through the session's backend cache (backends/onednn: pq_dnnl_node_get),
 * else per call; im2col of kxk convolutions four k-rows at a time straight into the packed panel
 * layout (padding = zp_x; 1x1 convolutions from NCHW rows), a direct depthwise kernel and
 * per-group GEMMs. Threaded over im2col tiles (or output-channel blocks when there are fewer
 * tiles than threads) and over weight panels for QLinearMatMul with pq_parallel_for: each output
 * is computed by one task with the same operations at any thread count (bit-identical). */
#include "int8_ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backends/onednn/onednn_impl.h"
#include "backends/threadpool.h"
#include "ir/alloc.h"
#include "ir/attrs.h"
#include "ir/ir.h"

/* Target bytes of one packed im2col tile (stays in L2 while every output channel runs on it). */
#define PQ_I8_TILE_BYTES (192u * 1024u)

static const pq_tensor *pq_i8_in(const pq_kernel_args *a, uint32_t i) {
    return i < a->n_in ? a->in[i] : NULL;
}

/* A scalar (one element) tensor with data. */
static bool pq_i8_scalar(const pq_tensor *t) {
    return t && t->data && pq_tensor_numel(t) == 1;
}

/* A u8 zero point: NULL (0) or one u8 element. */
static bool pq_i8_zp_u8(const pq_tensor *t, int32_t *zp) {
    if (!t) {
        *zp = 0;
        return true;
    }
    if (t->dtype != PQ_DTYPE_U8 || !pq_i8_scalar(t)) return false;
    *zp = ((const uint8_t *)t->data)[0];
    return true;
}

/* Weight zero points: absent or all zero. */
static bool pq_i8_zp_zero(const pq_tensor *t) {
    if (!t) return true;
    int64_t n = pq_tensor_numel(t);
    if (n > 0 && !t->data) return false;
    if (t->dtype != PQ_DTYPE_I8 && t->dtype != PQ_DTYPE_U8) return false;
    for (int64_t i = 0; i < n; i++)
        if (pq_dtype_load_i64(t->dtype, t->data, (size_t)i) != 0) return false;
    return true;
}

/* Per-channel multipliers m[i] = (s_x * s_w[i]) / s_y in f32 operations (pq_i8_mult, as the
 * reference computes them; s_w per tensor or one per channel). False when the scale shapes are
 * not handled. */
static bool pq_i8_mults(const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy, int64_t n,
                        float *m, bool *finite) {
    if (!pq_i8_scalar(sx) || !pq_i8_scalar(sy) || !sw || !sw->data) return false;
    int64_t nw = pq_tensor_numel(sw);
    if (nw != 1 && nw != n) return false;
    float xs = (float)pq_dtype_load(sx->dtype, sx->data, 0);
    float ys = (float)pq_dtype_load(sy->dtype, sy->data, 0);
    *finite = true;
    for (int64_t i = 0; i < n; i++) {
        m[i] = pq_i8_mult(xs, (float)pq_dtype_load(sw->dtype, sw->data, (size_t)(nw == 1 ? 0 : i)),
                          ys);
        if (!isfinite(m[i])) *finite = false;
    }
    return true;
}

/* ---- packed weights cached per session node ---- */

/* The packed form of one constant weight for one kernel table and u8 zero point. */
typedef struct pq_i8_wpack {
    pq_dnnl_wsig sig;
    const pq_i8_kernels *k;
    int32_t zp;    /* zero point of the u8 operand the corrections were made for */
    size_t a, b;   /* the packed shape (rows M and depth K, or depth K and columns N) */
    bool panels;   /* packed as panels (matmul B) rather than rows (conv weight) */
    void *data;    /* packed bytes */
    int32_t *corr; /* zero-point corrections */
} pq_i8_wpack;

static void pq_i8_wpack_free(void *p) {
    pq_i8_wpack *w = p;
    if (!w) return;
    pq_free(w->data);
    pq_free(w->corr);
    pq_free(w);
}

/* Packs W (s8) as rows [a = M][b = K] (panels false) or panels of [a = K][b = N] (true) with the
 * corrections for zero point zp. NULL on NOMEM. */
static pq_i8_wpack *pq_i8_wpack_make(const pq_i8_kernels *k, const int8_t *W, size_t a, size_t b,
                                     bool panels, int32_t zp) {
    pq_i8_wpack *w = pq_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->k = k;
    w->zp = zp;
    w->a = a;
    w->b = b;
    w->panels = panels;
    size_t bytes = panels ? pq_i8_panels_bytes(k, a, b) : a * pq_i8_row_bytes(k, b);
    w->data = pq_malloc_aligned(bytes + 64);
    w->corr = pq_malloc(((panels ? b : a) + 1) * sizeof(int32_t));
    if (!w->data || !w->corr) {
        pq_i8_wpack_free(w);
        return NULL;
    }
    if (panels) {
        pq_i8_pack_panels(k, (const uint8_t *)W, b, a, b, false, w->data);
        pq_i8_corr_cols(W, b, a, b, pq_i8_zp_eff(k, zp), w->corr);
    } else {
        pq_i8_pack_rows(k, (const uint8_t *)W, b, a, b, false, w->data);
        pq_i8_corr_rows(W, b, a, b, pq_i8_zp_eff(k, zp), w->corr);
    }
    return w;
}

/* The packed weight input wi of node a: from the bound session cache when the weight is a graph
 * constant (built on first use, rebuilt when the weight, kernels or zero point change), else
 * packed now into *owned (the caller frees it). NULL on NOMEM (err set). */
static const pq_i8_wpack *pq_i8_weights(const pq_kernel_args *a, uint32_t wi,
                                        const pq_i8_kernels *k, size_t da, size_t db, bool panels,
                                        int32_t zp, pq_i8_wpack **owned) {
    const pq_tensor *W = a->in[wi];
    *owned = NULL;
    pq_onednn_cache *c = pq_dnnl_current();
    if (c && pq_dnnl_is_constant(a, wi)) {
        pq_dnnl_node *e = pq_dnnl_node_get(c, a->node, a->err);
        if (!e) return NULL;
        pq_i8_wpack *w = e->destroy == pq_i8_wpack_free ? e->val : NULL;
        if (w && w->k == k && w->zp == zp && w->a == da && w->b == db && w->panels == panels &&
            pq_dnnl_wsig_same(&w->sig, W->data, W->nbytes))
            return w;
        pq_dnnl_node_reset(e);
        w = pq_i8_wpack_make(k, W->data, da, db, panels, zp);
        if (!w) {
            pq_error_nomem(a->err, "int8 packed weights");
            return NULL;
        }
        pq_dnnl_wsig_take(&w->sig, W->data, W->nbytes);
        e->val = w;
        e->destroy = pq_i8_wpack_free;
        return w;
    }
    *owned = pq_i8_wpack_make(k, W->data, da, db, panels, zp);
    if (!*owned) pq_error_nomem(a->err, "int8 packed weights");
    return *owned;
}

/* ---- QLinearMatMul ---- */

typedef struct pq_i8_mm_job {
    const pq_i8_kernels *k;
    size_t rows, N, K;
    const void *pa;       /* packed A rows */
    const pq_i8_wpack *w; /* packed B panels */
    const float *m;
    int32_t zp_y;
    bool finite;
    uint8_t *y;
} pq_i8_mm_job;

/* Column panels [b, e) of every row. */
static void pq_i8_mm_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8_mm_job *j = ctx;
    size_t nr = (size_t)j->k->nr, j0 = (size_t)b * nr, j1 = (size_t)e * nr;
    if (j1 > j->N) j1 = j->N;
    size_t pb = pq_i8_panels_bytes(j->k, j->K, nr); /* bytes of one panel */
    pq_i8_epilogue ep = {
        .add_col = j->w->corr + j0, .m_col = j->m + j0, .zp_y = j->zp_y, .finite = j->finite};
    pq_i8_gemm_packed(j->k, true, j->rows, j1 - j0, j->K, j->pa,
                      (const uint8_t *)j->w->data + (size_t)b * pb, &ep, j->y + j0, j->N);
}

enum pq_status pq_i8_qlinear_matmul_run(const pq_i8_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_i8_kernels_get();
    if (a->n_in < 8 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = pq_i8_in(a, 0), *B = pq_i8_in(a, 3);
    pq_tensor *Y = a->out[0];
    if (!A || !B || A->dtype != PQ_DTYPE_U8 || B->dtype != PQ_DTYPE_I8 || Y->dtype != PQ_DTYPE_U8)
        return PQ_ERR_UNSUPPORTED;
    if (A->rank < 1 || B->rank != 2 || !A->data || !B->data || !Y->data) return PQ_ERR_UNSUPPORTED;
    int64_t K = A->dims[A->rank - 1], N = B->dims[1];
    if (K <= 0 || N <= 0 || B->dims[0] != K) return PQ_ERR_UNSUPPORTED;
    int64_t rows = pq_tensor_numel(A) / K;
    if (rows <= 0 || Y->rank < 1 || Y->dims[Y->rank - 1] != N || pq_tensor_numel(Y) != rows * N)
        return PQ_ERR_UNSUPPORTED;
    int32_t zp_a, zp_y;
    if (!pq_i8_zp_u8(pq_i8_in(a, 2), &zp_a) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y) || !pq_i8_in(a, 7))
        return PQ_ERR_UNSUPPORTED;
    float *m = pq_malloc((size_t)N * sizeof(float));
    if (!m) return pq_error_nomem(a->err, "QLinearMatMul multipliers");
    bool finite;
    if (!pq_i8_mults(pq_i8_in(a, 1), pq_i8_in(a, 4), pq_i8_in(a, 6), N, m, &finite)) {
        pq_free(m);
        return PQ_ERR_UNSUPPORTED;
    }
    enum pq_status st = PQ_OK;
    pq_i8_wpack *owned = NULL;
    void *pa = pq_malloc_aligned((size_t)rows * pq_i8_row_bytes(k, (size_t)K) + 64);
    const pq_i8_wpack *w =
        pa ? pq_i8_weights(a, 3, k, (size_t)K, (size_t)N, true, zp_a, &owned) : NULL;
    if (!pa || !w) {
        st = pa ? PQ_ERR_NOMEM : pq_error_nomem(a->err, "QLinearMatMul rows");
        goto done;
    }
    pq_i8_pack_rows(k, A->data, (size_t)K, (size_t)rows, (size_t)K, true, pa);
    pq_i8_mm_job j = {.k = k,
                      .rows = (size_t)rows,
                      .N = (size_t)N,
                      .K = (size_t)K,
                      .pa = pa,
                      .w = w,
                      .m = m,
                      .zp_y = zp_y,
                      .finite = finite,
                      .y = Y->data};
    int64_t panels = (N + k->nr - 1) / k->nr;
    /* threads only pay off with enough work per panel */
    int th = (double)rows * (double)K * (double)N < 65536.0 ? 1 : a->n_threads;
    pq_parallel_for(th, panels, pq_i8_mm_task, &j);
done:
    pq_free(m);
    pq_free(pa);
    pq_i8_wpack_free(owned);
    return st;
}

/* ---- QLinearConv ---- */

typedef struct pq_i8_conv {
    int64_t N, C, H, W, M, OH, OW, KH, KW, group, Cg, Mg;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
} pq_i8_conv;

/* im2col of output positions [p0, p0 + nc) of one image and group: col[k][i] (nc apart) for
 * k = (c, kh, kw), padding filled with zp. */
static void pq_i8_im2col(const pq_i8_conv *g, const uint8_t *x, int64_t p0, int64_t nc, uint8_t zp,
                         uint8_t *col) {
    int64_t k = 0;
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++, k++) {
                uint8_t *d = col + k * nc;
                int64_t off_w = kw * g->dw - g->pl;
                for (int64_t i = 0, p = p0; i < nc;) {
                    int64_t oh = p / g->OW, ow = p % g->OW;
                    int64_t run = g->OW - ow < nc - i ? g->OW - ow : nc - i;
                    int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                    if (ih < 0 || ih >= g->H) {
                        memset(d + i, zp, (size_t)run);
                    } else {
                        const uint8_t *row = x + (c * g->H + ih) * g->W;
                        if (g->sw == 1) {
                            /* iw = ow + t + off_w in [0, W) for t in [lo, hi) */
                            int64_t lo = -(ow + off_w), hi = g->W - (ow + off_w);
                            lo = lo < 0 ? 0 : (lo > run ? run : lo);
                            hi = hi < lo ? lo : (hi > run ? run : hi);
                            memset(d + i, zp, (size_t)lo);
                            memcpy(d + i + lo, row + ow + lo + off_w, (size_t)(hi - lo));
                            memset(d + i + hi, zp, (size_t)(run - hi));
                        } else {
                            for (int64_t t = 0; t < run; t++) {
                                int64_t iw = (ow + t) * g->sw + off_w;
                                d[i + t] = iw >= 0 && iw < g->W ? row[iw] : zp;
                            }
                        }
                    }
                    i += run;
                    p += run;
                }
            }
}

/* Depthwise (one input channel per group): direct loops on a zero-padded i32 copy of x - zp_x,
 * exact i32 sums, then the epilogue per output plane. */
static enum pq_status pq_i8_conv_depthwise(const pq_i8_kernels *k, const pq_i8_conv *g,
                                           const uint8_t *X, const int8_t *Wt, int32_t zp_x,
                                           const int32_t *bias, const float *m, bool finite,
                                           int32_t zp_y, uint8_t *Y, pq_error *err) {
    int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr, OSP = g->OH * g->OW;
    int32_t *pad = pq_malloc_aligned((size_t)(Hp * Wp) * sizeof(int32_t) + 64);
    int32_t *acc = pq_malloc_aligned((size_t)OSP * sizeof(int32_t) + 64);
    if (!pad || !acc) {
        pq_free(pad);
        pq_free(acc);
        return pq_error_nomem(err, "QLinearConv depthwise buffers");
    }
    pq_i8_requant_fn rq = finite ? k->requant : pq_i8_requant__scalar;
    memset(pad, 0, (size_t)(Hp * Wp) * sizeof(int32_t));
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++) {
            const uint8_t *xc = X + (n * g->C + c) * g->H * g->W;
            for (int64_t h = 0; h < g->H; h++) {
                int32_t *pr = pad + (h + g->pt) * Wp + g->pl;
                for (int64_t w = 0; w < g->W; w++)
                    pr[w] = (int32_t)xc[h * g->W + w] - zp_x;
            }
            for (int64_t j = 0; j < g->Mg; j++) {
                int64_t oc = c * g->Mg + j;
                const int8_t *wc = Wt + oc * g->KH * g->KW;
                memset(acc, 0, (size_t)OSP * sizeof(int32_t));
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int32_t *ar = acc + oh * g->OW;
                    for (int64_t kh = 0; kh < g->KH; kh++) {
                        const int32_t *pr = pad + (oh * g->sh + kh * g->dh) * Wp;
                        for (int64_t kw = 0; kw < g->KW; kw++) {
                            int32_t wv = wc[kh * g->KW + kw];
                            const int32_t *src = pr + kw * g->dw;
                            if (g->sw == 1)
                                for (int64_t ow = 0; ow < g->OW; ow++)
                                    ar[ow] += wv * src[ow];
                            else
                                for (int64_t ow = 0; ow < g->OW; ow++)
                                    ar[ow] += wv * src[ow * g->sw];
                        }
                    }
                }
                rq(acc, (size_t)OSP, bias ? bias[oc] : 0, m[oc], NULL, zp_y,
                   Y + (n * g->M + oc) * OSP);
            }
        }
    pq_free(pad);
    pq_free(acc);
    return PQ_OK;
}

/* ---- packing im2col quads straight into panels ---- */

/* Whether the quad packer below matches the table's panel layout: raw bytes, 4 k per lane, lanes
 * in multiples of 16 (AVX-512 VNNI, AVX-VNNI, NEON sdot); else im2col tiles + pq_i8_pack_panels. */
static bool pq_i8_quads_ok(const pq_i8_kernels *k) {
    return k->elem == 1 && k->kb == 4 && k->nr % 16 == 0;
}

/* Columns [0, n) of four k-rows r[0..3] (k = 4q .. 4q + 3) into quad q of the panels at dst
 * (panels of pe bytes, nr lanes of 4 bytes per quad), each byte ^ x (0x80 flips u8 to s8). */
static void pq_i8_pack_quad(const uint8_t *const r[4], size_t n, size_t nr, size_t pe, size_t q,
                            uint8_t x, uint8_t *dst) {
    size_t j = 0;
    uint8_t *base = dst + q * nr * 4;
#if defined(__SSE2__)
    __m128i vx = _mm_set1_epi8((char)x);
    for (; j + 16 <= n; j += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(r[0] + j));
        __m128i b = _mm_loadu_si128((const __m128i *)(r[1] + j));
        __m128i c = _mm_loadu_si128((const __m128i *)(r[2] + j));
        __m128i d = _mm_loadu_si128((const __m128i *)(r[3] + j));
        __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
        __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
        uint8_t *o = base + (j / nr) * pe + (j % nr) * 4; /* 16 lanes never cross a panel */
        _mm_storeu_si128((__m128i *)o, _mm_xor_si128(_mm_unpacklo_epi16(ab0, cd0), vx));
        _mm_storeu_si128((__m128i *)(o + 16), _mm_xor_si128(_mm_unpackhi_epi16(ab0, cd0), vx));
        _mm_storeu_si128((__m128i *)(o + 32), _mm_xor_si128(_mm_unpacklo_epi16(ab1, cd1), vx));
        _mm_storeu_si128((__m128i *)(o + 48), _mm_xor_si128(_mm_unpackhi_epi16(ab1, cd1), vx));
    }
#endif
    for (; j < n; j++) {
        uint8_t *o = base + (j / nr) * pe + (j % nr) * 4;
        o[0] = r[0][j] ^ x;
        o[1] = r[1][j] ^ x;
        o[2] = r[2][j] ^ x;
        o[3] = r[3][j] ^ x;
    }
}

/* ---- QLinearConv ---- */

typedef struct pq_i8_conv_job {
    const pq_i8_kernels *k;
    const pq_i8_conv *g;
    const uint8_t *X;
    uint8_t *Y;
    const void *rows;   /* packed weight rows (M of rb bytes) */
    const int32_t *add; /* per output channel: zero-point correction + bias (wrapping i32) */
    const float *m;
    bool finite, pointwise, quads;
    int32_t zp_x, zp_y;
    size_t CK, OSP, rb, nc, tiles; /* tiles of nc output positions per image and group */
    size_t mblk, mchunks;          /* output channels per task (multiple of mr), tasks per tile */
    atomic_int failed;
} pq_i8_conv_job;

/* One tile's panels: columns [p0, p0 + n_c) of group input xg into panels (all CK rows). col and
 * quad are scratch (CK x nc bytes for the tile path, 4 x nc for the quad path). */
static void pq_i8_conv_pack(const pq_i8_conv_job *j, const uint8_t *xg, size_t p0, size_t n_c,
                            uint8_t *col, uint8_t *quad, void *panels) {
    const pq_i8_kernels *k = j->k;
    const pq_i8_conv *g = j->g;
    if (!j->quads) {
        if (j->pointwise) {
            pq_i8_pack_panels(k, xg + p0, j->OSP, j->CK, n_c, true, panels);
        } else {
            pq_i8_im2col(g, xg, (int64_t)p0, (int64_t)n_c, (uint8_t)j->zp_x, col);
            pq_i8_pack_panels(k, col, n_c, j->CK, n_c, true, panels);
        }
        return;
    }
    size_t nr = (size_t)k->nr, kq = (j->CK + 3) / 4, pe = kq * nr * 4;
    uint8_t x = k->flip ? 0x80 : 0;
    if (n_c % nr) /* lane tail of the last panel: packed zeros (outputs discarded) */
        memset((uint8_t *)panels + (n_c / nr) * pe, 0, pe);
    /* K tail rows: bytes that pack to zero (weights are zero there too) */
    uint8_t *ztail = quad + 4 * j->nc;
    memset(ztail, x, j->nc);
    for (size_t q = 0; q < kq; q++) {
        const uint8_t *r[4];
        for (size_t t = 0; t < 4; t++) {
            size_t kk = 4 * q + t;
            if (kk >= j->CK) {
                r[t] = ztail;
            } else if (j->pointwise) {
                r[t] = xg + kk * j->OSP + p0;
            } else {
                /* one im2col row (k = (c, kh, kw)) for positions [p0, p0 + n_c) */
                pq_i8_conv kg = *g;
                int64_t c = (int64_t)kk / (g->KH * g->KW), rem = (int64_t)kk % (g->KH * g->KW);
                kg.Cg = 1;
                kg.KH = 1;
                kg.KW = 1;
                kg.pt = g->pt - (rem / g->KW) * g->dh;
                kg.pl = g->pl - (rem % g->KW) * g->dw;
                pq_i8_im2col(&kg, xg + c * g->H * g->W, (int64_t)p0, (int64_t)n_c, (uint8_t)j->zp_x,
                             quad + t * j->nc);
                r[t] = quad + t * j->nc;
            }
        }
        pq_i8_pack_quad(r, n_c, nr, pe, q, x, panels);
    }
}

/* Tasks [b, e): task t = ((image * group + gi) * tiles + tile) * mchunks + mc. */
static void pq_i8_conv_task(void *ctx, int64_t b, int64_t e) {
    pq_i8_conv_job *j = ctx;
    const pq_i8_kernels *k = j->k;
    const pq_i8_conv *g = j->g;
    uint8_t *col = j->quads || j->pointwise ? NULL : pq_malloc_aligned(j->CK * j->nc + 64);
    uint8_t *quad = j->quads ? pq_malloc_aligned(5 * j->nc + 64) : NULL;
    void *panels = pq_malloc_aligned(pq_i8_panels_bytes(k, j->CK, j->nc) + 64);
    if (!panels || (!j->quads && !j->pointwise && !col) || (j->quads && !quad)) {
        atomic_store(&j->failed, 1);
        goto done;
    }
    int64_t packed = -1; /* tile whose panels are in the buffer */
    for (int64_t t = b; t < e; t++) {
        size_t mc = (size_t)t % j->mchunks;
        int64_t tile_id = t / (int64_t)j->mchunks;
        size_t tile = (size_t)tile_id % j->tiles;
        int64_t ng = tile_id / (int64_t)j->tiles, n = ng / g->group, gi = ng % g->group;
        const uint8_t *xg = j->X + (n * g->C + gi * g->Cg) * g->H * g->W;
        uint8_t *yg = j->Y + (n * g->M + gi * g->Mg) * (int64_t)j->OSP;
        size_t p0 = tile * j->nc, n_c = j->OSP - p0 < j->nc ? j->OSP - p0 : j->nc;
        if (packed != tile_id) {
            pq_i8_conv_pack(j, xg, p0, n_c, col, quad, panels);
            packed = tile_id;
        }
        size_t r0 = (size_t)(gi * g->Mg) + mc * j->mblk, m0 = mc * j->mblk;
        size_t mrows = (size_t)g->Mg - m0 < j->mblk ? (size_t)g->Mg - m0 : j->mblk;
        pq_i8_epilogue ep = {
            .add_row = j->add + r0, .m_row = j->m + r0, .zp_y = j->zp_y, .finite = j->finite};
        pq_i8_gemm_packed(k, false, mrows, n_c, j->CK, (const uint8_t *)j->rows + r0 * j->rb,
                          panels, &ep, yg + m0 * j->OSP + p0, j->OSP);
    }
done:
    pq_free(col);
    pq_free(quad);
    pq_free(panels);
}

enum pq_status pq_i8_qlinear_conv_run(const pq_i8_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_i8_kernels_get();
    if (a->n_in < 8 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = pq_i8_in(a, 0), *Wt = pq_i8_in(a, 3), *Bt = pq_i8_in(a, 8);
    pq_tensor *Y = a->out[0];
    if (!X || !Wt || X->dtype != PQ_DTYPE_U8 || Wt->dtype != PQ_DTYPE_I8 ||
        Y->dtype != PQ_DTYPE_U8 || X->rank != 4 || Wt->rank != 4 || Y->rank != 4)
        return PQ_ERR_UNSUPPORTED;
    if (pq_tensor_numel(X) <= 0 || pq_tensor_numel(Wt) <= 0 || pq_tensor_numel(Y) <= 0 ||
        !X->data || !Wt->data || !Y->data)
        return PQ_ERR_UNSUPPORTED;
    pq_conv_geom geo;
    pq_error scratch = {0};
    if (pq_conv_geom_decode(a->node, X->dims + 2, 2, Wt->dims + 2, &geo, &scratch) != PQ_OK ||
        geo.transpose)
        return PQ_ERR_UNSUPPORTED;
    pq_i8_conv g = {.N = X->dims[0],
                    .C = X->dims[1],
                    .H = X->dims[2],
                    .W = X->dims[3],
                    .M = Wt->dims[0],
                    .OH = geo.out[0],
                    .OW = geo.out[1],
                    .KH = geo.kernel[0],
                    .KW = geo.kernel[1],
                    .group = geo.group,
                    .sh = geo.strides[0],
                    .sw = geo.strides[1],
                    .dh = geo.dilations[0],
                    .dw = geo.dilations[1],
                    .pt = geo.pads_begin[0],
                    .pl = geo.pads_begin[1],
                    .pb = geo.pads_end[0],
                    .pr = geo.pads_end[1]};
    if (g.group < 1 || g.C % g.group || g.M % g.group) return PQ_ERR_UNSUPPORTED;
    g.Cg = g.C / g.group;
    g.Mg = g.M / g.group;
    if (Wt->dims[1] != g.Cg || Wt->dims[2] != g.KH || Wt->dims[3] != g.KW || Y->dims[0] != g.N ||
        Y->dims[1] != g.M || Y->dims[2] != g.OH || Y->dims[3] != g.OW || g.OH <= 0 || g.OW <= 0 ||
        g.pt < 0 || g.pl < 0 || g.pb < 0 || g.pr < 0)
        return PQ_ERR_UNSUPPORTED;
    int32_t zp_x, zp_y;
    if (!pq_i8_in(a, 2) || !pq_i8_zp_u8(pq_i8_in(a, 2), &zp_x) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_in(a, 7) || !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y))
        return PQ_ERR_UNSUPPORTED;
    if (Bt && (Bt->dtype != PQ_DTYPE_I32 || pq_tensor_numel(Bt) != g.M || !Bt->data))
        return PQ_ERR_UNSUPPORTED;

    size_t M = (size_t)g.M, CK = (size_t)(g.Cg * g.KH * g.KW), OSP = (size_t)(g.OH * g.OW);
    size_t rb = pq_i8_row_bytes(k, CK), nr = (size_t)k->nr;
    bool depthwise = g.Cg == 1 && g.group > 1;
    bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                     g.OH == g.H && g.OW == g.W;
    /* column tile: a multiple of nr holding about PQ_I8_TILE_BYTES of packed panels */
    size_t nc = PQ_I8_TILE_BYTES / (rb ? rb : 1) / nr * nr;
    if (nc < nr) nc = nr;
    size_t osp_up = (OSP + nr - 1) / nr * nr;
    if (nc > osp_up) nc = osp_up;

    float *m = pq_malloc(M * sizeof(float));
    int32_t *add = pq_malloc(M * sizeof(int32_t));
    pq_i8_wpack *owned = NULL;
    enum pq_status st = PQ_OK;
    bool finite;
    if (!m || !add) {
        st = pq_error_nomem(a->err, "QLinearConv buffers");
        goto done;
    }
    if (!pq_i8_mults(pq_i8_in(a, 1), pq_i8_in(a, 4), pq_i8_in(a, 6), g.M, m, &finite)) {
        st = PQ_ERR_UNSUPPORTED;
        goto done;
    }
    const int32_t *bias = Bt ? (const int32_t *)Bt->data : NULL;
    if (depthwise) {
        st = pq_i8_conv_depthwise(k, &g, X->data, Wt->data, zp_x, bias, m, finite, zp_y, Y->data,
                                  a->err);
        goto done;
    }
    /* Weights packed once per session node (or per call); the zero-point correction
     * -zp_x * sum_k w[oc][k] is folded per output channel before the main loop. */
    const pq_i8_wpack *w = pq_i8_weights(a, 3, k, M, CK, false, zp_x, &owned);
    if (!w) {
        st = PQ_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < M; i++)
        add[i] = (int32_t)((uint32_t)w->corr[i] + (uint32_t)(bias ? bias[i] : 0));
    size_t tiles = (OSP + nc - 1) / nc, mr = (size_t)k->mr;
    int64_t tile_tasks = g.N * g.group * (int64_t)tiles;
    int th = a->n_threads > 1 ? a->n_threads : 1;
    /* fewer tiles than threads: split the output channels of each tile too */
    size_t mchunks = tile_tasks >= th ? 1 : (size_t)((th + tile_tasks - 1) / tile_tasks);
    size_t mblk = ((size_t)g.Mg + mchunks - 1) / mchunks;
    mblk = (mblk + mr - 1) / mr * mr;
    mchunks = ((size_t)g.Mg + mblk - 1) / mblk;
    pq_i8_conv_job j = {.k = k,
                        .g = &g,
                        .X = X->data,
                        .Y = Y->data,
                        .rows = w->data,
                        .add = add,
                        .m = m,
                        .finite = finite,
                        .pointwise = pointwise,
                        .quads = pq_i8_quads_ok(k),
                        .zp_x = zp_x,
                        .zp_y = zp_y,
                        .CK = CK,
                        .OSP = OSP,
                        .rb = rb,
                        .nc = nc,
                        .tiles = tiles,
                        .mblk = mblk,
                        .mchunks = mchunks};
    atomic_init(&j.failed, 0);
    /* threads only pay off with enough work */
    if ((double)M * (double)CK * (double)OSP * (double)g.N < 262144.0) th = 1;
    pq_parallel_for(th, tile_tasks * (int64_t)mchunks, pq_i8_conv_task, &j);
    if (atomic_load(&j.failed)) st = pq_error_nomem(a->err, "QLinearConv tile buffers");
done:
    pq_free(m);
    pq_free(add);
    pq_i8_wpack_free(owned);
    return st;
}

enum pq_status pq_fast_int8_qlinear_conv(const pq_kernel_args *a) {
    return pq_i8_qlinear_conv_run(pq_i8_kernels_get(), a);
}

enum pq_status pq_fast_int8_qlinear_matmul(const pq_kernel_args *a) {
    return pq_i8_qlinear_matmul_run(pq_i8_kernels_get(), a);
}
