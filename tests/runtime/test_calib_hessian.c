/* Tests of pq_calib_hessian: H equals X^T X computed here, independently, from the layer's actual
 * input (captured with an observer; Conv im2col written out separately) for MatMul, Gemm (transA,
 * transB) and Conv (pads, strides, dilations, 1-D); chunking; UNSUPPORTED cases name the node. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/text.h"
#include "runtime/calib.h"

/* Parses text IR, replaces every constant named in fill[] by deterministic values in [-1, 1],
 * and prepares the graph. */
static pq_graph *build(const char *text, const char *const *fill, uint32_t nfill) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    for (uint32_t f = 0; f < nfill; f++) {
        uint32_t v = pq_graph_find_value(g, fill[f]);
        cr_assert_neq(v, PQ_NONE, "%s", fill[f]);
        float *d = g->values[v].constant->data;
        int64_t n = pq_tensor_numel(g->values[v].constant);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)sin(0.37 * (double)i + 1.3 * (double)f) * 0.9f;
    }
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* A calibration tensor [n, rest...] with values (roughly in [-2, 2], about 1 in 7 exactly 0). */
static pq_tensor *calib_input(int rank, const int64_t *dims, uint32_t seed) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    cr_assert(t);
    float *d = t->data;
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int r = (int)(s >> 33) % 1000;
        d[i] = r % 7 == 0 ? 0.0f : (float)(r - 500) / 250.0f;
    }
    return t;
}

/* Captured inputs of one node: every chunk's input 0, copied. */
typedef struct capture {
    uint32_t node;
    pq_tensor *chunks[64];
    uint32_t n;
} capture;

static enum pq_status capture_observe(void *vctx, const pq_graph *g, uint32_t node,
                                      const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)g;
    (void)n_in;
    capture *c = vctx;
    if (node != c->node) return PQ_OK;
    cr_assert(c->n < 64);
    c->chunks[c->n] = pq_tensor_clone(in[0], err);
    cr_assert(c->chunks[c->n]);
    c->n++;
    return PQ_OK;
}

static void capture_free(capture *c) {
    for (uint32_t i = 0; i < c->n; i++)
        pq_tensor_destroy(c->chunks[i]);
    c->n = 0;
}

static uint32_t node_named(const pq_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    cr_assert_fail("no node '%s'", name);
    return PQ_NONE;
}

/* |a - b| <= 1e-12 * (1 + max|b|) elementwise; returns max|b|. */
static double assert_close(const double *a, const double *b, int64_t n, const char *what) {
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(a[i] - b[i]) <= 1e-12 * (1 + mx), "%s: H[%lld] = %.17g, expected %.17g",
                  what, (long long)i, a[i], b[i]);
    return mx;
}

/* Reference H of a feature-last input: every vector along the last axis is a row of X. */
static double *ref_rows(const capture *c, int64_t k, int64_t *rows) {
    double *h = calloc((size_t)(k * k), sizeof *h);
    *rows = 0;
    for (uint32_t ci = 0; ci < c->n; ci++) {
        const float *x = c->chunks[ci]->data;
        int64_t nr = pq_tensor_numel(c->chunks[ci]) / k;
        for (int64_t r = 0; r < nr; r++)
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < k; j++)
                    h[i * k + j] += (double)x[r * k + i] * (double)x[r * k + j];
        *rows += nr;
    }
    return h;
}

/* Runs pq_calib_hessian on node `name` and the capture on the same set; returns H. */
static double *hessian_and_capture(pq_graph *g, const char *name, pq_tensor *in, capture *cap,
                                   int64_t *cols, int64_t *rows) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *ins[1] = {in};
    pq_calib_set cs = {ins, 1, in->dims[0]};
    double *h = NULL;
    uint32_t nid = node_named(g, name);
    cr_assert_eq(pq_calib_hessian(g, &cs, nid, &h, cols, rows, &err), PQ_OK, "%s", err.msg);
    cr_assert(h);
    memset(cap, 0, sizeof *cap);
    cap->node = nid;
    cr_assert_eq(pq_calib_run(g, &cs, capture_observe, cap, &err), PQ_OK, "%s", err.msg);
    return h;
}

Test(calib_hessian, matmul_rank3_activation_in_chunks) {
    static const char *const fill[] = {"w", "s"};
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 3, 8]\n"
                        "  const %s: f32[8] = [0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  const %w: f32[8, 5] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
                        "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  %a = Mul(%x, %s)  # scale\n"
                        "  %y = MatMul(%a, %w)  # mm\n"
                        "  output %y\n}\n",
                        fill, 2);
    int64_t dims[3] = {70, 3, 8}; /* 3 chunks of up to 32 samples */
    pq_tensor *in = calib_input(3, dims, 1);
    capture cap;
    int64_t cols = 0, rows = 0, rrows = 0;
    double *h = hessian_and_capture(g, "mm", in, &cap, &cols, &rows);
    cr_assert_eq(cap.n, 3u, "chunks: %u", cap.n);
    cr_assert_eq(cols, 8);
    cr_assert_eq(rows, 70 * 3);
    double *ref = ref_rows(&cap, 8, &rrows);
    cr_assert_eq(rrows, rows);
    cr_assert_gt(assert_close(h, ref, 64, "MatMul"), 1.0);
    /* symmetric, both triangles */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            cr_assert_eq(h[i * 8 + j], h[j * 8 + i]);
    free(ref);
    pq_free(h);
    capture_free(&cap);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
}

Test(calib_hessian, gemm_trans_a_and_trans_b) {
    static const char *const fill[] = {"w", "v"};
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 6]\n"
                        "  const %w: f32[6, 4] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
                        "0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  const %v: f32[3, 4] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  %t = Transpose(%x) {perm = [1, 0]}  # tr\n"
                        "  %y = Gemm(%t, %w) {transA = 1}  # ga\n"
                        "  %z = Gemm(%y, %v) {transB = 1}  # gb\n"
                        "  output %z\n}\n",
                        fill, 2);
    int64_t dims[2] = {45, 6};
    pq_tensor *in = calib_input(2, dims, 2);
    capture cap;
    int64_t cols = 0, rows = 0;
    /* transA: A = x^T [6, N]; rows of op(A) are A's columns, i.e. x's rows */
    double *h = hessian_and_capture(g, "ga", in, &cap, &cols, &rows);
    cr_assert_eq(cols, 6);
    cr_assert_eq(rows, 45);
    double *ref = calloc(36, sizeof *ref);
    for (uint32_t ci = 0; ci < cap.n; ci++) {
        const pq_tensor *a = cap.chunks[ci];
        cr_assert_eq(a->dims[0], 6);
        const float *d = a->data;
        int64_t m = a->dims[1];
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 6; j++)
                for (int64_t r = 0; r < m; r++)
                    ref[i * 6 + j] += (double)d[i * m + r] * (double)d[j * m + r];
    }
    assert_close(h, ref, 36, "Gemm transA");
    free(ref);
    pq_free(h);
    capture_free(&cap);
    /* transB: B [N=3, K=4] -> cols 4 */
    int64_t rrows = 0;
    h = hessian_and_capture(g, "gb", in, &cap, &cols, &rows);
    cr_assert_eq(cols, 4);
    cr_assert_eq(rows, 45);
    ref = ref_rows(&cap, 4, &rrows);
    assert_close(h, ref, 16, "Gemm transB");
    free(ref);
    pq_free(h);
    capture_free(&cap);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
}

/* Independent im2col for a 2-D Conv: patch (n, oh, ow) has column c*kh*kw + i*kw + j =
 * x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw] (0 outside). */
static double *ref_conv2d(const capture *c, int64_t cout_unused, int64_t kh, int64_t kw, int64_t sh,
                          int64_t sw, int64_t pt, int64_t pl, int64_t pb, int64_t pr, int64_t dh,
                          int64_t dw, int64_t *rows) {
    (void)cout_unused;
    int64_t cin = c->chunks[0]->dims[1], cols = cin * kh * kw;
    double *h = calloc((size_t)(cols * cols), sizeof *h);
    float *patch = malloc(sizeof(float) * (size_t)cols);
    *rows = 0;
    for (uint32_t ci = 0; ci < c->n; ci++) {
        const pq_tensor *x = c->chunks[ci];
        int64_t H = x->dims[2], W = x->dims[3];
        int64_t oh_n = (H + pt + pb - dh * (kh - 1) - 1) / sh + 1;
        int64_t ow_n = (W + pl + pr - dw * (kw - 1) - 1) / sw + 1;
        const float *d = x->data;
        for (int64_t n = 0; n < x->dims[0]; n++)
            for (int64_t oh = 0; oh < oh_n; oh++)
                for (int64_t ow = 0; ow < ow_n; ow++) {
                    for (int64_t ch = 0; ch < cin; ch++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t y = oh * sh - pt + i * dh, xx = ow * sw - pl + j * dw;
                                bool in = y >= 0 && y < H && xx >= 0 && xx < W;
                                patch[(ch * kh + i) * kw + j] =
                                    in ? d[((n * cin + ch) * H + y) * W + xx] : 0.0f;
                            }
                    for (int64_t a = 0; a < cols; a++)
                        for (int64_t b = 0; b < cols; b++)
                            h[a * cols + b] += (double)patch[a] * (double)patch[b];
                    (*rows)++;
                }
    }
    free(patch);
    return h;
}

Test(calib_hessian, conv_pads_stride2) {
    static const char *const fill[] = {"w", "w2"};
    char text[4096];
    char zeros[2048] = "";
    for (int i = 0; i < 54; i++)
        strcat(zeros, i ? ", 0" : "0");
    char zeros2[2048] = "";
    for (int i = 0; i < 4 * 3 * 2 * 3; i++)
        strcat(zeros2, i ? ", 0" : "0");
    snprintf(text, sizeof text,
             "piqc 1\ngraph t {\n"
             "  input %%x: f32[N, 2, 7, 6]\n"
             "  const %%w: f32[3, 2, 3, 3] = [%s]\n"
             "  const %%w2: f32[4, 3, 2, 3] = [%s]\n"
             "  %%r = Relu(%%x)  # relu\n"
             "  %%c = Conv(%%r, %%w) {pads = [1, 1, 1, 1], strides = [2, 2]}  # conv\n"
             "  %%d = Conv(%%c, %%w2) {pads = [0, 1, 2, 0], dilations = [2, 1], strides = [1, 2]}"
             "  # conv2\n"
             "  output %%d\n}\n",
             zeros, zeros2);
    pq_graph *g = build(text, fill, 2);
    int64_t dims[4] = {37, 2, 7, 6};
    pq_tensor *in = calib_input(4, dims, 3);
    capture cap;
    int64_t cols = 0, rows = 0, rrows = 0;
    double *h = hessian_and_capture(g, "conv", in, &cap, &cols, &rows);
    cr_assert_eq(cols, 18);
    cr_assert_eq(rows, 37 * 4 * 3, "rows %lld", (long long)rows); /* out 4 x 3 */
    double *ref = ref_conv2d(&cap, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, &rrows);
    cr_assert_eq(rrows, rows);
    assert_close(h, ref, 18 * 18, "Conv pads stride 2");
    free(ref);
    pq_free(h);
    capture_free(&cap);
    /* asymmetric pads, dilation, stride (1, 2) on a 4 x 3 input */
    h = hessian_and_capture(g, "conv2", in, &cap, &cols, &rows);
    cr_assert_eq(cols, 18);
    ref = ref_conv2d(&cap, 4, 2, 3, 1, 2, 0, 1, 2, 0, 2, 1, &rrows);
    cr_assert_eq(rrows, rows);
    assert_close(h, ref, 18 * 18, "Conv dilation");
    free(ref);
    pq_free(h);
    capture_free(&cap);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
}

Test(calib_hessian, conv1d_matches_a_2d_view) {
    /* a 1-D conv equals the 2-D reference with a kernel and input of height 1 */
    static const char *const fill[] = {"w"};
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 2, 9]\n"
                        "  const %w: f32[2, 2, 3] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  %c = Conv(%x, %w) {pads = [1, 2], strides = [2], dilations = [2]}  # c\n"
                        "  output %c\n}\n",
                        fill, 1);
    int64_t dims[3] = {5, 2, 9};
    pq_tensor *in = calib_input(3, dims, 4);
    capture cap;
    int64_t cols = 0, rows = 0, rrows = 0;
    double *h = hessian_and_capture(g, "c", in, &cap, &cols, &rows);
    cr_assert_eq(cols, 6);
    for (uint32_t i = 0; i < cap.n; i++) { /* [n, 2, 9] -> [n, 2, 1, 9] */
        pq_tensor *t = cap.chunks[i];
        t->rank = 4;
        t->dims[3] = t->dims[2];
        t->dims[2] = 1;
    }
    double *ref = ref_conv2d(&cap, 2, 1, 3, 1, 2, 0, 1, 0, 2, 1, 2, &rrows);
    cr_assert_eq(rrows, rows);
    cr_assert_eq(rows, 5 * 4); /* (9 + 3 - 2 * 2 - 1) / 2 + 1 = 4 positions */
    assert_close(h, ref, 36, "Conv 1-D");
    free(ref);
    pq_free(h);
    capture_free(&cap);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
}

Test(calib_hessian, unsupported_cases_name_the_node) {
    static const char *const fill[] = {"w", "wb"};
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 2, 4, 4]\n"
                        "  const %w: f32[2, 1, 3, 3] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
                        "0, 0, 0, 0]\n"
                        "  const %wb: f32[2, 4, 3] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
                        "0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
                        "  %c = Conv(%x, %w) {group = 2, pads = [1, 1, 1, 1]}  # dw\n"
                        "  %r = Relu(%c)  # relu\n"
                        "  %m = MatMul(%r, %wb)  # batched\n"
                        "  output %m\n}\n",
                        fill, 2);
    int64_t dims[4] = {2, 2, 4, 4};
    pq_tensor *in = calib_input(4, dims, 5);
    pq_tensor *ins[1] = {in};
    pq_calib_set cs = {ins, 1, 2};
    static const struct {
        const char *node, *msg;
    } cases[] = {
        {"dw", "hessian: node 'dw' (Conv): group = 2"},
        {"relu", "node 'relu' (Relu): only MatMul, Gemm and Conv"},
        {"batched", "node 'batched' (MatMul): weight has 3 dims"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pq_error err;
        pq_error_clear(&err);
        double *h = (double *)1;
        int64_t cols = 7, rows = 7;
        cr_assert_eq(pq_calib_hessian(g, &cs, node_named(g, cases[i].node), &h, &cols, &rows, &err),
                     PQ_ERR_UNSUPPORTED, "%s", cases[i].node);
        cr_assert(strstr(err.msg, cases[i].msg), "%s: '%s'", cases[i].node, err.msg);
        cr_assert_null(h);
        cr_assert_eq(cols, 0);
        cr_assert_eq(rows, 0);
    }
    pq_error err;
    pq_error_clear(&err);
    double *h = NULL;
    int64_t cols = 0, rows = 0;
    cr_assert_eq(pq_calib_hessian(g, &cs, 999, &h, &cols, &rows, &err), PQ_ERR_INVALID);
    pq_tensor_destroy(in);
    pq_graph_destroy(g);
}
