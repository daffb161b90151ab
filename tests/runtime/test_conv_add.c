/* ConvAdd (fuse-residual) in sessions on oneDNN: residual blocks whose addend comes as a kept
 * blocked copy that is copied (more readers follow), reordered (another layout), taken over (last
 * reader, with and without a kept output), equal to the convolution's own source, or a plain graph
 * input; with Relu after the
 * sum, channel counts with padding lanes, 1x1 and 3x3 convolutions. The fused graph must match the
 * unfused one within 1e-5 * max|y| on oneDNN, be bit-identical from run to run and under an
 * observer, and be bit-identical to the unfused graph on the reference kernels. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "passes/pass.h"
#include "runtime/runtime.h"

#define N_OUT 4

static pq_tensor *rnd(int rank, const int64_t *dims, uint32_t seed, float scale) {
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, rank, dims, NULL);
    cr_assert_not_null(t);
    float *d = t->data;
    uint32_t s = seed * 2654435761u + 7;
    for (int64_t i = 0; i < pq_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        d[i] = ((float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f) * scale;
    }
    return t;
}

typedef struct bld {
    pq_graph *g;
    uint32_t seed;
} bld;

static uint32_t val(bld *b, const char *name) {
    pq_error err;
    uint32_t v;
    cr_assert_eq(pq_graph_add_value(b->g, name, PQ_DTYPE_UNDEFINED, NULL, &v, &err), PQ_OK);
    return v;
}

/* y = Conv(x) k x k (pad (k-1)/2), c -> m channels, bias, optional fused activation. */
static uint32_t conv(bld *b, const char *name, uint32_t x, int64_t c, int64_t m, int64_t k,
                     const char *act) {
    pq_error err;
    const int64_t wd[4] = {m, c, k, k}, bd[1] = {m};
    char nm[64];
    uint32_t w, bias;
    snprintf(nm, sizeof nm, "%s_w", name);
    cr_assert_eq(pq_graph_add_value(b->g, nm, PQ_DTYPE_F32, NULL, &w, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(
                     b->g, w, rnd(4, wd, ++b->seed, 1.0f / sqrtf((float)(c * k * k))), &err),
                 PQ_OK);
    snprintf(nm, sizeof nm, "%s_b", name);
    cr_assert_eq(pq_graph_add_value(b->g, nm, PQ_DTYPE_F32, NULL, &bias, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(b->g, bias, rnd(1, bd, ++b->seed, 0.5f), &err), PQ_OK);
    uint32_t in[3] = {x, w, bias}, y = val(b, name), id;
    cr_assert_eq(pq_graph_add_node(b->g, PQ_OP_CONV, name, in, 3, &y, 1, &id, &err), PQ_OK);
    const int64_t p = (k - 1) / 2, pads[4] = {p, p, p, p}, ks[2] = {k, k};
    cr_assert_eq(pq_node_set_ints(b->g, id, "pads", pads, 4, &err), PQ_OK);
    cr_assert_eq(pq_node_set_ints(b->g, id, "kernel_shape", ks, 2, &err), PQ_OK);
    if (act) cr_assert_eq(pq_node_set_string(b->g, id, "activation", act, &err), PQ_OK);
    return y;
}

/* y = Add(a, c), then a Relu node when relu. */
static uint32_t add(bld *b, const char *name, uint32_t a, uint32_t c, bool relu) {
    pq_error err;
    uint32_t in[2] = {a, c}, y = val(b, name), id;
    cr_assert_eq(pq_graph_add_node(b->g, PQ_OP_ADD, name, in, 2, &y, 1, &id, &err), PQ_OK);
    if (!relu) return y;
    char nm[64];
    snprintf(nm, sizeof nm, "%s_relu", name);
    uint32_t r = val(b, nm);
    cr_assert_eq(pq_graph_add_node(b->g, PQ_OP_RELU, nm, &y, 1, &r, 1, &id, &err), PQ_OK);
    return r;
}

/* x [n,16,14,14], s [n,24,14,14]:
 *   a = Conv1x1(x) 16->32 Relu; p = Conv3x3(a) Relu; q = Conv3x3(p); y1 = Relu(q + a)
 *     (q's layout is oneDNN's choice for 3x3, a's is blocked: the copy is reordered)
 *   m = Conv1x1(p) 32->32; y0 = m + a (same layout; a is read again by y6: the copy is copied)
 *   r = Conv1x1(y1) 32->24; t = Conv1x1(r); y2 = t + r (the addend is the conv's own source)
 *   u = Conv1x1(y2); y3 = s + u (a plain graph input)
 *   v = Conv3x3(y3); y4 = Relu(v + y2) (y2's last reader, y4 kept for w: buffer swapped)
 *   w = Conv1x1(y4); y5 = w + y3 (y3's last reader, y5 only an output: its buffer is the dst)
 *   o = Conv1x1(y0) 32->32; y6 = o + a (a's last reader).  Outputs y5, y6, y2, y0. */
static pq_graph *build(int64_t n) {
    pq_error err;
    bld b = {pq_graph_create(NULL, &err), 100};
    int64_t xd[4] = {n, 16, 14, 14}, sd[4] = {n, 24, 14, 14};
    pq_shape xs = pq_shape_from_dims(4, xd), ss = pq_shape_from_dims(4, sd);
    uint32_t x, s;
    cr_assert_eq(pq_graph_add_value(b.g, "x", PQ_DTYPE_F32, &xs, &x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(b.g, x, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_value(b.g, "s", PQ_DTYPE_F32, &ss, &s, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_input(b.g, s, &err), PQ_OK);
    uint32_t a = conv(&b, "a", x, 16, 32, 1, "Relu");
    uint32_t p = conv(&b, "p", a, 32, 32, 3, "Relu");
    uint32_t q = conv(&b, "q", p, 32, 32, 3, NULL);
    uint32_t y1 = add(&b, "y1", q, a, true);
    uint32_t m = conv(&b, "m", p, 32, 32, 1, NULL);
    uint32_t y0 = add(&b, "y0", m, a, false);
    uint32_t r = conv(&b, "r", y1, 32, 24, 1, NULL);
    uint32_t t = conv(&b, "t", r, 24, 24, 1, NULL);
    uint32_t y2 = add(&b, "y2", t, r, false);
    uint32_t u = conv(&b, "u", y2, 24, 24, 1, NULL);
    uint32_t y3 = add(&b, "y3", s, u, false);
    uint32_t v = conv(&b, "v", y3, 24, 24, 3, NULL);
    uint32_t y4 = add(&b, "y4", v, y2, true);
    uint32_t w = conv(&b, "w", y4, 24, 24, 1, NULL);
    uint32_t y5 = add(&b, "y5", w, y3, false);
    uint32_t o = conv(&b, "o", y0, 32, 32, 1, NULL);
    uint32_t y6 = add(&b, "y6", o, a, false);
    cr_assert_eq(pq_graph_add_output(b.g, y5, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(b.g, y6, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(b.g, y2, &err), PQ_OK);
    cr_assert_eq(pq_graph_add_output(b.g, y0, &err), PQ_OK);
    cr_assert_eq(pq_runtime_prepare(b.g, &err), PQ_OK, "%s", err.msg);
    return b.g;
}

static void run_pass(pq_graph *g, const char *name) {
    const pq_pass *p = pq_pass_find(name);
    cr_assert_not_null(p);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(p->run(g, NULL, &ctx, &err), PQ_OK, "%s: %s", name, err.msg);
    pq_pass_ctx_free(&ctx);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
}

static uint32_t count(const pq_graph *g, enum pq_op op) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        k += g->nodes[i].op == op;
    return k;
}

static void run(pq_session *s, pq_tensor *const *in, pq_tensor **out, const char *what) {
    pq_error err;
    cr_assert_eq(pq_session_run(s, (const pq_tensor *const *)in, 2, out, N_OUT, &err), PQ_OK,
                 "%s: %s", what, err.msg);
}

static void free_out(pq_tensor **t) {
    for (int o = 0; o < N_OUT; o++)
        pq_tensor_destroy(t[o]);
}

static void same(pq_tensor *const *a, pq_tensor *const *b, const char *what) {
    for (int o = 0; o < N_OUT; o++) {
        cr_assert_eq(a[o]->nbytes, b[o]->nbytes, "%s: output %d size", what, o);
        cr_assert(!memcmp(a[o]->data, b[o]->data, a[o]->nbytes), "%s: output %d differs", what, o);
    }
}

static void close_to(pq_tensor *const *a, pq_tensor *const *b, const char *what) {
    for (int o = 0; o < N_OUT; o++) {
        const float *x = a[o]->data, *y = b[o]->data;
        double mx = 0, worst = 0;
        for (int64_t i = 0; i < pq_tensor_numel(b[o]); i++) {
            mx = fmax(mx, fabs(y[i]));
            worst = fmax(worst, fabs((double)x[i] - y[i]));
        }
        cr_assert(worst <= 1e-5 * fmax(1.0, mx), "%s: output %d: max |diff| %g, max |y| %g", what,
                  o, worst, mx);
    }
}

static enum pq_status observe(void *ctx, const pq_graph *g, uint32_t node,
                              const pq_tensor *const *in, uint32_t n_in, pq_error *err) {
    (void)ctx, (void)g, (void)node, (void)in, (void)n_in, (void)err;
    return PQ_OK;
}

/* The outputs of g in a fresh session (n_runs runs, all bit-identical). */
static void outputs(pq_graph *g, pq_tensor *const *in, int threads, int n_runs, bool observed,
                    pq_tensor **out, const char *what) {
    pq_error err;
    pq_session *s = NULL;
    pq_session_opts o = {.n_threads = threads};
    if (observed) o.observe = observe;
    cr_assert_eq(pq_session_create(g, &o, &s, &err), PQ_OK, "%s", err.msg);
    run(s, in, out, what);
    for (int k = 1; k < n_runs; k++) {
        pq_tensor *again[N_OUT];
        run(s, in, again, what);
        same(out, again, what);
        free_out(again);
    }
    pq_session_destroy(s);
}

static void conv_add_case(int64_t n, int threads) {
    cr_assert(pq_onednn_available());
    pq_graph *off = build(n), *on = build(n);
    run_pass(on, "fuse-activations");
    run_pass(on, "fuse-residual");
    cr_assert_eq(count(on, PQ_OP_CONV_ADD), 7u, "every residual Add merged");
    cr_assert_eq(count(on, PQ_OP_ADD), 0u);
    cr_assert_eq(count(on, PQ_OP_RELU), 0u);
    const int64_t xd[4] = {n, 16, 14, 14}, sd[4] = {n, 24, 14, 14};
    pq_tensor *in[2] = {rnd(4, xd, 1, 1.0f), rnd(4, sd, 2, 1.0f)};
    pq_tensor *want[N_OUT], *got[N_OUT], *obs[N_OUT], *ref_off[N_OUT], *ref_on[N_OUT];
    pq_onednn_set_min_macs(0); /* every convolution on oneDNN */
    outputs(off, in, threads, 2, false, want, "unfused");
    outputs(on, in, threads, 4, false, got, "fused");
    outputs(on, in, threads, 2, true, obs, "fused, observed");
    same(got, obs, "observed vs not");
    close_to(got, want, "fused vs unfused on oneDNN");
    pq_onednn_set_min_macs(INT64_MAX); /* every convolution on the reference kernels */
    outputs(off, in, threads, 1, false, ref_off, "unfused, reference");
    outputs(on, in, threads, 1, false, ref_on, "fused, reference");
    same(ref_on, ref_off, "fused vs unfused on the reference kernels");
    close_to(got, ref_off, "oneDNN vs reference");
    pq_onednn_set_min_macs(PQ_ONEDNN_MIN_MACS);
    free_out(want);
    free_out(got);
    free_out(obs);
    free_out(ref_off);
    free_out(ref_on);
    pq_tensor_destroy(in[0]);
    pq_tensor_destroy(in[1]);
    pq_graph_destroy(off);
    pq_graph_destroy(on);
}

Test(conv_add, batch1_one_thread) {
    conv_add_case(1, 1);
}
Test(conv_add, batch2_two_threads) {
    conv_add_case(2, 2);
}
