/* Tests of the shape-inference rules of the nn ops (ir/infer_nn.c, ir/infer_rnn.c): static output
 * shapes, symbolic batch dims carried through, and INVALID / UNSUPPORTED with a message naming
 * the problem. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

/* input tables below leave the dtype (f32 default) and unused dims out */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static pq_graph *g;
static uint32_t nid;
static pq_error err;

/* Shape from dims where -1 means the symbolic dim "N". */
static pq_shape mk_shape(int rank, const int64_t *dims) {
    pq_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == -1) {
            s.dims[i].size = -1;
            s.dims[i].sym = pq_graph_intern_symbol(g, "N");
        } else {
            s.dims[i] = pq_dim_of(dims[i]);
        }
    }
    return s;
}

/* Inputs given as (rank, dims) pairs; rank -2 marks an omitted input. */
typedef struct in_spec {
    int rank;
    int64_t dims[6];
    enum pq_dtype dt;
} in_spec;

static void build(enum pq_op op, const in_spec *in, uint32_t n_in, uint32_t n_out) {
    g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    uint32_t ins[8], outs[4];
    for (uint32_t i = 0; i < n_in; i++) {
        if (in[i].rank == -2) {
            ins[i] = PQ_NONE;
            continue;
        }
        pq_shape s = mk_shape(in[i].rank, in[i].dims);
        enum pq_dtype dt = in[i].dt ? in[i].dt : PQ_DTYPE_F32;
        cr_assert_eq(pq_graph_add_value(g, NULL, dt, &s, &ins[i], &err), PQ_OK);
    }
    for (uint32_t i = 0; i < n_out; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, op, "n", ins, n_in, outs, n_out, &nid, &err), PQ_OK);
}

static void expect_out(uint32_t i, enum pq_dtype dt, int rank, const int64_t *dims) {
    const pq_value *v = &g->values[g->nodes[nid].outputs[i]];
    cr_assert_eq(v->dtype, dt, "output %u dtype %s", i, pq_dtype_name(v->dtype));
    cr_assert_eq(v->shape.rank, rank, "output %u rank %d", i, v->shape.rank);
    for (int d = 0; d < rank; d++) {
        if (dims[d] == -1)
            cr_assert(v->shape.dims[d].size == -1 &&
                          !strcmp(pq_graph_symbol_name(g, v->shape.dims[d].sym), "N"),
                      "output %u dim %d should be symbol N", i, d);
        else
            cr_assert_eq(v->shape.dims[d].size, dims[d], "output %u dim %d = %lld, want %lld", i, d,
                         (long long)v->shape.dims[d].size, (long long)dims[d]);
    }
}

static void ok(void) {
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
}

static void fails(enum pq_status st, const char *needle) {
    cr_assert_eq(pq_infer_node(g, nid, &err), st, "status for '%s': %s", needle, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

static void done(void) {
    pq_graph_destroy(g);
    g = NULL;
}

Test(infer_nn, matmul) {
    build(PQ_OP_MATMUL, (in_spec[]){{4, {-1, 1, 3, 4}}, {3, {5, 4, 6}}}, 2, 1);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 5, 3, 6});
    done();
    build(PQ_OP_MATMUL, (in_spec[]){{1, {4}}, {3, {2, 4, 6}}}, 2, 1);
    ok();
    expect_out(0, PQ_DTYPE_F32, 2, (int64_t[]){2, 6});
    done();
    build(PQ_OP_MATMUL, (in_spec[]){{2, {3, 4}}, {2, {5, 6}}}, 2, 1);
    fails(PQ_ERR_INVALID, "inner dims");
    done();
    build(PQ_OP_MATMUL, (in_spec[]){{3, {2, 3, 4}}, {3, {3, 4, 6}}}, 2, 1);
    fails(PQ_ERR_INVALID, "broadcast");
    done();
    build(PQ_OP_MATMUL_INTEGER, (in_spec[]){{2, {3, 4}, PQ_DTYPE_U8}, {2, {4, 2}, PQ_DTYPE_I8}}, 2,
          1);
    ok();
    expect_out(0, PQ_DTYPE_I32, 2, (int64_t[]){3, 2});
    done();
}

Test(infer_nn, gemm) {
    build(PQ_OP_GEMM, (in_spec[]){{2, {-1, 10}}, {2, {8, 10}}, {1, {8}}}, 3, 1);
    pq_node_set_int(g, nid, "transB", 1, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 2, (int64_t[]){-1, 8});
    done();
    build(PQ_OP_GEMM, (in_spec[]){{2, {4, 10}}, {2, {8, 10}}, {1, {7}}}, 3, 1);
    pq_node_set_int(g, nid, "transB", 1, &err);
    fails(PQ_ERR_INVALID, "C dim");
    done();
    build(PQ_OP_GEMM, (in_spec[]){{3, {4, 10, 1}}, {2, {10, 3}}}, 2, 1);
    fails(PQ_ERR_INVALID, "2-D");
    done();
}

Test(infer_nn, conv) {
    build(PQ_OP_CONV, (in_spec[]){{4, {-1, 4, 28, 28}}, {4, {8, 2, 3, 3}}, {1, {8}}}, 3, 1);
    pq_node_set_int(g, nid, "group", 2, &err);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){2, 2}, 2, &err);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){1, 1, 1, 1}, 4, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 8, 14, 14});
    done();
    /* auto_pad SAME_LOWER, 1-D, dilations */
    build(PQ_OP_CONV, (in_spec[]){{3, {1, 3, 10}}, {3, {5, 3, 3}}}, 2, 1);
    pq_node_set_string(g, nid, "auto_pad", "SAME_LOWER", &err);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){3}, 1, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 3, (int64_t[]){1, 5, 4});
    done();
    build(PQ_OP_CONV, (in_spec[]){{5, {1, 3, 5, 5, 5}}, {5, {4, 3, 2, 2, 2}}}, 2, 1);
    pq_node_set_ints(g, nid, "dilations", (int64_t[]){2, 2, 2}, 3, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 5, (int64_t[]){1, 4, 3, 3, 3});
    done();
    build(PQ_OP_CONV, (in_spec[]){{4, {1, 3, 8, 8}}, {4, {8, 2, 3, 3}}}, 2, 1);
    fails(PQ_ERR_INVALID, "channels");
    done();
    build(PQ_OP_CONV, (in_spec[]){{4, {1, 3, 8, 8}}, {4, {8, 3, 3, 3}}}, 2, 1);
    pq_node_set_string(g, nid, "auto_pad", "SAME", &err);
    fails(PQ_ERR_INVALID, "auto_pad");
    done();
    build(PQ_OP_CONV, (in_spec[]){{4, {1, 3, 2, 2}}, {4, {8, 3, 3, 3}}}, 2, 1);
    fails(PQ_ERR_INVALID, "smaller than the dilated kernel");
    done();
    build(PQ_OP_CONV, (in_spec[]){{4, {1, 3, 8, 8}}, {4, {8, 3, 3, 3}}, {1, {7}}}, 3, 1);
    fails(PQ_ERR_INVALID, "bias");
    done();
    build(PQ_OP_CONV, (in_spec[]){{4, {1, 3, 8, 8}}, {4, {8, 3, 3, 3}}}, 2, 1);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){0, 1}, 2, &err);
    fails(PQ_ERR_INVALID, "strides");
    done();
    build(PQ_OP_CONV, (in_spec[]){{6, {1, 3, 4, 4, 4, 4}}, {6, {8, 3, 1, 1, 1, 1}}}, 2, 1);
    fails(PQ_ERR_UNSUPPORTED, "spatial");
    done();
    build(PQ_OP_CONV_INTEGER,
          (in_spec[]){{4, {1, 1, 3, 3}, PQ_DTYPE_U8}, {4, {1, 1, 2, 2}, PQ_DTYPE_U8}}, 2, 1);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){1, 1, 1, 1}, 4, &err);
    ok();
    expect_out(0, PQ_DTYPE_I32, 4, (int64_t[]){1, 1, 4, 4});
    done();
}

Test(infer_nn, conv_transpose) {
    build(PQ_OP_CONV_TRANSPOSE, (in_spec[]){{4, {-1, 3, 7, 6}}, {4, {3, 4, 3, 3}}}, 2, 1);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){3, 2}, 2, &err);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){1, 1, 1, 1}, 4, &err);
    pq_node_set_ints(g, nid, "output_padding", (int64_t[]){1, 1}, 2, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 4, 20, 12});
    done();
    build(PQ_OP_CONV_TRANSPOSE, (in_spec[]){{4, {1, 1, 3, 3}}, {4, {1, 2, 3, 3}}}, 2, 1);
    pq_node_set_ints(g, nid, "output_shape", (int64_t[]){10, 8}, 2, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){1, 2, 10, 8});
    done();
    build(PQ_OP_CONV_TRANSPOSE, (in_spec[]){{4, {1, 4, 3, 3}}, {4, {4, 2, 3, 3}}}, 2, 1);
    pq_node_set_int(g, nid, "group", 2, &err);
    pq_node_set_string(g, nid, "auto_pad", "SAME_UPPER", &err);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){2, 2}, 2, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){1, 4, 6, 6});
    done();
    build(PQ_OP_CONV_TRANSPOSE, (in_spec[]){{4, {1, 3, 3, 3}}, {4, {2, 2, 3, 3}}}, 2, 1);
    fails(PQ_ERR_INVALID, "channels");
    done();
}

Test(infer_nn, pools) {
    build(PQ_OP_MAX_POOL, (in_spec[]){{4, {-1, 3, 4, 4}}}, 1, 2);
    pq_node_set_ints(g, nid, "kernel_shape", (int64_t[]){3, 3}, 2, &err);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){2, 2}, 2, &err);
    pq_node_set_int(g, nid, "ceil_mode", 1, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 3, 2, 2});
    expect_out(1, PQ_DTYPE_I64, 4, (int64_t[]){-1, 3, 2, 2});
    done();
    /* ceil mode drops a window that would start in the end padding (5 + 1 pad, k 2, s 2) */
    build(PQ_OP_AVERAGE_POOL, (in_spec[]){{3, {1, 1, 5}}}, 1, 1);
    pq_node_set_ints(g, nid, "kernel_shape", (int64_t[]){2}, 1, &err);
    pq_node_set_ints(g, nid, "strides", (int64_t[]){2}, 1, &err);
    pq_node_set_ints(g, nid, "pads", (int64_t[]){1, 1}, 2, &err);
    pq_node_set_int(g, nid, "ceil_mode", 1, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 3, (int64_t[]){1, 1, 3});
    done();
    build(PQ_OP_AVERAGE_POOL, (in_spec[]){{4, {1, 3, 32, 32}}}, 1, 1);
    pq_node_set_ints(g, nid, "kernel_shape", (int64_t[]){2, 2}, 2, &err);
    pq_node_set_string(g, nid, "auto_pad", "SAME_LOWER", &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){1, 3, 32, 32});
    done();
    build(PQ_OP_MAX_POOL, (in_spec[]){{4, {1, 3, 8, 8}}}, 1, 1);
    fails(PQ_ERR_INVALID, "kernel_shape");
    done();
    build(PQ_OP_MAX_POOL, (in_spec[]){{4, {1, 3, 8, 8}}}, 1, 1);
    pq_node_set_ints(g, nid, "kernel_shape", (int64_t[]){3}, 1, &err);
    fails(PQ_ERR_INVALID, "kernel_shape");
    done();
    build(PQ_OP_GLOBAL_AVERAGE_POOL, (in_spec[]){{5, {-1, 7, 3, 4, 5}}}, 1, 1);
    ok();
    expect_out(0, PQ_DTYPE_F32, 5, (int64_t[]){-1, 7, 1, 1, 1});
    done();
    build(PQ_OP_GLOBAL_MAX_POOL, (in_spec[]){{2, {3, 4}}}, 1, 1);
    fails(PQ_ERR_INVALID, "rank");
    done();
}

Test(infer_nn, normalisations) {
    build(PQ_OP_BATCH_NORMALIZATION,
          (in_spec[]){{4, {-1, 3, 5, 5}}, {1, {3}}, {1, {3}}, {1, {3}}, {1, {3}}}, 5, 1);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 3, 5, 5});
    done();
    build(PQ_OP_BATCH_NORMALIZATION,
          (in_spec[]){{4, {2, 3, 5, 5}}, {1, {3}}, {1, {4}}, {1, {3}}, {1, {3}}}, 5, 1);
    fails(PQ_ERR_INVALID, "B has 4 values");
    done();
    build(PQ_OP_LAYER_NORMALIZATION, (in_spec[]){{3, {-1, 7, 16}}, {1, {16}}, {1, {16}}}, 3, 3);
    ok();
    expect_out(0, PQ_DTYPE_F32, 3, (int64_t[]){-1, 7, 16});
    expect_out(1, PQ_DTYPE_F32, 3, (int64_t[]){-1, 7, 1});
    expect_out(2, PQ_DTYPE_F32, 3, (int64_t[]){-1, 7, 1});
    done();
    build(PQ_OP_LAYER_NORMALIZATION, (in_spec[]){{3, {2, 7, 16}}, {1, {15}}}, 2, 1);
    fails(PQ_ERR_INVALID, "Scale");
    done();
    build(PQ_OP_LAYER_NORMALIZATION, (in_spec[]){{3, {2, 7, 16}}, {1, {16}}}, 2, 1);
    pq_node_set_int(g, nid, "axis", 3, &err);
    fails(PQ_ERR_INVALID, "axis");
    done();
    build(PQ_OP_INSTANCE_NORMALIZATION, (in_spec[]){{4, {2, 3, 4, 5}}, {1, {3}}, {1, {2}}}, 3, 1);
    fails(PQ_ERR_INVALID, "B has 2 values");
    done();
    build(PQ_OP_LP_NORMALIZATION, (in_spec[]){{2, {3, 4}}}, 1, 1);
    pq_node_set_int(g, nid, "p", 3, &err);
    fails(PQ_ERR_INVALID, "p = 3");
    done();
}

Test(infer_nn, recurrent) {
    /* bidirectional LSTM, layout 0, all inputs */
    build(PQ_OP_LSTM,
          (in_spec[]){{3, {5, -1, 4}},
                      {3, {2, 12, 4}},
                      {3, {2, 12, 3}},
                      {2, {2, 24}},
                      {1, {-1}, PQ_DTYPE_I32},
                      {3, {2, -1, 3}},
                      {3, {2, -1, 3}},
                      {2, {2, 9}}},
          8, 3);
    pq_node_set_string(g, nid, "direction", "bidirectional", &err);
    pq_node_set_int(g, nid, "hidden_size", 3, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){5, 2, -1, 3});
    expect_out(1, PQ_DTYPE_F32, 3, (int64_t[]){2, -1, 3});
    expect_out(2, PQ_DTYPE_F32, 3, (int64_t[]){2, -1, 3});
    done();
    /* GRU layout 1, hidden_size from R */
    build(PQ_OP_GRU, (in_spec[]){{3, {-1, 6, 4}}, {3, {1, 15, 4}}, {3, {1, 15, 5}}}, 3, 2);
    pq_node_set_int(g, nid, "layout", 1, &err);
    ok();
    expect_out(0, PQ_DTYPE_F32, 4, (int64_t[]){-1, 6, 1, 5});
    expect_out(1, PQ_DTYPE_F32, 3, (int64_t[]){-1, 1, 5});
    done();
    build(PQ_OP_RNN, (in_spec[]){{3, {6, 2, 4}}, {3, {1, 5, 4}}, {3, {1, 5, 5}}}, 3, 2);
    pq_node_set_int(g, nid, "hidden_size", 5, &err);
    pq_node_set_string(g, nid, "direction", "sideways", &err);
    fails(PQ_ERR_INVALID, "direction");
    done();
    build(PQ_OP_LSTM, (in_spec[]){{3, {6, 2, 4}}, {3, {1, 12, 4}}, {3, {1, 12, 3}}}, 3, 2);
    pq_node_set_int(g, nid, "hidden_size", 4, &err);
    fails(PQ_ERR_INVALID, "W dim 1");
    done();
    build(PQ_OP_LSTM, (in_spec[]){{3, {6, 2, 4}}, {3, {1, 12, 4}}, {3, {1, 12, 3}}}, 3, 2);
    const char *acts[2] = {"Sigmoid", "Tanh"};
    pq_node_set_strings(g, nid, "activations", acts, 2, &err);
    fails(PQ_ERR_INVALID, "activations has 2");
    done();
    build(PQ_OP_GRU, (in_spec[]){{3, {6, 2, 4}}, {3, {1, 9, 4}}, {3, {1, 9, 3}}}, 3, 2);
    const char *bad[2] = {"Sigmoid", "Swish"};
    pq_node_set_strings(g, nid, "activations", bad, 2, &err);
    fails(PQ_ERR_INVALID, "Swish");
    done();
    build(PQ_OP_RNN,
          (in_spec[]){{3, {6, 2, 4}}, {3, {1, 5, 4}}, {3, {1, 5, 5}}, {-2}, {1, {2}, PQ_DTYPE_I64}},
          5, 2);
    fails(PQ_ERR_INVALID, "sequence_lens");
    done();
}
