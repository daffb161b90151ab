/* piqc's own ops (Hadamard, FakeQuant, PackedMatMul, PackedConv; domain "piqc") and the fused
 * activation attribute shared by inference, the reference kernels and the fast kernels. */
#ifndef PQ_INFER_PIQC_H
#define PQ_INFER_PIQC_H

#include "infer.h"

/* ---- fused activation (node attributes activation, activation_alpha, activation_beta) ---- */

enum pq_act {
    PQ_ACT_NONE = 0,
    PQ_ACT_RELU,
    PQ_ACT_CLIP,         /* alpha = min (default -inf), beta = max (default +inf) */
    PQ_ACT_LEAKY_RELU,   /* alpha (default 0.01) */
    PQ_ACT_SIGMOID,      /* as the Sigmoid op */
    PQ_ACT_HARD_SIGMOID, /* alpha (default 0.2), beta (default 0.5) */
    PQ_ACT_HARD_SWISH,
    PQ_ACT_TANH,
    PQ_ACT_GELU,  /* exact erf form: x * (1 + erf(x / sqrt 2)) * 0.5, evaluated as the f32 ops
                     Div, Erf, Add, Mul, Mul (the usual exported decomposition) */
    PQ_ACT_SWISH, /* x * Sigmoid(x) (the ops Sigmoid then Mul) */
    PQ_ACT_COUNT
};

/* A decoded fused activation. */
typedef struct pq_activation {
    enum pq_act kind;
    float alpha, beta;
} pq_activation;

/* Accepted values of the activation attribute, comma-separated, for messages. */
extern const char pq_act_names[];
/* Name of an activation kind ("" for PQ_ACT_NONE). */
const char *pq_act_name(enum pq_act kind);

/* Decodes node n's fused activation: kind PQ_ACT_NONE when the node has no activation attribute;
 * alpha/beta from activation_alpha/activation_beta with the defaults above. Returns PQ_OK or
 * PQ_ERR_INVALID (message in err: an unknown name, listing the accepted ones, or an attribute of
 * the wrong type). The message does not repeat the node name (callers prefix it). */
enum pq_status pq_node_activation(const pq_node *n, pq_activation *out, pq_error *err);

/* ---- shape rules (ir/infer_piqc.c), entries of pq_infer_table ---- */
enum pq_status pq_infer_piqc_hadamard(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_fake_quant(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_packed_matmul(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_packed_conv(pq_infer_ctx *c);
/* The rules of Conv, ConvTranspose, Gemm, MatMul and Add, plus validation of a fused activation. */
enum pq_status pq_infer_piqc_conv_act(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_conv_transpose_act(pq_infer_ctx *c);
/* ConvAdd(x, w, bias, s): the Conv rule on (x, w, bias), s f32 of exactly the result's shape,
 * the fused activation checked. INVALID naming the input otherwise. */
enum pq_status pq_infer_piqc_conv_add(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_gemm_act(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_matmul_act(pq_infer_ctx *c);
enum pq_status pq_infer_piqc_binary_act(pq_infer_ctx *c);

/* Weight view of FakeQuant (SPEC 2 "Weight view") of a weight of rank >= 2 with dims:
 * transposed: batch = prod(dims[:-2]), rows = dims[-1], cols = dims[-2]; else batch = 1,
 * rows = dims[0], cols = prod(dims[1:]). */
void pq_fake_quant_view(int rank, const int64_t *dims, bool transposed, int64_t *batch,
                        int64_t *rows, int64_t *cols);

#endif
