/* Tests of the GGUF layer: key/value and tensor round trips of every type (packed 40/41 with
 * partial groups), alignment, strict bounded reading of hostile files (every truncation, huge
 * counts, bad dims/types), tamper detection, atomic writes that leave nothing on failure. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "frontends/gguf.h"
#include "ir/alloc.h"

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void) {
    strcpy(tmpdir, "/tmp/pq_gguf_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    }
    closedir(d);
    return n;
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Asserts success, printing the error message of the local `err`. */
#define OK(expr)                                                                                   \
    do {                                                                                           \
        enum pq_status s_ = (expr);                                                                \
        cr_assert_eq(s_, PQ_OK, "%s", err.msg);                                                    \
    } while (0)

/* memmem is a GNU extension: a plain search. */
static void *find_bytes(const void *hay, size_t n, const void *needle, size_t m) {
    const unsigned char *h = hay;
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp(h + i, needle, m) == 0) return (void *)(h + i);
    return NULL;
}

/* Tensor data used by the fixtures (static so it outlives the writes). */
static float f32_data[2 * 3 * 4];
static uint16_t f16_data[5];
static int8_t i8_data[7];
static int16_t i16_data[3];
static int32_t i32_data[4];
static int64_t i64_data[2];
static double f64_data[3];
static uint16_t bf16_data[6];
static uint8_t piq3_data[4096];
static uint8_t piq2_data[4096];

static void fill_data(void) {
    for (int i = 0; i < 24; i++)
        f32_data[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 5; i++)
        f16_data[i] = pq_f32_to_f16((float)i - 2.0f);
    for (int i = 0; i < 7; i++)
        i8_data[i] = (int8_t)(i * 37 - 128);
    for (int i = 0; i < 3; i++)
        i16_data[i] = (int16_t)(i * 20000 - 20000);
    for (int i = 0; i < 4; i++)
        i32_data[i] = i * 700000001 - 1000000007;
    i64_data[0] = INT64_MIN;
    i64_data[1] = INT64_MAX;
    for (int i = 0; i < 3; i++)
        f64_data[i] = 1.0 / (i + 3);
    for (int i = 0; i < 6; i++)
        bf16_data[i] = pq_f32_to_bf16((float)i * 1.25f);
    for (size_t i = 0; i < sizeof piq3_data; i++)
        piq3_data[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < sizeof piq2_data; i++)
        piq2_data[i] = (uint8_t)(i * 29 + 3);
}

/* A piqc GGUF with every tensor type (packed ones with partial groups). */
static pq_gguf *make_all_tensors(void) {
    pq_error err;
    pq_error_clear(&err);
    fill_data();
    pq_gguf *g = pq_gguf_create(&err);
    cr_assert_not_null(g);
    OK(pq_gguf_set_string(g, "general.architecture", "piqc", &err));
    int64_t d_f32[3] = {4, 3, 2};
    OK(pq_gguf_add_tensor(g, "w.f32", 3, d_f32, PQ_GGUF_T_F32, f32_data, sizeof f32_data, &err));
    int64_t d5[1] = {5};
    OK(pq_gguf_add_tensor(g, "w.f16", 1, d5, PQ_GGUF_T_F16, f16_data, sizeof f16_data, &err));
    int64_t d7[2] = {7, 1};
    OK(pq_gguf_add_tensor(g, "w.i8", 2, d7, PQ_GGUF_T_I8, i8_data, sizeof i8_data, &err));
    int64_t d3[1] = {3};
    OK(pq_gguf_add_tensor(g, "w.i16", 1, d3, PQ_GGUF_T_I16, i16_data, sizeof i16_data, &err));
    int64_t d4[2] = {2, 2};
    OK(pq_gguf_add_tensor(g, "w.i32", 2, d4, PQ_GGUF_T_I32, i32_data, sizeof i32_data, &err));
    int64_t d2[1] = {2};
    OK(pq_gguf_add_tensor(g, "w.i64", 1, d2, PQ_GGUF_T_I64, i64_data, sizeof i64_data, &err));
    OK(pq_gguf_add_tensor(g, "w.f64", 1, d3, PQ_GGUF_T_F64, f64_data, sizeof f64_data, &err));
    int64_t d6[2] = {3, 2};
    OK(pq_gguf_add_tensor(g, "w.bf16", 2, d6, PQ_GGUF_T_BF16, bf16_data, sizeof bf16_data, &err));
    int64_t d_empty[2] = {0, 4};
    OK(pq_gguf_add_tensor(g, "w.empty", 2, d_empty, PQ_GGUF_T_F32, NULL, 0, &err));
    /* packed: rows x cols with cols not a multiple of the group (partial last group) */
    struct {
        const char *name;
        uint32_t type, k, group;
        int64_t rows, cols;
        enum pq_qformat fmt;
        const uint8_t *data;
    } pk[] = {
        {"w.piq3", PQ_GGUF_T_PIQ3, 4, 16, 3, 20, PQ_QFORMAT_PIQ3, piq3_data},
        {"w.piq2", PQ_GGUF_T_PIQ2, 3, 8, 5, 13, PQ_QFORMAT_PIQ2, piq2_data},
        {"w.q3", PQ_GGUF_T_PIQ3, 0, 256, 2, 300, PQ_QFORMAT_Q3, piq3_data},
        {"w.q2", PQ_GGUF_T_PIQ2, 0, 32, 4, 7, PQ_QFORMAT_Q2, piq2_data},
    };
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        char key[96];
        snprintf(key, sizeof key, "piqc.k.%s", pk[i].name);
        OK(pq_gguf_set_u32(g, key, pk[i].k, &err));
        snprintf(key, sizeof key, "piqc.group.%s", pk[i].name);
        OK(pq_gguf_set_u32(g, key, pk[i].group, &err));
        int64_t dims[2] = {pk[i].cols, pk[i].rows};
        size_t n = pq_packed_bytes(pk[i].fmt, pk[i].rows, pk[i].cols, pk[i].group);
        cr_assert(n > 0 && n <= sizeof piq3_data);
        OK(pq_gguf_add_tensor(g, pk[i].name, 2, dims, pk[i].type, pk[i].data, n, &err));
    }
    return g;
}

static pq_gguf *write_read(const pq_gguf *g, const char *name, unsigned flags) {
    pq_error err;
    pq_error_clear(&err);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    OK(pq_gguf_write(g, path, &err));
    pq_gguf *r = NULL;
    OK(pq_gguf_read(path, &r, flags, &err));
    cr_assert_not_null(r);
    return r;
}

/* Reads a buffer that must be rejected; returns the message (static). */
static const char *reject(const void *buf, size_t len, unsigned flags) {
    static pq_error err;
    pq_error_clear(&err);
    pq_gguf *r = (pq_gguf *)1;
    enum pq_status st = pq_gguf_read_buffer(buf, len, flags, &r, &err);
    cr_assert_neq(st, PQ_OK, "accepted a bad file (%zu bytes)", len);
    cr_assert_null(r);
    cr_assert(err.msg[0] != '\0');
    cr_assert(strncmp(err.msg, "gguf '<buffer>': ", 17) == 0, "message: %s", err.msg);
    return err.msg;
}

/* ---- hand-made files ---- */

typedef struct {
    unsigned char b[8192];
    size_t n;
} fbuf;

static void put(fbuf *f, const void *p, size_t n) {
    cr_assert(f->n + n <= sizeof f->b);
    memcpy(f->b + f->n, p, n);
    f->n += n;
}
static void put_u32(fbuf *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(f, b, 4);
}
static void put_u64(fbuf *f, uint64_t v) {
    put_u32(f, (uint32_t)v);
    put_u32(f, (uint32_t)(v >> 32));
}
static void put_str(fbuf *f, const char *s) {
    put_u64(f, strlen(s));
    put(f, s, strlen(s));
}
static void put_header(fbuf *f, uint32_t version, uint64_t nt, uint64_t nkv) {
    f->n = 0;
    put(f, "GGUF", 4);
    put_u32(f, version);
    put_u64(f, nt);
    put_u64(f, nkv);
}
static void put_kv_str(fbuf *f, const char *k, const char *v) {
    put_str(f, k);
    put_u32(f, PQ_GGUF_STRING);
    put_str(f, v);
}
static void put_kv_u32(fbuf *f, const char *k, uint32_t v) {
    put_str(f, k);
    put_u32(f, PQ_GGUF_U32);
    put_u32(f, v);
}
/* tensor info with n dims */
static void put_info(fbuf *f, const char *name, uint32_t nd, const uint64_t *dims, uint32_t type,
                     uint64_t off) {
    put_str(f, name);
    put_u32(f, nd);
    for (uint32_t i = 0; i < nd; i++)
        put_u64(f, dims[i]);
    put_u32(f, type);
    put_u64(f, off);
}
static const unsigned char junk[256] = {1, 2, 3, 4, 5, 6, 7, 8};
static void pad_to(fbuf *f, size_t al) {
    static const unsigned char z[64];
    put(f, z, (al - f->n % al) % al);
}

/* ---- tests ---- */

Test(gguf, kv_roundtrip_every_type, .init = make_tmpdir, .fini = remove_tmpdir) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = pq_gguf_create(&err);
    cr_assert_not_null(g);
    OK(pq_gguf_set_u8(g, "t.u8", 255, &err));
    OK(pq_gguf_set_i8(g, "t.i8", -128, &err));
    OK(pq_gguf_set_u16(g, "t.u16", 65535, &err));
    OK(pq_gguf_set_i16(g, "t.i16", -32768, &err));
    OK(pq_gguf_set_u32(g, "t.u32", 4000000000u, &err));
    OK(pq_gguf_set_i32(g, "t.i32", INT32_MIN, &err));
    OK(pq_gguf_set_u64(g, "t.u64", UINT64_MAX, &err));
    OK(pq_gguf_set_i64(g, "t.i64", INT64_MIN, &err));
    OK(pq_gguf_set_f32(g, "t.f32", -1.5e-7f, &err));
    OK(pq_gguf_set_f64(g, "t.f64", 3.141592653589793, &err));
    OK(pq_gguf_set_bool(g, "t.bool", true, &err));
    OK(pq_gguf_set_bool(g, "t.false", false, &err));
    OK(pq_gguf_set_string(g, "t.str", "héllo wörld", &err));
    OK(pq_gguf_set_string(g, "t.empty", "", &err));
    OK(pq_gguf_set_string_n(g, "t.nul", "a\0b", 3, &err));
    OK(pq_gguf_set_u32(g, "t.replaced", 1, &err));
    OK(pq_gguf_set_u32(g, "t.replaced", 2, &err)); /* replaces, keeps one key */
    uint8_t au8[] = {0, 1, 255};
    int8_t ai8[] = {-128, 0, 127};
    uint16_t au16[] = {0, 65535};
    int16_t ai16[] = {-32768, 32767};
    uint32_t au32[] = {0, 1, UINT32_MAX};
    int32_t ai32[] = {INT32_MIN, INT32_MAX};
    uint64_t au64[] = {UINT64_MAX, 0};
    int64_t ai64[] = {INT64_MIN, -1, INT64_MAX};
    float af32[] = {1.0f, -0.0f, INFINITY};
    double af64[] = {1e300, -2.5};
    bool abool[] = {true, false, true};
    const char *astr[] = {"one", "", "three"};
    OK(pq_gguf_set_array(g, "a.u8", PQ_GGUF_U8, au8, 3, &err));
    OK(pq_gguf_set_array(g, "a.i8", PQ_GGUF_I8, ai8, 3, &err));
    OK(pq_gguf_set_array(g, "a.u16", PQ_GGUF_U16, au16, 2, &err));
    OK(pq_gguf_set_array(g, "a.i16", PQ_GGUF_I16, ai16, 2, &err));
    OK(pq_gguf_set_array(g, "a.u32", PQ_GGUF_U32, au32, 3, &err));
    OK(pq_gguf_set_array(g, "a.i32", PQ_GGUF_I32, ai32, 2, &err));
    OK(pq_gguf_set_array(g, "a.u64", PQ_GGUF_U64, au64, 2, &err));
    OK(pq_gguf_set_array(g, "a.i64", PQ_GGUF_I64, ai64, 3, &err));
    OK(pq_gguf_set_array(g, "a.f32", PQ_GGUF_F32, af32, 3, &err));
    OK(pq_gguf_set_array(g, "a.f64", PQ_GGUF_F64, af64, 2, &err));
    OK(pq_gguf_set_array(g, "a.bool", PQ_GGUF_BOOL, abool, 3, &err));
    OK(pq_gguf_set_array(g, "a.str", PQ_GGUF_STRING, astr, 3, &err));
    OK(pq_gguf_set_array(g, "a.none", PQ_GGUF_U32, NULL, 0, &err));
    cr_assert_eq(pq_gguf_set_array(g, "a.nested", PQ_GGUF_ARRAY, au8, 1, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_gguf_set_u8(g, "", 1, &err), PQ_ERR_INVALID);

    pq_gguf *r = write_read(g, "kv.gguf", PQ_GGUF_VERIFY);
    cr_assert_eq(r->version, 3);
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    const char *s;
    uint64_t sl;
    OK(pq_gguf_get_u8(r, "t.u8", &u8, &err));
    cr_assert_eq(u8, 255);
    OK(pq_gguf_get_i8(r, "t.i8", &i8, &err));
    cr_assert_eq(i8, -128);
    OK(pq_gguf_get_u16(r, "t.u16", &u16, &err));
    cr_assert_eq(u16, 65535);
    OK(pq_gguf_get_i16(r, "t.i16", &i16, &err));
    cr_assert_eq(i16, -32768);
    OK(pq_gguf_get_u32(r, "t.u32", &u32, &err));
    cr_assert_eq(u32, 4000000000u);
    OK(pq_gguf_get_i32(r, "t.i32", &i32, &err));
    cr_assert_eq(i32, INT32_MIN);
    OK(pq_gguf_get_u64(r, "t.u64", &u64, &err));
    cr_assert_eq(u64, UINT64_MAX);
    OK(pq_gguf_get_i64(r, "t.i64", &i64, &err));
    cr_assert_eq(i64, INT64_MIN);
    OK(pq_gguf_get_f32(r, "t.f32", &f32, &err));
    cr_assert_eq(f32, -1.5e-7f);
    OK(pq_gguf_get_f64(r, "t.f64", &f64, &err));
    cr_assert_eq(f64, 3.141592653589793);
    OK(pq_gguf_get_bool(r, "t.bool", &b, &err));
    cr_assert(b);
    OK(pq_gguf_get_bool(r, "t.false", &b, &err));
    cr_assert(!b);
    OK(pq_gguf_get_string(r, "t.str", &s, &sl, &err));
    cr_assert_str_eq(s, "héllo wörld");
    OK(pq_gguf_get_string(r, "t.empty", &s, &sl, &err));
    cr_assert_eq(sl, 0);
    OK(pq_gguf_get_string(r, "t.nul", &s, &sl, &err));
    cr_assert_eq(sl, 3);
    cr_assert(memcmp(s, "a\0b", 4) == 0);
    OK(pq_gguf_get_u32(r, "t.replaced", &u32, &err));
    cr_assert_eq(u32, 2);
    /* wrong type / missing key */
    cr_assert_eq(pq_gguf_get_u32(r, "t.u8", &u32, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "t.u8") && strstr(err.msg, "u8"), "%s", err.msg);
    cr_assert_eq(pq_gguf_get_u32(r, "nope", &u32, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "'nope'"), "%s", err.msg);
    cr_assert_eq(pq_gguf_get_u32(r, "nope", &u32, NULL), PQ_ERR_INVALID);

    struct {
        const char *key;
        enum pq_gguf_type t;
        const void *want;
        uint64_t n;
    } arrs[] = {
        {"a.u8", PQ_GGUF_U8, au8, 3},       {"a.i8", PQ_GGUF_I8, ai8, 3},
        {"a.u16", PQ_GGUF_U16, au16, 2},    {"a.i16", PQ_GGUF_I16, ai16, 2},
        {"a.u32", PQ_GGUF_U32, au32, 3},    {"a.i32", PQ_GGUF_I32, ai32, 2},
        {"a.u64", PQ_GGUF_U64, au64, 2},    {"a.i64", PQ_GGUF_I64, ai64, 3},
        {"a.f32", PQ_GGUF_F32, af32, 3},    {"a.f64", PQ_GGUF_F64, af64, 2},
        {"a.bool", PQ_GGUF_BOOL, abool, 3}, {"a.none", PQ_GGUF_U32, NULL, 0},
    };
    size_t esz[] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8, sizeof(bool), 4};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        enum pq_gguf_type et;
        uint64_t n;
        const void *d;
        OK(pq_gguf_get_array(r, arrs[i].key, &et, &n, &d, &err));
        cr_assert_eq(et, arrs[i].t, "%s", arrs[i].key);
        cr_assert_eq(n, arrs[i].n, "%s", arrs[i].key);
        if (n) cr_assert(memcmp(d, arrs[i].want, n * esz[i]) == 0, "%s", arrs[i].key);
    }
    enum pq_gguf_type et;
    uint64_t n;
    const void *d;
    OK(pq_gguf_get_array(r, "a.str", &et, &n, &d, &err));
    cr_assert_eq(et, PQ_GGUF_STRING);
    cr_assert_eq(n, 3);
    const pq_gguf_str *strs = d;
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(strs[i].s, astr[i]);
    /* file order kept, writer additions at the end */
    cr_assert_str_eq(pq_gguf_kv_at(r, 0)->key, "t.u8");
    OK(pq_gguf_get_u32(r, "general.alignment", &u32, &err));
    cr_assert_eq(u32, 32);
    cr_assert_not_null(pq_gguf_find(r, "piqc.sha256.header"));
    cr_assert_eq(r->n_tensors, 0);
    cr_assert_null(pq_gguf_kv_at(r, r->n_kvs));
    pq_gguf_remove(g, "t.u8");
    cr_assert_null(pq_gguf_find(g, "t.u8"));
    cr_assert_not_null(pq_gguf_find(g, "t.i8"));
    cr_assert_not_null(pq_gguf_find(g, "a.str"));
    pq_gguf_destroy(r);
    pq_gguf_destroy(g);
}

Test(gguf, tensor_roundtrip_every_type, .init = make_tmpdir, .fini = remove_tmpdir) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = make_all_tensors();
    pq_gguf *r = write_read(g, "t.gguf", PQ_GGUF_VERIFY);
    cr_assert_eq(r->n_tensors, g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const pq_gguf_tensor *a = pq_gguf_tensor_at(g, i);
        const pq_gguf_tensor *b = pq_gguf_find_tensor(r, a->name);
        cr_assert_not_null(b, "%s", a->name);
        cr_assert_eq(b, pq_gguf_tensor_at(r, i), "file order");
        cr_assert_eq(a->type, b->type);
        cr_assert_eq(a->n_dims, b->n_dims);
        for (uint32_t k = 0; k < a->n_dims; k++)
            cr_assert_eq(a->dims[k], b->dims[k]);
        cr_assert_eq(a->size, b->size, "%s", a->name);
        if (a->size) cr_assert(memcmp(a->data, b->data, a->size) == 0, "%s", a->name);
        /* alignment of every tensor in the file */
        cr_assert_eq(b->offset % 32, 0);
        cr_assert_eq(((const unsigned char *)b->data - r->image) % 32, 0);
        cr_assert_eq((r->data_offset + b->offset) % 32, 0);
    }
    enum pq_qformat f;
    int64_t rows, cols, group;
    OK(pq_gguf_packed_info(r, pq_gguf_find_tensor(r, "w.piq3"), &f, &rows, &cols, &group, &err));
    cr_assert(f == PQ_QFORMAT_PIQ3 && rows == 3 && cols == 20 && group == 16);
    OK(pq_gguf_packed_info(r, pq_gguf_find_tensor(r, "w.piq2"), &f, &rows, &cols, &group, &err));
    cr_assert(f == PQ_QFORMAT_PIQ2 && rows == 5 && cols == 13 && group == 8);
    OK(pq_gguf_packed_info(r, pq_gguf_find_tensor(r, "w.q3"), &f, &rows, &cols, &group, &err));
    cr_assert(f == PQ_QFORMAT_Q3 && rows == 2 && cols == 300 && group == 256);
    OK(pq_gguf_packed_info(r, pq_gguf_find_tensor(r, "w.q2"), &f, &rows, &cols, &group, &err));
    cr_assert(f == PQ_QFORMAT_Q2 && rows == 4 && cols == 7 && group == 32);
    cr_assert_eq(
        pq_gguf_packed_info(r, pq_gguf_find_tensor(r, "w.f32"), &f, &rows, &cols, &group, &err),
        PQ_ERR_INVALID);
    cr_assert_null(pq_gguf_find_tensor(r, "absent"));
    /* without verification too */
    pq_gguf_destroy(r);
    r = write_read(g, "t2.gguf", 0);
    cr_assert_eq(r->n_tensors, g->n_tensors);
    pq_gguf_destroy(r);
    pq_gguf_destroy(g);
}

Test(gguf, custom_alignment_and_stream_equal, .init = make_tmpdir, .fini = remove_tmpdir) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = make_all_tensors();
    OK(pq_gguf_set_u32(g, "general.alignment", 256, &err));
    pq_gguf *r = write_read(g, "a.gguf", PQ_GGUF_VERIFY);
    cr_assert_eq(r->alignment, 256);
    cr_assert_eq(r->data_offset % 256, 0);
    for (uint64_t i = 0; i < r->n_tensors; i++)
        cr_assert_eq(r->tensors[i].offset % 256, 0);
    pq_gguf_destroy(r);
    /* stream writer produces the same bytes as the file writer */
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.gguf", tmpdir);
    snprintf(p2, sizeof p2, "%s/s.gguf", tmpdir);
    FILE *f = fopen(p2, "wb");
    OK(pq_gguf_write_stream(g, f, &err));
    fclose(f);
    size_t n1, n2;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    /* bad alignments are refused by the writer */
    uint32_t bad[] = {0, 4, 12, 48, 1u << 21};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        OK(pq_gguf_set_u32(g, "general.alignment", bad[i], &err));
        cr_assert_eq(pq_gguf_write(g, p1, &err), PQ_ERR_INVALID, "alignment %u", bad[i]);
        cr_assert(strstr(err.msg, "general.alignment"), "%s", err.msg);
    }
    OK(pq_gguf_set_u64(g, "general.alignment", 32, &err)); /* wrong type */
    cr_assert_eq(pq_gguf_write(g, p1, &err), PQ_ERR_INVALID);
    pq_gguf_destroy(g);
}

Test(gguf, writer_validates) {
    pq_error err;
    pq_error_clear(&err);
    float x[6] = {0};
    int64_t d6[1] = {6}, d5[1] = {5};
    pq_gguf *g = pq_gguf_create(&err);
    /* add_tensor rejections */
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    cr_assert_eq(pq_gguf_add_tensor(g, longname, 1, d6, PQ_GGUF_T_F32, x, 24, &err),
                 PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "longer than 63"), "%s", err.msg);
    cr_assert_eq(pq_gguf_add_tensor(g, "", 1, d6, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_gguf_add_tensor(g, "config", 1, d6, PQ_GGUF_T_F32, x, 24, &err),
                 PQ_ERR_INVALID);
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 0, d6, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 9, d6, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 1, d6, 2, x, 24, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "unknown tensor type 2"), "%s", err.msg);
    int64_t neg[1] = {-1};
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 1, neg, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    int64_t huge[3] = {1 << 20, 1 << 20, 1 << 20};
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 3, huge, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    OK(pq_gguf_add_tensor(g, "t", 1, d6, PQ_GGUF_T_F32, x, 24, &err));
    cr_assert_eq(pq_gguf_add_tensor(g, "t", 1, d6, PQ_GGUF_T_F32, x, 24, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "duplicate"), "%s", err.msg);
    /* size mismatch found at write time, naming the tensor */
    OK(pq_gguf_add_tensor(g, "short", 1, d5, PQ_GGUF_T_F32, x, 24, &err));
    cr_assert_eq(pq_gguf_write(g, "/tmp/pq_gguf_never.gguf", &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "tensor 'short'") && strstr(err.msg, "needs 20"), "%s", err.msg);
    cr_assert(strstr(err.msg, "gguf '/tmp/pq_gguf_never.gguf': "), "%s", err.msg);
    cr_assert(!file_exists("/tmp/pq_gguf_never.gguf"));
    pq_gguf_destroy(g);

    /* packed types: architecture and keys required */
    g = pq_gguf_create(&err);
    uint8_t pk[64] = {0};
    int64_t dims[2] = {16, 2};
    size_t n = pq_packed_bytes(PQ_QFORMAT_PIQ3, 2, 16, 8);
    OK(pq_gguf_add_tensor(g, "p", 2, dims, PQ_GGUF_T_PIQ3, pk, n, &err));
    FILE *devnull = fopen("/dev/null", "wb");
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piqc"), "%s", err.msg);
    OK(pq_gguf_set_string(g, "general.architecture", "piqc", &err));
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piqc.k.p"), "%s", err.msg);
    OK(pq_gguf_set_u32(g, "piqc.k.p", 3, &err)); /* wrong k for PiQ3 */
    OK(pq_gguf_set_u32(g, "piqc.group.p", 8, &err));
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piqc.k is 3"), "%s", err.msg);
    OK(pq_gguf_set_u32(g, "piqc.k.p", 4, &err));
    OK(pq_gguf_set_u32(g, "piqc.group.p", 12, &err)); /* not a multiple of 8 */
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "piqc.group is 12"), "%s", err.msg);
    OK(pq_gguf_set_u32(g, "piqc.group.p", 16, &err)); /* size differs from group 8 */
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "tensor 'p'"), "%s", err.msg);
    OK(pq_gguf_set_u32(g, "piqc.group.p", 8, &err));
    OK(pq_gguf_write_stream(g, devnull, &err));
    /* stale config hash without a pipeline */
    OK(pq_gguf_set_string(g, "piqc.sha256.config", "00", &err));
    cr_assert_eq(pq_gguf_write_stream(g, devnull, &err), PQ_ERR_INVALID);
    fclose(devnull);
    pq_gguf_destroy(g);
}

Test(gguf, short_names) {
    char out[64], out2[64];
    pq_gguf_short_name("conv1.weight", out);
    cr_assert_str_eq(out, "conv1.weight");
    char a[200], b[200];
    memset(a, 'x', 150);
    a[150] = '\0';
    memcpy(b, a, 151);
    b[149] = 'y'; /* differs only after the kept prefix */
    pq_gguf_short_name(a, out);
    pq_gguf_short_name(b, out2);
    cr_assert(strlen(out) <= 63 && strlen(out2) <= 63);
    cr_assert_str_neq(out, out2);
    char again[64];
    pq_gguf_short_name(a, again);
    cr_assert_str_eq(out, again, "deterministic");
    cr_assert(strncmp(out, a, 40) == 0, "keeps a readable prefix: %s", out);
    /* exactly 63 bytes stays, 64 is shortened */
    a[63] = '\0';
    pq_gguf_short_name(a, out);
    cr_assert_str_eq(out, a);
    a[63] = 'x';
    a[64] = '\0';
    pq_gguf_short_name(a, out);
    cr_assert(strlen(out) <= 63 && strchr(out, '~'));
    /* UTF-8 is not cut inside a sequence */
    char u[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(u, "é");
    pq_gguf_short_name(u, out);
    const char *tilde = strchr(out, '~');
    cr_assert_not_null(tilde);
    cr_assert_eq((tilde - out) % 2, 0, "cut inside a 2-byte sequence: %s", out);
}

Test(gguf, every_truncation_fails_cleanly, .init = make_tmpdir, .fini = remove_tmpdir) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = make_all_tensors();
    OK(pq_gguf_set_string(g, "piqc.pipeline", "passes: [fold]", &err));
    const char *strs[] = {"a", "bb"};
    OK(pq_gguf_set_array(g, "x.strs", PQ_GGUF_STRING, strs, 2, &err));
    char path[256];
    snprintf(path, sizeof path, "%s/trunc.gguf", tmpdir);
    OK(pq_gguf_write(g, path, &err));
    size_t len;
    unsigned char *buf = slurp(path, &len);
    pq_gguf *r = NULL;
    OK(pq_gguf_read_buffer(buf, len, PQ_GGUF_VERIFY, &r, &err));
    size_t needed = r->data_offset;
    for (uint64_t i = 0; i < r->n_tensors; i++) {
        size_t end = r->data_offset + r->tensors[i].offset + r->tensors[i].size;
        if (end > needed) needed = end;
    }
    pq_gguf_destroy(r);
    cr_assert(needed <= len && len - needed < 32);
    for (size_t cut = 0; cut < len; cut++) {
        for (unsigned flags = 0; flags <= PQ_GGUF_VERIFY; flags += PQ_GGUF_VERIFY) {
            r = NULL;
            enum pq_status st = pq_gguf_read_buffer(buf, cut, flags, &r, &err);
            if (cut < needed) {
                cr_assert_eq(st, PQ_ERR_INVALID, "prefix of %zu bytes: %s", cut, err.msg);
                cr_assert_null(r);
                cr_assert(strncmp(err.msg, "gguf '<buffer>': ", 17) == 0, "%s", err.msg);
            } else { /* only trailing padding missing */
                cr_assert_eq(st, PQ_OK, "prefix of %zu bytes: %s", cut, err.msg);
                pq_gguf_destroy(r);
            }
        }
    }
    /* the same through the file reader, for a few cut points */
    size_t cuts[] = {0, 3, 4, 23, 24, needed / 2, needed - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, cuts[i], f);
        fclose(f);
        cr_assert_eq(pq_gguf_read(path, &r, PQ_GGUF_VERIFY, &err), PQ_ERR_INVALID);
        cr_assert(strstr(err.msg, path), "%s", err.msg);
    }
    free(buf);
    pq_gguf_destroy(g);
}

Test(gguf, hostile_headers) {
    fbuf f;
    const char *m;
    /* magic, version */
    put_header(&f, 3, 0, 0);
    f.b[0] = 'X';
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "magic"), "%s", m);
    put_header(&f, 1, 0, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "version 1"), "%s", m);
    put_header(&f, 4, 0, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "version 4"), "%s", m);
    put_header(&f, 3u << 24, 0, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "big-endian"), "%s", m);
    /* version 2 and 3 with nothing in them are fine */
    pq_error err;
    pq_gguf *r;
    put_header(&f, 2, 0, 0);
    cr_assert_eq(pq_gguf_read_buffer(f.b, f.n, 0, &r, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(r->version, 2);
    pq_gguf_destroy(r);
    /* huge counts */
    put_header(&f, 3, 2000000, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "limit"), "%s", m);
    put_header(&f, 3, 0, UINT64_MAX);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "limit"), "%s", m);
    put_header(&f, 3, 1000000, 1000000); /* within the limit but not in the file */
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "remaining bytes"), "%s", m);
    /* string length past EOF */
    put_header(&f, 3, 0, 1);
    put_u64(&f, 1000000000000ull);
    put(&f, "abcdefghijklmnop", 16);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "past the end"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, PQ_GGUF_STRING);
    put_u64(&f, UINT64_MAX);
    put(&f, "abcdefghijklmnop", 16);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "key 'k'") && strstr(m, "past the end"), "%s", m);
    /* unknown value type, nested array, huge array, bool 2, empty key, NUL in key, dup key */
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, 13);
    put_u64(&f, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "unknown value type 13"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, PQ_GGUF_ARRAY);
    put_u32(&f, PQ_GGUF_ARRAY);
    put_u64(&f, 1);
    put_u64(&f, 0);
    cr_assert_eq(pq_gguf_read_buffer(f.b, f.n, 0, &r, &err), PQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "arrays of arrays"), "%s", err.msg);
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, PQ_GGUF_ARRAY);
    put_u32(&f, PQ_GGUF_U64);
    put_u64(&f, UINT64_MAX / 4);
    put_u64(&f, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "runs past the end"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, PQ_GGUF_ARRAY);
    put_u32(&f, PQ_GGUF_STRING);
    put_u64(&f, 3);
    put_str(&f, "a");
    put_u64(&f, 99); /* second string past EOF */
    put(&f, "bcdefghijklmnopq", 16);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "key 'k'"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_str(&f, "k");
    put_u32(&f, PQ_GGUF_BOOL);
    put(&f, "\x02", 1);
    put(&f, "padpadpadpadpad", 15);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "bool"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_str(&f, "");
    put_u32(&f, PQ_GGUF_U8);
    put(&f, "\x01padpadpadpad", 12);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "key length 0"), "%s", m);
    put_header(&f, 3, 0, 1);
    put_u64(&f, 3);
    put(&f, "a\0b", 3);
    put_u32(&f, PQ_GGUF_U8);
    put(&f, "\x01padpadpadpad", 12);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "NUL"), "%s", m);
    put_header(&f, 3, 0, 2);
    put_kv_u32(&f, "dup", 1);
    put_kv_u32(&f, "dup", 2);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "key 'dup': duplicate"), "%s", m);
    /* bad alignment value */
    put_header(&f, 3, 0, 1);
    put_kv_u32(&f, "general.alignment", 24);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "general.alignment"), "%s", m);
}

Test(gguf, hostile_tensor_infos) {
    fbuf f;
    const char *m;
    uint64_t d1[1] = {4};
    /* n_dims 9 and 0 */
    uint64_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 9, d9, PQ_GGUF_T_F32, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "tensor 't': n_dims 9"), "%s", m);
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 0, d9, PQ_GGUF_T_F32, 0);
    put(&f, "padpadpadpadpadpadpadpadpadpadpadpad", 32);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "n_dims 0"), "%s", m);
    /* dims product overflow, dimension above INT64_MAX */
    uint64_t dov[3] = {1ull << 32, 1ull << 32, 16};
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 3, dov, PQ_GGUF_T_F32, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "tensor 't'"), "%s", m);
    uint64_t dneg[2] = {UINT64_MAX, 1};
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 2, dneg, PQ_GGUF_T_F32, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "dimension 0"), "%s", m);
    uint64_t dprod[4] = {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 20}; /* wraps to 0 in u64 */
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 4, dprod, PQ_GGUF_T_F32, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "overflow"), "%s", m);
    /* unknown tensor type */
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, 99, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "unknown tensor type 99"), "%s", m);
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, 12 /* ggml Q4_K: not piqc's */, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "unknown tensor type 12"), "%s", m);
    /* type 40/41 with another architecture, or none */
    uint64_t dp[2] = {16, 2};
    for (uint32_t type = 40; type <= 41; type++) {
        put_header(&f, 3, 1, 3);
        put_kv_str(&f, "general.architecture", "llama");
        put_kv_u32(&f, "piqc.k.p", type == 40 ? 4 : 3);
        put_kv_u32(&f, "piqc.group.p", 8);
        put_info(&f, "p", 2, dp, type, 0);
        pad_to(&f, 32);
        put(&f, junk, 64);
        m = reject(f.b, f.n, 0);
        cr_assert(strstr(m, "tensor 'p'") && strstr(m, "general.architecture"), "%s", m);
        put_header(&f, 3, 1, 0);
        put_info(&f, "p", 2, dp, type, 0);
        pad_to(&f, 32);
        put(&f, junk, 64);
        m = reject(f.b, f.n, 0);
        cr_assert(strstr(m, "\"piqc\""), "%s", m);
    }
    /* packed type without its keys */
    put_header(&f, 3, 1, 1);
    put_kv_str(&f, "general.architecture", "piqc");
    put_info(&f, "p", 2, dp, 40, 0);
    pad_to(&f, 32);
    put(&f, junk, 64);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "piqc.k.p"), "%s", m);
    /* name problems: empty, too long, duplicate */
    put_header(&f, 3, 1, 0);
    put_info(&f, "", 1, d1, PQ_GGUF_T_F32, 0);
    put(&f, junk, 64);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "name length 0"), "%s", m);
    char longname[70];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    put_header(&f, 3, 1, 0);
    put_info(&f, longname, 1, d1, PQ_GGUF_T_F32, 0);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "name length 64"), "%s", m);
    put_header(&f, 3, 2, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, 32);
    pad_to(&f, 32);
    put(&f, junk, 64);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "tensor 't': duplicate"), "%s", m);
    /* misaligned offset, data past EOF, offset near UINT64_MAX, overlap */
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, 4);
    pad_to(&f, 32);
    put(&f, junk, 64);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "not a multiple of the alignment"), "%s", m);
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, 0);
    pad_to(&f, 32);
    put(&f, junk, 8); /* 16 bytes needed */
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "tensor 't'") && strstr(m, "outside the data section"), "%s", m);
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, UINT64_MAX - 31);
    pad_to(&f, 32);
    put(&f, junk, 64);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "outside the data section"), "%s", m);
    put_header(&f, 3, 2, 0);
    uint64_t d16[1] = {16};
    put_info(&f, "a", 1, d16, PQ_GGUF_T_F32, 0);
    put_info(&f, "b", 1, d1, PQ_GGUF_T_F32, 32);
    pad_to(&f, 32);
    put(&f, junk, 128);
    m = reject(f.b, f.n, 0);
    cr_assert(strstr(m, "overlap"), "%s", m);
    /* a well-formed hand-made file (no hashes) reads without verification, not with it */
    put_header(&f, 3, 1, 0);
    put_info(&f, "t", 1, d1, PQ_GGUF_T_F32, 0);
    pad_to(&f, 32);
    put(&f, junk, 16);
    pq_error err;
    pq_gguf *r;
    cr_assert_eq(pq_gguf_read_buffer(f.b, f.n, 0, &r, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_gguf_find_tensor(r, "t")->size, 16);
    pq_gguf_destroy(r);
    m = reject(f.b, f.n, PQ_GGUF_VERIFY);
    cr_assert(strstr(m, "piqc.sha256.header"), "%s", m);
}

/* Writes the fixture, returns its bytes and the parsed layout (r). */
static unsigned char *fixture_bytes(size_t *len, pq_gguf **r) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = make_all_tensors();
    OK(pq_gguf_set_string(g, "general.name", "tamper test", &err));
    OK(pq_gguf_set_string(g, "piqc.pipeline", "passes: [fold, quantize]", &err));
    char path[256];
    snprintf(path, sizeof path, "%s/tamper.gguf", tmpdir);
    OK(pq_gguf_write(g, path, &err));
    pq_gguf_destroy(g);
    unsigned char *buf = slurp(path, len);
    OK(pq_gguf_read_buffer(buf, *len, PQ_GGUF_VERIFY, r, &err));
    return buf;
}

Test(gguf, tamper_tensor_data, .init = make_tmpdir, .fini = remove_tmpdir) {
    size_t len;
    pq_gguf *r;
    unsigned char *buf = fixture_bytes(&len, &r);
    for (uint64_t i = 0; i < r->n_tensors; i++) {
        const pq_gguf_tensor *t = &r->tensors[i];
        if (!t->size) continue;
        size_t at = r->data_offset + t->offset + t->size / 2;
        buf[at] ^= 0x10;
        const char *m = reject(buf, len, PQ_GGUF_VERIFY);
        char want[96];
        snprintf(want, sizeof want, "tensor '%s': SHA-256 mismatch", t->name);
        cr_assert(strstr(m, want), "%s", m);
        /* without verification the (corrupted) file still parses */
        pq_error err;
        pq_gguf *r2;
        cr_assert_eq(pq_gguf_read_buffer(buf, len, 0, &r2, &err), PQ_OK, "%s", err.msg);
        pq_gguf_destroy(r2);
        buf[at] ^= 0x10;
    }
    /* the same through a file on disk, naming the file */
    const pq_gguf_tensor *t = pq_gguf_find_tensor(r, "w.piq3");
    buf[r->data_offset + t->offset] ^= 1;
    char path[256];
    snprintf(path, sizeof path, "%s/tampered.gguf", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    pq_error err;
    pq_gguf *r2 = (pq_gguf *)1;
    cr_assert_eq(pq_gguf_read(path, &r2, PQ_GGUF_VERIFY, &err), PQ_ERR_INVALID);
    cr_assert_null(r2);
    char want[512];
    snprintf(want, sizeof want, "gguf '%s': tensor 'w.piq3': SHA-256 mismatch", path);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    pq_gguf_destroy(r);
    free(buf);
}

Test(gguf, tamper_any_header_byte, .init = make_tmpdir, .fini = remove_tmpdir) {
    size_t len;
    pq_gguf *r;
    unsigned char *buf = fixture_bytes(&len, &r);
    /* end of the tensor infos = start of the padding before the data section */
    size_t infos_end = r->data_offset;
    while (infos_end > 0 && buf[infos_end - 1] == 0)
        infos_end--;
    pq_gguf_destroy(r);
    /* every single-byte change before the data section is detected */
    for (size_t at = 0; at < infos_end; at++) {
        buf[at] ^= 0x20;
        reject(buf, len, PQ_GGUF_VERIFY);
        buf[at] ^= 0x20;
    }
    /* specific messages: the version, a key string, a string value */
    buf[4] ^= 0x07;
    const char *m = reject(buf, len, PQ_GGUF_VERIFY);
    cr_assert(strstr(m, "unsupported GGUF version"), "%s", m);
    buf[4] ^= 0x07;
    unsigned char *k = find_bytes(buf, len, "general.name", 12);
    cr_assert_not_null(k);
    k[3] ^= 0x01;
    m = reject(buf, len, PQ_GGUF_VERIFY);
    cr_assert(strstr(m, "header: SHA-256 mismatch"), "%s", m);
    k[3] ^= 0x01;
    unsigned char *v = find_bytes(buf, len, "tamper test", 11);
    v[0] = 'T';
    m = reject(buf, len, PQ_GGUF_VERIFY);
    cr_assert(strstr(m, "header: SHA-256 mismatch"), "%s", m);
    v[0] = 't';
    pq_error err;
    OK(pq_gguf_read_buffer(buf, len, PQ_GGUF_VERIFY, &r, &err));
    pq_gguf_destroy(r);
    free(buf);
}

Test(gguf, config_hash_checked) {
    /* piqc.sha256.config is the SHA-256 of the piqc.pipeline string and is verified */
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = pq_gguf_create(&err);
    OK(pq_gguf_set_string(g, "piqc.pipeline", "abc", &err));
    char *mem = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&mem, &mlen);
    OK(pq_gguf_write_stream(g, f, &err));
    fclose(f);
    pq_gguf *r;
    OK(pq_gguf_read_buffer(mem, mlen, PQ_GGUF_VERIFY, &r, &err));
    const char *h;
    OK(pq_gguf_get_string(r, "piqc.sha256.config", &h, NULL, &err));
    char want[65];
    OK(pq_gguf_sha256_hex("abc", 3, want, &err));
    cr_assert_str_eq(h, want);
    pq_gguf_destroy(r);
    free(mem);
    /* a stale config hash in g is replaced by the writer, never copied */
    OK(pq_gguf_set_string(g, "piqc.sha256.config", "0000", &err));
    OK(pq_gguf_set_string(g, "piqc.sha256.header", "0000", &err));
    f = open_memstream(&mem, &mlen);
    OK(pq_gguf_write_stream(g, f, &err));
    fclose(f);
    OK(pq_gguf_read_buffer(mem, mlen, PQ_GGUF_VERIFY, &r, &err));
    OK(pq_gguf_get_string(r, "piqc.sha256.config", &h, NULL, &err));
    cr_assert_str_eq(h, want);
    pq_gguf_destroy(r);
    /* change the pipeline text: the config hash no longer matches */
    char *p = find_bytes(mem, mlen, "\x03\0\0\0\0\0\0\0abc", 11);
    cr_assert_not_null(p);
    p[8] = 'x';
    pq_gguf *r2 = NULL;
    cr_assert_eq(pq_gguf_read_buffer(mem, mlen, PQ_GGUF_VERIFY, &r2, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "header: SHA-256 mismatch"), "%s", err.msg);
    /* re-seal the header (as a forger would) so that only the config hash is left to catch it:
     * the header record is key (8+18 bytes), type (4), length (8), 64 hex digits */
    char *hk = find_bytes(mem, mlen, "piqc.sha256.header", 18);
    cr_assert_not_null(hk);
    size_t hs = (size_t)(hk - mem) - 8, he = (size_t)(hk - mem) + 18 + 4 + 8 + 64;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, mem, hs);
    EVP_DigestUpdate(ctx, mem + he, mlen - he); /* no tensors: infos end at the end */
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++) {
        char two[3];
        snprintf(two, sizeof two, "%02x", md[i]);
        memcpy(mem + he - 64 + 2 * i, two, 2);
    }
    cr_assert_eq(pq_gguf_read_buffer(mem, mlen, PQ_GGUF_VERIFY, &r2, &err), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "pipeline config (piqc.pipeline): SHA-256 mismatch"), "%s", err.msg);
    OK(pq_gguf_read_buffer(mem, mlen, 0, &r2, &err));
    pq_gguf_destroy(r2);
    free(mem);
    pq_gguf_destroy(g);
}

Test(gguf, atomic_write_failures_leave_no_file, .init = make_tmpdir, .fini = remove_tmpdir) {
    pq_error err;
    pq_error_clear(&err);
    pq_gguf *g = make_all_tensors();
    /* missing directory */
    char path[256];
    snprintf(path, sizeof path, "%s/no/such/dir/m.gguf", tmpdir);
    cr_assert_eq(pq_gguf_write(g, path, &err), PQ_ERR_IO);
    cr_assert(strstr(err.msg, "m.gguf"), "%s", err.msg);
    cr_assert(!file_exists(path));
    /* simulated disk full at many points: nothing under the name, no temporary left */
    snprintf(path, sizeof path, "%s/m.gguf", tmpdir);
    long long cuts[] = {0, 1, 24, 100, 1000, 2000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pq_gguf_test_fail_write_after(cuts[i]);
        cr_assert_eq(pq_gguf_write(g, path, &err), PQ_ERR_IO, "cut %lld", cuts[i]);
        pq_gguf_test_fail_write_after(-1);
        cr_assert(strstr(err.msg, "No space left") || strstr(err.msg, "no space"), "%s", err.msg);
        cr_assert(!file_exists(path));
        cr_assert_eq(count_dir_entries(tmpdir), 0);
    }
    /* a failed rewrite keeps the previous good file intact */
    OK(pq_gguf_write(g, path, &err));
    size_t n1;
    unsigned char *before = slurp(path, &n1);
    OK(pq_gguf_set_string(g, "general.name", "second", &err));
    pq_gguf_test_fail_write_after(500);
    cr_assert_eq(pq_gguf_write(g, path, &err), PQ_ERR_IO);
    pq_gguf_test_fail_write_after(-1);
    size_t n2;
    unsigned char *after = slurp(path, &n2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(before, after, n1) == 0);
    cr_assert_eq(count_dir_entries(tmpdir), 1);
    free(before);
    free(after);
    /* a real write error: file size limit (EFBIG), like a full disk */
    unlink(path);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {600, 600};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    cr_assert_eq(pq_gguf_write(g, path, &err), PQ_ERR_IO);
    cr_assert(!file_exists(path));
    cr_assert_eq(count_dir_entries(tmpdir), 0);
    /* /dev/full through the stream writer */
    FILE *f = fopen("/dev/full", "wb");
    if (f) {
        cr_assert_eq(pq_gguf_write_stream(g, f, &err), PQ_ERR_IO);
        fclose(f);
    }
    pq_gguf_destroy(g);
}

Test(gguf, out_of_memory_is_clean, .init = make_tmpdir, .fini = remove_tmpdir) {
    size_t len;
    pq_gguf *r;
    unsigned char *buf = fixture_bytes(&len, &r);
    pq_gguf_destroy(r);
    pq_error err;
    bool ok = false;
    for (long n = 0; n < 2000 && !ok; n++) {
        pq_alloc_fail_after(n);
        r = NULL;
        enum pq_status st = pq_gguf_read_buffer(buf, len, PQ_GGUF_VERIFY, &r, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK) {
            ok = true;
            pq_gguf_destroy(r);
        } else {
            cr_assert_eq(st, PQ_ERR_NOMEM, "after %ld allocations: %s", n, err.msg);
            cr_assert_null(r);
        }
    }
    cr_assert(ok, "never succeeded");
    /* writer under allocation failure */
    pq_gguf *g = make_all_tensors();
    char path[256];
    snprintf(path, sizeof path, "%s/oom.gguf", tmpdir);
    ok = false;
    for (long n = 0; n < 200 && !ok; n++) {
        pq_alloc_fail_after(n);
        enum pq_status st = pq_gguf_write(g, path, &err);
        pq_alloc_fail_after(-1);
        if (st == PQ_OK)
            ok = true;
        else {
            cr_assert_eq(st, PQ_ERR_NOMEM, "after %ld allocations: %s", n, err.msg);
            cr_assert(!file_exists(path));
        }
    }
    cr_assert(ok);
    pq_gguf_destroy(g);
    free(buf);
}
