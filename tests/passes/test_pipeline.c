/* Tests of the YAML pipeline reader: the documented shape (block and flow style, comments, the
 * train: section), defaults, every error with its FILE:LINE:COLUMN and accepted values, hostile
 * input (anchors, deep nesting, huge text, NUL, tabs), set_option, print round trip, presets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "passes/manager.h"
#include "passes/pipeline.h"

/* ---- test-only passes with every option type (same schemas as the real passes) --------------- */

static enum pq_status nop_run(pq_graph *g, const pq_pass_opts *o, pq_pass_ctx *c, pq_error *e) {
    (void)g, (void)o, (void)c, (void)e;
    return PQ_OK;
}

static const char *const kinds[] = {"MatMul", "Gemm", "Conv", NULL};
static const char *const skips[] = {"first", "last", NULL};
static const char *const sides[] = {"input", "both", NULL};
static const char *const formats[] = {"piq3", "piq2", "q3", "q2", "int8", "f16", NULL};
static const char *const calibs[] = {"absmax", "mse", "weighted", "gptq", NULL};
static const char *const stes[] = {"standard", "clipped", "lsq", "ewgs", NULL};

static const pq_pass_option had_opts[] = {
    {"targets", PQ_OPT_ENUM_LIST, "ops", "[MatMul, Gemm, Conv]", 0, 0, kinds},
    {"include", PQ_OPT_STRING, "regex", NULL, 0, 0, NULL},
    {"exclude", PQ_OPT_STRING, "regex", NULL, 0, 0, NULL},
    {"min-elements", PQ_OPT_INT, "min", "1024", 0, 1e15, NULL},
    {"skip", PQ_OPT_ENUM_LIST, "skip", "[]", 0, 0, skips},
    {"seed", PQ_OPT_INT, "seed", "42", 0, 0, NULL},
    {"side", PQ_OPT_ENUM, "side", "input", 0, 0, sides},
};
static const pq_pass_option fq_opts[] = {
    {"targets", PQ_OPT_ENUM_LIST, "ops", "[MatMul, Gemm, Conv]", 0, 0, kinds},
    {"format", PQ_OPT_ENUM, "format", "piq3", 0, 0, formats},
    {"group", PQ_OPT_INT, "group", "256", 8, 65536, NULL},
    {"calib", PQ_OPT_ENUM, "calib", "mse", 0, 0, calibs},
    {"ste", PQ_OPT_ENUM, "ste", "standard", 0, 0, stes},
};
static const pq_pass_option fc_opts[] = {
    {"max-bytes", PQ_OPT_INT, "max", "67108864", 0, 0, NULL},
};
static const pq_pass_option all_opts[] = {
    {"flag", PQ_OPT_BOOL, "b", "false", 0, 0, NULL},
    {"dropout", PQ_OPT_FLOAT, "f", "0", 0, 1, NULL},
    {"alpha", PQ_OPT_FLOAT, "f", "32", 0, 0, NULL},
    {"names", PQ_OPT_STRING_LIST, "l", NULL, 0, 0, NULL},
    {"label", PQ_OPT_STRING, "s", NULL, 0, 0, NULL},
};
#define N_OF(a) (uint32_t)(sizeof(a) / sizeof((a)[0]))
static const pq_pass t_fold = {"fold-constants", "fold", fc_opts, N_OF(fc_opts), nop_run, NULL};
static const pq_pass t_had = {"hadamard", "rotate", had_opts, N_OF(had_opts), nop_run, NULL};
static const pq_pass t_fq = {"fake-quant", "quantize", fq_opts, N_OF(fq_opts), nop_run, NULL};
static const pq_pass t_lower = {"lower-quant", "lower", NULL, 0, nop_run, NULL};
static const pq_pass t_all = {"t-all", "all types", all_opts, N_OF(all_opts), nop_run, NULL};
static const pq_pass *const reg[] = {&t_fold, &t_had, &t_fq, &t_lower, &t_all};

static pq_error err;

static const char *exact_yaml = "# comments allowed\n"
                                "passes:\n"
                                "  - fold-constants              # a pass without options\n"
                                "  - hadamard:                   # a pass with options\n"
                                "      targets: [MatMul, Gemm, Conv]\n"
                                "      seed: 42\n"
                                "  - fake-quant: {format: piq3, group: 256, calib: mse}\n"
                                "  - lower-quant\n"
                                "train:                          # optional top-level map\n"
                                "  epochs: 3\n";

static enum pq_status parse(const char *text, pq_pipeline **p) {
    pq_error_clear(&err);
    return pq_pipeline_parse_with(reg, N_OF(reg), text, strlen(text), "pipeline.yaml", p, &err);
}

static pq_pipeline *parse_ok(const char *text) {
    pq_pipeline *p = NULL;
    cr_assert_eq(parse(text, &p), PQ_OK, "%s", err.msg);
    cr_assert_not_null(p);
    return p;
}

/* Asserts INVALID, no pipeline, and every substring of the NULL-terminated list in the message. */
static void expect_invalid(const char *text, size_t len, const char *const *subs) {
    pq_pipeline *p = (pq_pipeline *)1;
    pq_error_clear(&err);
    enum pq_status st =
        pq_pipeline_parse_with(reg, N_OF(reg), text, len, "pipeline.yaml", &p, &err);
    cr_assert_eq(st, PQ_ERR_INVALID, "status %d for:\n%.200s\nmsg: %s", st, text, err.msg);
    cr_assert_null(p);
    for (uint32_t i = 0; subs[i]; i++)
        cr_assert(strstr(err.msg, subs[i]), "message lacks '%s': %s", subs[i], err.msg);
}
#define EXPECT_INVALID(text, ...)                                                                  \
    expect_invalid(text, strlen(text), (const char *const[]){__VA_ARGS__, NULL})

Test(pipeline, exact_documented_shape) {
    pq_pipeline *p = parse_ok(exact_yaml);
    cr_assert_eq(p->n, 4);
    cr_assert_str_eq(p->source, "pipeline.yaml");
    cr_assert_str_eq(p->text, exact_yaml);
    cr_assert_eq(p->entries[0].pass, &t_fold);
    cr_assert_eq(p->entries[1].pass, &t_had);
    cr_assert_eq(p->entries[2].pass, &t_fq);
    cr_assert_eq(p->entries[3].pass, &t_lower);
    cr_assert_eq(p->entries[1].line, 4);
    cr_assert_eq(p->entries[1].col, 5);
    /* given options */
    const pq_pass_opts *h = &p->entries[1].opts;
    uint32_t n;
    const char *const *t = pq_opts_list(h, "targets", &n);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(t[0], "MatMul");
    cr_assert_str_eq(t[2], "Conv");
    cr_assert_eq(pq_opts_int(h, "seed"), 42);
    /* defaults */
    cr_assert_eq(pq_opts_int(h, "min-elements"), 1024);
    cr_assert_str_eq(pq_opts_string(h, "side"), "input");
    cr_assert(pq_opts_is_set(h, "skip"));
    pq_opts_list(h, "skip", &n);
    cr_assert_eq(n, 0);
    cr_assert_not(pq_opts_is_set(h, "include"));
    cr_assert_null(pq_opts_string(h, "include"));
    const pq_pass_opts *f = &p->entries[2].opts;
    cr_assert_str_eq(pq_opts_string(f, "format"), "piq3");
    cr_assert_eq(pq_opts_int(f, "group"), 256);
    cr_assert_eq(pq_opts_float(f, "group"), 256.0);
    cr_assert_str_eq(pq_opts_string(f, "calib"), "mse");
    cr_assert_str_eq(pq_opts_string(f, "ste"), "standard");
    cr_assert_eq(pq_opts_int(&p->entries[0].opts, "max-bytes"), 67108864);
    cr_assert_eq(p->entries[3].opts.n, 0);
    /* train: kept as a generic tree */
    cr_assert_not_null(p->train);
    cr_assert_eq(p->train->kind, PQ_YNODE_MAP);
    const pq_ynode *ep = pq_ynode_get(p->train, "epochs");
    cr_assert_not_null(ep);
    cr_assert_eq(ep->kind, PQ_YNODE_SCALAR);
    cr_assert_str_eq(ep->scalar, "3");
    cr_assert_eq(ep->line, 10);
    cr_assert_null(pq_ynode_get(p->train, "lr"));
    pq_pipeline_destroy(p);
}

Test(pipeline, flow_and_block_styles_agree) {
    pq_pipeline *a = parse_ok("passes:\n"
                              "  - fake-quant:\n"
                              "      format: piq2\n"
                              "      group: 128\n"
                              "      targets:\n"
                              "        - Gemm\n"
                              "        - Conv\n"
                              "  - t-all:\n"
                              "      flag: true\n"
                              "      dropout: 0.25\n"
                              "      names: [a, 'b c']\n");
    pq_pipeline *b =
        parse_ok("{passes: [{fake-quant: {format: piq2, group: 128, targets: [Gemm, "
                 "Conv]}}, {t-all: {flag: true, dropout: 0.25, names: [a, \"b c\"]}}]}");
    cr_assert_eq(a->n, 2);
    cr_assert_eq(b->n, 2);
    for (uint32_t e = 0; e < 2; e++) {
        const pq_pass_opts *x = &a->entries[e].opts, *y = &b->entries[e].opts;
        for (uint32_t i = 0; i < x->n; i++) {
            cr_assert_eq(x->v[i].set, y->v[i].set);
            cr_assert_eq(x->v[i].i, y->v[i].i);
            cr_assert_eq(x->v[i].f, y->v[i].f);
            cr_assert_eq(x->v[i].b, y->v[i].b);
            cr_assert_eq(x->v[i].n_list, y->v[i].n_list);
            for (uint32_t k = 0; k < x->v[i].n_list; k++)
                cr_assert_str_eq(x->v[i].list[k], y->v[i].list[k]);
            if (x->v[i].s) cr_assert_str_eq(x->v[i].s, y->v[i].s);
        }
    }
    cr_assert_eq(pq_opts_int(&a->entries[0].opts, "group"), 128);
    cr_assert(pq_opts_bool(&a->entries[1].opts, "flag"));
    cr_assert_float_eq(pq_opts_float(&a->entries[1].opts, "dropout"), 0.25, 1e-12);
    cr_assert_float_eq(pq_opts_float(&a->entries[1].opts, "alpha"), 32.0, 1e-12);
    uint32_t n;
    const char *const *names = pq_opts_list(&b->entries[1].opts, "names", &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[1], "b c");
    cr_assert_null(a->train);
    pq_pipeline_destroy(a);
    pq_pipeline_destroy(b);
}

Test(pipeline, comments_empty_options_and_empty_list) {
    pq_pipeline *p =
        parse_ok("# head\n\npasses:   # the list\n  # between\n  - lower-quant:  # none\n"
                 "  - hadamard: {}\n# tail\n");
    cr_assert_eq(p->n, 2);
    cr_assert_eq(pq_opts_int(&p->entries[1].opts, "seed"), 42);
    pq_pipeline_destroy(p);
    p = parse_ok("passes: []\n");
    cr_assert_eq(p->n, 0);
    pq_pipeline_destroy(p);
}

Test(pipeline, errors_name_position_and_accepted_values) {
    EXPECT_INVALID(
        "passes:\n  - fold-constants\n  - hadamard:\n      sede: 42\n",
        "pipeline.yaml:4:7: unknown option 'sede' of pass 'hadamard'; accepted: targets, "
        "include, exclude, min-elements, skip, seed, side");
    EXPECT_INVALID(
        "passes:\n  - hadamart\n",
        "pipeline.yaml:2:5: unknown pass 'hadamart'; accepted: fold-constants, hadamard, "
        "fake-quant, lower-quant, t-all");
    EXPECT_INVALID("passes:\n  - hadamard:\n      seed: abc\n", "pipeline.yaml:3:13:",
                   "option 'seed' of pass 'hadamard' expects an integer, got 'abc'");
    EXPECT_INVALID("passes:\n  - hadamard: {targets: 5}\n",
                   "pipeline.yaml:2:25:", "expects a list of: MatMul, Gemm, Conv");
    EXPECT_INVALID("passes:\n  - hadamard: {targets: [MatMul, Foo]}\n", "pipeline.yaml:2:34:",
                   "'Foo' is not one of the choices; accepted: MatMul, Gemm, Conv");
    EXPECT_INVALID("passes:\n  - fake-quant: {group: 4}\n",
                   "pipeline.yaml:2:25:", "4 is out of range; expected an integer in 8..65536");
    EXPECT_INVALID("passes:\n  - fake-quant: {format: piq9}\n", "pipeline.yaml:2:26:",
                   "'piq9' is not one of the choices; accepted: piq3, piq2, q3, q2, int8, f16");
    EXPECT_INVALID("passes:\n  - t-all: {flag: maybe}\n", "2:19:", "expects true or false");
    EXPECT_INVALID("passes:\n  - t-all: {dropout: 1.5}\n",
                   "2:22:", "1.5 is out of range; expected a number in 0..1");
    EXPECT_INVALID("passes:\n  - t-all: {alpha: .nan}\n", "2:20:", "expects a number");
    EXPECT_INVALID("passes:\n  - t-all: {names: x}\n", "2:20:", "expects a list of strings");
    EXPECT_INVALID("passes:\n  - t-all: {label: [x]}\n", "2:20:", "expects a string, got a list");
    EXPECT_INVALID("passes:\n  - hadamard:\n      seed:\n", "3:12:", "'seed'", "has no value");
    EXPECT_INVALID("passes:\n  - hadamard: 3\n", "2:15:", "must be a mapping");
    EXPECT_INVALID("passes:\n  - hadamard:\n    seed: 42\n", "2:5:", "found 2: hadamard, seed",
                   "indented under the pass name");
    EXPECT_INVALID("passes:\n  - [dce]\n", "2:5:", "got a list");
    EXPECT_INVALID("passes:\n  -\n", "2:4:", "empty pass entry");
}

Test(pipeline, errors_in_document_structure) {
    EXPECT_INVALID("passes: []\npasses: []\n", "pipeline.yaml:2:1: duplicate key 'passes' (first "
                                               "given at line 1, column 1)");
    EXPECT_INVALID("passes:\n  - fake-quant: {format: piq3, format: piq2}\n",
                   "2:32:", "duplicate key 'format'");
    EXPECT_INVALID("passes: []\ntrain:\n  epochs: 3\n  epochs: 4\n",
                   "4:3:", "duplicate key 'epochs'");
    EXPECT_INVALID("passes:\n\t- lower-quant\n", "pipeline.yaml:2:1: tab character");
    EXPECT_INVALID("passes: # x\t\n", "1:12: tab");
    EXPECT_INVALID("", "pipeline.yaml:1:1: empty pipeline; expected a mapping with 'passes:'");
    EXPECT_INVALID("# only a comment\n\n", "pipeline.yaml:1:1: empty pipeline");
    EXPECT_INVALID("- lower-quant\n", "pipeline.yaml:1:1: a pipeline is a mapping with 'passes:'",
                   "got a list");
    EXPECT_INVALID("just text\n", "1:1:", "got a scalar");
    EXPECT_INVALID("passes: lower-quant\n", "1:9:", "'passes' must be a list", "got a scalar");
    EXPECT_INVALID("passes:\n", "'passes' must be a list", "got nothing");
    EXPECT_INVALID("passes: []\ntrian: {}\n",
                   "pipeline.yaml:2:1: unknown top-level key 'trian'; accepted: passes, train");
    EXPECT_INVALID("train: {epochs: 3}\n", "1:1:", "missing 'passes:'", "accepted: passes, train");
    EXPECT_INVALID("passes: []\ntrain: 3\n", "2:8:", "'train' must be a mapping");
    EXPECT_INVALID("passes: [lower-quant\n", "pipeline.yaml:2:1: YAML syntax error");
    EXPECT_INVALID("passes: []\n---\npasses: []\n", "2:1:", "found a second one");
    EXPECT_INVALID("passes: []\n? [a]\n: b\n", "2:3:", "a mapping key must be a plain name");
    EXPECT_INVALID("passes: \"\\xff\"\n\xff\n", "YAML syntax error");
}

Test(pipeline, hostile_input) {
    EXPECT_INVALID("passes:\n  - &x lower-quant\n", "2:5:", "anchors (&x) are not supported");
    EXPECT_INVALID("a: &k [1]\npasses: *k\n", "1:4:", "anchors");
    EXPECT_INVALID("passes:\n  - *x\n", "2:5:");
    /* billion laughs: refused at the first anchor, nothing is expanded */
    EXPECT_INVALID("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\npasses: [*c]\n", "anchors");
    /* deep nesting, inside and outside the pass list */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    strcpy(deep, "passes: ");
    memset(deep + 8, '[', depth);
    memset(deep + 8 + depth, ']', depth);
    deep[8 + 2 * depth] = '\0';
    EXPECT_INVALID(deep, "nesting deeper than 32 levels");
    free(deep);
    /* huge text: capped before parsing */
    size_t big = PQ_PIPELINE_MAX_TEXT + 1;
    char *huge = malloc(big + 1);
    memset(huge, '#', big);
    huge[big] = '\0';
    expect_invalid(huge, big, (const char *const[]){"pipeline.yaml:1:1:", "the limit is", NULL});
    free(huge);
    /* NUL bytes inside the given length */
    expect_invalid("passes: []\n\0x", 13, (const char *const[]){"2:1: NUL byte", NULL});
    /* a long list of passes and a long scalar are fine */
    size_t n = 20000;
    char *many = malloc(n * 16 + 16);
    strcpy(many, "passes:\n");
    for (size_t i = 0; i < n; i++)
        strcat(many + i * 16, "  - lower-quant\n");
    pq_pipeline *p = parse_ok(many);
    cr_assert_eq(p->n, n);
    pq_pipeline_destroy(p);
    free(many);
}

Test(pipeline, allocation_failures_are_clean) {
    for (long k = 0;; k++) {
        pq_pipeline *p = NULL;
        pq_alloc_fail_after(k);
        enum pq_status st = parse(exact_yaml, &p);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            pq_pipeline_destroy(p);
            cr_assert_gt(k, 5);
            break;
        }
        cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        cr_assert_null(p);
        cr_assert_lt(k, 10000);
    }
}

Test(pipeline, set_option_validates_like_a_file) {
    pq_pipeline *p = parse_ok(exact_yaml);
    cr_assert_eq(pq_pipeline_set_option(p, 2, "format", "piq2", &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(pq_opts_string(&p->entries[2].opts, "format"), "piq2");
    cr_assert_eq(pq_pipeline_set_option(p, 1, "targets", "[Conv]", &err), PQ_OK, "%s", err.msg);
    uint32_t n;
    cr_assert_str_eq(pq_opts_list(&p->entries[1].opts, "targets", &n)[0], "Conv");
    cr_assert_eq(n, 1);
    cr_assert_eq(pq_pipeline_set_option(p, 2, "format", "piq9", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "accepted: piq3, piq2, q3, q2, int8, f16"), "%s", err.msg);
    cr_assert(strstr(err.msg, "pipeline.yaml: "), "%s", err.msg);
    cr_assert_str_eq(pq_opts_string(&p->entries[2].opts, "format"), "piq2"); /* unchanged */
    cr_assert_eq(pq_pipeline_set_option(p, 2, "group", "7", &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_opts_int(&p->entries[2].opts, "group"), 256);
    cr_assert_eq(pq_pipeline_set_option(p, 2, "grup", "7", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "unknown option 'grup' of pass 'fake-quant'; accepted: targets, "
                              "format, group, calib, ste"),
              "%s", err.msg);
    cr_assert_eq(pq_pipeline_set_option(p, 3, "x", "1", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "none"), "%s", err.msg);
    cr_assert_eq(pq_pipeline_set_option(p, 9, "x", "1", &err), PQ_ERR_USAGE);
    cr_assert_eq(pq_pipeline_set_option(p, 1, "seed", "[1", &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_pipeline_set_option(p, 1, "seed", "", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "has no value"), "%s", err.msg);
    pq_pipeline_destroy(p);
}

Test(pipeline, print_round_trips) {
    pq_pipeline *p =
        parse_ok("passes:\n  - hadamard: {include: 'a: \"b\"', seed: -3}\n"
                 "  - t-all: {names: ['x y', '#z', ''], label: \"\\n\", dropout: 0.1}\n"
                 "  - lower-quant\ntrain:\n  epochs: 3\n  sched: [a, 'b: c']\n"
                 "  nested: {k: {}}\n  empty: []\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(pq_pipeline_print(f, p, &err), PQ_OK, "%s", err.msg);
    fclose(f);
    pq_pipeline *q = parse_ok(buf);
    cr_assert_eq(q->n, p->n);
    for (uint32_t e = 0; e < p->n; e++) {
        const pq_pass_opts *x = &p->entries[e].opts, *y = &q->entries[e].opts;
        cr_assert_eq(p->entries[e].pass, q->entries[e].pass);
        for (uint32_t i = 0; i < x->n; i++) {
            cr_assert_eq(x->v[i].set, y->v[i].set, "%s", buf);
            cr_assert_eq(x->v[i].i, y->v[i].i);
            cr_assert_eq(x->v[i].f, y->v[i].f);
            cr_assert_eq(x->v[i].n_list, y->v[i].n_list);
            for (uint32_t k = 0; k < x->v[i].n_list; k++)
                cr_assert_str_eq(x->v[i].list[k], y->v[i].list[k]);
            if (x->v[i].s) cr_assert_str_eq(x->v[i].s, y->v[i].s, "%s", buf);
        }
    }
    cr_assert_str_eq(pq_ynode_get(q->train, "sched")->items[1].scalar, "b: c");
    cr_assert_eq(pq_ynode_get(pq_ynode_get(q->train, "nested"), "k")->kind, PQ_YNODE_MAP);
    cr_assert_eq(pq_ynode_get(q->train, "empty")->kind, PQ_YNODE_SEQ);
    free(buf);
    pq_pipeline_destroy(p);
    pq_pipeline_destroy(q);
}

Test(pipeline, real_registry_and_code_built_pipelines) {
    const char *text = "passes:\n  - dce\n";
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_parse(text, strlen(text), NULL, &p, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(p->source, "pipeline");
    cr_assert_eq(p->entries[0].pass, pq_pass_find("dce"));
    pq_pipeline_destroy(p);
    cr_assert_eq(pq_pipeline_parse("passes: [nope]", 14, "x.yaml", &p, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "x.yaml:1:10: unknown pass 'nope'; accepted: "), "%s", err.msg);
    cr_assert(strstr(err.msg, "dce"), "%s", err.msg);

    const char *names[] = {"dce", "dce"};
    cr_assert_eq(pq_pipeline_from_passes(names, 2, &p, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(p->n, 2);
    cr_assert_null(p->text);
    cr_assert_str_eq(p->source, "<code>");
    pq_pipeline_destroy(p);
    const char *bad[] = {"dce", "dcx"};
    cr_assert_eq(pq_pipeline_from_passes(bad, 2, &p, &err), PQ_ERR_INVALID);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, "unknown pass 'dcx'; accepted: "), "%s", err.msg);

    uint32_t n;
    const pq_pass *const *all = pq_passes_all(&n);
    cr_assert_gt(n, 0);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(pq_pass_find(all[i]->name), all[i]);
        cr_assert_not_null(all[i]->run, "%s", all[i]->name);
        cr_assert_not_null(all[i]->summary, "%s", all[i]->name);
        /* every registered schema's defaults are valid */
        cr_assert_eq(pq_pipeline_from_passes(&all[i]->name, 1, &p, &err), PQ_OK, "%s", err.msg);
        pq_pipeline_destroy(p);
    }
    cr_assert_null(pq_pass_find("no-such-pass"));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pq_passes_print_list(f);
    fclose(f);
    cr_assert(strstr(buf, "dce\n    remove nodes"), "%s", buf);
    free(buf);
}

Test(pipeline, every_preset_parses) {
    static const char *const expected[] = {
        "fp32",     "int8-cnn",          "ptq-mixed-2.5", "ptq-mixed-3.2",
        "ptq-piq2", "ptq-piq2-hadamard", "ptq-piq3",      "ptq-piq3-hadamard",
        "qat-lora-piq3", "qat-piq2-hadamard", "qat-piq3"};
    const uint32_t n_expected = sizeof expected / sizeof expected[0];
    uint32_t n;
    const pq_pipeline_preset *pr = pq_pipeline_presets(&n);
    cr_assert_eq(n, n_expected);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_str_eq(pr[i].name, expected[i]);
        cr_assert_eq(strlen(pr[i].text), pr[i].len);
        cr_assert_eq(pq_pipeline_preset_find(pr[i].name), &pr[i]);
        pq_pipeline *p = NULL;
        enum pq_status st = pq_pipeline_load(pr[i].name, &p, &err);
        cr_assert_eq(st, PQ_OK, "preset %s: %s", pr[i].name, err.msg);
        cr_assert_str_eq(p->source, pr[i].name);
        cr_assert_gt(p->n, 0);
        pq_pipeline_destroy(p);
    }
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_load("no-such-preset", &p, &err), PQ_ERR_USAGE);
    cr_assert(strstr(err.msg, "presets: fp32, int8-cnn, ptq-mixed-2.5, ptq-mixed-3.2, ptq-piq2"),
              "%s", err.msg);
    cr_assert_eq(pq_pipeline_load("/nonexistent/p.yaml", &p, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent/p.yaml"), "%s", err.msg);
    cr_assert_eq(pq_pipeline_load("missing.yaml", &p, &err), PQ_ERR_IO);
}

Test(pipeline, load_reads_files_and_names_them) {
    char dir[] = "/tmp/piqc-pipeline-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("passes:\n  - dce\n  - dce: {bogus: 1}\n", f);
    fclose(f);
    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_load(path, &p, &err), PQ_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof(want), "%s:3:11: unknown option 'bogus' of pass 'dce'; accepted: none",
             path);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    f = fopen(path, "w");
    fputs("passes: [dce]\n", f);
    fclose(f);
    cr_assert_eq(pq_pipeline_load(path, &p, &err), PQ_OK, "%s", err.msg);
    cr_assert_str_eq(p->source, path);
    pq_pipeline_destroy(p);
    unlink(path);
    rmdir(dir);
}
