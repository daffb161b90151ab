/* Training on the compiled graph (issue 7): the training graph (model + TrainLoss + backward from
 * the autodiff pass, trainable constants turned into inputs), its configuration and the loop. */
#ifndef PQ_TRAIN_H
#define PQ_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/ref/loss.h"
#include "ir/ir.h"
#include "optim.h"
#include "passes/pipeline.h"

/* Most named feature values of the feature loss. */
#define PQ_TRAIN_MAX_FEATURES 16

/* Everything `train:` (and the command-line flags over it) sets. */
typedef struct pq_train_config {
    pq_loss_config loss;
    const char *features[PQ_TRAIN_MAX_FEATURES]; /* value names (owned by the pipeline tree) */
    uint32_t n_features;
    pq_optim_config optim; /* total_steps filled by the trainer */
    int64_t epochs;        /* >= 1 */
    int64_t batch;         /* >= 1 */
    int64_t max_steps;     /* 0 = no limit; stops after this many updates in total */
    uint64_t seed;
    int threads;
    bool merge;               /* export: fold LoRA adapters into the weights and re-quantize */
    int64_t checkpoint_every; /* updates between checkpoints (0 = end of each epoch only) */
} pq_train_config;

/* Defaults (SPEC 9 losses; AdamW lr 1e-3 wd 0; cosine schedule, no warm-up; 1 epoch; batch 16;
 * seed 1; 1 thread). */
pq_train_config pq_train_config_default(void);

/* Reads the pipeline's `train:` mapping (NULL: defaults) into *cfg over its current values.
 * Keys: loss {task: 1.0, kd, feature, temperature, kind: cross_entropy|mse|none,
 * kd-direction: forward|reverse, features: [names]}, optimizer {name: adamw|sgd, lr,
 * weight-decay, momentum, nesterov, beta1, beta2, eps, max-grad-norm}, schedule {name:
 * constant|cosine, warmup-steps}, epochs, batch, max-steps, seed, merge, checkpoint-every.
 * INVALID "SOURCE:LINE:COL: ..." naming the key and the accepted values. */
enum pq_status pq_train_config_read(const pq_pipeline *p, pq_train_config *cfg, pq_error *err);

/* ---- the training graph ---- */

enum pq_train_role {
    PQ_TRAIN_IN_MODEL = 0, /* a model input (batch-sized sample data) */
    PQ_TRAIN_IN_LABELS,    /* labels: i64 class ids or f32 targets */
    PQ_TRAIN_IN_TEACHER,   /* teacher logits */
    PQ_TRAIN_IN_TEACHER_FEATURE,
    PQ_TRAIN_IN_PARAM /* a trainable tensor, fed from the trainer's copy each step */
};

typedef struct pq_train_param {
    const char *name;    /* value name (graph arena) */
    pq_tensor *master;   /* f32 trainable copy, the optimizer's parameter (owned) */
    pq_tensor *feed;     /* what the graph reads: master itself (f32) or an f16 copy (owned) */
    bool is_scale;       /* a FakeQuant scale word tensor (LSQ): |a| clamped after each update */
    float scale_floor;   /* smallest |a| kept (scales only) */
    uint32_t grad_index; /* output index of its gradient */
} pq_train_param;

typedef struct pq_train_graph {
    pq_graph *g;                  /* training graph, prepared (owned) */
    enum pq_train_role *in_role;  /* per graph input */
    uint32_t *in_index;           /* per graph input: model input / feature / param index */
    pq_train_param *params;       /* trainable tensors */
    uint32_t n_params;
    const char *logits;           /* student logits value name */
    bool logits_from_softmax;     /* output 0 came from Softmax/LogSoftmax: its input is used */
    bool has_labels, has_teacher; /* inputs present */
    uint32_t n_features;
} pq_train_graph;

/* Which constants train: every float constant (rank >= 1) on the loss path except BatchNorm
 * statistics, unless the graph has LoRA adapters (constants named *.lora_A / *.lora_B), when only
 * the adapters train; FakeQuant scale inputs train only with ste = lsq. */
typedef struct pq_train_graph_opts {
    const pq_train_config *cfg;
    bool with_teacher;     /* add the teacher-logits input (KD weight != 0) */
    bool with_labels;      /* add the labels input (task != none) */
    enum pq_dtype label_dtype;
    FILE *log;             /* one line per decision (NULL: quiet) */
} pq_train_graph_opts;

/* Builds the training graph from student (borrowed; cloned): the model inputs get batch size
 * cfg->batch, the loss (TrainLoss over the logits, labels, teacher logits and feature pairs)
 * becomes the output, the autodiff pass appends the backward graph and the trainable constants
 * become graph inputs. INVALID naming what is wrong (no float output, unknown feature value, a
 * model input whose first axis is fixed to another size, nothing trainable); what autodiff
 * returns for an op without a gradient rule. */
enum pq_status pq_train_graph_build(const pq_graph *student, const pq_train_graph_opts *opts,
                                    pq_train_graph *out, pq_error *err);
void pq_train_graph_free(pq_train_graph *tg);

/* Copies the trained values into the student graph's constants of the same names (f16 scales
 * rounded from the f32 masters). INVALID naming a missing constant or a shape mismatch. */
enum pq_status pq_train_graph_store(const pq_train_graph *tg, pq_graph *student, pq_error *err);

/* Value name of the logits of graph g (output 0, or the input of the Softmax / LogSoftmax that
 * produces it; *from_softmax tells). NULL when output 0 is not a float tensor. */
const char *pq_train_logits_name(const pq_graph *g, bool *from_softmax);

#endif
