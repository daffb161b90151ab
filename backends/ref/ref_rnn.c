/* Reference LSTM, GRU and RNN kernels (ONNX semantics): forward/reverse/bidirectional, layout
 * 0|1, optional bias, sequence_lens, initial states, LSTM peepholes and input_forget, GRU
 * linear_before_reset, clip and the activation list. Input projections for all steps are one
 * GEMM; each step multiplies the hidden state by R with the blocked GEMM. */
#include <math.h>
#include <string.h>

#include "ref_gemm.h"
#include "ref_kernels.h"
#include "ref_util.h"

enum pq_rnn_kind { PQ_RNN_LSTM, PQ_RNN_GRU, PQ_RNN_SIMPLE };

enum pq_act_kind {
    PQ_ACT_RELU,
    PQ_ACT_TANH,
    PQ_ACT_SIGMOID,
    PQ_ACT_AFFINE,
    PQ_ACT_LEAKY_RELU,
    PQ_ACT_THRESHOLDED_RELU,
    PQ_ACT_SCALED_TANH,
    PQ_ACT_HARD_SIGMOID,
    PQ_ACT_ELU,
    PQ_ACT_SOFTSIGN,
    PQ_ACT_SOFTPLUS
};

typedef struct pq_act {
    enum pq_act_kind kind;
    float alpha, beta;
} pq_act;

static float pq_act_apply(const pq_act *a, float x) {
    switch (a->kind) {
    case PQ_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case PQ_ACT_TANH:
        return tanhf(x);
    case PQ_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case PQ_ACT_AFFINE:
        return a->alpha * x + a->beta;
    case PQ_ACT_LEAKY_RELU:
        return x >= 0.0f ? x : a->alpha * x;
    case PQ_ACT_THRESHOLDED_RELU:
        return x > a->alpha ? x : 0.0f;
    case PQ_ACT_SCALED_TANH:
        return a->alpha * tanhf(a->beta * x);
    case PQ_ACT_HARD_SIGMOID: {
        float v = a->alpha * x + a->beta;
        return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
    case PQ_ACT_ELU:
        return x >= 0.0f ? x : a->alpha * (expf(x) - 1.0f);
    case PQ_ACT_SOFTSIGN:
        return x / (1.0f + fabsf(x));
    case PQ_ACT_SOFTPLUS:
        return log1pf(expf(x));
    }
    return x;
}

/* Parses the node's activations (defaults per kind) into acts[dirs * nact]; alpha/beta values
 * are consumed in order by the functions that take them (onnxruntime's convention). */
static enum pq_status pq_rnn_acts(const pq_node *n, enum pq_rnn_kind kind, int dirs, int nact,
                                  pq_act *acts, pq_error *err) {
    static const struct {
        const char *name;
        enum pq_act_kind kind;
        int na, nb;
        float da, db;
    } tab[] = {
        {"Relu", PQ_ACT_RELU, 0, 0, 0, 0},
        {"Tanh", PQ_ACT_TANH, 0, 0, 0, 0},
        {"Sigmoid", PQ_ACT_SIGMOID, 0, 0, 0, 0},
        {"Affine", PQ_ACT_AFFINE, 1, 1, 1.0f, 0.0f},
        {"LeakyRelu", PQ_ACT_LEAKY_RELU, 1, 0, 0.01f, 0},
        {"ThresholdedRelu", PQ_ACT_THRESHOLDED_RELU, 1, 0, 1.0f, 0},
        {"ScaledTanh", PQ_ACT_SCALED_TANH, 1, 1, 1.0f, 1.0f},
        {"HardSigmoid", PQ_ACT_HARD_SIGMOID, 1, 1, 0.2f, 0.5f},
        {"Elu", PQ_ACT_ELU, 1, 0, 1.0f, 0},
        {"Softsign", PQ_ACT_SOFTSIGN, 0, 0, 0, 0},
        {"Softplus", PQ_ACT_SOFTPLUS, 0, 0, 0, 0},
    };
    const pq_attr *an = pq_node_attr(n, "activations");
    const pq_attr *aa = pq_node_attr(n, "activation_alpha");
    const pq_attr *ab = pq_node_attr(n, "activation_beta");
    uint32_t ia = 0, ib = 0;
    for (int i = 0; i < dirs * nact; i++) {
        const char *name;
        if (an && an->type == PQ_ATTR_STRINGS && (uint32_t)i < an->u.strings.n)
            name = an->u.strings.v[i];
        else if (kind == PQ_RNN_SIMPLE)
            name = "Tanh";
        else
            name = i % nact == 0 ? "Sigmoid" : "Tanh";
        size_t t = 0;
        while (t < sizeof tab / sizeof tab[0] && strcmp(tab[t].name, name))
            t++;
        if (t == sizeof tab / sizeof tab[0])
            return pq_error_set(err, PQ_ERR_INVALID, "unknown activation '%s'", name);
        acts[i].kind = tab[t].kind;
        acts[i].alpha = tab[t].da;
        acts[i].beta = tab[t].db;
        if (tab[t].na && aa && aa->type == PQ_ATTR_FLOATS && ia < aa->u.floats.n)
            acts[i].alpha = aa->u.floats.v[ia++];
        if (tab[t].nb && ab && ab->type == PQ_ATTR_FLOATS && ib < ab->u.floats.n)
            acts[i].beta = ab->u.floats.v[ib++];
    }
    return PQ_OK;
}

static inline float pq_clipf(float x, float c) {
    return c > 0.0f ? (x < -c ? -c : (x > c ? c : x)) : x;
}

/* All buffers of one run. */
typedef struct pq_rnn_run {
    enum pq_rnn_kind kind;
    int64_t S, Bt, I, H, G, D;
    bool layout1;
    const float *x, *w, *r, *b, *h0, *c0, *p;
    const int32_t *lens;
    float *xw, *hr, *h, *c, *tmp, *rh;
    float *y, *yh, *yc;
} pq_rnn_run;

/* Runs direction d (reverse when rev) and writes its parts of Y, Y_h, Y_c. */
static enum pq_status pq_rnn_direction(pq_rnn_run *R, int64_t d, bool rev, const pq_act *act,
                                       float clip, bool input_forget, bool lbr, pq_error *err) {
    int64_t S = R->S, Bt = R->Bt, H = R->H, GH = R->G * H;
    const float *wd = R->w + d * GH * R->I, *rd = R->r + d * GH * H;
    const float *bd = R->b ? R->b + d * 2 * GH : NULL;
    /* xw[row, GH] = X[row, I] * W_d^T; row = t * Bt + b (layout 0) or b * S + t (layout 1) */
    PQ_TRY(pq_ref_sgemm(false, true, S * Bt, GH, R->I, 1.0f, R->x, R->I, wd, R->I, 0.0f, R->xw, GH,
                        err));
    for (int64_t row = 0; row < S * Bt; row++)
        for (int64_t j = 0; j < GH; j++) {
            float bias = 0.0f;
            if (bd) {
                bias = bd[j];
                if (!(R->kind == PQ_RNN_GRU && j >= 2 * H)) bias += bd[GH + j];
            }
            R->xw[row * GH + j] += bias;
        }
    for (int64_t b = 0; b < Bt; b++)
        for (int64_t j = 0; j < H; j++) {
            int64_t hi = R->layout1 ? (b * R->D + d) * H + j : (d * Bt + b) * H + j;
            R->h[b * H + j] = R->h0 ? R->h0[hi] : 0.0f;
            if (R->c) R->c[b * H + j] = R->c0 ? R->c0[hi] : 0.0f;
        }
    const float *pi = R->p ? R->p + d * 3 * H : NULL;
    const float *po = pi ? pi + H : NULL, *pf = pi ? pi + 2 * H : NULL;
    for (int64_t step = 0; step < S; step++) {
        PQ_TRY(pq_ref_sgemm(false, true, Bt, GH, H, 1.0f, R->h, H, rd, H, 0.0f, R->hr, GH, err));
        if (R->kind == PQ_RNN_GRU && !lbr) {
            /* r first, then (r . h) * Rh^T */
            for (int64_t b = 0; b < Bt; b++) {
                int64_t len = R->lens ? R->lens[b] : S;
                if (len > S) len = S;
                if (step >= len) continue;
                int64_t t = rev ? len - 1 - step : step;
                const float *xw = R->xw + (R->layout1 ? b * S + t : t * Bt + b) * GH;
                for (int64_t j = 0; j < H; j++) {
                    float r =
                        pq_act_apply(&act[0], pq_clipf(xw[H + j] + R->hr[b * GH + H + j], clip));
                    R->rh[b * H + j] = r * R->h[b * H + j];
                }
            }
            PQ_TRY(pq_ref_sgemm(false, true, Bt, H, H, 1.0f, R->rh, H, rd + 2 * H * H, H, 0.0f,
                                R->tmp, H, err));
        }
        for (int64_t b = 0; b < Bt; b++) {
            int64_t len = R->lens ? R->lens[b] : S;
            if (len > S) len = S;
            if (step >= len) continue;
            int64_t t = rev ? len - 1 - step : step;
            const float *xw = R->xw + (R->layout1 ? b * S + t : t * Bt + b) * GH;
            const float *hr = R->hr + b * GH;
            float *h = R->h + b * H;
            for (int64_t j = 0; j < H; j++) {
                if (R->kind == PQ_RNN_LSTM) {
                    float *c = R->c + b * H;
                    float cp = c[j];
                    float ig = xw[j] + hr[j] + (pi ? pi[j] * cp : 0.0f);
                    float fg = xw[2 * H + j] + hr[2 * H + j] + (pf ? pf[j] * cp : 0.0f);
                    float cg = xw[3 * H + j] + hr[3 * H + j];
                    float iv = pq_act_apply(&act[0], pq_clipf(ig, clip));
                    float fv = input_forget ? 1.0f - iv : pq_act_apply(&act[0], pq_clipf(fg, clip));
                    float cv = pq_act_apply(&act[1], pq_clipf(cg, clip));
                    float cn = fv * cp + iv * cv;
                    float og = xw[H + j] + hr[H + j] + (po ? po[j] * cn : 0.0f);
                    float ov = pq_act_apply(&act[0], pq_clipf(og, clip));
                    c[j] = cn;
                    h[j] = ov * pq_act_apply(&act[2], cn);
                } else if (R->kind == PQ_RNN_GRU) {
                    float z = pq_act_apply(&act[0], pq_clipf(xw[j] + hr[j], clip));
                    float hh;
                    if (lbr) {
                        float r = pq_act_apply(&act[0], pq_clipf(xw[H + j] + hr[H + j], clip));
                        float rb = bd ? bd[GH + 2 * H + j] : 0.0f;
                        hh = xw[2 * H + j] + r * (hr[2 * H + j] + rb);
                    } else {
                        float rb = bd ? bd[GH + 2 * H + j] : 0.0f;
                        hh = xw[2 * H + j] + R->tmp[b * H + j] + rb;
                    }
                    float hv = pq_act_apply(&act[1], pq_clipf(hh, clip));
                    h[j] = (1.0f - z) * hv + z * h[j];
                } else {
                    h[j] = pq_act_apply(&act[0], pq_clipf(xw[j] + hr[j], clip));
                }
            }
            if (R->y) {
                float *y = R->y + (R->layout1 ? ((b * S + t) * R->D + d) * H
                                              : ((t * R->D + d) * Bt + b) * H);
                memcpy(y, h, (size_t)H * sizeof(float));
            }
        }
    }
    for (int64_t b = 0; b < Bt; b++) {
        int64_t o = R->layout1 ? (b * R->D + d) * H : (d * Bt + b) * H;
        if (R->yh) memcpy(R->yh + o, R->h + b * H, (size_t)H * sizeof(float));
        if (R->yc) memcpy(R->yc + o, R->c + b * H, (size_t)H * sizeof(float));
    }
    return PQ_OK;
}

static enum pq_status pq_rnn(const pq_kernel_args *a, enum pq_rnn_kind kind) {
    PQ_TRY(pq_ref_check_args(a, 3, 0));
    PQ_TRY(pq_ref_check_outputs(a));
    const pq_node *n = a->node;
    const pq_tensor *X = a->in[0];
    int G = kind == PQ_RNN_LSTM ? 4 : kind == PQ_RNN_GRU ? 3 : 1;
    int nact = kind == PQ_RNN_LSTM ? 3 : kind == PQ_RNN_GRU ? 2 : 1;
    const char *dir = pq_node_attr_string(n, "direction", "forward");
    bool bidi = !strcmp(dir, "bidirectional"), reverse = !strcmp(dir, "reverse");
    pq_rnn_run R;
    memset(&R, 0, sizeof R);
    R.kind = kind;
    R.G = G;
    R.D = bidi ? 2 : 1;
    R.layout1 = pq_node_attr_int(n, "layout", 0) == 1;
    R.S = X->dims[R.layout1 ? 1 : 0];
    R.Bt = X->dims[R.layout1 ? 0 : 1];
    R.I = X->dims[2];
    R.H = a->in[2]->dims[2];
    float clip = pq_node_attr(n, "clip") ? pq_node_attr_float(n, "clip", 0.0f) : 0.0f;
    bool input_forget = pq_node_attr_int(n, "input_forget", 0) == 1;
    bool lbr = pq_node_attr_int(n, "linear_before_reset", 0) == 1;
    pq_act acts[6];
    enum pq_status st = pq_rnn_acts(n, kind, (int)R.D, nact, acts, a->err);
    if (st != PQ_OK) return st;

    /* inputs: 0 X, 1 W, 2 R, 3 B, 4 sequence_lens, 5 initial_h, 6 initial_c, 7 P */
    const float *views[8] = {0};
    float *owned[8] = {0}, *oy[3] = {0}, *outs[3] = {0};
    float *work = NULL;
    for (uint32_t i = 0; i < a->n_in && i < 8; i++) {
        if (!a->in[i] || i == 4) continue;
        PQ_TRY_GOTO(st, pq_ref_f32_view(a->in[i], &views[i], &owned[i], a->err), done);
    }
    R.x = views[0];
    R.w = views[1];
    R.r = views[2];
    R.b = views[3];
    R.h0 = views[5];
    R.c0 = kind == PQ_RNN_LSTM ? views[6] : NULL;
    R.p = kind == PQ_RNN_LSTM ? views[7] : NULL;
    R.lens = a->n_in > 4 && a->in[4] ? a->in[4]->data : NULL;
    for (uint32_t i = 0; i < a->n_out && i < 3; i++) {
        if (!a->out[i]) continue;
        PQ_TRY_GOTO(st, pq_ref_f32_out(a->out[i], &outs[i], &oy[i], a->err), done);
    }
    R.y = outs[0];
    R.yh = outs[1];
    R.yc = kind == PQ_RNN_LSTM ? outs[2] : NULL;
    if (R.y) memset(R.y, 0, (size_t)pq_tensor_numel(a->out[0]) * sizeof(float));
    int64_t GH = G * R.H;
    int64_t need = R.S * R.Bt * GH + R.Bt * GH + 4 * R.Bt * R.H;
    work = pq_malloc((size_t)need * sizeof(float));
    if (!work) {
        st = pq_error_nomem(a->err, "recurrent state");
        goto done;
    }
    R.xw = work;
    R.hr = R.xw + R.S * R.Bt * GH;
    R.h = R.hr + R.Bt * GH;
    R.c = kind == PQ_RNN_LSTM ? R.h + R.Bt * R.H : NULL;
    R.tmp = R.h + 2 * R.Bt * R.H;
    R.rh = R.tmp + R.Bt * R.H;
    for (int64_t d = 0; d < R.D; d++) {
        bool rev = bidi ? d == 1 : reverse;
        PQ_TRY_GOTO(st,
                    pq_rnn_direction(&R, d, rev, acts + d * nact, clip, input_forget, lbr, a->err),
                    done);
    }
    for (uint32_t i = 0; i < a->n_out && i < 3; i++) {
        if (!a->out[i]) continue;
        if (kind != PQ_RNN_LSTM && i == 2) continue;
        pq_ref_f32_commit(a->out[i], oy[i]);
        oy[i] = NULL;
    }
    st = PQ_OK;
done:
    pq_free(work);
    for (int i = 0; i < 8; i++)
        pq_free(owned[i]);
    for (int i = 0; i < 3; i++)
        pq_free(oy[i]);
    return st;
}

enum pq_status pq_ref_lstm(const pq_kernel_args *a) {
    return pq_rnn(a, PQ_RNN_LSTM);
}
enum pq_status pq_ref_gru(const pq_kernel_args *a) {
    return pq_rnn(a, PQ_RNN_GRU);
}
enum pq_status pq_ref_rnn(const pq_kernel_args *a) {
    return pq_rnn(a, PQ_RNN_SIMPLE);
}
