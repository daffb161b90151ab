/* The training loop: batches from a data folder, the teacher's forward, one run of the training
 * graph (forward + loss + backward), the optimizer update, validation, metrics and checkpoints. */
#ifndef PQ_TRAINER_H
#define PQ_TRAINER_H

#include <stdbool.h>
#include <stdio.h>

#include "dataset.h"
#include "train.h"

typedef struct pq_trainer_opts {
    const pq_train_config *cfg;
    const pq_graph *student;     /* prepared student graph (validation runs a copy of it) */
    const pq_graph *teacher;     /* prepared FP32 model; NULL when no KD / feature term */
    const pq_dataset *data;      /* training samples (and labels for a task loss) */
    const pq_dataset *val;       /* validation samples, or NULL */
    const char *checkpoint_dir;  /* NULL: no checkpoints */
    bool resume;                 /* continue from checkpoint_dir/checkpoint.pqck */
    const char *metrics_path;    /* JSON lines, one per epoch (NULL: none) */
    FILE *log;                   /* progress and summaries (NULL: quiet) */
    bool live;                   /* log is a terminal: one live progress line */
} pq_trainer_opts;

typedef struct pq_train_result {
    int64_t steps;          /* updates taken in total (resumed ones included) */
    int64_t steps_this_run; /* updates this process took (timed) */
    double step_ms_median;  /* teacher forward + training graph + update, median over this run */
    double last_loss;       /* mean total loss of the last epoch */
    double val_metric;      /* last validation accuracy (0..1) or NAN */
    double val_loss;        /* last validation cross-entropy (nats) or NAN */
    size_t plan_bytes;      /* training graph's static plan (activations, saved values, grads) */
    size_t param_bytes;     /* trainable masters + optimizer state */
} pq_train_result;

/* Trains tg's parameters in place. The checkpoint (checkpoint_dir/checkpoint.pqck) is written
 * atomically every cfg->checkpoint_every updates and at the end of every epoch; with resume the
 * run continues from it bit-identically (same parameters, optimizer state, position in the
 * shuffled epoch), after checking that it belongs to the same model, data and settings.
 * INVALID naming the problem (fewer samples than the batch, a checkpoint of another run, a
 * non-finite loss with the step that produced it), IO naming the file, what the sessions return. */
enum pq_status pq_train_run(const pq_trainer_opts *o, pq_train_graph *tg, pq_train_result *res,
                            pq_error *err);

/* Evaluates graph g (prepared) on ds in batches: accuracy (top-1 over the last axis of output
 * 0 against integer labels) and mean cross-entropy of the logits (the input of a final Softmax
 * or LogSoftmax when output 0 comes from one). *acc and *ce are NAN without integer labels. */
enum pq_status pq_train_evaluate(const pq_graph *g, const pq_dataset *ds, int64_t batch,
                                 int threads, double *acc, double *ce, pq_error *err);

#endif
