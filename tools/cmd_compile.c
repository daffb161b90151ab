/* `piqc compile MODEL --pipeline FILE.yaml|PRESET -o OUT.gguf`: imports a model, runs a pass
 * pipeline over it (with calibration data when given) and writes the compiled graph, its packed
 * weights, the pipeline text and provenance as a SPEC section 10 artifact, with a report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib_data.h"
#include "calib_provider.h"
#include "cli.h"
#include "cmd.h"
#include "compile_report.h"
#include "frontends/frontends.h"
#include "passes/manager.h"
#include "passes/pipeline.h"
#include "runtime/calib.h"
#include "runtime/calib_drift.h"
#include "runtime/runtime.h"

#define PQ_COMPILE_MAX_LIST 64

static void pq_compile_help(FILE *f) {
    fprintf(f,
            "usage: piqc compile MODEL.onnx|MODEL.pir --pipeline FILE.yaml|PRESET -o OUT.gguf\n"
            "                    [--calib-data DIR] [--json REPORT.json]\n"
            "                    [--print-before NAME|all]... [--print-after NAME|all]...\n"
            "                    [--dump-dir DIR] [--time-passes] [--disable-pass NAME]...\n"
            "                    [--verify-each] [-q]\n"
            "       piqc compile --list-passes\n\n"
            "Imports MODEL, runs the pass pipeline over it and writes the compiled graph with its\n"
            "packed weights, the pipeline text, calibration provenance and SHA-256 hashes as a\n"
            "GGUF artifact that 'piqc run', 'piqc inspect' and 'piqc verify' read.\n"
            "  --pipeline P      a pipeline YAML file or a built-in preset (see below)\n"
            "  -o FILE.gguf      the artifact (written atomically: no partial file on failure)\n"
            "  --calib-data DIR  <input name>.npy calibration batches (weighted calibration,\n"
            "                    provenance: sample count and SHA-256 of the files)\n"
            "  --json FILE       per-tensor metrics against the original weights, aggregates by\n"
            "                    format and over all tensors, and per-pass times\n"
            "  --print-before P  print the IR before pass P (or all passes) to stderr\n"
            "  --print-after P   print the IR after pass P (or all passes) to stderr\n"
            "  --dump-dir DIR    write the IR after every pass as DIR/NN-<pass>.pir\n"
            "  --time-passes     print a table of the time and node count of every pass\n"
            "  --disable-pass P  skip pass P (e.g. lower-quant keeps the fake-quant graph)\n"
            "  --verify-each     verify the graph after every pass\n"
            "  --list-passes     list the registered passes and their options, then exit\n"
            "  -q                no progress and no summary (errors only)\n"
            "presets:");
    uint32_t n = 0;
    const pq_pipeline_preset *pr = pq_pipeline_presets(&n);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, " %s", pr[i].name);
    fprintf(f, "\n");
}

/* ---- provenance ---- */

/* ---- the pipeline run (pass manager glue) ---- */

static enum pq_status pq_compile_dump(void *vctx, const pq_graph *g, const char *path,
                                      pq_error *err) {
    (void)vctx;
    return pq_pir_save(g, path, err);
}

typedef struct pq_compile_args {
    const char *model, *pipeline, *out, *calib_dir, *json, *dump_dir;
    const char *print_before[PQ_COMPILE_MAX_LIST], *print_after[PQ_COMPILE_MAX_LIST];
    const char *disabled[PQ_COMPILE_MAX_LIST];
    uint32_t n_print_before, n_print_after, n_disabled;
    bool time_passes, verify_each, list_passes, quiet;
} pq_compile_args;

static int pq_compile_parse(int argc, char **argv, pq_compile_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **slot = NULL;
        const char **list = NULL;
        uint32_t *n_list = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            pq_compile_help(stdout);
            return -1;
        } else if (!strcmp(s, "--pipeline"))
            slot = &a->pipeline;
        else if (!strcmp(s, "-o"))
            slot = &a->out;
        else if (!strcmp(s, "--calib-data"))
            slot = &a->calib_dir;
        else if (!strcmp(s, "--json"))
            slot = &a->json;
        else if (!strcmp(s, "--dump-dir"))
            slot = &a->dump_dir;
        else if (!strcmp(s, "--print-before")) {
            list = a->print_before;
            n_list = &a->n_print_before;
        } else if (!strcmp(s, "--print-after")) {
            list = a->print_after;
            n_list = &a->n_print_after;
        } else if (!strcmp(s, "--disable-pass")) {
            list = a->disabled;
            n_list = &a->n_disabled;
        } else if (!strcmp(s, "--time-passes")) {
            a->time_passes = true;
            continue;
        } else if (!strcmp(s, "--verify-each")) {
            a->verify_each = true;
            continue;
        } else if (!strcmp(s, "--list-passes")) {
            a->list_passes = true;
            continue;
        } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = true;
            continue;
        } else if (s[0] == '-') {
            return pq_cli_usage_error("compile", "unknown option '%s'", s);
        } else if (!a->model) {
            a->model = s;
            continue;
        } else {
            return pq_cli_usage_error("compile", "unexpected argument '%s'", s);
        }
        if (++i >= argc) return pq_cli_usage_error("compile", "%s needs a value", s);
        if (slot) {
            if (*slot) return pq_cli_usage_error("compile", "%s given twice", s);
            *slot = argv[i];
        } else {
            if (*n_list >= PQ_COMPILE_MAX_LIST)
                return pq_cli_usage_error("compile", "too many %s (at most %d)", s,
                                          PQ_COMPILE_MAX_LIST);
            list[(*n_list)++] = argv[i];
        }
    }
    if (a->list_passes) return 0;
    if (!a->model) return pq_cli_usage_error("compile", "missing MODEL");
    if (!a->pipeline) return pq_cli_usage_error("compile", "missing --pipeline FILE.yaml|PRESET");
    if (!a->out) return pq_cli_usage_error("compile", "missing -o OUT.gguf");
    size_t ol = strlen(a->out);
    if (ol < 5 || strcmp(a->out + ol - 5, ".gguf") != 0)
        return pq_cli_usage_error("compile", "-o '%s': the artifact name must end in .gguf",
                                  a->out);
    return 0;
}

int pq_cmd_compile(int argc, char **argv) {
    pq_compile_args a;
    int rc = pq_compile_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.list_passes) {
        pq_passes_print_list(stdout);
        return 0;
    }
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    pq_pipeline *pipe = NULL;
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    pq_cli_calib calib;
    memset(&calib, 0, sizeof calib);
    bool have_calib = false;
    pq_pass_run_stats stats;
    memset(&stats, 0, sizeof stats);
    pq_artifact_tensor *packed = NULL;
    int64_t *dims_store = NULL;
    uint32_t n_packed = 0;
    char *pipeline_text = NULL;
    pq_compile_pass_row *rows = NULL;
    FILE *progress = a.quiet ? NULL : stderr;

    if (pq_cli_check_output("-o", a.out, &err) != PQ_OK ||
        pq_cli_check_output("--json", a.json, &err) != PQ_OK)
        goto fail;
    if (pq_pipeline_load(a.pipeline, &pipe, &err) != PQ_OK) goto fail;
    if (progress) fprintf(progress, "piqc compile: importing %s\n", a.model);
    if (pq_cli_load_model(a.model, true, &g, &err) != PQ_OK) goto fail;
    uint64_t fp32_bytes = pq_compile_f32_param_bytes(g);
    if (a.calib_dir) {
        if (pq_cli_calib_init(&calib, g, a.calib_dir, &err) != PQ_OK) goto fail;
        have_calib = true;
        ctx.calib = &calib.provider;
        if (progress)
            fprintf(progress, "piqc compile: calibration data %s: %lld samples\n", a.calib_dir,
                    (long long)calib.files.set.samples);
    }
    ctx.verbose = a.quiet ? 0 : 1;
    ctx.progress = !a.quiet;

    pq_pass_manager_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.print_before = a.print_before;
    mo.n_print_before = a.n_print_before;
    mo.print_after = a.print_after;
    mo.n_print_after = a.n_print_after;
    mo.dump_dir = a.dump_dir;
    mo.dump = pq_compile_dump;
    mo.dump_ctx = NULL;
    mo.time_passes = true; /* always measured; printed as a table only with --time-passes */
    mo.disabled = a.disabled;
    mo.n_disabled = a.n_disabled;
    mo.verify_each = a.verify_each;
    mo.log = stderr;
    if (progress)
        fprintf(progress, "piqc compile: pipeline %s (%u passes)\n", pipe->source, pipe->n);
    if (pq_pipeline_run(g, pipe, &mo, &ctx, &stats, &err) != PQ_OK) goto fail;

    if (pq_compile_packed_list(g, &ctx, &packed, &n_packed, &dims_store, &err) != PQ_OK) goto fail;
    if (pq_compile_pipeline_text(pipe, a.disabled, a.n_disabled, &pipeline_text, &err) != PQ_OK)
        goto fail;
    char methods[256];
    pq_compile_calib_methods(&ctx, methods, sizeof methods);
    pq_provenance prov = {.calib_sha256 = have_calib ? calib.files.sha256 : "",
                          .calib_samples = have_calib ? (uint64_t)calib.files.set.samples : 0,
                          .calib_method = methods,
                          .timestamp = NULL};
    if (progress) fprintf(progress, "piqc compile: writing %s\n", a.out);
    if (pq_artifact_write(g, pipeline_text, packed, n_packed, &prov, a.out, &err) != PQ_OK)
        goto fail;

    pq_compile_summary sum = {.model = a.model,
                              .pipeline_source = pipe->source,
                              .output = a.out,
                              .fp32_bytes = fp32_bytes,
                              .n_packed = n_packed,
                              .time_passes = a.time_passes};
    struct stat sb;
    if (stat(a.out, &sb) == 0) sum.artifact_bytes = (uint64_t)sb.st_size;
    for (uint32_t i = 0; i < n_packed; i++)
        sum.packed_bytes +=
            pq_packed_bytes(packed[i].fmt, packed[i].rows, packed[i].cols, packed[i].group);
    rows = pq_calloc(stats.n + 1, sizeof *rows);
    if (!rows) {
        pq_error_nomem(&err, "pass report");
        goto fail;
    }
    for (uint32_t i = 0; i < stats.n; i++) {
        rows[i].name = stats.passes[i].name;
        rows[i].ms = stats.passes[i].ms;
        rows[i].nodes_before = stats.passes[i].nodes_before;
        rows[i].nodes_after = stats.passes[i].nodes_after;
        rows[i].skipped = stats.passes[i].skipped;
    }
    sum.passes = rows;
    sum.n_passes = stats.n;
    sum.total_ms = stats.total_ms;
    if (a.json && pq_compile_write_json(a.json, &sum, &ctx, &err) != PQ_OK) {
        pq_cli_drop_output(a.out); /* no artifact from a run that failed */
        goto fail;
    }
    if (!a.quiet) {
        pq_compile_print_summary(stdout, &sum, &ctx);
        if (a.time_passes) pq_pass_stats_print(stdout, &stats);
        printf("wrote %s\n", a.out);
    }
    goto done;
fail:
    rc = pq_cli_fail("compile", &err);
done:
    pq_free(rows);
    free(pipeline_text);
    pq_free(packed);
    pq_free(dims_store);
    pq_pass_run_stats_free(&stats);
    if (have_calib) pq_cli_calib_free(&calib);
    pq_pass_ctx_free(&ctx);
    pq_pipeline_destroy(pipe);
    pq_graph_destroy(g);
    return rc;
}
