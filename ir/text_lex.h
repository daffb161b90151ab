/* Private lexer of the text IR parser (ir/text_lex.c, used by ir/text_parse.c): tokens with
 * line/column, strings with escapes, integers and exact float spellings. */
#ifndef PQ_TEXT_LEX_H
#define PQ_TEXT_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum pq_tok { PQ_TK_EOF, PQ_TK_WORD, PQ_TK_NUM, PQ_TK_STR, PQ_TK_VAL, PQ_TK_PUNCT, PQ_TK_BAD };

/* One token: kind, span and position (1-based line and byte column). */
typedef struct pq_token {
    enum pq_tok kind;
    size_t start, len; /* span in the text (PQ_TK_VAL: after '%') */
    int line, col;
    char c; /* PQ_TK_PUNCT */
} pq_token;

/* Parser state: the text, the current position and the sidecar. */
typedef struct pq_parser {
    const char *s;
    size_t n, i;
    int line, col;
    const unsigned char *bin;
    size_t bin_len;
    pq_error *err;
} pq_parser;

/* A number's text (sign, digits/word, NaN payload) for float conversion. kind: 0 decimal/inf,
 * 1 NaN with payload bits in *bits, 2 canonical NaN. */
typedef struct pq_numtext {
    char buf[72];
    int kind;
    uint64_t bits;
    bool neg;
    bool floaty; /* has '.', 'e', inf or nan: a float in an untyped context */
    int line, col;
} pq_numtext;

/* Lexes the next token (skipping whitespace and comments) without consuming it. */
pq_token pq_tx_peek(pq_parser *p);
/* Consumes t, which pq_tx_peek just returned. */
void pq_tx_take(pq_parser *p, const pq_token *t);
/* Sets INVALID "line L, column C: <message>"; returns PQ_ERR_INVALID. */
enum pq_status pq_tx_fail_at(pq_parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* INVALID "line L, column C: expected <what>, got <token>". */
enum pq_status pq_tx_expected(pq_parser *p, const pq_token *t, const char *what);
bool pq_tx_is_punct(const pq_token *t, char c);
bool pq_tx_is_word(const pq_parser *p, const pq_token *t, const char *w);
/* Consumes punctuation c if it comes next; true when it did. */
bool pq_tx_accept(pq_parser *p, char c);
/* Consumes punctuation c or fails with "expected 'c'". */
enum pq_status pq_tx_expect(pq_parser *p, char c);
/* Decodes the quoted string spanning [start, start+len) into a new string (*out, pq_free). */
enum pq_status pq_tx_decode_string(pq_parser *p, const pq_token *t, size_t start, size_t len,
                                   char **out);
/* A bare word or quoted string (*out, pq_free); what names the expectation in errors. */
enum pq_status pq_tx_parse_name(pq_parser *p, const char *what, char **out);
enum pq_status pq_tx_parse_string(pq_parser *p, char **out);
/* Name of a value token (after '%', decoded when quoted; empty names rejected). */
enum pq_status pq_tx_value_name(pq_parser *p, const pq_token *t, char **out);
/* Optional sign and decimal digits: into *out (int64 range) or, when uout is non-NULL, into *uout
 * (uint64 range, no negative values). */
enum pq_status pq_tx_parse_int_ex(pq_parser *p, bool allow_unsigned64, int64_t *out,
                                  uint64_t *uout);
enum pq_status pq_tx_parse_int(pq_parser *p, int64_t *out);
/* Reads the text of a number: sign, digits or inf, nan or nan(0xBITS). */
enum pq_status pq_tx_parse_numtext(pq_parser *p, pq_numtext *nt);
/* f32 value of a number text (exact bits for NaN payloads). */
enum pq_status pq_tx_numtext_f32(pq_parser *p, const pq_numtext *nt, float *out);

#endif
