/* Private to backends/onednn/: the shared oneDNN engine/stream, thread-count control and a small
 * thread-safe LRU cache of reference-counted entries (primitives, reordered weights). */
#ifndef PQ_ONEDNN_IMPL_H
#define PQ_ONEDNN_IMPL_H

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backends/onednn/onednn.h"
#include "ir/infer_piqc.h"

/* The process-wide CPU engine and stream (created once, lazily, thread-safe). Returns false when
 * oneDNN could not create them; the callers then return PQ_ERR_UNSUPPORTED. The stream is shared:
 * oneDNN's CPU stream runs primitives synchronously in the calling thread. */
bool pq_dnnl_get(dnnl_engine_t *eng, dnnl_stream_t *strm);

/* Sets the number of threads oneDNN uses for primitives created and executed next by the calling
 * thread. Debian's oneDNN uses OpenMP: this is omp_set_num_threads (looked up at run time in
 * the libgomp that libdnnl already loaded), which is per calling thread. No-op when absent. */
void pq_dnnl_set_threads(int n);

/* Cache key: fixed-size, zero-filled, compared bytewise. */
#define PQ_DNNL_KEY_WORDS 48
typedef struct pq_dnnl_key {
    int64_t w[PQ_DNNL_KEY_WORDS];
    int n; /* words used (checked < PQ_DNNL_KEY_WORDS by pq_dnnl_key_push) */
} pq_dnnl_key;

void pq_dnnl_key_init(pq_dnnl_key *k, int64_t tag);
void pq_dnnl_key_push(pq_dnnl_key *k, int64_t v);
bool pq_dnnl_key_eq(const pq_dnnl_key *a, const pq_dnnl_key *b);

typedef struct pq_dnnl_entry {
    pq_dnnl_key key;
    void *val;
    int refs;    /* holders right now; an entry is destroyed only at refs == 0 */
    bool cached; /* still in the cache (false: destroyed on last release) */
    uint64_t stamp;
} pq_dnnl_entry;

#define PQ_DNNL_CACHE_MAX 64

/* One LRU cache (static storage, PQ_DNNL_CACHE_INIT); destroy frees an entry's value (which may
 * be NULL: kernels cache "oneDNN rejects this case" as a NULL value). */
typedef struct pq_dnnl_cache {
    pthread_mutex_t mu;
    void (*destroy)(void *val);
    int cap; /* <= PQ_DNNL_CACHE_MAX */
    pq_dnnl_entry *slot[PQ_DNNL_CACHE_MAX];
    uint64_t clock;
} pq_dnnl_cache;

#define PQ_DNNL_CACHE_INIT(cap_, destroy_)                                                         \
    { PTHREAD_MUTEX_INITIALIZER, (destroy_), (cap_), {0}, 0 }

/* Creates a value for a key (called with the cache's mutex held): PQ_OK and *val set, or a
 * status (UNSUPPORTED: oneDNN rejects the case, nothing written to err; NOMEM: message set). */
typedef enum pq_status (*pq_dnnl_create_fn)(void *ctx, void **val, pq_error *err);
/* Checks that a cached value still matches ctx (NULL = always valid). Mutex held. */
typedef bool (*pq_dnnl_valid_fn)(void *ctx, const void *val);

/* Finds the entry of key k (valid per valid) or creates it with create, evicting the least
 * recently used unreferenced entry when full; *out holds a reference until
 * pq_dnnl_cache_release. When every slot is referenced the new entry is used uncached. Returns
 * create's status on failure. */
enum pq_status pq_dnnl_cache_acquire(pq_dnnl_cache *c, const pq_dnnl_key *k, pq_dnnl_valid_fn valid,
                                     pq_dnnl_create_fn create, void *ctx, pq_dnnl_entry **out,
                                     pq_error *err);
void pq_dnnl_cache_release(pq_dnnl_cache *c, pq_dnnl_entry *e);
/* Destroys every unreferenced entry. */
void pq_dnnl_cache_drop(pq_dnnl_cache *c);

/* Clears the conv / matmul caches (defined in onednn_conv.c / onednn_matmul.c). */
void pq_onednn_conv_cache_clear(void);
void pq_onednn_matmul_cache_clear(void);

/* A primitive, its scratchpad size (user-managed scratchpad) and the descriptor it came from.
 * id is unique per created primitive in the process (0: none), never reused, so that memory
 * objects kept for it (pq_dnnl_mems) are not taken for a later primitive at the same address. */
typedef struct pq_dnnl_prim {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t scratch_md;
    size_t scratch_bytes;
    uint64_t id;
} pq_dnnl_prim;

/* Destroys p->prim (NULL allowed). */
void pq_dnnl_prim_destroy(pq_dnnl_prim *p);

/* Creates prim from an op descriptor with user scratchpad and the given attr (may be NULL: a
 * fresh one is used); returns false when oneDNN rejects it. *pd_out (if not NULL) receives the
 * primitive descriptor, which the caller destroys; otherwise it is destroyed here. */
bool pq_dnnl_prim_create(const_dnnl_op_desc_t desc, dnnl_primitive_attr_t attr, pq_dnnl_prim *p,
                         dnnl_primitive_desc_t *pd_out);

/* Creates a reorder primitive from layout `from` to layout `to` (user scratchpad). False when
 * oneDNN rejects it. */
bool pq_dnnl_reorder_create(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                            pq_dnnl_prim *p);

/* One execution argument: DNNL_ARG_* index, memory descriptor and data pointer. */
typedef struct pq_dnnl_arg {
    int arg;
    const dnnl_memory_desc_t *md;
    void *data;
} pq_dnnl_arg;

/* Executes p on the shared stream with the given arguments plus a scratchpad of
 * p->scratch_bytes (allocated here). NOMEM / INTERNAL with a message naming what. */
enum pq_status pq_dnnl_execute(const pq_dnnl_prim *p, const pq_dnnl_arg *args, int nargs,
                               const char *what, pq_error *err);

/* Threads for one oneDNN call of macs multiply-adds when the caller allows n_threads: every
 * thread gets at least PQ_ONEDNN_MACS_PER_THREAD (each extra thread costs a fork/join of the
 * OpenMP team, a stall whenever a core is busy elsewhere); at least 1. */
int pq_dnnl_threads_for(int n_threads, int64_t macs);

/* True when a problem of macs multiply-adds is too small for oneDNN (pq_onednn_set_min_macs). */
bool pq_dnnl_too_small(int64_t macs);

/* Counts a cache hit or miss for pq_onednn_cache_stats. */
void pq_dnnl_count(bool hit);

/* Like pq_dnnl_execute, with the scratchpad at scratch (p->scratch_bytes, NULL: allocated here). */
enum pq_status pq_dnnl_execute_ws(const pq_dnnl_prim *p, const pq_dnnl_arg *args, int nargs,
                                  void *scratch, const char *what, pq_error *err);

/* The oneDNN memory objects of one execution site (one primitive run from one place of a
 * session node's kernel), kept between calls: slot i holds argument i's (the scratchpad after the
 * arguments), made for the descriptor md[i] points to, for the primitive prim_id. A call of the
 * same primitive (id) reuses slot i when its argument i has the same descriptor (the same pointer,
 * or equal contents) and only sets its data pointer (dnnl_memory_set_data_handle), instead of
 * creating and destroying an object per argument and call; another primitive empties m first.
 * (oneDNN 2.6 writes the padding of blocked layouts in the primitives, not when a memory object
 * is created or given a pointer; tests/backends/test_onednn_mems.c checks that cached and uncached
 * calls write the same bytes, padding included.) The descriptors a call
 * passes must stay unchanged while the primitive lives (they are what it was created for).
 * Zero-filled = empty. Owned by a session-cache entry: one thread at a time, like its cache. */
#define PQ_DNNL_MEMS 6
typedef struct pq_dnnl_mems {
    uint64_t prim_id;
    const dnnl_memory_desc_t *md[PQ_DNNL_MEMS];
    dnnl_memory_t mem[PQ_DNNL_MEMS];
} pq_dnnl_mems;
/* Destroys the memory objects of m (NULL allowed) and empties it. */
void pq_dnnl_mems_free(pq_dnnl_mems *m);
/* pq_dnnl_execute_ws with the memory objects of m (NULL: created and destroyed in this call;
 * arguments past PQ_DNNL_MEMS slots are too). The same statuses. */
enum pq_status pq_dnnl_execute_mems(const pq_dnnl_prim *p, pq_dnnl_mems *m, const pq_dnnl_arg *args,
                                    int nargs, void *scratch, const char *what, pq_error *err);

/* ---- per-session cache (onednn_session.c; the public face is in onednn.h) ---- */

/* One node's entry: val (destroyed with destroy) was built for key. */
typedef struct pq_dnnl_node {
    const void *node; /* NULL: free slot */
    pq_dnnl_key key;
    void *val;
    void (*destroy)(void *val);
} pq_dnnl_node;

/* The cache bound to the calling thread (pq_onednn_cache_bind), or NULL. */
pq_onednn_cache *pq_dnnl_current(void);
/* The entry of node, created empty (key zero, val NULL) when missing; NULL on NOMEM (err set).
 * The pointer is valid until the next pq_dnnl_node_get on the same cache. */
pq_dnnl_node *pq_dnnl_node_get(pq_onednn_cache *c, const void *node, pq_error *err);
/* A second entry of node, for a kernel's per-node set-up kept beside its primitives or packed
 * weights (the key is node's address + 1, inside the node: no other node can have it); the same
 * contract as pq_dnnl_node_get. */
pq_dnnl_node *pq_dnnl_node_aux(pq_onednn_cache *c, const void *node, pq_error *err);
/* Destroys the entry's value and clears its key (the node keeps its slot). */
void pq_dnnl_node_reset(pq_dnnl_node *e);

/* Work buffers shared by every node of a cache (a session runs one node at a time). */
enum { PQ_DNNL_WORK_SRC, PQ_DNNL_WORK_DST, PQ_DNNL_WORK_SCRATCH, PQ_DNNL_WORK_COUNT };
/* Buffer which of at least bytes (64-byte aligned, contents undefined); NULL on NOMEM (err set). */
void *pq_dnnl_work(pq_onednn_cache *c, int which, size_t bytes, pq_error *err);

/* ---- blocked activations kept between oneDNN convolutions (onednn_session.c) ----
 * A convolution whose output leaves the primitive in a blocked layout keeps that blocked copy in
 * one of these entries (keyed by the pq_value of its output); a later convolution reading the
 * same value takes it instead of reordering the plain tensor again, and when every reader of the
 * value is such a convolution the producer may skip writing the plain tensor at all. */
typedef struct pq_dnnl_blk {
    const void *value; /* the pq_value this is a copy of (NULL: free, buf kept for reuse) */
    void *buf;         /* cap bytes, 64-byte aligned */
    size_t cap;
    dnnl_memory_desc_t md; /* layout of buf */
    const void *plain;     /* data pointer of the value's plain tensor */
    uint64_t stamp;        /* pq_dnnl_tick() when written */
    bool plain_valid;      /* false: the plain tensor was not written (elided) */
    int want, used;        /* readers expected to take it / that took it since written */
    bool *confirm;         /* set to true by the reader that makes used == want (producer's) */
} pq_dnnl_blk;

/* Next value of c's clock (one tick per oneDNN convolution call). */
uint64_t pq_dnnl_tick(pq_onednn_cache *c);
/* The entry of value, or NULL. Valid until the next pq_dnnl_blk_take on c. */
pq_dnnl_blk *pq_dnnl_blk_find(pq_onednn_cache *c, const void *value);
/* The entry of value (created, or reusing a free one) with at least bytes of buffer; NULL on
 * NOMEM (err set). Valid until the next pq_dnnl_blk_take on c. */
pq_dnnl_blk *pq_dnnl_blk_take(pq_onednn_cache *c, const void *value, size_t bytes, pq_error *err);
/* Frees the entry for reuse by another value (its buffer stays allocated). */
void pq_dnnl_blk_free(pq_dnnl_blk *b);
/* Whether producers may skip plain tensors this run (pq_onednn_run_begin; false by default). */
bool pq_dnnl_elide_allowed(const pq_onednn_cache *c);
/* Readers of value y of graph g that can take a kept blocked copy: input 0 of a Conv, input 0 or
 * the addend (input 3) of a ConvAdd, input 0 of a
 * GlobalAveragePool or a MaxPool, an operand of a Mul or an Add reading y once. *readers counts
 * them; *only is true when they are all of y's readers, y is not a graph output and g has no
 * subgraph. */
void pq_dnnl_count_readers(const pq_graph *g, uint32_t y, int *readers, bool *only);
/* The pq_value of kernel input i (output: output 0), or NULL. */
const pq_value *pq_dnnl_value(const pq_kernel_args *a, bool output, uint32_t i);
/* The fresh kept copy of kernel input i: written after `since` (the reader's previous run) for
 * the tensor a->in[i] now holds; NULL when there is none. */
pq_dnnl_blk *pq_dnnl_blk_input(pq_onednn_cache *c, const pq_kernel_args *a, uint32_t i,
                               uint64_t since);
/* One reader took b (the last expected one confirms the producer's elision). */
void pq_dnnl_blk_took(pq_dnnl_blk *b);
/* A reader is done with value's kept copy (NULL: none): the entry is freed for the next output
 * when every reader expected to take it took it (nothing reads it later this run). */
void pq_dnnl_blk_done(pq_onednn_cache *c, const void *value);
/* Writes back the plain tensor of every input i of a (bit i of mask set) whose fresh kept copy
 * has it elided (for a reader about to read the plain tensor). INTERNAL on failure (message in
 * a->err). */
enum pq_status pq_dnnl_plain_inputs(pq_onednn_cache *c, const pq_kernel_args *a, unsigned mask);

/* Counts one source taken from a kept blocked copy (elided false) or one plain output not written
 * (elided true), for pq_onednn_layout_stats. */
void pq_dnnl_count_layout(bool elided);
/* Whether blocked activations are kept at all (PIQC_ONEDNN_LAYOUT=reorder turns it off). */
bool pq_dnnl_keep_blocked(void);

/* Identity of a constant weight tensor: address, size and 8 sampled 8-byte words. */
typedef struct pq_dnnl_wsig {
    const void *data;
    size_t bytes;
    uint64_t sample[8];
} pq_dnnl_wsig;
void pq_dnnl_wsig_take(pq_dnnl_wsig *s, const void *data, size_t bytes);
bool pq_dnnl_wsig_same(const pq_dnnl_wsig *s, const void *data, size_t bytes);

/* ---- fused activations as oneDNN eltwise post-ops ---- */

/* An on/off switch from the environment, read once into *mode (-1: not read yet): off when
 * variable name equals off_value, else on. */
bool pq_dnnl_env_switch(_Atomic int *mode, const char *name, const char *off_value);

/* True when the fused activations run as oneDNN eltwise post-ops (default), false when the
 * environment says PIQC_ONEDNN_ACT=ref (then every kernel applies pq_act_epilogue to its plain
 * output, bit-identical to the reference). Read once. */
bool pq_dnnl_act_postops_enabled(void);

/* Decodes node n's fused activation into *act and tells whether it runs as post-ops: true when
 * post-ops are enabled and the kind has a oneDNN equivalent (every kind does); false with *act
 * set when the kernel must run pq_act_epilogue itself (post-ops disabled, or a malformed
 * activation attribute, which the epilogue then reports). */
bool pq_dnnl_act_get(const pq_node *n, pq_activation *act);

/* Appends the post-ops of act (PQ_ACT_NONE: none) to po. False when oneDNN refuses. */
bool pq_dnnl_act_append(dnnl_post_ops_t po, const pq_activation *act);

/* Pushes act's kind and parameters onto a cache key. */
void pq_dnnl_act_key(pq_dnnl_key *k, const pq_activation *act);

/* True when kernel input i is the graph constant of its value (not an activation, a graph input
 * or a value folded at plan time): only those are cached by address. */
bool pq_dnnl_is_constant(const pq_kernel_args *a, uint32_t i);

#endif
