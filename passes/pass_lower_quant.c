/* The lower-quant pass: FakeQuant(w, scales) feeding MatMul/Gemm/Conv becomes PackedMatMul/
 * PackedConv over packed codes (piq/q), i8 codes + row scales (int8) or f16 values (f16), so no
 * f32 copy of a lowered weight remains. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/ir.h"
#include "pass.h"
#include "weights.h"

/* What lowers (every consumer of the FakeQuant output must qualify, else the FakeQuant stays):
 * - MatMul reading it as input 1 with a 2-D weight (transposed view) -> PackedMatMul(x, packed);
 * - Gemm reading it as input 1 with transA = 0, alpha = 1, no C or beta = 1 with C f32 of shape
 *   [N] (or a constant [1, N], re-stated as [N]), and transposed = !transB ->
 *   PackedMatMul(A, packed, C);
 * - Conv (1-D, 2-D) reading it as input 1 (stored view) -> PackedConv with the Conv's attributes
 *   (kernel_shape made explicit).
 * The consumer node is turned into the packed op in place: its name, output value and any fused
 * activation attributes stay, so graph interfaces and later references keep their names. The
 * weight input it gets, always in the weight view (rows x cols, row-major, 1-D):
 * - piq3/piq2/q3/q2: u8 "<w>.packed" from pq_q_quantize_row_ukernel__scalar with the FakeQuant's
 *   own scale words, so the codes are exactly those the FakeQuant forward reconstructs;
 * - int8: i8 "<w>.int8", q = clamp(rne(w / s[r]), -127, 127) (NaN -> 0) in f32 with the
 *   FakeQuant's own f32 scales s, i.e. the FakeQuant kernel's formula; the scales constant
 *   itself becomes input 3 (input 2, the bias, omitted when the consumer has none);
 * - f16: f16 "<w>.f16" = f16(w), the value FakeQuant rounds through.
 * Stays FakeQuant (logged with the reason): non-constant w or scales, batched MatMul weights, Gemm
 * with transA/alpha/beta/C shapes above not met, ConvTranspose or other consumers, a FakeQuant
 * output that is a graph output or shared with such a consumer.
 * Option activations: f32 (default: the packed ops as always, no new attribute) or int8: every
 * PackedMatMul / PackedConv on piq3/piq2/q3/q2 codes also gets act_quant = "int8", so its kernel
 * quantizes each activation row per weight group to int8 and runs the integer-activation GEMV
 * (backends/quant/piq_gemv_i8.h). int8 and f16 weights never get the attribute. */

static const char *const pq_lq_activation_choices[] = {"f32", "int8", NULL};

static const pq_pass_option pq_lower_quant_options[] = {
    {"activations", PQ_OPT_ENUM,
     "int8: PackedMatMul/PackedConv on piq/q codes quantize their input per weight group to int8 "
     "(act_quant attribute, integer dot products); f32: exact f32 activations",
     "f32", 0, 0, pq_lq_activation_choices},
};

/* The FakeQuant node fq's weight, scale words and view, when all are usable for packing. */
enum pq_lq_kind { PQ_LQ_PACKED, PQ_LQ_INT8, PQ_LQ_F16 };

typedef struct pq_lq_fq {
    uint32_t node, w, scales, out;
    enum pq_lq_kind kind;
    enum pq_qformat f; /* PQ_LQ_PACKED only */
    int64_t group, batch, rows, cols;
    bool transposed;
    const pq_tensor *wt;
} pq_lq_fq;

/* Why a FakeQuant cannot lower (reason buffer), or true when it can be packed at all. */
static bool pq_lq_decode(const pq_graph *g, uint32_t nid, pq_lq_fq *q, char *why, size_t nwhy) {
    const pq_node *n = &g->nodes[nid];
    memset(q, 0, sizeof *q);
    q->node = nid;
    q->w = pq_node_input(n, 0);
    q->scales = pq_node_input(n, 1);
    q->out = pq_node_output(n, 0);
    const char *fs = pq_node_attr_string(n, "format", "");
    if (pq_qformat_from_name(fs, &q->f))
        q->kind = PQ_LQ_PACKED;
    else if (!strcmp(fs, "int8"))
        q->kind = PQ_LQ_INT8;
    else if (!strcmp(fs, "f16"))
        q->kind = PQ_LQ_F16;
    else {
        snprintf(why, nwhy, "format %s has no packed kernel", fs);
        return false;
    }
    q->group = pq_node_attr_int(n, "qgroup", 0);
    q->transposed = pq_node_attr_int(n, "transposed", 0) != 0;
    q->wt = q->w != PQ_NONE ? g->values[q->w].constant : NULL;
    const pq_tensor *st = q->scales != PQ_NONE ? g->values[q->scales].constant : NULL;
    if (!q->wt || q->wt->dtype != PQ_DTYPE_F32 || q->wt->rank < 2) {
        snprintf(why, nwhy, "w is not an f32 constant of rank >= 2");
        return false;
    }
    if (q->kind == PQ_LQ_PACKED && (!st || st->dtype != PQ_DTYPE_F16 || st->rank != 2)) {
        snprintf(why, nwhy, "scales are not an f16 constant [rows, groups]");
        return false;
    }
    if (q->kind == PQ_LQ_INT8 && (!st || st->dtype != PQ_DTYPE_F32 || st->rank != 1)) {
        snprintf(why, nwhy, "scales are not an f32 constant [rows]");
        return false;
    }
    if (q->kind == PQ_LQ_F16 && q->scales != PQ_NONE) {
        snprintf(why, nwhy, "format f16 with a scales input");
        return false;
    }
    /* FakeQuant's view (ops contract): transposed [..., K, N] -> batch x N x K, else dims[0] rows
     */
    const int64_t *d = q->wt->dims;
    int rank = q->wt->rank;
    q->batch = 1;
    q->rows = q->transposed ? d[rank - 1] : d[0];
    q->cols = q->transposed ? d[rank - 2] : 1;
    for (int i = 0; i < rank - 2 && q->transposed; i++)
        q->batch *= d[i];
    for (int i = 1; i < rank && !q->transposed; i++)
        q->cols *= d[i];
    bool view_ok = q->rows > 0 && q->cols > 0;
    if (q->kind == PQ_LQ_PACKED)
        view_ok = view_ok && q->group > 0 && q->group % 8 == 0 &&
                  st->dims[0] == q->batch * q->rows &&
                  st->dims[1] == (q->cols + q->group - 1) / q->group;
    else if (q->kind == PQ_LQ_INT8)
        view_ok = view_ok && st->dims[0] == q->batch * q->rows;
    if (!view_ok) {
        snprintf(why, nwhy, "scales do not match the weight view");
        return false;
    }
    if (q->batch != 1) {
        snprintf(why, nwhy, "batched weight (%lld stacked matrices)", (long long)q->batch);
        return false;
    }
    return true;
}

/* True when float attribute name of n is absent or equal to want. */
static bool pq_lq_attr_is(const pq_node *n, const char *name, float want) {
    return pq_node_attr_float(n, name, want) == want;
}

/* Whether consumer (nid, slot) of FakeQuant q can take the packed weight; reason otherwise. */
static bool pq_lq_consumer_ok(const pq_graph *g, const pq_lq_fq *q, uint32_t nid, uint32_t slot,
                              char *why, size_t nwhy) {
    const pq_node *n = &g->nodes[nid];
    if (slot != 1 || (n->op != PQ_OP_MATMUL && n->op != PQ_OP_GEMM && n->op != PQ_OP_CONV)) {
        snprintf(why, nwhy, "consumer '%s' (%s) reads it as input %d: no packed kernel", n->name,
                 pq_op_name(n->op), slot == PQ_NONE ? -1 : (int)slot);
        return false;
    }
    if (n->op == PQ_OP_MATMUL) {
        if (q->wt->rank != 2 || !q->transposed) {
            snprintf(why, nwhy, "consumer '%s' (MatMul): weight is not a 2-D [K, N] matrix",
                     n->name);
            return false;
        }
        return true;
    }
    if (n->op == PQ_OP_CONV) {
        if (q->transposed || (q->wt->rank != 3 && q->wt->rank != 4)) {
            snprintf(why, nwhy, "consumer '%s' (Conv): only 1-D and 2-D convolutions lower",
                     n->name);
            return false;
        }
        return true;
    }
    /* Gemm */
    bool trans_b = pq_node_attr_int(n, "transB", 0) != 0;
    uint32_t c = pq_node_input(n, 2);
    if (pq_node_attr_int(n, "transA", 0) != 0 || !pq_lq_attr_is(n, "alpha", 1.0f) ||
        (c != PQ_NONE && !pq_lq_attr_is(n, "beta", 1.0f))) {
        snprintf(why, nwhy, "consumer '%s' (Gemm): transA, alpha != 1 or beta != 1", n->name);
        return false;
    }
    if (trans_b == q->transposed || q->wt->rank != 2) {
        snprintf(why, nwhy, "consumer '%s' (Gemm): transB does not match the FakeQuant view",
                 n->name);
        return false;
    }
    if (c == PQ_NONE) return true;
    const pq_value *cv = &g->values[c];
    const pq_shape *s = &cv->shape;
    bool n_ok =
        s->rank >= 1 && pq_dim_known(s->dims[s->rank - 1]) && s->dims[s->rank - 1].size == q->rows;
    bool as_vec = cv->dtype == PQ_DTYPE_F32 && s->rank == 1 && n_ok;
    bool as_row = cv->dtype == PQ_DTYPE_F32 && s->rank == 2 && n_ok && pq_dim_known(s->dims[0]) &&
                  s->dims[0].size == 1 && cv->constant;
    if (!as_vec && !as_row) {
        snprintf(why, nwhy, "consumer '%s' (Gemm): C is not f32 [N] or a constant [1, N]", n->name);
        return false;
    }
    return true;
}

/* int8 codes (i8 [rows * cols], the FakeQuant kernel's formula with its f32 scales) or f16 values
 * of the weight view m into t's data. */
static void pq_lq_fill_wide(const pq_graph *g, const pq_lq_fq *q, const float *m, pq_tensor *t) {
    if (q->kind == PQ_LQ_F16) {
        uint16_t *h = t->data;
        for (int64_t i = 0; i < q->rows * q->cols; i++)
            h[i] = pq_f32_to_f16(m[i]);
        return;
    }
    const float *sc = g->values[q->scales].constant->data;
    int8_t *c8 = t->data;
    for (int64_t r = 0; r < q->rows; r++)
        for (int64_t c = 0; c < q->cols; c++) {
            float v = nearbyintf(m[r * q->cols + c] / sc[r]);
            if (v != v) v = 0.0f;
            v = v < -127.0f ? -127.0f : (v > 127.0f ? 127.0f : v);
            c8[r * q->cols + c] = (int8_t)v;
        }
}

/* Packs the weight view rows of q into a new constant: u8 "<w>.packed" with its scale words
 * (piq/q), i8 "<w>.int8" (int8), f16 "<w>.f16" (f16). */
static enum pq_status pq_lq_pack(pq_graph *g, const pq_lq_fq *q, uint32_t *out, pq_error *err) {
    pq_weight_view wv;
    memset(&wv, 0, sizeof wv);
    wv.value = q->w;
    wv.name = g->values[q->w].name;
    wv.batch = q->batch;
    wv.rows = q->rows;
    wv.cols = q->cols;
    wv.transposed = q->transposed;
    bool wide = q->kind != PQ_LQ_PACKED;
    size_t bytes = wide ? (size_t)(q->rows * q->cols) * (q->kind == PQ_LQ_F16 ? 2 : 1)
                        : pq_packed_bytes(q->f, q->rows, q->cols, q->group);
    size_t row_bytes = wide ? 0 : pq_packed_row_bytes(q->f, q->cols, q->group);
    int64_t ng = wide ? 0 : (q->cols + q->group - 1) / q->group;
    int64_t dim = wide ? q->rows * q->cols : (int64_t)bytes;
    enum pq_dtype dt = q->kind == PQ_LQ_INT8  ? PQ_DTYPE_I8
                       : q->kind == PQ_LQ_F16 ? PQ_DTYPE_F16
                                              : PQ_DTYPE_U8;
    if (!bytes)
        return pq_error_set(err, PQ_ERR_INVALID, "weight '%s': bad size for packing", wv.name);
    float *m = NULL;
    PQ_TRY(pq_weight_view_read(g, &wv, &m, err));
    pq_tensor *t = pq_tensor_create(dt, 1, &dim, err);
    if (!t) {
        pq_free(m);
        return err ? err->status : PQ_ERR_NOMEM;
    }
    if (wide) {
        pq_lq_fill_wide(g, q, m, t);
    } else {
        const uint16_t *sw = g->values[q->scales].constant->data;
        uint8_t *dst = t->data;
        for (int64_t r = 0; r < q->rows; r++)
            pq_q_quantize_row_ukernel__scalar(q->f, m + r * q->cols, q->cols, q->group, sw + r * ng,
                                              dst + (size_t)r * row_bytes);
    }
    pq_free(m);
    char name[512];
    snprintf(name, sizeof name, "%s.%s", wv.name,
             q->kind == PQ_LQ_INT8 ? "int8" : (q->kind == PQ_LQ_F16 ? "f16" : "packed"));
    return pq_graph_add_constant(g, name, t, out, err);
}

/* Gemm C given as a constant [1, N]: a new constant [N] with the same data. */
static enum pq_status pq_lq_bias_vector(pq_graph *g, uint32_t c, uint32_t *out, pq_error *err) {
    const pq_value *cv = &g->values[c];
    if (cv->shape.rank == 1) {
        *out = c;
        return PQ_OK;
    }
    pq_tensor *t = pq_tensor_clone(cv->constant, err);
    if (!t) return err ? err->status : PQ_ERR_NOMEM;
    t->rank = 1;
    t->dims[0] = cv->constant->dims[1];
    char name[512];
    snprintf(name, sizeof name, "%s.row", cv->name);
    return pq_graph_add_constant(g, name, t, out, err);
}

/* Turns consumer nid (already accepted) into PackedMatMul / PackedConv reading packed; act_i8:
 * also act_quant = "int8" (piq/q codes only). */
static enum pq_status pq_lq_rewrite(pq_graph *g, const pq_lq_fq *q, uint32_t nid, uint32_t packed,
                                    bool act_i8, pq_error *err) {
    enum pq_op op = g->nodes[nid].op;
    if (op == PQ_OP_GEMM) {
        uint32_t c = pq_node_input(&g->nodes[nid], 2), bias = PQ_NONE;
        if (c != PQ_NONE) {
            PQ_TRY(pq_lq_bias_vector(g, c, &bias, err));
            PQ_TRY(pq_graph_set_input(g, nid, 2, bias, err));
        }
        pq_node_remove_attr(g, nid, "alpha");
        pq_node_remove_attr(g, nid, "beta");
        pq_node_remove_attr(g, nid, "transA");
        pq_node_remove_attr(g, nid, "transB");
    }
    if (op == PQ_OP_CONV && !pq_node_attr(&g->nodes[nid], "kernel_shape"))
        PQ_TRY(pq_node_set_ints(g, nid, "kernel_shape", q->wt->dims + 2,
                                (uint32_t)(q->wt->rank - 2), err));
    PQ_TRY(pq_graph_set_input(g, nid, 1, packed, err));
    if (q->kind == PQ_LQ_INT8) { /* (x, codes, bias or omitted, scales) */
        while (g->nodes[nid].n_inputs < 3)
            PQ_TRY(pq_graph_append_input(g, nid, PQ_NONE, err));
        PQ_TRY(pq_graph_append_input(g, nid, q->scales, err));
    }
    g->nodes[nid].op = op == PQ_OP_CONV ? PQ_OP_PACKED_CONV : PQ_OP_PACKED_MAT_MUL;
    const char *fs = q->kind == PQ_LQ_INT8  ? "int8"
                     : q->kind == PQ_LQ_F16 ? "f16"
                                            : pq_qformat_name(q->f);
    PQ_TRY(pq_node_set_string(g, nid, "format", fs, err));
    if (q->kind == PQ_LQ_PACKED) PQ_TRY(pq_node_set_int(g, nid, "qgroup", q->group, err));
    PQ_TRY(pq_node_set_int(g, nid, "rows", q->rows, err));
    PQ_TRY(pq_node_set_int(g, nid, "cols", q->cols, err));
    if (act_i8 && q->kind == PQ_LQ_PACKED)
        PQ_TRY(pq_node_set_string(g, nid, "act_quant", "int8", err));
    return PQ_OK;
}

static enum pq_status pq_lower_quant_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                         pq_error *err) {
    bool act_i8 = !strcmp(pq_opts_string(opts, "activations"), "int8");
    uint32_t n_i8 = 0;
    enum pq_status st = PQ_OK;
    pq_uses u;
    memset(&u, 0, sizeof u);
    uint32_t *fqs = NULL, nfq = 0, lowered = 0, n_mm = 0, n_conv = 0, removed = 0;
    PQ_TRY(pq_uses_build(g, &u, err));
    fqs = pq_malloc(sizeof(uint32_t) * (g->n_nodes ? g->n_nodes : 1));
    if (!fqs) {
        st = pq_error_nomem(err, "FakeQuant list");
        goto cleanup;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == PQ_OP_FAKE_QUANT) fqs[nfq++] = i;
    for (uint32_t k = 0; k < nfq; k++) {
        pq_lq_fq q;
        char why[768] = "";
        bool ok = pq_lq_decode(g, fqs[k], &q, why, sizeof why);
        if (ok &&
            (q.out == PQ_NONE || u.n_graph_outputs[q.out] > 0 || pq_uses_count(&u, q.out) == 0)) {
            snprintf(why, sizeof why, "its output is a graph output or unused");
            ok = false;
        }
        for (uint32_t j = ok ? u.start[q.out] : 0; ok && j < u.start[q.out + 1]; j++)
            ok = pq_lq_consumer_ok(g, &q, u.use[j].node, u.use[j].slot, why, sizeof why);
        const char *wname = q.w != PQ_NONE ? g->values[q.w].name : "?";
        if (!ok) {
            pq_pass_log(ctx, 1, "weight '%s' stays FakeQuant (node '%s'): %s", wname,
                        g->nodes[fqs[k]].name, why);
            continue;
        }
        uint32_t packed = PQ_NONE;
        PQ_TRY_GOTO(st, pq_lq_pack(g, &q, &packed, err), cleanup);
        for (uint32_t j = u.start[q.out]; j < u.start[q.out + 1]; j++) {
            uint32_t nid = u.use[j].node;
            if (g->nodes[nid].op == PQ_OP_CONV)
                n_conv++;
            else
                n_mm++;
            PQ_TRY_GOTO(st, pq_lq_rewrite(g, &q, nid, packed, act_i8, err), cleanup);
            if (act_i8 && q.kind == PQ_LQ_PACKED) n_i8++;
            PQ_TRY_GOTO(st, pq_infer_node(g, nid, err), cleanup);
        }
        lowered++;
    }
    /* dead FakeQuants go, then the f32 weights and scale words nothing reads any more */
    PQ_TRY_GOTO(st, pq_graph_remove_dead(g, &removed, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_compact(g, NULL, err), cleanup);
    PQ_TRY_GOTO(st, pq_graph_toposort(g, err), cleanup);
    pq_pass_log(ctx, 1, "lowered %u of %u FakeQuants (%u PackedMatMul, %u PackedConv)", lowered,
                nfq, n_mm, n_conv);
    if (act_i8) pq_pass_log(ctx, 1, "int8 activations on %u packed piq/q ops", n_i8);
cleanup:
    pq_uses_free(&u);
    pq_free(fqs);
    return st;
}

const pq_pass pq_pass_lower_quant = {
    .name = "lower-quant",
    .summary = "FakeQuant weights of MatMul/Gemm/Conv -> PackedMatMul/PackedConv on packed codes "
               "(piq/q), int8 codes + row scales, or f16",
    .options = pq_lower_quant_options,
    .n_options = sizeof pq_lower_quant_options / sizeof pq_lower_quant_options[0],
    .run = pq_lower_quant_run,
};
