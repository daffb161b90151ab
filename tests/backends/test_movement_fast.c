/* Fast Resize / Transpose / Concat / Split / Slice (backends/movement_fast.c) against the reference
 * kernels, bit for bit (Resize: NaN as any NaN), over random shapes and attributes, for every ISA
 * the CPU runs (others skipped visibly), one and two threads, the fast-table dispatch and the
 * unsupported cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/fast.h"
#include "backends/movement_fast.h"
#include "mv_harness.h"

static uint64_t rs = 0x243F6A8885A308D3ULL;
static uint64_t rnd(void) {
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 2685821657736338717ULL;
}
static int64_t ri(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static double rf(double lo, double hi) {
    return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

static const pq_movement_kernels *need(const char *isa) {
    const pq_movement_kernels *k = pq_movement_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    return k;
}

/* Random tensor: floats with a sprinkling of specials (f32), random bytes otherwise. */
static pq_tensor *rand_t(enum pq_dtype dt, int rank, const int64_t *dims, bool specials) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t);
    mv_track(t);
    if (dt == PQ_DTYPE_F32) {
        static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -3e38f, 3e38f};
        float *f = t->data;
        for (int64_t i = 0; i < pq_tensor_numel(t); i++)
            f[i] = specials && rnd() % 16 == 0 ? sp[rnd() % 8] : (float)rf(-4, 4);
    } else {
        uint8_t *b = t->data;
        for (size_t i = 0; i < t->nbytes; i++)
            b[i] = (uint8_t)rnd();
    }
    return t;
}

typedef enum pq_status (*fast_fn)(const pq_movement_kernels *, const pq_kernel_args *);

/* Runs the reference and the fast kernel (run with k; pq_kernel_run when run is NULL) on fresh
 * output shells; when the fast kernel handles the case, the outputs must match byte for byte.
 * Returns whether it did. */
static bool check(pq_tensor **in, uint32_t nin, uint32_t nout, const pq_movement_kernels *k,
                  fast_fn run, int threads, const char *what) {
    pq_tensor *ro[16], *fo[16];
    cr_assert(nout <= 16);
    for (uint32_t i = 0; i < nout; i++) {
        ro[i] = shell();
        fo[i] = shell();
    }
    pq_kernel_args a = {g,   &g->nodes[nid], (const pq_tensor *const *)in, nin, ro, nout, NULL, 1,
                        &err};
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "%s: reference: %s", what, err.msg);
    a.out = fo;
    a.n_threads = threads;
    err.msg[0] = '\0';
    enum pq_status st = run ? run(k, &a) : pq_kernel_run(&a);
    if (st == PQ_ERR_UNSUPPORTED) {
        cr_assert_eq(err.msg[0], '\0', "%s: unsupported with a message", what);
    } else {
        cr_assert_eq(st, PQ_OK, "%s: fast status %d: %s", what, (int)st, err.msg);
        for (uint32_t i = 0; i < nout; i++) {
            cr_assert_eq(fo[i]->dtype, ro[i]->dtype, "%s: dtype", what);
            cr_assert_eq(fo[i]->rank, ro[i]->rank, "%s: rank", what);
            for (int d = 0; d < ro[i]->rank; d++)
                cr_assert_eq(fo[i]->dims[d], ro[i]->dims[d], "%s: dim %d", what, d);
            const uint8_t *rb = ro[i]->data, *fb = fo[i]->data;
            if (ro[i]->dtype == PQ_DTYPE_F32 && a.node->op == PQ_OP_RESIZE) {
                /* computed floats: bit for bit, except that a NaN's sign and payload depend on
                 * the compiler's operand order (x86 keeps the first NaN operand) */
                const uint32_t *ru = ro[i]->data, *fu = fo[i]->data;
                const float *rv = ro[i]->data, *fv = fo[i]->data;
                for (int64_t e = 0; e < pq_tensor_numel(ro[i]); e++)
                    cr_assert(ru[e] == fu[e] || (isnan(rv[e]) && isnan(fv[e])),
                              "%s: element %lld: %08x, reference %08x", what, (long long)e, fu[e],
                              ru[e]);
                continue;
            }
            for (size_t b = 0; b < ro[i]->nbytes; b++)
                cr_assert_eq(rb[b], fb[b], "%s: output %u byte %zu: %02x, reference %02x", what, i,
                             b, fb[b], rb[b]);
        }
    }
    for (uint32_t i = 0; i < nout; i++) {
        mv_destroy(ro[i]);
        mv_destroy(fo[i]);
    }
    return st != PQ_ERR_UNSUPPORTED;
}

static void free_in(pq_tensor **in, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (in[i]) mv_destroy(in[i]);
}

/* ---- Resize ---- */

static const char *CTM[] = {"half_pixel",        "half_pixel_symmetric", "pytorch_half_pixel",
                            "align_corners",     "asymmetric",           "tf_half_pixel_for_nn",
                            "tf_crop_and_resize"};
static const char *NEAREST[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* One random Resize case; big: output large enough to be split over threads. Returns whether the
 * fast kernel handled it. */
static bool resize_case(const pq_movement_kernels *k, fast_fn run, int threads, bool big, int it) {
    int r = (int)ri(2, 4);
    int64_t xd[4];
    for (int i = 0; i < r - 2; i++)
        xd[i] = ri(1, 3);
    xd[r - 2] = big ? ri(20, 40) : ri(1, 9);
    xd[r - 1] = big ? ri(30, 70) : ri(1, 40);
    bool nearest = rnd() % 2;
    const char *ctm = CTM[rnd() % 7];
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_str("mode", nearest ? "nearest" : "linear");
    set_str("coordinate_transformation_mode", ctm);
    set_str("nearest_mode", NEAREST[rnd() % 4]);
    if (rnd() % 2) set_float("extrapolation_value", (float)rf(-2, 2));
    pq_tensor *in[4] = {rand_t(PQ_DTYPE_F32, r, xd, !big), NULL, NULL, NULL};
    /* roi for tf_crop_and_resize: leading axes [0, 1], the last two random (partly outside) */
    double roi[8];
    for (int i = 0; i < r; i++) {
        bool last = i >= r - 2;
        roi[i] = last ? rf(-0.3, 0.6) : 0.0;
        roi[i + r] = last ? roi[i] + rf(0.1, 1.0) : 1.0;
    }
    in[1] = T(PQ_DTYPE_F32, 1, D(2 * r), roi);
    double sc[4];
    int64_t sz[4];
    for (int i = 0; i < r; i++) {
        bool last = i >= r - 2;
        double s = 1.0;
        if (last)
            s = rnd() % 2 ? (double)ri(1, big ? 4 : 5) : rf(0.3, big ? 4.0 : 5.0);
        else if (nearest && rnd() % 4 == 0)
            s = (double)ri(1, 2); /* nearest on a leading axis: still one tap */
        sc[i] = (double)(float)s;
        int64_t n = (int64_t)floor(sc[i] * (double)xd[i]);
        sz[i] = n < 1 ? 1 : n;
    }
    uint32_t nin;
    if (rnd() % 3) {
        in[2] = T(PQ_DTYPE_F32, 1, D(r), sc);
        nin = 3;
    } else {
        int64_t szd = r;
        in[3] = pq_tensor_create(PQ_DTYPE_I64, 1, &szd, &err);
        mv_track(in[3]);
        memcpy(in[3]->data, sz, sizeof(int64_t) * (size_t)r);
        nin = 4;
    }
    char what[160];
    snprintf(what, sizeof what, "resize %d %s %s r%d [%lld %lld]", it,
             nearest ? "nearest" : "linear", ctm, r, (long long)xd[r - 2], (long long)xd[r - 1]);
    bool ok = check(in, nin, 1, k, run, threads, what);
    free_in(in, 4);
    return ok;
}

static void resize_many(const char *isa) {
    const pq_movement_kernels *k = need(isa);
    int handled = 0;
    for (int it = 0; it < 400; it++)
        handled += resize_case(k, pq_movement_resize_run, 1, false, it);
    for (int it = 0; it < 12; it++)
        handled += resize_case(k, pq_movement_resize_run, 2, true, it);
    cr_assert_geq(handled, 380, "only %d of 412 Resize cases took the fast path", handled);
    mv_cleanup();
}

Test(movement_fast, resize_scalar) {
    resize_many("scalar");
}
Test(movement_fast, resize_avx2) {
    resize_many("avx2");
}
Test(movement_fast, resize_avx512) {
    resize_many("avx512");
}

/* Linear on a leading axis (two taps on C) and cubic: the fast kernel declines, the dispatcher
 * runs the reference. */
Test(movement_fast, resize_unsupported) {
    const pq_movement_kernels *k = pq_movement_kernels_get();
    const char *modes[] = {"linear", "cubic"};
    for (int m = 0; m < 2; m++) {
        mk_node(PQ_OP_RESIZE, 3, 1);
        set_str("mode", modes[m]);
        pq_tensor *in[3] = {rand_t(PQ_DTYPE_F32, 4, D(1, 3, 4, 5), false), NULL,
                            T(PQ_DTYPE_F32, 1, D(4), V(1, m ? 1 : 1.5, 2, 2))};
        cr_assert_not(check(in, 3, 1, k, pq_movement_resize_run, 1, "resize unsupported"));
        check(in, 3, 1, k, NULL, 1, "resize unsupported, dispatched");
        free_in(in, 3);
    }
    /* f16 input */
    mk_node(PQ_OP_RESIZE, 3, 1);
    pq_tensor *in[3] = {T(PQ_DTYPE_F16, 4, D(1, 1, 2, 2), V(1, 2, 3, 4)), NULL,
                        T(PQ_DTYPE_F32, 1, D(4), V(1, 1, 2, 2))};
    cr_assert_not(check(in, 3, 1, k, pq_movement_resize_run, 1, "resize f16"));
    free_in(in, 3);
    mv_cleanup();
}

/* ---- Transpose ---- */

static const enum pq_dtype DTS[] = {PQ_DTYPE_F32, PQ_DTYPE_U8, PQ_DTYPE_I16, PQ_DTYPE_I64};

static void transpose_case(const pq_movement_kernels *k, fast_fn run, int threads, int r,
                           const int64_t *dims, const int64_t *perm, enum pq_dtype dt, int it) {
    mk_node(PQ_OP_TRANSPOSE, 1, 1);
    if (perm) set_ints("perm", perm, (uint32_t)r);
    pq_tensor *in[1] = {rand_t(dt, r, dims, true)};
    char what[96];
    snprintf(what, sizeof what, "transpose %d rank %d %s", it, r, pq_dtype_name(dt));
    cr_assert(check(in, 1, 1, k, run, threads, what), "%s: not handled", what);
    free_in(in, 1);
}

static void transpose_many(const char *isa) {
    const pq_movement_kernels *k = need(isa);
    for (int it = 0; it < 300; it++) {
        int r = (int)ri(1, 6);
        int64_t dims[6], perm[6];
        for (int i = 0; i < r; i++) {
            dims[i] = rnd() % 5 == 0 ? 1 : ri(1, r <= 2 ? 40 : r <= 4 ? 9 : 4);
            perm[i] = i;
        }
        for (int i = r - 1; i > 0; i--) {
            int j = (int)ri(0, i);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        if (rnd() % 3 == 0 && r > 1) perm[0] -= r; /* negative axis */
        transpose_case(k, pq_movement_transpose_run, 1, r, dims, rnd() % 8 ? perm : NULL,
                       DTS[rnd() % 4], it);
    }
    /* large ones over two threads: NCHW -> NHWC, NHWC -> NCHW, 2-D, keep-innermost */
    transpose_case(k, pq_movement_transpose_run, 2, 4, D(1, 67, 45, 61), D(0, 2, 3, 1),
                   PQ_DTYPE_F32, 1000);
    transpose_case(k, pq_movement_transpose_run, 2, 4, D(2, 45, 61, 37), D(0, 3, 1, 2),
                   PQ_DTYPE_F32, 1001);
    transpose_case(k, pq_movement_transpose_run, 2, 2, D(517, 389), D(1, 0), PQ_DTYPE_F32, 1002);
    transpose_case(k, pq_movement_transpose_run, 2, 2, D(517, 389), D(1, 0), PQ_DTYPE_U8, 1003);
    transpose_case(k, pq_movement_transpose_run, 2, 4, D(3, 128, 12, 64), D(0, 2, 1, 3),
                   PQ_DTYPE_F32, 1004);
    mv_cleanup();
}

Test(movement_fast, transpose_scalar) {
    transpose_many("scalar");
}
Test(movement_fast, transpose_avx2) {
    transpose_many("avx2");
}
Test(movement_fast, transpose_avx512) {
    transpose_many("avx512");
}

/* ---- Concat / Split / Slice (no ISA kernels: run once, one and two threads) ---- */

static enum pq_status concat_k(const pq_movement_kernels *k, const pq_kernel_args *a) {
    (void)k;
    return pq_movement_concat_run(a);
}
static enum pq_status split_k(const pq_movement_kernels *k, const pq_kernel_args *a) {
    (void)k;
    return pq_movement_split_run(a);
}
static enum pq_status slice_k(const pq_movement_kernels *k, const pq_kernel_args *a) {
    (void)k;
    return pq_movement_slice_run(a);
}

static void concat_case(int threads, bool big, int it) {
    int r = (int)ri(1, 4), n = (int)ri(1, 5), ax = (int)ri(0, r - 1);
    int64_t dims[4];
    for (int i = 0; i < r; i++)
        dims[i] = big ? ri(8, 40) : ri(1, 6);
    enum pq_dtype dt = DTS[rnd() % 4];
    mk_node(PQ_OP_CONCAT, (uint32_t)n, 1);
    set_int("axis", rnd() % 2 ? ax : ax - r);
    pq_tensor *in[5];
    for (int i = 0; i < n; i++) {
        int64_t d[4];
        memcpy(d, dims, sizeof d);
        d[ax] = rnd() % 6 == 0 ? 0 : big ? ri(20, 200) : ri(1, 5);
        in[i] = rand_t(dt, r, d, false);
    }
    char what[64];
    snprintf(what, sizeof what, "concat %d", it);
    cr_assert(check(in, (uint32_t)n, 1, NULL, concat_k, threads, what), "%s: not handled", what);
    free_in(in, (uint32_t)n);
}

static void split_case(int threads, bool big, int it) {
    int r = (int)ri(1, 4), n = (int)ri(1, 5), ax = (int)ri(0, r - 1);
    int64_t dims[4];
    for (int i = 0; i < r; i++)
        dims[i] = big ? ri(8, 40) : ri(1, 6);
    dims[ax] = big ? ri(100, 400) : ri(n, 12);
    mk_node(PQ_OP_SPLIT, 2, (uint32_t)n);
    set_int("axis", ax);
    pq_tensor *in[2] = {rand_t(DTS[rnd() % 4], r, dims, false), NULL};
    uint32_t nin = 1;
    if (rnd() % 2) { /* explicit sizes */
        double parts[5];
        int64_t left = dims[ax];
        for (int i = 0; i < n - 1; i++) {
            parts[i] = (double)ri(0, left);
            left -= (int64_t)parts[i];
        }
        parts[n - 1] = (double)left;
        in[1] = T(PQ_DTYPE_I64, 1, D(n), parts);
        nin = 2;
    }
    char what[64];
    snprintf(what, sizeof what, "split %d", it);
    cr_assert(check(in, nin, (uint32_t)n, NULL, split_k, threads, what), "%s: not handled", what);
    free_in(in, 2);
}

static bool slice_case(int threads, bool big, int it) {
    int r = (int)ri(1, 5);
    int64_t dims[5];
    for (int i = 0; i < r; i++)
        dims[i] = big ? ri(10, 60) : ri(1, 8);
    int na = (int)ri(1, r);
    double st[5], en[5], axs[5], sp[5];
    int64_t order[5] = {0, 1, 2, 3, 4};
    for (int i = r - 1; i > 0; i--) {
        int j = (int)ri(0, i);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < na; i++) {
        int64_t d = dims[order[i]];
        axs[i] = (double)(rnd() % 2 ? order[i] : order[i] - r);
        sp[i] = rnd() % 4 ? 1 : (double)(ri(1, 3) * (rnd() % 2 ? 1 : -1));
        st[i] = (double)ri(-d - 2, d + 2);
        en[i] = (double)ri(-d - 2, d + 2);
        if (rnd() % 5 == 0) en[i] = sp[i] > 0 ? 9e18 : -9e18;
    }
    mk_node(PQ_OP_SLICE, 5, 1);
    pq_tensor *in[5] = {rand_t(DTS[rnd() % 4], r, dims, false), T(PQ_DTYPE_I64, 1, D(na), st),
                        T(PQ_DTYPE_I64, 1, D(na), en), T(PQ_DTYPE_I64, 1, D(na), axs),
                        rnd() % 2 ? T(PQ_DTYPE_I64, 1, D(na), sp) : NULL};
    if (!in[4]) /* steps omitted: all 1 */
        for (int i = 0; i < na; i++)
            sp[i] = 1;
    char what[64];
    snprintf(what, sizeof what, "slice %d", it);
    bool ok = check(in, in[4] ? 5 : 4, 1, NULL, slice_k, threads, what);
    free_in(in, 5);
    return ok;
}

Test(movement_fast, concat_split) {
    for (int it = 0; it < 300; it++) {
        concat_case(1 + it % 2, false, it);
        split_case(1 + it % 2, false, it);
    }
    for (int it = 0; it < 6; it++) {
        concat_case(2, true, 1000 + it);
        split_case(2, true, 1000 + it);
    }
    mv_cleanup();
}

Test(movement_fast, slice) {
    int handled = 0;
    for (int it = 0; it < 600; it++)
        handled += slice_case(1 + it % 2, false, it);
    for (int it = 0; it < 8; it++)
        handled += slice_case(2, true, 1000 + it);
    cr_assert_geq(handled, 300, "only %d of 608 Slice cases took the fast path", handled);
    mv_cleanup();
}

/* Every op through the fast table (pq_kernel_run) gives the reference's bytes. */
Test(movement_fast, dispatch) {
    for (int it = 0; it < 40; it++) {
        resize_case(NULL, NULL, 1 + it % 2, it % 8 == 0, it);
        concat_case(1, false, it);
        split_case(1, false, it);
        slice_case(1, false, it);
    }
    transpose_case(NULL, NULL, 1, 4, D(2, 5, 7, 9), D(0, 2, 3, 1), PQ_DTYPE_F32, 0);
    mv_cleanup();
}
