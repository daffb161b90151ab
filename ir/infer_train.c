/* Shape rules of the training ops (FakeQuantGrad, the straight-through backward of FakeQuant) and
 * the names of the straight-through estimators (SPEC 7). */
#include "infer_train.h"

#include <math.h>
#include <string.h>

#include "infer_piqc.h"

static const char *const pq_ste_names[PQ_STE_COUNT] = {
    [PQ_STE_STANDARD] = "standard",
    [PQ_STE_CLIPPED] = "clipped",
    [PQ_STE_LSQ] = "lsq",
    [PQ_STE_EWGS] = "ewgs",
};

const char *pq_ste_name(enum pq_ste s) {
    return (unsigned)s < PQ_STE_COUNT ? pq_ste_names[s] : "?";
}

bool pq_ste_from_name(const char *name, enum pq_ste *out) {
    if (!name) return false;
    for (int i = 0; i < PQ_STE_COUNT; i++)
        if (!strcmp(name, pq_ste_names[i])) {
            *out = (enum pq_ste)i;
            return true;
        }
    return false;
}

enum pq_status pq_infer_train_fake_quant_grad(pq_infer_ctx *c) {
    if (c->n_in < 3 || !c->in[2].present)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input g (dL/dw_hat) is missing");
    const char *fs = pq_node_attr_string(c->node, "format", NULL);
    if (fs && !strcmp(fs, "f16"))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "format f16 has no FakeQuantGrad: its straight-through gradient is g "
                            "itself");
    /* w, scales and the FakeQuant attributes: FakeQuant's own rule */
    pq_type_info fq_out = {0};
    fq_out.present = true;
    pq_infer_ctx fq = *c;
    fq.n_in = 2;
    fq.out = &fq_out;
    fq.n_out = 1;
    PQ_TRY(pq_infer_piqc_fake_quant(&fq));
    const pq_attr *sa = pq_node_attr(c->node, "ste");
    enum pq_ste ste = PQ_STE_STANDARD;
    if (sa && !pq_ste_from_name(sa->u.s, &ste))
        return pq_error_set(c->err, PQ_ERR_INVALID,
                            "attribute ste = '%s' must be one of standard, clipped, lsq, ewgs",
                            sa->u.s);
    const pq_attr *da = pq_node_attr(c->node, "ewgs_delta");
    if (da && (da->type != PQ_ATTR_FLOAT || !isfinite(da->u.f)))
        return pq_error_set(c->err, PQ_ERR_INVALID, "attribute ewgs_delta must be a finite float");
    /* g: f32, the shape of w */
    enum pq_dtype gt = c->in[2].dtype;
    if (gt != PQ_DTYPE_F32 && gt != PQ_DTYPE_UNDEFINED)
        return pq_error_set(c->err, PQ_ERR_INVALID, "input g must be f32, not %s",
                            pq_dtype_name(gt));
    const pq_shape *w = &c->in[0].shape, *g = &c->in[2].shape;
    if (w->rank >= 0 && g->rank >= 0) {
        if (w->rank != g->rank)
            return pq_error_set(c->err, PQ_ERR_INVALID, "g has rank %d, w has rank %d", g->rank,
                                w->rank);
        for (int i = 0; i < w->rank; i++)
            if (pq_dim_known(w->dims[i]) && pq_dim_known(g->dims[i]) &&
                w->dims[i].size != g->dims[i].size)
                return pq_error_set(c->err, PQ_ERR_INVALID, "g dim %d is %lld, w has %lld", i,
                                    (long long)g->dims[i].size, (long long)w->dims[i].size);
    }
    c->out[0].dtype = PQ_DTYPE_F32;
    c->out[0].shape = w->rank >= 0 ? *w : *g;
    if (c->n_out > 1 && c->out[1].present) {
        if (ste != PQ_STE_LSQ)
            return pq_error_set(c->err, PQ_ERR_INVALID,
                                "output dscales needs ste = lsq (ste %s has no scale gradient)",
                                pq_ste_name(ste));
        c->out[1].dtype = PQ_DTYPE_F32;
        c->out[1].shape = c->in[1].shape;
    }
    return PQ_OK;
}
