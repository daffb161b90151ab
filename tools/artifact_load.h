/* Loading a piqc artifact (.gguf) for the command line: verify, parse the graph, and
 * reconstruct every packed weight into its f32 constant exactly as SPEC section 2 says. */
#ifndef PQ_ARTIFACT_LOAD_H
#define PQ_ARTIFACT_LOAD_H

#include "frontends/artifact.h"
#include "passes/passes.h"

/* Reads and verifies path, then dequantizes each packed tensor into the graph constant it
 * replaces (through the weight view of its consumer); packed tensors held by u8 constants of a
 * compiled graph (in_graph_packed) stay packed. *out owns the graph; destroy it with
 * pq_artifact_destroy. INVALID when a packed tensor does not fit its weight view. */
enum pq_status pq_cli_load_artifact(const char *path, pq_artifact **out, pq_error *err);

#endif
