/* `piqc sensitivity MODEL --calib-data DIR`: quantizes each layer alone (after the pipeline's
 * passes before fake-quant) and measures how far the outputs move from FP32, as a table sorted from
 * the most to the least sensitive layer, JSON, an SVG bar chart, and optionally a mixed-precision
 * plan. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib_provider.h"
#include "cli.h"
#include "cmd.h"
#include "frontends/frontends.h"
#include "json.h"
#include "passes/mixed_plan.h"
#include "passes/passes.h"
#include "runtime/calib_drift.h"

#define PQ_SENS_MAX_FORMATS 6

static void pq_sens_help(FILE *f) {
    fprintf(f,
            "usage: piqc sensitivity MODEL.onnx|MODEL.pir --calib-data DIR\n"
            "                        [--pipeline FILE.yaml|PRESET] [--format F] [--group G]\n"
            "                        [--max-samples N] [--json OUT.json] [--svg OUT.svg]\n"
            "                        [--budget-bpw B [--formats F1,F2,...] [--metric M]] [-q]\n\n"
            "For each layer fake-quant would quantize, quantizes THAT LAYER ALONE and measures\n"
            "the drift of the model's outputs from FP32 over the calibration data: cosine over\n"
            "all output elements, max |difference|, and the mean KL divergence of softmax over\n"
            "the last axis of outputs that look like logits or probabilities. Layers are listed\n"
            "from the most to the least sensitive.\n"
            "  --calib-data DIR  <input name>.npy calibration batches (required)\n"
            "  --pipeline P      the passes before the pipeline's fake-quant entry run first\n"
            "                    (rotations, clean-up), and that entry's options (selection,\n"
            "                    format, group, calib) are used; default: the fp32 preset and\n"
            "                    fake-quant's defaults\n"
            "  --format F        piq3|piq2|q3|q2|int8|f16 (default: the fake-quant entry's)\n"
            "  --group G         weights per scale word (default: the fake-quant entry's)\n"
            "  --max-samples N   calibration samples per measurement (default: all)\n"
            "  --json FILE       write the table (and plan) as JSON\n"
            "  --svg FILE        write a bar chart of log10(drift) per layer\n"
            "  --budget-bpw B    also plan formats per layer as the mixed-precision pass would,\n"
            "                    for B bits per weight (measures every candidate format)\n"
            "  --formats LIST    candidate formats of the plan (default piq2,piq3,int8)\n"
            "  --metric M        cosine (1 - cosine, default), kl or max-abs: what the plan\n"
            "                    minimises, the table is sorted by and the chart shows\n"
            "  -q                no progress lines\n");
}

typedef struct pq_sens_args {
    const char *model, *calib_dir, *pipeline, *format, *json, *svg, *metric;
    int64_t group, max_samples;
    double budget;
    bool has_budget, quiet;
    const char *formats[PQ_SENS_MAX_FORMATS];
    uint32_t n_formats;
    char formats_buf[128];
} pq_sens_args;

static bool pq_sens_known_format(const char *s) {
    static const char *const all[] = {"piq3", "piq2", "q3", "q2", "int8", "f16"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, all[i])) return true;
    return false;
}

static int pq_sens_parse(int argc, char **argv, pq_sens_args *a) {
    memset(a, 0, sizeof *a);
    a->metric = "cosine";
    const char *formats = "piq2,piq3,int8";
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            pq_sens_help(stdout);
            return -1;
        }
        if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = true;
            continue;
        }
        if (s[0] != '-') {
            if (a->model) return pq_cli_usage_error("sensitivity", "unexpected argument '%s'", s);
            a->model = s;
            continue;
        }
        if (i + 1 >= argc) return pq_cli_usage_error("sensitivity", "%s needs a value", s);
        const char *v = argv[++i];
        if (!strcmp(s, "--calib-data"))
            a->calib_dir = v;
        else if (!strcmp(s, "--pipeline"))
            a->pipeline = v;
        else if (!strcmp(s, "--format")) {
            if (!pq_sens_known_format(v))
                return pq_cli_usage_error(
                    "sensitivity", "--format '%s': expected piq3, piq2, q3, q2, int8 or f16", v);
            a->format = v;
        } else if (!strcmp(s, "--group")) {
            if (!pq_cli_parse_int(v, 8, 65536, &a->group) || a->group % 8)
                return pq_cli_usage_error("sensitivity",
                                          "--group '%s': expected a multiple of 8 in 8..65536", v);
        } else if (!strcmp(s, "--max-samples")) {
            if (!pq_cli_parse_int(v, 1, INT64_MAX, &a->max_samples))
                return pq_cli_usage_error("sensitivity",
                                          "--max-samples '%s': expected a positive integer", v);
        } else if (!strcmp(s, "--json"))
            a->json = v;
        else if (!strcmp(s, "--svg"))
            a->svg = v;
        else if (!strcmp(s, "--budget-bpw")) {
            char *end = NULL;
            a->budget = strtod(v, &end);
            if (!end || *end || !(a->budget >= 1 && a->budget <= 32))
                return pq_cli_usage_error("sensitivity",
                                          "--budget-bpw '%s': expected a number in 1..32", v);
            a->has_budget = true;
        } else if (!strcmp(s, "--formats"))
            formats = v;
        else if (!strcmp(s, "--metric")) {
            enum pq_mp_metric m;
            if (!pq_mp_metric_from_name(v, &m))
                return pq_cli_usage_error("sensitivity",
                                          "--metric '%s': expected cosine, kl or max-abs", v);
            a->metric = v;
        } else
            return pq_cli_usage_error("sensitivity", "unknown option '%s'", s);
    }
    if (!a->model) return pq_cli_usage_error("sensitivity", "missing MODEL");
    if (!a->calib_dir) return pq_cli_usage_error("sensitivity", "missing --calib-data DIR");
    if (strlen(formats) >= sizeof a->formats_buf)
        return pq_cli_usage_error("sensitivity", "--formats '%s' is too long", formats);
    strcpy(a->formats_buf, formats);
    for (char *tok = strtok(a->formats_buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!pq_sens_known_format(tok))
            return pq_cli_usage_error(
                "sensitivity", "--formats: '%s' is not one of piq3, piq2, q3, q2, int8, f16", tok);
        if (a->n_formats == PQ_SENS_MAX_FORMATS)
            return pq_cli_usage_error("sensitivity", "--formats: at most %d formats",
                                      PQ_SENS_MAX_FORMATS);
        a->formats[a->n_formats++] = tok;
    }
    if (!a->n_formats) return pq_cli_usage_error("sensitivity", "--formats is empty");
    return 0;
}

/* Everything the report needs. */
typedef struct pq_sens {
    const pq_sens_args *a;
    const char *pipeline_name;
    const char *format;
    int64_t group, samples;
    enum pq_mp_metric metric;
    pq_mp_layer *layers;
    uint32_t n;
    pq_drift *drift;   /* per layer, in --format */
    uint32_t *order;   /* layer indices, most sensitive first */
    pq_drift baseline; /* the graph before any layer is quantized */
    /* plan (--budget-bpw) */
    double *plan_drift; /* n x n_formats metric values */
    uint64_t *plan_bits;
    uint32_t *choice;
    uint64_t plan_total_bits;
    int64_t weights;
} pq_sens;

static double pq_sens_key(const pq_sens *s, uint32_t l) {
    double v = pq_mp_metric_value(s->metric, &s->drift[l]);
    return isfinite(v) ? v : (isnan(v) ? -1.0 : 1e300);
}

static int pq_sens_cmp_ctx_sort(const pq_sens *s, uint32_t a, uint32_t b) {
    double ka = pq_sens_key(s, a), kb = pq_sens_key(s, b);
    if (ka != kb) return ka > kb ? -1 : 1;
    return a < b ? -1 : (a > b);
}

/* Insertion sort (deterministic; layer counts are small). */
static void pq_sens_sort(pq_sens *s) {
    for (uint32_t i = 0; i < s->n; i++)
        s->order[i] = i;
    for (uint32_t i = 1; i < s->n; i++) {
        uint32_t x = s->order[i], j = i;
        while (j > 0 && pq_sens_cmp_ctx_sort(s, x, s->order[j - 1]) < 0) {
            s->order[j] = s->order[j - 1];
            j--;
        }
        s->order[j] = x;
    }
}

static const char *pq_sens_metric_label(enum pq_mp_metric m) {
    return m == PQ_MP_KL ? "KL" : m == PQ_MP_MAX_ABS ? "max abs" : "1 - cosine";
}

/* ---- table and JSON ----------------------------------------------------------------------- */

static void pq_sens_print(FILE *f, const pq_sens *s) {
    bool plan = s->choice != NULL;
    fprintf(f, "sensitivity of %s: each layer alone as %s", s->a->model, s->format);
    if (strcmp(s->format, "int8") && strcmp(s->format, "f16"))
        fprintf(f, " G=%lld", (long long)s->group);
    fprintf(f, ", %lld calibration samples, pipeline %s\n", (long long)s->samples,
            s->pipeline_name);
    fprintf(f, "baseline (no layer quantized): cosine %.8f, max abs %.3e", s->baseline.cosine,
            s->baseline.max_abs);
    if (s->baseline.has_kl) fprintf(f, ", KL %.3e", s->baseline.kl);
    fprintf(f, "\n%4s  %-40s %-8s %-14s %8s  %12s %11s %11s %11s%s\n", "rank", "layer", "op",
            "weight", "weights", "cosine", "1-cosine", "max abs", "KL", plan ? "  plan" : "");
    for (uint32_t r = 0; r < s->n; r++) {
        uint32_t l = s->order[r];
        const pq_mp_layer *ly = &s->layers[l];
        const pq_drift *d = &s->drift[l];
        char shape[64], kl[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)ly->rows, (long long)ly->cols);
        if (d->has_kl)
            snprintf(kl, sizeof kl, "%.3e", d->kl);
        else
            snprintf(kl, sizeof kl, "-");
        fprintf(f, "%4u  %-40s %-8s %-14s %8lld  %12.8f %11.3e %11.3e %11s", r + 1, ly->node_name,
                pq_op_name(ly->op), shape, (long long)(ly->rows * ly->cols), d->cosine,
                1.0 - d->cosine, d->max_abs, kl);
        if (plan) fprintf(f, "  %s", s->a->formats[s->choice[l]]);
        fputc('\n', f);
    }
    if (plan) {
        double pred = 0;
        for (uint32_t l = 0; l < s->n; l++)
            pred += s->plan_drift[(size_t)l * s->a->n_formats + s->choice[l]];
        fprintf(f,
                "plan for --budget-bpw %g (%s, G=%lld): %llu bits over %lld weights = %.4f bits "
                "per weight, predicted %s sum %.4e\n",
                s->a->budget, s->a->metric, (long long)s->group,
                (unsigned long long)s->plan_total_bits, (long long)s->weights,
                s->weights ? (double)s->plan_total_bits / (double)s->weights : 0.0,
                pq_sens_metric_label(s->metric), pred);
    }
}

static void pq_sens_json_drift(pq_json *j, const pq_drift *d) {
    pq_json_key(j, "cosine");
    pq_json_number(j, d->cosine);
    pq_json_key(j, "one_minus_cosine");
    pq_json_number(j, 1.0 - d->cosine);
    pq_json_key(j, "max_abs");
    pq_json_number(j, d->max_abs);
    pq_json_key(j, "kl");
    if (d->has_kl)
        pq_json_number(j, d->kl);
    else
        pq_json_null(j);
}

/* ---- output files --------------------------------------------------------------------------
 * A regular (or new) output file is written atomically (temporary file, then rename), so a failed
 * run leaves no partial file; an existing non-regular target (/dev/null, /dev/full, a FIFO) is
 * written in place, never replaced. Errors name the path and the reason. */
typedef struct pq_sens_out {
    pq_atomic_file af; /* af.f set: atomic */
    FILE *direct;      /* set: written in place */
    const char *path;
} pq_sens_out;

static enum pq_status pq_sens_out_open(pq_sens_out *o, const char *path, FILE **f, pq_error *err) {
    memset(o, 0, sizeof *o);
    o->path = path;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': it is a directory", path);
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        o->direct = fopen(path, "w");
        if (!o->direct)
            return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        *f = o->direct;
        return PQ_OK;
    }
    PQ_TRY(pq_atomic_open(&o->af, path, err));
    *f = o->af.f;
    return PQ_OK;
}

/* Finishes the file (ok: the writes so far succeeded): IO naming the path when anything failed. */
static enum pq_status pq_sens_out_close(pq_sens_out *o, bool ok, pq_error *err) {
    if (o->direct) {
        errno = 0;
        bool bad = ferror(o->direct) != 0;
        int e = errno;
        if (fclose(o->direct) != 0) {
            bad = true;
            e = errno;
        }
        o->direct = NULL;
        if (!ok || bad)
            return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", o->path,
                                e ? strerror(e) : "write error");
        return PQ_OK;
    }
    if (!ok || ferror(o->af.f)) {
        int e = errno;
        pq_atomic_abort(&o->af);
        return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", o->path,
                            e ? strerror(e) : "write error");
    }
    return pq_atomic_commit(&o->af, err);
}

static enum pq_status pq_sens_write_json(const pq_sens *s, const char *path, pq_error *err) {
    pq_sens_out out;
    FILE *f = NULL;
    PQ_TRY(pq_sens_out_open(&out, path, &f, err));
    pq_json j;
    pq_json_init(&j, f);
    pq_json_begin_object(&j);
    pq_json_key(&j, "model");
    pq_json_string(&j, s->a->model);
    pq_json_key(&j, "pipeline");
    pq_json_string(&j, s->pipeline_name);
    pq_json_key(&j, "format");
    pq_json_string(&j, s->format);
    pq_json_key(&j, "group");
    pq_json_int(&j, s->group);
    pq_json_key(&j, "samples");
    pq_json_int(&j, s->samples);
    pq_json_key(&j, "metric");
    pq_json_string(&j, s->a->metric);
    pq_json_key(&j, "baseline");
    pq_json_begin_object(&j);
    pq_sens_json_drift(&j, &s->baseline);
    pq_json_end_object(&j);
    pq_json_key(&j, "layers");
    pq_json_begin_array(&j);
    for (uint32_t r = 0; r < s->n; r++) {
        uint32_t l = s->order[r];
        const pq_mp_layer *ly = &s->layers[l];
        pq_json_begin_object(&j);
        pq_json_key(&j, "rank");
        pq_json_int(&j, r + 1);
        pq_json_key(&j, "layer");
        pq_json_string(&j, ly->node_name);
        pq_json_key(&j, "op");
        pq_json_string(&j, pq_op_name(ly->op));
        pq_json_key(&j, "weight");
        pq_json_string(&j, ly->value_name);
        pq_json_key(&j, "shape");
        pq_json_begin_array(&j);
        for (int d = 0; d < ly->rank; d++)
            pq_json_int(&j, ly->dims[d]);
        pq_json_end_array(&j);
        pq_json_key(&j, "rows");
        pq_json_int(&j, ly->rows);
        pq_json_key(&j, "cols");
        pq_json_int(&j, ly->cols);
        pq_json_key(&j, "weights");
        pq_json_int(&j, ly->rows * ly->cols);
        pq_json_key(&j, "nodes");
        pq_json_int(&j, ly->n_nodes);
        pq_sens_json_drift(&j, &s->drift[l]);
        if (s->choice) {
            size_t k = (size_t)l * s->a->n_formats + s->choice[l];
            pq_json_key(&j, "plan_format");
            pq_json_string(&j, s->a->formats[s->choice[l]]);
            pq_json_key(&j, "plan_bits");
            pq_json_int(&j, (int64_t)s->plan_bits[k]);
            pq_json_key(&j, "drift_by_format");
            pq_json_begin_object(&j);
            for (uint32_t fi = 0; fi < s->a->n_formats; fi++) {
                pq_json_key(&j, s->a->formats[fi]);
                pq_json_number(&j, s->plan_drift[(size_t)l * s->a->n_formats + fi]);
            }
            pq_json_end_object(&j);
        }
        pq_json_end_object(&j);
    }
    pq_json_end_array(&j);
    if (s->choice) {
        pq_json_key(&j, "plan");
        pq_json_begin_object(&j);
        pq_json_key(&j, "budget_bpw");
        pq_json_number(&j, s->a->budget);
        pq_json_key(&j, "bits");
        pq_json_int(&j, (int64_t)s->plan_total_bits);
        pq_json_key(&j, "weights");
        pq_json_int(&j, s->weights);
        pq_json_key(&j, "bpw");
        pq_json_number(&j, s->weights ? (double)s->plan_total_bits / (double)s->weights : 0.0);
        pq_json_key(&j, "formats");
        pq_json_begin_array(&j);
        for (uint32_t fi = 0; fi < s->a->n_formats; fi++)
            pq_json_string(&j, s->a->formats[fi]);
        pq_json_end_array(&j);
        pq_json_end_object(&j);
    }
    pq_json_end_object(&j);
    fputc('\n', f);
    return pq_sens_out_close(&out, true, err);
}

/* ---- SVG ---------------------------------------------------------------------------------- */

static void pq_svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20) fputc(*s, f);
            break;
        }
    }
}

/* Fill colour of a format in the chart. */
static const char *pq_svg_color(const char *format) {
    static const struct {
        const char *f, *c;
    } map[] = {{"piq2", "#d62728"}, {"q2", "#ff9896"},   {"piq3", "#1f77b4"},
               {"q3", "#aec7e8"},   {"int8", "#2ca02c"}, {"f16", "#9467bd"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].f, format)) return map[i].c;
    return "#7f7f7f";
}

static enum pq_status pq_sens_write_svg(const pq_sens *s, const char *path, pq_error *err) {
    pq_sens_out out;
    FILE *f = NULL;
    PQ_TRY(pq_sens_out_open(&out, path, &f, err));
    /* log10 of each layer's metric value (tiny / zero values clamped to 1e-12) */
    double lo = 0, hi = 0;
    bool first = true;
    for (uint32_t l = 0; l < s->n; l++) {
        double v = pq_mp_metric_value(s->metric, &s->drift[l]);
        double lv = isfinite(v) && v > 1e-12 ? log10(v) : -12.0;
        if (first || lv < lo) lo = lv;
        if (first || lv > hi) hi = lv;
        first = false;
    }
    lo = floor(lo) - 1;
    hi = ceil(hi);
    if (hi <= lo) hi = lo + 1;
    size_t label_chars = 12;
    for (uint32_t l = 0; l < s->n; l++)
        if (strlen(s->layers[l].node_name) > label_chars)
            label_chars = strlen(s->layers[l].node_name);
    if (label_chars > 60) label_chars = 60;
    const int row = 24, top = 78, plot_w = 560;
    const int left = 16 + (int)label_chars * 7 + 12;
    const int right_pad = 170;
    const int width = left + plot_w + right_pad;
    const int plot_h = (int)s->n * row;
    const int height = top + plot_h + 78;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            width, height, width, height, width, height);
    fprintf(f,
            "<text x=\"%d\" y=\"26\" font-size=\"17\" font-weight=\"bold\">Per-layer "
            "sensitivity: ",
            16);
    pq_svg_text(f, s->a->model);
    fprintf(f, "</text>\n<text x=\"16\" y=\"48\" font-size=\"12\" fill=\"#333\">Each layer "
               "quantized alone to ");
    pq_svg_text(f, s->format);
    if (strcmp(s->format, "int8") && strcmp(s->format, "f16"))
        fprintf(f, " (G=%lld)", (long long)s->group);
    fprintf(f,
            "; output drift vs FP32 over %lld calibration samples; longer bar = more "
            "sensitive</text>\n",
            (long long)s->samples);
    /* grid and ticks */
    for (int d = (int)lo; d <= (int)hi; d++) {
        double x = left + (d - lo) / (hi - lo) * plot_w;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n"
                "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">1e%d</text>\n",
                x, top - 4, x, top + plot_h, x, top + plot_h + 16, d);
    }
    for (uint32_t r = 0; r < s->n; r++) {
        uint32_t l = s->order[r];
        double v = pq_mp_metric_value(s->metric, &s->drift[l]);
        double lv = isfinite(v) && v > 1e-12 ? log10(v) : -12.0;
        double w = (lv - lo) / (hi - lo) * plot_w;
        if (w < 1) w = 1;
        int y = top + (int)r * row;
        const char *fmt = s->choice ? s->a->formats[s->choice[l]] : s->format;
        char name[64];
        snprintf(name, sizeof name, "%s", s->layers[l].node_name);
        if (strlen(s->layers[l].node_name) > 60) strcpy(name + 56, "...");
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 8,
                y + 16);
        pq_svg_text(f, name);
        fprintf(f,
                "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n"
                "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%.2e%s",
                left, y + 4, w, row - 8, pq_svg_color(fmt), left + w + 6, y + 16, v,
                s->choice ? " \xe2\x86\x92 " : "");
        if (s->choice) pq_svg_text(f, fmt);
        fprintf(f, "</text>\n");
    }
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n",
            left, top - 4, left, top + plot_h, left, top + plot_h, left + plot_w, top + plot_h);
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s of the outputs "
            "vs FP32 (log scale)</text>\n",
            left + plot_w / 2, top + plot_h + 38, pq_sens_metric_label(s->metric));
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %d %d)\">layer</text>\n",
            12, top + plot_h / 2, 12, top + plot_h / 2);
    /* legend */
    int lx = 16, ly = top + plot_h + 60;
    if (s->choice) {
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" font-size=\"12\">format under --budget-bpw %g:</text>\n",
                lx, ly, s->a->budget);
        lx += 200;
        for (uint32_t fi = 0; fi < s->a->n_formats; fi++) {
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n"
                    "<text x=\"%d\" y=\"%d\" font-size=\"12\">",
                    lx, ly - 10, pq_svg_color(s->a->formats[fi]), lx + 18, ly);
            pq_svg_text(f, s->a->formats[fi]);
            fprintf(f, "</text>\n");
            lx += 70;
        }
    } else {
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n"
                "<text x=\"%d\" y=\"%d\" font-size=\"12\">layer quantized alone to ",
                lx, ly - 10, pq_svg_color(s->format), lx + 18, ly);
        pq_svg_text(f, s->format);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return pq_sens_out_close(&out, true, err);
}

/* ---- measurement -------------------------------------------------------------------------- */

/* Index of the first fake-quant entry of p, or p->n. */
static uint32_t pq_sens_fq_entry(const pq_pipeline *p) {
    for (uint32_t i = 0; i < p->n; i++)
        if (!strcmp(p->entries[i].pass->name, "fake-quant")) return i;
    return p->n;
}

/* Runs the passes of p before index `end` (all but mixed-precision, fake-quant, lora and
 * lower-quant when p has no fake-quant entry) over g. */
static enum pq_status pq_sens_prefix(pq_graph *g, const pq_pipeline *p, uint32_t end,
                                     pq_pass_ctx *ctx, pq_error *err) {
    pq_pipeline sub = *p;
    sub.entries = pq_calloc(p->n + 1, sizeof *sub.entries);
    if (!sub.entries) return pq_error_nomem(err, "pipeline prefix");
    sub.n = 0;
    for (uint32_t i = 0; i < end; i++) {
        const char *name = p->entries[i].pass->name;
        if (!strcmp(name, "mixed-precision") || !strcmp(name, "fake-quant") ||
            !strcmp(name, "lora") || !strcmp(name, "lower-quant"))
            continue;
        sub.entries[sub.n++] = p->entries[i];
    }
    pq_pass_manager_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.log = stderr;
    enum pq_status st = pq_pipeline_run(g, &sub, &mo, ctx, NULL, err);
    pq_free(sub.entries);
    return st;
}

static void pq_sens_free(pq_sens *s) {
    pq_mp_layers_free(s->layers, s->n);
    pq_free(s->drift);
    pq_free(s->order);
    pq_free(s->plan_drift);
    pq_free(s->plan_bits);
    pq_free(s->choice);
}

static enum pq_status pq_sens_measure(pq_sens *s, const pq_graph *g, const pq_pass_opts *base,
                                      const pq_calib_provider *prov, pq_error *err) {
    const pq_sens_args *a = s->a;
    uint32_t nf = a->n_formats;
    for (uint32_t l = 0; l < s->n; l++) {
        const pq_mp_layer *ly = &s->layers[l];
        PQ_TRY(
            pq_mp_probe(g, ly, base, s->format, s->group, prov, a->max_samples, &s->drift[l], err));
        if (!a->quiet) {
            fprintf(stderr, "sensitivity: [%u/%u] %s (%s %lldx%lld) as %s: 1-cosine %.3e", l + 1,
                    s->n, ly->node_name, pq_op_name(ly->op), (long long)ly->rows,
                    (long long)ly->cols, s->format, 1.0 - s->drift[l].cosine);
            if (s->drift[l].has_kl) fprintf(stderr, ", KL %.3e", s->drift[l].kl);
            fputc('\n', stderr);
        }
        if (!s->choice) continue;
        for (uint32_t fi = 0; fi < nf; fi++) {
            size_t k = (size_t)l * nf + fi;
            s->plan_bits[k] = 8u * pq_mp_format_bytes(a->formats[fi], ly->rows, ly->cols, s->group);
            pq_drift d = s->drift[l];
            /* the main measurement is reused when it used the same format and options */
            if (strcmp(a->formats[fi], s->format) != 0 || base)
                PQ_TRY(pq_mp_probe(g, ly, NULL, a->formats[fi], s->group, prov, a->max_samples, &d,
                                   err));
            if (s->metric == PQ_MP_KL && !d.has_kl)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "--metric kl needs a graph output that looks like logits or "
                                    "probabilities (float, rank >= 2, last dim >= 2)");
            s->plan_drift[k] = pq_mp_metric_value(s->metric, &d);
            if (!a->quiet)
                fprintf(stderr, "sensitivity:        as %-5s %s %.3e\n", a->formats[fi],
                        pq_sens_metric_label(s->metric), s->plan_drift[k]);
        }
    }
    return PQ_OK;
}

int pq_cmd_sensitivity(int argc, char **argv) {
    pq_sens_args a;
    int rc = pq_sens_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    pq_pipeline *pipe = NULL, *defaults = NULL;
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    pq_cli_calib calib;
    memset(&calib, 0, sizeof calib);
    bool have_calib = false;
    pq_sens s;
    memset(&s, 0, sizeof s);
    s.a = &a;
    pq_mp_metric_from_name(a.metric, &s.metric);

    if (pq_pipeline_load(a.pipeline ? a.pipeline : "fp32", &pipe, &err) != PQ_OK) goto fail;
    s.pipeline_name = pipe->source;
    if (pq_cli_load_model(a.model, true, &g, &err) != PQ_OK) goto fail;
    if (pq_cli_calib_init(&calib, g, a.calib_dir, &err) != PQ_OK) goto fail;
    have_calib = true;
    ctx.calib = &calib.provider;
    ctx.verbose = a.quiet ? 0 : 1;
    ctx.progress = !a.quiet;

    uint32_t fq = pq_sens_fq_entry(pipe);
    const pq_pass_opts *base = fq < pipe->n ? &pipe->entries[fq].opts : NULL;
    if (!base) {
        static const char *const names[] = {"fake-quant"};
        if (pq_pipeline_from_passes(names, 1, &defaults, &err) != PQ_OK) goto fail;
    }
    const pq_pass_opts *sel = base ? base : &defaults->entries[0].opts;
    s.format = a.format ? a.format : pq_opts_string(sel, "format");
    if (!s.format) s.format = "piq3";
    s.group = a.group ? a.group : pq_opts_int(sel, "group");
    if (s.group <= 0) s.group = 256;

    if (pq_sens_prefix(g, pipe, fq, &ctx, &err) != PQ_OK) goto fail;
    if (pq_mp_layers(g, sel, &s.layers, &s.n, &err) != PQ_OK) goto fail;
    if (pq_drift_samples(calib.reference, &calib.files.set, a.max_samples, &s.samples, &err) !=
        PQ_OK)
        goto fail;
    if (calib.provider.drift(calib.provider.ctx, g, a.max_samples, &s.baseline, &err) != PQ_OK)
        goto fail;
    s.drift = pq_calloc(s.n + 1, sizeof *s.drift);
    s.order = pq_calloc(s.n + 1, sizeof *s.order);
    if (!s.drift || !s.order) {
        pq_error_nomem(&err, "sensitivity table");
        goto fail;
    }
    if (a.has_budget) {
        size_t cells = (size_t)s.n * a.n_formats + 1;
        s.plan_drift = pq_calloc(cells, sizeof *s.plan_drift);
        s.plan_bits = pq_calloc(cells, sizeof *s.plan_bits);
        s.choice = pq_calloc(s.n + 1, sizeof *s.choice);
        if (!s.plan_drift || !s.plan_bits || !s.choice) {
            pq_error_nomem(&err, "sensitivity plan");
            goto fail;
        }
    }
    if (!a.quiet)
        fprintf(stderr, "sensitivity: %u layers, %lld samples per measurement\n", s.n,
                (long long)s.samples);
    if (pq_sens_measure(&s, g, base, &calib.provider, &err) != PQ_OK) goto fail;
    if (a.has_budget) {
        for (uint32_t l = 0; l < s.n; l++)
            s.weights += s.layers[l].rows * s.layers[l].cols;
        if (pq_mp_choose(s.n, a.n_formats, s.plan_drift, s.plan_bits, s.weights, a.budget, s.choice,
                         &s.plan_total_bits, &err) != PQ_OK)
            goto fail;
    }
    pq_sens_sort(&s);
    pq_sens_print(stdout, &s);
    if (a.json && pq_sens_write_json(&s, a.json, &err) != PQ_OK) goto fail;
    if (a.svg && pq_sens_write_svg(&s, a.svg, &err) != PQ_OK) {
        /* no output of a failed run is left: drop the JSON just written (a regular file only) */
        pq_cli_drop_output(a.json);
        goto fail;
    }
    goto done;
fail:
    rc = pq_cli_fail("sensitivity", &err);
done:
    pq_sens_free(&s);
    if (have_calib) pq_cli_calib_free(&calib);
    pq_pass_ctx_free(&ctx);
    pq_pipeline_destroy(defaults);
    pq_pipeline_destroy(pipe);
    pq_graph_destroy(g);
    return rc;
}
