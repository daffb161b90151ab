/* Tests of the If and Loop reference kernels (and their inference rules) on hand-built graphs.
 * The test supplies a small pq_subgraph_runner that evaluates a body node by node with
 * pq_ref_run, binding captured values from the enclosing graph's tensors. */
#include <criterion/criterion.h>
#include <string.h>

#include "backends/ref/ref.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static pq_error err;

/* Runner context: tensors of the enclosing graph's values, by value id. */
typedef struct tctx {
    pq_tensor **outer;
    int calls;
} tctx;

static enum pq_status trun(void *ctx, const pq_graph *body, const pq_tensor *const *inputs,
                           uint32_t n_inputs, pq_tensor **outputs, uint32_t n_outputs,
                           pq_error *e) {
    tctx *c = ctx;
    c->calls++;
    pq_tensor **vals = pq_calloc(body->n_values, sizeof *vals);
    bool *owned = pq_calloc(body->n_values, sizeof *owned);
    cr_assert(vals && owned);
    cr_assert_eq(n_inputs, body->n_inputs);
    for (uint32_t i = 0; i < n_inputs; i++)
        vals[body->inputs[i]] = (pq_tensor *)inputs[i];
    for (uint32_t v = 0; v < body->n_values; v++) {
        if (body->values[v].outer != PQ_NONE) vals[v] = c->outer[body->values[v].outer];
        if (body->values[v].constant) vals[v] = body->values[v].constant;
    }
    pq_subgraph_runner self = {ctx, trun};
    enum pq_status st = PQ_OK;
    for (uint32_t n = 0; n < body->n_nodes && st == PQ_OK; n++) {
        const pq_node *nd = &body->nodes[n];
        const pq_tensor *in[8] = {0};
        pq_tensor *out[8] = {0};
        for (uint32_t i = 0; i < nd->n_inputs; i++)
            in[i] = nd->inputs[i] == PQ_NONE ? NULL : vals[nd->inputs[i]];
        for (uint32_t i = 0; i < nd->n_outputs; i++)
            out[i] = pq_calloc(1, sizeof(pq_tensor));
        pq_kernel_args a = {body, nd, in, nd->n_inputs, out, nd->n_outputs, &self, 1, e};
        st = pq_ref_run(&a);
        for (uint32_t i = 0; i < nd->n_outputs; i++) {
            vals[nd->outputs[i]] = out[i];
            owned[nd->outputs[i]] = true;
        }
    }
    for (uint32_t i = 0; i < n_outputs && st == PQ_OK; i++) {
        outputs[i] = pq_tensor_clone(vals[body->outputs[i]], e);
        if (!outputs[i]) st = PQ_ERR_NOMEM;
    }
    for (uint32_t v = 0; v < body->n_values; v++)
        if (owned[v]) pq_tensor_destroy(vals[v]);
    pq_free(vals);
    pq_free(owned);
    return st;
}

static uint32_t val(pq_graph *g, const char *name, enum pq_dtype dt, int rank,
                    const int64_t *dims) {
    uint32_t id;
    pq_shape s = rank >= 0 ? pq_shape_from_dims(rank, dims) : pq_shape_unknown();
    cr_assert_eq(pq_graph_add_value(g, name, dt, &s, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

static uint32_t cval(pq_graph *g, pq_tensor *t) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, NULL, t->dtype, NULL, &id, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK);
    return id;
}

static uint32_t node(pq_graph *g, enum pq_op op, const uint32_t *in, uint32_t nin,
                     const uint32_t *out, uint32_t nout) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_node(g, op, NULL, in, nin, out, nout, &id, &err), PQ_OK, "%s",
                 err.msg);
    return id;
}

static pq_tensor *ti64(int rank, const int64_t *dims, const int64_t *v) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, rank, dims, &err);
    memcpy(t->data, v, t->nbytes);
    return t;
}

static pq_tensor *tbool(bool b) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_BOOL, 0, NULL, &err);
    *(uint8_t *)t->data = b;
    return t;
}

/* ---- If ---- */

/* outer: x (f32 [2]); If(cond) then Identity(x) -> [2], else Concat(x, x) -> [4]. */
static pq_graph *if_graph(uint32_t *nid, uint32_t *xid) {
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t cond = val(g, "cond", PQ_DTYPE_BOOL, 0, NULL);
    *xid = val(g, "x", PQ_DTYPE_F32, 1, D(2));
    uint32_t y = val(g, "y", PQ_DTYPE_UNDEFINED, -1, NULL);
    *nid = node(g, PQ_OP_IF, &cond, 1, &y, 1);
    pq_graph *tb = pq_graph_create(g, &err), *eb = pq_graph_create(g, &err);
    uint32_t tx, ex, to = val(tb, "t_out", PQ_DTYPE_UNDEFINED, -1, NULL);
    uint32_t eo = val(eb, "e_out", PQ_DTYPE_UNDEFINED, -1, NULL);
    cr_assert_eq(pq_graph_capture(tb, "x", &tx, &err), PQ_OK);
    cr_assert_eq(pq_graph_capture(eb, "x", &ex, &err), PQ_OK);
    node(tb, PQ_OP_IDENTITY, &tx, 1, &to, 1);
    uint32_t cn = node(eb, PQ_OP_CONCAT, (uint32_t[]){ex, ex}, 2, &eo, 1);
    cr_assert_eq(pq_node_set_int(eb, cn, "axis", 0, &err), PQ_OK);
    pq_graph_add_output(tb, to, &err);
    pq_graph_add_output(eb, eo, &err);
    cr_assert_eq(pq_node_set_graph(g, *nid, "then_branch", tb, &err), PQ_OK);
    cr_assert_eq(pq_node_set_graph(g, *nid, "else_branch", eb, &err), PQ_OK);
    return g;
}

static void run_if(bool c, int64_t want_len) {
    uint32_t nid, xid;
    pq_graph *g = if_graph(&nid, &xid);
    pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 1, D(2), &err);
    ((float *)x->data)[0] = 1.5f;
    ((float *)x->data)[1] = -3.0f;
    pq_tensor *outer[8] = {0};
    outer[xid] = x;
    tctx ctx = {outer, 0};
    pq_subgraph_runner r = {&ctx, trun};
    pq_tensor *cond = tbool(c);
    const pq_tensor *in[1] = {cond};
    pq_tensor *y = pq_calloc(1, sizeof *y);
    pq_kernel_args a = {g, &g->nodes[nid], in, 1, &y, 1, &r, 1, &err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s", err.msg);
    cr_assert_eq(ctx.calls, 1);
    cr_assert_eq(y->dtype, PQ_DTYPE_F32);
    cr_assert_eq(y->rank, 1);
    cr_assert_eq(y->dims[0], want_len);
    for (int64_t i = 0; i < want_len; i++)
        cr_assert_eq(((float *)y->data)[i], i % 2 ? -3.0f : 1.5f);
    pq_tensor_destroy(y);
    pq_tensor_destroy(x);
    pq_tensor_destroy(cond);
    pq_graph_destroy(g);
}

Test(ref_control, if_then_branch) {
    run_if(true, 2);
}
Test(ref_control, if_else_branch_other_shape) {
    run_if(false, 4);
}

Test(ref_control, if_inference_joins_branches) {
    uint32_t nid, xid;
    pq_graph *g = if_graph(&nid, &xid);
    cr_assert_eq(pq_graph_infer_shapes(g, &err), PQ_OK, "%s", err.msg);
    const pq_value *y = &g->values[g->nodes[nid].outputs[0]];
    cr_assert_eq(y->dtype, PQ_DTYPE_F32);
    cr_assert_eq(y->shape.rank, 1);
    cr_assert_eq(y->shape.dims[0].size, -1); /* 2 or 4 */
    pq_graph_destroy(g);
}

/* ---- Loop ---- */

/* Loop(M, cond, acc0 = [100]) with body (i, c, acc):
 *   u = Unsqueeze(i, [0]); acc' = Concat(acc, u); c' = Gather(stop_table, i); scan = Concat(u, u)
 * stop_table = [1, 1, 0, 1, ...] ends the loop after iteration 2. */
static pq_graph *loop_graph(uint32_t *nid, bool with_m, bool with_cond) {
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t M = with_m ? val(g, "M", PQ_DTYPE_I64, 0, NULL) : PQ_NONE;
    uint32_t C = with_cond ? val(g, "cond", PQ_DTYPE_BOOL, 0, NULL) : PQ_NONE;
    uint32_t acc0 = val(g, "acc0", PQ_DTYPE_I64, 1, D(1));
    uint32_t outs[2] = {val(g, "acc_final", PQ_DTYPE_UNDEFINED, -1, NULL),
                        val(g, "scan", PQ_DTYPE_UNDEFINED, -1, NULL)};
    *nid = node(g, PQ_OP_LOOP, (uint32_t[]){M, C, acc0}, 3, outs, 2);
    pq_graph *b = pq_graph_create(g, &err);
    uint32_t i = val(b, "i", PQ_DTYPE_I64, 0, NULL), c = val(b, "c", PQ_DTYPE_BOOL, 0, NULL);
    uint32_t acc = val(b, "acc", PQ_DTYPE_I64, 1, (int64_t[]){-1});
    pq_graph_add_input(b, i, &err);
    pq_graph_add_input(b, c, &err);
    pq_graph_add_input(b, acc, &err);
    uint32_t axes = cval(b, ti64(1, D(1), D(0)));
    pq_tensor *table = pq_tensor_create(PQ_DTYPE_BOOL, 1, D(6), &err);
    memcpy(table->data, (uint8_t[]){1, 1, 0, 1, 1, 1}, 6);
    uint32_t tab = cval(b, table);
    uint32_t u = val(b, "u", PQ_DTYPE_UNDEFINED, -1, NULL);
    uint32_t acc2 = val(b, "acc2", PQ_DTYPE_UNDEFINED, -1, NULL);
    uint32_t c2 = val(b, "c2", PQ_DTYPE_UNDEFINED, -1, NULL);
    uint32_t sc = val(b, "sc", PQ_DTYPE_UNDEFINED, -1, NULL);
    node(b, PQ_OP_UNSQUEEZE, (uint32_t[]){i, axes}, 2, &u, 1);
    uint32_t n1 = node(b, PQ_OP_CONCAT, (uint32_t[]){acc, u}, 2, &acc2, 1);
    node(b, PQ_OP_GATHER, (uint32_t[]){tab, i}, 2, &c2, 1);
    uint32_t n2 = node(b, PQ_OP_CONCAT, (uint32_t[]){u, u}, 2, &sc, 1);
    pq_node_set_int(b, n1, "axis", 0, &err);
    pq_node_set_int(b, n2, "axis", 0, &err);
    pq_graph_add_output(b, c2, &err);
    pq_graph_add_output(b, acc2, &err);
    pq_graph_add_output(b, sc, &err);
    cr_assert_eq(pq_node_set_graph(g, *nid, "body", b, &err), PQ_OK);
    return g;
}

/* Runs the loop with trip count m (< 0: omitted) and cond c (< 0: omitted). */
static enum pq_status run_loop(int64_t m, int c, pq_tensor **acc, pq_tensor **scan, int *calls) {
    uint32_t nid;
    pq_graph *g = loop_graph(&nid, m >= 0, c >= 0);
    cr_assert_eq(pq_graph_infer_shapes(g, &err), PQ_OK, "%s", err.msg);
    pq_tensor *M = m >= 0 ? ti64(0, NULL, (int64_t[]){m}) : NULL;
    pq_tensor *C = c >= 0 ? tbool(c) : NULL;
    pq_tensor *a0 = ti64(1, D(1), D(100));
    pq_tensor *outer[16] = {0};
    tctx ctx = {outer, 0};
    pq_subgraph_runner r = {&ctx, trun};
    const pq_tensor *in[3] = {M, C, a0};
    *acc = pq_calloc(1, sizeof(pq_tensor));
    *scan = pq_calloc(1, sizeof(pq_tensor));
    pq_tensor *out[2] = {*acc, *scan};
    /* the planner gives outputs the inferred dtype and rank but no data (dynamic op) */
    const pq_value *sv = &g->values[g->nodes[nid].outputs[1]];
    (*scan)->dtype = sv->dtype;
    (*scan)->rank = sv->shape.rank;
    pq_kernel_args a = {g, &g->nodes[nid], in, 3, out, 2, &r, 1, &err};
    enum pq_status st = pq_ref_run(&a);
    *calls = ctx.calls;
    pq_tensor_destroy(M);
    pq_tensor_destroy(C);
    pq_tensor_destroy(a0);
    pq_graph_destroy(g);
    return st;
}

static void expect_i64(const pq_tensor *t, int rank, const int64_t *dims, const int64_t *v) {
    cr_assert_eq(t->dtype, PQ_DTYPE_I64);
    cr_assert_eq(t->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "dim %d", i);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        cr_assert_eq(((int64_t *)t->data)[i], v[i], "element %lld", (long long)i);
}

Test(ref_control, loop_stops_on_condition) {
    pq_tensor *acc, *scan;
    int calls;
    cr_assert_eq(run_loop(10, 1, &acc, &scan, &calls), PQ_OK, "%s", err.msg);
    cr_assert_eq(calls, 3);
    expect_i64(acc, 1, D(4), D(100, 0, 1, 2));
    expect_i64(scan, 2, D(3, 2), D(0, 0, 1, 1, 2, 2));
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
}

Test(ref_control, loop_trip_count_and_huge_trip_count) {
    pq_tensor *acc, *scan;
    int calls;
    cr_assert_eq(run_loop(2, -1, &acc, &scan, &calls), PQ_OK, "%s", err.msg);
    expect_i64(acc, 1, D(3), D(100, 0, 1));
    expect_i64(scan, 2, D(2, 2), D(0, 0, 1, 1));
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
    /* a huge M is bounded by the condition */
    cr_assert_eq(run_loop(INT64_MAX, 1, &acc, &scan, &calls), PQ_OK, "%s", err.msg);
    cr_assert_eq(calls, 3);
    expect_i64(acc, 1, D(4), D(100, 0, 1, 2));
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
}

Test(ref_control, loop_zero_iterations) {
    pq_tensor *acc, *scan;
    int calls;
    cr_assert_eq(run_loop(0, 1, &acc, &scan, &calls), PQ_OK, "%s", err.msg);
    cr_assert_eq(calls, 0);
    expect_i64(acc, 1, D(1), D(100));
    expect_i64(scan, 2, D(0, 2), D(0)); /* [0, 2]: the body's scan shape was inferred */
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
    cr_assert_eq(run_loop(5, 0, &acc, &scan, &calls), PQ_OK, "%s", err.msg); /* cond false */
    cr_assert_eq(calls, 0);
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
}

Test(ref_control, loop_without_m_and_cond_is_invalid) {
    pq_tensor *acc, *scan;
    int calls;
    cr_assert_eq(run_loop(-1, -1, &acc, &scan, &calls), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "infinite"), "%s", err.msg);
    cr_assert_eq(calls, 0);
    pq_tensor_destroy(acc);
    pq_tensor_destroy(scan);
}

Test(ref_control, loop_inference) {
    uint32_t nid;
    pq_graph *g = loop_graph(&nid, true, true);
    cr_assert_eq(pq_graph_infer_shapes(g, &err), PQ_OK, "%s", err.msg);
    const pq_value *acc = &g->values[g->nodes[nid].outputs[0]];
    const pq_value *scan = &g->values[g->nodes[nid].outputs[1]];
    cr_assert_eq(acc->dtype, PQ_DTYPE_I64);
    cr_assert_eq(acc->shape.rank, 1);
    cr_assert_eq(acc->shape.dims[0].size, -1); /* grows per iteration */
    cr_assert_eq(scan->dtype, PQ_DTYPE_I64);
    cr_assert_eq(scan->shape.rank, 2);
    cr_assert_eq(scan->shape.dims[0].size, -1);
    cr_assert_eq(scan->shape.dims[1].size, 2);
    pq_graph_destroy(g);
}
