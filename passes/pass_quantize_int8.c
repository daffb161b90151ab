/* quantize-int8: selected Conv / Gemm / MatMul layers run in INT8 (SPEC 3): u8 activations with
 * calibrated ranges (SPEC 4), s8 per-channel weights, i32 bias, as standard ONNX QLinear ops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/build.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"
#include "pass.h"
#include "select.h"
#include "weights.h"

/* What the pass produces for one layer (x f32 -> y f32, y after its fused activation):
 *
 *   Conv:   x -> QuantizeLinear(x, s_x, zp_x) -> QLinearConv(x_q, s_x, zp_x, w_q, s_w, zp_w, s_y,
 *           zp_y, b_q) -> DequantizeLinear(y_q, s_y, zp_y) -> y
 *   MatMul / Gemm without C: the same with QLinearMatMul (no bias input);
 *   Gemm with C: QLinearMatMul computes y0 = x W (its own calibrated range) -> DequantizeLinear
 *           -> Add(y0, C) in FP32 -> y. QLinearMatMul has no bias input; a float Add after the
 *           DequantizeLinear keeps the bias exact and can carry any fused activation (the Add
 *           executes it), at the cost of one more u8 rounding of y0. The Gemm is first split into
 *           Gemm(x, W) + Add(., C) in FP32 (exact) so that y0 exists and its range is calibrated.
 *
 * - s_x, zp_x, s_y, zp_y: pq_u8_params over the range ctx->calib->ranges reports for x and y
 *   (option activations: minmax | percentile at option percentile), f32 / u8 scalars.
 * - w_q: i8, s_w = max|w| / 127 per output channel (per-channel: true; false: one scale for the
 *   tensor), zp_w = 0 (i8, same shape as s_w). Conv keeps W's layout [M, C/group, k...];
 * QLinearMatMul reads B as [K, N], so a Gemm weight with transB = 1 ([N, K]) is stored transposed.
 * - b_q: i32 rne(b / (s_x * s_w[m])) (pq_int8_quantize_bias), QLinearConv's 9th input.
 * - The u8 clamp of the output realises the fused activation: Relu (and Clip with min 0 and no
 *   max) because a range with min >= 0 gives zp_y = 0, so the clamp at 0 is Relu exactly; Clip(0,
 *   m) by setting y's range to exactly [0, m], so the clamp at 255 is m. A Conv's HardSwish,
 *   HardSigmoid, LeakyRelu or other Clip stays on the QLinearConv as its fused activation: the
 *   INT8 epilogue applies it to the real result before quantizing to y (backends/int8/
 *   int8_gemm.h; the QDQ export writes it as Conv -> activation -> QuantizeLinear). Other fused
 *   activations (Sigmoid, Tanh, Gelu, Swish) and those on MatMul / Gemm without C leave the layer
 *   FP32 (log line). A Gemm with C keeps any activation on its FP32 Add.
 * - Clean-up: QuantizeLinear(DequantizeLinear(q, s, z), s', z') with s == s' and z == z' (equal
 *   constants) is q exactly (k * s / s rounds back to k for |k| <= 255), so adjacent int8 layers
 *   (the input range of the second is the output range of the first: same value, same params)
 *   pass u8 directly. MaxPool (without Indices), Flatten and Reshape run on u8: the
 *   DequantizeLinear moves after them (pq_i8_sink_dq) and the next layer quantizes with the
 *   upstream scale (pq_i8_upstream), so its QuantizeLinear cancels. An Add (no fused activation
 *   or Relu) whose two inputs are int8 results becomes QLinearAdd (option qlinear-add, default
 *   on): u8 in, u8 out on its own calibrated output range, defined as DequantizeLinear x2 -> Add
 *   [-> Relu] -> QuantizeLinear in f32 (pq_i8_qlinear_adds), so residual blocks pass u8 from one
 *   to the next. Other ops between int8 layers (Concat, GlobalAveragePool, Mul, an Add with an
 *   FP32 input, ...) stay FP32 with a DequantizeLinear before and a QuantizeLinear after (logged).
 * Stays FP32 (logged with the reason): ConvTranspose, Conv other than 1-D / 2-D, a Conv bias that
 * is not an f32 constant [M], Gemm with transA or alpha != 1 or beta != 1, a batched MatMul
 * weight, a non-f32 or constant layer input, a bias outside the i32 range, activations above.
 * Errors: INVALID without calibration data, INVALID naming the tensor and index for a non-finite
 * weight (SPEC 1), what the ranges callback returns. Records one pq_quant_record per layer (format
 * int8, stored bytes = 1 per weight + 4 per scale). */

static const char *const pq_i8_methods[] = {"minmax", "percentile", NULL};

/* The select options (same names and types as PQ_SELECT_OPTION_ENTRIES, read by
 * pq_select_weights), with INT8 defaults: every Conv, Gemm and MatMul, whatever its size (a small
 * first layer costs nothing to quantize and keeps u8 flowing). */
static const pq_pass_option pq_quantize_int8_options[] = {
    {"targets", PQ_OPT_ENUM_LIST, "ops whose layers run in INT8", "[Conv, Gemm, MatMul]", 0, 0,
     pq_select_target_choices},
    {"include", PQ_OPT_STRING, "POSIX extended regex on node or weight name: only these layers",
     NULL, 0, 0, NULL},
    {"exclude", PQ_OPT_STRING, "POSIX extended regex on node or weight name: leave these layers",
     NULL, 0, 0, NULL},
    {"min-elements", PQ_OPT_INT, "leave weights with fewer elements", "0", 0, 1099511627776.0,
     NULL},
    {"skip", PQ_OPT_ENUM_LIST, "leave the first and/or last selected layer", "[]", 0, 0,
     pq_select_skip_choices},
    {"activations", PQ_OPT_ENUM, "activation range calibration (SPEC 4)", "percentile", 0, 0,
     pq_i8_methods},
    {"percentile", PQ_OPT_FLOAT, "two-sided percentile of activation ranges (percentile only)",
     "99.99", 50, 100, NULL},
    {"per-channel", PQ_OPT_BOOL, "one weight scale per output channel (false: one per tensor)",
     "true", 0, 0, NULL},
    {"qlinear-add", PQ_OPT_BOOL,
     "an Add [Relu] of two int8 results runs on u8 as QLinearAdd (false: FP32 between DQ and Q)",
     "true", 0, 0, NULL},
    {"qlinear-mul", PQ_OPT_BOOL,
     "a Mul of two int8 results (squeeze-excite) runs on u8 as QLinearMul (false: FP32)", "true", 0,
     0, NULL},
    {"qlinear-pool", PQ_OPT_BOOL,
     "a GlobalAveragePool of an int8 result runs on u8 as QLinearGlobalAveragePool (false: FP32)",
     "true", 0, 0, NULL},
};

/* One selected layer. */
typedef struct pq_i8_layer {
    uint32_t node; /* the Conv / MatMul / Gemm node (becomes the QLinear node) */
    enum pq_op op;
    pq_weight_view view;
    uint32_t x, y;     /* f32 input; output of the node (after a Gemm split: y0 before the bias) */
    bool split_bias;   /* Gemm with C: C moves to an FP32 Add after the DequantizeLinear */
    uint32_t bias_add; /* that Add node, else PQ_NONE */
    pq_activation act;
    bool keep_act; /* the activation stays on the QLinearConv (fused epilogue) */
    bool ok;
    char why[256];
    float xlo, xhi, ylo, yhi;
} pq_i8_layer;

/* Quantized weight of one weight value (shared weights are quantized once). */
typedef struct pq_i8_weight {
    uint32_t value;                /* f32 weight */
    uint32_t q, scale, zero_point; /* i8 codes, f32 scales, i8 zero points */
    float *s_w;                    /* rows entries (per tensor: all equal) */
    int64_t rows, cols;
    pq_quant_record rec; /* added once a layer using it is rewritten (node_name set then) */
    char name[512];      /* rec.value_name */
    bool recorded;
} pq_i8_weight;

static void pq_i8_weights_free(pq_i8_weight *w, uint32_t n) {
    for (uint32_t i = 0; i < n && w; i++)
        pq_free(w[i].s_w);
    pq_free(w);
}

/* Whether act can be realised by the u8 output clamp (None, Relu, Clip with min 0 and max > 0). */
static bool pq_i8_act_exact(const pq_activation *a) {
    if (a->kind == PQ_ACT_NONE || a->kind == PQ_ACT_RELU) return true;
    return a->kind == PQ_ACT_CLIP && a->alpha == 0.0f && a->beta > 0.0f;
}

/* Whether QLinearConv's INT8 epilogue computes act (the kernels' fused activations). */
static bool pq_i8_act_fusable(const pq_activation *a) {
    return a->kind == PQ_ACT_HARD_SWISH || a->kind == PQ_ACT_HARD_SIGMOID ||
           a->kind == PQ_ACT_LEAKY_RELU || a->kind == PQ_ACT_CLIP || a->kind == PQ_ACT_SIGMOID ||
           a->kind == PQ_ACT_SWISH;
}

/* Decides whether layer L (node tg->node) can run in INT8; L->why says why not. */
static void pq_i8_classify(const pq_graph *g, const pq_weight_target *tg, pq_i8_layer *L) {
    const pq_node *n = &g->nodes[tg->node];
    memset(L, 0, sizeof *L);
    L->node = tg->node;
    L->op = n->op;
    L->view = tg->view;
    L->x = pq_node_input(n, 0);
    L->y = pq_node_output(n, 0);
    L->ok = false;
    L->bias_add = PQ_NONE;
    const pq_value *xv = L->x != PQ_NONE ? &g->values[L->x] : NULL;
    if (n->n_outputs != 1 || L->y == PQ_NONE) {
        snprintf(L->why, sizeof L->why, "more than one output");
        return;
    }
    if (!xv || xv->dtype != PQ_DTYPE_F32 || xv->constant) {
        snprintf(L->why, sizeof L->why, "input is not an f32 activation");
        return;
    }
    if (pq_node_activation(n, &L->act, NULL) != PQ_OK) {
        snprintf(L->why, sizeof L->why, "unknown fused activation");
        return;
    }
    bool exact = pq_i8_act_exact(&L->act);
    const char *act_name = pq_act_name(L->act.kind);
    if (n->op == PQ_OP_CONV) {
        if (L->view.rank != 3 && L->view.rank != 4) {
            snprintf(L->why, sizeof L->why, "%d-D convolution (only 1-D and 2-D run in INT8)",
                     L->view.rank - 2);
            return;
        }
        uint32_t b = pq_node_input(n, 2);
        if (b != PQ_NONE) {
            const pq_tensor *bt = g->values[b].constant;
            if (!bt || bt->dtype != PQ_DTYPE_F32 || bt->rank != 1 || bt->dims[0] != L->view.rows ||
                (g->values[b].flags & PQ_VALUE_INPUT)) {
                snprintf(L->why, sizeof L->why, "bias is not an f32 constant [%lld]",
                         (long long)L->view.rows);
                return;
            }
        }
    } else if (n->op == PQ_OP_GEMM) {
        uint32_t c = pq_node_input(n, 2);
        if (pq_node_attr_int(n, "transA", 0) != 0 || pq_node_attr_float(n, "alpha", 1.0f) != 1.0f ||
            (c != PQ_NONE && pq_node_attr_float(n, "beta", 1.0f) != 1.0f)) {
            snprintf(L->why, sizeof L->why, "transA, alpha != 1 or beta != 1");
            return;
        }
        if (c != PQ_NONE && g->values[c].dtype != PQ_DTYPE_F32) {
            snprintf(L->why, sizeof L->why, "C is not f32");
            return;
        }
        L->split_bias = c != PQ_NONE;
        if (L->split_bias) exact = true; /* the FP32 Add runs the activation */
    } else if (n->op == PQ_OP_MATMUL) {
        if (L->view.rank != 2) {
            snprintf(L->why, sizeof L->why, "batched weight (rank %d)", L->view.rank);
            return;
        }
        if (xv->shape.rank >= 0 && xv->shape.rank < 2) {
            snprintf(L->why, sizeof L->why, "1-D input");
            return;
        }
    } else {
        snprintf(L->why, sizeof L->why, "%s has no INT8 kernel", pq_op_name(n->op));
        return;
    }
    if (!exact && n->op == PQ_OP_CONV && pq_i8_act_fusable(&L->act)) {
        L->keep_act = true;
        exact = true;
    }
    if (!exact) {
        snprintf(L->why, sizeof L->why,
                 "fused activation %s has no exact u8 form and no INT8 epilogue here (Relu and "
                 "Clip(0, max) are the u8 clamp; a Conv's HardSwish, HardSigmoid, LeakyRelu, "
                 "Clip, Sigmoid and Swish run in its epilogue)",
                 act_name);
        return;
    }
    L->ok = true;
}

/* After pq_graph_replace_all_uses(old_v, new_v): new_v carries the original name (when it was a
 * graph output the name moved already) and old_v is renamed "<orig><suffix>". */
static enum pq_status pq_i8_names(pq_graph *g, uint32_t old_v, uint32_t new_v, const char *orig,
                                  const char *suffix, pq_error *err) {
    char hint[512];
    snprintf(hint, sizeof hint, "%s%s", orig, suffix);
    const char *fresh = pq_graph_fresh_value_name(g, hint);
    if (!fresh) return pq_error_nomem(err, "value name");
    PQ_TRY(pq_graph_rename_value(g, old_v, fresh, err));
    if (strcmp(g->values[new_v].name, orig) != 0)
        PQ_TRY(pq_graph_rename_value(g, new_v, orig, err));
    return PQ_OK;
}

/* Phase A for a Gemm with C: Gemm(x, W, C){act} -> y becomes Gemm(x, W) -> y0, Add(y0, C){act}
 * -> y (y keeps its name and uses; *out_add is its id). L->y is y0 afterwards. */
static enum pq_status pq_i8_split_bias(pq_graph *g, pq_i8_layer *L, uint32_t *out_add,
                                       pq_error *err) {
    uint32_t nid = L->node, y = L->y, c = pq_node_input(&g->nodes[nid], 2), y_add, aid;
    char orig[512], nname[512];
    snprintf(orig, sizeof orig, "%s", g->values[y].name);
    snprintf(nname, sizeof nname, "%s/bias", g->nodes[nid].name);
    PQ_TRY(pq_graph_add_temp(g, NULL, &y_add, err));
    *out_add = y_add;
    PQ_TRY(pq_graph_replace_all_uses(g, y, y_add, err));
    PQ_TRY(pq_i8_names(g, y, y_add, orig, "_matmul", err));
    const char *an = pq_graph_fresh_node_name(g, nname);
    if (!an) return pq_error_nomem(err, "node name");
    uint32_t ins[2] = {y, c};
    PQ_TRY(pq_graph_add_node(g, PQ_OP_ADD, an, ins, 2, &y_add, 1, &aid, err));
    L->bias_add = aid;
    if (L->act.kind != PQ_ACT_NONE) {
        PQ_TRY(pq_node_set_string(g, aid, "activation", pq_act_name(L->act.kind), err));
        const pq_node *gn = &g->nodes[nid];
        if (pq_node_attr(gn, "activation_alpha"))
            PQ_TRY(pq_node_set_float(g, aid, "activation_alpha", L->act.alpha, err));
        if (pq_node_attr(&g->nodes[nid], "activation_beta"))
            PQ_TRY(pq_node_set_float(g, aid, "activation_beta", L->act.beta, err));
    }
    pq_node_remove_attr(g, nid, "activation");
    pq_node_remove_attr(g, nid, "activation_alpha");
    pq_node_remove_attr(g, nid, "activation_beta");
    pq_node_remove_attr(g, nid, "beta");
    PQ_TRY(pq_graph_set_input(g, nid, 2, PQ_NONE, err));
    L->act.kind = PQ_ACT_NONE;
    PQ_TRY(pq_infer_node(g, nid, err));
    return pq_infer_node(g, aid, err);
}

/* A new constant of dtype with rank (0 or 1) and n elements from data, named from hint. */
static enum pq_status pq_i8_const(pq_graph *g, const char *hint, enum pq_dtype dt, int rank,
                                  const int64_t *dims, const void *data, uint32_t *out,
                                  pq_error *err) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, err);
    if (!t) return err ? err->status : PQ_ERR_NOMEM;
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    return pq_graph_add_constant(g, hint, t, out, err);
}

/* u8 activation parameters as two scalar constants "<name>_scale" / "<name>_zero_point". */
static enum pq_status pq_i8_act_params(pq_graph *g, const char *name, float s, uint8_t z,
                                       uint32_t *sv, uint32_t *zv, pq_error *err) {
    char hint[512];
    snprintf(hint, sizeof hint, "%s_scale", name);
    PQ_TRY(pq_i8_const(g, hint, PQ_DTYPE_F32, 0, NULL, &s, sv, err));
    snprintf(hint, sizeof hint, "%s_zero_point", name);
    return pq_i8_const(g, hint, PQ_DTYPE_U8, 0, NULL, &z, zv, err);
}

/* Ops through which u8 codes flow unchanged in meaning (DequantizeLinear commutes with them):
 * data movement (Flatten, Reshape) and MaxPool (a positive scale makes DequantizeLinear
 * increasing, so max and dequantize commute; integers compare exactly). */
static bool pq_i8_passthrough(const pq_graph *g, const pq_node *n) {
    if (n->n_inputs < 1) return false;
    if (n->op == PQ_OP_FLATTEN || n->op == PQ_OP_RESHAPE) return n->n_outputs == 1;
    if (n->op != PQ_OP_MAX_POOL) return false;
    (void)g;
    return n->n_outputs == 1 || n->outputs[1] == PQ_NONE; /* no Indices output */
}

/* The per-tensor u8 DequantizeLinear (positive finite f32 scale, u8 zero point, constants) that
 * produces v, else PQ_NONE. */
static uint32_t pq_i8_u8_dq(const pq_graph *g, uint32_t v) {
    uint32_t p = v != PQ_NONE ? pq_value_producer(g, v) : PQ_NONE;
    if (p == PQ_NONE || g->nodes[p].op != PQ_OP_DEQUANTIZE_LINEAR || g->nodes[p].n_inputs < 3)
        return PQ_NONE;
    const pq_node *d = &g->nodes[p];
    const pq_tensor *ps = pq_value_constant(g, d->inputs[1]);
    const pq_tensor *pz = pq_value_constant(g, d->inputs[2]);
    if (!ps || !pz || ps->dtype != PQ_DTYPE_F32 || pz->dtype != PQ_DTYPE_U8 ||
        pq_tensor_numel(ps) != 1 || pq_tensor_numel(pz) != 1 || ps->rank > 1 || pz->rank > 1 ||
        g->values[d->inputs[0]].dtype != PQ_DTYPE_U8)
        return PQ_NONE;
    float s = *(const float *)ps->data;
    return isfinite(s) && s > 0.0f ? p : PQ_NONE;
}

/* When x is an int8 layer's output seen through DequantizeLinear and passthrough ops
 * (DQ -> MaxPool / Flatten / Reshape ... -> x), that DequantizeLinear's scale and zero point: x
 * holds exactly values of that grid, so quantizing x with them is exact and, once the
 * DequantizeLinear is moved after those ops (pq_i8_sink_dq), the QuantizeLinear cancels. */
static bool pq_i8_upstream(const pq_graph *g, uint32_t x, float *s, uint8_t *z) {
    for (int depth = 0; depth < 16 && x != PQ_NONE; depth++) {
        uint32_t dq = pq_i8_u8_dq(g, x);
        if (dq != PQ_NONE) {
            *s = *(const float *)pq_value_constant(g, g->nodes[dq].inputs[1])->data;
            *z = *(const uint8_t *)pq_value_constant(g, g->nodes[dq].inputs[2])->data;
            return true;
        }
        uint32_t p = pq_value_producer(g, x);
        if (p == PQ_NONE || !pq_i8_passthrough(g, &g->nodes[p])) return false;
        x = g->nodes[p].inputs[0];
    }
    return false;
}

/* Parameters of a layer input x: when x comes from a DequantizeLinear with the same scale and
 * zero point (the previous int8 layer's output: same value, same range), its constants are shared,
 * so the clean-up sees one pair of constants; else new ones. */
static enum pq_status pq_i8_x_params(pq_graph *g, uint32_t x, const char *name, float s, uint8_t z,
                                     uint32_t *sv, uint32_t *zv, pq_error *err) {
    uint32_t p = pq_value_producer(g, x);
    if (p != PQ_NONE && g->nodes[p].op == PQ_OP_DEQUANTIZE_LINEAR && g->nodes[p].n_inputs >= 3) {
        const pq_tensor *ps = pq_value_constant(g, g->nodes[p].inputs[1]);
        const pq_tensor *pz = pq_value_constant(g, g->nodes[p].inputs[2]);
        if (ps && pz && ps->dtype == PQ_DTYPE_F32 && pz->dtype == PQ_DTYPE_U8 &&
            pq_tensor_numel(ps) == 1 && pq_tensor_numel(pz) == 1 && *(const float *)ps->data == s &&
            *(const uint8_t *)pz->data == z) {
            *sv = g->nodes[p].inputs[1];
            *zv = g->nodes[p].inputs[2];
            return PQ_OK;
        }
    }
    return pq_i8_act_params(g, name, s, z, sv, zv, err);
}

/* Quantizes L's weight (once per weight value; cache in ws[0..*nw)) and adds its constants; the
 * report record (metrics against the weight) waits in the cache entry until a layer is rewritten.
 */
static enum pq_status pq_i8_quantize_weight(pq_graph *g, const pq_i8_layer *L, bool per_channel,
                                            const char *method, pq_i8_weight *ws, uint32_t *nw,
                                            const pq_i8_weight **out, pq_error *err) {
    for (uint32_t i = 0; i < *nw; i++)
        if (ws[i].value == L->view.value) {
            *out = &ws[i];
            return PQ_OK;
        }
    const pq_weight_view *wv = &L->view;
    int64_t R = wv->rows, C = wv->cols;
    float *m = NULL, *what = NULL;
    int8_t *q = NULL, *qt = NULL, *zeros = NULL;
    pq_i8_weight *w = &ws[*nw];
    memset(w, 0, sizeof *w);
    enum pq_status st = PQ_OK;
    char wname[512], hint[600];
    snprintf(wname, sizeof wname, "%s", wv->name);
    PQ_TRY(pq_weight_view_read(g, wv, &m, err));
    q = pq_malloc((size_t)(R * C) + 1);
    w->s_w = pq_malloc(sizeof(float) * (size_t)(R + 1));
    what = pq_malloc(sizeof(float) * (size_t)(R * C + 1));
    zeros = pq_calloc((size_t)R + 1, 1);
    if (!q || !w->s_w || !what || !zeros) {
        st = pq_error_nomem(err, "int8 weight");
        goto cleanup;
    }
    if (per_channel) {
        PQ_TRY_GOTO(st, pq_int8_quantize_weights(wname, m, R, C, q, w->s_w, err), cleanup);
    } else {
        PQ_TRY_GOTO(st, pq_int8_quantize_weights(wname, m, 1, R * C, q, w->s_w, err), cleanup);
        for (int64_t r = 1; r < R; r++)
            w->s_w[r] = w->s_w[0];
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++)
            what[r * C + c] = (float)q[r * C + c] * w->s_w[r];
    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    PQ_TRY_GOTO(st, pq_metrics_acc_add(&acc, m, what, R, C, C, w->s_w, err), cleanup);
    /* codes in the layout the QLinear op reads: Conv as stored, MatMul B as [K, N] */
    const int8_t *codes = q;
    int rank = wv->rank;
    int64_t dims[PQ_MAX_RANK];
    memcpy(dims, wv->dims, sizeof(int64_t) * (size_t)rank);
    if (L->op != PQ_OP_CONV) {
        qt = pq_malloc((size_t)(R * C) + 1);
        if (!qt) {
            st = pq_error_nomem(err, "int8 weight");
            goto cleanup;
        }
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++)
                qt[c * R + r] = q[r * C + c];
        codes = qt;
        rank = 2;
        dims[0] = C;
        dims[1] = R;
    }
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_I8, rank, dims, err);
    if (!t) {
        st = err ? err->status : PQ_ERR_NOMEM;
        goto cleanup;
    }
    memcpy(t->data, codes, (size_t)(R * C));
    snprintf(hint, sizeof hint, "%s_quantized", wname);
    PQ_TRY_GOTO(st, pq_graph_add_constant(g, hint, t, &w->q, err), cleanup);
    int srank = per_channel ? 1 : 0;
    snprintf(hint, sizeof hint, "%s_scale", wname);
    PQ_TRY_GOTO(st, pq_i8_const(g, hint, PQ_DTYPE_F32, srank, &R, w->s_w, &w->scale, err), cleanup);
    snprintf(hint, sizeof hint, "%s_zero_point", wname);
    PQ_TRY_GOTO(st, pq_i8_const(g, hint, PQ_DTYPE_I8, srank, &R, zeros, &w->zero_point, err),
                cleanup);
    w->value = wv->value;
    w->rows = R;
    w->cols = C;

    pq_quant_record *rec = &w->rec;
    snprintf(w->name, sizeof w->name, "%s", wname);
    rec->value_name = w->name;
    rec->op = L->op;
    rec->format = "int8";
    rec->calib = method;
    rec->onnx_rank = wv->rank;
    memcpy(rec->onnx_dims, wv->dims, sizeof(int64_t) * (size_t)wv->rank);
    rec->rows = R;
    rec->cols = C;
    rec->stored_bytes = (uint64_t)(R * C) + 4u * (uint64_t)(per_channel ? R : 1);
    rec->n = acc.n;
    rec->sum_e2 = acc.sum_e2;
    rec->sum_w2 = acc.sum_w2;
    rec->sum_h2 = acc.sum_h2;
    rec->dot = acc.dot;
    rec->outliers = acc.outliers;
    rec->outliers_kept = acc.outliers_kept;
    *out = w;
    (*nw)++;
cleanup:
    if (st != PQ_OK) {
        pq_free(w->s_w);
        w->s_w = NULL;
    }
    pq_free(m);
    pq_free(what);
    pq_free(q);
    pq_free(qt);
    pq_free(zeros);
    return st;
}

/* Input of a QuantizeLinear for value x, shared by every layer reading x. */
typedef struct pq_i8_qin {
    uint32_t x, xq, s, z;
} pq_i8_qin;

/* Phase B: rewrites layer L (ranges known) into Q -> QLinear -> DQ. *done false (and a log line)
 * when its bias does not fit i32. */
static enum pq_status pq_i8_rewrite(pq_graph *g, pq_pass_ctx *ctx, pq_i8_layer *L,
                                    const pq_i8_weight *w, pq_i8_qin *qins, uint32_t *nq,
                                    bool *done, pq_error *err) {
    *done = false;
    uint32_t nid = L->node;
    float sx, sy;
    uint8_t zx, zy;
    char lname[512], yname[512], xname[512];
    snprintf(lname, sizeof lname, "%s", g->nodes[nid].name);
    snprintf(yname, sizeof yname, "%s", g->values[L->y].name);
    snprintf(xname, sizeof xname, "%s", g->values[L->x].name);
    if (!L->keep_act && L->act.kind == PQ_ACT_CLIP && isfinite(L->act.beta)) { /* clamp at 255 */
        L->ylo = 0.0f;
        L->yhi = L->act.beta;
    }
    PQ_TRY(pq_u8_params(L->xlo, L->xhi, &sx, &zx, err));
    PQ_TRY(pq_u8_params(L->ylo, L->yhi, &sy, &zy, err));
    float us;
    uint8_t uz;
    if (pq_i8_upstream(g, L->x, &us, &uz)) { /* x is on an int8 layer's grid: keep it */
        sx = us;
        zx = uz;
    }
    /* i32 bias (Conv) first: a bias that does not fit leaves the layer FP32 */
    uint32_t bq = PQ_NONE;
    uint32_t b = L->op == PQ_OP_CONV ? pq_node_input(&g->nodes[nid], 2) : PQ_NONE;
    if (b != PQ_NONE) {
        int32_t *bi = pq_malloc(sizeof(int32_t) * (size_t)(w->rows + 1));
        if (!bi) return pq_error_nomem(err, "int8 bias");
        char bname[512], hint[600];
        snprintf(bname, sizeof bname, "%s", g->values[b].name);
        pq_error berr;
        pq_error_clear(&berr);
        enum pq_status st = pq_int8_quantize_bias(bname, g->values[b].constant->data, w->rows, sx,
                                                  w->s_w, bi, &berr);
        if (st == PQ_OK) {
            snprintf(hint, sizeof hint, "%s_quantized", bname);
            st = pq_i8_const(g, hint, PQ_DTYPE_I32, 1, &w->rows, bi, &bq, err);
            pq_free(bi);
            PQ_TRY(st);
        } else {
            pq_free(bi);
            pq_pass_log(ctx, 1, "layer '%s' (%s) stays FP32: %s", lname, pq_op_name(L->op),
                        berr.msg);
            return PQ_OK;
        }
    }
    /* x -> QuantizeLinear (shared per x) */
    pq_i8_qin *qi = NULL;
    for (uint32_t i = 0; i < *nq && !qi; i++)
        if (qins[i].x == L->x) qi = &qins[i];
    if (!qi) {
        qi = &qins[(*nq)++];
        qi->x = L->x;
        uint32_t qn;
        PQ_TRY(pq_i8_x_params(g, L->x, xname, sx, zx, &qi->s, &qi->z, err));
        char hint[600];
        snprintf(hint, sizeof hint, "%s_quantized", xname);
        uint32_t ins[3] = {L->x, qi->s, qi->z};
        PQ_TRY(pq_build(g, PQ_OP_QUANTIZE_LINEAR, hint, ins, 3, &qi->xq, &qn, err));
        PQ_TRY(pq_infer_node(g, qn, err));
    }
    /* y: the node's output becomes u8, a DequantizeLinear gives the f32 y (name and uses) */
    uint32_t sv, zv, ydq, dqn;
    PQ_TRY(pq_i8_act_params(g, yname, sy, zy, &sv, &zv, err));
    PQ_TRY(pq_graph_add_temp(g, NULL, &ydq, err));
    PQ_TRY(pq_graph_replace_all_uses(g, L->y, ydq, err));
    PQ_TRY(pq_i8_names(g, L->y, ydq, yname, "_quantized", err));
    char dname[600];
    snprintf(dname, sizeof dname, "%s/DequantizeLinear", lname);
    const char *dn = pq_graph_fresh_node_name(g, dname);
    if (!dn) return pq_error_nomem(err, "node name");
    uint32_t dins[3] = {L->y, sv, zv};
    PQ_TRY(pq_graph_add_node(g, PQ_OP_DEQUANTIZE_LINEAR, dn, dins, 3, &ydq, 1, &dqn, err));
    /* the layer node itself becomes the QLinear op (name and attributes kept) */
    uint32_t ins[9] = {qi->xq, qi->s, qi->z, w->q, w->scale, w->zero_point, sv, zv, bq};
    uint32_t n_new = bq != PQ_NONE ? 9 : 8;
    for (uint32_t i = 0; i < n_new; i++) {
        if (i < g->nodes[nid].n_inputs)
            PQ_TRY(pq_graph_set_input(g, nid, i, ins[i], err));
        else
            PQ_TRY(pq_graph_append_input(g, nid, ins[i], err));
    }
    static const char *const drop[] = {"activation", "activation_alpha", "activation_beta", "alpha",
                                       "beta",       "transA",           "transB"};
    for (size_t i = L->keep_act ? 3 : 0; i < sizeof drop / sizeof drop[0]; i++)
        pq_node_remove_attr(g, nid, drop[i]);
    g->nodes[nid].op = L->op == PQ_OP_CONV ? PQ_OP_QLINEAR_CONV : PQ_OP_QLINEAR_MATMUL;
    /* the output value is redefined (f32 -> u8): forget its declared type before inferring */
    g->values[L->y].dtype = PQ_DTYPE_UNDEFINED;
    g->values[L->y].shape.rank = -1;
    PQ_TRY(pq_infer_node(g, nid, err));
    PQ_TRY(pq_infer_node(g, dqn, err));
    pq_pass_log(ctx, 2,
                "layer '%s' (%s) -> %s%s%s: x [%g, %g] scale %g zp %u; y [%g, %g] scale %g zp %u",
                lname, pq_op_name(L->op), pq_op_name(g->nodes[nid].op),
                L->keep_act ? " with fused " : "", L->keep_act ? pq_act_name(L->act.kind) : "",
                L->xlo, L->xhi, sx, (unsigned)zx, L->ylo, L->yhi, sy, (unsigned)zy);
    *done = true;
    L->y = ydq; /* the f32 value now */
    return PQ_OK;
}

/* Phase C0: Op(DequantizeLinear(q, s, z)) -> y for a passthrough Op (MaxPool, Flatten, Reshape)
 * becomes Op(q) -> DequantizeLinear(., s, z) -> y (y keeps its name and uses), repeated until
 * nothing moves, so u8 flows through them and the QuantizeLinear of the next int8 layer (made
 * with the same constants by pq_i8_upstream) cancels in the clean-up. The original
 * DequantizeLinear stays for its other readers (dead otherwise). *moved counts the ops. */
static enum pq_status pq_i8_sink_dq(pq_graph *g, pq_pass_ctx *ctx, uint32_t *moved, pq_error *err) {
    *moved = 0;
    for (bool again = true; again;) {
        again = false;
        for (uint32_t i = 0; i < g->n_nodes; i++) {
            if (!pq_i8_passthrough(g, &g->nodes[i])) continue;
            uint32_t dq = pq_i8_u8_dq(g, g->nodes[i].inputs[0]);
            if (dq == PQ_NONE) continue;
            uint32_t y = g->nodes[i].outputs[0], q = g->nodes[dq].inputs[0];
            uint32_t sv = g->nodes[dq].inputs[1], zv = g->nodes[dq].inputs[2], ydq, dqn;
            char yname[512], dname[600];
            snprintf(yname, sizeof yname, "%s", g->values[y].name);
            snprintf(dname, sizeof dname, "%s/DequantizeLinear", g->nodes[i].name);
            PQ_TRY(pq_graph_add_temp(g, NULL, &ydq, err));
            PQ_TRY(pq_graph_replace_all_uses(g, y, ydq, err));
            PQ_TRY(pq_i8_names(g, y, ydq, yname, "_quantized", err));
            const char *dn = pq_graph_fresh_node_name(g, dname);
            if (!dn) return pq_error_nomem(err, "node name");
            uint32_t dins[3] = {y, sv, zv};
            PQ_TRY(pq_graph_add_node(g, PQ_OP_DEQUANTIZE_LINEAR, dn, dins, 3, &ydq, 1, &dqn, err));
            PQ_TRY(pq_graph_set_input(g, i, 0, q, err));
            g->values[y].dtype = PQ_DTYPE_UNDEFINED; /* f32 -> u8: infer again */
            g->values[y].shape.rank = -1;
            PQ_TRY(pq_infer_node(g, i, err));
            PQ_TRY(pq_infer_node(g, dqn, err));
            pq_pass_log(ctx, 2, "'%s' (%s) runs on u8: DequantizeLinear moved after it",
                        g->nodes[i].name, pq_op_name(g->nodes[i].op));
            (*moved)++;
            again = true;
        }
    }
    return PQ_OK;
}

/* True when a and b are constants with the same dtype, shape and bytes. */
static bool pq_i8_same_const(const pq_graph *g, uint32_t a, uint32_t b) {
    if (a == b) return a != PQ_NONE;
    if (a == PQ_NONE || b == PQ_NONE) return false;
    const pq_tensor *x = g->values[a].constant, *y = g->values[b].constant;
    if (!x || !y || x->dtype != y->dtype || x->nbytes != y->nbytes || x->rank != y->rank)
        return false;
    return memcmp(x->data, y->data, x->nbytes) == 0;
}

/* An Add / Mul that may run as QLinearAdd / QLinearMul: two f32 activations (no constant), one
 * output, no fused activation or a fused Relu; its output range is calibrated with the layers'. */
typedef struct pq_i8_add {
    uint32_t node, y;
    float lo, hi;
} pq_i8_add;

static bool pq_i8_add_candidate(const pq_graph *g, uint32_t nid, bool add, bool mul, bool gap) {
    const pq_node *n = &g->nodes[nid];
    if (gap && n->op == PQ_OP_GLOBAL_AVERAGE_POOL) {
        const pq_value *x = &g->values[n->inputs[0]];
        return n->n_inputs == 1 && n->n_outputs == 1 && x->dtype == PQ_DTYPE_F32 && !x->constant &&
               x->shape.rank == 4;
    }
    if (!((add && n->op == PQ_OP_ADD) || (mul && n->op == PQ_OP_MUL)) || n->n_inputs != 2 ||
        n->n_outputs != 1)
        return false;
    for (uint32_t k = 0; k < 2; k++) {
        const pq_value *v = &g->values[n->inputs[k]];
        if (v->dtype != PQ_DTYPE_F32 || v->constant) return false;
    }
    if (g->values[n->outputs[0]].dtype != PQ_DTYPE_F32) return false;
    pq_activation act;
    if (pq_node_activation(n, &act, NULL) != PQ_OK) return false;
    return act.kind == PQ_ACT_NONE || act.kind == PQ_ACT_RELU;
}

/* Phase C1: Add(DequantizeLinear(qa, sa, za), DequantizeLinear(qb, sb, zb)) [fused Relu] -> y
 * becomes QLinearAdd(qa, sa, za, qb, sb, zb, s_y, zp_y) [activation Relu] -> u8 ->
 * DequantizeLinear(s_y, zp_y) -> y, with (s_y, zp_y) from y's calibrated range: the next int8
 * layer reading y quantizes with the same parameters, so the clean-up removes that pair. Adds in
 * graph order, so a chain of residual blocks passes u8 from one to the next. A Mul (squeeze-excite
 * x * s) becomes QLinearMul the same way, a GlobalAveragePool of an int8 result
 * QLinearGlobalAveragePool(q, s, z, s_y, zp_y). n[0] counts the Adds, n[1] the Muls, n[2] the
 * pools. */
static enum pq_status pq_i8_qlinear_adds(pq_graph *g, pq_pass_ctx *ctx, const pq_i8_add *adds,
                                         uint32_t na, uint32_t n[3], pq_error *err) {
    n[0] = n[1] = n[2] = 0;
    for (uint32_t i = 0; i < na; i++) {
        uint32_t nid = adds[i].node, y = adds[i].y;
        enum pq_op op = g->nodes[nid].op;
        bool gap = op == PQ_OP_GLOBAL_AVERAGE_POOL;
        if ((op != PQ_OP_ADD && op != PQ_OP_MUL && !gap) || g->nodes[nid].outputs[0] != y) continue;
        uint32_t da = pq_i8_u8_dq(g, g->nodes[nid].inputs[0]);
        uint32_t db = gap ? da : pq_i8_u8_dq(g, g->nodes[nid].inputs[1]);
        if (da == PQ_NONE || db == PQ_NONE) continue;
        float sy;
        uint8_t zy;
        PQ_TRY(pq_u8_params(adds[i].lo, adds[i].hi, &sy, &zy, err));
        char yname[512], dname[600];
        snprintf(yname, sizeof yname, "%s", g->values[y].name);
        snprintf(dname, sizeof dname, "%s/DequantizeLinear", g->nodes[nid].name);
        uint32_t ins[8] = {g->nodes[da].inputs[0],
                           g->nodes[da].inputs[1],
                           g->nodes[da].inputs[2],
                           g->nodes[db].inputs[0],
                           g->nodes[db].inputs[1],
                           g->nodes[db].inputs[2],
                           PQ_NONE,
                           PQ_NONE};
        PQ_TRY(pq_i8_act_params(g, yname, sy, zy, &ins[6], &ins[7], err));
        uint32_t nin = 8;
        if (gap) { /* (x, s_x, zp_x, s_y, zp_y) */
            ins[3] = ins[6];
            ins[4] = ins[7];
            nin = 5;
        }
        uint32_t ydq, dqn;
        PQ_TRY(pq_graph_add_temp(g, NULL, &ydq, err));
        PQ_TRY(pq_graph_replace_all_uses(g, y, ydq, err));
        PQ_TRY(pq_i8_names(g, y, ydq, yname, "_quantized", err));
        const char *dn = pq_graph_fresh_node_name(g, dname);
        if (!dn) return pq_error_nomem(err, "node name");
        uint32_t dins[3] = {y, ins[6], ins[7]};
        PQ_TRY(pq_graph_add_node(g, PQ_OP_DEQUANTIZE_LINEAR, dn, dins, 3, &ydq, 1, &dqn, err));
        for (uint32_t k = 0; k < nin; k++) {
            if (k < g->nodes[nid].n_inputs)
                PQ_TRY(pq_graph_set_input(g, nid, k, ins[k], err));
            else
                PQ_TRY(pq_graph_append_input(g, nid, ins[k], err));
        }
        pq_node_remove_attr(g, nid, "activation_alpha");
        pq_node_remove_attr(g, nid, "activation_beta");
        g->nodes[nid].op = gap               ? PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL
                           : op == PQ_OP_MUL ? PQ_OP_QLINEAR_MUL
                                             : PQ_OP_QLINEAR_ADD;
        g->values[y].dtype = PQ_DTYPE_UNDEFINED; /* f32 -> u8: infer again */
        g->values[y].shape.rank = -1;
        PQ_TRY(pq_infer_node(g, nid, err));
        PQ_TRY(pq_infer_node(g, dqn, err));
        pq_pass_log(ctx, 2, "'%s' (%s%s) -> %s: y [%g, %g] scale %g zp %u", g->nodes[nid].name,
                    pq_op_name(op), pq_node_attr(&g->nodes[nid], "activation") ? " + Relu" : "",
                    pq_op_name(g->nodes[nid].op), adds[i].lo, adds[i].hi, sy, (unsigned)zy);
        n[gap ? 2 : op == PQ_OP_MUL]++;
    }
    return PQ_OK;
}

/* Phase C: QuantizeLinear(DequantizeLinear(q, s, z), s, z) -> q. *removed counts pairs. */
static enum pq_status pq_i8_cleanup(pq_graph *g, uint32_t *removed, pq_error *err) {
    *removed = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *qn = &g->nodes[i];
        if (qn->op != PQ_OP_QUANTIZE_LINEAR || qn->n_inputs < 3) continue;
        uint32_t p = pq_value_producer(g, qn->inputs[0]);
        if (p == PQ_NONE || g->nodes[p].op != PQ_OP_DEQUANTIZE_LINEAR) continue;
        const pq_node *dn = &g->nodes[p];
        if (dn->n_inputs < 3 || !pq_i8_same_const(g, dn->inputs[1], qn->inputs[1]) ||
            !pq_i8_same_const(g, dn->inputs[2], qn->inputs[2]))
            continue;
        uint32_t qout = qn->outputs[0], qin = dn->inputs[0];
        if (g->values[qout].flags & PQ_VALUE_OUTPUT) continue;
        PQ_TRY(pq_graph_replace_all_uses(g, qout, qin, err));
        (*removed)++;
    }
    return PQ_OK;
}

/* Logs the FP32 ops that read an int8 layer's output through a DequantizeLinear (before dead
 * nodes are removed: the bias Adds of L[0..nl) are part of their layers and not listed). */
static enum pq_status pq_i8_log_fp32_between(const pq_graph *g, pq_pass_ctx *ctx,
                                             const pq_i8_layer *L, uint32_t nl, pq_error *err) {
    pq_uses u;
    PQ_TRY(pq_uses_build(g, &u, err));
    uint32_t counts[PQ_OP_COUNT];
    memset(counts, 0, sizeof counts);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != PQ_OP_DEQUANTIZE_LINEAR) continue;
        uint32_t v = g->nodes[i].outputs[0];
        for (uint32_t j = u.start[v]; j < u.start[v + 1]; j++) {
            const pq_node *c = &g->nodes[u.use[j].node];
            bool own = false;
            for (uint32_t k = 0; k < nl && !own; k++)
                own = L[k].bias_add == u.use[j].node;
            if (c->op == PQ_OP_QUANTIZE_LINEAR || own || pq_uses_node_dead(g, &u, i)) continue;
            counts[c->op]++;
            pq_pass_log(ctx, 2, "'%s' (%s) stays FP32: reads '%s' through DequantizeLinear%s",
                        c->name, pq_op_name(c->op), g->values[g->nodes[i].inputs[0]].name,
                        c->op == PQ_OP_ADD || c->op == PQ_OP_MUL
                            ? " (not both inputs int8, or option qlinear-add / qlinear-mul off)"
                            : "");
        }
    }
    pq_uses_free(&u);
    char buf[1024] = "";
    size_t len = 0;
    for (int op = 0; op < PQ_OP_COUNT; op++)
        if (counts[op] && len < sizeof buf)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s %u", len ? ", " : "",
                                    pq_op_name((enum pq_op)op), counts[op]);
    if (len)
        pq_pass_log(
            ctx, 1,
            "FP32 after int8 layers (DequantizeLinear before, QuantizeLinear after where the "
            "next layer is int8): %s",
            buf);
    return PQ_OK;
}

static enum pq_status pq_quantize_int8_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                           pq_error *err) {
    bool have_calib = ctx->calib && ctx->calib->ranges && ctx->calib->samples > 0;
    const char *method = pq_opts_string(opts, "activations");
    double pct = pq_opts_float(opts, "percentile");
    bool per_channel = pq_opts_bool(opts, "per-channel");
    if (!method) method = "percentile";
    enum pq_status st = PQ_OK;
    pq_weight_target *tg = NULL;
    pq_i8_layer *L = NULL;
    pq_i8_weight *ws = NULL;
    pq_i8_qin *qins = NULL;
    pq_i8_add *adds = NULL;
    uint32_t *vals = NULL;
    float *lo = NULL, *hi = NULL;
    uint32_t nt = 0, nw = 0, nq = 0, nok = 0, n_conv = 0, n_mm = 0, removed = 0, dead = 0;
    uint32_t n_fused = 0, na = 0, n_qadd[3] = {0, 0, 0};
    bool qadd = pq_opts_bool(opts, "qlinear-add"), qmul = pq_opts_bool(opts, "qlinear-mul");
    bool qgap = pq_opts_bool(opts, "qlinear-pool");
    PQ_TRY(pq_select_weights(g, opts, &tg, &nt, err));
    if (nt == 0) { /* e.g. a QDQ model fold-qdq turned into integer layers: nothing to measure */
        pq_free(tg);
        pq_pass_log(ctx, 1, "no FP32 Conv, Gemm or MatMul with constant weights: nothing to do");
        return PQ_OK;
    }
    if (!have_calib) {
        pq_free(tg);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "quantize-int8 needs calibration data (--calib-data) for its %u FP32 "
                            "layers",
                            nt);
    }
    uint32_t cap = 2 * nt + g->n_nodes + 1; /* layer x and y, then Add outputs */
    L = pq_calloc(nt + 1, sizeof *L);
    ws = pq_calloc(nt + 1, sizeof *ws);
    qins = pq_calloc(nt + 1, sizeof *qins);
    adds = pq_calloc(g->n_nodes + 1, sizeof *adds);
    vals = pq_calloc(cap, sizeof *vals);
    lo = pq_calloc(cap, sizeof *lo);
    hi = pq_calloc(cap, sizeof *hi);
    if (!L || !ws || !qins || !adds || !vals || !lo || !hi) {
        st = pq_error_nomem(err, "quantize-int8 layers");
        goto cleanup;
    }
    for (uint32_t i = 0; i < nt; i++) {
        pq_i8_classify(g, &tg[i], &L[i]);
        if (!L[i].ok)
            pq_pass_log(ctx, 1, "layer '%s' (%s) stays FP32: %s", g->nodes[tg[i].node].name,
                        pq_op_name(L[i].op), L[i].why);
    }
    /* phase A: Gemm bias out of the layer, so the QLinearMatMul output y0 exists and is measured */
    for (uint32_t i = 0; i < nt; i++)
        if (L[i].ok && L[i].split_bias) {
            uint32_t y = L[i].y, y_add;
            PQ_TRY_GOTO(st, pq_i8_split_bias(g, &L[i], &y_add, err), cleanup);
            for (uint32_t k = 0; k < nt; k++) /* layers reading the Gemm's output read the Add's */
                if (L[k].x == y) L[k].x = y_add;
        }
    uint32_t nv = 0;
    for (uint32_t i = 0; i < nt; i++)
        if (L[i].ok) {
            vals[nv++] = L[i].x;
            vals[nv++] = L[i].y;
        }
    uint32_t nv_layers = nv;
    for (uint32_t i = 0; (qadd || qmul || qgap) && i < g->n_nodes && nv_layers > 0; i++) {
        bool own = false; /* a Gemm's bias Add (phase A) stays FP32 */
        for (uint32_t k = 0; k < nt && !own; k++)
            own = L[k].bias_add == i;
        if (own || !pq_i8_add_candidate(g, i, qadd, qmul, qgap)) continue;
        adds[na].node = i;
        adds[na++].y = g->nodes[i].outputs[0];
        vals[nv++] = g->nodes[i].outputs[0];
    }
    if (nv) {
        PQ_TRY_GOTO(st, ctx->calib->ranges(ctx->calib->ctx, g, vals, nv, method, pct, lo, hi, err),
                    cleanup);
    }
    for (uint32_t i = 0, k = 0; i < nt; i++)
        if (L[i].ok) {
            L[i].xlo = lo[k];
            L[i].xhi = hi[k++];
            L[i].ylo = lo[k];
            L[i].yhi = hi[k++];
        }
    for (uint32_t i = 0; i < na; i++) {
        adds[i].lo = lo[nv_layers + i];
        adds[i].hi = hi[nv_layers + i];
    }
    /* phase B: rewrite, in graph order */
    for (uint32_t i = 0; i < nt; i++) {
        if (!L[i].ok) continue;
        const pq_i8_weight *w = NULL;
        st = pq_i8_quantize_weight(g, &L[i], per_channel, method, ws, &nw, &w, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "layer '%s' (%s): ", g->nodes[L[i].node].name,
                            pq_op_name(L[i].op));
            goto cleanup;
        }
        uint32_t y_old = L[i].y;
        bool done = false;
        st = pq_i8_rewrite(g, ctx, &L[i], w, qins, &nq, &done, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "layer '%s' (%s): ", g->nodes[L[i].node].name,
                            pq_op_name(L[i].op));
            goto cleanup;
        }
        if (!done) continue;
        if (!w->recorded) {
            pq_i8_weight *wm = &ws[w - ws];
            wm->rec.node_name = g->nodes[L[i].node].name;
            PQ_TRY_GOTO(st, pq_pass_add_record(ctx, &wm->rec, err), cleanup);
            wm->recorded = true;
        }
        nok++;
        n_fused += L[i].keep_act;
        if (L[i].op == PQ_OP_CONV)
            n_conv++;
        else
            n_mm++;
        for (uint32_t k = i + 1; k < nt; k++) /* later layers read the f32 value now */
            if (L[k].x == y_old) L[k].x = L[i].y;
    }
    uint32_t moved = 0;
    PQ_TRY_GOTO(st, pq_i8_sink_dq(g, ctx, &moved, err), cleanup);
    PQ_TRY_GOTO(st, pq_i8_qlinear_adds(g, ctx, adds, na, n_qadd, err), cleanup);
    if (n_qadd[0] + n_qadd[1] + n_qadd[2]) { /* u8 may now flow on through MaxPool, Flatten, ... */
        uint32_t more = 0;
        PQ_TRY_GOTO(st, pq_i8_sink_dq(g, ctx, &more, err), cleanup);
        moved += more;
    }
    PQ_TRY_GOTO(st, pq_i8_cleanup(g, &removed, err), cleanup);
    PQ_TRY_GOTO(st, pq_i8_log_fp32_between(g, ctx, L, nt, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_remove_dead(g, &dead, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_compact(g, NULL, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_toposort(g, err), cleanup);
    char how[64] = "minmax";
    if (!strcmp(method, "percentile")) snprintf(how, sizeof how, "percentile %g", pct);
    pq_pass_log(ctx, 1,
                "%u of %u layers in INT8 (%u QLinearConv, %u QLinearMatMul), %u with a fused "
                "activation epilogue, activations %s, %s weights; %u MaxPool/Flatten/Reshape on "
                "u8; %u Add on u8 (QLinearAdd), %u Mul on u8 (QLinearMul), %u GlobalAveragePool "
                "on u8; %u DequantizeLinear -> QuantizeLinear pairs removed",
                nok, nt, n_conv, n_mm, n_fused, how, per_channel ? "per-channel" : "per-tensor",
                moved, n_qadd[0], n_qadd[1], n_qadd[2], removed);
cleanup:
    pq_free(tg);
    pq_free(L);
    pq_i8_weights_free(ws, nw);
    pq_free(qins);
    pq_free(adds);
    pq_free(vals);
    pq_free(lo);
    pq_free(hi);
    return st;
}

const pq_pass pq_pass_quantize_int8 = {
    .name = "quantize-int8",
    .summary = "Conv/Gemm/MatMul layers -> QuantizeLinear, QLinearConv/QLinearMatMul (s8 "
               "per-channel weights, i32 bias), DequantizeLinear; u8 activation ranges from "
               "calibration (needs --calib-data)",
    .options = pq_quantize_int8_options,
    .n_options = sizeof pq_quantize_int8_options / sizeof pq_quantize_int8_options[0],
    .run = pq_quantize_int8_run,
    .check = pq_select_check,
};
