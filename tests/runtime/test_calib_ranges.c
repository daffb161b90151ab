/* Tests of pq_calib_ranges: minmax equals the exact min/max and percentile the exact nearest-rank
 * values (or lies within the documented histogram bound) of every element each value takes over
 * the set, captured here independently in one unchunked run; chunking, shared values, graph
 * outputs, constants, and errors naming the value. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "runtime/calib_ranges.h"

static pq_error err;

/* x [N, 6] -> Mul by s -> a; a -> Relu -> r (read by MatMul and Add); r @ w -> y (graph output
 * only); Add(r, r) -> z (graph output). */
static const char *k_text = "piqc 1\ngraph t {\n"
                            "  input %x: f32[N, 6]\n"
                            "  const %s: f32[6] = [1.5, -2, 0.25, 3, -1, 0.5]\n"
                            "  const %w: f32[6, 3] = [0.5, -1, 2, 1, 0.25, -0.5, -2, 1.5, 0.75, "
                            "0.125, -0.25, 1, 3, -3, 0.5, -1.5, 2.5, -0.75]\n"
                            "  %a = Mul(%x, %s)  # scale\n"
                            "  %r = Relu(%a)  # relu\n"
                            "  %y = MatMul(%r, %w)  # mm\n"
                            "  %z = Add(%r, %r)  # twice\n"
                            "  output %y\n"
                            "  output %z\n}\n";

static pq_graph *build(const char *text) {
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* [n, 6] inputs: heavy-tailed values (a few large outliers), about 1 in 9 exactly 0. */
static pq_tensor *calib_input(int64_t n, int64_t f, uint32_t seed) {
    int64_t dims[2] = {n, f};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 2, dims, NULL);
    cr_assert(t);
    float *d = t->data;
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (int64_t i = 0; i < n * f; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int r = (int)((s >> 33) % 100000);
        double u = (double)(r - 50000) / 50000.0;
        d[i] = r % 9 == 0 ? 0.0f : (float)(u * u * u * 40.0 + u);
    }
    return t;
}

/* Every element of some values, captured in one run over the whole set (no chunks). */
typedef struct capture {
    const char *names[4];
    uint32_t n;
    float *data[4];
    int64_t count[4], cap[4];
} capture;

static void cap_add(capture *c, uint32_t k, const pq_tensor *t) {
    int64_t n = pq_tensor_numel(t);
    if (c->count[k] + n > c->cap[k]) {
        c->cap[k] = (c->count[k] + n) * 2;
        c->data[k] = realloc(c->data[k], sizeof(float) * (size_t)c->cap[k]);
        cr_assert(c->data[k]);
    }
    memcpy(c->data[k] + c->count[k], t->data, sizeof(float) * (size_t)n);
    c->count[k] += n;
}

/* Captures at the first node reading each value (the values here are all read by some node). */
static enum pq_status cap_observe(void *vctx, const pq_graph *g, uint32_t node,
                                  const pq_tensor *const *in, uint32_t n_in, pq_error *e) {
    (void)e;
    capture *c = vctx;
    for (uint32_t k = 0; k < c->n; k++) {
        uint32_t v = pq_graph_find_value(g, c->names[k]);
        uint32_t first = PQ_NONE;
        for (uint32_t i = 0; i < g->n_nodes && first == PQ_NONE; i++)
            for (uint32_t s = 0; s < g->nodes[i].n_inputs; s++)
                if (g->nodes[i].inputs[s] == v) first = i;
        if (first != node) continue;
        for (uint32_t s = 0; s < n_in; s++)
            if (g->nodes[node].inputs[s] == v) {
                cap_add(c, k, in[s]);
                break;
            }
    }
    return PQ_OK;
}

/* Runs g over x in chunks of 32 samples (as pq_calib_ranges does for a dynamic batch: kernels may
 * round differently for another batch size), capturing the named values; graph outputs of every
 * chunk concatenated in outs (f32 [samples * rest]). */
static void capture_all(pq_graph *g, pq_tensor *x, capture *c, pq_tensor **outs) {
    pq_session_opts o = {.n_threads = 1, .observe = cap_observe, .observe_ctx = c};
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, &o, &s, &err), PQ_OK, "%s", err.msg);
    int64_t n = x->dims[0], f = x->dims[1];
    capture oc = {.n = 2};
    for (int64_t start = 0; start < n; start += 32) {
        int64_t len = n - start < 32 ? n - start : 32;
        pq_tensor view = *x;
        view.owns_data = false;
        view.dims[0] = len;
        view.data = (float *)x->data + start * f;
        view.nbytes = sizeof(float) * (size_t)(len * f);
        const pq_tensor *ins[1] = {&view};
        pq_tensor *o2[2] = {0};
        cr_assert_eq(pq_session_run(s, ins, 1, o2, g->n_outputs, &err), PQ_OK, "%s", err.msg);
        for (uint32_t k = 0; k < g->n_outputs && k < 2; k++) {
            cap_add(&oc, k, o2[k]);
            pq_tensor_destroy(o2[k]);
        }
    }
    for (uint32_t k = 0; k < g->n_outputs && k < 2; k++) {
        outs[k] = pq_tensor_create(PQ_DTYPE_F32, 1, &oc.count[k], NULL);
        cr_assert(outs[k]);
        memcpy(outs[k]->data, oc.data[k], sizeof(float) * (size_t)oc.count[k]);
        free(oc.data[k]);
    }
    pq_session_destroy(s);
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void exact_minmax(const float *d, int64_t n, float *lo, float *hi) {
    *lo = *hi = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || d[i] < *lo) *lo = d[i];
        if (i == 0 || d[i] > *hi) *hi = d[i];
    }
}

/* Nearest-rank percentile values as quant.h defines them: hi = rank ceil(p/100 N), lo = rank
 * max(1, ceil((1 - p/100) N)) in ascending order (1-based). */
static void exact_pct(const float *d, int64_t n, double p, float *lo, float *hi) {
    float *s = malloc(sizeof(float) * (size_t)n);
    cr_assert(s);
    memcpy(s, d, sizeof(float) * (size_t)n);
    qsort(s, (size_t)n, sizeof(float), cmp_f);
    int64_t rh = (int64_t)ceil(p / 100.0 * (double)n),
            rl = (int64_t)ceil((1 - p / 100.0) * (double)n);
    if (rl < 1) rl = 1;
    *hi = s[rh - 1];
    *lo = s[rl - 1];
    free(s);
}

static float max_abs(const float *d, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fabsf(d[i]) > m ? fabsf(d[i]) : m;
    return m;
}

static pq_calib_set set_of(pq_tensor **ins, pq_tensor *x) {
    ins[0] = x;
    return (pq_calib_set){ins, 1, x->dims[0]};
}

/* minmax over 4 chunks (100 samples: 32, 32, 32, 4) equals the exact min and max of the graph
 * input, an intermediate read by two nodes, a graph output no node reads, and a constant. */
Test(calib_ranges, minmax_exact_chunked) {
    pq_graph *g = build(k_text);
    pq_tensor *x = calib_input(100, 6, 1);
    capture c = {.names = {"x", "a", "r"}, .n = 3};
    pq_tensor *outs[2] = {0};
    capture_all(g, x, &c, outs);
    uint32_t vals[6] = {pq_graph_find_value(g, "x"), pq_graph_find_value(g, "a"),
                        pq_graph_find_value(g, "r"), pq_graph_find_value(g, "y"),
                        pq_graph_find_value(g, "s"), pq_graph_find_value(g, "a")};
    float lo[6], hi[6], elo, ehi;
    pq_tensor *ins[1];
    pq_calib_set cs = set_of(ins, x);
    cr_assert_eq(pq_calib_ranges(g, &cs, vals, 6, "minmax", 0, lo, hi, &err), PQ_OK, "%s", err.msg);
    for (uint32_t k = 0; k < 3; k++) {
        exact_minmax(c.data[k], c.count[k], &elo, &ehi);
        cr_assert_eq(lo[k], elo, "%s: lo %g vs %g", c.names[k], lo[k], elo);
        cr_assert_eq(hi[k], ehi, "%s: hi %g vs %g", c.names[k], hi[k], ehi);
    }
    cr_assert_eq(c.count[0], 600); /* the reader of x ran once per sample, counted once */
    exact_minmax(outs[0]->data, pq_tensor_numel(outs[0]), &elo, &ehi);
    cr_assert_eq(lo[3], elo);
    cr_assert_eq(hi[3], ehi);
    cr_assert_eq(lo[4], -2.0f);
    cr_assert_eq(hi[4], 3.0f);
    cr_assert_eq(lo[5], lo[1]);
    cr_assert_eq(hi[5], hi[1]);
    cr_assert_eq(lo[2], 0.0f); /* Relu output */
    for (uint32_t k = 0; k < 3; k++)
        free(c.data[k]);
    pq_tensor_destroy(outs[0]);
    pq_tensor_destroy(outs[1]);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
}

/* percentile: exact where the rank lies among the kept extremes, else within one histogram bin
 * (R / PQ_PCTL_BINS, R <= 2 max|x|) and never clipping more than asked; chunked (3000 samples in
 * chunks of 32) and in one chunk (fixed batch 3000) agree bit for bit on the element-wise values
 * (the MatMul output may round differently for another batch size: within 1e-5 relative). */
Test(calib_ranges, percentile_within_bound) {
    pq_graph *g = build(k_text);
    pq_tensor *x = calib_input(3000, 6, 2);
    capture c = {.names = {"x", "a", "r"}, .n = 3};
    pq_tensor *outs[2] = {0};
    capture_all(g, x, &c, outs);
    uint32_t vals[4] = {pq_graph_find_value(g, "x"), pq_graph_find_value(g, "a"),
                        pq_graph_find_value(g, "r"), pq_graph_find_value(g, "y")};
    const double pcts[] = {100.0, 99.99, 99.9, 99.0, 90.0, 75.0};
    pq_tensor *ins[1];
    pq_calib_set cs = set_of(ins, x);
    for (uint32_t pi = 0; pi < sizeof pcts / sizeof pcts[0]; pi++) {
        double p = pcts[pi];
        float lo[4], hi[4], elo, ehi;
        cr_assert_eq(pq_calib_ranges(g, &cs, vals, 4, "percentile", p, lo, hi, &err), PQ_OK, "%s",
                     err.msg);
        for (uint32_t k = 0; k < 4; k++) {
            const float *d = k < 3 ? c.data[k] : outs[0]->data;
            int64_t n = k < 3 ? c.count[k] : pq_tensor_numel(outs[0]);
            exact_pct(d, n, p, &elo, &ehi);
            /* ranks within PQ_PCTL_EXACT of either end are exact */
            double from_top = (double)n - ceil(p / 100.0 * (double)n);
            double bin = 2.0 * max_abs(d, n) / PQ_PCTL_BINS;
            if (from_top < PQ_PCTL_EXACT) {
                cr_assert_eq(hi[k], ehi, "p %g value %u: hi %.9g vs exact %.9g", p, k, hi[k], ehi);
                cr_assert_eq(lo[k], elo, "p %g value %u: lo %.9g vs exact %.9g", p, k, lo[k], elo);
            } else {
                cr_assert(hi[k] >= ehi && hi[k] - ehi <= bin,
                          "p %g value %u: hi %.9g vs %.9g (bin %g)", p, k, hi[k], ehi, bin);
                cr_assert(lo[k] <= elo && elo - lo[k] <= bin,
                          "p %g value %u: lo %.9g vs %.9g (bin %g)", p, k, lo[k], elo, bin);
            }
        }
    }
    /* the same graph with a fixed batch of 3000 runs in one chunk: identical result */
    char tmp[2048];
    const char *at = strstr(k_text, "f32[N, 6]");
    cr_assert(at);
    snprintf(tmp, sizeof tmp, "%.*sf32[3000, 6]%s", (int)(at - k_text), k_text, at + 9);
    pq_graph *g1 = build(tmp);
    uint32_t v1[4] = {pq_graph_find_value(g1, "x"), pq_graph_find_value(g1, "a"),
                      pq_graph_find_value(g1, "r"), pq_graph_find_value(g1, "y")};
    float lo0[4], hi0[4], lo1[4], hi1[4];
    cr_assert_eq(pq_calib_ranges(g, &cs, vals, 4, "percentile", 99.99, lo0, hi0, &err), PQ_OK);
    cr_assert_eq(pq_calib_ranges(g1, &cs, v1, 4, "percentile", 99.99, lo1, hi1, &err), PQ_OK, "%s",
                 err.msg);
    for (uint32_t k = 0; k < 3; k++) {
        cr_assert_eq(lo0[k], lo1[k]);
        cr_assert_eq(hi0[k], hi1[k]);
    }
    cr_assert_float_eq(lo0[3], lo1[3], 1e-5 * fabsf(lo0[3]));
    cr_assert_float_eq(hi0[3], hi1[3], 1e-5 * fabsf(hi0[3]));
    for (uint32_t k = 0; k < 3; k++)
        free(c.data[k]);
    pq_tensor_destroy(outs[0]);
    pq_tensor_destroy(outs[1]);
    pq_tensor_destroy(x);
    pq_graph_destroy(g1);
    pq_graph_destroy(g);
}

Test(calib_ranges, errors_name_the_value) {
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[N, 4]\n"
                        "  %r = Relu(%x)  # relu\n"
                        "  %sh = Shape(%r)  # shape\n"
                        "  output %r\n"
                        "  output %sh\n}\n");
    pq_tensor *x = calib_input(10, 4, 3);
    pq_tensor *ins[1];
    pq_calib_set cs = set_of(ins, x);
    float lo[2], hi[2];
    uint32_t r = pq_graph_find_value(g, "r"), sh = pq_graph_find_value(g, "sh");
    cr_assert_eq(pq_calib_ranges(g, &cs, &r, 1, "absmax", 0, lo, hi, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "unknown method 'absmax'"), "%s", err.msg);
    cr_assert_eq(pq_calib_ranges(g, &cs, &r, 1, "percentile", 0.0, lo, hi, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "percentile 0 is not in (0, 100]"), "%s", err.msg);
    cr_assert_eq(pq_calib_ranges(g, &cs, &r, 1, "percentile", 100.5, lo, hi, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_calib_ranges(g, &cs, &sh, 1, "minmax", 0, lo, hi, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "value 'sh' is i64"), "%s", err.msg);
    uint32_t bad = g->n_values + 3;
    cr_assert_eq(pq_calib_ranges(g, &cs, &bad, 1, "minmax", 0, lo, hi, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    /* no values: nothing runs, OK */
    cr_assert_eq(pq_calib_ranges(g, &cs, NULL, 0, "minmax", 0, lo, hi, &err), PQ_OK);
    /* percentile over a graph output: 10 x 4 elements */
    cr_assert_eq(pq_calib_ranges(g, &cs, &r, 1, "percentile", 100, lo, hi, &err), PQ_OK, "%s",
                 err.msg);
    float xmax = 0;
    for (int i = 0; i < 40; i++)
        xmax = ((const float *)x->data)[i] > xmax ? ((const float *)x->data)[i] : xmax;
    cr_assert_eq(lo[0], 0.0f);
    cr_assert_eq(hi[0], xmax);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
    /* a value nothing reads (the text parser keeps it; preparing does not prune) */
    pq_graph *g2 = NULL;
    const char *t2 = "piqc 1\ngraph t {\n"
                     "  input %x: f32[N, 4]\n"
                     "  %r = Relu(%x)  # relu\n"
                     "  %dead = Neg(%x)  # neg\n"
                     "  output %r\n}\n";
    cr_assert_eq(pq_text_parse(t2, strlen(t2), NULL, 0, &g2, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g2, &err), PQ_OK, "%s", err.msg);
    pq_tensor *x2 = calib_input(10, 4, 4);
    pq_calib_set cs2 = set_of(ins, x2);
    uint32_t dv = pq_graph_find_value(g2, "dead");
    cr_assert_neq(dv, PQ_NONE);
    cr_assert_eq(pq_calib_ranges(g2, &cs2, &dv, 1, "minmax", 0, lo, hi, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "value 'dead' is read by no top-level node"), "%s", err.msg);
    pq_tensor_destroy(x2);
    pq_graph_destroy(g2);
}

/* A fixed batch that does not divide the samples is named. */
Test(calib_ranges, fixed_batch_must_divide) {
    pq_graph *g = build("piqc 1\ngraph t {\n"
                        "  input %x: f32[4, 6]\n"
                        "  %r = Relu(%x)  # relu\n"
                        "  output %r\n}\n");
    pq_tensor *x = calib_input(10, 6, 5);
    pq_tensor *ins[1];
    pq_calib_set cs = set_of(ins, x);
    float lo, hi;
    uint32_t r = pq_graph_find_value(g, "r");
    cr_assert_eq(pq_calib_ranges(g, &cs, &r, 1, "minmax", 0, &lo, &hi, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "input 'x' has a fixed batch of 4"), "%s", err.msg);
    pq_tensor_destroy(x);
    pq_graph_destroy(g);
}
