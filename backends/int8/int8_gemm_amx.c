/* AMX INT8 GEMM: 32 rows x 32 lanes per micro-kernel call as four 16 x 16 i32 tiles (tdpbusd for
 * u8 rows x s8 panels, tdpbsud for s8 rows x u8 panels), the AVX-512 requantization epilogue. */
#define _GNU_SOURCE /* syscall */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu.h"
#include "int8_gemm.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_INT8__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "int8_requant_avx512.h"

#define PQ_I8X_MR 32
#define PQ_I8X_ARCH_REQ_XCOMP_PERM 0x1023 /* arch_prctl: ask for an extended state component */
#define PQ_I8X_XFEATURE_XTILEDATA 18

static bool pq_i8_amx_ok;
static pthread_once_t pq_i8_amx_once = PTHREAD_ONCE_INIT;

/* CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8; XCR0 bits 17-18 (tile config and data)
 * enabled by the OS; then the per-process permission for the 8 KiB tile data state. */
static void pq_i8_amx_probe(void) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!pq_cpu_amx_allowed()) return; /* PIQC_CPU_MAX below it */
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (!((edx >> 24) & 1u) || !((edx >> 25) & 1u)) return;
    __cpuid(1, eax, ebx, ecx, edx);
    if (!((ecx >> 27) & 1u)) return; /* OSXSAVE: xgetbv usable */
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return;
    pq_i8_amx_ok =
        syscall(SYS_arch_prctl, PQ_I8X_ARCH_REQ_XCOMP_PERM, PQ_I8X_XFEATURE_XTILEDATA) == 0;
}

/* The tile configuration (palette 1): tiles 0-3 accumulate rows 0-15 / 16-31 x lanes 0-15 /
 * 16-31, tiles 4-5 hold rows 0-15 / 16-31 of A (64 bytes = 16 quads each), tiles 6-7 the two
 * 16-lane halves of 16 panel quads. Rows of the tiles of A and C follow the call's row count. */
typedef struct pq_i8x_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} pq_i8x_cfg;

/* The row count this thread's tiles are configured for (0: not configured by these kernels).
 * Valid only inside one task of piqc's drivers: they call pq_i8_amx_forget() first, so code that
 * ran on this thread in between (another library using AMX) cannot leave a stale config. */
static _Thread_local int pq_i8x_rows;

void pq_i8_amx_forget(void) {
    pq_i8x_rows = 0;
}

static void pq_i8x_configure(int mr) {
    if (pq_i8x_rows == mr) return;
    pq_i8x_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    uint8_t r0 = (uint8_t)(mr < 16 ? mr : 16), r1 = (uint8_t)(mr > 16 ? mr - 16 : 16);
    for (int t = 0; t < 8; t++)
        c.colsb[t] = 64;
    c.rows[0] = c.rows[1] = c.rows[4] = r0;
    c.rows[2] = c.rows[3] = c.rows[5] = r1;
    c.rows[6] = c.rows[7] = 16;
    _tile_loadconfig(&c);
    pq_i8x_rows = mr;
}

/* Accumulates rows [0, mr) of A (row r at a + r * lda, kq quads, kq % 16 == 0, contiguous)
 * against one 32-lane panel into tiles 0-3. us: A is u8 and the panel s8, else the reverse. */
static inline __attribute__((always_inline)) void
pq_i8x_accumulate(int us, int mr, size_t kq, const uint8_t *a, size_t lda, const uint8_t *p) {
    pq_i8x_configure(mr);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint8_t *a1 = a + 16 * lda;
    for (size_t q = 0; q < kq; q += 16) {
        _tile_loadd(4, a + q * 4, (long)lda);
        _tile_loadd(6, p + q * 4 * PQ_I8Z_NR, 4 * PQ_I8Z_NR);
        _tile_loadd(7, p + q * 4 * PQ_I8Z_NR + 64, 4 * PQ_I8Z_NR);
        if (us) {
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
        } else {
            _tile_dpbsud(0, 4, 6);
            _tile_dpbsud(1, 4, 7);
        }
        if (mr > 16) {
            _tile_loadd(5, a1 + q * 4, (long)lda);
            if (us) {
                _tile_dpbusd(2, 5, 6);
                _tile_dpbusd(3, 5, 7);
            } else {
                _tile_dpbsud(2, 5, 6);
                _tile_dpbsud(3, 5, 7);
            }
        }
    }
}

/* The accumulators as c[r * 32 + j]. */
static inline void pq_i8x_store(int mr, int32_t *c) {
    _tile_stored(0, c, 4 * PQ_I8Z_NR);
    _tile_stored(1, c + 16, 4 * PQ_I8Z_NR);
    if (mr > 16) {
        _tile_stored(2, c + 16 * PQ_I8Z_NR, 4 * PQ_I8Z_NR);
        _tile_stored(3, c + 16 * PQ_I8Z_NR + 16, 4 * PQ_I8Z_NR);
    }
}

/* The epilogue of rows [0, mr) of c, eight rows at a time on AVX-512 registers. */
static void pq_i8x_finish(int mr, const int32_t *c, const pq_i8_tile_ep *ep) {
    for (int r0 = 0; r0 < mr; r0 += 8) {
        int n = mr - r0 < 8 ? mr - r0 : 8;
        __m512i acc[8][2];
        for (int r = 0; r < n; r++) {
            acc[r][0] = _mm512_load_si512((const void *)(c + (r0 + r) * PQ_I8Z_NR));
            acc[r][1] = _mm512_load_si512((const void *)(c + (r0 + r) * PQ_I8Z_NR + 16));
        }
        pq_i8_tile_ep e = *ep;
        if (e.add_row) e.add_row += r0;
        if (e.m_row) e.m_row += r0;
        e.y += (size_t)r0 * e.ldy;
        if (n == 8) /* the usual case with a constant row count (unrolled, no spills) */
            pq_i8_avx512_finish(8, acc, NULL, &e);
        else
            pq_i8_avx512_finish(n, acc, NULL, &e);
    }
}

/* The implicit-GEMM tile (pq_i8_taps_fn): A rows are output positions read straight from the
 * channel-last input at every tap, 64 channels per tile load. */
static void pq_i8_taps__amx_32x32(int mr, const uint8_t *x, size_t lda, const size_t *toff,
                                  int ntaps, size_t cq, const void *p, const pq_i8_tile_ep *ep) {
    _Alignas(64) int32_t c[PQ_I8X_MR * PQ_I8Z_NR];
    const uint8_t *pp = p;
    pq_i8x_configure(mr);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *a = x + toff[t], *a1 = a + 16 * lda;
        const uint8_t *b = pp + (size_t)t * cq * 4 * PQ_I8Z_NR;
        for (size_t q = 0; q < cq; q += 16) {
            _tile_loadd(4, a + q * 4, (long)lda);
            _tile_loadd(6, b + q * 4 * PQ_I8Z_NR, 4 * PQ_I8Z_NR);
            _tile_loadd(7, b + q * 4 * PQ_I8Z_NR + 64, 4 * PQ_I8Z_NR);
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
            if (mr > 16) {
                _tile_loadd(5, a1 + q * 4, (long)lda);
                _tile_dpbusd(2, 5, 6);
                _tile_dpbusd(3, 5, 7);
            }
        }
    }
    pq_i8x_store(mr, c);
    pq_i8x_finish(mr, c, ep);
}

static void pq_i8_gemm_ukernel__amx_32x32_su(int mr, size_t kq, const void *a, size_t lda,
                                             size_t qs, const void *p, int32_t *c) {
    (void)qs;
    pq_i8x_accumulate(0, mr, kq, a, lda, p);
    pq_i8x_store(mr, c);
}

static void pq_i8_gemm_ukernel__amx_32x32_us(int mr, size_t kq, const void *a, size_t lda,
                                             size_t qs, const void *p, int32_t *c) {
    (void)qs;
    pq_i8x_accumulate(1, mr, kq, a, lda, p);
    pq_i8x_store(mr, c);
}

static void pq_i8_gemm_ukernel_rq__amx_32x32_su(int mr, size_t kq, const void *a, size_t lda,
                                                size_t qs, const void *p, const pq_i8_tile_ep *ep) {
    _Alignas(64) int32_t c[PQ_I8X_MR * PQ_I8Z_NR];
    (void)qs;
    pq_i8x_accumulate(0, mr, kq, a, lda, p);
    pq_i8x_store(mr, c);
    pq_i8x_finish(mr, c, ep);
}

static void pq_i8_gemm_ukernel_rq__amx_32x32_us(int mr, size_t kq, const void *a, size_t lda,
                                                size_t qs, const void *p, const pq_i8_tile_ep *ep) {
    _Alignas(64) int32_t c[PQ_I8X_MR * PQ_I8Z_NR];
    (void)qs;
    pq_i8x_accumulate(1, mr, kq, a, lda, p);
    pq_i8x_store(mr, c);
    pq_i8x_finish(mr, c, ep);
}

/* The AVX-512 VNNI table (packing, depthwise, epilogue) with the tile micro-kernels; filled once
 * after the probe. */
static pq_i8_kernels pq_i8_amx_table;

static void pq_i8_amx_init(void) {
    pq_i8_amx_probe();
    if (!pq_i8_amx_ok) return;
    pq_i8_kernels t = pq_i8_kernels_avx512;
    t.isa = PQ_I8_AMX;
    t.name = "amx";
    t.mr = PQ_I8X_MR;
    t.ukernel[0] = pq_i8_gemm_ukernel__amx_32x32_su;
    t.ukernel[1] = pq_i8_gemm_ukernel__amx_32x32_us;
    t.ukernel_rq[0] = pq_i8_gemm_ukernel_rq__amx_32x32_su;
    t.ukernel_rq[1] = pq_i8_gemm_ukernel_rq__amx_32x32_us;
    t.kq_align = 16;
    t.strided = &pq_i8_kernels_avx512;
    t.taps = pq_i8_taps__amx_32x32;
    pq_i8_amx_table = t;
}

const pq_i8_kernels *pq_i8_kernels_amx(void) {
    pthread_once(&pq_i8_amx_once, pq_i8_amx_init);
    return pq_i8_amx_ok ? &pq_i8_amx_table : NULL;
}

#else

const pq_i8_kernels *pq_i8_kernels_amx(void) {
    return NULL;
}

void pq_i8_amx_forget(void) {}

#endif
