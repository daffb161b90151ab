/* libFuzzer target for the GGUF reader: any input must be rejected cleanly or parsed into a
 * structure whose lookups work (never a crash, hang, leak or out-of-bounds read). Build with
 * clang -fsanitize=fuzzer,address,undefined (see scripts/fuzz.sh). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frontends/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (unsigned flags = 0; flags <= PQ_GGUF_VERIFY; flags += PQ_GGUF_VERIFY) {
        pq_gguf *g = NULL;
        pq_error err;
        pq_error_clear(&err);
        if (pq_gguf_read_buffer(data, size, flags, &g, &err) != PQ_OK) {
            if (g || err.msg[0] == '\0') __builtin_trap(); /* failures must be clean and named */
            continue;
        }
        /* walk what was parsed: every tensor is findable and its bytes readable */
        unsigned sum = 0;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const pq_gguf_tensor *t = pq_gguf_tensor_at(g, i);
            if (pq_gguf_find_tensor(g, t->name) != t) __builtin_trap();
            const unsigned char *p = t->data;
            for (size_t j = 0; j < t->size; j += 4096)
                sum += p[j];
            if (t->size) sum += p[t->size - 1];
            size_t n;
            if (pq_gguf_tensor_nbytes(g, t, &n, NULL) != PQ_OK || n != t->size) __builtin_trap();
        }
        for (uint64_t i = 0; i < g->n_kvs; i++) {
            const pq_gguf_kv *kv = pq_gguf_kv_at(g, i);
            if (pq_gguf_find(g, kv->key) != kv) __builtin_trap();
            if (kv->v.type == PQ_GGUF_STRING) sum += (unsigned)strlen(kv->v.u.str.s);
        }
        (void)sum;
        pq_gguf_destroy(g);
    }
    return 0;
}
