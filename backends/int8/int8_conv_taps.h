/* INT8 convolution as an implicit GEMM on tables with a taps kernel: the input is copied once into
 * a zp-padded, stride-phase-split, channel-last buffer (bytes, or zero-extended i16 for the
 * widening AVX2 table) whose taps the tiles read directly. */
#ifndef PQ_INT8_CONV_TAPS_H
#define PQ_INT8_CONV_TAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/int8/int8_gemm.h"
#include "backends/int8/int8_internal.h"
#include "ir/status.h"

/* One group-1 2-D convolution, NCHW u8 in and out. */
typedef struct pq_i8_taps_conv {
    const pq_i8_kernels *k; /* k->taps non-NULL */
    const pq_i8_conv *g;    /* group 1 */
    const uint8_t *x;       /* [N][C][H][W] */
    uint8_t *y;             /* [N][M][OH][OW] */
    const void *panels;     /* pq_i8_taps_pack of the weights */
    const int32_t *add;     /* M: zero-point correction + bias (wrapping i32) */
    const float *m;         /* M finite multipliers (pq_i8_mult, or s_x * s_w with act) */
    const pq_i8_act *act;   /* NULL: none */
    int32_t zp_x, zp_y;
    int threads;
} pq_i8_taps_conv;

/* Whether the taps path takes convolution g: the table has a taps kernel, group 1, C a multiple
 * of the table's depth step (4 bytes; AMX: 64), strides up to 8 and the tiles fill (M >= 64, at
 * least 16 output positions in all); for i16 tables also few garbage columns (<= 8%). */
bool pq_i8_taps_fits(const pq_i8_kernels *k, const pq_i8_conv *g);

/* Bytes of the packed weights: panels of nr output channels, [KH * KW * C / kb][nr][4 bytes]
 * each (kb s8, or kb = 2 sign-extended i16). */
size_t pq_i8_taps_panels_bytes(const pq_i8_kernels *k, int64_t M, int64_t C, int64_t taps);
/* Packs w [M][C][taps] (s8, the ONNX layout) into dst (pq_i8_taps_panels_bytes): unit q of tap t
 * holds channels kb q .. kb q + kb - 1 of that tap; lanes past M are zero. */
void pq_i8_taps_pack(const pq_i8_kernels *k, const int8_t *w, int64_t M, int64_t C, int64_t taps,
                     void *dst);

/* Runs the convolution (bit-exact with the reference; threads from c->threads). NOMEM with a
 * message in err, else OK. */
enum pq_status pq_i8_taps_conv_run(const pq_i8_taps_conv *c, pq_error *err);

#endif
