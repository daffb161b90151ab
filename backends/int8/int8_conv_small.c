/* Small convolutions (int8_conv_small.h): the gather pattern of a geometry, the portable gather,
 * the packer choice per table and the driver (gather, then one GEMM per image). */
#include "int8_conv_small.h"

#include <stdatomic.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/threadpool.h"
#include "int8_conv_plan.h"
#include "ir/alloc.h"

static atomic_long pq_i8_small_count;

long pq_i8_small_taken(void) {
    return atomic_load(&pq_i8_small_count);
}

pq_i8_small_pack_fn pq_i8_small_packer(const pq_i8_kernels *k) {
    if (k->elem != 1 || k->kb != 4 || k->flip || k->nr % 16) return NULL;
#if defined(__x86_64__)
    if ((k->isa == PQ_I8_AVX512 || k->isa == PQ_I8_AMX) && pq_cpu_has_avx512_vbmi())
        return pq_i8_small_pack__avx512vbmi;
#endif
    return NULL;
}

/* Stores of the pattern: 16 lanes of every quad of every panel. */
static size_t pq_i8_small_stores(const pq_i8_kernels *k, const pq_i8_conv *g) {
    size_t nr = (size_t)k->nr, osp = (size_t)(g->OH * g->OW);
    size_t kq = pq_i8_kpad(k, (size_t)(g->Cg * g->KH * g->KW)) / 4;
    return (osp + nr - 1) / nr * kq * (nr / 16);
}

bool pq_i8_small_fits(const pq_i8_kernels *k, const pq_i8_conv *g) {
    if (!pq_i8_small_packer(k)) return false;
    if (g->group != 1 || g->H * g->W > 64 || g->H * g->W < 1) return false;
    if (pq_i8_small_stores(k, g) > PQ_I8_SMALL_MAX_STORES) return false;
    int64_t KK = g->KH * g->KW, CK = g->Cg * KK;
    if (KK >= 3) return true; /* four consecutive taps then span at most two channels */
    for (int64_t t = 0; t < CK; t += 4) {
        int64_t last = t + 3 < CK ? t + 3 : CK - 1;
        if (last / KK - t / KK > 1) return false;
    }
    return true;
}

pq_i8_small *pq_i8_small_make(const pq_i8_kernels *k, const pq_i8_conv *g) {
    pq_i8_small *s = pq_calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t nr = (size_t)k->nr, osp = (size_t)(g->OH * g->OW), hw = (size_t)(g->H * g->W);
    size_t KK = (size_t)(g->KH * g->KW), CK = (size_t)g->Cg * KK;
    size_t kq = pq_i8_kpad(k, CK) / 4, np = (osp + nr - 1) / nr;
    s->g = *g;
    s->nr = k->nr;
    s->kq_align = k->kq_align;
    s->CK = CK;
    s->n = pq_i8_small_stores(k, g);
    s->panel_bytes = np * kq * nr * 4;
    s->e = pq_malloc_aligned(s->n * sizeof *s->e + 1);
    if (!s->e) {
        pq_free(s);
        return NULL;
    }
    memset(s->e, 0, s->n * sizeof *s->e);
    pq_i8_small_ent *e = s->e;
    for (size_t p = 0; p < np; p++)
        for (size_t q = 0; q < kq; q++)
            for (size_t h = 0; h < nr / 16; h++, e++) {
                e->dst = (uint32_t)((p * kq + q) * nr * 4 + h * 64);
                size_t c0 = 4 * q < CK ? 4 * q / KK : 0;
                e->oa = (uint32_t)(c0 * hw);
                e->ob = (uint32_t)((c0 + 1 < (size_t)g->Cg ? c0 + 1 : c0) * hw);
                for (size_t l = 0; l < 16; l++) {
                    size_t pos = p * nr + h * 16 + l;
                    if (pos >= osp) continue;
                    int64_t oh = (int64_t)(pos / (size_t)g->OW),
                            ow = (int64_t)(pos % (size_t)g->OW);
                    for (size_t t = 0; t < 4; t++) {
                        size_t kk = 4 * q + t, b = 4 * l + t;
                        if (kk >= CK) continue;
                        size_t c = kk / KK, r = kk % KK;
                        int64_t ih = oh * g->sh - g->pt + (int64_t)(r / (size_t)g->KW) * g->dh;
                        int64_t iw = ow * g->sw - g->pl + (int64_t)(r % (size_t)g->KW) * g->dw;
                        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) {
                            e->kpad |= 1ull << b;
                            continue;
                        }
                        e->idx[b] = (uint8_t)((c == c0 ? 0 : 64) + ih * g->W + iw);
                        e->kval |= 1ull << b;
                    }
                }
            }
    return s;
}

void pq_i8_small_free(pq_i8_small *s) {
    if (!s) return;
    pq_free(s->e);
    pq_free(s);
}

bool pq_i8_small_same(const pq_i8_small *s, const pq_i8_kernels *k, const pq_i8_conv *g) {
    return s && s->nr == k->nr && s->kq_align == k->kq_align && memcmp(&s->g, g, sizeof *g) == 0;
}

void pq_i8_small_pack__portable(const pq_i8_small *s, const uint8_t *x, uint8_t zp, uint8_t *dst) {
    for (size_t i = 0; i < s->n; i++) {
        const pq_i8_small_ent *e = &s->e[i];
        uint8_t *o = dst + e->dst;
        for (size_t b = 0; b < 64; b++) {
            uint8_t v = 0;
            if (e->kval >> b & 1)
                v = e->idx[b] < 64 ? x[e->oa + e->idx[b]] : x[e->ob + e->idx[b] - 64];
            else if (e->kpad >> b & 1)
                v = zp;
            o[b] = v;
        }
    }
}

/* Images [b, e), one gather and one GEMM each. */
typedef struct pq_i8_small_job {
    const pq_i8_small_conv *c;
    pq_i8_small_pack_fn pack;
    atomic_int failed;
} pq_i8_small_job;

static void pq_i8_small_task(void *ctx, int64_t b, int64_t e) {
    pq_i8_small_job *j = ctx;
    const pq_i8_small_conv *c = j->c;
    const pq_i8_small *s = c->s;
    const pq_i8_conv *g = &s->g;
    void *owned;
    uint8_t *pan = pq_i8_scratch(PQ_I8_TLS_TASK, s->panel_bytes + 64, &owned);
    if (!pan) {
        atomic_store(&j->failed, 1);
        return;
    }
    size_t osp = (size_t)(g->OH * g->OW), xb = (size_t)(g->C * g->H * g->W);
    pq_i8_epilogue ep = {
        .add_row = c->add, .m_row = c->m, .act = c->act, .zp_y = c->zp_y, .finite = c->finite};
    for (int64_t n = b; n < e; n++) {
        j->pack(s, c->x + (size_t)n * xb, (uint8_t)c->zp_x, pan);
        pq_i8_gemm_packed(c->k, false, (size_t)g->M, osp, s->CK, c->w, pan, &ep,
                          c->y + (size_t)n * (size_t)g->M * osp, osp);
    }
    pq_free(owned);
}

enum pq_status pq_i8_small_conv_run(const pq_i8_small_conv *c, int n_threads) {
    const pq_i8_conv *g = &c->s->g;
    pq_i8_small_job j = {.c = c, .pack = pq_i8_small_packer(c->k)};
    atomic_init(&j.failed, 0);
    atomic_fetch_add(&pq_i8_small_count, 1);
    double work = (double)g->M * (double)c->s->CK * (double)(g->OH * g->OW) * (double)g->N;
    int th = g->N > 1 ? pq_i8_threads(n_threads, work, 2e6) : 1;
    if (th == 1)
        pq_i8_small_task(&j, 0, g->N);
    else
        pq_parallel_for(th, g->N, pq_i8_small_task, &j);
    return atomic_load(&j.failed) ? PQ_ERR_NOMEM : PQ_OK;
}

enum pq_status pq_i8_small_conv_node(struct pq_i8_conv_plan *plan, const pq_i8_conv *g,
                                     pq_i8_small_conv *c, int n_threads, pq_error *err) {
    pq_i8_small *s = plan ? plan->small : NULL, *owned = NULL;
    if (!pq_i8_small_same(s, c->k, g)) {
        s = pq_i8_small_make(c->k, g);
        if (!s) return pq_error_nomem(err, "QLinearConv small-layer pattern");
        if (plan) {
            pq_i8_small_free(plan->small);
            plan->small = s;
        } else {
            owned = s;
        }
    }
    c->s = s;
    enum pq_status st = pq_i8_small_conv_run(c, n_threads);
    if (st != PQ_OK) pq_error_nomem(err, "QLinearConv small-layer panels");
    pq_i8_small_free(owned);
    return st;
}
