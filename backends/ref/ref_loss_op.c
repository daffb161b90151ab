/* Reference kernels of TrainLoss and TrainLossGrad: the node's attributes become a loss config
 * and the tensors a pq_loss_inputs for pq_loss_total (backends/ref/loss.h). */
#include <string.h>

#include "ir/infer_train.h"
#include "loss.h"
#include "ref_train.h"

/* Most feature pairs one node may carry. */
#define PQ_LOSS_MAX_PAIRS 64

/* Loss config from the node's attributes (validated by the shape rule). */
static pq_loss_config pq_loss_node_config(const pq_node *n) {
    pq_loss_config cfg = pq_loss_config_default();
    enum pq_train_task task = PQ_TRAIN_TASK_CROSS_ENTROPY;
    bool rev = false;
    (void)pq_train_loss_task(n, &task);
    (void)pq_train_loss_kd_reverse(n, &rev);
    cfg.task = task == PQ_TRAIN_TASK_NONE  ? PQ_TASK_NONE
               : task == PQ_TRAIN_TASK_MSE ? PQ_TASK_MSE
                                           : PQ_TASK_CROSS_ENTROPY;
    cfg.w_task = pq_node_attr_float(n, "w_task", (float)cfg.w_task);
    cfg.w_kd = pq_node_attr_float(n, "w_kd", (float)cfg.w_kd);
    cfg.w_feat = pq_node_attr_float(n, "w_feat", (float)cfg.w_feat);
    cfg.temperature = pq_node_attr_float(n, "temperature", (float)cfg.temperature);
    cfg.kd_direction = rev ? PQ_KD_REVERSE : PQ_KD_FORWARD;
    cfg.cos_eps = pq_node_attr_float(n, "cos_eps", (float)cfg.cos_eps);
    return cfg;
}

/* Fills in / pairs from the kernel inputs starting at base (logits); grads (may be NULL) are the
 * feature-gradient outputs. */
static enum pq_status pq_loss_gather(const pq_kernel_args *a, uint32_t base, pq_tensor *const *grads,
                                     pq_loss_inputs *in, pq_feature_pair *pairs) {
    memset(in, 0, sizeof *in);
    in->logits = a->in[base];
    in->labels = a->n_in > base + 1 ? a->in[base + 1] : NULL;
    in->teacher_logits = a->n_in > base + 2 ? a->in[base + 2] : NULL;
    uint32_t n_pairs = a->n_in > base + 3 ? (a->n_in - base - 3) / 2 : 0;
    if (n_pairs > PQ_LOSS_MAX_PAIRS)
        return pq_error_set(a->err, PQ_ERR_UNSUPPORTED, "%u feature pairs (at most %d)", n_pairs,
                            PQ_LOSS_MAX_PAIRS);
    for (uint32_t k = 0; k < n_pairs; k++) {
        uint32_t s = base + 3 + 2 * k;
        pairs[k].name = a->graph->values[a->node->inputs[s]].name;
        pairs[k].student = a->in[s];
        pairs[k].teacher = a->in[s + 1];
        pairs[k].grad = grads ? grads[k] : NULL;
    }
    in->features = pairs;
    in->n_features = n_pairs;
    return PQ_OK;
}

enum pq_status pq_ref_train_loss(const pq_kernel_args *a) {
    pq_loss_config cfg = pq_loss_node_config(a->node);
    pq_loss_inputs in;
    pq_feature_pair pairs[PQ_LOSS_MAX_PAIRS];
    PQ_TRY(pq_loss_gather(a, 0, NULL, &in, pairs));
    if (cfg.task == PQ_TASK_NONE) in.labels = NULL;
    pq_loss_values v;
    PQ_TRY(pq_loss_total(&cfg, &in, &v, NULL, a->err));
    ((float *)a->out[0]->data)[0] = (float)v.total;
    if (a->n_out > 1 && a->out[1]) {
        float *t = a->out[1]->data;
        t[0] = (float)v.task;
        t[1] = (float)v.kd;
        t[2] = (float)v.feature;
    }
    return PQ_OK;
}

/* x *= s over a whole f32 tensor. */
static void pq_loss_scale(pq_tensor *t, float s) {
    if (!t || s == 1.0f) return;
    float *d = t->data;
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        d[i] *= s;
}

enum pq_status pq_ref_train_loss_grad(const pq_kernel_args *a) {
    pq_loss_config cfg = pq_loss_node_config(a->node);
    pq_loss_inputs in;
    pq_feature_pair pairs[PQ_LOSS_MAX_PAIRS];
    pq_tensor *scratch[PQ_LOSS_MAX_PAIRS] = {0};
    uint32_t n_pairs = a->n_in > 4 ? (a->n_in - 4) / 2 : 0;
    enum pq_status st = PQ_OK;
    /* omitted feature-gradient outputs still need a buffer: the loss writes every pair's grad */
    pq_tensor *grads[PQ_LOSS_MAX_PAIRS];
    for (uint32_t k = 0; k < n_pairs && k < PQ_LOSS_MAX_PAIRS && st == PQ_OK; k++) {
        grads[k] = a->n_out > 1 + k ? a->out[1 + k] : NULL;
        if (!grads[k]) {
            const pq_tensor *s = a->in[4 + 2 * k];
            scratch[k] = pq_tensor_create(PQ_DTYPE_F32, s->rank, s->dims, a->err);
            if (!scratch[k]) st = PQ_ERR_NOMEM;
            grads[k] = scratch[k];
        }
    }
    if (st == PQ_OK) st = pq_loss_gather(a, 1, grads, &in, pairs);
    if (st == PQ_OK) {
        if (cfg.task == PQ_TASK_NONE) in.labels = NULL;
        pq_loss_values v;
        pq_tensor *dz = a->out[0];
        pq_tensor *dz_scratch = NULL;
        if (!dz) {
            dz = dz_scratch = pq_tensor_create(PQ_DTYPE_F32, in.logits->rank, in.logits->dims,
                                               a->err);
            if (!dz) st = PQ_ERR_NOMEM;
        }
        if (st == PQ_OK) st = pq_loss_total(&cfg, &in, &v, dz, a->err);
        if (st == PQ_OK) {
            float s = ((const float *)a->in[0]->data)[0];
            pq_loss_scale(a->out[0], s);
            for (uint32_t k = 0; k < n_pairs; k++)
                if (!scratch[k]) pq_loss_scale(grads[k], s);
        }
        pq_tensor_destroy(dz_scratch);
    }
    for (uint32_t k = 0; k < n_pairs && k < PQ_LOSS_MAX_PAIRS; k++)
        pq_tensor_destroy(scratch[k]);
    return st;
}
