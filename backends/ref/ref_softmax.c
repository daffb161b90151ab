/* Reference kernels of Softmax, LogSoftmax and Hardmax over one axis (or, with coerce_2d=1, the
 * legacy form over the flattened dims from axis on). Each row is computed in double. */
#include <math.h>

#include "ref_kernels.h"
#include "ref_util.h"

enum pq_status pq_ref_ew_softmax(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    enum pq_op op = a->node->op;
    int rank = X->rank;
    bool coerce = pq_node_attr_int(a->node, "coerce_2d", 0) != 0;
    int64_t axis = pq_node_attr_int(a->node, "axis", coerce ? 1 : -1);
    if (axis < -rank || axis > rank || (axis == rank && !(coerce || rank == 0)))
        return pq_error_set(a->err, PQ_ERR_INVALID, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    if (axis < 0) axis += rank;
    int64_t outer, n, inner;
    if (rank == 0) {
        outer = n = inner = 1;
    } else if (coerce) {
        outer = 1;
        n = 1;
        for (int i = 0; i < rank; i++) {
            if (i < axis)
                outer *= X->dims[i];
            else
                n *= X->dims[i];
        }
        inner = 1;
    } else {
        pq_ref_split_axis(rank, X->dims, (int)axis, &outer, &n, &inner);
    }
    if (outer * n * inner == 0) return PQ_OK;
    double *row = pq_malloc((size_t)n * sizeof *row);
    if (!row) return pq_error_nomem(a->err, "softmax row");
    enum pq_dtype t = X->dtype;
    bool f32 = t == PQ_DTYPE_F32;
    const float *xf = X->data;
    float *yf = Y->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * n * inner + j;
            double mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t i = 0; i < n; i++) {
                size_t idx = (size_t)(base + i * inner);
                double v = f32 ? (double)xf[idx] : pq_dtype_load(t, X->data, idx);
                row[i] = v;
                if (v > mx) {
                    mx = v;
                    arg = i;
                }
            }
            if (op == PQ_OP_HARDMAX) {
                for (int64_t i = 0; i < n; i++)
                    row[i] = i == arg ? 1.0 : 0.0;
            } else {
                double sum = 0.0;
                for (int64_t i = 0; i < n; i++) {
                    row[i] -= mx;
                    sum += exp(row[i]);
                }
                if (op == PQ_OP_LOG_SOFTMAX) {
                    double ls = log(sum);
                    for (int64_t i = 0; i < n; i++)
                        row[i] -= ls;
                } else {
                    for (int64_t i = 0; i < n; i++)
                        row[i] = exp(row[i]) / sum;
                }
            }
            for (int64_t i = 0; i < n; i++) {
                size_t idx = (size_t)(base + i * inner);
                if (f32)
                    yf[idx] = (float)row[i];
                else
                    pq_dtype_store(t, Y->data, idx, row[i]);
            }
        }
    }
    pq_free(row);
    return PQ_OK;
}
