/* Gradient rules on graphs whose shapes are only known when they run (a symbolic batch, dims
 * computed from Shape): the run-time fallbacks of the rules -- broadcast axes found at run time,
 * the mean's divisor from Size, Concat's gradient as a Split by run-time sizes, the index map for
 * Slice / Pad / Tile / DepthToSpace, Conv and ConvTranspose weight gradients with an unknown batch.
 * Each graph adds a constant W to an input Z of symbolic shape and ends in a static y; checked
 * against finite differences like the static cases. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "grad_check.h"
#include "pass_test_util.h"

/* Z: f64 of dims, values +-(0.3 + 0.05 (i mod 7)). */
static pq_tensor *pq_gd_input(int rank, const int64_t *dims) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F64, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        ((double *)t->data)[i] = (i % 3 ? 1 : -1) * (0.3 + 0.05 * (double)(i % 7));
    return t;
}

static void pq_gd_case(const char *body, int rank, const int64_t *dims, pq_gc_tol tol,
                       uint32_t want) {
    pq_graph *g = pq_gc_graph(body);
    pq_tensor *z = pq_gd_input(rank, dims);
    const pq_tensor *ins[1] = {z};
    uint32_t n = pq_gc_check_in(g, ins, NULL, tol, 0, body);
    cr_assert_eq(n, want, "%u gradients:\n%s", n, body);
    pq_tensor_destroy(z);
    pq_graph_destroy(g);
}

/* The end of a graph: v [N, ...] summed over the batch into the static y (weighted by Q first so
 * every position counts differently). */
#define PQ_GD_HEAD "  symbols N\n  input %Z: f64[N, 4, 6]\n  const %W: f64[4, 6] = @s\n"

Test(grad_dynamic, slice_concat_index_map) {
    int64_t d[3] = {2, 4, 6};
    /* ends from the runtime shape: Slice(a, [1], [dim - 1], axes [2]) */
    pq_gd_case(PQ_GD_HEAD "  %a = Add(%Z, %W)\n  %sh = Shape(%a)\n"
                          "  const %i2: i64[1] = [2]\n  %d2 = Gather(%sh, %i2)\n"
                          "  const %one: i64[1] = [1]\n  %e = Sub(%d2, %one)\n"
                          "  %sl = Slice(%a, %one, %e, %i2)\n  const %Q: f64[4, 4] = @s\n"
                          "  %m = Mul(%sl, %Q)\n  const %ax0: i64[1] = [0]\n"
                          "  %y = ReduceSum(%m, %ax0) {keepdims = 0}\n",
               3, d, PQ_GC_F64, 3);
    /* Concat of two run-time sized parts along the sliced axis */
    pq_gd_case(PQ_GD_HEAD "  %a = Add(%Z, %W)\n  %sh = Shape(%a)\n"
                          "  const %i2: i64[1] = [2]\n  %d2 = Gather(%sh, %i2)\n"
                          "  const %two: i64[1] = [2]\n  %e = Sub(%d2, %two)\n"
                          "  const %zero: i64[1] = [0]\n  %sl = Slice(%a, %zero, %e, %i2)\n"
                          "  const %V: f64[4, 3] = @s\n  %c = Concat(%sl, %a) {axis = 2}\n"
                          "  %c2 = Mul(%c, %c)\n  const %Q: f64[4, 10] = @s\n  %m = Mul(%c2, %Q)\n"
                          "  const %ax0: i64[1] = [0]\n  %y = ReduceSum(%m, %ax0) {keepdims = 0}\n",
               3, d, PQ_GC_F64, 3);
}

Test(grad_dynamic, pad_tile_depth_to_space) {
    int64_t d[3] = {2, 4, 6};
    const char *modes[] = {"constant", "edge", "reflect", "wrap"};
    for (int k = 0; k < 4; k++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "%s  %%a = Add(%%Z, %%W)\n  const %%p: i64[6] = [0, 1, 2, 0, 2, 1]\n"
                 "  %%b = Pad(%%a, %%p) {mode = \"%s\"}\n  const %%Q: f64[7, 9] = @s\n"
                 "  %%m = Mul(%%b, %%Q)\n  const %%ax0: i64[1] = [0]\n"
                 "  %%y = ReduceSum(%%m, %%ax0) {keepdims = 0}\n",
                 PQ_GD_HEAD, modes[k]);
        pq_gd_case(body, 3, d, PQ_GC_F64, 3);
    }
    pq_gd_case(PQ_GD_HEAD "  %a = Add(%Z, %W)\n  const %r: i64[3] = [1, 2, 3]\n"
                          "  %b = Tile(%a, %r)\n  const %Q: f64[8, 18] = @s\n  %m = Mul(%b, %Q)\n"
                          "  const %ax0: i64[1] = [0]\n  %y = ReduceSum(%m, %ax0) {keepdims = 0}\n",
               3, d, PQ_GC_F64, 3);
    int64_t d4[4] = {2, 8, 2, 3};
    pq_gd_case("  symbols N\n  input %Z: f64[N, 8, 2, 3]\n  const %W: f64[8, 2, 3] = @s\n"
               "  %a = Add(%Z, %W)\n  %b = DepthToSpace(%a) {blocksize = 2, mode = \"CRD\"}\n"
               "  const %Q: f64[2, 4, 6] = @s\n  %m = Mul(%b, %Q)\n  const %ax0: i64[1] = [0]\n"
               "  %y = ReduceSum(%m, %ax0) {keepdims = 0}\n",
               4, d4, PQ_GC_F64, 3);
}

Test(grad_dynamic, mean_and_broadcast) {
    int64_t d[3] = {3, 4, 6};
    /* a mean over the symbolic axis, and a product whose operands' dims are unknown */
    pq_gd_case(PQ_GD_HEAD "  %a = Add(%Z, %W)\n  const %ax0: i64[1] = [0]\n"
                          "  %y = ReduceMean(%a, %ax0) {keepdims = 0}\n",
               3, d, PQ_GC_F64, 2);
    pq_gd_case(PQ_GD_HEAD "  %a = Add(%Z, %W)\n  %sh = Shape(%a)\n  %r = Reshape(%a, %sh)\n"
                          "  const %V: f64[1, 6] = @s\n  %m = Mul(%r, %V)\n  %m2 = Mul(%m, %r)\n"
                          "  %y = ReduceMean(%m2) {keepdims = 0}\n",
               3, d, PQ_GC_F64, 2);
    pq_gd_case("  symbols N\n  input %Z: f64[N, 3, 4]\n  const %W: f64[3, 4] = @s\n"
               "  %a = Add(%Z, %W)\n  %m = Mul(%a, %a)\n  %p = GlobalAveragePool(%m)\n"
               "  const %ax: i64[2] = [0, 2]\n  %y = ReduceSum(%p, %ax) {keepdims = 0}\n",
               3, (int64_t[]){2, 3, 4}, PQ_GC_F32K, 2);
}

Test(grad_dynamic, conv_unknown_batch) {
    int64_t d[4] = {2, 4, 5, 5};
    pq_gd_case("  symbols N\n  input %Z: f64[N, 4, 5, 5]\n  const %W: f64[6, 2, 3, 3] = @s\n"
               "  const %B: f64[6] = @s\n  %c = Conv(%Z, %W, %B) {group = 2, pads = [1, 1, 1, 1]}\n"
               "  %m = Mul(%c, %c)\n  const %ax: i64[1] = [0]\n"
               "  %y = ReduceSum(%m, %ax) {keepdims = 0}\n",
               4, d, PQ_GC_F32K, 3);
    pq_gd_case("  symbols N\n  input %Z: f64[N, 4, 5, 5]\n  const %W: f64[4, 3, 2, 2] = @s\n"
               "  const %B: f64[6] = @s\n"
               "  %c = ConvTranspose(%Z, %W, %B) {group = 2, strides = [2, 2]}\n"
               "  %m = Mul(%c, %c)\n  const %ax: i64[1] = [0]\n"
               "  %y = ReduceSum(%m, %ax) {keepdims = 0}\n",
               4, d, PQ_GC_F32K, 3);
}
