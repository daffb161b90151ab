/* Tests of runtime/dataset.c: opening data folders (missing files, dtype/rank/dim/count mismatches,
 * labels required or absent, hostile .npy files, allocation failures), batch gathering of f32, i64
 * and f32-label rows, and the SHA-256 over the files' bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/frontends.h"
#include "ir/alloc.h"
#include "ir/text.h"
#include "runtime/dataset.h"

static char dir[256];
static pq_error err;

static void mk(void) {
    snprintf(dir, sizeof dir, "/tmp/piqc-dataset-XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp");
}

static void rm(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(dataset, .init = mk, .fini = rm);

/* Inputs x: f32[N, 3] and "tok:0": i64[N, 2] (file tok_0.npy); one Identity to an output. */
static pq_graph *graph(void) {
    static const char text[] = "piqc 1\n"
                               "graph g {\n"
                               "  symbols N\n"
                               "  input %x: f32[N, 3]\n"
                               "  input %\"tok:0\": i64[N, 2]\n"
                               "  %y = Identity(%x)\n"
                               "  output %y\n"
                               "}\n";
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    return g;
}

/* Writes DIR/name a tensor of dtype/shape whose element e is base + e. */
static void put(const char *name, enum pq_dtype dt, int rank, const int64_t *dims, double base) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert(t, "%s", err.msg);
    for (int64_t e = 0; e < pq_tensor_numel(t); e++)
        pq_dtype_store(dt, t->data, (size_t)e, base + (double)e);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_OK, "%s", err.msg);
    pq_tensor_destroy(t);
}

static void put_bytes(const char *name, const void *bytes, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* The standard folder: 5 samples, x = 0.., tok = 100.., labels (i64) = 7.. */
static void put_good(bool labels) {
    put("x.npy", PQ_DTYPE_F32, 2, (int64_t[]){5, 3}, 0);
    put("tok_0.npy", PQ_DTYPE_I64, 2, (int64_t[]){5, 2}, 100);
    if (labels) put("labels.npy", PQ_DTYPE_I64, 1, (int64_t[]){5}, 7);
}

/* Opens dir expecting failure with status st and a message containing each of the needles. */
static void expect_fail(const pq_graph *g, bool need, enum pq_status st, const char *needle1,
                        const char *needle2) {
    pq_dataset *d = (pq_dataset *)1;
    pq_error_clear(&err);
    cr_assert_eq(pq_dataset_open(dir, g, need, &d, &err), st, "status %d: %s", err.status, err.msg);
    cr_assert_null(d);
    cr_assert(strstr(err.msg, needle1), "'%s' not in: %s", needle1, err.msg);
    if (needle2) cr_assert(strstr(err.msg, needle2), "'%s' not in: %s", needle2, err.msg);
}

Test(dataset, opens_and_gathers) {
    pq_graph *g = graph();
    put_good(true);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, true, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_dataset_count(d), 5);
    cr_assert_eq(pq_dataset_n_inputs(d), 2);
    cr_assert_eq(pq_dataset_input(d, 0)->dtype, PQ_DTYPE_F32);
    cr_assert_eq(pq_dataset_input(d, 1)->dims[1], 2);
    cr_assert_null(pq_dataset_input(d, 2));
    cr_assert(strstr(pq_dataset_input_path(d, 1), "/tok_0.npy"));
    cr_assert_eq(pq_dataset_labels(d)->dtype, PQ_DTYPE_I64);

    pq_tensor *in[2], *lab = NULL;
    cr_assert_eq(pq_dataset_batch_alloc(d, 3, in, &lab, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(in[0]->dims[0], 3);
    cr_assert_eq(in[0]->dims[1], 3);
    cr_assert_eq(in[1]->dtype, PQ_DTYPE_I64);
    cr_assert_eq(lab->rank, 1);
    const int64_t idx[3] = {4, 0, 4};
    cr_assert_eq(pq_dataset_gather(d, idx, 3, in, lab, &err), PQ_OK, "%s", err.msg);
    const float *x = in[0]->data;
    const int64_t *t = in[1]->data, *l = lab->data;
    for (int k = 0; k < 3; k++) {
        for (int c = 0; c < 3; c++)
            cr_assert_eq(x[k * 3 + c], (float)(idx[k] * 3 + c));
        for (int c = 0; c < 2; c++)
            cr_assert_eq(t[k * 2 + c], 100 + idx[k] * 2 + c);
        cr_assert_eq(l[k], 7 + idx[k]);
    }
    /* labels may be skipped */
    const int64_t idx2[3] = {1, 2, 3};
    cr_assert_eq(pq_dataset_gather(d, idx2, 3, in, NULL, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(x[0], 3.0f);
    cr_assert_eq(l[0], 7 + 4); /* untouched */
    for (int i = 0; i < 2; i++)
        pq_tensor_destroy(in[i]);
    pq_tensor_destroy(lab);
    pq_dataset_destroy(d);
    pq_graph_destroy(g);
}

Test(dataset, f32_labels_and_sha256) {
    pq_graph *g = graph();
    put_good(false);
    put("labels.npy", PQ_DTYPE_F32, 2, (int64_t[]){5, 4}, 0.5);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, true, &d, &err), PQ_OK, "%s", err.msg);
    pq_tensor *in[2], *lab = NULL;
    cr_assert_eq(pq_dataset_batch_alloc(d, 2, in, &lab, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(lab->dtype, PQ_DTYPE_F32);
    cr_assert_eq(lab->dims[1], 4);
    const int64_t idx[2] = {3, 1};
    cr_assert_eq(pq_dataset_gather(d, idx, 2, in, lab, &err), PQ_OK, "%s", err.msg);
    const float *l = lab->data;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 4; c++)
            cr_assert_eq(l[k * 4 + c], 0.5f + (float)(idx[k] * 4 + c));

    /* SHA-256 of x.npy, tok_0.npy, labels.npy concatenated */
    unsigned char *all = NULL;
    size_t n_all = 0;
    const char *files[] = {"x.npy", "tok_0.npy", "labels.npy"};
    for (int f = 0; f < 3; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        unsigned char *b = NULL;
        size_t n = 0;
        cr_assert_eq(pq_file_read_all(path, 1 << 20, &b, &n, &err), PQ_OK);
        all = pq_realloc(all, n_all + n);
        memcpy(all + n_all, b, n);
        n_all += n;
        pq_free(b);
    }
    char hex[65];
    cr_assert_eq(pq_gguf_sha256_hex(all, n_all, hex, &err), PQ_OK);
    cr_assert_str_eq(pq_dataset_sha256(d), hex);
    pq_free(all);
    for (int i = 0; i < 2; i++)
        pq_tensor_destroy(in[i]);
    pq_tensor_destroy(lab);
    pq_dataset_destroy(d);
    pq_graph_destroy(g);
}

Test(dataset, labels_optional_unless_needed) {
    pq_graph *g = graph();
    put_good(false);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, false, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_null(pq_dataset_labels(d));
    pq_tensor *in[2], *lab = (pq_tensor *)1;
    cr_assert_eq(pq_dataset_batch_alloc(d, 1, in, &lab, &err), PQ_OK);
    cr_assert_null(lab);
    int64_t idx = 0;
    pq_tensor dummy = {0};
    cr_assert_eq(pq_dataset_gather(d, &idx, 1, in, &dummy, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "labels"), "%s", err.msg);
    for (int i = 0; i < 2; i++)
        pq_tensor_destroy(in[i]);
    pq_dataset_destroy(d);
    expect_fail(g, true, PQ_ERR_INVALID, "labels.npy", "missing");
    pq_graph_destroy(g);
}

Test(dataset, missing_input_file) {
    pq_graph *g = graph();
    put("x.npy", PQ_DTYPE_F32, 2, (int64_t[]){5, 3}, 0);
    expect_fail(g, false, PQ_ERR_IO, "tok_0.npy", "tok:0");
    pq_graph_destroy(g);
}

Test(dataset, missing_or_bad_folder) {
    pq_graph *g = graph();
    char path[512];
    pq_dataset *d = NULL;
    snprintf(path, sizeof path, "%s/nope", dir);
    cr_assert_eq(pq_dataset_open(path, g, false, &d, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, "nope"), "%s", err.msg);
    put_good(false);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    cr_assert_eq(pq_dataset_open(path, g, false, &d, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "not a directory"), "%s", err.msg);
    cr_assert_null(d);
    pq_graph_destroy(g);
}

Test(dataset, dtype_mismatch) {
    pq_graph *g = graph();
    put_good(true);
    put("x.npy", PQ_DTYPE_F64, 2, (int64_t[]){5, 3}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "dtype f64");
    put_good(false);
    put("tok_0.npy", PQ_DTYPE_I32, 2, (int64_t[]){5, 2}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "tok_0.npy", "is i64");
    pq_graph_destroy(g);
}

Test(dataset, rank_and_dim_mismatch) {
    pq_graph *g = graph();
    put_good(true);
    put("x.npy", PQ_DTYPE_F32, 2, (int64_t[]){5, 4}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "at axis 1");
    put("x.npy", PQ_DTYPE_F32, 3, (int64_t[]){5, 3, 1}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "rank 3");
    put("x.npy", PQ_DTYPE_F32, 1, (int64_t[]){3}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "rank 1");
    put("x.npy", PQ_DTYPE_F32, 0, NULL, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "rank 0");
    put("x.npy", PQ_DTYPE_F32, 2, (int64_t[]){0, 3}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", "0 samples");
    pq_graph_destroy(g);
}

Test(dataset, fixed_batch_dim_is_not_checked) {
    static const char text[] = "piqc 1\ngraph g {\n  input %x: f32[1, 3]\n  %y = Identity(%x)\n"
                               "  output %y\n}\n";
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    put("x.npy", PQ_DTYPE_F32, 2, (int64_t[]){5, 3}, 0);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, false, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_dataset_count(d), 5);
    pq_dataset_destroy(d);
    pq_graph_destroy(g);
}

Test(dataset, count_mismatch) {
    pq_graph *g = graph();
    put_good(true);
    put("tok_0.npy", PQ_DTYPE_I64, 2, (int64_t[]){4, 2}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "tok_0.npy", "4 samples");
    put_good(false);
    put("labels.npy", PQ_DTYPE_I64, 1, (int64_t[]){6}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "labels.npy", "6 samples");
    pq_graph_destroy(g);
}

Test(dataset, bad_labels) {
    pq_graph *g = graph();
    put_good(false);
    put("labels.npy", PQ_DTYPE_I32, 1, (int64_t[]){5}, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "labels.npy", "int64");
    put("labels.npy", PQ_DTYPE_I64, 0, NULL, 0);
    expect_fail(g, false, PQ_ERR_INVALID, "labels.npy", "sample axis");
    put_bytes("labels.npy", "garbage", 7);
    expect_fail(g, false, PQ_ERR_INVALID, "labels.npy", NULL);
    pq_graph_destroy(g);
}

Test(dataset, hostile_files) {
    pq_graph *g = graph();
    put_good(true);
    char path[512];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    unsigned char *b = NULL;
    size_t n = 0;
    cr_assert_eq(pq_file_read_all(path, 1 << 20, &b, &n, &err), PQ_OK);
    /* every truncation of a valid file fails cleanly */
    for (size_t cut = 0; cut < n; cut++) {
        put_bytes("x.npy", b, cut);
        expect_fail(g, false, PQ_ERR_INVALID, "x.npy", NULL);
    }
    /* huge dims in the header */
    const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
                       "3), }";
    unsigned char buf[256] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    size_t hl = sizeof hdr - 1, total = 10 + hl + 1;
    size_t pad = (64 - total % 64) % 64;
    buf[8] = (unsigned char)((hl + 1 + pad) & 0xff);
    buf[9] = (unsigned char)((hl + 1 + pad) >> 8);
    memcpy(buf + 10, hdr, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    put_bytes("x.npy", buf, total + pad);
    expect_fail(g, false, PQ_ERR_INVALID, "x.npy", NULL);
    /* a directory where a file should be */
    snprintf(path, sizeof path, "%s/x.npy", dir);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    pq_dataset *d = NULL;
    cr_assert_neq(pq_dataset_open(dir, g, false, &d, &err), PQ_OK);
    cr_assert_null(d);
    cr_assert(strstr(err.msg, "x.npy"), "%s", err.msg);
    pq_free(b);
    pq_graph_destroy(g);
}

Test(dataset, gather_errors_write_nothing) {
    pq_graph *g = graph();
    put_good(true);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, true, &d, &err), PQ_OK, "%s", err.msg);
    pq_tensor *in[2], *lab = NULL;
    cr_assert_eq(pq_dataset_batch_alloc(d, 2, in, &lab, &err), PQ_OK);
    int64_t bad[2] = {1, 5};
    cr_assert_eq(pq_dataset_gather(d, bad, 2, in, lab, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "index 5 at position 1"), "%s", err.msg);
    bad[1] = -1;
    cr_assert_eq(pq_dataset_gather(d, bad, 2, in, lab, &err), PQ_ERR_INVALID);
    cr_assert_eq(((float *)in[0]->data)[0], 0.0f);
    int64_t ok[1] = {2};
    cr_assert_eq(pq_dataset_gather(d, ok, 1, in, lab, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "input 0"), "%s", err.msg);
    cr_assert_eq(pq_dataset_gather(d, ok, 0, in, lab, &err), PQ_ERR_INVALID);
    for (int i = 0; i < 2; i++)
        pq_tensor_destroy(in[i]);
    pq_tensor_destroy(lab);
    cr_assert_eq(pq_dataset_batch_alloc(d, 0, in, &lab, &err), PQ_ERR_INVALID);
    cr_assert_null(in[0]);
    pq_dataset_destroy(d);
    pq_graph_destroy(g);
}

Test(dataset, labels_input_name_clash) {
    static const char text[] = "piqc 1\ngraph g {\n  input %labels: i64[?]\n"
                               "  %y = Identity(%labels)\n  output %y\n}\n";
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    put("labels.npy", PQ_DTYPE_I64, 1, (int64_t[]){4}, 0);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, false, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_null(pq_dataset_labels(d));
    cr_assert_eq(pq_dataset_count(d), 4);
    pq_dataset_destroy(d);
    expect_fail(g, true, PQ_ERR_INVALID, "labels.npy", "named 'labels'");
    pq_graph_destroy(g);
}

Test(dataset, no_inputs) {
    static const char text[] = "piqc 1\ngraph g {\n  const %c: f32[1] = [1.0]\n  output %c\n}\n";
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(text, strlen(text), NULL, 0, &g, &err), PQ_OK, "%s", err.msg);
    expect_fail(g, false, PQ_ERR_INVALID, "no inputs", NULL);
    put("labels.npy", PQ_DTYPE_F32, 1, (int64_t[]){3}, 0);
    pq_dataset *d = NULL;
    cr_assert_eq(pq_dataset_open(dir, g, false, &d, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_dataset_count(d), 3);
    pq_dataset_destroy(d);
    pq_graph_destroy(g);
}

Test(dataset, allocation_failures) {
    pq_graph *g = graph();
    put_good(true);
    for (long k = 0;; k++) {
        pq_dataset *d = NULL;
        pq_alloc_fail_after(k);
        enum pq_status st = pq_dataset_open(dir, g, true, &d, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            cr_assert_eq(pq_dataset_count(d), 5);
            pq_dataset_destroy(d);
            break;
        }
        cr_assert_eq(st, PQ_ERR_NOMEM, "k=%ld: %s", k, err.msg);
        cr_assert_null(d);
        cr_assert(k < 1000);
    }
    pq_graph_destroy(g);
}
