/* Fast QLinearConv / QLinearMatMul on the INT8 GEMM kernels (int8_gemm.h), bit-exact with the
 * reference kernels. Handled: u8 activations with a scalar zero point, s8 weights with zero
 * point(s) 0 and per-tensor or per-output-channel scales, u8 output, optional i32 bias (Conv);
 * Conv 2-D NCHW with any stride / pads / dilation / group: no im2col buffer (the taps are
 * contiguous rows of the input, or of a zp-padded copy split into stride phases, packed straight
 * into the kernel's panels), output channels as the broadcast rows or, when that wastes fewer
 * lanes (small outputs), output positions as rows and channels as lanes; depthwise with a direct
 * kernel; grouped as one GEMM per group. MatMul with a 2-D weight and any batch of rows. Threaded
 * with pq_parallel_for at a->n_threads (bit-identical at any count). Constant weights are packed
 * once per node while a session cache is bound (pq_onednn_cache_bind), else on every call. */
#ifndef PQ_INT8_OPS_H
#define PQ_INT8_OPS_H

#include "backends/int8/int8_gemm.h"
#include "backends/ref/ref.h"

/* Runs the node with kernels k (NULL: pq_i8_kernels_get()). UNSUPPORTED (err untouched, outputs
 * untouched) for any case outside the list above, NOMEM for workspace, else OK. */
enum pq_status pq_i8_qlinear_conv_run(const pq_i8_kernels *k, const pq_kernel_args *a);
enum pq_status pq_i8_qlinear_matmul_run(const pq_i8_kernels *k, const pq_kernel_args *a);

/* Tests: 0 or 1 forces the orientation of group-1 convolutions (1: positions as rows), -1 (the
 * default) chooses by the padded work. Not thread-safe; set before running kernels. */
void pq_i8_conv_force_swap(int swap);

/* Tests: 1 keeps the AVX-512 depthwise kernel on its f32 tap sums (no u8 tap quads), 0 (the
 * default) lets it choose. Not thread-safe; set before running kernels. */
void pq_i8_dwc_force_f32(int on);

/* Tests: 1 runs the AVX-512 depthwise kernel with output columns in the lanes wherever its
 * geometry allows, 0 never (the channel-lane forms), -1 (the default) lets it choose. Not
 * thread-safe; set before running kernels. */
void pq_i8_dwc_force_cols(int mode);

/* Tests: scales the work a layer needs per extra thread (default 1: about 2M multiply-adds for a
 * convolution, 0.5M for a depthwise one, 1M for QLinearMatMul while other processes keep the CPUs
 * busy, a tenth of that on idle CPUs, see pq_threads_usable); 0 splits whatever the size, so
 * small test shapes cover the threaded paths. Not thread-safe; set before running kernels. */
void pq_i8_thread_grain(double scale);

/* The fast-table entries (pq_i8_kernels_get()). */
enum pq_status pq_fast_int8_qlinear_conv(const pq_kernel_args *a);
enum pq_status pq_fast_int8_qlinear_matmul(const pq_kernel_args *a);

#endif
