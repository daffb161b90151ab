/* Fast kernels of Resize (f32 nearest / linear on the last two axes) and of the copies Transpose,
 * Concat, Split, Slice: per-ISA row kernels (scalar here, backends/x86/movement_avx2.c, _avx512.c)
 * chosen at run time (PIQC_ISA forces), threaded above a size threshold. */
#ifndef PQ_MOVEMENT_FAST_H
#define PQ_MOVEMENT_FAST_H

#include <stdint.h>

#include "backends/ref/ref.h"

/* Numerics, every ISA and thread count: bit-identical to the reference kernels.
 * - Resize linear: with the reference's own taps (pq_ref_resize_taps), output element
 *   y = (float)((((0.0 + (wy0*wx0)*a0) + (wy0*wx1)*a1) + (wy1*wx0)*b0) + (wy1*wx1)*b1) in double,
 *   the reference's terms in the reference's order (a = source row of tap wy0, b of wy1; a missing
 *   tap contributes the exact +0.0 (0 * 0.0f), which leaves the sum unchanged since it is never
 *   -0.0): the same bits, infinities included; a NaN output is NaN in both, but its sign and
 *   payload may differ (x86 returns the first of two NaN operands, and compilers may swap the
 *   operands of an addition, in the reference too).
 * - Resize nearest and every copy: bytes moved, never computed. */
typedef struct pq_movement_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    /* n >= 0 outputs of the formula above: a0/a1 are the gathered first-row taps (the source
     * floats converted to double once per source row), b0/b1 the second row's (both NULL when the
     * row has one tap: the b terms are left out), wx0/wx1 the per-column weights. */
    void (*linear_row)(const double *a0, const double *a1, const double *b0, const double *b1,
                       double wy0, double wy1, const double *wx0, const double *wx1, float *y,
                       int64_t n);
    /* 4-byte transpose of a ni x nj block: dst[i * ds + j] = src[j * ss + i] (element strides). */
    void (*transpose32)(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, int64_t ni,
                        int64_t nj);
} pq_movement_kernels;

extern const pq_movement_kernels pq_movement_kernels_scalar;
extern const pq_movement_kernels pq_movement_kernels_avx2;
extern const pq_movement_kernels pq_movement_kernels_avx512;
#if defined(__x86_64__)
/* The AVX2 transpose32 (backends/x86/movement_avx2.c), shared by the AVX-512 table. */
void pq_mv_transpose32__avx2(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, int64_t ni,
                             int64_t nj);
#endif

/* The table of a named ISA ("scalar", "avx2", "avx512") when compiled in and supported by the
 * CPU, else NULL. */
const pq_movement_kernels *pq_movement_kernels_for(const char *isa);
/* PIQC_ISA's table when available, else the best the CPU runs. Chosen once. */
const pq_movement_kernels *pq_movement_kernels_get(void);

/* Node kernels with an explicit table (contract of backends/fast.h: PQ_ERR_UNSUPPORTED for cases
 * not handled, the reference kernel then runs; other errors are the reference's own). Handled:
 * - Resize: f32, rank >= 2, mode nearest (every nearest_mode) or linear, every
 *   coordinate_transformation_mode, scales or sizes, when every axis before the last two maps each
 *   output index to one input index with weight 1 (unscaled N, C).
 * - Transpose: any dtype and perm (dims merged where contiguous in both layouts): strided runs
 *   copied when the innermost axis stays, else blocked 2-D transposes.
 * - Concat / Split: any dtype, any axis. Slice: any dtype, steps of 1 on the innermost sliced axis
 *   that is not of size 1 after merging (other steps: the reference).
 * Threads: output rows (Resize) or bytes (copies) split in pq_parallel_for chunks when
 * a->n_threads > 1 and the work is large; results do not depend on the thread count. */
enum pq_status pq_movement_resize_run(const pq_movement_kernels *k, const pq_kernel_args *a);
enum pq_status pq_movement_transpose_run(const pq_movement_kernels *k, const pq_kernel_args *a);
enum pq_status pq_movement_concat_run(const pq_kernel_args *a);
enum pq_status pq_movement_split_run(const pq_kernel_args *a);
enum pq_status pq_movement_slice_run(const pq_kernel_args *a);

/* The fast-table entries: the runs above with pq_movement_kernels_get(). */
enum pq_status pq_fast_movement_resize(const pq_kernel_args *a);
enum pq_status pq_fast_movement_transpose(const pq_kernel_args *a);
enum pq_status pq_fast_movement_concat(const pq_kernel_args *a);
enum pq_status pq_fast_movement_split(const pq_kernel_args *a);
enum pq_status pq_fast_movement_slice(const pq_kernel_args *a);

#endif
