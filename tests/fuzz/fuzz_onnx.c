/* libFuzzer target for the ONNX importer: any input must import into a graph or be refused with
 * a status and an "onnx: " message (never a crash, hang, leak or out-of-bounds access). Build with
 * clang -fsanitize=fuzzer,address,undefined via scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frontends/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pq_graph *g = NULL;
    pq_error err;
    enum pq_status st = pq_onnx_import_buffer(data, size, NULL, &g, &err);
    if (st == PQ_OK) {
        if (!g) __builtin_trap();
        /* touch what was built: names, constants, attributes */
        size_t sum = 0;
        for (uint32_t i = 0; i < g->n_values; i++) {
            sum += strlen(g->values[i].name);
            if (g->values[i].constant) sum += g->values[i].constant->nbytes;
        }
        for (uint32_t i = 0; i < g->n_nodes; i++)
            sum += g->nodes[i].n_attrs;
        (void)sum;
        pq_graph_destroy(g);
    } else {
        if (g || strncmp(err.msg, "onnx: ", 6) != 0) __builtin_trap();
        if (st == PQ_ERR_INTERNAL) __builtin_trap();
    }
    return 0;
}
