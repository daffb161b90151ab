/* Tests of the .npy reader/writer: numpy-written fixtures of every dtype and version (made by
 * scripts/make_npy_fixtures.py), write/read round trips, numpy reading our files, hostile headers.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/npy.h"
#include "ir/ir.h"

#define FIX(name) PQ_SOURCE_DIR "/tests/data/npy/" name

static pq_tensor *load_ok(const char *path) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *t = NULL;
    enum pq_status st = pq_npy_read(path, &t, &err);
    cr_assert_eq(st, PQ_OK, "%s: %s", path, err.msg);
    cr_assert_not_null(t);
    return t;
}

static void assert_shape23(const pq_tensor *t) {
    cr_assert_eq(t->rank, 2);
    cr_assert_eq(t->dims[0], 2);
    cr_assert_eq(t->dims[1], 3);
}

Test(npy, every_dtype_fixture) {
    static const struct {
        const char *file;
        enum pq_dtype dt;
        int kind; /* 0: value i-3, 1: value i, 2: bool i%2 */
    } cases[] = {
        {FIX("f4.npy"), PQ_DTYPE_F32, 0},        {FIX("f8.npy"), PQ_DTYPE_F64, 0},
        {FIX("f2.npy"), PQ_DTYPE_F16, 0},        {FIX("i1.npy"), PQ_DTYPE_I8, 0},
        {FIX("i2.npy"), PQ_DTYPE_I16, 0},        {FIX("i4.npy"), PQ_DTYPE_I32, 0},
        {FIX("i8.npy"), PQ_DTYPE_I64, 0},        {FIX("u1.npy"), PQ_DTYPE_U8, 1},
        {FIX("u2.npy"), PQ_DTYPE_U16, 1},        {FIX("u4.npy"), PQ_DTYPE_U32, 1},
        {FIX("u8.npy"), PQ_DTYPE_U64, 1},        {FIX("b1.npy"), PQ_DTYPE_BOOL, 2},
        {FIX("reordered.npy"), PQ_DTYPE_F32, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pq_tensor *t = load_ok(cases[c].file);
        cr_assert_eq(t->dtype, cases[c].dt, "%s", cases[c].file);
        assert_shape23(t);
        cr_assert_eq(t->nbytes, 6 * pq_dtype_size(cases[c].dt));
        for (int i = 0; i < 6; i++) {
            double want = cases[c].kind == 0 ? i - 3 : cases[c].kind == 1 ? i : i % 2;
            cr_assert_eq(pq_dtype_load(t->dtype, t->data, (size_t)i), want, "%s element %d",
                         cases[c].file, i);
        }
        pq_tensor_destroy(t);
    }
}

Test(npy, versions_2_and_3) {
    const char *files[] = {FIX("v2.npy"), FIX("v3.npy")};
    for (int f = 0; f < 2; f++) {
        pq_tensor *t = load_ok(files[f]);
        cr_assert_eq(t->dtype, PQ_DTYPE_F32);
        cr_assert_eq(t->rank, 3);
        cr_assert_eq(t->dims[0], 2);
        cr_assert_eq(t->dims[1], 3);
        cr_assert_eq(t->dims[2], 4);
        const float *d = t->data;
        for (int i = 0; i < 24; i++)
            cr_assert_eq(d[i], i * 0.5f);
        pq_tensor_destroy(t);
    }
}

Test(npy, scalar_empty_vector_special) {
    pq_tensor *t = load_ok(FIX("scalar.npy"));
    cr_assert_eq(t->rank, 0);
    cr_assert_eq(t->dtype, PQ_DTYPE_F64);
    cr_assert_eq(*(double *)t->data, 2.5);
    pq_tensor_destroy(t);

    t = load_ok(FIX("empty.npy"));
    cr_assert_eq(t->rank, 2);
    cr_assert_eq(t->dims[0], 0);
    cr_assert_eq(t->dims[1], 3);
    cr_assert_eq(t->nbytes, 0);
    pq_tensor_destroy(t);

    t = load_ok(FIX("vector.npy"));
    cr_assert_eq(t->rank, 1);
    cr_assert_eq(t->dims[0], 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(((int64_t *)t->data)[i], i);
    pq_tensor_destroy(t);

    t = load_ok(FIX("special_f4.npy"));
    const float *f = t->data;
    cr_assert(isinf(f[0]) && f[0] > 0);
    cr_assert(isinf(f[1]) && f[1] < 0);
    cr_assert(isnan(f[2]));
    cr_assert(f[3] == 0 && signbit(f[3]));
    cr_assert_eq(f[4], 1e-45f);
    cr_assert_eq(f[5], 3.4028235e38f);
    pq_tensor_destroy(t);
}

static void expect_fail(const char *path, enum pq_status want, const char *needle) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *t = (pq_tensor *)1;
    enum pq_status st = pq_npy_read(path, &t, &err);
    cr_assert_eq(st, want, "%s: got %d (%s)", path, st, err.msg);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, path), "message should name the file: %s", err.msg);
    if (needle) cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(npy, unsupported_and_invalid_files) {
    expect_fail(FIX("big_endian.npy"), PQ_ERR_UNSUPPORTED, "big-endian");
    expect_fail(FIX("fortran.npy"), PQ_ERR_UNSUPPORTED, "fortran_order");
    expect_fail(FIX("complex.npy"), PQ_ERR_UNSUPPORTED, "<c8");
    expect_fail(FIX("short_data.npy"), PQ_ERR_INVALID, "data is 20 bytes");
    expect_fail(PQ_SOURCE_DIR "/tests/data/npy/does_not_exist.npy", PQ_ERR_IO, NULL);
}

/* A temp dir per test, removed with its files at the end. */
static char tmpdir[64];

static void make_tmpdir(void) {
    strcpy(tmpdir, "/tmp/pq_npy_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (remove(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

Test(npy, write_read_roundtrip_every_dtype) {
    make_tmpdir();
    for (int dt = PQ_DTYPE_F32; dt < PQ_DTYPE_COUNT; dt++) {
        if (dt == PQ_DTYPE_BF16) continue;
        int64_t dims[3] = {2, 1, 5};
        pq_error err;
        pq_tensor *t = pq_tensor_create((enum pq_dtype)dt, 3, dims, &err);
        cr_assert_not_null(t);
        for (size_t i = 0; i < 10; i++)
            pq_dtype_store(t->dtype, t->data, i, (double)(i % 7));
        char path[128];
        snprintf(path, sizeof path, "%s/%s.npy", tmpdir, pq_dtype_name(t->dtype));
        cr_assert_eq(pq_npy_write(path, t, &err), PQ_OK, "%s", err.msg);
        pq_tensor *r = load_ok(path);
        cr_assert_eq(r->dtype, t->dtype);
        cr_assert_eq(r->rank, 3);
        cr_assert_eq(memcmp(r->dims, dims, sizeof dims), 0);
        cr_assert_eq(r->nbytes, t->nbytes);
        cr_assert_eq(memcmp(r->data, t->data, t->nbytes), 0);
        /* the buffer variant encodes the same bytes */
        unsigned char *buf;
        size_t len;
        cr_assert_eq(pq_npy_write_buffer(t, &buf, &len, &err), PQ_OK);
        cr_assert_eq(len % 64, t->nbytes % 64, "header is 64-byte aligned");
        pq_tensor *b;
        cr_assert_eq(pq_npy_read_buffer(buf, len, "buf", &b, &err), PQ_OK, "%s", err.msg);
        cr_assert_eq(memcmp(b->data, t->data, t->nbytes), 0);
        pq_free(buf);
        pq_tensor_destroy(b);
        pq_tensor_destroy(r);
        pq_tensor_destroy(t);
    }
    cr_assert_eq(count_entries(tmpdir), PQ_DTYPE_COUNT - 2, "no temporary files left behind");
    remove_tmpdir();
}

Test(npy, numpy_reads_our_files) {
    if (access("/usr/bin/python3", X_OK) != 0) cr_skip_test("no /usr/bin/python3");
    make_tmpdir();
    pq_error err;
    int64_t d23[2] = {2, 3};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 2, d23, &err);
    for (int i = 0; i < 6; i++)
        ((float *)t->data)[i] = (float)i - 3.0f;
    char p1[128], p2[128], p3[128], cmd[1024];
    snprintf(p1, sizeof p1, "%s/a.npy", tmpdir);
    cr_assert_eq(pq_npy_write(p1, t, &err), PQ_OK);
    pq_tensor_destroy(t);
    t = pq_tensor_create(PQ_DTYPE_BOOL, 0, NULL, &err);
    *(unsigned char *)t->data = 1;
    snprintf(p2, sizeof p2, "%s/b.npy", tmpdir);
    cr_assert_eq(pq_npy_write(p2, t, &err), PQ_OK);
    pq_tensor_destroy(t);
    int64_t d1[1] = {4};
    t = pq_tensor_create(PQ_DTYPE_U16, 1, d1, &err);
    for (int i = 0; i < 4; i++)
        ((uint16_t *)t->data)[i] = (uint16_t)(60000 + i);
    snprintf(p3, sizeof p3, "%s/c.npy", tmpdir);
    cr_assert_eq(pq_npy_write(p3, t, &err), PQ_OK);
    pq_tensor_destroy(t);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys, numpy as np\n"
             "a = np.load(sys.argv[1]); b = np.load(sys.argv[2]); c = np.load(sys.argv[3])\n"
             "ok = a.dtype == np.float32 and a.shape == (2, 3) and (a.ravel() == np.arange(6) - "
             "3).all()\n"
             "ok = ok and b.dtype == np.bool_ and b.shape == () and bool(b)\n"
             "ok = ok and c.dtype == np.uint16 and (c == np.arange(60000, 60004)).all()\n"
             "sys.exit(0 if ok else 1)\" %s %s %s",
             p1, p2, p3);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "numpy rejected or misread our .npy files");
    remove_tmpdir();
}

Test(npy, write_failures_leave_nothing) {
    make_tmpdir();
    pq_error err;
    int64_t d[1] = {3};
    pq_tensor *t = pq_tensor_create(PQ_DTYPE_F32, 1, d, &err);
    /* the target is a directory: rename fails, the temporary file must be removed */
    char path[128];
    snprintf(path, sizeof path, "%s/sub", tmpdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    pq_error_clear(&err);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(count_entries(tmpdir), 1);
    /* missing directory */
    snprintf(path, sizeof path, "%s/nodir/x.npy", tmpdir);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    pq_tensor_destroy(t);
    /* bf16 has no descr */
    t = pq_tensor_create(PQ_DTYPE_BF16, 1, d, &err);
    snprintf(path, sizeof path, "%s/bf.npy", tmpdir);
    cr_assert_eq(pq_npy_write(path, t, &err), PQ_ERR_UNSUPPORTED);
    cr_assert_eq(count_entries(tmpdir), 1);
    pq_tensor_destroy(t);
    remove_tmpdir();
}

/* Builds a version-1.0 file from a header dict and data bytes. */
static size_t build(unsigned char *buf, size_t cap, const char *dict, const void *data, size_t n) {
    size_t dl = strlen(dict);
    size_t total = 10 + dl + 1;
    cr_assert(total + n <= cap);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((dl + 1) & 0xff);
    buf[9] = (unsigned char)((dl + 1) >> 8);
    memcpy(buf + 10, dict, dl);
    buf[10 + dl] = '\n';
    if (n) memcpy(buf + total, data, n);
    return total + n;
}

static void expect_buf(const void *buf, size_t len, enum pq_status want, const char *needle) {
    pq_error err;
    pq_error_clear(&err);
    pq_tensor *t = NULL;
    enum pq_status st = pq_npy_read_buffer(buf, len, "hostile.npy", &t, &err);
    cr_assert_eq(st, want, "got %d (%s), wanted %d", st, err.msg, want);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "hostile.npy"), "message should name the file: %s", err.msg);
    if (needle) cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(npy, hostile_headers) {
    unsigned char b[512];
    unsigned char data[64] = {0};
    size_t n;
    expect_buf("", 0, PQ_ERR_INVALID, "magic");
    expect_buf("\x93NUMPX\x01\x00\x10\x00", 10, PQ_ERR_INVALID, "magic");
    expect_buf("\x93NUMPY\x04\x00\x10\x00", 10, PQ_ERR_UNSUPPORTED, "version 4.0");
    /* header length past the end (v1) and huge (v2) */
    expect_buf("\x93NUMPY\x01\x00\xff\xff{", 11, PQ_ERR_INVALID, "past the end");
    expect_buf("\x93NUMPY\x02\x00\xff\xff\xff\xff{", 13, PQ_ERR_INVALID, "exceeds the limit");
    expect_buf("\x93NUMPY\x02\x00\x10", 9, PQ_ERR_INVALID, "magic");
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627777,), }",
              data, 0);
    expect_buf(b, n, PQ_ERR_INVALID, "2^40");
    n = build(b, sizeof b,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
              data, 0);
    expect_buf(b, n, PQ_ERR_INVALID, "2^40");
    n = build(b, sizeof b,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 2), }", data,
              0);
    expect_buf(b, n, PQ_ERR_INVALID, "2^40");
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "negative");
    n = build(b, sizeof b,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", data, 4);
    expect_buf(b, n, PQ_ERR_UNSUPPORTED, "dimensions");
    n = build(b, sizeof b, "{'descr': '<f4', 'shape': (1,), }", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "fortran_order");
    n = build(b, sizeof b,
              "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "twice");
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", data,
              4);
    expect_buf(b, n, PQ_ERR_INVALID, "unknown header key 'x'");
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "padding");
    n = build(b, sizeof b, "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, NULL);
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "True or False");
    n = build(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", data, 4);
    expect_buf(b, n, PQ_ERR_INVALID, "shape tuple");
    n = build(b, sizeof b, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", data,
              4);
    expect_buf(b, n, PQ_ERR_UNSUPPORTED, "structured");
    n = build(b, sizeof b, "{'descr': '<V2', 'fortran_order': False, 'shape': (1,)}", data, 4);
    expect_buf(b, n, PQ_ERR_UNSUPPORTED, "<V2");
    n = build(b, sizeof b, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,)}", data, 8);
    expect_buf(b, n, PQ_ERR_UNSUPPORTED, "big-endian");
    n = build(b, sizeof b, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}", data, 23);
    expect_buf(b, n, PQ_ERR_INVALID, "need 24");
    unsigned char two[2] = {1, 2};
    n = build(b, sizeof b, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", two, 2);
    expect_buf(b, n, PQ_ERR_INVALID, "bool element 1");
    /* well-formed variants are accepted: Python 2 longs, trailing data */
    n = build(b, sizeof b, "{'descr': '<i2', 'fortran_order': False, 'shape': (2L, 1L), }", data,
              10);
    pq_tensor *t = NULL;
    pq_error err;
    cr_assert_eq(pq_npy_read_buffer(b, n, "ok", &t, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(t->rank, 2);
    cr_assert_eq(t->dims[0], 2);
    pq_tensor_destroy(t);
}

Test(npy, every_truncation_and_byte_flip_is_clean) {
    unsigned char *file;
    size_t len;
    pq_error err;
    pq_tensor *t = load_ok(FIX("v2.npy"));
    cr_assert_eq(pq_npy_write_buffer(t, &file, &len, &err), PQ_OK);
    pq_tensor_destroy(t);
    for (size_t cut = 0; cut < len; cut++) {
        pq_tensor *r = NULL;
        enum pq_status st = pq_npy_read_buffer(file, cut, "cut", &r, &err);
        cr_assert_eq(st, PQ_ERR_INVALID, "truncated at %zu: %d %s", cut, st, err.msg);
        cr_assert_null(r);
    }
    unsigned char *copy = malloc(len);
    for (size_t pos = 0; pos < 128 && pos < len; pos++) {
        static const unsigned char vals[] = {0x00, 0xff, '(', ')', '\'', ',', '9', '{', '}'};
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, file, len);
            copy[pos] = vals[v];
            pq_tensor *r = NULL;
            enum pq_status st = pq_npy_read_buffer(copy, len, "flip", &r, &err);
            if (st == PQ_OK) {
                cr_assert_not_null(r);
                cr_assert_leq(r->nbytes, len);
            } else {
                cr_assert_null(r);
                cr_assert(st == PQ_ERR_INVALID || st == PQ_ERR_UNSUPPORTED, "%d %s", st, err.msg);
            }
            pq_tensor_destroy(r);
        }
    }
    free(copy);
    pq_free(file);
}

Test(npy, allocation_failures_are_clean) {
    unsigned char *file;
    size_t len;
    pq_error err;
    pq_tensor *t = load_ok(FIX("f8.npy"));
    cr_assert_eq(pq_npy_write_buffer(t, &file, &len, &err), PQ_OK);
    pq_tensor_destroy(t);
    for (long k = 0; k < 4; k++) {
        pq_alloc_fail_after(k);
        pq_tensor *r = NULL;
        enum pq_status st = pq_npy_read_buffer(file, len, "f8", &r, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            pq_tensor_destroy(r);
            break;
        }
        cr_assert_eq(st, PQ_ERR_NOMEM);
        cr_assert_null(r);
    }
    pq_free(file);
}
