/* NEON integer-activation PiQ GEMV: 16 codes per step decoded to bytes with two table lookups
 * and per-byte shifts, dotted with the int8 activations by sdot (vdotq_s32, when the CPU has the
 * dot-product extension) or vmull_s8 + vpadalq_s16; 4 rows share each activation load. The f32
 * epilogue is the scalar reference's, row by row, so results are bit-identical to it. */
#include <arm_neon.h>
#include <string.h>
#include <sys/auxv.h>

#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/quant.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

#define PQ_PGN_ROWS 4
#define PQ_PGN_FN static inline __attribute__((always_inline))
#define PQ_PGN_DOTFN __attribute__((target("arch=armv8.2-a+dotprod")))

/* 16 bytes from src, zeros for the part at or past end. */
PQ_PGN_FN uint8x16_t pq_pgn_load16(const uint8_t *src, const uint8_t *end) {
    if (src + 16 <= end) return vld1q_u8(src);
    uint8_t tmp[16] = {0};
    if (end > src) memcpy(tmp, src, (size_t)(end - src));
    return vld1q_u8(tmp);
}

/* Unsigned codes of the 16 codes at c as bytes: code i is the bits-wide field at bit bits * i,
 * i.e. (byte[b] >> s) | (byte[b + 1] << (8 - s)) masked, b = (bits i) / 8, s = (bits i) % 8. */
PQ_PGN_FN uint8x16_t pq_pgn_decode(int bits, const uint8_t *c, const uint8_t *end) {
    static const uint8_t lo3[16] = {0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5};
    static const int8_t sh3[16] = {0, -3, -6, -1, -4, -7, -2, -5, 0, -3, -6, -1, -4, -7, -2, -5};
    static const uint8_t lo2[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    static const int8_t sh2[16] = {0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6};
    uint8x16_t v = pq_pgn_load16(c, end);
    uint8x16_t il = vld1q_u8(bits == 3 ? lo3 : lo2);
    int8x16_t sr = vld1q_s8(bits == 3 ? sh3 : sh2);
    uint8x16_t lo = vshlq_u8(vqtbl1q_u8(v, il), sr);
    uint8x16_t hi =
        vshlq_u8(vqtbl1q_u8(v, vaddq_u8(il, vdupq_n_u8(1))), vaddq_s8(sr, vdupq_n_s8(8)));
    return vandq_u8(vorrq_u8(lo, hi), vdupq_n_u8((uint8_t)((1 << bits) - 1)));
}

/* acc + the 4-lane partial dot of u (unsigned codes <= 7) and x, without the dot product
 * extension: products fit i16, pair sums widen to i32. */
PQ_PGN_FN int32x4_t pq_pgn_dot_widen(int32x4_t acc, uint8x16_t u, int8x16_t x) {
    int8x16_t s = vreinterpretq_s8_u8(u);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(s), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(s, x));
}

PQ_PGN_DOTFN PQ_PGN_FN int32x4_t pq_pgn_dot_sdot(int32x4_t acc, uint8x16_t u, int8x16_t x) {
    return vdotq_s32(acc, vreinterpretq_s8_u8(u), x);
}

/* y[0 .. R) for rows w, w + row_bytes, ... (R <= 4), with DOT (pq_pgn_dot_widen or
 * pq_pgn_dot_sdot) accumulating the partial dot products; ATTR: the function's target. */
#define PQ_PGN_TILE(NAME, ATTR, DOT)                                                               \
    ATTR PQ_PGN_FN void NAME(int bits, int R, enum pq_qformat f, const uint8_t *w,                 \
                             size_t row_bytes, const uint8_t *end, int64_t cols, int64_t group,    \
                             const pq_piq_i8_act *a, float *y) {                                   \
        const int sb = bits * 2; /* bytes per 16-code step */                                      \
        const int32_t off = 1 << (bits - 1);                                                       \
        float acc[PQ_PGN_ROWS] = {0.0f, 0.0f, 0.0f, 0.0f};                                         \
        const uint8_t *p = w;                                                                      \
        for (int64_t g = 0; g < a->nblocks; g++) {                                                 \
            int64_t n = cols - g * group < group ? cols - g * group : group;                       \
            int64_t cbytes = (int64_t)bits * ((n + 7) / 8);                                        \
            int64_t nch = (n + 15) / 16;                                                           \
            const int8_t *xg = a->q + g * a->stride;                                               \
            int32x4_t s[PQ_PGN_ROWS];                                                              \
            for (int r = 0; r < PQ_PGN_ROWS; r++)                                                  \
                s[r] = vdupq_n_s32(0);                                                             \
            const uint8_t *c = p + 2;                                                              \
            for (int64_t ch = 0; ch < nch; ch++, c += sb) {                                        \
                int8x16_t xv = vld1q_s8(xg + 16 * ch);                                             \
                for (int r = 0; r < R; r++)                                                        \
                    s[r] = DOT(s[r], pq_pgn_decode(bits, c + (size_t)r * row_bytes, end), xv);     \
            }                                                                                      \
            for (int r = 0; r < R; r++) {                                                          \
                const uint8_t *pr = p + (size_t)r * row_bytes;                                     \
                int32_t d = vaddvq_s32(s[r]) - off * a->sum[g];                                    \
                float step = pq_qstep(f, (uint16_t)(pr[0] | pr[1] << 8));                          \
                float cg = step * a->scale[g];                                                     \
                float t = (float)d * cg;                                                           \
                acc[r] = acc[r] + t;                                                               \
            }                                                                                      \
            p += 2 + cbytes;                                                                       \
        }                                                                                          \
        for (int r = 0; r < R; r++)                                                                \
            y[r] = acc[r];                                                                         \
    }

PQ_PGN_TILE(pq_pgn_tile_widen, , pq_pgn_dot_widen)
PQ_PGN_TILE(pq_pgn_tile_sdot, PQ_PGN_DOTFN, pq_pgn_dot_sdot)

/* Every row tile of the GEMV through TILE. */
#define PQ_PGN_GEMV(NAME, ATTR, TILE)                                                              \
    ATTR PQ_PGN_FN void NAME(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,      \
                             int64_t group, const pq_piq_i8_act *a, float *y) {                    \
        if (rows <= 0 || cols <= 0 || group <= 0) return;                                          \
        int bits = pq_qformat_bits(f);                                                             \
        size_t row_bytes = pq_packed_row_bytes(f, cols, group);                                    \
        const uint8_t *end = w + (size_t)rows * row_bytes;                                         \
        for (int64_t r = 0; r < rows;) {                                                           \
            int R = rows - r >= PQ_PGN_ROWS ? PQ_PGN_ROWS : 1;                                     \
            const uint8_t *wr = w + (size_t)r * row_bytes;                                         \
            if (bits == 3 && R == PQ_PGN_ROWS)                                                     \
                TILE(3, PQ_PGN_ROWS, f, wr, row_bytes, end, cols, group, a, y + r);                \
            else if (bits == 3)                                                                    \
                TILE(3, 1, f, wr, row_bytes, end, cols, group, a, y + r);                          \
            else if (R == PQ_PGN_ROWS)                                                             \
                TILE(2, PQ_PGN_ROWS, f, wr, row_bytes, end, cols, group, a, y + r);                \
            else                                                                                   \
                TILE(2, 1, f, wr, row_bytes, end, cols, group, a, y + r);                          \
            r += R;                                                                                \
        }                                                                                          \
    }

PQ_PGN_GEMV(pq_pgn_gemv_widen, , pq_pgn_tile_widen)
PQ_PGN_GEMV(pq_pgn_gemv_sdot, PQ_PGN_DOTFN, pq_pgn_tile_sdot)

void pq_piq_gemv_i8_ukernel__neon(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                  int64_t group, const pq_piq_i8_act *a, float *y) {
    pq_pgn_gemv_widen(f, w, rows, cols, group, a, y);
}

PQ_PGN_DOTFN void pq_piq_gemv_i8_ukernel__neondot(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                                  int64_t cols, int64_t group,
                                                  const pq_piq_i8_act *a, float *y) {
    pq_pgn_gemv_sdot(f, w, rows, cols, group, a, y);
}

int pq_piq_i8_neon_has_dot(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

/* The table's entry: sdot when the CPU has it (getauxval reads a value cached at startup, cheap
 * next to a GEMV), else the widening kernel. */
static void pq_piq_gemv_i8_neon_entry(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                      int64_t cols, int64_t group, const pq_piq_i8_act *a,
                                      float *y) {
    if (pq_piq_i8_neon_has_dot())
        pq_piq_gemv_i8_ukernel__neondot(f, w, rows, cols, group, a, y);
    else
        pq_piq_gemv_i8_ukernel__neon(f, w, rows, cols, group, a, y);
}

const pq_piq_i8_kernels pq_piq_i8_kernels_neon = {
    .isa = "neon",
    .gemv = pq_piq_gemv_i8_neon_entry,
};
