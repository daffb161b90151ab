/* Gradient rules of the neural-network ops (passes/grad_nn.c) and the MaxPoolGrad /
 * AveragePoolGrad ops against finite differences. The reference computes these ops through f32
 * views, so the graphs are f64 with PQ_GC_F32K (step 1e-2, five-point stencil, 1e-3 relative):
 * Conv (1-D, 2-D, 3-D; strides, dilations, explicit and auto pads, groups, depthwise, bias),
 * ConvTranspose (output_padding, output_shape, auto_pad, groups), MaxPool / AveragePool (strides,
 * pads, dilations, ceil_mode, count_include_pad, auto_pad, 1-D), the global pools,
 * BatchNormalization (all five inputs), LayerNormalization (axes, broadcast scale, no bias),
 * InstanceNormalization, MeanVarianceNormalization, LpNormalization, LRN, legacy Softmax,
 * MatMul with 1-D operands and Hadamard (f32). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "grad_check.h"
#include "pass_test_util.h"

/* Conv / ConvTranspose with x, w and b (all three differentiated, with R: 4 gradients). */
static void pq_gn_conv(const char *op, const char *xs, const char *ws, const char *bs,
                       const char *attrs) {
    char body[1024];
    snprintf(body, sizeof body,
             "  const %%X: f64[%s] = @s\n  const %%W: f64[%s] = @s\n  const %%B: f64[%s] = @s\n"
             "  %%y = %s(%%X, %%W, %%B) %s\n",
             xs, ws, bs, op, attrs);
    pq_gc_body(body, PQ_GC_F32K, 4);
}

Test(grad_nn, conv) {
    pq_gn_conv("Conv", "2, 3, 9", "4, 3, 3", "4",
               "{strides = [2], pads = [1, 2], dilations = [2]}");
    pq_gn_conv("Conv", "1, 2, 5, 6", "3, 2, 3, 2", "3",
               "{strides = [2, 2], auto_pad = \"SAME_UPPER\"}");
    pq_gn_conv("Conv", "1, 2, 5, 6", "3, 2, 2, 3", "3",
               "{strides = [2, 1], auto_pad = \"SAME_LOWER\"}");
    pq_gn_conv("Conv", "1, 2, 6, 5", "3, 2, 3, 3", "3", "{strides = [2, 2], auto_pad = \"VALID\"}");
    pq_gn_conv("Conv", "2, 4, 6, 5", "6, 2, 3, 3", "6",
               "{group = 2, strides = [2, 1], pads = [1, 0, 0, 1], dilations = [1, 2]}");
    /* depthwise with channel multiplier 2 */
    pq_gn_conv("Conv", "1, 3, 5, 5", "6, 1, 3, 3", "6",
               "{group = 3, strides = [2, 1], pads = [1, 1, 1, 1]}");
    pq_gn_conv("Conv", "2, 4, 7", "4, 1, 3", "4", "{group = 4, pads = [1, 1]}");
    pq_gn_conv("Conv", "1, 2, 4, 4, 3", "2, 2, 2, 2, 2", "2", "{strides = [1, 2, 1]}");
}

Test(grad_nn, conv_transpose) {
    pq_gn_conv("ConvTranspose", "2, 3, 3, 4", "3, 2, 3, 3", "2",
               "{strides = [2, 2], pads = [1, 0, 1, 1], output_padding = [1, 0]}");
    pq_gn_conv("ConvTranspose", "1, 2, 3, 3", "2, 2, 2, 3", "2",
               "{strides = [1, 2], dilations = [2, 1]}");
    pq_gn_conv("ConvTranspose", "1, 4, 3, 3", "4, 1, 2, 2", "2", "{group = 2, strides = [2, 2]}");
    pq_gn_conv("ConvTranspose", "1, 4, 3, 3", "4, 3, 3, 3", "6",
               "{group = 2, strides = [2, 1], pads = [1, 1, 0, 1]}");
    /* output_shape larger than the full result (negative end pads) and smaller */
    pq_gn_conv("ConvTranspose", "1, 2, 3, 3", "2, 2, 3, 3", "2",
               "{strides = [2, 2], output_shape = [8, 8]}");
    pq_gn_conv("ConvTranspose", "1, 2, 3, 3", "2, 2, 3, 3", "2",
               "{strides = [2, 2], output_shape = [6, 5]}");
    pq_gn_conv("ConvTranspose", "1, 2, 3, 4", "2, 3, 3, 3", "3",
               "{strides = [2, 2], auto_pad = \"SAME_UPPER\"}");
    pq_gn_conv("ConvTranspose", "2, 3, 5", "3, 2, 3", "2", "{strides = [3], pads = [2, 1]}");
}

static void pq_gn_pool(const char *op, const char *xs, const char *attrs) {
    char body[1024];
    snprintf(body, sizeof body, "  const %%X: f64[%s] = @d\n  %%y = %s(%%X) %s\n", xs, op, attrs);
    pq_gc_body(body, PQ_GC_F32K, 2);
}

Test(grad_nn, max_pool) {
    pq_gn_pool("MaxPool", "1, 2, 5, 6",
               "{kernel_shape = [2, 3], strides = [2, 1], pads = [1, 0, 0, 1]}");
    pq_gn_pool("MaxPool", "1, 2, 7, 6",
               "{kernel_shape = [2, 2], dilations = [2, 1], strides = [2, 2]}");
    pq_gn_pool("MaxPool", "1, 2, 5, 6", "{kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1}");
    pq_gn_pool("MaxPool", "2, 2, 9", "{kernel_shape = [3], strides = [2], pads = [1, 1]}");
    pq_gn_pool("MaxPool", "1, 2, 5, 5",
               "{kernel_shape = [3, 3], strides = [2, 2], auto_pad = \"SAME_UPPER\"}");
    pq_gn_pool("MaxPool", "1, 1, 4, 4", "{kernel_shape = [3, 3], pads = [1, 1, 1, 1]}");
    pq_gn_pool("MaxPool", "1, 1, 3, 4, 4", "{kernel_shape = [2, 2, 2], strides = [1, 2, 2]}");
}

Test(grad_nn, average_pool) {
    for (int cip = 0; cip < 2; cip++) {
        char a[256];
        snprintf(a, sizeof a,
                 "{kernel_shape = [3, 2], strides = [2, 1], pads = [1, 1, 1, 0], count_include_pad "
                 "= %d}",
                 cip);
        pq_gn_pool("AveragePool", "1, 2, 5, 6", a);
        snprintf(a, sizeof a,
                 "{kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1, pads = [1, 0, 0, 0], "
                 "count_include_pad = %d}",
                 cip);
        pq_gn_pool("AveragePool", "1, 2, 5, 6", a);
        snprintf(a, sizeof a,
                 "{kernel_shape = [3], strides = [2], pads = [1, 1], count_include_pad = %d}", cip);
        pq_gn_pool("AveragePool", "2, 2, 8", a);
    }
    pq_gn_pool("AveragePool", "1, 2, 5, 5",
               "{kernel_shape = [2, 2], strides = [2, 2], auto_pad = \"SAME_LOWER\"}");
    pq_gn_pool("AveragePool", "1, 2, 7, 5", "{kernel_shape = [2, 2], dilations = [2, 2]}");
    pq_gn_pool("AveragePool", "1, 2, 5, 5",
               "{kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1}");
}

Test(grad_nn, global_pools) {
    pq_gc_body("  const %X: f64[2, 3, 3, 4] = @s\n  %y = GlobalAveragePool(%X)\n", PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[2, 3, 3, 4] = @d\n  %y = GlobalMaxPool(%X)\n", PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[2, 3, 5] = @d\n  %y = GlobalMaxPool(%X)\n", PQ_GC_F32K, 2);
}

Test(grad_nn, batch_norm) {
    const char *xs[] = {"2, 3, 2, 2", "4, 3", "2, 3, 5"};
    for (int k = 0; k < 3; k++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "  const %%X: f64[%s] = @s\n  const %%S: f64[3] = @s\n  const %%B: f64[3] = @s\n"
                 "  const %%M: f64[3] = @s\n  const %%V: f64[3] = @p\n"
                 "  %%y = BatchNormalization(%%X, %%S, %%B, %%M, %%V) {epsilon = 0.001}\n",
                 xs[k]);
        pq_gc_body(body, PQ_GC_F32K, 6);
    }
}

Test(grad_nn, layer_norm) {
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  const %S: f64[4] = @s\n  const %B: f64[4] = @s\n"
               "  %y = LayerNormalization(%X, %S, %B)\n",
               PQ_GC_F32K, 4);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  const %S: f64[3, 4] = @s\n"
               "  const %B: f64[4] = @s\n"
               "  %y = LayerNormalization(%X, %S, %B) {axis = 1, epsilon = 0.1}\n",
               PQ_GC_F32K, 4);
    pq_gc_body("  const %X: f64[3, 5] = @s\n  const %S: f64[5] = @s\n"
               "  %y = LayerNormalization(%X, %S) {axis = -1}\n",
               PQ_GC_F32K, 3);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  const %S: f64[1, 4] = @s\n"
               "  %y, _, _ = LayerNormalization(%X, %S) {axis = -2}\n",
               PQ_GC_F32K, 3);
}

Test(grad_nn, other_norms) {
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  const %S: f64[3] = @s\n  const %B: f64[3] = @s\n"
               "  %y = InstanceNormalization(%X, %S, %B) {epsilon = 0.01}\n",
               PQ_GC_F32K, 4);
    pq_gc_body("  const %X: f64[2, 3, 2, 2] = @s\n  %y = MeanVarianceNormalization(%X)\n",
               PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  %y = MeanVarianceNormalization(%X) {axes = [2]}\n",
               PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[3, 4] = @s\n  %y = LpNormalization(%X) {p = 2, axis = -1}\n",
               PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[3, 4] = @s\n  %y = LpNormalization(%X) {p = 1, axis = 0}\n",
               PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[2, 5, 2, 2] = @s\n  %y = LRN(%X) {size = 3}\n", PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f64[1, 6, 3] = @s\n"
               "  %y = LRN(%X) {size = 4, alpha = 0.1, beta = 0.6, bias = 2.0}\n",
               PQ_GC_F32K, 2);
}

Test(grad_nn, softmax_legacy_matmul_1d) {
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  %y = Softmax(%X) {axis = 1, coerce_2d = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  %y = LogSoftmax(%X) {axis = 1, coerce_2d = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %A: f64[3] = @s\n  const %B: f64[2, 3, 4] = @s\n  %y = MatMul(%A, %B)\n",
               PQ_GC_F32K, 3);
    pq_gc_body("  const %A: f64[2, 3, 4] = @s\n  const %B: f64[4] = @s\n  %y = MatMul(%A, %B)\n",
               PQ_GC_F32K, 3);
    pq_gc_body("  const %A: f64[4] = @s\n  const %B: f64[4] = @s\n  %m = MatMul(%A, %B)\n"
               "  const %one: i64[1] = [1]\n  %y = Reshape(%m, %one)\n",
               PQ_GC_F32K, 3);
}

/* Hadamard runs on f32 only: an f32 graph, step 1e-2, 1e-3 relative. */
Test(grad_nn, hadamard) {
    pq_gc_body("  const %X: f32[3, 16] = @s\n  %y = Hadamard(%X) {seed = 7}\n", PQ_GC_F32K, 2);
    pq_gc_body("  const %X: f32[8, 3] = @s\n  %y = Hadamard(%X) {axis = 0, inverse = 1}\n",
               PQ_GC_F32K, 2);
}
