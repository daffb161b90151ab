/* Gradient rules of the elementwise ops: broadcasting arithmetic (Add ... Pow, Mod, PRelu), Where,
 * the variadic Max/Min/Sum/Mean, every differentiable unary math function and activation, Clip,
 * Cast/CastLike, Identity and Dropout; built from existing elementwise ops. */
#include <math.h>
#include <string.h>

#include "grad_util.h"

/* ---- broadcasting binary ops ---- */

enum pq_status pq_grad_add_rule(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1);
    if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, a, &c->in_grad[0]));
    if (c->need[1]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, b, &c->in_grad[1]));
    return PQ_OK;
}

enum pq_status pq_grad_sub(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), t;
    if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, a, &c->in_grad[0]));
    if (c->need[1]) {
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, PQ_G0, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

enum pq_status pq_grad_mul(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), t;
    if (c->need[0]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, b, &t));
        PQ_TRY(pq_gunbroadcast(c, t, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, a, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = a / b: da = g / b, db = -(g * y) / b. */
enum pq_status pq_grad_div(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), y = PQ_OUT(0), t, u;
    if (c->need[0]) {
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, PQ_G0, b, &t));
        PQ_TRY(pq_gunbroadcast(c, t, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, y, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, t, b, &u));
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, u, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = a ^ b: da = g b a^(b - 1) (b cast to a's type when it is an integer exponent);
 * db = g y log(a) where a > 0, 0 elsewhere (the real power is only differentiable in b there). */
enum pq_status pq_grad_pow(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), y = PQ_OUT(0), t, u, one, bf = b;
    if (c->need[0]) {
        if (c->g->values[b].dtype != c->g->values[a].dtype)
            PQ_TRY(pq_gcast(c, b, c->g->values[a].dtype, &bf));
        PQ_TRY(pq_gscalar(c, a, 1.0, &one));
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, bf, one, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_POW, a, t, &u));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, u, bf, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, t, &u));
        PQ_TRY(pq_gunbroadcast(c, u, a, &c->in_grad[0]));
    }
    if (c->need[1]) {
        uint32_t zero, pos, la;
        PQ_TRY(pq_gscalar(c, a, 0.0, &zero));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, a, zero, &pos));
        PQ_TRY(pq_gop1(c, PQ_OP_LOG, a, &la));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, la, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, t, &u));
        PQ_TRY(pq_gmask(c, pos, u, &t));
        PQ_TRY(pq_gunbroadcast(c, t, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = fmod(a, b) = a - trunc(a / b) b (floats): da = g, db = -g trunc(a / b) with
 * trunc(a / b) = (a - y) / b. */
enum pq_status pq_grad_mod(pq_grad_ctx *c) {
    uint32_t a = PQ_IN(0), b = PQ_IN(1), y = PQ_OUT(0), t, u;
    if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, a, &c->in_grad[0]));
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, a, y, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, t, b, &u));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, u, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, t, &u));
        PQ_TRY(pq_gunbroadcast(c, u, b, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = x < 0 ? x s : x: dx = x < 0 ? g s : g; ds = x < 0 ? g x : 0, summed over s's broadcast
 * axes. */
enum pq_status pq_grad_prelu(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), s = PQ_IN(1), zero, neg, t, u;
    PQ_TRY(pq_gscalar(c, x, 0.0, &zero));
    PQ_TRY(pq_gop2(c, PQ_OP_LESS, x, zero, &neg));
    if (c->need[0]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, s, &t));
        PQ_TRY(pq_gwhere(c, neg, t, PQ_G0, &u));
        PQ_TRY(pq_gunbroadcast(c, u, x, &c->in_grad[0]));
    }
    if (c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, PQ_G0, x, &t));
        PQ_TRY(pq_gmask(c, neg, t, &u));
        PQ_TRY(pq_gunbroadcast(c, u, s, &c->in_grad[1]));
    }
    return PQ_OK;
}

/* y = Where(cond, a, b): da = Where(cond, g, 0), db = Where(cond, 0, g), each summed over its
 * broadcast axes; cond (bool) gets none. */
enum pq_status pq_grad_where(pq_grad_ctx *c) {
    uint32_t cond = PQ_IN(0), t, zero;
    PQ_TRY(pq_gscalar(c, PQ_G0, 0.0, &zero));
    if (c->need[1]) {
        PQ_TRY(pq_gwhere(c, cond, PQ_G0, zero, &t));
        PQ_TRY(pq_gunbroadcast(c, t, PQ_IN(1), &c->in_grad[1]));
    }
    if (c->need[2]) {
        PQ_TRY(pq_gwhere(c, cond, zero, PQ_G0, &t));
        PQ_TRY(pq_gunbroadcast(c, t, PQ_IN(2), &c->in_grad[2]));
    }
    return PQ_OK;
}

/* y = Max / Min(x_1 ... x_n) (broadcast): the gradient goes to the inputs equal to y; ties split
 * it evenly (g / count, as torch.maximum does for two), each summed over its broadcast axes. */
enum pq_status pq_grad_max_min(pq_grad_ctx *c) {
    uint32_t n_in = PQ_NODE->n_inputs, y = PQ_OUT(0);
    if (n_in == 1) {
        if (c->need[0]) PQ_TRY(pq_gunbroadcast(c, PQ_G0, PQ_IN(0), &c->in_grad[0]));
        return PQ_OK;
    }
    enum pq_dtype dt = c->g->values[y].dtype;
    uint32_t *mask = pq_malloc(sizeof(uint32_t) * 2 * n_in);
    if (!mask) return pq_error_nomem(c->err, "Max/Min gradient");
    uint32_t *cnt = mask + n_in;
    enum pq_status st = PQ_OK;
    for (uint32_t i = 0; i < n_in; i++) {
        PQ_TRY_GOTO(st, pq_gop2(c, PQ_OP_EQUAL, PQ_IN(i), y, &mask[i]), done);
        PQ_TRY_GOTO(st, pq_gcast(c, mask[i], dt, &cnt[i]), done);
    }
    uint32_t count, gs, t;
    PQ_TRY_GOTO(st, pq_gop(c, PQ_OP_SUM, cnt, n_in, &count), done);
    PQ_TRY_GOTO(st, pq_gop2(c, PQ_OP_DIV, PQ_G0, count, &gs), done);
    for (uint32_t i = 0; i < n_in; i++) {
        if (!c->need[i]) continue;
        PQ_TRY_GOTO(st, pq_gmask(c, mask[i], gs, &t), done);
        PQ_TRY_GOTO(st, pq_gunbroadcast(c, t, PQ_IN(i), &c->in_grad[i]), done);
    }
done:
    pq_free(mask);
    return st;
}

/* y = Sum(x_i): dx_i = g; Mean: g / n; each summed over its broadcast axes. */
enum pq_status pq_grad_sum_mean(pq_grad_ctx *c) {
    uint32_t n_in = PQ_NODE->n_inputs, gs = PQ_G0;
    if (PQ_NODE->op == PQ_OP_MEAN && n_in > 1) PQ_TRY(pq_gscale(c, PQ_G0, 1.0 / n_in, &gs));
    for (uint32_t i = 0; i < n_in; i++)
        if (c->need[i]) PQ_TRY(pq_gunbroadcast(c, gs, PQ_IN(i), &c->in_grad[i]));
    return PQ_OK;
}

/* ---- unary ---- */

enum pq_status pq_grad_identity(pq_grad_ctx *c) {
    c->in_grad[0] = PQ_G0;
    return PQ_OK;
}

/* Dropout runs in inference form (output 0 = input, docs/canonical-ops.md): dx = g. The ratio
 * and training_mode inputs get zeros when asked. */
enum pq_status pq_grad_dropout(pq_grad_ctx *c) {
    if (c->need[0]) c->in_grad[0] = PQ_G0;
    for (uint32_t i = 1; i < PQ_NODE->n_inputs; i++)
        if (c->need[i]) PQ_TRY(pq_gzeros_like(c, PQ_IN(i), &c->in_grad[i]));
    return PQ_OK;
}

/* sign * x * x + k (sign = +1 or -1). */
static enum pq_status pq_gsq_plus(pq_grad_ctx *c, uint32_t x, double k, int sign, uint32_t *v) {
    uint32_t t, kk;
    PQ_TRY(pq_gop2(c, PQ_OP_MUL, x, x, &t));
    if (sign < 0) PQ_TRY(pq_gop1(c, PQ_OP_NEG, t, &t));
    PQ_TRY(pq_gscalar(c, x, k, &kk));
    return pq_gop2(c, PQ_OP_ADD, t, kk, v);
}

/* Every elementwise unary op with a rule (x = input, y = output, g = dL/dy):
 * Neg -g; Exp g y; Log g / x; Sqrt g / (2 y); Relu x > 0 ? g : 0; Sigmoid g y (1 - y);
 * Tanh g (1 - y^2); Abs g sign(x); Reciprocal -g y^2; Erf g 2/sqrt(pi) exp(-x^2); Sin g cos x;
 * Cos -g sin x; Tan g (1 + y^2); Sinh g cosh x; Cosh g sinh x; Asin g / sqrt(1 - x^2);
 * Acos -g / sqrt(1 - x^2); Atan g / (1 + x^2); Asinh g / sqrt(x^2 + 1); Acosh g / sqrt(x^2 - 1);
 * Atanh g / (1 - x^2); LeakyRelu x > 0 ? g : alpha g; Elu x > 0 ? g : g (y + alpha);
 * Selu x > 0 ? gamma g : g (y + gamma alpha); Celu x > 0 ? g : g (y / alpha + 1);
 * HardSigmoid 0 < y < 1 ? alpha g : 0; HardSwish x < -3 ? 0 : x <= 3 ? g (x / 3 + 1/2) : g
 * (as torch); Softplus g sigmoid(x); Softsign g / (1 + |x|)^2; ThresholdedRelu x > alpha ? g : 0;
 * Shrink |x| > lambd ? g : 0. At a kink the one-sided value written first is used. */
enum pq_status pq_grad_unary(pq_grad_ctx *c) {
    const pq_node *n = PQ_NODE;
    enum pq_op op = n->op;
    uint32_t x = PQ_IN(0), y = PQ_OUT(0), g = PQ_G0, t, u, w, k, m;
    uint32_t *dx = &c->in_grad[0];
    switch (op) {
    case PQ_OP_NEG:
        return pq_gop1(c, PQ_OP_NEG, g, dx);
    case PQ_OP_EXP:
        return pq_gop2(c, PQ_OP_MUL, g, y, dx);
    case PQ_OP_LOG:
        return pq_gop2(c, PQ_OP_DIV, g, x, dx);
    case PQ_OP_SQRT:
        PQ_TRY(pq_gscale(c, y, 2.0, &t));
        return pq_gop2(c, PQ_OP_DIV, g, t, dx);
    case PQ_OP_RELU:
        PQ_TRY(pq_gscalar(c, x, 0.0, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, x, k, &m));
        return pq_gwhere(c, m, g, k, dx);
    case PQ_OP_SIGMOID:
        PQ_TRY(pq_gscalar(c, y, 1.0, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_SUB, k, y, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, t, &u));
        return pq_gop2(c, PQ_OP_MUL, g, u, dx);
    case PQ_OP_TANH:
        PQ_TRY(pq_gsq_plus(c, y, 1.0, -1, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_ABS:
        PQ_TRY(pq_gop1(c, PQ_OP_SIGN, x, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_RECIPROCAL:
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, y, y, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, g, t, &u));
        return pq_gop1(c, PQ_OP_NEG, u, dx);
    case PQ_OP_ERF:
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, x, x, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_NEG, t, &u));
        PQ_TRY(pq_gop1(c, PQ_OP_EXP, u, &w));
        PQ_TRY(pq_gscale(c, w, 1.1283791670955125738961589 /* 2 / sqrt(pi) */, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_SIN:
        PQ_TRY(pq_gop1(c, PQ_OP_COS, x, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_COS:
        PQ_TRY(pq_gop1(c, PQ_OP_SIN, x, &t));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, g, t, &u));
        return pq_gop1(c, PQ_OP_NEG, u, dx);
    case PQ_OP_TAN:
        PQ_TRY(pq_gsq_plus(c, y, 1.0, 1, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_SINH:
        PQ_TRY(pq_gop1(c, PQ_OP_COSH, x, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_COSH:
        PQ_TRY(pq_gop1(c, PQ_OP_SINH, x, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_ASIN:
    case PQ_OP_ACOS:
        PQ_TRY(pq_gsq_plus(c, x, 1.0, -1, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_SQRT, t, &u));
        if (op == PQ_OP_ASIN) return pq_gop2(c, PQ_OP_DIV, g, u, dx);
        PQ_TRY(pq_gop2(c, PQ_OP_DIV, g, u, &t));
        return pq_gop1(c, PQ_OP_NEG, t, dx);
    case PQ_OP_ATAN:
        PQ_TRY(pq_gsq_plus(c, x, 1.0, 1, &t));
        return pq_gop2(c, PQ_OP_DIV, g, t, dx);
    case PQ_OP_ASINH:
    case PQ_OP_ACOSH:
        PQ_TRY(pq_gsq_plus(c, x, op == PQ_OP_ASINH ? 1.0 : -1.0, 1, &t));
        PQ_TRY(pq_gop1(c, PQ_OP_SQRT, t, &u));
        return pq_gop2(c, PQ_OP_DIV, g, u, dx);
    case PQ_OP_ATANH:
        PQ_TRY(pq_gsq_plus(c, x, 1.0, -1, &t));
        return pq_gop2(c, PQ_OP_DIV, g, t, dx);
    case PQ_OP_LEAKY_RELU:
    case PQ_OP_ELU:
    case PQ_OP_SELU:
    case PQ_OP_CELU: {
        double alpha = pq_node_attr_float(n, "alpha", op == PQ_OP_LEAKY_RELU ? 0.01f : 1.0f);
        double gamma = 1.0;
        if (op == PQ_OP_SELU) {
            alpha = pq_node_attr_float(n, "alpha", 1.67326319217681884765625f);
            gamma = pq_node_attr_float(n, "gamma", 1.05070102214813232421875f);
        }
        PQ_TRY(pq_gscalar(c, x, 0.0, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, x, k, &m));
        uint32_t pos = g, neg;
        if (op == PQ_OP_LEAKY_RELU) {
            PQ_TRY(pq_gscale(c, g, alpha, &neg));
        } else {
            /* the slope on the negative side from the output: Elu y + alpha, Selu
             * y + gamma alpha, Celu y / alpha + 1 */
            uint32_t yy = y;
            double add = op == PQ_OP_ELU ? alpha : op == PQ_OP_SELU ? gamma * alpha : 1.0;
            if (op == PQ_OP_CELU) PQ_TRY(pq_gscale(c, y, 1.0 / alpha, &yy));
            PQ_TRY(pq_gscalar(c, y, add, &k));
            PQ_TRY(pq_gop2(c, PQ_OP_ADD, yy, k, &t));
            PQ_TRY(pq_gop2(c, PQ_OP_MUL, g, t, &neg));
            if (op == PQ_OP_SELU) PQ_TRY(pq_gscale(c, g, gamma, &pos));
        }
        return pq_gwhere(c, m, pos, neg, dx);
    }
    case PQ_OP_HARD_SIGMOID: {
        double alpha = pq_node_attr_float(n, "alpha", 0.2f);
        uint32_t lo, hi, one;
        PQ_TRY(pq_gscalar(c, y, 0.0, &k));
        PQ_TRY(pq_gscalar(c, y, 1.0, &one));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, y, k, &lo));
        PQ_TRY(pq_gop2(c, PQ_OP_LESS, y, one, &hi));
        PQ_TRY(pq_gop2(c, PQ_OP_AND, lo, hi, &m));
        PQ_TRY(pq_gscale(c, g, alpha, &t));
        return pq_gmask(c, m, t, dx);
    }
    case PQ_OP_HARD_SWISH: {
        uint32_t lo, hi, kl, kh, half;
        PQ_TRY(pq_gscalar(c, x, -3.0, &kl));
        PQ_TRY(pq_gscalar(c, x, 3.0, &kh));
        PQ_TRY(pq_gop2(c, PQ_OP_LESS, x, kl, &lo));
        PQ_TRY(pq_gop2(c, PQ_OP_LESS_OR_EQUAL, x, kh, &hi));
        PQ_TRY(pq_gscale(c, x, 1.0 / 3.0, &t));
        PQ_TRY(pq_gscalar(c, x, 0.5, &half));
        PQ_TRY(pq_gop2(c, PQ_OP_ADD, t, half, &u));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, g, u, &w));
        PQ_TRY(pq_gwhere(c, hi, w, g, &t));
        PQ_TRY(pq_gscalar(c, x, 0.0, &k));
        return pq_gwhere(c, lo, k, t, dx);
    }
    case PQ_OP_SOFTPLUS:
        PQ_TRY(pq_gop1(c, PQ_OP_SIGMOID, x, &t));
        return pq_gop2(c, PQ_OP_MUL, g, t, dx);
    case PQ_OP_SOFTSIGN:
        PQ_TRY(pq_gop1(c, PQ_OP_ABS, x, &t));
        PQ_TRY(pq_gscalar(c, x, 1.0, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_ADD, t, k, &u));
        PQ_TRY(pq_gop2(c, PQ_OP_MUL, u, u, &w));
        return pq_gop2(c, PQ_OP_DIV, g, w, dx);
    case PQ_OP_THRESHOLDED_RELU:
        PQ_TRY(pq_gscalar(c, x, pq_node_attr_float(n, "alpha", 1.0f), &k));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, x, k, &m));
        return pq_gmask(c, m, g, dx);
    case PQ_OP_SHRINK: {
        double l = pq_node_attr_float(n, "lambd", 0.5f);
        uint32_t kl, lo, hi;
        PQ_TRY(pq_gscalar(c, x, -l, &kl));
        PQ_TRY(pq_gscalar(c, x, l, &k));
        PQ_TRY(pq_gop2(c, PQ_OP_LESS, x, kl, &lo));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, x, k, &hi));
        PQ_TRY(pq_gop2(c, PQ_OP_OR, lo, hi, &m));
        return pq_gmask(c, m, g, dx);
    }
    default:
        return pq_error_set(c->err, PQ_ERR_INTERNAL, "no unary gradient for %s", pq_op_name(op));
    }
}

/* y = min(max(x, lo), hi) (absent bounds omitted): dx = g where lo <= x <= hi; dlo = g where
 * x < lo <= hi; dhi = g where max(x, lo) > hi; the bounds' gradients are summed to their shape. */
enum pq_status pq_grad_clip(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0), lo = PQ_IN(1), hi = PQ_IN(2), m = PQ_NONE, t, u;
    if (c->need[0]) {
        if (lo != PQ_NONE) PQ_TRY(pq_gop2(c, PQ_OP_GREATER_OR_EQUAL, x, lo, &m));
        if (hi != PQ_NONE) {
            PQ_TRY(pq_gop2(c, PQ_OP_LESS_OR_EQUAL, x, hi, &t));
            if (m != PQ_NONE)
                PQ_TRY(pq_gop2(c, PQ_OP_AND, m, t, &m));
            else
                m = t;
        }
        if (m == PQ_NONE)
            c->in_grad[0] = PQ_G0;
        else
            PQ_TRY(pq_gmask(c, m, PQ_G0, &c->in_grad[0]));
    }
    if (lo != PQ_NONE && c->need[1]) {
        PQ_TRY(pq_gop2(c, PQ_OP_LESS, x, lo, &m));
        if (hi != PQ_NONE) {
            PQ_TRY(pq_gop2(c, PQ_OP_LESS_OR_EQUAL, lo, hi, &t));
            PQ_TRY(pq_gop2(c, PQ_OP_AND, m, t, &m));
        }
        PQ_TRY(pq_gmask(c, m, PQ_G0, &u));
        PQ_TRY(pq_gunbroadcast(c, u, lo, &c->in_grad[1]));
    }
    if (hi != PQ_NONE && c->need[2]) {
        uint32_t lx = x;
        if (lo != PQ_NONE) PQ_TRY(pq_gop2(c, PQ_OP_MAX, x, lo, &lx));
        PQ_TRY(pq_gop2(c, PQ_OP_GREATER, lx, hi, &m));
        PQ_TRY(pq_gmask(c, m, PQ_G0, &u));
        PQ_TRY(pq_gunbroadcast(c, u, hi, &c->in_grad[2]));
    }
    return PQ_OK;
}

/* Float to float Cast: dx = Cast(g, to = x's dtype). (An integer or bool input never needs a
 * gradient; an integer output stops the flow.) */
enum pq_status pq_grad_cast(pq_grad_ctx *c) {
    uint32_t x = PQ_IN(0);
    return pq_gcast(c, PQ_G0, c->g->values[x].dtype, &c->in_grad[0]);
}

/* CastLike(x, like): dx = Cast(g, x's dtype); like only gives the type (zeros when asked). */
enum pq_status pq_grad_cast_like(pq_grad_ctx *c) {
    if (c->need[0]) PQ_TRY(pq_grad_cast(c));
    if (c->need[1]) PQ_TRY(pq_gzeros_like(c, PQ_IN(1), &c->in_grad[1]));
    return PQ_OK;
}
