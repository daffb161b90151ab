/* Internal to runtime/: training checkpoints, one atomic file holding the position in the run,
 * the trainable tensors and the optimizer state, checked by a fingerprint and a checksum. */
#ifndef PQ_TRAIN_CKPT_H
#define PQ_TRAIN_CKPT_H

#include <stdint.h>

#include "optim.h"
#include "train.h"

/* File name inside the checkpoint directory. */
#define PQ_TRAIN_CKPT_FILE "checkpoint.pqck"

/* Where a run stands. */
typedef struct pq_train_position {
    uint64_t fingerprint;  /* of the model, data and settings the run belongs to */
    int64_t step;          /* updates taken */
    int64_t epoch;         /* current epoch (0-based) */
    int64_t step_in_epoch; /* updates taken in the current epoch */
    double sums[4];        /* running sums of total, task, kd, feature loss in this epoch */
} pq_train_position;

/* Writes DIR/checkpoint.pqck atomically (DIR is created when missing, one level). Layout
 * (little-endian): "PQCKPT\0\1", u64 fingerprint, i64 step, epoch, step_in_epoch, f64 sums[4],
 * u32 parameter count, per parameter: u32 name length, name, u64 numel, f32 data (the master);
 * u64 optimizer state length, the state (pq_optim_state_save); u64 FNV-1a of everything
 * before. IO naming the file. */
enum pq_status pq_train_ckpt_save(const char *dir, const pq_train_position *pos,
                                  const pq_train_graph *tg, const pq_optim *opt, pq_error *err);

/* Reads DIR/checkpoint.pqck into pos, the parameter masters of tg and opt. Everything is
 * validated before anything changes: IO when the file cannot be read; INVALID naming the
 * problem for a truncated or corrupted file, a fingerprint other than pos->fingerprint (another
 * model, data or settings), or parameters that do not match tg's names and sizes. */
enum pq_status pq_train_ckpt_load(const char *dir, pq_train_position *pos, pq_train_graph *tg,
                                  pq_optim *opt, pq_error *err);


#endif
