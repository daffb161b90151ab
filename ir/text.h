/* The piqc text IR: a printer and a parser that round-trip exactly (print(parse(print(g))) ==
 * print(g)). Grammar in docs/ir.md. Large constants are summarised, with their bytes in a sidecar.
 */
#ifndef PQ_TEXT_H
#define PQ_TEXT_H

#include <stdio.h>

#include "graph.h"

/* Byte buffer that collects large-constant data while printing (the .pir.bin sidecar). */
typedef struct pq_text_bin {
    unsigned char *data;
    size_t size, cap;
} pq_text_bin;

/* Prints g to f. Constants (initializers and tensor attributes) of more than 16 elements are
 * summarised as shape, dtype, min/max/mean and a SHA-256 prefix; when bin is non-NULL their data is
 * also appended to bin (64-byte aligned) and the text records the offset and length, so
 * parse(text, bin) reloads them exactly. Without bin the summary cannot be parsed back into data.
 */
enum pq_status pq_text_print(const pq_graph *g, FILE *f, pq_text_bin *bin, pq_error *err);
/* Same into a newly allocated NUL-terminated string (*out, pq_free it). */
enum pq_status pq_text_print_string(const pq_graph *g, pq_text_bin *bin, char **out, pq_error *err);
/* Parses text (len bytes) with an optional sidecar (bin may be NULL when no constant references
 * it). INVALID with "line L, column C: ..." on syntax or reference errors. */
enum pq_status pq_text_parse(const char *text, size_t len, const unsigned char *bin, size_t bin_len,
                             pq_graph **out, pq_error *err);
void pq_text_bin_free(pq_text_bin *bin);

#endif
