/* Tests of the shape-inference rules of the movement, shape and constant ops: static shapes from
 * known shape tensors, symbolic dims carried through transformer-style shape code, and INVALID
 * with a clear message on inconsistent inputs. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static pq_graph *g;
static pq_error err;

static void setup(void) {
    g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
}
static void teardown(void) {
    pq_graph_destroy(g);
}

TestSuite(infer_movement, .init = setup, .fini = teardown);

/* dims: >= 0 known, -1 unknown, <= -2 the symbol named by syms[-d - 2] */
static const char *syms[] = {"B", "S"};
#define B_ (-2)
#define S_ (-3)

static pq_shape shp(int rank, const int64_t *dims) {
    pq_shape s = pq_shape_unknown();
    if (rank < 0) return s;
    s.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] >= -1)
            s.dims[i] = (pq_dim){dims[i], 0};
        else
            s.dims[i] = (pq_dim){-1, pq_graph_intern_symbol(g, syms[-dims[i] - 2])};
    }
    return s;
}

static uint32_t in(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_shape s = shp(rank, dims);
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, NULL, dt, &s, &id, &err), PQ_OK);
    return id;
}

static uint32_t ints(int n, const int64_t *v) {
    int64_t d = n;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I64, 1, &d, &err);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_I64, NULL, &id, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK);
    return id;
}

static uint32_t scalar(enum pq_dtype dt, double v) {
    pq_tensor *t = pq_tensor_create(dt, 0, NULL, &err);
    pq_dtype_store(dt, t->data, 0, v);
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, NULL, dt, NULL, &id, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK);
    return id;
}

static uint32_t last_node;

/* Adds node op with inputs and nout fresh outputs; returns the first output id. */
static uint32_t nd(enum pq_op op, const uint32_t *ins, uint32_t nin, uint32_t nout) {
    uint32_t outs[8];
    for (uint32_t i = 0; i < nout; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, op, NULL, ins, nin, outs, nout, &last_node, &err), PQ_OK);
    return outs[0];
}
#define IN(...)                                                                                    \
    ((const uint32_t[]){__VA_ARGS__}),                                                             \
        (uint32_t)(sizeof((uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))

static void ok(void) {
    cr_assert_eq(pq_infer_node(g, last_node, &err), PQ_OK, "%s", err.msg);
}
static void bad(const char *needle) {
    cr_assert_eq(pq_infer_node(g, last_node, &err), PQ_ERR_INVALID, "expected INVALID");
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

/* Checks value v has dtype dt and dims (same encoding as shp). */
static void is(uint32_t v, enum pq_dtype dt, int rank, const int64_t *dims) {
    const pq_value *x = &g->values[v];
    if (dt != PQ_DTYPE_UNDEFINED) cr_assert_eq(x->dtype, dt, "dtype %s", pq_dtype_name(x->dtype));
    cr_assert_eq(x->shape.rank, rank, "rank %d, expected %d", x->shape.rank, rank);
    pq_shape want = shp(rank, dims);
    for (int i = 0; i < rank; i++) {
        cr_assert_eq(x->shape.dims[i].size, want.dims[i].size, "dim %d: %lld", i,
                     (long long)x->shape.dims[i].size);
        cr_assert_eq(x->shape.dims[i].sym, want.dims[i].sym, "dim %d symbol", i);
    }
}

Test(infer_movement, transformer_head_split_keeps_symbols) {
    uint32_t x = in(PQ_DTYPE_F32, 3, D(B_, S_, 768));
    uint32_t r1 = nd(PQ_OP_RESHAPE, IN(x, ints(4, D(0, 0, 12, 64))), 1);
    ok();
    is(r1, PQ_DTYPE_F32, 4, D(B_, S_, 12, 64));
    uint32_t t = nd(PQ_OP_TRANSPOSE, IN(r1), 1);
    cr_assert_eq(pq_node_set_ints(g, last_node, "perm", D(0, 2, 1, 3), 4, &err), PQ_OK);
    ok();
    is(t, PQ_DTYPE_F32, 4, D(B_, 12, S_, 64));
    uint32_t r2 = nd(PQ_OP_RESHAPE, IN(r1, ints(3, D(0, 0, -1))), 1);
    ok();
    is(r2, PQ_DTYPE_F32, 3, D(B_, S_, 768)); /* symbols cancel, -1 = 12 * 64 */
    uint32_t r3 = nd(PQ_OP_RESHAPE, IN(t, ints(3, D(0, 0, -1))), 1);
    ok();
    is(r3, PQ_DTYPE_F32, 3, D(B_, 12, -1)); /* S * 64 is not a number */
    uint32_t r4 = nd(PQ_OP_RESHAPE, IN(x, ints(2, D(-1, 768))), 1);
    ok();
    is(r4, PQ_DTYPE_F32, 2, D(-1, 768));
}

Test(infer_movement, reshape_static_and_invalid) {
    uint32_t x = in(PQ_DTYPE_F16, 3, D(2, 3, 4));
    uint32_t r = nd(PQ_OP_RESHAPE, IN(x, ints(3, D(-1, 2, 2))), 1);
    ok();
    is(r, PQ_DTYPE_F16, 3, D(6, 2, 2));
    nd(PQ_OP_RESHAPE, IN(x, ints(2, D(5, 5))), 1);
    bad("cannot reshape 24 elements to [5,5]");
    nd(PQ_OP_RESHAPE, IN(x, ints(2, D(-1, 5))), 1);
    bad("cannot reshape 24 elements");
    nd(PQ_OP_RESHAPE, IN(x, ints(2, D(-1, -1))), 1);
    bad("more than one -1");
    /* shape unknown but its length known: rank only */
    uint32_t s = in(PQ_DTYPE_I64, 1, D(3));
    r = nd(PQ_OP_RESHAPE, IN(x, s), 1);
    ok();
    is(r, PQ_DTYPE_F16, 3, D(-1, -1, -1));
}

Test(infer_movement, shape_size_flatten_concat) {
    uint32_t x = in(PQ_DTYPE_F32, 3, D(B_, 3, 4));
    uint32_t s = nd(PQ_OP_SHAPE, IN(x), 1);
    ok();
    is(s, PQ_DTYPE_I64, 1, D(3));
    s = nd(PQ_OP_SHAPE, IN(x), 1);
    pq_node_set_int(g, last_node, "start", -2, &err);
    ok();
    is(s, PQ_DTYPE_I64, 1, D(2));
    s = nd(PQ_OP_SIZE, IN(x), 1);
    ok();
    is(s, PQ_DTYPE_I64, 0, NULL);
    uint32_t f = nd(PQ_OP_FLATTEN, IN(x), 1);
    ok();
    is(f, PQ_DTYPE_F32, 2, D(B_, 12));
    uint32_t y = in(PQ_DTYPE_F32, 3, D(B_, 5, 4));
    uint32_t c = nd(PQ_OP_CONCAT, IN(x, y), 1);
    pq_node_set_int(g, last_node, "axis", 1, &err);
    ok();
    is(c, PQ_DTYPE_F32, 3, D(B_, 8, 4));
    nd(PQ_OP_CONCAT, IN(x, y), 1);
    pq_node_set_int(g, last_node, "axis", 2, &err);
    bad("Concat: input 1 has dim 1 = 5, expected 3");
    uint32_t z = in(PQ_DTYPE_I32, 3, D(B_, 3, 4));
    nd(PQ_OP_CONCAT, IN(x, z), 1);
    pq_node_set_int(g, last_node, "axis", 0, &err);
    bad("i32");
}

Test(infer_movement, slice_gather_squeeze_unsqueeze) {
    uint32_t x = in(PQ_DTYPE_F32, 3, D(B_, S_, 10));
    uint32_t s =
        nd(PQ_OP_SLICE, IN(x, ints(2, D(0, 1)), ints(2, D(INT64_MAX, -1)), ints(2, D(1, 2))), 1);
    ok();
    is(s, PQ_DTYPE_F32, 3, D(B_, S_, 8));
    s = nd(PQ_OP_SLICE, IN(x, ints(1, D(-1)), ints(1, D(-100)), ints(1, D(2)), ints(1, D(-3))), 1);
    ok();
    is(s, PQ_DTYPE_F32, 3, D(B_, S_, 4)); /* 9, 6, 3, 0 */
    uint32_t ga = nd(PQ_OP_GATHER, IN(x, scalar(PQ_DTYPE_I64, 0)), 1);
    pq_node_set_int(g, last_node, "axis", 1, &err);
    ok();
    is(ga, PQ_DTYPE_F32, 2, D(B_, 10));
    uint32_t one = in(PQ_DTYPE_F32, 3, D(B_, 1, 10));
    uint32_t sq = nd(PQ_OP_SQUEEZE, IN(one, ints(1, D(-2))), 1);
    ok();
    is(sq, PQ_DTYPE_F32, 2, D(B_, 10));
    sq = nd(PQ_OP_SQUEEZE, IN(one), 1); /* which dims are 1 depends on B */
    ok();
    cr_assert_eq(g->values[sq].shape.rank, -1);
    nd(PQ_OP_SQUEEZE, IN(x, ints(1, D(2))), 1);
    bad("not 1");
    uint32_t us = nd(PQ_OP_UNSQUEEZE, IN(x, ints(2, D(-1, 0))), 1);
    ok();
    is(us, PQ_DTYPE_F32, 5, D(1, B_, S_, 10, 1));
    uint32_t ax = in(PQ_DTYPE_I64, 1, D(1));
    us = nd(PQ_OP_UNSQUEEZE, IN(x, ax), 1);
    ok();
    is(us, PQ_DTYPE_F32, 4, D(-1, -1, -1, -1));
}

Test(infer_movement, split_expand_tile_pad) {
    uint32_t x = in(PQ_DTYPE_I8, 2, D(B_, 7));
    uint32_t o = nd(PQ_OP_SPLIT, IN(x), 3);
    pq_node_set_int(g, last_node, "axis", 1, &err);
    ok();
    is(o, PQ_DTYPE_I8, 2, D(B_, 3));
    is(g->nodes[last_node].outputs[2], PQ_DTYPE_I8, 2, D(B_, 1));
    nd(PQ_OP_SPLIT, IN(x, ints(2, D(3, 3))), 2);
    pq_node_set_int(g, last_node, "axis", 1, &err);
    bad("sum to 6");
    uint32_t y = in(PQ_DTYPE_F32, 2, D(4, 1));
    uint32_t e = nd(PQ_OP_EXPAND, IN(y, ints(3, D(2, 1, 5))), 1);
    ok();
    is(e, PQ_DTYPE_F32, 3, D(2, 4, 5));
    e = nd(PQ_OP_EXPAND, IN(y, in(PQ_DTYPE_I64, 1, D(3))), 1);
    ok();
    is(e, PQ_DTYPE_F32, 3, D(-1, 4, -1));
    nd(PQ_OP_EXPAND, IN(y, ints(2, D(3, 5))), 1);
    bad("cannot broadcast");
    uint32_t t = nd(PQ_OP_TILE, IN(x, ints(2, D(1, 3))), 1);
    ok();
    is(t, PQ_DTYPE_I8, 2, D(B_, 21));
    uint32_t p = nd(PQ_OP_PAD, IN(x, ints(4, D(0, 1, 0, 2))), 1);
    ok();
    is(p, PQ_DTYPE_I8, 2, D(B_, 10));
    p = nd(PQ_OP_PAD, IN(x, ints(2, D(-3, -5)), PQ_NONE, ints(1, D(1))), 1);
    bad("negative");
}

Test(infer_movement, constants_range_onehot) {
    uint32_t c = nd(PQ_OP_CONSTANT_OF_SHAPE, IN(ints(3, D(2, 0, 4))), 1);
    ok();
    is(c, PQ_DTYPE_F32, 3, D(2, 0, 4));
    c = nd(PQ_OP_CONSTANT_OF_SHAPE, IN(in(PQ_DTYPE_I64, 1, D(2))), 1);
    ok();
    is(c, PQ_DTYPE_F32, 2, D(-1, -1));
    uint32_t r =
        nd(PQ_OP_RANGE,
           IN(scalar(PQ_DTYPE_I64, 10), scalar(PQ_DTYPE_I64, 1), scalar(PQ_DTYPE_I64, -4)), 1);
    ok();
    is(r, PQ_DTYPE_I64, 1, D(3)); /* 10, 6, 2 */
    r = nd(PQ_OP_RANGE,
           IN(scalar(PQ_DTYPE_F32, 0), scalar(PQ_DTYPE_F32, 1), scalar(PQ_DTYPE_F32, 0.25)), 1);
    ok();
    is(r, PQ_DTYPE_F32, 1, D(4));
    uint32_t ix = in(PQ_DTYPE_I64, 2, D(B_, 3));
    uint32_t oh = nd(PQ_OP_ONE_HOT, IN(ix, scalar(PQ_DTYPE_I64, 5), in(PQ_DTYPE_F16, 1, D(2))), 1);
    pq_node_set_int(g, last_node, "axis", 1, &err);
    ok();
    is(oh, PQ_DTYPE_F16, 3, D(B_, 5, 3));
    uint32_t k = nd(PQ_OP_CONSTANT, NULL, 0, 1);
    pq_node_set_ints(g, last_node, "value_ints", D(1, 2, 3, 4), 4, &err);
    ok();
    is(k, PQ_DTYPE_I64, 1, D(4));
}

Test(infer_movement, resize_and_depth_space) {
    uint32_t x = in(PQ_DTYPE_F32, 4, D(B_, 3, 5, 8));
    pq_tensor *sc = pq_tensor_create(PQ_DTYPE_F32, 1, D(4), &err);
    float sv[4] = {1, 1, 1.5f, 0.5f};
    memcpy(sc->data, sv, sizeof sv);
    uint32_t scv;
    pq_graph_add_value(g, NULL, PQ_DTYPE_F32, NULL, &scv, &err);
    pq_graph_set_constant(g, scv, sc, &err);
    uint32_t r = nd(PQ_OP_RESIZE, IN(x, PQ_NONE, scv), 1);
    ok();
    is(r, PQ_DTYPE_F32, 4, D(B_, 3, 7, 4));
    r = nd(PQ_OP_RESIZE, IN(x, PQ_NONE, PQ_NONE, ints(2, D(10, 10))), 1);
    pq_node_set_ints(g, last_node, "axes", D(2, 3), 2, &err);
    pq_node_set_string(g, last_node, "keep_aspect_ratio_policy", "not_smaller", &err);
    ok();
    is(r, PQ_DTYPE_F32, 4, D(B_, 3, 10, 16)); /* scale max(10/5, 10/8) = 2 */
    uint32_t y = in(PQ_DTYPE_F32, 4, D(1, 12, 2, 3));
    uint32_t d = nd(PQ_OP_DEPTH_TO_SPACE, IN(y), 1);
    pq_node_set_int(g, last_node, "blocksize", 2, &err);
    ok();
    is(d, PQ_DTYPE_F32, 4, D(1, 3, 4, 6));
    nd(PQ_OP_DEPTH_TO_SPACE, IN(y), 1);
    pq_node_set_int(g, last_node, "blocksize", 3, &err);
    bad("not divisible");
    nd(PQ_OP_SPACE_TO_DEPTH, IN(y), 1);
    pq_node_set_int(g, last_node, "blocksize", 2, &err);
    bad("SpaceToDepth: dim 3 (3) not divisible");
}

Test(infer_movement, every_owned_op_has_a_rule) {
    const enum pq_op ops[] = {PQ_OP_RESHAPE,
                              PQ_OP_FLATTEN,
                              PQ_OP_TRANSPOSE,
                              PQ_OP_CONCAT,
                              PQ_OP_SPLIT,
                              PQ_OP_SLICE,
                              PQ_OP_GATHER,
                              PQ_OP_GATHER_ELEMENTS,
                              PQ_OP_SQUEEZE,
                              PQ_OP_UNSQUEEZE,
                              PQ_OP_EXPAND,
                              PQ_OP_TILE,
                              PQ_OP_PAD,
                              PQ_OP_RESIZE,
                              PQ_OP_DEPTH_TO_SPACE,
                              PQ_OP_SPACE_TO_DEPTH,
                              PQ_OP_SHAPE,
                              PQ_OP_SIZE,
                              PQ_OP_CONSTANT_OF_SHAPE,
                              PQ_OP_CONSTANT,
                              PQ_OP_RANGE,
                              PQ_OP_ONE_HOT,
                              PQ_OP_TRILU,
                              PQ_OP_IDENTITY,
                              PQ_OP_DROPOUT,
                              PQ_OP_IF,
                              PQ_OP_LOOP};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        cr_assert_not_null(pq_infer_table[ops[i]], "%s has no rule", pq_op_name(ops[i]));
}
