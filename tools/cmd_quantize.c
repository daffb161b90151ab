/* `piqc quantize MODEL --format F`: weight-only post-training quantization with a quality report,
 * as a thin front end over the passes: fake-quant (then lower-quant for -o) built in code and run
 * by the pass manager; the table and JSON come from the fake-quant records (SPEC section 5).
 *
 * No canonicalization runs (no fold-constants, fold-batchnorm, ...): the report describes the
 * weights exactly as the ONNX file stores them, under their ONNX names. `piqc compile` with a
 * preset is the optimizing path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib_provider.h"
#include "cli.h"
#include "cmd.h"
#include "compile_report.h"
#include "frontends/frontends.h"
#include "json.h"
#include "passes/passes.h"
#include "runtime/calib_drift.h"

static void pq_quantize_help(FILE *f) {
    fprintf(
        f,
        "usage: piqc quantize MODEL.onnx --format piq3|piq2|q3|q2|int8 [--group G]\n"
        "                     [--calib absmax|mse|weighted|gptq] [--calib-data DIR]\n"
        "                     [--compare FORMAT] [--json OUT.json] [-o OUT.gguf]\n\n"
        "Quantizes the weights of every MatMul, Gemm and Conv whose weight has >= 2 dims and\n"
        ">= 1024 elements (the fake-quant pass, min-elements 1024) and reports per-tensor and\n"
        "aggregate MSE, spectral distortion (dB), cosine and outlier retention, and bits per\n"
        "weight (stored bytes). The weights are reported as the ONNX file stores them: no\n"
        "other pass runs first (use 'piqc compile' for optimizing pipelines).\n"
        "  --format F      piq3 (3 bits, step a*pi/4), piq2 (2 bits, a*pi/3), q3/q2 (uniform\n"
        "                  baselines, signed absmax), int8 (per-channel symmetric)\n"
        "  --group G       weights per scale (multiple of 8, 8..65536, default 256)\n"
        "  --calib C       scale selection for piq*/q*: mse (default for piq), absmax (default\n"
        "                  for q3/q2), weighted (needs --calib-data), gptq (when the fake-quant\n"
        "                  pass supports it; exit 3 until then)\n"
        "  --calib-data D  directory with <input name>.npy calibration batches\n"
        "  --compare F     also quantize a fresh copy with format F (its default calibration;\n"
        "                  report only)\n"
        "  --json FILE     write the report as JSON\n"
        "  -o FILE.gguf    write a compiled artifact: the graph with PackedMatMul/PackedConv\n"
        "                  over the packed (int8: i8) weights (lower-quant), for 'piqc run'\n");
}

/* What the command line asked for. */
typedef struct pq_quantize_args {
    const char *model, *json, *out, *calib_dir, *calib_name;
    int64_t group;
    pq_qchoice fmt, cmp;
    bool has_compare;
    enum pq_calib calib; /* the one asked for, or the format's default (the report's "calib") */
} pq_quantize_args;

/* The report: the records of the main run, and for each one its record in the compare run. */
typedef struct pq_quantize_report {
    const pq_quantize_args *a;
    const pq_pass_ctx *ctx;
    const pq_quant_record **cmp; /* ctx->n_records entries, NULL without --compare */
    pq_metrics aggregate, cmp_aggregate;
} pq_quantize_report;

/* Parses argv into a; returns 0, an exit code (usage error), or -1 after --help. */
static int pq_quantize_parse(int argc, char **argv, pq_quantize_args *a) {
    const char *fmt_name = NULL, *cmp_name = NULL;
    memset(a, 0, sizeof *a);
    a->group = 256;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **slot = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            pq_quantize_help(stdout);
            return -1;
        } else if (!strcmp(s, "--format"))
            slot = &fmt_name;
        else if (!strcmp(s, "--compare"))
            slot = &cmp_name;
        else if (!strcmp(s, "--calib"))
            slot = &a->calib_name;
        else if (!strcmp(s, "--calib-data"))
            slot = &a->calib_dir;
        else if (!strcmp(s, "--json"))
            slot = &a->json;
        else if (!strcmp(s, "-o"))
            slot = &a->out;
        else if (!strcmp(s, "--group")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 8, 65536, &a->group) || a->group % 8)
                return pq_cli_usage_error("quantize", "--group needs a multiple of 8 in 8..65536");
            continue;
        } else if (s[0] == '-') {
            return pq_cli_usage_error("quantize", "unknown option '%s'", s);
        } else if (!a->model) {
            a->model = s;
            continue;
        } else {
            return pq_cli_usage_error("quantize", "unexpected argument '%s'", s);
        }
        if (++i >= argc) return pq_cli_usage_error("quantize", "%s needs a value", s);
        *slot = argv[i];
    }
    if (!a->model) return pq_cli_usage_error("quantize", "missing MODEL");
    if (!fmt_name) return pq_cli_usage_error("quantize", "missing --format");
    if (!pq_qchoice_parse(fmt_name, &a->fmt))
        return pq_cli_usage_error("quantize", "unknown format '%s' (piq3, piq2, q3, q2, int8)",
                                  fmt_name);
    if (cmp_name) {
        if (!pq_qchoice_parse(cmp_name, &a->cmp))
            return pq_cli_usage_error("quantize", "unknown --compare format '%s'", cmp_name);
        a->has_compare = true;
    }
    /* the fake-quant pass's default when no calib is given (SPEC: mse for PiQ, absmax for Q) */
    bool uniform = !a->fmt.is_int8 && (a->fmt.qf == PQ_QFORMAT_Q3 || a->fmt.qf == PQ_QFORMAT_Q2);
    a->calib = uniform ? PQ_CALIB_ABSMAX : PQ_CALIB_MSE;
    if (a->calib_name && !pq_calib_from_name(a->calib_name, &a->calib))
        return pq_cli_usage_error("quantize", "unknown --calib '%s' (absmax, mse, weighted, gptq)",
                                  a->calib_name);
    if (a->calib == PQ_CALIB_WEIGHTED && !a->calib_dir)
        return pq_cli_usage_error("quantize", "--calib weighted needs --calib-data DIR");
    return 0;
}

/* fake-quant with the given format, group and calibration (NULL: the format's default) and
 * min-elements 1024, followed by lower-quant when lower is set. */
static enum pq_status pq_quantize_pipeline(const char *format, int64_t group, const char *calib,
                                           bool lower, pq_pipeline **out, pq_error *err) {
    static const char *const names[] = {"fake-quant", "lower-quant"};
    pq_pipeline *p = NULL;
    char gs[32];
    snprintf(gs, sizeof gs, "%lld", (long long)group);
    PQ_TRY(pq_pipeline_from_passes(names, lower ? 2 : 1, &p, err));
    enum pq_status st = pq_pipeline_set_option(p, 0, "format", format, err);
    if (st == PQ_OK) st = pq_pipeline_set_option(p, 0, "group", gs, err);
    if (st == PQ_OK) st = pq_pipeline_set_option(p, 0, "min-elements", "1024", err);
    if (st == PQ_OK && calib) st = pq_pipeline_set_option(p, 0, "calib", calib, err);
    if (st != PQ_OK) {
        pq_pipeline_destroy(p);
        return st;
    }
    *out = p;
    return PQ_OK;
}

/* ---- the report ---- */

static void pq_print_metrics_cells(const pq_metrics *m) {
    printf(" %6.3f %10.3e %8.2f %8.5f %6.3f", m->bpw_actual, m->mse, m->sd_db, m->cosine,
           m->outlier_retention);
}

static void pq_json_metrics(pq_json *j, const pq_metrics *m, bool aggregate, double nominal) {
    pq_json_begin_object(j);
    pq_compile_json_metric_fields(j, m, aggregate ? &nominal : NULL);
    pq_json_end_object(j);
}

/* Strict wins of a over b on the four aggregate metrics (SPEC section 5, gate G1). */
static int pq_g1_wins(const pq_metrics *a, const pq_metrics *b) {
    return (a->mse < b->mse) + (a->sd_db < b->sd_db) + (a->cosine > b->cosine) +
           (a->outlier_retention > b->outlier_retention);
}

/* Gate G1 applies to PiQ3 compared with uniform Q3. */
static bool pq_g1_applies(const pq_quantize_args *a) {
    return a->has_compare && !a->fmt.is_int8 && a->fmt.qf == PQ_QFORMAT_PIQ3 && !a->cmp.is_int8 &&
           a->cmp.qf == PQ_QFORMAT_Q3;
}

static void pq_print_report(const pq_quantize_report *r) {
    const pq_quantize_args *a = r->a;
    printf("%s: %u weight tensors quantized to %s (G=%lld, calib %s)%s%s\n", a->model,
           r->ctx->n_records, a->fmt.name, (long long)a->group, pq_calib_name(a->calib),
           a->has_compare ? ", compared with " : "", a->has_compare ? a->cmp.name : "");
    printf("%-32s %-18s %-13s %6s %10s %8s %8s %6s", "tensor", "shape", "rows x cols", "bpw", "mse",
           "sd_dB", "cosine", "outl");
    if (a->has_compare) printf(" | %6s %10s %8s %8s %6s", "bpw", "mse", "sd_dB", "cosine", "outl");
    printf("\n");
    for (uint32_t i = 0; i < r->ctx->n_records; i++) {
        const pq_quant_record *t = &r->ctx->records[i];
        char shape[64], rc_s[40];
        pq_metrics m;
        pq_shape_format(t->onnx_rank, t->onnx_dims, shape, sizeof shape);
        snprintf(rc_s, sizeof rc_s, "%lldx%lld", (long long)t->rows, (long long)t->cols);
        printf("%-32.32s %-18.18s %-13s", t->value_name, shape, rc_s);
        pq_compile_record_metrics(t, &m);
        pq_print_metrics_cells(&m);
        if (a->has_compare) {
            pq_compile_record_metrics(r->cmp[i], &m);
            printf(" |");
            pq_print_metrics_cells(&m);
        }
        printf("\n");
    }
    printf("%-32s %-18s %-13s", "aggregate", "", "");
    pq_print_metrics_cells(&r->aggregate);
    if (a->has_compare) {
        printf(" |");
        pq_print_metrics_cells(&r->cmp_aggregate);
    }
    printf("\nnominal bpw %.4f", pq_qchoice_nominal_bpw(&a->fmt, a->group));
    if (a->has_compare) printf(" | %.4f", pq_qchoice_nominal_bpw(&a->cmp, a->group));
    printf("\n");
    if (pq_g1_applies(a)) {
        int wins = pq_g1_wins(&r->aggregate, &r->cmp_aggregate);
        printf("G1 (PiQ3 %s vs uniform Q3 absmax, strict, aggregate): %d of 4 metrics better -> "
               "%s\n",
               pq_calib_name(a->calib), wins, wins >= 2 ? "PASS" : "FAIL");
    }
}

static enum pq_status pq_write_json(const char *path, const pq_quantize_report *r, pq_error *err) {
    const pq_quantize_args *a = r->a;
    pq_atomic_file af;
    PQ_TRY(pq_atomic_open(&af, path, err));
    pq_json j;
    pq_json_init(&j, af.f);
    pq_json_begin_object(&j);
    pq_json_key(&j, "model");
    pq_json_string(&j, a->model);
    pq_json_key(&j, "format");
    pq_json_string(&j, a->fmt.name);
    pq_json_key(&j, "group");
    pq_json_int(&j, a->group);
    pq_json_key(&j, "calib");
    pq_json_string(&j, pq_calib_name(a->calib));
    pq_json_key(&j, "compare");
    pq_json_string(&j, a->has_compare ? a->cmp.name : NULL);
    pq_json_key(&j, "tensors");
    pq_json_begin_array(&j);
    for (uint32_t i = 0; i < r->ctx->n_records; i++) {
        const pq_quant_record *t = &r->ctx->records[i];
        pq_metrics m;
        pq_compile_record_metrics(t, &m);
        pq_json_begin_object(&j);
        pq_json_key(&j, "name");
        pq_json_string(&j, t->value_name);
        pq_compile_json_record_dims(&j, t);
        pq_compile_json_metric_fields(&j, &m, NULL);
        pq_json_key(&j, "compare");
        if (a->has_compare) {
            pq_compile_record_metrics(r->cmp[i], &m);
            pq_json_metrics(&j, &m, false, 0);
        } else {
            pq_json_null(&j);
        }
        pq_json_end_object(&j);
    }
    pq_json_end_array(&j);
    pq_json_key(&j, "aggregate");
    pq_json_begin_object(&j);
    pq_json_key(&j, a->fmt.name);
    pq_json_metrics(&j, &r->aggregate, true, pq_qchoice_nominal_bpw(&a->fmt, a->group));
    if (a->has_compare && strcmp(a->cmp.name, a->fmt.name) != 0) {
        pq_json_key(&j, a->cmp.name);
        pq_json_metrics(&j, &r->cmp_aggregate, true, pq_qchoice_nominal_bpw(&a->cmp, a->group));
    }
    pq_json_end_object(&j);
    if (pq_g1_applies(a)) {
        int wins = pq_g1_wins(&r->aggregate, &r->cmp_aggregate);
        pq_json_key(&j, "g1");
        pq_json_begin_object(&j);
        pq_json_key(&j, "wins");
        pq_json_int(&j, wins);
        pq_json_key(&j, "pass");
        pq_json_bool(&j, wins >= 2);
        pq_json_end_object(&j);
    }
    pq_json_end_object(&j);
    fputc('\n', af.f);
    return pq_atomic_commit(&af, err);
}

/* ---- the runs ---- */

/* Runs the compare pipeline over g (a fresh copy of the model, consumed) and matches its records
 * to the main ones by weight name into *cmp (pq_malloc'ed). INTERNAL when a weight of the main
 * run was not quantized by the compare run (both select the same weights). */
static enum pq_status pq_quantize_compare(pq_graph *g, const pq_quantize_args *a,
                                          const pq_pass_ctx *main_ctx, pq_pass_ctx *cctx,
                                          const pq_quant_record ***cmp, pq_error *err) {
    pq_pipeline *p = NULL;
    enum pq_status st = pq_quantize_pipeline(a->cmp.name, a->group, NULL, false, &p, err);
    if (st == PQ_OK) st = pq_pipeline_run(g, p, NULL, cctx, NULL, err);
    pq_pipeline_destroy(p);
    if (st != PQ_OK) {
        pq_error_prefix(err, "--compare %s: ", a->cmp.name);
        return st;
    }
    *cmp = pq_calloc(main_ctx->n_records + 1, sizeof **cmp);
    if (!*cmp) return pq_error_nomem(err, "compare report");
    for (uint32_t i = 0; i < main_ctx->n_records; i++) {
        const char *name = main_ctx->records[i].value_name;
        for (uint32_t k = 0; k < cctx->n_records && !(*cmp)[i]; k++)
            if (!strcmp(cctx->records[k].value_name, name)) (*cmp)[i] = &cctx->records[k];
        if (!(*cmp)[i])
            return pq_error_set(err, PQ_ERR_INTERNAL,
                                "--compare %s: weight '%s' was not quantized by the compare run",
                                a->cmp.name, name);
    }
    return PQ_OK;
}

/* Weights lowered by lower-quant: distinct constants read as input 1 of PackedMatMul/PackedConv. */
static uint32_t pq_quantize_lowered(const pq_graph *g) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        if (nd->op != PQ_OP_PACKED_MAT_MUL && nd->op != PQ_OP_PACKED_CONV) continue;
        bool dup = false;
        for (uint32_t k = 0; k < i && !dup; k++)
            dup = (g->nodes[k].op == PQ_OP_PACKED_MAT_MUL || g->nodes[k].op == PQ_OP_PACKED_CONV) &&
                  pq_node_input(&g->nodes[k], 1) == pq_node_input(nd, 1);
        n += !dup;
    }
    return n;
}

/* Writes the compiled graph g (after fake-quant + lower-quant) with its packed weights, the
 * pipeline text and provenance to a->out; prints what was written. */
static enum pq_status pq_quantize_write(const pq_graph *g, const pq_pipeline *pipe,
                                        const pq_pass_ctx *ctx, const pq_cli_calib *calib,
                                        const pq_quantize_args *a, pq_error *err) {
    pq_artifact_tensor *packed = NULL;
    int64_t *dims_store = NULL;
    uint32_t n_packed = 0;
    char *text = NULL;
    size_t len = 0;
    char methods[256];
    enum pq_status st = PQ_OK;
    PQ_TRY(pq_compile_packed_list(g, ctx, &packed, &n_packed, &dims_store, err));
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        st = pq_error_nomem(err, "pipeline text");
        goto cleanup;
    }
    st = pq_pipeline_print(f, pipe, err);
    if (fclose(f) != 0 && st == PQ_OK) st = pq_error_nomem(err, "pipeline text");
    if (st != PQ_OK) goto cleanup;
    pq_compile_calib_methods(ctx, methods, sizeof methods);
    pq_provenance prov = {.calib_sha256 = calib ? calib->files.sha256 : "",
                          .calib_samples = calib ? (uint64_t)calib->files.set.samples : 0,
                          .calib_method = methods,
                          .timestamp = NULL};
    PQ_TRY_GOTO(st, pq_artifact_write(g, text, packed, n_packed, &prov, a->out, err), cleanup);
    uint32_t lowered = pq_quantize_lowered(g);
    printf("wrote %s: %u of %u quantized weights lowered to PackedMatMul/PackedConv (%s)", a->out,
           lowered, ctx->n_records,
           a->fmt.is_int8 ? "i8 codes and f32 row scales" : "packed codes and f16 scale words");
    if (lowered < ctx->n_records) printf("; the others stay FakeQuant over f32 (no packed kernel)");
    printf("\n");
cleanup:
    free(text);
    pq_free(packed);
    pq_free(dims_store);
    return st;
}

int pq_cmd_quantize(int argc, char **argv) {
    pq_quantize_args a;
    int rc = pq_quantize_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;

    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL, *cg = NULL;
    pq_pipeline *pipe = NULL;
    pq_pass_ctx ctx, cctx;
    pq_pass_ctx_init(&ctx);
    pq_pass_ctx_init(&cctx);
    pq_cli_calib calib;
    memset(&calib, 0, sizeof calib);
    bool have_calib = false;
    const pq_quant_record **cmp = NULL;
    /* the report is the command's output: the passes' own log lines stay quiet */
    ctx.verbose = cctx.verbose = 0;
    ctx.progress = cctx.progress = isatty(STDERR_FILENO) != 0;

    if (pq_cli_check_output("-o", a.out, &err) != PQ_OK ||
        pq_cli_check_output("--json", a.json, &err) != PQ_OK)
        goto fail;
    if (pq_quantize_pipeline(a.fmt.name, a.group, a.calib_name, a.out != NULL, &pipe, &err) !=
        PQ_OK)
        goto fail;
    if (pq_cli_load_model(a.model, true, &g, &err) != PQ_OK) goto fail;
    if (a.calib_dir) {
        if (pq_cli_calib_init(&calib, g, a.calib_dir, &err) != PQ_OK) goto fail;
        have_calib = true;
        ctx.calib = &calib.provider;
    }
    if (a.has_compare && pq_graph_clone(g, &cg, &err) != PQ_OK) goto fail;
    if (pq_pipeline_run(g, pipe, NULL, &ctx, NULL, &err) != PQ_OK) goto fail;
    if (a.has_compare) {
        if (pq_quantize_compare(cg, &a, &ctx, &cctx, &cmp, &err) != PQ_OK) goto fail;
        pq_graph_destroy(cg);
        cg = NULL;
    }

    pq_quantize_report rep = {.a = &a, .ctx = &ctx, .cmp = cmp};
    pq_metrics_acc acc, cacc;
    pq_metrics_acc_init(&acc);
    pq_metrics_acc_init(&cacc);
    for (uint32_t i = 0; i < ctx.n_records; i++) {
        pq_compile_record_acc(&ctx.records[i], &acc);
        if (cmp) pq_compile_record_acc(cmp[i], &cacc);
    }
    pq_metrics_acc_finish(&acc, &rep.aggregate);
    pq_metrics_acc_finish(&cacc, &rep.cmp_aggregate);
    pq_print_report(&rep);
    if (a.json && pq_write_json(a.json, &rep, &err) != PQ_OK) goto fail;
    if (a.out && pq_quantize_write(g, pipe, &ctx, have_calib ? &calib : NULL, &a, &err) != PQ_OK) {
        pq_cli_drop_output(a.json); /* no report from a run whose artifact failed */
        goto fail;
    }
    goto done;
fail:
    rc = pq_cli_fail("quantize", &err);
done:
    pq_free(cmp);
    if (have_calib) pq_cli_calib_free(&calib);
    pq_pass_ctx_free(&cctx);
    pq_pass_ctx_free(&ctx);
    pq_pipeline_destroy(pipe);
    pq_graph_destroy(cg);
    pq_graph_destroy(g);
    return rc;
}
