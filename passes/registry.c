/* The pass registry: the table of every pass named in passes/passes.def, looked up by name by
 * the pipeline reader, the manager and --list-passes. */
#include <string.h>

#include "pass.h"

#define PQ_PASS(id) extern const pq_pass pq_pass_##id;
#include "passes.def"
#undef PQ_PASS

static const pq_pass *const pq_pass_table[] = {
#define PQ_PASS(id) &pq_pass_##id,
#include "passes.def"
#undef PQ_PASS
};

const pq_pass *const *pq_passes_all(uint32_t *n) {
    if (n) *n = (uint32_t)(sizeof(pq_pass_table) / sizeof(pq_pass_table[0]));
    return pq_pass_table;
}

const pq_pass *pq_pass_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof(pq_pass_table) / sizeof(pq_pass_table[0]); i++)
        if (strcmp(pq_pass_table[i]->name, name) == 0) return pq_pass_table[i];
    return NULL;
}
