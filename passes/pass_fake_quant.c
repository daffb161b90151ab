/* The fake-quant pass: every selected weight is read through FakeQuant(w, scales) with scale words
 * calibrated now (SPEC 2-4), and a pq_quant_record with metrics against the original is kept. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "ir/ir.h"
#include "pass.h"
#include "rotate.h"
#include "select.h"

/* Options: the common selection (targets/include/exclude/min-elements/skip), then
 * - format: piq3 | piq2 | q3 | q2 | int8 | f16 (default piq3);
 * - group:  weights per scale word, 8..65536, a multiple of 8 (checked at run); piq/q only;
 * - calib:  absmax | mse | weighted | gptq. No schema default on purpose: absent means mse for
 *           piq3/piq2 and absmax for q3/q2 (the SPEC 3 baseline, as `piqc quantize` does), so a
 *           pipeline saying `calib: mse` for q3 gets mse. Ignored (logged) for int8 and f16.
 * - ste:    standard | clipped | lsq | ewgs (default standard), recorded on the FakeQuant node for
 *           the training engine (SPEC 7).
 *
 * Per-layer format (mixed precision): a consumer node (MatMul/Gemm/Conv) carrying the string
 * attribute `quant_format` (piq3|piq2|q3|q2|int8|f16, set by the mixed-precision pass) is quantized
 * to that format instead of the `format` option; its group stays the pass's `group` (int8/f16 have
 * none) and its calib is the `calib` option when given, else the default of its own format. The
 * record and the FakeQuant node carry the layer's format. For a weight shared by several selected
 * layers the first one's attribute decides (a disagreeing one is logged). Any other value is
 * INVALID naming the node.
 *
 * calib gptq (SPEC 4) is SEQUENTIAL: layers are quantized in graph (topological) order, and for
 * each one the calibration provider's `hessian` callback runs the graph as it is at that moment,
 * so the FakeQuant nodes of earlier layers (and any rotation) are in effect. The Hessians of every
 * selected consumer of a shared weight are summed. pq_quantize_matrix_gptq gives codes of
 * error-updated weights that FakeQuant(w, scales) would not reproduce, so the weight constant is
 * replaced by the GPTQ reconstruction w_hat (exactly on the grid: FakeQuant(w_hat, scales) ==
 * w_hat bit for bit; a private copy "<name>.gptq" when an unselected node also reads the weight)
 * and the original is kept in the weight note for metrics. Without calibration data it is INVALID;
 * a layer without a Hessian (batched MatMul weight, grouped/depthwise Conv, a node the data never
 * reaches) uses mse, with a log line. Progress per layer on stderr when ctx->progress. */
static const char *const pq_fq_formats[] = {"piq3", "piq2", "q3", "q2", "int8", "f16", NULL};
static const char *const pq_fq_calibs[] = {"absmax", "mse", "weighted", "gptq", NULL};
static const char *const pq_fq_stes[] = {"standard", "clipped", "lsq", "ewgs", NULL};

static const pq_pass_option pq_fake_quant_options[] = {
    PQ_SELECT_OPTION_ENTRIES,
    {"format", PQ_OPT_ENUM, "weight format", "piq3", 0, 0, pq_fq_formats},
    {"group", PQ_OPT_INT, "weights per scale word (a multiple of 8; piq/q formats)", "256", 8,
     65536, NULL},
    {"calib", PQ_OPT_ENUM, "scale selection (absent: mse for piq3/piq2, absmax for q3/q2)", NULL, 0,
     0, pq_fq_calibs},
    {"ste", PQ_OPT_ENUM, "straight-through estimator used when training (SPEC 7)", "standard", 0, 0,
     pq_fq_stes},
};

enum pq_fq_kind { PQ_FQ_PACKED, PQ_FQ_INT8, PQ_FQ_F16 };

/* Settings of one run (or of one layer, after its quant_format), decoded from the options. */
typedef struct pq_fq_cfg {
    enum pq_fq_kind kind;
    enum pq_qformat qf; /* PQ_FQ_PACKED */
    const char *format;
    int64_t group;
    enum pq_calib calib;
    const char *calib_name; /* "-" for int8 / f16 */
    const char *ste;
    bool calib_given; /* the `calib` option was set */
    enum pq_calib calib_opt;
} pq_fq_cfg;

/* What quantizing one weight view produced. */
typedef struct pq_fq_result {
    pq_tensor *scales; /* f16 [R, ngroups] (packed), f32 [R] (int8), NULL (f16); owned */
    float *w_hat;      /* R x C reconstruction (view layout) */
    float *steps;      /* |step| per group (packed), per row (int8, f16) */
    int64_t metric_group;
    uint64_t stored_bytes;
} pq_fq_result;

static void pq_fq_result_free(pq_fq_result *r) {
    pq_tensor_destroy(r->scales);
    pq_free(r->w_hat);
    pq_free(r->steps);
    memset(r, 0, sizeof *r);
}

/* Sets format (a pq_fq_formats entry or the option's string), kind, qf and the calibration that
 * goes with it: the `calib` option when given, else mse for piq, absmax for q; "-" for int8/f16. */
static enum pq_status pq_fq_set_format(pq_fq_cfg *cfg, const char *format, pq_error *err) {
    cfg->format = format;
    if (!strcmp(format, "int8"))
        cfg->kind = PQ_FQ_INT8;
    else if (!strcmp(format, "f16"))
        cfg->kind = PQ_FQ_F16;
    else if (pq_qformat_from_name(format, &cfg->qf))
        cfg->kind = PQ_FQ_PACKED;
    else
        return pq_error_set(err, PQ_ERR_INTERNAL, "unknown format '%s'", format);
    if (cfg->kind != PQ_FQ_PACKED) {
        cfg->calib = PQ_CALIB_MSE;
        cfg->calib_name = "-";
        return PQ_OK;
    }
    if (cfg->calib_given)
        cfg->calib = cfg->calib_opt;
    else
        cfg->calib =
            cfg->qf == PQ_QFORMAT_Q3 || cfg->qf == PQ_QFORMAT_Q2 ? PQ_CALIB_ABSMAX : PQ_CALIB_MSE;
    cfg->calib_name = pq_calib_name(cfg->calib);
    return PQ_OK;
}

static enum pq_status pq_fq_config(const pq_pass_opts *opts, pq_pass_ctx *ctx, pq_fq_cfg *cfg,
                                   pq_error *err) {
    memset(cfg, 0, sizeof *cfg);
    cfg->format = pq_opts_string(opts, "format");
    if (!cfg->format) cfg->format = "piq3";
    cfg->group = pq_opts_int(opts, "group");
    cfg->ste = pq_opts_string(opts, "ste");
    if (!cfg->ste) cfg->ste = "standard";
    if (cfg->group < 8 || cfg->group > 65536 || cfg->group % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'group' = %lld must be a multiple of 8 in 8..65536",
                            (long long)cfg->group);
    bool known = false;
    for (size_t i = 0; pq_fq_formats[i] && !known; i++)
        known = !strcmp(cfg->format, pq_fq_formats[i]);
    if (!known)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'format' = '%s' must be one of piq3, piq2, q3, q2, int8, f16",
                            cfg->format);
    const char *cn = pq_opts_is_set(opts, "calib") ? pq_opts_string(opts, "calib") : NULL;
    if (cn && !pq_calib_from_name(cn, &cfg->calib_opt))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'calib' = '%s' must be one of absmax, mse, weighted, gptq", cn);
    cfg->calib_given = cn != NULL;
    if (cfg->kind != PQ_FQ_PACKED && cn)
        pq_pass_log(ctx, 1, "calib '%s' ignored for format %s", cn, cfg->format);
    return pq_fq_set_format(cfg, cfg->format, err);
}

/* The layer settings of consumer node nid: base with the node's quant_format applied (see the
 * header comment). */
static enum pq_status pq_fq_layer_cfg(const pq_fq_cfg *base, const pq_graph *g, uint32_t nid,
                                      pq_fq_cfg *out, pq_error *err) {
    *out = *base;
    const pq_node *n = &g->nodes[nid];
    const pq_attr *a = pq_node_attr(n, "quant_format");
    if (!a) return PQ_OK;
    for (size_t i = 0; a->type == PQ_ATTR_STRING && pq_fq_formats[i]; i++)
        if (!strcmp(a->u.s, pq_fq_formats[i])) return pq_fq_set_format(out, pq_fq_formats[i], err);
    return pq_error_set(err, PQ_ERR_INVALID,
                        "node '%s' (%s): attribute 'quant_format' must be a string, one of piq3, "
                        "piq2, q3, q2, int8, f16",
                        n->name, pq_op_name(n->op));
}

/* Stored (row-major ONNX) index of view element i of view wv. */
static int64_t pq_fq_stored_index(const pq_weight_view *wv, int64_t i) {
    if (!wv->transposed) return i;
    int64_t mat = wv->rows * wv->cols, b = i / mat, r = (i % mat) / wv->cols, k = i % wv->cols;
    return b * mat + k * wv->rows + r;
}

/* SPEC 1: a weight being quantized must be finite; names the tensor and its first bad index. */
static enum pq_status pq_fq_check_finite(const pq_graph *g, const pq_weight_view *wv,
                                         pq_error *err) {
    const pq_tensor *t = g->values[wv->value].constant;
    const float *d = t->data;
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(d[i])) {
            char shape[128];
            pq_shape_format(t->rank, t->dims, shape, (int)sizeof shape);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "weight '%s' of node '%s' (%s): non-finite value %g at index %lld "
                                "of %s",
                                wv->name, wv->node_name, pq_op_name(wv->op), (double)d[i],
                                (long long)i, shape);
        }
    return PQ_OK;
}

/* Reads tensor t (the stored layout of view wv) as the R x C view (pq_malloc'ed). */
static enum pq_status pq_fq_read_view(const pq_tensor *t, const pq_weight_view *wv, float **out,
                                      pq_error *err) {
    int64_t total = wv->batch * wv->rows * wv->cols;
    if (t->dtype != PQ_DTYPE_F32 || pq_tensor_numel(t) != total)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "original of weight '%s' does not have its %lld f32 elements", wv->name,
                            (long long)total);
    float *m = pq_malloc(sizeof(float) * (size_t)(total ? total : 1));
    if (!m) return pq_error_nomem(err, "weight view");
    const float *src = t->data;
    for (int64_t i = 0; i < total; i++)
        m[i] = src[pq_fq_stored_index(wv, i)];
    *out = m;
    return PQ_OK;
}

/* Little-endian f16 scale word of group gi of row r of a packed matrix. */
static uint16_t pq_fq_scale_word(const uint8_t *packed, enum pq_qformat f, int64_t cols,
                                 int64_t group, int64_t r, int64_t gi) {
    size_t off = (size_t)r * pq_packed_row_bytes(f, cols, group) +
                 (size_t)gi * (2 + pq_packed_code_bytes(f, group));
    return (uint16_t)(packed[off] | (packed[off + 1] << 8));
}

/* Packed formats: packs with pq_quantize_matrix, or pq_quantize_matrix_gptq with the Hessian hess
 * for gptq (so the scale words are exactly the library's), reads the words back and dequantizes. */
static enum pq_status pq_fq_packed(const pq_fq_cfg *cfg, const char *name, const float *m,
                                   int64_t R, int64_t C, enum pq_calib calib, const float *h,
                                   const double *hess, pq_fq_result *res, pq_error *err) {
    enum pq_status st = PQ_OK;
    int64_t ng = (C + cfg->group - 1) / cfg->group;
    size_t bytes = pq_packed_bytes(cfg->qf, R, C, cfg->group);
    if (!bytes) return pq_error_set(err, PQ_ERR_INVALID, "weight '%s': bad size for packing", name);
    uint8_t *p = pq_malloc(bytes);
    int64_t sdims[2] = {R, ng};
    res->w_hat = pq_malloc(sizeof(float) * (size_t)(R * C));
    res->steps = pq_malloc(sizeof(float) * (size_t)(R * ng));
    if (!p || !res->w_hat || !res->steps) {
        st = pq_error_nomem(err, "fake-quant buffers");
        goto cleanup;
    }
    if (calib == PQ_CALIB_GPTQ)
        st = pq_quantize_matrix_gptq(name, m, R, C, cfg->qf, cfg->group, hess, p, err);
    else
        st = pq_quantize_matrix(name, m, R, C, cfg->qf, cfg->group, calib, h, p, err);
    if (st != PQ_OK) goto cleanup;
    PQ_TRY_GOTO(st, pq_dequantize_matrix(p, R, C, cfg->qf, cfg->group, res->w_hat, err), cleanup);
    PQ_TRY_GOTO(st, pq_packed_group_steps(p, R, C, cfg->qf, cfg->group, res->steps, err), cleanup);
    res->scales = pq_tensor_create(PQ_DTYPE_F16, 2, sdims, err);
    if (!res->scales) {
        st = err ? err->status : PQ_ERR_NOMEM;
        goto cleanup;
    }
    uint16_t *sw = res->scales->data;
    for (int64_t r = 0; r < R; r++)
        for (int64_t gi = 0; gi < ng; gi++)
            sw[r * ng + gi] = pq_fq_scale_word(p, cfg->qf, C, cfg->group, r, gi);
    res->metric_group = cfg->group;
    res->stored_bytes = bytes;
cleanup:
    pq_free(p);
    return st;
}

/* INT8 per output channel (SPEC 3): scales f32 [R] from pq_int8_quantize_weights. */
static enum pq_status pq_fq_int8(const char *name, const float *m, int64_t R, int64_t C,
                                 pq_fq_result *res, pq_error *err) {
    enum pq_status st = PQ_OK;
    int8_t *q = pq_malloc((size_t)(R * C));
    res->scales = pq_tensor_create(PQ_DTYPE_F32, 1, &R, err);
    res->w_hat = pq_malloc(sizeof(float) * (size_t)(R * C));
    res->steps = pq_malloc(sizeof(float) * (size_t)R);
    if (!q || !res->scales || !res->w_hat || !res->steps) {
        st = pq_error_nomem(err, "int8 fake-quant buffers");
        goto cleanup;
    }
    float *s = res->scales->data;
    PQ_TRY_GOTO(st, pq_int8_quantize_weights(name, m, R, C, q, s, err), cleanup);
    for (int64_t r = 0; r < R; r++) {
        res->steps[r] = s[r];
        for (int64_t k = 0; k < C; k++)
            res->w_hat[r * C + k] = (float)q[r * C + k] * s[r];
    }
    res->metric_group = C;
    res->stored_bytes = (uint64_t)(R * C) + 4u * (uint64_t)R;
cleanup:
    pq_free(q);
    return st;
}

/* f16: w_hat = f16(w) (round to nearest even). A value that overflows f16 is INVALID (the
 * reconstruction would be infinite). The "step" for outlier retention is the f16 spacing at the
 * row's largest |w|, so a correctly rounded value always counts as kept. */
static enum pq_status pq_fq_f16(const pq_weight_view *wv, const float *m, int64_t R, int64_t C,
                                pq_fq_result *res, pq_error *err) {
    res->w_hat = pq_malloc(sizeof(float) * (size_t)(R * C));
    res->steps = pq_malloc(sizeof(float) * (size_t)R);
    if (!res->w_hat || !res->steps) return pq_error_nomem(err, "f16 fake-quant buffers");
    for (int64_t r = 0; r < R; r++) {
        float mx = 0.0f;
        for (int64_t k = 0; k < C; k++) {
            int64_t i = r * C + k;
            float v = pq_f16_to_f32(pq_f32_to_f16(m[i]));
            if (!isfinite(v))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "weight '%s': value %g at index %lld is outside the f16 range",
                                    wv->name, (double)m[i], (long long)pq_fq_stored_index(wv, i));
            res->w_hat[i] = v;
            if (fabsf(m[i]) > mx) mx = fabsf(m[i]);
        }
        int e = 0;
        (void)frexpf(mx, &e);
        float ulp = mx > 0.0f ? ldexpf(1.0f, e - 11) : 0.0f;
        res->steps[r] = mx > 0.0f && ulp < 0x1p-24f ? 0x1p-24f : ulp;
    }
    res->metric_group = C;
    res->stored_bytes = 2u * (uint64_t)(R * C);
    return PQ_OK;
}

/* Undoes the rotation a note records on a view in place (input side, then output side; the two
 * commute). */
static enum pq_status pq_fq_unrotate(float *x, const pq_weight_view *wv, int64_t stride,
                                     const pq_weight_note *note, pq_error *err) {
    if (note->rotated_in)
        PQ_TRY(
            pq_rotate_view_in(x, wv->batch * wv->rows, wv->cols, stride, note->seed_in, true, err));
    if (note->rotated_out)
        PQ_TRY(pq_rotate_view_out(x, wv->batch, wv->rows, wv->cols, note->seed_out, true, err));
    return PQ_OK;
}

/* Metric sums of w_hat against the original weight. When the note says the weight was rotated,
 * w_hat is rotated back (in place) and compared with note->original (or, without one, with the
 * current weight rotated back). Outlier tolerances stay the group steps of the rotated domain. */
static enum pq_status pq_fq_metrics(const pq_graph *g, const pq_weight_view *wv,
                                    const pq_weight_note *note, const float *m, pq_fq_result *res,
                                    pq_metrics_acc *acc, bool *rotated, pq_error *err) {
    int64_t R = wv->batch * wv->rows, C = wv->cols;
    *rotated = note && (note->rotated_in || note->rotated_out);
    enum pq_status st = PQ_OK;
    float *ref = NULL;
    if (!*rotated && note && note->original) { /* replaced by an earlier gptq reconstruction */
        PQ_TRY(pq_fq_read_view(note->original, wv, &ref, err));
        st = pq_metrics_acc_add(acc, ref, res->w_hat, R, C, res->metric_group, res->steps, err);
        pq_free(ref);
        return st;
    }
    if (!*rotated)
        return pq_metrics_acc_add(acc, m, res->w_hat, R, C, res->metric_group, res->steps, err);
    const pq_tensor *t = g->values[wv->value].constant;
    int64_t stride = 1;
    if (wv->op == PQ_OP_CONV && t->rank > 2) stride = C / t->dims[1];
    if (note->original) {
        PQ_TRY_GOTO(st, pq_fq_read_view(note->original, wv, &ref, err), cleanup);
    } else {
        ref = pq_malloc(sizeof(float) * (size_t)(R * C));
        if (!ref) {
            st = pq_error_nomem(err, "reference weight");
            goto cleanup;
        }
        memcpy(ref, m, sizeof(float) * (size_t)(R * C));
    }
    PQ_TRY_GOTO(st, pq_fq_unrotate(res->w_hat, wv, stride, note, err), cleanup);
    if (!note->original) PQ_TRY_GOTO(st, pq_fq_unrotate(ref, wv, stride, note, err), cleanup);
    st = pq_metrics_acc_add(acc, ref, res->w_hat, R, C, res->metric_group, res->steps, err);
cleanup:
    pq_free(ref);
    if (st != PQ_OK) pq_error_prefix(err, "weight '%s' (rotated): ", wv->name);
    return st;
}

/* Adds scales and FakeQuant(w, scales) for the weight of view wv; *out = its output value. */
static enum pq_status pq_fq_insert(pq_graph *g, const pq_fq_cfg *cfg, const pq_weight_view *wv,
                                   pq_fq_result *res, uint32_t *out, pq_error *err) {
    char hint[512];
    uint32_t ins[2] = {wv->value, PQ_NONE}, nid = PQ_NONE;
    const char *wname = g->values[wv->value].name;
    if (res->scales) {
        snprintf(hint, sizeof hint, "%s.scales", wname);
        pq_tensor *s = res->scales;
        res->scales = NULL; /* ownership moves to the graph, also on failure */
        PQ_TRY(pq_graph_add_constant(g, hint, s, &ins[1], err));
    }
    snprintf(hint, sizeof hint, "%s.fq", wname);
    PQ_TRY(pq_build(g, PQ_OP_FAKE_QUANT, hint, ins, ins[1] == PQ_NONE ? 1 : 2, out, &nid, err));
    PQ_TRY(pq_node_set_string(g, nid, "format", cfg->format, err));
    if (cfg->kind == PQ_FQ_PACKED) PQ_TRY(pq_node_set_int(g, nid, "qgroup", cfg->group, err));
    PQ_TRY(pq_node_set_int(g, nid, "transposed", wv->transposed ? 1 : 0, err));
    PQ_TRY(pq_node_set_string(g, nid, "ste", cfg->ste, err));
    return pq_infer_node(g, nid, err);
}

/* One distinct selected weight and what the run decided for it. */
typedef struct pq_fq_layer {
    uint32_t target;   /* index of its first selected consumer in the target list */
    pq_fq_cfg cfg;     /* after that consumer's quant_format */
    float *importance; /* weighted: cols entries, or NULL */
    double *hessian;   /* gptq: cols x cols, or NULL (then mse) */
    int64_t hess_rows; /* rows of X behind hessian */
    uint32_t fq_out;   /* FakeQuant output value */
} pq_fq_layer;

/* Whether value v is read by anything but the selected consumers of it (tg[from..nt) with
 * view.value == v) or is a graph output. */
static enum pq_status pq_fq_other_readers(const pq_graph *g, uint32_t v, const pq_weight_target *tg,
                                          uint32_t from, uint32_t nt, bool *other, pq_error *err) {
    pq_uses u;
    PQ_TRY(pq_uses_build(g, &u, err));
    *other = u.n_graph_outputs[v] > 0;
    for (uint32_t k = u.start[v]; k < u.start[v + 1] && !*other; k++) {
        bool sel = false;
        for (uint32_t t = from; t < nt && !sel; t++)
            sel =
                tg[t].view.value == v && tg[t].node == u.use[k].node && tg[t].slot == u.use[k].slot;
        *other = !sel;
    }
    pq_uses_free(&u);
    return PQ_OK;
}

/* gptq: the weight of view *wv becomes the reconstruction w_hat (view layout), so that
 * FakeQuant(w_hat, scales) reproduces GPTQ's codes; the original goes into the weight's note
 * (first time only). When another node also reads the weight, a private copy "<name>.gptq" is
 * written instead, with a note of its own (rotation copied), and *wv is updated to describe it. */
static enum pq_status pq_fq_replace_weight(pq_graph *g, pq_pass_ctx *ctx, pq_weight_view *wv,
                                           const pq_weight_target *tg, uint32_t from, uint32_t nt,
                                           const float *w_hat, pq_error *err) {
    bool other = false;
    PQ_TRY(pq_fq_other_readers(g, wv->value, tg, from, nt, &other, err));
    pq_weight_note *note = pq_pass_note(ctx, wv->name);
    if (!note) return pq_error_nomem(err, "weight note");
    if (!note->original) {
        note->original = pq_tensor_clone(g->values[wv->value].constant, err);
        if (!note->original) return pq_error_prefix(err, "weight '%s': ", wv->name);
    }
    if (other) {
        pq_weight_note old = *note; /* pq_pass_note below may move the notes */
        pq_tensor *t = pq_tensor_clone(g->values[wv->value].constant, err);
        if (!t) return pq_error_prefix(err, "copy of '%s': ", wv->name);
        char name[512];
        snprintf(name, sizeof name, "%s.gptq", wv->name);
        uint32_t nv = PQ_NONE;
        PQ_TRY(pq_graph_add_constant(g, name, t, &nv, err));
        wv->value = nv;
        wv->name = g->values[nv].name;
        pq_weight_note *nn = pq_pass_note(ctx, wv->name);
        if (!nn) return pq_error_nomem(err, "weight note");
        nn->rotated_in = old.rotated_in;
        nn->seed_in = old.seed_in;
        nn->rotated_out = old.rotated_out;
        nn->seed_out = old.seed_out;
        if (!nn->original) {
            nn->original = pq_tensor_clone(old.original, err);
            if (!nn->original) return pq_error_prefix(err, "weight '%s': ", wv->name);
        }
    }
    return pq_weight_view_write(g, wv, w_hat, err);
}

/* Quantizes one weight (the view of its first selected consumer, tg[L->target]), records it and
 * inserts its FakeQuant (L->fq_out). */
static enum pq_status pq_fq_one(pq_graph *g, pq_fq_layer *L, pq_pass_ctx *ctx,
                                const pq_weight_target *tg, uint32_t nt, uint64_t *bytes,
                                int64_t *nweights, pq_error *err) {
    enum pq_status st = PQ_OK;
    float *m = NULL;
    pq_fq_result res;
    memset(&res, 0, sizeof res);
    const pq_fq_cfg *cfg = &L->cfg;
    pq_weight_view view = tg[L->target].view, *wv = &view;
    int64_t R = wv->batch * wv->rows, C = wv->cols;
    enum pq_calib calib = cfg->calib;
    const char *calib_name = cfg->calib_name;
    if (cfg->kind == PQ_FQ_PACKED && ((calib == PQ_CALIB_WEIGHTED && !L->importance) ||
                                      (calib == PQ_CALIB_GPTQ && !L->hessian))) {
        if (calib == PQ_CALIB_WEIGHTED)
            pq_pass_log(ctx, 1, "weight '%s': no calibration statistics, using mse", wv->name);
        calib = PQ_CALIB_MSE;
        calib_name = pq_calib_name(calib);
    }
    PQ_TRY_GOTO(st, pq_weight_view_read(g, wv, &m, err), cleanup);
    if (cfg->kind == PQ_FQ_PACKED)
        st = pq_fq_packed(cfg, wv->name, m, R, C, calib, L->importance, L->hessian, &res, err);
    else if (cfg->kind == PQ_FQ_INT8)
        st = pq_fq_int8(wv->name, m, R, C, &res, err);
    else
        st = pq_fq_f16(wv, m, R, C, &res, err);
    if (st != PQ_OK) goto cleanup;
    /* before the metrics, which may un-rotate res.w_hat in place */
    if (calib == PQ_CALIB_GPTQ)
        PQ_TRY_GOTO(st, pq_fq_replace_weight(g, ctx, wv, tg, L->target, nt, res.w_hat, err),
                    cleanup);

    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    bool rotated = false;
    const pq_weight_note *note = pq_pass_find_note(ctx, wv->name);
    PQ_TRY_GOTO(st, pq_fq_metrics(g, wv, note, m, &res, &acc, &rotated, err), cleanup);

    pq_quant_record rec;
    memset(&rec, 0, sizeof rec);
    rec.value_name = tg[L->target].view.name; /* the weight's own name, also for a private copy */
    rec.node_name = wv->node_name;
    rec.op = wv->op;
    rec.format = cfg->format;
    rec.calib = calib_name;
    rec.group = cfg->kind == PQ_FQ_PACKED ? cfg->group : 0;
    rec.onnx_rank = wv->rank;
    memcpy(rec.onnx_dims, wv->dims, sizeof(int64_t) * (size_t)wv->rank);
    rec.rows = R;
    rec.cols = C;
    rec.stored_bytes = res.stored_bytes;
    rec.rotated = rotated;
    rec.n = acc.n;
    rec.sum_e2 = acc.sum_e2;
    rec.sum_w2 = acc.sum_w2;
    rec.sum_h2 = acc.sum_h2;
    rec.dot = acc.dot;
    rec.outliers = acc.outliers;
    rec.outliers_kept = acc.outliers_kept;
    PQ_TRY_GOTO(st, pq_pass_add_record(ctx, &rec, err), cleanup);
    *bytes += res.stored_bytes;
    *nweights += R * C;
    /* wv->name lives in the arena and stays valid; the view's value id is still the weight. */
    st = pq_fq_insert(g, cfg, wv, &res, &L->fq_out, err);
cleanup:
    pq_free(m);
    pq_fq_result_free(&res);
    return st;
}

/* Importance of every distinct selected weight (weighted calibration), asked of the driver before
 * the graph changes; stored in layers[i].importance. */
static enum pq_status pq_fq_importance(pq_graph *g, pq_pass_ctx *ctx, pq_fq_layer *layers,
                                       const uint32_t *values, uint32_t n, pq_error *err) {
    float **imp = pq_calloc(n ? n : 1, sizeof *imp);
    if (!imp) return pq_error_nomem(err, "importance list");
    enum pq_status st = n ? ctx->calib->importance(ctx->calib->ctx, g, values, n, imp, err) : PQ_OK;
    for (uint32_t i = 0; i < n; i++) {
        if (st == PQ_OK && layers[i].cfg.kind == PQ_FQ_PACKED &&
            layers[i].cfg.calib == PQ_CALIB_WEIGHTED)
            layers[i].importance = imp[i];
        else
            pq_free(imp[i]);
    }
    pq_free(imp);
    return st;
}

/* gptq: the Hessian of layer L, summed over every selected consumer of its weight that sees the
 * same view, asked of the driver on the graph as it is now (earlier layers quantized). Leaves
 * L->hessian NULL (mse, logged) when the weight is batched or the driver has no Hessian for a
 * consumer (UNSUPPORTED) or no rows. */
static enum pq_status pq_fq_hessian(pq_graph *g, pq_pass_ctx *ctx, pq_fq_layer *L,
                                    const pq_weight_target *tg, uint32_t nt, uint32_t index,
                                    uint32_t count, pq_error *err) {
    const pq_weight_view *wv = &tg[L->target].view;
    if (wv->batch > 1) {
        pq_pass_log(ctx, 1,
                    "weight '%s' of node '%s': batched MatMul weight (%lld matrices): gptq needs "
                    "one Hessian per matrix, using mse",
                    wv->name, wv->node_name, (long long)wv->batch);
        return PQ_OK;
    }
    enum pq_status st = PQ_OK;
    double *sum = NULL, *h = NULL;
    int64_t rows = 0;
    for (uint32_t t = L->target; t < nt; t++) {
        const pq_weight_view *v = &tg[t].view;
        if (v->value != wv->value || v->cols != wv->cols || v->rows != wv->rows || v->batch != 1)
            continue;
        int64_t cols = 0, ns = 0;
        st = ctx->calib->hessian(ctx->calib->ctx, g, tg[t].node, &h, &cols, &ns, err);
        if (st == PQ_ERR_UNSUPPORTED) {
            pq_pass_log(ctx, 1, "weight '%s': %s; using mse", wv->name, err ? err->msg : "");
            if (err) pq_error_clear(err);
            st = PQ_OK;
            pq_free(sum);
            sum = NULL;
            rows = 0;
            break;
        }
        if (st != PQ_OK) goto cleanup;
        if (!h || cols != wv->cols) {
            st = pq_error_set(err, PQ_ERR_INTERNAL,
                              "node '%s': Hessian has %lld columns, the weight view %lld",
                              v->node_name, (long long)cols, (long long)wv->cols);
            goto cleanup;
        }
        if (!sum) {
            sum = h;
        } else {
            for (int64_t i = 0; i < cols * cols; i++)
                sum[i] += h[i];
            pq_free(h);
        }
        h = NULL;
        rows += ns;
    }
    if (sum && rows == 0) {
        pq_pass_log(ctx, 1,
                    "weight '%s' of node '%s': the calibration data never reached it, using mse",
                    wv->name, wv->node_name);
        pq_free(sum);
        sum = NULL;
    }
    if (sum && ctx->progress)
        fprintf(stderr, "fake-quant: gptq layer %u/%u '%s' (H %lldx%lld from %lld rows)\n", index,
                count, wv->name, (long long)wv->cols, (long long)wv->cols, (long long)rows);
    L->hessian = sum;
    L->hess_rows = rows;
    sum = NULL;
cleanup:
    pq_free(h);
    pq_free(sum);
    return st;
}

static enum pq_status pq_fake_quant_run(pq_graph *g, const pq_pass_opts *opts, pq_pass_ctx *ctx,
                                        pq_error *err) {
    pq_fq_cfg cfg;
    PQ_TRY(pq_fq_config(opts, ctx, &cfg, err));
    enum pq_status st = PQ_OK;
    pq_weight_target *tg = NULL;
    uint32_t nt = 0, nu = 0, n_gptq = 0, i_gptq = 0;
    uint32_t *values = NULL; /* weight value id of each distinct weight */
    pq_fq_layer *layers = NULL;
    bool any_weighted = false;
    uint64_t bytes = 0;
    int64_t nweights = 0, total = 0, done = 0;
    PQ_TRY(pq_select_weights(g, opts, &tg, &nt, err));
    values = pq_calloc(nt ? nt : 1, sizeof *values);
    layers = pq_calloc(nt ? nt : 1, sizeof *layers);
    if (!values || !layers) {
        st = pq_error_nomem(err, "fake-quant weight list");
        goto cleanup;
    }
    for (uint32_t t = 0; t < nt; t++) {
        bool seen = false;
        for (uint32_t u = 0; u < nu && !seen; u++)
            seen = values[u] == tg[t].view.value;
        if (seen) continue;
        layers[nu].target = t;
        PQ_TRY_GOTO(st, pq_fq_layer_cfg(&cfg, g, tg[t].node, &layers[nu].cfg, err), cleanup);
        values[nu++] = tg[t].view.value;
        total += tg[t].view.batch * tg[t].view.rows * tg[t].view.cols;
    }
    for (uint32_t u = 0; u < nu; u++) {
        const pq_fq_cfg *lc = &layers[u].cfg;
        any_weighted |= lc->kind == PQ_FQ_PACKED && lc->calib == PQ_CALIB_WEIGHTED;
        n_gptq += lc->kind == PQ_FQ_PACKED && lc->calib == PQ_CALIB_GPTQ;
        /* a shared weight follows its first selected consumer's format */
        for (uint32_t t = layers[u].target + 1; t < nt; t++) {
            pq_fq_cfg other;
            if (tg[t].view.value != values[u]) continue;
            PQ_TRY_GOTO(st, pq_fq_layer_cfg(&cfg, g, tg[t].node, &other, err), cleanup);
            if (strcmp(other.format, lc->format))
                pq_pass_log(ctx, 1,
                            "weight '%s' is shared: node '%s' asks for %s, it gets %s of node '%s'",
                            tg[t].view.name, tg[t].view.node_name, other.format, lc->format,
                            tg[layers[u].target].view.node_name);
        }
    }
    if (any_weighted && (!ctx->calib || !ctx->calib->importance)) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "calib 'weighted' needs calibration data (--calib-data)");
        goto cleanup;
    }
    if (n_gptq && (!ctx->calib || !ctx->calib->samples)) {
        st =
            pq_error_set(err, PQ_ERR_INVALID, "calib 'gptq' needs calibration data (--calib-data)");
        goto cleanup;
    }
    if (n_gptq && !ctx->calib->hessian) {
        st = pq_error_set(err, PQ_ERR_UNSUPPORTED,
                          "calib 'gptq': the calibration provider cannot collect Hessians");
        goto cleanup;
    }
    /* SPEC 1 before any edit, so a bad weight leaves the graph as it was */
    for (uint32_t u = 0; u < nu; u++)
        PQ_TRY_GOTO(st, pq_fq_check_finite(g, &tg[layers[u].target].view, err), cleanup);
    if (any_weighted) PQ_TRY_GOTO(st, pq_fq_importance(g, ctx, layers, values, nu, err), cleanup);
    bool show = ctx->progress && !n_gptq && (total > ((int64_t)1 << 24) || nu > 64);
    /* In graph (topological) order: gptq asks for each layer's Hessian with the earlier layers'
     * FakeQuant nodes already in the graph. */
    for (uint32_t u = 0; u < nu; u++) {
        pq_fq_layer *L = &layers[u];
        const pq_weight_view *wv = &tg[L->target].view;
        if (L->cfg.kind == PQ_FQ_PACKED && L->cfg.calib == PQ_CALIB_GPTQ)
            PQ_TRY_GOTO(st, pq_fq_hessian(g, ctx, L, tg, nt, ++i_gptq, n_gptq, err), cleanup);
        PQ_TRY_GOTO(st, pq_fq_one(g, L, ctx, tg, nt, &bytes, &nweights, err), cleanup);
        pq_free(L->hessian);
        L->hessian = NULL;
        /* every selected consumer of this weight reads the one FakeQuant output */
        for (uint32_t t = L->target; t < nt; t++)
            if (tg[t].view.value == values[u])
                PQ_TRY_GOTO(st, pq_graph_set_input(g, tg[t].node, tg[t].slot, L->fq_out, err),
                            cleanup);
        done += wv->batch * wv->rows * wv->cols;
        if (show)
            fprintf(stderr, "\rfake-quant: %3d%% (%u/%u weights)",
                    (int)(total ? 100 * done / total : 100), u + 1, nu);
    }
    if (show) fprintf(stderr, "\n");
    PQ_TRY_GOTO(st, pq_graph_toposort(g, err), cleanup);
    uint32_t n_other = 0; /* layers whose quant_format differs from the option */
    for (uint32_t u = 0; u < nu; u++)
        n_other += strcmp(layers[u].cfg.format, cfg.format) != 0;
    if (n_other)
        pq_pass_log(ctx, 1,
                    "%u weights, %s G=%lld (%u in their own quant_format), %s, "
                    "%.2f bits/weight actual",
                    nu, cfg.format, (long long)cfg.group, n_other, cfg.calib_name,
                    pq_bpw_actual(bytes, nweights));
    else if (cfg.kind == PQ_FQ_PACKED)
        pq_pass_log(ctx, 1, "%u weights, %s G=%lld, %s, %.2f bits/weight actual", nu, cfg.format,
                    (long long)cfg.group, cfg.calib_name, pq_bpw_actual(bytes, nweights));
    else
        pq_pass_log(ctx, 1, "%u weights, %s, %.2f bits/weight actual", nu, cfg.format,
                    pq_bpw_actual(bytes, nweights));
cleanup:
    if (layers)
        for (uint32_t u = 0; u < nu; u++) {
            pq_free(layers[u].importance);
            pq_free(layers[u].hessian);
        }
    pq_free(layers);
    pq_free(tg);
    pq_free(values);
    return st;
}

/* When the pipeline is read: the selection regexes compile and the group is a multiple of 8. */
static enum pq_status pq_fake_quant_check(const pq_pass_opts *opts, pq_error *err) {
    PQ_TRY(pq_select_check(opts, err));
    int64_t group = pq_opts_int(opts, "group");
    if (group < 8 || group > 65536 || group % 8 != 0)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option 'group' = %lld must be a multiple of 8 in 8..65536",
                            (long long)group);
    return PQ_OK;
}

const pq_pass pq_pass_fake_quant = {
    .name = "fake-quant",
    .summary = "read selected weights through FakeQuant (piq3/piq2/q3/q2/int8/f16) with "
               "calibrated scales; records metrics",
    .options = pq_fake_quant_options,
    .n_options = sizeof pq_fake_quant_options / sizeof pq_fake_quant_options[0],
    .run = pq_fake_quant_run,
    .check = pq_fake_quant_check,
};
