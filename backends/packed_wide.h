/* PackedMatMul / PackedConv whose weights are int8 codes with per-row f32 scales (format "int8")
 * or f16 values (format "f16"): input checks, bias, fused activation, im2col tiling, and the
 * choice of the int8 / f16 kernel table (packed_int8.h, packed_f16.h) by ISA name. */
#ifndef PQ_PACKED_WIDE_H
#define PQ_PACKED_WIDE_H

#include <stdbool.h>

#include "backends/ref/ref.h"

/* Inputs (ir/ops.def, shape rules in ir/infer_piqc.c), attributes rows, cols, format:
 *   int8: (x, q: i8 [rows * cols], bias: f32 [rows] or omitted, scales: f32 [rows])
 *   f16:  (x, h: f16 [rows * cols], bias: f32 [rows] or omitted)
 * with the weight in the FakeQuant row view (row r = output channel, cols = K, or C/group x
 * kernel for PackedConv, in (c, kd, kh, kw) order), row-major. PackedConv takes the Conv
 * attributes (kernel_shape required, strides, pads, dilations, group). */

/* True when node n's format attribute is "int8" or "f16". */
bool pq_packed_is_wide(const pq_node *n);

/* Kernel entries (contract of backends/ref/ref.h). isa names the kernel table ("scalar", "avx2",
 * "avx512"; scalar when NULL, unknown, or not supported by the CPU). M = 1 runs the gemv kernel,
 * M > 1 the panel gemm; bias is added after the kernel, then the fused activation. Workspace is
 * bounded: one weight panel (pq_panel_rows rows) and, for PackedConv, an im2col tile of at most
 * 1M floats (one panel and tile per thread); the whole f32 weight is never built. Up to
 * a->n_threads threads (PackedMatMul: weight-row chunks, pq_packed_rows_run; PackedConv: runs of
 * im2col tiles), results bit-identical to 1 thread. Each returns PQ_OK,
 * PQ_ERR_INVALID (inputs that contradict the attributes; the message names what), or
 * PQ_ERR_NOMEM (workspace). */
enum pq_status pq_packed_wide_matmul_run(const char *isa, const pq_kernel_args *a);
enum pq_status pq_packed_wide_conv_run(const char *isa, const pq_kernel_args *a);

#endif
