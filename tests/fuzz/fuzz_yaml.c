/* libFuzzer target for the YAML pipeline reader: any input must parse into a pipeline or be
 * refused with INVALID and a "SOURCE:LINE:COLUMN: " message (never a crash, hang or leak). Build
 * with clang -fsanitize=fuzzer,address,undefined via scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pq_pipeline *p = NULL;
    pq_error err;
    pq_error_clear(&err);
    enum pq_status st = pq_pipeline_parse((const char *)data, size, "fuzz.yaml", &p, &err);
    if (st == PQ_OK) {
        if (!p || !p->source || !p->text) __builtin_trap();
        /* touch what was built, then print it and parse the print back */
        size_t sum = 0;
        for (uint32_t i = 0; i < p->n; i++)
            for (uint32_t k = 0; k < p->entries[i].opts.n; k++)
                sum += p->entries[i].opts.v[k].n_list;
        (void)sum;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f) {
            if (pq_pipeline_print(f, p, &err) != PQ_OK) __builtin_trap();
            fclose(f);
            pq_pipeline *q = NULL;
            if (pq_pipeline_parse(buf, len, "printed", &q, &err) != PQ_OK) __builtin_trap();
            if (q->n != p->n) __builtin_trap();
            pq_pipeline_destroy(q);
            free(buf);
        }
        pq_pipeline_destroy(p);
    } else {
        if (p || st == PQ_ERR_INTERNAL) __builtin_trap();
        if (st == PQ_ERR_INVALID && strncmp(err.msg, "fuzz.yaml:", 10) != 0) __builtin_trap();
    }
    return 0;
}
