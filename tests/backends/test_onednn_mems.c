/* Tests of the oneDNN memory objects kept per execution site (backends/onednn/onednn_impl.h,
 * pq_dnnl_execute_mems): every cached call must write exactly what an uncached call writes. */
#include <criterion/criterion.h>
#include <string.h>

#include "backends/onednn/onednn.h"
#include "backends/onednn/onednn_impl.h"
#include "ir/alloc.h"

/* A plain f32 NCHW source of dims d filled from seed, and the nChw16c descriptor of d. */
static float *source(const dnnl_dims_t d, uint32_t seed, dnnl_memory_desc_t *plain,
                     dnnl_memory_desc_t *blk) {
    cr_assert_eq(dnnl_memory_desc_init_by_tag(plain, 4, d, dnnl_f32, dnnl_nchw), dnnl_success);
    cr_assert_eq(dnnl_memory_desc_init_by_tag(blk, 4, d, dnnl_f32, dnnl_aBcd16b), dnnl_success);
    size_t n = dnnl_memory_desc_get_size(plain) / sizeof(float);
    float *x = pq_malloc_aligned(n * sizeof(float));
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return x;
}

/* Runs p from src (descriptor from) into a buffer of to's size filled with 0xAB bytes, through m
 * (NULL: uncached); returns the buffer. */
static unsigned char *run(const pq_dnnl_prim *p, pq_dnnl_mems *m, const dnnl_memory_desc_t *from,
                          void *src, const dnnl_memory_desc_t *to) {
    size_t bytes = dnnl_memory_desc_get_size(to);
    unsigned char *y = pq_malloc_aligned(bytes);
    cr_assert_not_null(y);
    memset(y, 0xAB, bytes);
    pq_dnnl_arg args[2] = {{DNNL_ARG_FROM, from, src}, {DNNL_ARG_TO, to, y}};
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_dnnl_execute_mems(p, m, args, 2, NULL, "test reorder", &err), PQ_OK, "%s",
                 err.msg);
    return y;
}

/* Cached and uncached runs of p on src into buffers full of 0xAB: the same bytes (values and the
 * padding of a blocked destination). */
static void same_as_uncached(const pq_dnnl_prim *p, pq_dnnl_mems *m, const dnnl_memory_desc_t *from,
                             void *src, const dnnl_memory_desc_t *to, const char *what) {
    unsigned char *want = run(p, NULL, from, src, to), *got = run(p, m, from, src, to);
    size_t bytes = dnnl_memory_desc_get_size(to);
    for (size_t i = 0; i < bytes; i++)
        cr_assert_eq(got[i], want[i], "%s: byte %zu: %02x, uncached %02x", what, i, got[i],
                     want[i]);
    pq_free(want);
    pq_free(got);
}

Test(onednn_mems, reused_for_new_data_pointers) {
    cr_assert(pq_onednn_available());
    dnnl_dims_t d = {2, 20, 5, 3};
    dnnl_memory_desc_t plain, blk;
    float *x1 = source(d, 1, &plain, &blk), *x2 = source(d, 2, &plain, &blk);
    pq_dnnl_prim p;
    cr_assert(pq_dnnl_reorder_create(&plain, &blk, &p));
    pq_dnnl_mems m;
    memset(&m, 0, sizeof m);
    same_as_uncached(&p, &m, &plain, x1, &blk, "first call");
    dnnl_memory_t kept0 = m.mem[0], kept1 = m.mem[1];
    cr_assert(kept0 && kept1, "memory objects kept");
    /* new source and destination buffers (the destination full of 0xAB again) */
    same_as_uncached(&p, &m, &plain, x2, &blk, "new buffers");
    /* the same descriptors at another address */
    dnnl_memory_desc_t plain2 = plain, blk2 = blk;
    same_as_uncached(&p, &m, &plain2, x1, &blk2, "descriptors copied");
    cr_assert(m.mem[0] == kept0 && m.mem[1] == kept1, "memory objects reused");
    pq_dnnl_mems_free(&m);
    cr_assert_null(m.mem[0]);
    pq_dnnl_prim_destroy(&p);
    pq_free(x1);
    pq_free(x2);
}

/* A primitive rebuilt for other dims, called with the same descriptor variables (whose contents
 * changed) and the same mems: the objects made for the first one must not be used (their
 * descriptors are the old dims). */
Test(onednn_mems, rebuilt_primitive_same_descriptor_variables) {
    cr_assert(pq_onednn_available());
    dnnl_dims_t dims[2] = {{1, 20, 4, 4}, {1, 36, 3, 7}};
    dnnl_memory_desc_t plain, blk; /* the variables both primitives are called with */
    pq_dnnl_mems m;
    memset(&m, 0, sizeof m);
    uint64_t id0 = 0;
    for (int k = 0; k < 2; k++) {
        float *x = source(dims[k], 5 + (uint32_t)k, &plain, &blk);
        pq_dnnl_prim to, back;
        cr_assert(pq_dnnl_reorder_create(&plain, &blk, &to));
        cr_assert(pq_dnnl_reorder_create(&blk, &plain, &back));
        unsigned char *b = run(&to, NULL, &plain, x, &blk); /* x blocked, padding zero */
        unsigned char *y = run(&back, &m, &blk, b, &plain);
        cr_assert_eq(m.prim_id, back.id);
        cr_assert_neq(back.id, id0, "primitive ids are not reused");
        id0 = back.id;
        size_t n = dnnl_memory_desc_get_size(&plain) / sizeof(float);
        const float *yf = (const float *)y;
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(yf[i], x[i], "primitive %d: element %zu: %g, want %g", k, i, yf[i], x[i]);
        same_as_uncached(&back, &m, &blk, b, &plain, "cached again");
        pq_free(b);
        pq_free(y);
        pq_free(x);
        pq_dnnl_prim_destroy(&to);
        pq_dnnl_prim_destroy(&back);
    }
    pq_dnnl_mems_free(&m);
}

/* A new top-level run releases the previous run's kept blocked copies (pq_onednn_run_begin):
 * their buffers are reused for the new run's copies instead of new ones being allocated. */
Test(onednn_mems, run_begin_releases_kept_copies) {
    pq_onednn_cache *c = pq_onednn_cache_create();
    cr_assert_not_null(c);
    pq_onednn_cache *prev = pq_onednn_cache_bind(c);
    static const int values[3] = {0};
    pq_error err;
    pq_error_clear(&err);
    pq_dnnl_blk *a = pq_dnnl_blk_take(c, &values[0], 4096, &err);
    cr_assert_not_null(a);
    void *abuf = a->buf;
    pq_dnnl_blk *b = pq_dnnl_blk_take(c, &values[1], 1024, &err);
    cr_assert_not_null(b);
    void *bbuf = b->buf;
    cr_assert_neq(abuf, bbuf);
    pq_onednn_run_begin(true);
    cr_assert_null(pq_dnnl_blk_find(c, &values[0]), "a copy of the previous run is still kept");
    cr_assert_null(pq_dnnl_blk_find(c, &values[1]));
    /* the new run's copies get the old buffers (smallest that fits first) */
    pq_dnnl_blk *n1 = pq_dnnl_blk_take(c, &values[2], 1000, &err);
    cr_assert_not_null(n1);
    cr_assert_eq(n1->buf, bbuf);
    pq_dnnl_blk *n0 = pq_dnnl_blk_take(c, &values[0], 4000, &err);
    cr_assert_not_null(n0);
    cr_assert_eq(n0->buf, abuf);
    cr_assert_eq(pq_onednn_cache_bind(prev), c);
    pq_onednn_cache_destroy(c);
}
