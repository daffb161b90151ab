/* Tests of .pir files: save/load round trips with and without the .pir.bin sidecar, atomic
 * writes that leave nothing behind on failure, and load errors naming the file. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/pir.h"
#include "ir/ir.h"

static pq_error err;
static char dir[64];

static void mk(void) {
    strcpy(dir, "/tmp/pq_pir_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int entries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void rm(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* x[N,4] -> MatMul(w[4,8] big) -> Relu -> If(cond){then: Neg(captured h)} -> y */
static pq_graph *graph(int big) {
    pq_graph *g = pq_graph_create(NULL, &err);
    g->name = pq_graph_strdup(g, "m");
    pq_graph_add_opset(g, "", 17, &err);
    uint32_t N = pq_graph_intern_symbol(g, "N");
    pq_shape sx = {2, {{-1, N}, {4, 0}}};
    uint32_t x, w, h, r, c, y;
    pq_graph_add_value(g, "x", PQ_DTYPE_F32, &sx, &x, &err);
    pq_graph_add_input(g, x, &err);
    pq_shape s0 = pq_shape_from_dims(0, NULL);
    pq_graph_add_value(g, "cond", PQ_DTYPE_BOOL, &s0, &c, &err);
    pq_graph_add_input(g, c, &err);
    int64_t wd[2] = {4, big ? 8 : 2};
    pq_tensor *wt = pq_tensor_create(PQ_DTYPE_F32, 2, wd, &err);
    for (int i = 0; i < 4 * wd[1]; i++)
        ((float *)wt->data)[i] = (float)i / 7.0f;
    pq_graph_add_value(g, "w", PQ_DTYPE_F32, NULL, &w, &err);
    pq_graph_set_constant(g, w, wt, &err);
    pq_graph_add_value(g, "h", PQ_DTYPE_UNDEFINED, NULL, &h, &err);
    pq_graph_add_value(g, "r", PQ_DTYPE_UNDEFINED, NULL, &r, &err);
    pq_graph_add_value(g, "y", PQ_DTYPE_UNDEFINED, NULL, &y, &err);
    uint32_t mi[2] = {x, w}, nid;
    pq_graph_add_node(g, PQ_OP_MATMUL, "mm", mi, 2, &h, 1, NULL, &err);
    pq_graph_add_node(g, PQ_OP_RELU, "relu", &h, 1, &r, 1, NULL, &err);
    pq_graph_add_node(g, PQ_OP_IF, "if", &c, 1, &y, 1, &nid, &err);
    for (int b = 0; b < 2; b++) {
        pq_graph *s = pq_graph_create(g, &err);
        uint32_t cr_, o;
        pq_graph_capture(s, "r", &cr_, &err);
        pq_graph_add_value(s, "o", PQ_DTYPE_UNDEFINED, NULL, &o, &err);
        pq_graph_add_node(s, b ? PQ_OP_IDENTITY : PQ_OP_NEG, NULL, &cr_, 1, &o, 1, NULL, &err);
        pq_graph_add_output(s, o, &err);
        cr_assert_eq(pq_node_set_graph(g, nid, b ? "else_branch" : "then_branch", s, &err), PQ_OK);
    }
    pq_graph_add_output(g, y, &err);
    cr_assert_eq(pq_graph_verify_structure(g, &err), PQ_OK, "%s", err.msg);
    return g;
}

static char *text_of(const pq_graph *g) {
    char *s;
    pq_text_bin b = {0};
    cr_assert_eq(pq_text_print_string(g, &b, &s, &err), PQ_OK, "%s", err.msg);
    pq_text_bin_free(&b);
    return s;
}

Test(pir, save_load_roundtrip_with_sidecar) {
    mk();
    pq_graph *g = graph(1);
    char path[128], bpath[160];
    snprintf(path, sizeof path, "%s/model.pir", dir);
    snprintf(bpath, sizeof bpath, "%s.bin", path);
    cr_assert_eq(pq_pir_save(g, path, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(access(bpath, F_OK), 0, "big constant needs a sidecar");
    cr_assert_eq(entries(), 2);
    pq_graph *g2 = NULL;
    cr_assert_eq(pq_pir_load(path, &g2, &err), PQ_OK, "%s", err.msg);
    char *a = text_of(g), *b = text_of(g2);
    cr_assert_str_eq(a, b);
    const pq_tensor *w1 = g->values[pq_graph_find_value(g, "w")].constant;
    const pq_tensor *w2 = g2->values[pq_graph_find_value(g2, "w")].constant;
    cr_assert_eq(memcmp(w1->data, w2->data, w1->nbytes), 0);
    pq_free(a);
    pq_free(b);
    pq_graph_destroy(g2);

    /* saving a graph without big constants removes the stale sidecar */
    pq_graph *small = graph(0);
    cr_assert_eq(pq_pir_save(small, path, &err), PQ_OK, "%s", err.msg);
    cr_assert_neq(access(bpath, F_OK), 0);
    cr_assert_eq(entries(), 1);
    cr_assert_eq(pq_pir_load(path, &g2, &err), PQ_OK, "%s", err.msg);
    a = text_of(small);
    b = text_of(g2);
    cr_assert_str_eq(a, b);
    cr_assert(strstr(a, "const %w: f32[4, 2] = [0, 0.14285715, 0.2857143"), "%s", a);
    pq_free(a);
    pq_free(b);
    pq_graph_destroy(g2);
    pq_graph_destroy(small);
    pq_graph_destroy(g);
    rm();
}

Test(pir, save_failures_leave_nothing) {
    mk();
    pq_graph *g = graph(1);
    char path[128];
    snprintf(path, sizeof path, "%s/nodir/model.pir", dir);
    pq_error_clear(&err);
    cr_assert_eq(pq_pir_save(g, path, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    /* target is a directory: rename fails after the sidecar was written; temp removed */
    snprintf(path, sizeof path, "%s/d.pir", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(pq_pir_save(g, path, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert_null(strstr(e->d_name, ".tmp"), "temp file %s left", e->d_name);
    closedir(d);
    pq_graph_destroy(g);
    rm();
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_load_fail(const char *path, enum pq_status want, const char *needle) {
    pq_graph *g = (pq_graph *)1;
    pq_error_clear(&err);
    enum pq_status st = pq_pir_load(path, &g, &err);
    cr_assert_eq(st, want, "%d: %s", st, err.msg);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, path), "message should name the file: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(pir, load_errors_name_the_file) {
    mk();
    char path[128], bpath[160];
    snprintf(path, sizeof path, "%s/m.pir", dir);
    snprintf(bpath, sizeof bpath, "%s.bin", path);
    expect_load_fail(path, PQ_ERR_IO, "cannot open");
    pq_graph *g = graph(1);
    cr_assert_eq(pq_pir_save(g, path, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);
    /* corrupt one sidecar byte: checksum mismatch */
    FILE *f = fopen(bpath, "r+b");
    fseek(f, 5, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    expect_load_fail(path, PQ_ERR_INVALID, "sidecar data has SHA-256");
    /* truncated sidecar */
    write_file(bpath, "abc", 3);
    expect_load_fail(path, PQ_ERR_INVALID, "outside the sidecar (3 bytes)");
    /* missing sidecar */
    unlink(bpath);
    expect_load_fail(path, PQ_ERR_INVALID, "no sidecar was given");
    /* syntax error with position */
    const char *bad = "piqc 1\ngraph g {\n  input %x: f32[2]\n  %y = Relu(%x, \n";
    write_file(path, bad, strlen(bad));
    expect_load_fail(path, PQ_ERR_INVALID, "line 5, column 1: expected");
    /* parses, but structurally invalid: Add with one input */
    const char *arity = "piqc 1\ngraph g {\n  input %x: f32[2]\n  %y = Add(%x)\n  output %y\n}\n";
    write_file(path, arity, strlen(arity));
    expect_load_fail(path, PQ_ERR_INVALID, "node 'Add_0' (Add) has 1 inputs");
    /* binary garbage */
    write_file(path, "\x00\xff\x13", 3);
    expect_load_fail(path, PQ_ERR_INVALID, "line 1, column 1");
    rm();
}
