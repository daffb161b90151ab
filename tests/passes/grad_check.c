/* Gradient-rule test helpers: text-IR test graphs with generated constants, the loss
 * ReduceSum(y * R), and the finite-difference check of every gradient autodiff exposes. */
#include "grad_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "pass_test_util.h"
#include "passes/pass.h"
#include "runtime/runtime.h"

extern const pq_pass pq_pass_autodiff;

const pq_gc_tol PQ_GC_F64 = {1e-5, 1e-6, false, 0};
const pq_gc_tol PQ_GC_F32K = {1e-2, 1e-3, true, 0};

static uint64_t pq_gc_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static double pq_gc_unit(uint64_t *s) {
    return (double)(pq_gc_next(s) & 0xffffff) * (1.0 / 16777216.0);
}

/* Fills v[0..n) for generator kind k (see grad_check.h). */
static void pq_gc_fill(char k, uint64_t *s, double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (k) {
        case 's':
        case 'p': {
            double m = 0.2 + 0.8 * pq_gc_unit(s);
            v[i] = k == 's' && (pq_gc_next(s) & 1) ? -m : m;
            break;
        }
        case 'u':
            v[i] = -0.8 + 1.6 * ((double)i + 0.5) / (double)n;
            break;
        case 'd':
            v[i] = 0.1 * (double)(i - n / 2) + 0.05;
            break;
        case 'w':
            v[i] = 1.2 + 0.8 * pq_gc_unit(s);
            break;
        default:
            cr_assert_fail("unknown generator @%c", k);
        }
    }
    if (k == 'u' || k == 'd')
        for (int64_t i = n - 1; i > 0; i--) { /* shuffle */
            int64_t j = (int64_t)(pq_gc_next(s) % (uint64_t)(i + 1));
            double t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
}

/* Appends to a growing buffer. */
typedef struct pq_gc_buf {
    char *p;
    size_t n, cap;
} pq_gc_buf;

static void pq_gc_put(pq_gc_buf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        b->cap = (b->n + len + 1) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

static void pq_gc_puts(pq_gc_buf *b, const char *s) {
    pq_gc_put(b, s, strlen(s));
}

/* One line of the body: a "const %name: dtype[dims] = @k" line gets generated elements. */
static void pq_gc_line(pq_gc_buf *b, const char *line, size_t len, uint64_t *seed) {
    const char *at = memchr(line, '@', len);
    if (!at || at + 1 >= line + len) {
        pq_gc_put(b, line, len);
        return;
    }
    const char *colon = memchr(line, ':', len), *lb = colon ? strchr(colon, '[') : NULL;
    cr_assert(colon && lb && lb < at, "bad generated constant: %.*s", (int)len, line);
    char dt[16] = {0};
    const char *d0 = colon + 1;
    while (*d0 == ' ')
        d0++;
    cr_assert((size_t)(lb - d0) < sizeof dt);
    memcpy(dt, d0, (size_t)(lb - d0));
    bool f32 = !strcmp(dt, "f32");
    cr_assert(f32 || !strcmp(dt, "f64"), "generated constants are f32 or f64: %.*s", (int)len,
              line);
    int64_t n = 1;
    const char *p = lb + 1;
    while (*p != ']') {
        char *e;
        long long d = strtoll(p, &e, 10);
        cr_assert(e != p, "bad dims: %.*s", (int)len, line);
        n *= d;
        p = e;
        while (*p == ',' || *p == ' ')
            p++;
    }
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    cr_assert(v);
    pq_gc_fill(at[1], seed, v, n);
    pq_gc_put(b, line, (size_t)(at - line));
    pq_gc_puts(b, "[");
    char num[64];
    for (int64_t i = 0; i < n; i++) {
        snprintf(num, sizeof num, f32 ? "%s%.9g" : "%s%.17g", i ? ", " : "",
                 f32 ? (double)(float)v[i] : v[i]);
        pq_gc_puts(b, num);
    }
    pq_gc_puts(b, "]");
    pq_gc_put(b, at + 2, (size_t)(line + len - (at + 2)));
    free(v);
}

pq_graph *pq_gc_graph(const char *body) {
    uint64_t seed = 1469598103934665603ull;
    for (const char *c = body; *c; c++)
        seed = (seed ^ (unsigned char)*c) * 1099511628211ull;
    pq_gc_buf b = {0};
    pq_gc_puts(&b, "piqc 1\ngraph t {\n  opset \"\" 18\n");
    for (const char *l = body; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        pq_gc_line(&b, l, len, &seed);
        pq_gc_puts(&b, "\n");
        l += len + (e ? 1 : 0);
    }
    pq_gc_puts(&b, "}\n");
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(b.p, b.n, NULL, 0, &g, &err), PQ_OK, "%s\n%s", err.msg, b.p);
    free(b.p);
    cr_assert_eq(pq_graph_sort_infer(g, &err), PQ_OK, "%s\n%s", err.msg, body);
    uint32_t y = pq_graph_find_value(g, "y");
    cr_assert_neq(y, PQ_NONE, "no value %%y in:\n%s", body);
    const pq_value *yv = &g->values[y];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&yv->shape, dims), "y has no static shape:\n%s", body);
    enum pq_dtype dt = yv->dtype;
    int rank = yv->shape.rank;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    double *rv = malloc(sizeof(double) * (size_t)(pq_tensor_numel(t) + 1));
    cr_assert(rv);
    pq_gc_fill('s', &seed, rv, pq_tensor_numel(t));
    for (int64_t i = 0; i < pq_tensor_numel(t); i++)
        pq_dtype_store(dt, t->data, (size_t)i, rv[i]);
    free(rv);
    uint32_t r, m, l, nid;
    cr_assert_eq(pq_graph_add_constant(g, "R", t, &r, &err), PQ_OK, "%s", err.msg);
    uint32_t in[2] = {y, r};
    cr_assert_eq(pq_build(g, PQ_OP_MUL, "yR", in, 2, &m, &nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_build(g, PQ_OP_REDUCE_SUM, "loss", &m, 1, &l, &nid, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(pq_node_set_int(g, nid, "keepdims", 0, &err), PQ_OK);
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_graph_add_output(g, l, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s\n%s", err.msg, body);
    return g;
}

/* Index of the graph output named "loss". */
static uint32_t pq_gc_loss_index(const pq_graph *g) {
    for (uint32_t o = 0; o < g->n_outputs; o++)
        if (!strcmp(g->values[g->outputs[o]].name, "loss")) return o;
    cr_assert_fail("the graph has no output 'loss'");
    return 0;
}

static double pq_gc_loss(pq_graph *g, const pq_tensor *const *ins) {
    pq_tensor **o = pq_test_run_inputs(g, ins);
    uint32_t k = pq_gc_loss_index(g);
    double l = pq_dtype_load(o[k]->dtype, o[k]->data, 0);
    pq_test_free_outputs(o, g->n_outputs);
    return l;
}

void pq_gc_run_in(pq_graph *g, const pq_tensor *const *ins, const char *opts, pq_graph **ga,
                  pq_tensor ***outs) {
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    if (!opts && g->n_outputs > 1) opts = "{loss: loss}";
    *ga = pq_test_clone_run_pass(g, &pq_pass_autodiff, opts, &ctx, opts ? opts : "autodiff");
    pq_pass_ctx_free(&ctx);
    *outs = pq_test_run_inputs(*ga, ins);
}

void pq_gc_run(pq_graph *g, const char *opts, pq_graph **ga, pq_tensor ***outs) {
    pq_gc_run_in(g, NULL, opts, ga, outs);
}

const pq_tensor *pq_gc_out(const pq_graph *ga, pq_tensor *const *outs, const char *name) {
    for (uint32_t o = 0; o < ga->n_outputs; o++)
        if (!strcmp(ga->values[ga->outputs[o]].name, name)) return outs[o];
    cr_assert_fail("no output '%s'", name);
    return NULL;
}

/* L with element i of t set to x + d (the element's actual stored value into *xk). */
static double pq_gc_at(pq_graph *g, const pq_tensor *const *ins, pq_tensor *t, int64_t i, double x,
                       double d, double *xk) {
    pq_dtype_store(t->dtype, t->data, (size_t)i, x + d);
    *xk = pq_dtype_load(t->dtype, t->data, (size_t)i);
    double l = pq_gc_loss(g, ins);
    pq_dtype_store(t->dtype, t->data, (size_t)i, x);
    return l;
}

uint32_t pq_gc_check_in(pq_graph *g, const pq_tensor *const *ins, const char *opts, pq_gc_tol tol,
                        int64_t max_elems, const char *what) {
    pq_graph *ga;
    pq_tensor **outs;
    pq_gc_run_in(g, ins, opts, &ga, &outs);
    uint32_t li = pq_gc_loss_index(ga);
    double l0 = pq_dtype_load(outs[li]->dtype, outs[li]->data, 0);
    cr_assert(fabs(l0 - pq_gc_loss(g, ins)) <= 1e-9 * (1 + fabs(l0)), "%s: loss changed", what);
    uint32_t n_grads = 0;
    for (uint32_t o = 0; o < ga->n_outputs; o++) {
        const char *name = ga->values[ga->outputs[o]].name;
        if (strncmp(name, "grad/", 5) != 0) continue;
        uint32_t c = pq_graph_find_value(g, name + 5);
        cr_assert_neq(c, PQ_NONE, "%s: no constant for '%s'", what, name);
        pq_tensor *t = g->values[c].constant;
        cr_assert(t);
        int64_t n = pq_tensor_numel(t);
        cr_assert_eq(pq_tensor_numel(outs[o]), n, "%s: %s size", what, name);
        int64_t step = max_elems > 0 && n > max_elems ? (n + max_elems - 1) / max_elems : 1;
        for (int64_t i = 0; i < n; i += step) {
            double x = pq_dtype_load(t->dtype, t->data, (size_t)i), xp, xm, xp2, xm2, fd;
            double lp = pq_gc_at(g, ins, t, i, x, tol.h, &xp);
            double lm = pq_gc_at(g, ins, t, i, x, -tol.h, &xm);
            if (tol.five_point) {
                double lp2 = pq_gc_at(g, ins, t, i, x, 2 * tol.h, &xp2);
                double lm2 = pq_gc_at(g, ins, t, i, x, -2 * tol.h, &xm2);
                fd = (8 * (lp - lm) - (lp2 - lm2)) / (3 * (xp2 - xm2)); /* 12 h */
            } else {
                fd = (lp - lm) / (xp - xm);
            }
            double ad = pq_dtype_load(outs[o]->dtype, outs[o]->data, (size_t)i);
            double lim =
                tol.atol > 0 ? tol.tol * fabs(fd) + tol.atol : tol.tol * fmax(1.0, fabs(fd));
            cr_assert(fabs(fd - ad) <= lim, "%s: %s[%lld]: autodiff %.9g, finite difference %.9g",
                      what, name, (long long)i, ad, fd);
        }
        n_grads++;
    }
    pq_test_free_outputs(outs, ga->n_outputs);
    pq_graph_destroy(ga);
    return n_grads;
}

uint32_t pq_gc_check(pq_graph *g, const char *opts, pq_gc_tol tol, const char *what) {
    return pq_gc_check_in(g, NULL, opts, tol, 0, what);
}

void pq_gc_body_opts(const char *body, const char *opts, pq_gc_tol tol, uint32_t want) {
    pq_graph *g = pq_gc_graph(body);
    uint32_t n = pq_gc_check(g, opts, tol, body);
    cr_assert_eq(n, want, "%u gradients checked, expected %u:\n%s", n, want, body);
    pq_graph_destroy(g);
}

void pq_gc_body(const char *body, pq_gc_tol tol, uint32_t want) {
    pq_gc_body_opts(body, NULL, tol, want);
}

void pq_gc_expect_error(pq_graph *g, const char *opts, enum pq_status status, const char *needle1,
                        const char *needle2) {
    pq_error err;
    pq_error_clear(&err);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_graph *c = NULL;
    cr_assert_eq(pq_graph_clone(g, &c, &err), PQ_OK, "%s", err.msg);
    enum pq_status st = pq_test_run_pass(c, &pq_pass_autodiff, opts, &ctx, false, &err);
    cr_assert_eq(st, status, "status %d, expected %d: %s", st, status, err.msg);
    if (needle1) cr_assert(strstr(err.msg, needle1), "'%s' not in: %s", needle1, err.msg);
    if (needle2) cr_assert(strstr(err.msg, needle2), "'%s' not in: %s", needle2, err.msg);
    pq_graph_destroy(c);
    pq_pass_ctx_free(&ctx);
}
