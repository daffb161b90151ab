/* QLinearAdd, QLinearMul and QLinearGlobalAveragePool (com.microsoft, u8/s8): the reference kernel
 * on hand-computed cases (rounding ties, saturation at both ends, zero points, fused Relu / Clip),
 * shape inference, and the fast kernels (backends/int8/qlinear_eltwise*.c) bit for bit against the
 * reference for every ISA the CPU runs (scalar, avx2, avx512; others skipped visibly): length
 * sweeps with SIMD tails, misaligned inputs, poison guards, broadcast shapes, unsupported cases and
 * the fast-table dispatch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/fast.h"
#include "backends/int8/qlinear_eltwise.h"
#include "backends/ref/ref.h"
#include "ir/alloc.h"
#include "ir/ir.h"
#include "ir/text.h"
#include "skip_note.h"

#define GUARD 64
#define POISON 0xA5
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static uint64_t g_s = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    g_s ^= g_s >> 12;
    g_s ^= g_s << 25;
    g_s ^= g_s >> 27;
    return g_s * 2685821657736338717ULL;
}

static const pq_qeltwise_kernels *need(const char *isa) {
    const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isa);
    if (!k) cr_skip_test("ISA %s is not available on this CPU/build: skipped", isa);
    return k;
}

/* One QLinearAdd node with 8 inputs (A, sa, za, B, sb, zb, sc, zc) and its tensors. */
typedef struct {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    pq_tensor *in[8]; /* QLinearGlobalAveragePool: 5 */
} qcase;

static pq_tensor *tens(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t);
    return t;
}

static pq_tensor *scalar_f32(float v) {
    pq_tensor *t = tens(PQ_DTYPE_F32, 0, NULL);
    *(float *)t->data = v;
    return t;
}

static pq_tensor *scalar_q(enum pq_dtype dt, int32_t v) {
    pq_tensor *t = tens(dt, 0, NULL);
    *(uint8_t *)t->data = (uint8_t)v;
    return t;
}

/* The op qcase_init builds (QLinearAdd unless a test sets it). */
static enum pq_op cur_op = PQ_OP_QLINEAR_ADD;

/* act: NULL, "Relu" or "Clip" (with clip bounds lo, hi). */
static void qcase_init(qcase *c, const char *act, float lo, float hi) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    cr_assert_not_null(c->g);
    uint32_t ins[8], out;
    for (uint32_t i = 0; i < 8; i++)
        cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(c->g, cur_op, "n", ins, 8, &out, 1, &c->nid, &c->err), PQ_OK);
    if (act) {
        cr_assert_eq(pq_node_set_string(c->g, c->nid, "activation", act, &c->err), PQ_OK);
        if (!strcmp(act, "Clip")) {
            cr_assert_eq(pq_node_set_float(c->g, c->nid, "activation_alpha", lo, &c->err), PQ_OK);
            cr_assert_eq(pq_node_set_float(c->g, c->nid, "activation_beta", hi, &c->err), PQ_OK);
        }
    }
}

/* Sets the operands: A (rank ra, dims da), B, random codes; scales and zero points. */
static void qcase_data(qcase *c, enum pq_dtype dt, int ra, const int64_t *da, int rb,
                       const int64_t *db, float sa, int32_t za, float sb, int32_t zb, float sc,
                       int32_t zc) {
    c->in[0] = tens(dt, ra, da);
    c->in[3] = tens(dt, rb, db);
    for (int k = 0; k < 2; k++) {
        pq_tensor *t = c->in[k * 3];
        for (size_t i = 0; i < t->nbytes; i++)
            ((uint8_t *)t->data)[i] = (uint8_t)rnd();
    }
    c->in[1] = scalar_f32(sa);
    c->in[2] = scalar_q(dt, za);
    c->in[4] = scalar_f32(sb);
    c->in[5] = scalar_q(dt, zb);
    c->in[6] = scalar_f32(sc);
    c->in[7] = scalar_q(dt, zc);
}

static void qcase_free(qcase *c) {
    for (uint32_t i = 0; i < 8; i++)
        pq_tensor_destroy(c->in[i]);
    pq_graph_destroy(c->g);
}

static pq_kernel_args qargs(qcase *c, pq_tensor **out) {
    pq_kernel_args a = {
        c->g, &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, 8, out, 1, NULL, 1, &c->err};
    return a;
}

/* The broadcast output shape of A and B (numpy). */
static pq_tensor *out_like(qcase *c) {
    const pq_tensor *A = c->in[0], *B = c->in[3];
    int r = A->rank > B->rank ? A->rank : B->rank;
    int64_t d[PQ_MAX_RANK];
    for (int k = 0; k < r; k++) {
        int ka = k - (r - A->rank), kb = k - (r - B->rank);
        int64_t x = ka >= 0 ? A->dims[ka] : 1, y = kb >= 0 ? B->dims[kb] : 1;
        d[k] = x == 1 ? y : x;
    }
    return tens(A->dtype, r, d);
}

/* Reference output bytes of case c (fresh tensor). */
static pq_tensor *ref_out(qcase *c) {
    pq_tensor *y = out_like(c);
    pq_tensor *o[1] = {y};
    pq_kernel_args a = qargs(c, o);
    cr_assert_eq(pq_ref_run(&a), PQ_OK, "reference: %s", c->err.msg);
    return y;
}

/* Runs the reference and the fast node runner with kernels k (NULL: pq_kernel_run through the
 * fast table) into a poisoned output; asserts identical bytes and intact guards. */
static void compare(qcase *c, const pq_qeltwise_kernels *k, int threads, const char *what) {
    pq_tensor *r = ref_out(c);
    pq_tensor *f = out_like(c);
    uint8_t *base = pq_malloc(f->nbytes + 2 * GUARD + 1);
    cr_assert_not_null(base);
    memset(base, POISON, f->nbytes + 2 * GUARD + 1);
    void *own = f->data;
    f->data = base + GUARD + 1; /* misaligned for every vector width */
    pq_tensor *o[1] = {f};
    pq_kernel_args a = qargs(c, o);
    a.n_threads = threads;
    enum pq_status st = k ? pq_qlinear_add_run(k, &a) : pq_kernel_run(&a);
    cr_assert_eq(st, PQ_OK, "%s: fast status %d: %s", what, (int)st, c->err.msg);
    const uint8_t *yr = r->data, *yf = f->data;
    for (size_t i = 0; i < r->nbytes; i++)
        cr_assert_eq(yf[i], yr[i], "%s: byte %zu: %u, reference %u", what, i, yf[i], yr[i]);
    for (size_t i = 0; i < GUARD + 1; i++)
        cr_assert_eq(base[i], POISON, "%s: byte before the output overwritten", what);
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(base[GUARD + 1 + f->nbytes + i], POISON, "%s: guard %zu overwritten", what, i);
    f->data = own;
    pq_tensor_destroy(f);
    pq_tensor_destroy(r);
    pq_free(base);
}

/* ---- reference: hand-computed values ---- */

/* A u8 [6] + B u8 [6] with sa = 0.5, za = 10, sb = 0.25, zb = 128, sc = 0.5, zc = 20:
 *   r = (a - 10) * 0.5 + (b - 128) * 0.25, y = clamp(rne(r / 0.5) + 20, 0, 255). */
Test(qlinear_add_ref, hand_values_ties_and_saturation) {
    qcase c;
    qcase_init(&c, NULL, 0, 0);
    int64_t d = 6;
    qcase_data(&c, PQ_DTYPE_U8, 1, &d, 1, &d, 0.5f, 10, 0.25f, 128, 0.5f, 20);
    const uint8_t a[6] = {10, 11, 13, 255, 0, 10}, b[6] = {128, 129, 128, 255, 0, 131};
    memcpy(c.in[0]->data, a, 6);
    memcpy(c.in[3]->data, b, 6);
    /* r: 0, 0.75, 1.5, 122.5 + 31.75, -5 - 32, 0.75; r / 0.5: 0, 1.5 (tie -> 2), 3, 308.5,
     * -74, 1.5 -> y: 20, 22, 23, 255 (saturated), 0 (saturated: -54), 22 */
    const uint8_t want[6] = {20, 22, 23, 255, 0, 22};
    pq_tensor *y = ref_out(&c);
    cr_assert_eq(y->dtype, PQ_DTYPE_U8);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((uint8_t *)y->data)[i], want[i], "element %d: %u", i,
                     ((uint8_t *)y->data)[i]);
    pq_tensor_destroy(y);
    qcase_free(&c);
}

/* A fused Relu clamps the real sum at 0 before quantizing (zero point 100: Relu is not the u8
 * clamp); Clip(-1, 2) clamps both sides; s8 operands. */
Test(qlinear_add_ref, fused_relu_clip_and_s8) {
    qcase c;
    qcase_init(&c, "Relu", 0, 0);
    int64_t d = 3;
    qcase_data(&c, PQ_DTYPE_U8, 1, &d, 1, &d, 1.0f, 0, 1.0f, 0, 0.25f, 100);
    const uint8_t a[3] = {0, 3, 0}, b[3] = {0, 0, 0};
    memcpy(c.in[0]->data, a, 3);
    memcpy(c.in[3]->data, b, 3);
    *(uint8_t *)c.in[5]->data = 2; /* zb 2: r = a - 2 -> -2, 1, -2 -> Relu 0, 1, 0 */
    pq_tensor *y = ref_out(&c);
    const uint8_t want[3] = {100, 104, 100};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((uint8_t *)y->data)[i], want[i]);
    pq_tensor_destroy(y);
    qcase_free(&c);

    qcase_init(&c, "Clip", -1.0f, 2.0f);
    qcase_data(&c, PQ_DTYPE_I8, 1, &d, 1, &d, 1.0f, 0, 1.0f, 0, 0.5f, -3);
    const int8_t sa[3] = {-5, 1, 100}, sb[3] = {0, 0, 20};
    memcpy(c.in[0]->data, sa, 3);
    memcpy(c.in[3]->data, sb, 3);
    y = ref_out(&c);
    cr_assert_eq(y->dtype, PQ_DTYPE_I8);
    const int8_t want8[3] = {-5, -1, 1}; /* r -1 (clipped), 1, 2 (clipped) -> /0.5 - 3 */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((int8_t *)y->data)[i], want8[i], "%d: %d", i, ((int8_t *)y->data)[i]);
    pq_tensor_destroy(y);
    qcase_free(&c);
}

/* QLinearMul: r = (a - 10) * 0.5 * (b - 128) * 0.25 with a fused Relu, sc = 0.5, zc = 20; a
 * per-channel B [2, 1] against A [2, 3]. */
Test(qlinear_add_ref, qlinear_mul_hand_values) {
    cur_op = PQ_OP_QLINEAR_MUL;
    qcase c;
    qcase_init(&c, "Relu", 0, 0);
    int64_t da[2] = {2, 3}, db[2] = {2, 1};
    qcase_data(&c, PQ_DTYPE_U8, 2, da, 2, db, 0.5f, 10, 0.25f, 128, 0.5f, 20);
    const uint8_t a[6] = {12, 14, 8, 255, 10, 11}, b[2] = {132, 124};
    memcpy(c.in[0]->data, a, 6);
    memcpy(c.in[3]->data, b, 2);
    /* row 0: b -> 1.0: r = 1, 2, -1 -> Relu 0 -> 22, 24, 20; row 1: b -> -1.0: r = -122.5, 0,
     * -0.5 -> 0, 0, 0 -> 20 */
    const uint8_t want[6] = {22, 24, 20, 20, 20, 20};
    pq_tensor *y = ref_out(&c);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((uint8_t *)y->data)[i], want[i], "element %d: %u", i,
                     ((uint8_t *)y->data)[i]);
    pq_tensor_destroy(y);
    qcase_free(&c);
    cur_op = PQ_OP_QLINEAR_ADD;
}

/* Shape inference: broadcast result in A's dtype; u8 + s8, a 2-element scale and an unsupported
 * activation are rejected. */
Test(qlinear_add_ref, inference) {
    const char *ok = "piqc 1\ngraph t {\n  input %a: u8[2, 3, 4, 4]\n  input %b: u8[2, 3, 1, 1]\n"
                     "  const %s: f32[] = [0.5]\n  const %z: u8[] = [3]\n"
                     "  %y = QLinearAdd(%a, %s, %z, %b, %s, %z, %s, %z) {activation = \"Relu\"}\n"
                     "  output %y\n}\n";
    pq_error e;
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(ok, strlen(ok), NULL, 0, &g, &e), PQ_OK, "%s", e.msg);
    cr_assert_eq(pq_graph_infer_shapes(g, &e), PQ_OK, "%s", e.msg);
    uint32_t y = pq_graph_find_value(g, "y");
    cr_assert_eq(g->values[y].dtype, PQ_DTYPE_U8);
    cr_assert_eq(g->values[y].shape.rank, 4);
    cr_assert_eq(g->values[y].shape.dims[3].size, 4);
    pq_graph_destroy(g);
    const char *bad[] = {
        "  input %b: i8[2, 3, 1, 1]\n  const %s: f32[] = [0.5]\n",
        "  input %b: u8[2, 3, 1, 1]\n  const %s: f32[2] = [0.5, 1]\n",
    };
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "piqc 1\ngraph t {\n  input %%a: u8[2, 3, 4, 4]\n%s  const %%z: u8[] = [3]\n"
                 "  %%y = QLinearAdd(%%a, %%s, %%z, %%b, %%s, %%z, %%s, %%z)\n  output %%y\n}\n",
                 bad[k]);
        g = NULL;
        enum pq_status st = pq_text_parse(text, strlen(text), NULL, 0, &g, &e);
        if (st == PQ_OK) st = pq_graph_infer_shapes(g, &e);
        cr_assert_eq(st, PQ_ERR_INVALID, "case %d: %d %s", k, (int)st, e.msg);
        pq_graph_destroy(g);
    }
    const char *act = "piqc 1\ngraph t {\n  input %a: u8[4]\n  const %s: f32[] = [0.5]\n"
                      "  const %z: u8[] = [3]\n"
                      "  %y = QLinearAdd(%a, %s, %z, %a, %s, %z, %s, %z) {activation = \"Tanh\"}\n"
                      "  output %y\n}\n";
    g = NULL;
    enum pq_status st = pq_text_parse(act, strlen(act), NULL, 0, &g, &e);
    if (st == PQ_OK) st = pq_graph_infer_shapes(g, &e);
    cr_assert_eq(st, PQ_ERR_UNSUPPORTED, "%d %s", (int)st, e.msg);
    pq_graph_destroy(g);
}

/* ---- fast kernels against the reference ---- */

static const char *const acts[3] = {NULL, "Relu", "Clip"};

/* Random parameters: scales in [1e-3, 1), zero points anywhere including both ends. */
static void rand_params(enum pq_dtype dt, float *s, int32_t *z) {
    static const int32_t u8z[] = {0, 255, 128, 1, 77}, s8z[] = {-128, 127, 0, -1, 33};
    for (int i = 0; i < 3; i++) {
        s[i] = (float)(1e-3 + (double)(rnd() % 100000) / 100000.0);
        z[i] = dt == PQ_DTYPE_U8 ? u8z[rnd() % 5] : s8z[rnd() % 5];
    }
}

static void sweep(const char *isa) {
    const pq_qeltwise_kernels *k = need(isa);
    for (int dtc = 0; dtc < 4; dtc++) { /* u8, s8 Add; u8, s8 Mul */
        cur_op = dtc >= 2 ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
        enum pq_dtype dt = dtc % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
        for (int64_t n = 0; n <= 70; n++)
            for (int ac = 0; ac < 3; ac++) {
                qcase c;
                qcase_init(&c, acts[ac], -0.75f, 1.5f);
                float s[3];
                int32_t z[3];
                rand_params(dt, s, z);
                qcase_data(&c, dt, 1, &n, 1, &n, s[0], z[0], s[1], z[1], s[2], z[2]);
                char what[96];
                snprintf(what, sizeof what, "%s %s %s n=%lld act %s", isa, pq_op_name(cur_op),
                         pq_dtype_name(dt), (long long)n, acts[ac] ? acts[ac] : "none");
                compare(&c, k, 1, what);
                qcase_free(&c);
            }
    }
    cur_op = PQ_OP_QLINEAR_ADD;
}

Test(qlinear_add_fast, sweep_scalar) {
    sweep("scalar");
}
Test(qlinear_add_fast, sweep_avx2) {
    sweep("avx2");
}
Test(qlinear_add_fast, sweep_avx512) {
    sweep("avx512");
}

/* Broadcast shapes the fast path takes (full + per-channel, per-channel + full, scalar either
 * side, equal) at sizes with tails, 1 and 2 threads, every ISA; saturating scales (sc tiny). */
Test(qlinear_add_fast, broadcast_shapes_threads_saturation) {
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    const int64_t full[4] = {2, 5, 37, 41}, chan[4] = {2, 5, 1, 1}, one[1] = {1};
    const int64_t full1[4] = {1, 5, 37, 41}, chan3[3] = {5, 1, 1}; /* rank-3 B against N = 1 */
    /* rows of 3 (per-row calls), 16, 17 and 49 elements (one pass across row ends) */
    /* and rows of 529 over 33856 elements: the second 16384-element task starts mid-row */
    const int64_t rows[5][4] = {
        {2, 7, 1, 3}, {3, 11, 4, 4}, {1, 13, 17, 1}, {2, 9, 7, 7}, {1, 64, 23, 23}};
    const int64_t rowb[5][4] = {
        {2, 7, 1, 1}, {3, 11, 1, 1}, {1, 13, 1, 1}, {2, 9, 1, 1}, {1, 64, 1, 1}};
    const int64_t big[4] = {1, 64, 56, 56}; /* above the threading threshold */
    for (int ii = 0; ii < 3; ii++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[ii]);
        if (!k) {
            PQ_TEST_NOTE("ISA %s not available: broadcast cases skipped for it", isas[ii]);
            continue;
        }
        for (int shape = 0; shape < 12; shape++)
            for (int dtc = 0; dtc < 4; dtc++) {
                cur_op = dtc >= 2 ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
                enum pq_dtype dt = dtc % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                qcase c;
                qcase_init(&c, acts[shape % 3], -0.5f, 0.5f);
                float s[3];
                int32_t z[3];
                rand_params(dt, s, z);
                if (shape == 4) s[2] = 1e-4f; /* nearly everything saturates */
                const int64_t *da = full, *db = full;
                int ra = 4, rb = 4;
                if (shape == 1) db = chan;
                if (shape == 2) da = chan;
                if (shape == 3) {
                    db = one;
                    rb = 1;
                }
                if (shape == 4) {
                    da = one;
                    ra = 0;
                }
                if (shape == 5) da = db = big;
                if (shape == 6) {
                    da = full1;
                    db = chan3;
                    rb = 3;
                }
                if (shape >= 7) {
                    da = rows[shape - 7];
                    db = rowb[shape - 7];
                }
                qcase_data(&c, dt, ra, da, rb, db, s[0], z[0], s[1], z[1], s[2], z[2]);
                for (int th = 1; th <= 2; th++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s %s shape %d %s threads %d", isas[ii],
                             pq_op_name(cur_op), shape, pq_dtype_name(dt), th);
                    compare(&c, k, th, what);
                }
                qcase_free(&c);
            }
    }
    cur_op = PQ_OP_QLINEAR_ADD;
}

/* Unsupported cases leave the output untouched (UNSUPPORTED), and pq_kernel_run then gives the
 * reference's bytes: a broadcast of both operands, a zero scale, a per-axis scale, HardSwish-free
 * but NaN Clip bounds. */
Test(qlinear_add_fast, unsupported_fall_back) {
    const int64_t da[3] = {3, 1, 5}, db[3] = {1, 4, 5};
    for (int cs = 0; cs < 3; cs++) {
        qcase c;
        qcase_init(&c, cs == 2 ? "Clip" : NULL, NAN, 1.0f);
        if (cs == 0)
            qcase_data(&c, PQ_DTYPE_U8, 3, da, 3, db, 0.1f, 3, 0.2f, 4, 0.3f, 5);
        else
            qcase_data(&c, PQ_DTYPE_U8, 3, db, 3, db, 0.1f, 3, 0.2f, 4, cs == 1 ? 0.0f : 0.3f, 5);
        pq_tensor *f = out_like(&c);
        memset(f->data, POISON, f->nbytes);
        pq_tensor *o[1] = {f};
        pq_kernel_args a = qargs(&c, o);
        cr_assert_eq(pq_qlinear_add_run(NULL, &a), PQ_ERR_UNSUPPORTED, "case %d", cs);
        for (size_t i = 0; i < f->nbytes; i++)
            cr_assert_eq(((uint8_t *)f->data)[i], POISON);
        pq_tensor_destroy(f);
        if (cs != 1) compare(&c, NULL, 1, "fallback"); /* zero scale: NaN paths, ref only */
        qcase_free(&c);
    }
}

Test(qlinear_add_fast, table_dispatch) {
    cr_assert_eq(pq_fast_kernels[PQ_OP_QLINEAR_ADD], pq_fast_qlinear_add);
    cr_assert_eq(pq_fast_kernels[PQ_OP_QLINEAR_MUL], pq_fast_qlinear_add);
    qcase c;
    qcase_init(&c, "Relu", 0, 0);
    int64_t d[2] = {3, 1000};
    qcase_data(&c, PQ_DTYPE_U8, 2, d, 2, d, 0.02f, 128, 0.03f, 100, 0.04f, 0);
    compare(&c, NULL, 1, "dispatch");
    qcase_free(&c);
}

/* Scales that put many quotients r / sc exactly on k + 1/2 (powers of two) or next to it: the
 * rounding ties of every kernel, full tensors and broadcasts, each ISA. */
Test(qlinear_add_fast, rounding_ties_every_isa) {
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    static const float ts[][3] = {{0.5f, 0.25f, 0.5f},    {0.25f, 0.25f, 1.0f},
                                  {0.125f, 0.5f, 0.25f},  {0.1f, 0.1f, 0.2f},
                                  {0.3f, 0.15f, 0.6f},    {1.0f / 3, 1.0f / 6, 2.0f / 3},
                                  {0.0625f, 2.0f, 0.125f}};
    const int64_t full[4] = {1, 3, 17, 19}, chan[4] = {1, 3, 1, 1};
    for (int ii = 0; ii < 3; ii++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[ii]);
        if (!k) {
            PQ_TEST_NOTE("ISA %s not available: tie cases skipped for it", isas[ii]);
            continue;
        }
        for (int t = 0; t < NELEM(ts); t++)
            for (int dtc = 0; dtc < 4; dtc++)
                for (int bc = 0; bc < 2; bc++) {
                    cur_op = dtc >= 2 ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
                    enum pq_dtype dt = dtc % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                    int32_t z = dt == PQ_DTYPE_U8 ? 128 : 0;
                    qcase c;
                    qcase_init(&c, NULL, 0, 0);
                    qcase_data(&c, dt, 4, full, 4, bc ? chan : full, ts[t][0], z, ts[t][1], z + 3,
                               ts[t][2], z - 5);
                    char what[96];
                    snprintf(what, sizeof what, "%s %s ties #%d %s%s", isas[ii], pq_op_name(cur_op),
                             t, pq_dtype_name(dt), bc ? " per-channel" : "");
                    compare(&c, k, 1, what);
                    qcase_free(&c);
                }
    }
    cur_op = PQ_OP_QLINEAR_ADD;
}

/* The table lookups (map) against the scalar loop: every length 0 .. 300 (tails), every byte, a
 * misaligned source and destination, guards intact. */
Test(qlinear_add_fast, map_kernels) {
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    uint8_t lut[256], a[320], y[320 + 2 * GUARD];
    for (int v = 0; v < 256; v++)
        lut[v] = (uint8_t)(rnd() >> 56);
    for (int i = 0; i < 320; i++)
        a[i] = (uint8_t)(i < 256 ? (uint64_t)i : rnd() >> 56);
    int tested = 0;
    for (int ii = 0; ii < 3; ii++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[ii]);
        if (!k || !k->map) {
            cr_log_info("%s: no table lookup kernel", isas[ii]);
            continue;
        }
        for (size_t n = 0; n <= 300; n++) {
            memset(y, POISON, sizeof y);
            k->map(a + 3, n, lut, y + GUARD + 1);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(y[GUARD + 1 + i], lut[a[3 + i]], "%s map n %zu byte %zu", isas[ii], n,
                             i);
            for (size_t i = 0; i < GUARD + 1; i++)
                cr_assert_eq(y[i], POISON, "%s map n %zu: byte before overwritten", isas[ii], n);
            for (size_t i = GUARD + 1 + n; i < sizeof y; i++)
                cr_assert_eq(y[i], POISON, "%s map n %zu: byte after overwritten", isas[ii], n);
        }
        tested++;
    }
    cr_assert_geq(tested, 1); /* scalar always has one */
}

/* Per-channel broadcasts with rows long enough for the tables (PQ_QE_LUT_MIN and more, the
 * squeeze-excite multiply of MobileNet: A [N, C, H, W] times B [N, C, 1, 1], and B times A), a
 * scalar B over a large A, channels sharing B values (a table reused) and rows split between
 * tasks: bit-exact with the reference for Mul and Add, u8 / s8, activations, 1 and 2 threads. */
Test(qlinear_add_fast, broadcast_tables) {
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    const int64_t shapes[4][4] = {
        {1, 16, 56, 56}, {2, 5, 1, PQ_QE_LUT_MIN}, {1, 7, 20, 20}, {1, 3, 101, 163}};
    for (int ii = 0; ii < 3; ii++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[ii]);
        if (!k) {
            PQ_TEST_NOTE("ISA %s not available: table cases skipped for it", isas[ii]);
            continue;
        }
        for (int sh = 0; sh < 5; sh++)
            for (int dtc = 0; dtc < 4; dtc++) {
                cur_op = dtc < 2 ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
                enum pq_dtype dt = dtc % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                const int64_t *da = shapes[sh % 4];
                int64_t db[4] = {da[0], da[1], 1, 1};
                int rb = 4;
                if (sh == 4) { /* scalar B */
                    db[0] = 1;
                    rb = 0;
                }
                qcase c;
                qcase_init(&c, acts[(sh + dtc) % 3], -0.5f, 0.75f);
                float s[3];
                int32_t z[3];
                rand_params(dt, s, z);
                bool swap = sh == 2; /* B [N, C, 1, 1] as the first operand */
                if (swap)
                    qcase_data(&c, dt, rb, db, 4, da, s[0], z[0], s[1], z[1], s[2], z[2]);
                else
                    qcase_data(&c, dt, 4, da, rb, db, s[0], z[0], s[1], z[1], s[2], z[2]);
                pq_tensor *B = c.in[swap ? 0 : 3];
                if (sh == 1) /* shared B values: consecutive channels reuse a table */
                    for (size_t i = 0; i < B->nbytes; i++)
                        ((uint8_t *)B->data)[i] = (uint8_t)(200 + i / 3);
                for (int th = 1; th <= 2; th++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s %s tables shape %d %s threads %d", isas[ii],
                             pq_op_name(cur_op), sh, pq_dtype_name(dt), th);
                    compare(&c, k, th, what);
                }
                qcase_free(&c);
            }
    }
    cur_op = PQ_OP_QLINEAR_ADD;
}

/* Short rows whose B bytes repeat in runs (all equal, random run lengths, alternating): runs of
 * PQ_QE_LUT_MIN elements or more go through a table, the rest through the arithmetic, the two
 * interleaved in one task; rows under 16 elements, and a 16384-element task boundary inside a row
 * and inside a run; bit-exact with the reference, 1 and 2 threads, every ISA. */
Test(qlinear_add_fast, broadcast_runs_of_equal_rows) {
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    const int64_t shapes[4][4] = {
        {1, 576, 7, 7}, {1, 240, 14, 14}, {2, 700, 1, 3}, {1, 300, 1, 61}};
    for (int ii = 0; ii < 3; ii++) {
        const pq_qeltwise_kernels *k = pq_qeltwise_kernels_for(isas[ii]);
        if (!k) {
            PQ_TEST_NOTE("ISA %s not available: run cases skipped for it", isas[ii]);
            continue;
        }
        for (int sh = 0; sh < 4; sh++)
            for (int pat = 0; pat < 3; pat++)
                for (int dtc = 0; dtc < 2; dtc++) {
                    cur_op = dtc ? PQ_OP_QLINEAR_ADD : PQ_OP_QLINEAR_MUL;
                    enum pq_dtype dt = (sh + pat) % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                    const int64_t *da = shapes[sh];
                    int64_t db[4] = {da[0], da[1], 1, 1};
                    qcase c;
                    qcase_init(&c, acts[(sh + pat) % 3], -0.25f, 1.25f);
                    float s[3];
                    int32_t z[3];
                    rand_params(dt, s, z);
                    qcase_data(&c, dt, 4, da, 4, db, s[0], z[0], s[1], z[1], s[2], z[2]);
                    uint8_t *b = c.in[3]->data, v = (uint8_t)rnd();
                    for (size_t i = 0; i < c.in[3]->nbytes; i++) {
                        if (pat == 1 && rnd() % 12 == 0) v = (uint8_t)rnd(); /* runs of ~12 */
                        if (pat == 2) v = (uint8_t)(i % 2 ? 17 : 201);
                        b[i] = v;
                    }
                    for (int th = 1; th <= 2; th++) {
                        char what[96];
                        snprintf(what, sizeof what, "%s %s runs shape %d pattern %d %s threads %d",
                                 isas[ii], pq_op_name(cur_op), sh, pat, pq_dtype_name(dt), th);
                        compare(&c, k, th, what);
                    }
                    qcase_free(&c);
                }
    }
    cur_op = PQ_OP_QLINEAR_ADD;
}

/* ---- QLinearGlobalAveragePool ---- */

/* One QLinearGlobalAveragePool node over X [n, c, h, w] with random codes. */
static void gap_case(qcase *c, enum pq_dtype dt, const int64_t *dims, float sx, int32_t zx,
                     float sy, int32_t zy) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    cr_assert_not_null(c->g);
    uint32_t ins[5], out;
    for (uint32_t i = 0; i < 5; i++)
        cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err),
                     PQ_OK);
    cr_assert_eq(pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(c->g, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL, "n", ins, 5, &out, 1,
                                   &c->nid, &c->err),
                 PQ_OK);
    c->in[0] = tens(dt, 4, dims);
    for (size_t i = 0; i < c->in[0]->nbytes; i++)
        ((uint8_t *)c->in[0]->data)[i] = (uint8_t)rnd();
    c->in[1] = scalar_f32(sx);
    c->in[2] = scalar_q(dt, zx);
    c->in[3] = scalar_f32(sy);
    c->in[4] = scalar_q(dt, zy);
}

/* Runs case c (5 inputs) with the reference, or with the fast runner, into a new [n, c, 1, 1]. */
static pq_tensor *gap_run(qcase *c, bool fast, int threads) {
    int64_t d[4] = {c->in[0]->dims[0], c->in[0]->dims[1], 1, 1};
    pq_tensor *y = tens(c->in[0]->dtype, 4, d);
    memset(y->data, POISON, y->nbytes);
    pq_tensor *o[1] = {y};
    pq_kernel_args a = {
        c->g,   &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, 5, o, 1, NULL, threads,
        &c->err};
    enum pq_status st = fast ? pq_qlinear_gap_run(&a) : pq_ref_run(&a);
    cr_assert_eq(st, PQ_OK, "%s: %d %s", fast ? "fast" : "reference", (int)st, c->err.msg);
    return y;
}

/* Plane sums of (q - zx): 2x2 planes {10, 11, 12, 13} - 10 = 6 -> r = 6 * 0.5 / 4 = 0.75 ->
 * 0.75 / 0.25 = 3 + 5 = 8; {0, 0, 0, 1} - 10 -> -39 * 0.5 / 4 = -4.875 -> -19.5 -> -20 + 5 -> 0
 * (saturated); {255 x 4}: 245 * 4 * 0.5 / 4 = 122.5 -> 490 -> 255. */
Test(qlinear_gap, hand_values) {
    qcase c;
    int64_t d[4] = {1, 3, 2, 2};
    gap_case(&c, PQ_DTYPE_U8, d, 0.5f, 10, 0.25f, 5);
    const uint8_t x[12] = {10, 11, 12, 13, 0, 0, 0, 1, 255, 255, 255, 255};
    memcpy(c.in[0]->data, x, 12);
    pq_tensor *y = gap_run(&c, false, 1);
    const uint8_t want[3] = {8, 0, 255};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((uint8_t *)y->data)[i], want[i], "plane %d: %u", i, ((uint8_t *)y->data)[i]);
    pq_tensor_destroy(y);
    qcase_free(&c);
}

/* The fast runner equals the reference for u8 / s8, plane sizes 1 .. 56x56, zero points at the
 * ends, 1 and 2 threads, plane counts across its batches of 64; channels_last is UNSUPPORTED. */
Test(qlinear_gap, fast_matches_reference) {
    static const int64_t shapes[][4] = {{1, 1, 1, 1},    {2, 3, 1, 7},    {1, 16, 7, 7},
                                        {2, 24, 14, 14}, {1, 96, 56, 56}, {1, 150, 7, 7},
                                        {3, 43, 2, 3}};
    for (int s = 0; s < 7; s++)
        for (int dtc = 0; dtc < 2; dtc++) {
            enum pq_dtype dt = dtc ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
            float sc[3];
            int32_t z[3];
            rand_params(dt, sc, z);
            qcase c;
            gap_case(&c, dt, shapes[s], sc[0], z[0], sc[1], z[1]);
            pq_tensor *r = gap_run(&c, false, 1);
            for (int th = 1; th <= 2; th++) {
                pq_tensor *f = gap_run(&c, true, th);
                cr_assert_eq(memcmp(f->data, r->data, r->nbytes), 0, "shape %d %s threads %d", s,
                             pq_dtype_name(dt), th);
                pq_tensor_destroy(f);
            }
            pq_tensor_destroy(r);
            qcase_free(&c);
        }
    qcase c;
    int64_t d[4] = {1, 2, 3, 3};
    gap_case(&c, PQ_DTYPE_U8, d, 0.1f, 0, 0.1f, 0);
    cr_assert_eq(pq_node_set_int(c.g, c.nid, "channels_last", 1, &c.err), PQ_OK);
    pq_tensor *y = tens(PQ_DTYPE_U8, 4, (int64_t[]){1, 2, 1, 1});
    pq_tensor *o[1] = {y};
    pq_kernel_args a = {c.g,   &c.g->nodes[c.nid], (const pq_tensor *const *)c.in, 5, o, 1, NULL, 1,
                        &c.err};
    cr_assert_eq(pq_qlinear_gap_run(&a), PQ_ERR_UNSUPPORTED);
    cr_assert_eq(pq_fast_kernels[PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL], pq_fast_qlinear_gap);
    pq_tensor_destroy(y);
    qcase_free(&c);
}

/* Constant planes at the byte extremes up to the largest plane the fast path takes (65536: the
 * sums reach 255 * 65536 and -128 * 65536), u8 and s8, vector sums and their tails. */
Test(qlinear_gap, extreme_bytes_large_planes) {
    static const int64_t shapes[][4] = {{1, 2, 256, 256}, {1, 3, 255, 17}, {2, 2, 1, 15}};
    static const uint8_t fill[] = {0x00, 0xFF, 0x80, 0x7F};
    for (int s = 0; s < 3; s++)
        for (int f = 0; f < 4; f++)
            for (int dtc = 0; dtc < 2; dtc++) {
                enum pq_dtype dt = dtc ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                qcase c;
                gap_case(&c, dt, shapes[s], 0.02f, dtc ? 3 : 130, 0.5f, dtc ? -7 : 9);
                memset(c.in[0]->data, fill[f], c.in[0]->nbytes);
                pq_tensor *r = gap_run(&c, false, 1), *y = gap_run(&c, true, 1);
                cr_assert_eq(memcmp(y->data, r->data, r->nbytes), 0, "shape %d fill %02x %s", s,
                             fill[f], pq_dtype_name(dt));
                pq_tensor_destroy(y);
                pq_tensor_destroy(r);
                qcase_free(&c);
            }
}

/* Rounding ties: plane means that are exact multiples of 1/2 and 1/4 of the output scale (planes
 * of 2 and 4, power-of-two scales), u8 and s8, against the reference. */
Test(qlinear_gap, rounding_ties) {
    static const int64_t shapes[][4] = {{1, 300, 1, 2}, {1, 300, 2, 2}, {2, 100, 1, 8}};
    static const float sy[] = {1.0f, 0.5f, 2.0f, 0.25f};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 4; k++)
            for (int dtc = 0; dtc < 2; dtc++) {
                enum pq_dtype dt = dtc ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
                qcase c;
                gap_case(&c, dt, shapes[s], 1.0f, dtc ? 0 : 128, sy[k], dtc ? 1 : 127);
                pq_tensor *r = gap_run(&c, false, 1), *y = gap_run(&c, true, 1);
                cr_assert_eq(memcmp(y->data, r->data, r->nbytes), 0, "shape %d sy %g %s", s,
                             (double)sy[k], pq_dtype_name(dt));
                pq_tensor_destroy(y);
                pq_tensor_destroy(r);
                qcase_free(&c);
            }
}
