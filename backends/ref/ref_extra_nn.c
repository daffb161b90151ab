/* Reference kernels of the further nn ops: MeanVarianceNormalization, LRN, Einsum (direct loop
 * nest over every label, ellipsis and diagonals included), MaxUnpool, Det, the two losses,
 * QLinearMatMul / QLinearConv (integer kernels then requantisation) and GridSample. Math in
 * double (exact int64 for integer Einsum). */
#include <math.h>
#include <string.h>

#include "backends/int8/int8_gemm.h"
#include "ir/infer_piqc.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* ---- double views ---- */

static double *pq_x_f64(const pq_tensor *t, pq_error *err) {
    int64_t n = pq_tensor_numel(t);
    double *v = pq_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!v) {
        pq_error_nomem(err, "f64 copy");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = pq_dtype_load(t->dtype, t->data, (size_t)i);
    return v;
}

static void pq_x_store(pq_tensor *t, const double *v) {
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(t->dtype, t->data, (size_t)i, v[i]);
}

/* ---- MeanVarianceNormalization ---- */

enum pq_status pq_ref_x_mvn(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int r = X->rank;
    bool red[PQ_MAX_RANK] = {false};
    const pq_attr *ax = pq_node_attr(a->node, "axes");
    static const int64_t def[3] = {0, 2, 3};
    int na = ax ? (int)ax->u.ints.n : 3;
    for (int i = 0; i < na; i++) {
        int d;
        PQ_TRY(pq_infer_axis(ax ? ax->u.ints.v[i] : def[i], r, &d, a->err));
        red[d] = true;
    }
    int64_t gs[PQ_MAX_RANK], ng = 1;
    for (int d = r - 1; d >= 0; d--) {
        gs[d] = red[d] ? 0 : ng;
        if (!red[d]) ng *= X->dims[d];
    }
    int64_t n = pq_tensor_numel(X), per = ng ? n / ng : 0;
    double *x = pq_x_f64(X, a->err);
    double *acc = pq_calloc((size_t)(2 * ng + 1), sizeof(double));
    int64_t *gid = pq_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    enum pq_status st = PQ_OK;
    if (!x || !acc || !gid) {
        st = x ? pq_error_nomem(a->err, "MVN buffers") : PQ_ERR_NOMEM;
        goto done;
    }
    int64_t idx[PQ_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t g = 0;
        for (int d = 0; d < r; d++)
            g += idx[d] * gs[d];
        gid[i] = g;
        acc[2 * g] += x[i];
        acc[2 * g + 1] += x[i] * x[i];
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < X->dims[d]) break;
            idx[d] = 0;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double mean = acc[2 * gid[i]] / (double)per, msq = acc[2 * gid[i] + 1] / (double)per;
        double var = msq - mean * mean;
        x[i] = (x[i] - mean) / (sqrt(var > 0 ? var : 0) + 1e-9);
    }
    pq_x_store(Y, x);
done:
    pq_free(x);
    pq_free(acc);
    pq_free(gid);
    return st;
}

/* ---- LRN ---- */

enum pq_status pq_ref_x_lrn(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    double alpha = pq_node_attr_float(a->node, "alpha", 1e-4f);
    double beta = pq_node_attr_float(a->node, "beta", 0.75f);
    double bias = pq_node_attr_float(a->node, "bias", 1.0f);
    int64_t size = pq_node_attr_int(a->node, "size", 1);
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int i = 2; i < X->rank; i++)
        S *= X->dims[i];
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo; /* floor and ceil of (size-1)/2 */
    double *x = pq_x_f64(X, a->err);
    double *y = pq_malloc((size_t)(pq_tensor_numel(X) + 1) * sizeof(double));
    if (!x || !y) {
        pq_free(x);
        pq_free(y);
        return x ? pq_error_nomem(a->err, "LRN buffers") : PQ_ERR_NOMEM;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                double sq = 0;
                for (int64_t k = c - lo; k <= c + hi; k++)
                    if (k >= 0 && k < C) {
                        double v = x[(n * C + k) * S + s];
                        sq += v * v;
                    }
                int64_t i = (n * C + c) * S + s;
                y[i] = x[i] / pow(bias + alpha / (double)size * sq, beta);
            }
    pq_x_store(Y, y);
    pq_free(x);
    pq_free(y);
    return PQ_OK;
}

/* ---- Det ---- */

enum pq_status pq_ref_x_det(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 1, 1));
    const pq_tensor *X = a->in[0];
    pq_tensor *Y = a->out[0];
    int64_t m = X->dims[X->rank - 1], nmat = pq_tensor_numel(Y);
    double *x = pq_x_f64(X, a->err);
    double *y = pq_malloc((size_t)(nmat + 1) * sizeof(double));
    if (!x || !y) {
        pq_free(x);
        pq_free(y);
        return x ? pq_error_nomem(a->err, "Det buffers") : PQ_ERR_NOMEM;
    }
    for (int64_t t = 0; t < nmat; t++) {
        double *A = x + t * m * m, det = 1.0;
        /* LU with partial pivoting */
        for (int64_t k = 0; k < m; k++) {
            int64_t p = k;
            for (int64_t i = k + 1; i < m; i++)
                if (fabs(A[i * m + k]) > fabs(A[p * m + k])) p = i;
            if (A[p * m + k] == 0.0) {
                det = 0.0;
                break;
            }
            if (p != k) {
                for (int64_t j = 0; j < m; j++) {
                    double tmp = A[k * m + j];
                    A[k * m + j] = A[p * m + j];
                    A[p * m + j] = tmp;
                }
                det = -det;
            }
            det *= A[k * m + k];
            for (int64_t i = k + 1; i < m; i++) {
                double f = A[i * m + k] / A[k * m + k];
                for (int64_t j = k; j < m; j++)
                    A[i * m + j] -= f * A[k * m + j];
            }
        }
        y[t] = det;
    }
    pq_x_store(Y, y);
    pq_free(x);
    pq_free(y);
    return PQ_OK;
}

/* ---- Einsum ---- */

#define PQ_X_ELL 52
#define PQ_X_LABELS (PQ_X_ELL + PQ_MAX_RANK)

static int pq_x_label(char ch) {
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + (ch - 'A');
    return -1;
}

/* Labels of one term (inference validated the equation); rank < 0 for the output. Returns the
 * ellipsis dims of this term (0 without one). */
static int pq_x_term(const char *s, size_t len, int rank, int ell, int *labels, int *n) {
    int letters = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            dots++;
        else if (pq_x_label(s[i]) >= 0)
            letters++;
    }
    int en = dots ? (rank >= 0 ? rank - letters : ell) : 0;
    int k = 0;
    bool done = false;
    for (size_t i = 0; i < len && k < PQ_MAX_RANK; i++) {
        if (s[i] == '.') {
            for (int j = 0; !done && j < en && k < PQ_MAX_RANK; j++)
                labels[k++] = PQ_X_ELL + (ell - en) + j;
            done = true;
        } else if (pq_x_label(s[i]) >= 0) {
            labels[k++] = pq_x_label(s[i]);
        }
    }
    *n = k;
    return en;
}

enum pq_status pq_ref_x_einsum(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, a->n_in, 1));
    pq_tensor *Y = a->out[0];
    const char *eq = pq_node_attr_string(a->node, "equation", "");
    const char *arrow = strstr(eq, "->");
    size_t lhs = arrow ? (size_t)(arrow - eq) : strlen(eq);
    uint32_t nt = a->n_in;
    int lab[PQ_MAX_RANK], n, ell = 0;
    int64_t size[PQ_X_LABELS];
    int count[PQ_X_LABELS] = {0};
    bool used[PQ_X_LABELS] = {false};
    for (int l = 0; l < PQ_X_LABELS; l++)
        size[l] = 1;
    /* ellipsis rank, then label sizes */
    for (int pass = 0; pass < 2; pass++) {
        size_t st = 0;
        for (uint32_t t = 0; t < nt; t++) {
            size_t end = st;
            while (end < lhs && eq[end] != ',')
                end++;
            int en = pq_x_term(eq + st, end - st, a->in[t]->rank, ell, lab, &n);
            if (pass == 0 && en > ell) ell = en;
            for (int i = 0; pass == 1 && i < n; i++) {
                used[lab[i]] = true;
                count[lab[i]]++;
                if (a->in[t]->dims[i] != 1) size[lab[i]] = a->in[t]->dims[i];
            }
            st = end + 1;
        }
    }
    int out_lab[PQ_MAX_RANK], no = 0;
    if (arrow) {
        pq_x_term(arrow + 2, strlen(arrow + 2), -1, ell, out_lab, &no);
    } else {
        for (int j = 0; j < ell; j++)
            out_lab[no++] = PQ_X_ELL + j;
        for (int pass = 0; pass < 2; pass++)
            for (int l = pass ? 0 : 26; l < (pass ? 26 : 52) && no < PQ_MAX_RANK; l++)
                if (count[l] == 1) out_lab[no++] = l;
    }
    /* the index space: every used label; strides per operand (summed for repeated labels) */
    int L[PQ_X_LABELS], nl = 0;
    for (int l = 0; l < PQ_X_LABELS; l++)
        if (used[l]) L[nl++] = l;
    int64_t *str = pq_calloc((size_t)(nt + 1) * PQ_X_LABELS, sizeof(int64_t));
    double **vin = pq_calloc(nt + 1, sizeof(double *));
    double *acc = pq_calloc((size_t)pq_tensor_numel(Y) + 1, sizeof(double));
    int64_t *off = pq_calloc(nt + 1, sizeof(int64_t)); /* operand offsets, then the output's */
    enum pq_status st = PQ_OK;
    if (!str || !vin || !acc || !off) {
        st = pq_error_nomem(a->err, "Einsum buffers");
        goto done;
    }
    size_t s0 = 0;
    for (uint32_t t = 0; t < nt; t++) {
        size_t end = s0;
        while (end < lhs && eq[end] != ',')
            end++;
        const pq_tensor *X = a->in[t];
        pq_x_term(eq + s0, end - s0, X->rank, ell, lab, &n);
        int64_t xs[PQ_MAX_RANK];
        pq_shape_strides(X->rank, X->dims, xs);
        for (int i = 0; i < n; i++)
            if (X->dims[i] != 1) str[t * PQ_X_LABELS + lab[i]] += xs[i];
        vin[t] = pq_x_f64(X, a->err);
        if (!vin[t]) {
            st = PQ_ERR_NOMEM;
            goto done;
        }
        s0 = end + 1;
    }
    int64_t ys[PQ_MAX_RANK];
    pq_shape_strides(Y->rank, Y->dims, ys);
    for (int i = 0; i < no; i++)
        str[nt * PQ_X_LABELS + out_lab[i]] = Y->dims[i] != 1 ? ys[i] : 0;
    int64_t total = 1;
    for (int i = 0; i < nl; i++) {
        if (size[L[i]] == 0) total = 0;
        if (total > 0 && size[L[i]] > PQ_MAX_NUMEL / total) {
            st = pq_error_set(a->err, PQ_ERR_UNSUPPORTED,
                              "the index space of the equation "
                              "exceeds %lld points",
                              (long long)PQ_MAX_NUMEL);
            goto done;
        }
        total *= size[L[i]];
    }
    int64_t idx[PQ_X_LABELS] = {0};
    bool is_int = !pq_dtype_is_float(Y->dtype);
    for (int64_t p = 0; p < total; p++) {
        double prod = 1.0;
        for (uint32_t t = 0; t < nt; t++)
            prod *= vin[t][off[t]];
        acc[off[nt]] += prod;
        for (int i = nl - 1; i >= 0; i--) {
            int l = L[i];
            for (uint32_t t = 0; t <= nt; t++)
                off[t] += str[t * PQ_X_LABELS + l];
            if (++idx[i] < size[l]) break;
            for (uint32_t t = 0; t <= nt; t++)
                off[t] -= str[t * PQ_X_LABELS + l] * size[l];
            idx[i] = 0;
        }
    }
    if (is_int) {
        int64_t ny = pq_tensor_numel(Y);
        for (int64_t i = 0; i < ny; i++)
            pq_ref_store_int(Y->dtype, Y->data, (size_t)i, (int64_t)llround(acc[i]));
    } else {
        pq_x_store(Y, acc);
    }
done:
    if (vin)
        for (uint32_t t = 0; t < nt; t++)
            pq_free(vin[t]);
    pq_free(vin);
    pq_free(str);
    pq_free(acc);
    pq_free(off);
    return st;
}

/* ---- MaxUnpool ---- */

enum pq_status pq_ref_x_max_unpool(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0], *I = a->in[1];
    pq_tensor *Y = a->out[0];
    memset(Y->data, 0, Y->nbytes);
    /* Indices address the default unpooled shape D (from kernel_shape/strides/pads); with an
     * output_shape input, the result is padded at the end of each dim to that shape. */
    int r = X->rank, nsp = r - 2;
    const pq_attr *ka = pq_node_attr(a->node, "kernel_shape");
    const pq_attr *sa = pq_node_attr(a->node, "strides");
    const pq_attr *pa = pq_node_attr(a->node, "pads");
    int64_t D[PQ_MAX_RANK], nd = 1;
    D[0] = X->dims[0];
    D[1] = X->dims[1];
    for (int i = 0; i < nsp; i++) {
        int64_t k = ka->u.ints.v[i], s = sa ? sa->u.ints.v[i] : 1;
        int64_t p = pa ? pa->u.ints.v[i] + pa->u.ints.v[nsp + i] : 0;
        D[2 + i] = (X->dims[2 + i] - 1) * s + k - p;
    }
    for (int i = 0; i < r; i++) {
        if (D[i] < 1)
            return pq_error_set(a->err, PQ_ERR_INVALID,
                                "kernel_shape/strides/pads give an empty "
                                "unpooled dim %d",
                                i);
        nd *= D[i];
    }
    int64_t n = pq_tensor_numel(X);
    size_t es = pq_dtype_size(X->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = pq_dtype_load_i64(I->dtype, I->data, (size_t)i);
        if (j < 0 || j >= nd)
            return pq_error_set(a->err, PQ_ERR_INVALID,
                                "index %lld out of the unpooled %lld "
                                "elements",
                                (long long)j, (long long)nd);
        int64_t c[PQ_MAX_RANK], off = 0;
        for (int d = r - 1; d >= 0; d--) {
            c[d] = j % D[d];
            j /= D[d];
        }
        for (int d = 0; d < r; d++) {
            if (c[d] >= Y->dims[d])
                return pq_error_set(a->err, PQ_ERR_INVALID,
                                    "output_shape is smaller than the "
                                    "unpooled shape");
            off = off * Y->dims[d] + c[d];
        }
        memcpy((uint8_t *)Y->data + (size_t)off * es, (const uint8_t *)X->data + (size_t)i * es,
               es);
    }
    return PQ_OK;
}

/* ---- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss ---- */

/* loss over log-probabilities lp [N, C, D] (doubles) with targets T [N, D]. */
static enum pq_status pq_x_nll(const pq_kernel_args *a, const double *lp, int64_t N, int64_t C,
                               int64_t D, const pq_tensor *T, const pq_tensor *W, pq_tensor *Y) {
    const char *red = pq_node_attr_string(a->node, "reduction", "mean");
    const pq_attr *iia = pq_node_attr(a->node, "ignore_index");
    bool has_ii = iia && iia->type == PQ_ATTR_INT;
    int64_t ii = has_ii ? iia->u.i : 0;
    double *loss = pq_malloc((size_t)(N * D + 1) * sizeof(double));
    if (!loss) return pq_error_nomem(a->err, "loss buffer");
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = pq_dtype_load_i64(T->dtype, T->data, (size_t)(n * D + d));
            double l = 0, w = 0;
            if (!(has_ii && t == ii)) {
                if (t < 0 || t >= C) {
                    pq_free(loss);
                    return pq_error_set(a->err, PQ_ERR_INVALID, "target %lld out of [0, %lld)",
                                        (long long)t, (long long)C);
                }
                w = W ? pq_dtype_load(W->dtype, W->data, (size_t)t) : 1.0;
                l = -lp[(n * C + t) * D + d] * w;
            }
            loss[n * D + d] = l;
            sum += l;
            wsum += w;
        }
    if (strcmp(red, "none") == 0)
        pq_x_store(Y, loss);
    else
        pq_dtype_store(Y->dtype, Y->data, 0, strcmp(red, "sum") == 0 ? sum : sum / wsum);
    pq_free(loss);
    return PQ_OK;
}

static void pq_x_ncd(const pq_tensor *X, int64_t *N, int64_t *C, int64_t *D) {
    *N = X->dims[0];
    *C = X->dims[1];
    *D = 1;
    for (int i = 2; i < X->rank; i++)
        *D *= X->dims[i];
}

enum pq_status pq_ref_x_nll_loss(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0];
    int64_t N, C, D;
    pq_x_ncd(X, &N, &C, &D);
    double *x = pq_x_f64(X, a->err);
    if (!x) return PQ_ERR_NOMEM;
    enum pq_status st = pq_x_nll(a, x, N, C, D, a->in[1], a->n_in > 2 ? a->in[2] : NULL, a->out[0]);
    pq_free(x);
    return st;
}

enum pq_status pq_ref_x_sce_loss(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0];
    int64_t N, C, D;
    pq_x_ncd(X, &N, &C, &D);
    double *x = pq_x_f64(X, a->err);
    if (!x) return PQ_ERR_NOMEM;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            double *p = x + n * C * D + d, mx = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++)
                if (p[c * D] > mx) mx = p[c * D];
            for (int64_t c = 0; c < C; c++)
                s += exp(p[c * D] - mx);
            double lse = mx + log(s);
            for (int64_t c = 0; c < C; c++)
                p[c * D] -= lse;
        }
    enum pq_status st = pq_x_nll(a, x, N, C, D, a->in[1], a->n_in > 2 ? a->in[2] : NULL, a->out[0]);
    if (st == PQ_OK && a->n_out > 1 && a->out[1]) pq_x_store(a->out[1], x);
    pq_free(x);
    return st;
}

/* ---- QLinearMatMul, QLinearConv ---- */

static double pq_x_at(const pq_tensor *t, int64_t i) {
    int64_t n = pq_tensor_numel(t);
    if (n <= 0) return 0.0;
    return pq_dtype_load(t->dtype, t->data, (size_t)(n == 1 ? 0 : i % n));
}

/* y = saturate(nearbyintf((float)t * m) + zp) into u8/i8 element i: the requantization of
 * backends/int8/int8_gemm.h (onnxruntime's MLAS formula) with t = acc + bias wrapping in i32 and
 * m = ((float)s_x * (float)s_w) / (float)s_y in f32. A NaN product (zero y_scale with a zero
 * accumulator) gives the zero point. */
static void pq_x_requant_v(pq_tensor *Y, int64_t i, float v, double zp) {
    double q = (isnan(v) ? 0.0 : (double)nearbyintf(v)) + zp;
    double lo = Y->dtype == PQ_DTYPE_U8 ? 0 : -128, hi = Y->dtype == PQ_DTYPE_U8 ? 255 : 127;
    q = q < lo ? lo : (q > hi ? hi : q);
    pq_ref_store_int(Y->dtype, Y->data, (size_t)i, (int64_t)q);
}

static void pq_x_requant(pq_tensor *Y, int64_t i, int32_t t, float m, double zp) {
    pq_x_requant_v(Y, i, (float)t * m, zp);
}

/* The f32 multiplier (s_x * s_w) / s_y. */
static float pq_x_mult(double sx, double sw, double sy) {
    float p = (float)sx * (float)sw;
    return p / (float)sy;
}

/* Runs the integer kernel fn on inputs (x, w, x_zp, w_zp) into a new i32 tensor shaped like Y. */
static enum pq_status pq_x_int_acc(const pq_kernel_args *a, pq_kernel_fn fn, pq_tensor **acc) {
    pq_tensor *Y = a->out[0];
    *acc = pq_tensor_create(PQ_DTYPE_I32, Y->rank, Y->dims, a->err);
    if (!*acc) return PQ_ERR_NOMEM;
    const pq_tensor *in[4] = {a->in[0], a->in[3], a->in[2], a->in[5]};
    pq_tensor *out[1] = {*acc};
    pq_kernel_args sub = *a;
    sub.in = in;
    sub.n_in = 4;
    sub.out = out;
    sub.n_out = 1;
    enum pq_status st = fn(&sub);
    if (st != PQ_OK) {
        pq_tensor_destroy(*acc);
        *acc = NULL;
    }
    return st;
}

enum pq_status pq_ref_x_qlinear_matmul(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 8, 1));
    pq_tensor *Y = a->out[0], *acc;
    PQ_TRY(pq_x_int_acc(a, pq_ref_matmul_integer, &acc));
    int64_t N = Y->rank >= 1 ? Y->dims[Y->rank - 1] : 1;
    int64_t M = Y->rank >= 2 ? Y->dims[Y->rank - 2] : 1, ny = pq_tensor_numel(Y);
    double ys = pq_x_at(a->in[6], 0), yz = pq_x_at(a->in[7], 0);
    const int32_t *p = acc->data;
    for (int64_t i = 0; i < ny; i++) {
        float m = pq_x_mult(pq_x_at(a->in[1], (i / N) % M), pq_x_at(a->in[4], i % N), ys);
        pq_x_requant(Y, i, p[i], m, yz);
    }
    pq_tensor_destroy(acc);
    return PQ_OK;
}

/* QLinearConv's fused activation (piqc extension: the "activation" attribute of Conv) on the real
 * result r, in f32 operations in this order (backends/int8/int8_gemm.h, pq_i8_act_f32). */
static float pq_x_qact(const pq_activation *act, float r) {
    float h;
    switch (act->kind) {
    case PQ_ACT_RELU:
        return r < 0.0f ? 0.0f : r;
    case PQ_ACT_CLIP:
        r = r < act->alpha ? act->alpha : r;
        return r > act->beta ? act->beta : r;
    case PQ_ACT_LEAKY_RELU:
        return r < 0.0f ? act->alpha * r : r;
    case PQ_ACT_HARD_SIGMOID:
        h = fmaf(act->alpha, r, act->beta);
        h = h < 0.0f ? 0.0f : h;
        return h > 1.0f ? 1.0f : h;
    case PQ_ACT_SIGMOID:
        return pq_i8_sigmoid_f32(r);
    case PQ_ACT_SWISH:
        return r * pq_i8_sigmoid_f32(r);
    default: /* PQ_ACT_HARD_SWISH */
        h = fmaf(r, 1.0f / 6.0f, 0.5f);
        h = h < 0.0f ? 0.0f : h;
        h = h > 1.0f ? 1.0f : h;
        return r * h;
    }
}

/* With a fused activation the real result r = (float)t * ((float)s_x * (float)s_w) goes through
 * it and is quantized once: v = act(r) * (1.0f / (float)s_y) (as DequantizeLinear -> Conv ->
 * activation -> QuantizeLinear, with piqc's f32 formula; Sigmoid and Swish through the INT8
 * epilogue's own logistic function, pq_i8_sigmoid_f32). Relu, Clip, LeakyRelu, HardSigmoid,
 * HardSwish, Sigmoid and Swish; others are UNSUPPORTED. */
enum pq_status pq_ref_x_qlinear_conv(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 8, 1));
    pq_activation act;
    PQ_TRY(pq_node_activation(a->node, &act, a->err));
    if (act.kind != PQ_ACT_NONE && act.kind != PQ_ACT_RELU && act.kind != PQ_ACT_CLIP &&
        act.kind != PQ_ACT_LEAKY_RELU && act.kind != PQ_ACT_HARD_SIGMOID &&
        act.kind != PQ_ACT_HARD_SWISH && act.kind != PQ_ACT_SIGMOID && act.kind != PQ_ACT_SWISH)
        return pq_error_set(a->err, PQ_ERR_UNSUPPORTED,
                            "QLinearConv with fused activation %s is not supported (Relu, Clip, "
                            "LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Swish are)",
                            pq_act_name(act.kind));
    pq_tensor *Y = a->out[0], *acc;
    PQ_TRY(pq_x_int_acc(a, pq_ref_conv_integer, &acc));
    const pq_tensor *B = a->n_in > 8 ? a->in[8] : NULL;
    int64_t M = Y->dims[1], sp = 1, ny = pq_tensor_numel(Y);
    for (int i = 2; i < Y->rank; i++)
        sp *= Y->dims[i];
    double ys = pq_x_at(a->in[6], 0), yz = pq_x_at(a->in[7], 0), xs = pq_x_at(a->in[1], 0);
    const int32_t *p = acc->data;
    int64_t nb = B ? pq_tensor_numel(B) : 0;
    for (int64_t i = 0; i < ny; i++) {
        int64_t m = (i / sp) % M;
        int64_t b =
            nb > 0 ? pq_dtype_load_i64(B->dtype, B->data, (size_t)(nb == 1 ? 0 : m % nb)) : 0;
        int32_t t = (int32_t)((uint32_t)p[i] + (uint32_t)b);
        if (act.kind == PQ_ACT_NONE) {
            pq_x_requant(Y, i, t, pq_x_mult(xs, pq_x_at(a->in[4], m), ys), yz);
            continue;
        }
        float r = (float)t * ((float)xs * (float)pq_x_at(a->in[4], m));
        pq_x_requant_v(Y, i, pq_x_qact(&act, r) * (1.0f / (float)ys), yz);
    }
    pq_tensor_destroy(acc);
    return PQ_OK;
}

/* ---- GridSample (4-D) ---- */

typedef struct pq_x_gs {
    const double *img; /* one channel, H x W */
    int64_t H, W;
    int pad;             /* 0 zeros, 1 border, 2 reflection */
    double bx[2], by[2]; /* reflection borders */
} pq_x_gs;

static double pq_x_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo || x > hi) {
        double dx = x < lo ? lo - x : x - hi, q = floor(dx / rng), r = dx - q * rng;
        bool even = fmod(q, 2.0) == 0.0;
        return x < lo ? (even ? lo + r : hi - r) : (even ? hi - r : lo + r);
    }
    return x;
}

static int64_t pq_x_clampi(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static double pq_x_pixel(const pq_x_gs *g, int64_t r, int64_t c) {
    if (g->pad == 0) {
        if (r < 0 || r >= g->H || c < 0 || c >= g->W) return 0.0;
    } else if (g->pad == 1) {
        r = pq_x_clampi(r, 0, g->H - 1);
        c = pq_x_clampi(c, 0, g->W - 1);
    } else {
        c = pq_x_clampi((int64_t)pq_x_reflect((double)c, g->bx[0], g->bx[1]), 0, g->W - 1);
        r = pq_x_clampi((int64_t)pq_x_reflect((double)r, g->by[0], g->by[1]), 0, g->H - 1);
    }
    return g->img[r * g->W + c];
}

static void pq_x_cubic(double t, double w[4]) {
    const double A = -0.75;
    double x = t + 1;
    w[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    x = 1 - t;
    w[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2 - t;
    w[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

enum pq_status pq_ref_x_grid_sample(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_x_prep(a, 2, 1));
    const pq_tensor *X = a->in[0], *G = a->in[1];
    pq_tensor *Y = a->out[0];
    const char *mode = pq_node_attr_string(a->node, "mode", "bilinear");
    const char *pad = pq_node_attr_string(a->node, "padding_mode", "zeros");
    bool align = pq_node_attr_int(a->node, "align_corners", 0) != 0;
    int m = strcmp(mode, "nearest") == 0                                   ? 0
            : (strcmp(mode, "bicubic") == 0 || strcmp(mode, "cubic") == 0) ? 2
                                                                           : 1;
    pq_x_gs g;
    g.pad = strcmp(pad, "border") == 0 ? 1 : (strcmp(pad, "reflection") == 0 ? 2 : 0);
    int64_t N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3];
    int64_t Ho = Y->dims[2], Wo = Y->dims[3];
    g.H = H;
    g.W = W;
    g.bx[0] = align ? 0 : -0.5;
    g.bx[1] = align ? (double)W - 1 : (double)W - 0.5;
    g.by[0] = align ? 0 : -0.5;
    g.by[1] = align ? (double)H - 1 : (double)H - 0.5;
    double *x = pq_x_f64(X, a->err), *gr = x ? pq_x_f64(G, a->err) : NULL;
    double *y = gr ? pq_malloc((size_t)(pq_tensor_numel(Y) + 1) * sizeof(double)) : NULL;
    if (!x || !gr || !y) {
        pq_free(x);
        pq_free(gr);
        pq_free(y);
        return pq_error_nomem(a->err, "GridSample buffers");
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            g.img = x + (n * C + c) * H * W;
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    const double *gp = gr + ((n * Ho + oh) * Wo + ow) * 2;
                    double px = align ? (gp[0] + 1) / 2 * (double)(W - 1)
                                      : ((gp[0] + 1) * (double)W - 1) / 2;
                    double py = align ? (gp[1] + 1) / 2 * (double)(H - 1)
                                      : ((gp[1] + 1) * (double)H - 1) / 2;
                    if (!isfinite(px) || !isfinite(py) || H == 0 || W == 0) {
                        y[((n * C + c) * Ho + oh) * Wo + ow] = 0.0;
                        continue;
                    }
                    /* beyond 1e7 a float coordinate has no fraction left; keeps casts defined */
                    px = px < -1e7 ? -1e7 : (px > 1e7 ? 1e7 : px);
                    py = py < -1e7 ? -1e7 : (py > 1e7 ? 1e7 : py);
                    if (m == 0) {
                        px = nearbyint(px);
                        py = nearbyint(py);
                    }
                    /* bicubic pads each tap (as torch does), the others the source coordinate */
                    if (m != 2 && (px < g.bx[0] || px > g.bx[1] || py < g.by[0] || py > g.by[1])) {
                        if (g.pad == 1) {
                            px = px < 0 ? 0 : (px > (double)W - 1 ? (double)W - 1 : px);
                            py = py < 0 ? 0 : (py > (double)H - 1 ? (double)H - 1 : py);
                        } else if (g.pad == 2) {
                            px = pq_x_reflect(px, g.bx[0], g.bx[1]);
                            py = pq_x_reflect(py, g.by[0], g.by[1]);
                        }
                    }
                    double v;
                    if (m == 0) {
                        v = pq_x_pixel(&g, (int64_t)py, (int64_t)px);
                    } else if (m == 1) {
                        double fx = floor(px), fy = floor(py), dx = px - fx, dy = py - fy;
                        int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
                        v = (1 - dy) * ((1 - dx) * pq_x_pixel(&g, y0, x0) +
                                        dx * pq_x_pixel(&g, y0, x0 + 1)) +
                            dy * ((1 - dx) * pq_x_pixel(&g, y0 + 1, x0) +
                                  dx * pq_x_pixel(&g, y0 + 1, x0 + 1));
                    } else {
                        double fx = floor(px), fy = floor(py), wx[4], wy[4];
                        pq_x_cubic(px - fx, wx);
                        pq_x_cubic(py - fy, wy);
                        int64_t x0 = (int64_t)fx - 1, y0 = (int64_t)fy - 1;
                        v = 0;
                        for (int i = 0; i < 4; i++) {
                            double row = 0;
                            for (int j = 0; j < 4; j++)
                                row += wx[j] * pq_x_pixel(&g, y0 + i, x0 + j);
                            v += wy[i] * row;
                        }
                    }
                    y[((n * C + c) * Ho + oh) * Wo + ow] = v;
                }
        }
    pq_x_store(Y, y);
    pq_free(x);
    pq_free(gr);
    pq_free(y);
    return PQ_OK;
}
