/* Typed attribute decoding shared by shape inference, kernels, backends and passes: list getters
 * and one decoded convolution geometry (Conv, ConvInteger, ConvTranspose) with auto_pad resolved.
 */
#ifndef PQ_ATTRS_H
#define PQ_ATTRS_H

#include "graph.h"

/* INTS attribute `name` of n: true and *v / *count set (arena array, valid while the attribute
 * is not replaced) when present with type INTS; false (outputs untouched) otherwise. */
bool pq_node_attr_ints(const pq_node *n, const char *name, const int64_t **v, uint32_t *count);
/* FLOATS attribute `name` of n, like pq_node_attr_ints. */
bool pq_node_attr_floats(const pq_node *n, const char *name, const float **v, uint32_t *count);

#define PQ_CONV_MAX_SPATIAL 3

enum pq_auto_pad {
    PQ_AUTO_PAD_NOTSET,
    PQ_AUTO_PAD_SAME_UPPER,
    PQ_AUTO_PAD_SAME_LOWER,
    PQ_AUTO_PAD_VALID,
};

/* Geometry of one Conv / ConvInteger / ConvTranspose node with nsp spatial dims (1..3). Entries
 * past nsp are unused (kernel/stride/dilation 1, pads 0). A size of -1 means unknown (input dim
 * or kernel dim not known when decoding). Pads are resolved: auto_pad SAME_* gives the ONNX split
 * of the total padding (SAME_UPPER puts the odd pixel at the end for Conv, SAME_LOWER at the
 * begin; ConvTranspose follows ONNX's rule for its total padding), VALID gives zero pads; when a
 * SAME input dim is unknown its pads are -1. For ConvTranspose, output_shape (when given) fixes
 * out[] and the pads are derived from it as ONNX describes. */
typedef struct pq_conv_geom {
    int nsp;                   /* spatial rank, 1..PQ_CONV_MAX_SPATIAL */
    bool transpose;            /* ConvTranspose */
    enum pq_auto_pad auto_pad; /* as written on the node */
    int64_t group;             /* >= 1 */
    int64_t kernel[PQ_CONV_MAX_SPATIAL];
    int64_t strides[PQ_CONV_MAX_SPATIAL];   /* >= 1 */
    int64_t dilations[PQ_CONV_MAX_SPATIAL]; /* >= 1 */
    int64_t pads_begin[PQ_CONV_MAX_SPATIAL];
    int64_t pads_end[PQ_CONV_MAX_SPATIAL];
    int64_t output_padding[PQ_CONV_MAX_SPATIAL]; /* ConvTranspose only, else 0 */
    int64_t in[PQ_CONV_MAX_SPATIAL];             /* input spatial dims (-1 unknown) */
    int64_t out[PQ_CONV_MAX_SPATIAL];            /* output spatial dims (-1 unknown) */
} pq_conv_geom;

/* Decodes the convolution attributes of node n (Conv, ConvInteger, QLinearConv, PackedConv and any
 * op with Conv-style attributes; ConvTranspose semantics when n is a ConvTranspose): group,
 * kernel_shape (else from w_spatial), strides, dilations, pads, auto_pad, and for ConvTranspose
 * output_padding and output_shape; resolves pads and output sizes against in_spatial.
 * in_spatial / w_spatial hold nsp entries (X's and W's dims after N,C / M,C); either may be NULL
 * or hold -1 entries when unknown. Returns INVALID (message names the attribute, never the node:
 * callers prefix it) for a wrong attribute type or count, a value out of range (stride,
 * dilation, kernel or group < 1, negative pad, output_padding not below stride or dilation),
 * kernel_shape disagreeing with w_spatial, an unknown auto_pad, a window larger than the padded
 * input or a negative ConvTranspose output; INVALID for nsp < 1, UNSUPPORTED for nsp > 3.
 * ConvTranspose pads_end is negative when output_shape asks for more than the full result (the
 * extra end positions get only the bias). */
enum pq_status pq_conv_geom_decode(const pq_node *n, const int64_t *in_spatial, int nsp,
                                   const int64_t *w_spatial, pq_conv_geom *geom, pq_error *err);

/* Parses an auto_pad string ("" and NOTSET are NOTSET); false for an unknown spelling. */
bool pq_auto_pad_parse(const char *s, enum pq_auto_pad *out);

#endif
