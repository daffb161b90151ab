/* Text IR printer: graphs, values, nodes and every attribute type in the format of docs/ir.md.
 * Large constants are summarised (stats + SHA-256 prefix) and their bytes go to the sidecar. */
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "text_internal.h"

typedef struct pq_sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} pq_sbuf;

static void pq_sb_reserve(pq_sbuf *sb, size_t extra) {
    if (sb->oom) return;
    if (sb->n + extra + 1 <= sb->cap) return;
    size_t nc = sb->cap ? sb->cap : 256;
    while (nc < sb->n + extra + 1)
        nc *= 2;
    char *np = pq_realloc(sb->p, nc);
    if (!np) {
        sb->oom = true;
        return;
    }
    sb->p = np;
    sb->cap = nc;
}

static void pq_sb_put(pq_sbuf *sb, const char *s, size_t n) {
    pq_sb_reserve(sb, n);
    if (sb->oom) return;
    memcpy(sb->p + sb->n, s, n);
    sb->n += n;
    sb->p[sb->n] = '\0';
}

static void pq_sb_str(pq_sbuf *sb, const char *s) {
    pq_sb_put(sb, s, strlen(s));
}

static void pq_sb_printf(pq_sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pq_sb_printf(pq_sbuf *sb, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) {
        pq_sb_put(sb, small, (size_t)k);
        return;
    }
    pq_sb_reserve(sb, (size_t)k);
    if (sb->oom) return;
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb->n += (size_t)k;
}

static void pq_sb_indent(pq_sbuf *sb, int level) {
    for (int i = 0; i < level; i++)
        pq_sb_put(sb, "  ", 2);
}

/* "..." with \\ \" \n \t \r and \xNN for other control bytes; bytes >= 0x80 are kept (UTF-8). */
static void pq_sb_quoted(pq_sbuf *sb, const char *s) {
    pq_sb_put(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            pq_sb_put(sb, "\\\"", 2);
            break;
        case '\\':
            pq_sb_put(sb, "\\\\", 2);
            break;
        case '\n':
            pq_sb_put(sb, "\\n", 2);
            break;
        case '\t':
            pq_sb_put(sb, "\\t", 2);
            break;
        case '\r':
            pq_sb_put(sb, "\\r", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                pq_sb_printf(sb, "\\x%02x", *p);
            else
                pq_sb_put(sb, (const char *)p, 1);
        }
    }
    pq_sb_put(sb, "\"", 1);
}

static void pq_sb_word(pq_sbuf *sb, const char *s) {
    if (pq_text_plain_word(s))
        pq_sb_str(sb, s);
    else
        pq_sb_quoted(sb, s);
}

static void pq_sb_value(pq_sbuf *sb, const pq_graph *g, uint32_t vid) {
    if (vid == PQ_NONE) {
        pq_sb_put(sb, "_", 1);
        return;
    }
    const char *name = vid < g->n_values ? g->values[vid].name : NULL;
    pq_sb_put(sb, "%", 1);
    if (!name)
        pq_sb_printf(sb, "\"<bad value id %u>\"", vid);
    else if (pq_text_plain_value(name))
        pq_sb_str(sb, name);
    else
        pq_sb_quoted(sb, name);
}

static void pq_sb_type(pq_sbuf *sb, const pq_graph *g, enum pq_dtype dt, const pq_shape *s) {
    pq_sb_str(sb, dt == PQ_DTYPE_UNDEFINED ? "?" : pq_dtype_name(dt));
    if (s->rank < 0) {
        pq_sb_str(sb, "[*]");
        return;
    }
    pq_sb_put(sb, "[", 1);
    for (int i = 0; i < s->rank && i < PQ_MAX_RANK; i++) {
        if (i) pq_sb_put(sb, ", ", 2);
        pq_dim d = s->dims[i];
        if (d.size >= 0)
            pq_sb_printf(sb, "%lld", (long long)d.size);
        else if (d.sym == 0)
            pq_sb_put(sb, "?", 1);
        else
            pq_sb_word(sb, pq_graph_symbol_name(g, d.sym));
    }
    pq_sb_put(sb, "]", 1);
}

static void pq_sb_tensor_type(pq_sbuf *sb, const pq_tensor *t) {
    pq_sb_str(sb, pq_dtype_name(t->dtype));
    pq_sb_put(sb, "[", 1);
    for (int i = 0; i < t->rank; i++)
        pq_sb_printf(sb, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    pq_sb_put(sb, "]", 1);
}

/* One element of a tensor in its exact spelling. */
static void pq_sb_element(pq_sbuf *sb, const pq_tensor *t, size_t i) {
    char buf[48];
    const unsigned char *d = t->data;
    switch (t->dtype) {
    case PQ_DTYPE_F32: {
        float v;
        memcpy(&v, d + 4 * i, 4);
        pq_text_fmt_f32(v, buf, sizeof buf);
        break;
    }
    case PQ_DTYPE_F64: {
        double v;
        memcpy(&v, d + 8 * i, 8);
        pq_text_fmt_f64(v, buf, sizeof buf);
        break;
    }
    case PQ_DTYPE_F16:
    case PQ_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, d + 2 * i, 2);
        if (t->dtype == PQ_DTYPE_F16)
            pq_text_fmt_f16(h, buf, sizeof buf);
        else
            pq_text_fmt_bf16(h, buf, sizeof buf);
        break;
    }
    case PQ_DTYPE_U64: {
        uint64_t v;
        memcpy(&v, d + 8 * i, 8);
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        break;
    }
    case PQ_DTYPE_BOOL:
        snprintf(buf, sizeof buf, "%s", d[i] ? "true" : "false");
        break;
    default:
        snprintf(buf, sizeof buf, "%lld", (long long)pq_dtype_load_i64(t->dtype, d, i));
    }
    pq_sb_str(sb, buf);
}

static void pq_sb_stat(pq_sbuf *sb, const char *key, double v) {
    char buf[48];
    if (isnan(v))
        snprintf(buf, sizeof buf, "nan");
    else if (isinf(v))
        snprintf(buf, sizeof buf, v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, sizeof buf, "%.6g", v);
    pq_sb_printf(sb, "%s %s, ", key, buf);
}

static enum pq_status pq_bin_append(pq_text_bin *bin, const void *data, size_t n, size_t *off,
                                    pq_error *err) {
    size_t start = (bin->size + PQ_TEXT_BIN_ALIGN - 1) / PQ_TEXT_BIN_ALIGN * PQ_TEXT_BIN_ALIGN;
    if (start < bin->size || start + n < start)
        return pq_error_set(err, PQ_ERR_INVALID, "sidecar too large");
    if (start + n > bin->cap) {
        size_t nc = bin->cap ? bin->cap : 4096;
        while (nc < start + n) {
            if (nc > SIZE_MAX / 2) return pq_error_set(err, PQ_ERR_INVALID, "sidecar too large");
            nc *= 2;
        }
        unsigned char *np = pq_realloc(bin->data, nc);
        if (!np) return pq_error_nomem(err, "text IR sidecar");
        bin->data = np;
        bin->cap = nc;
    }
    memset(bin->data + bin->size, 0, start - bin->size);
    if (n) memcpy(bin->data + start, data, n);
    bin->size = start + n;
    *off = start;
    return PQ_OK;
}

/* Tensor literal: "TYPE[= ]{...}" or "TYPE[= ][e0, e1, ...]". */
static enum pq_status pq_sb_tensor(pq_sbuf *sb, const pq_tensor *t, bool with_eq, pq_text_bin *bin,
                                   pq_error *err) {
    int64_t numel;
    PQ_TRY(pq_shape_numel(t->rank, t->dims, &numel, err));
    size_t nbytes = (size_t)numel * pq_dtype_size(t->dtype);
    if (pq_dtype_size(t->dtype) == 0 || t->nbytes < nbytes || (nbytes && !t->data))
        return pq_error_set(err, PQ_ERR_INVALID, "tensor of type %s holds %zu bytes, needs %zu",
                            pq_dtype_name(t->dtype), t->nbytes, nbytes);
    pq_sb_tensor_type(sb, t);
    if (numel <= PQ_TEXT_INLINE_MAX) {
        pq_sb_str(sb, with_eq ? " = [" : " [");
        for (int64_t i = 0; i < numel; i++) {
            if (i) pq_sb_put(sb, ", ", 2);
            pq_sb_element(sb, t, (size_t)i);
        }
        pq_sb_put(sb, "]", 1);
        return PQ_OK;
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t counted = 0;
    for (int64_t i = 0; i < numel; i++) {
        double v = pq_dtype_load(t->dtype, t->data, (size_t)i);
        if (isnan(v)) continue;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        sum += v;
        counted++;
    }
    if (!counted) mn = mx = sum = NAN;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(t->data, nbytes, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6)
        return pq_error_set(err, PQ_ERR_INTERNAL, "SHA-256 failed");
    pq_sb_str(sb, " {");
    pq_sb_stat(sb, "min", mn);
    pq_sb_stat(sb, "max", mx);
    pq_sb_stat(sb, "mean", counted ? sum / (double)counted : NAN);
    pq_sb_str(sb, "sha256 ");
    for (int i = 0; i < 6; i++)
        pq_sb_printf(sb, "%02x", md[i]);
    if (bin) {
        size_t off = 0;
        PQ_TRY(pq_bin_append(bin, t->data, nbytes, &off, err));
        pq_sb_printf(sb, ", bin %zu+%zu", off, nbytes);
    }
    pq_sb_put(sb, "}", 1);
    return PQ_OK;
}

static void pq_sb_float_attr(pq_sbuf *sb, float f) {
    char buf[48];
    pq_text_fmt_f32(f, buf, sizeof buf);
    pq_sb_str(sb, buf);
    if (strspn(buf, "-0123456789") == strlen(buf)) pq_sb_str(sb, ".0"); /* keep it a float */
}

static enum pq_status pq_print_graph(pq_sbuf *sb, const pq_graph *g, int level, pq_text_bin *bin,
                                     pq_error *err);

static enum pq_status pq_print_attr(pq_sbuf *sb, const pq_graph *g, const pq_attr *a, int level,
                                    pq_text_bin *bin, pq_error *err) {
    pq_sb_word(sb, a->name ? a->name : "");
    pq_sb_str(sb, " = ");
    switch (a->type) {
    case PQ_ATTR_INT:
        pq_sb_printf(sb, "%lld", (long long)a->u.i);
        break;
    case PQ_ATTR_FLOAT:
        pq_sb_float_attr(sb, a->u.f);
        break;
    case PQ_ATTR_STRING:
        pq_sb_quoted(sb, a->u.s ? a->u.s : "");
        break;
    case PQ_ATTR_INTS:
        pq_sb_str(sb, a->u.ints.n ? "[" : "ints[");
        for (uint32_t i = 0; i < a->u.ints.n; i++)
            pq_sb_printf(sb, "%s%lld", i ? ", " : "", (long long)a->u.ints.v[i]);
        pq_sb_put(sb, "]", 1);
        break;
    case PQ_ATTR_FLOATS:
        pq_sb_str(sb, a->u.floats.n ? "[" : "floats[");
        for (uint32_t i = 0; i < a->u.floats.n; i++) {
            if (i) pq_sb_put(sb, ", ", 2);
            pq_sb_float_attr(sb, a->u.floats.v[i]);
        }
        pq_sb_put(sb, "]", 1);
        break;
    case PQ_ATTR_STRINGS:
        pq_sb_str(sb, a->u.strings.n ? "[" : "strings[");
        for (uint32_t i = 0; i < a->u.strings.n; i++) {
            if (i) pq_sb_put(sb, ", ", 2);
            pq_sb_quoted(sb, a->u.strings.v[i] ? a->u.strings.v[i] : "");
        }
        pq_sb_put(sb, "]", 1);
        break;
    case PQ_ATTR_TENSOR:
        if (!a->u.tensor)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has no tensor", a->name);
        return pq_sb_tensor(sb, a->u.tensor, false, bin, err);
    case PQ_ATTR_GRAPH:
        if (!a->u.graph)
            return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has no graph", a->name);
        return pq_print_graph(sb, a->u.graph, level, bin, err);
    default:
        return pq_error_set(err, PQ_ERR_INVALID, "attribute '%s' has invalid type %d", a->name,
                            (int)a->type);
    }
    (void)g;
    return PQ_OK;
}

/* Node names print bare after '#' unless they would not read back the same. */
static void pq_sb_node_name(pq_sbuf *sb, const char *name) {
    size_t l = strlen(name);
    bool quote = l == 0 || name[0] == '"' || name[0] == ' ' || name[0] == '\t' ||
                 name[l - 1] == ' ' || name[l - 1] == '\t';
    for (size_t i = 0; i < l && !quote; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) quote = true;
    pq_sb_str(sb, "  # ");
    if (quote)
        pq_sb_quoted(sb, name);
    else
        pq_sb_str(sb, name);
}

static enum pq_status pq_print_node(pq_sbuf *sb, const pq_graph *g, const pq_node *n, int level,
                                    pq_text_bin *bin, pq_error *err) {
    pq_sb_indent(sb, level);
    for (uint32_t o = 0; o < n->n_outputs; o++) {
        if (o) pq_sb_put(sb, ", ", 2);
        uint32_t v = n->outputs[o];
        pq_sb_value(sb, g, v);
        if (v != PQ_NONE && v < g->n_values) {
            const pq_value *val = &g->values[v];
            if (val->dtype != PQ_DTYPE_UNDEFINED || val->shape.rank >= 0) {
                pq_sb_str(sb, ": ");
                pq_sb_type(sb, g, val->dtype, &val->shape);
            }
        }
    }
    if (n->n_outputs) pq_sb_str(sb, " = ");
    pq_sb_str(sb, pq_op_name(n->op));
    pq_sb_put(sb, "(", 1);
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        if (i) pq_sb_put(sb, ", ", 2);
        pq_sb_value(sb, g, n->inputs[i]);
    }
    pq_sb_put(sb, ")", 1);
    if (n->n_attrs) {
        bool multiline = false;
        for (uint32_t a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].type == PQ_ATTR_GRAPH) multiline = true;
        pq_sb_str(sb, multiline ? " {\n" : " {");
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            if (a) pq_sb_str(sb, multiline ? ",\n" : ", ");
            if (multiline) pq_sb_indent(sb, level + 1);
            enum pq_status st = pq_print_attr(sb, g, &n->attrs[a], level + 1, bin, err);
            if (st != PQ_OK)
                return pq_error_prefix(err,
                                       "node '%s' (%s), attribute '%s': ", n->name ? n->name : "",
                                       pq_op_name(n->op), n->attrs[a].name ? n->attrs[a].name : "");
        }
        if (multiline) {
            pq_sb_put(sb, "\n", 1);
            pq_sb_indent(sb, level);
        }
        pq_sb_put(sb, "}", 1);
    }
    if (n->name) pq_sb_node_name(sb, n->name);
    pq_sb_put(sb, "\n", 1);
    return PQ_OK;
}

static enum pq_status pq_print_graph(pq_sbuf *sb, const pq_graph *g, int level, pq_text_bin *bin,
                                     pq_error *err) {
    if (level / 2 > PQ_TEXT_MAX_DEPTH)
        return pq_error_set(err, PQ_ERR_INVALID, "subgraphs nested deeper than %d",
                            PQ_TEXT_MAX_DEPTH);
    pq_sb_str(sb, "graph ");
    if (g->name) {
        pq_sb_word(sb, g->name);
        pq_sb_put(sb, " ", 1);
    }
    pq_sb_str(sb, "{\n");
    int in = level + 1;
    if (!g->parent && g->n_symbols > 1) {
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "symbols ");
        for (uint32_t s = 1; s < g->n_symbols; s++) {
            if (s > 1) pq_sb_put(sb, ", ", 2);
            pq_sb_word(sb, g->symbols[s]);
        }
        pq_sb_put(sb, "\n", 1);
    }
    for (uint32_t i = 0; i < g->n_opsets; i++) {
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "opset ");
        pq_sb_quoted(sb, g->opsets[i].domain ? g->opsets[i].domain : "");
        pq_sb_printf(sb, " %lld\n", (long long)g->opsets[i].version);
    }
    if (g->producer_name) {
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "producer ");
        pq_sb_quoted(sb, g->producer_name);
        pq_sb_put(sb, "\n", 1);
    }
    if (g->ir_version) {
        pq_sb_indent(sb, in);
        pq_sb_printf(sb, "ir_version %lld\n", (long long)g->ir_version);
    }
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        uint32_t v = g->inputs[i];
        if (v >= g->n_values)
            return pq_error_set(err, PQ_ERR_INVALID, "graph input id %u out of range", v);
        const pq_value *val = &g->values[v];
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "input ");
        pq_sb_value(sb, g, v);
        pq_sb_str(sb, ": ");
        if (val->constant) {
            enum pq_status st = pq_sb_tensor(sb, val->constant, true, bin, err);
            if (st != PQ_OK) return pq_error_prefix(err, "input '%s': ", val->name);
        } else {
            pq_sb_type(sb, g, val->dtype, &val->shape);
        }
        pq_sb_put(sb, "\n", 1);
    }
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_value *val = &g->values[v];
        if (!val->constant || (val->flags & PQ_VALUE_INPUT)) continue;
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "const ");
        pq_sb_value(sb, g, v);
        pq_sb_str(sb, ": ");
        enum pq_status st = pq_sb_tensor(sb, val->constant, true, bin, err);
        if (st != PQ_OK) return pq_error_prefix(err, "constant '%s': ", val->name);
        pq_sb_put(sb, "\n", 1);
    }
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_value *val = &g->values[v];
        if (val->outer == PQ_NONE || val->constant || (val->flags & PQ_VALUE_INPUT)) continue;
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "capture ");
        pq_sb_value(sb, g, v);
        pq_sb_str(sb, ": ");
        pq_sb_type(sb, g, val->dtype, &val->shape);
        pq_sb_put(sb, "\n", 1);
    }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        PQ_TRY(pq_print_node(sb, g, &g->nodes[i], in, bin, err));
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        pq_sb_indent(sb, in);
        pq_sb_str(sb, "output ");
        pq_sb_value(sb, g, g->outputs[i]);
        pq_sb_put(sb, "\n", 1);
    }
    pq_sb_indent(sb, level);
    pq_sb_put(sb, "}", 1);
    return PQ_OK;
}

enum pq_status pq_text_print_string(const pq_graph *g, pq_text_bin *bin, char **out,
                                    pq_error *err) {
    *out = NULL;
    if (!g) return pq_error_set(err, PQ_ERR_INVALID, "text: no graph to print");
    pq_sbuf sb = {0};
    pq_sb_printf(&sb, "piqc %d\n", PQ_TEXT_VERSION);
    enum pq_status st = pq_print_graph(&sb, g, 0, bin, err);
    pq_sb_put(&sb, "\n", 1);
    if (st == PQ_OK && sb.oom) st = pq_error_nomem(err, "text IR");
    if (st != PQ_OK) {
        pq_free(sb.p);
        return st;
    }
    *out = sb.p;
    return PQ_OK;
}

enum pq_status pq_text_print(const pq_graph *g, FILE *f, pq_text_bin *bin, pq_error *err) {
    char *s;
    PQ_TRY(pq_text_print_string(g, bin, &s, err));
    size_t n = strlen(s);
    size_t w = fwrite(s, 1, n, f);
    pq_free(s);
    if (w != n || fflush(f) != 0) return pq_error_set(err, PQ_ERR_IO, "text: cannot write the IR");
    return PQ_OK;
}
