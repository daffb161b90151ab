/* Lexer of the text IR: tokens with line/column, string escapes, integers with range checks and
 * number spellings (inf, nan, NaN payloads) for exact float reading. */
#include "text_lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "text_internal.h"

/* ---- lexer ---- */

static void pq_tx_skip_ws(pq_parser *p) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == '\n') {
            p->line++;
            p->col = 1;
            p->i++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            p->i++;
            p->col++;
        } else if (c == '#') {
            while (p->i < p->n && p->s[p->i] != '\n')
                p->i++, p->col++;
        } else {
            break;
        }
    }
}

static bool pq_tx_word_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool pq_tx_word_char(int c) {
    return pq_tx_word_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* Span of a "..." string starting at j (the quote); returns the index after the closing quote or 0.
 */
static size_t pq_tx_string_end(const pq_parser *p, size_t j) {
    for (j++; j < p->n; j++) {
        char c = p->s[j];
        if (c == '"') return j + 1;
        if (c == '\n') return 0;
        if (c == '\\') j++;
    }
    return 0;
}

/* Lexes the token at the current position without consuming it. */
pq_token pq_tx_peek(pq_parser *p) {
    pq_tx_skip_ws(p);
    pq_token t = {PQ_TK_EOF, p->i, 0, p->line, p->col, 0};
    if (p->i >= p->n) return t;
    const char *s = p->s;
    size_t j = p->i;
    int c = (unsigned char)s[j];
    if (pq_tx_word_start(c)) {
        while (j < p->n && pq_tx_word_char((unsigned char)s[j]))
            j++;
        t.kind = PQ_TK_WORD;
    } else if (c >= '0' && c <= '9') {
        while (j < p->n && (pq_tx_word_char((unsigned char)s[j]) ||
                            ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E') &&
                             !(j - p->i >= 2 && (s[p->i + 1] == 'x' || s[p->i + 1] == 'X')))))
            j++;
        t.kind = PQ_TK_NUM;
    } else if (c == '"') {
        j = pq_tx_string_end(p, j);
        if (!j) {
            t.kind = PQ_TK_BAD;
            return t;
        }
        t.kind = PQ_TK_STR;
    } else if (c == '%') {
        j++;
        if (j < p->n && s[j] == '"') {
            j = pq_tx_string_end(p, j);
            if (!j) {
                t.kind = PQ_TK_BAD;
                return t;
            }
        } else {
            while (j < p->n && pq_text_value_char((unsigned char)s[j]))
                j++;
            if (j == p->i + 1) {
                t.kind = PQ_TK_BAD;
                return t;
            }
        }
        t.kind = PQ_TK_VAL;
        t.start = p->i + 1;
        t.len = j - p->i - 1;
        return t;
    } else if (strchr("{}()[],:=+-*?", c)) {
        j++;
        t.kind = PQ_TK_PUNCT;
        t.c = (char)c;
    } else {
        t.kind = PQ_TK_BAD;
        return t;
    }
    t.len = j - p->i;
    return t;
}

/* Consumes token t (which must come from pq_tx_peek at the current position). */
void pq_tx_take(pq_parser *p, const pq_token *t) {
    size_t end = t->kind == PQ_TK_VAL ? t->start + t->len : t->start + t->len;
    p->col += (int)(end - p->i);
    p->i = end;
}

enum pq_status pq_tx_fail_at(pq_parser *p, int line, int col, const char *fmt, ...) {
    char msg[PQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pq_error_set(p->err, PQ_ERR_INVALID, "line %d, column %d: %s", line, col, msg);
}

static const char *pq_tx_tok_desc(const pq_parser *p, const pq_token *t, char *buf, size_t cap) {
    switch (t->kind) {
    case PQ_TK_EOF:
        return "end of input";
    case PQ_TK_BAD:
        if (t->start < p->n && (p->s[t->start] == '"' || p->s[t->start] == '%'))
            return "an unterminated or empty name/string";
        snprintf(buf, cap, "unexpected character 0x%02x", (unsigned char)p->s[t->start]);
        return buf;
    default: {
        size_t l = t->len > 40 ? 40 : t->len;
        size_t st = t->kind == PQ_TK_VAL ? t->start - 1 : t->start;
        if (t->kind == PQ_TK_VAL) l++;
        snprintf(buf, cap, "'%.*s'", (int)l, p->s + st);
        return buf;
    }
    }
}

enum pq_status pq_tx_expected(pq_parser *p, const pq_token *t, const char *what) {
    char buf[80];
    return pq_tx_fail_at(p, t->line, t->col, "expected %s, got %s", what,
                         pq_tx_tok_desc(p, t, buf, sizeof buf));
}

bool pq_tx_is_punct(const pq_token *t, char c) {
    return t->kind == PQ_TK_PUNCT && t->c == c;
}
bool pq_tx_is_word(const pq_parser *p, const pq_token *t, const char *w) {
    return t->kind == PQ_TK_WORD && t->len == strlen(w) && memcmp(p->s + t->start, w, t->len) == 0;
}

bool pq_tx_accept(pq_parser *p, char c) {
    pq_token t = pq_tx_peek(p);
    if (!pq_tx_is_punct(&t, c)) return false;
    pq_tx_take(p, &t);
    return true;
}

enum pq_status pq_tx_expect(pq_parser *p, char c) {
    pq_token t = pq_tx_peek(p);
    if (pq_tx_is_punct(&t, c)) {
        pq_tx_take(p, &t);
        return PQ_OK;
    }
    char what[8] = {'\'', c, '\'', 0};
    return pq_tx_expected(p, &t, what);
}

/* Decodes the "..." string at span [start, start+len) into a new NUL-terminated string. */
enum pq_status pq_tx_decode_string(pq_parser *p, const pq_token *t, size_t start, size_t len,
                                   char **out) {
    char *d = pq_malloc(len + 1);
    if (!d) return pq_error_nomem(p->err, "text IR string");
    size_t k = 0;
    for (size_t j = start + 1; j + 1 < start + len; j++) {
        unsigned char c = (unsigned char)p->s[j];
        if (c == '\\') {
            char e = p->s[++j];
            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == 'r')
                c = '\r';
            else if (e == '"' || e == '\\')
                c = (unsigned char)e;
            else if (e == 'x' && j + 2 < start + len - 1) {
                int v = 0;
                for (int h = 1; h <= 2; h++) {
                    char x = p->s[j + h];
                    int dv = x >= '0' && x <= '9'   ? x - '0'
                             : x >= 'a' && x <= 'f' ? x - 'a' + 10
                             : x >= 'A' && x <= 'F' ? x - 'A' + 10
                                                    : -1;
                    if (dv < 0) v = -1000;
                    v = v * 16 + dv;
                }
                if (v <= 0) {
                    pq_free(d);
                    return pq_tx_fail_at(
                        p, t->line, t->col,
                        "bad \\x escape in string (\\x00 and non-hex are not allowed)");
                }
                c = (unsigned char)v;
                j += 2;
            } else {
                pq_free(d);
                return pq_tx_fail_at(p, t->line, t->col, "unknown escape '\\%c' in string", e);
            }
        } else if (c < 0x20 || c == 0x7f) {
            pq_free(d);
            return pq_tx_fail_at(p, t->line, t->col,
                                 "control character 0x%02x in string (escape it)", c);
        }
        d[k++] = (char)c;
    }
    d[k] = '\0';
    *out = d;
    return PQ_OK;
}

/* A name: bare word or quoted string (for graph, attribute and symbol names). */
enum pq_status pq_tx_parse_name(pq_parser *p, const char *what, char **out) {
    pq_token t = pq_tx_peek(p);
    if (t.kind == PQ_TK_WORD) {
        pq_tx_take(p, &t);
        char *d = pq_malloc(t.len + 1);
        if (!d) return pq_error_nomem(p->err, "text IR name");
        memcpy(d, p->s + t.start, t.len);
        d[t.len] = '\0';
        *out = d;
        return PQ_OK;
    }
    if (t.kind == PQ_TK_STR) {
        pq_tx_take(p, &t);
        return pq_tx_decode_string(p, &t, t.start, t.len, out);
    }
    return pq_tx_expected(p, &t, what);
}

enum pq_status pq_tx_parse_string(pq_parser *p, char **out) {
    pq_token t = pq_tx_peek(p);
    if (t.kind != PQ_TK_STR) return pq_tx_expected(p, &t, "a string");
    pq_tx_take(p, &t);
    return pq_tx_decode_string(p, &t, t.start, t.len, out);
}

/* Value token name (after '%'). */
enum pq_status pq_tx_value_name(pq_parser *p, const pq_token *t, char **out) {
    if (p->s[t->start] == '"') {
        PQ_TRY(pq_tx_decode_string(p, t, t->start, t->len, out));
        if (!**out) {
            pq_free(*out);
            *out = NULL;
            return pq_tx_fail_at(p, t->line, t->col, "empty value name");
        }
        return PQ_OK;
    }
    char *d = pq_malloc(t->len + 1);
    if (!d) return pq_error_nomem(p->err, "text IR name");
    memcpy(d, p->s + t->start, t->len);
    d[t->len] = '\0';
    *out = d;
    return PQ_OK;
}

/* Signed integer: optional '-' or '+', then decimal digits. */
enum pq_status pq_tx_parse_int_ex(pq_parser *p, bool allow_unsigned64, int64_t *out,
                                  uint64_t *uout) {
    pq_token t = pq_tx_peek(p);
    int line = t.line, col = t.col;
    bool neg = false;
    if (pq_tx_is_punct(&t, '-') || pq_tx_is_punct(&t, '+')) {
        neg = t.c == '-';
        pq_tx_take(p, &t);
        t = pq_tx_peek(p);
    }
    if (t.kind != PQ_TK_NUM) return pq_tx_expected(p, &t, "an integer");
    pq_tx_take(p, &t);
    uint64_t v = 0;
    for (size_t j = 0; j < t.len; j++) {
        char c = p->s[t.start + j];
        if (c < '0' || c > '9')
            return pq_tx_fail_at(p, line, col, "'%.*s' is not an integer",
                                 (int)(t.len > 40 ? 40 : t.len), p->s + t.start);
        if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return pq_tx_fail_at(p, line, col, "integer out of range");
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (uout) {
        if (neg && v) return pq_tx_fail_at(p, line, col, "negative value for an unsigned type");
        *uout = v;
        (void)allow_unsigned64;
        return PQ_OK;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return pq_tx_fail_at(p, line, col, "integer out of range");
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return PQ_OK;
}

enum pq_status pq_tx_parse_int(pq_parser *p, int64_t *out) {
    return pq_tx_parse_int_ex(p, false, out, NULL);
}

enum pq_status pq_tx_parse_numtext(pq_parser *p, pq_numtext *nt) {
    pq_token t = pq_tx_peek(p);
    nt->line = t.line;
    nt->col = t.col;
    nt->kind = 0;
    nt->neg = false;
    nt->floaty = false;
    size_t k = 0;
    if (pq_tx_is_punct(&t, '-') || pq_tx_is_punct(&t, '+')) {
        nt->neg = t.c == '-';
        nt->buf[k++] = t.c;
        pq_tx_take(p, &t);
        t = pq_tx_peek(p);
    }
    if (t.kind == PQ_TK_WORD && (pq_tx_is_word(p, &t, "nan"))) {
        pq_tx_take(p, &t);
        nt->floaty = true;
        nt->kind = 2;
        pq_token q = pq_tx_peek(p);
        if (pq_tx_is_punct(&q, '(') && q.start == t.start + t.len) {
            pq_tx_take(p, &q);
            pq_token h = pq_tx_peek(p);
            if (h.kind != PQ_TK_NUM || h.len < 3 || h.len > 18 || p->s[h.start] != '0' ||
                (p->s[h.start + 1] != 'x' && p->s[h.start + 1] != 'X'))
                return pq_tx_expected(p, &h, "NaN bits like 0x7fc00001");
            pq_tx_take(p, &h);
            uint64_t b = 0;
            for (size_t j = 2; j < h.len; j++) {
                char x = p->s[h.start + j];
                int dv = x >= '0' && x <= '9'   ? x - '0'
                         : x >= 'a' && x <= 'f' ? x - 'a' + 10
                         : x >= 'A' && x <= 'F' ? x - 'A' + 10
                                                : -1;
                if (dv < 0) return pq_tx_fail_at(p, h.line, h.col, "bad hex digit in NaN bits");
                b = b << 4 | (uint64_t)dv;
            }
            PQ_TRY(pq_tx_expect(p, ')'));
            nt->kind = 1;
            nt->bits = b;
        }
        strcpy(nt->buf, "nan");
        return PQ_OK;
    }
    if (t.kind == PQ_TK_WORD && pq_tx_is_word(p, &t, "inf"))
        nt->floaty = true;
    else if (t.kind != PQ_TK_NUM)
        return pq_tx_expected(p, &t, "a number");
    if (t.len + k >= sizeof nt->buf) return pq_tx_fail_at(p, t.line, t.col, "number too long");
    memcpy(nt->buf + k, p->s + t.start, t.len);
    nt->buf[k + t.len] = '\0';
    pq_tx_take(p, &t);
    if (strpbrk(nt->buf, ".eE")) nt->floaty = true;
    return PQ_OK;
}

enum pq_status pq_tx_numtext_f32(pq_parser *p, const pq_numtext *nt, float *out) {
    if (nt->kind == 2) {
        uint32_t b = 0x7fc00000u;
        memcpy(out, &b, 4);
        return PQ_OK;
    }
    if (nt->kind == 1) {
        if (nt->bits > 0xffffffffu)
            return pq_tx_fail_at(p, nt->line, nt->col, "NaN bits too wide for f32");
        uint32_t b = (uint32_t)nt->bits;
        memcpy(out, &b, 4);
        float f = *out;
        if (f == f) return pq_tx_fail_at(p, nt->line, nt->col, "nan(0x%08x) is not a NaN", b);
        return PQ_OK;
    }
    if (!pq_text_read_f32(nt->buf, out))
        return pq_tx_fail_at(p, nt->line, nt->col, "'%s' is not a number", nt->buf);
    return PQ_OK;
}
