/* Runtime tests on hand-built graphs: input checking with symbolic dims, liveness-based buffer
 * reuse in the memory plan, re-planning when input shapes change, constant folding of shape
 * chains, and allocation-failure injection. */
#include <criterion/criterion.h>
#include <string.h>

#include "runtime/runtime.h"

/* x: f32[N, 4] -> Relu -> Neg -> Abs -> Neg -> y  (y = -relu(x)) */
static pq_graph *chain_graph(void) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    pq_shape s = pq_shape_unknown();
    s.rank = 2;
    s.dims[0] = (pq_dim){-1, pq_graph_intern_symbol(g, "N")};
    s.dims[1] = pq_dim_of(4);
    uint32_t v[5];
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &s, &v[0], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, v[0], &err), PQ_OK);
    const char *names[] = {"a", "b", "c", "y"};
    enum pq_op ops[] = {PQ_OP_RELU, PQ_OP_NEG, PQ_OP_ABS, PQ_OP_NEG};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pq_graph_add_value(g, names[i], PQ_DTYPE_UNDEFINED, NULL, &v[i + 1], &err),
                     PQ_OK);
        cr_assert_eq(pq_graph_add_node(g, ops[i], NULL, &v[i], 1, &v[i + 1], 1, NULL, &err), PQ_OK);
    }
    cr_assert_eq(pq_graph_add_output(g, v[4], &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *make_input(int64_t n, float start) {
    int64_t dims[2] = {n, 4};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 2, dims, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < n * 4; i++)
        d[i] = start + (float)i - 5.0f;
    return t;
}

Test(session, runs_and_reuses_buffers) {
    pq_graph *g = chain_graph();
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    pq_tensor *x = make_input(256, 0);
    pq_tensor *y = NULL;
    const pq_tensor *ins[1] = {x};
    cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "%s", err.msg);
    const float *xd = x->data, *yd = y->data;
    for (int i = 0; i < 256 * 4; i++)
        cr_assert_eq(yd[i], xd[i] > 0 ? -xd[i] : -0.0f, "y[%d]", i);
    /* three intermediates (a, b, c) of 4 KiB each; liveness lets a and c share one buffer */
    size_t peak = pq_session_planned_peak(s);
    cr_assert_eq(peak, 2 * 4096, "planned peak %zu", peak);
    pq_tensor_destroy(y);
    pq_tensor_destroy(x);
    /* a new batch size re-plans */
    x = make_input(3, 0);
    ins[0] = x;
    cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(y->dims[0], 3);
    cr_assert_eq(pq_session_planned_peak(s), 2 * 64);
    pq_tensor_destroy(y);
    pq_tensor_destroy(x);
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

Test(session, rejects_wrong_inputs_with_names) {
    pq_graph *g = chain_graph();
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    int64_t dims[2] = {2, 5};
    pq_tensor *bad = pq_tensor_create(PQ_DTYPE_F32, 2, dims, NULL);
    const pq_tensor *ins[1] = {bad};
    pq_tensor *y = NULL;
    cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "input 'x'") && strstr(err.msg, "dimension 1"), "%s", err.msg);
    pq_tensor_destroy(bad);
    pq_tensor *wrong = pq_tensor_create(PQ_DTYPE_I64, 2, (int64_t[]){2, 4}, NULL);
    ins[0] = wrong;
    cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "expected f32"), "%s", err.msg);
    pq_tensor_destroy(wrong);
    cr_assert_eq(pq_session_run(s, ins, 0, &y, 1, &err), PQ_ERR_INVALID);
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

Test(session, allocation_failures_are_clean_errors) {
    pq_graph *g = chain_graph();
    pq_tensor *x = make_input(8, 0);
    const pq_tensor *ins[1] = {x};
    /* fail the k-th allocation for every k until a run succeeds: never a crash */
    bool succeeded = false;
    for (long k = 0; k < 200 && !succeeded; k++) {
        pq_error err;
        pq_session *s = NULL;
        pq_tensor *y = NULL;
        pq_alloc_fail_after(k);
        enum pq_status st = pq_session_create(g, NULL, &s, &err);
        if (st == PQ_OK) st = pq_session_run(s, ins, 1, &y, 1, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK)
            succeeded = true;
        else
            cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        pq_tensor_destroy(y);
        pq_session_destroy(s);
    }
    cr_assert(succeeded);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
}
