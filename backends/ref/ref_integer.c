/* Reference ConvInteger and MatMulInteger: u8/i8 operands minus their zero points (scalar,
 * or per output channel / row / column), exact int32 accumulation, i32 output. */
#include <string.h>

#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

/* Zero point j of an optional zero-point tensor (scalar or 1-D; 0 when absent). */
static int32_t pq_zp(const pq_tensor *z, int64_t j) {
    if (!z) return 0;
    int64_t n = pq_tensor_numel(z);
    if (n <= 0) return 0;
    return (int32_t)pq_dtype_load_i64(z->dtype, z->data, (size_t)(n == 1 ? 0 : j % n));
}

/* y[M, N] += a[M, K] * b[K, N] in int32 (row-major, contiguous). */
static void pq_igemm(int64_t M, int64_t N, int64_t K, const int32_t *a, const int32_t *b,
                     int32_t *y) {
    for (int64_t i = 0; i < M; i++) {
        int32_t *yi = y + i * N;
        for (int64_t k = 0; k < K; k++) {
            int32_t av = a[i * K + k];
            if (av == 0) continue;
            const int32_t *bk = b + k * N;
            for (int64_t j = 0; j < N; j++)
                yi[j] += av * bk[j];
        }
    }
}

enum pq_status pq_ref_conv_integer(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *X = a->in[0], *W = a->in[1];
    const pq_tensor *xz = a->n_in > 2 ? a->in[2] : NULL, *wz = a->n_in > 3 ? a->in[3] : NULL;
    pq_tensor *Y = a->out[0];
    int64_t k[3];
    for (int i = 0; i < W->rank - 2; i++)
        k[i] = W->dims[2 + i];
    pq_ref_win w;
    pq_ref_window(a->node, X, k, Y, &w);
    int64_t group = pq_node_attr_int(a->node, "group", 1);
    int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0];
    int64_t Cg = C / group, Mg = M / group;
    int64_t KK = w.k[0] * w.k[1] * w.k[2], CK = Cg * KK;
    int64_t ISP = w.in[0] * w.in[1] * w.in[2], OSP = w.out[0] * w.out[1] * w.out[2];
    int64_t nx = pq_tensor_numel(X), nw = pq_tensor_numel(W);
    int64_t rows = w.out[0] * w.out[1], chunk = pq_ref_conv_chunk_rows(CK, &w);
    int32_t *xi = pq_malloc((size_t)nx * sizeof(int32_t));
    int32_t *wi = pq_malloc((size_t)nw * sizeof(int32_t));
    int32_t *col = pq_malloc((size_t)(CK * chunk * w.out[2]) * sizeof(int32_t));
    int32_t *py = Y->data;
    enum pq_status st = PQ_OK;
    if (!xi || !wi || !col) {
        st = pq_error_nomem(a->err, "conv_integer buffers");
        goto done;
    }
    int32_t xzp = pq_zp(xz, 0);
    for (int64_t i = 0; i < nx; i++)
        xi[i] = (int32_t)pq_dtype_load_i64(X->dtype, X->data, (size_t)i) - xzp;
    for (int64_t i = 0; i < nw; i++)
        wi[i] =
            (int32_t)pq_dtype_load_i64(W->dtype, W->data, (size_t)i) - pq_zp(wz, i / (CK ? CK : 1));
    memset(py, 0, (size_t)(N * M * OSP) * sizeof(int32_t));
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < group; g++) {
            const int32_t *xg = xi + (n * C + g * Cg) * ISP;
            const int32_t *wg = wi + g * Mg * CK;
            int32_t *yg = py + (n * M + g * Mg) * OSP;
            for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
                int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
                int64_t ncols = (r1 - r0) * w.out[2];
                pq_ref_im2col_i32(xg, Cg, &w, r0, r1, col);
                for (int64_t m = 0; m < Mg; m++) {
                    int32_t *yr = yg + m * OSP + r0 * w.out[2];
                    for (int64_t kk = 0; kk < CK; kk++) {
                        int32_t wv = wg[m * CK + kk];
                        if (wv == 0) continue;
                        const int32_t *cr = col + kk * ncols;
                        for (int64_t j = 0; j < ncols; j++)
                            yr[j] += wv * cr[j];
                    }
                }
            }
        }
done:
    pq_free(xi);
    pq_free(wi);
    pq_free(col);
    return st;
}

enum pq_status pq_ref_matmul_integer(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 2, 1));
    const pq_tensor *A = a->in[0], *B = a->in[1];
    const pq_tensor *az = a->n_in > 2 ? a->in[2] : NULL, *bz = a->n_in > 3 ? a->in[3] : NULL;
    pq_tensor *Y = a->out[0];
    int ra = A->rank, rb = B->rank;
    int64_t K = A->dims[ra - 1], M = ra >= 2 ? A->dims[ra - 2] : 1,
            N = rb >= 2 ? B->dims[rb - 1] : 1;
    int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0, nb = ba > bb ? ba : bb;
    int64_t bdims[PQ_MAX_RANK], astr[PQ_MAX_RANK], bstr[PQ_MAX_RANK], nbatch = 1;
    int64_t sa = M * K, sb = K * N;
    for (int i = nb - 1; i >= 0; i--) {
        int ia = i - (nb - ba), ib = i - (nb - bb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
        bdims[i] = da == 1 ? db : da;
        astr[i] = da == 1 ? 0 : sa;
        bstr[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        nbatch *= bdims[i];
    }
    int64_t na = pq_tensor_numel(A), nbv = pq_tensor_numel(B);
    int32_t *ai = pq_malloc((size_t)na * sizeof(int32_t));
    int32_t *bi = pq_malloc((size_t)nbv * sizeof(int32_t));
    enum pq_status st = PQ_OK;
    if (!ai || !bi) {
        st = pq_error_nomem(a->err, "matmul_integer buffers");
        goto done;
    }
    /* a_zero_point per row (index over M), b_zero_point per column (index over N) */
    for (int64_t i = 0; i < na; i++)
        ai[i] = (int32_t)pq_dtype_load_i64(A->dtype, A->data, (size_t)i) - pq_zp(az, (i / K) % M);
    for (int64_t i = 0; i < nbv; i++)
        bi[i] = (int32_t)pq_dtype_load_i64(B->dtype, B->data, (size_t)i) - pq_zp(bz, i % N);
    int32_t *py = Y->data;
    memset(py, 0, (size_t)(nbatch * M * N) * sizeof(int32_t));
    for (int64_t t = 0; t < nbatch; t++) {
        int64_t r = t, oa = 0, ob = 0;
        for (int i = nb - 1; i >= 0; i--) {
            int64_t idx = r % bdims[i];
            r /= bdims[i];
            oa += idx * astr[i];
            ob += idx * bstr[i];
        }
        pq_igemm(M, N, K, ai + oa, bi + ob, py + t * M * N);
    }
done:
    pq_free(ai);
    pq_free(bi);
    return st;
}
