/* Tests of the text IR: exact round trips (print(parse(print(g))) == print(g), same values and
 * attributes) over every attribute type, dtype, symbolic dims, subgraphs, big constants with a
 * sidecar and quoted names; and parse errors with line/column. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/ir.h"

static pq_error err;

static uint32_t add_val(pq_graph *g, const char *name, enum pq_dtype dt, const pq_shape *s) {
    uint32_t id;
    cr_assert_eq(pq_graph_add_value(g, name, dt, s, &id, &err), PQ_OK, "%s", err.msg);
    return id;
}

static pq_tensor *tensor(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

static uint32_t add_const(pq_graph *g, const char *name, pq_tensor *t) {
    uint32_t id = add_val(g, name, t->dtype, NULL);
    cr_assert_eq(pq_graph_set_constant(g, id, t, &err), PQ_OK);
    return id;
}

static uint32_t node(pq_graph *g, enum pq_op op, const char *name, const uint32_t *in, uint32_t nin,
                     const uint32_t *out, uint32_t nout) {
    uint32_t nid;
    cr_assert_eq(pq_graph_add_node(g, op, name, in, nin, out, nout, &nid, &err), PQ_OK, "%s",
                 err.msg);
    return nid;
}

/* A subgraph reading outer value `cap` (captured) and returning Neg of it, optionally nesting
 * another If inside. */
static pq_graph *branch(pq_graph *parent, const char *name, const char *cap, int nest) {
    pq_graph *s = pq_graph_create(parent, &err);
    s->name = pq_graph_strdup(s, name);
    uint32_t c;
    cr_assert_eq(pq_graph_capture(s, cap, &c, &err), PQ_OK, "%s", err.msg);
    uint32_t o = add_val(s, "o", PQ_DTYPE_UNDEFINED, NULL);
    if (nest) {
        uint32_t cond;
        cr_assert_eq(pq_graph_capture(s, "cond", &cond, &err), PQ_OK, "%s", err.msg);
        uint32_t nid = node(s, PQ_OP_IF, "inner_if", &cond, 1, &o, 1);
        cr_assert_eq(pq_node_set_graph(s, nid, "then_branch", branch(s, "deep_then", cap, 0), &err),
                     PQ_OK);
        cr_assert_eq(pq_node_set_graph(s, nid, "else_branch", branch(s, "deep_else", cap, 0), &err),
                     PQ_OK);
    } else {
        node(s, PQ_OP_NEG, NULL, &c, 1, &o, 1);
    }
    pq_graph_add_output(s, o, &err);
    return s;
}

static pq_graph *rich_graph(void) {
    pq_graph *g = pq_graph_create(NULL, &err);
    g->name = pq_graph_strdup(g, "main_graph");
    g->producer_name = pq_graph_strdup(g, "hand \"built\"");
    g->ir_version = 8;
    pq_graph_add_opset(g, "", 17, &err);
    pq_graph_add_opset(g, "com.example", 1, &err);
    uint32_t N = pq_graph_intern_symbol(g, "N");
    uint32_t SEQ = pq_graph_intern_symbol(g, "seq len");
    pq_shape sx = {2, {{-1, N}, {3, 0}}};
    uint32_t x = add_val(g, "x", PQ_DTYPE_F32, &sx);
    pq_graph_add_input(g, x, &err);
    pq_shape sq = {3, {{-1, SEQ}, {-1, 0}, {2, 0}}};
    uint32_t q = add_val(g, "onnx::weird name\n\"q\"", PQ_DTYPE_I64, &sq);
    pq_graph_add_input(g, q, &err);
    uint32_t r = add_val(g, "unknown_rank", PQ_DTYPE_U8, NULL);
    pq_graph_add_input(g, r, &err);
    pq_shape s2 = pq_shape_from_dims(1, (int64_t[]){2});
    uint32_t u = add_val(g, "untyped", PQ_DTYPE_UNDEFINED, &s2);
    pq_graph_add_input(g, u, &err);
    pq_shape s0 = pq_shape_from_dims(0, NULL);
    uint32_t cond = add_val(g, "cond", PQ_DTYPE_BOOL, &s0);
    pq_graph_add_input(g, cond, &err);
    /* input with a default (initializer) */
    pq_tensor *def = tensor(PQ_DTYPE_F32, 1, (int64_t[]){3});
    ((float *)def->data)[0] = 0.1f;
    ((float *)def->data)[1] = -2.5f;
    ((float *)def->data)[2] = 1e-40f; /* subnormal */
    uint32_t dflt = add_const(g, "with_default", def);
    pq_graph_add_input(g, dflt, &err);

    /* small constants of every dtype with edge values */
    for (int dt = PQ_DTYPE_F32; dt < PQ_DTYPE_COUNT; dt++) {
        pq_tensor *t = tensor((enum pq_dtype)dt, 2, (int64_t[]){2, 2});
        for (int i = 0; i < 4; i++)
            pq_dtype_store(t->dtype, t->data, (size_t)i, i * 1.5 - 1);
        char name[32];
        snprintf(name, sizeof name, "c_%s", pq_dtype_name(t->dtype));
        add_const(g, name, t);
    }
    pq_tensor *sp = tensor(PQ_DTYPE_F32, 1, (int64_t[]){7});
    float *f = sp->data;
    f[0] = INFINITY, f[1] = -INFINITY, f[2] = NAN, f[3] = -0.0f, f[4] = 3.4028235e38f,
    f[5] = 1.17549435e-38f;
    uint32_t odd_nan = 0x7fc00123u;
    memcpy(&f[6], &odd_nan, 4);
    add_const(g, "specials", sp);
    pq_tensor *d64 = tensor(PQ_DTYPE_F64, 1, (int64_t[]){3});
    ((double *)d64->data)[0] = 0.1;
    ((double *)d64->data)[1] = 1.0 / 3.0;
    ((double *)d64->data)[2] = -NAN;
    add_const(g, "doubles", d64);
    pq_tensor *h16 = tensor(PQ_DTYPE_F16, 1, (int64_t[]){4});
    uint16_t hv[4] = {0x0001, 0x3555, 0x7bff, 0x7e01};
    memcpy(h16->data, hv, 8);
    add_const(g, "halfs", h16);
    pq_tensor *i64 = tensor(PQ_DTYPE_I64, 1, (int64_t[]){2});
    ((int64_t *)i64->data)[0] = INT64_MIN;
    ((int64_t *)i64->data)[1] = INT64_MAX;
    add_const(g, "extremes", i64);
    pq_tensor *u64 = tensor(PQ_DTYPE_U64, 0, NULL);
    *(uint64_t *)u64->data = UINT64_MAX;
    add_const(g, "u64max", u64);
    add_const(g, "empty", tensor(PQ_DTYPE_I32, 2, (int64_t[]){0, 5}));
    /* big constants: summarised, bytes in the sidecar */
    pq_tensor *big = tensor(PQ_DTYPE_F32, 2, (int64_t[]){8, 9});
    for (int i = 0; i < 72; i++)
        ((float *)big->data)[i] = sinf((float)i) * 0.7f;
    uint32_t w = add_const(g, "conv.weight", big);
    pq_tensor *bigb = tensor(PQ_DTYPE_BOOL, 1, (int64_t[]){17});
    for (int i = 0; i < 17; i++)
        ((unsigned char *)bigb->data)[i] = (unsigned char)(i % 3 == 0);
    add_const(g, "mask", bigb);
    pq_tensor *bigi = tensor(PQ_DTYPE_I8, 1, (int64_t[]){100});
    for (int i = 0; i < 100; i++)
        ((int8_t *)bigi->data)[i] = (int8_t)(i * 7);
    add_const(g, "codes", bigi);

    /* nodes */
    uint32_t h = add_val(g, "h", PQ_DTYPE_F32, &sx);
    node(g, PQ_OP_RELU, "relu_1", &x, 1, &h, 1);
    uint32_t h2 = add_val(g, "h2", PQ_DTYPE_UNDEFINED, NULL);
    uint32_t mm[2] = {h, w};
    uint32_t mmn = node(g, PQ_OP_MATMUL, "  spaced name ", mm, 2, &h2, 1);
    (void)mmn;
    uint32_t parts[3] = {add_val(g, "p0", PQ_DTYPE_UNDEFINED, NULL), PQ_NONE,
                         add_val(g, "p2", PQ_DTYPE_UNDEFINED, NULL)};
    uint32_t sn = node(g, PQ_OP_SPLIT, "split", &h2, 1, parts, 3);
    pq_node_set_int(g, sn, "axis", -1, &err);
    pq_node_set_ints(g, sn, "split", NULL, 0, &err);
    uint32_t cl = add_val(g, "clipped", PQ_DTYPE_UNDEFINED, NULL);
    uint32_t clin[3] = {parts[0], PQ_NONE, parts[2]};
    node(g, PQ_OP_CLIP, "clip", clin, 3, &cl, 1);
    /* a node carrying every attribute type */
    uint32_t k = add_val(g, "k", PQ_DTYPE_F32, NULL);
    uint32_t kn = node(g, PQ_OP_IDENTITY, "attrs", &cl, 1, &k, 1);
    pq_node_set_int(g, kn, "an_int", INT64_MIN, &err);
    pq_node_set_float(g, kn, "one", 1.0f, &err);
    pq_node_set_float(g, kn, "tenth", 0.1f, &err);
    pq_node_set_float(g, kn, "neg_zero", -0.0f, &err);
    pq_node_set_float(g, kn, "big", 1e30f, &err);
    pq_node_set_float(g, kn, "inf", -INFINITY, &err);
    pq_node_set_float(g, kn, "nan", NAN, &err);
    pq_node_set_string(g, kn, "s", "tab\there \"quoted\" back\\slash \x01 é", &err);
    pq_node_set_string(g, kn, "empty_s", "", &err);
    pq_node_set_ints(g, kn, "ints", (int64_t[]){1, -2, 3}, 3, &err);
    pq_node_set_floats(g, kn, "floats", (float[]){1.0f, 2.5f, -1e-7f}, 3, &err);
    pq_node_set_floats(g, kn, "no_floats", NULL, 0, &err);
    pq_node_set_strings(g, kn, "strs", (const char *[]){"a", "b c", ""}, 3, &err);
    pq_node_set_strings(g, kn, "no_strs", NULL, 0, &err);
    pq_tensor *ta = tensor(PQ_DTYPE_I64, 1, (int64_t[]){2});
    ((int64_t *)ta->data)[0] = 1, ((int64_t *)ta->data)[1] = -1;
    pq_node_set_tensor(g, kn, "small_t", ta, &err);
    pq_tensor *tb = tensor(PQ_DTYPE_F16, 2, (int64_t[]){4, 5});
    for (int i = 0; i < 20; i++)
        ((uint16_t *)tb->data)[i] = pq_f32_to_f16((float)i / 3);
    pq_node_set_tensor(g, kn, "big_t", tb, &err);
    pq_node_set_int(g, kn, "weird attr-name", 7, &err);
    /* If with subgraphs capturing outer values, one nested two deep */
    uint32_t y = add_val(g, "y", PQ_DTYPE_F32, &sx);
    uint32_t ifn = node(g, PQ_OP_IF, "if_0", &cond, 1, &y, 1);
    cr_assert_eq(pq_node_set_graph(g, ifn, "then_branch", branch(g, "then_body", "k", 1), &err),
                 PQ_OK);
    cr_assert_eq(pq_node_set_graph(g, ifn, "else_branch", branch(g, "else_body", "h", 0), &err),
                 PQ_OK);
    pq_graph_add_output(g, y, &err);
    pq_graph_add_output(g, parts[2], &err);
    return g;
}

static char *print_g(const pq_graph *g, pq_text_bin *bin) {
    char *s = NULL;
    cr_assert_eq(pq_text_print_string(g, bin, &s, &err), PQ_OK, "%s", err.msg);
    return s;
}

static pq_graph *parse_ok(const char *text, const pq_text_bin *bin) {
    pq_graph *g = NULL;
    pq_error_clear(&err);
    enum pq_status st =
        pq_text_parse(text, strlen(text), bin ? bin->data : NULL, bin ? bin->size : 0, &g, &err);
    cr_assert_eq(st, PQ_OK, "%s\n--- text ---\n%s", err.msg, text);
    return g;
}

static void assert_tensor_eq(const pq_tensor *a, const pq_tensor *b, const char *what) {
    cr_assert_not_null(a, "%s", what);
    cr_assert_not_null(b, "%s", what);
    cr_assert_eq(a->dtype, b->dtype, "%s", what);
    cr_assert_eq(a->rank, b->rank, "%s", what);
    for (int i = 0; i < a->rank; i++)
        cr_assert_eq(a->dims[i], b->dims[i], "%s", what);
    size_t n = (size_t)pq_tensor_numel(a) * pq_dtype_size(a->dtype);
    cr_assert_eq(memcmp(a->data, b->data, n), 0, "%s: data differs", what);
}

/* Structural equality by names (ids may be renumbered): values, constants, nodes, attributes. */
static void assert_graph_eq(const pq_graph *a, const pq_graph *b) {
    cr_assert_str_eq(a->name ? a->name : "", b->name ? b->name : "");
    cr_assert_eq(a->n_nodes, b->n_nodes);
    cr_assert_eq(a->n_inputs, b->n_inputs);
    cr_assert_eq(a->n_outputs, b->n_outputs);
    cr_assert_eq(a->n_opsets, b->n_opsets);
    cr_assert_eq(a->ir_version, b->ir_version);
    for (uint32_t v = 0; v < a->n_values; v++) {
        const pq_value *va = &a->values[v];
        uint32_t bv = pq_graph_find_value(b, va->name);
        cr_assert_neq(bv, PQ_NONE, "value '%s' lost", va->name);
        const pq_value *vb = &b->values[bv];
        cr_assert_eq(va->dtype, vb->dtype, "value '%s' dtype", va->name);
        cr_assert_eq(va->shape.rank, vb->shape.rank, "value '%s' rank", va->name);
        for (int d = 0; d < va->shape.rank; d++) {
            cr_assert_eq(va->shape.dims[d].size, vb->shape.dims[d].size, "'%s' dim %d", va->name,
                         d);
            if (va->shape.dims[d].size < 0)
                cr_assert_str_eq(pq_graph_symbol_name(a, va->shape.dims[d].sym),
                                 pq_graph_symbol_name(b, vb->shape.dims[d].sym));
        }
        cr_assert_eq(va->flags, vb->flags, "value '%s' flags", va->name);
        cr_assert_eq(va->outer == PQ_NONE, vb->outer == PQ_NONE, "value '%s' capture", va->name);
        if (va->outer != PQ_NONE)
            cr_assert_str_eq(a->parent->values[va->outer].name, b->parent->values[vb->outer].name);
        cr_assert_eq(va->constant != NULL, vb->constant != NULL, "value '%s' constant", va->name);
        if (va->constant) assert_tensor_eq(va->constant, vb->constant, va->name);
    }
    for (uint32_t i = 0; i < a->n_nodes; i++) {
        const pq_node *na = &a->nodes[i], *nb = &b->nodes[i];
        cr_assert_str_eq(na->name, nb->name);
        cr_assert_eq(na->op, nb->op);
        cr_assert_eq(na->n_inputs, nb->n_inputs);
        cr_assert_eq(na->n_outputs, nb->n_outputs);
        for (uint32_t k = 0; k < na->n_inputs; k++) {
            if (na->inputs[k] == PQ_NONE)
                cr_assert_eq(nb->inputs[k], PQ_NONE);
            else
                cr_assert_str_eq(a->values[na->inputs[k]].name, b->values[nb->inputs[k]].name);
        }
        cr_assert_eq(na->n_attrs, nb->n_attrs);
        for (uint32_t k = 0; k < na->n_attrs; k++) {
            const pq_attr *x = &na->attrs[k], *y = &nb->attrs[k];
            cr_assert_str_eq(x->name, y->name);
            cr_assert_eq(x->type, y->type, "attribute '%s' type", x->name);
            switch (x->type) {
            case PQ_ATTR_INT:
                cr_assert_eq(x->u.i, y->u.i);
                break;
            case PQ_ATTR_FLOAT:
                cr_assert_eq(memcmp(&x->u.f, &y->u.f, 4), 0, "attr %s", x->name);
                break;
            case PQ_ATTR_STRING:
                cr_assert_str_eq(x->u.s, y->u.s);
                break;
            case PQ_ATTR_INTS:
                cr_assert_eq(x->u.ints.n, y->u.ints.n);
                for (uint32_t j = 0; j < x->u.ints.n; j++)
                    cr_assert_eq(x->u.ints.v[j], y->u.ints.v[j]);
                break;
            case PQ_ATTR_FLOATS:
                cr_assert_eq(x->u.floats.n, y->u.floats.n);
                if (x->u.floats.n)
                    cr_assert_eq(memcmp(x->u.floats.v, y->u.floats.v, 4 * x->u.floats.n), 0);
                break;
            case PQ_ATTR_STRINGS:
                cr_assert_eq(x->u.strings.n, y->u.strings.n);
                for (uint32_t j = 0; j < x->u.strings.n; j++)
                    cr_assert_str_eq(x->u.strings.v[j], y->u.strings.v[j]);
                break;
            case PQ_ATTR_TENSOR:
                assert_tensor_eq(x->u.tensor, y->u.tensor, x->name);
                break;
            case PQ_ATTR_GRAPH:
                assert_graph_eq(x->u.graph, y->u.graph);
                break;
            }
        }
    }
}

Test(text, roundtrip_rich_graph_with_sidecar) {
    pq_graph *g = rich_graph();
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    pq_text_bin bin1 = {0}, bin2 = {0};
    char *t1 = print_g(g, &bin1);
    cr_assert_gt(bin1.size, 0);
    pq_graph *g2 = parse_ok(t1, &bin1);
    char *t2 = print_g(g2, &bin2);
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(bin1.size, bin2.size);
    cr_assert_eq(memcmp(bin1.data, bin2.data, bin1.size), 0);
    assert_graph_eq(g, g2);
    cr_assert_eq(pq_graph_verify_structure(g2, &err), PQ_OK, "%s", err.msg);
    /* symbol ids identical thanks to the symbols line */
    cr_assert_eq(g2->n_symbols, g->n_symbols);
    for (uint32_t s = 1; s < g->n_symbols; s++)
        cr_assert_str_eq(g->symbols[s], g2->symbols[s]);
    pq_free(t1);
    pq_free(t2);
    pq_text_bin_free(&bin1);
    pq_text_bin_free(&bin2);
    pq_graph_destroy(g);
    pq_graph_destroy(g2);
}

Test(text, format_is_readable) {
    pq_graph *g = rich_graph();
    pq_text_bin bin = {0};
    char *t = print_g(g, &bin);
    const char *expect[] = {
        "piqc 1\ngraph main_graph {\n  symbols N, \"seq len\"\n  opset \"\" 17\n",
        "  producer \"hand \\\"built\\\"\"\n  ir_version 8\n",
        "  input %x: f32[N, 3]\n",
        "  input %\"onnx::weird name\\n\\\"q\\\"\": i64[\"seq len\", ?, 2]\n",
        "  input %unknown_rank: u8[*]\n",
        "  input %untyped: ?[2]\n",
        "  input %with_default: f32[3] = [0.1, -2.5, 1e-40]\n",
        "  const %c_f32: f32[2, 2] = [-1, 0.5, 2, 3.5]\n",
        "  const %c_bool: bool[2, 2] = [true, true, true, true]\n",
        "  const %c_u8: u8[2, 2] = [0, 0, 2, 3]\n",
        "  const %halfs: f16[4] = [6e-08, 0.3333, 6.55e+04, nan(0x7e01)]\n",
        "  const %specials: f32[7] = [inf, -inf, nan, -0, 3.4028235e+38, 1.1754944e-38, "
        "nan(0x7fc00123)]\n",
        "  const %doubles: f64[3] = [0.1, 0.3333333333333333, nan(0xfff8000000000000)]\n",
        "  const %extremes: i64[2] = [-9223372036854775808, 9223372036854775807]\n",
        "  const %u64max: u64[] = [18446744073709551615]\n",
        "  const %empty: i32[0, 5] = []\n",
        "  const %conv.weight: f32[8, 9] {min -0.699993, max 0.699938, mean 0.0162711, sha256 ",
        ", bin 0+288}\n",
        "  const %mask: bool[17] {min 0, max 1, mean 0.352941, sha256 ",
        ", bin 320+17}\n",
        "  %h: f32[N, 3] = Relu(%x)  # relu_1\n",
        "  %h2 = MatMul(%h, %conv.weight)  # \"  spaced name \"\n",
        "  %p0, _, %p2 = Split(%h2) {axis = -1, split = ints[]}  # split\n",
        "  %clipped = Clip(%p0, _, %p2)  # clip\n",
        "one = 1.0, tenth = 0.1, neg_zero = -0.0, big = 1e+30, inf = -inf, nan = nan, "
        "s = \"tab\\there \\\"quoted\\\" back\\\\slash \\x01 é\", empty_s = \"\", ints = [1, -2, "
        "3], "
        "floats = [1.0, 2.5, -1e-07], no_floats = floats[], strs = [\"a\", \"b c\", \"\"], no_strs "
        "= strings[], "
        "small_t = i64[2] [1, -1], big_t = f16[4, 5] {min 0, max 6.33203",
        "\"weird attr-name\" = 7}  # attrs\n",
        "  %y: f32[N, 3] = If(%cond) {\n    then_branch = graph then_body {\n      capture %k: "
        "f32[*]\n"
        "      capture %cond: bool[]\n      %o = If(%cond) {\n        then_branch = graph "
        "deep_then {\n"
        "          capture %k: f32[*]\n          %o = Neg(%k)  # Neg_0\n          output %o\n      "
        "  },\n",
        "    else_branch = graph else_body {\n      capture %h: f32[N, 3]\n      %o = Neg(%h)  # "
        "Neg_0\n"
        "      output %o\n    }\n  }  # if_0\n  output %y\n  output %p2\n}\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_assert(strstr(t, expect[i]), "missing:\n%s\n--- in ---\n%s", expect[i], t);
    pq_free(t);
    pq_text_bin_free(&bin);
    pq_graph_destroy(g);
}

static void expect_parse_error(const char *text, const unsigned char *bin, size_t bin_len,
                               enum pq_status want, const char *needle) {
    pq_graph *g = (pq_graph *)1;
    pq_error_clear(&err);
    enum pq_status st = pq_text_parse(text, strlen(text), bin, bin_len, &g, &err);
    cr_assert_eq(st, want, "got %d (%s) for:\n%s", st, err.msg, text);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

#define HDR "piqc 1\ngraph g {\n"

Test(text, parse_errors_name_line_and_column) {
    expect_parse_error(HDR "  input %x: f32[2]\n  %y = Relu(%x) $\n  output %y\n}\n", NULL, 0,
                       PQ_ERR_INVALID, "line 4, column 17: expected a statement");
    expect_parse_error(HDR "  %y = Relu(%nope)\n  output %y\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 13: value 'nope' is used but never defined");
    expect_parse_error(HDR "  input %x: f32[2]\n  %x = Relu(%x)\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 4, column 3: value 'x' is defined twice");
    expect_parse_error(HDR "  input %x: f32[2]\n  %y = Frobnicate(%x)\n}\n", NULL, 0,
                       PQ_ERR_INVALID, "line 4, column 8: unknown op 'Frobnicate'");
    expect_parse_error(HDR "  input %x: f32[2\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 4, column 1: expected ','");
    expect_parse_error(HDR "  input %x: f33[2]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 13: expected an element type");
    expect_parse_error(HDR "  const %c: i8[2] = [1, 300]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 25: 300 is out of range for i8");
    expect_parse_error(HDR "  const %c: f32[3] = [1, 2]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 27: expected ','");
    expect_parse_error(HDR "  const %c: f32[2, N] = [1, 2]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "needs a known element type and static shape");
    expect_parse_error(HDR "  input %x: f32[2]\n  %y = Relu(%x) {a = 1, a = 2}\n}\n", NULL, 0,
                       PQ_ERR_INVALID, "line 4, column 25: attribute 'a' appears twice");
    expect_parse_error(HDR "  input %x: f32[2]\n  %y = Relu(%x) {s = \"abc}\n}\n", NULL, 0,
                       PQ_ERR_INVALID, "line 4, column 22: expected");
    expect_parse_error(HDR "  input %x: f32[2]\n  %y = Relu(%x) {s = \"\\q\"}\n}\n", NULL, 0,
                       PQ_ERR_INVALID, "unknown escape");
    expect_parse_error("piqc 2\ngraph g {\n}\n", NULL, 0, PQ_ERR_UNSUPPORTED, "text IR version 2");
    expect_parse_error("pickle 1\n", NULL, 0, PQ_ERR_INVALID,
                       "line 1, column 1: expected the header 'piqc 1'");
    expect_parse_error(HDR "}\ngraph h {\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 4, column 1: expected end of input");
    expect_parse_error(HDR "  capture %x: f32[2]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "capture of 'x' outside a subgraph");
    expect_parse_error(
        HDR "  input %c: bool[]\n  %y = If(%c) {then_branch = graph t {\n"
            "    capture %zz: f32[1]\n  }}\n}\n",
        NULL, 0, PQ_ERR_INVALID,
        "line 5, column 13: captured value 'zz' is not defined in an enclosing graph");
    expect_parse_error(HDR "  symbols N, N\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 14: symbol listed twice");
    expect_parse_error(HDR "  const %c: f32[1099511627776] = [1]\n}\n", NULL, 0, PQ_ERR_INVALID,
                       "more than the text can hold");
}

Test(text, sidecar_errors) {
    unsigned char bin[128] = {0};
    const char *t =
        HDR "  const %w: f32[20] {min 0, max 0, mean 0, sha256 000000000000, bin 64+80}\n}\n";
    expect_parse_error(
        t, bin, sizeof bin, PQ_ERR_INVALID,
        "line 3, column 21: constant 'w': bin range 64+80 is outside the sidecar (128 bytes)");
    expect_parse_error(t, NULL, 0, PQ_ERR_INVALID,
                       "constant 'w' refers to sidecar bytes 64+80 but no sidecar was given");
    t = HDR "  const %w: f32[20] {min 0, max 0, mean 0, sha256 000000000000}\n}\n";
    expect_parse_error(t, bin, sizeof bin, PQ_ERR_INVALID,
                       "line 3, column 21: constant 'w' is summarised without data");
    t = HDR "  const %w: f32[20] {min 0, max 0, mean 0, sha256 000000000000, bin 0+80}\n}\n";
    expect_parse_error(t, bin, sizeof bin, PQ_ERR_INVALID, "sidecar data has SHA-256");
    t = HDR "  const %w: f32[20] {bin 0+40}\n}\n";
    expect_parse_error(t, bin, sizeof bin, PQ_ERR_INVALID,
                       "bin length 40 does not match its type (80 bytes)");
    t = HDR "  const %w: f32[20] {bin 18446744073709551615+2}\n}\n";
    expect_parse_error(t, bin, sizeof bin, PQ_ERR_INVALID, "outside the sidecar");
    /* printing a big constant without a sidecar gives a summary that does not parse back */
    pq_graph *g = pq_graph_create(NULL, &err);
    g->name = pq_graph_strdup(g, "g");
    add_const(g, "big", tensor(PQ_DTYPE_F32, 1, (int64_t[]){17}));
    char *s = print_g(g, NULL);
    cr_assert(strstr(s, "const %big: f32[17] {min 0, max 0, mean 0, sha256 "), "%s", s);
    cr_assert_null(strstr(s, "bin"));
    expect_parse_error(s, NULL, 0, PQ_ERR_INVALID,
                       "line 3, column 23: constant 'big' is summarised without data");
    pq_free(s);
    /* a valid sidecar summary parses, hash checked */
    pq_text_bin b = {0};
    s = print_g(g, &b);
    pq_graph *g2 = parse_ok(s, &b);
    assert_graph_eq(g, g2);
    pq_graph_destroy(g2);
    pq_free(s);
    pq_text_bin_free(&b);
    pq_graph_destroy(g);
}

/* Every truncation of a valid text fails cleanly with a position (no crash, no leak). */
Test(text, every_truncation_fails_cleanly) {
    pq_graph *g = rich_graph();
    pq_text_bin bin = {0};
    char *t = print_g(g, &bin);
    size_t n = strlen(t);
    /* the final "}\n": dropping only the newline still parses */
    for (size_t cut = 0; cut + 2 < n; cut++) {
        pq_graph *out = NULL;
        pq_error_clear(&err);
        enum pq_status st = pq_text_parse(t, cut, bin.data, bin.size, &out, &err);
        cr_assert_eq(st, PQ_ERR_INVALID, "cut %zu: %d %s", cut, st, err.msg);
        cr_assert_null(out);
        cr_assert(strncmp(err.msg, "line ", 5) == 0, "cut %zu: %s", cut, err.msg);
    }
    pq_free(t);
    pq_text_bin_free(&bin);
    pq_graph_destroy(g);
}

Test(text, allocation_failures_are_clean) {
    pq_graph *g = rich_graph();
    pq_text_bin bin = {0};
    char *t = print_g(g, &bin);
    for (long k = 0; k < 4000; k += 7) {
        pq_graph *out = NULL;
        pq_alloc_fail_after(k);
        enum pq_status st = pq_text_parse(t, strlen(t), bin.data, bin.size, &out, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            pq_graph_destroy(out);
            break;
        }
        cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld: %d %s", k, st, err.msg);
        cr_assert_null(out);
    }
    for (long k = 0; k < 200; k += 3) {
        char *s = NULL;
        pq_text_bin b2 = {0};
        pq_alloc_fail_after(k);
        enum pq_status st = pq_text_print_string(g, &b2, &s, &err);
        pq_alloc_fail_after(-1);
        pq_text_bin_free(&b2);
        if (st == PQ_OK) {
            pq_free(s);
            break;
        }
        cr_assert_eq(st, PQ_ERR_NOMEM);
    }
    pq_free(t);
    pq_text_bin_free(&bin);
    pq_graph_destroy(g);
}

Test(text, hand_written_text_and_forward_references) {
    /* comments, free spacing, nodes out of order (forward references), bare [] lists */
    const char *t = "# a comment\npiqc 1\ngraph fwd {\n"
                    "  input %x: f32[4]   # trailing comment\n"
                    "  %b = Neg(%a)  # second\n"
                    "  %a = Relu(%x) {perm = [], alpha = 2e-1, mode = \"m\", k = -3}  # first\n"
                    "  output %b\n}\n";
    pq_graph *g = parse_ok(t, NULL);
    cr_assert_eq(g->n_nodes, 2);
    cr_assert_str_eq(g->nodes[0].name, "second");
    cr_assert_str_eq(g->nodes[1].name, "first");
    const pq_node *n = &g->nodes[1];
    cr_assert_eq(pq_node_attr(n, "perm")->type, PQ_ATTR_INTS);
    cr_assert_eq(pq_node_attr(n, "alpha")->type, PQ_ATTR_FLOAT);
    cr_assert_eq(pq_node_attr_float(n, "alpha", 0), 0.2f);
    cr_assert_eq(pq_node_attr_int(n, "k", 0), -3);
    /* the verifier then reports the order problem */
    pq_error_clear(&err);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "topological"), "%s", err.msg);
    cr_assert_eq(pq_graph_toposort(g, &err), PQ_OK);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
}

/* Single-byte mutations of a valid text never crash: each parse succeeds or fails with a position.
 */
Test(text, byte_mutations_are_clean) {
    pq_graph *g = rich_graph();
    pq_text_bin bin = {0};
    char *t = print_g(g, &bin);
    size_t n = strlen(t);
    char *m = pq_malloc(n + 1);
    static const char vals[] = {'{', '}',  '[', ']', '%', '"', '\\',
                                '#', '\n', ',', '_', '9', 'x', '\x01'};
    for (size_t pos = 0; pos < n; pos += 3) {
        memcpy(m, t, n + 1);
        m[pos] = vals[pos % sizeof vals];
        pq_graph *out = NULL;
        enum pq_status st = pq_text_parse(m, n, bin.data, bin.size, &out, &err);
        if (st == PQ_OK) {
            cr_assert_not_null(out);
            pq_graph_destroy(out);
        } else {
            cr_assert_null(out);
            cr_assert(st == PQ_ERR_INVALID || st == PQ_ERR_UNSUPPORTED, "%d %s", st, err.msg);
            cr_assert(strncmp(err.msg, "line ", 5) == 0, "pos %zu: %s", pos, err.msg);
        }
    }
    pq_free(m);
    pq_free(t);
    pq_text_bin_free(&bin);
    pq_graph_destroy(g);
}

Test(text, deep_nesting_is_bounded) {
    /* 200 nested If bodies: rejected with a message, no stack exhaustion */
    size_t cap = 200 * 64 + 64;
    char *s = pq_malloc(cap);
    size_t k = (size_t)snprintf(s, cap, "piqc 1\ngraph g {\n  input %%c: bool[]\n");
    for (int i = 0; i < 200; i++)
        k += (size_t)snprintf(s + k, cap - k, "%%o = If(%%c) {then_branch = graph {\n");
    s[k] = '\0';
    expect_parse_error(s, NULL, 0, PQ_ERR_INVALID, "subgraphs nested deeper than 64");
    pq_free(s);
}
