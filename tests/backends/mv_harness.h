/* Shared harness of the movement, shape, pad and resize kernel tests: one node in a fresh graph,
 * tensors built from double literals, a runner and an exact/tolerant checker. */
#ifndef PQ_TEST_MV_HARNESS_H
#define PQ_TEST_MV_HARNESS_H

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"

/* ---- test harness: one node in a fresh graph, tensors from double literals ---- */

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define V(...) ((const double[]){__VA_ARGS__})

static pq_graph *g;
static uint32_t nid;
static pq_error err;

/* Tensors made by T() and shell(), freed by mv_destroy or at the end of the test (mv_cleanup,
 * the suites' .fini), so the sanitizer build sees no leaks from the tests themselves. */
#define MV_MAX_LIVE 512
static pq_tensor *mv_live[MV_MAX_LIVE];
static int mv_n_live;

static inline pq_tensor *mv_track(pq_tensor *t) {
    cr_assert(mv_n_live < MV_MAX_LIVE, "test harness: too many live tensors");
    mv_live[mv_n_live++] = t;
    return t;
}

/* Destroys a tensor made by the harness (or any other tensor). */
static inline void mv_destroy(pq_tensor *t) {
    for (int i = 0; i < mv_n_live; i++)
        if (mv_live[i] == t) mv_live[i] = mv_live[--mv_n_live];
    pq_tensor_destroy(t);
}

/* Stops tracking t because its ownership moves elsewhere (e.g. into a graph attribute). */
static inline pq_tensor *mv_give(pq_tensor *t) {
    for (int i = 0; i < mv_n_live; i++)
        if (mv_live[i] == t) mv_live[i] = mv_live[--mv_n_live];
    return t;
}

/* Frees every tensor still alive and the node's graph. */
static inline void mv_cleanup(void) {
    while (mv_n_live)
        pq_tensor_destroy(mv_live[--mv_n_live]);
    pq_graph_destroy(g);
    g = NULL;
}

static inline void mk_node(enum pq_op op, uint32_t nin, uint32_t nout) {
    uint32_t ins[32], outs[32];
    cr_assert(nin <= 32 && nout <= 32);
    pq_graph_destroy(g); /* the previous node's graph */
    g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    for (uint32_t i = 0; i < nin; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &err), PQ_OK);
    for (uint32_t i = 0; i < nout; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, op, "n", ins, nin, outs, nout, &nid, &err), PQ_OK);
}

static inline void set_int(const char *name, int64_t v) {
    cr_assert_eq(pq_node_set_int(g, nid, name, v, &err), PQ_OK);
}
static inline void set_ints(const char *name, const int64_t *v, uint32_t n) {
    cr_assert_eq(pq_node_set_ints(g, nid, name, v, n, &err), PQ_OK);
}
static inline void set_str(const char *name, const char *v) {
    cr_assert_eq(pq_node_set_string(g, nid, name, v, &err), PQ_OK);
}
static inline void set_float(const char *name, float v) {
    cr_assert_eq(pq_node_set_float(g, nid, name, v, &err), PQ_OK);
}

/* Tensor of dtype dt with values v (NULL: 0, 1, 2, ...). */
static pq_tensor *T(enum pq_dtype dt, int rank, const int64_t *dims, const double *v) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t);
    mv_track(t);
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(dt, t->data, (size_t)i, v ? v[i] : (double)i);
    return t;
}

/* Output shell with no data: the kernel allocates it. */
static pq_tensor *shell(void) {
    pq_tensor *t = pq_calloc(1, sizeof *t);
    cr_assert_not_null(t);
    return mv_track(t);
}

static inline enum pq_status run(pq_tensor **in, uint32_t nin, pq_tensor **out, uint32_t nout) {
    pq_kernel_args a = {g,   &g->nodes[nid], (const pq_tensor *const *)in, nin, out, nout, NULL, 1,
                        &err};
    return pq_ref_run(&a);
}

static inline void expect(const pq_tensor *t, enum pq_dtype dt, int rank, const int64_t *dims,
                          const double *v, double tol) {
    cr_assert_not_null(t->data);
    cr_assert_eq(t->dtype, dt, "dtype %s, expected %s", pq_dtype_name(t->dtype), pq_dtype_name(dt));
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "dim %d: %lld, expected %lld", i, (long long)t->dims[i],
                     (long long)dims[i]);
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double got = pq_dtype_load(dt, t->data, (size_t)i);
        cr_assert(fabs(got - v[i]) <= tol, "element %lld: %.9g, expected %.9g", (long long)i, got,
                  v[i]);
    }
}

/* Runs the node on inputs in (consumed) and checks its single output. */
static inline void run1(pq_tensor **in, uint32_t nin, enum pq_dtype dt, int rank,
                        const int64_t *dims, const double *v, double tol) {
    pq_tensor *o = shell();
    cr_assert_eq(run(in, nin, &o, 1), PQ_OK, "%s", err.msg);
    expect(o, dt, rank, dims, v, tol);
    mv_destroy(o);
    for (uint32_t i = 0; i < nin; i++)
        mv_destroy(in[i]);
}
/* ---- end harness ---- */

#endif
