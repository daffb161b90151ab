/* ONNX writer: export -> import round trips give bit-identical outputs (test models, digits, the
 * fp32 preset's fused activations), opset choice, refusals naming the node, atomic writes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "frontends/onnx.h"
#include "frontends/onnx_export.h"
#include "passes/manager.h"
#include "passes/pipeline.h"
#include "runtime/runtime.h"

static pq_graph *load(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_error err;
    pq_graph *g = NULL;
    cr_assert_eq(pq_onnx_import_file(path, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* Runs prepared g on its single input read from rel; returns the outputs (n = g->n_outputs). */
static pq_tensor **run(pq_graph *g, const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PQ_SOURCE_DIR, rel);
    pq_error err;
    pq_tensor *in = NULL;
    cr_assert_eq(pq_npy_read(path, &in, &err), PQ_OK, "%s", err.msg);
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK, "%s", err.msg);
    pq_tensor **outs = calloc(g->n_outputs, sizeof *outs);
    const pq_tensor *ins[1] = {in};
    cr_assert_eq(pq_session_run(s, ins, 1, outs, g->n_outputs, &err), PQ_OK, "%s", err.msg);
    pq_session_destroy(s);
    pq_tensor_destroy(in);
    return outs;
}

static void free_outs(pq_tensor **o, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        pq_tensor_destroy(o[i]);
    free(o);
}

/* Exports g, imports the bytes back (prepared) and returns the new graph. */
static pq_graph *round_trip(const pq_graph *g, int64_t *opset) {
    pq_error err;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(pq_onnx_export_buffer(g, NULL, &buf, &len, &err), PQ_OK, "%s", err.msg);
    pq_graph *h = NULL;
    cr_assert_eq(pq_onnx_import_buffer(buf, len, NULL, &h, &err), PQ_OK, "%s", err.msg);
    pq_free(buf);
    cr_assert_eq(pq_runtime_prepare(h, &err), PQ_OK, "%s", err.msg);
    if (opset) *opset = pq_graph_opset(h, "");
    return h;
}

/* Asserts the outputs of a and b on input rel are identical bit for bit. */
static void same_bits(pq_graph *a, pq_graph *b, const char *rel, const char *what) {
    cr_assert_eq(a->n_outputs, b->n_outputs);
    pq_tensor **oa = run(a, rel), **ob = run(b, rel);
    size_t total = 0;
    for (uint32_t i = 0; i < a->n_outputs; i++) {
        cr_assert_eq(oa[i]->dtype, ob[i]->dtype, "%s output %u dtype", what, i);
        cr_assert_eq(oa[i]->nbytes, ob[i]->nbytes, "%s output %u size", what, i);
        cr_assert_eq(memcmp(oa[i]->data, ob[i]->data, oa[i]->nbytes), 0,
                     "%s: output %u differs after export -> import", what, i);
        cr_assert_str_eq(a->values[a->outputs[i]].name, b->values[b->outputs[i]].name);
        total += oa[i]->nbytes;
    }
    fprintf(stderr, "onnx export round trip %s: %u outputs, %zu bytes identical\n", what,
            a->n_outputs, total);
    free_outs(oa, a->n_outputs);
    free_outs(ob, b->n_outputs);
}

static void model_round_trip(const char *name, const char *input) {
    char onnx[256], in[256];
    snprintf(onnx, sizeof onnx, "tests/models/%s/model.onnx", name);
    snprintf(in, sizeof in, "tests/models/%s/%s", name, input);
    pq_graph *g = load(onnx);
    int64_t opset;
    pq_graph *h = round_trip(g, &opset);
    cr_assert_eq(h->n_nodes, g->n_nodes, "%s: %u nodes -> %u", name, g->n_nodes, h->n_nodes);
    cr_assert_geq(opset, pq_graph_opset(g, ""));
    same_bits(g, h, in, name);
    pq_graph_destroy(g);
    pq_graph_destroy(h);
}

Test(onnx_export, round_trip_mlp) {
    model_round_trip("mlp", "input_x.npy");
}

Test(onnx_export, round_trip_cnn_bn) {
    model_round_trip("cnn_bn", "input_x.npy");
}

Test(onnx_export, round_trip_transformer17_and_rnns) {
    model_round_trip("transformer17", "input_tokens.npy");
    model_round_trip("transformer13", "input_tokens.npy");
    model_round_trip("lstm", "input_x.npy");
    model_round_trip("gru", "input_x.npy");
}

/* After the fp32 preset (folded BN, fused activations) the export expands the fused activations
 * into ONNX ops; the re-imported graph computes the same bits. */
Test(onnx_export, round_trip_fp32_preset) {
    const char *models[][2] = {
        {"examples/digits/model.onnx", "examples/digits/test_x.npy"},
        {"tests/models/cnn_bn/model.onnx", "tests/models/cnn_bn/input_x.npy"},
        {"tests/models/mlp/model.onnx", "tests/models/mlp/input_x.npy"}};
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        pq_graph *g = load(models[k][0]);
        pq_error err;
        pq_pipeline *p = NULL;
        cr_assert_eq(pq_pipeline_load("fp32", &p, &err), PQ_OK, "%s", err.msg);
        pq_pass_manager_opts mo = {0};
        cr_assert_eq(pq_pipeline_run(g, p, &mo, NULL, NULL, &err), PQ_OK, "%s", err.msg);
        pq_pipeline_destroy(p);
        uint32_t fused = 0;
        for (uint32_t i = 0; i < g->n_nodes; i++)
            fused += pq_node_attr(&g->nodes[i], "activation") != NULL;
        pq_graph *h = round_trip(g, NULL);
        uint32_t left = 0;
        for (uint32_t i = 0; i < h->n_nodes; i++)
            left += pq_node_attr(&h->nodes[i], "activation") != NULL;
        cr_assert_eq(left, 0);
        cr_assert_geq(h->n_nodes, g->n_nodes + fused);
        fprintf(stderr, "%s: %u fused activations expanded\n", models[k][0], fused);
        same_bits(g, h, models[k][1], models[k][0]);
        pq_graph_destroy(g);
        pq_graph_destroy(h);
    }
}

static pq_graph *parse(const char *text) {
    pq_graph *g = NULL;
    pq_error err;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

Test(onnx_export, refuses_internal_ops_naming_the_node) {
    pq_graph *g = parse("piqc 1\ngraph t {\n"
                        "  input %x: f32[4, 8]\n"
                        "  %y = Hadamard(%x) {axis = -1, seed = 42}  # rot1\n"
                        "  output %y\n}\n");
    pq_error err;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(pq_onnx_export_buffer(g, NULL, &buf, &len, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "onnx export: ") == err.msg, "%s", err.msg);
    cr_assert(strstr(err.msg, "'rot1' (Hadamard)"), "%s", err.msg);
    cr_assert_null(buf);
    pq_graph_destroy(g);
}

Test(onnx_export, atomic_write_and_io_error) {
    pq_graph *g = load("tests/models/mlp/model.onnx");
    char dir[] = "/tmp/piqc-onnx-export-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    pq_error err;
    cr_assert_eq(pq_onnx_export_file(g, NULL, path, &err), PQ_OK, "%s", err.msg);
    pq_graph *h = NULL;
    cr_assert_eq(pq_onnx_import_file(path, &h, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(h);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/m.onnx", dir);
    cr_assert_eq(pq_onnx_export_file(g, NULL, bad, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, "no/such/dir"), "%s", err.msg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s | wc -l | grep -qx 1 && rm -rf %s", dir, dir);
    cr_assert_eq(system(cmd), 0, "temporary files left in %s", dir);
    pq_graph_destroy(g);
}
