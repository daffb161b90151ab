/* Runtime tests of what a session keeps between runs: the frame, the plan's inferred shapes
 * (re-inferred only when an input shape or dtype changes), and Reshape-like copies run as views.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

/* x: f32[N, 2, 3].  f = flatten(relu(x)) is read after b and c (which would take relu(x)'s block
 * if the view did not keep it alive), v = flatten(x) views the caller's input, r = relu(x) is
 * read again at the end, and y0 = flatten(d) is a graph output (a copy, not a view).
 *   y  = f + flatten(|-x|) + v = flatten(relu(x) + |x| + x)   [N, 6]
 *   y1 = -relu(x)                                              [N, 2, 3]
 *   y0 = flatten(-x)                                           [N, 6] */
static const char *k_views = "piqc 1\n"
                             "graph views {\n"
                             "  symbols N\n"
                             "  opset \"\" 13\n"
                             "  input %x: f32[N, 2, 3]\n"
                             "  %r: f32[N, 2, 3] = Relu(%x)\n"
                             "  %f: f32[N, 6] = Flatten(%r) {axis = 1}\n"
                             "  %b: f32[N, 2, 3] = Neg(%x)\n"
                             "  %c: f32[N, 2, 3] = Abs(%b)\n"
                             "  %cf: f32[N, 6] = Flatten(%c) {axis = 1}\n"
                             "  %v: f32[N, 6] = Flatten(%x) {axis = 1}\n"
                             "  %s: f32[N, 6] = Add(%f, %cf)\n"
                             "  %y: f32[N, 6] = Add(%s, %v)\n"
                             "  %y1: f32[N, 2, 3] = Neg(%r)\n"
                             "  %y0: f32[N, 6] = Flatten(%b) {axis = 1}\n"
                             "  output %y\n"
                             "  output %y1\n"
                             "  output %y0\n"
                             "}\n";

static pq_graph *parse_graph(const char *text) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static pq_tensor *make_x(int64_t n, float seed) {
    int64_t dims[3] = {n, 2, 3};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 3, dims, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < n * 6; i++)
        d[i] = seed + (float)(i % 7) - 3.0f + 0.25f * (float)i;
    return t;
}

/* Runs the views graph on x and checks all three outputs against the formulas above. */
static void run_views(pq_session *s, const pq_tensor *x) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *out[3] = {NULL, NULL, NULL};
    const pq_tensor *ins[1] = {x};
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_OK, "%s", err.msg);
    int64_t n = x->dims[0];
    cr_assert_eq(out[0]->rank, 2);
    cr_assert_eq(out[0]->dims[0], n);
    cr_assert_eq(out[0]->dims[1], 6);
    cr_assert_eq(out[1]->rank, 3);
    cr_assert_eq(out[1]->dims[0], n);
    cr_assert_eq(out[2]->rank, 2);
    cr_assert_eq(out[2]->dims[0], n);
    const float *xd = x->data, *y = out[0]->data, *y1 = out[1]->data, *y0 = out[2]->data;
    for (int64_t i = 0; i < n * 6; i++) {
        float r = xd[i] > 0 ? xd[i] : 0.0f;
        cr_assert_float_eq(y[i], (r + fabsf(xd[i])) + xd[i], 1e-6, "y[%lld] (n %lld)", (long long)i,
                           (long long)n);
        cr_assert_eq(y1[i], -r, "y1[%lld]", (long long)i);
        cr_assert_eq(y0[i], -xd[i], "y0[%lld]", (long long)i);
    }
    for (int o = 0; o < 3; o++)
        pq_tensor_destroy(out[o]);
}

Test(session_reuse, views_keep_their_bytes_across_shape_changes) {
    pq_graph *g = parse_graph(k_views);
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    /* N changes back and forth: every change re-plans and re-infers; the same N reuses */
    int64_t ns[] = {2, 2, 5, 1, 5, 64, 2};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        pq_tensor *x = make_x(ns[k], (float)k);
        run_views(s, x);
        pq_tensor_destroy(x);
    }
    /* the arena holds r (viewed by f), b, c (viewed by cf), s and the other intermediates;
     * f and cf take no bytes of their own: r, b, c, s live at once at most, 4 blocks of 2*6*4
     * rounded to 64 bytes (N = 2) */
    cr_assert_leq(pq_session_planned_peak(s), 4 * 64, "peak %zu", pq_session_planned_peak(s));
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

/* Fails the run at node `fail_at` while armed. */
typedef struct {
    bool armed;
    uint32_t fail_at;
} fail_ctx;

static enum pq_status fail_observer(void *ctx, const pq_graph *g, uint32_t node,
                                    const pq_tensor *const *inputs, uint32_t n_inputs,
                                    pq_error *err) {
    (void)g;
    (void)inputs;
    (void)n_inputs;
    fail_ctx *c = ctx;
    if (c->armed && node == c->fail_at)
        return pq_error_set(err, PQ_ERR_INVALID, "stopped at node %u", node);
    return PQ_OK;
}

Test(session_reuse, runs_after_failed_runs) {
    pq_graph *g = parse_graph(k_views);
    pq_error err;
    pq_session *s = NULL;
    fail_ctx fc = {false, 0};
    pq_session_opts opts = {.observe = fail_observer, .observe_ctx = &fc};
    cr_assert_eq(pq_session_create(g, &opts, &s, &err), PQ_OK);
    pq_tensor *x = make_x(3, 0.5f);
    run_views(s, x);
    /* rejected inputs: wrong dtype, wrong dims, missing */
    pq_tensor *out[3] = {NULL, NULL, NULL};
    pq_tensor *wrong = pq_tensor_create(PQ_DTYPE_I64, 3, (int64_t[]){3, 2, 3}, NULL);
    const pq_tensor *ins[1] = {wrong};
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "expected f32"), "%s", err.msg);
    pq_tensor_destroy(wrong);
    pq_tensor *bad = pq_tensor_create(PQ_DTYPE_F32, 3, (int64_t[]){3, 3, 2}, NULL);
    ins[0] = bad;
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "dimension 1"), "%s", err.msg);
    pq_tensor_destroy(bad);
    ins[0] = NULL;
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_ERR_INVALID);
    for (int o = 0; o < 3; o++)
        cr_assert_null(out[o]);
    run_views(s, x);
    /* runs stopped part way (some values computed, some outputs owned by the frame) */
    for (uint32_t at = 0; at < g->n_nodes; at++) {
        fc.armed = true;
        fc.fail_at = at;
        ins[0] = x;
        cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_ERR_INVALID);
        cr_assert(strstr(err.msg, "stopped at node"), "%s", err.msg);
        for (int o = 0; o < 3; o++)
            cr_assert_null(out[o]);
        fc.armed = false;
        run_views(s, x);
    }
    /* a failure on a new shape, then that shape again */
    pq_tensor *x7 = make_x(7, -1.0f);
    fc.armed = true;
    fc.fail_at = g->n_nodes - 1;
    ins[0] = x7;
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_ERR_INVALID);
    fc.armed = false;
    run_views(s, x7);
    run_views(s, x);
    pq_tensor_destroy(x7);
    pq_tensor_destroy(x);
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

Test(session_reuse, allocation_failures_inside_runs_leave_the_session_usable) {
    pq_graph *g = parse_graph(k_views);
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    pq_tensor *x = make_x(4, 0);
    pq_tensor *x2 = make_x(9, 1);
    run_views(s, x);
    /* the k-th allocation of a run fails (with and without a re-plan), then a clean run */
    for (int pass = 0; pass < 2; pass++) {
        bool succeeded = false;
        for (long k = 0; k < 200 && !succeeded; k++) {
            pq_tensor *out[3] = {NULL, NULL, NULL};
            const pq_tensor *ins[1] = {pass ? x2 : x};
            if (pass) run_views(s, x); /* so that x2 needs a new plan */
            pq_alloc_fail_after(k);
            enum pq_status st = pq_session_run(s, ins, 1, out, 3, &err);
            pq_alloc_fail_after(-1);
            if (st == PQ_OK)
                succeeded = true;
            else
                cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
            for (int o = 0; o < 3; o++) {
                if (st != PQ_OK) cr_assert_null(out[o]);
                pq_tensor_destroy(out[o]);
            }
            run_views(s, pass ? x2 : x);
        }
        cr_assert(succeeded);
    }
    pq_tensor_destroy(x);
    pq_tensor_destroy(x2);
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

/* A Reshape whose target comes from Shape(x) (folded at plan time for each bound shape) viewing a
 * computed value; the view is read by two later nodes, one after a same-sized intermediate. */
Test(session_reuse, reshape_view_of_computed_value_with_folded_target) {
    const char *text = "piqc 1\n"
                       "graph rs {\n"
                       "  symbols N\n"
                       "  opset \"\" 13\n"
                       "  input %x: f32[N, 6]\n"
                       "  const %k: i64[3] = [0, 2, 3]\n"
                       "  %e: f32[N, 6] = Exp(%x)\n"
                       "  %x3: f32[N, 2, 3] = Reshape(%x, %k)\n"
                       "  %t: i64[3] = Shape(%x3)\n"
                       "  %re: f32[N, 2, 3] = Reshape(%e, %t)\n"
                       "  %n: f32[N, 2, 3] = Neg(%x3)\n"
                       "  %a: f32[N, 2, 3] = Add(%re, %n)\n"
                       "  %y: f32[N, 2, 3] = Mul(%a, %re)\n"
                       "  output %y\n"
                       "}\n";
    pq_graph *g = parse_graph(text);
    pq_error err;
    pq_error_clear(&err);
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    int64_t ns[] = {1, 4, 1, 3};
    for (size_t k = 0; k < 4; k++) {
        int64_t n = ns[k];
        pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, (int64_t[]){n, 6}, NULL);
        float *xd = x->data;
        for (int64_t i = 0; i < n * 6; i++)
            xd[i] = 0.1f * (float)i - 0.7f + (float)k;
        const pq_tensor *ins[1] = {x};
        pq_tensor *y = NULL;
        cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(y->rank, 3);
        cr_assert_eq(y->dims[0], n);
        cr_assert_eq(y->dims[1], 2);
        cr_assert_eq(y->dims[2], 3);
        const float *yd = y->data;
        for (int64_t i = 0; i < n * 6; i++) {
            float e = expf(xd[i]);
            cr_assert_float_eq(yd[i], (e - xd[i]) * e, 1e-5f * fabsf((e - xd[i]) * e) + 1e-6f,
                               "y[%lld]", (long long)i);
        }
        pq_tensor_destroy(y);
        pq_tensor_destroy(x);
    }
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

/* A chain of views (Unsqueeze, Squeeze, Identity) of one computed value, read after two
 * same-sized intermediates, next to a view of the graph input. */
Test(session_reuse, chained_views) {
    const char *text = "piqc 1\n"
                       "graph chain {\n"
                       "  symbols N\n"
                       "  opset \"\" 13\n"
                       "  input %x: f32[N, 5]\n"
                       "  const %ax: i64[1] = [0]\n"
                       "  %r: f32[N, 5] = Relu(%x)\n"
                       "  %u: f32[1, N, 5] = Unsqueeze(%r, %ax)\n"
                       "  %s: f32[N, 5] = Squeeze(%u, %ax)\n"
                       "  %i: f32[N, 5] = Identity(%s)\n"
                       "  %xi: f32[N, 5] = Identity(%x)\n"
                       "  %b: f32[N, 5] = Neg(%xi)\n"
                       "  %c: f32[N, 5] = Exp(%b)\n"
                       "  %y: f32[N, 5] = Add(%i, %c)\n"
                       "  output %y\n"
                       "}\n";
    pq_graph *g = parse_graph(text);
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    int64_t ns[] = {3, 1, 8, 3};
    for (size_t k = 0; k < 4; k++) {
        int64_t n = ns[k];
        pq_tensor *x = pq_tensor_create(PQ_DTYPE_F32, 2, (int64_t[]){n, 5}, NULL);
        float *xd = x->data;
        for (int64_t i = 0; i < n * 5; i++)
            xd[i] = 0.3f * (float)i - 1.1f - (float)k;
        const pq_tensor *ins[1] = {x};
        pq_tensor *y = NULL;
        cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(y->dims[0], n);
        const float *yd = y->data;
        for (int64_t i = 0; i < n * 5; i++) {
            float want = (xd[i] > 0 ? xd[i] : 0.0f) + expf(-xd[i]);
            cr_assert_float_eq(yd[i], want, 1e-5f * fabsf(want) + 1e-6f, "y[%lld]", (long long)i);
        }
        pq_tensor_destroy(y);
        pq_tensor_destroy(x);
    }
    pq_session_destroy(s);
    pq_graph_destroy(g);
}

/* An input of unknown dtype: a run with another dtype but the same dims makes a new plan (the
 * intermediate's planned dtype follows the input's). */
Test(session_reuse, input_dtype_change_replans) {
    const char *text = "piqc 1\n"
                       "graph dt {\n"
                       "  opset \"\" 13\n"
                       "  input %x: ?[2, 3]\n"
                       "  %a = Neg(%x)\n"
                       "  %y = Abs(%a)\n"
                       "  output %y\n"
                       "}\n";
    pq_graph *g = parse_graph(text);
    pq_error err;
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    enum pq_dtype dts[] = {PQ_DTYPE_F32, PQ_DTYPE_I32, PQ_DTYPE_F32, PQ_DTYPE_I64};
    for (int k = 0; k < 4; k++) {
        pq_tensor *x = pq_tensor_create(dts[k], 2, (int64_t[]){2, 3}, NULL);
        for (int i = 0; i < 6; i++) {
            if (dts[k] == PQ_DTYPE_F32) ((float *)x->data)[i] = (float)(i - 3) * 1.5f;
            if (dts[k] == PQ_DTYPE_I32) ((int32_t *)x->data)[i] = (i - 3) * 7;
            if (dts[k] == PQ_DTYPE_I64) ((int64_t *)x->data)[i] = (i - 3) * 5;
        }
        const pq_tensor *ins[1] = {x};
        pq_tensor *y = NULL;
        cr_assert_eq(pq_session_run(s, ins, 1, &y, 1, &err), PQ_OK, "run %d: %s", k, err.msg);
        cr_assert_eq(y->dtype, dts[k], "run %d: %s", k, pq_dtype_name(y->dtype));
        for (int i = 0; i < 6; i++) {
            if (dts[k] == PQ_DTYPE_F32)
                cr_assert_eq(((float *)y->data)[i], fabsf((float)(i - 3) * 1.5f));
            if (dts[k] == PQ_DTYPE_I32) cr_assert_eq(((int32_t *)y->data)[i], abs(i - 3) * 7);
            if (dts[k] == PQ_DTYPE_I64) cr_assert_eq(((int64_t *)y->data)[i], abs(i - 3) * 5);
        }
        pq_tensor_destroy(y);
        pq_tensor_destroy(x);
    }
    pq_session_destroy(s);
    pq_graph_destroy(g);
}
