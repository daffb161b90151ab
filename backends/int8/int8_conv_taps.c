/* INT8 convolution as an implicit GEMM (the table's taps kernel: AMX, AVX-512 VNNI, AVX-VNNI,
 * AVX2): one zp-padded, channel-last copy of the input split into stride phases, tiles of output
 * positions read at every tap. */
#include "int8_conv_taps.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include "int8_transpose_x86.h"
#endif

#include "backends/threadpool.h"
#include "int8_internal.h"
#include "ir/alloc.h"

/* Positions per compute task (a multiple of every table's mr). */
#define PQ_I8T_BLOCK 128
/* Output channels this path needs at least (fewer: the packed GEMM path; digits' 8 -> 16 channel
 * 3x3 on 8 x 8 ran 3.06 us per model run with 16 here, 2.85 us packed) */
#define PQ_I8T_MIN_M 64
/* Strides this path takes (more: the packed GEMM path). */
#define PQ_I8T_MAX_STRIDE 8

bool pq_i8_taps_fits(const pq_i8_kernels *k, const pq_i8_conv *g) {
    int64_t align = 4 * (int64_t)(k->kq_align > 1 ? k->kq_align : 1);
    if (!(k->taps && g->group == 1 && g->C > 0 && g->C % align == 0 && g->M >= PQ_I8T_MIN_M &&
          g->N * g->OH * g->OW >= 16 && g->sh <= PQ_I8T_MAX_STRIDE && g->sw <= PQ_I8T_MAX_STRIDE))
        return false;
    if (k->elem == 1) return true;
    /* the widening (i16) kernels are bound by their multiply-adds, not by packing: the garbage
     * columns of every copied row (WQ - OW of WQ) cost more than the packing saved below ~8% of
     * them (bench_int8 models, PIQC_ISA=avx2: resnet18's 14 x 14 and 7 x 7 layers 4-5% slower,
     * 56 x 56 5% faster) */
    int64_t wq = ((g->OW - 1) * g->sw + (g->KW - 1) * g->dw + 1 + g->sw - 1) / g->sw;
    return (double)wq <= 1.08 * (double)g->OW;
}

size_t pq_i8_taps_panels_bytes(const pq_i8_kernels *k, int64_t M, int64_t C, int64_t taps) {
    size_t nr = (size_t)k->nr, np = ((size_t)M + nr - 1) / nr;
    return np * nr * (size_t)(taps * C) * (size_t)k->elem;
}

void pq_i8_taps_pack(const pq_i8_kernels *k, const int8_t *w, int64_t M, int64_t C, int64_t taps,
                     void *dst) {
    /* a unit: kb channels of one tap in 4 bytes (4 s8, or 2 sign-extended i16) */
    size_t nr = (size_t)k->nr, np = ((size_t)M + nr - 1) / nr, kb = (size_t)k->kb;
    size_t cq = (size_t)C / kb, kq = (size_t)taps * cq;
    uint8_t *d = dst;
    memset(d, 0, pq_i8_taps_panels_bytes(k, M, C, taps));
    for (size_t pn = 0; pn < np; pn++)
        for (size_t j = 0; j < nr && pn * nr + j < (size_t)M; j++) {
            const int8_t *wm = w + (pn * nr + j) * (size_t)(C * taps); /* [C][taps] */
            for (size_t t = 0; t < (size_t)taps; t++)
                for (size_t q = 0; q < cq; q++) {
                    uint8_t *o = d + pn * kq * nr * 4 + (t * cq + q) * nr * 4 + j * 4;
                    for (size_t i = 0; i < kb; i++) {
                        int8_t v = wm[(kb * q + i) * (size_t)taps + t];
                        if (k->elem == 2) {
                            int16_t h = v;
                            memcpy(o + 2 * i, &h, 2);
                        } else {
                            o[i] = (uint8_t)v;
                        }
                    }
                }
        }
}

/* The copy's geometry: phase planes [sh][sw] of HQ x WQ positions x C bytes per image. */
typedef struct pq_i8t_geom {
    int64_t HQ, WQ, hu, wu; /* hu x wu: the padded extent the taps reach */
    size_t plane, image;    /* bytes of one phase plane and of one image's copy (with slack) */
    size_t P;               /* positions per image: OH rows of WQ (OW used) */
} pq_i8t_geom;

typedef struct pq_i8t_job {
    const pq_i8_taps_conv *c;
    const pq_i8t_geom *g;
    uint8_t *xs;         /* N copies */
    uint8_t *ypm;        /* [N][P][M] */
    const size_t *toff;  /* KH * KW tap offsets inside an image's copy */
    const size_t *coff;  /* g->wu padded columns: offset of column wp inside a copied row, or
                            SIZE_MAX when no tap reads its phase (1x1 stride 2: odd columns) */
    const bool *rowused; /* sh row phases: whether a tap reads it */
    size_t blocks, mblk, mchunks;
} pq_i8t_job;

/* Input rows (n, ih) [b, e): channel-last into the phase planes (16 channels x 16 columns per
 * register transpose). */
static void pq_i8t_copy_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8t_job *j = ctx;
    const pq_i8_taps_conv *c = j->c;
    const pq_i8_conv *cv = c->g;
    const pq_i8t_geom *g = j->g;
    size_t C = (size_t)cv->C, E = (size_t)c->k->elem;
    for (int64_t t = b; t < e; t++) {
        int64_t n = t / cv->H, ih = t % cv->H, hp = ih + cv->pt;
        if (hp >= g->hu || !j->rowused[hp % cv->sh]) continue;
        uint8_t *xs = j->xs + (size_t)n * g->image;
        size_t rowbase = (size_t)(hp % cv->sh) * (size_t)cv->sw * g->plane +
                         (size_t)(hp / cv->sh) * (size_t)g->WQ * C * E;
        int64_t wend = cv->W; /* input columns whose padded column the taps reach */
        if (wend > g->wu - cv->pl) wend = g->wu - cv->pl;
        for (size_t c0 = 0; c0 < C; c0 += 16) {
            size_t cn = C - c0 < 16 ? C - c0 : 16; /* channels of this block (C % 4 == 0) */
            const uint8_t *src =
                c->x + (((size_t)n * C + c0) * (size_t)cv->H + (size_t)ih) * (size_t)cv->W;
            if (c->k->taps_copy) { /* the table's own (AVX-512: 64 columns per transpose) */
                c->k->taps_copy(src, (size_t)(cv->H * cv->W), cn, wend, j->coff + cv->pl, E,
                                xs + rowbase + c0 * E);
                continue;
            }
            for (int64_t iw0 = 0; iw0 < wend; iw0 += 16) {
                int64_t nw = wend - iw0 < 16 ? wend - iw0 : 16;
#if defined(__SSE2__)
                __m128i v[16];
                for (int i = 0; i < 16; i++) {
                    const uint8_t *r = src + (size_t)i * (size_t)(cv->H * cv->W) + iw0;
                    if ((size_t)i >= cn) {
                        v[i] = _mm_setzero_si128();
                    } else if (nw == 16) {
                        v[i] = _mm_loadu_si128((const __m128i *)r);
                    } else {
                        uint8_t tmp[16] = {0};
                        memcpy(tmp, r, (size_t)nw);
                        v[i] = _mm_loadu_si128((const __m128i *)tmp);
                    }
                }
                pq_i8_tr16x16__sse2(v);
                const size_t *co = j->coff + iw0 + cv->pl;
                for (int64_t w = 0; w < nw; w++) {
                    if (co[w] == SIZE_MAX) continue;
                    uint8_t *d = xs + rowbase + co[w] + c0 * E;
                    if (E == 2) { /* zero-extended to i16 */
                        __m128i z = _mm_setzero_si128();
                        __m128i lo = _mm_unpacklo_epi8(v[w], z), hi = _mm_unpackhi_epi8(v[w], z);
                        if (cn == 16) {
                            _mm_storeu_si128((__m128i *)d, lo);
                            _mm_storeu_si128((__m128i *)(d + 16), hi);
                        } else {
                            uint8_t t32[32];
                            _mm_storeu_si128((__m128i *)t32, lo);
                            _mm_storeu_si128((__m128i *)(t32 + 16), hi);
                            memcpy(d, t32, 2 * cn);
                        }
                    } else if (cn == 16) {
                        _mm_storeu_si128((__m128i *)d, v[w]);
                    } else { /* the last channels only: the next pixel follows */
                        uint8_t t16[16];
                        _mm_storeu_si128((__m128i *)t16, v[w]);
                        memcpy(d, t16, cn);
                    }
                }
                continue;
#else
                const size_t *co = j->coff + iw0 + cv->pl;
                for (size_t i = 0; i < cn; i++)
                    for (int64_t w = 0; w < nw; w++)
                        if (co[w] != SIZE_MAX) {
                            uint8_t b = src[i * (size_t)(cv->H * cv->W) + (size_t)(iw0 + w)];
                            uint8_t *d = xs + rowbase + co[w] + (c0 + i) * E;
                            if (E == 2) {
                                uint16_t h = b;
                                memcpy(d, &h, 2);
                            } else {
                                *d = b;
                            }
                        }
#endif
            }
        }
    }
}

/* Tasks [b, e): ((image * blocks) + block) * mchunks + channel chunk. */
static void pq_i8t_compute_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8t_job *j = ctx;
    pq_i8_amx_forget(); /* the tiles are configured anew inside this task */
    const pq_i8_taps_conv *c = j->c;
    const pq_i8_conv *cv = c->g;
    const pq_i8_kernels *k = c->k;
    size_t M = (size_t)cv->M, C = (size_t)cv->C, nr = (size_t)k->nr, mr = (size_t)k->mr;
    size_t taps = (size_t)(cv->KH * cv->KW), cq = C / (size_t)k->kb, PB = C * (size_t)k->elem;
    size_t pbytes = taps * cq * nr * 4; /* one panel */
    for (int64_t t = b; t < e; t++) {
        size_t mc = (size_t)t % j->mchunks, blk = (size_t)t / j->mchunks % j->blocks;
        size_t n = (size_t)t / j->mchunks / j->blocks;
        size_t p0 = blk * PQ_I8T_BLOCK,
               p1 = p0 + PQ_I8T_BLOCK < j->g->P ? p0 + PQ_I8T_BLOCK : j->g->P;
        size_t m0 = mc * j->mblk, m1 = m0 + j->mblk < M ? m0 + j->mblk : M;
        const uint8_t *xs = j->xs + n * j->g->image;
        uint8_t *yp = j->ypm + n * j->g->P * M;
        /* a panel (all taps of nr channels) stays in cache while every row block uses it */
        for (size_t c0 = m0; c0 < m1; c0 += nr) {
            for (size_t r0 = p0; r0 < p1; r0 += mr) {
                int nm = (int)(p1 - r0 < mr ? p1 - r0 : mr);
                pq_i8_tile_ep ep = {.add_col = c->add + c0,
                                    .m_col = c->m + c0,
                                    .act = c->act,
                                    .zp = c->zp_y,
                                    .y = yp + r0 * M + c0,
                                    .ldy = M,
                                    .nj = (int)(m1 - c0 < nr ? m1 - c0 : nr)};
                k->taps(nm, xs + r0 * PB, PB, j->toff, (int)taps, cq,
                        (const uint8_t *)c->panels + c0 / nr * pbytes, &ep);
            }
        }
    }
}

/* Output rows (n, oh) [b, e): [position][channel] -> NCHW, the garbage columns OW .. WQ left. */
static void pq_i8t_out_task(void *ctx, int64_t b, int64_t e) {
    const pq_i8t_job *j = ctx;
    const pq_i8_taps_conv *c = j->c;
    const pq_i8_conv *cv = c->g;
    size_t M = (size_t)cv->M, OSP = (size_t)(cv->OH * cv->OW);
    for (int64_t t = b; t < e; t++) {
        size_t n = (size_t)(t / cv->OH), oh = (size_t)(t % cv->OH);
        const uint8_t *src = j->ypm + (n * j->g->P + oh * (size_t)j->g->WQ) * M;
        uint8_t *dst = c->y + n * M * OSP + oh * (size_t)cv->OW;
        pq_i8_transpose_k(c->k, src, M, (size_t)cv->OW, M, dst, OSP);
    }
}

enum pq_status pq_i8_taps_conv_run(const pq_i8_taps_conv *c, pq_error *err) {
    const pq_i8_kernels *k = c->k;
    const pq_i8_conv *cv = c->g;
    size_t C = (size_t)cv->C, M = (size_t)cv->M, taps = (size_t)(cv->KH * cv->KW);
    size_t PB = C * (size_t)k->elem; /* bytes per position of the copy */
    pq_i8t_geom g;
    g.hu = (cv->OH - 1) * cv->sh + (cv->KH - 1) * cv->dh + 1;
    g.wu = (cv->OW - 1) * cv->sw + (cv->KW - 1) * cv->dw + 1;
    g.HQ = (g.hu + cv->sh - 1) / cv->sh;
    g.WQ = (g.wu + cv->sw - 1) / cv->sw;
    g.plane = (size_t)(g.HQ * g.WQ) * PB;
    /* garbage positions (columns OW .. WQ) read up to KW * dw / sw + 1 positions past the planes */
    g.image =
        (size_t)(cv->sh * cv->sw) * g.plane + (size_t)(cv->KW * cv->dw / cv->sw + 2) * PB + 64;
    g.image = (g.image + 63) & ~(size_t)63;
    g.P = (size_t)(cv->OH * g.WQ);
    size_t *toff = pq_malloc((taps + (size_t)g.wu) * sizeof(size_t) + 1), *coff = toff + taps;
    void *xs_owned, *y_owned;
    uint8_t *xs = pq_i8_scratch(PQ_I8_TLS_PLANES, (size_t)cv->N * g.image, &xs_owned);
    uint8_t *ypm = pq_i8_scratch(PQ_I8_TLS_OUT, (size_t)cv->N * g.P * M + 64, &y_owned);
    enum pq_status st = PQ_OK;
    if (!toff || !xs || !ypm) {
        st = pq_error_nomem(err, "QLinearConv channel-last copy");
        goto done;
    }
    for (int64_t kh = 0, t = 0; kh < cv->KH; kh++)
        for (int64_t kw = 0; kw < cv->KW; kw++, t++) {
            int64_t hh = kh * cv->dh, ww = kw * cv->dw;
            toff[t] = (size_t)((hh % cv->sh) * cv->sw + ww % cv->sw) * g.plane +
                      ((size_t)(hh / cv->sh * g.WQ) + (size_t)(ww / cv->sw)) * PB;
        }
    /* phases no tap reads are not copied */
    bool rowused[PQ_I8T_MAX_STRIDE] = {false}, colused[PQ_I8T_MAX_STRIDE] = {false};
    for (int64_t kh = 0; kh < cv->KH; kh++)
        rowused[kh * cv->dh % cv->sh] = true;
    for (int64_t kw = 0; kw < cv->KW; kw++)
        colused[kw * cv->dw % cv->sw] = true;
    for (int64_t wp = 0; wp < g.wu; wp++)
        coff[wp] = colused[wp % cv->sw]
                       ? (size_t)(wp % cv->sw) * g.plane + (size_t)(wp / cv->sw) * PB
                       : SIZE_MAX;
    if (k->elem == 2) { /* i16 zero points (the image sizes are multiples of 64 bytes) */
        uint16_t *x16 = (uint16_t *)(void *)xs;
        for (size_t i = 0; i < (size_t)cv->N * g.image / 2; i++)
            x16[i] = (uint16_t)c->zp_x;
    } else {
        memset(xs, c->zp_x, (size_t)cv->N * g.image);
    }
    size_t mr = (size_t)k->mr, nr = (size_t)k->nr;
    pq_i8t_job j = {
        .c = c, .g = &g, .xs = xs, .ypm = ypm, .toff = toff, .coff = coff, .rowused = rowused};
    j.blocks = (g.P + PQ_I8T_BLOCK - 1) / PQ_I8T_BLOCK;
    int th = c->threads > 1 ? c->threads : 1;
    int cth = pq_i8_threads(th, (double)(cv->N * cv->C * cv->H * cv->W), 2.5e5);
    pq_parallel_for(cth, cv->N * cv->H, pq_i8t_copy_task, &j);
    /* few position blocks for the threads: split the output channels too */
    int kth =
        pq_i8_threads(th, (double)M * (double)(C * taps) * (double)(cv->N * cv->OH * cv->OW), 2e6);
    int64_t tile_tasks = cv->N * (int64_t)j.blocks;
    size_t mchunks = pq_i8_channel_chunks(kth, tile_tasks);
    size_t mblk = (M + mchunks - 1) / mchunks;
    mblk = (mblk + nr - 1) / nr * nr;
    j.mblk = mblk;
    j.mchunks = (M + mblk - 1) / mblk;
    (void)mr;
    pq_parallel_for(kth, tile_tasks * (int64_t)j.mchunks, pq_i8t_compute_task, &j);
    int oth = pq_i8_threads(th, (double)(cv->N * cv->OH * cv->OW) * (double)M, 2.5e5);
    pq_parallel_for(oth, cv->N * cv->OH, pq_i8t_out_task, &j);
done:
    pq_free(toff);
    pq_free(xs_owned);
    pq_free(y_owned);
    return st;
}
