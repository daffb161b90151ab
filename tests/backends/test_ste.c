/* Tests of FakeQuantGrad (the straight-through backward of FakeQuant, SPEC 7) against PyTorch
 * autograd fixtures in tests/data/ste/ (scripts/gen_ste_fixtures.py): every STE on piq3/piq2/q3/q2/
 * int8, partial last groups, transposed views, negative scale words, ties at x.5 and values exactly
 * at the clip bands; LSQ also vs torch._fake_quantize_learnable_per_tensor_affine; shape rule
 * errors and the sign convention of a negative scale word.
 * Tolerances: dL/dw of standard and clipped bit-exact; dL/dw of lsq and ewgs and dL/da of lsq
 * within 1e-6 relative (|x - ref| <= 1e-6 |ref|, zero only for zero); dL/da vs PyTorch's builtin
 * within 1e-5 relative (it multiplies by 1/s and sums in f32). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/quant/quant.h"
#include "frontends/npy.h"
#include "ir/infer_piqc.h"
#include "ir/ir.h"
#include "piqc_harness.h"

#define STE_DIR PQ_SOURCE_DIR "/tests/data/ste/"

static pq_tensor *load(const char *name, const char *what) {
    char path[512];
    snprintf(path, sizeof path, STE_DIR "%s_%s.npy", name, what);
    pq_error err;
    pq_tensor *t = NULL;
    cr_assert_eq(pq_npy_read(path, &t, &err), PQ_OK, "%s: %s", path, err.msg);
    return t;
}

/* One FakeQuantGrad node on constants w, scales, g; with_ds asks for output 1. */
typedef struct ste_node {
    pq_graph *g;
    uint32_t nid, out[2];
} ste_node;

static uint32_t add_const(pq_graph *g, const pq_tensor *t) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, NULL, t->dtype, NULL, &v, &err), PQ_OK);
    pq_tensor *c = pq_tensor_clone(t, &err);
    cr_assert_not_null(c);
    cr_assert_eq(pq_graph_set_constant(g, v, c, &err), PQ_OK, "%s", err.msg);
    return v;
}

static ste_node ste_build(const pq_tensor *w, const pq_tensor *s, const pq_tensor *gr,
                          const char *format, int64_t qgroup, bool tr, const char *ste,
                          bool with_ds) {
    pq_error err;
    ste_node n;
    n.g = pq_graph_create(NULL, &err);
    cr_assert_not_null(n.g);
    uint32_t ins[3] = {add_const(n.g, w), s ? add_const(n.g, s) : PQ_NONE, add_const(n.g, gr)};
    n.out[1] = PQ_NONE;
    for (int i = 0; i < (with_ds ? 2 : 1); i++)
        cr_assert_eq(pq_graph_add_value(n.g, NULL, PQ_DTYPE_UNDEFINED, NULL, &n.out[i], &err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_node(n.g, PQ_OP_FAKE_QUANT_GRAD, "fqg", ins, 3, n.out,
                                   with_ds ? 2 : 1, &n.nid, &err),
                 PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_node_set_string(n.g, n.nid, "format", format, &err), PQ_OK);
    if (qgroup > 0) cr_assert_eq(pq_node_set_int(n.g, n.nid, "qgroup", qgroup, &err), PQ_OK);
    cr_assert_eq(pq_node_set_int(n.g, n.nid, "transposed", tr, &err), PQ_OK);
    if (ste) cr_assert_eq(pq_node_set_string(n.g, n.nid, "ste", ste, &err), PQ_OK);
    return n;
}

/* Infers and runs the reference kernel; outputs poisoned first. out[1] NULL without dscales. */
static enum pq_status ste_run(ste_node *n, pq_tensor *out[2], pq_error *err) {
    out[0] = out[1] = NULL;
    PQ_TRY(pq_infer_node(n->g, n->nid, err));
    const pq_node *node = &n->g->nodes[n->nid];
    uint32_t no = node->n_outputs;
    for (uint32_t i = 0; i < no; i++) {
        const pq_value *v = &n->g->values[n->out[i]];
        int64_t dims[PQ_MAX_RANK];
        cr_assert(pq_shape_is_static(&v->shape, dims));
        cr_assert_eq(v->dtype, PQ_DTYPE_F32);
        out[i] = pq_tensor_create(v->dtype, v->shape.rank, dims, err);
        cr_assert_not_null(out[i]);
        memset(out[i]->data, 0xFF, out[i]->nbytes);
    }
    const pq_tensor *in[3];
    for (int i = 0; i < 3; i++)
        in[i] = node->inputs[i] == PQ_NONE ? NULL : n->g->values[node->inputs[i]].constant;
    pq_kernel_args a = {n->g, node, in, 3, out, no, NULL, 1, err};
    return pq_ref_run(&a);
}

static void ste_free(ste_node *n, pq_tensor *out[2]) {
    pq_tensor_destroy(out[0]);
    pq_tensor_destroy(out[1]);
    pq_graph_destroy(n->g);
}

static void assert_same_shape(const pq_tensor *x, const pq_tensor *want, const char *what) {
    cr_assert_eq(x->rank, want->rank, "%s: rank", what);
    for (int i = 0; i < x->rank; i++)
        cr_assert_eq(x->dims[i], want->dims[i], "%s: dim %d", what, i);
}

static void assert_bits(const pq_tensor *x, const pq_tensor *want, const char *what) {
    assert_same_shape(x, want, what);
    const uint32_t *a = x->data, *b = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(x); i++)
        cr_assert_eq(a[i], b[i], "%s [%lld]: %.9g (0x%08x), want %.9g (0x%08x)", what, (long long)i,
                     ((const float *)x->data)[i], a[i], ((const float *)want->data)[i], b[i]);
}

static void assert_rel(const pq_tensor *x, const pq_tensor *want, double tol, const char *what) {
    assert_same_shape(x, want, what);
    const float *a = x->data, *b = want->data;
    for (int64_t i = 0; i < pq_tensor_numel(x); i++)
        cr_assert(fabs((double)a[i] - (double)b[i]) <= tol * fabs((double)b[i]),
                  "%s [%lld]: %.9g, want %.9g (tolerance %g relative)", what, (long long)i, a[i],
                  b[i], tol);
}

/* ---- fixtures ---- */

typedef struct ste_case {
    const char *name, *format;
    int64_t qgroup;
    bool tr;
} ste_case;

/* The case table of scripts/gen_ste_fixtures.py (stored shapes come from the files). */
static const ste_case k_cases[] = {
    {"piq3_g8", "piq3", 8, false}, {"piq2_tr", "piq2", 8, true}, {"q3_g16", "q3", 16, false},
    {"q2_tr", "q2", 8, true},      {"int8", "int8", 0, false},   {"int8_tr", "int8", 0, true},
};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])
static const char *const k_stes[4] = {"standard", "clipped", "lsq", "ewgs"};

/* What a fixture exercises, recounted from its data with the forward's arithmetic. */
typedef struct ste_cover {
    int64_t ties, band, outside, neg_words, partial_groups;
} ste_cover;

static void count_cover(const ste_case *c, const pq_tensor *w, const pq_tensor *s, ste_cover *cv) {
    bool int8 = !strcmp(c->format, "int8");
    enum pq_qformat f = PQ_QFORMAT_PIQ3;
    if (!int8) cr_assert(pq_qformat_from_name(c->format, &f));
    int bits = int8 ? 8 : pq_qformat_bits(f);
    float lo = int8 ? -127.0f : -(float)(1 << (bits - 1));
    float hi = int8 ? 127.0f : (float)((1 << (bits - 1)) - 1);
    int64_t B, R, C;
    pq_fake_quant_view(w->rank, w->dims, c->tr, &B, &R, &C);
    int64_t G = int8 ? C : c->qgroup, ng = (C + G - 1) / G;
    const float *pw = w->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t col = 0; col < C; col++) {
                int64_t row = b * R + r, gi = col / G;
                float step = int8 ? ((const float *)s->data)[row]
                                  : pq_qstep(f, ((const uint16_t *)s->data)[row * ng + gi]);
                float x = pw[c->tr ? b * R * C + col * R + r : r * C + col];
                float v = x / step, q = nearbyintf(v);
                cv->ties += fabsf(v - floorf(v)) == 0.5f;
                cv->band += q == lo || q == hi || v == lo - 0.5f || v == hi + 0.5f;
                cv->outside += q < lo || q > hi;
            }
    if (!int8) {
        for (int64_t i = 0; i < pq_tensor_numel(s); i++)
            cv->neg_words += (((const uint16_t *)s->data)[i] & 0x8000u) != 0;
        if (C % G) cv->partial_groups += B * R;
    }
}

Test(ste, fixtures_every_variant) {
    ste_cover cv = {0};
    int checked = 0, transposed = 0;
    for (size_t ci = 0; ci < N_CASES; ci++) {
        const ste_case *c = &k_cases[ci];
        pq_tensor *w = load(c->name, "w"), *s = load(c->name, "scales"), *g = load(c->name, "g");
        cr_assert_eq(s->dtype, strcmp(c->format, "int8") ? PQ_DTYPE_F16 : PQ_DTYPE_F32);
        count_cover(c, w, s, &cv);
        transposed += c->tr;
        for (int k = 0; k < 4; k++) {
            bool lsq = k == 2;
            char what[96];
            snprintf(what, sizeof what, "%s %s dw", c->name, k_stes[k]);
            ste_node n = ste_build(w, s, g, c->format, c->qgroup, c->tr, k_stes[k], lsq);
            pq_tensor *out[2];
            pq_error err;
            cr_assert_eq(ste_run(&n, out, &err), PQ_OK, "%s: %s", what, err.msg);
            pq_tensor *want = load(c->name, k == 0   ? "dw_standard"
                                            : k == 1 ? "dw_clipped"
                                            : k == 2 ? "dw_lsq"
                                                     : "dw_ewgs");
            if (k < 2)
                assert_bits(out[0], want, what);
            else
                assert_rel(out[0], want, 1e-6, what);
            pq_tensor_destroy(want);
            if (lsq) {
                pq_tensor *da = load(c->name, "da_lsq");
                snprintf(what, sizeof what, "%s lsq da", c->name);
                assert_rel(out[1], da, 1e-6, what);
                pq_tensor_destroy(da);
            }
            ste_free(&n, out);
            checked++;
        }
        pq_tensor_destroy(w);
        pq_tensor_destroy(s);
        pq_tensor_destroy(g);
    }
    cr_assert_eq(checked, (int)N_CASES * 4);
    /* the fixtures exercise what they claim */
    cr_assert_gt(cv.ties, 20, "ties at x.5: %lld", (long long)cv.ties);
    cr_assert_gt(cv.band, 20, "values at the clip bands: %lld", (long long)cv.band);
    cr_assert_gt(cv.outside, 20, "values outside: %lld", (long long)cv.outside);
    cr_assert_gt(cv.neg_words, 5, "negative scale words: %lld", (long long)cv.neg_words);
    cr_assert_gt(cv.partial_groups, 5, "partial last groups: %lld", (long long)cv.partial_groups);
    cr_assert_geq(transposed, 3);
}

/* LSQ vs torch._fake_quantize_learnable_per_tensor_affine (per tensor, away from ties/bands). */
Test(ste, lsq_matches_pytorch_builtin_per_tensor) {
    static const ste_case bi[3] = {
        {"bi_q3", "q3", 64, false}, {"bi_piq3", "piq3", 64, false}, {"bi_int8", "int8", 0, false}};
    for (int i = 0; i < 3; i++) {
        pq_tensor *w = load(bi[i].name, "w"), *s = load(bi[i].name, "scales"),
                  *g = load(bi[i].name, "g");
        ste_node n = ste_build(w, s, g, bi[i].format, bi[i].qgroup, false, "lsq", true);
        pq_tensor *out[2];
        pq_error err;
        cr_assert_eq(ste_run(&n, out, &err), PQ_OK, "%s", err.msg);
        pq_tensor *dw = load(bi[i].name, "dw_builtin"), *da = load(bi[i].name, "da_builtin"),
                  *da_own = load(bi[i].name, "da_lsq");
        assert_bits(out[0], dw, bi[i].name);
        assert_rel(out[1], da, 1e-5, bi[i].name);
        assert_rel(out[1], da_own, 1e-6, bi[i].name);
        pq_tensor_destroy(dw);
        pq_tensor_destroy(da);
        pq_tensor_destroy(da_own);
        ste_free(&n, out);
        pq_tensor_destroy(w);
        pq_tensor_destroy(s);
        pq_tensor_destroy(g);
    }
}

/* ---- hand-computed values and properties ---- */

/* Q3, a = 0.5 (step 0.5), one group of 4: v = 0.6, 2.2, -5.2, 10 -> c = 0.4, -0.2, -4 (below),
 * 3 (above); g = 1: dL/da = -0.8 / sqrt(4 * 3). Ties: v = 2.5 -> 2 (c = -0.5), v = -4.5 -> -4
 * (inside, c = 0.5), v = 3.5 -> 4 (above: 3). */
Test(ste, lsq_hand_computed) {
    int64_t d[2] = {1, 8}, sd[2] = {1, 1};
    pq_error err;
    pq_tensor *w = pq_tensor_create(PQ_DTYPE_F32, 2, d, &err),
              *g = pq_tensor_create(PQ_DTYPE_F32, 2, d, &err),
              *s = pq_tensor_create(PQ_DTYPE_F16, 2, sd, &err);
    const float wv[8] = {0.3f, 1.1f, -2.6f, 5.0f, 1.25f, -2.25f, 1.75f, 0.0f};
    const float gv[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    memcpy(w->data, wv, sizeof wv);
    memcpy(g->data, gv, sizeof gv);
    ((uint16_t *)s->data)[0] = pq_f32_to_f16(0.5f);
    ste_node n = ste_build(w, s, g, "q3", 8, false, "lsq", true);
    pq_tensor *out[2];
    cr_assert_eq(ste_run(&n, out, &err), PQ_OK, "%s", err.msg);
    const float want_dw[8] = {1, 1, 0, 0, 2, 2, 0, 2};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(((float *)out[0]->data)[i], want_dw[i], "dw[%d]", i);
    /* c: 0.4 -0.2 -4 3 | -0.5 0.5 3 0 (computed from the f32 v, as the kernel does) */
    double acc = 0;
    for (int i = 0; i < 8; i++) {
        float v = wv[i] / 0.5f, r = nearbyintf(v);
        double c = r < -4 ? -4.0 : (r > 3 ? 3.0 : (double)r - (double)v);
        acc += gv[i] * c;
    }
    cr_assert_float_eq(acc, -0.8 + 2 * (-0.5 + 0.5 + 3.0), 1e-6);
    float want = (float)(acc / sqrt(8.0 * 3.0));
    cr_assert_eq(((float *)out[1]->data)[0], want, "da %.9g want %.9g", ((float *)out[1]->data)[0],
                 want);
    ste_free(&n, out);
    pq_tensor_destroy(w);
    pq_tensor_destroy(g);
    pq_tensor_destroy(s);
}

/* Sign convention: dL/da is the derivative w.r.t. the signed scale word a. On weights that are
 * all clipped (|v| >= Qn + 2) the LSQ surrogate is the true derivative of L = sum g * w_hat (codes
 * constant, w_hat = q * f32(a * pi/k)), so dL/da * sqrt(N Qp) equals the finite difference of the
 * FakeQuant forward between the f16 words a +- 16 ulps, for positive and negative words.
 * Tolerance 1e-4 relative (step rounding to f32 over a difference of 32 f16 ulps). */
static double fq_loss(const pq_tensor *w, const pq_tensor *s, const pq_tensor *g, const char *fm) {
    const pq_tensor *in[2] = {w, s};
    pq_tp t = pq_tp_node(PQ_OP_FAKE_QUANT, in, 2);
    pq_tp_str(&t, "format", fm);
    pq_tp_int(&t, "qgroup", 8);
    pq_tensor *y;
    pq_error err;
    cr_assert_eq(pq_tp_run(&t, NULL, &y, &err), PQ_OK, "%s", err.msg);
    double l = 0;
    for (int64_t i = 0; i < pq_tensor_numel(y); i++)
        l += (double)((float *)g->data)[i] * ((float *)y->data)[i];
    pq_tensor_destroy(y);
    pq_tp_free(&t);
    return l;
}

Test(ste, lsq_sign_of_a_matches_finite_difference_when_clipped) {
    static const char *const fm[4] = {"piq3", "piq2", "q3", "q2"};
    int64_t d[2] = {2, 20}, sd[2] = {2, 3}; /* groups of 8, 8, 4 */
    for (int f = 0; f < 4; f++) {
        enum pq_qformat qf;
        cr_assert(pq_qformat_from_name(fm[f], &qf));
        double qn = (double)(1 << (pq_qformat_bits(qf) - 1)), qp = qn - 1;
        pq_tensor *w = pq_tp_rand(2, d, 31 + f, 1.0f), *g = pq_tp_rand(2, d, 77 + f, 1.0f);
        pq_tensor *s = pq_tp_tensor(PQ_DTYPE_F16, 2, sd);
        uint16_t *ps = s->data;
        for (int i = 0; i < 6; i++) /* alternating signs, |a| about 0.1 */
            ps[i] = pq_f32_to_f16((i % 2 ? -1.0f : 1.0f) * (0.08f + 0.01f * (float)i));
        float *pw = w->data;
        for (int64_t i = 0; i < 40; i++) { /* |v| in [Qn + 2, Qn + 4]: saturated either side */
            float step = pq_qstep(qf, ps[(i / 20) * 3 + (i % 20) / 8]);
            pw[i] = (pw[i] >= 0 ? 1.0f : -1.0f) * (float)(qn + 2 + 2 * fabs(pw[i])) * fabsf(step);
        }
        ste_node n = ste_build(w, s, g, fm[f], 8, false, "lsq", true);
        pq_tensor *o[2];
        pq_error err;
        cr_assert_eq(ste_run(&n, o, &err), PQ_OK, "%s", err.msg);
        for (int i = 0; i < 6; i++) {
            uint16_t u = ps[i];
            ps[i] = (uint16_t)(u + 16);
            double lp = fq_loss(w, s, g, fm[f]), ap = pq_f16_to_f32(ps[i]);
            ps[i] = (uint16_t)(u - 16);
            double lm = fq_loss(w, s, g, fm[f]), am = pq_f16_to_f32(ps[i]);
            ps[i] = u;
            double fd = (lp - lm) / (ap - am), nw = i % 3 == 2 ? 4.0 : 8.0;
            double got = (double)((float *)o[1]->data)[i] * sqrt(nw * qp);
            cr_assert(fabs(got - fd) <= 1e-4 * fabs(fd), "%s group %d (a %g): %.9g vs fd %.9g",
                      fm[f], i, pq_f16_to_f32(u), got, fd);
        }
        ste_free(&n, o);
        pq_tensor_destroy(w);
        pq_tensor_destroy(g);
        pq_tensor_destroy(s);
    }
}

/* ewgs with ewgs_delta = 0 is clipped, bit for bit; a larger delta moves dw further from g. */
Test(ste, ewgs_delta_attribute) {
    pq_tensor *w = load("piq2_tr", "w"), *g = load("piq2_tr", "g"), *s = load("piq2_tr", "scales");
    pq_tensor *clip = load("piq2_tr", "dw_clipped"), *ew = load("piq2_tr", "dw_ewgs");
    pq_error err;
    pq_tensor *o[2];
    ste_node n = ste_build(w, s, g, "piq2", 8, true, "ewgs", false);
    cr_assert_eq(pq_node_set_float(n.g, n.nid, "ewgs_delta", 0.0f, &err), PQ_OK);
    cr_assert_eq(ste_run(&n, o, &err), PQ_OK, "%s", err.msg);
    assert_bits(o[0], clip, "ewgs delta 0");
    ste_free(&n, o);
    n = ste_build(w, s, g, "piq2", 8, true, "ewgs", false);
    cr_assert_eq(pq_node_set_float(n.g, n.nid, "ewgs_delta", 0.3f, &err), PQ_OK);
    cr_assert_eq(ste_run(&n, o, &err), PQ_OK, "%s", err.msg);
    const float *a = o[0]->data, *b = ew->data, *c = clip->data;
    int moved = 0;
    for (int64_t i = 0; i < pq_tensor_numel(w); i++) {
        cr_assert(fabsf(a[i] - c[i]) >= fabsf(b[i] - c[i]), "[%lld]", (long long)i);
        moved += fabsf(a[i] - c[i]) > fabsf(b[i] - c[i]);
    }
    cr_assert_gt(moved, 50, "moved %d", moved);
    ste_free(&n, o);
    pq_tensor_destroy(clip);
    pq_tensor_destroy(ew);
    pq_tensor_destroy(w);
    pq_tensor_destroy(g);
    pq_tensor_destroy(s);
}

/* ---- shape rule ---- */

static void expect_invalid(ste_node *n, const char *needle) {
    pq_tensor *o[2];
    pq_error err;
    cr_assert_eq(ste_run(n, o, &err), PQ_ERR_INVALID, "expected INVALID for '%s'", needle);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    cr_assert(strstr(err.msg, "fqg"), "message '%s' does not name the node", err.msg);
    ste_free(n, o);
}

Test(ste, shape_rule_errors) {
    pq_tensor *w = load("piq3_g8", "w"), *g = load("piq3_g8", "g"), *s = load("piq3_g8", "scales");
    ste_node n = ste_build(w, s, g, "piq3", 8, false, "clipped", true);
    expect_invalid(&n, "needs ste = lsq");
    n = ste_build(w, s, g, "piq3", 8, false, "sgd", false);
    expect_invalid(&n, "standard, clipped, lsq, ewgs");
    n = ste_build(w, NULL, g, "f16", 0, false, "standard", false);
    expect_invalid(&n, "format f16");
    n = ste_build(w, s, g, "piq3", 16, false, "lsq", true); /* scales [5, 3] vs 2 groups */
    expect_invalid(&n, "scales dim 1");
    n = ste_build(w, s, w, "piq3", 8, false, "lsq", true); /* fine: g may be any f32 of w's shape */
    pq_tensor *o[2];
    pq_error err;
    cr_assert_eq(ste_run(&n, o, &err), PQ_OK, "%s", err.msg);
    assert_same_shape(o[1], s, "dscales shape");
    ste_free(&n, o);
    int64_t gd[2] = {5, 20};
    pq_tensor *g2 = pq_tensor_create(PQ_DTYPE_F32, 2, gd, &err);
    n = ste_build(w, s, g2, "piq3", 8, false, "standard", false);
    expect_invalid(&n, "g dim 1");
    n = ste_build(w, s, g, "piq3", 8, false, "ewgs", false);
    cr_assert_eq(pq_node_set_float(n.g, n.nid, "ewgs_delta", INFINITY, &err), PQ_OK);
    expect_invalid(&n, "ewgs_delta");
    pq_tensor_destroy(g2);
    pq_tensor_destroy(w);
    pq_tensor_destroy(g);
    pq_tensor_destroy(s);
}

Test(ste, op_is_internal_nondiff_with_rule_and_kernel) {
    const pq_op_info *oi = pq_op_get(PQ_OP_FAKE_QUANT_GRAD);
    cr_assert_str_eq(oi->name, "FakeQuantGrad");
    cr_assert(oi->flags & PQ_OPF_INTERNAL);
    cr_assert(oi->flags & PQ_OPF_NONDIFF);
    cr_assert_eq(oi->min_inputs, 3);
    cr_assert_eq(oi->max_outputs, 2);
    cr_assert_not_null(pq_infer_table[PQ_OP_FAKE_QUANT_GRAD]);
    cr_assert_not_null(pq_ref_kernels[PQ_OP_FAKE_QUANT_GRAD]);
}
