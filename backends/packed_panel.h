/* The f32 weight panel shared by the int8 and f16 weight kernels (packed_int8.h, packed_f16.h):
 * how many weight rows a gemm widens to f32 at a time (kernels: packed_wide_simd.h). */
#ifndef PQ_PACKED_PANEL_H
#define PQ_PACKED_PANEL_H

#include <stdint.h>

/* Target size of one panel in floats (64 KiB: it stays in L2 while every activation row of the
 * gemm reads it). */
#define PQ_PANEL_FLOATS ((int64_t)1 << 14)

/* Rows of one panel of a rows x cols weight (rows, cols >= 1): PQ_PANEL_FLOATS / cols rounded
 * down to a multiple of 4, at least 4 and at most rows. A gemm needs pq_panel_rows(rows, cols) *
 * cols floats of panel workspace, never the whole weight. */
static inline int64_t pq_panel_rows(int64_t rows, int64_t cols) {
    int64_t pr = PQ_PANEL_FLOATS / cols / 4 * 4;
    if (pr < 4) pr = 4;
    return pr < rows ? pr : rows;
}

#endif
