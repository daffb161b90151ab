/* Text IR parser: a hand-written lexer and recursive-descent parser for the grammar of docs/ir.md.
 * Every error names line and column; input of any shape fails cleanly (bounded depth and sizes). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "text_internal.h"
#include "text_lex.h"

/* Parse state of one graph: which values are placeholders (used before defined). */
typedef struct pq_scope {
    pq_graph *g;
    uint8_t *state; /* per value id: 0 defined or implicit, 1 used but not yet defined, 2 defined */
    int *uline, *ucol;
    uint32_t cap;
} pq_scope;

/* ---- scopes ---- */

static enum pq_status pq_scope_grow(pq_parser *p, pq_scope *sc) {
    uint32_t need = sc->g->n_values;
    if (need <= sc->cap) return PQ_OK;
    uint32_t nc = sc->cap ? sc->cap : 64;
    while (nc < need)
        nc *= 2;
    uint8_t *s = pq_realloc(sc->state, nc);
    if (s) sc->state = s;
    int *l = pq_realloc(sc->uline, sizeof(int) * nc);
    if (l) sc->uline = l;
    int *c = pq_realloc(sc->ucol, sizeof(int) * nc);
    if (c) sc->ucol = c;
    if (!s || !l || !c) return pq_error_nomem(p->err, "text IR parser");
    memset(sc->state + sc->cap, 0, nc - sc->cap);
    sc->cap = nc;
    return PQ_OK;
}

static void pq_scope_free(pq_scope *sc) {
    pq_free(sc->state);
    pq_free(sc->uline);
    pq_free(sc->ucol);
}

/* Value referenced by token t: existing, or a placeholder to be defined later. */
static enum pq_status pq_use_value(pq_parser *p, pq_scope *sc, const pq_token *t, uint32_t *out) {
    char *name;
    PQ_TRY(pq_tx_value_name(p, t, &name));
    uint32_t id = pq_graph_find_value(sc->g, name);
    enum pq_status st = PQ_OK;
    if (id == PQ_NONE) {
        st = pq_graph_add_value(sc->g, name, PQ_DTYPE_UNDEFINED, NULL, &id, p->err);
        if (st == PQ_OK) st = pq_scope_grow(p, sc);
        if (st == PQ_OK) {
            sc->state[id] = 1;
            sc->uline[id] = t->line;
            sc->ucol[id] = t->col;
        }
    }
    pq_free(name);
    *out = id;
    return st;
}

/* Defines the value of token t (new, or a placeholder used earlier). */
static enum pq_status pq_define_value(pq_parser *p, pq_scope *sc, const pq_token *t,
                                      uint32_t *out) {
    char *name;
    PQ_TRY(pq_tx_value_name(p, t, &name));
    uint32_t id = pq_graph_find_value(sc->g, name);
    enum pq_status st = PQ_OK;
    if (id != PQ_NONE && !(id < sc->cap && sc->state[id] == 1)) {
        st = pq_tx_fail_at(p, t->line, t->col, "value '%s' is defined twice", name);
    } else if (id == PQ_NONE) {
        st = pq_graph_add_value(sc->g, name, PQ_DTYPE_UNDEFINED, NULL, &id, p->err);
    }
    if (st == PQ_OK) st = pq_scope_grow(p, sc);
    if (st == PQ_OK) sc->state[id] = 2;
    pq_free(name);
    *out = id;
    return st;
}

static enum pq_status pq_expect_value(pq_parser *p, pq_token *t) {
    *t = pq_tx_peek(p);
    if (t->kind != PQ_TK_VAL) return pq_tx_expected(p, t, "a value name like %x");
    pq_tx_take(p, t);
    return PQ_OK;
}

/* ---- types and tensors ---- */

static enum pq_status pq_parse_type(pq_parser *p, pq_graph *g, enum pq_dtype *dt, pq_shape *sh) {
    pq_token t = pq_tx_peek(p);
    if (pq_tx_is_punct(&t, '?')) {
        *dt = PQ_DTYPE_UNDEFINED;
    } else if (t.kind == PQ_TK_WORD) {
        char name[16];
        if (t.len >= sizeof name) return pq_tx_expected(p, &t, "an element type");
        memcpy(name, p->s + t.start, t.len);
        name[t.len] = '\0';
        if (!pq_dtype_from_name(name, dt))
            return pq_tx_expected(p, &t, "an element type (f32, i64, ...)");
    } else {
        return pq_tx_expected(p, &t, "an element type");
    }
    pq_tx_take(p, &t);
    PQ_TRY(pq_tx_expect(p, '['));
    memset(sh, 0, sizeof *sh);
    if (pq_tx_accept(p, '*')) {
        sh->rank = -1;
        return pq_tx_expect(p, ']');
    }
    if (pq_tx_accept(p, ']')) return PQ_OK;
    for (;;) {
        t = pq_tx_peek(p);
        if (sh->rank >= PQ_MAX_RANK)
            return pq_tx_fail_at(p, t.line, t.col, "more than %d dimensions", PQ_MAX_RANK);
        pq_dim *d = &sh->dims[sh->rank++];
        if (pq_tx_is_punct(&t, '?')) {
            pq_tx_take(p, &t);
            *d = pq_dim_unknown();
        } else if (t.kind == PQ_TK_WORD || t.kind == PQ_TK_STR) {
            char *sym;
            PQ_TRY(pq_tx_parse_name(p, "a dimension", &sym));
            d->size = -1;
            d->sym = pq_graph_intern_symbol(g, sym);
            pq_free(sym);
            if (!d->sym) return pq_error_nomem(p->err, "symbols");
        } else if (t.kind == PQ_TK_NUM) {
            int64_t v;
            PQ_TRY(pq_tx_parse_int(p, &v));
            *d = pq_dim_of(v);
        } else {
            return pq_tx_expected(p, &t, "a dimension (number, symbol or '?')");
        }
        if (pq_tx_accept(p, ']')) return PQ_OK;
        PQ_TRY(pq_tx_expect(p, ','));
    }
}

static enum pq_status pq_parse_element(pq_parser *p, pq_tensor *t, size_t i) {
    unsigned char *d = t->data;
    enum pq_dtype dt = t->dtype;
    if (dt == PQ_DTYPE_BOOL) {
        pq_token tk = pq_tx_peek(p);
        if (pq_tx_is_word(p, &tk, "true") || pq_tx_is_word(p, &tk, "false")) {
            d[i] = pq_tx_is_word(p, &tk, "true");
            pq_tx_take(p, &tk);
            return PQ_OK;
        }
        int64_t v;
        PQ_TRY(pq_tx_parse_int(p, &v));
        if (v != 0 && v != 1)
            return pq_tx_fail_at(p, tk.line, tk.col, "bool element must be true or false");
        d[i] = (unsigned char)v;
        return PQ_OK;
    }
    if (pq_dtype_is_float(dt)) {
        pq_numtext nt;
        PQ_TRY(pq_tx_parse_numtext(p, &nt));
        if (dt == PQ_DTYPE_F64) {
            double v;
            if (nt.kind == 2) {
                uint64_t b = 0x7ff8000000000000ull;
                memcpy(&v, &b, 8);
            } else if (nt.kind == 1) {
                memcpy(&v, &nt.bits, 8);
                if (v == v)
                    return pq_tx_fail_at(p, nt.line, nt.col, "NaN bits do not encode a NaN");
            } else if (!pq_text_read_f64(nt.buf, &v)) {
                return pq_tx_fail_at(p, nt.line, nt.col, "'%s' is not a number", nt.buf);
            }
            memcpy(d + 8 * i, &v, 8);
            return PQ_OK;
        }
        if (dt == PQ_DTYPE_F32) {
            float v;
            PQ_TRY(pq_tx_numtext_f32(p, &nt, &v));
            memcpy(d + 4 * i, &v, 4);
            return PQ_OK;
        }
        bool bf = dt == PQ_DTYPE_BF16;
        uint16_t h;
        if (nt.kind == 2)
            h = bf ? 0x7fc0 : 0x7e00;
        else if (nt.kind == 1) {
            h = (uint16_t)nt.bits;
            float f = bf ? pq_bf16_to_f32(h) : pq_f16_to_f32(h);
            if (nt.bits > 0xffff || f == f)
                return pq_tx_fail_at(p, nt.line, nt.col, "NaN bits do not encode a NaN");
        } else {
            float f;
            if (!pq_text_read_f32(nt.buf, &f))
                return pq_tx_fail_at(p, nt.line, nt.col, "'%s' is not a number", nt.buf);
            h = bf ? pq_f32_to_bf16(f) : pq_f32_to_f16(f);
        }
        memcpy(d + 2 * i, &h, 2);
        return PQ_OK;
    }
    pq_token tk = pq_tx_peek(p);
    if (dt == PQ_DTYPE_U64) {
        uint64_t u;
        PQ_TRY(pq_tx_parse_int_ex(p, true, NULL, &u));
        memcpy(d + 8 * i, &u, 8);
        return PQ_OK;
    }
    int64_t v;
    PQ_TRY(pq_tx_parse_int(p, &v));
    int64_t lo, hi;
    switch (dt) {
    case PQ_DTYPE_I8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case PQ_DTYPE_U8:
        lo = 0, hi = UINT8_MAX;
        break;
    case PQ_DTYPE_I16:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case PQ_DTYPE_U16:
        lo = 0, hi = UINT16_MAX;
        break;
    case PQ_DTYPE_I32:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    case PQ_DTYPE_U32:
        lo = 0, hi = UINT32_MAX;
        break;
    default:
        lo = INT64_MIN, hi = INT64_MAX;
    }
    if (v < lo || v > hi)
        return pq_tx_fail_at(p, tk.line, tk.col, "%lld is out of range for %s", (long long)v,
                             pq_dtype_name(dt));
    pq_dtype_store(dt, d, i, (double)v);
    if (dt == PQ_DTYPE_I64) memcpy(d + 8 * i, &v, 8); /* exact beyond 2^53 */
    return PQ_OK;
}

/* "{min a, max b, mean c, sha256 HEX, bin OFF+LEN}" -> data from the sidecar. */
static enum pq_status pq_parse_summary(pq_parser *p, size_t nbytes, const char *what, int line,
                                       int col, size_t *off_out, char *sha_out) {
    bool have_bin = false, have_sha = false;
    uint64_t off = 0, len = 0;
    char sha[13] = {0};
    PQ_TRY(pq_tx_expect(p, '{'));
    for (;;) {
        if (pq_tx_accept(p, '}')) break;
        pq_token k = pq_tx_peek(p);
        if (pq_tx_is_word(p, &k, "min") || pq_tx_is_word(p, &k, "max") ||
            pq_tx_is_word(p, &k, "mean")) {
            pq_tx_take(p, &k);
            pq_numtext nt;
            PQ_TRY(pq_tx_parse_numtext(p, &nt));
        } else if (pq_tx_is_word(p, &k, "sha256")) {
            pq_tx_take(p, &k);
            pq_token h = pq_tx_peek(p);
            bool ok = (h.kind == PQ_TK_NUM || h.kind == PQ_TK_WORD) && h.len == 12;
            for (size_t j = 0; ok && j < 12; j++)
                ok = strchr("0123456789abcdef", p->s[h.start + j]) != NULL;
            if (!ok) return pq_tx_expected(p, &h, "12 lowercase hex digits of SHA-256");
            pq_tx_take(p, &h);
            memcpy(sha, p->s + h.start, 12);
            have_sha = true;
        } else if (pq_tx_is_word(p, &k, "bin")) {
            pq_tx_take(p, &k);
            PQ_TRY(pq_tx_parse_int_ex(p, true, NULL, &off));
            PQ_TRY(pq_tx_expect(p, '+'));
            PQ_TRY(pq_tx_parse_int_ex(p, true, NULL, &len));
            have_bin = true;
        } else {
            return pq_tx_expected(p, &k, "min, max, mean, sha256 or bin");
        }
        if (pq_tx_accept(p, '}')) break;
        PQ_TRY(pq_tx_expect(p, ','));
    }
    if (!have_bin)
        return pq_tx_fail_at(
            p, line, col,
            "%s is summarised without data (no 'bin' offset): load it with its .pir.bin sidecar",
            what);
    if (!p->bin)
        return pq_tx_fail_at(p, line, col,
                             "%s refers to sidecar bytes %llu+%llu but no sidecar was given", what,
                             (unsigned long long)off, (unsigned long long)len);
    if (off > p->bin_len || len > p->bin_len - off)
        return pq_tx_fail_at(p, line, col,
                             "%s: bin range %llu+%llu is outside the sidecar (%zu bytes)", what,
                             (unsigned long long)off, (unsigned long long)len, p->bin_len);
    if (len != nbytes)
        return pq_tx_fail_at(p, line, col,
                             "%s: bin length %llu does not match its type (%zu bytes)", what,
                             (unsigned long long)len, nbytes);
    *off_out = (size_t)off;
    memcpy(sha_out, have_sha ? sha : "", have_sha ? 13 : 1);
    return PQ_OK;
}

/* Copies the sidecar bytes into t and checks them against the SHA-256 prefix (if any). */
static enum pq_status pq_summary_fill(pq_parser *p, pq_tensor *t, size_t off, const char *sha,
                                      const char *what, int line, int col) {
    if (t->nbytes) memcpy(t->data, p->bin + off, t->nbytes);
    if (sha[0]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int ml = 0;
        char hex[13];
        if (EVP_Digest(t->data, t->nbytes, md, &ml, EVP_sha256(), NULL) != 1 || ml < 6)
            return pq_error_set(p->err, PQ_ERR_INTERNAL, "SHA-256 failed");
        for (int i = 0; i < 6; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (memcmp(hex, sha, 12) != 0)
            return pq_tx_fail_at(p, line, col, "%s: sidecar data has SHA-256 %s, the text says %s",
                                 what, hex, sha);
    }
    if (t->dtype == PQ_DTYPE_BOOL)
        for (size_t i = 0; i < t->nbytes; i++)
            if (((unsigned char *)t->data)[i] > 1)
                return pq_tx_fail_at(p, line, col, "%s: bool element %zu is not 0 or 1", what, i);
    return PQ_OK;
}

/* Tensor literal: TYPE ['='] ('[' elements ']' | summary). */
static enum pq_status pq_parse_tensor(pq_parser *p, pq_graph *g, const char *what,
                                      pq_tensor **out) {
    *out = NULL;
    pq_token t0 = pq_tx_peek(p);
    enum pq_dtype dt;
    pq_shape sh;
    PQ_TRY(pq_parse_type(p, g, &dt, &sh));
    int64_t dims[PQ_MAX_RANK];
    if (dt == PQ_DTYPE_UNDEFINED || !pq_shape_is_static(&sh, dims))
        return pq_tx_fail_at(p, t0.line, t0.col, "%s needs a known element type and static shape",
                             what);
    int64_t numel;
    if (pq_shape_numel(sh.rank, dims, &numel, p->err) != PQ_OK)
        return pq_tx_fail_at(p, t0.line, t0.col, "%s: %s", what, p->err->msg);
    pq_tx_accept(p, '=');
    pq_token t = pq_tx_peek(p);
    bool inl = pq_tx_is_punct(&t, '[');
    if (!inl && !pq_tx_is_punct(&t, '{'))
        return pq_tx_expected(p, &t, "'[' with elements or a '{' summary");
    /* bound the allocation by what the input can possibly hold */
    size_t off = 0;
    char sha[13];
    if (inl && (uint64_t)numel > (uint64_t)(p->n - p->i))
        return pq_tx_fail_at(p, t.line, t.col, "%s has %lld elements, more than the text can hold",
                             what, (long long)numel);
    if (!inl)
        PQ_TRY(
            pq_parse_summary(p, (size_t)numel * pq_dtype_size(dt), what, t.line, t.col, &off, sha));
    pq_tensor *ten = pq_tensor_create(dt, sh.rank, dims, p->err);
    if (!ten) return p->err ? p->err->status : PQ_ERR_NOMEM;
    enum pq_status st = PQ_OK;
    if (inl) {
        pq_tx_take(p, &t);
        for (int64_t i = 0; i < numel && st == PQ_OK; i++) {
            if (i) st = pq_tx_expect(p, ',');
            if (st == PQ_OK) st = pq_parse_element(p, ten, (size_t)i);
        }
        if (st == PQ_OK && !pq_tx_accept(p, ']')) {
            pq_token e = pq_tx_peek(p);
            st = pq_tx_fail_at(p, e.line, e.col, "%s: expected ']' after %lld elements", what,
                               (long long)numel);
        }
    } else {
        st = pq_summary_fill(p, ten, off, sha, what, t.line, t.col);
    }
    if (st != PQ_OK) {
        pq_tensor_destroy(ten);
        return st;
    }
    *out = ten;
    return PQ_OK;
}

/* ---- attributes, nodes, graphs ---- */

typedef struct pq_pattr {
    char *name;
    enum pq_attr_type type;
    int64_t i;
    float f;
    char *s;
    int64_t *ints;
    float *floats;
    char **strs;
    uint32_t n;
    pq_tensor *tensor;
    pq_graph *graph;
} pq_pattr;

static void pq_pattr_free(pq_pattr *a) {
    pq_free(a->name);
    pq_free(a->s);
    pq_free(a->ints);
    pq_free(a->floats);
    for (uint32_t i = 0; a->strs && i < a->n; i++)
        pq_free(a->strs[i]);
    pq_free(a->strs);
    pq_tensor_destroy(a->tensor);
    pq_graph_destroy(a->graph);
    memset(a, 0, sizeof *a);
}

static enum pq_status pq_parse_graph(pq_parser *p, pq_graph *parent, int depth, pq_graph **out);

static enum pq_status pq_push(pq_parser *p, void **arr, uint32_t n, size_t elem) {
    if ((n & (n - 1)) == 0) { /* grow at powers of two */
        void *np = pq_realloc(*arr, elem * (n ? 2 * (size_t)n : 4));
        if (!np) return pq_error_nomem(p->err, "text IR list");
        *arr = np;
    }
    return PQ_OK;
}

/* '[' ... ']' list; forced: 0 infer from elements, else the type of "ints[" etc. */
static enum pq_status pq_parse_list(pq_parser *p, pq_pattr *a, enum pq_attr_type forced) {
    PQ_TRY(pq_tx_expect(p, '['));
    pq_token t = pq_tx_peek(p);
    bool strings = forced == PQ_ATTR_STRINGS || (forced == PQ_ATTR_INT && t.kind == PQ_TK_STR);
    bool any_float = forced == PQ_ATTR_FLOATS;
    uint32_t n = 0;
    while (!pq_tx_accept(p, ']')) {
        if (n) PQ_TRY(pq_tx_expect(p, ','));
        if (n == UINT32_MAX / 2) return pq_tx_fail_at(p, t.line, t.col, "list too long");
        if (strings) {
            PQ_TRY(pq_push(p, (void **)&a->strs, n, sizeof(char *)));
            a->strs[n] = NULL;
            a->n = n + 1; /* so the free path sees it */
            PQ_TRY(pq_tx_parse_string(p, &a->strs[n]));
        } else {
            pq_numtext nt;
            PQ_TRY(pq_tx_parse_numtext(p, &nt));
            PQ_TRY(pq_push(p, (void **)&a->floats, n, sizeof(float)));
            PQ_TRY(pq_push(p, (void **)&a->ints, n, sizeof(int64_t)));
            PQ_TRY(pq_tx_numtext_f32(p, &nt, &a->floats[n]));
            if (nt.floaty) {
                if (forced == PQ_ATTR_INTS)
                    return pq_tx_fail_at(p, nt.line, nt.col, "'%s' in an ints list", nt.buf);
                any_float = true;
                a->ints[n] = 0;
            } else {
                char *end;
                errno = 0;
                long long v = strtoll(nt.buf, &end, 10);
                if (*end || errno) {
                    if (!any_float && forced != PQ_ATTR_FLOATS)
                        return pq_tx_fail_at(p, nt.line, nt.col, "integer '%s' out of range",
                                             nt.buf);
                    v = 0;
                }
                a->ints[n] = v;
            }
            a->n = n + 1;
        }
        n++;
    }
    a->n = n;
    a->type = strings ? PQ_ATTR_STRINGS : any_float ? PQ_ATTR_FLOATS : PQ_ATTR_INTS;
    return PQ_OK;
}

static enum pq_status pq_parse_attr_value(pq_parser *p, pq_scope *sc, int depth, pq_pattr *a) {
    pq_token t = pq_tx_peek(p);
    if (t.kind == PQ_TK_STR) {
        a->type = PQ_ATTR_STRING;
        return pq_tx_parse_string(p, &a->s);
    }
    if (pq_tx_is_punct(&t, '[')) return pq_parse_list(p, a, PQ_ATTR_INT);
    if (t.kind == PQ_TK_WORD) {
        enum pq_dtype dt;
        char w[16] = {0};
        if (t.len < sizeof w) memcpy(w, p->s + t.start, t.len);
        if (!strcmp(w, "ints") || !strcmp(w, "floats") || !strcmp(w, "strings")) {
            pq_tx_take(p, &t);
            return pq_parse_list(p, a,
                                 w[0] == 'i'   ? PQ_ATTR_INTS
                                 : w[0] == 'f' ? PQ_ATTR_FLOATS
                                               : PQ_ATTR_STRINGS);
        }
        if (!strcmp(w, "graph")) {
            a->type = PQ_ATTR_GRAPH;
            return pq_parse_graph(p, sc->g, depth + 1, &a->graph);
        }
        if (pq_dtype_from_name(w, &dt)) {
            a->type = PQ_ATTR_TENSOR;
            char what[300];
            snprintf(what, sizeof what, "tensor attribute '%s'", a->name);
            return pq_parse_tensor(p, sc->g, what, &a->tensor);
        }
    }
    pq_numtext nt;
    PQ_TRY(pq_tx_parse_numtext(p, &nt));
    if (nt.floaty) {
        a->type = PQ_ATTR_FLOAT;
        return pq_tx_numtext_f32(p, &nt, &a->f);
    }
    char *end;
    errno = 0;
    long long v = strtoll(nt.buf, &end, 10);
    if (*end || errno)
        return pq_tx_fail_at(p, nt.line, nt.col, "'%s' is not an integer in range", nt.buf);
    a->type = PQ_ATTR_INT;
    a->i = v;
    return PQ_OK;
}

static enum pq_status pq_set_attr(pq_graph *g, uint32_t nid, pq_pattr *a, pq_error *err) {
    enum pq_status st;
    switch (a->type) {
    case PQ_ATTR_INT:
        return pq_node_set_int(g, nid, a->name, a->i, err);
    case PQ_ATTR_FLOAT:
        return pq_node_set_float(g, nid, a->name, a->f, err);
    case PQ_ATTR_STRING:
        return pq_node_set_string(g, nid, a->name, a->s, err);
    case PQ_ATTR_INTS:
        return pq_node_set_ints(g, nid, a->name, a->ints, a->n, err);
    case PQ_ATTR_FLOATS:
        return pq_node_set_floats(g, nid, a->name, a->floats, a->n, err);
    case PQ_ATTR_STRINGS:
        return pq_node_set_strings(g, nid, a->name, (const char *const *)a->strs, a->n, err);
    case PQ_ATTR_TENSOR:
        st = pq_node_set_tensor(g, nid, a->name, a->tensor, err);
        a->tensor = NULL;
        return st;
    case PQ_ATTR_GRAPH:
        st = pq_node_set_graph(g, nid, a->name, a->graph, err);
        a->graph = NULL;
        return st;
    }
    return pq_error_set(err, PQ_ERR_INTERNAL, "bad attribute type");
}

/* The node name after '#' on the statement's last line, or NULL. */
static enum pq_status pq_parse_node_name(pq_parser *p, char **out) {
    *out = NULL;
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r'))
        p->i++, p->col++;
    if (p->i >= p->n || p->s[p->i] != '#') return PQ_OK;
    p->i++, p->col++;
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
        p->i++, p->col++;
    if (p->i < p->n && p->s[p->i] == '"') {
        pq_token t = pq_tx_peek(p);
        if (t.kind != PQ_TK_STR) return pq_tx_expected(p, &t, "a quoted node name");
        pq_tx_take(p, &t);
        PQ_TRY(pq_tx_decode_string(p, &t, t.start, t.len, out));
        while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r'))
            p->i++, p->col++;
        if (p->i < p->n && p->s[p->i] != '\n')
            return pq_tx_fail_at(p, p->line, p->col, "unexpected text after the quoted node name");
        return PQ_OK;
    }
    size_t st = p->i, end = p->i;
    while (end < p->n && p->s[end] != '\n')
        end++;
    p->col += (int)(end - p->i);
    p->i = end;
    while (end > st && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t' || p->s[end - 1] == '\r'))
        end--;
    for (size_t j = st; j < end; j++)
        if ((unsigned char)p->s[j] < 0x20 || p->s[j] == 0x7f)
            return pq_tx_fail_at(p, p->line, (int)(j - st) + 1, "control character in node name");
    char *d = pq_malloc(end - st + 1);
    if (!d) return pq_error_nomem(p->err, "node name");
    memcpy(d, p->s + st, end - st);
    d[end - st] = '\0';
    *out = d;
    return PQ_OK;
}

static enum pq_status pq_parse_node(pq_parser *p, pq_scope *sc, int depth) {
    enum pq_status st = PQ_OK;
    uint32_t *outs = NULL, *ins = NULL, n_out = 0, n_in = 0, n_attr = 0;
    pq_pattr *attrs = NULL;
    char *name = NULL;
    pq_token t = pq_tx_peek(p);
    /* outputs */
    if (t.kind == PQ_TK_VAL || pq_tx_is_word(p, &t, "_")) {
        for (;;) {
            t = pq_tx_peek(p);
            PQ_TRY_GOTO(st, pq_push(p, (void **)&outs, n_out, sizeof(uint32_t)), done);
            if (pq_tx_is_word(p, &t, "_")) {
                pq_tx_take(p, &t);
                outs[n_out++] = PQ_NONE;
            } else {
                PQ_TRY_GOTO(st, pq_expect_value(p, &t), done);
                uint32_t id;
                PQ_TRY_GOTO(st, pq_define_value(p, sc, &t, &id), done);
                outs[n_out++] = id;
                if (pq_tx_accept(p, ':')) {
                    pq_value *v = &sc->g->values[id];
                    PQ_TRY_GOTO(st, pq_parse_type(p, sc->g, &v->dtype, &v->shape), done);
                }
            }
            if (!pq_tx_accept(p, ',')) break;
        }
        PQ_TRY_GOTO(st, pq_tx_expect(p, '='), done);
    }
    /* op and inputs */
    t = pq_tx_peek(p);
    enum pq_op op;
    char opname[64] = {0};
    if (t.kind == PQ_TK_WORD && t.len < sizeof opname) memcpy(opname, p->s + t.start, t.len);
    if (t.kind != PQ_TK_WORD) {
        st = pq_tx_expected(p, &t, "an op name");
        goto done;
    }
    if (!pq_op_from_name(opname, &op)) {
        st = pq_tx_fail_at(p, t.line, t.col, "unknown op '%.*s'", (int)(t.len > 60 ? 60 : t.len),
                           p->s + t.start);
        goto done;
    }
    pq_tx_take(p, &t);
    PQ_TRY_GOTO(st, pq_tx_expect(p, '('), done);
    while (!pq_tx_accept(p, ')')) {
        if (n_in) PQ_TRY_GOTO(st, pq_tx_expect(p, ','), done);
        t = pq_tx_peek(p);
        PQ_TRY_GOTO(st, pq_push(p, (void **)&ins, n_in, sizeof(uint32_t)), done);
        if (pq_tx_is_word(p, &t, "_")) {
            pq_tx_take(p, &t);
            ins[n_in++] = PQ_NONE;
            continue;
        }
        PQ_TRY_GOTO(st, pq_expect_value(p, &t), done);
        PQ_TRY_GOTO(st, pq_use_value(p, sc, &t, &ins[n_in]), done);
        n_in++;
    }
    /* attributes (on the same line: a '#' there is the node name, which pq_tx_peek would skip) */
    size_t j = p->i;
    while (j < p->n && (p->s[j] == ' ' || p->s[j] == '\t' || p->s[j] == '\r'))
        j++;
    if (j < p->n && p->s[j] == '{') {
        t = pq_tx_peek(p);
        pq_tx_take(p, &t);
        while (!pq_tx_accept(p, '}')) {
            if (n_attr) PQ_TRY_GOTO(st, pq_tx_expect(p, ','), done);
            PQ_TRY_GOTO(st, pq_push(p, (void **)&attrs, n_attr, sizeof(pq_pattr)), done);
            pq_pattr *a = &attrs[n_attr++];
            memset(a, 0, sizeof *a);
            t = pq_tx_peek(p);
            PQ_TRY_GOTO(st, pq_tx_parse_name(p, "an attribute name", &a->name), done);
            for (uint32_t k = 0; k + 1 < n_attr; k++)
                if (strcmp(attrs[k].name, a->name) == 0) {
                    st = pq_tx_fail_at(p, t.line, t.col, "attribute '%s' appears twice", a->name);
                    goto done;
                }
            PQ_TRY_GOTO(st, pq_tx_expect(p, '='), done);
            PQ_TRY_GOTO(st, pq_parse_attr_value(p, sc, depth, a), done);
        }
    }
    PQ_TRY_GOTO(st, pq_parse_node_name(p, &name), done);
    uint32_t nid;
    PQ_TRY_GOTO(st, pq_graph_add_node(sc->g, op, name, ins, n_in, outs, n_out, &nid, p->err), done);
    for (uint32_t k = 0; k < n_attr; k++)
        PQ_TRY_GOTO(st, pq_set_attr(sc->g, nid, &attrs[k], p->err), done);
done:
    for (uint32_t k = 0; k < n_attr; k++)
        pq_pattr_free(&attrs[k]);
    pq_free(attrs);
    pq_free(outs);
    pq_free(ins);
    pq_free(name);
    return st;
}

/* input/const/capture declarations: '%name' ':' (TYPE | tensor literal). */
static enum pq_status pq_parse_decl(pq_parser *p, pq_scope *sc, const char *kw) {
    pq_token t;
    PQ_TRY(pq_expect_value(p, &t));
    PQ_TRY(pq_tx_expect(p, ':'));
    pq_graph *g = sc->g;
    char *name;
    PQ_TRY(pq_tx_value_name(p, &t, &name));
    char what[300];
    snprintf(what, sizeof what, "%s '%s'", kw[0] == 'c' ? "constant" : "input", name);
    enum pq_status st = PQ_OK;
    uint32_t id = PQ_NONE;
    if (kw[1] == 'a') { /* capture */
        if (pq_graph_find_value(g, name) != PQ_NONE) {
            st = pq_tx_fail_at(p, t.line, t.col,
                               "captured value '%s' must be declared once, before any use", name);
        } else if (!g->parent) {
            st = pq_tx_fail_at(p, t.line, t.col, "capture of '%s' outside a subgraph", name);
        } else if ((st = pq_graph_capture(g, name, &id, p->err)) != PQ_OK) {
            if (st != PQ_ERR_NOMEM)
                st =
                    pq_tx_fail_at(p, t.line, t.col,
                                  "captured value '%s' is not defined in an enclosing graph", name);
        } else {
            pq_value *v = &g->values[id];
            st = pq_parse_type(p, g, &v->dtype, &v->shape);
        }
        pq_free(name);
        return st;
    }
    pq_free(name);
    PQ_TRY(pq_define_value(p, sc, &t, &id));
    pq_token ty = pq_tx_peek(p);
    bool is_input = kw[0] == 'i';
    if (is_input) {
        /* a type, optionally followed by the initializer: "= [..]" or "{summary}" */
        size_t save_i = p->i;
        int save_line = p->line, save_col = p->col;
        enum pq_dtype dt;
        pq_shape sh;
        PQ_TRY(pq_parse_type(p, g, &dt, &sh));
        pq_token nx = pq_tx_peek(p);
        if (pq_tx_is_punct(&nx, '=') || pq_tx_is_punct(&nx, '{')) {
            p->i = save_i;
            p->line = save_line;
            p->col = save_col;
        } else {
            g->values[id].dtype = dt;
            g->values[id].shape = sh;
            return pq_graph_add_input(g, id, p->err);
        }
    }
    (void)ty;
    pq_tensor *ten;
    PQ_TRY(pq_parse_tensor(p, g, what, &ten));
    PQ_TRY(pq_graph_set_constant(g, id, ten, p->err));
    if (is_input) PQ_TRY(pq_graph_add_input(g, id, p->err));
    return PQ_OK;
}

static enum pq_status pq_parse_graph_body(pq_parser *p, pq_scope *sc, int depth) {
    pq_graph *g = sc->g;
    for (;;) {
        pq_token t = pq_tx_peek(p);
        if (pq_tx_is_punct(&t, '}')) {
            pq_tx_take(p, &t);
            break;
        }
        if (t.kind == PQ_TK_EOF) return pq_tx_expected(p, &t, "'}' closing the graph");
        if (pq_tx_is_word(p, &t, "opset")) {
            pq_tx_take(p, &t);
            char *dom;
            int64_t ver;
            PQ_TRY(pq_tx_parse_string(p, &dom));
            enum pq_status st = pq_tx_parse_int(p, &ver);
            if (st == PQ_OK) st = pq_graph_add_opset(g, dom, ver, p->err);
            pq_free(dom);
            PQ_TRY(st);
        } else if (pq_tx_is_word(p, &t, "producer")) {
            pq_tx_take(p, &t);
            char *s;
            PQ_TRY(pq_tx_parse_string(p, &s));
            g->producer_name = pq_graph_strdup(g, s);
            pq_free(s);
            if (!g->producer_name) return pq_error_nomem(p->err, "producer");
        } else if (pq_tx_is_word(p, &t, "ir_version")) {
            pq_tx_take(p, &t);
            PQ_TRY(pq_tx_parse_int(p, &g->ir_version));
        } else if (pq_tx_is_word(p, &t, "symbols")) {
            pq_tx_take(p, &t);
            if (g->parent || g->n_symbols > 1 || g->n_values)
                return pq_tx_fail_at(p, t.line, t.col,
                                     "'symbols' must come first in the top-level graph");
            do {
                pq_token s = pq_tx_peek(p);
                char *sym;
                PQ_TRY(pq_tx_parse_name(p, "a symbol name", &sym));
                uint32_t before = g->n_symbols;
                uint32_t id = pq_graph_intern_symbol(g, sym);
                pq_free(sym);
                if (!id) return pq_error_nomem(p->err, "symbols");
                if (g->n_symbols == before)
                    return pq_tx_fail_at(p, s.line, s.col, "symbol listed twice");
            } while (pq_tx_accept(p, ','));
        } else if (pq_tx_is_word(p, &t, "input") || pq_tx_is_word(p, &t, "const") ||
                   pq_tx_is_word(p, &t, "capture")) {
            pq_tx_take(p, &t);
            const char *kw = p->s[t.start] == 'i'       ? "input"
                             : p->s[t.start + 1] == 'o' ? "const"
                                                        : "capture";
            PQ_TRY(pq_parse_decl(p, sc, kw));
        } else if (pq_tx_is_word(p, &t, "output")) {
            pq_tx_take(p, &t);
            pq_token v;
            uint32_t id;
            PQ_TRY(pq_expect_value(p, &v));
            PQ_TRY(pq_use_value(p, sc, &v, &id));
            PQ_TRY(pq_graph_add_output(g, id, p->err));
        } else if (t.kind == PQ_TK_VAL || t.kind == PQ_TK_WORD) {
            PQ_TRY(pq_parse_node(p, sc, depth));
        } else {
            return pq_tx_expected(p, &t,
                                  "a statement (input, const, capture, output, a node) or '}'");
        }
    }
    for (uint32_t v = 0; v < g->n_values && v < sc->cap; v++)
        if (sc->state[v] == 1)
            return pq_tx_fail_at(p, sc->uline[v], sc->ucol[v],
                                 "value '%s' is used but never defined", g->values[v].name);
    return PQ_OK;
}

static enum pq_status pq_parse_graph(pq_parser *p, pq_graph *parent, int depth, pq_graph **out) {
    *out = NULL;
    pq_token t = pq_tx_peek(p);
    if (!pq_tx_is_word(p, &t, "graph")) return pq_tx_expected(p, &t, "'graph'");
    if (depth > PQ_TEXT_MAX_DEPTH)
        return pq_tx_fail_at(p, t.line, t.col, "subgraphs nested deeper than %d",
                             PQ_TEXT_MAX_DEPTH);
    pq_tx_take(p, &t);
    pq_graph *g = pq_graph_create(parent, p->err);
    if (!g) return PQ_ERR_NOMEM;
    enum pq_status st = PQ_OK;
    t = pq_tx_peek(p);
    if (t.kind == PQ_TK_WORD || t.kind == PQ_TK_STR) {
        char *name;
        PQ_TRY_GOTO(st, pq_tx_parse_name(p, "a graph name", &name), fail);
        g->name = pq_graph_strdup(g, name);
        pq_free(name);
        if (!g->name) {
            st = pq_error_nomem(p->err, "graph name");
            goto fail;
        }
    }
    PQ_TRY_GOTO(st, pq_tx_expect(p, '{'), fail);
    pq_scope sc = {g, NULL, NULL, NULL, 0};
    st = pq_parse_graph_body(p, &sc, depth);
    pq_scope_free(&sc);
    if (st != PQ_OK) goto fail;
    *out = g;
    return PQ_OK;
fail:
    pq_graph_destroy(g);
    return st;
}

enum pq_status pq_text_parse(const char *text, size_t len, const unsigned char *bin, size_t bin_len,
                             pq_graph **out, pq_error *err) {
    pq_error local;
    if (!err) err = &local;
    *out = NULL;
    pq_parser p = {text, len, 0, 1, 1, bin, bin ? bin_len : 0, err};
    if (!text) return pq_error_set(err, PQ_ERR_INVALID, "text: no input");
    if (memchr(text, '\0', len)) {
        const char *z = memchr(text, '\0', len);
        int line = 1, col = 1;
        for (const char *c = text; c < z; c++) {
            if (*c == '\n')
                line++, col = 1;
            else
                col++;
        }
        return pq_tx_fail_at(&p, line, col, "NUL byte in the text");
    }
    pq_token t = pq_tx_peek(&p);
    if (!pq_tx_is_word(&p, &t, "piqc")) return pq_tx_expected(&p, &t, "the header 'piqc 1'");
    pq_tx_take(&p, &t);
    int64_t ver;
    PQ_TRY(pq_tx_parse_int(&p, &ver));
    if (ver != PQ_TEXT_VERSION)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "line %d, column %d: text IR version %lld (this piqc reads %d)", t.line,
                            t.col, (long long)ver, PQ_TEXT_VERSION);
    pq_graph *g;
    PQ_TRY(pq_parse_graph(&p, NULL, 0, &g));
    t = pq_tx_peek(&p);
    if (t.kind != PQ_TK_EOF) {
        pq_graph_destroy(g);
        return pq_tx_expected(&p, &t, "end of input after the graph");
    }
    *out = g;
    return PQ_OK;
}
