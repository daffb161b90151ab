/* Quantization quality metrics (SPEC section 5): MSE, SD in dB, cosine and outlier retention per
 * tensor and over the concatenation of tensors (all sums in double, index order), plus actual and
 * nominal bits per weight. */
#include <math.h>

#include "backends/quant/quant.h"
#include "ir/alloc.h"

void pq_metrics_acc_init(pq_metrics_acc *acc) {
    *acc = (pq_metrics_acc){0};
}

/* Heap entry order: a is "worse" than b when |w| is smaller, or equal with a larger index. The
 * heap keeps the k best entries with the worst at the root. */
static bool pq_worse(const float *w, int64_t a, int64_t b) {
    float fa = fabsf(w[a]), fb = fabsf(w[b]);
    return fa < fb || (fa == fb && a > b);
}

static void pq_heap_sift_down(int64_t *heap, int64_t size, int64_t i, const float *w) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < size && pq_worse(w, heap[l], heap[m])) m = l;
        if (r < size && pq_worse(w, heap[r], heap[m])) m = r;
        if (m == i) return;
        int64_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

static void pq_heap_sift_up(int64_t *heap, int64_t i, const float *w) {
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!pq_worse(w, heap[i], heap[p])) return;
        int64_t t = heap[i];
        heap[i] = heap[p];
        heap[p] = t;
        i = p;
    }
}

enum pq_status pq_metrics_acc_add(pq_metrics_acc *acc, const float *w, const float *w_hat,
                                  int64_t rows, int64_t cols, int64_t group, const float *steps,
                                  pq_error *err) {
    if (!acc || !w || !w_hat || !steps || rows <= 0 || cols <= 0 || group <= 0 ||
        rows > ((int64_t)1 << 40) / cols)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "metrics: invalid arguments (%lld x %lld, group %lld)", (long long)rows,
                            (long long)cols, (long long)group);
    int64_t n = rows * cols;
    int64_t ngroups = (cols + group - 1) / group;
    int64_t k = (n + 99) / 100; /* max(1, ceil(0.01 n)) for n >= 1 */
    int64_t *heap = pq_malloc(sizeof(int64_t) * (size_t)k);
    if (!heap) return pq_error_nomem(err, "metrics: outlier heap");

    double se = 0.0, sw = 0.0, sh = 0.0, dot = 0.0;
    int64_t size = 0;
    for (int64_t i = 0; i < n; i++) {
        double wv = (double)w[i], hv = (double)w_hat[i], e = wv - hv;
        se += e * e;
        sw += wv * wv;
        sh += hv * hv;
        dot += wv * hv;
        if (size < k) {
            heap[size] = i;
            pq_heap_sift_up(heap, size++, w);
        } else if (pq_worse(w, heap[0], i)) {
            heap[0] = i;
            pq_heap_sift_down(heap, size, 0, w);
        }
    }
    int64_t kept = 0;
    for (int64_t j = 0; j < size; j++) {
        int64_t i = heap[j];
        int64_t r = i / cols, g = (i % cols) / group;
        double tol = fabs((double)steps[r * ngroups + g]);
        if (fabs((double)w[i] - (double)w_hat[i]) <= tol) kept++;
    }
    pq_free(heap);

    acc->n += n;
    acc->sum_e2 += se;
    acc->sum_w2 += sw;
    acc->sum_h2 += sh;
    acc->dot += dot;
    acc->outliers += size;
    acc->outliers_kept += kept;
    return PQ_OK;
}

enum pq_status pq_metrics_acc_add_packed(pq_metrics_acc *acc, const float *w, const uint8_t *packed,
                                         int64_t rows, int64_t cols, enum pq_qformat f,
                                         int64_t group, pq_error *err) {
    size_t bytes = pq_packed_bytes(f, rows, cols, group);
    if (!acc || !w || !packed || bytes == 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "metrics: invalid packed tensor (%lld x %lld, group %lld)",
                            (long long)rows, (long long)cols, (long long)group);
    int64_t ngroups = (cols + group - 1) / group;
    float *w_hat = pq_malloc(sizeof(float) * (size_t)(rows * cols));
    float *steps = pq_malloc(sizeof(float) * (size_t)(rows * ngroups));
    enum pq_status st = PQ_OK;
    if (!w_hat || !steps) {
        st = pq_error_nomem(err, "metrics: dequantized tensor");
        goto done;
    }
    PQ_TRY_GOTO(st, pq_dequantize_matrix(packed, rows, cols, f, group, w_hat, err), done);
    PQ_TRY_GOTO(st, pq_packed_group_steps(packed, rows, cols, f, group, steps, err), done);
    PQ_TRY_GOTO(st, pq_metrics_acc_add(acc, w, w_hat, rows, cols, group, steps, err), done);
    acc->stored_bytes += bytes;
done:
    pq_free(w_hat);
    pq_free(steps);
    return st;
}

void pq_metrics_acc_finish(const pq_metrics_acc *acc, pq_metrics *out) {
    out->n = acc->n;
    out->mse = acc->n > 0 ? acc->sum_e2 / (double)acc->n : 0.0;
    if (acc->sum_e2 == 0.0)
        out->sd_db = -INFINITY;
    else if (acc->sum_w2 == 0.0)
        out->sd_db = INFINITY;
    else
        out->sd_db = 10.0 * log10(acc->sum_e2 / acc->sum_w2);
    bool zw = acc->sum_w2 == 0.0, zh = acc->sum_h2 == 0.0;
    if (zw && zh)
        out->cosine = 1.0;
    else if (zw || zh)
        out->cosine = 0.0;
    else
        out->cosine = acc->dot / (sqrt(acc->sum_w2) * sqrt(acc->sum_h2));
    out->outliers = acc->outliers;
    out->outliers_kept = acc->outliers_kept;
    out->outlier_retention =
        acc->outliers > 0 ? (double)acc->outliers_kept / (double)acc->outliers : 1.0;
    out->bpw_actual = pq_bpw_actual(acc->stored_bytes, acc->n);
}

double pq_bpw_actual(uint64_t stored_bytes, int64_t n_weights) {
    if (n_weights <= 0) return 0.0;
    return 8.0 * (double)stored_bytes / (double)n_weights;
}

double pq_bpw_nominal(enum pq_qformat f, int64_t group) {
    if ((unsigned)f >= PQ_QFORMAT_COUNT || group <= 0) return 0.0;
    return (double)pq_qformat_bits(f) + 16.0 / (double)group;
}
