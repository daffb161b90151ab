/* AVX-512 stem convolution (few input channels, stride 2, kernels up to 4 columns): output columns
 * in the lanes, tap quads loaded straight from the NCHW input rows, every output channel one
 * vpdpbusd per input channel and kernel row; no padded copy, no packing. Bit-exact. */
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "backends/cpu.h"
#include "backends/threadpool.h"
#include "int8_internal.h"
#include "int8_requant_avx512.h"

/* Lane j of phase r < 2 holds output column 2 j + r of a 32-column block, whose taps of kernel
 * row kh and input channel c are that row's bytes from (2 j + r) 2 - pl = 4 j + (2 r - pl): dword
 * j of one 64-byte load (masked to the row, zp elsewhere; the fourth byte has weight 0). Per
 * block the C * KH quad vectors of both phases stay in registers while every output channel runs
 * its C * KH vpdpbusd per phase; two channels' blocks are packed into one 64-byte vpermb. */

#define PQ_I8_STEM_T 12 /* quads (input channels x kernel rows) at most */

bool pq_i8_stem_fits(const pq_i8_kernels *k, const pq_i8_conv *g) {
    return (k->isa == PQ_I8_AVX512 || k->isa == PQ_I8_AMX) && g->group == 1 && g->sw == 2 &&
           g->dw == 1 && g->KW <= 4 && g->C * g->KH <= PQ_I8_STEM_T && g->M <= 32 && g->OW >= 16 &&
           pq_cpu_has_avx512_vbmi();
}

/* Both phases' quads of block (output row oh, columns c0 ..) of image x (zp outside); quad t
 * reads input channel plane x + co[t], row oh * sh - pt + kr[t]. */
static inline __attribute__((always_inline)) void
pq_i8_stem_quads(int T, const pq_i8_conv *g, const uint8_t *x, const int64_t *co, const int64_t *kr,
                 int64_t oh, int64_t c0, __m512i zq, __m512i q[2][PQ_I8_STEM_T]) {
    int64_t W = g->W, ih0 = oh * g->sh - g->pt;
    for (int r = 0; r < 2; r++) {
        int64_t b = (c0 + r) * 2 - g->pl;
        __mmask64 km = pq_i8_bits64(-b, W - b);
        for (int t = 0; t < T; t++) {
            int64_t ih = ih0 + kr[t];
            q[r][t] =
                ih >= 0 && ih < g->H ? _mm512_mask_loadu_epi8(zq, km, x + co[t] + ih * W + b) : zq;
        }
    }
}

/* Output rows [ob, oe) of image n in blocks of 32 columns (T quads, kind: constants in the
 * specialised callers); wq: [M][T] weight quads, add: bias - zp_x * sum(w) per output channel. */
static inline __attribute__((always_inline, target("avx512vbmi"))) void
pq_i8_stem_rows(int T, int CLAMP, int kind, const pq_i8_stem *s, const int32_t *wq,
                const int32_t *add, const pq_i8_act16 *act, __m512i perm, int64_t n, int64_t ob,
                int64_t oe) {
    const pq_i8_conv *g = s->g;
    int64_t OW = g->OW, M = g->M, osp = g->OH * g->OW;
    __m512i zq = _mm512_set1_epi8((char)s->zp_x), vz = _mm512_set1_epi32(s->zp_y);
    __m512 hi = _mm512_set1_ps((float)(255 - s->zp_y));
    const uint8_t *x = s->x + n * g->C * g->H * g->W;
    uint8_t *y = s->y + n * M * osp;
    int64_t co[PQ_I8_STEM_T], kr[PQ_I8_STEM_T];
    for (int t = 0; t < T; t++) {
        co[t] = t / g->KH * g->H * g->W;
        kr[t] = t % g->KH * g->dh;
    }
    int64_t nblk = (OW + 31) / 32, items = (oe - ob) * nblk;
    for (int64_t i = 0; i < items; i++) {
        int64_t oh = ob + i / nblk, c0 = i % nblk * 32;
        {
            __m512i q[2][PQ_I8_STEM_T];
            pq_i8_stem_quads(T, g, x, co, kr, oh, c0, zq, q);
            int64_t nb = OW - c0 < 32 ? OW - c0 : 32;
            __mmask64 k0 = pq_i8_bits64(0, nb), k1 = pq_i8_bits64(32, 32 + nb);
            for (int64_t m0 = 0; m0 < M; m0 += 2) {
                __m512i v[4];
                for (int h = 0; h < 2; h++) {
                    int64_t mm = m0 + h < M ? m0 + h : m0;
                    __m512 mv = _mm512_set1_ps(s->m[mm]);
                    for (int r = 0; r < 2; r++) {
                        /* two accumulator chains (even and odd quads), half the latency */
                        __m512i acc = _mm512_set1_epi32(add[mm]), acc1 = _mm512_setzero_si512();
                        for (int t = 0; t < T; t++) { /* the weight quad as a broadcast operand */
                            if (t % 2 == 0)
                                __asm__("vpdpbusd %2%{1to16%}, %1, %0"
                                        : "+v"(acc)
                                        : "v"(q[r][t]), "m"(wq[mm * T + t]));
                            else
                                __asm__("vpdpbusd %2%{1to16%}, %1, %0"
                                        : "+v"(acc1)
                                        : "v"(q[r][t]), "m"(wq[mm * T + t]));
                        }
                        acc = _mm512_add_epi32(acc, acc1); /* exact, wrapping like the chain */
                        v[2 * h + r] = CLAMP ? pq_i8_rq16s_k(kind, acc, _mm512_setzero_si512(), mv,
                                                             act, hi, vz)
                                             : pq_i8_rq16u_k(kind, acc, mv, act, vz);
                    }
                }
                __m512i bytes = _mm512_permutexvar_epi8(
                    perm, _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]),
                                              _mm512_packs_epi32(v[2], v[3])));
                uint8_t *ym = y + m0 * osp + oh * OW + c0;
                _mm512_mask_storeu_epi8(ym, k0, bytes);
                if (m0 + 1 < M) _mm512_mask_storeu_epi8(ym + osp - 32, k1, bytes);
            }
        }
    }
}

typedef struct pq_i8_stem_job {
    const pq_i8_stem *s;
    int32_t wq[32 * PQ_I8_STEM_T], add[32];
    bool clamp;     /* some channel's value may pass 2^30 (pq_i8_rq16u_k) */
    int64_t chunks; /* row ranges per image */
} pq_i8_stem_job;

__attribute__((target("avx512vbmi"))) static void pq_i8_stem_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8_stem_job *j = ctx;
    const pq_i8_stem *s = j->s;
    int T = (int)(s->g->C * s->g->KH);
    /* output byte c of a channel pair's 64 <- (vector q, lane l) after the packs: vectors 2 h + r
     * hold channel m0 + h's columns 2 l + r */
    _Alignas(64) uint8_t order[64];
    for (int c = 0; c < 64; c++) {
        int q = c / 32 * 2 + c % 2, l = c % 32 / 2;
        order[c] = (uint8_t)(16 * (l / 4) + 4 * q + l % 4);
    }
    __m512i perm = _mm512_load_si512((const void *)order);
    pq_i8_act16 act = pq_i8_act16_init(s->act);
    for (int64_t t = b; t < e; t++) {
        int64_t n = t / j->chunks, rc = t % j->chunks, OH = s->g->OH;
        int64_t ob = OH * rc / j->chunks, oe = OH * (rc + 1) / j->chunks;
#define PQ_I8Z_STEM(KIND)                                                                          \
    do {                                                                                           \
        if (T == 9 && !j->clamp)                                                                   \
            pq_i8_stem_rows(9, 0, KIND, s, j->wq, j->add, &act, perm, n, ob, oe);                  \
        else                                                                                       \
            pq_i8_stem_rows(T, 1, KIND, s, j->wq, j->add, &act, perm, n, ob, oe);                  \
    } while (0)
        PQ_I8_ACT_SPECIALISE(act.kind, PQ_I8Z_STEM)
#undef PQ_I8Z_STEM
    }
}

void pq_i8_stem_run(const pq_i8_stem *s, int threads) {
    const pq_i8_conv *g = s->g;
    int64_t T = g->C * g->KH, KK = g->KH * g->KW;
    pq_i8_stem_job j = {.s = s};
    for (int64_t mm = 0; mm < g->M; mm++) {
        uint32_t wsum = 0;
        for (int64_t t = 0; t < T; t++) {
            uint32_t q = 0; /* taps kw of kernel row t % KH of input channel t / KH */
            for (int64_t kw = 0; kw < g->KW; kw++) {
                int8_t w = s->w[(mm * g->C + t / g->KH) * KK + (t % g->KH) * g->KW + kw];
                q |= (uint32_t)(uint8_t)w << (8 * kw);
                wsum += (uint32_t)(int32_t)w;
            }
            j.wq[mm * T + t] = (int32_t)q;
        }
        /* bias - zp_x * sum(w) (wrapping i32 like the reference's correction) */
        j.add[mm] = (int32_t)((uint32_t)(s->bias ? s->bias[mm] : 0) - (uint32_t)s->zp_x * wsum);
        /* |bias + sum w (x - zp)| <= |bias| + 255 sum |w|; an activation keeps |r| or stays
         * within its constants and 1 (a factor |alpha| for LeakyRelu), then times 1 / s_y */
        double b = fabs((double)(s->bias ? s->bias[mm] : 0));
        for (int64_t i = 0; i < g->C * KK; i++)
            b += 255.0 * fabs((double)s->w[mm * g->C * KK + i]);
        double v = b * fabs((double)s->m[mm]);
        if (s->act) {
            double al = fabs((double)s->act->alpha), be = fabs((double)s->act->beta);
            v = fmax(fmax(v * fmax(al, 1.0), al), fmax(be, 1.0)) * fabs((double)s->act->inv_sy);
        }
        if (!(v < 1073741824.0)) j.clamp = true;
    }
    j.chunks = threads > 1 ? (2 * threads + g->N - 1) / g->N : 1;
    if (j.chunks > g->OH) j.chunks = g->OH;
    pq_parallel_for(threads, g->N * j.chunks, pq_i8_stem_task, &j);
}
