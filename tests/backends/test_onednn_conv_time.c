/* PIQC_ONEDNN_CONV_TIME=1 (per-layer timing of the oneDNN convolution, bench/conv_layers.sh): the
 * kernel still matches the reference and writes one line per call to stderr. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/onednn/onednn.h"
#include "backends/ref/ref.h"
#include "ir/ir.h"

/* harness in test_ref_matmul.c */
pq_tensor *pq_test_nn_rand(enum pq_dtype dt, int rank, const int64_t *dims, uint32_t seed);
pq_graph *pq_test_nn_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in,
                          uint32_t out_mask, uint32_t n_out, uint32_t *nid);

static pq_tensor *conv_output(pq_graph *g, uint32_t nid) {
    pq_error err;
    cr_assert_eq(pq_infer_node(g, nid, &err), PQ_OK, "%s", err.msg);
    const pq_value *v = &g->values[g->nodes[nid].outputs[0]];
    int64_t dims[PQ_MAX_RANK];
    cr_assert(pq_shape_is_static(&v->shape, dims));
    pq_tensor *t = pq_tensor_create(v->dtype, v->shape.rank, dims, &err);
    cr_assert_not_null(t, "%s", err.msg);
    memset(t->data, 0xFF, t->nbytes);
    return t;
}

static enum pq_status run(pq_kernel_fn fn, pq_graph *g, uint32_t nid, pq_tensor *out) {
    const pq_node *n = &g->nodes[nid];
    const pq_tensor *in[3] = {0};
    for (uint32_t i = 0; i < n->n_inputs; i++)
        in[i] = g->values[n->inputs[i]].constant;
    pq_tensor *outs[1] = {out};
    pq_error err;
    pq_error_clear(&err);
    pq_kernel_args a = {g, n, in, n->n_inputs, outs, 1, NULL, 1, &err};
    return fn(&a);
}

Test(onednn_conv_time, traced_call_matches_reference_and_prints_a_line) {
    cr_assert_eq(setenv("PIQC_ONEDNN_CONV_TIME", "1", 1), 0); /* read at the first call */
    pq_onednn_set_min_macs(0);
    char path[] = "/tmp/pq_conv_time_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    cr_assert(saved >= 0 && dup2(fd, 2) == 2);
    int64_t xd[4] = {1, 8, 9, 9}, wd[4] = {16, 8, 3, 3}, bd[1] = {16}, st[2] = {2, 2};
    pq_tensor *X = pq_test_nn_rand(PQ_DTYPE_F32, 4, xd, 3);
    pq_tensor *W = pq_test_nn_rand(PQ_DTYPE_F32, 4, wd, 4);
    pq_tensor *B = pq_test_nn_rand(PQ_DTYPE_F32, 1, bd, 5);
    const pq_tensor *in[3] = {X, W, B};
    uint32_t nid;
    pq_graph *g = pq_test_nn_node(PQ_OP_CONV, in, 3, 1, 1, &nid);
    pq_error err;
    cr_assert_eq(pq_node_set_ints(g, nid, "strides", st, 2, &err), PQ_OK);
    pq_tensor *want = conv_output(g, nid), *got = conv_output(g, nid);
    cr_assert_eq(run(pq_ref_run, g, nid, want), PQ_OK);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(run(pq_onednn_conv, g, nid, got), PQ_OK);
    fflush(stderr);
    cr_assert(dup2(saved, 2) == 2);
    close(saved);
    const float *w = want->data, *y = got->data;
    for (int64_t i = 0; i < pq_tensor_numel(want); i++)
        cr_assert(fabs((double)y[i] - w[i]) <= 1e-4 * (1.0 + fabs(w[i])), "element %lld",
                  (long long)i);
    FILE *f = fdopen(fd, "r");
    cr_assert_not_null(f);
    rewind(f);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "piqc_conv,", 10)) continue;
        lines++;
        cr_assert(strstr(line, ",n1 c8 m16 g1 in9 k3 s2,0,"), "line: %s", line);
        double us = atof(strrchr(line, ',') + 1);
        cr_assert(us > 0.0, "line: %s", line);
    }
    cr_assert_eq(lines, 2, "%d trace lines", lines);
    fclose(f);
    unlink(path);
    pq_tensor_destroy(want);
    pq_tensor_destroy(got);
    pq_tensor_destroy(X);
    pq_tensor_destroy(W);
    pq_tensor_destroy(B);
    pq_graph_destroy(g);
}
