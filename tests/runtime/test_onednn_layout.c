/* Blocked activations kept between oneDNN convolutions (backends/onednn/onednn_conv.c,
 * onednn_layout.c, pq_onednn_run_begin in runtime/exec.c): a Conv, GlobalAveragePool, per-channel
 * Mul, same-shape Add or MaxPool reading a Conv's (or such a node's) output takes its blocked copy
 * instead of reordering, and a producer whose readers all did stops writing its plain output from
 * the second run on (channel counts that leave padding lanes in nChw16c, squeeze-excite, residual
 * Add with a fused Relu, 3x3 convolutions in oneDNN's own layout choice). The results must be
 * bit-identical to the first run (which reorders everything) and to a session with an observer
 * (which must see every plain activation, so nothing is elided), and match the reference kernels.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/fast.h"
#include "backends/onednn/onednn.h"
#include "runtime/runtime.h"

#define TOL 1e-4

static pq_tensor *rand_tensor(int rank, const int64_t *dims, uint32_t seed) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    cr_assert_not_null(t);
    float *d = t->data;
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        d[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return t;
}

static uint32_t add_const(pq_graph *g, const char *name, int rank, const int64_t *dims,
                          uint32_t seed) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_F32, NULL, &v, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, v, rand_tensor(rank, dims, seed), &err), PQ_OK);
    return v;
}

static uint32_t add_value(pq_graph *g, const char *name) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_UNDEFINED, NULL, &v, &err), PQ_OK);
    return v;
}

static uint32_t conv(pq_graph *g, const char *name, uint32_t x, uint32_t w, uint32_t b, int64_t k,
                     int64_t group, const char *act, uint32_t y) {
    pq_error err;
    uint32_t in[3] = {x, w, b}, id;
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_CONV, name, in, b == PQ_NONE ? 2 : 3, &y, 1, &id, &err),
                 PQ_OK);
    const int64_t p = (k - 1) / 2, pads[4] = {p, p, p, p};
    cr_assert_eq(pq_node_set_ints(g, id, "pads", pads, 4, &err), PQ_OK);
    if (group > 1) cr_assert_eq(pq_node_set_int(g, id, "group", group, &err), PQ_OK);
    if (act) cr_assert_eq(pq_node_set_string(g, id, "activation", act, &err), PQ_OK);
    return id;
}

/* x [N,16,14,14] -> c1 1x1 16->40 Relu -> a (read only by the MaxPool: elided from run 2 on)
 *   -> MaxPool 3x3 pad 1 -> ap -> c2 depthwise 3x3 HardSwish -> b (40 channels: padding lanes)
 *   squeeze-excite: g1 = GlobalAveragePool(b) (an output too), s = cse 1x1 40->40 HardSigmoid,
 *   m = Mul(s, b) -> c3 1x1 40->24 -> c -> c4 1x1 24->24 -> d; y = Add(c, d) Relu -> c6 -> f;
 *   c -> c5 1x1 24->48 -> e -> c7 3x3 48->48 -> h -> c8 3x3 -> k; z = Add(h, k).
 * Outputs: f, g1, z. */
static pq_graph *build(void) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    pq_shape s = pq_shape_unknown();
    s.rank = 4;
    s.dims[0] = (pq_dim){-1, pq_graph_intern_symbol(g, "N")};
    s.dims[1] = pq_dim_of(16);
    s.dims[2] = pq_dim_of(14);
    s.dims[3] = pq_dim_of(14);
    uint32_t x;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &s, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    const int64_t w1d[4] = {40, 16, 1, 1}, b1d[1] = {40}, w2d[4] = {40, 1, 3, 3};
    const int64_t wsd[4] = {40, 40, 1, 1}, w3d[4] = {24, 40, 1, 1}, w4d[4] = {24, 24, 1, 1};
    const int64_t w5d[4] = {48, 24, 1, 1}, w7d[4] = {48, 48, 3, 3};
    uint32_t w1 = add_const(g, "w1", 4, w1d, 1), b1 = add_const(g, "b1", 1, b1d, 2);
    uint32_t w2 = add_const(g, "w2", 4, w2d, 3), ws = add_const(g, "ws", 4, wsd, 4);
    uint32_t w3 = add_const(g, "w3", 4, w3d, 5), w4 = add_const(g, "w4", 4, w4d, 6);
    uint32_t w6 = add_const(g, "w6", 4, w4d, 7), w5 = add_const(g, "w5", 4, w5d, 8);
    uint32_t w7 = add_const(g, "w7", 4, w7d, 9), w8 = add_const(g, "w8", 4, w7d, 10);
    const char *names[] = {"a", "b", "g1", "s", "m", "c", "d", "y", "f", "e", "h", "k", "z", "ap"};
    uint32_t v[14];
    for (int i = 0; i < 14; i++)
        v[i] = add_value(g, names[i]);
    uint32_t a = v[0], b = v[1], g1 = v[2], sc = v[3], m = v[4], c = v[5], d = v[6], y = v[7];
    uint32_t f = v[8], e = v[9], h = v[10], k = v[11], z = v[12];
    uint32_t id, ap = v[13];
    conv(g, "c1", x, w1, b1, 1, 1, "Relu", a);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_MAX_POOL, "pool", &a, 1, &ap, 1, &id, &err), PQ_OK);
    const int64_t k3[2] = {3, 3}, p1[4] = {1, 1, 1, 1};
    cr_assert_eq(pq_node_set_ints(g, id, "kernel_shape", k3, 2, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(g, id, "pads", p1, 4, &err), PQ_OK);
    conv(g, "c2", ap, w2, PQ_NONE, 3, 40, "HardSwish", b);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_GLOBAL_AVERAGE_POOL, "gap", &b, 1, &g1, 1, &id, &err),
                 PQ_OK);
    conv(g, "cse", g1, ws, b1, 1, 1, "HardSigmoid", sc);
    uint32_t in_mul[2] = {sc, b};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_MUL, "mul", in_mul, 2, &m, 1, &id, &err), PQ_OK);
    conv(g, "c3", m, w3, PQ_NONE, 1, 1, NULL, c);
    conv(g, "c4", c, w4, PQ_NONE, 1, 1, NULL, d);
    uint32_t in_add[2] = {c, d};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_ADD, "add", in_add, 2, &y, 1, &id, &err), PQ_OK);
    cr_assert_eq(pq_node_set_string(g, id, "activation", "Relu", &err), PQ_OK);
    conv(g, "c6", y, w6, PQ_NONE, 1, 1, NULL, f);
    conv(g, "c5", c, w5, PQ_NONE, 1, 1, NULL, e);
    conv(g, "c7", e, w7, PQ_NONE, 3, 1, NULL, h);
    conv(g, "c8", h, w8, PQ_NONE, 3, 1, NULL, k);
    uint32_t in_add2[2] = {h, k};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_ADD, "add2", in_add2, 2, &z, 1, &id, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, f, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, g1, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(g, z, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* Channels and spatial size of the values of build(). */
static void value_dims(const char *name, int64_t *ch, int64_t *sp) {
    static const char *names[] = {"a", "b", "g1", "s",  "m",  "c",  "d",  "y",  "f",  "e", "h",
                                  "k", "z", "ap", "sb", "sg", "ss", "sm", "sc", "sz", "sd"};
    static const int64_t chs[] = {40, 40, 40, 40, 40, 24, 24, 24, 24, 48, 48,
                                  48, 48, 40, 40, 40, 40, 40, 40, 40, 40};
    for (int i = 0; i < 21; i++)
        if (!strcmp(name, names[i])) {
            *ch = chs[i];
            *sp = !strcmp(name, "g1") || !strcmp(name, "s") || !strcmp(name, "sg") ||
                          !strcmp(name, "ss")
                      ? 1
                      : 14;
            return;
        }
    cr_assert_fail("unknown value %s", name);
}

/* Runs s on x; returns the three outputs. */
static void run(pq_session *s, const pq_tensor *x, pq_tensor **out, const char *what) {
    const pq_tensor *ins[1] = {x};
    pq_error err;
    cr_assert_eq(pq_session_run(s, ins, 1, out, 3, &err), PQ_OK, "%s: %s", what, err.msg);
}

static void same(pq_tensor *const *a, pq_tensor *const *b, const char *what) {
    for (int o = 0; o < 3; o++) {
        cr_assert_eq(a[o]->nbytes, b[o]->nbytes, "%s: output %d size", what, o);
        cr_assert(!memcmp(a[o]->data, b[o]->data, a[o]->nbytes), "%s: output %d differs", what, o);
    }
}

static void free3(pq_tensor **t) {
    for (int o = 0; o < 3; o++)
        pq_tensor_destroy(t[o]);
}

/* Observer: checks that the plain input of every node is there (finite, as the weights and
 * inputs are), i.e. nothing was elided in an observed run. */
static enum pq_status observe(void *ctx, const pq_graph *g, uint32_t node,
                              const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)g, (void)node, (void)err;
    int *seen = ctx;
    for (uint32_t i = 0; i < n_in; i++) {
        if (!in[i] || in[i]->dtype != PQ_DTYPE_F32) continue;
        const float *d = in[i]->data;
        for (int64_t k = 0; k < pq_tensor_numel(in[i]); k++)
            cr_assert(isfinite(d[k]), "observed input %u of node %u not finite at %lld", i, node,
                      (long long)k);
        (*seen)++;
    }
    return PQ_OK;
}

/* Every node of g with its reference kernel (nodes are in topological order after prepare);
 * out receives the graph outputs. */
static void reference(pq_graph *g, const pq_tensor *x, pq_tensor **out) {
    pq_tensor **val = calloc(g->n_values, sizeof *val);
    cr_assert_not_null(val);
    int64_t n = x->dims[0];
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        const pq_tensor *in[3] = {NULL, NULL, NULL};
        for (uint32_t k = 0; k < nd->n_inputs; k++) {
            uint32_t v = nd->inputs[k];
            in[k] = g->values[v].constant ? g->values[v].constant : v == g->inputs[0] ? x : val[v];
            cr_assert_not_null(in[k]);
        }
        uint32_t yv = nd->outputs[0];
        int64_t ch = 0, sp = 0;
        value_dims(g->values[yv].name, &ch, &sp);
        const int64_t dims[4] = {n, ch, sp, sp};
        pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 4, dims, NULL);
        pq_tensor *outs[1] = {t};
        pq_error err;
        pq_error_clear(&err);
        pq_kernel_args a = {g, nd, in, nd->n_inputs, outs, 1, NULL, 1, &err};
        cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s", err.msg);
        val[yv] = t;
    }
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        out[o] = val[g->outputs[o]];
        val[g->outputs[o]] = NULL;
    }
    for (uint32_t v = 0; v < g->n_values; v++)
        pq_tensor_destroy(val[v]);
    free(val);
}

static void layout_case(int64_t n, int threads) {
    cr_assert(pq_onednn_available());
    pq_graph *g = build();
    const int64_t xd[4] = {n, 16, 14, 14};
    pq_tensor *x = rand_tensor(4, xd, 7);
    pq_session *s = NULL, *so = NULL, *sr = NULL;
    pq_error err;
    pq_session_opts o = {.n_threads = threads};
    cr_assert_eq(pq_session_create(g, &o, &s, &err), PQ_OK);
    int seen = 0;
    pq_session_opts oo = {.n_threads = threads, .observe = observe, .observe_ctx = &seen};
    cr_assert_eq(pq_session_create(g, &oo, &so, &err), PQ_OK);
    pq_tensor *first[3], *later[3], *obs[3], *ref[3];
    (void)sr;
    unsigned long r0, e0, r1, e1, r2, e2;
    pq_onednn_layout_stats(&r0, &e0);
    run(s, x, first, "first run");
    pq_onednn_layout_stats(&r1, &e1);
    cr_assert_eq(e1, e0, "the first run elided %lu plain outputs", e1 - e0);
    if (!getenv("PIQC_ONEDNN_LAYOUT"))
        cr_assert_geq(r1 - r0, 6,
                      "first run: c2, gap, mul, c3, c4, add, ... take kept copies (%lu)", r1 - r0);
    for (int k = 0; k < 3; k++) {
        run(s, x, later, "later run");
        same(first, later, "later run vs first run");
        free3(later);
    }
    pq_onednn_layout_stats(&r2, &e2);
    if (!getenv("PIQC_ONEDNN_LAYOUT"))
        cr_assert_geq(e2 - e1, 3, "runs 2-4 elided %lu plain outputs (c1's each run)", e2 - e1);
    unsigned long e3;
    run(so, x, obs, "observed run");
    run(so, x, later, "observed run 2");
    pq_onednn_layout_stats(NULL, &e3);
    cr_assert_eq(e3, e2, "an observed session elided %lu plain outputs", e3 - e2);
    cr_assert_gt(seen, 0);
    same(first, obs, "observed vs plain session");
    same(first, later, "observed run 2 vs plain session");
    free3(later);
    /* the reference kernels, node by node */
    reference(g, x, ref);
    /* a chain of up to 8 f32 convolutions (432-term sums) against the reference's order: the
     * bound is relative to the output's largest magnitude */
    for (int k = 0; k < 3; k++) {
        const float *gv = first[k]->data, *w = ref[k]->data;
        cr_assert_eq(pq_tensor_numel(first[k]), pq_tensor_numel(ref[k]));
        double mx = 0.0, worst = 0.0;
        for (int64_t i = 0; i < pq_tensor_numel(ref[k]); i++)
            mx = fmax(mx, fabs(w[i]));
        for (int64_t i = 0; i < pq_tensor_numel(ref[k]); i++)
            worst = fmax(worst, fabs((double)gv[i] - w[i]));
        cr_log_info("output %d: max |diff| %.3g of max |ref| %.3g", k, worst, mx);
        cr_assert(worst <= TOL * mx, "output %d: max |diff| %.3g > %g * max |ref| %.3g", k, worst,
                  TOL, mx);
    }
    free3(ref);
    free3(obs);
    pq_session_destroy(s);
    pq_session_destroy(so);
    free3(first);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
}

Test(onednn_layout, batch1_one_thread) {
    layout_case(1, 1);
}
Test(onednn_layout, batch3_two_threads) {
    layout_case(3, 2);
}

/* Squeeze-excite whose input is read again after the Mul: x -> c1 1x1 16->40 -> sb;
 * sg = GlobalAveragePool(sb), ss = cse 1x1 HardSigmoid; sm = Mul(sb, ss) -> c3 1x1 40->40 -> sc;
 * sd = Add(sc, sb) (which runs after the Mul and takes sb's kept copy) -> c4 1x1 40->40 -> sz.
 * The Mul is not the last reader of sb's kept copy: it must leave it intact (the Add would add
 * the product). Output: sz. */
static pq_graph *build_se_reread(void) {
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    pq_shape s = pq_shape_unknown();
    s.rank = 4;
    s.dims[0] = (pq_dim){-1, pq_graph_intern_symbol(g, "N")};
    s.dims[1] = pq_dim_of(16);
    s.dims[2] = pq_dim_of(14);
    s.dims[3] = pq_dim_of(14);
    uint32_t x, id;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &s, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    const int64_t w1d[4] = {40, 16, 1, 1}, b1d[1] = {40}, wsd[4] = {40, 40, 1, 1};
    uint32_t w1 = add_const(g, "w1", 4, w1d, 11), b1 = add_const(g, "b1", 1, b1d, 12);
    uint32_t ws = add_const(g, "ws", 4, wsd, 13), w3 = add_const(g, "w3", 4, wsd, 14);
    uint32_t sb = add_value(g, "sb"), sg = add_value(g, "sg"), ss = add_value(g, "ss");
    uint32_t sm = add_value(g, "sm"), sc = add_value(g, "sc"), sz = add_value(g, "sz");
    uint32_t sd = add_value(g, "sd"), w4 = add_const(g, "w4", 4, wsd, 15);
    conv(g, "c1", x, w1, b1, 1, 1, NULL, sb);
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_GLOBAL_AVERAGE_POOL, "gap", &sb, 1, &sg, 1, &id, &err),
                 PQ_OK);
    conv(g, "cse", sg, ws, b1, 1, 1, "HardSigmoid", ss);
    uint32_t in_mul[2] = {sb, ss};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_MUL, "mul", in_mul, 2, &sm, 1, &id, &err), PQ_OK);
    conv(g, "c3", sm, w3, PQ_NONE, 1, 1, NULL, sc);
    uint32_t in_add[2] = {sc, sb};
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_ADD, "add", in_add, 2, &sd, 1, &id, &err), PQ_OK);
    conv(g, "c4", sd, w4, PQ_NONE, 1, 1, NULL, sz);
    cr_assert_eq(pq_graph_add_output(g, sz, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

Test(onednn_layout, se_input_read_after_mul) {
    cr_assert(pq_onednn_available());
    for (int threads = 1; threads <= 2; threads++) {
        pq_graph *g = build_se_reread();
        const int64_t xd[4] = {threads, 16, 14, 14};
        pq_tensor *x = rand_tensor(4, xd, 17);
        pq_session *s = NULL;
        pq_error err;
        pq_session_opts o = {.n_threads = threads};
        cr_assert_eq(pq_session_create(g, &o, &s, &err), PQ_OK);
        pq_tensor *ref[1];
        reference(g, x, ref);
        const float *w = ref[0]->data;
        double mx = 0.0;
        for (int64_t i = 0; i < pq_tensor_numel(ref[0]); i++)
            mx = fmax(mx, fabs(w[i]));
        for (int run = 0; run < 3; run++) { /* kept copies and elision from run 2 on */
            const pq_tensor *ins[1] = {x};
            pq_tensor *out[1];
            cr_assert_eq(pq_session_run(s, ins, 1, out, 1, &err), PQ_OK, "%s", err.msg);
            cr_assert_eq(pq_tensor_numel(out[0]), pq_tensor_numel(ref[0]));
            const float *gv = out[0]->data;
            double worst = 0.0;
            for (int64_t i = 0; i < pq_tensor_numel(ref[0]); i++)
                worst = fmax(worst, fabs((double)gv[i] - w[i]));
            cr_assert(worst <= TOL * mx, "%d threads, run %d: max |diff| %.3g > %g * %.3g", threads,
                      run, worst, TOL, mx);
            pq_tensor_destroy(out[0]);
        }
        pq_tensor_destroy(ref[0]);
        pq_session_destroy(s);
        pq_tensor_destroy(x);
        pq_graph_destroy(g);
    }
}

/* Runs every node of g in order with kernel fn (pq_kernel_run or pq_ref_run) on x; val[] holds
 * the tensors of the node outputs (allocated [1, 32, 14, 14] on first use). */
static void run_nodes(pq_graph *g, uint32_t x, const pq_tensor *xt, pq_tensor **val,
                      enum pq_status (*fn)(const pq_kernel_args *)) {
    const int64_t d[4] = {1, 32, 14, 14};
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        const pq_tensor *in[3];
        for (uint32_t k = 0; k < nd->n_inputs; k++) {
            uint32_t v = nd->inputs[k];
            in[k] = g->values[v].constant ? g->values[v].constant : v == x ? xt : val[v];
        }
        uint32_t y = nd->outputs[0];
        if (!val[y]) val[y] = pq_tensor_create(PQ_DTYPE_F32, 4, d, NULL);
        pq_tensor *outs[1] = {val[y]};
        pq_error err;
        pq_error_clear(&err);
        pq_kernel_args a = {g, nd, in, nd->n_inputs, outs, 1, NULL, 1, &err};
        cr_assert_eq(fn(&a), PQ_OK, "%s", err.msg);
    }
}

/* A chain of 12 1x1 convolutions 32 -> 32 (Relu), each output read only by the next one: a kept
 * copy's entry is free again once its reader took it, so the pool holds a few buffers of one
 * output each, not one per value (EfficientNet-B0: 9 MB of buffers reused while in cache instead
 * of 26 MB touched once per run). Kernels run node by node on a bound cache with plain tensors
 * elided as in a session; the output matches the reference kernels every run. */
Test(onednn_layout, chain_reuses_buffers) {
    cr_assert(pq_onednn_available());
    pq_error err;
    pq_graph *g = pq_graph_create(NULL, &err);
    pq_shape s = pq_shape_unknown();
    s.rank = 4;
    const int64_t xd[4] = {1, 32, 14, 14}, wd[4] = {32, 32, 1, 1}, bd[1] = {32};
    for (int k = 0; k < 4; k++)
        s.dims[k] = pq_dim_of(xd[k]);
    uint32_t x;
    cr_assert_eq(pq_graph_add_value(g, "x", PQ_DTYPE_F32, &s, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(g, x, &err), PQ_OK);
    uint32_t prev = x;
    for (int l = 0; l < 12; l++) {
        char nm[3][16];
        snprintf(nm[0], sizeof nm[0], "v%d", l);
        snprintf(nm[1], sizeof nm[1], "w%d", l);
        snprintf(nm[2], sizeof nm[2], "b%d", l);
        uint32_t y = add_value(g, nm[0]);
        uint32_t w = add_const(g, nm[1], 4, wd, 30 + (uint32_t)l);
        uint32_t b = add_const(g, nm[2], 1, bd, 50 + (uint32_t)l);
        conv(g, nm[0], prev, w, b, 1, 1, "Relu", y);
        prev = y;
    }
    cr_assert_eq(pq_graph_add_output(g, prev, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    pq_tensor *xt = rand_tensor(4, xd, 21);
    pq_tensor **val = calloc(g->n_values, sizeof *val), **rv = calloc(g->n_values, sizeof *rv);
    cr_assert(val && rv);
    run_nodes(g, x, xt, rv, pq_ref_run);
    const float *w = rv[prev]->data;
    double mx = 0.0;
    for (int64_t i = 0; i < pq_tensor_numel(rv[prev]); i++)
        mx = fmax(mx, fabs(w[i]));
    pq_onednn_cache *c = pq_onednn_cache_create();
    pq_onednn_cache *before = pq_onednn_cache_bind(c);
    size_t one = (size_t)pq_tensor_numel(rv[prev]) * sizeof(float);
    for (int run = 0; run < 3; run++) {
        pq_onednn_run_begin(true);
        run_nodes(g, x, xt, val, pq_kernel_run);
        size_t bytes = pq_onednn_cache_blocked_bytes(c);
        cr_log_info("run %d: %zu bytes of kept copies (one output: %zu)", run, bytes, one);
        cr_assert_leq(bytes, 3 * one, "run %d: %zu bytes of kept copies for 12 outputs of %zu", run,
                      bytes, one);
        const float *gv = val[prev]->data;
        double worst = 0.0;
        for (int64_t i = 0; i < pq_tensor_numel(rv[prev]); i++)
            worst = fmax(worst, fabs((double)gv[i] - w[i]));
        cr_assert(worst <= TOL * mx, "run %d: max |diff| %.3g > %g * max |ref| %.3g", run, worst,
                  TOL, mx);
    }
    pq_onednn_cache_bind(before);
    pq_onednn_cache_destroy(c);
    for (uint32_t v = 0; v < g->n_values; v++) {
        pq_tensor_destroy(val[v]);
        pq_tensor_destroy(rv[v]);
    }
    free(val);
    free(rv);
    pq_tensor_destroy(xt);
    pq_graph_destroy(g);
}
