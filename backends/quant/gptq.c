/* GPTQ / LDLQ error-compensating rounding for PiQ/Q weights (SPEC section 4 "gptq"): Hessian
 * accumulation from calibration inputs, damping, upper Cholesky factor of H^-1, and
 * column-by-column quantization with per-group mse scales chosen on the error-updated weights.
 * Scalar, deterministic. */
#include <math.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/alloc.h"

void pq_gptq_hessian_add(double *h, const float *x, int64_t nsamples, int64_t cols) {
    for (int64_t s = 0; s < nsamples; s++) {
        const float *xs = x + s * cols;
        for (int64_t i = 0; i < cols; i++) {
            double xi = (double)xs[i];
            if (xi == 0.0) continue;
            double *hi = h + i * cols;
            for (int64_t j = 0; j < cols; j++)
                hi[j] += xi * (double)xs[j];
        }
    }
}

/* In-place lower Cholesky factor of the n x n symmetric matrix a (lower triangle used; the strict
 * upper triangle is zeroed). False when a is not numerically positive definite. */
static bool pq_cholesky_lower(double *a, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0.0) || !isfinite(d)) return false;
        d = sqrt(d);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int64_t k = 0; k < j; k++)
                s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
        for (int64_t i = 0; i < j; i++)
            a[i * n + j] = 0.0;
    }
    return true;
}

/* u = upper Cholesky factor of h^-1 (u^T u = h^-1), via h = L L^T, h^-1 = L^-T L^-1.
 * h is destroyed (holds L^-1 on return); both n x n. */
static bool pq_inverse_upper_cholesky(double *h, double *u, int64_t n) {
    if (!pq_cholesky_lower(h, n)) return false;
    /* h <- L^-1 (lower triangular), column by column of the identity */
    for (int64_t j = 0; j < n; j++) {
        for (int64_t i = 0; i < n; i++)
            u[i] = 0.0; /* u's first row as scratch column */
        u[j] = 1.0 / h[j * n + j];
        for (int64_t i = j + 1; i < n; i++) {
            double s = 0.0;
            for (int64_t k = j; k < i; k++)
                s -= h[i * n + k] * u[k];
            u[i] = s / h[i * n + i];
        }
        /* L^-1 column j is u[j..n); store it in the strict-lower + diagonal part once every
         * row i >= j has used h[i][j..i) (rows below j only read entries k >= j of L, and the
         * entries of column j of L are not needed by later columns j' > j). */
        for (int64_t i = j; i < n; i++)
            h[i * n + j] = u[i];
    }
    /* u <- h^-1 = (L^-1)^T (L^-1): u[i][k] = sum_m Linv[m][i] Linv[m][k], m >= max(i, k) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k <= i; k++) {
            double s = 0.0;
            for (int64_t m = i; m < n; m++)
                s += h[m * n + i] * h[m * n + k];
            u[i * n + k] = s;
            u[k * n + i] = s;
        }
    if (!pq_cholesky_lower(u, n)) return false;
    /* transpose the lower factor into an upper one */
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = i + 1; k < n; k++) {
            u[i * n + k] = u[k * n + i];
            u[k * n + i] = 0.0;
        }
    return true;
}

enum pq_status pq_quantize_matrix_gptq(const char *tensor_name, const float *w, int64_t rows,
                                       int64_t cols, enum pq_qformat f, int64_t group,
                                       const double *hessian, uint8_t *dst, pq_error *err) {
    const char *name = tensor_name ? tensor_name : "(unnamed)";
    if ((unsigned)f >= PQ_QFORMAT_COUNT)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "gptq '%s': invalid format %d", name, (int)f);
    if (group <= 0 || group % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "gptq '%s': group size %lld is not a positive multiple of 8", name,
                            (long long)group);
    if (rows <= 0 || cols <= 0 || cols > (1 << 16) || pq_packed_bytes(f, rows, cols, group) == 0)
        return pq_error_set(err, PQ_ERR_INVALID, "gptq '%s': invalid shape %lld x %lld", name,
                            (long long)rows, (long long)cols);
    if (!w || !hessian || !dst)
        return pq_error_set(err, PQ_ERR_INVALID, "gptq '%s': NULL weight, Hessian or output", name);
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(w[i]))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "gptq '%s': non-finite value at index %lld (row %lld, col %lld)",
                                name, (long long)i, (long long)(i / cols), (long long)(i % cols));
    for (int64_t i = 0; i < cols * cols; i++)
        if (!isfinite(hessian[i]))
            return pq_error_set(err, PQ_ERR_INVALID, "gptq '%s': non-finite Hessian entry %lld",
                                name, (long long)i);

    size_t nn = (size_t)cols * (size_t)cols;
    double *h = pq_malloc(sizeof(double) * nn);
    double *u = pq_malloc(sizeof(double) * nn);
    float *row = pq_malloc(sizeof(float) * (size_t)cols);
    float *what = pq_malloc(sizeof(float) * (size_t)cols);
    bool *dead = pq_malloc(sizeof(bool) * (size_t)cols);
    uint16_t *scales = pq_malloc(sizeof(uint16_t) * (size_t)((cols + group - 1) / group));
    enum pq_status st = PQ_OK;
    if (!h || !u || !row || !what || !dead || !scales) {
        st = pq_error_nomem(err, "gptq Hessian");
        goto done;
    }
    /* Symmetrise (lower triangle from the mean of both), mark dead columns, damp. */
    double mean_diag = 0.0;
    for (int64_t i = 0; i < cols; i++) {
        for (int64_t j = 0; j < cols; j++)
            h[i * cols + j] = 0.5 * (hessian[i * cols + j] + hessian[j * cols + i]);
        dead[i] = !(h[i * cols + i] > 0.0);
        mean_diag += h[i * cols + i];
    }
    mean_diag /= (double)cols;
    double lambda = 0.01 * mean_diag;
    for (int64_t i = 0; i < cols; i++) {
        if (dead[i]) { /* input feature always zero: its weight does not matter */
            for (int64_t j = 0; j < cols; j++)
                h[i * cols + j] = h[j * cols + i] = 0.0;
            h[i * cols + i] = 1.0;
        }
        h[i * cols + i] += lambda;
    }
    if (!pq_inverse_upper_cholesky(h, u, cols)) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "gptq '%s': damped Hessian is not positive definite (bad calibration "
                          "data?)",
                          name);
        goto done;
    }

    size_t off = 0;
    int bits = pq_qformat_bits(f);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, w + r * cols, sizeof(float) * (size_t)cols);
        for (int64_t c = 0; c < cols; c++)
            if (dead[c]) row[c] = 0.0f;
        float step = 0.0f;
        for (int64_t j = 0; j < cols; j++) {
            if (j % group == 0) {
                int64_t n = cols - j < group ? cols - j : group;
                uint16_t a = pq_calib_group_scale(f, PQ_CALIB_MSE, row + j, NULL, n);
                scales[j / group] = a;
                step = pq_qstep(f, a);
            }
            what[j] = (float)pq_qcode(row[j], step, bits) * step;
            double e = ((double)row[j] - (double)what[j]) / u[j * cols + j];
            for (int64_t k = j + 1; k < cols; k++)
                row[k] = (float)((double)row[k] - e * u[j * cols + k]);
        }
        /* Pack: the reconstructed values requantize to exactly their codes with the same
         * scales ((q * step) / step rounds back to q for |q| <= 4). */
        pq_q_quantize_row_ukernel__scalar(f, what, cols, group, scales, dst + off);
        off += pq_packed_row_bytes(f, cols, group);
    }
done:
    pq_free(h);
    pq_free(u);
    pq_free(row);
    pq_free(what);
    pq_free(dead);
    pq_free(scales);
    return st;
}
