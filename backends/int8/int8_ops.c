/* QLinearConv / QLinearMatMul glue over the INT8 GEMM: case checks (UNSUPPORTED -> reference),
 * per-channel multipliers and the fused activation per call; constant weights packed (with their
 * zero-point corrections) once per session node through the session's backend cache
 * (backends/onednn: pq_dnnl_node_get), else per call. Convolutions without an im2col buffer: the
 * taps are contiguous rows of the input (1x1 stride 1) or of a zp-padded copy split into stride
 * phases, packed four rows at a time straight into the panel layout per tile of output positions;
 * output channels are the broadcast rows, or (small outputs) positions are the rows and channels
 * the lanes; depthwise as exact f32 tap sums on a padded plane; per-group GEMMs. Threaded over
 * tiles (or output-channel blocks when there are fewer tiles than threads), depthwise channels
 * and QLinearMatMul weight panels with pq_parallel_for: each output is computed by one task with
 * the same operations at any thread count (bit-identical). */
#include "int8_ops.h"

#include "int8_conv_plan.h"
#include "int8_conv_small.h"
#include "int8_conv_taps.h"
#include "int8_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__SSE2__)
#include "int8_transpose_x86.h"
#endif

#include "backends/cpu.h"
#include "backends/onednn/onednn_impl.h"
#include "backends/threadpool.h"
#include "ir/alloc.h"
#include "ir/attrs.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"

/* Target bytes of one packed im2col tile (stays in L2 while every output channel runs on it). */
#define PQ_I8_TILE_BYTES (192u * 1024u)

static const pq_tensor *pq_i8_in(const pq_kernel_args *a, uint32_t i) {
    return i < a->n_in ? a->in[i] : NULL;
}

/* Per-thread scratch kept between calls (a small model's layers spent more time in malloc than in
 * their multiply-adds): one grow-only buffer per slot and thread, freed at thread exit. */
/* Buffers above this stay per call (a one-off large layer should not pin its memory). */
#define PQ_I8_TLS_MAX ((size_t)4 << 20)

typedef struct pq_i8_tls {
    void *p[PQ_I8_TLS_SLOTS];
    size_t n[PQ_I8_TLS_SLOTS];
} pq_i8_tls;

static pthread_key_t pq_i8_tls_key;
static pthread_once_t pq_i8_tls_once = PTHREAD_ONCE_INIT;
static bool pq_i8_tls_ok;

static void pq_i8_tls_free(void *v) {
    pq_i8_tls *t = v;
    for (int i = 0; i < PQ_I8_TLS_SLOTS; i++)
        pq_free(t->p[i]);
    pq_free(t);
}

static void pq_i8_tls_init(void) {
    pq_i8_tls_ok = pthread_key_create(&pq_i8_tls_key, pq_i8_tls_free) == 0;
}

void *pq_i8_scratch(int slot, size_t bytes, void **owned) {
    *owned = NULL;
    pthread_once(&pq_i8_tls_once, pq_i8_tls_init);
    pq_i8_tls *t =
        pq_i8_tls_ok && bytes <= PQ_I8_TLS_MAX ? pthread_getspecific(pq_i8_tls_key) : NULL;
    if (!t && pq_i8_tls_ok && bytes <= PQ_I8_TLS_MAX) {
        t = pq_calloc(1, sizeof *t);
        if (t && pthread_setspecific(pq_i8_tls_key, t) != 0) {
            pq_free(t);
            t = NULL;
        }
    }
    if (!t) return *owned = pq_malloc_aligned(bytes ? bytes : 1);
    if (t->n[slot] < bytes) {
        pq_free(t->p[slot]);
        t->p[slot] = pq_malloc_aligned(bytes);
        t->n[slot] = t->p[slot] ? bytes : 0;
    }
    return t->p[slot];
}

/* n scratch buffers of bytes[i] bytes, each 64-byte aligned, carved out of one slot buffer of
 * this thread (pq_i8_scratch): returns it (*owned: what the caller must pq_free), NULL on NOMEM. */
static void *pq_i8_carve(int slot, size_t n, const size_t *bytes, void **out, void **owned) {
    size_t total = 64;
    for (size_t i = 0; i < n; i++)
        total += (bytes[i] + 63) & ~(size_t)63;
    uint8_t *b = pq_i8_scratch(slot, total, owned);
    for (size_t i = 0, o = 0; b && i < n; i++) {
        out[i] = b + o;
        o += (bytes[i] + 63) & ~(size_t)63;
    }
    return b;
}

/* Threads for work units of work (multiply-adds, bytes): at most one per per_thread units, so a
 * small layer does not pay a pool wake-up (and, on a loaded machine, a wait for a worker that is
 * not scheduled) for less work than that costs. */
static double pq_i8_grain = 1.0;

void pq_i8_thread_grain(double scale) {
    pq_i8_grain = scale < 0 ? 1.0 : scale;
}

/* On idle CPUs (pq_threads_usable) the caller of pq_parallel_for never waits for a worker to
 * wake up, so layers from a tenth of per_thread are split (2 idle Sapphire Rapids cores:
 * mobilenet_v3_small INT8 at 2 threads 1.11 -> 0.83 ms, at 1 thread 0.99 ms; resnet18 unchanged);
 * while other processes keep the CPUs busy, per_thread as it is. */
#define PQ_I8_IDLE_GRAIN 0.1
int pq_i8_threads(int n_threads, double work, double per_thread) {
    if (n_threads <= 1) return 1;
    if (pq_i8_grain == 0.0) return n_threads;
    double scale = pq_threads_usable(n_threads) < n_threads ? 1.0 : PQ_I8_IDLE_GRAIN;
    double t = work / (per_thread * pq_i8_grain * scale);
    if (t < 2.0) return 1;
    return t < (double)n_threads ? (int)t : n_threads;
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
    const uint8_t *b = t->data; /* one byte per element: zero bytes are zero values */
    uint8_t any = 0;            /* an OR over all bytes (vectorised), not an early exit */
    for (int64_t i = 0; i < n; i++)
        any |= b[i];
    return any == 0;
}

/* add[i] = corr[i] + bias[i] (bias NULL: 0), wrapping like the reference's i32 correction; the
 * two loops have no branch inside, so they vectorise. */
static void pq_i8_add_terms(const int32_t *corr, const int32_t *bias, size_t n, int32_t *add) {
    if (!bias) {
        memcpy(add, corr, n * sizeof *add);
        return;
    }
    for (size_t i = 0; i < n; i++)
        add[i] = (int32_t)((uint32_t)corr[i] + (uint32_t)bias[i]);
}

/* The node's fused activation as an epilogue activation: false for kinds the INT8 epilogue does
 * not compute (Sigmoid, Tanh, Gelu, Swish: the reference kernel runs) or a malformed attribute;
 * *has false when the node has none. */
static bool pq_i8_node_act(const pq_node *n, pq_i8_act *act, bool *has) {
    pq_activation a;
    pq_error scratch; /* not = {0}: that clears its 4 KiB message on every call */
    pq_error_clear(&scratch);
    *has = false;
    memset(act, 0, sizeof *act);
    if (pq_node_activation(n, &a, &scratch) != PQ_OK) return false;
    switch (a.kind) {
    case PQ_ACT_NONE:
        return true;
    case PQ_ACT_RELU:
        act->kind = PQ_I8_ACT_RELU;
        break;
    case PQ_ACT_CLIP:
        act->kind = PQ_I8_ACT_CLIP;
        break;
    case PQ_ACT_LEAKY_RELU:
        act->kind = PQ_I8_ACT_LEAKY_RELU;
        break;
    case PQ_ACT_HARD_SIGMOID:
        act->kind = PQ_I8_ACT_HARD_SIGMOID;
        break;
    case PQ_ACT_HARD_SWISH:
        act->kind = PQ_I8_ACT_HARD_SWISH;
        break;
    case PQ_ACT_SIGMOID:
        act->kind = PQ_I8_ACT_SIGMOID;
        break;
    case PQ_ACT_SWISH:
        act->kind = PQ_I8_ACT_SWISH;
        break;
    default:
        return false;
    }
    act->alpha = a.alpha;
    act->beta = a.beta;
    *has = true;
    return true;
}

/* Per-channel multipliers m[i] = (s_x * s_w[i]) / s_y in f32 operations (with a fused activation
 * act: m[i] = s_x * s_w[i] and act->inv_sy = 1 / s_y; *finite covers it) (pq_i8_mult, as the
 * reference computes them; s_w per tensor or one per channel). False when the scale shapes are
 * not handled. */
static bool pq_i8_mults_act(const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy,
                            int64_t n, pq_i8_act *act, float *m, bool *finite) {
    if (!pq_i8_scalar(sx) || !pq_i8_scalar(sy) || !sw || !sw->data) return false;
    int64_t nw = pq_tensor_numel(sw);
    if (nw != 1 && nw != n) return false;
    float xs = (float)pq_dtype_load(sx->dtype, sx->data, 0);
    float ys = (float)pq_dtype_load(sy->dtype, sy->data, 0);
    *finite = true;
    if (act) { /* the SIMD epilogues need finite constants (Clip bounds may be infinite) */
        act->inv_sy = 1.0f / ys;
        bool ok = isfinite(act->inv_sy);
        if (act->kind == PQ_I8_ACT_CLIP)
            ok = ok && !isnan(act->alpha) && !isnan(act->beta);
        else if (act->kind == PQ_I8_ACT_LEAKY_RELU || act->kind == PQ_I8_ACT_HARD_SIGMOID)
            ok = ok && isfinite(act->alpha) && isfinite(act->beta);
        *finite = ok;
    }
    const float *swf = sw->dtype == PQ_DTYPE_F32 ? (const float *)sw->data : NULL;
    bool fin = true;
    for (int64_t i = 0; i < n; i++) {
        size_t wi = (size_t)(nw == 1 ? 0 : i);
        float w = swf ? swf[wi] : (float)pq_dtype_load(sw->dtype, sw->data, wi);
        m[i] = act ? xs * w : pq_i8_mult(xs, w, ys);
        fin = fin && isfinite(m[i]);
    }
    if (!fin) *finite = false;
    return true;
}

static bool pq_i8_mults(const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy, int64_t n,
                        float *m, bool *finite) {
    return pq_i8_mults_act(sx, sw, sy, n, NULL, m, finite);
}

/* ---- packed weights cached per session node ---- */

/* How a weight is packed: rows [M][K] (a convolution's output channels as broadcast rows),
 * panels of a [K][N] matrix (QLinearMatMul's B), or panels of the transpose of an [N][K] matrix
 * (a convolution's output channels as lanes, pq_i8_conv_swap). */
enum pq_i8_wmode { PQ_I8W_ROWS, PQ_I8W_PANELS, PQ_I8W_PANELS_T, PQ_I8W_TAPS };

/* The packed form of one constant weight for one kernel table and u8 zero point. */
typedef struct pq_i8_wpack {
    pq_dnnl_wsig sig;
    const pq_i8_kernels *k;
    int32_t zp;  /* zero point of the u8 operand the corrections were made for */
    size_t a, b; /* the packed shape (rows M and depth K, or depth K and columns N) */
    enum pq_i8_wmode mode;
    void *data;    /* packed bytes */
    int32_t *corr; /* zero-point corrections (per row M, or per column N) */
} pq_i8_wpack;

static void pq_i8_wpack_free(void *p) {
    pq_i8_wpack *w = p;
    if (!w) return;
    pq_free(w->data);
    pq_free(w->corr);
    pq_free(w);
}

/* Packs W (s8) as rows [a = M][b = K] (PQ_I8W_ROWS), panels of [a = K][b = N] (PQ_I8W_PANELS;
 * W is [K][N]) or of the transpose of W [b = N][a = K] (PQ_I8W_PANELS_T), with the corrections
 * for zero point zp. NULL on NOMEM. */
static pq_i8_wpack *pq_i8_wpack_make(const pq_i8_kernels *k, const int8_t *W, size_t a, size_t b,
                                     enum pq_i8_wmode mode, int32_t zp, size_t taps) {
    pq_i8_wpack *w = pq_calloc(1, sizeof *w);
    if (!w) return NULL;
    bool panels = mode != PQ_I8W_ROWS;
    w->k = k;
    w->zp = zp;
    w->a = a;
    w->b = b;
    w->mode = mode;
    if (mode == PQ_I8W_TAPS) { /* [a = M][b = C * taps] into implicit-GEMM panels */
        size_t C = b / taps;
        w->data = pq_malloc_aligned(
            pq_i8_taps_panels_bytes(k, (int64_t)a, (int64_t)C, (int64_t)taps) + 64);
        w->corr = pq_malloc((a + 1) * sizeof(int32_t));
        if (!w->data || !w->corr) {
            pq_i8_wpack_free(w);
            return NULL;
        }
        pq_i8_taps_pack(k, W, (int64_t)a, (int64_t)C, (int64_t)taps, w->data);
        pq_i8_corr_rows(W, b, a, b, pq_i8_zp_eff(k, zp), w->corr);
        return w;
    }
    size_t bytes = panels ? pq_i8_panels_bytes(k, a, b) : a * pq_i8_row_bytes(k, b);
    w->data = pq_malloc_aligned(bytes + 64);
    w->corr = pq_malloc(((panels ? b : a) + 1) * sizeof(int32_t));
    bool need_t = mode == PQ_I8W_PANELS_T && !(k->elem == 1 && k->kb == 4);
    int8_t *wt = need_t ? pq_malloc(a * b + 1) : NULL;
    if (!w->data || !w->corr || (need_t && !wt)) {
        pq_free(wt);
        pq_i8_wpack_free(w);
        return NULL;
    }
    if (mode == PQ_I8W_PANELS_T && k->elem == 1 && k->kb == 4) {
        /* quad q of lane j in panel p is W[p * nr + j][4q .. 4q + 3]: four contiguous bytes */
        size_t nr = (size_t)k->nr, kq = pq_i8_kpad(k, a) / 4, np = (b + nr - 1) / nr;
        uint8_t *d = w->data;
        memset(d, 0, bytes); /* the padded quads stay zero */
        for (size_t pn = 0; pn < np; pn++)
            for (size_t j = 0; j < nr && pn * nr + j < b; j++) {
                const int8_t *src = W + (pn * nr + j) * a;
                uint8_t *o = d + pn * kq * nr * 4 + j * 4;
                for (size_t q = 0; q < (a + 3) / 4; q++, o += nr * 4)
                    memcpy(o, src + 4 * q, 4 * q + 4 <= a ? 4 : a - 4 * q);
            }
        pq_i8_corr_rows(W, a, b, a, pq_i8_zp_eff(k, zp), w->corr);
        return w;
    }
    if (wt) { /* [b][a] -> [a][b] */
        for (size_t i = 0; i < b; i++)
            for (size_t t = 0; t < a; t++)
                wt[t * b + i] = W[i * a + t];
        W = wt;
    }
    if (panels) {
        pq_i8_pack_panels(k, (const uint8_t *)W, b, a, b, false, w->data);
        pq_i8_corr_cols(W, b, a, b, pq_i8_zp_eff(k, zp), w->corr);
        pq_free(wt);
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
                                        const pq_i8_kernels *k, size_t da, size_t db,
                                        enum pq_i8_wmode mode, int32_t zp, size_t taps,
                                        pq_i8_wpack **owned) {
    const pq_tensor *W = a->in[wi];
    *owned = NULL;
    pq_onednn_cache *c = pq_dnnl_current();
    if (c && pq_dnnl_is_constant(a, wi)) {
        pq_dnnl_node *e = pq_dnnl_node_get(c, a->node, a->err);
        if (!e) return NULL;
        pq_i8_wpack *w = e->destroy == pq_i8_wpack_free ? e->val : NULL;
        if (w && w->k == k && w->zp == zp && w->a == da && w->b == db && w->mode == mode &&
            pq_dnnl_wsig_same(&w->sig, W->data, W->nbytes))
            return w;
        pq_dnnl_node_reset(e);
        w = pq_i8_wpack_make(k, W->data, da, db, mode, zp, taps);
        if (!w) {
            pq_error_nomem(a->err, "int8 packed weights");
            return NULL;
        }
        pq_dnnl_wsig_take(&w->sig, W->data, W->nbytes);
        e->val = w;
        e->destroy = pq_i8_wpack_free;
        return w;
    }
    *owned = pq_i8_wpack_make(k, W->data, da, db, mode, zp, taps);
    if (!*owned) pq_error_nomem(a->err, "int8 packed weights");
    return *owned;
}

/* Whether a table with a depth alignment (AMX: 64 bytes) beats its strided (AVX-512) table on a
 * GEMM with m rows of weights reused over n positions / rows and depth K: the tiles need at least
 * 64 weight rows (32 with a depth of 96 or more) and 16 of the other operand, and padding at most
 * a quarter of the packed depth (the extra zeros are packed per call). Measured per layer on
 * mobilenet_v3_small and resnet18 (bench_int8 models): the smaller 1x1 convolutions there are
 * bound by packing and their epilogue, not by the multiply-adds, and ran 10-80% slower on tiles;
 * the deep projections with 40-48 output channels (240 -> 40, 120 / 144 -> 48) ran 15-25%
 * faster. Tables without an alignment: always true. */
static bool pq_i8_tiles_pay(const pq_i8_kernels *k, size_t m, size_t n, size_t K) {
    if (k->kq_align <= 1 || !k->strided) return true;
    size_t kp = pq_i8_kpad(k, K);
    return (m >= 64 || (m >= 32 && K >= 96)) && n >= 16 && 4 * (kp - K) <= kp;
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
    if (j->rows == 1 && j->finite && j->k->gemv_rq) {
        size_t kq = pq_i8_kpad(j->k, j->K) / 4;
        for (size_t j1c = j0; j1c < j1; j1c += nr) {
            pq_i8_tile_ep t = {.add_col = j->w->corr + j1c,
                               .m_col = j->m + j1c,
                               .zp = j->zp_y,
                               .y = j->y + j1c,
                               .ldy = j->N,
                               .nj = (int)(j1 - j1c < nr ? j1 - j1c : nr)};
            j->k->gemv_rq(kq, j->pa, (const uint8_t *)j->w->data + j1c / nr * pb, &t);
        }
        return;
    }
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
    if (!pq_i8_tiles_pay(k, (size_t)N, (size_t)rows, (size_t)K)) k = k->strided;
    if (pq_node_attr(a->node, "activation")) return PQ_ERR_UNSUPPORTED;
    int32_t zp_a, zp_y;
    if (!pq_i8_zp_u8(pq_i8_in(a, 2), &zp_a) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y) || !pq_i8_in(a, 7))
        return PQ_ERR_UNSUPPORTED;
    /* multipliers and packed rows in this thread's call scratch (no allocation per call) */
    size_t cb[2] = {(size_t)N * sizeof(float), (size_t)rows * pq_i8_row_bytes(k, (size_t)K) + 64};
    void *cbuf[2], *call_owned;
    if (!pq_i8_carve(PQ_I8_TLS_CALL, 2, cb, cbuf, &call_owned))
        return pq_error_nomem(a->err, "QLinearMatMul buffers");
    float *m = cbuf[0];
    void *pa = cbuf[1];
    bool finite;
    enum pq_status st = PQ_OK;
    pq_i8_wpack *owned = NULL;
    if (!pq_i8_mults(pq_i8_in(a, 1), pq_i8_in(a, 4), pq_i8_in(a, 6), N, m, &finite)) {
        st = PQ_ERR_UNSUPPORTED;
        goto done;
    }
    const pq_i8_wpack *w =
        pq_i8_weights(a, 3, k, (size_t)K, (size_t)N, PQ_I8W_PANELS, zp_a, 1, &owned);
    if (!w) {
        st = PQ_ERR_NOMEM;
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
    int th = pq_i8_threads(a->n_threads, (double)rows * (double)K * (double)N, 1e6);
    pq_parallel_for(th, panels, pq_i8_mm_task, &j);
done:
    pq_free(call_owned);
    pq_i8_wpack_free(owned);
    return st;
}

/* ---- QLinearConv ---- */

/* The input as rows of taps: tap k = (c, kh, kw) of output row oh reads the bytes of output
 * columns ow at base + koff[k] + oh * ostride + ow. base is either the input itself (a 1x1
 * stride-1 unpadded convolution: all OH * OW positions form one row) or a copy built per call,
 * padded with zp_x and with its width split into sw phases ([c][row][phase][q] holds padded column
 * q * sw + phase), so that every tap of a strided or dilated convolution is contiguous too. */
typedef struct pq_i8_src {
    bool direct;    /* base = the input tensor (no slack after it) */
    size_t hr, wq;  /* rows and columns per phase of the copy */
    size_t rstride; /* bytes per copied row (sw * wq) */
    size_t cstride; /* bytes per channel (hr * rstride; H * W when direct) */
    size_t ostride; /* bytes between output rows (sh * rstride; 0 when direct) */
    size_t ow;      /* outputs per row (OH * OW when direct) */
    const size_t *koff;
} pq_i8_src;

/* Channels [b, e) of the padded, phase-split copy (task index = n * C + c). */
typedef struct pq_i8_pad_job {
    const pq_i8_conv *g;
    const pq_i8_src *src;
    const uint8_t *X;
    uint8_t *planes;
    uint8_t zp;
    bool split2; /* stride-2 rows by pq_i8_split2__avx512 */
    atomic_int *failed;
} pq_i8_pad_job;

/* memcpy for short rows without a library call (n bytes, no overlap). */
static inline void pq_i8_copy(uint8_t *d, const uint8_t *x, size_t n) {
#if defined(__SSE2__)
    if (n >= 16) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(x + i)));
        if (i < n) /* the last 16 bytes again, overlapping */
            _mm_storeu_si128((__m128i *)(d + n - 16),
                             _mm_loadu_si128((const __m128i *)(x + n - 16)));
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
}

/* out[q] = x[q - pl] (zp outside [0, W)), q < len. */
static void pq_i8_pad_row(const uint8_t *x, int64_t W, int64_t pl, uint8_t zp, size_t len,
                          uint8_t *out) {
    int64_t lo = pl < (int64_t)len ? pl : (int64_t)len;
    int64_t hi = pl + W < (int64_t)len ? pl + W : (int64_t)len;
    memset(out, zp, (size_t)lo);
    if (hi > lo) memcpy(out + lo, x, (size_t)(hi - lo));
    if ((int64_t)len > hi) memset(out + hi, zp, len - (size_t)hi);
}

/* d[ph * wq + q] = row[q * sw + ph]: the sw phases of a row of sw * wq bytes (row has 32 bytes of
 * slack after it, initialized). */
static void pq_i8_deinterleave(const uint8_t *row, size_t sw, size_t wq, uint8_t *d) {
    size_t q = 0;
#if defined(__SSE2__)
    if (sw == 2) {
        __m128i lo8 = _mm_set1_epi16(0xFF);
        for (;;) {
            size_t q0 = q + 16 <= wq ? q : (wq >= 16 ? wq - 16 : 0); /* the last chunk overlaps */
            __m128i a = _mm_loadu_si128((const __m128i *)(row + 2 * q0));
            __m128i b = _mm_loadu_si128((const __m128i *)(row + 2 * q0 + 16));
            __m128i ev = _mm_packus_epi16(_mm_and_si128(a, lo8), _mm_and_si128(b, lo8));
            __m128i od = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
            if (wq >= 16) {
                _mm_storeu_si128((__m128i *)(d + q0), ev);
                _mm_storeu_si128((__m128i *)(d + wq + q0), od);
            } else { /* a short row: only wq bytes of each phase */
                uint8_t t[32];
                _mm_storeu_si128((__m128i *)t, ev);
                _mm_storeu_si128((__m128i *)(t + 16), od);
                memcpy(d, t, wq);
                memcpy(d + wq, t + 16, wq);
            }
            q = q0 + 16;
            if (q >= wq) return;
        }
    }
#endif
    for (; q < wq; q++)
        for (size_t ph = 0; ph < sw; ph++)
            d[ph * wq + q] = row[q * sw + ph];
}

static void pq_i8_pad_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8_pad_job *j = ctx;
    const pq_i8_conv *g = j->g;
    const pq_i8_src *s = j->src;
    size_t sw = (size_t)g->sw;
    uint8_t *row = NULL;
    if (sw > 1 && !(row = pq_malloc(s->rstride + 64))) {
        atomic_store(j->failed, 1);
        return;
    }
    if (row) memset(row + s->rstride, 0, 64); /* the slack the deinterleave reads */
    /* stride 1: the plane filled with zp once, then the in-range part of every row copied */
    int64_t c0 = g->pl < (int64_t)s->wq ? g->pl : (int64_t)s->wq;
    int64_t c1 = g->pl + g->W < (int64_t)s->wq ? g->pl + g->W : (int64_t)s->wq;
    for (int64_t nc = b; nc < e; nc++) {
        const uint8_t *xc = j->X + nc * g->H * g->W;
        uint8_t *dc = j->planes + (size_t)nc * s->cstride;
        if (sw == 1 && (g->pl || g->pr || g->pt || g->pb)) memset(dc, j->zp, s->cstride);
        for (size_t r = 0; r < s->hr; r++) {
            uint8_t *d = dc + r * s->rstride;
            int64_t ih = (int64_t)r - g->pt;
            if (ih < 0 || ih >= g->H) {
                if (sw > 1) memset(d, j->zp, s->rstride);
                continue;
            }
            const uint8_t *xr = xc + ih * g->W;
            if (sw == 1) { /* padded column q holds iw = q - pl */
                if (c1 > c0) pq_i8_copy(d + c0, xr, (size_t)(c1 - c0));
                continue;
            }
#if defined(__x86_64__)
            if (j->split2) {
                pq_i8_split2__avx512(xr, g->W, g->pl, j->zp, s->wq, d);
                continue;
            }
#endif
            /* the padded row (sw * wq columns), then its phases */
            pq_i8_pad_row(xr, g->W, g->pl, j->zp, s->rstride, row);
            pq_i8_deinterleave(row, sw, s->wq, d);
        }
    }
    pq_free(row);
}

/* A run of consecutive output positions inside one output row: tile lanes [j, j + run) read
 * base + koff[k] + off + t. */
typedef struct pq_i8_seg {
    size_t off, run, j;
} pq_i8_seg;

/* Splits positions [p0, p0 + n) into runs; returns their count (at most n / ow + 2). */
static size_t pq_i8_segments(const pq_i8_src *s, size_t p0, size_t n, pq_i8_seg *seg) {
    size_t ns = 0, oh = p0 / s->ow, ow = p0 % s->ow; /* then whole rows: no division per run */
    for (size_t i = 0; i < n; oh++, ow = 0) {
        size_t run = s->ow - ow < n - i ? s->ow - ow : n - i;
        seg[ns].off = oh * s->ostride + ow;
        seg[ns].run = run;
        seg[ns].j = i;
        ns++;
        i += run;
    }
    return ns;
}

/* Depthwise (one input channel per group): tap sums on a zero-padded f32 plane of x - zp_x (exact:
 * pq_i8_dw_fn), then the epilogue per output plane; tasks are (image, channel) pairs. Kernels
 * with more than 256 taps are left to the reference (their f32 sums could round). */
typedef struct pq_i8_dw_job {
    const pq_i8_kernels *k;
    const pq_i8_conv *g;
    const uint8_t *X;
    const int8_t *Wt;
    const int32_t *bias;
    const float *m;
    const pq_i8_act *act;
    bool finite;
    int32_t zp_x, zp_y;
    uint8_t *Y;
    atomic_int failed;
} pq_i8_dw_job;

static void pq_i8_dw_task(void *ctx, int64_t b, int64_t e) {
    pq_i8_dw_job *j = ctx;
    const pq_i8_conv *g = j->g;
    size_t sw = (size_t)g->sw, OSP = (size_t)(g->OH * g->OW), KK = (size_t)(g->KH * g->KW);
    /* the padded plane of x - zp_x in f32, split into sw column phases (pq_i8_dw_geom) */
    size_t hr = (size_t)((g->OH - 1) * g->sh + (g->KH - 1) * g->dh + 1);
    size_t wr = (size_t)((g->OW - 1) * g->sw + (g->KW - 1) * g->dw + 1), wq = (wr + sw - 1) / sw;
    pq_i8_dw_geom dg = {.rs = wq,
                        .ps = hr * wq,
                        .OH = (int)g->OH,
                        .OW = (int)g->OW,
                        .KH = (int)g->KH,
                        .KW = (int)g->KW,
                        .sh = (int)g->sh,
                        .sw = (int)g->sw,
                        .dh = (int)g->dh,
                        .dw = (int)g->dw};
    size_t bytes[5] = {KK * sizeof(size_t), sw * hr * wq * sizeof(float) + 64,
                       (sw * wq + 64) * sizeof(float), KK * sizeof(float), OSP * sizeof(int32_t)};
    void *buf[5], *owned;
    void *block = pq_i8_carve(PQ_I8_TLS_TASK, 5, bytes, buf, &owned);
    size_t *off = buf[0];
    float *pad = buf[1], *row = buf[2], *wf = buf[3];
    int32_t *acc = buf[4];
    if (!block) {
        atomic_store(&j->failed, 1);
        goto done;
    }
    for (size_t kh = 0; kh < (size_t)g->KH; kh++)
        for (size_t kw = 0; kw < (size_t)g->KW; kw++) {
            size_t col = kw * (size_t)g->dw;
            off[kh * (size_t)g->KW + kw] = (col % sw) * dg.ps + kh * (size_t)g->dh * wq + col / sw;
        }
    dg.off = off;
    pq_i8_requant_fn rq = j->finite ? j->k->requant : pq_i8_requant__scalar;
    pq_i8_dw_fn dw = j->k->dw ? j->k->dw : pq_i8_dw__portable;
    pq_i8_dwpad_fn dwpad = j->k->dwpad ? j->k->dwpad : pq_i8_dwpad__portable;
    float zp = (float)j->zp_x;
    for (int64_t t = b; t < e; t++) {
        int64_t n = t / g->C, c = t % g->C;
        const uint8_t *xc = j->X + (n * g->C + c) * g->H * g->W;
        dwpad(xc, g->H, g->W, g->pt, g->pl, zp, hr, &dg, row, pad);
        for (int64_t mi = 0; mi < g->Mg; mi++) {
            int64_t oc = c * g->Mg + mi;
            const int8_t *wc = j->Wt + oc * (int64_t)KK;
            for (size_t i = 0; i < KK; i++)
                wf[i] = (float)wc[i];
            dw(pad, &dg, wf, acc);
            rq(acc, OSP, j->bias ? j->bias[oc] : 0, j->m[oc], NULL, j->act, j->zp_y,
               j->Y + (n * g->M + oc) * (int64_t)OSP);
        }
    }
done:
    pq_free(owned);
}

/* Depthwise with the channels in vector lanes (the table's dwc, one output channel per group,
 * finite multipliers): tasks are (image, block of dwc_lanes channels). */
typedef struct pq_i8_dwc_job {
    const pq_i8_kernels *k;
    const pq_i8_conv *g;
    pq_i8_dwc proto; /* geometry, zero points, activation; pointers per task */
    const uint8_t *X;
    const int8_t *Wt;
    const int32_t *bias;
    const float *m;
    uint8_t *Y;
    int64_t blocks;  /* channel blocks per image */
    int64_t rchunks; /* output row ranges per block (threads for few blocks) */
    atomic_int failed;
} pq_i8_dwc_job;

static void pq_i8_dwc_task(void *ctx, int64_t b, int64_t e) {
    pq_i8_dwc_job *j = ctx;
    const pq_i8_conv *g = j->g;
    int64_t L = j->k->dwc_lanes, KK = g->KH * g->KW, OSP = g->OH * g->OW;
    void *owned,
        *scratch = pq_i8_scratch(PQ_I8_TLS_TASK, pq_i8_dwc_scratch(&j->proto, (int)L), &owned);
    if (!scratch) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (int64_t t = b; t < e; t++) {
        int64_t rc = t % j->rchunks, nb = t / j->rchunks;
        int64_t n = nb / j->blocks, c0 = nb % j->blocks * L;
        pq_i8_dwc a = j->proto;
        a.oh_begin = g->OH * rc / j->rchunks;
        a.oh_end = g->OH * (rc + 1) / j->rchunks;
        if (a.oh_end <= a.oh_begin) continue;
        a.nc = (int)(g->C - c0 < L ? g->C - c0 : L);
        a.x = j->X + (n * g->C + c0) * g->H * g->W;
        a.y = j->Y + (n * g->M + c0) * OSP;
        a.w = j->Wt + c0 * KK;
        a.bias = j->bias ? j->bias + c0 : NULL;
        a.m = j->m + c0;
        a.scratch = scratch;
        j->k->dwc(&a);
    }
    pq_free(owned);
}

/* ---- packing tap rows straight into panels ---- */

/* Whether the quad / pair packers below match the table's panel layout: lanes in multiples of 16
 * of raw bytes 4 k per lane (AVX-512 VNNI, AVX-VNNI) or of zero-extended i16 2 k per lane (AVX2);
 * else the generic packer. Either way a lane takes 4 bytes per packed step. */
static bool pq_i8_quads_ok(const pq_i8_kernels *k) {
    return k->nr % 16 == 0 &&
           ((k->elem == 1 && k->kb == 4) || (k->elem == 2 && k->kb == 2 && !k->flip));
}

#if defined(__SSE2__)
/* 16 lanes: bytes t of r[0..3] interleaved into 16 quads at o, each byte ^ x. */
static inline void pq_i8_quad16(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                                const uint8_t *r3, __m128i vx, uint8_t *o) {
    __m128i a = _mm_loadu_si128((const __m128i *)r0), b = _mm_loadu_si128((const __m128i *)r1);
    __m128i c = _mm_loadu_si128((const __m128i *)r2), d = _mm_loadu_si128((const __m128i *)r3);
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)o, _mm_xor_si128(_mm_unpacklo_epi16(ab0, cd0), vx));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_xor_si128(_mm_unpackhi_epi16(ab0, cd0), vx));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_xor_si128(_mm_unpacklo_epi16(ab1, cd1), vx));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_xor_si128(_mm_unpackhi_epi16(ab1, cd1), vx));
}

/* 16 lanes: bytes t of r[0..1] zero-extended into 16 i16 pairs at o. */
static inline void pq_i8_pair16(const uint8_t *r0, const uint8_t *r1, uint8_t *o) {
    __m128i a = _mm_loadu_si128((const __m128i *)r0), b = _mm_loadu_si128((const __m128i *)r1);
    __m128i z = _mm_setzero_si128();
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi8(ab0, z));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi8(ab0, z));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi8(ab1, z));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi8(ab1, z));
}
#endif

/* 16 lanes of a quad (kb 4: bytes ^ x) or of a pair (kb 2: zero-extended i16; x is 0). */
#if defined(__SSE2__)
static inline __attribute__((always_inline)) void pq_i8_lanes16(int kb, const uint8_t *const r[4],
                                                                size_t t, __m128i vx, uint8_t *o) {
    if (kb == 4)
        pq_i8_quad16(r[0] + t, r[1] + t, r[2] + t, r[3] + t, vx, o);
    else
        pq_i8_pair16(r[0] + t, r[1] + t, o);
}
#endif

/* The portable packer of kb (4: quads, 2: i16 pairs) taps per lane, 4 bytes per lane. */
static inline __attribute__((always_inline)) void
pq_i8_packk(int kb, const uint8_t *const rb[4], const pq_i8_chunk *ch, size_t nch, size_t qoff,
            uint8_t x, bool slack, bool last, const uint8_t *ztail, uint8_t *dst) {
#if defined(__SSE2__)
    __m128i vx = _mm_set1_epi8((char)x);
#else
    (void)slack;
    (void)last;
#endif
    for (size_t c = 0; c < nch; c++) {
        const uint8_t *r[4];
        for (int t = 0; t < kb; t++)
            r[t] = rb[t] ? rb[t] + ch[c].src : ztail + ch[c].j;
        for (int t = kb; t < 4; t++)
            r[t] = r[0];
        uint8_t *o = dst + ch[c].dst + qoff;
        size_t n = ch[c].n, t = 0;
#if defined(__SSE2__)
        for (; t + 16 <= n; t += 16)
            pq_i8_lanes16(kb, r, t, vx, o + 4 * t);
        if (t < n && slack) {
            if (ch[c].overrun || !last) {
                pq_i8_lanes16(kb, r, t, vx, o + 4 * t);
            } else {
                uint32_t tmp[16];
                pq_i8_lanes16(kb, r, t, vx, (uint8_t *)tmp);
                for (size_t u = 0; u < n - t; u++)
                    memcpy(o + 4 * (t + u), tmp + u, 4);
            }
            t = n;
        }
#endif
        for (; t < n; t++) {
            if (kb == 2) {
                uint16_t v[2] = {r[0][t], r[1][t]};
                memcpy(o + 4 * t, v, 4);
                continue;
            }
            o[4 * t] = r[0][t] ^ x;
            o[4 * t + 1] = r[1][t] ^ x;
            o[4 * t + 2] = r[2][t] ^ x;
            o[4 * t + 3] = r[3][t] ^ x;
        }
    }
}

/* The portable quad packer (pq_i8_packq_fn). */
static void pq_i8_packq__portable(const uint8_t *const rb[4], const pq_i8_chunk *ch, size_t nch,
                                  size_t qoff, uint8_t x, bool slack, bool last,
                                  const uint8_t *ztail, uint8_t *dst) {
    pq_i8_packk(4, rb, ch, nch, qoff, x, slack, last, ztail, dst);
}

/* The pair packer (pq_i8_packq_fn layout with rb[0..1]; i16 zero-extended u8, 4 bytes a lane). */
static void pq_i8_packp__portable(const uint8_t *const rb[4], const pq_i8_chunk *ch, size_t nch,
                                  size_t qoff, uint8_t x, bool slack, bool last,
                                  const uint8_t *ztail, uint8_t *dst) {
    pq_i8_packk(2, rb, ch, nch, qoff, x, slack, last, ztail, dst);
}

/* The chunks of a tile's runs: split at panel boundaries (nr lanes, pe bytes per panel). */
static size_t pq_i8_chunks(const pq_i8_seg *seg, size_t ns, size_t nr, size_t pe, pq_i8_chunk *ch) {
    size_t nch = 0;
    for (size_t s = 0; s < ns; s++)
        for (size_t i = 0; i < seg[s].run;) {
            size_t jj = seg[s].j + i, lane = jj % nr, n = seg[s].run - i;
            if (n > nr - lane) n = nr - lane;
            ch[nch].src = seg[s].off + i;
            ch[nch].dst = (jj / nr) * pe + lane * 4;
            ch[nch].j = jj;
            ch[nch].n = (uint32_t)n;
            /* a partial 16-lane store after the full ones stays inside the panel */
            ch[nch].overrun = lane + n / 16 * 16 + 16 <= nr;
            nch++;
            i += n;
        }
    return nch;
}

/* ---- QLinearConv ---- */

typedef struct pq_i8_conv_job {
    const pq_i8_kernels *k;
    const pq_i8_conv *g;
    const pq_i8_src *src;
    const uint8_t *X; /* the tap rows' source: input (direct) or padded copy */
    uint8_t *Y;
    const void *rows;   /* packed weights: M rows of rb bytes, or panels of W^T when swap */
    const int32_t *add; /* per output channel: zero-point correction + bias (wrapping i32) */
    const float *m;
    const pq_i8_act *act; /* fused activation or NULL */
    bool finite, quads;
    bool swap; /* positions as rows, output channels as lanes (pq_i8_conv_swap) */
    int32_t zp_y;
    size_t CK, OSP, rb, nc, tiles; /* tiles of nc output positions per image and group */
    size_t mblk, mchunks;          /* output channels per task (multiple of mr), tasks per tile */
    atomic_int failed;
} pq_i8_conv_job;

/* One tile's panels: positions [p0, p0 + n_c) of the group whose tap rows start at base, all CK
 * taps. seg: scratch for n_c + 2 runs; ztail: nc + 64 bytes that pack to zero. */
static void pq_i8_conv_pack(const pq_i8_conv_job *j, const uint8_t *base, size_t p0, size_t n_c,
                            pq_i8_seg *seg, pq_i8_chunk *ch, const uint8_t *ztail, void *panels) {
    const pq_i8_kernels *k = j->k;
    const pq_i8_src *s = j->src;
    size_t nr = (size_t)k->nr, kb = (size_t)k->kb, kq = pq_i8_kpad(k, j->CK) / kb;
    size_t pe = kq * nr * kb; /* elements per panel */
    size_t ns = pq_i8_segments(s, p0, n_c, seg);
    if (n_c % nr) /* lane tail of the last panel: packed zeros (outputs discarded) */
        memset((uint8_t *)panels + (n_c / nr) * pe * (size_t)k->elem, 0, pe * (size_t)k->elem);
    if (j->quads) {
        uint8_t x = k->flip ? 0x80 : 0;
        /* the copy has 64 bytes of slack; the input itself only before its last 16 bytes */
        bool slack = !s->direct || p0 + n_c + 16 <= j->OSP;
        pq_i8_packq_fn packq =
            k->packq ? k->packq : (kb == 4 ? pq_i8_packq__portable : pq_i8_packp__portable);
        size_t nch = pq_i8_chunks(seg, ns, nr, pe * (size_t)k->elem, ch);
        for (size_t q = 0; q < kq; q++) {
            const uint8_t *rb[4] = {NULL, NULL, NULL, NULL};
            for (size_t t = 0; t < kb; t++)
                rb[t] = kb * q + t < j->CK ? base + s->koff[kb * q + t] : NULL;
            packq(rb, ch, nch, q * nr * 4, x, slack, q + 1 == kq, ztail, panels);
        }
        return;
    }
    /* generic: kb taps per lane, bytes (u8, or flipped to s8) or zero-extended i16 */
    for (size_t q = 0; q < kq; q++)
        for (size_t t = 0; t < kb; t++) {
            size_t kk = q * kb + t;
            const uint8_t *rb = kk < j->CK ? base + s->koff[kk] : NULL;
            for (size_t i = 0; i < ns; i++)
                for (size_t u = 0; u < seg[i].run; u++) {
                    size_t jj = seg[i].j + u;
                    size_t o = (jj / nr) * pe + q * nr * kb + (jj % nr) * kb + t;
                    int v = rb ? (int)rb[seg[i].off + u] - (k->flip ? 128 : 0) : 0;
                    if (k->elem == 2)
                        ((int16_t *)panels)[o] = (int16_t)v;
                    else
                        ((uint8_t *)panels)[o] = (uint8_t)v;
                }
        }
    (void)ztail;
}

#if defined(__SSE2__)
#endif

void pq_i8_transpose(const uint8_t *src, size_t lds, size_t rows, size_t cols, uint8_t *dst,
                     size_t ldd) {
    size_t r0 = 0, c0 = 0;
    if (cols == 1 && lds == 1) {
        memcpy(dst, src, rows);
        return;
    }
#if defined(__SSE2__)
    for (; r0 + 16 <= rows; r0 += 16) {
        for (c0 = 0; c0 + 16 <= cols; c0 += 16) {
            __m128i v[16];
            for (size_t i = 0; i < 16; i++)
                v[i] = _mm_loadu_si128((const __m128i *)(src + (r0 + i) * lds + c0));
            pq_i8_tr16x16__sse2(v);
            for (size_t i = 0; i < 16; i++)
                _mm_storeu_si128((__m128i *)(dst + (c0 + i) * ldd + r0), v[i]);
        }
        for (size_t c = c0; c < cols; c++)
            for (size_t r = r0; r < r0 + 16; r++)
                dst[c * ldd + r] = src[r * lds + c];
    }
    if (r0 < rows) { /* the last rows (< 16): missing ones read as zero, partial stores */
        size_t nr = rows - r0;
        for (c0 = 0; c0 + 16 <= cols; c0 += 16) {
            __m128i v[16];
            for (size_t i = 0; i < 16; i++)
                v[i] = i < nr ? _mm_loadu_si128((const __m128i *)(src + (r0 + i) * lds + c0))
                              : _mm_setzero_si128();
            pq_i8_tr16x16__sse2(v);
            for (size_t i = 0; i < 16; i++) {
                uint8_t *d = dst + (c0 + i) * ldd + r0;
                size_t r = 0;
                if (nr >= 8) { /* 8 bytes in one store, the rest one by one */
                    _mm_storel_epi64((__m128i *)d, v[i]);
                    v[i] = _mm_srli_si128(v[i], 8);
                    r = 8;
                }
                uint8_t t[16];
                _mm_storeu_si128((__m128i *)t, v[i]);
                for (size_t u = 0; r + u < nr; u++)
                    d[r + u] = t[u];
            }
        }
        for (size_t c = c0; c < cols; c++)
            for (size_t r = r0; r < rows; r++)
                dst[c * ldd + r] = src[r * lds + c];
        return;
    }
#endif
    for (size_t c = 0; c < cols; c++)
        for (size_t r = r0; r < rows; r++)
            dst[c * ldd + r] = src[r * lds + c];
}

/* Tasks [b, e): task t = ((image * group + gi) * tiles + tile) * mchunks + mc. */
static void pq_i8_conv_task(void *ctx, int64_t b, int64_t e) {
    pq_i8_conv_job *j = ctx;
    const pq_i8_kernels *k = j->k;
    const pq_i8_conv *g = j->g;
    /* chunks: every run, split at most once more per panel */
    size_t bytes[5] = {pq_i8_panels_bytes(k, j->CK, j->nc) + 64, (j->nc + 2) * sizeof(pq_i8_seg),
                       (2 * j->nc + 4) * sizeof(pq_i8_chunk), j->nc + 64,
                       j->swap ? j->nc * j->mblk : 0};
    void *buf[5], *owned;
    void *block = pq_i8_carve(PQ_I8_TLS_TASK, 5, bytes, buf, &owned);
    void *panels = buf[0];
    pq_i8_seg *seg = buf[1];
    pq_i8_chunk *ch = buf[2];
    uint8_t *ztail = buf[3], *yt = buf[4];
    if (!block) {
        atomic_store(&j->failed, 1);
        goto done;
    }
    memset(ztail, k->flip ? 0x80 : 0, j->nc + 64);
    int64_t packed = -1; /* tile whose panels are in the buffer */
    for (int64_t t = b; t < e; t++) {
        /* (64-bit divisions only by counts above one: a small layer is one tile of one task) */
        size_t mc = j->mchunks == 1 ? 0 : (size_t)t % j->mchunks;
        int64_t tile_id = j->mchunks == 1 ? t : t / (int64_t)j->mchunks;
        size_t tile = j->tiles == 1 ? 0 : (size_t)tile_id % j->tiles;
        int64_t ng = j->tiles == 1 ? tile_id : tile_id / (int64_t)j->tiles;
        int64_t n = g->group == 1 ? ng : ng / g->group, gi = g->group == 1 ? 0 : ng % g->group;
        const uint8_t *base = j->X + (size_t)(n * g->C + gi * g->Cg) * j->src->cstride;
        uint8_t *yg = j->Y + (n * g->M + gi * g->Mg) * (int64_t)j->OSP;
        size_t p0 = tile * j->nc, n_c = j->OSP - p0 < j->nc ? j->OSP - p0 : j->nc;
        /* positions as packed rows: a transpose of the input (raw-byte tables) */
        bool arows = j->swap && j->src->direct && k->elem == 1 && !k->flip;
        if (packed != tile_id) {
            if (arows) {
                pq_i8_transpose_k(k, base + p0, j->OSP, j->CK, n_c, panels, j->rb);
                for (size_t p = 0; p < n_c; p++)
                    memset((uint8_t *)panels + p * j->rb + j->CK, 0, j->rb - j->CK);
            } else {
                pq_i8_conv_pack(j, base, p0, n_c, seg, ch, ztail, panels);
            }
            packed = tile_id;
        }
        size_t r0 = (size_t)(gi * g->Mg) + mc * j->mblk, m0 = mc * j->mblk;
        size_t mrows = (size_t)g->Mg - m0 < j->mblk ? (size_t)g->Mg - m0 : j->mblk;
        if (j->swap) { /* group 1: channels [m0, m0 + mrows) as lanes, one weight panel at a time */
            size_t nr = (size_t)k->nr, pb = pq_i8_panels_bytes(k, j->CK, nr);
            /* one output position (a 1 x 1 map: squeeze-excite): [1][channel] is the NCHW row */
            bool one = j->OSP == 1;
            uint8_t *yo = one ? yg + m0 : yt;
            for (size_t c0 = 0; c0 < mrows; c0 += nr) {
                size_t nch = mrows - c0 < nr ? mrows - c0 : nr;
                pq_i8_epilogue ep = {.add_col = j->add + m0 + c0,
                                     .m_col = j->m + m0 + c0,
                                     .act = j->act,
                                     .zp_y = j->zp_y,
                                     .finite = j->finite};
                const uint8_t *wp = (const uint8_t *)j->rows + (m0 + c0) / nr * pb;
                if (arows)
                    pq_i8_gemm_packed(k, true, n_c, nch, j->CK, panels, wp, &ep, yo + c0, mrows);
                else
                    pq_i8_gemm_panel_rows(k, true, n_c, nch, j->CK, panels, wp, &ep, yo + c0,
                                          mrows);
            }
            /* [position][channel] -> NCHW */
            if (!one) pq_i8_transpose_k(k, yt, mrows, n_c, mrows, yg + m0 * j->OSP + p0, j->OSP);
            continue;
        }
        pq_i8_epilogue ep = {.add_row = j->add + r0,
                             .m_row = j->m + r0,
                             .act = j->act,
                             .zp_y = j->zp_y,
                             .finite = j->finite};
        pq_i8_gemm_packed(k, false, mrows, n_c, j->CK, (const uint8_t *)j->rows + r0 * j->rb,
                          panels, &ep, yg + m0 * j->OSP + p0, j->OSP);
    }
done:
    pq_free(owned);
}

int pq_i8_dwcq_off;

void pq_i8_dwc_force_f32(int on) {
    pq_i8_dwcq_off = on;
}

static int pq_i8_swap_forced = -1;

void pq_i8_conv_force_swap(int swap) {
    pq_i8_swap_forced = swap < 0 ? -1 : swap != 0;
}

/* The transpose of a swapped result into NCHW, per output byte, in multiply-adds of the depth:
 * measured per layer on mobilenet_v3_small (bench_int8 models, both orientations forced, minima
 * of 3 runs): its 1x1 layers of depth 48-96 on 14 x 14 / 7 x 7 maps ran 18-25% faster unswapped
 * although swapped they pad fewer multiply-adds (96 -> 576 on 7 x 7: 10.9 vs 13.2 us), those of
 * depth 288-576 faster swapped (576 -> 96: 5.4 vs 5.9 us): 48 fits both. */
#define PQ_I8_SWAP_TRANSPOSE_MACS 48.0

/* Whether a group-1 convolution of depth K costs less with its output positions as the broadcast
 * rows and the output channels as lanes (the packed tile read as rows, the weights as panels of
 * W^T, the [position][channel] result transposed into NCHW) than the other way round: positions
 * that do not fill the last panel of a tile (7 x 7 = 49 -> 64 lanes) are wasted there, channel
 * counts that are not a multiple of the lanes here, and the transpose is paid per output. */
static bool pq_i8_conv_swap(const pq_i8_kernels *k, const pq_i8_conv *g, size_t OSP, size_t nc,
                            size_t K) {
    if (g->group != 1) return false;
    if (pq_i8_swap_forced >= 0) return pq_i8_swap_forced == 1;
    size_t nr = (size_t)k->nr, mr = (size_t)k->mr, M = (size_t)g->M;
    size_t full = OSP / nc, last = OSP % nc;
    double lanes = (double)(full * nc) + (double)((last + nr - 1) / nr * nr);
    double normal = (double)((M + mr - 1) / mr * mr) * lanes * (double)K;
    double swapped = (double)OSP * (double)((M + nr - 1) / nr * nr) * (double)K +
                     (double)OSP * (double)M * PQ_I8_SWAP_TRANSPOSE_MACS;
    return swapped < normal;
}

/* The convolution geometry of node a for input X and weight W (NCHW / OIHW): UNSUPPORTED for
 * what the INT8 kernels do not take (transposed, malformed, negative pads). */
static enum pq_status pq_i8_conv_decode(const pq_kernel_args *a, const pq_tensor *X,
                                        const pq_tensor *Wt, pq_i8_conv *out) {
    pq_conv_geom geo;
    pq_error scratch;
    pq_error_clear(&scratch);
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
    if (g.OH <= 0 || g.OW <= 0 || g.pt < 0 || g.pl < 0 || g.pb < 0 || g.pr < 0 || g.sh < 1 ||
        g.sw < 1 || g.dh < 1 || g.dw < 1)
        return PQ_ERR_UNSUPPORTED;
    *out = g;
    return PQ_OK;
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
    /* the geometry, activation and multipliers of the last call, while shapes and scales match */
    const pq_tensor *sx = pq_i8_in(a, 1), *sw = pq_i8_in(a, 4), *sy = pq_i8_in(a, 6);
    pq_i8_conv_plan *plan = pq_i8_conv_plan_of(a);
    bool cached = pq_i8_conv_plan_matches(plan, X, Wt, sx, sw, sy);
    pq_i8_conv g;
    pq_i8_act act;
    bool has_act;
    if (cached) {
        g = plan->g;
        act = plan->act;
        has_act = plan->has_act;
    } else {
        enum pq_status gs = pq_i8_conv_decode(a, X, Wt, &g);
        if (gs != PQ_OK) return gs;
        if (!pq_i8_node_act(a->node, &act, &has_act)) return PQ_ERR_UNSUPPORTED;
    }
    if (Wt->dims[1] != g.Cg || Wt->dims[2] != g.KH || Wt->dims[3] != g.KW || Y->dims[0] != g.N ||
        Y->dims[1] != g.M || Y->dims[2] != g.OH || Y->dims[3] != g.OW)
        return PQ_ERR_UNSUPPORTED;
    int32_t zp_x, zp_y;
    if (!pq_i8_in(a, 2) || !pq_i8_zp_u8(pq_i8_in(a, 2), &zp_x) || !pq_i8_zp_zero(pq_i8_in(a, 5)) ||
        !pq_i8_in(a, 7) || !pq_i8_zp_u8(pq_i8_in(a, 7), &zp_y))
        return PQ_ERR_UNSUPPORTED;
    if (Bt && (Bt->dtype != PQ_DTYPE_I32 || pq_tensor_numel(Bt) != g.M || !Bt->data))
        return PQ_ERR_UNSUPPORTED;

    size_t M = (size_t)g.M, CK = (size_t)(g.Cg * g.KH * g.KW), OSP = (size_t)(g.OH * g.OW);
    if (!pq_i8_tiles_pay(k, (size_t)g.Mg, OSP, CK)) k = k->strided;
    size_t rb = pq_i8_row_bytes(k, CK), nr = (size_t)k->nr;
    bool depthwise = g.Cg == 1 && g.group > 1;
    if (depthwise && g.KH * g.KW > 256) return PQ_ERR_UNSUPPORTED;
    bool direct = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                  g.OH == g.H && g.OW == g.W;
    int th = a->n_threads > 1 ? a->n_threads : 1;
    /* column tile: a multiple of nr holding about PQ_I8_TILE_BYTES of packed panels */
    size_t nc = PQ_I8_TILE_BYTES / (rb ? rb : 1) / nr * nr;
    if (nc < nr) nc = nr;
    size_t osp_up = (OSP + nr - 1) / nr * nr;
    if (nc > osp_up) nc = osp_up;

    /* multipliers, corrections and tap offsets in this thread's call scratch */
    size_t cb[3] = {M * sizeof(float), M * sizeof(int32_t), CK * sizeof(size_t) + 1};
    void *cbuf[3], *call_owned, *planes_owned = NULL;
    uint8_t *planes = NULL;
    pq_i8_wpack *owned = NULL;
    enum pq_status st = PQ_OK;
    bool finite;
    if (!pq_i8_carve(PQ_I8_TLS_CALL, 3, cb, cbuf, &call_owned)) {
        st = pq_error_nomem(a->err, "QLinearConv buffers");
        goto done;
    }
    float *ms = cbuf[0];
    const float *m = ms; /* the plan's own when it is current */
    int32_t *add = cbuf[1];
    size_t *koff = cbuf[2];
    if (cached) {
        m = plan->m;
        finite = plan->finite;
    } else {
        if (!pq_i8_mults_act(sx, sw, sy, g.M, has_act ? &act : NULL, ms, &finite)) {
            st = PQ_ERR_UNSUPPORTED;
            goto done;
        }
        if (plan) /* on NOMEM the next call computes it again */
            (void)pq_i8_conv_plan_store(plan, X, Wt, sx, sw, sy, &g, &act, has_act, ms, finite);
    }
    const int32_t *bias = Bt ? (const int32_t *)Bt->data : NULL;
    if (depthwise) {
        pq_i8_dw_job dj = {.k = k,
                           .g = &g,
                           .X = X->data,
                           .Wt = Wt->data,
                           .bias = bias,
                           .m = m,
                           .act = has_act ? &act : NULL,
                           .finite = finite,
                           .zp_x = zp_x,
                           .zp_y = zp_y,
                           .Y = Y->data};
        atomic_init(&dj.failed, 0);
        int dth =
            pq_i8_threads(th, (double)M * (double)(g.KH * g.KW) * (double)OSP * (double)g.N, 5e5);
        if (k->dwc && g.Mg == 1 && finite) {
            pq_i8_dwc_job cj = {.k = k,
                                .g = &g,
                                .proto = {.act = has_act ? &act : NULL,
                                          .zp_x = zp_x,
                                          .zp_y = zp_y,
                                          .H = g.H,
                                          .W = g.W,
                                          .OH = g.OH,
                                          .OW = g.OW,
                                          .KH = g.KH,
                                          .KW = g.KW,
                                          .sh = g.sh,
                                          .sw = g.sw,
                                          .dh = g.dh,
                                          .dw = g.dw,
                                          .pt = g.pt,
                                          .pl = g.pl},
                                .X = X->data,
                                .Wt = Wt->data,
                                .bias = bias,
                                .m = m,
                                .Y = Y->data,
                                .blocks = (g.C + k->dwc_lanes - 1) / k->dwc_lanes};
            atomic_init(&cj.failed, 0);
            /* few channel blocks for the threads: split their output rows too */
            int64_t nbk = g.N * cj.blocks;
            cj.rchunks = dth == 1 || nbk >= 2 * dth ? 1 : (2 * dth + nbk - 1) / nbk;
            if (cj.rchunks > g.OH) cj.rchunks = g.OH;
            pq_parallel_for(dth, nbk * cj.rchunks, pq_i8_dwc_task, &cj);
            if (atomic_load(&cj.failed))
                st = pq_error_nomem(a->err, "QLinearConv depthwise buffers");
            goto done;
        }
        pq_parallel_for(dth, g.N * g.C, pq_i8_dw_task, &dj);
        if (atomic_load(&dj.failed)) st = pq_error_nomem(a->err, "QLinearConv depthwise buffers");
        goto done;
    }
#if defined(__x86_64__)
    /* a stem (few input channels, stride 2, pq_i8_stem_fits): tap quads from the input rows */
    if (!direct && finite && pq_i8_stem_fits(k, &g)) {
        pq_i8_stem s = {.g = &g,
                        .x = X->data,
                        .y = Y->data,
                        .w = Wt->data,
                        .bias = bias,
                        .m = m,
                        .act = has_act ? &act : NULL,
                        .zp_x = zp_x,
                        .zp_y = zp_y};
        pq_i8_stem_run(&s,
                       pq_i8_threads(th, (double)M * (double)CK * (double)OSP * (double)g.N, 2e6));
        goto done;
    }
#endif
    /* Weights packed once per session node (or per call); the zero-point correction
     * -zp_x * sum_k w[oc][k] is folded per output channel with the bias. */
    /* implicit GEMM on a channel-last copy (AMX): no tap packing per tile */
    if (!direct && finite && pq_i8_taps_fits(k, &g)) {
        size_t taps = (size_t)(g.KH * g.KW);
        const pq_i8_wpack *wt = pq_i8_weights(a, 3, k, M, CK, PQ_I8W_TAPS, zp_x, taps, &owned);
        if (!wt) {
            st = PQ_ERR_NOMEM;
            goto done;
        }
        pq_i8_add_terms(wt->corr, bias, M, add);
        pq_i8_taps_conv tc = {.k = k,
                              .g = &g,
                              .x = X->data,
                              .y = Y->data,
                              .panels = wt->data,
                              .add = add,
                              .m = m,
                              .act = has_act ? &act : NULL,
                              .zp_x = zp_x,
                              .zp_y = zp_y,
                              .threads = th};
        st = pq_i8_taps_conv_run(&tc, a->err);
        goto done;
    }
    /* a table that needs contiguous rows (AMX) swaps only when the positions are rows of the
     * input itself (a transposed copy); packed tiles read as rows would fall back to k->strided */
    bool swap = pq_i8_conv_swap(k, &g, OSP, nc, CK) && (direct || !k->strided);
    const pq_i8_wpack *w = swap ? pq_i8_weights(a, 3, k, CK, M, PQ_I8W_PANELS_T, zp_x, 1, &owned)
                                : pq_i8_weights(a, 3, k, M, CK, PQ_I8W_ROWS, zp_x, 1, &owned);
    if (!w) {
        st = PQ_ERR_NOMEM;
        goto done;
    }
    pq_i8_add_terms(w->corr, bias, M, add);
    /* planes of at most 64 bytes: the whole im2col gathered by byte permutes (int8_conv_small.c) */
    if (!swap && pq_i8_small_fits(k, &g)) {
        pq_i8_small_conv sc = {.k = k,
                               .x = X->data,
                               .y = Y->data,
                               .w = w->data,
                               .add = add,
                               .m = m,
                               .act = has_act ? &act : NULL,
                               .zp_x = zp_x,
                               .zp_y = zp_y,
                               .finite = finite};
        st = pq_i8_small_conv_node(plan, &g, &sc, th, a->err);
        goto done;
    }
    /* the tap rows */
    pq_i8_src src = {.direct = direct};
    if (direct) {
        src.cstride = (size_t)(g.H * g.W);
        src.ostride = 0;
        src.ow = OSP;
        for (size_t c = 0; c < CK; c++)
            koff[c] = c * src.cstride;
    } else {
        size_t sw = (size_t)g.sw;
        size_t wr = (size_t)((g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1); /* padded columns used */
        src.hr = (size_t)((g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1);
        src.wq = (wr + sw - 1) / sw;
        src.rstride = sw * src.wq;
        src.cstride = src.hr * src.rstride;
        src.ostride = (size_t)g.sh * src.rstride;
        src.ow = (size_t)g.OW;
        size_t KK = (size_t)(g.KH * g.KW);
        for (size_t kh = 0, kk = 0; kh < (size_t)g.KH; kh++) /* channel 0, then shifted copies */
            for (size_t kw = 0; kw < (size_t)g.KW; kw++, kk++) {
                size_t col = kw * (size_t)g.dw; /* (no 64-bit divisions for stride 1) */
                koff[kk] = kh * (size_t)g.dh * src.rstride +
                           (sw == 1 ? col : (col % sw) * src.wq + col / sw);
            }
        for (size_t c = 1; c < (size_t)g.Cg; c++)
            for (size_t kk = 0; kk < KK; kk++)
                koff[c * KK + kk] = koff[kk] + c * src.cstride;
        planes =
            pq_i8_scratch(PQ_I8_TLS_PLANES, (size_t)(g.N * g.C) * src.cstride + 64, &planes_owned);
        if (!planes) {
            st = pq_error_nomem(a->err, "QLinearConv padded input");
            goto done;
        }
        memset(planes + (size_t)(g.N * g.C) * src.cstride, 0, 64); /* slack read by the packer */
        atomic_int pfail;
        atomic_init(&pfail, 0);
        pq_i8_pad_job pj = {.g = &g,
                            .src = &src,
                            .X = X->data,
                            .planes = planes,
                            .zp = (uint8_t)zp_x,
                            .split2 = sw == 2 && (k->isa == PQ_I8_AVX512 || k->isa == PQ_I8_AMX) &&
                                      pq_cpu_has_avx512_vbmi(),
                            .failed = &pfail};
        int pth = pq_i8_threads(th, (double)(g.N * g.C) * (double)src.cstride, 2.5e5);
        pq_parallel_for(pth, g.N * g.C, pq_i8_pad_task, &pj);
        if (atomic_load(&pfail)) {
            st = pq_error_nomem(a->err, "QLinearConv padded row");
            goto done;
        }
    }
    src.koff = koff;
    /* Tiles of equal size (a multiple of the lanes, or of the rows when positions are rows: a
     * ragged last tile costs nothing there), one tile when positions are rows and it stays
     * within twice the target, so threads split the output channels instead of getting
     * unequal tiles. */
    size_t mr = (size_t)k->mr;
    if (swap) {
        size_t cap = PQ_I8_TILE_BYTES / (rb ? rb : 1) / mr * mr;
        if (cap < mr) cap = mr;
        if (OSP * rb <= 2 * (size_t)PQ_I8_TILE_BYTES) cap = OSP;
        size_t nt = (OSP + cap - 1) / cap;
        nc = ((OSP + nt - 1) / nt + mr - 1) / mr * mr;
    } else {
        size_t nt = (OSP + nc - 1) / nc;
        nc = ((OSP + nt - 1) / nt + nr - 1) / nr * nr;
    }
    size_t tiles = (OSP + nc - 1) / nc;
    int64_t tile_tasks = g.N * g.group * (int64_t)tiles;
    /* threads only pay off with enough work; few tiles for them: split each tile's channels too */
    th = pq_i8_threads(th, (double)M * (double)CK * (double)OSP * (double)g.N, 2e6);
    size_t mchunks = pq_i8_channel_chunks(th, tile_tasks);
    size_t mblk = ((size_t)g.Mg + mchunks - 1) / mchunks, mq = swap ? nr : mr;
    mblk = (mblk + mq - 1) / mq * mq;
    mchunks = ((size_t)g.Mg + mblk - 1) / mblk;
    pq_i8_conv_job j = {.k = k,
                        .g = &g,
                        .src = &src,
                        .X = direct ? (const uint8_t *)X->data : planes,
                        .Y = Y->data,
                        .rows = w->data,
                        .add = add,
                        .m = m,
                        .act = has_act ? &act : NULL,
                        .finite = finite,
                        .quads = pq_i8_quads_ok(k),
                        .swap = swap,
                        .zp_y = zp_y,
                        .CK = CK,
                        .OSP = OSP,
                        .rb = rb,
                        .nc = nc,
                        .tiles = tiles,
                        .mblk = mblk,
                        .mchunks = mchunks};
    atomic_init(&j.failed, 0);
    pq_parallel_for(th, tile_tasks * (int64_t)mchunks, pq_i8_conv_task, &j);
    if (atomic_load(&j.failed)) st = pq_error_nomem(a->err, "QLinearConv tile buffers");
done:
    pq_free(call_owned);
    pq_free(planes_owned);
    pq_i8_wpack_free(owned);
    return st;
}

enum pq_status pq_fast_int8_qlinear_conv(const pq_kernel_args *a) {
    return pq_i8_qlinear_conv_run(pq_i8_kernels_get(), a);
}

enum pq_status pq_fast_int8_qlinear_matmul(const pq_kernel_args *a) {
    return pq_i8_qlinear_matmul_run(pq_i8_kernels_get(), a);
}
