/* Elementwise ops between oneDNN convolutions on their kept blocked copies (nChw16c / nChw8c /
 * NHWC): GlobalAveragePool, per-channel Mul (squeeze-excite), same-shape Add (residual) and 2-D
 * MaxPool (oneDNN's pooling), so a MobileNet / EfficientNet / ResNet block stays in oneDNN's
 * layout from convolution to convolution. Values are bit-identical to the plain kernels (same f32
 * operations per element, the average pool's sums in double in the reference's order, maxima). */
#include <string.h>

#include "backends/eltwise_fast.h"
#include "backends/onednn/onednn_impl.h"
#include "backends/piqc_ops.h"
#include "backends/threadpool.h"
#include "ir/ir.h"

/* Layout of a kept copy: channel blocks of blk (8 or 16) with zero padding, or NHWC (blk 0). */
typedef struct pq_lay_geo {
    int64_t n, c, sp; /* batch, channels, spatial positions */
    int blk;          /* 16, 8, or 0 for NHWC */
    int64_t cb;       /* channel blocks (blk > 0) */
} pq_lay_geo;

/* Recognises md (4-D f32, dims of t) as one of the layouts above. */
static bool pq_lay_classify(const dnnl_memory_desc_t *md, const pq_tensor *t, pq_lay_geo *g) {
    if (md->ndims != 4 || t->rank != 4) return false;
    dnnl_dims_t d;
    for (int k = 0; k < 4; k++) {
        if (md->dims[k] != t->dims[k]) return false;
        d[k] = t->dims[k];
    }
    static const dnnl_format_tag_t tags[3] = {dnnl_aBcd16b, dnnl_aBcd8b, dnnl_acdb};
    static const int blks[3] = {16, 8, 0};
    for (int i = 0; i < 3; i++) {
        dnnl_memory_desc_t want;
        if (dnnl_memory_desc_init_by_tag(&want, 4, d, dnnl_f32, tags[i])) continue;
        if (!dnnl_memory_desc_equal(&want, md)) continue;
        g->n = d[0];
        g->c = d[1];
        g->sp = d[2] * d[3];
        g->blk = blks[i];
        g->cb = g->blk ? (g->c + g->blk - 1) / g->blk : 0;
        return true;
    }
    return false;
}

/* Per-node state of a Mul / Add / GlobalAveragePool in the session cache. */
typedef struct pq_lay_node {
    int readers; /* nodes that can read the output blocked (-1: not counted yet) */
    bool only;
    bool confirmed;
    uint64_t last_exec;
    pq_dnnl_prim to_plain; /* reorder of the output's kept copy to the plain tensor */
    dnnl_memory_desc_t to_plain_md;
    pq_dnnl_prim pool; /* MaxPool: the pooling primitive for pool_src -> pool_dst */
    dnnl_memory_desc_t pool_src, pool_dst;
    pq_dnnl_prim conv; /* Add: reorder of the second operand's copy into the first one's layout */
    dnnl_memory_desc_t conv_from, conv_to;
    pq_dnnl_mems m_plain, m_pool, m_conv; /* memory objects of the three */
} pq_lay_node;

static void pq_lay_node_destroy(void *v) {
    pq_lay_node *ln = v;
    if (!ln) return;
    pq_dnnl_prim_destroy(&ln->to_plain);
    pq_dnnl_prim_destroy(&ln->pool);
    pq_dnnl_prim_destroy(&ln->conv);
    pq_dnnl_mems_free(&ln->m_plain);
    pq_dnnl_mems_free(&ln->m_pool);
    pq_dnnl_mems_free(&ln->m_conv);
    pq_free(ln);
}

static pq_lay_node *pq_lay_node_get(pq_onednn_cache *c, const pq_kernel_args *a) {
    pq_dnnl_node *e = pq_dnnl_node_get(c, a->node, a->err);
    if (!e) return NULL;
    if (!e->val) {
        pq_lay_node *ln = pq_calloc(1, sizeof *ln);
        if (!ln) {
            pq_error_nomem(a->err, "onednn layout node");
            return NULL;
        }
        ln->readers = -1;
        e->val = ln;
        e->destroy = pq_lay_node_destroy;
        pq_dnnl_key_init(&e->key, 0x1A);
    }
    return e->val;
}

/* ---- kernels on kept copies ---- */

typedef struct pq_lay_job {
    const pq_eltwise_kernels *k; /* row kernels of the run-time ISA */
    pq_lay_geo g;
    const float *x, *x2, *s; /* s: per-channel scale, s_n = 0 or c (per image) */
    int64_t s_n;
    float *y;
} pq_lay_job;

/* GlobalAveragePool: y[n, c] = (float)(sum_p x[n, c, p] / sp), sums in double in p order. */
static void pq_lay_gap_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_lay_job *j = ctx;
    const pq_lay_geo *g = &j->g;
    if (g->blk) { /* t = (n, channel block); up to 4 blocks per kernel call (adjacent in x) */
        for (int64_t t = t0; t < t1; t += 4) {
            int64_t nb = t1 - t < 4 ? t1 - t : 4;
            double acc[64] = {0};
            j->k->lane_sums(j->x + t * g->sp * g->blk, g->sp, g->blk, nb, g->sp * g->blk, acc);
            for (int64_t b = 0; b < nb; b++) {
                int64_t n = (t + b) / g->cb, cb = (t + b) % g->cb;
                for (int l = 0; l < g->blk && cb * g->blk + l < g->c; l++)
                    j->y[n * g->c + cb * g->blk + l] = (float)(acc[b * g->blk + l] / (double)g->sp);
            }
        }
        return;
    }
    for (int64_t t = t0; t < t1; t++) { /* NHWC, t = n */
        const float *x = j->x + t * g->sp * g->c;
        float *y = j->y + t * g->c;
        for (int64_t c0 = 0; c0 < g->c; c0 += 64) {
            int64_t cn = g->c - c0 < 64 ? g->c - c0 : 64;
            double acc[64] = {0};
            for (int64_t p = 0; p < g->sp; p++)
                for (int64_t l = 0; l < cn; l++)
                    acc[l] += x[p * g->c + c0 + l];
            for (int64_t l = 0; l < cn; l++)
                y[c0 + l] = (float)(acc[l] / (double)g->sp);
        }
    }
}

/* Mul by a per-channel scale: y = x * s[n, c] (0 on padding lanes). */
static void pq_lay_mul_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_lay_job *j = ctx;
    const pq_lay_geo *g = &j->g;
    for (int64_t t = t0; t < t1; t++) {
        if (g->blk) {
            int64_t n = t / g->cb, cb = t % g->cb;
            float sv[16];
            for (int l = 0; l < g->blk; l++) {
                int64_t c = cb * g->blk + l;
                sv[l] = c < g->c ? j->s[n * j->s_n + c] : 0.0f;
            }
            j->k->lane_scale(j->x + t * g->sp * g->blk, sv, j->y + t * g->sp * g->blk, g->sp,
                             g->blk);
        } else {
            int64_t n = t / g->sp;
            j->k->binary[PQ_EW_MUL](j->x + t * g->c, 1, j->s + n * j->s_n, 1, j->y + t * g->c,
                                    g->c);
        }
    }
}

/* Add of two copies in the same layout, then the fused activation on the real channels. */
typedef struct pq_lay_add_job {
    pq_lay_job j;
    pq_activation act;
} pq_lay_add_job;

static void pq_lay_add_chunk(void *ctx, int64_t t0, int64_t t1) {
    const pq_lay_add_job *aj = ctx;
    const pq_lay_job *j = &aj->j;
    const pq_lay_geo *g = &j->g;
    int64_t row = g->blk ? g->sp * g->blk : g->sp * g->c; /* t = (n, cb) or n */
    for (int64_t t = t0; t < t1; t++) {
        const float *x = j->x + t * row, *x2 = j->x2 + t * row;
        float *y = j->y + t * row;
        j->k->binary[PQ_EW_ADD](x, 1, x2, 1, y, row);
        if (aj->act.kind == PQ_ACT_NONE) continue;
        int64_t valid = g->blk ? g->c - (t % g->cb) * g->blk : g->c;
        if (!g->blk || valid >= g->blk) {
            pq_act_apply_f32(&aj->act, y, row);
        } else { /* last channel block: padding lanes stay zero */
            for (int64_t p = 0; p < g->sp; p++)
                pq_act_apply_f32(&aj->act, y + p * g->blk, valid);
        }
    }
}

/* ---- MaxPool ---- */

/* Reads ints attribute name (n values) into v with default def; false when malformed. */
static bool pq_lay_ints(const pq_node *node, const char *name, int n, int64_t def, int64_t *v) {
    const pq_attr *at = pq_node_attr(node, name);
    for (int i = 0; i < n; i++)
        v[i] = def;
    if (!at) return true;
    if (at->type != PQ_ATTR_INTS || at->u.ints.n != (uint32_t)n) return false;
    for (int i = 0; i < n; i++)
        v[i] = at->u.ints.v[i];
    return true;
}

/* The 2-D max pooling of node a->node from src (a kept copy's layout) to a destination of Y's
 * dims in the same format, as a oneDNN primitive in ln (rebuilt when the layouts change); *dst
 * receives the destination layout. False when the node's attributes are outside what this
 * handles (auto_pad, an Indices output, dims oneDNN would not derive) or oneDNN refuses. */
static bool pq_lay_pool(pq_lay_node *ln, const pq_kernel_args *a, const dnnl_memory_desc_t *src,
                        const pq_lay_geo *g, dnnl_memory_desc_t *dst) {
    const pq_tensor *X = a->in[0], *Y = a->out[0];
    if (a->n_out > 1 && a->out[1]) return false;
    if (strcmp(pq_node_attr_string(a->node, "auto_pad", "NOTSET"), "NOTSET")) return false;
    int64_t k[2], st[2], dl[2], pads[4];
    if (!pq_lay_ints(a->node, "kernel_shape", 2, 0, k) ||
        !pq_lay_ints(a->node, "strides", 2, 1, st) ||
        !pq_lay_ints(a->node, "dilations", 2, 1, dl) || !pq_lay_ints(a->node, "pads", 4, 0, pads))
        return false;
    dnnl_dims_t kd, sd, dd, pl, pr, yd;
    for (int i = 0; i < 2; i++) {
        if (k[i] < 1 || st[i] < 1 || dl[i] < 1 || pads[i] < 0 || pads[i + 2] < 0) return false;
        int64_t ext = (k[i] - 1) * dl[i] + 1, in = X->dims[2 + i], out = Y->dims[2 + i];
        /* right padding that makes oneDNN's floor formula give ONNX's output size (ceil_mode
         * included); windows never start past the input + left padding */
        int64_t r = (out - 1) * st[i] + ext - in - pads[i];
        if (r < 0) r = 0;
        if ((in + pads[i] + r - ext) / st[i] + 1 != out || (out - 1) * st[i] >= in + pads[i])
            return false;
        kd[i] = k[i];
        sd[i] = st[i];
        dd[i] = dl[i] - 1;
        pl[i] = pads[i];
        pr[i] = r;
    }
    for (int i = 0; i < 4; i++)
        yd[i] = Y->dims[i];
    static const dnnl_format_tag_t tag16 = dnnl_aBcd16b, tag8 = dnnl_aBcd8b, nhwc = dnnl_acdb;
    if (dnnl_memory_desc_init_by_tag(dst, 4, yd, dnnl_f32,
                                     g->blk == 16  ? tag16
                                     : g->blk == 8 ? tag8
                                                   : nhwc))
        return false;
    if (ln->pool.prim && dnnl_memory_desc_equal(&ln->pool_src, src) &&
        dnnl_memory_desc_equal(&ln->pool_dst, dst))
        return true;
    pq_dnnl_prim_destroy(&ln->pool);
    dnnl_pooling_v2_desc_t pd;
    if (dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference, dnnl_pooling_max, src, dst,
                                          sd, kd, dd, pl, pr) ||
        !pq_dnnl_prim_create(&pd, NULL, &ln->pool, NULL))
        return false;
    ln->pool_src = *src;
    ln->pool_dst = *dst;
    return true;
}

/* ---- node glue ---- */

/* Threads for elementwise work of `work` elements: from PQ_ONEDNN_LAYOUT_PAR_MIN_IDLE while every
 * CPU asked for is idle, from PQ_ONEDNN_LAYOUT_PAR_MIN otherwise (as eltwise_fast.c decides). */
static int pq_lay_threads(const pq_kernel_args *a, int64_t work) {
    if (a->n_threads <= 1 || work < PQ_ONEDNN_LAYOUT_PAR_MIN_IDLE) return 1;
    if (work < PQ_ONEDNN_LAYOUT_PAR_MIN && pq_threads_usable(a->n_threads) < a->n_threads) return 1;
    return a->n_threads;
}

/* Per-channel operand: f32 [N or 1, C, 1, 1] (rank 4) or [C, 1, 1]; *s_n = C when per image. */
static bool pq_lay_per_channel(const pq_tensor *s, const pq_lay_geo *g, int64_t *s_n) {
    if (!s || s->dtype != PQ_DTYPE_F32 || !s->data) return false;
    if (s->rank == 4 && s->dims[1] == g->c && s->dims[2] == 1 && s->dims[3] == 1 &&
        (s->dims[0] == 1 || s->dims[0] == g->n)) {
        *s_n = s->dims[0] == g->n && g->n > 1 ? g->c : 0;
        return true;
    }
    if (s->rank == 3 && s->dims[0] == g->c && s->dims[1] == 1 && s->dims[2] == 1) {
        *s_n = 0;
        return true;
    }
    return false;
}

enum pq_status pq_onednn_eltwise_blocked(const pq_kernel_args *a) {
    pq_onednn_cache *c = pq_dnnl_current();
    if (!c || !a->node || !a->graph || !pq_dnnl_keep_blocked()) return PQ_ERR_UNSUPPORTED;
    enum pq_op op = a->node->op;
    if ((op != PQ_OP_GLOBAL_AVERAGE_POOL && op != PQ_OP_MUL && op != PQ_OP_ADD &&
         op != PQ_OP_MAX_POOL) ||
        a->n_out < 1 || !a->out[0] || a->out[0]->dtype != PQ_DTYPE_F32 || !a->out[0]->data)
        return PQ_ERR_UNSUPPORTED;
    pq_lay_node *ln = pq_lay_node_get(c, a);
    if (!ln) return PQ_ERR_NOMEM;
    uint64_t since = ln->last_exec;
    pq_tensor *Y = a->out[0];
    pq_dnnl_blk *in[2] = {NULL, NULL};
    pq_lay_geo g;
    pq_lay_job j;
    memset(&j, 0, sizeof j);
    j.k = pq_eltwise_kernels_get();
    bool ok = false;
    uint32_t full = 0;     /* Mul: the operand with the kept copy */
    void *conv_buf = NULL; /* Add: the second operand in the first one's layout */
    dnnl_memory_desc_t pool_dst;
    if (op == PQ_OP_MAX_POOL) {
        in[0] = pq_dnnl_blk_input(c, a, 0, since);
        ok = in[0] && a->in[0]->dtype == PQ_DTYPE_F32 &&
             pq_lay_classify(&in[0]->md, a->in[0], &g) && Y->rank == 4 && Y->dims[0] == g.n &&
             Y->dims[1] == g.c && pq_lay_pool(ln, a, &in[0]->md, &g, &pool_dst);
    } else if (op == PQ_OP_GLOBAL_AVERAGE_POOL) {
        in[0] = pq_dnnl_blk_input(c, a, 0, since);
        ok = in[0] && pq_lay_classify(&in[0]->md, a->in[0], &g) && Y->rank == 4 &&
             pq_tensor_numel(Y) == g.n * g.c;
    } else if (a->n_in == 2 && a->in[0] && a->in[1]) {
        in[0] = pq_dnnl_blk_input(c, a, 0, since);
        in[1] = pq_dnnl_blk_input(c, a, 1, since);
        if (op == PQ_OP_MUL) { /* the operand of Y's shape is x, the other the scale */
            full = a->in[0]->rank == 4 && pq_tensor_numel(a->in[0]) == pq_tensor_numel(Y) ? 0 : 1;
            in[1 - full] = NULL;
            ok = in[full] && pq_lay_classify(&in[full]->md, a->in[full], &g) &&
                 pq_lay_per_channel(a->in[1 - full], &g, &j.s_n) && Y->rank == 4 &&
                 !memcmp(Y->dims, a->in[full]->dims, sizeof Y->dims[0] * 4);
            j.s = ok ? a->in[1 - full]->data : NULL;
            /* the scale is read plain (a kept copy of it may have its plain tensor elided) */
            if (ok) PQ_TRY(pq_dnnl_plain_inputs(c, a, 1u << (1 - full)));
        } else {
            pq_lay_geo g1;
            ok = in[0] && in[1] && in[0] != in[1] && pq_lay_classify(&in[0]->md, a->in[0], &g) &&
                 pq_lay_classify(&in[1]->md, a->in[1], &g1) && Y->rank == 4 &&
                 !memcmp(Y->dims, a->in[0]->dims, sizeof Y->dims[0] * 4) &&
                 !memcmp(Y->dims, a->in[1]->dims, sizeof Y->dims[0] * 4);
            if (ok && !dnnl_memory_desc_equal(&in[0]->md, &in[1]->md)) {
                /* the second operand reordered straight into the first one's layout */
                if (!ln->conv.prim || !dnnl_memory_desc_equal(&ln->conv_from, &in[1]->md) ||
                    !dnnl_memory_desc_equal(&ln->conv_to, &in[0]->md)) {
                    pq_dnnl_prim_destroy(&ln->conv);
                    ok = pq_dnnl_reorder_create(&in[1]->md, &in[0]->md, &ln->conv);
                    ln->conv_from = in[1]->md;
                    ln->conv_to = in[0]->md;
                }
                size_t nb = dnnl_memory_desc_get_size(&in[0]->md);
                conv_buf = ok ? pq_dnnl_work(c, PQ_DNNL_WORK_SRC, nb, a->err) : NULL;
                if (ok && !conv_buf) return PQ_ERR_NOMEM;
                if (ok) {
                    pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &in[1]->md, in[1]->buf},
                                         {DNNL_ARG_TO, &in[0]->md, conv_buf}};
                    PQ_TRY(pq_dnnl_execute_mems(&ln->conv, &ln->m_conv, ra, 2, NULL,
                                                "add operand conversion", a->err));
                }
            }
        }
    }
    if (!ok) { /* the plain kernels run: give them plain inputs */
        PQ_TRY(pq_dnnl_plain_inputs(c, a, ~0u));
        return PQ_ERR_UNSUPPORTED;
    }
    if (op == PQ_OP_GLOBAL_AVERAGE_POOL) {
        j.g = g;
        j.x = in[0]->buf;
        j.y = Y->data;
        pq_parallel_for(pq_lay_threads(a, g.n * g.c * g.sp), g.blk ? g.n * g.cb : g.n,
                        pq_lay_gap_chunk, &j);
        pq_dnnl_blk_took(in[0]);
        pq_dnnl_blk_done(c, in[0]->value);
        ln->last_exec = pq_dnnl_tick(c);
        return PQ_OK;
    }
    /* Mul / Add: the result as a kept copy in the same layout, written to the plain tensor
     * unless every reader takes the copy (as for convolutions) */
    pq_activation act = {PQ_ACT_NONE, 0, 0};
    if (op == PQ_OP_ADD) {
        pq_error e2;
        memset(&e2, 0, sizeof e2);
        if (pq_node_activation(a->node, &act, &e2) != PQ_OK) {
            PQ_TRY(pq_dnnl_plain_inputs(c, a, ~0u));
            return PQ_ERR_UNSUPPORTED; /* the plain kernel reports it */
        }
    }
    const pq_dnnl_blk *src = in[full];
    dnnl_memory_desc_t md = op == PQ_OP_MAX_POOL ? pool_dst : src->md;
    size_t bytes = dnnl_memory_desc_get_size(&md);
    bool elided_input = !src->plain_valid || (in[1] && !in[1]->plain_valid) || conv_buf;
    if (ln->readers < 0)
        pq_dnnl_count_readers(a->graph, a->node->outputs[0], &ln->readers, &ln->only);
    if (ln->readers == 0 && !elided_input) return PQ_ERR_UNSUPPORTED; /* plain is as good */
    const pq_value *yval = pq_dnnl_value(a, true, 0);
    pq_dnnl_blk *old = pq_dnnl_blk_find(c, yval);
    if (old) pq_dnnl_blk_free(old);
    /* taking the output entry may move the entries: keep what is needed of the inputs */
    const void *x0 = in[0] ? in[0]->buf : NULL, *x1 = conv_buf ? conv_buf
                                                      : in[1]  ? in[1]->buf
                                                               : NULL;
    const void *v0 = in[0] ? in[0]->value : NULL, *v1 = in[1] ? in[1]->value : NULL;
    const void *mx = full ? x1 : x0; /* Mul: the source of the product */
    pq_dnnl_blk *ob = NULL;
    if (op == PQ_OP_MUL) {
        /* the last reader expected to take x's kept copy writes the product over it (same
         * layout, same bytes): nothing new to fetch for the result and half the footprint. x's
         * entry becomes y's (every reader took x: none needs it or its plain tensor any more
         * this run), so no other buffer is taken (taking one would make the pool allocate). */
        const void *vx = full ? v1 : v0;
        pq_dnnl_blk *xb = vx ? pq_dnnl_blk_find(c, vx) : NULL;
        if (xb && xb->buf == mx && xb->want > 0 && xb->used + 1 == xb->want && xb->cap >= bytes &&
            a->node->inputs[0] != a->node->inputs[1]) {
            pq_dnnl_blk_took(xb);
            pq_dnnl_blk_free(xb);
            xb->value = yval;
            ob = xb;
            v0 = v1 = NULL; /* taken */
        }
    }
    if (!ob && !(ob = pq_dnnl_blk_take(c, yval, bytes, a->err))) return PQ_ERR_NOMEM;
    bool elide = ln->readers > 0 && ln->only && ln->confirmed && pq_dnnl_elide_allowed(c);
    ln->confirmed = false;
    j.g = g;
    j.y = ob->buf;
    int64_t tasks = g.blk ? g.n * g.cb : (op == PQ_OP_MUL ? g.n * g.sp : g.n);
    enum pq_status st = PQ_OK;
    if (op == PQ_OP_MAX_POOL) {
        int nt = pq_dnnl_threads_for(a->n_threads, g.n * g.c * g.sp);
        pq_dnnl_set_threads(nt);
        pq_dnnl_arg pa[2] = {{DNNL_ARG_SRC, &ln->pool_src, (void *)x0},
                             {DNNL_ARG_DST, &ln->pool_dst, ob->buf}};
        void *scratch = NULL;
        if (ln->pool.scratch_bytes &&
            !(scratch = pq_dnnl_work(c, PQ_DNNL_WORK_SCRATCH, ln->pool.scratch_bytes, a->err)))
            st = PQ_ERR_NOMEM;
        if (st == PQ_OK)
            st = pq_dnnl_execute_mems(&ln->pool, &ln->m_pool, pa, 2, scratch, "max pool", a->err);
    } else if (op == PQ_OP_MUL) {
        j.x = mx;
        pq_parallel_for(pq_lay_threads(a, g.n * g.c * g.sp), tasks, pq_lay_mul_chunk, &j);
    } else {
        pq_lay_add_job aj = {j, act};
        aj.j.x = x0;
        aj.j.x2 = x1;
        pq_parallel_for(pq_lay_threads(a, g.n * g.c * g.sp), tasks, pq_lay_add_chunk, &aj);
    }
    if (st == PQ_OK && !elide) {
        if (!ln->to_plain.prim || !dnnl_memory_desc_equal(&ln->to_plain_md, &md)) {
            pq_dnnl_prim_destroy(&ln->to_plain);
            dnnl_memory_desc_t plain;
            if (dnnl_memory_desc_init_by_strides(&plain, 4, md.dims, dnnl_f32, NULL) ||
                !pq_dnnl_reorder_create(&md, &plain, &ln->to_plain))
                st = pq_error_set(a->err, PQ_ERR_INTERNAL, "onednn: %s output reorder failed",
                                  pq_op_name(op));
            ln->to_plain_md = md;
        }
        if (st == PQ_OK) {
            dnnl_memory_desc_t plain;
            dnnl_memory_desc_init_by_strides(&plain, 4, md.dims, dnnl_f32, NULL);
            pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &md, ob->buf}, {DNNL_ARG_TO, &plain, Y->data}};
            st = pq_dnnl_execute_mems(&ln->to_plain, &ln->m_plain, ra, 2, NULL,
                                      "elementwise output reorder", a->err);
        }
    } else if (st == PQ_OK) {
        pq_dnnl_count_layout(true);
    }
    ln->last_exec = pq_dnnl_tick(c);
    if (st != PQ_OK) {
        pq_dnnl_blk_free(ob);
        return st;
    }
    ob->md = md;
    ob->plain = Y->data;
    ob->stamp = ln->last_exec;
    ob->plain_valid = !elide;
    ob->want = ln->readers;
    ob->used = 0;
    ob->confirm = &ln->confirmed;
    if (v0) pq_dnnl_blk_took(pq_dnnl_blk_find(c, v0));
    if (v1 && v1 != v0) pq_dnnl_blk_took(pq_dnnl_blk_find(c, v1));
    pq_dnnl_blk_done(c, v0);
    if (v1 != v0) pq_dnnl_blk_done(c, v1);
    return PQ_OK;
}
