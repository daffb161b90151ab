/* The pass context: weight notes and quantization records kept across the passes of one pipeline
 * run, and the logging helper passes use. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pass.h"

void pq_pass_ctx_init(pq_pass_ctx *ctx) {
    memset(ctx, 0, sizeof(*ctx));
    ctx->verbose = 1;
}

void pq_pass_ctx_free(pq_pass_ctx *ctx) {
    if (!ctx) return;
    for (uint32_t i = 0; i < ctx->n_notes; i++) {
        pq_free((char *)ctx->notes[i].value_name);
        pq_tensor_destroy(ctx->notes[i].original);
    }
    pq_free(ctx->notes);
    for (uint32_t i = 0; i < ctx->n_records; i++) {
        pq_quant_record *r = &ctx->records[i];
        pq_free((char *)r->value_name);
        pq_free((char *)r->node_name);
        pq_free((char *)r->format);
        pq_free((char *)r->calib);
    }
    pq_free(ctx->records);
    pq_pass_ctx_init(ctx);
}

void pq_pass_log(const pq_pass_ctx *ctx, int level, const char *fmt, ...) {
    if (ctx && ctx->verbose < level) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", ctx && ctx->current_pass ? ctx->current_pass : "piqc");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const pq_weight_note *pq_pass_find_note(const pq_pass_ctx *ctx, const char *value_name) {
    if (!ctx || !value_name) return NULL;
    for (uint32_t i = 0; i < ctx->n_notes; i++)
        if (strcmp(ctx->notes[i].value_name, value_name) == 0) return &ctx->notes[i];
    return NULL;
}

pq_weight_note *pq_pass_note(pq_pass_ctx *ctx, const char *value_name) {
    pq_weight_note *found = (pq_weight_note *)pq_pass_find_note(ctx, value_name);
    if (found) return found;
    if (ctx->n_notes == ctx->cap_notes) {
        uint32_t cap = ctx->cap_notes ? ctx->cap_notes * 2 : 16;
        pq_weight_note *nn = pq_realloc(ctx->notes, (size_t)cap * sizeof(*nn));
        if (!nn) return NULL;
        ctx->notes = nn;
        ctx->cap_notes = cap;
    }
    char *name = pq_strdup(value_name);
    if (!name) return NULL;
    pq_weight_note *n = &ctx->notes[ctx->n_notes++];
    memset(n, 0, sizeof(*n));
    n->value_name = name;
    return n;
}

enum pq_status pq_pass_add_record(pq_pass_ctx *ctx, const pq_quant_record *r, pq_error *err) {
    if (ctx->n_records == ctx->cap_records) {
        uint32_t cap = ctx->cap_records ? ctx->cap_records * 2 : 16;
        pq_quant_record *nr = pq_realloc(ctx->records, (size_t)cap * sizeof(*nr));
        if (!nr) return pq_error_nomem(err, "quantization record");
        ctx->records = nr;
        ctx->cap_records = cap;
    }
    pq_quant_record c = *r;
    c.value_name = r->value_name ? pq_strdup(r->value_name) : NULL;
    c.node_name = r->node_name ? pq_strdup(r->node_name) : NULL;
    c.format = r->format ? pq_strdup(r->format) : NULL;
    c.calib = r->calib ? pq_strdup(r->calib) : NULL;
    if ((r->value_name && !c.value_name) || (r->node_name && !c.node_name) ||
        (r->format && !c.format) || (r->calib && !c.calib)) {
        pq_free((char *)c.value_name);
        pq_free((char *)c.node_name);
        pq_free((char *)c.format);
        pq_free((char *)c.calib);
        return pq_error_nomem(err, "quantization record");
    }
    ctx->records[ctx->n_records++] = c;
    return PQ_OK;
}
