/* Reference kernel of piqc's ConvAdd(x, w, bias, s) (made by the fuse-residual pass): the Conv
 * reference kernel, then y += s element by element in f32, then the node's fused activation. */
#include <string.h>

#include "backends/piqc_ops.h"
#include "ir/alloc.h"
#include "ref_kernels.h"
#include "ref_util.h"

enum pq_status pq_ref_conv_add(const pq_kernel_args *a) {
    PQ_TRY(pq_ref_check_args(a, 4, 1));
    const pq_tensor *S = a->in[3];
    pq_tensor *Y = a->out[0];
    if (!S || S->dtype != PQ_DTYPE_F32 || Y->dtype != PQ_DTYPE_F32 ||
        pq_tensor_numel(S) != pq_tensor_numel(Y))
        return pq_error_set(a->err, PQ_ERR_INVALID,
                            "ConvAdd: addend (input 3) must be f32 of the result's size");
    if (S->data == Y->data)
        return pq_error_set(a->err, PQ_ERR_INTERNAL, "ConvAdd: addend aliases the result");
    /* the convolution runs on a copy of the node without the activation: it comes after the sum */
    pq_node conv = *a->node;
    pq_attr *attrs = NULL;
    if (conv.n_attrs) {
        attrs = pq_malloc(conv.n_attrs * sizeof *attrs);
        if (!attrs) return pq_error_nomem(a->err, "ConvAdd attributes");
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->node->n_attrs; i++)
        if (strncmp(a->node->attrs[i].name, "activation", 10) != 0) attrs[n++] = a->node->attrs[i];
    conv.attrs = attrs;
    conv.n_attrs = conv.cap_attrs = n;
    pq_kernel_args ca = *a;
    ca.node = &conv;
    ca.n_in = 3;
    enum pq_status st = pq_ref_conv(&ca);
    pq_free(attrs);
    if (st != PQ_OK) return st;
    const float *s = S->data;
    float *y = Y->data;
    int64_t numel = pq_tensor_numel(Y);
    for (int64_t i = 0; i < numel; i++)
        y[i] = y[i] + s[i];
    return pq_act_epilogue(a->node, Y, a->err); /* fused activation (PQ_OK when none) */
}
