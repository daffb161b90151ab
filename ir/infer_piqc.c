/* Shape rules of piqc's own ops (Hadamard, FakeQuant, PackedMatMul, PackedConv) and of the fused
 * activation attribute on Conv/ConvTranspose/Gemm/MatMul/Add/PackedMatMul/PackedConv. */
#include "infer_piqc.h"

#include <math.h>
#include <string.h>

#include "infer_rules.h"
#include "packed.h"

/* ---- fused activation ---- */

static const char *const pq_act_table[PQ_ACT_COUNT] = {
    [PQ_ACT_NONE] = "",
    [PQ_ACT_RELU] = "Relu",
    [PQ_ACT_CLIP] = "Clip",
    [PQ_ACT_LEAKY_RELU] = "LeakyRelu",
    [PQ_ACT_SIGMOID] = "Sigmoid",
    [PQ_ACT_HARD_SIGMOID] = "HardSigmoid",
    [PQ_ACT_HARD_SWISH] = "HardSwish",
    [PQ_ACT_TANH] = "Tanh",
    [PQ_ACT_GELU] = "Gelu",
    [PQ_ACT_SWISH] = "Swish",
};

const char pq_act_names[] =
    "Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, Swish";

const char *pq_act_name(enum pq_act kind) {
    return (unsigned)kind < PQ_ACT_COUNT ? pq_act_table[kind] : "?";
}

static enum pq_status pq_act_float(const pq_node *n, const char *name, float def, float *out,
                                   pq_error *err) {
    const pq_attr *at = pq_node_attr(n, name);
    *out = def;
    if (!at) return PQ_OK;
    if (at->type == PQ_ATTR_FLOAT)
        *out = at->u.f;
    else if (at->type == PQ_ATTR_INT)
        *out = (float)at->u.i;
    else
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' must be a float", name);
    return PQ_OK;
}

enum pq_status pq_node_activation(const pq_node *n, pq_activation *out, pq_error *err) {
    out->kind = PQ_ACT_NONE;
    out->alpha = out->beta = 0.0f;
    const pq_attr *at = pq_node_attr(n, "activation");
    if (!at) return PQ_OK;
    if (at->type != PQ_ATTR_STRING)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "attribute 'activation' must be a string (one of %s)", pq_act_names);
    const char *s = at->u.s ? at->u.s : "";
    enum pq_act kind = PQ_ACT_NONE;
    for (int k = 1; k < PQ_ACT_COUNT; k++)
        if (strcmp(s, pq_act_table[k]) == 0) kind = (enum pq_act)k;
    if (kind == PQ_ACT_NONE)
        return pq_error_set(err, PQ_ERR_INVALID, "unknown fused activation '%s' (accepted: %s)", s,
                            pq_act_names);
    float da = 0.0f, db = 0.0f;
    switch (kind) {
    case PQ_ACT_CLIP:
        da = -INFINITY;
        db = INFINITY;
        break;
    case PQ_ACT_LEAKY_RELU:
        da = 0.01f;
        break;
    case PQ_ACT_HARD_SIGMOID:
        da = 0.2f;
        db = 0.5f;
        break;
    default:
        break;
    }
    out->kind = kind;
    PQ_TRY(pq_act_float(n, "activation_alpha", da, &out->alpha, err));
    return pq_act_float(n, "activation_beta", db, &out->beta, err);
}

static enum pq_status pq_infer_act_check(pq_infer_ctx *c) {
    pq_activation act;
    PQ_TRY(pq_node_activation(c->node, &act, c->err));
    if (act.kind != PQ_ACT_NONE && c->n_out > 0 && c->out[0].dtype != PQ_DTYPE_UNDEFINED &&
        !pq_dtype_is_float(c->out[0].dtype))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "fused activation '%s' needs a float result, not %s",
                            pq_act_name(act.kind), pq_dtype_name(c->out[0].dtype));
    return PQ_OK;
}

enum pq_status pq_infer_piqc_conv_act(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_conv(c));
    return pq_infer_act_check(c);
}

enum pq_status pq_infer_piqc_conv_add(pq_infer_ctx *c) {
    pq_infer_ctx sub = *c;
    sub.n_in = 3; /* x, w, bias: the Conv rule */
    PQ_TRY(pq_infer_conv(&sub));
    const pq_type_info *s = &c->in[3], *y = &c->out[0];
    if (!c->in[2].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "ConvAdd needs its bias (input 2)");
    if (!s->present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "ConvAdd needs input 3 (the addend)");
    if (s->dtype != PQ_DTYPE_UNDEFINED && s->dtype != PQ_DTYPE_F32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "ConvAdd addend (input 3) is %s, expected f32",
                            pq_dtype_name(s->dtype));
    if (y->dtype != PQ_DTYPE_UNDEFINED && y->dtype != PQ_DTYPE_F32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "ConvAdd result is %s, expected f32",
                            pq_dtype_name(y->dtype));
    /* the addend has the convolution's shape exactly (no broadcasting) */
    if (s->shape.rank >= 0 && y->shape.rank >= 0) {
        if (s->shape.rank != y->shape.rank)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "ConvAdd addend (input 3) has rank %d, the convolution %d",
                                s->shape.rank, y->shape.rank);
        for (int i = 0; i < y->shape.rank; i++) {
            pq_dim a = s->shape.dims[i], b = y->shape.dims[i];
            if (pq_dim_known(a) && pq_dim_known(b) && a.size != b.size)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "ConvAdd addend (input 3) dim %d is %lld, the convolution's "
                                    "%lld (no broadcasting)",
                                    i, (long long)a.size, (long long)b.size);
            if (!pq_dim_known(b) && pq_dim_known(a)) c->out[0].shape.dims[i] = a;
        }
    }
    return pq_infer_act_check(c);
}

enum pq_status pq_infer_piqc_conv_transpose_act(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_conv_transpose(c));
    return pq_infer_act_check(c);
}

enum pq_status pq_infer_piqc_gemm_act(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_gemm(c));
    return pq_infer_act_check(c);
}

enum pq_status pq_infer_piqc_matmul_act(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_matmul(c));
    return pq_infer_act_check(c);
}

enum pq_status pq_infer_piqc_binary_act(pq_infer_ctx *c) {
    PQ_TRY(pq_infer_ew_binary(c));
    /* only Add accepts a fused activation; the attribute means nothing on other binary ops */
    if (c->node->op != PQ_OP_ADD) return PQ_OK;
    return pq_infer_act_check(c);
}

/* ---- helpers ---- */

static enum pq_status pq_piqc_need_f32(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (i >= c->n_in || !c->in[i].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %s is missing", what);
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_F32 && t != PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %s must be f32, not %s", what,
                            pq_dtype_name(t));
    return PQ_OK;
}

/* Product of dims[lo, hi) of a shape; -1 when one of them is unknown. */
static int64_t pq_piqc_prod(const pq_shape *s, int lo, int hi) {
    int64_t p = 1;
    for (int i = lo; i < hi; i++) {
        if (!pq_dim_known(s->dims[i])) return -1;
        p *= s->dims[i].size;
    }
    return p;
}

/* Reads an int attribute that must be present and >= lo. */
static enum pq_status pq_piqc_req_int(pq_infer_ctx *c, const char *name, int64_t lo, int64_t *v) {
    const pq_attr *at = pq_node_attr(c->node, name);
    if (!at || at->type != PQ_ATTR_INT)
        return pq_error_set(c->err, PQ_ERR_INVALID, "integer attribute '%s' is required", name);
    if (at->u.i < lo)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute %s = %lld must be >= %lld", name,
                            (long long)at->u.i, (long long)lo);
    *v = at->u.i;
    return PQ_OK;
}

static enum pq_status pq_piqc_bool_attr(pq_infer_ctx *c, const char *name) {
    int64_t v = pq_node_attr_int(c->node, name, 0);
    if (v != 0 && v != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute %s = %lld must be 0 or 1", name,
                            (long long)v);
    return PQ_OK;
}

static enum pq_status pq_piqc_qgroup(pq_infer_ctx *c, int64_t *qgroup) {
    PQ_TRY(pq_piqc_req_int(c, "qgroup", 1, qgroup));
    if (*qgroup % 8 != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID, "qgroup = %lld must be a multiple of 8",
                            (long long)*qgroup);
    return PQ_OK;
}

/* format attribute of the packed ops: piq3|piq2|q3|q2 (*wide = PQ_DTYPE_UNDEFINED), or int8|f16
 * (*wide = the weight's dtype, I8 or F16; *f is left alone). */
static enum pq_status pq_piqc_packed_format(pq_infer_ctx *c, enum pq_qformat *f,
                                            enum pq_dtype *wide) {
    const char *s = pq_node_attr_string(c->node, "format", NULL);
    *wide = PQ_DTYPE_UNDEFINED;
    if (s && !strcmp(s, "int8"))
        *wide = PQ_DTYPE_I8;
    else if (s && !strcmp(s, "f16"))
        *wide = PQ_DTYPE_F16;
    else if (!s || !pq_qformat_from_name(s, f))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute format = '%s' must be one of piq3, piq2, q3, q2, int8, f16",
                            s ? s : "(missing)");
    return PQ_OK;
}

/* ---- Hadamard ---- */

enum pq_status pq_infer_piqc_hadamard(pq_infer_ctx *c) {
    PQ_TRY(pq_piqc_need_f32(c, 0, "X"));
    PQ_TRY(pq_piqc_bool_attr(c, "inverse"));
    c->out[0].dtype = PQ_DTYPE_F32;
    c->out[0].shape = c->in[0].shape;
    const pq_shape *x = &c->in[0].shape;
    if (x->rank < 0) return PQ_OK;
    if (x->rank == 0)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input X must have rank >= 1 (a scalar)");
    int axis;
    PQ_TRY(pq_infer_axis(pq_node_attr_int(c->node, "axis", -1), x->rank, &axis, c->err));
    pq_dim d = x->dims[axis];
    if (!pq_dim_known(d)) return PQ_OK;
    int64_t n = d.size, b = n > 0 ? n & -n : 0;
    if (b > 65536) b = 65536;
    if (b < 8)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "axis %d has length %lld, which has no power-of-two Hadamard block "
                            ">= 8 (largest power of two dividing it: %lld)",
                            axis, (long long)n, (long long)b);
    return PQ_OK;
}

/* ---- FakeQuant ---- */

void pq_fake_quant_view(int rank, const int64_t *dims, bool transposed, int64_t *batch,
                        int64_t *rows, int64_t *cols) {
    if (transposed) {
        int64_t b = 1;
        for (int i = 0; i < rank - 2; i++)
            b *= dims[i];
        *batch = b;
        *rows = dims[rank - 1];
        *cols = dims[rank - 2];
    } else {
        int64_t p = 1;
        for (int i = 1; i < rank; i++)
            p *= dims[i];
        *batch = 1;
        *rows = dims[0];
        *cols = p;
    }
}

/* INVALID when a known dim of a scales shape differs from want (want < 0: unknown). */
static enum pq_status pq_piqc_dim_is(pq_infer_ctx *c, const pq_shape *s, int i, int64_t want,
                                     const char *what) {
    if (want < 0 || !pq_dim_known(s->dims[i]) || s->dims[i].size == want) return PQ_OK;
    return pq_error_set(c->err, PQ_ERR_INVALID, "%s dim %d is %lld, expected %lld", what, i,
                        (long long)s->dims[i].size, (long long)want);
}

enum pq_status pq_infer_piqc_fake_quant(pq_infer_ctx *c) {
    PQ_TRY(pq_piqc_need_f32(c, 0, "w"));
    PQ_TRY(pq_piqc_bool_attr(c, "transposed"));
    const char *fs = pq_node_attr_string(c->node, "format", NULL);
    enum pq_qformat qf = PQ_QFORMAT_PIQ3;
    bool packed = fs && pq_qformat_from_name(fs, &qf);
    bool int8 = fs && !strcmp(fs, "int8"), f16 = fs && !strcmp(fs, "f16");
    if (!packed && !int8 && !f16)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute format = '%s' must be one of piq3, piq2, q3, q2, int8, f16",
                            fs ? fs : "(missing)");
    int64_t qgroup = 0;
    if (packed) PQ_TRY(pq_piqc_qgroup(c, &qgroup));
    const pq_attr *ste = pq_node_attr(c->node, "ste");
    if (ste && ste->type != PQ_ATTR_STRING)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'ste' must be a string");
    c->out[0].dtype = PQ_DTYPE_F32;
    c->out[0].shape = c->in[0].shape;
    const pq_shape *w = &c->in[0].shape;
    if (w->rank >= 0 && w->rank < 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "weight w has rank %d, expected >= 2", w->rank);
    bool has_s = c->n_in > 1 && c->in[1].present;
    if (f16) {
        if (has_s)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "format f16 takes no scales input (leave input 1 empty)");
        return PQ_OK;
    }
    if (!has_s) return pq_error_set(c->err, PQ_ERR_INVALID, "format %s needs the scales input", fs);
    enum pq_dtype st = c->in[1].dtype, want_t = int8 ? PQ_DTYPE_F32 : PQ_DTYPE_F16;
    if (st != PQ_DTYPE_UNDEFINED && st != want_t)
        return pq_error_set(c->err, PQ_ERR_INVALID, "scales must be %s for format %s, not %s",
                            pq_dtype_name(want_t), fs, pq_dtype_name(st));
    const pq_shape *s = &c->in[1].shape;
    int want_rank = int8 ? 1 : 2;
    if (s->rank < 0) return PQ_OK;
    if (s->rank != want_rank)
        return pq_error_set(c->err, PQ_ERR_INVALID, "scales have rank %d, expected %d", s->rank,
                            want_rank);
    if (w->rank < 0) return PQ_OK;
    bool tr = pq_node_attr_int(c->node, "transposed", 0) != 0;
    int64_t lead = tr ? pq_piqc_prod(w, 0, w->rank - 2) : 1;
    int64_t rows =
        pq_dim_known(w->dims[tr ? w->rank - 1 : 0]) ? w->dims[tr ? w->rank - 1 : 0].size : -1;
    int64_t cols = tr ? (pq_dim_known(w->dims[w->rank - 2]) ? w->dims[w->rank - 2].size : -1)
                      : pq_piqc_prod(w, 1, w->rank);
    int64_t brows = lead >= 0 && rows >= 0 ? lead * rows : -1;
    PQ_TRY(pq_piqc_dim_is(c, s, 0, brows, "scales"));
    if (!int8)
        PQ_TRY(pq_piqc_dim_is(c, s, 1, cols >= 0 ? (cols + qgroup - 1) / qgroup : -1, "scales"));
    return PQ_OK;
}

/* ---- PackedMatMul ---- */

/* The u8 1-D weight of a PiQ/Q packed op: pq_packed_bytes(f, rows, cols, qgroup) bytes. */
static enum pq_status pq_piqc_packed_codes(pq_infer_ctx *c, enum pq_qformat f, int64_t qgroup,
                                           int64_t rows, int64_t cols) {
    if (c->in[1].dtype != PQ_DTYPE_U8 && c->in[1].dtype != PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "packed weight must be u8, not %s",
                            pq_dtype_name(c->in[1].dtype));
    const pq_shape *w = &c->in[1].shape;
    size_t nbytes = pq_packed_bytes(f, rows, cols, qgroup);
    if (nbytes == 0)
        return pq_error_set(c->err, PQ_ERR_INVALID, "packed size of %lld x %lld overflows",
                            (long long)rows, (long long)cols);
    if (w->rank >= 0 && w->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "packed weight has rank %d, expected 1",
                            w->rank);
    if (w->rank == 1 && pq_dim_known(w->dims[0]) && (uint64_t)w->dims[0].size != nbytes)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "packed weight has %lld bytes, but %s %lld x %lld in groups of %lld "
                            "takes %zu",
                            (long long)w->dims[0].size, pq_qformat_name(f), (long long)rows,
                            (long long)cols, (long long)qgroup, nbytes);
    return PQ_OK;
}

/* Format int8 / f16 (dtype wide = I8 / F16): input 1 is a 1-D tensor of rows * cols codes
 * (int8) or f16 values in the rows x cols view, row-major; int8 needs input 3, f32 scales [rows]
 * (W[r][c] = q[r][c] * scales[r]); f16 takes no input 3. */
static enum pq_status pq_piqc_wide_weight(pq_infer_ctx *c, enum pq_dtype wide, int64_t rows,
                                          int64_t cols) {
    const char *fs = wide == PQ_DTYPE_I8 ? "int8" : "f16";
    if (c->in[1].dtype != wide && c->in[1].dtype != PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "format %s: weight must be %s, not %s", fs,
                            pq_dtype_name(wide), pq_dtype_name(c->in[1].dtype));
    if (rows > INT64_MAX / cols)
        return pq_error_set(c->err, PQ_ERR_INVALID, "weight of %lld x %lld overflows",
                            (long long)rows, (long long)cols);
    const pq_shape *w = &c->in[1].shape;
    if (w->rank >= 0 && w->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s weight has rank %d, expected 1", fs,
                            w->rank);
    if (w->rank == 1 && pq_dim_known(w->dims[0]) && w->dims[0].size != rows * cols)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%s weight has %lld values, expected rows x cols = %lld x %lld", fs,
                            (long long)w->dims[0].size, (long long)rows, (long long)cols);
    bool has_s = c->n_in > 3 && c->in[3].present;
    if (wide == PQ_DTYPE_F16) {
        if (has_s)
            return pq_error_set(c->err, PQ_ERR_INVALID, "format f16 takes no scales (input 3)");
        return PQ_OK;
    }
    if (!has_s)
        return pq_error_set(c->err, PQ_ERR_INVALID, "format int8 needs f32 scales as input 3");
    PQ_TRY(pq_piqc_need_f32(c, 3, "scales"));
    const pq_shape *s = &c->in[3].shape;
    if (s->rank >= 0 && s->rank != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "scales must be 1-D (rank %d)", s->rank);
    if (s->rank == 1 && pq_dim_known(s->dims[0]) && s->dims[0].size != rows)
        return pq_error_set(c->err, PQ_ERR_INVALID, "scales have %lld values, expected rows = %lld",
                            (long long)s->dims[0].size, (long long)rows);
    return PQ_OK;
}

/* Checks the weight input and the rows/cols/qgroup/format attributes: piq3|piq2|q3|q2 take a u8
 * 1-D weight of pq_packed_bytes bytes and qgroup (no input 3); int8/f16 as pq_piqc_wide_weight
 * (qgroup ignored). Then the optional f32 bias [rows] (input 2) and the fused activation. */
static enum pq_status pq_piqc_packed_weight(pq_infer_ctx *c, int64_t *rows, int64_t *cols) {
    enum pq_qformat f = PQ_QFORMAT_PIQ3;
    enum pq_dtype wide;
    int64_t qgroup = 0;
    PQ_TRY(pq_piqc_packed_format(c, &f, &wide));
    if (wide == PQ_DTYPE_UNDEFINED) PQ_TRY(pq_piqc_qgroup(c, &qgroup));
    PQ_TRY(pq_piqc_req_int(c, "rows", 1, rows));
    PQ_TRY(pq_piqc_req_int(c, "cols", 1, cols));
    if (c->n_in < 2 || !c->in[1].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "packed weight input is missing");
    if (wide != PQ_DTYPE_UNDEFINED)
        PQ_TRY(pq_piqc_wide_weight(c, wide, *rows, *cols));
    else if (c->n_in > 3 && c->in[3].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "format %s takes no scales (input 3)",
                            pq_qformat_name(f));
    else
        PQ_TRY(pq_piqc_packed_codes(c, f, qgroup, *rows, *cols));
    if (c->n_in > 2 && c->in[2].present) {
        PQ_TRY(pq_piqc_need_f32(c, 2, "bias"));
        const pq_shape *b = &c->in[2].shape;
        if (b->rank >= 0 && b->rank != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "bias must be 1-D (rank %d)", b->rank);
        if (b->rank == 1 && pq_dim_known(b->dims[0]) && b->dims[0].size != *rows)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "bias has %lld values, expected rows = %lld",
                                (long long)b->dims[0].size, (long long)*rows);
    }
    pq_activation act;
    return pq_node_activation(c->node, &act, c->err);
}

enum pq_status pq_infer_piqc_packed_matmul(pq_infer_ctx *c) {
    PQ_TRY(pq_piqc_need_f32(c, 0, "x"));
    int64_t rows, cols;
    PQ_TRY(pq_piqc_packed_weight(c, &rows, &cols));
    c->out[0].dtype = PQ_DTYPE_F32;
    const pq_shape *x = &c->in[0].shape;
    if (x->rank < 0) {
        c->out[0].shape = pq_shape_unknown();
        return PQ_OK;
    }
    if (x->rank < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "input x must have rank >= 1");
    pq_dim k = x->dims[x->rank - 1];
    if (pq_dim_known(k) && k.size != cols)
        return pq_error_set(c->err, PQ_ERR_INVALID, "last dim of x is %lld, expected cols = %lld",
                            (long long)k.size, (long long)cols);
    c->out[0].shape = *x;
    c->out[0].shape.dims[x->rank - 1] = pq_dim_of(rows);
    return PQ_OK;
}

/* ---- PackedConv ---- */

enum pq_status pq_infer_piqc_packed_conv(pq_infer_ctx *c) {
    PQ_TRY(pq_piqc_need_f32(c, 0, "x"));
    int64_t rows, cols;
    PQ_TRY(pq_piqc_packed_weight(c, &rows, &cols));
    const pq_attr *ks = pq_node_attr(c->node, "kernel_shape");
    if (!ks || ks->type != PQ_ATTR_INTS || ks->u.ints.n < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute kernel_shape is required");
    uint32_t nsp = ks->u.ints.n;
    if (nsp > 3)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "%u spatial dims (PackedConv handles 1-D to 3-D)", nsp);
    int64_t kprod = 1;
    for (uint32_t i = 0; i < nsp; i++) {
        if (ks->u.ints.v[i] < 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "kernel_shape[%u] = %lld must be >= 1", i,
                                (long long)ks->u.ints.v[i]);
        kprod *= ks->u.ints.v[i];
    }
    int64_t group = pq_node_attr_int(c->node, "group", 1);
    if (group < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "group = %lld must be >= 1", (long long)group);
    if (cols % kprod != 0)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "cols = %lld is not a multiple of the kernel size %lld",
                            (long long)cols, (long long)kprod);
    const pq_shape *x = &c->in[0].shape;
    if (x->rank >= 0 && x->rank != (int)nsp + 2)
        return pq_error_set(c->err, PQ_ERR_INVALID, "x has rank %d, expected %u (N, C, spatial)",
                            x->rank, nsp + 2);
    if (x->rank >= 0 && pq_dim_known(x->dims[1]) && x->dims[1].size != cols / kprod * group)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "x has %lld channels, expected cols / kernel size x group = %lld",
                            (long long)x->dims[1].size, (long long)(cols / kprod * group));
    /* The Conv rule on an f32 weight of the unpacked shape [rows, cols / kprod, kernel...]. */
    pq_type_info in[3];
    memset(in, 0, sizeof in);
    in[0] = c->in[0];
    in[1].present = true;
    in[1].dtype = PQ_DTYPE_F32;
    in[1].shape.rank = (int)nsp + 2;
    in[1].shape.dims[0] = pq_dim_of(rows);
    in[1].shape.dims[1] = pq_dim_of(cols / kprod);
    for (uint32_t i = 0; i < nsp; i++)
        in[1].shape.dims[2 + i] = pq_dim_of(ks->u.ints.v[i]);
    if (c->n_in > 2) in[2] = c->in[2];
    pq_infer_ctx sub = *c;
    sub.in = in;
    sub.n_in = c->n_in < 3 ? c->n_in : 3;
    if (in[0].dtype == PQ_DTYPE_UNDEFINED) in[0].dtype = PQ_DTYPE_F32;
    PQ_TRY(pq_infer_conv(&sub));
    c->out[0].dtype = PQ_DTYPE_F32;
    return PQ_OK;
}
