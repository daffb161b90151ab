/* f32 Conv (1-D/2-D/3-D, groups, strides, dilations, pads, auto_pad, bias) through oneDNN's
 * convolution primitive: plain NC[D]HW activations reordered to and from the blocked layout oneDNN
 * picks, weights reordered once and cached. Primitives are cached per shape + attributes + threads.
 * piqc's ConvAdd (Conv + addend s) is the same primitive with a sum post-op: the destination holds
 * s before the call (copied, or the addend's kept blocked buffer taken over when it is done). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/eltwise_fast.h"
#include "backends/onednn/onednn_impl.h"
#include "backends/piqc_ops.h"
#include "backends/threadpool.h"
#include "ir/ir.h"

/* Geometry of one Conv node, in ONNX terms (d = ONNX dilation, >= 1). */
typedef struct pq_conv_geo {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
    bool bias;
    bool sum;          /* ConvAdd: dst += conv result (sum post-op before the activation) */
    bool blocked;      /* let oneDNN choose blocked activation layouts (reordered in and out) */
    bool winograd;     /* try oneDNN's Winograd algorithm first (pq_conv_winograd_fits) */
    pq_activation act; /* fused activation run as post-ops (PQ_ACT_NONE: none or epilogue) */
    int threads;       /* oneDNN's threads for it (pq_dnnl_threads_for) */
} pq_conv_geo;

/* Reads ints attribute name (n values expected) into v, default def; false when malformed. */
static bool pq_conv_ints(const pq_node *node, const char *name, int n, int64_t def, int64_t *v) {
    const pq_attr *at = pq_node_attr(node, name);
    for (int i = 0; i < n; i++)
        v[i] = def;
    if (!at) return true;
    if (at->type != PQ_ATTR_INTS || at->u.ints.n != (uint32_t)n) return false;
    for (int i = 0; i < n; i++)
        v[i] = at->u.ints.v[i];
    return true;
}

/* The attributes of a Conv / ConvAdd node for nsp spatial dims, decoded. */
#define PQ_CONV_ATTRS_MAX 12
typedef struct pq_conv_attrs {
    /* what they were decoded from: a copy of the node's attribute array (the pq_node_set_*
     * functions give a changed attribute a new value or a new array / string pointer, so any
     * change through them shows in these bytes) and nsp; n_attrs > PQ_CONV_ATTRS_MAX: no copy */
    pq_attr attrs[PQ_CONV_ATTRS_MAX];
    uint32_t n_attrs;
    int nsp;
    bool ok; /* false: malformed ints, or an auto_pad this kernel does not know */
    int64_t group, s[3], d[3], pads[6];
    enum { PQ_CONV_PAD_NOTSET, PQ_CONV_PAD_VALID, PQ_CONV_PAD_SAME_U, PQ_CONV_PAD_SAME_L } auto_pad;
    bool act_post;     /* pq_dnnl_act_get's result for the node, with act */
    pq_activation act; /* (kind PQ_ACT_NONE when act_post is false) */
} pq_conv_attrs;

static void pq_conv_attrs_decode(const pq_node *node, int nsp, pq_conv_attrs *at) {
    memset(at, 0, sizeof *at);
    at->n_attrs = node ? node->n_attrs : 0;
    if (at->n_attrs && at->n_attrs <= PQ_CONV_ATTRS_MAX)
        memcpy(at->attrs, node->attrs, at->n_attrs * sizeof(pq_attr));
    at->nsp = nsp;
    at->group = pq_node_attr_int(node, "group", 1);
    const char *ap = pq_node_attr_string(node, "auto_pad", "NOTSET");
    at->auto_pad = !strcmp(ap, "SAME_UPPER")   ? PQ_CONV_PAD_SAME_U
                   : !strcmp(ap, "SAME_LOWER") ? PQ_CONV_PAD_SAME_L
                   : !strcmp(ap, "VALID")      ? PQ_CONV_PAD_VALID
                                               : PQ_CONV_PAD_NOTSET;
    at->ok = (at->auto_pad != PQ_CONV_PAD_NOTSET || !strcmp(ap, "NOTSET")) && nsp >= 1 &&
             nsp <= 3 && pq_conv_ints(node, "strides", nsp, 1, at->s) &&
             pq_conv_ints(node, "dilations", nsp, 1, at->d) &&
             pq_conv_ints(node, "pads", 2 * nsp, 0, at->pads);
    pq_activation act;
    at->act.kind = PQ_ACT_NONE;
    at->act_post = pq_dnnl_act_get(node, &act);
    if (at->act_post) at->act = act;
}

static void pq_conv_attrs_free(void *v) {
    pq_free(v);
}

/* The decoded attributes of a->node for nsp spatial dims: in a session, decoded on the node's
 * first call and kept in its second cache entry (pq_dnnl_node_aux), decoded again when nsp or
 * the bytes of the node's attribute array change (an attribute set again with pq_node_set_*;
 * nodes with more than PQ_CONV_ATTRS_MAX attributes are decoded on every call); otherwise
 * decoded into *tmp. */
static const pq_conv_attrs *pq_conv_attrs_get(const pq_kernel_args *a, int nsp,
                                              pq_conv_attrs *tmp) {
    pq_onednn_cache *c = pq_dnnl_current();
    pq_dnnl_node *e = NULL;
    if (c && a->node) {
        pq_error scratch;
        pq_error_clear(&scratch);
        e = pq_dnnl_node_aux(c, a->node, &scratch);
    }
    if (e && e->val) {
        const pq_conv_attrs *at = e->val;
        if (at->nsp == nsp && at->n_attrs == a->node->n_attrs && at->n_attrs <= PQ_CONV_ATTRS_MAX &&
            !memcmp(at->attrs, a->node->attrs, at->n_attrs * sizeof(pq_attr)))
            return at;
    }
    pq_conv_attrs_decode(a->node, nsp, tmp);
    if (!e || tmp->n_attrs > PQ_CONV_ATTRS_MAX) return tmp;
    if (!e->val) {
        pq_dnnl_node_reset(e);
        if (!(e->val = pq_malloc(sizeof *tmp))) return tmp;
        e->destroy = pq_conv_attrs_free;
    }
    memcpy(e->val, tmp, sizeof *tmp);
    return e->val;
}

/* Fills g from the node's decoded attributes at and its tensors; false for anything this kernel
 * does not handle. */
static bool pq_conv_geometry(const pq_kernel_args *a, const pq_conv_attrs *at, pq_conv_geo *g) {
    if (a->n_in < 2 || a->n_out < 1) return false;
    const pq_tensor *X = a->in[0], *W = a->in[1], *B = a->n_in > 2 ? a->in[2] : NULL;
    const pq_tensor *Y = a->out[0];
    if (!X || !W || !Y || !Y->data) return false;
    bool sum = a->node && a->node->op == PQ_OP_CONV_ADD;
    if (sum) { /* ConvAdd(x, w, bias, s): s f32 of the result's size, not the result itself */
        const pq_tensor *S = a->n_in == 4 ? a->in[3] : NULL;
        if (!B || !S || !S->data || S->dtype != PQ_DTYPE_F32 || S->data == Y->data ||
            S->nbytes != Y->nbytes || pq_tensor_numel(S) != pq_tensor_numel(Y))
            return false;
    }
    if (X->dtype != PQ_DTYPE_F32 || W->dtype != PQ_DTYPE_F32 || Y->dtype != PQ_DTYPE_F32)
        return false;
    if (B && (B->dtype != PQ_DTYPE_F32 || B->rank != 1)) return false;
    if (X->rank < 3 || X->rank > 5 || W->rank != X->rank || Y->rank != X->rank) return false;
    if (pq_tensor_numel(X) == 0 || pq_tensor_numel(W) == 0 || pq_tensor_numel(Y) == 0) return false;
    memset(g, 0, sizeof *g);
    g->nsp = X->rank - 2;
    g->n = X->dims[0];
    g->c = X->dims[1];
    g->m = W->dims[0];
    if (!at->ok || at->nsp != g->nsp) return false;
    g->group = at->group;
    g->bias = B != NULL;
    g->sum = sum;
    if (g->group < 1 || g->c % g->group || g->m % g->group || W->dims[1] != g->c / g->group ||
        Y->dims[0] != g->n || Y->dims[1] != g->m || (B && B->dims[0] != g->m))
        return false;
    const int64_t *pads = at->pads;
    bool same_u = at->auto_pad == PQ_CONV_PAD_SAME_U, same_l = at->auto_pad == PQ_CONV_PAD_SAME_L;
    bool valid = at->auto_pad == PQ_CONV_PAD_VALID;
    for (int i = 0; i < g->nsp; i++) {
        g->s[i] = at->s[i];
        g->d[i] = at->d[i];
        g->in[i] = X->dims[2 + i];
        g->out[i] = Y->dims[2 + i];
        g->k[i] = W->dims[2 + i];
        if (g->s[i] < 1 || g->d[i] < 1) return false;
        int64_t kext = (g->k[i] - 1) * g->d[i] + 1;
        if (same_u || same_l) {
            int64_t total = (g->out[i] - 1) * g->s[i] + kext - g->in[i];
            if (total < 0) total = 0;
            g->pb[i] = same_u ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
        } else if (!valid) {
            g->pb[i] = pads[i];
            g->pe[i] = pads[i + g->nsp];
        }
        if (g->pb[i] < 0 || g->pe[i] < 0) return false;
        /* the output size oneDNN derives must be the one inference gave */
        int64_t span = g->in[i] + g->pb[i] + g->pe[i] - kext;
        if (span < 0 || span / g->s[i] + 1 != g->out[i]) return false;
    }
    return true;
}

static void pq_conv_key(const pq_conv_geo *g, int n_threads, pq_dnnl_key *k) {
    pq_dnnl_key_init(k, 0xC0);
    const int64_t head[] = {g->nsp,  g->n,       g->c,   g->m,      g->group,
                            g->bias, g->blocked, g->sum, n_threads, g->winograd};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        pq_dnnl_key_push(k, head[i]);
    for (int i = 0; i < g->nsp; i++) {
        const int64_t v[] = {g->in[i], g->out[i], g->k[i], g->s[i], g->d[i], g->pb[i], g->pe[i]};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            pq_dnnl_key_push(k, v[j]);
    }
    pq_dnnl_act_key(k, &g->act);
}

/* A cached convolution: primitive, plain memory descriptors, the layouts it wants and the
 * reorders into / out of them (prim NULL when the plain layout is what it wants). */
typedef struct pq_conv_prim {
    pq_dnnl_prim conv;
    dnnl_memory_desc_t src_md, dst_md, bias_md, wei_user_md; /* plain */
    dnnl_memory_desc_t src_blk_md, dst_blk_md, wei_md;       /* what the primitive wants */
    pq_dnnl_prim wei_reorder, src_reorder, dst_reorder;
    pq_dnnl_prim sum_reorder; /* ConvAdd: the plain addend into dst_blk_md (with dst_reorder) */
    size_t wei_bytes, src_blk_bytes, dst_blk_bytes;
    bool act_done; /* the node's fused activation is a post-op of conv or act_pass */
    /* the fused activation as piqc's own pass over the primitive's destination right after it
     * (pq_conv_act_pass), instead of a post-op; NULL: none */
    void (*act_pass)(float *x, int64_t n);
    /* source / destination with every spatial dim 1 in a channel-blocked layout: element (n, c)
     * at n * padded channels + c, so the reorder is a copy of C floats per image (into the
     * blocked layout: then zeros up to the padded channels); 0 when not so */
    int64_t src_flat_cp, dst_flat_cp;
} pq_conv_prim;

static void pq_conv_prim_destroy(void *v) {
    pq_conv_prim *p = v;
    if (!p) return;
    pq_dnnl_prim_destroy(&p->conv);
    pq_dnnl_prim_destroy(&p->wei_reorder);
    pq_dnnl_prim_destroy(&p->src_reorder);
    pq_dnnl_prim_destroy(&p->dst_reorder);
    pq_dnnl_prim_destroy(&p->sum_reorder);
    pq_free(p);
}

/* True when oneDNN picked its reference (plain C) implementation. */
static bool pq_dnnl_is_ref(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return false;
    return !strncmp(impl, "ref", 3);
}

/* Reads the layout the primitive chose for one argument; creates the reorder from / to the
 * plain layout when it differs. False when oneDNN fails. */
static bool pq_conv_layout(dnnl_primitive_desc_t pd, dnnl_query_t what,
                           const dnnl_memory_desc_t *plain, bool to_plain,
                           dnnl_memory_desc_t *chosen, size_t *bytes, pq_dnnl_prim *reorder) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, 0);
    if (!md) return false;
    *chosen = *md;
    *bytes = dnnl_memory_desc_get_size(md);
    if (dnnl_memory_desc_equal(chosen, plain)) return true;
    return to_plain ? pq_dnnl_reorder_create(chosen, plain, reorder)
                    : pq_dnnl_reorder_create(plain, chosen, reorder);
}

/* The padded channel count of blk when plain (NC[D]HW f32) has every spatial dim 1 and blk is
 * the canonical 16- or 8-channel blocked layout of the same dims (element (n, c) of either at
 * n * channels + c, with the padded count for blk); 0 otherwise. */
static int64_t pq_conv_flat(const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *blk) {
    static const dnnl_format_tag_t flat[3] = {dnnl_abc, dnnl_abcd, dnnl_abcde};
    static const dnnl_format_tag_t b16[3] = {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b};
    static const dnnl_format_tag_t b8[3] = {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b};
    int nd = plain->ndims;
    if (nd < 3 || nd > 5 || blk->ndims != nd) return 0;
    for (int i = 2; i < nd; i++)
        if (plain->dims[i] != 1) return 0;
    dnnl_memory_desc_t want;
    if (dnnl_memory_desc_init_by_tag(&want, nd, plain->dims, dnnl_f32, flat[nd - 3]) ||
        !dnnl_memory_desc_equal(&want, plain))
        return 0;
    const dnnl_format_tag_t tags[2] = {b16[nd - 3], b8[nd - 3]};
    for (int t = 0; t < 2; t++)
        if (!dnnl_memory_desc_init_by_tag(&want, nd, plain->dims, dnnl_f32, tags[t]) &&
            dnnl_memory_desc_equal(&want, blk))
            return blk->padded_dims[1];
    return 0;
}

/* The reorder of a pq_conv_flat pair: n images of c floats, plain at a stride of c, blocked at
 * a stride of cp (padding lanes written with zeros, as oneDNN's reorder writes them). */
static void pq_conv_flat_copy(const float *from, float *to, int64_t n, int64_t c, int64_t cp,
                              bool to_blocked) {
    for (int64_t i = 0; i < n; i++) {
        if (to_blocked) {
            memcpy(to + i * cp, from + i * c, (size_t)c * sizeof(float));
            memset(to + i * cp + c, 0, (size_t)(cp - c) * sizeof(float));
        } else {
            memcpy(to + i * c, from + i * cp, (size_t)c * sizeof(float));
        }
    }
}

/* Whether convolution g is one oneDNN's Winograd kernels (F(4x4, 3x3), AVX-512) may take
 * profitably: 2-D 3x3, stride 1, no dilation, one group, at least 64 input and output channels
 * (the tile transforms cost per channel; bench_int8 models 1 resnet18, fp32 column: the 56 x 56,
 * 28 x 28 and 14 x 14 3x3 layers 1233 -> 804, 1137 -> 678, 1098 -> 934 us; oneDNN itself declines
 * the 7 x 7 ones). Its rounding differs from the direct algorithm's by a few ulps of the sums
 * (resnet18 logits vs PyTorch: max |diff| 3.1e-6 vs 2.4e-6 direct). */
static bool pq_conv_winograd_fits(const pq_conv_geo *g) {
    return g->nsp == 2 && g->group == 1 && g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 1 &&
           g->s[1] == 1 && g->d[0] == 1 && g->d[1] == 1 && g->c >= 64 && g->m >= 64;
}

/* piqc's own kernel for the fused activation act where it is faster than oneDNN's eltwise post-op
 * (run as a pass over the primitive's destination right after it, while that is in cache):
 * Swish and HardSwish with the AVX-512 kernels of backends/eltwise_fast.h. oneDNN 2.6's Swish
 * post-op costs ~15 cycles per 16 floats, the pass ~8 (batch 1, one thread, PIQC_ONEDNN_CONV_TIME
 * sums: efficientnet_b0's convolutions 7.6 -> 6.4 ms, every Swish layer 10-38% faster;
 * mobilenet_v3_large's 3.28 -> 3.17 ms, its HardSwish layers 3-17% faster). NULL: the post-op
 * (other activations, CPUs without AVX-512, PIQC_ISA below avx512, PIQC_ONEDNN_ACT_PASS=0) and
 * outputs above PQ_CONV_PASS_MAX_BYTES: a pass over data that no longer fits in the caches is a
 * second trip to memory (efficientnet_b0 batch 8: the 12.8 MB stem output 1.21x, the 38 MB
 * expansion 1.53x slower with the pass; batch 1's largest, 4.8 MB, 0.73x). */
#define PQ_CONV_PASS_MAX_BYTES ((int64_t)8 << 20)
static void (*pq_conv_act_pass_fn(const pq_conv_geo *g))(float *, int64_t) {
    static _Atomic int mode = -1;
    bool on = pq_dnnl_env_switch(&mode, "PIQC_ONEDNN_ACT_PASS", "0");
    int64_t bytes = g->n * g->m * (int64_t)sizeof(float);
    for (int i = 0; i < g->nsp; i++)
        bytes *= g->out[i];
    if (!on || bytes > PQ_CONV_PASS_MAX_BYTES) return NULL;
    const pq_activation *act = &g->act;
    if (act->kind == PQ_ACT_SWISH) return pq_eltwise_kernels_get()->swish;
    if (act->kind == PQ_ACT_HARD_SWISH) return pq_eltwise_kernels_get()->hard_swish;
    return NULL;
}

typedef struct pq_conv_pass_job {
    void (*fn)(float *, int64_t);
    float *x;
    int64_t n;
} pq_conv_pass_job;

#define PQ_CONV_PASS_CHUNK 4096 /* floats per task */

static void pq_conv_pass_chunk(void *ctx, int64_t begin, int64_t end) {
    const pq_conv_pass_job *j = ctx;
    int64_t b = begin * PQ_CONV_PASS_CHUNK, e = end * PQ_CONV_PASS_CHUNK;
    if (e > j->n) e = j->n;
    j->fn(j->x + b, e - b);
}

/* p's activation pass over the n floats at x (padding lanes of a blocked layout are zeros and
 * stay zeros), on nt threads. */
static void pq_conv_act_pass(const pq_conv_prim *p, void *x, size_t bytes, int nt) {
    pq_conv_pass_job j = {p->act_pass, x, (int64_t)(bytes / sizeof(float))};
    int64_t tasks = (j.n + PQ_CONV_PASS_CHUNK - 1) / PQ_CONV_PASS_CHUNK;
    pq_parallel_for(nt, tasks, pq_conv_pass_chunk, &j);
}

static enum pq_status pq_conv_prim_create(void *ctx, void **val, pq_error *err) {
    const pq_conv_geo *g = ctx;
    static const dnnl_format_tag_t act_tag[3] = {dnnl_ncw, dnnl_nchw, dnnl_ncdhw};
    static const dnnl_format_tag_t wei_tag[3] = {dnnl_oiw, dnnl_oihw, dnnl_oidhw};
    static const dnnl_format_tag_t gwei_tag[3] = {dnnl_goiw, dnnl_goihw, dnnl_goidhw};
    int nd = g->nsp + 2;
    dnnl_dims_t sd = {g->n, g->c}, dd = {g->n, g->m}, wd, bd = {g->m};
    dnnl_dims_t strides, dil, pl, pr;
    int wnd = nd;
    if (g->group > 1) {
        wnd = nd + 1;
        wd[0] = g->group;
        wd[1] = g->m / g->group;
        wd[2] = g->c / g->group;
    } else {
        wd[0] = g->m;
        wd[1] = g->c;
    }
    for (int i = 0; i < g->nsp; i++) {
        sd[2 + i] = g->in[i];
        dd[2 + i] = g->out[i];
        wd[wnd - g->nsp + i] = g->k[i];
        strides[i] = g->s[i];
        dil[i] = g->d[i] - 1; /* oneDNN counts the gaps between taps */
        pl[i] = g->pb[i];
        pr[i] = g->pe[i];
    }
    pq_conv_prim *p = pq_calloc(1, sizeof *p);
    if (!p) return pq_error_nomem(err, "onednn conv primitive");
    /* ConvAdd's sum, then the fused activation as eltwise post-ops, applied before the
     * destination reorder (oneDNN runs post-ops in order: the activation sees conv + s) */
    dnnl_primitive_attr_t attr = NULL;
    p->act_pass = pq_conv_act_pass_fn(g);
    if ((g->act.kind != PQ_ACT_NONE && !p->act_pass) || g->sum) {
        dnnl_post_ops_t po = NULL;
        bool ok = !dnnl_primitive_attr_create(&attr) && !dnnl_post_ops_create(&po) &&
                  (!g->sum || !dnnl_post_ops_append_sum(po, 1.0f)) &&
                  (p->act_pass || pq_dnnl_act_append(po, &g->act)) &&
                  !dnnl_primitive_attr_set_post_ops(attr, po);
        if (po) dnnl_post_ops_destroy(po);
        if (!ok) {
            if (attr) dnnl_primitive_attr_destroy(attr);
            pq_free(p);
            *val = NULL;
            return PQ_OK;
        }
    }
    p->act_done = g->act.kind != PQ_ACT_NONE;
    dnnl_memory_desc_t wei_any, src_any, dst_any;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    int t = g->nsp - 1;
    /* Blocked, 1x1, grouped (depthwise) and few-input-channel convolutions: channels in blocks of
     * 16 (8 below AVX-512; nChw16c), whose reorders from / to NC[D]HW are cheap, unless oneDNN has
     * only its reference implementation for it. Other convolutions, and those: whatever oneDNN
     * picks
     * ("any": NHWC on AVX-512, brgconv). On mobilenet_v3_small (1x1 and depthwise, little work
     * each) NHWC's transposing reorders cost as much as the convolutions; on resnet18's 3x3
     * convolutions brgconv on NHWC is faster than the nChw16c kernels. */
    static const dnnl_format_tag_t blk16[3] = {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b};
    static const dnnl_format_tag_t blk8[3] = {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b};
    const dnnl_format_tag_t *blk_tag =
        dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core ? blk16 : blk8;
    /* Winograd first where it fits; when oneDNN has no Winograd kernel for the case (CPUs
     * without AVX-512, shapes its heuristic declines) the direct algorithm as below */
    bool wino = g->winograd && pq_conv_winograd_fits(g);
    dnnl_alg_kind_t alg = wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
    bool k1 = true;
    for (int i = 0; i < g->nsp; i++)
        k1 = k1 && g->k[i] == 1;
    bool tried_blk = !g->blocked || !(k1 || g->group > 1 || g->c < 32);
    dnnl_format_tag_t src_tag = g->blocked ? dnnl_format_tag_any : act_tag[t], dst_tag = src_tag;
    if (!tried_blk) {
        src_tag = g->c < 16 ? act_tag[t] : blk_tag[t];
        dst_tag = blk_tag[t];
    }
retry:
    if (dnnl_memory_desc_init_by_tag(&p->src_md, nd, sd, dnnl_f32, act_tag[t]) ||
        dnnl_memory_desc_init_by_tag(&p->dst_md, nd, dd, dnnl_f32, act_tag[t]) ||
        dnnl_memory_desc_init_by_tag(&src_any, nd, sd, dnnl_f32, src_tag) ||
        dnnl_memory_desc_init_by_tag(&dst_any, nd, dd, dnnl_f32, dst_tag) ||
        dnnl_memory_desc_init_by_tag(&p->bias_md, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&p->wei_user_md, wnd, wd, dnnl_f32,
                                     g->group > 1 ? gwei_tag[t] : wei_tag[t]) ||
        dnnl_memory_desc_init_by_tag(&wei_any, wnd, wd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, alg, &src_any,
                                                   &wei_any, g->bias ? &p->bias_md : NULL, &dst_any,
                                                   strides, dil, pl, pr) ||
        !pq_dnnl_prim_create(&cd, attr, &p->conv, &pd) || (!tried_blk && pq_dnnl_is_ref(pd))) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        pq_dnnl_prim_destroy(&p->conv);
        if (wino) {
            wino = false;
            alg = dnnl_convolution_direct;
            goto retry;
        }
        if (tried_blk) goto unsupported;
        tried_blk = true;
        src_tag = dst_tag = dnnl_format_tag_any;
        goto retry;
    }
    if (!pq_conv_layout(pd, dnnl_query_weights_md, &p->wei_user_md, false, &p->wei_md,
                        &p->wei_bytes, &p->wei_reorder) ||
        !pq_conv_layout(pd, dnnl_query_src_md, &p->src_md, false, &p->src_blk_md, &p->src_blk_bytes,
                        &p->src_reorder) ||
        !pq_conv_layout(pd, dnnl_query_dst_md, &p->dst_md, true, &p->dst_blk_md, &p->dst_blk_bytes,
                        &p->dst_reorder) ||
        (g->sum && p->dst_reorder.prim &&
         !pq_dnnl_reorder_create(&p->dst_md, &p->dst_blk_md, &p->sum_reorder)))
        goto unsupported;
    if (p->src_reorder.prim) p->src_flat_cp = pq_conv_flat(&p->src_md, &p->src_blk_md);
    if (p->dst_reorder.prim) p->dst_flat_cp = pq_conv_flat(&p->dst_md, &p->dst_blk_md);
    dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    *val = p;
    return PQ_OK;
unsupported:
    /* cached as a NULL value so the next call with this key returns UNSUPPORTED at once */
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    pq_conv_prim_destroy(p);
    *val = NULL;
    return PQ_OK;
}

static pq_dnnl_cache pq_conv_cache = PQ_DNNL_CACHE_INIT(32, pq_conv_prim_destroy);

/* ---- reordered weights, keyed by the conv key + the weights' address, validated by content ----
 */

typedef struct pq_conv_wei {
    void *orig; /* copy of the plain weights they were made from */
    size_t orig_bytes;
    void *packed; /* weights in the primitive's layout */
} pq_conv_wei;

typedef struct pq_conv_wei_ctx {
    const pq_conv_prim *p;
    const pq_tensor *W;
} pq_conv_wei_ctx;

static void pq_conv_wei_destroy(void *v) {
    pq_conv_wei *w = v;
    if (!w) return;
    pq_free(w->orig);
    pq_free(w->packed);
    pq_free(w);
}

static bool pq_conv_wei_valid(void *ctx, const void *val) {
    const pq_conv_wei_ctx *c = ctx;
    const pq_conv_wei *w = val;
    return w->orig_bytes == c->W->nbytes && !memcmp(w->orig, c->W->data, w->orig_bytes);
}

static enum pq_status pq_conv_wei_create(void *ctx, void **val, pq_error *err) {
    const pq_conv_wei_ctx *c = ctx;
    pq_conv_wei *w = pq_calloc(1, sizeof *w);
    if (!w) return pq_error_nomem(err, "onednn conv weights");
    w->orig_bytes = c->W->nbytes;
    w->orig = pq_malloc(w->orig_bytes);
    w->packed = pq_malloc_aligned(c->p->wei_bytes);
    if (!w->orig || !w->packed) {
        pq_conv_wei_destroy(w);
        return pq_error_nomem(err, "onednn conv weights");
    }
    memcpy(w->orig, c->W->data, w->orig_bytes);
    pq_dnnl_arg args[2] = {{DNNL_ARG_FROM, &c->p->wei_user_md, c->W->data},
                           {DNNL_ARG_TO, &c->p->wei_md, w->packed}};
    enum pq_status st = pq_dnnl_execute(&c->p->wei_reorder, args, 2, "conv weights reorder", err);
    if (st != PQ_OK) {
        pq_conv_wei_destroy(w);
        return st;
    }
    *val = w;
    return PQ_OK;
}

static pq_dnnl_cache pq_conv_wei_cache = PQ_DNNL_CACHE_INIT(64, pq_conv_wei_destroy);

void pq_onednn_conv_cache_clear(void) {
    pq_dnnl_cache_drop(&pq_conv_wei_cache);
    pq_dnnl_cache_drop(&pq_conv_cache);
}

/* Layout policy: -1 = not read yet; else a pq_onednn_conv_layout value. Blocked activations pay
 * two reorders per call but let oneDNN use its direct JIT convolution instead of im2col + GEMM
 * (4-5x faster on the digits model's 8->16 channel layer, reorders included). */
static _Atomic int pq_conv_layout_mode = -1;

void pq_onednn_conv_set_layout(enum pq_onednn_conv_layout mode) {
    pq_conv_layout_mode = (int)mode;
}

/* Winograd policy: -1 = not read yet, else 0 / 1 (PIQC_ONEDNN_WINOGRAD=0 turns it off). */
static _Atomic int pq_conv_wino_mode = -1;

void pq_onednn_conv_set_winograd(bool on) {
    pq_conv_wino_mode = on ? 1 : 0;
}

static bool pq_conv_want_winograd(void) {
    return pq_dnnl_env_switch(&pq_conv_wino_mode, "PIQC_ONEDNN_WINOGRAD", "0");
}

static bool pq_conv_want_blocked(void) {
    int m = pq_conv_layout_mode;
    if (m < 0) {
        const char *e = getenv("PIQC_ONEDNN_CONV");
        m = e && !strcmp(e, "plain") ? PQ_ONEDNN_CONV_PLAIN : PQ_ONEDNN_CONV_BLOCKED;
        pq_conv_layout_mode = m;
    }
    return m == PQ_ONEDNN_CONV_BLOCKED;
}

/* ---- per-session entries (pq_onednn_cache): one per node ---- */

typedef struct pq_conv_node {
    pq_conv_prim *p;    /* NULL: oneDNN rejects this case */
    void *packed;       /* weights in p->wei_md (when p needs a weight reorder) */
    pq_dnnl_wsig wsig;  /* of the constant weights packed holds (data NULL: none) */
    int readers;        /* nodes that can read the output blocked (-1: not counted yet) */
    bool only_convs;    /* they are all its readers (pq_dnnl_count_readers) */
    bool confirmed;     /* every reader took the blocked output last time (set by the last one) */
    uint64_t last_exec; /* pq_dnnl_tick() of this node's last run */
    pq_dnnl_prim conv;  /* reorder of a kept copy in layout conv_from into this node's source */
    dnnl_memory_desc_t conv_from;
    pq_dnnl_prim sum_conv; /* ConvAdd: reorder of the addend's kept copy (layout sum_from) to dst */
    dnnl_memory_desc_t sum_from;
    /* memory objects of each execution below (convolution, source / destination / weights
     * reorders, source conversion, addend conversion and pre-fill) */
    pq_dnnl_mems m_conv, m_src, m_dst, m_wei, m_cvt, m_sum, m_fill;
} pq_conv_node;

static void pq_conv_node_destroy(void *v) {
    pq_conv_node *cn = v;
    if (!cn) return;
    pq_conv_prim_destroy(cn->p);
    pq_dnnl_prim_destroy(&cn->conv);
    pq_dnnl_prim_destroy(&cn->sum_conv);
    pq_dnnl_mems *ms[] = {&cn->m_conv, &cn->m_src, &cn->m_dst, &cn->m_wei,
                          &cn->m_cvt,  &cn->m_sum, &cn->m_fill};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        pq_dnnl_mems_free(ms[i]);
    pq_free(cn->packed);
    pq_free(cn);
}

/* The node's entry for key k, (re)built when missing or made for another key. */
static enum pq_status pq_conv_node_get(pq_onednn_cache *c, const pq_kernel_args *a,
                                       const pq_conv_geo *g, const pq_dnnl_key *k,
                                       pq_conv_node **out) {
    pq_dnnl_node *e = pq_dnnl_node_get(c, a->node, a->err);
    if (!e) return PQ_ERR_NOMEM;
    if (e->val && pq_dnnl_key_eq(&e->key, k)) {
        pq_dnnl_count(true);
        *out = e->val;
        return PQ_OK;
    }
    pq_dnnl_node_reset(e);
    pq_conv_node *cn = pq_calloc(1, sizeof *cn);
    if (!cn) return pq_error_nomem(a->err, "onednn conv node");
    void *pv = NULL;
    enum pq_status st = pq_conv_prim_create((void *)g, &pv, a->err);
    if (st != PQ_OK) {
        pq_free(cn);
        return st;
    }
    cn->p = pv;
    cn->readers = -1;
    if (cn->p && cn->p->wei_reorder.prim) {
        cn->packed = pq_malloc_aligned(cn->p->wei_bytes);
        if (!cn->packed) {
            pq_conv_node_destroy(cn);
            return pq_error_nomem(a->err, "onednn conv weights");
        }
    }
    pq_dnnl_count(false);
    e->val = cn;
    e->destroy = pq_conv_node_destroy;
    e->key = *k;
    *out = cn;
    return PQ_OK;
}

/* ConvAdd: writes the plain addend a->in[3] into dst, in p's destination layout (reordered into
 * the blocked layout, or copied when the primitive writes plain). */
static enum pq_status pq_conv_sum_prefill(const pq_kernel_args *a, const pq_conv_prim *p, void *dst,
                                          void *scratch, pq_dnnl_mems *m) {
    const pq_tensor *S = a->in[3];
    if (!p->dst_reorder.prim) {
        memcpy(dst, S->data, S->nbytes);
        return PQ_OK;
    }
    pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &p->dst_md, S->data}, {DNNL_ARG_TO, &p->dst_blk_md, dst}};
    return pq_dnnl_execute_mems(&p->sum_reorder, m, ra, 2, scratch, "conv addend reorder", a->err);
}

/* Runs the convolution p with weights wdata (in p->wei_md): source reorder into work buffer
 * sbuf, convolution into dbuf, destination reorder, fused activation. sbuf / dbuf / scratch:
 * caller's buffers of p->src_blk_bytes / p->dst_blk_bytes / the largest scratchpad, or NULL to
 * allocate here; nt: threads of p's activation pass. */
static enum pq_status pq_conv_exec(const pq_kernel_args *a, const pq_conv_prim *p,
                                   const void *wdata, void *sbuf, void *dbuf, void *scratch,
                                   int nt) {
    const pq_tensor *X = a->in[0], *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    void *own_s = NULL, *own_d = NULL, *src = X->data, *dst = Y->data;
    enum pq_status st = PQ_OK;
    if (p->src_reorder.prim) {
        if (!sbuf) sbuf = own_s = pq_malloc_aligned(p->src_blk_bytes);
        if (!sbuf) {
            st = pq_error_nomem(a->err, "onednn conv source buffer");
            goto done;
        }
        src = sbuf;
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &p->src_md, X->data},
                             {DNNL_ARG_TO, &p->src_blk_md, sbuf}};
        st = pq_dnnl_execute_ws(&p->src_reorder, ra, 2, scratch, "conv source reorder", a->err);
        if (st != PQ_OK) goto done;
    }
    if (p->dst_reorder.prim) {
        if (!dbuf) dbuf = own_d = pq_malloc_aligned(p->dst_blk_bytes);
        if (!dbuf) {
            st = pq_error_nomem(a->err, "onednn conv destination buffer");
            goto done;
        }
        dst = dbuf;
    }
    if (a->node && a->node->op == PQ_OP_CONV_ADD) { /* the sum post-op adds to dst: the addend */
        st = pq_conv_sum_prefill(a, p, dst, scratch, NULL);
        if (st != PQ_OK) goto done;
    }
    pq_dnnl_arg args[4] = {{DNNL_ARG_SRC, &p->src_blk_md, src},
                           {DNNL_ARG_WEIGHTS, &p->wei_md, (void *)wdata},
                           {DNNL_ARG_DST, &p->dst_blk_md, dst},
                           {DNNL_ARG_BIAS, &p->bias_md, B ? B->data : NULL}};
    st = pq_dnnl_execute_ws(&p->conv, args, B ? 4 : 3, scratch, "convolution", a->err);
    if (st == PQ_OK && p->act_pass) pq_conv_act_pass(p, dst, p->dst_blk_bytes, nt);
    if (st == PQ_OK && p->dst_reorder.prim) {
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &p->dst_blk_md, dbuf},
                             {DNNL_ARG_TO, &p->dst_md, Y->data}};
        st =
            pq_dnnl_execute_ws(&p->dst_reorder, ra, 2, scratch, "conv destination reorder", a->err);
    }
    if (st == PQ_OK && !p->act_done)
        st = pq_act_epilogue(a->node, Y, a->err); /* fused activation not done as post-ops */
done:
    pq_free(own_s);
    pq_free(own_d);
    return st;
}

/* Largest scratchpad of the primitives of p. */
static size_t pq_conv_scratch_bytes(const pq_conv_prim *p) {
    size_t b = p->conv.scratch_bytes;
    if (p->src_reorder.scratch_bytes > b) b = p->src_reorder.scratch_bytes;
    if (p->dst_reorder.scratch_bytes > b) b = p->dst_reorder.scratch_bytes;
    if (p->sum_reorder.scratch_bytes > b) b = p->sum_reorder.scratch_bytes;
    if (p->wei_reorder.scratch_bytes > b) b = p->wei_reorder.scratch_bytes;
    return b;
}

/* ConvAdd in a session: makes *dst (what the primitive writes: p's blocked destination, or the
 * plain output) hold the addend a->in[3]. Its fresh kept copy in that layout is copied; when this
 * node is the last reader expected to take the copy (and the addend is not also the source), the
 * copy's buffer itself becomes the destination instead: swapped into ob (the output's kept entry)
 * or, without ob, used as *dst and freed by the caller after the call (*consumed = its value). A
 * kept copy in another blocked layout is reordered straight into dst (cn->sum_conv). Otherwise the
 * plain addend (written back if elided) is reordered or copied in. */
static enum pq_status pq_conv_sum_session(pq_onednn_cache *c, const pq_kernel_args *a,
                                          const pq_conv_prim *p, pq_conv_node *cn, pq_dnnl_blk *ob,
                                          void **dst, const void **consumed, void *scratch) {
    const dnnl_memory_desc_t *dmd = p->dst_reorder.prim ? &p->dst_blk_md : &p->dst_md;
    pq_dnnl_blk *sb = pq_dnnl_keep_blocked() ? pq_dnnl_blk_input(c, a, 3, cn->last_exec) : NULL;
    if (sb && p->dst_reorder.prim && !dnnl_memory_desc_equal(&sb->md, dmd)) {
        if (!cn->sum_conv.prim || !dnnl_memory_desc_equal(&cn->sum_from, &sb->md)) {
            pq_dnnl_prim_destroy(&cn->sum_conv);
            if (!pq_dnnl_reorder_create(&sb->md, dmd, &cn->sum_conv))
                return pq_error_set(a->err, PQ_ERR_INTERNAL, "onednn: conv addend conversion");
            cn->sum_from = sb->md;
        }
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &sb->md, sb->buf}, {DNNL_ARG_TO, dmd, *dst}};
        PQ_TRY(pq_dnnl_execute_mems(&cn->sum_conv, &cn->m_sum, ra, 2, NULL,
                                    "conv addend conversion", a->err));
        pq_dnnl_blk_took(sb);
        return PQ_OK;
    }
    if (sb && p->dst_reorder.prim && dnnl_memory_desc_equal(&sb->md, dmd)) {
        bool last =
            sb->want > 0 && sb->used + 1 >= sb->want && a->node->inputs[3] != a->node->inputs[0];
        pq_dnnl_blk_took(sb);
        if (last && ob && sb->cap >= p->dst_blk_bytes) {
            void *buf = ob->buf;
            size_t cap = ob->cap;
            ob->buf = sb->buf;
            ob->cap = sb->cap;
            sb->buf = buf;
            sb->cap = cap;
            pq_dnnl_blk_free(sb);
            *dst = ob->buf;
        } else if (last && !ob) {
            *dst = sb->buf;
            *consumed = sb->value;
        } else {
            memcpy(*dst, sb->buf, p->dst_blk_bytes);
        }
        return PQ_OK;
    }
    PQ_TRY(pq_dnnl_plain_inputs(c, a, 8u));
    return pq_conv_sum_prefill(a, p, *dst, scratch, &cn->m_fill);
}

/* The session path: everything from the node's entry in c and c's work buffers, and the blocked
 * activations kept between convolutions (pq_dnnl_blk): the source is taken from the producer's
 * blocked copy when there is a fresh one in the layout this primitive wants (no reorder), and
 * the destination stays in an entry for the Conv nodes that read it; the plain output is not
 * written when those are all its readers, they all took the blocked copy last run and the run
 * allows it (pq_onednn_run_begin). */
static enum pq_status pq_conv_session(pq_onednn_cache *c, const pq_kernel_args *a,
                                      const pq_conv_geo *g, const pq_dnnl_key *k) {
    const pq_value *yval = pq_dnnl_value(a, true, 0), *xval = pq_dnnl_value(a, false, 0);
    bool keep = pq_dnnl_keep_blocked() && yval && xval;
    if (keep) { /* a copy from an earlier run of this node is stale from now on */
        pq_dnnl_blk *old = pq_dnnl_blk_find(c, yval);
        if (old) pq_dnnl_blk_free(old);
    }
    pq_conv_node *cn = NULL;
    PQ_TRY(pq_conv_node_get(c, a, g, k, &cn));
    const pq_conv_prim *p = cn->p;
    if (!p) { /* the reference kernel runs: it reads plain inputs */
        PQ_TRY(pq_dnnl_plain_inputs(c, a, ~0u));
        return PQ_ERR_UNSUPPORTED;
    }
    /* weights and bias are read plain (ConvAdd's addend: pq_conv_sum_session) */
    if (keep) PQ_TRY(pq_dnnl_plain_inputs(c, a, g->sum ? ~9u : ~1u));
    const pq_tensor *X = a->in[0], *W = a->in[1], *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    size_t sb = pq_conv_scratch_bytes(p);
    void *scratch = NULL;
    if (sb && !(scratch = pq_dnnl_work(c, PQ_DNNL_WORK_SCRATCH, sb, a->err))) return PQ_ERR_NOMEM;
    const void *wdata = W->data;
    if (p->wei_reorder.prim) {
        bool constant = pq_dnnl_is_constant(a, 1);
        if (!constant || !pq_dnnl_wsig_same(&cn->wsig, W->data, W->nbytes)) {
            memset(&cn->wsig, 0, sizeof cn->wsig);
            pq_dnnl_arg args[2] = {{DNNL_ARG_FROM, &p->wei_user_md, W->data},
                                   {DNNL_ARG_TO, &p->wei_md, cn->packed}};
            PQ_TRY(pq_dnnl_execute_mems(&p->wei_reorder, &cn->m_wei, args, 2, scratch,
                                        "conv weights reorder", a->err));
            if (constant) pq_dnnl_wsig_take(&cn->wsig, W->data, W->nbytes);
        }
        wdata = cn->packed;
    }
    if (keep && cn->readers < 0)
        pq_dnnl_count_readers(a->graph, a->node->outputs[0], &cn->readers, &cn->only_convs);
    /* source: the producer's fresh kept copy (as it is, or reordered straight into this
     * primitive's layout), or the plain tensor (reordered when needed) */
    void *src = X->data;
    pq_dnnl_blk *ib = keep ? pq_dnnl_blk_input(c, a, 0, cn->last_exec) : NULL;
    if (ib && p->src_reorder.prim && dnnl_memory_desc_equal(&ib->md, &p->src_blk_md)) {
        src = ib->buf;
        pq_dnnl_blk_took(ib);
    } else if (ib && p->src_reorder.prim) {
        if (!cn->conv.prim || !dnnl_memory_desc_equal(&cn->conv_from, &ib->md)) {
            pq_dnnl_prim_destroy(&cn->conv);
            if (!pq_dnnl_reorder_create(&ib->md, &p->src_blk_md, &cn->conv))
                return pq_error_set(a->err, PQ_ERR_INTERNAL, "onednn: conv source conversion");
            cn->conv_from = ib->md;
        }
        void *sbuf = pq_dnnl_work(c, PQ_DNNL_WORK_SRC, p->src_blk_bytes, a->err);
        if (!sbuf) return PQ_ERR_NOMEM;
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &ib->md, ib->buf},
                             {DNNL_ARG_TO, &p->src_blk_md, sbuf}};
        PQ_TRY(pq_dnnl_execute_mems(&cn->conv, &cn->m_cvt, ra, 2, NULL, "conv source conversion",
                                    a->err));
        src = sbuf;
        pq_dnnl_blk_took(ib);
    } else {
        if (ib && !ib->plain_valid) /* elided plain tensor, read plain here: write it after all */
            PQ_TRY(pq_dnnl_plain_inputs(c, a, 1u));
        if (p->src_reorder.prim) {
            void *sbuf = pq_dnnl_work(c, PQ_DNNL_WORK_SRC, p->src_blk_bytes, a->err);
            if (!sbuf) return PQ_ERR_NOMEM;
            pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &p->src_md, X->data},
                                 {DNNL_ARG_TO, &p->src_blk_md, sbuf}};
            if (p->src_flat_cp)
                pq_conv_flat_copy(X->data, sbuf, g->n, g->c, p->src_flat_cp, true);
            else
                PQ_TRY(pq_dnnl_execute_mems(&p->src_reorder, &cn->m_src, ra, 2, scratch,
                                            "conv source reorder", a->err));
            src = sbuf;
        }
    }
    /* destination: an entry kept for the Conv readers, or the shared work buffer */
    void *dst = Y->data;
    pq_dnnl_blk *ob = NULL;
    bool elide = false;
    if (p->dst_reorder.prim) {
        if (keep && cn->readers > 0) {
            elide = cn->only_convs && cn->confirmed && pq_dnnl_elide_allowed(c);
            if (!(ob = pq_dnnl_blk_take(c, yval, p->dst_blk_bytes, a->err))) return PQ_ERR_NOMEM;
            dst = ob->buf;
        } else if (!(dst = pq_dnnl_work(c, PQ_DNNL_WORK_DST, p->dst_blk_bytes, a->err))) {
            return PQ_ERR_NOMEM;
        }
    }
    const void *consumed = NULL; /* ConvAdd: value of an addend copy used as dst, freed after */
    if (g->sum) {
        enum pq_status sst = pq_conv_sum_session(c, a, p, cn, ob, &dst, &consumed, scratch);
        if (sst != PQ_OK) {
            if (ob) pq_dnnl_blk_free(ob);
            return sst;
        }
    }
    cn->confirmed = false;
    pq_dnnl_arg args[4] = {{DNNL_ARG_SRC, &p->src_blk_md, src},
                           {DNNL_ARG_WEIGHTS, &p->wei_md, (void *)wdata},
                           {DNNL_ARG_DST, &p->dst_blk_md, dst},
                           {DNNL_ARG_BIAS, &p->bias_md, B ? B->data : NULL}};
    enum pq_status st = pq_dnnl_execute_mems(&p->conv, &cn->m_conv, args, B ? 4 : 3, scratch,
                                             "convolution", a->err);
    if (st == PQ_OK && p->act_pass) pq_conv_act_pass(p, dst, p->dst_blk_bytes, g->threads);
    if (st == PQ_OK && elide) pq_dnnl_count_layout(true);
    if (st == PQ_OK && p->dst_reorder.prim && !elide && p->dst_flat_cp) {
        pq_conv_flat_copy(dst, Y->data, g->n, g->m, p->dst_flat_cp, false);
    } else if (st == PQ_OK && p->dst_reorder.prim && !elide) {
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &p->dst_blk_md, dst},
                             {DNNL_ARG_TO, &p->dst_md, Y->data}};
        st = pq_dnnl_execute_mems(&p->dst_reorder, &cn->m_dst, ra, 2, scratch,
                                  "conv destination reorder", a->err);
    }
    if (consumed) { /* the addend's kept copy was overwritten by the result */
        pq_dnnl_blk *sb = pq_dnnl_blk_find(c, consumed);
        if (sb) pq_dnnl_blk_free(sb);
    }
    /* the source's and the addend's kept copies are free for later outputs once every reader
     * took them */
    pq_dnnl_blk_done(c, xval);
    if (g->sum) pq_dnnl_blk_done(c, pq_dnnl_value(a, false, 3));
    if (st == PQ_OK && !p->act_done && pq_node_attr(a->node, "activation")) {
        /* the reference epilogue works on the plain tensor: the kept copy would be stale */
        if (ob) pq_dnnl_blk_free(ob);
        ob = NULL;
        st = pq_act_epilogue(a->node, Y, a->err);
    }
    cn->last_exec = pq_dnnl_tick(c);
    if (ob) {
        if (st != PQ_OK) {
            pq_dnnl_blk_free(ob);
        } else {
            ob->md = p->dst_blk_md;
            ob->plain = Y->data;
            ob->stamp = cn->last_exec;
            ob->plain_valid = !elide;
            ob->want = cn->readers;
            ob->used = 0;
            ob->confirm = &cn->confirmed;
        }
    }
    return st;
}

/* Spatial dims of a's source (0 when there is none). */
static int pq_conv_nsp(const pq_kernel_args *a) {
    return a->n_in >= 1 && a->in[0] && a->in[0]->rank >= 3 ? a->in[0]->rank - 2 : 0;
}

static enum pq_status pq_onednn_conv_run(const pq_kernel_args *a) {
    pq_conv_geo g;
    pq_conv_attrs tmp;
    const pq_conv_attrs *at = pq_conv_attrs_get(a, pq_conv_nsp(a), &tmp);
    if (!pq_conv_geometry(a, at, &g)) return PQ_ERR_UNSUPPORTED;
    int64_t macs = g.n * g.m * (g.c / g.group);
    for (int i = 0; i < g.nsp; i++)
        macs *= g.out[i] * g.k[i];
    if (pq_dnnl_too_small(macs) || !pq_dnnl_get(NULL, NULL)) return PQ_ERR_UNSUPPORTED;
    const pq_tensor *W = a->in[1];
    int nt = pq_dnnl_threads_for(a->n_threads, macs);
    pq_dnnl_set_threads(nt);
    g.threads = nt;
    g.blocked = pq_conv_want_blocked();
    g.winograd = g.blocked && pq_conv_want_winograd();
    if (at->act_post) g.act = at->act;
    pq_dnnl_key k;
    pq_conv_key(&g, nt, &k);
    pq_onednn_cache *c = pq_dnnl_current();
    if (c && a->node) return pq_conv_session(c, a, &g, &k);
    /* no session cache: the process-wide LRU caches */
    pq_dnnl_entry *pe = NULL, *we = NULL;
    enum pq_status st =
        pq_dnnl_cache_acquire(&pq_conv_cache, &k, NULL, pq_conv_prim_create, &g, &pe, a->err);
    if (st != PQ_OK) return st;
    const pq_conv_prim *p = pe->val;
    if (!p) {
        pq_dnnl_cache_release(&pq_conv_cache, pe);
        return PQ_ERR_UNSUPPORTED;
    }
    const void *wdata = W->data;
    if (p->wei_reorder.prim) {
        pq_conv_wei_ctx wc = {p, W};
        pq_dnnl_key_push(&k, (int64_t)(intptr_t)W->data);
        st = pq_dnnl_cache_acquire(&pq_conv_wei_cache, &k, pq_conv_wei_valid, pq_conv_wei_create,
                                   &wc, &we, a->err);
        if (st != PQ_OK) goto done;
        wdata = ((pq_conv_wei *)we->val)->packed;
    }
    st = pq_conv_exec(a, p, wdata, NULL, NULL, NULL, nt);
done:
    pq_dnnl_cache_release(&pq_conv_wei_cache, we);
    pq_dnnl_cache_release(&pq_conv_cache, pe);
    return st;
}

/* PIQC_ONEDNN_CONV_TIME=1: every call prints one line to stderr (node name, shape, status and
 * wall time in microseconds) for per-layer comparisons (bench/conv_layers.py). */
enum pq_status pq_onednn_conv(const pq_kernel_args *a) {
    static _Atomic int trace = -1;
    if (trace < 0) {
        const char *e = getenv("PIQC_ONEDNN_CONV_TIME");
        trace = e && *e && strcmp(e, "0");
    }
    if (!trace) return pq_onednn_conv_run(a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    enum pq_status st = pq_onednn_conv_run(a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const pq_tensor *X = a->n_in > 0 ? a->in[0] : NULL, *W = a->n_in > 1 ? a->in[1] : NULL;
    pq_conv_geo g;
    pq_conv_attrs at;
    pq_conv_attrs_decode(a->node, pq_conv_nsp(a), &at);
    bool geo = pq_conv_geometry(a, &at, &g);
    fprintf(stderr, "piqc_conv,%s,n%lld c%lld m%lld g%lld in%lld k%lld s%lld,%d,%.2f\n",
            a->node && a->node->name ? a->node->name : "?", geo ? (long long)g.n : -1LL,
            geo ? (long long)g.c : -1LL, geo ? (long long)g.m : -1LL,
            geo ? (long long)g.group : -1LL, X && X->rank > 2 ? (long long)X->dims[2] : -1LL,
            W && W->rank > 2 ? (long long)W->dims[2] : -1LL, geo ? (long long)g.s[0] : -1LL,
            (int)st,
            (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-3);
    return st;
}
