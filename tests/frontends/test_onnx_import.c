/* ONNX importer tests: real models from libonnx-testdata (structure, shapes, constants,
 * subgraphs and captures), opset normalisation to the canonical forms, tensor files and every
 * element type, plus in-memory models for symbols, errors and allocation failures. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frontends/onnx.h"
#include "ir/ir.h"
#include "onnx_builder.h"

#define TD "/usr/share/libonnx-testdata/data/"

static pq_graph *load(const char *rel) {
    pq_graph *g = NULL;
    pq_error err;
    enum pq_status st = pq_onnx_import_file(rel, &g, &err);
    cr_assert_eq(st, PQ_OK, "%s: %s", rel, err.msg);
    cr_assert_not_null(g);
    return g;
}

static int count_op(const pq_graph *g, enum pq_op op) {
    int n = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].op == op;
    return n;
}

static const pq_node *find_op(const pq_graph *g, enum pq_op op) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == op) return &g->nodes[i];
    cr_assert_fail("no %s node", pq_op_name(op));
    return NULL;
}

/* Constant data of node input i as i64 values (asserts it is an i64 constant). */
static const int64_t *const_i64(const pq_graph *g, const pq_node *n, uint32_t i, int64_t *count) {
    uint32_t v = pq_node_input(n, i);
    cr_assert_neq(v, PQ_NONE, "input %u missing", i);
    const pq_tensor *t = g->values[v].constant;
    cr_assert_not_null(t, "input %u is not a constant", i);
    cr_assert_eq(t->dtype, PQ_DTYPE_I64);
    *count = pq_tensor_numel(t);
    return t->data;
}

static void assert_shape(const pq_value *v, int rank, const int64_t *dims) {
    cr_assert_eq(v->shape.rank, rank, "'%s' rank %d, expected %d", v->name, v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(v->shape.dims[i].size, dims[i], "'%s' dim %d", v->name, i);
}

Test(onnx_import, conv_with_strides_padding) {
    pq_graph *g = load(TD "node/test_conv_with_strides_padding/model.onnx");
    cr_assert_eq(g->n_nodes, 1);
    const pq_node *n = &g->nodes[0];
    cr_assert_eq(n->op, PQ_OP_CONV);
    cr_assert_eq(n->n_inputs, 2);
    cr_assert_eq(g->n_inputs, 2);
    cr_assert_eq(g->n_outputs, 1);
    const pq_value *x = &g->values[g->inputs[0]];
    cr_assert_str_eq(x->name, "x");
    cr_assert_eq(x->dtype, PQ_DTYPE_F32);
    assert_shape(x, 4, (int64_t[]){1, 1, 7, 5});
    assert_shape(&g->values[g->inputs[1]], 4, (int64_t[]){1, 1, 3, 3});
    const pq_attr *s = pq_node_attr(n, "strides");
    cr_assert_not_null(s);
    cr_assert_eq(s->type, PQ_ATTR_INTS);
    cr_assert_eq(s->u.ints.n, 2);
    cr_assert_eq(s->u.ints.v[0], 2);
    const pq_attr *p = pq_node_attr(n, "pads");
    cr_assert_eq(p->u.ints.n, 4);
    cr_assert_eq(p->u.ints.v[3], 1);
    cr_assert_eq(g->values[g->outputs[0]].flags & PQ_VALUE_OUTPUT, PQ_VALUE_OUTPUT);
    cr_assert_eq(pq_graph_opset(g, ""), 11);
    pq_graph_destroy(g);
}

Test(onnx_import, if_subgraphs) {
    pq_graph *g = load(TD "node/test_if/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_IF);
    const pq_attr *t = pq_node_attr(n, "then_branch");
    const pq_attr *e = pq_node_attr(n, "else_branch");
    cr_assert(t && e);
    cr_assert_eq(t->type, PQ_ATTR_GRAPH);
    cr_assert_eq(t->u.graph->parent, g);
    cr_assert_eq(e->u.graph->parent, g);
    cr_assert_eq(t->u.graph->n_outputs, 1);
    /* the branch output is a Constant node folded into a constant value */
    const pq_value *out = &t->u.graph->values[t->u.graph->outputs[0]];
    cr_assert_not_null(out->constant);
    cr_assert_eq(out->constant->dtype, PQ_DTYPE_F32);
    cr_assert_eq(pq_tensor_numel(out->constant), 5);
    cr_assert_float_eq(((float *)out->constant->data)[0], 1.0f, 1e-6);
    cr_assert_eq(g->values[g->inputs[0]].dtype, PQ_DTYPE_BOOL);
    pq_graph_destroy(g);
}

Test(onnx_import, loop_body) {
    pq_graph *g = load(TD "node/test_loop11/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_LOOP);
    cr_assert_eq(n->n_inputs, 3);
    cr_assert_eq(n->n_outputs, 2);
    const pq_graph *body = pq_node_attr(n, "body")->u.graph;
    cr_assert_eq(body->n_inputs, 3);
    cr_assert_eq(body->n_outputs, 3);
    cr_assert_eq(body->values[body->inputs[0]].dtype, PQ_DTYPE_I64);
    cr_assert_eq(body->values[body->inputs[1]].dtype, PQ_DTYPE_BOOL);
    /* Unsqueeze at opset 11 got its axes attribute as constant input 1 */
    const pq_node *u = find_op(body, PQ_OP_UNSQUEEZE);
    int64_t c;
    const int64_t *ax = const_i64(body, u, 1, &c);
    cr_assert_eq(c, 1);
    cr_assert_eq(ax[0], 0);
    cr_assert_eq(count_op(body, PQ_OP_SLICE), 1);
    pq_graph_destroy(g);
}

Test(onnx_import, loop_body_captures_outer_value) {
    pq_graph *g = load(TD "node/test_range_float_type_positive_delta_expanded/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_LOOP);
    const pq_graph *body = pq_node_attr(n, "body")->u.graph;
    uint32_t v = pq_graph_find_value(body, "delta");
    cr_assert_neq(v, PQ_NONE);
    cr_assert_neq(body->values[v].outer, PQ_NONE, "delta is not a capture");
    cr_assert_str_eq(g->values[body->values[v].outer].name, "delta");
    pq_graph_destroy(g);
}

Test(onnx_import, initializers_become_constants) {
    pq_graph *g = load(TD "pytorch-converted/test_Conv2d/model.onnx");
    cr_assert_eq(count_op(g, PQ_OP_CONV), 1);
    const pq_node *n = find_op(g, PQ_OP_CONV);
    uint32_t w = pq_node_input(n, 1);
    cr_assert_not_null(g->values[w].constant);
    cr_assert_eq(g->values[w].flags & PQ_VALUE_INPUT, 0,
                 "initializer listed as input stays a constant");
    cr_assert_eq(g->n_inputs, 1);
    int64_t el, by;
    pq_graph_param_stats(g, &el, &by);
    cr_assert_gt(el, 0);
    cr_assert_eq(by, el * 4);
    pq_graph_destroy(g);
}

Test(onnx_import, simple_models) {
    pq_graph *g = load(TD "simple/test_single_relu_model/model.onnx");
    cr_assert_eq(g->n_nodes, 1);
    cr_assert_eq(g->nodes[0].op, PQ_OP_RELU);
    pq_graph_destroy(g);
    g = load(TD "simple/test_expand_shape_model1/model.onnx");
    cr_assert_eq(count_op(g, PQ_OP_EXPAND), 1);
    pq_graph_destroy(g);
}

Test(onnx_import, reduce_axes_old_and_new_opsets) {
    /* opset 6: axes attribute -> constant input 1 */
    pq_graph *g = load(TD "pytorch-operator/test_operator_reduced_sum/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_REDUCE_SUM);
    int64_t c;
    const int64_t *ax = const_i64(g, n, 1, &c);
    cr_assert_eq(c, 1);
    cr_assert_eq(ax[0], 2);
    cr_assert_null(pq_node_attr(n, "axes"));
    cr_assert_eq(pq_node_attr_int(n, "keepdims", 1), 0);
    pq_graph_destroy(g);
    /* opset 13: ReduceSum already takes axes as input 1 (a graph input here) */
    g = load(TD "node/test_reduce_sum_keepdims_example/model.onnx");
    n = find_op(g, PQ_OP_REDUCE_SUM);
    cr_assert_eq(n->n_inputs, 2);
    cr_assert_str_eq(g->values[n->inputs[1]].name, "axes");
    pq_graph_destroy(g);
    /* ReduceMean at opset 6 and 13 both get input 1 */
    g = load(TD "pytorch-operator/test_operator_reduced_mean/model.onnx");
    ax = const_i64(g, find_op(g, PQ_OP_REDUCE_MEAN), 1, &c);
    cr_assert_eq(ax[0], 2);
    pq_graph_destroy(g);
    g = load(TD "node/test_reduce_mean_keepdims_example/model.onnx");
    n = find_op(g, PQ_OP_REDUCE_MEAN);
    ax = const_i64(g, n, 1, &c);
    cr_assert_eq(c, 1);
    cr_assert_eq(ax[0], 1);
    cr_assert_null(pq_node_attr(n, "axes"));
    pq_graph_destroy(g);
}

Test(onnx_import, clip_opset6_vs_13) {
    pq_graph *g = load(TD "pytorch-operator/test_operator_clip/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_CLIP);
    cr_assert_eq(n->n_inputs, 3);
    const pq_tensor *lo = g->values[n->inputs[1]].constant;
    const pq_tensor *hi = g->values[n->inputs[2]].constant;
    cr_assert(lo && hi);
    cr_assert_eq(lo->dtype, PQ_DTYPE_F32);
    cr_assert_eq(lo->rank, 0);
    cr_assert_float_eq(((float *)lo->data)[0], -0.5f, 1e-7);
    cr_assert_float_eq(((float *)hi->data)[0], 0.5f, 1e-7);
    cr_assert_null(pq_node_attr(n, "min"));
    pq_graph_destroy(g);
    g = load(TD "node/test_clip/model.onnx");
    n = find_op(g, PQ_OP_CLIP);
    cr_assert_eq(n->n_inputs, 3);
    cr_assert_str_eq(g->values[n->inputs[1]].name, "min");
    cr_assert_null(g->values[n->inputs[1]].constant);
    pq_graph_destroy(g);
    /* only max given: min omitted */
    g = load(TD "node/test_clip_default_max/model.onnx");
    n = find_op(g, PQ_OP_CLIP);
    cr_assert_eq(n->inputs[1], PQ_NONE);
    cr_assert_neq(n->inputs[2], PQ_NONE);
    pq_graph_destroy(g);
}

Test(onnx_import, slice_pad_split_old_opsets) {
    pq_graph *g = load(TD "pytorch-operator/test_operator_index/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_SLICE);
    int64_t c;
    cr_assert_eq(const_i64(g, n, 1, &c)[0], 0);
    cr_assert_eq(const_i64(g, n, 2, &c)[0], 1);
    cr_assert_eq(const_i64(g, n, 3, &c)[0], 0);
    cr_assert_eq(count_op(g, PQ_OP_SQUEEZE), 1);
    pq_graph_destroy(g);
    g = load(TD "pytorch-converted/test_ConstantPad2d/model.onnx");
    n = find_op(g, PQ_OP_PAD);
    const int64_t *pads = const_i64(g, n, 1, &c);
    cr_assert_eq(c, 8);
    cr_assert_eq(pads[2], 3);
    const pq_tensor *cv = g->values[n->inputs[2]].constant;
    cr_assert_eq(cv->dtype, PQ_DTYPE_F32);
    cr_assert_float_eq(((float *)cv->data)[0], 2.0f, 0);
    cr_assert_str_eq(pq_node_attr_string(n, "mode", ""), "constant");
    pq_graph_destroy(g);
    g = load(TD "pytorch-operator/test_operator_chunk/model.onnx");
    n = find_op(g, PQ_OP_SPLIT);
    const int64_t *sp = const_i64(g, n, 1, &c);
    cr_assert_eq(c, 2);
    cr_assert_eq(sp[0], 2);
    cr_assert_eq(sp[1], 1);
    pq_graph_destroy(g);
}

Test(onnx_import, upsample_becomes_resize) {
    pq_graph *g = load(TD "node/test_upsample_nearest/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_RESIZE);
    cr_assert_eq(n->n_inputs, 3);
    cr_assert_eq(n->inputs[1], PQ_NONE);
    cr_assert_str_eq(g->values[n->inputs[2]].name, "scales");
    cr_assert_str_eq(pq_node_attr_string(n, "coordinate_transformation_mode", ""), "asymmetric");
    cr_assert_str_eq(pq_node_attr_string(n, "nearest_mode", ""), "floor");
    cr_assert_str_eq(pq_node_attr_string(n, "mode", ""), "nearest");
    pq_graph_destroy(g);
    /* a Resize of opset 13 is untouched */
    g = load(TD "node/test_resize_upsample_scales_nearest/model.onnx");
    n = find_op(g, PQ_OP_RESIZE);
    cr_assert_null(pq_node_attr(n, "nearest_mode"));
    pq_graph_destroy(g);
}

Test(onnx_import, softmax_coerce_2d) {
    pq_graph *g = load(TD "pytorch-converted/test_softmax_functional_dim3/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_SOFTMAX);
    cr_assert_eq(pq_node_attr_int(n, "coerce_2d", 0), 1);
    cr_assert_eq(pq_node_attr_int(n, "axis", -7), 3);
    pq_graph_destroy(g);
    g = load(TD "node/test_softmax_default_axis/model.onnx");
    n = find_op(g, PQ_OP_SOFTMAX);
    cr_assert_null(pq_node_attr(n, "coerce_2d"));
    cr_assert_eq(pq_node_attr_int(n, "axis", -7), -1, "axis written explicitly");
    pq_graph_destroy(g);
}

Test(onnx_import, cast_to_is_dtype_name) {
    pq_graph *g = load(TD "node/test_cast_FLOAT_to_FLOAT16/model.onnx");
    const pq_attr *a = pq_node_attr(find_op(g, PQ_OP_CAST), "to");
    cr_assert_eq(a->type, PQ_ATTR_STRING);
    cr_assert_str_eq(a->u.s, "f16");
    pq_graph_destroy(g);
}

Test(onnx_import, batchnorm_and_gemm_legacy_attributes) {
    pq_graph *g = load(TD "pytorch-converted/test_BatchNorm2d_eval/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_BATCH_NORMALIZATION);
    cr_assert_null(pq_node_attr(n, "is_test"));
    cr_assert_null(pq_node_attr(n, "momentum"));
    cr_assert_not_null(pq_node_attr(n, "epsilon"));
    pq_graph_destroy(g);
    g = load(TD "pytorch-converted/test_Linear/model.onnx");
    n = find_op(g, PQ_OP_GEMM);
    cr_assert_null(pq_node_attr(n, "broadcast"));
    cr_assert_eq(pq_node_attr_int(n, "transB", 0), 1);
    pq_graph_destroy(g);
}

Test(onnx_import, constant_node_becomes_value) {
    pq_graph *g = load(TD "node/test_constant/model.onnx");
    cr_assert_eq(g->n_nodes, 0);
    const pq_value *v = &g->values[g->outputs[0]];
    cr_assert_not_null(v->constant);
    cr_assert_eq(v->constant->dtype, PQ_DTYPE_F32);
    assert_shape(v, 2, (int64_t[]){5, 5});
    pq_graph_destroy(g);
}

Test(onnx_import, tensor_file) {
    pq_tensor *t = NULL;
    char *name = NULL;
    pq_error err;
    enum pq_status st = pq_onnx_load_tensor_file(
        TD "node/test_conv_with_strides_padding/test_data_set_0/input_0.pb", &t, &name, &err);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    cr_assert_str_eq(name, "x");
    cr_assert_eq(t->dtype, PQ_DTYPE_F32);
    cr_assert_eq(t->rank, 4);
    cr_assert_eq(t->dims[2], 7);
    cr_assert_eq(pq_tensor_numel(t), 35);
    for (int i = 0; i < 35; i++)
        cr_assert_float_eq(((float *)t->data)[i], (float)i, 0);
    pq_tensor_destroy(t);
    pq_free(name);
    st = pq_onnx_load_tensor_file(TD "node/test_if/test_data_set_0/input_0.pb", &t, NULL, &err);
    cr_assert_eq(st, PQ_OK, "%s", err.msg);
    cr_assert_eq(t->dtype, PQ_DTYPE_BOOL);
    cr_assert_eq(t->rank, 0);
    pq_tensor_destroy(t);
    st = pq_onnx_load_tensor_file("/nonexistent/x.pb", &t, NULL, &err);
    cr_assert_eq(st, PQ_ERR_IO);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "onnx: ") == err.msg, "%s", err.msg);
}

/* ---- in-memory models ---- */

static enum pq_status import_mem(const uint8_t *buf, size_t len, pq_graph **g, pq_error *err) {
    return pq_onnx_import_buffer(buf, len, NULL, g, err);
}

Test(onnx_import, symbols_and_unknown_dims) {
    Onnx__GraphProto *gp = ob_graph("g");
    const char *syms[] = {"batch", NULL, NULL};
    ob_graph_input(
        gp, ob_value("x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3, (int64_t[]){-1, -1, 4}, syms));
    ob_graph_input(gp, ob_value("y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (int64_t[]){-1, 4},
                                (const char *[]){"batch", NULL}));
    ob_graph_node(gp, ob_node("Relu", "r", "x", "z"));
    ob_graph_output(gp, ob_value("z", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_OK, "%s", err.msg);
    const pq_value *x = &g->values[g->inputs[0]];
    const pq_value *y = &g->values[g->inputs[1]];
    cr_assert_eq(x->shape.rank, 3);
    cr_assert_eq(x->shape.dims[0].size, -1);
    cr_assert_neq(x->shape.dims[0].sym, 0);
    cr_assert_str_eq(pq_graph_symbol_name(g, x->shape.dims[0].sym), "batch");
    cr_assert_eq(x->shape.dims[1].size, -1);
    cr_assert_eq(x->shape.dims[1].sym, 0);
    cr_assert_eq(x->shape.dims[2].size, 4);
    cr_assert_eq(y->shape.dims[0].sym, x->shape.dims[0].sym, "same symbol interned once");
    cr_assert_str_eq(g->producer_name, "piqc-test");
    cr_assert_eq(g->ir_version, 8);
    pq_graph_destroy(g);
    ob_free_all();
}

Test(onnx_import, unsorted_nodes_and_omitted_inputs) {
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_input(gp,
                   ob_value("x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, (int64_t[]){4}, NULL));
    ob_graph_node(gp, ob_node("Clip", "c", "t,,", "y")); /* uses t before it is defined */
    ob_graph_node(gp, ob_node("Relu", "r", "x", "t"));
    ob_graph_output(gp,
                    ob_value("y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, (int64_t[]){4}, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->nodes[0].op, PQ_OP_RELU, "toposorted");
    cr_assert_eq(g->nodes[1].op, PQ_OP_CLIP);
    cr_assert_eq(g->nodes[1].n_inputs, 1, "trailing omitted inputs are trimmed");
    pq_graph_destroy(g);
    ob_free_all();
}

Test(onnx_import, legacy_broadcast_with_axis) {
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_input(
        gp, ob_value("a", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL));
    ob_graph_input(gp,
                   ob_value("b", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, (int64_t[]){3}, NULL));
    ob_graph_init(gp, ob_tensor_f32("w", 1, (int64_t[]){3}, (float[]){1, 2, 3}, 3));
    Onnx__NodeProto *n1 = ob_node("Add", "add", "a,w", "s");
    ob_attr_int(n1, "broadcast", 1);
    ob_attr_int(n1, "axis", 1);
    Onnx__NodeProto *n2 = ob_node("Mul", "mul", "s,b", "y");
    ob_attr_int(n2, "broadcast", 1);
    ob_attr_int(n2, "axis", 1);
    ob_graph_node(gp, n1);
    ob_graph_node(gp, n2);
    ob_graph_output(gp, ob_value("y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL, NULL));
    ob_graph_value_info(
        gp, ob_value("s", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, (int64_t[]){2, 3, 4, 5}, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 3, 6, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_OK, "%s", err.msg);
    const pq_node *add = find_op(g, PQ_OP_ADD);
    cr_assert_null(pq_node_attr(add, "broadcast"));
    cr_assert_null(pq_node_attr(add, "axis"));
    const pq_tensor *w = g->values[add->inputs[1]].constant;
    cr_assert_not_null(w);
    cr_assert_eq(w->rank, 3);
    cr_assert_eq(w->dims[0], 3);
    cr_assert_eq(w->dims[2], 1);
    cr_assert_float_eq(((float *)w->data)[2], 3.0f, 0);
    /* the original initializer is untouched */
    cr_assert_eq(g->values[pq_graph_find_value(g, "w")].constant->rank, 1);
    /* a non-constant B gets an Unsqueeze with axes [1, 2] */
    const pq_node *u = find_op(g, PQ_OP_UNSQUEEZE);
    int64_t c;
    const int64_t *ax = const_i64(g, u, 1, &c);
    cr_assert_eq(c, 2);
    cr_assert_eq(ax[0], 1);
    cr_assert_eq(ax[1], 2);
    const pq_node *mul = find_op(g, PQ_OP_MUL);
    cr_assert_eq(mul->inputs[1], u->outputs[0]);
    pq_graph_destroy(g);
    ob_free_all();
}

/* Imports a one-initializer model and returns the constant (graph kept in *gout). */
static const pq_tensor *import_init(Onnx__TensorProto *t, pq_graph **gout) {
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_init(gp, t);
    ob_graph_node(gp, ob_node("Identity", "i", t->name, "y"));
    ob_graph_output(gp, ob_value("y", t->data_type, -1, NULL, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_error err;
    cr_assert_eq(import_mem(buf, len, gout, &err), PQ_OK, "%s", err.msg);
    uint32_t v = pq_graph_find_value(*gout, t->name);
    cr_assert_neq(v, PQ_NONE);
    return (*gout)->values[v].constant;
}

Test(onnx_import, tensor_element_types) {
    pq_graph *g;
    int64_t d3[] = {3};
    /* int32_data carries f16 bit patterns */
    const pq_tensor *t =
        import_init(ob_tensor_i32data("h", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1, d3,
                                      (int32_t[]){0x3c00, 0xc000, 0x7c00}, 3),
                    &g);
    cr_assert_eq(t->dtype, PQ_DTYPE_F16);
    cr_assert_float_eq(pq_f16_to_f32(((uint16_t *)t->data)[1]), -2.0f, 0);
    cr_assert(isinf(pq_f16_to_f32(((uint16_t *)t->data)[2])));
    pq_graph_destroy(g);
    t = import_init(
        ob_tensor_i32data("b", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 1, d3, (int32_t[]){0, 1, 7}, 3),
        &g);
    cr_assert_eq(t->dtype, PQ_DTYPE_BOOL);
    cr_assert_eq(((uint8_t *)t->data)[2], 1, "bools normalised to 0/1");
    pq_graph_destroy(g);
    t = import_init(ob_tensor_i32data("i8", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, d3,
                                      (int32_t[]){-128, 5, 127}, 3),
                    &g);
    cr_assert_eq(((int8_t *)t->data)[0], -128);
    pq_graph_destroy(g);
    t = import_init(ob_tensor_i32data("u16", ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, 1, d3,
                                      (int32_t[]){65535, 1, 2}, 3),
                    &g);
    cr_assert_eq(t->dtype, PQ_DTYPE_U16);
    cr_assert_eq(((uint16_t *)t->data)[0], 65535);
    pq_graph_destroy(g);
    t = import_init(ob_tensor_u64data("u32", ONNX__TENSOR_PROTO__DATA_TYPE__UINT32, 1, d3,
                                      (uint64_t[]){4000000000u, 1, 2}, 3),
                    &g);
    cr_assert_eq(t->dtype, PQ_DTYPE_U32);
    cr_assert_eq(((uint32_t *)t->data)[0], 4000000000u);
    pq_graph_destroy(g);
    t = import_init(ob_tensor_u64data("u64", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, 1, d3,
                                      (uint64_t[]){UINT64_MAX, 1, 2}, 3),
                    &g);
    cr_assert_eq(((uint64_t *)t->data)[0], UINT64_MAX);
    pq_graph_destroy(g);
    /* raw little-endian bf16 and f64 */
    uint8_t bf[4] = {0x80, 0x3f, 0x00, 0xc0}; /* 1.0, -2.0 */
    t = import_init(
        ob_tensor_raw("bf", ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16, 1, (int64_t[]){2}, bf, 4), &g);
    cr_assert_eq(t->dtype, PQ_DTYPE_BF16);
    cr_assert_float_eq(pq_bf16_to_f32(((uint16_t *)t->data)[0]), 1.0f, 0);
    cr_assert_float_eq(pq_bf16_to_f32(((uint16_t *)t->data)[1]), -2.0f, 0);
    pq_graph_destroy(g);
    double dv[2] = {0.25, -1e300};
    t = import_init(
        ob_tensor_raw("d", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, (int64_t[]){2}, dv, sizeof dv),
        &g);
    cr_assert_eq(((double *)t->data)[1], -1e300);
    pq_graph_destroy(g);
    /* scalar and empty tensors */
    t = import_init(ob_tensor_i64("s", 0, NULL, (int64_t[]){42}, 1), &g);
    cr_assert_eq(t->rank, 0);
    cr_assert_eq(((int64_t *)t->data)[0], 42);
    pq_graph_destroy(g);
    t = import_init(ob_tensor_f32("e", 2, (int64_t[]){0, 3}, NULL, 0), &g);
    cr_assert_eq(pq_tensor_numel(t), 0);
    pq_graph_destroy(g);
    ob_free_all();
}

Test(onnx_import, external_data) {
    char dir[] = "/tmp/pq_onnx_ext_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "wb");
    float vals[6] = {9, 9, 1, 2, 3, 4};
    fwrite(vals, sizeof vals, 1, f);
    fclose(f);
    Onnx__TensorProto *t =
        ob_tensor_raw("w", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (int64_t[]){2, 2}, NULL, 0);
    ob_tensor_external(t, "location", "weights.bin");
    ob_tensor_external(t, "offset", "8");
    ob_tensor_external(t, "length", "16");
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_init(gp, t);
    ob_graph_node(gp, ob_node("Identity", "i", "w", "y"));
    ob_graph_output(gp, ob_value("y", 1, -1, NULL, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(pq_onnx_import_buffer(buf, len, dir, &g, &err), PQ_OK, "%s", err.msg);
    const pq_tensor *c = g->values[pq_graph_find_value(g, "w")].constant;
    cr_assert_float_eq(((float *)c->data)[0], 1.0f, 0);
    cr_assert_float_eq(((float *)c->data)[3], 4.0f, 0);
    pq_graph_destroy(g);
    /* without a folder, external data is refused */
    cr_assert_eq(pq_onnx_import_buffer(buf, len, NULL, &g, &err), PQ_ERR_INVALID);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, "without a folder"), "%s", err.msg);
    /* model file next to the data: found relative to the model's folder */
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    f = fopen(path, "wb");
    fwrite(buf, len, 1, f);
    fclose(f);
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    unlink(path);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    unlink(path);
    rmdir(dir);
    ob_free_all();
}

Test(onnx_import, tensor_file_roundtrip_types) {
    char path[] = "/tmp/pq_onnx_tensor_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len;
    uint8_t *buf = ob_pack_tensor(ob_tensor_i32data("q", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 2,
                                                    (int64_t[]){1, 2}, (int32_t[]){255, 3}, 2),
                                  &len);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    pq_tensor *t;
    char *name;
    pq_error err;
    cr_assert_eq(pq_onnx_load_tensor_file(path, &t, &name, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(name, "q");
    cr_assert_eq(t->dtype, PQ_DTYPE_U8);
    cr_assert_eq(((uint8_t *)t->data)[0], 255);
    pq_tensor_destroy(t);
    pq_free(name);
    unlink(path);
    ob_free_all();
}

Test(onnx_import, unsupported_operator_lists_supported_ones) {
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_input(gp, ob_value("x", 1, 1, (int64_t[]){4}, NULL));
    ob_graph_node(gp, ob_node("Foo", "n", "x", "y"));
    ob_graph_output(gp, ob_value("y", 1, -1, NULL, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "onnx: node 'n' (Foo, domain '', opset 13): unsupported operator; "
                              "supported: Abs, "),
              "%s", err.msg);
    cr_assert(strstr(err.msg, " Add, ") && strstr(err.msg, " Conv, "), "%s", err.msg);
    cr_assert(strstr(err.msg, "Upsample"), "%s", err.msg);
    ob_free_all();
}

Test(onnx_import, attribute_type_and_arity_errors) {
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_input(gp, ob_value("x", 1, 4, (int64_t[]){1, 1, 4, 4}, NULL));
    ob_graph_input(gp, ob_value("w", 1, 4, (int64_t[]){1, 1, 3, 3}, NULL));
    Onnx__NodeProto *n = ob_node("Conv", "conv_3", "x,w", "y");
    ob_attr_float(n, "strides", 2.0f);
    ob_graph_node(gp, n);
    ob_graph_output(gp, ob_value("y", 1, -1, NULL, NULL));
    size_t len;
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    pq_graph *g;
    pq_error err;
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_ERR_INVALID);
    cr_assert_str_eq(
        err.msg, "onnx: node 'conv_3' (Conv): attribute 'strides' has type FLOAT, expected INTS");
    gp = ob_graph("g");
    ob_graph_input(gp, ob_value("x", 1, 1, (int64_t[]){4}, NULL));
    ob_graph_node(gp, ob_node("Add", "a", "x,x,x", "y"));
    ob_graph_output(gp, ob_value("y", 1, -1, NULL, NULL));
    buf = ob_model(gp, 8, 13, &len);
    cr_assert_eq(import_mem(buf, len, &g, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "node 'a' (Add): has 3 inputs, expected 2"), "%s", err.msg);
    ob_free_all();
}

Test(onnx_import, allocation_failures_are_clean) {
    size_t len;
    Onnx__GraphProto *gp = ob_graph("g");
    ob_graph_input(gp, ob_value("x", 1, 2, (int64_t[]){-1, 4}, (const char *[]){"n", NULL}));
    ob_graph_init(gp, ob_tensor_f32("w", 1, (int64_t[]){4}, (float[]){1, 2, 3, 4}, 4));
    Onnx__NodeProto *n = ob_node("ReduceMean", "rm", "x", "m");
    ob_attr_ints(n, "axes", (int64_t[]){1}, 1);
    ob_graph_node(gp, ob_node("Add", "a", "x,w", "s"));
    ob_graph_node(gp, n);
    ob_graph_output(gp, ob_value("m", 1, -1, NULL, NULL));
    uint8_t *buf = ob_model(gp, 8, 13, &len);
    int ok = 0;
    for (long k = 0; k < 400 && !ok; k++) {
        pq_graph *g = NULL;
        pq_error err;
        pq_alloc_fail_after(k);
        enum pq_status st = import_mem(buf, len, &g, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            ok = 1;
            pq_graph_destroy(g);
        } else {
            cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld status %d: %s", k, st, err.msg);
            cr_assert_null(g);
        }
    }
    cr_assert(ok, "import never succeeded");
    ob_free_all();
}

Test(onnx_import, prelu_opset6_slope_per_channel) {
    pq_graph *g = load(TD "pytorch-converted/test_PReLU_2d_multiparam/model.onnx");
    const pq_node *n = find_op(g, PQ_OP_PRELU);
    const pq_tensor *s = g->values[n->inputs[1]].constant;
    cr_assert_not_null(s);
    cr_assert_eq(s->rank, 3, "slope [3] aligned at the channel axis of a 4-D input");
    cr_assert_eq(s->dims[0], 3);
    cr_assert_eq(s->dims[1], 1);
    cr_assert_eq(s->dims[2], 1);
    pq_graph_destroy(g);
}

Test(onnx_opset, eyelike_dtype_becomes_a_dtype_name) {
    pq_graph *g = load(TD "node/test_eyelike_with_dtype/model.onnx");
    const pq_attr *a = pq_node_attr(find_op(g, PQ_OP_EYE_LIKE), "dtype");
    cr_assert_not_null(a);
    cr_assert_eq(a->type, PQ_ATTR_STRING);
    cr_assert_str_eq(a->u.s, "f64");
    pq_graph_destroy(g);
}
