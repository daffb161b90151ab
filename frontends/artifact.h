/* The piqc artifact: a compiled graph, its constants and its packed low-bit weights in one GGUF
 * file (SPEC section 10, docs/artifact.md), written atomically and verified (SHA-256) on load.
 * Dequantizing the packed weights is left to the caller (the quant kernels live in backends/). */
#ifndef PQ_ARTIFACT_H
#define PQ_ARTIFACT_H

#include <stdint.h>

#include "gguf.h"
#include "ir/graph.h"
#include "ir/packed.h"

#define PQ_ARTIFACT_FORMAT_VERSION 1u

/* A packed weight for the top-level constant `name`, stored as a PIQ3/PIQ2 tensor. Two cases:
 *  - replaced (quantizer output): the constant is a float weight; data holds
 *    pq_packed_bytes(fmt, rows, cols, group) bytes in the SPEC section 2 row layout that replace
 *    its values in the file; onnx_dims must equal the constant's shape.
 *  - in the graph (compiled graph, e.g. input 1 of PackedMatMul): the constant is u8 1-D
 *    [pq_packed_bytes(...)] and its data ARE the packed bytes; data may be NULL (the constant's
 *    bytes are written) or must hold the same size and bytes. onnx_dims give the shape of the
 *    original weight.
 * Either way onnx_dims/onnx_rank are the stored ONNX shape of the weight (its rows x cols view
 * may be transposed, see SPEC "Weight view"); their product must be rows * cols. */
typedef struct pq_artifact_tensor {
    const char *name;
    enum pq_qformat fmt;
    int64_t rows, cols, group;
    const uint8_t *data;
    size_t size;
    const int64_t *onnx_dims;
    int onnx_rank;
} pq_artifact_tensor;

/* Calibration provenance (SPEC section 4). All strings may be NULL (key omitted), except that
 * a NULL timestamp means "now" (or SOURCE_DATE_EPOCH when set) in ISO 8601 UTC. */
typedef struct pq_provenance {
    const char *calib_sha256; /* hex SHA-256 of the calibration data files */
    uint64_t calib_samples;   /* number of calibration samples */
    const char *calib_method; /* "absmax", "mse", "weighted", "gptq", ... */
    const char *timestamp;    /* "2024-01-31T12:00:00Z"; NULL: generated */
} pq_provenance;

/* Writes the artifact for graph g to path (atomically, see pq_gguf_write):
 *   general.architecture = "piqc", piqc.format_version = 1 (u32), piqc.version (string),
 *   piqc.graph (g in the text IR, large constants summarised), piqc.graph.bin_* (how to rebuild
 *   the text's sidecar from the tensors), piqc.pipeline (pipeline_text, "" when none),
 *   provenance keys piqc.calib.{sha256,samples,method,timestamp} when prov is non-NULL,
 *   every constant of the top-level graph as a dense tensor named after its value (types per
 *   pq_gguf_ttype_for_dtype, piqc.dtype.<name> for dtypes stored under another type), except
 *   the values of packed[i] (replaced float weights, or u8 constants holding packed bytes), which
 *   are stored as PIQ3/PIQ2 tensors with
 *   piqc.group.<name>, piqc.k.<name> (0 for the uniform Q3/Q2) and piqc.shape.<name> (the ONNX
 *   dims, i64 array). Names longer than 63 bytes (or "config") are shortened with
 *   pq_gguf_short_name-style names and piqc.name.<short> = the original name.
 * The constant data of g is not copied (it must stay alive during the call); g is not changed.
 * INVALID: a packed name is not a top-level constant, is listed twice, or its size/shape/format is
 * inconsistent, or its data differ from the u8 constant holding them (message names the tensor); a
 * constant of an unsupported dtype; SOURCE_DATE_EPOCH is not a number; a tensor name collision
 * after shortening. Also the statuses of pq_text_print_string and pq_gguf_write (IO: nothing is
 * left under path), NOMEM. */
enum pq_status pq_artifact_write(const pq_graph *g, const char *pipeline_text,
                                 const pq_artifact_tensor *packed, uint32_t n_packed,
                                 const pq_provenance *prov, const char *path, pq_error *err);

/* A packed weight of a loaded artifact; data points into the file image owned by the artifact.
 * in_graph_packed false: name is the float graph value it replaces, whose constant has the right
 * dtype and ONNX shape but zero data until the caller dequantizes into it.
 * in_graph_packed true: the value is a u8 constant [size] of a compiled graph that already holds
 * a copy of the packed bytes (the graph outlives the artifact); nothing is to be dequantized.
 * onnx_dims is then the shape of the original weight. */
typedef struct pq_artifact_packed {
    const char *name;      /* original value name (owned by the artifact) */
    const char *gguf_name; /* tensor name in the file (may be the short name) */
    uint32_t value;        /* id of the value in graph */
    enum pq_qformat fmt;
    int64_t rows, cols, group;
    const uint8_t *data;
    size_t size;
    int64_t onnx_dims[PQ_MAX_RANK];
    int onnx_rank;
    bool in_graph_packed; /* the graph's u8 constant holds the packed bytes */
} pq_artifact_packed;

/* A loaded artifact. Everything is owned by it and freed by pq_artifact_destroy; the caller may
 * take graph (set the field to NULL) to keep it after destroying the artifact. */
typedef struct pq_artifact {
    pq_graph *graph;      /* constants re-attached from the file's tensors */
    const char *pipeline; /* piqc.pipeline ("" when none) */
    const char *version;  /* piqc.version of the writer (NULL if absent) */
    bool has_provenance;
    pq_provenance provenance; /* strings point into gguf */
    pq_artifact_packed *packed;
    uint32_t n_packed;
    pq_gguf *gguf; /* the verified file (keys, tensors, image) */
} pq_artifact;

/* Reads and verifies (all SHA-256 hashes) the artifact at path, parses piqc.graph, rebuilds the
 * graph's constants from the file's tensors and lists the packed weights (*out, free with
 * pq_artifact_destroy). Statuses of pq_gguf_read; INVALID when general.architecture is not
 * "piqc", piqc.format_version is not 1, the graph text does not parse ("piqc.graph: line L,
 * column C: ..."), or tensors and graph disagree (message names the tensor); UNSUPPORTED for a
 * newer format version; NOMEM. */
enum pq_status pq_artifact_read(const char *path, pq_artifact **out, pq_error *err);
void pq_artifact_destroy(pq_artifact *a);

#endif
