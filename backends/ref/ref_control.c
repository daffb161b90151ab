/* Reference kernels of the control-flow ops If and Loop. Branches and bodies run through the
 * caller's pq_subgraph_runner; their result tensors are moved into the node's outputs, whose
 * shapes may differ per branch or iteration. */
#include <string.h>

#include "ref_kernels.h"

/* Gives output slot out the contents of t (a tensor the runner allocated, destroyed here): moves
 * the data when out has none, copies into a planned buffer of the same shape, else INTERNAL. */
static enum pq_status ctl_give(pq_tensor *out, pq_tensor *t, uint32_t i, pq_error *err) {
    enum pq_status st = PQ_OK;
    if (!out) goto done;
    if (out->data) {
        bool same = out->dtype == t->dtype && out->rank == t->rank;
        for (int d = 0; same && d < t->rank; d++)
            same = out->dims[d] == t->dims[d];
        if (same) {
            if (t->nbytes) memcpy(out->data, t->data, t->nbytes);
            goto done;
        }
        if (!out->owns_data) {
            st = pq_error_set(err, PQ_ERR_INTERNAL,
                              "output %u: planned buffer does not fit the subgraph's result", i);
            goto done;
        }
    }
    if (t->owns_data) {
        if (out->owns_data) pq_free(out->data);
        out->dtype = t->dtype;
        out->rank = t->rank;
        memcpy(out->dims, t->dims, sizeof out->dims);
        out->data = t->data;
        out->nbytes = t->nbytes;
        out->owns_data = true;
        t->owns_data = false;
        t->data = NULL;
    } else {
        st = pq_tensor_alloc_data(out, t->dtype, t->rank, t->dims, err);
        if (st == PQ_OK && t->nbytes) memcpy(out->data, t->data, t->nbytes);
    }
done:
    pq_tensor_destroy(t);
    return st;
}

static const pq_graph *ctl_graph(const pq_node *n, const char *name) {
    const pq_attr *a = pq_node_attr(n, name);
    return a && a->type == PQ_ATTR_GRAPH ? a->u.graph : NULL;
}

/* ---- If ---- */

enum pq_status pq_ref_if(const pq_kernel_args *a) {
    if (!a->subgraph || !a->subgraph->run)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "If: no subgraph runner");
    const pq_tensor *cond = a->in[0];
    if (!cond || pq_tensor_numel(cond) != 1)
        return pq_error_set(a->err, PQ_ERR_INVALID, "If: cond must have one element");
    bool c = pq_dtype_load(cond->dtype, cond->data, 0) != 0;
    const pq_graph *g = ctl_graph(a->node, c ? "then_branch" : "else_branch");
    if (!g) return pq_error_set(a->err, PQ_ERR_INVALID, "If: missing branch graph");
    if (g->n_outputs != a->n_out)
        return pq_error_set(a->err, PQ_ERR_INVALID, "If: branch has %u outputs, node has %u",
                            g->n_outputs, a->n_out);
    pq_tensor *res_small[16], **res = res_small;
    if (a->n_out > 16 && !(res = pq_calloc(a->n_out, sizeof *res)))
        return pq_error_nomem(a->err, "If");
    memset(res, 0, sizeof(*res) * (a->n_out < 16 ? 16 : a->n_out));
    enum pq_status st = a->subgraph->run(a->subgraph->ctx, g, NULL, 0, res, a->n_out, a->err);
    for (uint32_t i = 0; i < a->n_out; i++) {
        if (st == PQ_OK && !res[i])
            st = pq_error_set(a->err, PQ_ERR_INTERNAL, "If: branch gave no output %u", i);
        if (st == PQ_OK)
            st = ctl_give(a->out[i], res[i], i, a->err);
        else
            pq_tensor_destroy(res[i]);
        res[i] = NULL;
    }
    if (res != res_small) pq_free(res);
    return st;
}

/* ---- Loop ---- */

typedef struct ctl_scan {
    pq_tensor **items;
    int64_t n, cap;
} ctl_scan;

enum pq_status pq_ref_loop(const pq_kernel_args *a) {
    if (!a->subgraph || !a->subgraph->run)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "Loop: no subgraph runner");
    const pq_graph *body = ctl_graph(a->node, "body");
    if (!body) return pq_error_set(a->err, PQ_ERR_INVALID, "Loop: missing body graph");
    uint32_t nc = a->n_in - 2; /* loop-carried values */
    if (body->n_inputs != nc + 2 || body->n_outputs < nc + 1 || a->n_out != body->n_outputs - 1)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "Loop: body has %u inputs / %u outputs for %u carried values and %u "
                            "node outputs",
                            body->n_inputs, body->n_outputs, nc, a->n_out);
    uint32_t ns = body->n_outputs - 1 - nc;
    const pq_tensor *M = a->in[0], *C = a->in[1];
    if (!M && !C)
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "Loop: neither trip count nor condition given (infinite loop)");
    if ((M && pq_tensor_numel(M) != 1) || (C && pq_tensor_numel(C) != 1))
        return pq_error_set(a->err, PQ_ERR_INVALID, "Loop: M and cond must have one element");
    for (uint32_t k = 0; k < nc; k++)
        if (!a->in[2 + k])
            return pq_error_set(a->err, PQ_ERR_INVALID, "Loop: carried value %u is missing", k);
    int64_t max_trip = M ? pq_dtype_load_i64(M->dtype, M->data, 0) : INT64_MAX;
    bool cond = C ? pq_dtype_load(C->dtype, C->data, 0) != 0 : true;

    enum pq_status st = PQ_OK;
    uint32_t n_body_in = nc + 2, n_body_out = body->n_outputs;
    const pq_tensor **bin = pq_calloc(n_body_in, sizeof *bin);
    pq_tensor **bout = pq_calloc(n_body_out, sizeof *bout);
    pq_tensor **carried = pq_calloc(nc ? nc : 1, sizeof *carried); /* owned, NULL = initial */
    ctl_scan *scans = pq_calloc(ns ? ns : 1, sizeof *scans);
    pq_tensor *iter_t = pq_tensor_create(PQ_DTYPE_I64, 0, NULL, a->err);
    pq_tensor *cond_t = pq_tensor_create(PQ_DTYPE_BOOL, 0, NULL, a->err);
    int64_t scan_elems = 0;
    if (!bin || !bout || !carried || !scans || !iter_t || !cond_t) {
        st = pq_error_nomem(a->err, "Loop");
        goto done;
    }
    int64_t it = 0;
    for (; it < max_trip && cond; it++) {
        *(int64_t *)iter_t->data = it;
        *(uint8_t *)cond_t->data = 1;
        bin[0] = iter_t;
        bin[1] = cond_t;
        for (uint32_t k = 0; k < nc; k++)
            bin[2 + k] = carried[k] ? carried[k] : a->in[2 + k];
        memset(bout, 0, sizeof *bout * n_body_out);
        st = a->subgraph->run(a->subgraph->ctx, body, bin, n_body_in, bout, n_body_out, a->err);
        if (st == PQ_OK)
            for (uint32_t j = 0; j < n_body_out && st == PQ_OK; j++)
                if (!bout[j])
                    st = pq_error_set(a->err, PQ_ERR_INTERNAL, "Loop: body gave no output %u", j);
        if (st != PQ_OK) {
            for (uint32_t j = 0; j < n_body_out; j++)
                pq_tensor_destroy(bout[j]);
            pq_error_prefix(a->err, "Loop iteration %lld: ", (long long)it);
            goto done;
        }
        if (pq_tensor_numel(bout[0]) != 1) {
            for (uint32_t j = 0; j < n_body_out; j++)
                pq_tensor_destroy(bout[j]);
            st = pq_error_set(a->err, PQ_ERR_INVALID, "Loop: body condition must have one element");
            goto done;
        }
        cond = pq_dtype_load(bout[0]->dtype, bout[0]->data, 0) != 0;
        pq_tensor_destroy(bout[0]);
        for (uint32_t k = 0; k < nc; k++) {
            pq_tensor_destroy(carried[k]);
            carried[k] = bout[1 + k];
        }
        for (uint32_t s = 0; s < ns; s++) {
            pq_tensor *t = bout[1 + nc + s];
            ctl_scan *sc = &scans[s];
            const pq_tensor *f = sc->n ? sc->items[0] : NULL;
            bool ok = !f || (f->dtype == t->dtype && f->rank == t->rank);
            for (int d = 0; ok && f && d < t->rank; d++)
                ok = f->dims[d] == t->dims[d];
            if (ok && t->rank >= PQ_MAX_RANK) ok = false;
            scan_elems += pq_tensor_numel(t);
            if (!ok || scan_elems > PQ_MAX_NUMEL) {
                for (uint32_t j = s; j < ns; j++)
                    pq_tensor_destroy(bout[1 + nc + j]);
                st = pq_error_set(a->err, PQ_ERR_INVALID,
                                  ok ? "Loop: scan outputs exceed 2^40 elements"
                                     : "Loop: scan output %u changes type or shape at iteration "
                                       "%lld",
                                  s, (long long)it);
                goto done;
            }
            if (sc->n == sc->cap) {
                int64_t cap = sc->cap ? 2 * sc->cap : 16;
                pq_tensor **items = pq_realloc(sc->items, sizeof(*items) * (size_t)cap);
                if (!items) {
                    for (uint32_t j = s; j < ns; j++)
                        pq_tensor_destroy(bout[1 + nc + j]);
                    st = pq_error_nomem(a->err, "Loop scan outputs");
                    goto done;
                }
                sc->items = items;
                sc->cap = cap;
            }
            sc->items[sc->n++] = t;
        }
    }
    /* final carried values */
    for (uint32_t k = 0; k < nc && st == PQ_OK; k++) {
        pq_tensor *t = carried[k];
        carried[k] = NULL;
        if (!t) t = pq_tensor_clone(a->in[2 + k], a->err);
        if (!t)
            st = PQ_ERR_NOMEM;
        else
            st = ctl_give(a->out[k], t, k, a->err);
    }
    /* scan outputs stacked along a new axis 0 */
    for (uint32_t s = 0; s < ns && st == PQ_OK; s++) {
        pq_tensor *out = a->out[nc + s];
        if (!out) continue;
        ctl_scan *sc = &scans[s];
        int64_t dims[PQ_MAX_RANK];
        int rank;
        enum pq_dtype dt;
        if (sc->n) {
            const pq_tensor *f = sc->items[0];
            rank = f->rank + 1;
            dt = f->dtype;
            dims[0] = sc->n;
            for (int d = 0; d < f->rank; d++)
                dims[d + 1] = f->dims[d];
        } else { /* zero iterations: [0, ...] with what inference knew */
            const pq_value *bv = &body->values[body->outputs[1 + nc + s]];
            dt = out->dtype != PQ_DTYPE_UNDEFINED ? out->dtype : bv->dtype;
            if (dt == PQ_DTYPE_UNDEFINED) dt = PQ_DTYPE_F32;
            rank = bv->shape.rank >= 0 && bv->shape.rank < PQ_MAX_RANK ? bv->shape.rank + 1 : 1;
            dims[0] = 0;
            for (int d = 1; d < rank; d++)
                dims[d] = bv->shape.dims[d - 1].size > 0 ? bv->shape.dims[d - 1].size : 0;
        }
        pq_tensor *t = pq_tensor_create(dt, rank, dims, a->err);
        if (!t) {
            st = PQ_ERR_NOMEM;
            break;
        }
        size_t off = 0;
        for (int64_t i = 0; i < sc->n; i++) {
            if (sc->items[i]->nbytes)
                memcpy((uint8_t *)t->data + off, sc->items[i]->data, sc->items[i]->nbytes);
            off += sc->items[i]->nbytes;
        }
        st = ctl_give(out, t, nc + s, a->err);
    }
done:
    if (carried)
        for (uint32_t k = 0; k < nc; k++)
            pq_tensor_destroy(carried[k]);
    if (scans)
        for (uint32_t s = 0; s < ns; s++) {
            for (int64_t i = 0; i < scans[s].n; i++)
                pq_tensor_destroy(scans[s].items[i]);
            pq_free(scans[s].items);
        }
    pq_free(bin);
    pq_free(bout);
    pq_free(carried);
    pq_free(scans);
    pq_tensor_destroy(iter_t);
    pq_tensor_destroy(cond_t);
    return st;
}
