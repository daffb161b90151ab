/* Format choices of `piqc quantize`, and a direct whole-graph weight quantizer with metrics
 * (SPEC sections 2-5) kept as the independent oracle the fake-quant pass is tested against.
 * `piqc quantize` itself runs the fake-quant pass (tools/cmd_quantize.c). */
#ifndef PQ_WEIGHT_QUANT_H
#define PQ_WEIGHT_QUANT_H

#include "backends/quant/quant.h"
#include "weights.h"

/* A target format: a packed PiQ/Q format or INT8 per-channel. */
typedef struct pq_qchoice {
    bool is_int8;
    enum pq_qformat qf; /* when !is_int8 */
    const char *name;   /* "piq3", "piq2", "q3", "q2", "int8" */
} pq_qchoice;

/* Parses a format name; false if unknown. */
bool pq_qchoice_parse(const char *name, pq_qchoice *out);
/* Nominal bits per weight (bits + 16/G for packed formats; 8 for int8). */
double pq_qchoice_nominal_bpw(const pq_qchoice *c, int64_t group);

/* One quantized weight. */
typedef struct pq_qtensor {
    pq_weight_view view;
    pq_metrics metrics, cmp_metrics;
    uint8_t *packed; /* packed rows x cols (packed formats only), owned */
    size_t packed_size;
} pq_qtensor;

typedef struct pq_qreport {
    pq_qchoice fmt, cmp;
    bool has_compare;
    enum pq_calib calib, cmp_calib;
    int64_t group;
    pq_qtensor *tensors;
    uint32_t n;
    pq_metrics aggregate, cmp_aggregate;
} pq_qreport;

/* Importance h_j = E[x_j^2] per weight column, for weighted calibration: importance[i] has
 * view.cols entries for tensor i (NULL entries mean "no data": mse is used). */
typedef struct pq_importance {
    float **per_tensor;
    uint32_t n;
} pq_importance;

/* Quantizes every weight of g (>= 2 dims, >= 1024 elements; MatMul, Gemm, Conv, ConvTranspose)
 * per report settings (fmt, cmp, has_compare, calib, cmp_calib, group must be set) and fills
 * tensors and aggregates. imp is required for weighted calibration (indexed like the weights
 * pq_weights_find returns). Progress goes to stderr for large models. INVALID names the tensor
 * (non-finite weights); NOMEM. The graph is not modified.
 * Not used by the command line: tests/passes/test_fake_quant.c checks the fake-quant pass's
 * records against it (an implementation that shares no code with the pass beyond the quant
 * kernels), so it stays as that oracle. */
enum pq_status pq_quantize_weights(const pq_graph *g, const pq_importance *imp, pq_qreport *rep,
                                   pq_error *err);
/* Frees the report's tensors. */
void pq_qreport_free(pq_qreport *rep);

#endif
