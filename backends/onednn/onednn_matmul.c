/* f32 MatMul (numpy batching and broadcasting, 1-D operands) and Gemm (transA/transB through
 * strides, alpha as output scale, C as bias or as a pre-filled destination with a scaled sum
 * post-op) through oneDNN's matmul primitive, cached per shape + attributes + thread count; batch-1
 * Gemm with B transposed on piqc's own GEMV kernel (AVX-512). */
#include <stdlib.h>
#include <string.h>

#include "backends/eltwise_fast.h"
#include "backends/onednn/onednn_impl.h"
#include "backends/piqc_ops.h"
#include "backends/threadpool.h"
#include "ir/ir.h"

/* A cached matmul: primitive and the memory descriptors of its arguments; with packed weights
 * (constant B in a session) the layout oneDNN chose for them, the reorder into it and the
 * reordered copy, identified by wsig. */
typedef struct pq_mm_prim {
    pq_dnnl_prim mm;
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md;
    dnnl_memory_desc_t wei_user_md; /* B as the caller has it (packed weights only) */
    pq_dnnl_prim wei_reorder;       /* NULL prim: B is used as it is */
    void *packed;
    size_t wei_bytes;
    pq_dnnl_wsig wsig;
    /* memory objects of the matmul and the weights reorder, used only when the primitive is a
     * session node's own (the process-wide cache shares primitives between threads) */
    pq_dnnl_mems m_mm, m_wei;
} pq_mm_prim;

static void pq_mm_prim_destroy(void *v) {
    pq_mm_prim *p = v;
    if (!p) return;
    pq_dnnl_prim_destroy(&p->mm);
    pq_dnnl_prim_destroy(&p->wei_reorder);
    pq_dnnl_mems_free(&p->m_mm);
    pq_dnnl_mems_free(&p->m_wei);
    pq_free(p->packed);
    pq_free(p);
}

/* Everything a matmul primitive is made of (the cache key is derived from it). */
typedef struct pq_mm_spec {
    int nd;
    dnnl_dims_t sd, ss, wd, ws, dd; /* dims and strides of src/weights, dims of dst */
    int bias_nd;                    /* 0 = no bias */
    dnnl_dims_t bd;
    float alpha; /* output scale (1: none) */
    bool sum;    /* accumulate into dst scaled by beta */
    float beta;
    pq_activation act; /* fused activation as post-ops (PQ_ACT_NONE: none or epilogue) */
    bool pack_w;       /* B is a constant: let oneDNN choose its layout, reorder it once */
} pq_mm_spec;

static int64_t pq_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void pq_mm_key(const pq_mm_spec *s, int n_threads, pq_dnnl_key *k) {
    pq_dnnl_key_init(k, 0x3A);
    pq_dnnl_key_push(k, s->nd);
    for (int i = 0; i < s->nd; i++) {
        pq_dnnl_key_push(k, s->sd[i]);
        pq_dnnl_key_push(k, s->ss[i]);
        pq_dnnl_key_push(k, s->wd[i]);
        pq_dnnl_key_push(k, s->ws[i]);
    }
    pq_dnnl_key_push(k, s->bias_nd);
    for (int i = 0; i < s->bias_nd; i++)
        pq_dnnl_key_push(k, s->bd[i]);
    pq_dnnl_key_push(k, pq_f32_bits(s->alpha));
    pq_dnnl_key_push(k, s->sum);
    pq_dnnl_key_push(k, pq_f32_bits(s->beta));
    pq_dnnl_key_push(k, n_threads);
    pq_dnnl_act_key(k, &s->act);
    pq_dnnl_key_push(k, s->pack_w);
}

/* Plain row-major strides of dims[0..nd). */
static void pq_mm_dense(int nd, const dnnl_dims_t d, dnnl_dims_t s) {
    int64_t acc = 1;
    for (int i = nd - 1; i >= 0; i--) {
        s[i] = acc;
        acc *= d[i];
    }
}

static enum pq_status pq_mm_prim_create(void *ctx, void **val, pq_error *err) {
    const pq_mm_spec *s = ctx;
    *val = NULL;
    pq_mm_prim *p = pq_calloc(1, sizeof *p);
    if (!p) return pq_error_nomem(err, "onednn matmul primitive");
    dnnl_dims_t ds;
    pq_mm_dense(s->nd, s->dd, ds);
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    bool ok = false;
    if (dnnl_memory_desc_init_by_strides(&p->src_md, s->nd, s->sd, dnnl_f32, s->ss) ||
        dnnl_memory_desc_init_by_strides(&p->wei_user_md, s->nd, s->wd, dnnl_f32, s->ws) ||
        dnnl_memory_desc_init_by_strides(&p->dst_md, s->nd, s->dd, dnnl_f32, ds))
        goto done;
    p->wei_md = p->wei_user_md;
    if (s->pack_w &&
        dnnl_memory_desc_init_by_tag(&p->wei_md, s->nd, s->wd, dnnl_f32, dnnl_format_tag_any))
        goto done;
    if (s->bias_nd) {
        dnnl_dims_t bs;
        pq_mm_dense(s->bias_nd, s->bd, bs);
        if (dnnl_memory_desc_init_by_strides(&p->bias_md, s->bias_nd, s->bd, dnnl_f32, bs))
            goto done;
    }
    if (dnnl_matmul_desc_init(&md, &p->src_md, &p->wei_md, s->bias_nd ? &p->bias_md : NULL,
                              &p->dst_md) ||
        dnnl_primitive_attr_create(&attr))
        goto done;
    if (s->alpha != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s->alpha)) goto done;
    if ((s->sum || s->act.kind != PQ_ACT_NONE) &&
        (dnnl_post_ops_create(&po) || (s->sum && dnnl_post_ops_append_sum(po, s->beta)) ||
         !pq_dnnl_act_append(po, &s->act) || dnnl_primitive_attr_set_post_ops(attr, po)))
        goto done;
    ok = pq_dnnl_prim_create(&md, attr, &p->mm, s->pack_w ? &pd : NULL);
    if (ok && s->pack_w) { /* the layout chosen for B, and the reorder into it */
        const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        ok = w != NULL;
        if (ok) p->wei_md = *w;
        if (ok && !dnnl_memory_desc_equal(&p->wei_md, &p->wei_user_md)) {
            p->wei_bytes = dnnl_memory_desc_get_size(&p->wei_md);
            p->packed = pq_malloc_aligned(p->wei_bytes);
            ok = p->packed && pq_dnnl_reorder_create(&p->wei_user_md, &p->wei_md, &p->wei_reorder);
        }
    }
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        pq_mm_prim_destroy(p);
        return PQ_OK; /* NULL value: oneDNN rejects this case (cached so it is not retried) */
    }
    *val = p;
    return PQ_OK;
}

static pq_dnnl_cache pq_mm_cache = PQ_DNNL_CACHE_INIT(64, pq_mm_prim_destroy);

void pq_onednn_matmul_cache_clear(void) {
    pq_dnnl_cache_drop(&pq_mm_cache);
}

/* Looks up or creates the primitive of s and runs it; UNSUPPORTED (nothing touched) when oneDNN
 * rejects the case. prefill, when set, is called right before execution (after which the kernel
 * is committed to the output). */
static enum pq_status pq_mm_run(const pq_kernel_args *a, const pq_mm_spec *s, const void *A,
                                const void *B, const void *bias, void *Y,
                                void (*prefill)(const pq_kernel_args *a), const char *what) {
    int64_t macs = s->sd[s->nd - 1];
    for (int i = 0; i < s->nd; i++)
        macs *= s->dd[i];
    int nt = pq_dnnl_threads_for(a->n_threads, macs);
    pq_dnnl_set_threads(nt);
    pq_onednn_cache *c = pq_dnnl_current();
    /* a constant B in a session: packed once into the layout oneDNN prefers */
    pq_mm_spec sp = *s;
    sp.pack_w = c && a->node && s->nd == 2 && pq_dnnl_is_constant(a, 1);
    s = &sp;
    pq_dnnl_key k;
    pq_mm_key(s, nt, &k);
    pq_dnnl_entry *e = NULL;
    const pq_mm_prim *p;
    pq_dnnl_mems *m_mm = NULL, *m_wei = NULL; /* the node's own memory objects (session) */
    void *scratch = NULL;
    enum pq_status st;
    if (c && a->node) {
        /* session cache: the node's own primitive, rebuilt when the key changes */
        pq_dnnl_node *ne = pq_dnnl_node_get(c, a->node, a->err);
        if (!ne) return PQ_ERR_NOMEM;
        if (!ne->destroy || !pq_dnnl_key_eq(&ne->key, &k)) {
            pq_dnnl_node_reset(ne);
            void *v = NULL;
            PQ_TRY(pq_mm_prim_create((void *)s, &v, a->err));
            ne->val = v;
            ne->destroy = pq_mm_prim_destroy;
            ne->key = k;
            pq_dnnl_count(false);
        } else {
            pq_dnnl_count(true);
        }
        p = ne->val;
        if (!p) return PQ_ERR_UNSUPPORTED;
        m_mm = &((pq_mm_prim *)ne->val)->m_mm;
        m_wei = &((pq_mm_prim *)ne->val)->m_wei;
        size_t sb = p->mm.scratch_bytes > p->wei_reorder.scratch_bytes
                        ? p->mm.scratch_bytes
                        : p->wei_reorder.scratch_bytes;
        if (sb && !(scratch = pq_dnnl_work(c, PQ_DNNL_WORK_SCRATCH, sb, a->err)))
            return PQ_ERR_NOMEM;
    } else {
        st =
            pq_dnnl_cache_acquire(&pq_mm_cache, &k, NULL, pq_mm_prim_create, (void *)s, &e, a->err);
        if (st != PQ_OK) return st;
        p = e->val;
        if (!p) {
            pq_dnnl_cache_release(&pq_mm_cache, e);
            return PQ_ERR_UNSUPPORTED;
        }
    }
    if (p->wei_reorder.prim) {
        const pq_tensor *W = a->in[1];
        if (!pq_dnnl_wsig_same(&p->wsig, W->data, W->nbytes)) {
            memset(&((pq_mm_prim *)p)->wsig, 0, sizeof p->wsig);
            pq_dnnl_arg wa[2] = {{DNNL_ARG_FROM, &p->wei_user_md, (void *)B},
                                 {DNNL_ARG_TO, &p->wei_md, p->packed}};
            st = pq_dnnl_execute_mems(&p->wei_reorder, m_wei, wa, 2, scratch,
                                      "matmul weights reorder", a->err);
            if (st != PQ_OK) {
                pq_dnnl_cache_release(&pq_mm_cache, e);
                return st;
            }
            pq_dnnl_wsig_take(&((pq_mm_prim *)p)->wsig, W->data, W->nbytes);
        }
        B = p->packed;
    }
    if (prefill) prefill(a);
    pq_dnnl_arg args[4] = {{DNNL_ARG_SRC, &p->src_md, (void *)A},
                           {DNNL_ARG_WEIGHTS, &p->wei_md, (void *)B},
                           {DNNL_ARG_DST, &p->dst_md, Y},
                           {DNNL_ARG_BIAS, &p->bias_md, (void *)bias}};
    st = pq_dnnl_execute_mems(&p->mm, m_mm, args, bias ? 4 : 3, scratch, what, a->err);
    pq_dnnl_cache_release(&pq_mm_cache, e);
    return st;
}

static bool pq_mm_f32(const pq_tensor *t) {
    return t && t->dtype == PQ_DTYPE_F32 && t->data && pq_tensor_numel(t) > 0;
}

/* ---- MatMul ---- */

enum pq_status pq_onednn_matmul(const pq_kernel_args *a) {
    if (a->n_in < 2 || a->n_out < 1) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = a->in[0], *B = a->in[1];
    pq_tensor *Y = a->out[0];
    if (!pq_mm_f32(A) || !pq_mm_f32(B) || !pq_mm_f32(Y) || !pq_dnnl_get(NULL, NULL))
        return PQ_ERR_UNSUPPORTED;
    /* promote 1-D operands: A [K] -> [1, K], B [K] -> [K, 1] (same memory) */
    int64_t ad[PQ_MAX_RANK + 1], bd[PQ_MAX_RANK + 1];
    int ra = A->rank, rb = B->rank;
    if (ra < 1 || rb < 1 || ra > PQ_MAX_RANK || rb > PQ_MAX_RANK) return PQ_ERR_UNSUPPORTED;
    if (ra == 1) {
        ad[0] = 1;
        ad[1] = A->dims[0];
        ra = 2;
    } else {
        memcpy(ad, A->dims, (size_t)ra * sizeof ad[0]);
    }
    if (rb == 1) {
        bd[0] = B->dims[0];
        bd[1] = 1;
        rb = 2;
    } else {
        memcpy(bd, B->dims, (size_t)rb * sizeof bd[0]);
    }
    int64_t M = ad[ra - 2], K = ad[ra - 1], N = bd[rb - 1];
    if (bd[rb - 2] != K) return PQ_ERR_UNSUPPORTED;
    int nb = (ra > rb ? ra : rb) - 2;
    if (nb + 2 > DNNL_MAX_NDIMS) return PQ_ERR_UNSUPPORTED;
    int64_t ab[PQ_MAX_RANK], bb[PQ_MAX_RANK], yb = 1, abn = 1, bbn = 1;
    for (int i = 0; i < nb; i++) {
        int ia = i - (nb - (ra - 2)), ib = i - (nb - (rb - 2));
        ab[i] = ia >= 0 ? ad[ia] : 1;
        bb[i] = ib >= 0 ? bd[ib] : 1;
        if (ab[i] != bb[i] && ab[i] != 1 && bb[i] != 1) return PQ_ERR_UNSUPPORTED;
        yb *= ab[i] > bb[i] ? ab[i] : bb[i];
        abn *= ab[i];
        bbn *= bb[i];
    }
    if (pq_tensor_numel(Y) != yb * M * N || pq_dnnl_too_small(yb * M * N * K))
        return PQ_ERR_UNSUPPORTED;
    pq_mm_spec s;
    memset(&s, 0, sizeof s);
    s.alpha = 1.0f;
    if (bbn == 1 && abn == yb) {
        /* B shared by every batch of A: one [batch * M, K] x [K, N] product */
        s.nd = 2;
        s.sd[0] = abn * M;
        s.sd[1] = K;
        s.wd[0] = K;
        s.wd[1] = N;
        s.dd[0] = abn * M;
        s.dd[1] = N;
    } else {
        s.nd = nb + 2;
        for (int i = 0; i < nb; i++) {
            s.sd[i] = ab[i];
            s.wd[i] = bb[i];
            s.dd[i] = ab[i] > bb[i] ? ab[i] : bb[i];
        }
        s.sd[nb] = M;
        s.sd[nb + 1] = K;
        s.wd[nb] = K;
        s.wd[nb + 1] = N;
        s.dd[nb] = M;
        s.dd[nb + 1] = N;
    }
    pq_mm_dense(s.nd, s.sd, s.ss);
    pq_mm_dense(s.nd, s.wd, s.ws);
    bool po = pq_dnnl_act_get(a->node, &s.act);
    if (!po) s.act.kind = PQ_ACT_NONE;
    enum pq_status st = pq_mm_run(a, &s, A->data, B->data, NULL, Y->data, NULL, "matmul");
    /* fused activation: post-ops, or the reference epilogue on the output (onednn.h) */
    return st == PQ_OK && !po ? pq_act_epilogue(a->node, Y, a->err) : st;
}

/* ---- Gemm ---- */

/* Writes C broadcast to [M, N] into Y (the sum post-op then adds beta * Y). */
static void pq_gemm_prefill(const pq_kernel_args *a) {
    const pq_tensor *C = a->in[2];
    pq_tensor *Y = a->out[0];
    int64_t M = Y->dims[0], N = Y->dims[1];
    int64_t cm = C->rank == 2 ? C->dims[0] : 1, cn = C->rank >= 1 ? C->dims[C->rank - 1] : 1;
    int64_t sm = cm == 1 ? 0 : cn;
    const float *pc = C->data;
    float *py = Y->data;
    for (int64_t i = 0; i < M; i++) {
        const float *ci = pc + i * sm;
        float *yi = py + i * N;
        if (cn == N)
            memcpy(yi, ci, (size_t)N * sizeof(float));
        else
            for (int64_t j = 0; j < N; j++)
                yi[j] = ci[0];
    }
}

/* ---- Gemm at batch 1: piqc's own GEMV ---- */

/* Whether batch-1 Gemms with B transposed ([N, K] rows, as exported from Linear layers) run on the
 * eltwise table's gemv_rows kernel instead of oneDNN's matmul (PIQC_ONEDNN_GEMV=0: never). A
 * batch-1 product only streams B once, so memory decides: four rows read side by side (four
 * sequential streams) beat the matmul on its packed BA16a64b copy when B comes from DRAM
 * (1 x 1280 x 1000, 16 rotating copies of B: 256 vs 322 us; 1 x 960 x 1280: 257 vs 284 us), and
 * B is read where it is, no packed copy. */
static bool pq_gemv_wanted(void) {
    static _Atomic int mode = -1;
    return pq_dnnl_env_switch(&mode, "PIQC_ONEDNN_GEMV", "0");
}

typedef struct pq_gemv_job {
    void (*fn)(const float *, const float *, int64_t, int64_t, float *);
    const float *x, *w;
    int64_t k, n;
    float *y;
} pq_gemv_job;

#define PQ_GEMV_ROWS 64 /* rows of B per task */

static void pq_gemv_chunk(void *ctx, int64_t begin, int64_t end) {
    const pq_gemv_job *j = ctx;
    int64_t r0 = begin * PQ_GEMV_ROWS, r1 = end * PQ_GEMV_ROWS;
    if (r1 > j->n) r1 = j->n;
    j->fn(j->x, j->w + r0 * j->k, j->k, r1 - r0, j->y + r0);
}

/* Y [1, N] = A [1, K] x B^T + C (C: NULL, [N] / [1, N], or one value), then the node's fused
 * activation as the reference epilogue. UNSUPPORTED (nothing written) without the kernel. */
static enum pq_status pq_gemm_gemv(const pq_kernel_args *a, const float *A, const float *B,
                                   const float *C, int64_t cn, int64_t N, int64_t K, float *Y) {
    pq_gemv_job j = {pq_eltwise_kernels_get()->gemv_rows, A, B, K, N, Y};
    if (!j.fn) return PQ_ERR_UNSUPPORTED;
    int nt = pq_dnnl_threads_for(a->n_threads, N * K);
    pq_parallel_for(nt, (N + PQ_GEMV_ROWS - 1) / PQ_GEMV_ROWS, pq_gemv_chunk, &j);
    if (C)
        for (int64_t n = 0; n < N; n++)
            Y[n] += C[cn == 1 ? 0 : n];
    return pq_act_epilogue(a->node, a->out[0], a->err);
}

enum pq_status pq_onednn_gemm(const pq_kernel_args *a) {
    if (a->n_in < 2 || a->n_out < 1) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *A = a->in[0], *B = a->in[1];
    const pq_tensor *C = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    if (!pq_mm_f32(A) || !pq_mm_f32(B) || !pq_mm_f32(Y) || A->rank != 2 || B->rank != 2 ||
        Y->rank != 2 || !pq_dnnl_get(NULL, NULL))
        return PQ_ERR_UNSUPPORTED;
    bool ta = pq_node_attr_int(a->node, "transA", 0) != 0;
    bool tb = pq_node_attr_int(a->node, "transB", 0) != 0;
    float alpha = pq_node_attr_float(a->node, "alpha", 1.0f);
    float beta = pq_node_attr_float(a->node, "beta", 1.0f);
    int64_t M = ta ? A->dims[1] : A->dims[0], K = ta ? A->dims[0] : A->dims[1];
    int64_t N = tb ? B->dims[0] : B->dims[1];
    if ((tb ? B->dims[1] : B->dims[0]) != K || Y->dims[0] != M || Y->dims[1] != N ||
        pq_dnnl_too_small(M * N * K))
        return PQ_ERR_UNSUPPORTED;
    if (beta == 0.0f) C = NULL; /* like the reference: C is not read at all */
    int64_t cm = 1, cn = 1;
    if (C) {
        if (!pq_mm_f32(C) || C->rank > 2) return PQ_ERR_UNSUPPORTED;
        cm = C->rank == 2 ? C->dims[0] : 1;
        cn = C->rank >= 1 ? C->dims[C->rank - 1] : 1;
        if ((cm != 1 && cm != M) || (cn != 1 && cn != N)) return PQ_ERR_UNSUPPORTED;
    }
    if (M == 1 && !ta && tb && alpha == 1.0f && (!C || (beta == 1.0f && cm == 1)) &&
        pq_gemv_wanted()) {
        enum pq_status st =
            pq_gemm_gemv(a, A->data, B->data, C ? C->data : NULL, cn, N, K, Y->data);
        if (st != PQ_ERR_UNSUPPORTED) return st;
    }
    pq_mm_spec s;
    memset(&s, 0, sizeof s);
    s.nd = 2;
    s.sd[0] = M;
    s.sd[1] = K;
    s.ss[0] = ta ? 1 : K;
    s.ss[1] = ta ? M : 1;
    s.wd[0] = K;
    s.wd[1] = N;
    s.ws[0] = tb ? 1 : N;
    s.ws[1] = tb ? K : 1;
    s.dd[0] = M;
    s.dd[1] = N;
    s.alpha = alpha;
    s.beta = 0.0f;
    const void *bias = NULL;
    void (*prefill)(const pq_kernel_args *) = NULL;
    if (C && beta == 1.0f && alpha == 1.0f) {
        /* C is a (broadcast) bias of the product */
        s.bias_nd = 2;
        s.bd[0] = cm;
        s.bd[1] = cn;
        bias = C->data;
    } else if (C) {
        s.sum = true;
        s.beta = beta;
        prefill = pq_gemm_prefill;
    }
    bool po = pq_dnnl_act_get(a->node, &s.act);
    if (!po) s.act.kind = PQ_ACT_NONE;
    enum pq_status st = pq_mm_run(a, &s, A->data, B->data, bias, Y->data, prefill, "gemm");
    /* fused activation: post-ops, or the reference epilogue on the output */
    return st == PQ_OK && !po ? pq_act_epilogue(a->node, Y, a->err) : st;
}
