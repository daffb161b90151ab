/* The fast-kernel table and the dispatcher that falls back to the reference kernels.
 * Entries are added by backends/onednn/ and backends/x86/ as they land. */
#include "backends/eltwise_fast.h"
#include "backends/int8/int8_ops.h"
#include "backends/int8/qdq_ops.h"
#include "backends/int8/qlinear_eltwise.h"
#include "backends/movement_fast.h"
#include "backends/onednn/onednn.h"
#include "backends/piqc_ops.h"
#include "fast.h"

#include <stdlib.h>
#include <string.h>

/* MaxPool: f32 on the blocked copy a oneDNN convolution kept (backends/onednn/onednn_layout.c),
 * else the u8/s8 kernel (backends/int8/), else (UNSUPPORTED) the reference. */
static enum pq_status pq_fast_max_pool(const pq_kernel_args *a) {
    enum pq_status st = pq_onednn_eltwise_blocked(a);
    return st != PQ_ERR_UNSUPPORTED ? st : pq_fast_i8_max_pool(a);
}

const pq_kernel_fn pq_fast_kernels[PQ_OP_COUNT] = {
    /* ---- onednn ---- */
    [PQ_OP_CONV] = pq_onednn_conv,
    [PQ_OP_CONV_ADD] = pq_onednn_conv, /* ConvAdd: the sum as a post-op */
    [PQ_OP_MATMUL] = pq_onednn_matmul,
    [PQ_OP_GEMM] = pq_onednn_gemm,
    /* ---- end onednn ---- */
    /* ---- piqc (backends/piqc_ops.c, run-time selected quant kernels) ---- */
    [PQ_OP_HADAMARD] = pq_fast_piqc_hadamard,
    [PQ_OP_PACKED_MAT_MUL] = pq_fast_piqc_packed_matmul,
    [PQ_OP_PACKED_CONV] = pq_fast_piqc_packed_conv,
    /* ---- end piqc ---- */
    /* ---- int8 (backends/int8/, u8 x s8 GEMM kernels) ---- */
    [PQ_OP_QLINEAR_CONV] = pq_fast_int8_qlinear_conv,
    [PQ_OP_QLINEAR_MATMUL] = pq_fast_int8_qlinear_matmul,
    [PQ_OP_QUANTIZE_LINEAR] = pq_fast_qdq_quantize,     /* backends/int8/qdq_ops.c */
    [PQ_OP_DEQUANTIZE_LINEAR] = pq_fast_qdq_dequantize, /* per-tensor f32 <-> u8/s8 */
    [PQ_OP_MAX_POOL] = pq_fast_max_pool,       /* f32 on oneDNN's blocked copies, else u8/s8 */
    [PQ_OP_QLINEAR_ADD] = pq_fast_qlinear_add, /* backends/int8/qlinear_eltwise.c */
    [PQ_OP_QLINEAR_MUL] = pq_fast_qlinear_add,
    [PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL] = pq_fast_qlinear_gap,
    /* ---- end int8 ---- */
    /* ---- f32 elementwise (backends/eltwise_fast.c, run-time selected ISA) ---- */
    [PQ_OP_ADD] = pq_fast_eltwise_binary,
    [PQ_OP_SUB] = pq_fast_eltwise_binary,
    [PQ_OP_MUL] = pq_fast_eltwise_binary,
    [PQ_OP_DIV] = pq_fast_eltwise_binary,
    [PQ_OP_SOFTMAX] = pq_fast_eltwise_softmax,
    [PQ_OP_LAYER_NORMALIZATION] = pq_fast_eltwise_layernorm,
    [PQ_OP_GLOBAL_AVERAGE_POOL] = pq_fast_eltwise_global_avg_pool,
    /* ---- end f32 elementwise ---- */
    /* ---- data movement (backends/movement_fast.c, run-time selected ISA) ---- */
    [PQ_OP_RESIZE] = pq_fast_movement_resize, /* f32 nearest / linear, last two axes */
    [PQ_OP_TRANSPOSE] = pq_fast_movement_transpose,
    [PQ_OP_CONCAT] = pq_fast_movement_concat,
    [PQ_OP_SPLIT] = pq_fast_movement_split,
    [PQ_OP_SLICE] = pq_fast_movement_slice,
    /* ---- end data movement ---- */
};

static int pq_fast_enabled(void) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *b = getenv("PIQC_BACKEND");
        enabled = !(b && !strcmp(b, "ref"));
    }
    return enabled;
}

enum pq_status pq_kernel_run(const pq_kernel_args *a) {
    pq_kernel_fn fn = (unsigned)a->node->op < PQ_OP_COUNT ? pq_fast_kernels[a->node->op] : NULL;
    if (fn && pq_fast_enabled()) {
        enum pq_status st = fn(a);
        if (st != PQ_ERR_UNSUPPORTED) {
            if (st != PQ_OK)
                pq_error_prefix(a->err, "node '%s' (%s): ", a->node->name, pq_op_name(a->node->op));
            return st;
        }
    }
    return pq_ref_run(a);
}
