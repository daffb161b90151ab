/* Kernels of piqc's own ops (Hadamard, FakeQuant, PackedMatMul, PackedConv) parameterised by the
 * quant kernel table, and the fused-activation epilogue of Conv/Gemm/MatMul/Add/packed ops. */
#ifndef PQ_PIQC_OPS_H
#define PQ_PIQC_OPS_H

#include <stdint.h>

#include "backends/quant/qkernels.h"
#include "backends/ref/ref.h"
#include "backends/ref/ref_gemm.h"
#include "ir/infer_piqc.h"

/* Applies a fused activation to y[0..n) in place with the same f32 arithmetic as running the
 * activation op's reference kernel on the result (Relu, Clip, LeakyRelu and Tanh in f32; Sigmoid,
 * HardSigmoid and HardSwish in double rounded once; Gelu as the f32 ops Div(x, sqrt 2), Erf,
 * Add 1, Mul x, Mul 0.5; Swish as f32(Sigmoid(x)) * x). PQ_ACT_NONE does nothing. */
void pq_act_apply_f32(const pq_activation *act, float *y, int64_t n);

/* Epilogue of a kernel: decodes node n's fused activation and applies it to t in place (f32:
 * pq_act_apply_f32; other float dtypes through f32). Returns PQ_OK (also when n has none), or
 * PQ_ERR_INVALID for a bad activation attribute or a non-float t with an activation. */
enum pq_status pq_act_epilogue(const pq_node *n, pq_tensor *t, pq_error *err);

/* Op kernels (contract of backends/ref/ref.h: inputs validated by the op's shape rule, outputs
 * allocated). k is the quant kernel table to use (&pq_qkernels_scalar from the reference table,
 * pq_qkernels_get() from the fast table, any pq_qkernels_for(isa) in tests); the results of
 * Hadamard and FakeQuant do not depend on k (bit-identical), those of the packed ops differ only
 * by f32 summation order. PackedMatMul and PackedConv run on up to a->n_threads threads of
 * piqc's pool (backends/threadpool.h) with results bit-identical to 1 thread (see
 * pq_packed_rows_run); Hadamard and FakeQuant are single-threaded. A packed op on piq/q codes with
 * act_quant = "int8" runs the integer-activation path instead (backends/packed_piq_i8.h: inputs
 * quantized per weight group, bit-identical on every table and thread count). Each returns PQ_OK,
 * PQ_ERR_INVALID (inputs that contradict the attributes; message names what), or PQ_ERR_NOMEM
 * (workspace). Workspace is bounded: Hadamard on an inner axis gathers at most 64K floats of
 * fibers at a time, PackedConv tiles im2col over the positions of all images to at most 1M
 * floats (about 64K a tile) plus one zero-padded copy of an image's channel group. */
enum pq_status pq_piqc_hadamard_run(const pq_qkernels *k, const pq_kernel_args *a);
enum pq_status pq_piqc_fake_quant_run(const pq_kernel_args *a);
enum pq_status pq_piqc_packed_matmul_run(const pq_qkernels *k, const pq_kernel_args *a);
enum pq_status pq_piqc_packed_conv_run(const pq_qkernels *k, const pq_kernel_args *a);

/* im2col of output positions [p0, p0 + t) (row-major over the output's spatial dims) of cg
 * channels of x (geometry w): col is [t, cg * k0 * k1 * k2], columns in (c, kd, kh, kw) order,
 * zeros for padding. Shared with the int8/f16 PackedConv (backends/packed_wide.c). */
void pq_packed_im2col(const float *x, int64_t cg, const pq_ref_win *w, int64_t p0, int64_t t,
                      float *col);

/* Geometry of one PackedConv, whatever its weight format: the window, the channel groups and the
 * fused activation, checked against a weight of rows x cols. Shared with backends/packed_wide.c. */
typedef struct pq_packed_conv_geom {
    pq_ref_win w;
    int64_t N, C, group, cg, mg, isp, osp; /* cg, mg: input/output channels per group */
    pq_activation act;
} pq_packed_conv_geom;

/* Decodes a->node's Conv attributes against X = a->in[0], Y = a->out[0] and a weight of rows x
 * cols. PQ_ERR_INVALID (message in a->err) when the kernel shape, ranks, channels, group or
 * activation do not fit. */
enum pq_status pq_packed_conv_geom_get(const pq_kernel_args *a, int64_t rows, int64_t cols,
                                       pq_packed_conv_geom *g);

/* ---- threading of the packed ops (shared with backends/packed_wide.c) ---- */

#define PQ_PAR_ROW_ALIGN                                                                           \
    32 /* weight rows per unit of work: a multiple of every kernel's row tile */
#define PQ_PAR_MIN_MACS ((int64_t)1 << 17) /* multiply-adds per thread, at least */
#define PQ_PAR_MBLOCK 256 /* activation rows per scratch block of a threaded gemm */

/* Threads to use for macs multiply-adds over units independent units: min(n_threads, units,
 * macs / PQ_PAR_MIN_MACS), at least 1. */
int pq_packed_par_chunks(int n_threads, int64_t units, int64_t macs);

/* y (M x n, row-major, contiguous) = x (M x cols) times weight rows [r0, r0 + n) transposed; w is
 * the caller's weight description, panel NULL or the panel_floats of workspace given to
 * pq_packed_rows_run. Must give each output the same bits for any r0/n split and any M >= 2
 * split (the packed PiQ, int8 and f16 kernels do: each output is one dot product whose order
 * depends only on cols, and on whether M is 1). */
typedef void (*pq_rows_apply_fn)(const void *w, int64_t r0, int64_t n, const float *x, int64_t M,
                                 float *y, float *panel);

/* y (M x rows) = apply(all rows) + bias (rows values or NULL), then node's fused activation.
 * With n_threads > 1 and enough work (pq_packed_par_chunks) the weight rows are split into
 * contiguous chunks of whole PQ_PAR_ROW_ALIGN-row units, one per thread; for M > 1 each chunk runs
 * its rows for blocks of at most PQ_PAR_MBLOCK activation rows (pq_parallel_range split, each
 * >= 2 rows) into a scratch of PQ_PAR_MBLOCK x rows floats, then copies them to y. Every output
 * is computed once with the 1-thread operations: results are bit-identical for any n_threads.
 * panel_floats > 0: each chunk gets that many floats of panel when M > 1. Returns PQ_OK,
 * PQ_ERR_INVALID (bad activation attribute) or PQ_ERR_NOMEM (panel, scratch). */
enum pq_status pq_packed_rows_run(int n_threads, pq_rows_apply_fn apply, const void *w,
                                  int64_t rows, int64_t cols, const float *x, int64_t M,
                                  const float *bias, int64_t panel_floats, float *y,
                                  const pq_node *node, pq_error *err);

/* Fast-table entries: the kernels above with pq_qkernels_get() (PIQC_ISA honoured). */
enum pq_status pq_fast_piqc_hadamard(const pq_kernel_args *a);
enum pq_status pq_fast_piqc_packed_matmul(const pq_kernel_args *a);
enum pq_status pq_fast_piqc_packed_conv(const pq_kernel_args *a);

#endif
