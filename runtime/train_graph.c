/* The training graph: a clone of the student with a fixed batch, a TrainLoss over its logits, the
 * backward graph from autodiff, and the trainable constants turned into inputs fed every step. */
#include <stdio.h>
#include <string.h>

#include "ir/edit.h"
#include "ir/infer_train.h"
#include "passes/autodiff.h"
#include "runtime.h"
#include "train.h"

/* Smallest |a| of a PiQ/Q scale word (the smallest normal f16, format.md) and of an f32 scale. */
#define PQ_TRAIN_F16_SCALE_FLOOR 6.103515625e-05f
#define PQ_TRAIN_F32_SCALE_FLOOR 1e-12f

const char *pq_train_logits_name(const pq_graph *g, bool *from_softmax) {
    *from_softmax = false;
    if (g->n_outputs < 1) return NULL;
    const pq_value *v = &g->values[g->outputs[0]];
    if (v->dtype != PQ_DTYPE_F32) return NULL;
    if (v->producer != PQ_NONE) {
        const pq_node *n = &g->nodes[v->producer];
        if ((n->op == PQ_OP_SOFTMAX || n->op == PQ_OP_LOG_SOFTMAX) && n->n_inputs >= 1 &&
            n->inputs[0] != PQ_NONE) {
            *from_softmax = true;
            return g->values[n->inputs[0]].name;
        }
    }
    return v->name;
}

/* Adds a graph input named name with dtype and shape. */
static enum pq_status pq_tg_input(pq_graph *g, const char *name, enum pq_dtype dt,
                                  const pq_shape *shape, uint32_t *out, pq_error *err) {
    if (pq_graph_find_value(g, name) != PQ_NONE)
        return pq_error_set(err, PQ_ERR_INVALID, "the model already has a value named '%s'", name);
    PQ_TRY(pq_graph_add_value(g, name, dt, shape, out, err));
    return pq_graph_add_input(g, *out, err);
}

/* Fixes the first axis of every model input to batch and forgets every inferred shape. */
static enum pq_status pq_tg_set_batch(pq_graph *g, int64_t batch, pq_error *err) {
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        pq_value *v = &g->values[g->inputs[i]];
        if (v->shape.rank < 1)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "model input '%s' has no batch axis (rank %d): training feeds "
                                "batches along the first axis",
                                v->name, v->shape.rank);
        if (pq_dim_known(v->shape.dims[0]) && v->shape.dims[0].size != batch)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "model input '%s' has a fixed batch of %lld; train with --batch "
                                "%lld or export the model with a dynamic first axis",
                                v->name, (long long)v->shape.dims[0].size,
                                (long long)v->shape.dims[0].size);
        v->shape.dims[0] = pq_dim_of(batch);
        for (int d = 1; d < v->shape.rank; d++)
            if (!pq_dim_known(v->shape.dims[d]))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "model input '%s' has a dynamic axis %d: training needs "
                                    "static shapes except the batch",
                                    v->name, d);
    }
    for (uint32_t v = 0; v < g->n_values; v++)
        if (g->values[v].producer != PQ_NONE) g->values[v].shape = pq_shape_unknown();
    return pq_graph_sort_infer(g, err);
}

/* Marks as trainable the constant c (through a FakeQuant: its weight and, with lsq, its scales). */
static void pq_tg_mark(const pq_graph *g, uint32_t c, bool *train, bool *scale) {
    if (c == PQ_NONE) return;
    const pq_value *v = &g->values[c];
    if (v->constant) {
        if (pq_dtype_is_float(v->dtype) && v->shape.rank >= 1) train[c] = true;
        return;
    }
    if (v->producer == PQ_NONE) return;
    const pq_node *n = &g->nodes[v->producer];
    if (n->op != PQ_OP_FAKE_QUANT) return;
    pq_tg_mark(g, n->inputs[0], train, scale);
    if (n->n_inputs > 1 && n->inputs[1] != PQ_NONE &&
        !strcmp(pq_node_attr_string(n, "ste", "standard"), "lsq") &&
        g->values[n->inputs[1]].constant) {
        train[n->inputs[1]] = true;
        scale[n->inputs[1]] = true;
    }
}

static bool pq_tg_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The trainable constants (see pq_train_graph_opts). */
static void pq_tg_select(const pq_graph *g, bool *train, bool *scale, bool *lora_mode) {
    *lora_mode = false;
    for (uint32_t v = 0; v < g->n_values; v++)
        if (g->values[v].constant && (pq_tg_ends_with(g->values[v].name, ".lora_A") ||
                                      pq_tg_ends_with(g->values[v].name, ".lora_B")))
            *lora_mode = true;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *n = &g->nodes[i];
        uint32_t in1 = n->n_inputs > 1 ? n->inputs[1] : PQ_NONE;
        uint32_t in2 = n->n_inputs > 2 ? n->inputs[2] : PQ_NONE;
        switch (n->op) {
        case PQ_OP_MATMUL:
        case PQ_OP_PRELU:
            pq_tg_mark(g, in1, train, scale);
            break;
        case PQ_OP_GEMM:
        case PQ_OP_CONV:
        case PQ_OP_CONV_TRANSPOSE:
        case PQ_OP_LAYER_NORMALIZATION:
        case PQ_OP_BATCH_NORMALIZATION: /* scale and bias; the statistics stay frozen */
            pq_tg_mark(g, in1, train, scale);
            pq_tg_mark(g, in2, train, scale);
            break;
        case PQ_OP_GATHER:
            pq_tg_mark(g, n->inputs[0], train, scale);
            break;
        case PQ_OP_ADD:
        case PQ_OP_MUL:
            /* a per-feature bias or scale vector */
            for (int k = 0; k < 2; k++) {
                uint32_t c = n->inputs[k];
                if (c != PQ_NONE && g->values[c].constant && g->values[c].shape.rank == 1)
                    pq_tg_mark(g, c, train, scale);
            }
            break;
        default:
            break;
        }
    }
    if (*lora_mode)
        for (uint32_t v = 0; v < g->n_values; v++)
            if (train[v] && !scale[v] && !pq_tg_ends_with(g->values[v].name, ".lora_A") &&
                !pq_tg_ends_with(g->values[v].name, ".lora_B"))
                train[v] = false;
}

/* Turns constant c into a graph input and records it as parameter p. */
static enum pq_status pq_tg_promote(pq_train_graph *tg, uint32_t c, bool is_scale, pq_error *err) {
    pq_graph *g = tg->g;
    pq_value *v = &g->values[c];
    pq_train_param *p = &tg->params[tg->n_params];
    memset(p, 0, sizeof *p);
    p->name = v->name;
    p->is_scale = is_scale;
    pq_tensor *t = v->constant;
    p->master = pq_tensor_create(PQ_DTYPE_F32, t->rank, t->dims, err);
    if (!p->master) return PQ_ERR_NOMEM;
    int64_t n = pq_tensor_numel(t);
    float *m = p->master->data;
    for (int64_t i = 0; i < n; i++)
        m[i] = (float)pq_dtype_load(t->dtype, t->data, (size_t)i);
    if (t->dtype == PQ_DTYPE_F32) {
        p->feed = p->master;
    } else if (t->dtype == PQ_DTYPE_F16) {
        p->feed = t; /* the graph's own tensor, now owned by the parameter */
        v->constant = NULL;
        t = NULL;
    } else {
        pq_tensor_destroy(p->master);
        p->master = NULL;
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "trainable '%s' is %s (f32 or f16 only)",
                            v->name, pq_dtype_name(v->dtype));
    }
    p->scale_floor = v->dtype == PQ_DTYPE_F16 ? PQ_TRAIN_F16_SCALE_FLOOR : PQ_TRAIN_F32_SCALE_FLOOR;
    if (t) {
        pq_tensor_destroy(v->constant);
        v->constant = NULL;
    }
    tg->n_params++;
    return pq_graph_add_input(g, c, err);
}

static enum pq_status pq_tg_loss(pq_train_graph *tg, const pq_train_graph_opts *o,
                                 uint32_t *loss, pq_error *err) {
    pq_graph *g = tg->g;
    const pq_train_config *cfg = o->cfg;
    uint32_t z = pq_graph_find_value(g, tg->logits);
    const pq_shape zs = g->values[z].shape;
    uint32_t in[3 + 2 * PQ_TRAIN_MAX_FEATURES];
    uint32_t n_in = 3;
    in[0] = z;
    in[1] = in[2] = PQ_NONE;
    if (o->with_labels) {
        pq_shape ls = zs;
        if (o->label_dtype == PQ_DTYPE_I64) ls.rank = zs.rank - 1;
        PQ_TRY(pq_tg_input(g, "labels", o->label_dtype, &ls, &in[1], err));
        tg->has_labels = true;
    }
    if (o->with_teacher) {
        PQ_TRY(pq_tg_input(g, "teacher/logits", PQ_DTYPE_F32, &zs, &in[2], err));
        tg->has_teacher = true;
    }
    for (uint32_t f = 0; f < cfg->n_features; f++) {
        uint32_t s = pq_graph_find_value(g, cfg->features[f]);
        if (s == PQ_NONE || g->values[s].constant || !pq_dtype_is_float(g->values[s].dtype))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "feature '%s' is not a float value computed by the model",
                                cfg->features[f]);
        char name[1024];
        snprintf(name, sizeof name, "teacher/%s", cfg->features[f]);
        uint32_t t;
        const pq_shape fs = g->values[s].shape;
        PQ_TRY(pq_tg_input(g, name, g->values[s].dtype, &fs, &t, err));
        in[n_in++] = s;
        in[n_in++] = t;
        tg->n_features++;
    }
    while (n_in > 1 && in[n_in - 1] == PQ_NONE)
        n_in--;
    uint32_t outs[2], nid;
    pq_shape scalar = {.rank = 0};
    pq_shape three = {.rank = 1};
    three.dims[0] = pq_dim_of(3);
    PQ_TRY(pq_graph_add_value(g, "loss", PQ_DTYPE_F32, &scalar, &outs[0], err));
    PQ_TRY(pq_graph_add_value(g, "loss/terms", PQ_DTYPE_F32, &three, &outs[1], err));
    PQ_TRY(pq_graph_add_node(g, PQ_OP_TRAIN_LOSS, "train_loss", in, n_in, outs, 2, &nid, err));
    const pq_loss_config *l = &cfg->loss;
    const char *task = !o->with_labels              ? "none"
                       : l->task == PQ_TASK_MSE     ? "mse"
                       : l->task == PQ_TASK_NONE    ? "none"
                                                    : "cross_entropy";
    PQ_TRY(pq_node_set_string(g, nid, "task", task, err));
    PQ_TRY(pq_node_set_float(g, nid, "w_task", (float)l->w_task, err));
    PQ_TRY(pq_node_set_float(g, nid, "w_kd", (float)l->w_kd, err));
    PQ_TRY(pq_node_set_float(g, nid, "w_feat", (float)l->w_feat, err));
    PQ_TRY(pq_node_set_float(g, nid, "temperature", (float)l->temperature, err));
    PQ_TRY(pq_node_set_string(g, nid, "kd_direction",
                              l->kd_direction == PQ_KD_REVERSE ? "reverse" : "forward", err));
    /* the loss replaces the model's outputs */
    for (uint32_t i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]].flags &= ~(uint32_t)PQ_VALUE_OUTPUT;
    g->n_outputs = 0;
    PQ_TRY(pq_graph_add_output(g, outs[0], err));
    PQ_TRY(pq_graph_add_output(g, outs[1], err));
    *loss = outs[0];
    return pq_graph_sort_infer(g, err);
}

enum pq_status pq_train_graph_build(const pq_graph *student, const pq_train_graph_opts *o,
                                    pq_train_graph *tg, pq_error *err) {
    memset(tg, 0, sizeof *tg);
    enum pq_status st = PQ_OK;
    bool *train = NULL, *scale = NULL;
    uint32_t n_model_inputs = student->n_inputs;
    PQ_TRY(pq_graph_clone(student, &tg->g, err));
    pq_graph *g = tg->g;
    PQ_TRY_GOTO(st, pq_tg_set_batch(g, o->cfg->batch, err), fail);
    tg->logits = pq_train_logits_name(g, &tg->logits_from_softmax);
    if (!tg->logits) {
        st = pq_error_set(err, PQ_ERR_INVALID, "output 0 of the model is not an f32 tensor");
        goto fail;
    }
    if (o->log && tg->logits_from_softmax)
        fprintf(o->log,
                "train: output '%s' comes from a Softmax/LogSoftmax: its input '%s' is used as "
                "the logits\n",
                g->values[g->outputs[0]].name, tg->logits);
    uint32_t loss = PQ_NONE;
    PQ_TRY_GOTO(st, pq_tg_loss(tg, o, &loss, err), fail);

    train = pq_calloc(g->n_values, sizeof *train);
    scale = pq_calloc(g->n_values, sizeof *scale);
    if (!train || !scale) {
        st = pq_error_nomem(err, "trainable set");
        goto fail;
    }
    bool lora_mode;
    pq_tg_select(g, train, scale, &lora_mode);
    uint32_t n_sel = 0;
    for (uint32_t v = 0; v < g->n_values; v++)
        n_sel += train[v];
    if (n_sel == 0) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "nothing to train: no weight of MatMul/Gemm/Conv/norm layers, bias or "
                          "LoRA adapter was found");
        goto fail;
    }
    if (o->log)
        fprintf(o->log, "train: %s, %u trainable tensors\n",
                lora_mode ? "LoRA-QAT (only adapters and LSQ scales train)"
                          : "full QAT (weights, biases and norm parameters train)",
                n_sel);
    pq_pass_ctx quiet;
    pq_pass_ctx_init(&quiet);
    quiet.verbose = 0;
    uint32_t n_values_before = g->n_values;
    st = pq_autodiff_graph(g, loss, train, &quiet, err);
    pq_pass_ctx_free(&quiet);
    if (st != PQ_OK) goto fail;
    /* which selected constants got a gradient output */
    tg->params = pq_calloc(n_sel, sizeof *tg->params);
    if (!tg->params) {
        st = pq_error_nomem(err, "parameters");
        goto fail;
    }
    uint32_t n_out_before_promote = g->n_outputs;
    for (uint32_t v = 0; v < n_values_before; v++) {
        if (!train[v]) continue;
        char name[1024];
        snprintf(name, sizeof name, "grad/%s", g->values[v].name);
        uint32_t gv = pq_graph_find_value(g, name);
        if (gv == PQ_NONE || !(g->values[gv].flags & PQ_VALUE_OUTPUT)) continue;
        uint32_t gi = 0;
        while (gi < n_out_before_promote && g->outputs[gi] != gv)
            gi++;
        PQ_TRY_GOTO(st, pq_tg_promote(tg, v, scale[v], err), fail);
        tg->params[tg->n_params - 1].grad_index = gi;
    }
    /* roles of the inputs */
    tg->in_role = pq_calloc(g->n_inputs, sizeof *tg->in_role);
    tg->in_index = pq_calloc(g->n_inputs, sizeof *tg->in_index);
    if (!tg->in_role || !tg->in_index) {
        st = pq_error_nomem(err, "input roles");
        goto fail;
    }
    uint32_t feat = 0, par = 0;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const char *nm = g->values[g->inputs[i]].name;
        if (i < n_model_inputs) {
            tg->in_role[i] = PQ_TRAIN_IN_MODEL;
            tg->in_index[i] = i;
        } else if (!strcmp(nm, "labels")) {
            tg->in_role[i] = PQ_TRAIN_IN_LABELS;
        } else if (!strcmp(nm, "teacher/logits")) {
            tg->in_role[i] = PQ_TRAIN_IN_TEACHER;
        } else if (!strncmp(nm, "teacher/", 8) && feat < tg->n_features) {
            tg->in_role[i] = PQ_TRAIN_IN_TEACHER_FEATURE;
            tg->in_index[i] = feat++;
        } else {
            tg->in_role[i] = PQ_TRAIN_IN_PARAM;
            tg->in_index[i] = par++;
        }
    }
    uint32_t removed = 0;
    PQ_TRY_GOTO(st, pq_graph_remove_dead(g, &removed, err), fail);
    PQ_TRY_GOTO(st, pq_runtime_prepare(g, err), fail);
    pq_free(train);
    pq_free(scale);
    return PQ_OK;
fail:
    pq_free(train);
    pq_free(scale);
    pq_train_graph_free(tg);
    return st;
}

void pq_train_graph_free(pq_train_graph *tg) {
    if (!tg) return;
    for (uint32_t i = 0; i < tg->n_params; i++) {
        pq_train_param *p = &tg->params[i];
        if (p->feed != p->master) pq_tensor_destroy(p->feed);
        pq_tensor_destroy(p->master);
    }
    pq_free(tg->params);
    pq_free(tg->in_role);
    pq_free(tg->in_index);
    pq_graph_destroy(tg->g);
    memset(tg, 0, sizeof *tg);
}

enum pq_status pq_train_graph_store(const pq_train_graph *tg, pq_graph *student, pq_error *err) {
    for (uint32_t i = 0; i < tg->n_params; i++) {
        const pq_train_param *p = &tg->params[i];
        uint32_t v = pq_graph_find_value(student, p->name);
        pq_tensor *t = v != PQ_NONE ? student->values[v].constant : NULL;
        if (!t)
            return pq_error_set(err, PQ_ERR_INVALID, "trained tensor '%s' is not a constant of "
                                "the model", p->name);
        int64_t n = pq_tensor_numel(t);
        if (t->rank != p->master->rank || n != pq_tensor_numel(p->master))
            return pq_error_set(err, PQ_ERR_INVALID, "trained tensor '%s' changed shape", p->name);
        const float *m = p->master->data;
        for (int64_t k = 0; k < n; k++)
            pq_dtype_store(t->dtype, t->data, (size_t)k, m[k]);
    }
    return PQ_OK;
}
