/* Optimizers for training: SGD (momentum, Nesterov, weight decay) and AdamW updating f32
 * parameters in place, global-norm gradient clipping, learning-rate schedules (constant, cosine,
 * linear warm-up), trainable/frozen parameters and a versioned state buffer for checkpoints.
 * Semantics follow torch.optim.SGD / torch.optim.AdamW / clip_grad_norm_ (tests compare). */
#ifndef PQ_OPTIM_H
#define PQ_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/status.h"
#include "ir/tensor.h"

enum pq_optim_kind { PQ_OPTIM_SGD = 0, PQ_OPTIM_ADAMW = 1 };

enum pq_lr_schedule {
    PQ_LR_CONSTANT = 0, /* lr */
    PQ_LR_COSINE = 1    /* lr * 0.5 * (1 + cos(pi * progress)), reaching 0 at total_steps */
};

typedef struct pq_optim_config {
    enum pq_optim_kind kind;
    double lr;           /* base learning rate, finite and >= 0 */
    double weight_decay; /* SGD: L2 added to the gradient; AdamW: decoupled p *= 1 - lr*wd */
    /* SGD */
    double momentum;  /* 0 = plain SGD; in [0, 1) */
    double dampening; /* torch's dampening, in [0, 1]; must be 0 with nesterov */
    bool nesterov;    /* needs momentum > 0 */
    /* AdamW */
    double beta1, beta2; /* in [0, 1) */
    double eps;          /* > 0, added to sqrt(v_hat) */
    /* clipping: before the update, when max_grad_norm > 0, every trainable gradient is scaled by
     * min(1, max_grad_norm / (norm + 1e-6)) with norm the global L2 norm over all trainable
     * gradients, accumulated in double (torch.nn.utils.clip_grad_norm_). */
    double max_grad_norm;
    /* schedule: factor f(k) for update k = 0, 1, ...: (k + 1) / warmup_steps while
     * k < warmup_steps (linear warm-up), then the schedule with progress
     * (k - warmup_steps) / (total_steps - warmup_steps) clamped to [0, 1]. */
    enum pq_lr_schedule schedule;
    int64_t warmup_steps; /* >= 0 */
    int64_t total_steps;  /* cosine: > warmup_steps; ignored for constant */
} pq_optim_config;

/* Defaults: torch's (SGD lr 1e-3 no momentum; AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8, weight
 * decay 1e-2), no clipping, constant schedule, no warm-up. */
pq_optim_config pq_optim_config_default(enum pq_optim_kind kind);

/* Learning rate of update k (0-based) under cfg (no validation; k < 0 counts as 0). */
double pq_lr_at(const pq_optim_config *cfg, int64_t k);

/* Checks cfg; INVALID naming the field and its value. */
enum pq_status pq_optim_config_check(const pq_optim_config *cfg, pq_error *err);

typedef struct pq_optim pq_optim;

/* Creates an optimizer with no parameters (*out; pq_optim_destroy it). INVALID for a bad config,
 * NOMEM. The config is copied. */
enum pq_status pq_optim_create(const pq_optim_config *cfg, pq_optim **out, pq_error *err);
/* Frees the optimizer and its state (never the parameters). NULL allowed. */
void pq_optim_destroy(pq_optim *opt);

/* Registers a parameter: a dense f32 tensor the optimizer updates in place (borrowed: it must
 * outlive the optimizer and keep its shape). name (copied) identifies it in messages and in the
 * state buffer; names are unique. Allocates the state (zeroed): SGD with momentum one buffer,
 * AdamW two, each numel floats; frozen parameters get state too so that a later
 * pq_optim_set_trainable works. *index (may be NULL) receives its index, the position of its
 * gradient in pq_optim_step. INVALID for a NULL/non-f32/empty-data tensor, a missing or duplicate
 * name; NOMEM. Parameters cannot be added after the first step or a state load. */
enum pq_status pq_optim_add_param(pq_optim *opt, const char *name, pq_tensor *param, bool trainable,
                                  size_t *index, pq_error *err);

/* Marks parameter index trainable or frozen. Frozen parameters and their state are never read or
 * written by pq_optim_step and do not count in the gradient norm. INVALID for a bad index. */
enum pq_status pq_optim_set_trainable(pq_optim *opt, size_t index, bool trainable, pq_error *err);

size_t pq_optim_param_count(const pq_optim *opt);
/* Updates taken so far (the schedule's k for the next step). */
int64_t pq_optim_step_count(const pq_optim *opt);
/* Learning rate the next step will use. */
double pq_optim_current_lr(const pq_optim *opt);

/* One update. grads[i] is the gradient of parameter i (n == pq_optim_param_count): f32 with the
 * parameter's shape, or NULL to skip that parameter this step (as torch skips p.grad None; its
 * state and step count are unchanged). Gradients of frozen parameters are ignored (may be NULL).
 * Gradients are read only (clipping is applied on the fly). *grad_norm (may be NULL) receives the
 * global norm before clipping. Single-threaded, deterministic. Everything is checked before any
 * parameter changes: INVALID naming the parameter for a wrong count, dtype or shape, or a
 * non-finite gradient value (the step is then not applied at all and the step count stays). */
enum pq_status pq_optim_step(pq_optim *opt, const pq_tensor *const *grads, size_t n,
                             double *grad_norm, pq_error *err);

/* ---- checkpoint state ----
 * Layout (little-endian): magic "PQOPTIM\0", u32 version (1), u32 kind, u64 parameter count,
 * i64 step count, then per parameter: u32 name length, name bytes, u8 trainable, u32 rank,
 * i64 dims[rank], i64 the parameter's own update count, u32 buffer count, buffers (f32 bits,
 * numel each); finally u64 FNV-1a of everything before it. Hyperparameters are not stored: the
 * loading optimizer's config is used (only its kind must match). */
#define PQ_OPTIM_STATE_VERSION 1u

/* Bytes pq_optim_state_save writes. */
size_t pq_optim_state_size(const pq_optim *opt);
/* Writes the state into buf (cap bytes); *written (may be NULL) gets the size. INVALID when cap
 * is smaller than pq_optim_state_size. */
enum pq_status pq_optim_state_save(const pq_optim *opt, void *buf, size_t cap, size_t *written,
                                   pq_error *err);
/* Restores state saved by pq_optim_state_save into an optimizer with the same kind and the same
 * parameters (names, order, shapes) registered. Validated completely before anything changes:
 * INVALID naming the problem for a short/truncated buffer, bad magic, checksum mismatch, trailing
 * bytes, different kind, parameter count, name, shape or buffer count; UNSUPPORTED for another
 * version. The trainable flags in the buffer are applied. Continuing after a load is
 * bit-identical to continuing the saved optimizer. */
enum pq_status pq_optim_state_load(pq_optim *opt, const void *buf, size_t len, pq_error *err);

/* FNV-1a 64 of n bytes continuing from h (start with PQ_FNV_OFFSET): the checksum of the state
 * buffer and of training checkpoints. */
#define PQ_FNV_OFFSET 14695981039346656037ull
uint64_t pq_fnv1a64(uint64_t h, const void *data, size_t n);

#endif
