/* `piqc train MODEL --pipeline P --data DIR -o OUT.gguf`: quantization-aware training on the ONNX
 * graph itself (pipeline passes, training graph, loop), then lowering and the artifact. */
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_provider.h"
#include "cli.h"
#include "cmd.h"
#include "compile_report.h"
#include "frontends/artifact.h"
#include "frontends/pir.h"
#include "passes/lora.h"
#include "passes/manager.h"
#include "runtime/runtime.h"
#include "runtime/trainer.h"

typedef struct pq_train_args {
    const char *model, *pipeline, *data, *val_data, *calib_data, *out;
    const char *checkpoint_dir, *metrics, *dump_graph;
    int64_t epochs, batch, max_steps, seed, threads, checkpoint_every;
    double lr;
    bool resume, quiet, have_lr;
} pq_train_args;

static void pq_train_help(FILE *f) {
    fprintf(f,
            "usage: piqc train MODEL.onnx --pipeline FILE.yaml|PRESET --data DIR -o OUT.gguf\n"
            "                  [--val-data DIR] [--calib-data DIR] [--epochs N] [--batch B]\n"
            "                  [--lr X] [--seed S] [--threads N] [--max-steps N]\n"
            "                  [--checkpoint-dir D [--checkpoint-every N]] [--resume]\n"
            "                  [--metrics FILE.jsonl] [--dump-train-graph FILE.pir] [-q]\n\n"
            "Quantization-aware training (docs/training.md): runs the pipeline's passes up to\n"
            "lowering (hadamard, fake-quant, lora, ...), trains the fake-quantized model on DIR\n"
            "with the loss, optimizer and schedule of the pipeline's `train:` section (flags\n"
            "override it), then lowers it (fuse-activations, lower-quant) into an artifact.\n"
            "  --data DIR         <input name>.npy per model input (axis 0 = samples) and\n"
            "                     labels.npy for a task loss (not needed for distillation only)\n"
            "  --val-data DIR     evaluated after every epoch (accuracy, cross-entropy)\n"
            "  --calib-data DIR   calibration for fake-quant (default: the training data)\n"
            "  --checkpoint-dir D checkpoint.pqck written atomically after every epoch and every\n"
            "                     --checkpoint-every N updates; --resume continues from it\n"
            "                     bit-identically (same command line plus --resume)\n"
            "  --metrics FILE     one JSON line per epoch\n"
            "  --max-steps N      stop after N updates in total\n"
            "  --dump-train-graph FILE.pir  write the training graph (model, loss, backward)\n");
}

/* Parses a flag's value; returns 0, or the usage error's exit code. */
static int pq_train_parse(int argc, char **argv, pq_train_args *a) {
    memset(a, 0, sizeof *a);
    a->epochs = a->batch = a->max_steps = a->seed = a->threads = a->checkpoint_every = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **slot = NULL;
        int64_t *num = NULL, lo = 1, hi = INT64_C(1) << 40;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            pq_train_help(stdout);
            return -1;
        } else if (!strcmp(s, "--pipeline")) {
            slot = &a->pipeline;
        } else if (!strcmp(s, "--data")) {
            slot = &a->data;
        } else if (!strcmp(s, "--val-data")) {
            slot = &a->val_data;
        } else if (!strcmp(s, "--calib-data")) {
            slot = &a->calib_data;
        } else if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
            slot = &a->out;
        } else if (!strcmp(s, "--checkpoint-dir")) {
            slot = &a->checkpoint_dir;
        } else if (!strcmp(s, "--metrics")) {
            slot = &a->metrics;
        } else if (!strcmp(s, "--dump-train-graph")) {
            slot = &a->dump_graph;
        } else if (!strcmp(s, "--epochs")) {
            num = &a->epochs;
            hi = 1000000;
        } else if (!strcmp(s, "--batch")) {
            num = &a->batch;
            hi = 1 << 20;
        } else if (!strcmp(s, "--max-steps")) {
            num = &a->max_steps;
        } else if (!strcmp(s, "--checkpoint-every")) {
            num = &a->checkpoint_every;
        } else if (!strcmp(s, "--seed")) {
            num = &a->seed;
            lo = 0;
            hi = INT64_MAX;
        } else if (!strcmp(s, "--threads")) {
            num = &a->threads;
            hi = 1024;
        } else if (!strcmp(s, "--lr")) {
            if (++i >= argc) return pq_cli_usage_error("train", "--lr needs a value");
            char *end = NULL;
            a->lr = strtod(argv[i], &end);
            if (!*argv[i] || *end || !isfinite(a->lr) || a->lr < 0 || a->lr > 1e3)
                return pq_cli_usage_error("train", "--lr '%s': a number in [0, 1000]", argv[i]);
            a->have_lr = true;
            continue;
        } else if (!strcmp(s, "--resume")) {
            a->resume = true;
            continue;
        } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = true;
            continue;
        } else if (s[0] == '-') {
            return pq_cli_usage_error("train", "unknown option '%s'", s);
        } else if (!a->model) {
            a->model = s;
            continue;
        } else {
            return pq_cli_usage_error("train", "unexpected argument '%s'", s);
        }
        if (++i >= argc) return pq_cli_usage_error("train", "%s needs a value", s);
        if (slot) {
            if (*slot) return pq_cli_usage_error("train", "%s given twice", s);
            *slot = argv[i];
        } else if (!pq_cli_parse_int(argv[i], lo, hi, num)) {
            return pq_cli_usage_error("train", "%s '%s': an integer in [%lld, %lld]", s, argv[i],
                                      (long long)lo, (long long)hi);
        }
    }
    if (!a->model) return pq_cli_usage_error("train", "missing MODEL");
    if (!a->pipeline) return pq_cli_usage_error("train", "missing --pipeline FILE.yaml|PRESET");
    if (!a->data) return pq_cli_usage_error("train", "missing --data DIR");
    if (!a->out) return pq_cli_usage_error("train", "missing -o OUT.gguf");
    size_t ol = strlen(a->out);
    if (ol < 5 || strcmp(a->out + ol - 5, ".gguf") != 0)
        return pq_cli_usage_error("train", "-o '%s': the artifact name must end in .gguf", a->out);
    if (a->resume && !a->checkpoint_dir)
        return pq_cli_usage_error("train", "--resume needs --checkpoint-dir");
    if (a->checkpoint_every > 0 && !a->checkpoint_dir)
        return pq_cli_usage_error("train", "--checkpoint-every needs --checkpoint-dir");
    return 0;
}

/* SHA-256 (hex) over every constant of g: the teacher's weights, hashed before and after. */
static void pq_train_weights_sha256(const pq_graph *g, char hex[65]) {
    unsigned char h[32];
    unsigned int hl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    hex[0] = 0;
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return;
    }
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_tensor *t = g->values[v].constant;
        if (!t || !t->data) continue;
        EVP_DigestUpdate(md, g->values[v].name, strlen(g->values[v].name) + 1);
        EVP_DigestUpdate(md, t->data, t->nbytes);
    }
    EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < hl && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

/* Passes that run after training: fuse-activations and fuse-residual (autodiff needs plain
 * activations and Adds) and everything from the first lower-quant on; a pipeline without
 * lower-quant gets one. */
static bool pq_train_is_post(const pq_pipeline *p, uint32_t i, uint32_t first_lower) {
    const char *n = p->entries[i].pass->name;
    return i >= first_lower || !strcmp(n, "fuse-activations") || !strcmp(n, "fuse-residual");
}

/* Splits p into the entries before and after training (shallow views over p's entries; the
 * caller frees only the entry arrays). */
static enum pq_status pq_train_split(const pq_pipeline *p, pq_pipeline *pre, pq_pipeline *post,
                                     pq_pipeline **extra, pq_error *err) {
    uint32_t first_lower = p->n;
    for (uint32_t i = 0; i < p->n && first_lower == p->n; i++)
        if (!strcmp(p->entries[i].pass->name, "lower-quant")) first_lower = i;
    *pre = *p;
    *post = *p;
    pre->entries = pq_calloc(p->n + 1, sizeof *pre->entries);
    post->entries = pq_calloc(p->n + 2, sizeof *post->entries);
    if (!pre->entries || !post->entries) {
        pq_free(pre->entries);
        pq_free(post->entries);
        return pq_error_nomem(err, "pipeline");
    }
    pre->n = post->n = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        if (pq_train_is_post(p, i, first_lower))
            post->entries[post->n++] = p->entries[i];
        else
            pre->entries[pre->n++] = p->entries[i];
    }
    if (first_lower == p->n) {
        static const char *const lower[] = {"lower-quant"};
        PQ_TRY(pq_pipeline_from_passes(lower, 1, extra, err));
        post->entries[post->n++] = (*extra)->entries[0];
    }
    return PQ_OK;
}

/* train: merge: true: folds the adapters into the weights (re-quantized by their FakeQuant with
 * the trained scales) and reports the validation change it causes. */
static enum pq_status pq_train_merge(pq_graph *g, pq_pass_ctx *ctx, const pq_dataset *val,
                                     const pq_train_config *cfg, const pq_train_result *res,
                                     FILE *log, pq_error *err) {
    uint32_t merged = 0;
    double maxd = 0;
    PQ_TRY(pq_lora_merge(g, ctx, &merged, &maxd, err));
    PQ_TRY(pq_runtime_prepare(g, err));
    if (log && merged == 0)
        fprintf(log, "piqc train: merge: the model has no LoRA adapter; nothing merged\n");
    if (!val || merged == 0 || isnan(res->val_metric)) return PQ_OK;
    double acc, ce;
    PQ_TRY(pq_train_evaluate(g, val, 64, cfg->threads, &acc, &ce, err));
    if (log)
        fprintf(log,
                "piqc train: merge: %u adapters folded into their weights and re-quantized "
                "(largest weight change %.4g): validation accuracy %.2f%% -> %.2f%%, "
                "cross-entropy %.4f -> %.4f\n",
                merged, maxd, 100.0 * res->val_metric, 100.0 * acc, res->val_loss, ce);
    return PQ_OK;
}

int pq_cmd_train(int argc, char **argv) {
    pq_train_args a;
    int rc = pq_train_parse(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL, *teacher = NULL;
    pq_pipeline *pipe = NULL, *extra = NULL;
    pq_pipeline pre = {0}, post = {0};
    pq_dataset *data = NULL, *val = NULL;
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    pq_cli_calib calib;
    memset(&calib, 0, sizeof calib);
    bool have_calib = false;
    pq_train_graph tg;
    memset(&tg, 0, sizeof tg);
    pq_artifact_tensor *packed = NULL;
    int64_t *dims_store = NULL;
    uint32_t n_packed = 0;
    char *pipeline_text = NULL;
    FILE *log = a.quiet ? NULL : stderr;

    if (pq_cli_check_output("-o", a.out, &err) != PQ_OK ||
        pq_cli_check_output("--metrics", a.metrics, &err) != PQ_OK)
        goto fail;
    if (pq_pipeline_load(a.pipeline, &pipe, &err) != PQ_OK) goto fail;
    pq_train_config cfg = pq_train_config_default();
    if (pq_train_config_read(pipe, &cfg, &err) != PQ_OK) goto fail;
    if (a.epochs > 0) cfg.epochs = a.epochs;
    if (a.batch > 0) cfg.batch = a.batch;
    if (a.max_steps > 0) cfg.max_steps = a.max_steps;
    if (a.checkpoint_every > 0) cfg.checkpoint_every = a.checkpoint_every;
    if (a.seed >= 0) cfg.seed = (uint64_t)a.seed;
    if (a.threads > 0) cfg.threads = (int)a.threads;
    if (a.have_lr) cfg.optim.lr = a.lr;
    pq_optim_config oc_check = cfg.optim; /* total_steps is known once the data is */
    oc_check.total_steps = oc_check.warmup_steps + 1;
    if (pq_optim_config_check(&oc_check, &err) != PQ_OK) goto fail;

    if (log) fprintf(log, "piqc train: importing %s\n", a.model);
    if (pq_cli_load_model(a.model, true, &g, &err) != PQ_OK) goto fail;
    if (pq_graph_clone(g, &teacher, &err) != PQ_OK || pq_runtime_prepare(teacher, &err) != PQ_OK)
        goto fail;
    char teacher_sha[65], teacher_sha_after[65];
    pq_train_weights_sha256(teacher, teacher_sha);

    bool want_task = cfg.loss.task != PQ_TASK_NONE && cfg.loss.w_task != 0.0;
    if (pq_dataset_open(a.data, g, want_task, &data, &err) != PQ_OK) goto fail;
    if (a.val_data && pq_dataset_open(a.val_data, g, false, &val, &err) != PQ_OK) goto fail;
    const char *calib_dir = a.calib_data ? a.calib_data : a.data;
    if (pq_cli_calib_init(&calib, g, calib_dir, &err) != PQ_OK) goto fail;
    have_calib = true;
    ctx.calib = &calib.provider;
    ctx.verbose = a.quiet ? 0 : 1;
    ctx.progress = !a.quiet;
    if (log)
        fprintf(log,
                "piqc train: data %s: %lld samples%s; calibration %s (%lld samples)%s\n", a.data,
                (long long)pq_dataset_count(data),
                pq_dataset_labels(data) ? " with labels" : " (no labels)", calib_dir,
                (long long)calib.files.set.samples, a.calib_data ? "" : " = the training data");

    if (pq_train_split(pipe, &pre, &post, &extra, &err) != PQ_OK) goto fail;
    pq_pass_manager_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.log = stderr;
    if (log)
        fprintf(log, "piqc train: pipeline %s: %u passes before training, %u after%s\n",
                pipe->source, pre.n, post.n, extra ? " (lower-quant added)" : "");
    if (pq_pipeline_run(g, &pre, &mo, &ctx, NULL, &err) != PQ_OK) goto fail;

    bool asked_lora = false, has_adapter = false;
    for (uint32_t i = 0; i < pre.n; i++)
        asked_lora |= !strcmp(pre.entries[i].pass->name, "lora");
    for (uint32_t v = 0; v < g->n_values; v++) {
        const char *nm = g->values[v].name;
        size_t l = strlen(nm);
        has_adapter |= g->values[v].constant && l > 7 && !strcmp(nm + l - 7, ".lora_A");
    }
    if (asked_lora && !has_adapter && log)
        fprintf(log, "piqc train: warning: the lora pass added no adapter (see its log above), "
                     "so this is full QAT: every weight trains\n");
    pq_train_graph_opts to = {.cfg = &cfg,
                              .with_teacher = cfg.loss.w_kd != 0.0,
                              .with_labels = want_task,
                              .label_dtype = cfg.loss.task == PQ_TASK_MSE ? PQ_DTYPE_F32
                                                                          : PQ_DTYPE_I64,
                              .log = log};
    if (pq_train_graph_build(g, &to, &tg, &err) != PQ_OK) goto fail;
    if (a.dump_graph && pq_pir_save(tg.g, a.dump_graph, &err) != PQ_OK) goto fail;
    if (log) {
        int64_t n_train = 0;
        for (uint32_t i = 0; i < tg.n_params; i++)
            n_train += pq_tensor_numel(tg.params[i].master);
        fprintf(log,
                "piqc train: %u trainable tensors (%lld values), training graph %u nodes; "
                "loss: task %g, kd %g (T %g), feature %g; %s lr %g; batch %lld, %lld epochs%s\n",
                tg.n_params, (long long)n_train, tg.g->n_nodes, cfg.loss.w_task,
                cfg.loss.w_kd, cfg.loss.temperature, cfg.loss.w_feat,
                cfg.optim.kind == PQ_OPTIM_SGD ? "sgd" : "adamw", cfg.optim.lr,
                (long long)cfg.batch, (long long)cfg.epochs,
                cfg.max_steps ? " (capped by max-steps)" : "");
    }
    pq_trainer_opts tro = {.cfg = &cfg,
                           .student = g,
                           .teacher = teacher,
                           .data = data,
                           .val = val,
                           .checkpoint_dir = a.checkpoint_dir,
                           .resume = a.resume,
                           .metrics_path = a.metrics,
                           .log = log,
                           .live = log && isatty(STDERR_FILENO)};
    pq_train_result res;
    if (pq_train_run(&tro, &tg, &res, &err) != PQ_OK) goto fail;

    pq_train_weights_sha256(teacher, teacher_sha_after);
    if (strcmp(teacher_sha, teacher_sha_after) != 0) {
        pq_error_set(&err, PQ_ERR_INTERNAL, "the teacher's weights changed during training "
                     "(sha256 %s -> %s)", teacher_sha, teacher_sha_after);
        goto fail;
    }
    if (pq_train_graph_store(&tg, g, &err) != PQ_OK) goto fail;
    if (cfg.merge && pq_train_merge(g, &ctx, val, &cfg, &res, log, &err) != PQ_OK) goto fail;
    if (pq_pipeline_run(g, &post, &mo, &ctx, NULL, &err) != PQ_OK) goto fail;
    if (pq_compile_packed_list(g, &ctx, &packed, &n_packed, &dims_store, &err) != PQ_OK) goto fail;
    if (pq_compile_pipeline_text(pipe, NULL, 0, &pipeline_text, &err) != PQ_OK) goto fail;
    char methods[256];
    pq_compile_calib_methods(&ctx, methods, sizeof methods);
    pq_provenance prov = {.calib_sha256 = calib.files.sha256,
                          .calib_samples = (uint64_t)calib.files.set.samples,
                          .calib_method = methods,
                          .timestamp = NULL};
    if (pq_artifact_write(g, pipeline_text, packed, n_packed, &prov, a.out, &err) != PQ_OK)
        goto fail;
    if (!a.quiet) {
        printf("trained %lld steps (%lld in this run)", (long long)res.steps,
               (long long)res.steps_this_run);
        if (!isnan(res.last_loss)) printf(", final epoch loss %.5f", res.last_loss);
        printf("\n");
        if (!isnan(res.val_metric))
            printf("validation: accuracy %.2f%%, cross-entropy %.4f (perplexity %.3f)\n",
                   100.0 * res.val_metric, res.val_loss, exp(res.val_loss));
        printf("teacher weights unchanged: sha256 %.16s... before and after\n", teacher_sha);
        if (res.plan_bytes)
            printf("training memory: %.2f MiB static plan (activations, saved values, gradients), "
               "%.2f MiB parameters and optimizer state\n",
               (double)res.plan_bytes / 1048576.0, (double)res.param_bytes / 1048576.0);
        if (res.steps_this_run)
            printf("step time median %.3f ms (forward + backward + update, %d thread%s)\n",
                   res.step_ms_median, cfg.threads, cfg.threads == 1 ? "" : "s");
        printf("wrote %s\n", a.out);
    }
    goto done;
fail:
    rc = pq_cli_fail("train", &err);
done:
    free(pipeline_text);
    pq_free(packed);
    pq_free(dims_store);
    pq_free(pre.entries);
    pq_free(post.entries);
    pq_train_graph_free(&tg);
    if (have_calib) pq_cli_calib_free(&calib);
    pq_pass_ctx_free(&ctx);
    pq_dataset_destroy(data);
    pq_dataset_destroy(val);
    pq_pipeline_destroy(pipe);
    pq_pipeline_destroy(extra);
    pq_graph_destroy(teacher);
    pq_graph_destroy(g);
    return rc;
}
