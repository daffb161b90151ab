/* `piqc quantize MODEL --format F`: weight-only post-training quantization of every MatMul,
 * Gemm, Conv and ConvTranspose weight into PiQ3/PiQ2/Q3/Q2/INT8, with per-tensor and aggregate
 * quality metrics (SPEC section 5), an optional comparison format, JSON report and GGUF artifact.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "artifact_load.h"
#include "backends/quant/quant.h"
#include "calib_data.h"
#include "cli.h"
#include "cmd.h"
#include "frontends/frontends.h"
#include "json.h"
#include "passes/passes.h"

static void pq_quantize_help(FILE *f) {
    fprintf(
        f, "usage: piqc quantize MODEL.onnx --format piq3|piq2|q3|q2|int8 [--group G]\n"
           "                     [--calib absmax|mse|weighted] [--calib-data DIR]\n"
           "                     [--compare FORMAT] [--json OUT.json] [-o OUT.gguf]\n\n"
           "Quantizes the weights of every MatMul, Gemm, Conv and ConvTranspose whose weight has\n"
           ">= 2 dims and >= 1024 elements and reports per-tensor and aggregate MSE, spectral\n"
           "distortion (dB), cosine and outlier retention, and bits per weight (stored bytes).\n"
           "  --format F      piq3 (3 bits, step a*pi/4), piq2 (2 bits, a*pi/3), q3/q2 (uniform\n"
           "                  baselines, signed absmax), int8 (per-channel symmetric)\n"
           "  --group G       weights per scale (multiple of 8, default 256)\n"
           "  --calib C       scale selection for piq*/q*: mse (default for piq), absmax (default\n"
           "                  for q3/q2), weighted (needs --calib-data)\n"
           "  --calib-data D  directory with <input name>.npy calibration batches\n"
           "  --compare F     also quantize with format F (its own default calibration)\n"
           "  --json FILE     write the report as JSON\n"
           "  -o FILE.gguf    write an artifact: graph + packed weights (piqc run FILE.gguf)\n");
}

/* Default calibration of a format when none is given (SPEC: mse for PiQ, baseline for Q). */
static enum pq_calib pq_default_calib(const pq_qchoice *c) {
    if (!c->is_int8 && (c->qf == PQ_QFORMAT_Q3 || c->qf == PQ_QFORMAT_Q2)) return PQ_CALIB_ABSMAX;
    return PQ_CALIB_MSE;
}

static void pq_print_metrics_cells(const pq_metrics *m) {
    printf(" %6.3f %10.3e %8.2f %8.5f %6.3f", m->bpw_actual, m->mse, m->sd_db, m->cosine,
           m->outlier_retention);
}

static void pq_json_metrics(pq_json *j, const pq_metrics *m, bool aggregate, double nominal) {
    pq_json_begin_object(j);
    pq_json_key(j, "bpw");
    pq_json_number(j, m->bpw_actual);
    if (aggregate) {
        pq_json_key(j, "bpw_nominal");
        pq_json_number(j, nominal);
    }
    pq_json_key(j, "mse");
    pq_json_number(j, m->mse);
    pq_json_key(j, "sd_db");
    pq_json_number(j, m->sd_db);
    pq_json_key(j, "cosine");
    pq_json_number(j, m->cosine);
    pq_json_key(j, "outlier_retention");
    pq_json_number(j, m->outlier_retention);
    pq_json_end_object(j);
}

/* Strict wins of a over b on the four aggregate metrics (SPEC section 5, gate G1). */
static int pq_g1_wins(const pq_metrics *a, const pq_metrics *b) {
    return (a->mse < b->mse) + (a->sd_db < b->sd_db) + (a->cosine > b->cosine) +
           (a->outlier_retention > b->outlier_retention);
}

static enum pq_status pq_write_json(const char *path, const char *model, const pq_qreport *r,
                                    pq_error *err) {
    pq_atomic_file af;
    PQ_TRY(pq_atomic_open(&af, path, err));
    pq_json j;
    pq_json_init(&j, af.f);
    pq_json_begin_object(&j);
    pq_json_key(&j, "model");
    pq_json_string(&j, model);
    pq_json_key(&j, "format");
    pq_json_string(&j, r->fmt.name);
    pq_json_key(&j, "group");
    pq_json_int(&j, r->group);
    pq_json_key(&j, "calib");
    pq_json_string(&j, pq_calib_name(r->calib));
    pq_json_key(&j, "compare");
    pq_json_string(&j, r->has_compare ? r->cmp.name : NULL);
    pq_json_key(&j, "tensors");
    pq_json_begin_array(&j);
    for (uint32_t i = 0; i < r->n; i++) {
        const pq_qtensor *t = &r->tensors[i];
        pq_json_begin_object(&j);
        pq_json_key(&j, "name");
        pq_json_string(&j, t->view.name);
        pq_json_key(&j, "shape");
        pq_json_begin_array(&j);
        for (int d = 0; d < t->view.rank; d++)
            pq_json_int(&j, t->view.dims[d]);
        pq_json_end_array(&j);
        pq_json_key(&j, "rows");
        pq_json_int(&j, t->view.batch * t->view.rows);
        pq_json_key(&j, "cols");
        pq_json_int(&j, t->view.cols);
        const pq_metrics *m = &t->metrics;
        pq_json_key(&j, "bpw");
        pq_json_number(&j, m->bpw_actual);
        pq_json_key(&j, "mse");
        pq_json_number(&j, m->mse);
        pq_json_key(&j, "sd_db");
        pq_json_number(&j, m->sd_db);
        pq_json_key(&j, "cosine");
        pq_json_number(&j, m->cosine);
        pq_json_key(&j, "outlier_retention");
        pq_json_number(&j, m->outlier_retention);
        pq_json_key(&j, "compare");
        if (r->has_compare)
            pq_json_metrics(&j, &t->cmp_metrics, false, 0);
        else
            pq_json_null(&j);
        pq_json_end_object(&j);
    }
    pq_json_end_array(&j);
    pq_json_key(&j, "aggregate");
    pq_json_begin_object(&j);
    pq_json_key(&j, r->fmt.name);
    pq_json_metrics(&j, &r->aggregate, true, pq_qchoice_nominal_bpw(&r->fmt, r->group));
    if (r->has_compare && strcmp(r->cmp.name, r->fmt.name) != 0) {
        pq_json_key(&j, r->cmp.name);
        pq_json_metrics(&j, &r->cmp_aggregate, true, pq_qchoice_nominal_bpw(&r->cmp, r->group));
    }
    pq_json_end_object(&j);
    if (r->has_compare && !r->fmt.is_int8 && r->fmt.qf == PQ_QFORMAT_PIQ3 && !r->cmp.is_int8 &&
        r->cmp.qf == PQ_QFORMAT_Q3) {
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

int pq_cmd_quantize(int argc, char **argv) {
    const char *model = NULL, *json = NULL, *out = NULL, *calib_dir = NULL;
    const char *fmt_name = NULL, *cmp_name = NULL, *calib_name = NULL;
    int64_t group = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pq_quantize_help(stdout);
            return 0;
        } else if (!strcmp(a, "--format"))
            slot = &fmt_name;
        else if (!strcmp(a, "--compare"))
            slot = &cmp_name;
        else if (!strcmp(a, "--calib"))
            slot = &calib_name;
        else if (!strcmp(a, "--calib-data"))
            slot = &calib_dir;
        else if (!strcmp(a, "--json"))
            slot = &json;
        else if (!strcmp(a, "-o"))
            slot = &out;
        else if (!strcmp(a, "--group")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 8, (int64_t)1 << 30, &group) || group % 8)
                return pq_cli_usage_error("quantize", "--group needs a multiple of 8 (>= 8)");
            continue;
        } else if (a[0] == '-') {
            return pq_cli_usage_error("quantize", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
            continue;
        } else {
            return pq_cli_usage_error("quantize", "unexpected argument '%s'", a);
        }
        if (++i >= argc) return pq_cli_usage_error("quantize", "%s needs a value", a);
        *slot = argv[i];
    }
    if (!model) return pq_cli_usage_error("quantize", "missing MODEL");
    if (!fmt_name) return pq_cli_usage_error("quantize", "missing --format");
    pq_qreport rep;
    memset(&rep, 0, sizeof rep);
    rep.group = group;
    if (!pq_qchoice_parse(fmt_name, &rep.fmt))
        return pq_cli_usage_error("quantize", "unknown format '%s' (piq3, piq2, q3, q2, int8)",
                                  fmt_name);
    if (cmp_name) {
        if (!pq_qchoice_parse(cmp_name, &rep.cmp))
            return pq_cli_usage_error("quantize", "unknown --compare format '%s'", cmp_name);
        rep.has_compare = true;
        rep.cmp_calib = pq_default_calib(&rep.cmp);
    }
    rep.calib = pq_default_calib(&rep.fmt);
    if (calib_name && !pq_calib_from_name(calib_name, &rep.calib))
        return pq_cli_usage_error("quantize", "unknown --calib '%s' (absmax, mse, weighted)",
                                  calib_name);
    if (rep.calib == PQ_CALIB_GPTQ)
        return pq_cli_usage_error("quantize", "--calib gptq is not implemented yet");
    if (rep.calib == PQ_CALIB_WEIGHTED && !calib_dir)
        return pq_cli_usage_error("quantize", "--calib weighted needs --calib-data DIR");
    if (out && rep.fmt.is_int8)
        return pq_cli_usage_error("quantize", "-o with --format int8 is not supported yet "
                                              "(the INT8 artifact comes with the INT8 path)");

    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    int rc = 0;
    pq_calib_files calib;
    pq_importance imp;
    bool have_calib = false;
    memset(&calib, 0, sizeof calib);
    memset(&imp, 0, sizeof imp);
    if (pq_cli_load_model(model, true, &g, &err) != PQ_OK) return pq_cli_fail("quantize", &err);
    if (calib_dir) {
        if (pq_calib_files_load(g, calib_dir, &calib, &err) != PQ_OK) goto fail;
        have_calib = true;
        if (rep.calib == PQ_CALIB_WEIGHTED) {
            pq_weight_view *views = NULL;
            uint32_t nv = 0;
            if (pq_weights_find(g, 1024, &views, &nv, &err) != PQ_OK) goto fail;
            enum pq_status ist = pq_calib_importance(g, &calib.set, views, nv, &imp, &err);
            pq_free(views);
            if (ist != PQ_OK) goto fail;
        }
    }
    if (pq_quantize_weights(g, &imp, &rep, &err) != PQ_OK) goto fail;

    printf("%s: %u weight tensors quantized to %s (G=%lld, calib %s)%s%s\n", model, rep.n,
           rep.fmt.name, (long long)group, pq_calib_name(rep.calib),
           rep.has_compare ? ", compared with " : "", rep.has_compare ? rep.cmp.name : "");
    printf("%-32s %-18s %-13s %6s %10s %8s %8s %6s", "tensor", "shape", "rows x cols", "bpw", "mse",
           "sd_dB", "cosine", "outl");
    if (rep.has_compare) printf(" | %6s %10s %8s %8s %6s", "bpw", "mse", "sd_dB", "cosine", "outl");
    printf("\n");
    for (uint32_t i = 0; i < rep.n; i++) {
        const pq_qtensor *t = &rep.tensors[i];
        char shape[64], rc_s[40];
        pq_shape_format(t->view.rank, t->view.dims, shape, sizeof shape);
        snprintf(rc_s, sizeof rc_s, "%lldx%lld", (long long)(t->view.batch * t->view.rows),
                 (long long)t->view.cols);
        printf("%-32.32s %-18.18s %-13s", t->view.name, shape, rc_s);
        pq_print_metrics_cells(&t->metrics);
        if (rep.has_compare) {
            printf(" |");
            pq_print_metrics_cells(&t->cmp_metrics);
        }
        printf("\n");
    }
    printf("%-32s %-18s %-13s", "aggregate", "", "");
    pq_print_metrics_cells(&rep.aggregate);
    if (rep.has_compare) {
        printf(" |");
        pq_print_metrics_cells(&rep.cmp_aggregate);
    }
    printf("\nnominal bpw %.4f", pq_qchoice_nominal_bpw(&rep.fmt, group));
    if (rep.has_compare) printf(" | %.4f", pq_qchoice_nominal_bpw(&rep.cmp, group));
    printf("\n");
    if (rep.has_compare && !rep.fmt.is_int8 && rep.fmt.qf == PQ_QFORMAT_PIQ3 && !rep.cmp.is_int8 &&
        rep.cmp.qf == PQ_QFORMAT_Q3) {
        int wins = pq_g1_wins(&rep.aggregate, &rep.cmp_aggregate);
        printf("G1 (PiQ3 %s vs uniform Q3 absmax, strict, aggregate): %d of 4 metrics better -> "
               "%s\n",
               pq_calib_name(rep.calib), wins, wins >= 2 ? "PASS" : "FAIL");
    }
    if (json && pq_write_json(json, model, &rep, &err) != PQ_OK) goto fail;
    if (out) {
        pq_provenance prov = {.calib_sha256 = have_calib ? calib.sha256 : "",
                              .calib_samples = have_calib ? (uint64_t)calib.set.samples : 0,
                              .calib_method = pq_calib_name(rep.calib),
                              .timestamp = NULL};
        if (pq_cli_write_artifact(g, &rep, &prov, out, &err) != PQ_OK) goto fail;
    }
    if (out) printf("wrote %s\n", out);
    goto done;
fail:
    rc = pq_cli_fail("quantize", &err);
done:
    if (have_calib) pq_calib_files_free(&calib);
    pq_importance_free(&imp);
    pq_qreport_free(&rep);
    pq_graph_destroy(g);
    return rc;
}
