/* Drivers of the integer-activation path of the packed PiQ/Q ops (act_quant = "int8"):
 * activation-row quantization, per-row GEMVs, threading over weight rows (packed_piq_i8.h). */
#include "backends/packed_piq_i8.h"

#include <string.h>

#include "backends/cpu.h"
#include "backends/piqc_ops.h"
#include "ir/ir.h"

enum pq_status pq_packed_act_quant(const pq_node *n, bool *int8, pq_error *err) {
    const char *aq = pq_node_attr_string(n, "act_quant", "f32");
    *int8 = false;
    if (!strcmp(aq, "f32")) return PQ_OK;
    if (!strcmp(aq, "int8")) {
        *int8 = true;
        return PQ_OK;
    }
    return pq_error_set(err, PQ_ERR_INVALID, "attribute act_quant = '%s' must be f32 or int8", aq);
}

const pq_piq_i8_kernels *pq_packed_i8_kernels(const char *isa) {
    const char *forced = pq_isa_forced();
    const pq_piq_i8_kernels *k = forced ? pq_piq_i8_kernels_for(forced) : NULL;
    if (!k) k = pq_piq_i8_kernels_for(isa);
    return k ? k : pq_piq_i8_kernels_get();
}

void pq_packed_i8_rows(const pq_piq_i8_kernels *k, enum pq_qformat f, const uint8_t *w,
                       int64_t rows, int64_t cols, int64_t group, const float *x, int64_t M,
                       float *y, void *abuf) {
    pq_piq_i8_act act;
    pq_piq_i8_act_init(&act, cols, group, abuf);
    for (int64_t m = 0; m < M; m++) {
        pq_piq_i8_quantize(x + m * cols, &act);
        k->gemv(f, w, rows, cols, group, &act, y + m * rows);
    }
}

/* One block of activation rows, already quantized (acts[m] for x row x0 + m * cols). */
typedef struct pq_i8_job {
    const pq_piq_i8_kernels *k;
    enum pq_qformat f;
    const uint8_t *w;
    size_t row_bytes;
    int64_t cols, group;
    const float *x0;
    const pq_piq_i8_act *acts;
} pq_i8_job;

/* pq_rows_apply_fn: weight rows [r0, r0 + n) times the M activation rows starting at x. */
static void pq_i8_apply(const void *vj, int64_t r0, int64_t n, const float *x, int64_t M, float *y,
                        float *panel) {
    const pq_i8_job *j = vj;
    (void)panel;
    int64_t m0 = (x - j->x0) / j->cols;
    for (int64_t m = 0; m < M; m++)
        j->k->gemv(j->f, j->w + (size_t)r0 * j->row_bytes, n, j->cols, j->group, &j->acts[m0 + m],
                   y + m * n);
}

enum pq_status pq_packed_i8_matmul(const pq_piq_i8_kernels *k, enum pq_qformat f, const uint8_t *w,
                                   int64_t rows, int64_t cols, int64_t group, const float *x,
                                   int64_t M, const float *bias, float *y, int n_threads,
                                   const pq_node *node, pq_error *err) {
    int64_t mb = M < PQ_PAR_MBLOCK ? M : PQ_PAR_MBLOCK;
    size_t ab = pq_piq_i8_act_bytes(cols, group);
    uint8_t *buf = pq_malloc(ab * (size_t)mb);
    pq_piq_i8_act *acts = pq_malloc(sizeof *acts * (size_t)mb);
    enum pq_status st = PQ_OK;
    if (!buf || !acts) {
        st = pq_error_nomem(err, "quantized activations");
        goto done;
    }
    for (int64_t m0 = 0; m0 < M && st == PQ_OK; m0 += mb) {
        int64_t n = M - m0 < mb ? M - m0 : mb;
        const float *xb = x + m0 * cols;
        for (int64_t m = 0; m < n; m++) {
            pq_piq_i8_act_init(&acts[m], cols, group, buf + ab * (size_t)m);
            pq_piq_i8_quantize(xb + m * cols, &acts[m]);
        }
        pq_i8_job j = {k, f, w, pq_packed_row_bytes(f, cols, group), cols, group, xb, acts};
        st = pq_packed_rows_run(n_threads, pq_i8_apply, &j, rows, cols, xb, n, bias, 0,
                                y + m0 * rows, node, err);
    }
done:
    pq_free(buf);
    pq_free(acts);
    return st;
}
