/* Shape rules of the training-loss ops TrainLoss and TrainLossGrad (ir/infer_train.h): inputs
 * checked against each other (labels, teacher, feature pairs), attributes validated once here. */
#include <math.h>
#include <string.h>

#include "infer_train.h"

bool pq_train_loss_task(const pq_node *n, enum pq_train_task *out) {
    const char *s = pq_node_attr_string(n, "task", "cross_entropy");
    if (!strcmp(s, "none"))
        *out = PQ_TRAIN_TASK_NONE;
    else if (!strcmp(s, "cross_entropy"))
        *out = PQ_TRAIN_TASK_CROSS_ENTROPY;
    else if (!strcmp(s, "mse"))
        *out = PQ_TRAIN_TASK_MSE;
    else
        return false;
    return true;
}

bool pq_train_loss_kd_reverse(const pq_node *n, bool *reverse) {
    const char *s = pq_node_attr_string(n, "kd_direction", "forward");
    if (!strcmp(s, "forward"))
        *reverse = false;
    else if (!strcmp(s, "reverse"))
        *reverse = true;
    else
        return false;
    return true;
}

/* A float attribute, when present, must be finite (and > 0 / >= 0 when asked). */
static enum pq_status pq_loss_attr_float(pq_infer_ctx *c, const char *name, int sign) {
    const pq_attr *a = pq_node_attr(c->node, name);
    if (!a) return PQ_OK;
    if (a->type != PQ_ATTR_FLOAT || !isfinite(a->u.f) || (sign > 0 && !(a->u.f > 0.0f)) ||
        (sign == 0 && a->u.f < 0.0f))
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute %s must be a finite float%s", name,
                            sign > 0 ? " > 0" : (sign == 0 ? " >= 0" : ""));
    return PQ_OK;
}

/* Known dims of a and b agree (ranks known and equal). */
static enum pq_status pq_loss_same_shape(pq_infer_ctx *c, const pq_shape *a, const pq_shape *b,
                                         const char *what, const char *ref) {
    if (a->rank < 0 || b->rank < 0) return PQ_OK;
    if (a->rank != b->rank)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s has rank %d, %s has rank %d", what,
                            a->rank, ref, b->rank);
    for (int i = 0; i < a->rank; i++)
        if (pq_dim_known(a->dims[i]) && pq_dim_known(b->dims[i]) &&
            a->dims[i].size != b->dims[i].size)
            return pq_error_set(c->err, PQ_ERR_INVALID, "%s dim %d is %lld, %s has %lld", what, i,
                                (long long)a->dims[i].size, ref, (long long)b->dims[i].size);
    return PQ_OK;
}

static enum pq_status pq_loss_f32(pq_infer_ctx *c, uint32_t i, const char *what) {
    enum pq_dtype t = c->in[i].dtype;
    if (t != PQ_DTYPE_F32 && t != PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "%s must be f32, not %s", what,
                            pq_dtype_name(t));
    return PQ_OK;
}

/* Checks the loss inputs starting at input base (logits) and the attributes. */
static enum pq_status pq_loss_check(pq_infer_ctx *c, uint32_t base) {
    enum pq_train_task task;
    bool rev;
    if (!pq_train_loss_task(c->node, &task))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute task = '%s' (none, cross_entropy or mse)",
                            pq_node_attr_string(c->node, "task", ""));
    if (!pq_train_loss_kd_reverse(c->node, &rev))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute kd_direction = '%s' (forward or reverse)",
                            pq_node_attr_string(c->node, "kd_direction", ""));
    static const char *const weights[] = {"w_task", "w_kd", "w_feat"};
    for (int i = 0; i < 3; i++)
        PQ_TRY(pq_loss_attr_float(c, weights[i], -1));
    PQ_TRY(pq_loss_attr_float(c, "temperature", 1));
    PQ_TRY(pq_loss_attr_float(c, "cos_eps", 0));

    if (c->n_in <= base || !c->in[base].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input logits is missing");
    PQ_TRY(pq_loss_f32(c, base, "logits"));
    const pq_shape *z = &c->in[base].shape;
    if (z->rank == 0) return pq_error_set(c->err, PQ_ERR_INVALID, "logits must have rank >= 1");
    bool has_labels = c->n_in > base + 1 && c->in[base + 1].present;
    if (task != PQ_TRAIN_TASK_NONE && !has_labels)
        return pq_error_set(c->err, PQ_ERR_INVALID, "task %s needs input labels",
                            task == PQ_TRAIN_TASK_MSE ? "mse" : "cross_entropy");
    if (has_labels && task != PQ_TRAIN_TASK_NONE) {
        const pq_type_info *l = &c->in[base + 1];
        if (task == PQ_TRAIN_TASK_MSE) {
            PQ_TRY(pq_loss_f32(c, base + 1, "labels (mse target)"));
            PQ_TRY(pq_loss_same_shape(c, &l->shape, z, "labels", "logits"));
        } else {
            if (l->dtype != PQ_DTYPE_I64 && l->dtype != PQ_DTYPE_UNDEFINED)
                return pq_error_set(c->err, PQ_ERR_INVALID,
                                    "labels must be i64 class ids for cross_entropy, not %s",
                                    pq_dtype_name(l->dtype));
            if (z->rank > 0 && l->shape.rank >= 0) {
                pq_shape want = *z;
                want.rank = z->rank - 1;
                PQ_TRY(pq_loss_same_shape(c, &l->shape, &want, "labels",
                                          "logits without their last axis"));
            }
        }
    }
    if (c->n_in > base + 2 && c->in[base + 2].present) {
        PQ_TRY(pq_loss_f32(c, base + 2, "teacher"));
        PQ_TRY(pq_loss_same_shape(c, &c->in[base + 2].shape, z, "teacher", "logits"));
    }
    uint32_t rest = c->n_in > base + 3 ? c->n_in - (base + 3) : 0;
    if (rest % 2)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "feature inputs come in (student, teacher) pairs; %u given", rest);
    for (uint32_t k = base + 3; k < c->n_in; k += 2) {
        if (!c->in[k].present || !c->in[k + 1].present)
            return pq_error_set(c->err, PQ_ERR_INVALID, "feature pair %u has an omitted input",
                                (k - base - 3) / 2);
        PQ_TRY(pq_loss_f32(c, k, "a student feature"));
        PQ_TRY(pq_loss_f32(c, k + 1, "a teacher feature"));
        PQ_TRY(pq_loss_same_shape(c, &c->in[k].shape, &c->in[k + 1].shape, "student feature",
                                  "its teacher feature"));
        if (c->in[k].shape.rank == 0)
            return pq_error_set(c->err, PQ_ERR_INVALID, "feature values must have rank >= 1");
    }
    return PQ_OK;
}

enum pq_status pq_infer_train_loss(pq_infer_ctx *c) {
    PQ_TRY(pq_loss_check(c, 0));
    c->out[0].dtype = PQ_DTYPE_F32;
    c->out[0].shape.rank = 0;
    if (c->n_out > 1 && c->out[1].present) {
        c->out[1].dtype = PQ_DTYPE_F32;
        c->out[1].shape.rank = 1;
        c->out[1].shape.dims[0] = pq_dim_of(3);
    }
    return PQ_OK;
}

enum pq_status pq_infer_train_loss_grad(pq_infer_ctx *c) {
    if (!c->in[0].present) return pq_error_set(c->err, PQ_ERR_INVALID, "input dtotal is missing");
    PQ_TRY(pq_loss_f32(c, 0, "dtotal"));
    int64_t dims[PQ_MAX_RANK], numel = 1;
    if (pq_shape_is_static(&c->in[0].shape, dims)) {
        for (int i = 0; i < c->in[0].shape.rank; i++)
            numel *= dims[i];
        if (numel != 1)
            return pq_error_set(c->err, PQ_ERR_INVALID, "dtotal must have one element, has %lld",
                                (long long)numel);
    }
    PQ_TRY(pq_loss_check(c, 1));
    uint32_t pairs = c->n_in > 4 ? (c->n_in - 4) / 2 : 0;
    if (c->n_out != 1 + pairs)
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "%u outputs, expected %u (dlogits and one per student feature)",
                            c->n_out, 1 + pairs);
    for (uint32_t o = 0; o < c->n_out; o++) {
        if (!c->out[o].present) continue;
        const pq_type_info *src = o == 0 ? &c->in[1] : &c->in[4 + 2 * (o - 1)];
        c->out[o].dtype = PQ_DTYPE_F32;
        c->out[o].shape = src->shape;
    }
    return PQ_OK;
}
