/* Pipelines built or changed in code (pq_pipeline_from_passes, pq_pipeline_set_option), written
 * back as YAML (pq_pipeline_print), and the built-in presets embedded from examples/pipelines/. */
#include <string.h>

#include "pipeline.h"
#include "pipeline_internal.h"

enum pq_status pq_pipeline_from_passes(const char *const *names, uint32_t n, pq_pipeline **out,
                                       pq_error *err) {
    *out = NULL;
    enum pq_status st = PQ_OK;
    pq_pipeline *p = pq_pipeline_new("<code>", err);
    if (!p) return PQ_ERR_NOMEM;
    p->entries = pq_calloc(n ? n : 1, sizeof(*p->entries));
    if (!p->entries) {
        st = pq_error_nomem(err, "pipeline entries");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        const pq_pass *pass = pq_pass_find(names[i]);
        if (!pass) {
            uint32_t na;
            const pq_pass *const *all = pq_passes_all(&na);
            char list[2048];
            pq_pass_names_str(all, na, list, sizeof(list));
            st = pq_error_set(err, PQ_ERR_INVALID, "unknown pass '%s'; accepted: %s",
                              names[i] ? names[i] : "(null)", list);
            goto fail;
        }
        st = pq_entry_init(&p->entries[i], pass, err);
        p->n = i + 1;
        if (st == PQ_OK) st = pq_entry_defaults(&p->entries[i], err);
        if (st != PQ_OK) goto fail;
    }
    *out = p;
    return PQ_OK;
fail:
    pq_pipeline_destroy(p);
    return st;
}

enum pq_status pq_pipeline_set_option(pq_pipeline *p, uint32_t entry, const char *name,
                                      const char *value, pq_error *err) {
    if (!p || entry >= p->n)
        return pq_error_set(err, PQ_ERR_USAGE, "pipeline: no entry %u (the pipeline has %u)", entry,
                            p ? p->n : 0);
    pq_pipeline_entry *e = &p->entries[entry];
    const pq_pass *pass = e->pass;
    for (uint32_t i = 0; i < e->opts.n; i++) {
        if (strcmp(e->opts.v[i].schema->name, name) != 0) continue;
        enum pq_status st =
            pq_opt_from_text(pass, e->opts.v[i].schema, value ? value : "", &e->opts.v[i], err);
        if (st == PQ_ERR_INVALID) pq_error_prefix(err, "%s: ", p->source);
        return st;
    }
    char names[1024] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < pass->n_options && used + 64 < sizeof(names); i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                                 pass->options[i].name);
    return pq_error_set(err, PQ_ERR_INVALID, "%s: unknown option '%s' of pass '%s'; accepted: %s",
                        p->source, name ? name : "(null)", pass->name,
                        pass->n_options ? names : "none (the pass has no options)");
}

/* ---- printing ----------------------------------------------------------------------------- */

/* The YAML escape letter of the Unicode line break starting at s (NEL U+0085 'N', LS U+2028
 * 'L', PS U+2029 'P'; YAML reads them as line breaks, even inside quotes), or 0. */
static char pq_yaml_break(const unsigned char *s) {
    if (s[0] == 0xC2 && s[1] == 0x85) return 'N';
    if (s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return s[2] == 0xA8 ? 'L' : 'P';
    return 0;
}

/* True when s can be written as a plain YAML scalar and reads back as the same string. */
static bool pq_plain_ok(const char *s) {
    if (!s[0]) return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0])) return false;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x20 || u == 0x7f || strchr(",[]{}#\"'", *c)) return false;
        if (pq_yaml_break((const unsigned char *)c)) return false;
        if (*c == ':' && (c[1] == ' ' || c[1] == '\0')) return false;
    }
    return s[strlen(s) - 1] != ' ';
}

static void pq_print_scalar(FILE *f, const char *s, bool force_quotes) {
    if (!force_quotes && pq_plain_ok(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char br = pq_yaml_break(c);
        if (br) { /* escaped, or it would read back as a line break */
            fprintf(f, "\\%c", br);
            c += br == 'N' ? 1 : 2;
        } else if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* Key bytes up to which a mapping key is printed as an implicit (simple) key. */
#define PQ_YAML_SHORT_KEY 200

static void pq_print_ynode(FILE *f, const pq_ynode *y, int indent) {
    switch (y->kind) {
    case PQ_YNODE_SCALAR:
        fputc(' ', f);
        if (!y->quoted && !y->scalar[0]) {
            fputs("\"\"", f); /* cannot happen for train: values; kept well-formed anyway */
        } else {
            pq_print_scalar(f, y->scalar, y->quoted);
        }
        fputc('\n', f);
        break;
    case PQ_YNODE_SEQ:
        if (!y->n) {
            fputs(" []\n", f);
            break;
        }
        fputc('\n', f);
        for (uint32_t i = 0; i < y->n; i++) {
            fprintf(f, "%*s-", indent, "");
            pq_print_ynode(f, &y->items[i], indent + 2);
        }
        break;
    case PQ_YNODE_MAP:
        if (!y->n) {
            fputs(" {}\n", f);
            break;
        }
        fputc('\n', f);
        for (uint32_t i = 0; i < y->n; i++) {
            /* YAML allows at most 1024 characters in an implicit key; a long one (escapes
             * included, at most 4 characters a byte) is written as an explicit "? key" entry */
            bool explicit_key = strlen(y->keys[i].scalar) > PQ_YAML_SHORT_KEY;
            fprintf(f, "%*s%s", indent, "", explicit_key ? "? " : "");
            pq_print_scalar(f, y->keys[i].scalar, y->keys[i].quoted);
            if (explicit_key) fprintf(f, "\n%*s", indent, "");
            fputc(':', f);
            pq_print_ynode(f, &y->items[i], indent + 2);
        }
        break;
    }
}

static void pq_print_value(FILE *f, const pq_opt_value *v) {
    switch (v->schema->type) {
    case PQ_OPT_BOOL:
        fputs(v->b ? "true" : "false", f);
        break;
    case PQ_OPT_INT:
        fprintf(f, "%lld", (long long)v->i);
        break;
    case PQ_OPT_FLOAT:
        fprintf(f, "%.17g", v->f);
        break;
    case PQ_OPT_STRING:
        pq_print_scalar(f, v->s, true);
        break;
    case PQ_OPT_ENUM:
        pq_print_scalar(f, v->s, false);
        break;
    case PQ_OPT_STRING_LIST:
    case PQ_OPT_ENUM_LIST:
        fputc('[', f);
        for (uint32_t i = 0; i < v->n_list; i++) {
            if (i) fputs(", ", f);
            pq_print_scalar(f, v->list[i], v->schema->type == PQ_OPT_STRING_LIST);
        }
        fputc(']', f);
        break;
    }
}

enum pq_status pq_pipeline_print(FILE *f, const pq_pipeline *p, pq_error *err) {
    fprintf(f, "# pipeline from %s, every option shown\npasses:%s\n", p->source, p->n ? "" : " []");
    for (uint32_t i = 0; i < p->n; i++) {
        const pq_pipeline_entry *e = &p->entries[i];
        uint32_t n_set = 0;
        for (uint32_t k = 0; k < e->opts.n; k++)
            n_set += e->opts.v[k].set;
        fprintf(f, "  - %s%s\n", e->pass->name, n_set ? ":" : "");
        for (uint32_t k = 0; k < e->opts.n; k++) {
            if (!e->opts.v[k].set) continue;
            fprintf(f, "      %s: ", e->opts.v[k].schema->name);
            pq_print_value(f, &e->opts.v[k]);
            fputc('\n', f);
        }
    }
    if (p->train) {
        fputs("train:", f);
        pq_print_ynode(f, p->train, 2);
    }
    if (fflush(f) != 0 || ferror(f))
        return pq_error_set(err, PQ_ERR_IO, "pipeline '%s': write error", p->source);
    return PQ_OK;
}

/* ---- presets ------------------------------------------------------------------------------ */

const pq_pipeline_preset *pq_pipeline_presets(uint32_t *n) {
    if (n) *n = pq_pipeline_preset_count;
    return pq_pipeline_preset_table;
}

const pq_pipeline_preset *pq_pipeline_preset_find(const char *name) {
    for (uint32_t i = 0; name && i < pq_pipeline_preset_count; i++)
        if (strcmp(pq_pipeline_preset_table[i].name, name) == 0)
            return &pq_pipeline_preset_table[i];
    return NULL;
}
