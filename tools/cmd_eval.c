/* `piqc eval MODEL --data DIR`: runs a model or compiled artifact over a whole data folder in
 * batches and reports top-1 accuracy, perplexity, or cosine similarity against a reference. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "eval_metrics.h"
#include "json.h"
#include "runtime/dataset.h"
#include "runtime/runtime.h"

enum pq_eval_metric { PQ_METRIC_NONE, PQ_METRIC_ACCURACY, PQ_METRIC_PERPLEXITY, PQ_METRIC_COSINE };

static const char *const pq_metric_names[] = {"none", "accuracy", "perplexity", "cosine"};

typedef struct pq_eval_args {
    const char *model, *data, *reference;
    enum pq_eval_metric metric;
    int64_t batch, threads;
    bool batch_given, json;
} pq_eval_args;

/* Everything one evaluation holds; freed by pq_eval_free. */
typedef struct pq_eval {
    pq_graph *g, *ref;
    pq_dataset *ds;
    pq_session *s, *rs;
    pq_tensor **in, *labels, **outs, **routs;
    const pq_tensor **ref_in; /* the reference's inputs: borrowed from in, by name */
    const char **out_names;
    int64_t *idx;
    int64_t cur_n; /* samples the batch tensors hold */
    pq_eval_stats st;
    enum pq_eval_logp logp;
} pq_eval;

static void pq_eval_help(FILE *f) {
    fprintf(
        f,
        "usage: piqc eval MODEL --data DIR [--metric accuracy|perplexity|cosine]\n"
        "                 [--reference MODEL.onnx] [--batch B] [--threads N] [--json]\n\n"
        "Runs MODEL (.onnx, .pir or a compiled .gguf) over every sample of a data folder and\n"
        "prints one metric of output 0 (docs/eval.md).\n"
        "  --data DIR       one <input name>.npy per graph input (axis 0 = samples; names with\n"
        "                   characters outside [A-Za-z0-9._-] use '_' there) and, for accuracy\n"
        "                   and perplexity, labels.npy (int64, output 0's shape without its\n"
        "                   last axis)\n"
        "  --metric M       accuracy: top-1 over output 0's last axis, over all label positions\n"
        "                   perplexity: exp(mean cross-entropy) of output 0 against the labels\n"
        "                     (log-softmax of logits; log of a Softmax output; a LogSoftmax\n"
        "                     output as it is)\n"
        "                   cosine: mean/min cosine of output 0's rows and max abs difference\n"
        "                     of all outputs against --reference\n"
        "                   default: cosine with --reference, else accuracy with int64 labels\n"
        "  --reference REF  model run on the same inputs (by input name) for --metric cosine\n"
        "  --batch B        samples per run (default 64; the last batch may be smaller; a\n"
        "                   model whose inputs fix axis 0 runs batches of that size)\n"
        "  --threads N      threads per kernel (default 1), as for piqc run\n"
        "  --json           print one JSON object instead of the text line\n");
}

static int pq_eval_parse(int argc, char **argv, pq_eval_args *a, bool *help) {
    memset(a, 0, sizeof *a);
    a->batch = 64;
    a->threads = 1;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            *help = true;
            return 0;
        } else if (!strcmp(s, "--data")) {
            if (++i >= argc) return pq_cli_usage_error("eval", "--data needs a directory");
            a->data = argv[i];
        } else if (!strcmp(s, "--reference")) {
            if (++i >= argc) return pq_cli_usage_error("eval", "--reference needs a model");
            a->reference = argv[i];
        } else if (!strcmp(s, "--metric")) {
            if (++i >= argc) return pq_cli_usage_error("eval", "--metric needs a name");
            a->metric = PQ_METRIC_NONE;
            for (int m = PQ_METRIC_ACCURACY; m <= PQ_METRIC_COSINE; m++)
                if (!strcmp(argv[i], pq_metric_names[m])) a->metric = (enum pq_eval_metric)m;
            if (a->metric == PQ_METRIC_NONE)
                return pq_cli_usage_error(
                    "eval", "unknown metric '%s' (accuracy, perplexity or cosine)", argv[i]);
        } else if (!strcmp(s, "--batch")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 1, 1 << 24, &a->batch))
                return pq_cli_usage_error("eval", "--batch needs an integer in 1..16777216");
            a->batch_given = true;
        } else if (!strcmp(s, "--threads")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 1, 1024, &a->threads))
                return pq_cli_usage_error("eval", "--threads needs an integer in 1..1024");
        } else if (!strcmp(s, "--json")) {
            a->json = true;
        } else if (s[0] == '-') {
            return pq_cli_usage_error("eval", "unknown option '%s'", s);
        } else if (!a->model) {
            a->model = s;
        } else {
            return pq_cli_usage_error("eval", "unexpected argument '%s'", s);
        }
    }
    if (!a->model) return pq_cli_usage_error("eval", "missing MODEL");
    if (!a->data) return pq_cli_usage_error("eval", "missing --data DIR");
    if (a->metric == PQ_METRIC_COSINE && !a->reference)
        return pq_cli_usage_error("eval", "--metric cosine needs --reference MODEL.onnx");
    if (a->reference && a->metric != PQ_METRIC_NONE && a->metric != PQ_METRIC_COSINE)
        return pq_cli_usage_error("eval", "--reference is only used by --metric cosine");
    return 0;
}

static void pq_eval_free_batch(pq_eval *e) {
    for (uint32_t i = 0; e->in && i < e->g->n_inputs; i++) {
        pq_tensor_destroy(e->in[i]);
        e->in[i] = NULL;
    }
    pq_tensor_destroy(e->labels);
    e->labels = NULL;
    e->cur_n = 0;
}

static void pq_eval_free_outputs(pq_tensor **outs, const pq_graph *g) {
    for (uint32_t o = 0; outs && g && o < g->n_outputs; o++) {
        pq_tensor_destroy(outs[o]);
        outs[o] = NULL;
    }
}

static void pq_eval_free(pq_eval *e) {
    if (e->g) {
        pq_eval_free_batch(e);
        pq_eval_free_outputs(e->outs, e->g);
    }
    pq_eval_free_outputs(e->routs, e->ref);
    pq_free(e->in);
    pq_free(e->outs);
    pq_free(e->routs);
    pq_free(e->ref_in);
    pq_free(e->out_names);
    pq_free(e->idx);
    pq_session_destroy(e->s);
    pq_session_destroy(e->rs);
    pq_dataset_destroy(e->ds);
    pq_graph_destroy(e->g);
    pq_graph_destroy(e->ref);
}

/* The batch size axis 0 of the graph's inputs fixes (0 when every input leaves it free). */
static enum pq_status pq_eval_fixed_batch(const pq_graph *g, const char *what, int64_t *fixed,
                                          const char **by, pq_error *err) {
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        if (v->shape.rank < 1 || !pq_dim_known(v->shape.dims[0])) continue;
        if (*fixed && *fixed != v->shape.dims[0].size)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "%s input '%s' fixes axis 0 to %lld, but input '%s' to %lld", what,
                                v->name, (long long)v->shape.dims[0].size, *by, (long long)*fixed);
        *fixed = v->shape.dims[0].size;
        *by = v->name;
    }
    return PQ_OK;
}

/* Picks the batch size: --batch (at most the sample count), or the size a model fixes. */
static enum pq_status pq_eval_batch_size(const pq_eval *e, const pq_eval_args *a, int64_t *out,
                                         pq_error *err) {
    int64_t count = pq_dataset_count(e->ds), fixed = 0;
    const char *by = NULL;
    PQ_TRY(pq_eval_fixed_batch(e->g, "model", &fixed, &by, err));
    if (e->ref) PQ_TRY(pq_eval_fixed_batch(e->ref, "reference", &fixed, &by, err));
    *out = a->batch < count ? a->batch : count;
    if (!fixed) return PQ_OK;
    if (a->batch_given && a->batch != fixed)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "--batch %lld: input '%s' fixes axis 0 (the batch) to %lld",
                            (long long)a->batch, by, (long long)fixed);
    if (count % fixed)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "input '%s' fixes axis 0 (the batch) to %lld, but the data folder's "
                            "%lld samples are not a multiple of it",
                            by, (long long)fixed, (long long)count);
    if (fixed != *out)
        fprintf(stderr, "piqc eval: input '%s' fixes the batch to %lld samples\n", by,
                (long long)fixed);
    *out = fixed;
    return PQ_OK;
}

/* Loads the reference, checks its outputs' count and binds its inputs by name. */
static enum pq_status pq_eval_load_reference(pq_eval *e, const char *path, pq_error *err) {
    PQ_TRY(pq_cli_load_model(path, true, &e->ref, err));
    if (e->ref->n_outputs != e->g->n_outputs)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "'%s' has %u outputs, the model %u: outputs are compared in order",
                            path, e->ref->n_outputs, e->g->n_outputs);
    e->ref_in = pq_calloc(e->ref->n_inputs + 1, sizeof *e->ref_in);
    e->routs = pq_calloc(e->ref->n_outputs + 1, sizeof *e->routs);
    if (!e->ref_in || !e->routs) return pq_error_nomem(err, "reference");
    for (uint32_t j = 0; j < e->ref->n_inputs; j++) {
        const char *name = e->ref->values[e->ref->inputs[j]].name;
        uint32_t i = 0;
        while (i < e->g->n_inputs && strcmp(e->g->values[e->g->inputs[i]].name, name))
            i++;
        if (i == e->g->n_inputs)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "'%s': input '%s' is not an input of the model (the reference is "
                                "fed the model's inputs by name)",
                                path, name);
    }
    return PQ_OK;
}

/* Points the reference's inputs at this batch's tensors (by name). */
static void pq_eval_bind_reference(pq_eval *e) {
    for (uint32_t j = 0; j < e->ref->n_inputs; j++)
        for (uint32_t i = 0; i < e->g->n_inputs; i++)
            if (!strcmp(e->g->values[e->g->inputs[i]].name, e->ref->values[e->ref->inputs[j]].name))
                e->ref_in[j] = e->in[i];
}

/* The one log line saying how perplexity reads output 0. */
static void pq_eval_log_logp(const pq_eval *e) {
    const char *name = e->out_names[0];
    if (e->logp == PQ_EVAL_SOFTMAX)
        fprintf(stderr,
                "piqc eval: output 0 '%s' comes from a Softmax node: cross-entropy from "
                "log(max(p, %g))\n",
                name, PQ_EVAL_PROB_MIN);
    else if (e->logp == PQ_EVAL_LOG_SOFTMAX)
        fprintf(stderr,
                "piqc eval: output 0 '%s' comes from a LogSoftmax node: its values are the "
                "log-probabilities\n",
                name);
    else
        fprintf(stderr,
                "piqc eval: output 0 '%s' holds logits: cross-entropy from their log-softmax over "
                "the last axis\n",
                name);
}

/* Runs samples [start, start + n) and adds them to the metric. */
static enum pq_status pq_eval_batch(pq_eval *e, enum pq_eval_metric metric, int64_t start,
                                    int64_t n, pq_error *err) {
    bool labelled = metric != PQ_METRIC_COSINE;
    if (n != e->cur_n) {
        pq_eval_free_batch(e);
        PQ_TRY(pq_dataset_batch_alloc(e->ds, n, e->in, labelled ? &e->labels : NULL, err));
        e->cur_n = n;
    }
    for (int64_t k = 0; k < n; k++)
        e->idx[k] = start + k;
    PQ_TRY(pq_dataset_gather(e->ds, e->idx, n, e->in, labelled ? e->labels : NULL, err));
    pq_eval_free_outputs(e->outs, e->g);
    enum pq_status st = pq_session_run(e->s, (const pq_tensor *const *)e->in, e->g->n_inputs,
                                       e->outs, e->g->n_outputs, err);
    if (st != PQ_OK)
        return pq_error_prefix(err, "samples %lld..%lld: ", (long long)start,
                               (long long)(start + n - 1));
    if (metric == PQ_METRIC_COSINE) {
        pq_eval_bind_reference(e);
        pq_eval_free_outputs(e->routs, e->ref);
        st = pq_session_run(e->rs, e->ref_in, e->ref->n_inputs, e->routs, e->ref->n_outputs, err);
        if (st != PQ_OK)
            return pq_error_prefix(err, "reference, samples %lld..%lld: ", (long long)start,
                                   (long long)(start + n - 1));
        return pq_eval_compare_add(&e->st, e->outs, e->routs, e->g->n_outputs, e->out_names, err);
    }
    const pq_tensor *out = e->outs[0];
    if (out->rank < 1 || out->dims[0] != n) {
        char os[160];
        pq_shape_format(out->rank, out->dims, os, sizeof os);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "output 0 '%s' is %s for a batch of %lld samples: its axis 0 must be "
                            "the sample axis",
                            e->out_names[0], os, (long long)n);
    }
    PQ_TRY(pq_eval_check_labels(out, e->labels, start, err));
    if (metric == PQ_METRIC_ACCURACY) {
        pq_eval_accuracy_add(&e->st, out, e->labels);
    } else {
        if (start == 0) {
            PQ_TRY(pq_eval_logp_kind(e->g, out->rank, &e->logp, err));
            pq_eval_log_logp(e);
        }
        pq_eval_ce_add(&e->st, out, e->labels, e->logp);
    }
    return PQ_OK;
}

static void pq_eval_print(const pq_eval *e, const pq_eval_args *a, enum pq_eval_metric metric,
                          int64_t batch) {
    const pq_eval_stats *s = &e->st;
    double acc = s->positions ? (double)s->hits / (double)s->positions : 0.0;
    double ce = s->positions ? s->ce_sum / (double)s->positions : 0.0;
    double cos = s->rows ? s->cos_sum / (double)s->rows : 0.0;
    if (!a->json) {
        if (metric == PQ_METRIC_ACCURACY)
            printf("accuracy %.2f%% (%lld/%lld)\n", 100.0 * acc, (long long)s->hits,
                   (long long)s->positions);
        else if (metric == PQ_METRIC_PERPLEXITY)
            printf("perplexity %.3f (cross-entropy %.4f nats over %lld positions)\n", exp(ce), ce,
                   (long long)s->positions);
        else
            printf("cosine %.5f (min %.4f), max abs diff %.3g\n", cos, s->cos_min, s->max_abs);
        return;
    }
    pq_json j;
    pq_json_init(&j, stdout);
    pq_json_begin_object(&j);
    pq_json_key(&j, "model");
    pq_json_string(&j, a->model);
    pq_json_key(&j, "data");
    pq_json_string(&j, a->data);
    pq_json_key(&j, "data_sha256");
    pq_json_string(&j, pq_dataset_sha256(e->ds));
    pq_json_key(&j, "samples");
    pq_json_int(&j, pq_dataset_count(e->ds));
    pq_json_key(&j, "batch");
    pq_json_int(&j, batch);
    pq_json_key(&j, "metric");
    pq_json_string(&j, pq_metric_names[metric]);
    if (metric == PQ_METRIC_ACCURACY) {
        pq_json_key(&j, "accuracy");
        pq_json_number(&j, acc);
        pq_json_key(&j, "correct");
        pq_json_int(&j, s->hits);
        pq_json_key(&j, "positions");
        pq_json_int(&j, s->positions);
    } else if (metric == PQ_METRIC_PERPLEXITY) {
        pq_json_key(&j, "perplexity");
        pq_json_number(&j, exp(ce));
        pq_json_key(&j, "cross_entropy");
        pq_json_number(&j, ce);
        pq_json_key(&j, "positions");
        pq_json_int(&j, s->positions);
        pq_json_key(&j, "scores");
        pq_json_string(&j, pq_eval_logp_name(e->logp));
    } else {
        pq_json_key(&j, "reference");
        pq_json_string(&j, a->reference);
        pq_json_key(&j, "cosine");
        pq_json_number(&j, cos);
        pq_json_key(&j, "cosine_min");
        pq_json_number(&j, s->cos_min);
        pq_json_key(&j, "rows");
        pq_json_int(&j, s->rows);
        pq_json_key(&j, "max_abs_diff");
        pq_json_number(&j, s->max_abs);
    }
    pq_json_end_object(&j);
    fputc('\n', stdout);
}

/* Chooses the metric when --metric was not given. */
static enum pq_status pq_eval_pick_metric(const pq_eval *e, const pq_eval_args *a,
                                          enum pq_eval_metric *m, pq_error *err) {
    const pq_tensor *l = pq_dataset_labels(e->ds);
    *m = a->metric;
    if (*m == PQ_METRIC_NONE) {
        if (a->reference)
            *m = PQ_METRIC_COSINE;
        else if (l && l->dtype == PQ_DTYPE_I64)
            *m = PQ_METRIC_ACCURACY;
        else
            return pq_error_set(
                err, PQ_ERR_INVALID,
                "no metric applies: '%s' has %s; give integer (int64) class "
                "labels in %s/labels.npy for accuracy or perplexity, or "
                "--reference MODEL.onnx for cosine",
                a->data, l ? "float32 labels (regression targets)" : "no labels.npy", a->data);
    }
    if (*m != PQ_METRIC_COSINE && l && l->dtype != PQ_DTYPE_I64)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "--metric %s needs integer class ids, but '%s/labels.npy' holds %s",
                            pq_metric_names[*m], a->data, pq_dtype_name(l->dtype));
    return PQ_OK;
}

int pq_cmd_eval(int argc, char **argv) {
    pq_eval_args a;
    bool help;
    int rc = pq_eval_parse(argc, argv, &a, &help);
    if (help) {
        pq_eval_help(stdout);
        return 0;
    }
    if (rc) return rc;
    pq_error err;
    pq_error_clear(&err);
    pq_eval e;
    memset(&e, 0, sizeof e);
    enum pq_eval_metric metric = PQ_METRIC_NONE;
    int64_t batch = 0;
    if (pq_cli_load_model(a.model, true, &e.g, &err) != PQ_OK) goto fail;
    if (!e.g->n_outputs) {
        pq_error_set(&err, PQ_ERR_INVALID, "'%s' has no outputs: nothing to evaluate", a.model);
        goto fail;
    }
    bool need_labels = a.metric == PQ_METRIC_ACCURACY || a.metric == PQ_METRIC_PERPLEXITY;
    if (pq_dataset_open(a.data, e.g, need_labels, &e.ds, &err) != PQ_OK) goto fail;
    if (pq_eval_pick_metric(&e, &a, &metric, &err) != PQ_OK) goto fail;
    if (metric == PQ_METRIC_COSINE && pq_eval_load_reference(&e, a.reference, &err) != PQ_OK) {
        pq_error_prefix(&err, "--reference: ");
        goto fail;
    }
    if (pq_eval_batch_size(&e, &a, &batch, &err) != PQ_OK) goto fail;
    e.in = pq_calloc(e.g->n_inputs + 1, sizeof *e.in);
    e.outs = pq_calloc(e.g->n_outputs + 1, sizeof *e.outs);
    e.out_names = pq_calloc(e.g->n_outputs + 1, sizeof *e.out_names);
    e.idx = pq_calloc((size_t)batch, sizeof *e.idx);
    if (!e.in || !e.outs || !e.out_names || !e.idx) {
        pq_error_nomem(&err, "eval");
        goto fail;
    }
    for (uint32_t o = 0; o < e.g->n_outputs; o++)
        e.out_names[o] = e.g->values[e.g->outputs[o]].name;
    pq_session_opts opts = {.n_threads = (int)a.threads};
    if (pq_session_create(e.g, &opts, &e.s, &err) != PQ_OK) goto fail;
    if (e.ref && pq_session_create(e.ref, &opts, &e.rs, &err) != PQ_OK) goto fail;
    int64_t count = pq_dataset_count(e.ds);
    for (int64_t start = 0; start < count; start += batch) {
        int64_t n = count - start < batch ? count - start : batch;
        if (pq_eval_batch(&e, metric, start, n, &err) != PQ_OK) goto fail;
    }
    pq_eval_print(&e, &a, metric, batch);
    goto done;
fail:
    rc = pq_cli_fail("eval", &err);
done:
    pq_eval_free(&e);
    return rc;
}
