/* QLinearConv set-up cached per session node: the plan of int8_conv_plan.h lives in the node's
 * second entry of the session's backend cache (pq_dnnl_node_aux; the packed weights use the first).
 */
#include "int8_conv_plan.h"

#include <string.h>

#include "backends/onednn/onednn_impl.h"
#include "int8_conv_small.h"
#include "ir/alloc.h"

static void pq_i8_conv_plan_free(void *v) {
    pq_i8_conv_plan *p = v;
    if (!p) return;
    pq_free(p->scales);
    pq_free(p->m);
    pq_i8_small_free(p->small);
    pq_free(p);
}

pq_i8_conv_plan *pq_i8_conv_plan_of(const pq_kernel_args *a) {
    pq_onednn_cache *c = pq_dnnl_current();
    if (!c || !a->node) return NULL;
    pq_error scratch;
    pq_error_clear(&scratch);
    pq_dnnl_node *e = pq_dnnl_node_aux(c, a->node, &scratch);
    if (!e) return NULL;
    if (!e->val) {
        e->val = pq_calloc(1, sizeof(pq_i8_conv_plan));
        if (!e->val) return NULL;
        e->destroy = pq_i8_conv_plan_free;
    }
    return e->val;
}

static bool pq_i8_same_dims(const int64_t *d, const pq_tensor *t) {
    return t->rank == 4 && memcmp(d, t->dims, 4 * sizeof(int64_t)) == 0;
}

bool pq_i8_conv_plan_matches(const pq_i8_conv_plan *p, const pq_tensor *X, const pq_tensor *W,
                             const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy) {
    if (!p || !p->valid || !pq_i8_same_dims(p->xd, X) || !pq_i8_same_dims(p->wd, W)) return false;
    if (!sx || !sw || !sy || !sx->data || !sw->data || !sy->data) return false;
    if ((int)sx->dtype != p->dsx || (int)sw->dtype != p->dsw || (int)sy->dtype != p->dsy ||
        sx->nbytes != p->nsx || sw->nbytes != p->nsw || sy->nbytes != p->nsy)
        return false;
    return memcmp(p->scales, sx->data, p->nsx) == 0 &&
           memcmp(p->scales + p->nsx, sw->data, p->nsw) == 0 &&
           memcmp(p->scales + p->nsx + p->nsw, sy->data, p->nsy) == 0;
}

bool pq_i8_conv_plan_store(pq_i8_conv_plan *p, const pq_tensor *X, const pq_tensor *W,
                           const pq_tensor *sx, const pq_tensor *sw, const pq_tensor *sy,
                           const pq_i8_conv *g, const pq_i8_act *act, bool has_act, const float *m,
                           bool finite) {
    p->valid = false;
    pq_free(p->scales);
    pq_free(p->m);
    size_t ns = sx->nbytes + sw->nbytes + sy->nbytes;
    p->scales = pq_malloc(ns + 1);
    p->m = pq_malloc((size_t)g->M * sizeof(float) + 1);
    if (!p->scales || !p->m) {
        pq_free(p->scales);
        pq_free(p->m);
        p->scales = NULL;
        p->m = NULL;
        return false;
    }
    memcpy(p->scales, sx->data, sx->nbytes);
    memcpy(p->scales + sx->nbytes, sw->data, sw->nbytes);
    memcpy(p->scales + sx->nbytes + sw->nbytes, sy->data, sy->nbytes);
    p->nsx = sx->nbytes;
    p->nsw = sw->nbytes;
    p->nsy = sy->nbytes;
    p->dsx = (int)sx->dtype;
    p->dsw = (int)sw->dtype;
    p->dsy = (int)sy->dtype;
    memcpy(p->xd, X->dims, sizeof p->xd);
    memcpy(p->wd, W->dims, sizeof p->wd);
    memcpy(p->m, m, (size_t)g->M * sizeof(float));
    p->g = *g;
    p->act = *act;
    p->has_act = has_act;
    p->finite = finite;
    p->valid = true;
    return true;
}
