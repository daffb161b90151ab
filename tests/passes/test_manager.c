/* Tests of the pass manager and the dce pass: dead nodes/values removed (subgraphs too), passes
 * disabled by name, IR printed before/after into the log, dumps that parse back, timing stats,
 * errors prefixed with the pass name, and verification catching a pass that breaks the graph. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "passes/manager.h"
#include "passes/pipeline.h"

static pq_error err;

static uint32_t val(pq_graph *g, const char *name) {
    uint32_t id;
    pq_shape s = pq_shape_from_dims(2, (const int64_t[]){4, 8});
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_F32, &s, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

static uint32_t temp(pq_graph *g, const char *name) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, name, PQ_DTYPE_UNDEFINED, NULL, &id, &err), PQ_OK, "%s",
                 err.msg);
    return id;
}

static void node(pq_graph *g, enum pq_op op, const char *name, const uint32_t *in, uint32_t nin,
                 uint32_t out) {
    cr_assert_eq(pq_graph_add_node(g, op, name, in, nin, &out, 1, NULL, &err), PQ_OK, "%s",
                 err.msg);
}

/* x [4, 8] -> Relu -> r, y = r + w (output, w a 4x8 constant: large enough for the dump's
 * sidecar); x -> Neg -> d1 -> Relu -> d2 (dead chain); an unused 2x3 constant. */
static pq_graph *sample(void) {
    pq_graph *g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    uint32_t x = val(g, "x");
    pq_graph_add_input(g, x, &err);
    uint32_t r = temp(g, "r"), y = temp(g, "y"), d1 = temp(g, "d1"), d2 = temp(g, "d2");
    pq_tensor *wt = pq_tensor_create(PQ_DTYPE_F32, 2, (const int64_t[]){4, 8}, &err);
    pq_tensor *big = pq_tensor_create(PQ_DTYPE_F32, 2, (const int64_t[]){2, 3}, &err);
    for (int i = 0; i < 32; i++)
        ((float *)wt->data)[i] = 0.5f * (float)i;
    uint32_t w = temp(g, "w"), unused = temp(g, "unused");
    cr_assert_eq(pq_graph_set_constant(g, w, wt, &err), PQ_OK);
    cr_assert_eq(pq_graph_set_constant(g, unused, big, &err), PQ_OK);
    node(g, PQ_OP_RELU, "relu", &x, 1, r);
    node(g, PQ_OP_ADD, "add", (const uint32_t[]){r, w}, 2, y);
    node(g, PQ_OP_NEG, "dead_neg", &x, 1, d1);
    node(g, PQ_OP_RELU, "dead_relu", &d1, 1, d2);
    pq_graph_add_output(g, y, &err);
    return g;
}

static pq_pipeline *dce_pipeline(uint32_t n) {
    const char *names[] = {"dce", "dce", "dce"};
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_from_passes(names, n, &p, &err), PQ_OK, "%s", err.msg);
    return p;
}

Test(manager, dce_removes_dead_nodes_and_values) {
    pq_graph *g = sample();
    pq_pipeline *p = dce_pipeline(1);
    pq_pass_run_stats stats;
    pq_pass_manager_opts mo = {.time_passes = true, .verify_each = true};
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, &stats, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->n_nodes, 2);
    cr_assert_eq(g->n_values, 4); /* x, r, y, w */
    cr_assert_eq(pq_graph_find_value(g, "d1"), PQ_NONE);
    cr_assert_eq(pq_graph_find_value(g, "unused"), PQ_NONE);
    cr_assert_neq(pq_graph_find_value(g, "w"), PQ_NONE);
    cr_assert_eq(pq_graph_verify(g, &err), PQ_OK, "%s", err.msg);
    /* types were re-inferred */
    cr_assert_eq(g->values[pq_graph_find_value(g, "y")].dtype, PQ_DTYPE_F32);
    cr_assert_eq(stats.n, 1);
    cr_assert_str_eq(stats.passes[0].name, "dce");
    cr_assert_eq(stats.passes[0].nodes_before, 4);
    cr_assert_eq(stats.passes[0].nodes_after, 2);
    cr_assert_geq(stats.passes[0].ms, 0.0);
    cr_assert_geq(stats.total_ms, stats.passes[0].ms);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pq_pass_stats_print(f, &stats);
    fclose(f);
    cr_assert(strstr(buf, "dce"), "%s", buf);
    cr_assert(strstr(buf, "4 -> 2"), "%s", buf);
    cr_assert(strstr(buf, "total"), "%s", buf);
    free(buf);
    pq_pass_run_stats_free(&stats);
    /* a second run changes nothing; NULL opts/ctx/stats are fine */
    cr_assert_eq(pq_pipeline_run(g, p, NULL, NULL, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->n_nodes, 2);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, dce_cleans_subgraphs) {
    pq_graph *g = pq_graph_create(NULL, &err);
    uint32_t cond;
    pq_shape s0 = pq_shape_from_dims(0, NULL);
    cr_assert_eq(pq_graph_add_value(g, "cond", PQ_DTYPE_BOOL, &s0, &cond, &err), PQ_OK);
    pq_graph_add_input(g, cond, &err);
    uint32_t x = val(g, "x");
    pq_graph_add_input(g, x, &err);
    uint32_t o = temp(g, "o");
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(g, PQ_OP_IF, "if", &cond, 1, &o, 1, &nid, &err), PQ_OK);
    for (int b = 0; b < 2; b++) {
        pq_graph *s = pq_graph_create(g, &err);
        uint32_t c;
        cr_assert_eq(pq_graph_capture(s, "x", &c, &err), PQ_OK, "%s", err.msg);
        uint32_t so = temp(s, "so"), dead = temp(s, "dead");
        node(s, b ? PQ_OP_NEG : PQ_OP_RELU, "keep", &c, 1, so);
        node(s, PQ_OP_NEG, "drop", &c, 1, dead);
        pq_graph_add_output(s, so, &err);
        cr_assert_eq(pq_node_set_graph(g, nid, b ? "else_branch" : "then_branch", s, &err), PQ_OK);
    }
    pq_graph_add_output(g, o, &err);
    pq_pipeline *p = dce_pipeline(1);
    cr_assert_eq(pq_pipeline_run(g, p, NULL, NULL, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->n_nodes, 1);
    for (uint32_t a = 0; a < g->nodes[0].n_attrs; a++) {
        const pq_graph *s = g->nodes[0].attrs[a].u.graph;
        cr_assert_eq(s->n_nodes, 1);
        cr_assert_str_eq(s->nodes[0].name, "keep");
        cr_assert_eq(pq_graph_find_value(s, "dead"), PQ_NONE);
    }
    cr_assert_eq(pq_graph_verify(g, &err), PQ_OK, "%s", err.msg);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, disable_by_name) {
    pq_graph *g = sample();
    pq_pipeline *p = dce_pipeline(2);
    const char *off[] = {"dce"};
    pq_pass_manager_opts mo = {.disabled = off, .n_disabled = 1};
    pq_pass_run_stats stats;
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, &stats, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(g->n_nodes, 4);
    cr_assert_eq(stats.n, 2);
    cr_assert(stats.passes[0].skipped);
    cr_assert(stats.passes[1].skipped);
    pq_pass_run_stats_free(&stats);
    const char *bad[] = {"dec"};
    mo.disabled = bad;
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_ERR_USAGE);
    cr_assert(strstr(err.msg, "disable-pass: unknown pass 'dec'; accepted: "), "%s", err.msg);
    cr_assert(strstr(err.msg, "dce"), "%s", err.msg);
    pq_pass_manager_opts mo2 = {.print_after = bad, .n_print_after = 1};
    cr_assert_eq(pq_pipeline_run(g, p, &mo2, NULL, NULL, &err), PQ_ERR_USAGE);
    cr_assert(strstr(err.msg, "print-after: unknown pass 'dec'; accepted: all, "), "%s", err.msg);
    cr_assert_eq(g->n_nodes, 4);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, print_before_and_after_go_to_the_log) {
    pq_graph *g = sample();
    pq_pipeline *p = dce_pipeline(2);
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    const char *all[] = {"all"}, *dce[] = {"dce"};
    pq_pass_manager_opts mo = {.print_after = all,
                               .n_print_after = 1,
                               .print_before = dce,
                               .n_print_before = 1,
                               .log = log};
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_OK, "%s", err.msg);
    fclose(log);
    const char *b1 = strstr(buf, "// ---- IR before dce (1) ----\n");
    const char *a1 = strstr(buf, "// ---- IR after dce (1) ----\n");
    const char *b2 = strstr(buf, "// ---- IR before dce (2) ----\n");
    const char *a2 = strstr(buf, "// ---- IR after dce (2) ----\n");
    cr_assert(b1 && a1 && b2 && a2 && b1 < a1 && a1 < b2 && b2 < a2, "%s", buf);
    /* the dead nodes are printed before the first dce only */
    const char *dead = strstr(buf, "dead_neg");
    cr_assert(dead && dead < a1, "%s", buf);
    cr_assert_null(strstr(a1, "dead_neg"));
    /* the sections hold the text IR of the graph at that point */
    cr_assert(strstr(a1, "Relu") && strstr(a1, "Add"), "%s", a1);
    free(buf);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

Test(manager, dumps_reparse) {
    pq_graph *g = sample(); /* w has 32 elements: its bytes go to the .pir.bin sidecar */
    pq_pipeline *p = dce_pipeline(1);
    char dir[] = "/tmp/piqc-dump-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/ir", dir); /* created by the manager */
    pq_pass_manager_opts mo = {.dump_dir = sub};
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_OK, "%s", err.msg);
    const char *files[] = {"00-input.pir", "01-dce.pir"};
    const uint32_t nodes[] = {4, 2};
    for (int i = 0; i < 2; i++) {
        char path[128], bpath[140];
        snprintf(path, sizeof(path), "%s/%s", sub, files[i]);
        snprintf(bpath, sizeof(bpath), "%s.bin", path);
        size_t tl = 0, bl = 0;
        char *text = slurp(path, &tl);
        cr_assert_not_null(text, "%s missing", path);
        char *bin = slurp(bpath, &bl);
        cr_assert_not_null(bin, "%s missing", bpath);
        cr_assert_geq(bl, 32 * sizeof(float));
        pq_graph *back = NULL;
        cr_assert_eq(pq_text_parse(text, tl, (unsigned char *)bin, bl, &back, &err), PQ_OK,
                     "%s: %s", path, err.msg);
        cr_assert_eq(pq_graph_verify_structure(back, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(back->n_nodes, nodes[i]);
        pq_graph_destroy(back);
        free(text);
        free(bin);
        unlink(path);
        unlink(bpath);
    }
    rmdir(sub);
    /* an uncreatable dump directory is an IO error naming it */
    mo.dump_dir = "/nonexistent/dir/x";
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent/dir/x"), "%s", err.msg);
    rmdir(dir);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

/* Dump through a callback (tools/ wires the .pir writer here). */
static int dump_calls;
static enum pq_status count_dump(void *ctx, const pq_graph *g, const char *path, pq_error *e) {
    (void)g, (void)e;
    cr_assert_eq(ctx, &dump_calls);
    cr_assert(strstr(path, dump_calls == 0 ? "/00-input.pir" : "/01-dce.pir"), "%s", path);
    dump_calls++;
    return PQ_OK;
}

Test(manager, dump_callback) {
    pq_graph *g = sample();
    pq_pipeline *p = dce_pipeline(1);
    char dir[] = "/tmp/piqc-dump-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    pq_pass_manager_opts mo = {.dump_dir = dir, .dump = count_dump, .dump_ctx = &dump_calls};
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(dump_calls, 2);
    rmdir(dir);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

/* ---- test-only passes -------------------------------------------------------------------- */

static const char *seen_pass;
static enum pq_status probe_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *c, pq_error *e) {
    (void)g, (void)e;
    seen_pass = c->current_pass;
    cr_assert_eq(pq_opts_int(o, "n"), 7);
    pq_weight_note *n = pq_pass_note(c, "w");
    cr_assert_not_null(n);
    n->rotated_in = true;
    return PQ_OK;
}
/* Gives value 1 the name of value 0: inference does not care, the verifier must. */
static enum pq_status break_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *c, pq_error *e) {
    (void)o, (void)c, (void)e;
    g->values[1].name = g->values[0].name;
    return PQ_OK;
}
static enum pq_status fail_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *c, pq_error *e) {
    (void)g, (void)o, (void)c;
    return pq_error_set(e, PQ_ERR_UNSUPPORTED, "node 'relu' (Relu): cannot do this");
}
static const pq_pass_option probe_opts[] = {{"n", PQ_OPT_INT, "n", "7", 0, 10, NULL}};
static const pq_pass t_probe = {"probe", "probe", probe_opts, 1, probe_run, NULL};
static const pq_pass t_break = {"breaker", "breaks the graph", NULL, 0, break_run, NULL};
static const pq_pass t_fail = {"failer", "fails", NULL, 0, fail_run, NULL};
static const pq_pass *const reg[] = {&t_probe, &t_break, &t_fail};

static pq_pipeline *test_pipeline(const char *text) {
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_parse_with(reg, 3, text, strlen(text), "t.yaml", &p, &err), PQ_OK,
                 "%s", err.msg);
    return p;
}

Test(manager, context_and_pass_names) {
    pq_graph *g = sample();
    pq_pipeline *p = test_pipeline("passes: [probe]");
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    cr_assert_eq(pq_pipeline_run(g, p, NULL, &ctx, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(seen_pass, "probe");
    cr_assert_null(ctx.current_pass);
    const pq_weight_note *n = pq_pass_find_note(&ctx, "w");
    cr_assert(n && n->rotated_in);
    cr_assert_null(pq_pass_find_note(&ctx, "v"));
    pq_quant_record r = {.value_name = "w", .node_name = "add", .format = "piq3", .calib = "mse"};
    cr_assert_eq(pq_pass_add_record(&ctx, &r, &err), PQ_OK);
    cr_assert_str_eq(ctx.records[0].format, "piq3");
    cr_assert_neq(ctx.records[0].format, r.format); /* copied */
    pq_pass_ctx_free(&ctx);
    cr_assert_eq(ctx.n_notes, 0);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, verify_each_catches_a_broken_graph) {
    pq_graph *g = sample();
    pq_pipeline *p = test_pipeline("passes: [probe, breaker, probe]");
    pq_pass_manager_opts mo = {.verify_each = true};
    pq_pass_run_stats stats;
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, &stats, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "pass 'breaker': graph invalid after the pass: "), "%s", err.msg);
    cr_assert_eq(stats.n, 2); /* the third entry never ran */
    pq_pass_run_stats_free(&stats);
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, pass_errors_are_prefixed) {
    pq_graph *g = sample();
    pq_pipeline *p = test_pipeline("passes: [probe, failer]");
    cr_assert_eq(pq_pipeline_run(g, p, NULL, NULL, NULL, &err), PQ_ERR_UNSUPPORTED);
    cr_assert_str_eq(err.msg, "pass 'failer': node 'relu' (Relu): cannot do this");
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}

Test(manager, invalid_input_graph_is_reported) {
    pq_graph *g = sample();
    g->values[2].name = g->values[0].name;
    pq_pipeline *p = dce_pipeline(1);
    pq_pass_manager_opts mo = {.verify_each = true};
    cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "input graph: "), "%s", err.msg);
    g->values[2].name = "y";
    pq_pipeline_destroy(p);
    pq_graph_destroy(g);
}
