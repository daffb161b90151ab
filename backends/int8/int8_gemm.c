/* INT8 GEMM driver shared by every ISA: kernel selection (PIQC_ISA or the best the CPU has),
 * operand packing into the micro-kernel layouts, zero-point corrections and the tiled loop that
 * runs a micro-kernel then the requantization epilogue. See int8_gemm.h for the formula. */
#include "int8_gemm.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backends/cpu.h"
#include "ir/alloc.h"

/* ---- selection ---- */

static const char *const pq_i8_names[PQ_I8_ISA_COUNT] = {
    [PQ_I8_SCALAR] = "scalar", [PQ_I8_AVX2] = "avx2", [PQ_I8_AVXVNNI] = "avxvnni",
    [PQ_I8_AVX512] = "avx512", [PQ_I8_NEON] = "neon", [PQ_I8_AMX] = "amx",
};

const char *pq_i8_isa_name(enum pq_i8_isa isa) {
    return (unsigned)isa < PQ_I8_ISA_COUNT ? pq_i8_names[isa] : "?";
}

const pq_i8_kernels *pq_i8_kernels_for(enum pq_i8_isa isa) {
    switch (isa) {
    case PQ_I8_SCALAR:
        return &pq_i8_kernels_scalar;
#if defined(__x86_64__)
    case PQ_I8_AVX2:
        return pq_cpu_has_avx2() ? &pq_i8_kernels_avx2 : NULL;
    case PQ_I8_AVXVNNI:
        return pq_i8_kernels_avxvnni.ukernel[0] && pq_cpu_has_avxvnni() ? &pq_i8_kernels_avxvnni
                                                                        : NULL;
    case PQ_I8_AVX512:
        return pq_cpu_has_avx512_vnni() ? &pq_i8_kernels_avx512 : NULL;
    case PQ_I8_AMX:
        return pq_cpu_has_avx512_vnni() ? pq_i8_kernels_amx() : NULL;
#endif
#if defined(__aarch64__)
    case PQ_I8_NEON:
        return pq_i8_kernels_neon(1) ? pq_i8_kernels_neon(1) : pq_i8_kernels_neon(0);
#endif
    default:
        return NULL;
    }
}

static const pq_i8_kernels *pq_i8_selected;
static pthread_once_t pq_i8_once = PTHREAD_ONCE_INIT;

static void pq_i8_select(void) {
    const char *f = pq_isa_forced_exact();
    if (f) {
        for (int i = 0; i < PQ_I8_ISA_COUNT; i++)
            if (strcmp(f, pq_i8_names[i]) == 0 && pq_i8_kernels_for((enum pq_i8_isa)i)) {
                pq_i8_selected = pq_i8_kernels_for((enum pq_i8_isa)i);
                return;
            }
    }
    static const enum pq_i8_isa order[] = {PQ_I8_AMX, PQ_I8_AVX512, PQ_I8_AVXVNNI, PQ_I8_AVX2,
                                           PQ_I8_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((pq_i8_selected = pq_i8_kernels_for(order[i]))) return;
    pq_i8_selected = &pq_i8_kernels_scalar;
}

const pq_i8_kernels *pq_i8_kernels_get(void) {
    pthread_once(&pq_i8_once, pq_i8_select);
    return pq_i8_selected;
}

/* ---- packing ---- */

size_t pq_i8_kpad(const pq_i8_kernels *k, size_t K) {
    size_t step = (size_t)k->kb * (size_t)(k->kq_align > 1 ? k->kq_align : 1);
    return (K + step - 1) / step * step;
}

size_t pq_i8_row_bytes(const pq_i8_kernels *k, size_t K) {
    return pq_i8_kpad(k, K) * (size_t)k->elem;
}

size_t pq_i8_panels_bytes(const pq_i8_kernels *k, size_t K, size_t n) {
    size_t np = (n + (size_t)k->nr - 1) / (size_t)k->nr;
    return np * (size_t)k->nr * pq_i8_kpad(k, K) * (size_t)k->elem;
}

/* One source byte as the kernels see it: u8 (flipped to s8 when the table says so) or s8. */
static inline int pq_i8_val(const pq_i8_kernels *k, uint8_t b, bool is_u8) {
    if (is_u8) return k->flip ? (int)b - 128 : (int)b;
    return (int)(int8_t)b;
}

static inline void pq_i8_put(const pq_i8_kernels *k, void *dst, size_t i, int v) {
    if (k->elem == 2)
        ((int16_t *)dst)[i] = (int16_t)v;
    else
        ((uint8_t *)dst)[i] = (uint8_t)v; /* two's complement byte of an s8, or the u8 itself */
}

void pq_i8_pack_rows(const pq_i8_kernels *k, const uint8_t *a, size_t lda, size_t M, size_t K,
                     bool is_u8, void *dst) {
    size_t kp = pq_i8_kpad(k, K), rb = kp * (size_t)k->elem;
    for (size_t r = 0; r < M; r++) {
        void *row = (uint8_t *)dst + r * rb;
        const uint8_t *src = a + r * lda;
        if (k->elem == 1 && !(is_u8 && k->flip)) {
            memcpy(row, src, K);
        } else if (k->elem == 2) { /* zero- or sign-extended to i16 */
            int16_t *d = row;
            size_t i = 0;
#if defined(__SSE2__)
            __m128i z = _mm_setzero_si128();
            for (; i + 16 <= K && !(is_u8 && k->flip); i += 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(src + i));
                __m128i hi = is_u8 ? z : _mm_cmpgt_epi8(z, v); /* the sign bytes of s8 */
                _mm_storeu_si128((__m128i *)(d + i), _mm_unpacklo_epi8(v, hi));
                _mm_storeu_si128((__m128i *)(d + i + 8), _mm_unpackhi_epi8(v, hi));
            }
#endif
            for (; i < K; i++)
                d[i] = (int16_t)pq_i8_val(k, src[i], is_u8);
        } else {
            for (size_t i = 0; i < K; i++)
                pq_i8_put(k, row, i, pq_i8_val(k, src[i], is_u8));
        }
        memset((uint8_t *)row + K * (size_t)k->elem, 0, (kp - K) * (size_t)k->elem);
    }
}

void pq_i8_pack_panels(const pq_i8_kernels *k, const uint8_t *b, size_t ldb, size_t K, size_t n,
                       bool is_u8, void *dst) {
    size_t nr = (size_t)k->nr, kb = (size_t)k->kb, kq = pq_i8_kpad(k, K) / kb;
    size_t np = (n + nr - 1) / nr, pe = kq * nr * kb; /* elements per panel */
    for (size_t p = 0; p < np; p++) {
        size_t j0 = p * nr, nj = n - j0 < nr ? n - j0 : nr;
        size_t base = p * pe;
        if (nj < nr || kq * kb != K) memset((uint8_t *)dst + base * k->elem, 0, pe * k->elem);
        for (size_t kk = 0; kk < K; kk++) {
            const uint8_t *src = b + kk * ldb + j0;
            size_t o = base + (kk / kb) * nr * kb + kk % kb;
            if (k->elem == 1) {
                uint8_t *d = (uint8_t *)dst + o, x = (is_u8 && k->flip) ? 0x80 : 0;
                for (size_t j = 0; j < nj; j++)
                    d[j * kb] = src[j] ^ x;
            } else {
                int16_t *d = (int16_t *)dst + o;
                if (is_u8)
                    for (size_t j = 0; j < nj; j++)
                        d[j * kb] = (int16_t)src[j];
                else
                    for (size_t j = 0; j < nj; j++)
                        d[j * kb] = (int16_t)(int8_t)src[j];
            }
        }
    }
}

void pq_i8_corr_rows(const int8_t *w, size_t ldw, size_t M, size_t K, int32_t zp, int32_t *corr) {
    for (size_t r = 0; r < M; r++) {
        int32_t s = 0; /* |sum| <= 128 K: exact for any K below 2^24 */
        for (size_t i = 0; i < K; i++)
            s += w[r * ldw + i];
        corr[r] = (int32_t)(0u - (uint32_t)zp * (uint32_t)s);
    }
}

void pq_i8_corr_cols(const int8_t *w, size_t ldw, size_t K, size_t N, int32_t zp, int32_t *corr) {
    for (size_t j = 0; j < N; j++)
        corr[j] = 0;
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < N; j++)
            corr[j] += w[i * ldw + j];
    for (size_t j = 0; j < N; j++)
        corr[j] = (int32_t)(0u - (uint32_t)zp * (uint32_t)corr[j]);
}

/* ---- depthwise ---- */

void pq_i8_dw__portable(const float *pad, const pq_i8_dw_geom *g, const float *w, int32_t *acc) {
    for (int oh = 0; oh < g->OH; oh++) {
        float row[256];
        int32_t *ar = acc + (size_t)oh * (size_t)g->OW;
        for (int ow0 = 0; ow0 < g->OW; ow0 += 256) { /* blocks of 256 outputs */
            int n = g->OW - ow0 < 256 ? g->OW - ow0 : 256;
            for (int i = 0; i < n; i++)
                row[i] = 0.0f;
            for (int kh = 0; kh < g->KH; kh++)
                for (int kw = 0; kw < g->KW; kw++) {
                    const float *src =
                        pad + g->off[kh * g->KW + kw] + (size_t)(oh * g->sh) * g->rs + ow0;
                    float wv = w[kh * g->KW + kw];
                    for (int i = 0; i < n; i++)
                        row[i] += wv * src[i];
                }
            for (int i = 0; i < n; i++)
                ar[ow0 + i] = (int32_t)row[i];
        }
    }
}

void pq_i8_dwpad__portable(const uint8_t *x, int64_t H, int64_t W, int64_t pt, int64_t pl, float zp,
                           size_t hr, const pq_i8_dw_geom *g, float *row, float *pad) {
    size_t sw = (size_t)g->sw, wq = g->rs, len = sw * wq;
    size_t lo = (size_t)pl < len ? (size_t)pl : len;
    size_t hi = (size_t)(pl + W) < len ? (size_t)(pl + W) : len;
    for (size_t r = 0; r < hr; r++) {
        int64_t ih = (int64_t)r - pt;
        /* the padded row (sw * wq values), then its phases */
        float *d0 = sw == 1 ? pad + r * wq : row;
        if (ih < 0 || ih >= H) {
            for (size_t q = 0; q < len; q++)
                d0[q] = 0.0f;
        } else {
            const uint8_t *xr = x + ih * W;
            for (size_t q = 0; q < lo; q++)
                d0[q] = 0.0f;
            for (size_t q = lo; q < hi; q++)
                d0[q] = (float)xr[q - lo] - zp;
            for (size_t q = hi; q < len; q++)
                d0[q] = 0.0f;
        }
        if (sw > 1)
            for (size_t ph = 0; ph < sw; ph++) {
                float *d = pad + ph * g->ps + r * wq;
                for (size_t q = 0; q < wq; q++)
                    d[q] = row[q * sw + ph];
            }
    }
}

/* ---- the tiled loop ---- */

/* Rows [0, M) of A (row r at a + r * lda, quads qs apart) against every panel. */
static void pq_i8_gemm_rows(const pq_i8_kernels *k, bool rows_u8, size_t M, size_t N, size_t kq,
                            const uint8_t *a, size_t lda, size_t qs, const void *p,
                            const pq_i8_epilogue *ep, size_t r_base, uint8_t *y, size_t ldy) {
    if (qs != 4 && k->strided) k = k->strided; /* same panels, micro-kernels that stride */
#if defined(__x86_64__)
    if (k->isa == PQ_I8_AMX) pq_i8_amx_forget(); /* tiles configured anew below */
#endif
    size_t mr = (size_t)k->mr, nr = (size_t)k->nr;
    size_t pbytes = kq * nr * (size_t)k->kb * (size_t)k->elem;
    pq_i8_ukernel_rq_fn ukr = ep->finite ? k->ukernel_rq[rows_u8 ? 1 : 0] : NULL;
    /* one u8 row of consecutive quads: the table's GEMV (independent accumulators over K) */
    bool gemv = ukr && M == 1 && rows_u8 && qs == 4 && k->gemv_rq;
    if (ukr) {
        for (size_t j0 = 0; j0 < N; j0 += nr) {
            size_t nj = N - j0 < nr ? N - j0 : nr;
            const uint8_t *pp = (const uint8_t *)p + (j0 / nr) * pbytes;
            for (size_t r0 = 0; r0 < M; r0 += mr) {
                size_t nm = M - r0 < mr ? M - r0 : mr, rg = r_base + r0;
                pq_i8_tile_ep t = {.add_row = ep->add_row ? ep->add_row + rg : NULL,
                                   .add_col = ep->add_col ? ep->add_col + j0 : NULL,
                                   .m_row = ep->m_row ? ep->m_row + rg : NULL,
                                   .m_col = ep->m_row ? NULL : ep->m_col + j0,
                                   .act = ep->act,
                                   .zp = ep->zp_y,
                                   .y = y + r0 * ldy + j0,
                                   .ldy = ldy,
                                   .nj = (int)nj};
                if (gemv)
                    k->gemv_rq(kq, a, pp, &t);
                else
                    ukr((int)nm, kq, a + r0 * lda, lda, qs, pp, &t);
            }
        }
        return;
    }
    pq_i8_ukernel_fn uk = k->ukernel[rows_u8 ? 1 : 0];
    pq_i8_requant_fn rq = ep->finite ? k->requant : pq_i8_requant__scalar;
    int32_t c[PQ_I8_MAX_MR * 64];
    for (size_t j0 = 0; j0 < N; j0 += nr) {
        size_t nj = N - j0 < nr ? N - j0 : nr;
        const uint8_t *pp = (const uint8_t *)p + (j0 / nr) * pbytes;
        for (size_t r0 = 0; r0 < M; r0 += mr) {
            size_t nm = M - r0 < mr ? M - r0 : mr;
            uk((int)nm, kq, a + r0 * lda, lda, qs, pp, c);
            for (size_t r = 0; r < nm; r++) {
                int32_t *cr = c + r * nr;
                size_t row = r_base + r0 + r;
                if (ep->add_col)
                    for (size_t j = 0; j < nj; j++)
                        cr[j] = (int32_t)((uint32_t)cr[j] + (uint32_t)ep->add_col[j0 + j]);
                rq(cr, nj, ep->add_row ? ep->add_row[row] : 0, ep->m_row ? ep->m_row[row] : 0.0f,
                   ep->m_row ? NULL : ep->m_col + j0, ep->act, ep->zp_y, y + (r0 + r) * ldy + j0);
            }
        }
    }
}

void pq_i8_gemm_packed(const pq_i8_kernels *k, bool rows_u8, size_t M, size_t N, size_t K,
                       const void *a, const void *p, const pq_i8_epilogue *ep, uint8_t *y,
                       size_t ldy) {
    size_t kq = pq_i8_kpad(k, K) / (size_t)k->kb;
    pq_i8_gemm_rows(k, rows_u8, M, N, kq, a, pq_i8_row_bytes(k, K), 4, p, ep, 0, y, ldy);
}

void pq_i8_gemm_panel_rows(const pq_i8_kernels *k, bool rows_u8, size_t M, size_t N, size_t K,
                           const void *a, const void *p, const pq_i8_epilogue *ep, uint8_t *y,
                           size_t ldy) {
    size_t nr = (size_t)k->nr, kq = pq_i8_kpad(k, K) / (size_t)k->kb;
    size_t pbytes = kq * nr * 4;            /* kb * elem = 4 bytes per lane and quad */
    for (size_t r0 = 0; r0 < M; r0 += nr) { /* one panel of A at a time */
        size_t nm = M - r0 < nr ? M - r0 : nr;
        pq_i8_gemm_rows(k, rows_u8, nm, N, kq, (const uint8_t *)a + (r0 / nr) * pbytes, 4, 4 * nr,
                        p, ep, r0, y + r0 * ldy, ldy);
    }
}

enum pq_status pq_i8_gemm_u8s8(const pq_i8_kernels *k, size_t M, size_t N, size_t K,
                               const uint8_t *A, size_t lda, int32_t zp_a, const int8_t *B,
                               size_t ldb, const float *m_col, int32_t zp_y, uint8_t *y, size_t ldy,
                               pq_error *err) {
    void *pa = pq_malloc_aligned(M * pq_i8_row_bytes(k, K) + 64);
    void *pb = pq_malloc_aligned(pq_i8_panels_bytes(k, K, N) + 64);
    int32_t *corr = pq_malloc((N + 1) * sizeof(int32_t));
    if (!pa || !pb || !corr) {
        pq_free(pa);
        pq_free(pb);
        pq_free(corr);
        return err ? pq_error_nomem(err, "int8 gemm buffers") : PQ_ERR_NOMEM;
    }
    pq_i8_pack_rows(k, A, lda, M, K, true, pa);
    pq_i8_pack_panels(k, (const uint8_t *)B, ldb, K, N, false, pb);
    pq_i8_corr_cols(B, ldb, K, N, pq_i8_zp_eff(k, zp_a), corr);
    bool finite = true;
    for (size_t j = 0; j < N; j++)
        finite = finite && isfinite(m_col[j]);
    pq_i8_epilogue ep = {.add_col = corr, .m_col = m_col, .zp_y = zp_y, .finite = finite};
    pq_i8_gemm_packed(k, true, M, N, K, pa, pb, &ep, y, ldy);
    pq_free(pa);
    pq_free(pb);
    pq_free(corr);
    return PQ_OK;
}
