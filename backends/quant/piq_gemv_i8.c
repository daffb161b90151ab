/* Integer-activation PiQ GEMV: activation quantization (shared by every ISA), the scalar integer
 * reference kernel that defines the results (piq_gemv_i8.h), and the run-time ISA choice. */
#include "backends/quant/piq_gemv_i8.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/quant/quant.h"

/* ---- activation quantization ---- */

int pq_piq_i8_supported(enum pq_qformat f, int64_t cols, int64_t group) {
    if ((unsigned)f >= PQ_QFORMAT_COUNT || cols <= 0 || cols > PQ_PIQ_I8_MAX_COLS || group <= 0)
        return 0;
    int64_t n = group < cols ? group : cols;
    return n <= PQ_PIQ_I8_MAX_GROUP;
}

static void pq_piq_i8_geometry(int64_t cols, int64_t group, int64_t *nblocks, int64_t *stride) {
    int64_t n = group < cols ? group : cols;
    *nblocks = (cols + group - 1) / group;
    *stride = (n + PQ_PIQ_I8_XALIGN - 1) / PQ_PIQ_I8_XALIGN * PQ_PIQ_I8_XALIGN;
}

size_t pq_piq_i8_act_bytes(int64_t cols, int64_t group) {
    int64_t nb, st;
    pq_piq_i8_geometry(cols, group, &nb, &st);
    return (size_t)(nb * st) + (size_t)nb * (sizeof(float) + sizeof(int32_t)) + PQ_PIQ_I8_XALIGN;
}

void pq_piq_i8_act_init(pq_piq_i8_act *a, int64_t cols, int64_t group, void *buf) {
    a->cols = cols;
    a->group = group;
    pq_piq_i8_geometry(cols, group, &a->nblocks, &a->stride);
    uintptr_t p = (uintptr_t)buf;
    p = (p + PQ_PIQ_I8_XALIGN - 1) & ~(uintptr_t)(PQ_PIQ_I8_XALIGN - 1);
    a->q = (int8_t *)p;
    a->scale = (float *)(p + (size_t)(a->nblocks * a->stride));
    a->sum = (int32_t *)(a->scale + a->nblocks);
}

void pq_piq_i8_quantize(const float *x, pq_piq_i8_act *a) {
    for (int64_t g = 0; g < a->nblocks; g++) {
        int64_t c0 = g * a->group;
        int64_t n = a->cols - c0 < a->group ? a->cols - c0 : a->group;
        const float *xg = x + c0;
        int8_t *q = a->q + g * a->stride;
        memset(q, 0, (size_t)a->stride);
        uint32_t mbits = 0; /* max of |x| as bits: exact, and NaN/inf compare above every finite */
        for (int64_t j = 0; j < n; j++) {
            uint32_t b;
            memcpy(&b, &xg[j], 4);
            b &= 0x7FFFFFFFu;
            if (b > mbits) mbits = b;
        }
        a->sum[g] = 0;
        if (mbits >= 0x7F800000u) {
            a->scale[g] = NAN;
            continue;
        }
        float amax;
        memcpy(&amax, &mbits, 4);
        float s = amax / 127.0f;
        if (s == 0.0f) {
            a->scale[g] = 0.0f;
            continue;
        }
        a->scale[g] = s;
        /* rne(v) as (v + 1.5 * 2^23) - 1.5 * 2^23: exact for |v| < 2^22, and here |v| <= 127 up
         * to the rounding of s (< 2^8 even for a subnormal s); then the clamp, on integers. The
         * same integer as clamp(nearbyintf(v)), without a libm call, so the loop vectorizes. */
        const float magic = 12582912.0f;
        int32_t sum = 0;
        for (int64_t j = 0; j < n; j++) {
            float v = xg[j] / s;
            float r = v + magic;
            r = r - magic;
            int32_t k = (int32_t)r;
            k = k < -127 ? -127 : (k > 127 ? 127 : k);
            q[j] = (int8_t)k;
            sum += k;
        }
        a->sum[g] = sum;
    }
}

/* ---- scalar reference ---- */

void pq_piq_gemv_i8_ukernel__scalar(enum pq_qformat f, const uint8_t *w, int64_t rows, int64_t cols,
                                    int64_t group, const pq_piq_i8_act *a, float *y) {
    if (rows <= 0 || cols <= 0 || group <= 0) return;
    int bits = pq_qformat_bits(f);
    int off = 1 << (bits - 1);
    size_t row_bytes = pq_packed_row_bytes(f, cols, group);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *p = w + (size_t)r * row_bytes;
        float acc = 0.0f;
        for (int64_t g = 0; g < a->nblocks; g++) {
            int64_t n = cols - g * group < group ? cols - g * group : group;
            uint16_t sw = (uint16_t)(p[0] | p[1] << 8);
            const uint8_t *c = p + 2;
            const int8_t *xq = a->q + g * a->stride;
            int32_t d = 0;
            for (int64_t j = 0; j < n; j++) {
                int64_t bit = j * bits;
                uint32_t word = c[bit >> 3];
                if ((bit & 7) + bits > 8) word |= (uint32_t)c[(bit >> 3) + 1] << 8;
                int q = (int)((word >> (bit & 7)) & (uint32_t)(2 * off - 1)) - off;
                d += q * xq[j];
            }
            float step = pq_qstep(f, sw);
            float cg = step * a->scale[g];
            float t = (float)d * cg;
            acc = acc + t;
            p += 2 + pq_packed_code_bytes(f, n);
        }
        y[r] = acc;
    }
}

const pq_piq_i8_kernels pq_piq_i8_kernels_scalar = {
    .isa = "scalar",
    .gemv = pq_piq_gemv_i8_ukernel__scalar,
};

/* Tables of ISAs this architecture does not compile (the x86 files define the x86 ones). */
#if !defined(__x86_64__)
const pq_piq_i8_kernels pq_piq_i8_kernels_avx2 = {.isa = "avx2"};
const pq_piq_i8_kernels pq_piq_i8_kernels_avxvnni = {.isa = "avxvnni"};
const pq_piq_i8_kernels pq_piq_i8_kernels_avx512 = {.isa = "avx512"};
#endif

/* ---- selection ---- */

const pq_piq_i8_kernels *pq_piq_i8_kernels_for(const char *isa) {
    if (!isa) return NULL;
    const pq_piq_i8_kernels *k = NULL;
    int ok = 0;
    if (!strcmp(isa, "scalar")) return &pq_piq_i8_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(isa, "avx2")) {
        k = &pq_piq_i8_kernels_avx2;
        ok = pq_cpu_has_avx2();
    } else if (!strcmp(isa, "avxvnni")) {
        k = &pq_piq_i8_kernels_avxvnni;
        ok = pq_cpu_has_avxvnni();
    } else if (!strcmp(isa, "avx512")) {
        k = &pq_piq_i8_kernels_avx512;
        ok = pq_cpu_has_avx512_vnni() && pq_cpu_has_avx512_vbmi();
    }
#endif
#if defined(__aarch64__)
    if (!strcmp(isa, "neon")) {
        k = &pq_piq_i8_kernels_neon;
        ok = 1;
    }
#endif
    return ok && k && k->gemv ? k : NULL;
}

static const pq_piq_i8_kernels *pq_piq_i8_chosen;
static pthread_once_t pq_piq_i8_once = PTHREAD_ONCE_INIT;

static void pq_piq_i8_select(void) {
    const char *forced = pq_isa_forced();
    if (forced && (pq_piq_i8_chosen = pq_piq_i8_kernels_for(forced))) return;
    static const char *const order[] = {"avx512", "avxvnni", "avx2", "neon"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((pq_piq_i8_chosen = pq_piq_i8_kernels_for(order[i]))) return;
    pq_piq_i8_chosen = &pq_piq_i8_kernels_scalar;
}

const pq_piq_i8_kernels *pq_piq_i8_kernels_get(void) {
    pthread_once(&pq_piq_i8_once, pq_piq_i8_select);
    return pq_piq_i8_chosen;
}
