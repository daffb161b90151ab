/* Tests of the IR verifier: hand-built good graphs pass (subgraphs included); each structural
 * defect gives INVALID with a message naming the value or node. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

static pq_error err;

static uint32_t val(pq_graph *g, const char *name, int rank, const int64_t *dims) {
    uint32_t id;
    pq_shape s = pq_shape_from_dims(rank, dims);
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_F32, rank >= 0 ? &s : NULL, &id, &err), PQ_OK,
                 "%s", err.msg);
    return id;
}

/* x -> Relu -> h ; h + w(const) -> y */
static pq_graph *good_graph(void) {
    pq_graph *g = pq_graph_create(NULL, &err);
    g->name = pq_graph_strdup(g, "main");
    int64_t d[2] = {2, 3};
    uint32_t x = val(g, "x", 2, d), h = val(g, "h", 2, d), w = val(g, "w", 2, d),
             y = val(g, "y", 2, d);
    cr_assert_eq(pq_graph_set_constant(g, w, pq_tensor_create(PQ_DTYPE_F32, 2, d, &err), &err),
                 PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_RELU, "relu", &x, 1, &h, 1, NULL, &err), PQ_OK);
    uint32_t in[2] = {h, w};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_ADD, "add", in, 2, &y, 1, NULL, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, y, &err), PQ_OK);
    return g;
}

static void expect_invalid(const pq_graph *g, const char *needle) {
    pq_error_clear(&err);
    enum pq_status st = pq_graph_verify(g, &err);
    cr_assert_eq(st, PQ_ERR_INVALID, "expected INVALID (%s), got %d: %s", needle, st, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(verify, good_graph_passes) {
    pq_graph *g = good_graph();
    cr_assert_eq(pq_graph_verify(g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
}

Test(verify, undefined_input) {
    pq_graph *g = good_graph();
    int64_t d[2] = {2, 3};
    uint32_t ghost = val(g, "ghost", 2, d), z = val(g, "z", 2, d);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_NEG, "neg", &ghost, 1, &z, 1, NULL, &err), PQ_OK);
    expect_invalid(g, "'ghost' is never defined");
    expect_invalid(g, "node 'neg'");
    pq_graph_destroy(g);
}

Test(verify, arity_limits) {
    pq_graph *g = good_graph();
    g->nodes[1].n_inputs = 1; /* Add with one input */
    expect_invalid(g, "node 'add' (Add) has 1 inputs");
    g->nodes[1].n_inputs = 2;
    g->nodes[0].n_outputs = 0; /* Relu with no output */
    expect_invalid(g, "node 'relu' (Relu) has 0 outputs");
    pq_graph_destroy(g);
}

Test(verify, required_input_omitted) {
    pq_graph *g = good_graph();
    g->nodes[1].inputs[1] = PQ_NONE;
    expect_invalid(g, "node 'add' (Add): required input 1 is missing");
    pq_graph_destroy(g);
}

Test(verify, topological_order) {
    pq_graph *g = good_graph();
    pq_node tmp = g->nodes[0];
    g->nodes[0] = g->nodes[1];
    g->nodes[1] = tmp;
    /* fix producer bookkeeping so only the order is wrong */
    g->values[pq_graph_find_value(g, "h")].producer = 1;
    g->values[pq_graph_find_value(g, "y")].producer = 0;
    expect_invalid(g, "input 'h' is produced by node 'relu', which comes later");
    pq_graph_destroy(g);
}

Test(verify, producer_bookkeeping) {
    pq_graph *g = good_graph();
    uint32_t h = pq_graph_find_value(g, "h");
    g->values[h].producer = 1;
    expect_invalid(g, "'h'");
    g->values[h].producer = 0;
    g->values[h].producer_slot = 3;
    expect_invalid(g, "'h'");
    g->values[h].producer_slot = 0;
    g->values[h].producer = 77;
    expect_invalid(g, "value 'h' records producer node 77");
    pq_graph_destroy(g);
}

Test(verify, defined_twice) {
    pq_graph *g = good_graph();
    /* make Add also write h: h has two producers */
    g->nodes[1].outputs[0] = pq_graph_find_value(g, "h");
    g->values[pq_graph_find_value(g, "y")].producer = PQ_NONE;
    expect_invalid(g, "value 'h' is defined twice");
    pq_graph_destroy(g);

    g = good_graph();
    /* Relu writes a constant */
    uint32_t w = pq_graph_find_value(g, "w");
    g->nodes[0].outputs[0] = w;
    g->values[w].producer = 0;
    g->values[pq_graph_find_value(g, "h")].producer = PQ_NONE;
    expect_invalid(g, "value 'w' is defined twice: by node 'relu' and by a constant");
    pq_graph_destroy(g);
}

Test(verify, outputs_and_ids) {
    pq_graph *g = good_graph();
    int64_t d[1] = {4};
    uint32_t lonely = val(g, "lonely", 1, d);
    cr_assert_eq(pq_graph_add_output(g, lonely, &err), PQ_OK);
    expect_invalid(g, "output 'lonely' is never defined");
    pq_graph_destroy(g);

    g = good_graph();
    g->nodes[0].inputs[0] = 999;
    expect_invalid(g, "node 'relu' (Relu): input 0 is value id 999, out of range");
    pq_graph_destroy(g);

    g = good_graph();
    g->outputs[0] = 1234;
    expect_invalid(g, "output 0 is value id 1234");
    pq_graph_destroy(g);

    g = good_graph();
    g->values[pq_graph_find_value(g, "x")].flags = 0;
    expect_invalid(g, "value 'x': input flag");
    pq_graph_destroy(g);
}

Test(verify, bad_op_shape_symbol_constant) {
    pq_graph *g = good_graph();
    g->nodes[0].op = (enum pq_op)(PQ_OP_COUNT + 5);
    expect_invalid(g, "invalid op");
    pq_graph_destroy(g);

    g = good_graph();
    uint32_t h = pq_graph_find_value(g, "h");
    g->values[h].shape.dims[1].size = -1;
    g->values[h].shape.dims[1].sym = 9;
    expect_invalid(g, "value 'h' dim 1 refers to symbol 9");
    g->values[h].shape.dims[1].size = -7;
    expect_invalid(g, "value 'h' has dim 1 = -7");
    g->values[h].shape.rank = 12;
    expect_invalid(g, "value 'h' has rank 12");
    pq_graph_destroy(g);

    g = good_graph();
    uint32_t w = pq_graph_find_value(g, "w");
    g->values[w].shape.dims[0].size = 5;
    expect_invalid(g, "value 'w': declared type differs from its constant");
    pq_graph_destroy(g);
}

Test(verify, type_consistency_with_inference) {
    if (!pq_infer_table[PQ_OP_RELU]) cr_skip_test("no Relu inference rule yet");
    pq_graph *g = good_graph();
    uint32_t h = pq_graph_find_value(g, "h");
    g->values[h].shape.dims[1].size = 4; /* Relu of [2,3] declared [2,4] */
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "structure alone is fine: %s", err.msg);
    expect_invalid(g, "output 'h' dim 1 is declared 4, inferred 3");
    g->values[h].shape.dims[1].size = 3;
    g->values[h].dtype = PQ_DTYPE_I32;
    expect_invalid(g, "output 'h' is declared i32, inferred f32");
    pq_graph_destroy(g);
}

Test(verify, attributes) {
    pq_graph *g = good_graph();
    cr_assert_eq(pq_node_set_int(g, 0, "a", 1, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(g, 0, "b", 2, &err), PQ_OK);
    cr_assert_eq(pq_graph_verify(g, &err), PQ_OK, "%s", err.msg);
    g->nodes[0].attrs[1].name = g->nodes[0].attrs[0].name;
    expect_invalid(g, "node 'relu' (Relu): attribute 'a' appears twice");
    pq_graph_destroy(g);
}

/* main: cond, x -> If(cond) {then: Neg(x captured) ; else: Identity(x captured)} -> y */
static pq_graph *if_graph(pq_graph **then_out) {
    pq_graph *g = pq_graph_create(NULL, &err);
    g->name = pq_graph_strdup(g, "main");
    int64_t d[1] = {4};
    uint32_t c, x = val(g, "x", 1, d), y = val(g, "y", 1, d);
    pq_shape s0 = pq_shape_from_dims(0, NULL);
    cr_assert_eq(pq_graph_add_value(g, "cond", PQ_DTYPE_BOOL, &s0, &c, &err), PQ_OK);
    pq_graph_add_input(g, c, &err);
    pq_graph_add_input(g, x, &err);
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_IF, "if0", &c, 1, &y, 1, &nid, &err), PQ_OK);
    const char *branches[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++) {
        pq_graph *sub = pq_graph_create(g, &err);
        sub->name = pq_graph_strdup(sub, branches[b]);
        uint32_t cx, o = val(sub, "o", 1, d);
        cr_assert_eq(pq_graph_capture(sub, "x", &cx, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(pq_graph_add_node(sub, b ? PQ_OP_IDENTITY : PQ_OP_NEG, "inner", &cx, 1, &o, 1,
                                       NULL, &err),
                     PQ_OK);
        pq_graph_add_output(sub, o, &err);
        if (b == 0) *then_out = sub;
        cr_assert_eq(pq_node_set_graph(g, nid, branches[b], sub, &err), PQ_OK);
    }
    pq_graph_add_output(g, y, &err);
    return g;
}

Test(verify, subgraphs_recursive) {
    pq_graph *then_g;
    pq_graph *g = if_graph(&then_g);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    /* break the then branch: its node reads an undefined value */
    int64_t d[1] = {4};
    uint32_t ghost = val(then_g, "ghost", 1, d);
    then_g->nodes[0].inputs[0] = ghost;
    expect_invalid(g, "node 'if0' (If), attribute 'then_branch': verify: graph 'then_branch': "
                      "node 'inner' (Neg): input 0 'ghost' is never defined");
    pq_graph_destroy(g);
}

Test(verify, captured_values_resolve) {
    pq_graph *then_g;
    pq_graph *g = if_graph(&then_g);
    uint32_t cx = pq_graph_find_value(then_g, "x");
    then_g->values[cx].outer = 500;
    expect_invalid(g, "captured value 'x' refers to outer id 500, out of range");
    then_g->values[cx].outer = pq_graph_find_value(g, "y");
    expect_invalid(g, "captured value 'x' refers to outer value 'y'");
    pq_graph_destroy(g);

    g = if_graph(&then_g);
    then_g->parent = NULL;
    expect_invalid(g, "subgraph 'then_branch' does not point back to its parent graph");
    then_g->parent = g;
    pq_graph_destroy(g);
}

Test(verify, null_graph) {
    pq_error_clear(&err);
    cr_assert_eq(pq_graph_verify(NULL, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_graph_verify(NULL, NULL), PQ_ERR_INVALID);
}
