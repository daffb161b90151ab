/* GPTQ Hessians from calibration runs (SPEC section 4 "gptq"): H = X^T X of the inputs one
 * MatMul / Gemm / Conv multiplies with its weight, accumulated chunk by chunk (im2col tiles for
 * Conv). */
#include <math.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "calib.h"
#include "calib_drift.h"

/* Rows of X (im2col patches, transposed Gemm rows) built per tile: at most this many floats. */
#define PQ_HESS_TILE_FLOATS ((int64_t)1 << 18)

enum pq_hess_kind { PQ_HESS_MATMUL, PQ_HESS_GEMM, PQ_HESS_GEMM_T, PQ_HESS_CONV };

/* State of one Hessian collection. */
typedef struct pq_hess_ctx {
    uint32_t node;
    const char *node_name;
    enum pq_hess_kind kind;
    int64_t cols;
    int64_t w_dims[PQ_MAX_RANK]; /* Conv weight dims */
    int w_rank;
    double *h;
    int64_t rows;
    float *tile; /* tile_rows x cols scratch (Gemm transA, Conv) */
    int64_t tile_rows;
} pq_hess_ctx;

/* The constant f32 tensor behind value v: v itself, or the input of the FakeQuant producing it
 * (a weight quantized by an earlier pass); NULL otherwise. */
static const pq_tensor *pq_hess_weight(const pq_graph *g, uint32_t v) {
    if (v == PQ_NONE || v >= g->n_values) return NULL;
    const pq_value *val = &g->values[v];
    if (!val->constant && val->producer != PQ_NONE &&
        g->nodes[val->producer].op == PQ_OP_FAKE_QUANT)
        val = &g->values[g->nodes[val->producer].inputs[0]];
    if (!val->constant || val->constant->dtype != PQ_DTYPE_F32) return NULL;
    return val->constant;
}

/* Checks node and weight, sets kind / cols (and Conv weight dims). */
static enum pq_status pq_hess_setup(const pq_graph *g, uint32_t node, pq_hess_ctx *c,
                                    pq_error *err) {
    if (node >= g->n_nodes)
        return pq_error_set(err, PQ_ERR_INVALID, "hessian: node %u out of range (%u nodes)", node,
                            g->n_nodes);
    const pq_node *n = &g->nodes[node];
    c->node = node;
    c->node_name = n->name;
    const pq_tensor *w = pq_hess_weight(g, pq_node_input(n, 1));
    if (n->op != PQ_OP_MATMUL && n->op != PQ_OP_GEMM && n->op != PQ_OP_CONV)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "hessian: node '%s' (%s): only MatMul, Gemm and Conv have one", n->name,
                            pq_op_name(n->op));
    if (!w)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "hessian: node '%s' (%s): the weight (input 1) is not an f32 constant",
                            n->name, pq_op_name(n->op));
    if (n->op == PQ_OP_MATMUL) {
        if (w->rank != 2)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "hessian: node '%s' (MatMul): weight has %d dims; a batched weight "
                                "needs one Hessian per matrix",
                                n->name, w->rank);
        c->kind = PQ_HESS_MATMUL;
        c->cols = w->dims[0];
    } else if (n->op == PQ_OP_GEMM) {
        if (w->rank != 2)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "hessian: node '%s' (Gemm): weight has %d dims, expected 2",
                                n->name, w->rank);
        c->kind = pq_node_attr_int(n, "transA", 0) ? PQ_HESS_GEMM_T : PQ_HESS_GEMM;
        c->cols = pq_node_attr_int(n, "transB", 0) ? w->dims[1] : w->dims[0];
    } else {
        if (w->rank < 3 || w->rank > 2 + PQ_CONV_MAX_SPATIAL)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "hessian: node '%s' (Conv): weight has %d dims", n->name, w->rank);
        pq_conv_geom geom;
        enum pq_status st = pq_conv_geom_decode(n, NULL, w->rank - 2, w->dims + 2, &geom, err);
        if (st != PQ_OK) return pq_error_prefix(err, "hessian: node '%s' (Conv): ", n->name);
        if (geom.group != 1)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "hessian: node '%s' (Conv): group = %lld (grouped/depthwise "
                                "convolutions have one Hessian per group)",
                                n->name, (long long)geom.group);
        c->kind = PQ_HESS_CONV;
        c->cols = 1;
        for (int d = 1; d < w->rank; d++)
            c->cols *= w->dims[d];
        c->w_rank = w->rank;
        memcpy(c->w_dims, w->dims, sizeof(int64_t) * (size_t)w->rank);
    }
    if (c->cols < 1 || c->cols > 65536)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "hessian: node '%s' (%s): %lld weight columns (1..65536 supported)",
                            n->name, pq_op_name(n->op), (long long)c->cols);
    return PQ_OK;
}

/* The scratch tile, allocated on first use. */
static enum pq_status pq_hess_tile(pq_hess_ctx *c, pq_error *err) {
    if (c->tile) return PQ_OK;
    c->tile_rows = PQ_HESS_TILE_FLOATS / c->cols;
    if (c->tile_rows < 1) c->tile_rows = 1;
    c->tile = pq_malloc(sizeof(float) * (size_t)(c->tile_rows * c->cols));
    if (!c->tile) return pq_error_nomem(err, "hessian tile");
    return PQ_OK;
}

/* Conv: accumulates the im2col patches of x [N, Cin, spatial...] tile by tile. A patch row is
 * (cin, k...) in the weight row's order; positions outside the input read as 0. */
static enum pq_status pq_hess_conv(pq_hess_ctx *c, const pq_graph *g, const pq_tensor *x,
                                   pq_error *err) {
    const pq_node *n = &g->nodes[c->node];
    int nsp = c->w_rank - 2;
    if (x->rank != c->w_rank || x->dims[1] != c->w_dims[1])
        return pq_error_set(err, PQ_ERR_INVALID,
                            "hessian: node '%s' (Conv): input has %d dims and %lld channels, the "
                            "weight expects %d dims and %lld channels",
                            c->node_name, x->rank, x->rank > 1 ? (long long)x->dims[1] : 0LL,
                            c->w_rank, (long long)c->w_dims[1]);
    pq_conv_geom geom;
    enum pq_status st = pq_conv_geom_decode(n, x->dims + 2, nsp, c->w_dims + 2, &geom, err);
    if (st != PQ_OK) return pq_error_prefix(err, "hessian: node '%s' (Conv): ", c->node_name);
    PQ_TRY(pq_hess_tile(c, err));
    int64_t cin = x->dims[1], kpos = c->cols / cin, npos = 1, insz = 1;
    for (int d = 0; d < nsp; d++) {
        npos *= geom.out[d];
        insz *= x->dims[2 + d];
    }
    const float *xd = x->data;
    for (int64_t b = 0; b < x->dims[0]; b++) {
        const float *xb = xd + b * cin * insz;
        for (int64_t p0 = 0; p0 < npos; p0 += c->tile_rows) {
            int64_t np = npos - p0 < c->tile_rows ? npos - p0 : c->tile_rows;
            for (int64_t t = 0; t < np; t++) {
                int64_t o[PQ_CONV_MAX_SPATIAL], rem = p0 + t;
                for (int d = nsp - 1; d >= 0; d--) {
                    o[d] = rem % geom.out[d];
                    rem /= geom.out[d];
                }
                float *row = c->tile + t * c->cols;
                for (int64_t kk = 0; kk < kpos; kk++) {
                    int64_t off = 0, krem = kk, mul = 1;
                    bool inside = true;
                    for (int d = nsp - 1; d >= 0; d--) {
                        int64_t k = krem % geom.kernel[d];
                        krem /= geom.kernel[d];
                        int64_t i =
                            o[d] * geom.strides[d] - geom.pads_begin[d] + k * geom.dilations[d];
                        if (i < 0 || i >= x->dims[2 + d]) inside = false;
                        off += i * mul;
                        mul *= x->dims[2 + d];
                    }
                    for (int64_t ci = 0; ci < cin; ci++)
                        row[ci * kpos + kk] = inside ? xb[ci * insz + off] : 0.0f;
                }
            }
            pq_gptq_hessian_add(c->h, c->tile, np, c->cols);
            c->rows += np;
        }
    }
    return PQ_OK;
}

static enum pq_status pq_hess_observe(void *vctx, const pq_graph *g, uint32_t node,
                                      const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    pq_hess_ctx *c = vctx;
    if (node != c->node) return PQ_OK;
    const pq_tensor *x = n_in > 0 ? in[0] : NULL;
    if (!x || x->dtype != PQ_DTYPE_F32 || x->rank < 1)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "hessian: node '%s': input 0 is not an f32 tensor", c->node_name);
    int64_t numel = pq_tensor_numel(x);
    if (c->kind == PQ_HESS_CONV) return pq_hess_conv(c, g, x, err);
    if (c->kind == PQ_HESS_MATMUL || c->kind == PQ_HESS_GEMM) {
        if (x->dims[x->rank - 1] != c->cols || (c->kind == PQ_HESS_GEMM && x->rank != 2))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "hessian: node '%s': input has last dim %lld, the weight has %lld "
                                "columns",
                                c->node_name, (long long)x->dims[x->rank - 1], (long long)c->cols);
        pq_gptq_hessian_add(c->h, x->data, numel / c->cols, c->cols);
        c->rows += numel / c->cols;
        return PQ_OK;
    }
    /* Gemm transA: A is [K, M]; the rows of op(A) = A^T are A's columns */
    if (x->rank != 2 || x->dims[0] != c->cols)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "hessian: node '%s' (Gemm transA): input is not [%lld, M]",
                            c->node_name, (long long)c->cols);
    PQ_TRY(pq_hess_tile(c, err));
    const float *xd = x->data;
    int64_t m = x->dims[1];
    for (int64_t r0 = 0; r0 < m; r0 += c->tile_rows) {
        int64_t nr = m - r0 < c->tile_rows ? m - r0 : c->tile_rows;
        for (int64_t t = 0; t < nr; t++)
            for (int64_t k = 0; k < c->cols; k++)
                c->tile[t * c->cols + k] = xd[k * m + r0 + t];
        pq_gptq_hessian_add(c->h, c->tile, nr, c->cols);
        c->rows += nr;
    }
    return PQ_OK;
}

enum pq_status pq_calib_hessian(pq_graph *g, const pq_calib_set *cs, uint32_t node, double **h,
                                int64_t *cols, int64_t *nsamples, pq_error *err) {
    *h = NULL;
    *cols = 0;
    *nsamples = 0;
    pq_hess_ctx c;
    memset(&c, 0, sizeof c);
    PQ_TRY(pq_calib_set_check_finite(g, cs, err));
    PQ_TRY(pq_hess_setup(g, node, &c, err));
    c.h = pq_calloc((size_t)(c.cols * c.cols), sizeof(double));
    if (!c.h) return pq_error_nomem(err, "hessian");
    enum pq_status st = pq_calib_run(g, cs, pq_hess_observe, &c, err);
    pq_free(c.tile);
    if (st != PQ_OK) {
        pq_free(c.h);
        return st;
    }
    for (int64_t i = 0; i < c.cols * c.cols; i++) {
        if (isfinite(c.h[i])) continue;
        const char *what = isnan(c.h[i]) ? "nan" : "inf";
        pq_free(c.h);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "hessian: node '%s': the layer's inputs over the calibration data are "
                            "not finite (Hessian entry [%lld, %lld] is %s)",
                            c.node_name ? c.node_name : "?", (long long)(i / c.cols),
                            (long long)(i % c.cols), what);
    }
    *h = c.h;
    *cols = c.cols;
    *nsamples = c.rows;
    return PQ_OK;
}
