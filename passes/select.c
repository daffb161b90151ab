/* Weight selection shared by the weight-rewriting passes: the common option schema and the list
 * of (node, weight) layers that pass the targets / include / exclude / min-elements / skip filters.
 */
#include "select.h"

#include <regex.h>
#include <string.h>

const char *const pq_select_target_choices[] = {"MatMul", "Gemm", "Conv", NULL};
const char *const pq_select_skip_choices[] = {"first", "last", NULL};

const pq_pass_option pq_select_options[PQ_SELECT_N_OPTIONS] = {PQ_SELECT_OPTION_ENTRIES};

bool pq_select_view(const pq_graph *g, uint32_t nid, pq_weight_view *wv) {
    if (nid >= g->n_nodes) return false;
    return pq_select_view_of(g, nid, pq_node_input(&g->nodes[nid], 1), wv);
}

bool pq_select_view_of(const pq_graph *g, uint32_t nid, uint32_t v, pq_weight_view *wv) {
    if (nid >= g->n_nodes || v >= g->n_values) return false;
    const pq_node *n = &g->nodes[nid];
    if (n->op != PQ_OP_MATMUL && n->op != PQ_OP_GEMM && n->op != PQ_OP_CONV &&
        n->op != PQ_OP_CONV_TRANSPOSE)
        return false;
    const pq_value *val = &g->values[v];
    const pq_tensor *t = val->constant;
    /* an initializer that is also a graph input can be overridden at run time: not a weight */
    if (!t || t->dtype != PQ_DTYPE_F32 || t->rank < 2 || (val->flags & PQ_VALUE_INPUT))
        return false;
    memset(wv, 0, sizeof *wv);
    wv->value = v;
    wv->name = val->name;
    wv->node_name = n->name;
    wv->op = n->op;
    wv->rank = t->rank;
    memcpy(wv->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    wv->batch = 1;
    switch (n->op) {
    case PQ_OP_MATMUL:
        for (int d = 0; d < t->rank - 2; d++)
            wv->batch *= t->dims[d];
        wv->rows = t->dims[t->rank - 1];
        wv->cols = t->dims[t->rank - 2];
        wv->transposed = true;
        return true;
    case PQ_OP_GEMM:
        if (t->rank != 2) return false;
        if (pq_node_attr_int(n, "transB", 0)) {
            wv->rows = t->dims[0];
            wv->cols = t->dims[1];
        } else {
            wv->rows = t->dims[1];
            wv->cols = t->dims[0];
            wv->transposed = true;
        }
        return true;
    default: /* Conv, ConvTranspose: stored layout, dims[0] rows */
        wv->rows = t->dims[0];
        wv->cols = t->dims[0] ? pq_tensor_numel(t) / t->dims[0] : 0;
        return true;
    }
}

/* True when name ends with ".lora_A" or ".lora_B" (an adapter constant of the lora pass). */
static bool pq_select_is_adapter(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n >= 7 && (strcmp(name + n - 7, ".lora_A") == 0 || strcmp(name + n - 7, ".lora_B") == 0);
}

/* True when list (n entries) contains s. */
static bool pq_list_has(const char *const *list, uint32_t n, const char *s) {
    for (uint32_t i = 0; i < n; i++)
        if (list[i] && strcmp(list[i], s) == 0) return true;
    return false;
}

/* Bounds on a user's regular expression before regcomp: glibc's regcomp copies the subtree of a
 * quantified expression for every repetition, so stacked or nested quantifiers ("y++++...",
 * "((a+)+)+", "a{100}{100}") make it allocate exponentially (found by fuzzing the pipeline
 * reader: 118 stacked '+' exhausted 2 GB). The bound is conservative: the product over all
 * quantifiers of their repetition factor ('*', '+', '?': 2; {n,m}: max(n, m) + 1), times the
 * pattern length, stays below 2^16 (so regcomp builds at most tens of thousands of nodes), and the
 * pattern is at most 256 bytes. Returns a static reason, or NULL when acceptable. */
#define PQ_REGEX_MAX_LEN 256
#define PQ_REGEX_MAX_EXPANSION 65536.0
/* The index of the ']' that closes the bracket expression opening at pat[i] == '[' (n when it
 * is unterminated): a ']' first in the list (after an optional '^') is a member, "[:", "[." and
 * "[=" open a class / collating element / equivalence class that ends at ":]", ".]", "=]"; any
 * other ']' closes (a '[' inside the list is an ordinary member). */
static size_t pq_regex_bracket_end(const char *pat, size_t n, size_t i) {
    size_t k = i + 1;
    if (k < n && pat[k] == '^') k++;
    if (k < n && pat[k] == ']') k++;
    for (; k < n; k++) {
        if (pat[k] == ']') return k;
        if (pat[k] == '[' && k + 1 < n &&
            (pat[k + 1] == ':' || pat[k + 1] == '.' || pat[k + 1] == '=')) {
            char d = pat[k + 1];
            size_t e = k + 2;
            while (e + 1 < n && !(pat[e] == d && pat[e + 1] == ']'))
                e++;
            if (e + 1 >= n) return n;
            k = e + 1; /* the ']' of ":]" */
        }
    }
    return n;
}

static const char *pq_regex_too_complex(const char *pat) {
    size_t n = strlen(pat);
    if (n > PQ_REGEX_MAX_LEN) return "longer than 256 bytes";
    double expansion = 1.0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\') {
            i++;
            continue;
        }
        if (c == '[') {
            i = pq_regex_bracket_end(pat, n, i);
            continue;
        }
        double f = 1.0;
        if (c == '*' || c == '+' || c == '?') {
            f = 2.0;
        } else if (c == '{') {
            double hi = 0.0, cur = 0.0;
            size_t k = i + 1;
            for (; k < n && pat[k] != '}'; k++) {
                if (pat[k] >= '0' && pat[k] <= '9') {
                    cur = cur * 10.0 + (pat[k] - '0');
                    if (cur > hi) hi = cur;
                } else {
                    cur = 0.0;
                }
            }
            f = hi + 1.0 < 2.0 ? 2.0 : hi + 1.0;
            i = k;
        }
        expansion *= f;
        if (expansion * (double)(n + 1) > PQ_REGEX_MAX_EXPANSION)
            return "too many or too large repetitions (stacked or nested quantifiers)";
    }
    return NULL;
}

enum pq_status pq_select_regcomp(const pq_pass_opts *o, const char *name, regex_t *re, bool *have,
                                 pq_error *err) {
    *have = false;
    const char *pat = pq_opts_string(o, name);
    if (!pat) return PQ_OK;
    const char *why = pq_regex_too_complex(pat);
    if (why)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "option '%s': regular expression '%.64s%s' is too complex: %s", name,
                            pat, strlen(pat) > 64 ? "..." : "", why);
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, re, msg, sizeof msg);
        return pq_error_set(err, PQ_ERR_INVALID, "option '%s': invalid regular expression '%s': %s",
                            name, pat, msg);
    }
    *have = true;
    return PQ_OK;
}

/* True when re matches the node name or the weight name. */
static bool pq_select_match(const regex_t *re, const char *node_name, const char *weight_name) {
    if (node_name && regexec(re, node_name, 0, NULL, 0) == 0) return true;
    if (weight_name && regexec(re, weight_name, 0, NULL, 0) == 0) return true;
    return false;
}

enum pq_status pq_select_check(const pq_pass_opts *o, pq_error *err) {
    static const char *const names[] = {"include", "exclude"};
    for (int k = 0; k < 2; k++) {
        regex_t re;
        bool have = false;
        PQ_TRY(pq_select_regcomp(o, names[k], &re, &have, err));
        if (have) regfree(&re);
    }
    return PQ_OK;
}

enum pq_status pq_select_weights(const pq_graph *g, const pq_pass_opts *o, pq_weight_target **out,
                                 uint32_t *n_out, pq_error *err) {
    return pq_select_weights_ex(g, o, 0, out, n_out, err);
}

enum pq_status pq_select_weights_ex(const pq_graph *g, const pq_pass_opts *o, unsigned flags,
                                    pq_weight_target **out, uint32_t *n_out, pq_error *err) {
    enum pq_status st = PQ_OK;
    regex_t inc, exc;
    bool have_inc = false, have_exc = false;
    pq_weight_target *list = NULL;
    *out = NULL;
    *n_out = 0;

    uint32_t n_targets = 0, n_skip = 0;
    const char *const *targets = pq_opts_list(o, "targets", &n_targets);
    const char *const *skip = pq_opts_list(o, "skip", &n_skip);
    int64_t min_el = pq_opts_is_set(o, "min-elements") ? pq_opts_int(o, "min-elements") : 1024;
    bool want[3] = {true, true, true}; /* MatMul, Gemm, Conv */
    if (pq_opts_is_set(o, "targets")) {
        want[0] = pq_list_has(targets, n_targets, "MatMul");
        want[1] = pq_list_has(targets, n_targets, "Gemm");
        want[2] = pq_list_has(targets, n_targets, "Conv");
    }

    PQ_TRY_GOTO(st, pq_select_regcomp(o, "include", &inc, &have_inc, err), cleanup);
    PQ_TRY_GOTO(st, pq_select_regcomp(o, "exclude", &exc, &have_exc, err), cleanup);

    list = pq_malloc(sizeof *list * (g->n_nodes ? g->n_nodes : 1));
    if (!list) {
        st = pq_error_nomem(err, "weight selection");
        goto cleanup;
    }
    uint32_t cnt = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        bool ok = (nd->op == PQ_OP_MATMUL && want[0]) || (nd->op == PQ_OP_GEMM && want[1]) ||
                  (nd->op == PQ_OP_CONV && want[2]);
        if (!ok) continue;
        pq_weight_view wv;
        uint32_t fq = PQ_NONE;
        uint32_t w = pq_node_input(nd, 1);
        if ((flags & PQ_SELECT_THROUGH_FAKE_QUANT) && w != PQ_NONE && w < g->n_values) {
            uint32_t p = g->values[w].producer;
            if (p != PQ_NONE && p < g->n_nodes && g->nodes[p].op == PQ_OP_FAKE_QUANT) {
                fq = p;
                w = pq_node_input(&g->nodes[p], 0);
            }
        }
        if (!pq_select_view_of(g, i, w, &wv)) continue;
        if (pq_tensor_numel(g->values[wv.value].constant) < min_el) continue;
        if (pq_select_is_adapter(wv.name)) continue;
        if (have_inc && !pq_select_match(&inc, nd->name, wv.name)) continue;
        if (have_exc && pq_select_match(&exc, nd->name, wv.name)) continue;
        list[cnt].node = i;
        list[cnt].slot = 1;
        list[cnt].view = wv;
        list[cnt].fake_quant = fq;
        cnt++;
    }
    uint32_t first = 0;
    if (cnt > 0 && pq_list_has(skip, n_skip, "last")) cnt--;
    if (cnt > 0 && pq_list_has(skip, n_skip, "first")) first = 1;
    if (first) memmove(list, list + 1, sizeof *list * (cnt - 1));
    cnt -= first;
    if (cnt == 0) {
        pq_free(list);
        list = NULL;
    }
    *out = list;
    *n_out = cnt;
    list = NULL;

cleanup:
    if (have_inc) regfree(&inc);
    if (have_exc) regfree(&exc);
    pq_free(list);
    return st;
}
