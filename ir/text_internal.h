/* Private helpers shared by the text IR printer and parser (ir/text_print.c, ir/text_parse.c):
 * which names print bare, and shortest exactly round-tripping float spellings. */
#ifndef PQ_TEXT_INTERNAL_H
#define PQ_TEXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text.h"

#define PQ_TEXT_VERSION 1
/* Constants with more elements than this are summarised. */
#define PQ_TEXT_INLINE_MAX 16
/* Deepest nesting of subgraphs printed or parsed. */
#define PQ_TEXT_MAX_DEPTH 64
/* Sidecar alignment of each constant's bytes. */
#define PQ_TEXT_BIN_ALIGN 64

/* Characters of a bare value name after '%': [A-Za-z0-9_./-]. */
bool pq_text_value_char(int c);
/* True when s prints bare after '%' (non-empty, only pq_text_value_char). */
bool pq_text_plain_value(const char *s);
/* True when s is a bare word: [A-Za-z_][A-Za-z0-9_.]* (graph, attribute and symbol names). */
bool pq_text_plain_word(const char *s);

/* Shortest decimal spelling that reads back to exactly the same bits with pq_text_read_*: "inf",
 * "-inf", "nan" (canonical quiet NaN) or "nan(0x7fc00001)" (any other NaN, raw bits). buf must
 * hold at least 40 bytes. */
void pq_text_fmt_f32(float v, char *buf, size_t cap);
void pq_text_fmt_f64(double v, char *buf, size_t cap);
void pq_text_fmt_f16(uint16_t h, char *buf, size_t cap);
void pq_text_fmt_bf16(uint16_t h, char *buf, size_t cap);

/* Inverse of the above for finite/inf spellings (s is NUL-terminated, fully consumed); NaN with a
 * payload is handled by the parser itself. False when s is not a number. */
bool pq_text_read_f32(const char *s, float *out);
bool pq_text_read_f64(const char *s, double *out);

#endif
