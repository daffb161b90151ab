/* Tests of the shape-inference rules of the elementwise, reduction, search and quantization ops:
 * broadcasting with symbolic and unknown dims, output dtypes, axes/k known or unknown, and the
 * INVALID messages for bad dtypes, ranks and attributes. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

typedef struct ie_fixture {
    pq_graph *g;
    pq_error err;
} ie_fixture;

static ie_fixture F;

static void setup(void) {
    F.g = pq_graph_create(NULL, &F.err);
    cr_assert_not_null(F.g);
}
static void teardown(void) {
    pq_graph_destroy(F.g);
}

/* Adds a value; dims entries < 0 are unknown, names non-NULL give a symbol. rank < 0: unknown. */
static uint32_t val(enum pq_dtype t, int rank, const int64_t *dims, const char *sym) {
    pq_shape s = pq_shape_unknown();
    if (rank >= 0) {
        s.rank = rank;
        for (int i = 0; i < rank; i++) {
            s.dims[i] = dims[i] >= 0 ? pq_dim_of(dims[i]) : pq_dim_unknown();
            if (dims[i] == -2 && sym) s.dims[i].sym = pq_graph_intern_symbol(F.g, sym);
        }
    }
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(F.g, NULL, t, &s, &id, &F.err), PQ_OK);
    return id;
}

static uint32_t const_i64(int n, const int64_t *v) {
    int64_t d[1] = {n};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, 1, d, &F.err);
    memcpy(t->data, v, (size_t)n * sizeof *v);
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(F.g, NULL, PQ_DTYPE_I64, NULL, &id, &F.err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(F.g, id, t, &F.err), PQ_OK);
    return id;
}

/* Adds a node with n_out fresh outputs; returns node id, outputs in outs. */
static uint32_t node(enum pq_op op, const uint32_t *ins, uint32_t n_in, uint32_t n_out,
                     uint32_t *outs) {
    for (uint32_t i = 0; i < n_out; i++)
        outs[i] = val(PQ_DTYPE_UNDEFINED, -1, NULL, NULL);
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(F.g, op, NULL, ins, n_in, outs, n_out, &nid, &F.err), PQ_OK);
    return nid;
}

static const pq_value *V(uint32_t id) {
    return &F.g->values[id];
}

TestSuite(infer_ew, .init = setup, .fini = teardown);

Test(infer_ew, broadcast_with_symbols) {
    int64_t a[3] = {-2, 1, 4}, b[2] = {3, 1};
    uint32_t ins[2] = {val(PQ_DTYPE_F32, 3, a, "batch"), val(PQ_DTYPE_F32, 2, b, NULL)}, o[1];
    uint32_t n = node(PQ_OP_ADD, ins, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    const pq_value *y = V(o[0]);
    cr_assert_eq(y->dtype, PQ_DTYPE_F32);
    cr_assert_eq(y->shape.rank, 3);
    cr_assert(y->shape.dims[0].size == -1 && y->shape.dims[0].sym != 0); /* symbol kept */
    cr_assert_eq(y->shape.dims[1].size, 3);
    cr_assert_eq(y->shape.dims[2].size, 4);
}

Test(infer_ew, comparison_gives_bool_and_checks_dtypes) {
    int64_t a[1] = {5};
    uint32_t ins[2] = {val(PQ_DTYPE_I32, 1, a, NULL), val(PQ_DTYPE_I32, 0, NULL, NULL)}, o[1];
    uint32_t n = node(PQ_OP_LESS_OR_EQUAL, ins, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_BOOL);
    cr_assert_eq(V(o[0])->shape.dims[0].size, 5);
    uint32_t bad[2] = {val(PQ_DTYPE_F32, 1, a, NULL), val(PQ_DTYPE_I64, 1, a, NULL)};
    n = node(PQ_OP_EQUAL, bad, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "different dtypes"), "%s", F.err.msg);
    uint32_t fl[2] = {val(PQ_DTYPE_F32, 1, a, NULL), val(PQ_DTYPE_F32, 1, a, NULL)};
    n = node(PQ_OP_AND, fl, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "bool"), "%s", F.err.msg);
}

Test(infer_ew, where_variadic_prelu) {
    int64_t c[2] = {2, 1}, x[1] = {3}, yv[2] = {1, 3};
    uint32_t ins[3] = {val(PQ_DTYPE_BOOL, 2, c, NULL), val(PQ_DTYPE_F16, 1, x, NULL),
                       val(PQ_DTYPE_F16, 2, yv, NULL)},
             o[1];
    uint32_t n = node(PQ_OP_WHERE, ins, 3, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_F16);
    cr_assert(V(o[0])->shape.rank == 2 && V(o[0])->shape.dims[0].size == 2 &&
              V(o[0])->shape.dims[1].size == 3);
    n = node(PQ_OP_SUM, ins + 1, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert(V(o[0])->shape.rank == 2 && V(o[0])->shape.dims[1].size == 3);
    int64_t px[3] = {2, 3, 4}, ps[2] = {3, 1}, pbad[3] = {2, 3, 4 + 1};
    uint32_t pr[2] = {val(PQ_DTYPE_F32, 3, px, NULL), val(PQ_DTYPE_F32, 2, ps, NULL)};
    n = node(PQ_OP_PRELU, pr, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->shape.dims[2].size, 4);
    /* slope that would enlarge X is rejected */
    int64_t big[4] = {5, 2, 3, 4};
    uint32_t pr2[2] = {val(PQ_DTYPE_F32, 3, px, NULL), val(PQ_DTYPE_F32, 4, big, NULL)};
    n = node(PQ_OP_PRELU, pr2, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    uint32_t pr3[2] = {val(PQ_DTYPE_F32, 3, px, NULL), val(PQ_DTYPE_F32, 3, pbad, NULL)};
    n = node(PQ_OP_MUL, pr3, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "broadcast"), "%s", F.err.msg);
}

Test(infer_ew, unary_cast_softmax) {
    int64_t d[2] = {-1, 7};
    uint32_t x = val(PQ_DTYPE_F32, 2, d, NULL), o[1];
    uint32_t n = node(PQ_OP_IS_NAN, &x, 1, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_BOOL);
    cr_assert(V(o[0])->shape.rank == 2 && V(o[0])->shape.dims[1].size == 7);
    n = node(PQ_OP_CAST, &x, 1, 1, o);
    cr_assert_eq(pq_node_set_string(F.g, n, "to", "i64", &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_I64);
    n = node(PQ_OP_SOFTMAX, &x, 1, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "axis", 2, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "axis 2"), "%s", F.err.msg);
    uint32_t u = val(PQ_DTYPE_U8, 2, d, NULL);
    n = node(PQ_OP_NEG, &u, 1, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    n = node(PQ_OP_ABS, &u, 1, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    /* Clip bounds must be scalars of X's dtype */
    int64_t two[1] = {2};
    uint32_t cl[3] = {x, val(PQ_DTYPE_F32, 1, two, NULL), PQ_NONE};
    n = node(PQ_OP_CLIP, cl, 3, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "min"), "%s", F.err.msg);
}

Test(infer_ew, reduce_axes_known_unknown_and_default) {
    int64_t d[4] = {2, -2, 5, 1};
    uint32_t x = val(PQ_DTYPE_F32, 4, d, "seq"), o[1];
    int64_t ax[2] = {-2, 0};
    uint32_t ins[2] = {x, const_i64(2, ax)};
    uint32_t n = node(PQ_OP_REDUCE_MEAN, ins, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    const pq_shape *s = &V(o[0])->shape;
    cr_assert_eq(s->rank, 4);
    cr_assert(s->dims[0].size == 1 && s->dims[1].sym != 0 && s->dims[2].size == 1 &&
              s->dims[3].size == 1);
    n = node(PQ_OP_REDUCE_SUM, ins, 2, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "keepdims", 0, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->shape.rank, 2);
    cr_assert_eq(V(o[0])->shape.dims[1].size, 1);
    /* no axes: all reduced */
    n = node(PQ_OP_REDUCE_MAX, &x, 1, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "keepdims", 0, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->shape.rank, 0);
    /* axes as a runtime input of known length 1: rank known, dims unknown */
    int64_t one[1] = {1};
    uint32_t dyn[2] = {x, val(PQ_DTYPE_I64, 1, one, NULL)};
    n = node(PQ_OP_REDUCE_L2, dyn, 2, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "keepdims", 0, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->shape.rank, 3);
    n = node(PQ_OP_REDUCE_L1, dyn, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->shape.rank, 4);
    cr_assert_eq(V(o[0])->shape.dims[3].size, 1); /* a size-1 dim stays 1 either way */
    /* duplicate axis */
    int64_t dup[2] = {1, -3};
    uint32_t dins[2] = {x, const_i64(2, dup)};
    n = node(PQ_OP_REDUCE_PROD, dins, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "twice"), "%s", F.err.msg);
    /* regression: an opset < 18 `axes` attribute (hand-written .pir) was ignored and every axis
     * reduced; the IR takes axes as input 1 only */
    n = node(PQ_OP_REDUCE_MEAN, &x, 1, 1, o);
    cr_assert_eq(pq_node_set_ints(F.g, n, "axes", one, 1, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "axes") && strstr(F.err.msg, "input 1"), "%s", F.err.msg);
}

Test(infer_ew, argmax_topk_cumsum) {
    int64_t d[3] = {2, 6, 3};
    uint32_t x = val(PQ_DTYPE_F32, 3, d, NULL), o[2];
    uint32_t n = node(PQ_OP_ARG_MIN, &x, 1, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "axis", -2, &F.err), PQ_OK);
    cr_assert_eq(pq_node_set_int(F.g, n, "keepdims", 0, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_I64);
    cr_assert(V(o[0])->shape.rank == 2 && V(o[0])->shape.dims[1].size == 3);
    int64_t k = 4;
    uint32_t tk[2] = {x, const_i64(1, &k)};
    n = node(PQ_OP_TOP_K, tk, 2, 2, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "axis", 1, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert(V(o[0])->dtype == PQ_DTYPE_F32 && V(o[1])->dtype == PQ_DTYPE_I64);
    cr_assert(V(o[0])->shape.dims[1].size == 4 && V(o[1])->shape.dims[1].size == 4);
    /* k unknown: that dim unknown, others kept */
    int64_t kd[1] = {1};
    uint32_t tk2[2] = {x, val(PQ_DTYPE_I64, 1, kd, NULL)};
    n = node(PQ_OP_TOP_K, tk2, 2, 2, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert(V(o[0])->shape.rank == 3 && V(o[0])->shape.dims[2].size == -1 &&
              V(o[0])->shape.dims[1].size == 6);
    /* k > dim */
    int64_t k9 = 9;
    uint32_t tk3[2] = {x, const_i64(1, &k9)};
    n = node(PQ_OP_TOP_K, tk3, 2, 2, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    /* CumSum with a float axis is invalid */
    uint32_t cs[2] = {x, val(PQ_DTYPE_F32, 0, NULL, NULL)};
    n = node(PQ_OP_CUM_SUM, cs, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    cr_assert(strstr(F.err.msg, "axis"), "%s", F.err.msg);
}

Test(infer_ew, quant_ops) {
    int64_t d[2] = {4, 3}, s3[1] = {3}, s4[1] = {4};
    uint32_t x = val(PQ_DTYPE_F32, 2, d, NULL), o[3];
    uint32_t q[3] = {x, val(PQ_DTYPE_F32, 1, s4, NULL), val(PQ_DTYPE_I8, 1, s4, NULL)};
    uint32_t n = node(PQ_OP_QUANTIZE_LINEAR, q, 3, 1, o);
    cr_assert_eq(pq_node_set_int(F.g, n, "axis", 0, &F.err), PQ_OK);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_I8);
    /* default axis 1 has 3 elements, scale 4: invalid */
    n = node(PQ_OP_QUANTIZE_LINEAR, q, 3, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_ERR_INVALID);
    uint32_t q2[2] = {x, val(PQ_DTYPE_F32, 1, s3, NULL)};
    n = node(PQ_OP_QUANTIZE_LINEAR, q2, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_U8);
    uint32_t dq[2] = {o[0], q2[1]};
    n = node(PQ_OP_DEQUANTIZE_LINEAR, dq, 2, 1, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert_eq(V(o[0])->dtype, PQ_DTYPE_F32);
    cr_assert_eq(V(o[0])->shape.dims[0].size, 4);
    n = node(PQ_OP_DYNAMIC_QUANTIZE_LINEAR, &x, 1, 3, o);
    cr_assert_eq(pq_infer_node(F.g, n, &F.err), PQ_OK, "%s", F.err.msg);
    cr_assert(V(o[0])->dtype == PQ_DTYPE_U8 && V(o[1])->dtype == PQ_DTYPE_F32 &&
              V(o[2])->dtype == PQ_DTYPE_U8);
    cr_assert(V(o[1])->shape.rank == 0 && V(o[2])->shape.rank == 0 && V(o[0])->shape.rank == 2);
}
