/* Model tests: PyTorch-exported models (tests/models/<name>/, made by export_models.py) and the
 * digits example run through import -> prepare -> session and match PyTorch's outputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontends/frontends.h"
#include "runtime/runtime.h"

/* Imports MODEL, runs it on the named inputs and returns the outputs (caller destroys). */
static void run_model(const char *model, const char *const *in_names, const char *const *in_files,
                      int n_in, pq_graph **g_out, pq_tensor ***outs_out) {
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    cr_assert_eq(pq_onnx_import_file(model, &g, &err), PQ_OK, "%s: %s", model, err.msg);
    cr_assert_eq(pq_runtime_prepare(g, &err), PQ_OK, "%s: %s", model, err.msg);
    cr_assert_eq((int)g->n_inputs, n_in, "%s: inputs", model);
    pq_tensor **ins = pq_calloc((size_t)n_in, sizeof *ins);
    for (int i = 0; i < n_in; i++) {
        int slot = -1;
        for (uint32_t k = 0; k < g->n_inputs; k++)
            if (!strcmp(g->values[g->inputs[k]].name, in_names[i])) slot = (int)k;
        cr_assert(slot >= 0, "%s has no input %s", model, in_names[i]);
        cr_assert_eq(pq_npy_read(in_files[i], &ins[slot], &err), PQ_OK, "%s", err.msg);
    }
    pq_session *s = NULL;
    cr_assert_eq(pq_session_create(g, NULL, &s, &err), PQ_OK);
    pq_tensor **outs = pq_calloc(g->n_outputs, sizeof *outs);
    cr_assert_eq(
        pq_session_run(s, (const pq_tensor *const *)ins, g->n_inputs, outs, g->n_outputs, &err),
        PQ_OK, "%s: %s", model, err.msg);
    /* a second run reuses the plan and must give identical results */
    pq_tensor **again = pq_calloc(g->n_outputs, sizeof *again);
    cr_assert_eq(
        pq_session_run(s, (const pq_tensor *const *)ins, g->n_inputs, again, g->n_outputs, &err),
        PQ_OK, "%s: %s", model, err.msg);
    for (uint32_t o = 0; o < g->n_outputs; o++) {
        cr_assert_eq(outs[o]->nbytes, again[o]->nbytes);
        cr_assert(!memcmp(outs[o]->data, again[o]->data, outs[o]->nbytes), "rerun differs");
        pq_tensor_destroy(again[o]);
    }
    pq_free(again);
    for (int i = 0; i < n_in; i++)
        pq_tensor_destroy(ins[i]);
    pq_free(ins);
    pq_session_destroy(s);
    *g_out = g;
    *outs_out = outs;
}

static void expect_close(const pq_tensor *got, const char *ref_path, double rtol, double atol) {
    pq_error err;
    pq_tensor *ref = NULL;
    cr_assert_eq(pq_npy_read(ref_path, &ref, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(got->rank, ref->rank, "%s: rank", ref_path);
    for (int d = 0; d < ref->rank; d++)
        cr_assert_eq(got->dims[d], ref->dims[d], "%s: dim %d", ref_path, d);
    int64_t n = pq_tensor_numel(ref), bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = pq_dtype_load(got->dtype, got->data, (size_t)i);
        double b = pq_dtype_load(ref->dtype, ref->data, (size_t)i);
        double e = fabs(a - b);
        if (e > atol + rtol * fabs(b)) bad++;
        if (e > worst) worst = e;
    }
    cr_assert_eq(bad, 0, "%s: %lld of %lld values outside rtol %g atol %g (max abs err %g)",
                 ref_path, (long long)bad, (long long)n, rtol, atol, worst);
    pq_tensor_destroy(ref);
}

static void check_model(const char *name, const char *in, const char *out, double rtol,
                        double atol) {
    char model[512], in_file[512], out_file[512];
    snprintf(model, sizeof model, "%s/tests/models/%s/model.onnx", PQ_SOURCE_DIR, name);
    snprintf(in_file, sizeof in_file, "%s/tests/models/%s/input_%s.npy", PQ_SOURCE_DIR, name, in);
    snprintf(out_file, sizeof out_file, "%s/tests/models/%s/output_%s.npy", PQ_SOURCE_DIR, name,
             out);
    const char *names[1] = {in};
    const char *files[1] = {in_file};
    pq_graph *g;
    pq_tensor **outs;
    run_model(model, names, files, 1, &g, &outs);
    expect_close(outs[0], out_file, rtol, atol);
    for (uint32_t o = 0; o < g->n_outputs; o++)
        pq_tensor_destroy(outs[o]);
    pq_free(outs);
    pq_graph_destroy(g);
}

Test(models, mlp) {
    check_model("mlp", "x", "y", 1e-4, 1e-5);
}
Test(models, cnn_bn) {
    check_model("cnn_bn", "x", "logits", 1e-4, 1e-5);
}
Test(models, transformer_opset17_layernorm) {
    check_model("transformer17", "tokens", "logits", 1e-4, 1e-4);
}
Test(models, transformer_opset13) {
    check_model("transformer13", "tokens", "logits", 1e-4, 1e-4);
}
Test(models, lstm) {
    check_model("lstm", "x", "y", 1e-4, 1e-4);
}
Test(models, bilstm) {
    check_model("bilstm", "x", "y", 1e-4, 1e-4);
}
Test(models, gru) {
    check_model("gru", "x", "y", 1e-4, 1e-4);
}

Test(models, digits_example_matches_pytorch) {
    char model[512], x[512], logits[512], labels[512];
    snprintf(model, sizeof model, "%s/examples/digits/model.onnx", PQ_SOURCE_DIR);
    snprintf(x, sizeof x, "%s/examples/digits/test_x.npy", PQ_SOURCE_DIR);
    snprintf(logits, sizeof logits, "%s/examples/digits/test_logits.npy", PQ_SOURCE_DIR);
    snprintf(labels, sizeof labels, "%s/examples/digits/labels.npy", PQ_SOURCE_DIR);
    const char *names[1] = {"input"};
    const char *files[1] = {x};
    pq_graph *g;
    pq_tensor **outs;
    run_model(model, names, files, 1, &g, &outs);
    expect_close(outs[0], logits, 1e-4, 1e-4);
    /* accuracy: PyTorch's recorded 355/360 */
    pq_error err;
    pq_tensor *lab = NULL;
    cr_assert_eq(pq_npy_read(labels, &lab, &err), PQ_OK);
    int64_t hits = 0, n = lab->dims[0];
    const float *l = outs[0]->data;
    for (int64_t r = 0; r < n; r++) {
        int best = 0;
        for (int c = 1; c < 10; c++)
            if (l[r * 10 + c] > l[r * 10 + best]) best = c;
        hits += best == ((const int64_t *)lab->data)[r];
    }
    cr_assert_eq(hits, 355, "digits accuracy %lld/360, PyTorch had 355/360", (long long)hits);
    pq_tensor_destroy(lab);
    pq_tensor_destroy(outs[0]);
    pq_free(outs);
    pq_graph_destroy(g);
}
