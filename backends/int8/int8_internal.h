/* Helpers shared by the INT8 operator drivers (int8_ops.c, int8_conv_taps.c): per-thread scratch,
 * the thread count for a layer's work and the blocked byte transpose. Not a public interface. */
#ifndef PQ_INT8_INTERNAL_H
#define PQ_INT8_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "int8_gemm.h"

/* A 2-D convolution's geometry (NCHW; Cg, Mg: channels per group). */
typedef struct pq_i8_conv {
    int64_t N, C, H, W, M, OH, OW, KH, KW, group, Cg, Mg;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
} pq_i8_conv;

/* Scratch slots a thread can hold at the same time: a task's buffers (conv tile, depthwise
 * plane) while its caller (on the same thread: the caller runs tasks too) holds the call's. */
enum { PQ_I8_TLS_TASK, PQ_I8_TLS_CALL, PQ_I8_TLS_PLANES, PQ_I8_TLS_OUT, PQ_I8_TLS_SLOTS };

/* Nonzero: the AVX-512 depthwise kernel keeps its f32 form (pq_i8_dwc_force_f32, for tests). */
extern int pq_i8_dwcq_off;

/* Bits [lo, hi) of a 64-bit mask (a byte mask of a 64-byte load or store; none when hi <= lo). */
static inline uint64_t pq_i8_bits64(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 64) hi = 64;
    if (hi <= lo) return 0;
    uint64_t m = hi >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << hi) - 1);
    return m & ~(((uint64_t)1 << lo) - 1);
}

/* A 64-byte aligned buffer of bytes for slot on this thread: the thread's cached one (grow-only,
 * freed at thread exit), or (large requests, no thread state) a new allocation returned in
 * *owned too, for the caller to pq_free. NULL on NOMEM. */
void *pq_i8_scratch(int slot, size_t bytes, void **owned);

/* Threads for work units of work (multiply-adds, bytes) with per_thread units per extra thread
 * (scaled by pq_i8_thread_grain and, on idle CPUs, by a tenth), at most n_threads. */
int pq_i8_threads(int n_threads, double work, double per_thread);

/* Output-channel chunks per tile so that `threads` (what pq_i8_threads granted the call, so that
 * a call left on one thread stays whole) get about 4 tasks each from tile_tasks tiles. */
static inline size_t pq_i8_channel_chunks(int threads, int64_t tile_tasks) {
    if (threads <= 1 || tile_tasks >= 4 * (int64_t)threads) return 1;
    return (size_t)((4 * (int64_t)threads + tile_tasks - 1) / tile_tasks);
}

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (16 x 16 blocks in registers). */
void pq_i8_transpose(const uint8_t *src, size_t lds, size_t rows, size_t cols, uint8_t *dst,
                     size_t ldd);

/* pq_i8_transpose through the table's own transpose when it has one. */
static inline void pq_i8_transpose_k(const pq_i8_kernels *k, const uint8_t *src, size_t lds,
                                     size_t rows, size_t cols, uint8_t *dst, size_t ldd) {
    if (k->transpose)
        k->transpose(src, lds, rows, cols, dst, ldd);
    else
        pq_i8_transpose(src, lds, rows, cols, dst, ldd);
}

#if defined(__x86_64__)
/* The AVX-512 BW transpose and channel-last copy (the AVX-512 tables' transpose and taps_copy,
 * int8_gemm.h; the CPU must have AVX-512 BW). */
void pq_i8t_copy_block__avx512(const uint8_t *src, size_t hw, size_t cn, int64_t wend,
                               const size_t *co, size_t E, uint8_t *dst);
/* The AVX-512 tables' depthwise kernel (pq_i8_dwc_fn, int8_dwc_avx512.c): tap quads through
 * vpdpbusd where the geometry allows and the CPU has VBMI, else f32 tap sums. */
void pq_i8_dwc__avx512(const pq_i8_dwc *a);
/* Its form for wide planes (int8_dwc_cols_avx512.c): output columns in the lanes, tap quads from
 * the NCHW rows; fits: whether it takes a's geometry on this CPU (VBMI, pq_i8_dwc_force_cols). */
bool pq_i8_dwcc_fits(const pq_i8_dwc *a);
void pq_i8_dwcc__avx512(const pq_i8_dwc *a);
/* d[ph * wq + i] = the input row x's padded column 2 i + ph (input column 2 i + ph - pl, zp
 * outside [0, W)) for i < wq, ph < 2: a stride-2 row of the padded copy (int8_pad_avx512.c; the
 * CPU must have AVX-512 VBMI). */
void pq_i8_split2__avx512(const uint8_t *x, int64_t W, int64_t pl, uint8_t zp, size_t wq,
                          uint8_t *d);
/* The AVX-512 stem convolution (int8_conv_stem_avx512.c): group 1, stride 2 across columns,
 * kernels of at most 4 columns, C * KH <= 12, M <= 32, finite multipliers m, activation act
 * (NULL: none); x and y NCHW, w OIHW s8, bias NULL or M i32. fits: whether k's table and the
 * CPU (AVX-512 VBMI) run it for g. run: output row ranges on pq_parallel_for(threads). */
typedef struct pq_i8_stem {
    const pq_i8_conv *g;
    const uint8_t *x;
    uint8_t *y;
    const int8_t *w;
    const int32_t *bias;
    const float *m;
    const pq_i8_act *act;
    int32_t zp_x, zp_y;
} pq_i8_stem;
bool pq_i8_stem_fits(const pq_i8_kernels *k, const pq_i8_conv *g);
void pq_i8_stem_run(const pq_i8_stem *s, int threads);
void pq_i8t_out_rows__avx512(const uint8_t *src, size_t lds, size_t rows, size_t cols, uint8_t *dst,
                             size_t ldd);
/* One row against one panel of the AVX-512 VNNI table (int8_gemv_avx512.c): the fused
 * micro-kernel with mr 1 and the row operand u8 (a: kq quads, 4 bytes apart), its K split over
 * independent accumulators. */
void pq_i8_gemv_rq__avx512vnni(size_t kq, const uint8_t *a, const uint8_t *p,
                               const pq_i8_tile_ep *ep);
#endif

#endif
