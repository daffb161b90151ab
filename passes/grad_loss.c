/* Gradient rule of TrainLoss (SPEC 9 losses inside the graph): one TrainLossGrad node computing
 * dL/dlogits and dL/d(student features) from the same inputs and attributes. */
#include <string.h>

#include "grad.h"
#include "ir/edit.h"

/* Most feature pairs a TrainLoss may carry here (matches the reference kernel's bound). */
#define PQ_GRAD_LOSS_MAX_PAIRS 64

enum pq_status pq_grad_train_loss(pq_grad_ctx *c) {
    const pq_node *n = &c->g->nodes[c->node];
    if (n->n_outputs > 1 && c->out_grad[1] != PQ_NONE)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED,
                            "the terms output is a report, not differentiable: differentiate the "
                            "total (output 0)");
    if (c->out_grad[0] == PQ_NONE) return PQ_OK;
    uint32_t n_in = n->n_inputs;
    uint32_t pairs = n_in > 3 ? (n_in - 3) / 2 : 0;
    if (pairs > PQ_GRAD_LOSS_MAX_PAIRS)
        return pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "%u feature pairs (at most %d)", pairs,
                            PQ_GRAD_LOSS_MAX_PAIRS);
    uint32_t in[4 + 2 * PQ_GRAD_LOSS_MAX_PAIRS], out[1 + PQ_GRAD_LOSS_MAX_PAIRS];
    in[0] = c->out_grad[0];
    for (uint32_t i = 0; i < n_in; i++)
        in[1 + i] = n->inputs[i];
    for (uint32_t i = n_in; i < 3; i++)
        in[1 + i] = PQ_NONE; /* labels / teacher omitted at the end */
    uint32_t n_gin = n_in < 3 ? 4 : 1 + n_in;
    for (uint32_t o = 0; o < 1 + pairs; o++)
        PQ_TRY(pq_graph_add_temp(c->g, c->hint, &out[o], c->err));
    const char *nn = pq_graph_fresh_node_name(c->g, c->hint);
    if (!nn) return pq_error_nomem(c->err, "node name");
    uint32_t nid;
    PQ_TRY(pq_graph_add_node(c->g, PQ_OP_TRAIN_LOSS_GRAD, nn, in, n_gin, out, 1 + pairs, &nid,
                             c->err));
    /* copy the attributes (the node pointer may have moved) */
    const pq_node *fw = &c->g->nodes[c->node];
    for (uint32_t a = 0; a < fw->n_attrs; a++) {
        const pq_attr *at = &fw->attrs[a];
        enum pq_status st = PQ_OK;
        if (at->type == PQ_ATTR_FLOAT)
            st = pq_node_set_float(c->g, nid, at->name, at->u.f, c->err);
        else if (at->type == PQ_ATTR_STRING)
            st = pq_node_set_string(c->g, nid, at->name, at->u.s, c->err);
        else if (at->type == PQ_ATTR_INT)
            st = pq_node_set_int(c->g, nid, at->name, at->u.i, c->err);
        else
            st = pq_error_set(c->err, PQ_ERR_UNSUPPORTED, "attribute '%s' has an unexpected type",
                              at->name);
        PQ_TRY(st);
        fw = &c->g->nodes[c->node];
    }
    PQ_TRY(pq_infer_node(c->g, nid, c->err));
    if (c->need[0]) c->in_grad[0] = out[0];
    for (uint32_t k = 0; k < pairs; k++)
        if (c->need[3 + 2 * k]) c->in_grad[3 + 2 * k] = out[1 + k];
    return PQ_OK;
}
