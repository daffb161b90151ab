/* Small convolutions (every input plane at most 64 bytes, group 1): the packed im2col panels of a
 * whole image gathered with byte permutes straight from the unpadded input planes, 16 lanes of one
 * tap quad per instruction (no padded copy, no per-row chunks), then one GEMM over all of them.
 * The gather pattern is built once per geometry and kept in the node's conv plan. */
#ifndef PQ_INT8_CONV_SMALL_H
#define PQ_INT8_CONV_SMALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "int8_gemm.h"
#include "int8_internal.h"

/* One 64-byte store of the panels: 16 lanes (output positions) of one tap quad. Byte 4 l + t of
 * the store is tap t of lane l: plane a's byte idx (idx < 64) or plane b's byte idx - 64 where
 * bit 4 l + t of kval is set, zp_x where that bit of kpad is set, else 0 (a depth tail or a lane
 * past the last position). */
typedef struct pq_i8_small_ent {
    _Alignas(64) uint8_t idx[64];
    uint64_t kval, kpad;
    uint32_t oa, ob; /* byte offsets of planes a and b from the image's first plane */
    uint32_t dst;    /* byte offset of the store in the panels */
} pq_i8_small_ent;

/* The gather pattern of one geometry and panel layout. */
typedef struct pq_i8_small {
    pq_i8_conv g; /* what it was made for */
    int nr, kq_align;
    size_t CK, n;       /* depth, number of stores */
    size_t panel_bytes; /* bytes of the panels of one image */
    pq_i8_small_ent *e; /* n entries, in the order of their dst */
} pq_i8_small;

/* Gathers the panels of one image x (C planes of H * W bytes) into dst (s->panel_bytes, 64-byte
 * aligned) with input zero point zp. */
typedef void (*pq_i8_small_pack_fn)(const pq_i8_small *s, const uint8_t *x, uint8_t zp,
                                    uint8_t *dst);

/* The gather for table k on this CPU, or NULL when the small path does not apply to k (panels of
 * raw u8 quads in 16-lane multiples on an AVX-512 table, and a CPU with AVX-512 VBMI). */
pq_i8_small_pack_fn pq_i8_small_packer(const pq_i8_kernels *k);

/* Whether the small path takes convolution g on table k: a packer for k, group 1, H * W <= 64,
 * each tap quad within two consecutive channels and at most PQ_I8_SMALL_MAX_STORES stores. */
#define PQ_I8_SMALL_MAX_STORES 512
bool pq_i8_small_fits(const pq_i8_kernels *k, const pq_i8_conv *g);

/* The pattern of g on k (pq_i8_small_fits), NULL on NOMEM; pq_i8_small_free releases it. */
pq_i8_small *pq_i8_small_make(const pq_i8_kernels *k, const pq_i8_conv *g);
void pq_i8_small_free(pq_i8_small *s);
/* Whether s was made for g on k. */
bool pq_i8_small_same(const pq_i8_small *s, const pq_i8_kernels *k, const pq_i8_conv *g);

/* The portable gather of the same pattern (tests compare the SIMD one against it). */
void pq_i8_small_pack__portable(const pq_i8_small *s, const uint8_t *x, uint8_t zp, uint8_t *dst);

#if defined(__x86_64__)
/* The AVX-512 VBMI gather (vpermi2b; int8_conv_small_avx512.c). */
void pq_i8_small_pack__avx512vbmi(const pq_i8_small *s, const uint8_t *x, uint8_t zp, uint8_t *dst);
#endif

/* Tests: convolutions run on the small path since the process started. */
long pq_i8_small_taken(void);

/* A whole small convolution: pattern s (made for k), packed weight rows w (pq_i8_pack_rows of M
 * rows, K = CK), per-channel corrections + bias add and multipliers m, epilogue fields as the
 * GEMM's; input x (N images), output y (NCHW). Images split over up to n_threads threads when
 * there is work enough. NOMEM when the scratch cannot be had. */
typedef struct pq_i8_small_conv {
    const pq_i8_kernels *k;
    const pq_i8_small *s;
    const uint8_t *x;
    uint8_t *y;
    const void *w;
    const int32_t *add;
    const float *m;
    const pq_i8_act *act;
    int32_t zp_x, zp_y;
    bool finite;
} pq_i8_small_conv;
enum pq_status pq_i8_small_conv_run(const pq_i8_small_conv *c, int n_threads);

/* pq_i8_small_conv_run for convolution g of a node with the pattern kept in plan (made there on
 * first use or when g or the table changed; plan NULL: made for this call). c->s is set here.
 * NOMEM with a message in err. */
struct pq_i8_conv_plan;
enum pq_status pq_i8_small_conv_node(struct pq_i8_conv_plan *plan, const pq_i8_conv *g,
                                     pq_i8_small_conv *c, int n_threads, pq_error *err);

#endif
