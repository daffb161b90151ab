/* Reference kernels of the training ops: FakeQuantGrad, the straight-through backward of
 * FakeQuant (SPEC 7), on the forward's weight view, steps and code bounds. */
#include "ref_train.h"

#include <math.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/infer_piqc.h"
#include "ir/infer_train.h"

/* What one group of weights shares: step, code bounds, gradient scale factors. */
typedef struct pq_ste_group {
    float step, lo, hi; /* code bounds -Qn, Qp of the forward */
    double qp;          /* Qp of the LSQ gradient scale */
    double dstep_da;    /* PI_OVER_K[k] (f32) for PiQ, 1 otherwise */
} pq_ste_group;

typedef struct pq_ste_cfg {
    enum pq_ste ste;
    double delta;
    const float *w, *g;
    float *dw;
} pq_ste_cfg;

/* dw of the n weights at base + i * stride (i < n) of one group; returns sum g * c (LSQ's scale
 * gradient before the gradient scale), accumulated in double. */
static double pq_ste_group_run(const pq_ste_cfg *k, const pq_ste_group *sg, int64_t base,
                               int64_t stride, int64_t n) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int64_t at = base + i * stride;
        float v = k->w[at] / sg->step;
        float r = nearbyintf(v);
        bool inside = r >= sg->lo && r <= sg->hi; /* false for NaN */
        float g = k->g[at];
        switch (k->ste) {
        case PQ_STE_STANDARD:
        case PQ_STE_COUNT:
            k->dw[at] = g;
            break;
        case PQ_STE_CLIPPED:
            k->dw[at] = g * (inside ? 1.0f : 0.0f);
            break;
        case PQ_STE_LSQ: {
            k->dw[at] = g * (inside ? 1.0f : 0.0f);
            double c = inside ? (double)r - (double)v
                              : (r < sg->lo ? (double)sg->lo : (r > sg->hi ? (double)sg->hi : 0.0));
            acc += (double)g * c;
            break;
        }
        case PQ_STE_EWGS:
            if (inside) {
                double sg_g = g > 0.0f ? 1.0 : (g < 0.0f ? -1.0 : 0.0);
                k->dw[at] = (float)((double)g * (1.0 + k->delta * sg_g * ((double)v - (double)r)));
            } else {
                k->dw[at] = g * 0.0f;
            }
            break;
        }
    }
    return acc;
}

/* LSQ's scale gradient of a group of n weights from its sum g * c. */
static float pq_ste_dscale(const pq_ste_group *sg, double acc, int64_t n) {
    if (n <= 0) return 0.0f;
    return (float)(acc / sqrt((double)n * sg->qp) * sg->dstep_da);
}

enum pq_status pq_ref_train_fake_quant_grad(const pq_kernel_args *a) {
    if (a->n_in < 3 || !a->in[0] || !a->in[2] || a->n_out < 1 || !a->out[0])
        return pq_error_set(a->err, PQ_ERR_INVALID, "needs w, g and the output dw");
    const pq_tensor *W = a->in[0], *S = a->in[1], *G = a->in[2];
    pq_tensor *DW = a->out[0], *DS = a->n_out > 1 ? a->out[1] : NULL;
    const char *fs = pq_node_attr_string(a->node, "format", "");
    enum pq_qformat f = PQ_QFORMAT_PIQ3;
    bool int8 = !strcmp(fs, "int8");
    if (!int8 && !pq_qformat_from_name(fs, &f))
        return pq_error_set(a->err, PQ_ERR_INVALID, "format '%s' has no FakeQuantGrad", fs);
    pq_ste_cfg k;
    if (!pq_ste_from_name(pq_node_attr_string(a->node, "ste", "standard"), &k.ste))
        return pq_error_set(a->err, PQ_ERR_INVALID, "unknown ste '%s'",
                            pq_node_attr_string(a->node, "ste", ""));
    if (DS && k.ste != PQ_STE_LSQ)
        return pq_error_set(a->err, PQ_ERR_INVALID, "output dscales needs ste = lsq");
    k.delta = (double)pq_node_attr_float(a->node, "ewgs_delta", PQ_EWGS_DELTA_DEFAULT);
    if (W->dtype != PQ_DTYPE_F32 || G->dtype != PQ_DTYPE_F32 || DW->dtype != PQ_DTYPE_F32 ||
        W->rank < 2 || pq_tensor_numel(G) != pq_tensor_numel(W) ||
        pq_tensor_numel(DW) != pq_tensor_numel(W))
        return pq_error_set(a->err, PQ_ERR_INVALID, "w, g and dw must be f32 of w's shape");
    bool tr = pq_node_attr_int(a->node, "transposed", 0) != 0;
    int64_t batch, rows, cols;
    pq_fake_quant_view(W->rank, W->dims, tr, &batch, &rows, &cols);
    int64_t qgroup = int8 ? cols : pq_node_attr_int(a->node, "qgroup", 0);
    if (!int8 && qgroup <= 0)
        return pq_error_set(a->err, PQ_ERR_INVALID, "qgroup = %lld", (long long)qgroup);
    int64_t ng = int8 ? 1 : (cols + qgroup - 1) / qgroup;
    enum pq_dtype want = int8 ? PQ_DTYPE_F32 : PQ_DTYPE_F16;
    int64_t nscales = int8 ? batch * rows : batch * rows * ng;
    if (!S || S->dtype != want || pq_tensor_numel(S) != nscales)
        return pq_error_set(a->err, PQ_ERR_INVALID, "scales must be %lld %s values",
                            (long long)nscales, pq_dtype_name(want));
    if (DS && (DS->dtype != PQ_DTYPE_F32 || pq_tensor_numel(DS) != nscales))
        return pq_error_set(a->err, PQ_ERR_INVALID, "dscales must be %lld f32 values",
                            (long long)nscales);
    k.w = W->data;
    k.g = G->data;
    k.dw = DW->data;
    float *ds = DS ? DS->data : NULL;
    pq_ste_group sg;
    int bits = int8 ? 8 : pq_qformat_bits(f);
    sg.lo = int8 ? -127.0f : -(float)(1 << (bits - 1));
    sg.hi = int8 ? 127.0f : (float)((1 << (bits - 1)) - 1);
    sg.qp = (double)sg.hi;
    sg.dstep_da = int8 ? 1.0 : (double)pq_qformat_step_mult(f);
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t r = 0; r < rows; r++) {
            /* element (r, c) of matrix bi: w[bi][c][r] (transposed) or w[r][c] */
            int64_t base = tr ? bi * rows * cols + r : r * cols, cs = tr ? rows : 1;
            int64_t srow = bi * rows + r;
            for (int64_t gi = 0; gi < ng; gi++) {
                int64_t c0 = gi * qgroup, n = cols - c0 < qgroup ? cols - c0 : qgroup;
                sg.step = int8 ? ((const float *)S->data)[srow]
                               : pq_qstep(f, ((const uint16_t *)S->data)[srow * ng + gi]);
                double acc = pq_ste_group_run(&k, &sg, base + c0 * cs, cs, n);
                if (ds) ds[srow * ng + gi] = pq_ste_dscale(&sg, acc, n);
            }
        }
    return PQ_OK;
}
