/* Per-session oneDNN cache: one entry per graph node (primitive, reordered weights, memory
 * objects), shared work buffers, and the calling thread's binding to the current cache. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/onednn/onednn_impl.h"
#include "ir/ir.h"

struct pq_onednn_cache {
    pq_dnnl_node *slots; /* open addressing on the node pointer, linear probing */
    size_t cap, n;       /* cap is 0 or a power of two */
    void *work[PQ_DNNL_WORK_COUNT];
    size_t work_bytes[PQ_DNNL_WORK_COUNT];
    pq_dnnl_blk *blk; /* blocked activations, n_blk used of cap_blk */
    size_t n_blk, cap_blk;
    uint64_t clock;
    bool elide; /* pq_onednn_run_begin: plain tensors may be skipped this run */
};

static _Thread_local pq_onednn_cache *pq_dnnl_bound;

pq_onednn_cache *pq_onednn_cache_create(void) {
    return pq_calloc(1, sizeof(pq_onednn_cache));
}

void pq_onednn_cache_destroy(pq_onednn_cache *c) {
    if (!c) return;
    if (pq_dnnl_bound == c) pq_dnnl_bound = NULL;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].node && c->slots[i].destroy) c->slots[i].destroy(c->slots[i].val);
    pq_free(c->slots);
    for (int i = 0; i < PQ_DNNL_WORK_COUNT; i++)
        pq_free(c->work[i]);
    for (size_t i = 0; i < c->n_blk; i++)
        pq_free(c->blk[i].buf);
    pq_free(c->blk);
    pq_free(c);
}

void pq_onednn_run_begin(bool plain_optional) {
    pq_onednn_cache *c = pq_dnnl_bound;
    if (!c) return;
    c->elide = plain_optional && pq_dnnl_keep_blocked();
    /* the previous run's copies are stale (no reader takes a copy written before its own last
     * run): every entry starts free, so each run takes buffers in the same order and the pool
     * stops growing after the first runs (without this, the entries a run leaves taken depend
     * on the order the previous runs freed them: a squeeze-excite Mul that takes over its
     * input's entry made the pool reallocate buffers every few runs) */
    for (size_t i = 0; i < c->n_blk; i++)
        pq_dnnl_blk_free(&c->blk[i]);
}

bool pq_dnnl_elide_allowed(const pq_onednn_cache *c) {
    return c->elide;
}

static _Atomic int pq_dnnl_keep_mode = -1;

bool pq_dnnl_keep_blocked(void) {
    return pq_dnnl_env_switch(&pq_dnnl_keep_mode, "PIQC_ONEDNN_LAYOUT", "reorder");
}

static atomic_ulong pq_dnnl_reused, pq_dnnl_elided;

void pq_dnnl_count_layout(bool elided) {
    atomic_fetch_add(elided ? &pq_dnnl_elided : &pq_dnnl_reused, 1);
}

void pq_onednn_layout_stats(unsigned long *reused, unsigned long *elided) {
    if (reused) *reused = atomic_load(&pq_dnnl_reused);
    if (elided) *elided = atomic_load(&pq_dnnl_elided);
}

uint64_t pq_dnnl_tick(pq_onednn_cache *c) {
    return ++c->clock;
}

pq_dnnl_blk *pq_dnnl_blk_find(pq_onednn_cache *c, const void *value) {
    for (size_t i = 0; i < c->n_blk; i++)
        if (c->blk[i].value == value) return &c->blk[i];
    return NULL;
}

pq_dnnl_blk *pq_dnnl_blk_take(pq_onednn_cache *c, const void *value, size_t bytes, pq_error *err) {
    pq_dnnl_blk *b = pq_dnnl_blk_find(c, value);
    if (!b) { /* a free entry: the smallest that fits, else the largest */
        for (size_t i = 0; i < c->n_blk; i++) {
            pq_dnnl_blk *f = &c->blk[i];
            if (f->value) continue;
            if (!b || (f->cap >= bytes && (b->cap < bytes || f->cap < b->cap)) ||
                (b->cap < bytes && f->cap > b->cap))
                b = f;
        }
    }
    if (!b) {
        if (c->n_blk == c->cap_blk) {
            size_t cap = c->cap_blk ? 2 * c->cap_blk : 16;
            pq_dnnl_blk *nb = pq_calloc(cap, sizeof *nb);
            if (!nb) {
                pq_error_nomem(err, "onednn blocked activations");
                return NULL;
            }
            if (c->n_blk) memcpy(nb, c->blk, c->n_blk * sizeof *nb);
            pq_free(c->blk);
            c->blk = nb;
            c->cap_blk = cap;
        }
        b = &c->blk[c->n_blk++];
        memset(b, 0, sizeof *b);
    }
    if (b->cap < bytes) {
        pq_free(b->buf);
        b->cap = 0;
        b->buf = pq_malloc_aligned(bytes);
        if (!b->buf) {
            b->value = NULL;
            pq_error_nomem(err, "onednn blocked activation");
            return NULL;
        }
        b->cap = bytes;
    }
    b->value = value;
    return b;
}

void pq_dnnl_count_readers(const pq_graph *g, uint32_t y, int *readers, bool *only) {
    *readers = 0;
    *only = !(g->values[y].flags & PQ_VALUE_OUTPUT);
    for (uint32_t o = 0; o < g->n_outputs; o++)
        if (g->outputs[o] == y) *only = false;
    for (uint32_t j = 0; j < g->n_nodes; j++) {
        const pq_node *n = &g->nodes[j];
        for (uint32_t at = 0; at < n->n_attrs; at++)
            if (n->attrs[at].type == PQ_ATTR_GRAPH) *only = false;
        uint32_t times = 0, first = 0;
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == y && times++ == 0) first = k;
        if (!times) continue;
        bool ok = times == 1 && (((n->op == PQ_OP_CONV || n->op == PQ_OP_GLOBAL_AVERAGE_POOL ||
                                   n->op == PQ_OP_MAX_POOL) &&
                                  first == 0) ||
                                 (n->op == PQ_OP_CONV_ADD && (first == 0 || first == 3)) ||
                                 n->op == PQ_OP_MUL || n->op == PQ_OP_ADD);
        if (ok)
            (*readers)++;
        else
            *only = false;
    }
}

const pq_value *pq_dnnl_value(const pq_kernel_args *a, bool output, uint32_t i) {
    if (!a->graph || !a->node) return NULL;
    uint32_t v = output ? (a->node->n_outputs ? a->node->outputs[0] : PQ_NONE)
                        : (i < a->node->n_inputs ? a->node->inputs[i] : PQ_NONE);
    return v == PQ_NONE || v >= a->graph->n_values ? NULL : &a->graph->values[v];
}

pq_dnnl_blk *pq_dnnl_blk_input(pq_onednn_cache *c, const pq_kernel_args *a, uint32_t i,
                               uint64_t since) {
    const pq_value *v = pq_dnnl_value(a, false, i);
    if (!v || i >= a->n_in || !a->in[i]) return NULL;
    pq_dnnl_blk *b = pq_dnnl_blk_find(c, v);
    return b && b->stamp > since && b->plain == a->in[i]->data ? b : NULL;
}

void pq_dnnl_blk_took(pq_dnnl_blk *b) {
    pq_dnnl_count_layout(false);
    if (++b->used == b->want && b->confirm) *b->confirm = true;
}

enum pq_status pq_dnnl_plain_inputs(pq_onednn_cache *c, const pq_kernel_args *a, unsigned mask) {
    for (uint32_t i = 0; i < a->n_in && i < 32; i++) {
        if (!(mask >> i & 1u)) continue;
        pq_dnnl_blk *b = pq_dnnl_blk_input(c, a, i, 0);
        if (!b || b->plain_valid) continue;
        const pq_tensor *t = a->in[i];
        dnnl_dims_t d;
        for (int k = 0; k < t->rank; k++)
            d[k] = t->dims[k];
        dnnl_memory_desc_t plain;
        pq_dnnl_prim r;
        if (t->rank != b->md.ndims ||
            dnnl_memory_desc_init_by_strides(&plain, t->rank, d, dnnl_f32, NULL) ||
            !pq_dnnl_reorder_create(&b->md, &plain, &r))
            return pq_error_set(a->err, PQ_ERR_INTERNAL, "onednn: plain input %u restore failed",
                                i);
        pq_dnnl_arg ra[2] = {{DNNL_ARG_FROM, &b->md, b->buf}, {DNNL_ARG_TO, &plain, t->data}};
        enum pq_status st = pq_dnnl_execute(&r, ra, 2, "plain input restore", a->err);
        pq_dnnl_prim_destroy(&r);
        PQ_TRY(st);
        b->plain_valid = true;
    }
    return PQ_OK;
}

void pq_dnnl_blk_done(pq_onednn_cache *c, const void *value) {
    pq_dnnl_blk *b = value ? pq_dnnl_blk_find(c, value) : NULL;
    if (b && b->want > 0 && b->used >= b->want) pq_dnnl_blk_free(b);
}

void pq_dnnl_blk_free(pq_dnnl_blk *b) {
    b->value = NULL;
    b->plain = NULL;
    b->want = b->used = 0;
    b->confirm = NULL;
}

pq_onednn_cache *pq_onednn_cache_bind(pq_onednn_cache *c) {
    pq_onednn_cache *prev = pq_dnnl_bound;
    pq_dnnl_bound = c;
    return prev;
}

size_t pq_onednn_cache_entries(const pq_onednn_cache *c) {
    return c ? c->n : 0;
}

size_t pq_onednn_cache_blocked_bytes(const pq_onednn_cache *c) {
    size_t t = 0;
    for (size_t i = 0; c && i < c->n_blk; i++)
        t += c->blk[i].cap;
    return t;
}

pq_onednn_cache *pq_dnnl_current(void) {
    return pq_dnnl_bound;
}

static size_t pq_dnnl_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static pq_dnnl_node *pq_dnnl_probe(pq_dnnl_node *slots, size_t cap, const void *node) {
    size_t i = pq_dnnl_hash(node) & (cap - 1);
    while (slots[i].node && slots[i].node != node)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

pq_dnnl_node *pq_dnnl_node_get(pq_onednn_cache *c, const void *node, pq_error *err) {
    if (c->cap && pq_dnnl_probe(c->slots, c->cap, node)->node)
        return pq_dnnl_probe(c->slots, c->cap, node);
    if (2 * (c->n + 1) > c->cap) { /* keep the load factor at most 1/2 */
        size_t cap = c->cap ? 2 * c->cap : 64;
        pq_dnnl_node *slots = pq_calloc(cap, sizeof *slots);
        if (!slots) {
            pq_error_nomem(err, "onednn node cache");
            return NULL;
        }
        for (size_t i = 0; i < c->cap; i++)
            if (c->slots[i].node) *pq_dnnl_probe(slots, cap, c->slots[i].node) = c->slots[i];
        pq_free(c->slots);
        c->slots = slots;
        c->cap = cap;
    }
    pq_dnnl_node *e = pq_dnnl_probe(c->slots, c->cap, node);
    memset(e, 0, sizeof *e);
    e->node = node;
    c->n++;
    return e;
}

pq_dnnl_node *pq_dnnl_node_aux(pq_onednn_cache *c, const void *node, pq_error *err) {
    return pq_dnnl_node_get(c, (const char *)node + 1, err);
}

void pq_dnnl_node_reset(pq_dnnl_node *e) {
    if (e->destroy) e->destroy(e->val);
    e->val = NULL;
    e->destroy = NULL;
    memset(&e->key, 0, sizeof e->key);
}

void *pq_dnnl_work(pq_onednn_cache *c, int which, size_t bytes, pq_error *err) {
    if (bytes <= c->work_bytes[which]) return c->work[which];
    pq_free(c->work[which]);
    c->work_bytes[which] = 0;
    c->work[which] = pq_malloc_aligned(bytes);
    if (!c->work[which]) {
        pq_error_nomem(err, "onednn work buffer");
        return NULL;
    }
    c->work_bytes[which] = bytes;
    return c->work[which];
}

/* ---- weights cached by address and size ---- */

#define PQ_DNNL_SAMPLES 8

void pq_dnnl_wsig_take(pq_dnnl_wsig *s, const void *data, size_t bytes) {
    memset(s, 0, sizeof *s);
    s->data = data;
    s->bytes = bytes;
    const unsigned char *b = data;
    for (int i = 0; i < PQ_DNNL_SAMPLES && bytes >= 8; i++) {
        size_t off = (bytes - 8) / (PQ_DNNL_SAMPLES - 1) * (size_t)i;
        memcpy(&s->sample[i], b + off, 8);
    }
}

bool pq_dnnl_wsig_same(const pq_dnnl_wsig *s, const void *data, size_t bytes) {
    if (s->data != data || s->bytes != bytes || !data) return false;
    const unsigned char *b = data;
    for (int i = 0; i < PQ_DNNL_SAMPLES && bytes >= 8; i++) {
        size_t off = (bytes - 8) / (PQ_DNNL_SAMPLES - 1) * (size_t)i;
        uint64_t v;
        memcpy(&v, b + off, 8);
        if (v != s->sample[i]) return false;
    }
    return true;
}

bool pq_dnnl_is_constant(const pq_kernel_args *a, uint32_t i) {
    if (!a->graph || !a->node || i >= a->node->n_inputs || i >= a->n_in) return false;
    uint32_t v = a->node->inputs[i];
    if (v == PQ_NONE || v >= a->graph->n_values) return false;
    return a->graph->values[v].constant && a->graph->values[v].constant == a->in[i];
}
