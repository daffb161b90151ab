/* Shape and type inference of the elementwise ops: broadcasting binary ops, comparisons and logic,
 * Where, variadic Max/Min/Sum/Mean, unary math and activations, Clip, Cast and the softmax family.
 * Rules check dtypes and attributes and give INVALID with a message naming the problem. */
#include <string.h>

#include "infer_rules.h"

/* Dtype classes an op accepts. */
enum pq_ie_class {
    PQ_IE_ANY,
    PQ_IE_NUMERIC,    /* integers and floats, not bool */
    PQ_IE_FLOAT,      /* f32 f16 bf16 f64 */
    PQ_IE_SIGNED_NUM, /* floats and signed integers */
    PQ_IE_BOOL,
};

static bool pq_ie_class_ok(enum pq_ie_class c, enum pq_dtype t) {
    switch (c) {
    case PQ_IE_NUMERIC:
        return pq_dtype_is_float(t) || pq_dtype_is_integer(t);
    case PQ_IE_FLOAT:
        return pq_dtype_is_float(t);
    case PQ_IE_SIGNED_NUM:
        return pq_dtype_is_float(t) || (pq_dtype_is_integer(t) && pq_dtype_is_signed(t));
    case PQ_IE_BOOL:
        return t == PQ_DTYPE_BOOL;
    default:
        return t != PQ_DTYPE_UNDEFINED;
    }
}

static const char *pq_ie_class_name(enum pq_ie_class c) {
    switch (c) {
    case PQ_IE_NUMERIC:
        return "a numeric type";
    case PQ_IE_FLOAT:
        return "a floating-point type";
    case PQ_IE_SIGNED_NUM:
        return "a float or signed integer type";
    case PQ_IE_BOOL:
        return "bool";
    default:
        return "a defined type";
    }
}

/* Checks that input i is present and (when its dtype is known) of class c. */
static enum pq_status pq_ie_input(pq_infer_ctx *c, uint32_t i, enum pq_ie_class cls,
                                  const char *what) {
    if (i >= c->n_in || !c->in[i].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is missing", i, what);
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_UNDEFINED && !pq_ie_class_ok(cls, t))
        return pq_error_set(c->err, PQ_ERR_INVALID, "input %u (%s) is %s, expected %s", i, what,
                            pq_dtype_name(t), pq_ie_class_name(cls));
    return PQ_OK;
}

/* Inputs a and b must have the same dtype when both are known. */
static enum pq_status pq_ie_same_dtype(pq_infer_ctx *c, uint32_t a, uint32_t b) {
    enum pq_dtype ta = c->in[a].dtype, tb = c->in[b].dtype;
    if (ta != PQ_DTYPE_UNDEFINED && tb != PQ_DTYPE_UNDEFINED && ta != tb)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "inputs %u and %u have different dtypes (%s, %s)", a, b,
                            pq_dtype_name(ta), pq_dtype_name(tb));
    return PQ_OK;
}

static enum pq_status pq_ie_need_output(pq_infer_ctx *c, uint32_t n) {
    if (c->n_out < n)
        return pq_error_set(c->err, PQ_ERR_INVALID, "expected %u output(s), node has %u", n,
                            c->n_out);
    return PQ_OK;
}

enum pq_status pq_infer_ew_binary(pq_infer_ctx *c) {
    enum pq_op op = c->node->op;
    enum pq_ie_class cls = PQ_IE_NUMERIC;
    bool to_bool = false;
    switch (op) {
    case PQ_OP_EQUAL:
        cls = PQ_IE_ANY;
        to_bool = true;
        break;
    case PQ_OP_GREATER:
    case PQ_OP_GREATER_OR_EQUAL:
    case PQ_OP_LESS:
    case PQ_OP_LESS_OR_EQUAL:
        to_bool = true;
        break;
    case PQ_OP_AND:
    case PQ_OP_OR:
    case PQ_OP_XOR:
        cls = PQ_IE_BOOL;
        to_bool = true;
        break;
    default:
        break;
    }
    PQ_TRY(pq_ie_need_output(c, 1));
    PQ_TRY(pq_ie_input(c, 0, cls, "A"));
    PQ_TRY(pq_ie_input(c, 1, cls, "B"));
    if (op != PQ_OP_POW) PQ_TRY(pq_ie_same_dtype(c, 0, 1));
    if (op == PQ_OP_MOD) {
        int64_t fm = pq_node_attr_int(c->node, "fmod", 0);
        if (fm != 0 && fm != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "fmod must be 0 or 1, got %lld",
                                (long long)fm);
        if (fm == 0 && pq_dtype_is_float(c->in[0].dtype))
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "fmod must be 1 for floating-point inputs (%s)",
                                pq_dtype_name(c->in[0].dtype));
    }
    pq_shape s;
    PQ_TRY(pq_infer_broadcast(&c->in[0].shape, &c->in[1].shape, &s, c->err));
    if (op == PQ_OP_PRELU) {
        /* slope broadcasts unidirectionally to X: the result must be X's shape */
        const pq_shape *x = &c->in[0].shape;
        if (x->rank >= 0 && s.rank >= 0) {
            bool ok = s.rank == x->rank;
            for (int i = 0; ok && i < x->rank; i++)
                if (pq_dim_known(x->dims[i]) && pq_dim_known(s.dims[i]) &&
                    x->dims[i].size != s.dims[i].size)
                    ok = false;
            if (!ok)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "slope does not broadcast to the shape of X");
        }
        if (x->rank >= 0) s = *x;
    }
    c->out[0].dtype = to_bool ? PQ_DTYPE_BOOL : c->in[0].dtype;
    c->out[0].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_ew_variadic(pq_infer_ctx *c) {
    enum pq_op op = c->node->op;
    enum pq_ie_class cls = (op == PQ_OP_SUM || op == PQ_OP_MEAN) ? PQ_IE_FLOAT : PQ_IE_NUMERIC;
    PQ_TRY(pq_ie_need_output(c, 1));
    if (c->n_in < 1) return pq_error_set(c->err, PQ_ERR_INVALID, "needs at least one input");
    pq_shape s = c->in[0].shape;
    enum pq_dtype t = PQ_DTYPE_UNDEFINED;
    for (uint32_t i = 0; i < c->n_in; i++) {
        PQ_TRY(pq_ie_input(c, i, cls, "data"));
        if (c->in[i].dtype != PQ_DTYPE_UNDEFINED) {
            if (t != PQ_DTYPE_UNDEFINED && t != c->in[i].dtype)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "input %u is %s but earlier inputs are %s", i,
                                    pq_dtype_name(c->in[i].dtype), pq_dtype_name(t));
            t = c->in[i].dtype;
        }
        if (i > 0) {
            pq_shape r;
            PQ_TRY(pq_infer_broadcast(&s, &c->in[i].shape, &r, c->err));
            s = r;
        }
    }
    c->out[0].dtype = t;
    c->out[0].shape = s;
    return PQ_OK;
}

enum pq_status pq_infer_ew_where(pq_infer_ctx *c) {
    PQ_TRY(pq_ie_need_output(c, 1));
    PQ_TRY(pq_ie_input(c, 0, PQ_IE_BOOL, "condition"));
    PQ_TRY(pq_ie_input(c, 1, PQ_IE_ANY, "X"));
    PQ_TRY(pq_ie_input(c, 2, PQ_IE_ANY, "Y"));
    PQ_TRY(pq_ie_same_dtype(c, 1, 2));
    pq_shape s1, s2;
    PQ_TRY(pq_infer_broadcast(&c->in[0].shape, &c->in[1].shape, &s1, c->err));
    PQ_TRY(pq_infer_broadcast(&s1, &c->in[2].shape, &s2, c->err));
    c->out[0].dtype = c->in[1].dtype != PQ_DTYPE_UNDEFINED ? c->in[1].dtype : c->in[2].dtype;
    c->out[0].shape = s2;
    return PQ_OK;
}

enum pq_status pq_infer_ew_unary(pq_infer_ctx *c) {
    enum pq_op op = c->node->op;
    enum pq_ie_class cls = PQ_IE_FLOAT;
    enum pq_dtype out_t = PQ_DTYPE_UNDEFINED;
    switch (op) {
    case PQ_OP_NEG:
    case PQ_OP_RELU:
        cls = PQ_IE_SIGNED_NUM;
        break;
    case PQ_OP_ABS:
    case PQ_OP_SIGN:
        cls = PQ_IE_NUMERIC;
        break;
    case PQ_OP_NOT:
        cls = PQ_IE_BOOL;
        break;
    case PQ_OP_IS_NAN:
    case PQ_OP_IS_INF:
        out_t = PQ_DTYPE_BOOL;
        break;
    default:
        break;
    }
    PQ_TRY(pq_ie_need_output(c, 1));
    if (c->n_in >= 1 && c->in[0].present && pq_dtype_is_integer(c->in[0].dtype) &&
        cls == PQ_IE_FLOAT &&
        (op == PQ_OP_ERF || op == PQ_OP_FLOOR || op == PQ_OP_CEIL || op == PQ_OP_ROUND))
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%s of an integer input (%s)",
                            pq_op_name(op), pq_dtype_name(c->in[0].dtype));
    PQ_TRY(pq_ie_input(c, 0, cls, "X"));
    if (op == PQ_OP_CELU && pq_node_attr_float(c->node, "alpha", 1.0f) == 0.0f)
        return pq_error_set(c->err, PQ_ERR_INVALID, "Celu alpha must not be 0");
    pq_infer_copy(&c->in[0], &c->out[0]);
    if (out_t != PQ_DTYPE_UNDEFINED) c->out[0].dtype = out_t;
    return PQ_OK;
}

/* Clip bound i (min/max), when present: same dtype as X and one element. */
static enum pq_status pq_ie_clip_bound(pq_infer_ctx *c, uint32_t i, const char *what) {
    if (i >= c->n_in || !c->in[i].present) return PQ_OK;
    PQ_TRY(pq_ie_same_dtype(c, 0, i));
    const pq_shape *s = &c->in[i].shape;
    if (s->rank > 1 || (s->rank == 1 && pq_dim_known(s->dims[0]) && s->dims[0].size != 1))
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be a scalar", what);
    return PQ_OK;
}

enum pq_status pq_infer_ew_clip(pq_infer_ctx *c) {
    PQ_TRY(pq_ie_need_output(c, 1));
    PQ_TRY(pq_ie_input(c, 0, PQ_IE_NUMERIC, "input"));
    PQ_TRY(pq_ie_clip_bound(c, 1, "min"));
    PQ_TRY(pq_ie_clip_bound(c, 2, "max"));
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}

enum pq_status pq_infer_ew_cast(pq_infer_ctx *c) {
    PQ_TRY(pq_ie_need_output(c, 1));
    PQ_TRY(pq_ie_input(c, 0, PQ_IE_ANY, "input"));
    const pq_attr *to = pq_node_attr(c->node, "to");
    if (!to || to->type != PQ_ATTR_STRING)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute 'to' (dtype name string) is missing");
    enum pq_dtype t;
    if (!pq_dtype_from_name(to->u.s, &t) || t == PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute 'to' names unknown dtype '%s'",
                            to->u.s);
    c->out[0].dtype = t;
    c->out[0].shape = c->in[0].shape;
    return PQ_OK;
}

enum pq_status pq_infer_ew_softmax(pq_infer_ctx *c) {
    PQ_TRY(pq_ie_need_output(c, 1));
    PQ_TRY(pq_ie_input(c, 0, PQ_IE_FLOAT, "input"));
    bool coerce = pq_node_attr_int(c->node, "coerce_2d", 0) != 0;
    int64_t axis = pq_node_attr_int(c->node, "axis", coerce ? 1 : -1);
    int rank = c->in[0].shape.rank;
    if (rank >= 0) {
        int ax;
        /* the legacy form also accepts axis == rank (an empty second dimension product of 1) */
        if (!(coerce && axis == rank)) PQ_TRY(pq_infer_axis(axis, rank, &ax, c->err));
    }
    pq_infer_copy(&c->in[0], &c->out[0]);
    return PQ_OK;
}
