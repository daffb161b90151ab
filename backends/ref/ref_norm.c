/* Reference normalisation kernels: BatchNormalization (inference form), LayerNormalization
 * (optional Mean / InvStdDev outputs), InstanceNormalization and LpNormalization. Statistics
 * are accumulated in double. */
#include <math.h>
#include <string.h>

#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

enum pq_status pq_ref_batch_normalization(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 5, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    double eps = pq_node_attr_float(a->node, "epsilon", 1e-5f);
    int64_t N = X->dims[0], C = X->dims[1], SP = 1;
    for (int i = 2; i < X->rank; i++)
        SP *= X->dims[i];
    const float *px, *p[4] = {0};
    float *ox = NULL, *o[4] = {0}, *py, *oy = NULL;
    double *ab = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    for (int i = 0; i < 4; i++)
        PQ_TRY_GOTO(st, pq_ref_f32_view(a->in[1 + i], &p[i], &o[i], a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    ab = pq_malloc((size_t)(2 * C) * sizeof(double));
    if (!ab) {
        st = pq_error_nomem(a->err, "batchnorm coefficients");
        goto done;
    }
    for (int64_t c = 0; c < C; c++) {
        double s = p[0][c] / sqrt((double)p[3][c] + eps);
        ab[2 * c] = s;
        ab[2 * c + 1] = p[1][c] - p[2][c] * s;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *xc = px + (n * C + c) * SP;
            float *yc = py + (n * C + c) * SP;
            float s = (float)ab[2 * c], b = (float)ab[2 * c + 1];
            for (int64_t i = 0; i < SP; i++)
                yc[i] = xc[i] * s + b;
        }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    /* optional running mean / var outputs: unchanged statistics at inference */
    for (uint32_t i = 1; i < a->n_out && i < 3; i++)
        if (a->out[i] && a->out[i]->nbytes == a->in[2 + i]->nbytes)
            memcpy(a->out[i]->data, a->in[2 + i]->data, a->out[i]->nbytes);
    st = PQ_OK;
done:
    pq_free(ab);
    pq_free(ox);
    for (int i = 0; i < 4; i++)
        pq_free(o[i]);
    pq_free(oy);
    return st;
}

/* dst[j] (j over the nt tail dims of x) = src broadcast unidirectionally to those dims. */
static void pq_norm_expand(const float *src, const pq_tensor *s, const int64_t *tail, int nt,
                           float *dst) {
    int64_t D = 1;
    for (int i = 0; i < nt; i++)
        D *= tail[i];
    int64_t sstr[PQ_MAX_RANK];
    int64_t acc = 1;
    for (int i = nt - 1; i >= 0; i--) {
        int si = i - (nt - s->rank);
        int64_t sd = si >= 0 ? s->dims[si] : 1;
        sstr[i] = sd == 1 ? 0 : acc;
        acc *= sd;
    }
    for (int64_t j = 0; j < D; j++) {
        int64_t r = j, off = 0;
        for (int i = nt - 1; i >= 0; i--) {
            off += (r % tail[i]) * sstr[i];
            r /= tail[i];
        }
        dst[j] = src[off];
    }
}

enum pq_status pq_ref_layer_normalization(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    PQ_TRY(pq_ref_check_outputs(a));
    const pq_tensor *X = a->in[0], *S = a->in[1];
    const pq_tensor *B = a->n_in > 2 ? a->in[2] : NULL;
    pq_tensor *Y = a->out[0];
    pq_tensor *Mo = a->n_out > 1 ? a->out[1] : NULL, *Io = a->n_out > 2 ? a->out[2] : NULL;
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (axis < 0) axis += X->rank;
    double eps = pq_node_attr_float(a->node, "epsilon", 1e-5f);
    int64_t outer = 1, D = 1;
    for (int i = 0; i < axis; i++)
        outer *= X->dims[i];
    for (int i = (int)axis; i < X->rank; i++)
        D *= X->dims[i];
    const float *px, *ps, *pb = NULL;
    float *ox = NULL, *os = NULL, *ob = NULL, *py, *oy = NULL, *sc = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(S, &ps, &os, a->err), done);
    if (B) PQ_TRY_GOTO(st, pq_ref_f32_view(B, &pb, &ob, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    sc = pq_malloc((size_t)(2 * D) * sizeof(float));
    if (!sc) {
        st = pq_error_nomem(a->err, "layernorm scale");
        goto done;
    }
    int nt = X->rank - (int)axis;
    pq_norm_expand(ps, S, X->dims + axis, nt, sc);
    if (pb)
        pq_norm_expand(pb, B, X->dims + axis, nt, sc + D);
    else
        memset(sc + D, 0, (size_t)D * sizeof(float));
    for (int64_t o = 0; o < outer; o++) {
        const float *x = px + o * D;
        float *y = py + o * D;
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < D; j++)
            mean += x[j];
        mean = D > 0 ? mean / (double)D : 0.0;
        for (int64_t j = 0; j < D; j++)
            var += ((double)x[j] - mean) * ((double)x[j] - mean);
        var = D > 0 ? var / (double)D : 0.0;
        double inv = 1.0 / sqrt(var + eps);
        float m = (float)mean, iv = (float)inv;
        for (int64_t j = 0; j < D; j++)
            y[j] = (x[j] - m) * iv * sc[j] + sc[D + j];
        if (Mo) pq_dtype_store(Mo->dtype, Mo->data, (size_t)o, mean);
        if (Io) pq_dtype_store(Io->dtype, Io->data, (size_t)o, inv);
    }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = PQ_OK;
done:
    pq_free(sc);
    pq_free(ox);
    pq_free(os);
    pq_free(ob);
    pq_free(oy);
    return st;
}

enum pq_status pq_ref_instance_normalization(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 3, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    double eps = pq_node_attr_float(a->node, "epsilon", 1e-5f);
    int64_t N = X->dims[0], C = X->dims[1], SP = 1;
    for (int i = 2; i < X->rank; i++)
        SP *= X->dims[i];
    const float *px, *ps, *pb;
    float *ox = NULL, *os = NULL, *ob = NULL, *py, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(a->in[1], &ps, &os, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_view(a->in[2], &pb, &ob, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *x = px + (n * C + c) * SP;
            float *y = py + (n * C + c) * SP;
            double mean = 0.0, var = 0.0;
            for (int64_t i = 0; i < SP; i++)
                mean += x[i];
            mean = SP > 0 ? mean / (double)SP : 0.0;
            for (int64_t i = 0; i < SP; i++)
                var += ((double)x[i] - mean) * ((double)x[i] - mean);
            var = SP > 0 ? var / (double)SP : 0.0;
            double s = ps[c] / sqrt(var + eps);
            float fs = (float)s, fb = (float)(pb[c] - mean * s);
            for (int64_t i = 0; i < SP; i++)
                y[i] = x[i] * fs + fb;
        }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = PQ_OK;
done:
    pq_free(ox);
    pq_free(os);
    pq_free(ob);
    pq_free(oy);
    return st;
}

enum pq_status pq_ref_lp_normalization(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int64_t axis = pq_node_attr_int(a->node, "axis", -1);
    if (axis < 0) axis += X->rank;
    int64_t p = pq_node_attr_int(a->node, "p", 2);
    int64_t outer = 1, L = X->rank > 0 ? X->dims[axis] : 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= X->dims[i];
    for (int i = (int)axis + 1; i < X->rank; i++)
        inner *= X->dims[i];
    const float *px;
    float *ox = NULL, *py, *oy = NULL;
    enum pq_status st;
    PQ_TRY_GOTO(st, pq_ref_f32_view(X, &px, &ox, a->err), done);
    PQ_TRY_GOTO(st, pq_ref_f32_out(Y, &py, &oy, a->err), done);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = px + o * L * inner + i;
            float *y = py + o * L * inner + i;
            double nrm = 0.0;
            for (int64_t l = 0; l < L; l++)
                nrm += p == 1 ? fabs((double)x[l * inner]) : (double)x[l * inner] * x[l * inner];
            if (p == 2) nrm = sqrt(nrm);
            for (int64_t l = 0; l < L; l++)
                y[l * inner] = nrm == 0.0 ? 0.0f : (float)(x[l * inner] / nrm);
        }
    pq_ref_f32_commit(Y, oy);
    oy = NULL;
    st = PQ_OK;
done:
    pq_free(ox);
    pq_free(oy);
    return st;
}
