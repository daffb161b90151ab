/* AVX-VNNI integer-activation PiQ GEMV: the AVX2 byte decode (piq_gemv_i8_avx2_impl.h) with
 * 256-bit vpdpbusd (VEX) accumulating straight into i32. Built with -mavxvnni when the compiler
 * knows it (the _avxvnni file-name rule); otherwise the table is empty and never selected. */
#if defined(__AVXVNNI__)
#define PQ_I8Y_VNNI 1
#include "backends/x86/piq_gemv_i8_avx2_impl.h"

static void pq_piq_gemv_i8_ukernel__avxvnni(enum pq_qformat f, const uint8_t *w, int64_t rows,
                                            int64_t cols, int64_t group, const pq_piq_i8_act *a,
                                            float *y) {
    pq_i8y_gemv(f, w, rows, cols, group, a, y);
}

const pq_piq_i8_kernels pq_piq_i8_kernels_avxvnni = {
    .isa = "avxvnni",
    .gemv = pq_piq_gemv_i8_ukernel__avxvnni,
};
#else
#include "backends/quant/piq_gemv_i8.h"

const pq_piq_i8_kernels pq_piq_i8_kernels_avxvnni = {.isa = "avxvnni"};
#endif
