/* Shape and type inference for the recurrent ops LSTM, GRU and RNN (ONNX semantics: directions,
 * layout 0|1, optional B, sequence_lens, initial states, peepholes, activation lists). */
#include <string.h>

#include "infer_rules.h"

/* Activation names the recurrent ops accept (ONNX list). */
static bool pq_rnn_known_activation(const char *s) {
    static const char *names[] = {
        "Relu",       "Tanh",        "Sigmoid", "Affine",   "LeakyRelu", "ThresholdedRelu",
        "ScaledTanh", "HardSigmoid", "Elu",     "Softsign", "Softplus"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) return true;
    return false;
}

/* Checks that input i has the given rank and, where known, dims (size < 0 = don't care). */
static enum pq_status pq_rnn_check(pq_infer_ctx *c, uint32_t i, const char *what, int rank,
                                   const pq_dim *want) {
    if (i >= c->n_in || !c->in[i].present) return PQ_OK;
    const pq_shape *s = &c->in[i].shape;
    if (s->rank < 0) return PQ_OK;
    if (s->rank != rank)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s has rank %d, expected %d", what, s->rank,
                            rank);
    for (int d = 0; d < rank; d++)
        if (pq_dim_known(want[d]) && pq_dim_known(s->dims[d]) && want[d].size != s->dims[d].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s dim %d is %lld, expected %lld", what, d,
                                (long long)s->dims[d].size, (long long)want[d].size);
    return PQ_OK;
}

/* Common rule; gates = 4 (LSTM), 3 (GRU), 1 (RNN); nact = activations per direction. */
static enum pq_status pq_rnn_infer(pq_infer_ctx *c, int gates, int nact, bool lstm) {
    for (uint32_t i = 0; i < c->n_in; i++) {
        if (!c->in[i].present || i == 4) continue; /* 4 = sequence_lens (i32) */
        enum pq_dtype t = c->in[i].dtype, x = c->in[0].dtype;
        if (t != PQ_DTYPE_UNDEFINED && !pq_dtype_is_float(t))
            return pq_error_set(c->err, PQ_ERR_INVALID, "input %u must be float, got %s", i,
                                pq_dtype_name(t));
        if (t != PQ_DTYPE_UNDEFINED && x != PQ_DTYPE_UNDEFINED && t != x)
            return pq_error_set(c->err, PQ_ERR_INVALID, "input %u is %s but X is %s", i,
                                pq_dtype_name(t), pq_dtype_name(x));
    }
    if (c->n_in > 4 && c->in[4].present && c->in[4].dtype != PQ_DTYPE_UNDEFINED &&
        c->in[4].dtype != PQ_DTYPE_I32)
        return pq_error_set(c->err, PQ_ERR_INVALID, "sequence_lens must be i32, got %s",
                            pq_dtype_name(c->in[4].dtype));
    const char *dir = pq_node_attr_string(c->node, "direction", "forward");
    int dirs;
    if (!strcmp(dir, "forward") || !strcmp(dir, "reverse"))
        dirs = 1;
    else if (!strcmp(dir, "bidirectional"))
        dirs = 2;
    else
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "direction '%s' is not forward, reverse or "
                            "bidirectional",
                            dir);
    int64_t layout = pq_node_attr_int(c->node, "layout", 0);
    if (layout != 0 && layout != 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "layout = %lld must be 0 or 1",
                            (long long)layout);
    if (lstm) {
        int64_t inf = pq_node_attr_int(c->node, "input_forget", 0);
        if (inf != 0 && inf != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "input_forget = %lld must be 0 or 1",
                                (long long)inf);
    }
    if (gates == 3) {
        int64_t lbr = pq_node_attr_int(c->node, "linear_before_reset", 0);
        if (lbr != 0 && lbr != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "linear_before_reset = %lld must be 0 or 1",
                                (long long)lbr);
    }
    const pq_attr *acts = pq_node_attr(c->node, "activations");
    if (acts) {
        if (acts->type != PQ_ATTR_STRINGS)
            return pq_error_set(c->err, PQ_ERR_INVALID, "activations must be a list of strings");
        if ((int)acts->u.strings.n != nact * dirs)
            return pq_error_set(c->err, PQ_ERR_INVALID, "activations has %u names, expected %d",
                                acts->u.strings.n, nact * dirs);
        for (uint32_t i = 0; i < acts->u.strings.n; i++)
            if (!pq_rnn_known_activation(acts->u.strings.v[i]))
                return pq_error_set(c->err, PQ_ERR_INVALID, "unknown activation '%s'",
                                    acts->u.strings.v[i]);
    }
    float clip = pq_node_attr_float(c->node, "clip", 1.0f);
    if (pq_node_attr(c->node, "clip") && !(clip > 0.0f))
        return pq_error_set(c->err, PQ_ERR_INVALID, "clip must be positive");

    const pq_shape *x = &c->in[0].shape, *w = &c->in[1].shape, *r = &c->in[2].shape;
    if (x->rank >= 0 && x->rank != 3)
        return pq_error_set(c->err, PQ_ERR_INVALID, "X has rank %d, expected 3", x->rank);
    pq_dim seq = x->rank == 3 ? x->dims[layout ? 1 : 0] : pq_dim_unknown();
    pq_dim batch = x->rank == 3 ? x->dims[layout ? 0 : 1] : pq_dim_unknown();
    pq_dim in = x->rank == 3 ? x->dims[2] : pq_dim_unknown();
    int64_t hs = pq_node_attr_int(c->node, "hidden_size", -1);
    if (pq_node_attr(c->node, "hidden_size") && hs < 1)
        return pq_error_set(c->err, PQ_ERR_INVALID, "hidden_size = %lld must be >= 1",
                            (long long)hs);
    if (hs < 0 && r->rank == 3 && pq_dim_known(r->dims[2])) hs = r->dims[2].size;
    pq_dim h = hs >= 0 ? pq_dim_of(hs) : pq_dim_unknown();
    pq_dim gh = hs >= 0 ? pq_dim_of(gates * hs) : pq_dim_unknown();
    pq_dim D = pq_dim_of(dirs);
    pq_dim wd[3] = {D, gh, in}, rd[3] = {D, gh, h};
    PQ_TRY(pq_rnn_check(c, 1, "W", 3, wd));
    PQ_TRY(pq_rnn_check(c, 2, "R", 3, rd));
    (void)w;
    pq_dim bd[2] = {D, hs >= 0 ? pq_dim_of(2 * gates * hs) : pq_dim_unknown()};
    PQ_TRY(pq_rnn_check(c, 3, "B", 2, bd));
    pq_dim sd[1] = {batch};
    PQ_TRY(pq_rnn_check(c, 4, "sequence_lens", 1, sd));
    pq_dim hd0[3] = {D, batch, h}, hd1[3] = {batch, D, h};
    PQ_TRY(pq_rnn_check(c, 5, "initial_h", 3, layout ? hd1 : hd0));
    if (lstm) {
        PQ_TRY(pq_rnn_check(c, 6, "initial_c", 3, layout ? hd1 : hd0));
        pq_dim pd[2] = {D, hs >= 0 ? pq_dim_of(3 * hs) : pq_dim_unknown()};
        PQ_TRY(pq_rnn_check(c, 7, "P", 2, pd));
    }
    pq_shape ys = {0}, hsh = {0};
    ys.rank = 4;
    if (layout) {
        ys.dims[0] = batch;
        ys.dims[1] = seq;
        ys.dims[2] = D;
    } else {
        ys.dims[0] = seq;
        ys.dims[1] = D;
        ys.dims[2] = batch;
    }
    ys.dims[3] = h;
    hsh.rank = 3;
    for (int i = 0; i < 3; i++)
        hsh.dims[i] = layout ? hd1[i] : hd0[i];
    for (uint32_t i = 0; i < c->n_out; i++) {
        if (!c->out[i].present) continue;
        c->out[i].dtype = c->in[0].dtype;
        c->out[i].shape = i == 0 ? ys : hsh;
    }
    return PQ_OK;
}

enum pq_status pq_infer_lstm(pq_infer_ctx *c) {
    return pq_rnn_infer(c, 4, 3, true);
}
enum pq_status pq_infer_gru(pq_infer_ctx *c) {
    return pq_rnn_infer(c, 3, 2, false);
}
enum pq_status pq_infer_rnn(pq_infer_ctx *c) {
    return pq_rnn_infer(c, 1, 1, false);
}
