/* QLinearAdd / QLinearMul fast path (qlinear_eltwise.h): case checks, the broadcast split into
 * rows, threading, the scalar kernel and the choice of SIMD kernels (qlinear_eltwise_avx2.c,
 * _avx512.c; backends/arm/qlinear_eltwise_neon.c on aarch64). */
#include "qlinear_eltwise.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backends/cpu.h"
#include "backends/threadpool.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"

/* ---- scalar kernel ---- */

static void pq_qadd__scalar(const uint8_t *a, const uint8_t *b, size_t n, bool b_bcast,
                            const pq_qadd_params *p, uint8_t *y) {
    float qlo = p->is_u8 ? 0.0f : -128.0f, qhi = p->is_u8 ? 255.0f : 127.0f, zc = (float)p->zc;
    for (size_t i = 0; i < n; i++) {
        uint8_t ba = a[i], bb = b_bcast ? b[0] : b[i];
        int32_t ia = p->is_u8 ? (int32_t)ba : (int32_t)(int8_t)ba;
        int32_t ib = p->is_u8 ? (int32_t)bb : (int32_t)(int8_t)bb;
        float fa = (float)(ia - p->za) * p->sa;
        float fb = (float)(ib - p->zb) * p->sb;
        float r = p->mul ? fa * fb : fa + fb;
        r = r < p->lo ? p->lo : r;
        r = r > p->hi ? p->hi : r;
        float q = nearbyintf(r / p->sc) + zc;
        q = q < qlo ? qlo : (q > qhi ? qhi : q);
        y[i] = (uint8_t)(int32_t)q;
    }
}

void pq_qlut__portable(const uint8_t *a, size_t n, const uint8_t *lut, uint8_t *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = lut[a[i]];
}

const pq_qeltwise_kernels pq_qeltwise_kernels_scalar = {
    .name = "scalar", .add = pq_qadd__scalar, .map = pq_qlut__portable};

/* ---- selection ---- */

const pq_qeltwise_kernels *pq_qeltwise_kernels_for(const char *isa) {
    if (!isa) return NULL;
    if (!strcmp(isa, "scalar")) return &pq_qeltwise_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(isa, "avx2")) return pq_cpu_has_avx2() ? &pq_qeltwise_kernels_avx2 : NULL;
    if (!strcmp(isa, "avx512")) {
        if (!pq_cpu_has_avx512()) return NULL;
        return pq_cpu_has_avx512_vbmi() ? &pq_qeltwise_kernels_avx512vbmi
                                        : &pq_qeltwise_kernels_avx512;
    }
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon")) return &pq_qeltwise_kernels_neon;
#endif
    return NULL;
}

static const pq_qeltwise_kernels *pq_qeltwise_selected;
static pthread_once_t pq_qeltwise_once = PTHREAD_ONCE_INIT;

static void pq_qeltwise_select(void) {
    const char *f = pq_isa_forced();
    if (f && pq_qeltwise_kernels_for(f)) {
        pq_qeltwise_selected = pq_qeltwise_kernels_for(f);
        return;
    }
    if ((pq_qeltwise_selected = pq_qeltwise_kernels_for("avx512"))) return;
    if ((pq_qeltwise_selected = pq_qeltwise_kernels_for("avx2"))) return;
    if ((pq_qeltwise_selected = pq_qeltwise_kernels_for("neon"))) return;
    pq_qeltwise_selected = &pq_qeltwise_kernels_scalar;
}

const pq_qeltwise_kernels *pq_qeltwise_kernels_get(void) {
    pthread_once(&pq_qeltwise_once, pq_qeltwise_select);
    return pq_qeltwise_selected;
}

/* ---- node glue ---- */

/* A finite positive f32 scale with one element. */
static bool pq_qe_scale(const pq_tensor *s, float *v) {
    if (!s || s->dtype != PQ_DTYPE_F32 || !s->data || s->rank > 1 || pq_tensor_numel(s) != 1)
        return false;
    *v = *(const float *)s->data;
    /* bounded so that (q - z) * s and their sum stay finite (no inf - inf = NaN) */
    return *v >= 1e-30f && *v <= 1e30f;
}

/* Optional one-element zero point of dtype q (absent: 0). */
static bool pq_qe_zp(const pq_tensor *z, enum pq_dtype q, int32_t *zp) {
    if (!z) {
        *zp = 0;
        return true;
    }
    if (z->dtype != q || !z->data || z->rank > 1 || pq_tensor_numel(z) != 1) return false;
    *zp = q == PQ_DTYPE_U8 ? (int32_t) * (const uint8_t *)z->data
                           : (int32_t) * (const int8_t *)z->data;
    return true;
}

/* Whether X (broadcast to Y's shape) is the full tensor (*per_row false) or constant along Y's
 * trailing axes from some axis on, *inner elements per X element (*per_row true). */
static bool pq_qe_layout(const pq_tensor *X, const pq_tensor *Y, bool *per_row, int64_t *inner) {
    if (X->rank > Y->rank) return false;
    int off = Y->rank - X->rank;
    int split = Y->rank; /* first axis from which X has size 1 */
    while (split > 0 && (split - 1 < off || X->dims[split - 1 - off] == 1))
        split--;
    for (int k = 0; k < split; k++) /* X's missing leading axes broadcast only over size 1 */
        if (k < off ? Y->dims[k] != 1 : X->dims[k - off] != Y->dims[k]) return false;
    *inner = 1;
    for (int k = split; k < Y->rank; k++)
        *inner *= Y->dims[k];
    *per_row = *inner > 1;
    return true;
}

typedef struct pq_qadd_job {
    const pq_qeltwise_kernels *k;
    const uint8_t *a, *b;
    uint8_t *y;
    int64_t n, inner; /* inner == 0: a and b full; else b has one element per inner block of a */
    pq_qadd_params p;
} pq_qadd_job;

#define PQ_QE_CHUNK 16384 /* elements per task */

/* Elements [e0, e1) of a row broadcast with the arithmetic kernels. */
static void pq_qadd_span(const pq_qadd_job *j, int64_t e0, int64_t e1) {
    if (j->k->add_rows && j->inner >= 16) {
        j->k->add_rows(j->a + e0, j->b, (size_t)e0, (size_t)(e1 - e0), (size_t)j->inner, &j->p,
                       j->y + e0);
        return;
    }
    for (int64_t e = e0, r = e0 / j->inner; e < e1; r++) { /* no division per row */
        int64_t end = (r + 1) * j->inner < e1 ? (r + 1) * j->inner : e1;
        j->k->add(j->a + e, j->b + r, (size_t)(end - e), true, &j->p, j->y + e);
        e = end;
    }
}

static void pq_qadd_task(void *ctx, int64_t t0, int64_t t1) {
    const pq_qadd_job *j = ctx;
    int64_t e0 = t0 * PQ_QE_CHUNK, e1 = t1 * PQ_QE_CHUNK < j->n ? t1 * PQ_QE_CHUNK : j->n;
    if (!j->inner) {
        j->k->add(j->a + e0, j->b + e0, (size_t)(e1 - e0), false, &j->p, j->y + e0);
        return;
    }
    if (!j->k->map) {
        pq_qadd_span(j, e0, e1);
        return;
    }
    /* Runs of rows with the same B byte (one long row, or consecutive rows sharing a value) that
     * hold at least PQ_QE_LUT_MIN elements go through that byte's table; the rest (pending) through
     * the arithmetic, in as few calls as possible. */
    uint8_t iota[256], lut[256];
    for (int v = 0; v < 256; v++)
        iota[v] = (uint8_t)v;
    int64_t have = -1, pend = e0; /* the B byte lut holds; start of the arithmetic not yet done */
    for (int64_t e = e0, r = e0 / j->inner; e < e1;) { /* e in row r; rows advance by products */
        int64_t r2 = r + 1;
        uint8_t bv = j->b[r];
        while (r2 * j->inner < e1 && j->b[r2] == bv)
            r2++;
        int64_t end = r2 * j->inner < e1 ? r2 * j->inner : e1;
        if (end - e >= PQ_QE_LUT_MIN) {
            if (pend < e) pq_qadd_span(j, pend, e);
            if (have != bv) {
                j->k->add(iota, j->b + r, 256, true, &j->p, lut);
                have = bv;
            }
            j->k->map(j->a + e, (size_t)(end - e), lut, j->y + e);
            pend = end;
        }
        e = end;
        r = r2;
    }
    if (pend < e1) pq_qadd_span(j, pend, e1);
}

enum pq_status pq_qlinear_add_run(const pq_qeltwise_kernels *k, const pq_kernel_args *a) {
    if (!k) k = pq_qeltwise_kernels_get();
    if (a->n_in < 7 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = a->in[0], *B = a->in[3];
    pq_tensor *Y = a->out[0];
    if (!A || !B || !a->in[1] || !a->in[4] || !a->in[6]) return PQ_ERR_UNSUPPORTED;
    enum pq_dtype t = Y->dtype;
    if ((t != PQ_DTYPE_U8 && t != PQ_DTYPE_I8) || A->dtype != t || B->dtype != t || !A->data ||
        !B->data || !Y->data)
        return PQ_ERR_UNSUPPORTED;
    pq_qadd_params p = {.is_u8 = t == PQ_DTYPE_U8,
                        .mul = a->node->op == PQ_OP_QLINEAR_MUL,
                        .lo = -INFINITY,
                        .hi = INFINITY};
    if (!pq_qe_scale(a->in[1], &p.sa) || !pq_qe_scale(a->in[4], &p.sb) ||
        !pq_qe_scale(a->in[6], &p.sc) || !pq_qe_zp(a->in[2], t, &p.za) ||
        !pq_qe_zp(a->n_in > 5 ? a->in[5] : NULL, t, &p.zb) ||
        !pq_qe_zp(a->n_in > 7 ? a->in[7] : NULL, t, &p.zc))
        return PQ_ERR_UNSUPPORTED;
    pq_activation act;
    if (pq_node_activation(a->node, &act, NULL) != PQ_OK) return PQ_ERR_UNSUPPORTED;
    if (act.kind == PQ_ACT_RELU) {
        p.lo = 0.0f;
    } else if (act.kind == PQ_ACT_CLIP) {
        p.lo = act.alpha;
        p.hi = act.beta;
        if (!(p.lo <= p.hi)) return PQ_ERR_UNSUPPORTED; /* NaN or empty bounds */
    } else if (act.kind != PQ_ACT_NONE) {
        return PQ_ERR_UNSUPPORTED;
    }
    int64_t n = pq_tensor_numel(Y);
    if (n == 0) return PQ_OK;
    pq_qadd_job j = {.k = k, .y = Y->data, .n = n, .p = p};
    bool ra, rb;
    int64_t ia, ib;
    if (!pq_qe_layout(A, Y, &ra, &ia) || !pq_qe_layout(B, Y, &rb, &ib)) return PQ_ERR_UNSUPPORTED;
    bool fa = pq_tensor_numel(A) == n, fb = pq_tensor_numel(B) == n;
    if (fa && fb) {
        j.a = A->data;
        j.b = B->data;
    } else if (fa && (rb || pq_tensor_numel(B) == 1)) {
        j.a = A->data;
        j.b = B->data;
        j.inner = pq_tensor_numel(B) == 1 ? n : ib;
    } else if (fb && (ra || pq_tensor_numel(A) == 1)) { /* swap: f32 + and * commute exactly */
        j.a = B->data;
        j.b = A->data;
        j.inner = pq_tensor_numel(A) == 1 ? n : ia;
        j.p.sa = p.sb;
        j.p.sb = p.sa;
        j.p.za = p.zb;
        j.p.zb = p.za;
    } else {
        return PQ_ERR_UNSUPPORTED;
    }
    int64_t tasks = (n + PQ_QE_CHUNK - 1) / PQ_QE_CHUNK;
    /* threads only from 256K elements (a wake-up costs more than a small add) */
    pq_parallel_for(n < 262144 ? 1 : a->n_threads, tasks, pq_qadd_task, &j);
    return PQ_OK;
}

enum pq_status pq_fast_qlinear_add(const pq_kernel_args *a) {
    return pq_qlinear_add_run(NULL, a);
}

/* ---- QLinearGlobalAveragePool ---- */

typedef struct pq_qgap_job {
    int32_t (*sum)(const uint8_t *x, int64_t n, bool is_u8);
    const uint8_t *x;
    uint8_t *y;
    int64_t hw;
    float sx, sy, zy, qlo, qhi;
    int32_t zx;
    bool is_u8;
} pq_qgap_job;

/* The sum of n (<= 65536) u8 bytes, or of n s8 bytes (is_u8 false): the same integer either way
 * it is added up (psadbw sums of 16 bytes where SSE2 is there; s8 as u8 after ^0x80, minus 128 n).
 */
static int32_t pq_qgap_sum(const uint8_t *x, int64_t n, bool is_u8) {
    uint8_t bias = is_u8 ? 0 : 0x80;
    int64_t i = 0;
    int32_t t = 0;
#if defined(__SSE2__)
    __m128i acc = _mm_setzero_si128(), zero = _mm_setzero_si128(), vb = _mm_set1_epi8((char)bias);
    for (; i + 16 <= n; i += 16)
        acc = _mm_add_epi64(
            acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(x + i)), vb), zero));
    t = _mm_cvtsi128_si32(acc) + _mm_cvtsi128_si32(_mm_srli_si128(acc, 8));
#endif
    for (; i < n; i++)
        t += x[i] ^ bias;
    return is_u8 ? t : t - 128 * (int32_t)n;
}

/* Planes [b, e): the integer sums of up to 64 planes first, then their f32 epilogue in a loop of
 * independent lanes (the compiler vectorizes it; the same IEEE operations in the same order per
 * plane, so the same bytes), instead of one plane's two dependent divisions at a time. */
static void pq_qgap_task(void *ctx, int64_t b, int64_t e) {
    const pq_qgap_job *j = ctx;
    int32_t t[64];
    /* (locals: the byte stores could alias the job's fields and keep the loop scalar) */
    const float fhw = (float)j->hw, sx = j->sx, sy = j->sy, zy = j->zy, qlo = j->qlo, qhi = j->qhi;
    const int32_t corr = (int32_t)j->hw * j->zx;
    for (int64_t p0 = b; p0 < e; p0 += 64) {
        int n = e - p0 < 64 ? (int)(e - p0) : 64;
        for (int i = 0; i < n; i++)
            t[i] = j->sum(j->x + (p0 + i) * j->hw, j->hw, j->is_u8) - corr;
        uint8_t *y = j->y + p0;
        for (int i = 0; i < n; i++) {
            float r = ((float)t[i] * sx) / fhw;
            /* nearbyintf without the libm call: adding and taking away 1.5 * 2^23 rounds
             * |v| <= 2^22 to an integer, ties to even (the sum's ulp is 1); larger |v|
             * (infinities too) stay beyond 2^21 with their sign and clamp to the same end */
            float v = r / sy;
            float q = ((v + 12582912.0f) - 12582912.0f) + zy;
            q = q < qlo ? qlo : (q > qhi ? qhi : q);
            y[i] = (uint8_t)(int32_t)q;
        }
    }
}

enum pq_status pq_qlinear_gap_run(const pq_kernel_args *a) {
    if (a->n_in < 5 || a->n_out < 1 || !a->out[0]) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    if (!X || !X->data || !Y->data || X->rank < 3 || Y->dtype != X->dtype ||
        (X->dtype != PQ_DTYPE_U8 && X->dtype != PQ_DTYPE_I8) ||
        pq_node_attr_int(a->node, "channels_last", 0) != 0)
        return PQ_ERR_UNSUPPORTED;
    const pq_qeltwise_kernels *k = pq_qeltwise_kernels_get();
    pq_qgap_job j = {.sum = k->gap_sum ? k->gap_sum : pq_qgap_sum,
                     .x = X->data,
                     .y = Y->data,
                     .is_u8 = X->dtype == PQ_DTYPE_U8};
    int32_t zy;
    if (!pq_qe_scale(a->in[1], &j.sx) || !pq_qe_scale(a->in[3], &j.sy) ||
        !pq_qe_zp(a->in[2], X->dtype, &j.zx) || !pq_qe_zp(a->in[4], X->dtype, &zy))
        return PQ_ERR_UNSUPPORTED;
    j.zy = (float)zy;
    j.qlo = j.is_u8 ? 0.0f : -128.0f;
    j.qhi = j.is_u8 ? 255.0f : 127.0f;
    int64_t planes = X->dims[0] * X->dims[1];
    j.hw = 1;
    for (int i = 2; i < X->rank; i++)
        j.hw *= X->dims[i];
    if (pq_tensor_numel(Y) != planes || j.hw < 1 || j.hw > 65536) return PQ_ERR_UNSUPPORTED;
    if (planes == 0) return PQ_OK;
    int th = (double)planes * (double)j.hw < 262144.0 ? 1 : a->n_threads;
    pq_parallel_for(th, planes, pq_qgap_task, &j);
    return PQ_OK;
}

enum pq_status pq_fast_qlinear_gap(const pq_kernel_args *a) {
    return pq_qlinear_gap_run(a);
}
