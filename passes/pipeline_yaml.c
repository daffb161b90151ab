/* The YAML pipeline reader: libyaml events -> a bounded generic tree (no anchors, aliases, tabs or
 * duplicate keys) -> pass entries whose options are validated against each pass schema. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "pipeline.h"
#include "pipeline_internal.h"

/* ---- generic tree ------------------------------------------------------------------------- */

void pq_ynode_free(pq_ynode *y) {
    if (!y) return;
    pq_free(y->scalar);
    for (uint32_t i = 0; i < y->n; i++) {
        if (y->keys) pq_ynode_free(&y->keys[i]);
        if (y->items) pq_ynode_free(&y->items[i]);
    }
    pq_free(y->keys);
    pq_free(y->items);
    memset(y, 0, sizeof(*y));
}

const pq_ynode *pq_ynode_get(const pq_ynode *m, const char *key) {
    if (!m || m->kind != PQ_YNODE_MAP || !key) return NULL;
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i].scalar, key) == 0) return &m->items[i];
    return NULL;
}

typedef struct pq_yparse {
    yaml_parser_t parser;
    const char *source;
    pq_error *err;
} pq_yparse;

static enum pq_status pq_yerr(pq_yparse *yp, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum pq_status pq_yerr(pq_yparse *yp, uint32_t line, uint32_t col, const char *fmt, ...) {
    char msg[PQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pq_error_set(yp->err, PQ_ERR_INVALID, "%s:%u:%u: %s", yp->source, line, col, msg);
}

static enum pq_status pq_ynext(pq_yparse *yp, yaml_event_t *ev) {
    if (yaml_parser_parse(&yp->parser, ev)) return PQ_OK;
    if (yp->parser.error == YAML_MEMORY_ERROR) return pq_error_nomem(yp->err, "YAML parser");
    const yaml_parser_t *p = &yp->parser;
    return pq_yerr(yp, (uint32_t)p->problem_mark.line + 1, (uint32_t)p->problem_mark.column + 1,
                   "YAML syntax error: %s%s%s", p->problem ? p->problem : "malformed YAML",
                   p->context ? " " : "", p->context ? p->context : "");
}

static enum pq_status pq_ynode_push(pq_yparse *yp, pq_ynode **arr, uint32_t n, uint32_t *cap,
                                    const pq_ynode *y) {
    if (n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 4;
        pq_ynode *a = pq_realloc(*arr, (size_t)c * sizeof(*a));
        if (!a) return pq_error_nomem(yp->err, "YAML node");
        *arr = a;
        *cap = c;
    }
    (*arr)[n] = *y;
    return PQ_OK;
}

static const char *pq_ykind_name(enum pq_ynode_kind k) {
    return k == PQ_YNODE_MAP ? "a mapping" : k == PQ_YNODE_SEQ ? "a list" : "a scalar";
}

/* Builds node *y from event ev (taken over: deleted here) and the events that follow it. */
static enum pq_status pq_ynode_build(pq_yparse *yp, yaml_event_t *ev, int depth, pq_ynode *y) {
    enum pq_status st = PQ_OK;
    memset(y, 0, sizeof(*y));
    y->line = (uint32_t)ev->start_mark.line + 1;
    y->col = (uint32_t)ev->start_mark.column + 1;
    yaml_char_t *anchor = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        st = pq_yerr(yp, y->line, y->col,
                     "aliases (*%s) are not supported in pipelines; write the value out",
                     (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return st;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        break;
    default:
        yaml_event_delete(ev);
        return pq_yerr(yp, y->line, y->col, "unexpected YAML event");
    }
    if (anchor) {
        st = pq_yerr(yp, y->line, y->col,
                     "anchors (&%s) are not supported in pipelines; write the value out",
                     (const char *)anchor);
        yaml_event_delete(ev);
        return st;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        size_t len = ev->data.scalar.length;
        y->kind = PQ_YNODE_SCALAR;
        y->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (memchr(ev->data.scalar.value, '\0', len)) {
            yaml_event_delete(ev);
            return pq_yerr(yp, y->line, y->col, "NUL character in a value");
        }
        y->scalar = pq_malloc(len + 1);
        if (!y->scalar) {
            yaml_event_delete(ev);
            return pq_error_nomem(yp->err, "YAML scalar");
        }
        memcpy(y->scalar, ev->data.scalar.value, len);
        y->scalar[len] = '\0';
        yaml_event_delete(ev);
        return PQ_OK;
    }
    bool is_map = ev->type == YAML_MAPPING_START_EVENT;
    y->kind = is_map ? PQ_YNODE_MAP : PQ_YNODE_SEQ;
    yaml_event_delete(ev);
    if (depth >= PQ_PIPELINE_MAX_DEPTH)
        return pq_yerr(yp, y->line, y->col, "nesting deeper than %d levels", PQ_PIPELINE_MAX_DEPTH);
    uint32_t cap_keys = 0, cap_items = 0;
    for (;;) {
        yaml_event_t e;
        PQ_TRY_GOTO(st, pq_ynext(yp, &e), fail);
        if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&e);
            return PQ_OK;
        }
        pq_ynode child;
        if (is_map) {
            PQ_TRY_GOTO(st, pq_ynode_build(yp, &e, depth + 1, &child), fail);
            if (child.kind != PQ_YNODE_SCALAR) {
                st =
                    pq_yerr(yp, child.line, child.col, "a mapping key must be a plain name, got %s",
                            pq_ykind_name(child.kind));
                pq_ynode_free(&child);
                goto fail;
            }
            for (uint32_t k = 0; k < y->n; k++) {
                if (strcmp(y->keys[k].scalar, child.scalar) != 0) continue;
                st = pq_yerr(yp, child.line, child.col,
                             "duplicate key '%s' (first given at line %u, column %u)", child.scalar,
                             y->keys[k].line, y->keys[k].col);
                pq_ynode_free(&child);
                goto fail;
            }
            st = pq_ynode_push(yp, &y->keys, y->n, &cap_keys, &child);
            if (st != PQ_OK) {
                pq_ynode_free(&child);
                goto fail;
            }
            PQ_TRY_GOTO(st, pq_ynext(yp, &e), fail_key);
        }
        PQ_TRY_GOTO(st, pq_ynode_build(yp, &e, depth + 1, &child), fail_key);
        st = pq_ynode_push(yp, &y->items, y->n, &cap_items, &child);
        if (st != PQ_OK) {
            pq_ynode_free(&child);
            goto fail_key;
        }
        y->n++;
    }
fail_key:
    /* the key of the pair being built was pushed but y->n not bumped yet */
    if (is_map) pq_ynode_free(&y->keys[y->n]);
fail:
    pq_ynode_free(y); /* self-cleaning: the caller only sees a failure */
    return st;
}

/* Parses text as one YAML document into *root (kind SCALAR "" and line 1 for an empty stream,
 * with *empty set). Rejects tabs, oversize text and more than one document. */
static enum pq_status pq_yparse_text(const char *text, size_t len, const char *source,
                                     pq_ynode *root, bool *empty, pq_error *err) {
    pq_yparse yp = {.source = source, .err = err};
    enum pq_status st = PQ_OK;
    memset(root, 0, sizeof(*root));
    *empty = false;
    if (len > PQ_PIPELINE_MAX_TEXT)
        return pq_error_set(err, PQ_ERR_INVALID, "%s:1:1: pipeline is %zu bytes; the limit is %u",
                            source, len, PQ_PIPELINE_MAX_TEXT);
    uint32_t line = 1, col = 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\t')
            return pq_yerr(&yp, line, col, "tab character; YAML indentation must use spaces");
        if (text[i] == '\0') return pq_yerr(&yp, line, col, "NUL byte in the text");
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    if (!yaml_parser_initialize(&yp.parser)) return pq_error_nomem(err, "YAML parser");
    yaml_parser_set_input_string(&yp.parser, (const unsigned char *)text, len);
    yaml_event_t ev;
    PQ_TRY_GOTO(st, pq_ynext(&yp, &ev), done); /* STREAM_START */
    yaml_event_delete(&ev);
    PQ_TRY_GOTO(st, pq_ynext(&yp, &ev), done);
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        root->kind = PQ_YNODE_SCALAR;
        root->line = root->col = 1;
        root->scalar = pq_strdup("");
        if (!root->scalar) st = pq_error_nomem(err, "YAML scalar");
        *empty = true;
        goto done;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    PQ_TRY_GOTO(st, pq_ynext(&yp, &ev), done);
    PQ_TRY_GOTO(st, pq_ynode_build(&yp, &ev, 0, root), done);
    PQ_TRY_GOTO(st, pq_ynext(&yp, &ev), done); /* DOCUMENT_END */
    yaml_event_delete(&ev);
    PQ_TRY_GOTO(st, pq_ynext(&yp, &ev), done);
    if (ev.type != YAML_STREAM_END_EVENT) {
        st = pq_yerr(&yp, (uint32_t)ev.start_mark.line + 1, (uint32_t)ev.start_mark.column + 1,
                     "a pipeline is one YAML document; found a second one");
    }
    yaml_event_delete(&ev);
done:
    yaml_parser_delete(&yp.parser);
    if (st != PQ_OK) pq_ynode_free(root);
    return st;
}

/* ---- option values ------------------------------------------------------------------------ */

void pq_optv_clear(pq_opt_value *v) {
    pq_free((char *)v->s);
    for (uint32_t i = 0; i < v->n_list; i++)
        pq_free((char *)v->list[i]);
    pq_free(v->list);
    const pq_pass_option *schema = v->schema;
    memset(v, 0, sizeof(*v));
    v->schema = schema;
}

/* Appends s to buf (size cap) after what is there, truncating with "..." when full. */
static void pq_buf_add(char *buf, size_t cap, const char *s) {
    size_t l = strlen(buf), n = strlen(s);
    if (l + n + 1 < cap) {
        memcpy(buf + l, s, n + 1);
    } else if (l + 4 < cap) {
        memcpy(buf + l, "...", 4);
    }
}

static void pq_choices_str(const char *const *choices, char *buf, size_t cap) {
    buf[0] = '\0';
    for (uint32_t i = 0; choices && choices[i]; i++) {
        if (i) pq_buf_add(buf, cap, ", ");
        pq_buf_add(buf, cap, choices[i]);
    }
}

static bool pq_has_range(const pq_pass_option *o) {
    return !(o->min == 0 && o->max == 0);
}

void pq_opt_describe(const pq_pass_option *o, char *buf, size_t cap) {
    char ch[1024];
    pq_choices_str(o->choices, ch, sizeof(ch));
    switch (o->type) {
    case PQ_OPT_BOOL:
        snprintf(buf, cap, "true or false");
        break;
    case PQ_OPT_INT:
        if (pq_has_range(o))
            snprintf(buf, cap, "an integer in %.17g..%.17g", o->min, o->max);
        else
            snprintf(buf, cap, "an integer");
        break;
    case PQ_OPT_FLOAT:
        if (pq_has_range(o))
            snprintf(buf, cap, "a number in %.17g..%.17g", o->min, o->max);
        else
            snprintf(buf, cap, "a number");
        break;
    case PQ_OPT_STRING:
        snprintf(buf, cap, "a string");
        break;
    case PQ_OPT_ENUM:
        snprintf(buf, cap, "one of: %s", ch);
        break;
    case PQ_OPT_STRING_LIST:
        snprintf(buf, cap, "a list of strings, e.g. [a, b]");
        break;
    case PQ_OPT_ENUM_LIST:
        snprintf(buf, cap, "a list of: %s (e.g. [%s])", ch, ch);
        break;
    }
}

static bool pq_in_choices(const char *const *choices, const char *s) {
    for (uint32_t i = 0; choices && choices[i]; i++)
        if (strcmp(choices[i], s) == 0) return true;
    return false;
}

/* Converts scalar y into a single value of option o read as `type` (STRING for the items of a
 * STRING_LIST, ENUM for those of an ENUM_LIST). */
static enum pq_status pq_scalar_value(const pq_pass *pass, const pq_pass_option *o,
                                      enum pq_opt_type type, const pq_ynode *y, pq_opt_value *v,
                                      pq_error *err) {
    char want[1200];
    pq_opt_describe(o, want, sizeof(want));
    const char *s = y->scalar;
    if (y->kind != PQ_YNODE_SCALAR)
        return pq_error_set(err, PQ_ERR_INVALID, "option '%s' of pass '%s' expects %s, got %s",
                            o->name, pass->name, want, pq_ykind_name(y->kind));
    if (!y->quoted && s[0] == '\0')
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option '%s' of pass '%s' has no value; expected %s", o->name,
                            pass->name, want);
    switch (type) {
    case PQ_OPT_BOOL:
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            v->b = true;
        } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            v->b = false;
        } else {
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s' expects %s, got '%s'", o->name,
                                pass->name, want, s);
        }
        return PQ_OK;
    case PQ_OPT_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || *end != '\0' || errno == ERANGE || s[0] == ' ')
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s' expects %s, got '%s'", o->name,
                                pass->name, want, s);
        if (pq_has_range(o) && ((double)x < o->min || (double)x > o->max))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s': %lld is out of range; expected %s",
                                o->name, pass->name, x, want);
        v->i = x;
        v->f = (double)x;
        return PQ_OK;
    }
    case PQ_OPT_FLOAT: {
        char *end = NULL;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || *end != '\0' || !isfinite(x) || s[0] == ' ' || errno == ERANGE)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s' expects %s, got '%s'", o->name,
                                pass->name, want, s);
        if (pq_has_range(o) && (x < o->min || x > o->max))
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s': %s is out of range; expected %s",
                                o->name, pass->name, s, want);
        v->f = x;
        return PQ_OK;
    }
    case PQ_OPT_ENUM:
        if (!pq_in_choices(o->choices, s)) {
            char ch[1024];
            pq_choices_str(o->choices, ch, sizeof(ch));
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s': '%s' is not one of the choices; "
                                "accepted: %s",
                                o->name, pass->name, s, ch);
        }
        /* fall through */
    case PQ_OPT_STRING:
        v->s = pq_strdup(s);
        if (!v->s) return pq_error_nomem(err, "option value");
        return PQ_OK;
    case PQ_OPT_STRING_LIST:
    case PQ_OPT_ENUM_LIST:
        break;
    }
    return pq_error_set(err, PQ_ERR_INTERNAL, "option '%s': bad schema type", o->name);
}

enum pq_status pq_opt_from_node(const pq_pass *pass, const pq_pass_option *o, const pq_ynode *y,
                                pq_opt_value *out, const pq_ynode **at, pq_error *err) {
    pq_opt_value v = {.schema = o};
    enum pq_status st = PQ_OK;
    *at = y;
    if (o->type == PQ_OPT_STRING_LIST || o->type == PQ_OPT_ENUM_LIST) {
        if (y->kind != PQ_YNODE_SEQ) {
            char want[1200];
            pq_opt_describe(o, want, sizeof(want));
            if (y->kind == PQ_YNODE_SCALAR)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "option '%s' of pass '%s' expects %s, got '%s'", o->name,
                                    pass->name, want, y->scalar);
            return pq_error_set(err, PQ_ERR_INVALID,
                                "option '%s' of pass '%s' expects %s, got a mapping", o->name,
                                pass->name, want);
        }
        enum pq_opt_type it = o->type == PQ_OPT_ENUM_LIST ? PQ_OPT_ENUM : PQ_OPT_STRING;
        v.list = pq_calloc(y->n ? y->n : 1, sizeof(*v.list));
        if (!v.list) return pq_error_nomem(err, "option list");
        for (uint32_t i = 0; i < y->n; i++) {
            pq_opt_value item = {.schema = o};
            *at = &y->items[i];
            PQ_TRY_GOTO(st, pq_scalar_value(pass, o, it, &y->items[i], &item, err), fail);
            v.list[v.n_list++] = item.s;
        }
        *at = y;
    } else {
        PQ_TRY_GOTO(st, pq_scalar_value(pass, o, o->type, y, &v, err), fail);
    }
    v.set = true;
    pq_optv_clear(out);
    *out = v;
    return PQ_OK;
fail:
    pq_optv_clear(&v);
    return st;
}

enum pq_status pq_opt_from_text(const pq_pass *pass, const pq_pass_option *o, const char *text,
                                pq_opt_value *out, pq_error *err) {
    pq_ynode y;
    bool empty;
    const pq_ynode *at;
    enum pq_status st = pq_yparse_text(text, strlen(text), "value", &y, &empty, err);
    if (st != PQ_OK) return st;
    st = pq_opt_from_node(pass, o, &y, out, &at, err);
    pq_ynode_free(&y);
    return st;
}

/* ---- entries ------------------------------------------------------------------------------ */

enum pq_status pq_entry_init(pq_pipeline_entry *e, const pq_pass *pass, pq_error *err) {
    memset(e, 0, sizeof(*e));
    e->pass = pass;
    e->opts.pass = pass;
    e->opts.v = pq_calloc(pass->n_options ? pass->n_options : 1, sizeof(*e->opts.v));
    if (!e->opts.v) return pq_error_nomem(err, "pass options");
    e->opts.n = pass->n_options;
    for (uint32_t i = 0; i < pass->n_options; i++)
        e->opts.v[i].schema = &pass->options[i];
    return PQ_OK;
}

enum pq_status pq_entry_defaults(pq_pipeline_entry *e, pq_error *err) {
    for (uint32_t i = 0; i < e->opts.n; i++) {
        pq_opt_value *v = &e->opts.v[i];
        if (v->set || !v->schema->def) continue;
        pq_error e2;
        pq_error_clear(&e2);
        enum pq_status st = pq_opt_from_text(e->pass, v->schema, v->schema->def, v, &e2);
        if (st == PQ_ERR_NOMEM) return pq_error_nomem(err, "option default");
        if (st != PQ_OK)
            return pq_error_set(err, PQ_ERR_INTERNAL,
                                "pass '%s': the default '%s' of option '%s' is invalid (a bug in "
                                "the pass schema): %s",
                                e->pass->name, v->schema->def, v->schema->name, e2.msg);
    }
    return PQ_OK;
}

void pq_entry_free(pq_pipeline_entry *e) {
    for (uint32_t i = 0; i < e->opts.n; i++)
        pq_optv_clear(&e->opts.v[i]);
    pq_free(e->opts.v);
    memset(e, 0, sizeof(*e));
}

void pq_pass_names_str(const pq_pass *const *passes, uint32_t n, char *buf, size_t cap) {
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        if (i) pq_buf_add(buf, cap, ", ");
        pq_buf_add(buf, cap, passes[i]->name);
    }
    if (!n) pq_buf_add(buf, cap, "(no passes are registered)");
}

static enum pq_status pq_parse_entry(pq_yparse *yp, const pq_pass *const *passes, uint32_t n_passes,
                                     const pq_ynode *y, pq_pipeline_entry *e) {
    const pq_ynode *name_node = y, *opts = NULL;
    enum pq_status st;
    if (y->kind == PQ_YNODE_SEQ)
        return pq_yerr(yp, y->line, y->col,
                       "a pass entry is a pass name or 'name: {options}', got a list");
    if (y->kind == PQ_YNODE_MAP) {
        if (y->n != 1) {
            char keys[512] = "";
            for (uint32_t i = 0; i < y->n; i++) {
                if (i) pq_buf_add(keys, sizeof(keys), ", ");
                pq_buf_add(keys, sizeof(keys), y->keys[i].scalar);
            }
            return pq_yerr(yp, y->line, y->col,
                           "a pass entry has one key (the pass name), found %u: %s; options "
                           "belong indented under the pass name",
                           y->n, keys);
        }
        name_node = &y->keys[0];
        opts = &y->items[0];
        if (opts->kind == PQ_YNODE_SCALAR && !opts->quoted && opts->scalar[0] == '\0') {
            opts = NULL;
        } else if (opts->kind != PQ_YNODE_MAP) {
            return pq_yerr(yp, opts->line, opts->col,
                           "the options of pass '%s' must be a mapping (name: value), got %s",
                           name_node->scalar, pq_ykind_name(opts->kind));
        }
    }
    if (name_node->scalar[0] == '\0')
        return pq_yerr(yp, name_node->line, name_node->col,
                       "empty pass entry; expected a pass name");
    const pq_pass *pass = NULL;
    for (uint32_t i = 0; i < n_passes && !pass; i++)
        if (strcmp(passes[i]->name, name_node->scalar) == 0) pass = passes[i];
    if (!pass) {
        char names[2048];
        pq_pass_names_str(passes, n_passes, names, sizeof(names));
        return pq_yerr(yp, name_node->line, name_node->col, "unknown pass '%s'; accepted: %s",
                       name_node->scalar, names);
    }
    PQ_TRY(pq_entry_init(e, pass, yp->err));
    e->line = name_node->line;
    e->col = name_node->col;
    for (uint32_t k = 0; opts && k < opts->n; k++) {
        const pq_ynode *key = &opts->keys[k];
        uint32_t oi = 0;
        while (oi < pass->n_options && strcmp(pass->options[oi].name, key->scalar) != 0)
            oi++;
        if (oi == pass->n_options) {
            char names[1024] = "";
            for (uint32_t i = 0; i < pass->n_options; i++) {
                if (i) pq_buf_add(names, sizeof(names), ", ");
                pq_buf_add(names, sizeof(names), pass->options[i].name);
            }
            return pq_yerr(yp, key->line, key->col,
                           "unknown option '%s' of pass '%s'; accepted: %s", key->scalar,
                           pass->name, pass->n_options ? names : "none (the pass has no options)");
        }
        const pq_ynode *at = NULL;
        st = pq_opt_from_node(pass, &pass->options[oi], &opts->items[k], &e->opts.v[oi], &at,
                              yp->err);
        if (st == PQ_ERR_INVALID)
            return pq_error_prefix(yp->err, "%s:%u:%u: ", yp->source, at->line, at->col);
        PQ_TRY(st);
    }
    PQ_TRY(pq_entry_defaults(e, yp->err));
    if (pass->check && (st = pass->check(&e->opts, yp->err)) != PQ_OK)
        return pq_error_prefix(yp->err, "%s:%u:%u: pass '%s': ", yp->source, e->line, e->col,
                               pass->name);
    return PQ_OK;
}

/* ---- pipelines ---------------------------------------------------------------------------- */

void pq_pipeline_destroy(pq_pipeline *p) {
    if (!p) return;
    for (uint32_t i = 0; i < p->n; i++)
        pq_entry_free(&p->entries[i]);
    pq_free(p->entries);
    pq_free(p->text);
    pq_free(p->source);
    if (p->train) pq_ynode_free(p->train);
    pq_free(p->train);
    pq_free(p);
}

pq_pipeline *pq_pipeline_new(const char *source, pq_error *err) {
    pq_pipeline *p = pq_calloc(1, sizeof(*p));
    if (p) p->source = pq_strdup(source);
    if (!p || !p->source) {
        pq_free(p);
        pq_error_nomem(err, "pipeline");
        return NULL;
    }
    return p;
}

enum pq_status pq_pipeline_parse_with(const pq_pass *const *passes, uint32_t n_passes,
                                      const char *text, size_t len, const char *source_name,
                                      pq_pipeline **out, pq_error *err) {
    *out = NULL;
    const char *source = source_name ? source_name : "pipeline";
    pq_yparse yp = {.source = source, .err = err};
    pq_ynode root;
    bool empty = false;
    enum pq_status st;
    pq_pipeline *p = NULL;
    if (!text && len) return pq_error_set(err, PQ_ERR_INTERNAL, "%s: NULL text", source);
    PQ_TRY(pq_yparse_text(text ? text : "", len, source, &root, &empty, err));
    p = pq_pipeline_new(source, err);
    if (!p) {
        st = PQ_ERR_NOMEM;
        goto fail;
    }
    p->text = pq_malloc(len + 1);
    if (!p->text) {
        st = pq_error_nomem(err, "pipeline text");
        goto fail;
    }
    if (len) memcpy(p->text, text, len);
    p->text[len] = '\0';
    if (empty) {
        st = pq_yerr(&yp, 1, 1,
                     "empty pipeline; expected a mapping with 'passes:' (a list of passes)");
        goto fail;
    }
    if (root.kind != PQ_YNODE_MAP) {
        st = pq_yerr(&yp, root.line, root.col,
                     "a pipeline is a mapping with 'passes:' (a list of passes), got %s",
                     pq_ykind_name(root.kind));
        goto fail;
    }
    for (uint32_t k = 0; k < root.n; k++) {
        const pq_ynode *key = &root.keys[k];
        if (strcmp(key->scalar, "passes") != 0 && strcmp(key->scalar, "train") != 0) {
            st = pq_yerr(&yp, key->line, key->col,
                         "unknown top-level key '%s'; accepted: passes, train", key->scalar);
            goto fail;
        }
    }
    const pq_ynode *ps = pq_ynode_get(&root, "passes");
    if (!ps) {
        st = pq_yerr(&yp, root.line, root.col,
                     "missing 'passes:' (a list of passes); top-level keys accepted: passes, "
                     "train");
        goto fail;
    }
    if (ps->kind != PQ_YNODE_SEQ) {
        st = pq_yerr(
            &yp, ps->line, ps->col, "'passes' must be a list of passes (lines '- name'), got %s",
            ps->kind == PQ_YNODE_SCALAR && !ps->quoted && !ps->scalar[0] ? "nothing"
                                                                         : pq_ykind_name(ps->kind));
        goto fail;
    }
    p->entries = pq_calloc(ps->n ? ps->n : 1, sizeof(*p->entries));
    if (!p->entries) {
        st = pq_error_nomem(err, "pipeline entries");
        goto fail;
    }
    for (uint32_t i = 0; i < ps->n; i++) {
        st = pq_parse_entry(&yp, passes, n_passes, &ps->items[i], &p->entries[i]);
        if (p->entries[i].pass) p->n = i + 1; /* initialised: freed with the pipeline */
        if (st != PQ_OK) goto fail;
    }
    for (uint32_t k = 0; k < root.n; k++) {
        if (strcmp(root.keys[k].scalar, "train") != 0) continue;
        pq_ynode *t = &root.items[k];
        if (t->kind != PQ_YNODE_MAP) {
            st = pq_yerr(&yp, t->line, t->col, "'train' must be a mapping (key: value), got %s",
                         pq_ykind_name(t->kind));
            goto fail;
        }
        p->train = pq_malloc(sizeof(*p->train));
        if (!p->train) {
            st = pq_error_nomem(err, "train section");
            goto fail;
        }
        *p->train = *t; /* moved out of the tree */
        memset(t, 0, sizeof(*t));
    }
    pq_ynode_free(&root);
    *out = p;
    return PQ_OK;
fail:
    pq_ynode_free(&root);
    pq_pipeline_destroy(p);
    return st;
}

enum pq_status pq_pipeline_parse(const char *text, size_t len, const char *source_name,
                                 pq_pipeline **out, pq_error *err) {
    uint32_t n;
    const pq_pass *const *all = pq_passes_all(&n);
    return pq_pipeline_parse_with(all, n, text, len, source_name, out, err);
}

static bool pq_has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

enum pq_status pq_pipeline_load(const char *path, pq_pipeline **out, pq_error *err) {
    *out = NULL;
    if (!path || !*path) return pq_error_set(err, PQ_ERR_USAGE, "pipeline: empty file name");
    bool file_like = strchr(path, '/') || pq_has_suffix(path, ".yaml") ||
                     pq_has_suffix(path, ".yml") || access(path, F_OK) == 0;
    if (!file_like) {
        const pq_pipeline_preset *pr = pq_pipeline_preset_find(path);
        if (!pr) {
            uint32_t n;
            const pq_pipeline_preset *all = pq_pipeline_presets(&n);
            char names[1024] = "";
            for (uint32_t i = 0; i < n; i++) {
                if (i) pq_buf_add(names, sizeof(names), ", ");
                pq_buf_add(names, sizeof(names), all[i].name);
            }
            return pq_error_set(err, PQ_ERR_USAGE,
                                "pipeline '%s': no such file and no such preset; presets: %s", path,
                                n ? names : "(none)");
        }
        return pq_pipeline_parse(pr->text, pr->len, pr->name, out, err);
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return pq_error_set(err, PQ_ERR_IO, "pipeline '%s': cannot open: %s", path,
                            strerror(errno));
    char *buf = pq_malloc(PQ_PIPELINE_MAX_TEXT + 1);
    if (!buf) {
        fclose(f);
        return pq_error_nomem(err, path);
    }
    size_t n = fread(buf, 1, PQ_PIPELINE_MAX_TEXT + 1, f);
    enum pq_status st = PQ_OK;
    if (ferror(f)) {
        st = pq_error_set(err, PQ_ERR_IO, "pipeline '%s': cannot read: %s", path, strerror(errno));
    } else if (n > PQ_PIPELINE_MAX_TEXT) {
        st = pq_error_set(err, PQ_ERR_INVALID, "%s:1:1: pipeline is larger than %u bytes", path,
                          PQ_PIPELINE_MAX_TEXT);
    }
    fclose(f);
    if (st == PQ_OK) st = pq_pipeline_parse(buf, n, path, out, err);
    pq_free(buf);
    return st;
}
