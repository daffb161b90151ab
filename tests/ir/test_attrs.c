/* Tests of typed attribute access (ir/attrs.h): list getters and the shared convolution geometry
 * decoder, auto_pad resolution (SAME_UPPER, SAME_LOWER, VALID), ConvTranspose and bad input. */
#include <criterion/criterion.h>
#include <string.h>

#include "ir/ir.h"

static pq_graph *g;
static uint32_t nid;
static pq_error err;

static void mk(enum pq_op op) {
    g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    uint32_t x, w, y;
    pq_graph_add_value(g, "x", PQ_DTYPE_F32, NULL, &x, &err);
    pq_graph_add_value(g, "w", PQ_DTYPE_F32, NULL, &w, &err);
    pq_graph_add_value(g, "y", PQ_DTYPE_F32, NULL, &y, &err);
    cr_assert_eq(pq_graph_add_node(g, op, "conv_3", (uint32_t[]){x, w}, 2, &y, 1, &nid, &err),
                 PQ_OK);
}

static void ints(const char *name, const int64_t *v, uint32_t n) {
    cr_assert_eq(pq_node_set_ints(g, nid, name, v, n, &err), PQ_OK);
}

static pq_conv_geom decode_ok(const int64_t *in, int nsp, const int64_t *w) {
    pq_conv_geom geom;
    cr_assert_eq(pq_conv_geom_decode(&g->nodes[nid], in, nsp, w, &geom, &err), PQ_OK, "%s",
                 err.msg);
    cr_assert_eq(geom.nsp, nsp);
    return geom;
}

static void decode_fails(const int64_t *in, int nsp, const int64_t *w, enum pq_status want,
                         const char *needle) {
    pq_conv_geom geom;
    pq_error_clear(&err);
    cr_assert_eq(pq_conv_geom_decode(&g->nodes[nid], in, nsp, w, &geom, &err), want, "%s", err.msg);
    cr_assert(strstr(err.msg, needle), "'%s' not in: %s", needle, err.msg);
    pq_graph_destroy(g);
    g = NULL;
}

static void geom_eq(const pq_conv_geom *q, int i, int64_t k, int64_t pb, int64_t pe, int64_t out) {
    cr_assert_eq(q->kernel[i], k, "kernel[%d] = %lld", i, (long long)q->kernel[i]);
    cr_assert_eq(q->pads_begin[i], pb, "pads_begin[%d] = %lld", i, (long long)q->pads_begin[i]);
    cr_assert_eq(q->pads_end[i], pe, "pads_end[%d] = %lld", i, (long long)q->pads_end[i]);
    cr_assert_eq(q->out[i], out, "out[%d] = %lld", i, (long long)q->out[i]);
}

Test(attrs, list_getters) {
    mk(PQ_OP_CONV);
    const int64_t *iv = NULL;
    const float *fv = NULL;
    uint32_t n = 99;
    cr_assert(!pq_node_attr_ints(&g->nodes[nid], "strides", &iv, &n));
    cr_assert_eq(n, 99);
    ints("strides", (int64_t[]){2, 3}, 2);
    cr_assert(pq_node_attr_ints(&g->nodes[nid], "strides", &iv, &n));
    cr_assert(n == 2 && iv[0] == 2 && iv[1] == 3);
    cr_assert(!pq_node_attr_floats(&g->nodes[nid], "strides", &fv, &n));
    pq_node_set_floats(g, nid, "scales", (float[]){0.5f}, 1, &err);
    cr_assert(pq_node_attr_floats(&g->nodes[nid], "scales", &fv, &n));
    cr_assert(n == 1 && fv[0] == 0.5f);
    pq_graph_destroy(g);
}

Test(attrs, conv_explicit_pads_strides_dilations) {
    mk(PQ_OP_CONV);
    pq_node_set_int(g, nid, "group", 2, &err);
    ints("strides", (int64_t[]){2, 2}, 2);
    ints("pads", (int64_t[]){1, 0, 1, 2}, 4);
    pq_conv_geom q = decode_ok((int64_t[]){28, 28}, 2, (int64_t[]){3, 3});
    cr_assert_eq(q.group, 2);
    cr_assert(!q.transpose);
    cr_assert_eq(q.auto_pad, PQ_AUTO_PAD_NOTSET);
    geom_eq(&q, 0, 3, 1, 1, 14);
    geom_eq(&q, 1, 3, 0, 2, 14);
    cr_assert_eq(q.in[1], 28);
    cr_assert_eq(q.strides[1], 2);
    cr_assert_eq(q.kernel[2], 1, "unused entries are neutral");
    pq_graph_destroy(g);
    /* 3-D dilations */
    mk(PQ_OP_CONV);
    ints("dilations", (int64_t[]){2, 2, 1}, 3);
    q = decode_ok((int64_t[]){5, 5, 5}, 3, (int64_t[]){2, 2, 2});
    geom_eq(&q, 0, 2, 0, 0, 3);
    geom_eq(&q, 2, 2, 0, 0, 4);
    pq_graph_destroy(g);
    /* kernel_shape alone, unknown input */
    mk(PQ_OP_CONV_INTEGER);
    ints("kernel_shape", (int64_t[]){4}, 1);
    q = decode_ok(NULL, 1, NULL);
    geom_eq(&q, 0, 4, 0, 0, -1);
    cr_assert_eq(q.in[0], -1);
    pq_graph_destroy(g);
}

Test(attrs, conv_auto_pad_same_and_valid) {
    mk(PQ_OP_CONV);
    pq_node_set_string(g, nid, "auto_pad", "SAME_UPPER", &err);
    pq_conv_geom q = decode_ok((int64_t[]){5, 10}, 2, (int64_t[]){2, 3});
    cr_assert_eq(q.auto_pad, PQ_AUTO_PAD_SAME_UPPER);
    geom_eq(&q, 0, 2, 0, 1, 5); /* total 1: the odd pixel at the end */
    geom_eq(&q, 1, 3, 1, 1, 10);
    pq_graph_destroy(g);
    mk(PQ_OP_CONV);
    pq_node_set_string(g, nid, "auto_pad", "SAME_LOWER", &err);
    ints("strides", (int64_t[]){1, 3}, 2);
    q = decode_ok((int64_t[]){5, 10}, 2, (int64_t[]){2, 3});
    geom_eq(&q, 0, 2, 1, 0, 5); /* the odd pixel at the begin */
    geom_eq(&q, 1, 3, 1, 1, 4); /* ceil(10 / 3) = 4, total (4-1)*3+3-10 = 2 */
    /* SAME with an unknown input dim: size and pads unknown */
    q = decode_ok((int64_t[]){-1, 10}, 2, (int64_t[]){2, 3});
    geom_eq(&q, 0, 2, -1, -1, -1);
    pq_graph_destroy(g);
    mk(PQ_OP_CONV);
    pq_node_set_string(g, nid, "auto_pad", "VALID", &err);
    ints("pads", (int64_t[]){3, 3}, 2);
    q = decode_ok((int64_t[]){5}, 1, (int64_t[]){2});
    cr_assert_eq(q.auto_pad, PQ_AUTO_PAD_VALID);
    geom_eq(&q, 0, 2, 0, 0, 4);
    pq_graph_destroy(g);
    enum pq_auto_pad ap;
    cr_assert(pq_auto_pad_parse("", &ap) && ap == PQ_AUTO_PAD_NOTSET);
    cr_assert(!pq_auto_pad_parse("same", &ap));
}

Test(attrs, conv_transpose) {
    mk(PQ_OP_CONV_TRANSPOSE);
    ints("strides", (int64_t[]){3, 2}, 2);
    ints("pads", (int64_t[]){1, 1, 1, 1}, 4);
    ints("output_padding", (int64_t[]){1, 1}, 2);
    pq_conv_geom q = decode_ok((int64_t[]){7, 6}, 2, (int64_t[]){3, 3});
    cr_assert(q.transpose);
    cr_assert_eq(q.output_padding[0], 1);
    geom_eq(&q, 0, 3, 1, 1, 20);
    geom_eq(&q, 1, 3, 1, 1, 12);
    pq_graph_destroy(g);
    mk(PQ_OP_CONV_TRANSPOSE);
    pq_node_set_string(g, nid, "auto_pad", "SAME_UPPER", &err);
    ints("strides", (int64_t[]){2, 2}, 2);
    q = decode_ok((int64_t[]){3, 3}, 2, (int64_t[]){3, 3});
    geom_eq(&q, 0, 3, 0, 1, 6); /* total 2*2+3-6 = 1 */
    pq_graph_destroy(g);
    mk(PQ_OP_CONV_TRANSPOSE);
    pq_node_set_string(g, nid, "auto_pad", "SAME_LOWER", &err);
    ints("strides", (int64_t[]){2}, 1);
    q = decode_ok((int64_t[]){3}, 1, (int64_t[]){3});
    geom_eq(&q, 0, 3, 1, 0, 6);
    pq_graph_destroy(g);
    mk(PQ_OP_CONV_TRANSPOSE);
    ints("output_shape", (int64_t[]){1, 2, 10, 5}, 4);
    q = decode_ok((int64_t[]){3, 3}, 2, (int64_t[]){3, 3});
    geom_eq(&q, 0, 3, 0, -5, 10); /* larger than the full result (5): zeros at the end */
    geom_eq(&q, 1, 3, 0, 0, 5);
    pq_graph_destroy(g);
}

Test(attrs, conv_bad_attributes_are_invalid) {
    mk(PQ_OP_CONV);
    pq_node_set_string(g, nid, "auto_pad", "SAME", &err);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID, "auto_pad");
    mk(PQ_OP_CONV);
    pq_node_set_int(g, nid, "auto_pad", 1, &err);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID, "must be a string");
    mk(PQ_OP_CONV);
    ints("strides", (int64_t[]){0, 1}, 2);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID, "'strides'[0] = 0");
    mk(PQ_OP_CONV);
    ints("pads", (int64_t[]){1, 1}, 2);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID, "expected 4");
    mk(PQ_OP_CONV);
    ints("kernel_shape", (int64_t[]){3, 5}, 2);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID,
                 "kernel_shape[1] = 5 but the weight has 3");
    mk(PQ_OP_CONV);
    pq_node_set_int(g, nid, "group", 0, &err);
    decode_fails((int64_t[]){8, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID, "group");
    mk(PQ_OP_CONV);
    decode_fails((int64_t[]){2, 8}, 2, (int64_t[]){3, 3}, PQ_ERR_INVALID,
                 "smaller than the dilated kernel");
    mk(PQ_OP_CONV_TRANSPOSE);
    ints("output_padding", (int64_t[]){2}, 1);
    decode_fails((int64_t[]){4}, 1, (int64_t[]){3}, PQ_ERR_INVALID, "output_padding");
    mk(PQ_OP_CONV_TRANSPOSE);
    ints("pads", (int64_t[]){9, 9}, 2);
    decode_fails((int64_t[]){2}, 1, (int64_t[]){3}, PQ_ERR_INVALID, "negative");
    mk(PQ_OP_CONV);
    decode_fails((int64_t[]){1, 1, 1, 1}, 4, NULL, PQ_ERR_UNSUPPORTED, "spatial");
    mk(PQ_OP_CONV);
    decode_fails(NULL, 0, NULL, PQ_ERR_INVALID, "spatial");
    mk(PQ_OP_CONV);
    ints("kernel_shape", (int64_t[]){3, 3, 3}, 3);
    decode_fails((int64_t[]){8, 8}, 2, NULL, PQ_ERR_INVALID, "'kernel_shape' has 3 values");
}
