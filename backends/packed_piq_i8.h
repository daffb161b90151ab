/* PackedMatMul / PackedConv on PiQ/Q packed weights with act_quant = "int8": each activation row
 * quantized per weight group to int8, then the integer-activation GEMV (piq_gemv_i8.h) per row,
 * threaded over weight rows; the drivers piqc_ops.c calls when a node carries the attribute. */
#ifndef PQ_PACKED_PIQ_I8_H
#define PQ_PACKED_PIQ_I8_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/quant/piq_gemv_i8.h"
#include "backends/ref/ref.h"

/* Node attribute act_quant: absent or "f32" -> *int8 = false (the exact f32-activation kernels);
 * "int8" -> *int8 = true. Anything else: PQ_ERR_INVALID naming the value. */
enum pq_status pq_packed_act_quant(const pq_node *n, bool *int8, pq_error *err);

/* The integer-path table for a packed-op call made with the f32 kernel table of ISA name isa
 * (results do not depend on it: every table is bit-exact with the scalar reference): the ISA
 * PIQC_ISA names when this CPU runs its integer kernels, else isa's own, else the best. */
const pq_piq_i8_kernels *pq_packed_i8_kernels(const char *isa);

/* y (M x rows, row-major) = for each of the M rows of x (M x cols): the integer-activation GEMV
 * of the packed rows x cols weight w (group size group, format f), + bias (rows values or
 * NULL), then node's fused activation. Activation rows are quantized in blocks of at most
 * PQ_PAR_MBLOCK rows (workspace: one quantized row per x row of a block); weight rows are split
 * over up to n_threads threads as pq_packed_rows_run does, with results bit-identical for any
 * thread count and any M (each output is one GEMV of one x row). The caller checks
 * pq_piq_i8_supported. PQ_OK, PQ_ERR_INVALID (bad activation attribute), PQ_ERR_NOMEM. */
enum pq_status pq_packed_i8_matmul(const pq_piq_i8_kernels *k, enum pq_qformat f, const uint8_t *w,
                                   int64_t rows, int64_t cols, int64_t group, const float *x,
                                   int64_t M, const float *bias, float *y, int n_threads,
                                   const pq_node *node, pq_error *err);

/* Y[m][0 .. rows) = integer-activation GEMV of rows packed weight rows at w with each of the M
 * rows of x (no bias, no activation; single-threaded; for PackedConv's im2col tiles). abuf holds
 * pq_piq_i8_act_bytes(cols, group) bytes for one quantized row. */
void pq_packed_i8_rows(const pq_piq_i8_kernels *k, enum pq_qformat f, const uint8_t *w,
                       int64_t rows, int64_t cols, int64_t group, const float *x, int64_t M,
                       float *y, void *abuf);

#endif
