/* The oneDNN CPU engine and stream (created once), OpenMP thread-count control, primitive
 * creation/execution helpers and the small thread-safe LRU cache the oneDNN kernels share. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/onednn/onednn_impl.h"
#include "backends/piqc_ops.h"
#include "backends/threadpool.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"

static pthread_once_t pq_dnnl_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t pq_dnnl_engine;
static dnnl_stream_t pq_dnnl_stream;
static bool pq_dnnl_ready;
static void (*pq_omp_set_num_threads)(int);
static atomic_ulong pq_dnnl_hits, pq_dnnl_misses;
static _Atomic uint64_t pq_dnnl_prim_ids; /* last pq_dnnl_prim id handed out */
static _Atomic int64_t pq_dnnl_min_macs = PQ_ONEDNN_MIN_MACS;

void pq_onednn_set_min_macs(int64_t macs) {
    pq_dnnl_min_macs = macs;
}

/* libgomp's spin count for its environment (see pq_onednn_macs_per_thread_for); -1: infinite. */
static long long pq_gomp_spin(const char *policy, const char *spin) {
    if (spin && *spin) {
        if (!strncasecmp(spin, "infinit", 7)) return -1;
        char *end;
        errno = 0;
        long long v = strtoll(spin, &end, 10);
        if (end != spin && errno == 0 && v >= 0) {
            while (*end == ' ' || *end == '\t')
                end++;
            long long mul = 1;
            switch (*end) {
            case 'k':
            case 'K':
                mul = 1000LL;
                end++;
                break;
            case 'M':
                mul = 1000000LL;
                end++;
                break;
            case 'G':
                mul = 1000000000LL;
                end++;
                break;
            case 'T':
                mul = 1000000000000LL;
                end++;
                break;
            default:
                break;
            }
            while (*end == ' ' || *end == '\t')
                end++;
            if (*end == '\0') return v > (long long)1 << 40 ? -1 : v * mul;
        }
        /* invalid: libgomp ignores it and falls back to the wait policy */
    }
    if (policy && !strcasecmp(policy, "passive")) return 0;
    if (policy && !strcasecmp(policy, "active")) return -1;
    return 300000;
}

int64_t pq_onednn_macs_per_thread_for(const char *wait_policy, const char *spincount) {
    long long spin = pq_gomp_spin(wait_policy, spincount);
    return spin >= 0 && spin < PQ_ONEDNN_SPIN_MIN ? PQ_ONEDNN_MACS_PER_THREAD_PASSIVE
                                                  : PQ_ONEDNN_MACS_PER_THREAD;
}

static _Atomic int64_t pq_dnnl_mpt; /* 0: not read yet */

int64_t pq_onednn_macs_per_thread(void) {
    int64_t m = pq_dnnl_mpt;
    if (m == 0) {
        m = pq_onednn_macs_per_thread_for(getenv("OMP_WAIT_POLICY"), getenv("GOMP_SPINCOUNT"));
        pq_dnnl_mpt = m;
    }
    return m;
}

int pq_dnnl_threads_for(int n_threads, int64_t macs) {
    if (n_threads <= 1) return 1;
    int64_t mpt = pq_onednn_macs_per_thread();
    int64_t t = macs / mpt;
    if (t <= 1) return 1;
    if (t > n_threads) t = n_threads;
    /* spinning workers on CPUs other processes keep busy: as many threads as idle CPUs */
    if (mpt < PQ_ONEDNN_MACS_PER_THREAD_PASSIVE) {
        int u = pq_threads_usable(n_threads);
        if (t > u) t = u;
    }
    return t > 1 ? (int)t : 1;
}

bool pq_dnnl_too_small(int64_t macs) {
    return macs < pq_dnnl_min_macs;
}

static void pq_dnnl_init_once(void) {
    if (dnnl_engine_create(&pq_dnnl_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&pq_dnnl_stream, pq_dnnl_engine, dnnl_stream_default_flags) !=
        dnnl_success) {
        dnnl_engine_destroy(pq_dnnl_engine);
        return;
    }
    /* libdnnl links libgomp, so this only takes a reference to the loaded library. */
    void *h = dlopen("libgomp.so.1", RTLD_LAZY);
    if (h) {
        void *sym = dlsym(h, "omp_set_num_threads");
        memcpy(&pq_omp_set_num_threads, &sym, sizeof sym);
    }
    pq_dnnl_ready = true;
}

bool pq_dnnl_get(dnnl_engine_t *eng, dnnl_stream_t *strm) {
    pthread_once(&pq_dnnl_once, pq_dnnl_init_once);
    if (!pq_dnnl_ready) return false;
    if (eng) *eng = pq_dnnl_engine;
    if (strm) *strm = pq_dnnl_stream;
    return true;
}

bool pq_onednn_available(void) {
    return pq_dnnl_get(NULL, NULL);
}

void pq_dnnl_set_threads(int n) {
    if (pq_omp_set_num_threads) pq_omp_set_num_threads(n > 0 ? n : 1);
}

void pq_dnnl_count(bool hit) {
    if (hit)
        atomic_fetch_add(&pq_dnnl_hits, 1);
    else
        atomic_fetch_add(&pq_dnnl_misses, 1);
}

void pq_onednn_cache_stats(unsigned long *hits, unsigned long *misses) {
    if (hits) *hits = atomic_load(&pq_dnnl_hits);
    if (misses) *misses = atomic_load(&pq_dnnl_misses);
}

void pq_onednn_cache_clear(void) {
    pq_onednn_conv_cache_clear();
    pq_onednn_matmul_cache_clear();
}

/* ---- fused activations as post-ops ---- */

static _Atomic int pq_dnnl_act_mode = -1; /* -1: not read yet, 0: reference epilogue, 1: post-ops */

bool pq_dnnl_env_switch(_Atomic int *mode, const char *name, const char *off_value) {
    int m = *mode;
    if (m < 0) {
        const char *e = getenv(name);
        m = !(e && !strcmp(e, off_value));
        *mode = m;
    }
    return m == 1;
}

bool pq_dnnl_act_postops_enabled(void) {
    return pq_dnnl_env_switch(&pq_dnnl_act_mode, "PIQC_ONEDNN_ACT", "ref");
}

bool pq_dnnl_act_get(const pq_node *n, pq_activation *act) {
    pq_error err;
    memset(&err, 0, sizeof err);
    if (pq_node_activation(n, act, &err) != PQ_OK) {
        act->kind = PQ_ACT_NONE;
        return false;
    }
    return act->kind == PQ_ACT_NONE || pq_dnnl_act_postops_enabled();
}

bool pq_dnnl_act_append(dnnl_post_ops_t po, const pq_activation *act) {
    const float one = 1.0f;
    switch (act->kind) {
    case PQ_ACT_NONE:
    case PQ_ACT_COUNT:
        return true;
    case PQ_ACT_RELU:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_relu, 0.0f, 0.0f);
    case PQ_ACT_LEAKY_RELU:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_relu, act->alpha, 0.0f);
    case PQ_ACT_CLIP:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_clip, act->alpha, act->beta);
    case PQ_ACT_SIGMOID:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_logistic, 0.0f, 0.0f);
    case PQ_ACT_HARD_SIGMOID: /* clamp(alpha x + beta, 0, 1) */
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_linear, act->alpha, act->beta) &&
               !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_clip, 0.0f, 1.0f);
    case PQ_ACT_HARD_SWISH:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_hardswish, 0.0f, 0.0f);
    case PQ_ACT_TANH:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_tanh, 0.0f, 0.0f);
    case PQ_ACT_GELU:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
    case PQ_ACT_SWISH:
        return !dnnl_post_ops_append_eltwise(po, one, dnnl_eltwise_swish, 1.0f, 0.0f);
    }
    return false;
}

static int64_t pq_dnnl_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

void pq_dnnl_act_key(pq_dnnl_key *k, const pq_activation *act) {
    pq_dnnl_key_push(k, act->kind);
    pq_dnnl_key_push(k, pq_dnnl_f32_bits(act->alpha));
    pq_dnnl_key_push(k, pq_dnnl_f32_bits(act->beta));
}

/* ---- keys ---- */

void pq_dnnl_key_init(pq_dnnl_key *k, int64_t tag) {
    memset(k, 0, sizeof *k);
    k->w[0] = tag;
    k->n = 1;
}

void pq_dnnl_key_push(pq_dnnl_key *k, int64_t v) {
    /* keys are built from bounded shapes (rank <= 8); running out of words is a bug */
    if (k->n < PQ_DNNL_KEY_WORDS)
        k->w[k->n++] = v;
    else
        k->w[0] = -1; /* poisoned: never equal to a well-formed key's tag */
}

bool pq_dnnl_key_eq(const pq_dnnl_key *a, const pq_dnnl_key *b) {
    return a->n == b->n && !memcmp(a->w, b->w, (size_t)a->n * sizeof a->w[0]);
}

/* ---- cache ---- */

static void pq_dnnl_entry_free(pq_dnnl_cache *c, pq_dnnl_entry *e) {
    c->destroy(e->val);
    pq_free(e);
}

/* Removes slot i from the cache; the entry dies now or at its last release. */
static void pq_dnnl_evict(pq_dnnl_cache *c, int i) {
    pq_dnnl_entry *e = c->slot[i];
    c->slot[i] = NULL;
    e->cached = false;
    if (e->refs == 0) pq_dnnl_entry_free(c, e);
}

enum pq_status pq_dnnl_cache_acquire(pq_dnnl_cache *c, const pq_dnnl_key *k, pq_dnnl_valid_fn valid,
                                     pq_dnnl_create_fn create, void *ctx, pq_dnnl_entry **out,
                                     pq_error *err) {
    *out = NULL;
    if (k->w[0] < 0) return PQ_ERR_UNSUPPORTED;
    pthread_mutex_lock(&c->mu);
    c->clock++;
    for (int i = 0; i < c->cap; i++) {
        pq_dnnl_entry *e = c->slot[i];
        if (!e || !pq_dnnl_key_eq(&e->key, k)) continue;
        if (valid && !valid(ctx, e->val)) {
            pq_dnnl_evict(c, i);
            break;
        }
        e->refs++;
        e->stamp = c->clock;
        pthread_mutex_unlock(&c->mu);
        pq_dnnl_count(true);
        *out = e;
        return PQ_OK;
    }
    pq_dnnl_entry *e = pq_calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        return pq_error_nomem(err, "onednn cache entry");
    }
    enum pq_status st = create(ctx, &e->val, err);
    if (st != PQ_OK) {
        pthread_mutex_unlock(&c->mu);
        pq_free(e);
        return st;
    }
    pq_dnnl_count(false);
    e->key = *k;
    e->refs = 1;
    e->stamp = c->clock;
    int victim = -1;
    for (int i = 0; i < c->cap; i++) {
        if (!c->slot[i]) {
            victim = i;
            break;
        }
        if (c->slot[i]->refs == 0 && (victim < 0 || c->slot[i]->stamp < c->slot[victim]->stamp))
            victim = i;
    }
    if (victim >= 0) {
        if (c->slot[victim]) pq_dnnl_evict(c, victim);
        c->slot[victim] = e;
        e->cached = true;
    }
    pthread_mutex_unlock(&c->mu);
    *out = e;
    return PQ_OK;
}

void pq_dnnl_cache_release(pq_dnnl_cache *c, pq_dnnl_entry *e) {
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    e->refs--;
    if (e->refs == 0 && !e->cached) pq_dnnl_entry_free(c, e);
    pthread_mutex_unlock(&c->mu);
}

void pq_dnnl_cache_drop(pq_dnnl_cache *c) {
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->cap; i++)
        if (c->slot[i]) pq_dnnl_evict(c, i);
    pthread_mutex_unlock(&c->mu);
}

/* ---- primitives ---- */

bool pq_dnnl_prim_create(const_dnnl_op_desc_t desc, dnnl_primitive_attr_t attr, pq_dnnl_prim *p,
                         dnnl_primitive_desc_t *pd_out) {
    dnnl_engine_t eng;
    memset(p, 0, sizeof *p);
    if (pd_out) *pd_out = NULL;
    if (!pq_dnnl_get(&eng, NULL)) return false;
    dnnl_primitive_attr_t own = NULL;
    if (!attr) {
        if (dnnl_primitive_attr_create(&own) != dnnl_success) return false;
        attr = own;
    }
    bool ok = false;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto done;
    if (dnnl_primitive_desc_create(&pd, desc, attr, eng, NULL) != dnnl_success) {
        pd = NULL;
        goto done;
    }
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd) {
        p->scratch_md = *smd;
        p->scratch_bytes = dnnl_memory_desc_get_size(smd);
    }
    if (dnnl_primitive_create(&p->prim, pd) != dnnl_success) {
        p->prim = NULL;
        goto done;
    }
    p->id = atomic_fetch_add(&pq_dnnl_prim_ids, 1) + 1;
    ok = true;
done:
    if (own) dnnl_primitive_attr_destroy(own);
    if (pd && (!ok || !pd_out))
        dnnl_primitive_desc_destroy(pd);
    else if (pd)
        *pd_out = pd;
    return ok;
}

bool pq_dnnl_reorder_create(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                            pq_dnnl_prim *p) {
    dnnl_engine_t eng;
    memset(p, 0, sizeof *p);
    if (!pq_dnnl_get(&eng, NULL)) return false;
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return false;
    dnnl_primitive_desc_t pd = NULL;
    bool ok =
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
        dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr) == dnnl_success;
    if (ok) {
        const dnnl_memory_desc_t *smd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (smd) {
            p->scratch_md = *smd;
            p->scratch_bytes = dnnl_memory_desc_get_size(smd);
        }
        ok = dnnl_primitive_create(&p->prim, pd) == dnnl_success;
        if (!ok) p->prim = NULL;
        if (ok) p->id = atomic_fetch_add(&pq_dnnl_prim_ids, 1) + 1;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return ok;
}

void pq_dnnl_prim_destroy(pq_dnnl_prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    p->prim = NULL;
    p->id = 0;
}

#define PQ_DNNL_MAX_ARGS 8

enum pq_status pq_dnnl_execute(const pq_dnnl_prim *p, const pq_dnnl_arg *args, int nargs,
                               const char *what, pq_error *err) {
    return pq_dnnl_execute_mems(p, NULL, args, nargs, NULL, what, err);
}

enum pq_status pq_dnnl_execute_ws(const pq_dnnl_prim *p, const pq_dnnl_arg *args, int nargs,
                                  void *scratch_in, const char *what, pq_error *err) {
    return pq_dnnl_execute_mems(p, NULL, args, nargs, scratch_in, what, err);
}

void pq_dnnl_mems_free(pq_dnnl_mems *m) {
    if (!m) return;
    for (int i = 0; i < PQ_DNNL_MEMS; i++)
        if (m->mem[i]) dnnl_memory_destroy(m->mem[i]);
    memset(m, 0, sizeof *m);
}

/* The memory object of argument slot i for (md, data): the one kept in m when it was made for
 * md (see pq_dnnl_mems), its data handle set to data, else a new one, kept in m when there is a
 * slot (*owned false) or owned by the caller (*owned true). */
static dnnl_status_t pq_dnnl_mem(pq_dnnl_mems *m, int i, const dnnl_memory_desc_t *md,
                                 dnnl_engine_t eng, void *data, dnnl_memory_t *out, bool *owned) {
    bool slot = m && i < PQ_DNNL_MEMS;
    if (slot && m->mem[i]) {
        const dnnl_memory_desc_t *have = NULL;
        if (m->md[i] == md || (dnnl_memory_get_memory_desc(m->mem[i], &have) == dnnl_success &&
                               have && dnnl_memory_desc_equal(have, md))) {
            m->md[i] = md;
            *out = m->mem[i];
            *owned = false;
            return dnnl_memory_set_data_handle(m->mem[i], data);
        }
        dnnl_memory_destroy(m->mem[i]);
        m->mem[i] = NULL;
        m->md[i] = NULL;
    }
    dnnl_status_t ds = dnnl_memory_create(out, md, eng, data);
    if (ds != dnnl_success) return ds;
    *owned = !slot;
    if (slot) {
        m->mem[i] = *out;
        m->md[i] = md;
    }
    return ds;
}

enum pq_status pq_dnnl_execute_mems(const pq_dnnl_prim *p, pq_dnnl_mems *m, const pq_dnnl_arg *args,
                                    int nargs, void *scratch_in, const char *what, pq_error *err) {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    if (!pq_dnnl_get(&eng, &strm) || nargs > PQ_DNNL_MAX_ARGS - 1)
        return pq_error_set(err, PQ_ERR_INTERNAL, "onednn: %s: no engine or too many arguments",
                            what);
    dnnl_exec_arg_t ea[PQ_DNNL_MAX_ARGS];
    dnnl_memory_t own[PQ_DNNL_MAX_ARGS] = {0}; /* memory objects not kept in m */
    void *scratch = NULL, *scratch_mem = scratch_in;
    enum pq_status st = PQ_OK;
    int n = 0;
    bool owned = false;
    dnnl_status_t ds = dnnl_success;
    if (m && m->prim_id != p->id) { /* kept for another primitive */
        pq_dnnl_mems_free(m);
        m->prim_id = p->id;
    }
    for (int i = 0; i < nargs; i++) {
        ds = pq_dnnl_mem(m, n, args[i].md, eng, args[i].data, &ea[n].memory, &owned);
        if (ds != dnnl_success) goto fail;
        if (owned) own[n] = ea[n].memory;
        ea[n].arg = args[i].arg;
        n++;
    }
    if (p->scratch_bytes > 0) {
        if (!scratch_mem) scratch_mem = scratch = pq_malloc_aligned(p->scratch_bytes);
        if (!scratch_mem) {
            st = pq_error_nomem(err, "onednn scratchpad");
            goto done;
        }
        ds = pq_dnnl_mem(m, n, &p->scratch_md, eng, scratch_mem, &ea[n].memory, &owned);
        if (ds != dnnl_success) goto fail;
        if (owned) own[n] = ea[n].memory;
        ea[n].arg = DNNL_ARG_SCRATCHPAD;
        n++;
    }
    ds = dnnl_primitive_execute(p->prim, strm, n, ea);
    if (ds != dnnl_success) goto fail;
    ds = dnnl_stream_wait(strm);
    if (ds != dnnl_success) goto fail;
    goto done;
fail:
    st = pq_error_set(err, ds == dnnl_out_of_memory ? PQ_ERR_NOMEM : PQ_ERR_INTERNAL,
                      "onednn: %s failed (dnnl status %d)", what, (int)ds);
done:
    for (int i = 0; i < n; i++)
        if (own[i]) dnnl_memory_destroy(own[i]);
    pq_free(scratch);
    return st;
}
