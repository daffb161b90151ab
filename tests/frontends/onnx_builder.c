/* Test helper implementation: protobuf-c structs allocated from a tracked list, filled field by
 * field, and packed into buffers that the importer tests feed to pq_onnx_import_buffer. */
#include "onnx_builder.h"

#include <stdlib.h>
#include <string.h>

static void **ob_ptrs;
static size_t ob_n, ob_cap;

static void *ob_track(void *p) {
    if (!p) abort();
    if (ob_n == ob_cap) {
        ob_cap = ob_cap ? ob_cap * 2 : 64;
        ob_ptrs = realloc(ob_ptrs, ob_cap * sizeof *ob_ptrs);
        if (!ob_ptrs) abort();
    }
    ob_ptrs[ob_n++] = p;
    return p;
}

static void *ob_alloc(size_t n) {
    return ob_track(calloc(1, n ? n : 1));
}

static char *ob_str(const char *s) {
    char *d = ob_alloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

/* Appends item to a (count, array) pair of pointers. */
#define OB_PUSH(count, arr, item)                                                                  \
    do {                                                                                           \
        void *na_ = ob_alloc(sizeof(*(arr)) * ((count) + 1));                                      \
        if ((count)) memcpy(na_, (arr), sizeof(*(arr)) * (count));                                 \
        (arr) = na_;                                                                               \
        (arr)[(count)++] = (item);                                                                 \
    } while (0)

void ob_free_all(void) {
    for (size_t i = 0; i < ob_n; i++)
        free(ob_ptrs[i]);
    free(ob_ptrs);
    ob_ptrs = NULL;
    ob_n = ob_cap = 0;
}

Onnx__ValueInfoProto *ob_value(const char *name, int elem, int rank, const int64_t *dims,
                               const char *const *syms) {
    Onnx__ValueInfoProto *v = ob_alloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = ob_str(name);
    Onnx__TypeProto *tp = ob_alloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = ob_alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sp = ob_alloc(sizeof *sp);
        onnx__tensor_shape_proto__init(sp);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = ob_alloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else if (syms && syms[i]) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = ob_str(syms[i]);
            }
            OB_PUSH(sp->n_dim, sp->dim, d);
        }
        tt->shape = sp;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    return v;
}

/* Splits "a,b,,c" into names (empty strings kept). */
static void ob_split(const char *list, size_t *n, char ***out) {
    *n = 0;
    *out = NULL;
    if (!list || !*list) return;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *s = ob_alloc(len + 1);
        memcpy(s, p, len);
        OB_PUSH(*n, *out, s);
        if (!e) break;
        p = e + 1;
    }
}

Onnx__NodeProto *ob_node(const char *op, const char *name, const char *inputs,
                         const char *outputs) {
    Onnx__NodeProto *n = ob_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = ob_str(op);
    if (name) n->name = ob_str(name);
    ob_split(inputs, &n->n_input, &n->input);
    ob_split(outputs, &n->n_output, &n->output);
    return n;
}

void ob_node_domain(Onnx__NodeProto *n, const char *domain) {
    n->domain = ob_str(domain);
}

static Onnx__AttributeProto *ob_attr(Onnx__NodeProto *n, const char *name, int type) {
    Onnx__AttributeProto *a = ob_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ob_str(name);
    a->has_type = 1;
    a->type = type;
    OB_PUSH(n->n_attribute, n->attribute, a);
    return a;
}

void ob_attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void ob_attr_float(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void ob_attr_string(Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)ob_str(v);
}

void ob_attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count) {
    Onnx__AttributeProto *a = ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = count;
    a->ints = ob_alloc(sizeof(int64_t) * count);
    if (count) memcpy(a->ints, v, sizeof(int64_t) * count);
}

void ob_attr_floats(Onnx__NodeProto *n, const char *name, const float *v, size_t count) {
    Onnx__AttributeProto *a = ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = count;
    a->floats = ob_alloc(sizeof(float) * count);
    if (count) memcpy(a->floats, v, sizeof(float) * count);
}

void ob_attr_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t) {
    ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = t;
}

void ob_attr_graph(Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g) {
    ob_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH)->g = g;
}

static Onnx__TensorProto *ob_tensor(const char *name, int dtype, int rank, const int64_t *dims) {
    Onnx__TensorProto *t = ob_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    if (name) t->name = ob_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = ob_alloc(sizeof(int64_t) * (rank > 0 ? (size_t)rank : 1));
    if (rank > 0) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    return t;
}

Onnx__TensorProto *ob_tensor_raw(const char *name, int dtype, int rank, const int64_t *dims,
                                 const void *raw, size_t raw_len) {
    Onnx__TensorProto *t = ob_tensor(name, dtype, rank, dims);
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = raw_len;
        t->raw_data.data = ob_alloc(raw_len);
        memcpy(t->raw_data.data, raw, raw_len);
    }
    return t;
}

Onnx__TensorProto *ob_tensor_f32(const char *name, int rank, const int64_t *dims, const float *vals,
                                 size_t n) {
    Onnx__TensorProto *t = ob_tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims);
    t->n_float_data = n;
    t->float_data = ob_alloc(sizeof(float) * n);
    if (n) memcpy(t->float_data, vals, sizeof(float) * n);
    return t;
}

Onnx__TensorProto *ob_tensor_i64(const char *name, int rank, const int64_t *dims,
                                 const int64_t *vals, size_t n) {
    Onnx__TensorProto *t = ob_tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, rank, dims);
    t->n_int64_data = n;
    t->int64_data = ob_alloc(sizeof(int64_t) * n);
    if (n) memcpy(t->int64_data, vals, sizeof(int64_t) * n);
    return t;
}

Onnx__TensorProto *ob_tensor_i32data(const char *name, int dtype, int rank, const int64_t *dims,
                                     const int32_t *vals, size_t n) {
    Onnx__TensorProto *t = ob_tensor(name, dtype, rank, dims);
    t->n_int32_data = n;
    t->int32_data = ob_alloc(sizeof(int32_t) * n);
    if (n) memcpy(t->int32_data, vals, sizeof(int32_t) * n);
    return t;
}

Onnx__TensorProto *ob_tensor_u64data(const char *name, int dtype, int rank, const int64_t *dims,
                                     const uint64_t *vals, size_t n) {
    Onnx__TensorProto *t = ob_tensor(name, dtype, rank, dims);
    t->n_uint64_data = n;
    t->uint64_data = ob_alloc(sizeof(uint64_t) * n);
    if (n) memcpy(t->uint64_data, vals, sizeof(uint64_t) * n);
    return t;
}

void ob_tensor_external(Onnx__TensorProto *t, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = ob_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = ob_str(key);
    e->value = ob_str(value);
    OB_PUSH(t->n_external_data, t->external_data, e);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

Onnx__GraphProto *ob_graph(const char *name) {
    Onnx__GraphProto *g = ob_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = ob_str(name);
    return g;
}

void ob_graph_input(Onnx__GraphProto *g, Onnx__ValueInfoProto *v) {
    OB_PUSH(g->n_input, g->input, v);
}
void ob_graph_output(Onnx__GraphProto *g, Onnx__ValueInfoProto *v) {
    OB_PUSH(g->n_output, g->output, v);
}
void ob_graph_value_info(Onnx__GraphProto *g, Onnx__ValueInfoProto *v) {
    OB_PUSH(g->n_value_info, g->value_info, v);
}
void ob_graph_node(Onnx__GraphProto *g, Onnx__NodeProto *n) {
    OB_PUSH(g->n_node, g->node, n);
}
void ob_graph_init(Onnx__GraphProto *g, Onnx__TensorProto *t) {
    OB_PUSH(g->n_initializer, g->initializer, t);
}

uint8_t *ob_model(Onnx__GraphProto *g, int64_t ir, int64_t opset, size_t *len) {
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = ir;
    m.producer_name = "piqc-test";
    Onnx__OperatorSetIdProto op;
    onnx__operator_set_id_proto__init(&op);
    op.domain = "";
    op.has_version = 1;
    op.version = opset;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    m.n_opset_import = 1;
    m.opset_import = ops;
    m.graph = g;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = ob_alloc(*len);
    onnx__model_proto__pack(&m, buf);
    return buf;
}

uint8_t *ob_pack_tensor(Onnx__TensorProto *t, size_t *len) {
    *len = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = ob_alloc(*len);
    onnx__tensor_proto__pack(t, buf);
    return buf;
}
