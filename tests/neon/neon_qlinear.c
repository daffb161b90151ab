/* NEON part of the u8/s8 QLinearAdd / QLinearMul tests (included by neon_test.c, which provides
 * check, rng_next, rng_unif, guarded, guard_ok, NELEM, GUARD and POISON): the NEON kernels
 * (backends/arm/qlinear_eltwise_neon.c) bit-exact against the scalar ones over lengths with
 * tails, misaligned operands, poisoned outputs, broadcast B, fused Relu / Clip, zero points at
 * both ends, tie-making, saturating and overflowing scales; the one-pass row broadcast; the node
 * runner on the broadcast shapes of tests/backends/test_qlinear_add.c at 1 and 2 threads, its
 * unsupported cases and the aarch64 selection. */
#include "backends/int8/qlinear_eltwise.h"
#include "ir/ir.h"

static const int32_t ql_u8z[] = {0, 255, 128, 1, 77}, ql_s8z[] = {-128, 127, 0, -1, 33};

/* Random parameters. variant 0: scales in [1e-3, 1); 1: output scale 1e-4 (most results
 * saturate); 2: operand scales 1e19 (products overflow to inf in QLinearMul) and output scale
 * 1e-19 (quotients overflow); 3: powers of two (exact halves: rounding ties). act 0: none, 1:
 * Relu, 2: Clip(-0.75, 1.5), 3: Clip(0.25, 0.25). */
static pq_qadd_params ql_params(bool is_u8, bool mul, int act, int variant) {
    pq_qadd_params p = {.is_u8 = is_u8, .mul = mul, .lo = -INFINITY, .hi = INFINITY};
    float *s[3] = {&p.sa, &p.sb, &p.sc};
    int32_t *z[3] = {&p.za, &p.zb, &p.zc};
    for (int i = 0; i < 3; i++) {
        float v = (float)(1e-3 + (double)(rng_next() % 100000) / 100000.0);
        if (variant == 1 && i == 2) v = 1e-4f;
        if (variant == 2) v = i == 2 ? 1e-19f : 1e19f;
        if (variant == 3) v = ldexpf(1.0f, (int)(rng_next() % 5) - 3);
        *s[i] = v;
        *z[i] = is_u8 ? ql_u8z[rng_next() % 5] : ql_s8z[rng_next() % 5];
    }
    if (act == 1) p.lo = 0.0f;
    if (act == 2) p.lo = -0.75f, p.hi = 1.5f;
    if (act == 3) p.lo = p.hi = 0.25f;
    return p;
}

static const int64_t ql_lens[] = {0,  1,  2,  3,  4,  5,  7,  8,  9,  15,  16,  17,  18,  23,
                                  31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 255, 256, 1000};

static void test_qlinear_kernel(void) {
    const pq_qeltwise_kernels *k = &pq_qeltwise_kernels_neon, *s = &pq_qeltwise_kernels_scalar;
    int ok = 1, cases = 0;
    for (int u8 = 0; u8 < 2; u8++)
        for (int mul = 0; mul < 2; mul++)
            for (int act = 0; act < 4; act++)
                for (int variant = 0; variant < 4; variant++)
                    for (int li = 0; li < NELEM(ql_lens); li++)
                        for (int bc = 0; bc < 2; bc++) {
                            size_t n = (size_t)ql_lens[li], off = (size_t)(li % 4);
                            pq_qadd_params p = ql_params(u8, mul, act, variant);
                            uint8_t *a = guarded(n, off), *b = guarded(n + 1, off + 1);
                            uint8_t *y = guarded(n, off), *yr = guarded(n, 0);
                            for (size_t i = 0; i < n + 1; i++) {
                                if (i < n) a[off + i] = (uint8_t)rng_next();
                                b[off + 1 + i] = (uint8_t)rng_next();
                            }
                            k->add(a + off, b + off + 1, n, bc, &p, y + off);
                            s->add(a + off, b + off + 1, n, bc, &p, yr);
                            int good = guard_ok(y, off, n) && memcmp(y + off, yr, n) == 0;
                            if (!good && ok)
                                printf("qlinear %s %s act %d variant %d n %zu bcast %d\n",
                                       u8 ? "u8" : "s8", mul ? "mul" : "add", act, variant, n, bc);
                            ok &= good;
                            cases++;
                            free(a), free(b), free(y), free(yr);
                        }
    check(ok, "qlinear neon add/mul kernel vs scalar (%d cases)", cases);

    /* the reference's hand values (tests/backends/test_qlinear_add.c): ties and saturation */
    pq_qadd_params h = {.sa = 0.5f,
                        .za = 10,
                        .sb = 0.25f,
                        .zb = 128,
                        .sc = 0.5f,
                        .zc = 20,
                        .lo = -INFINITY,
                        .hi = INFINITY,
                        .is_u8 = true};
    const uint8_t ha[6] = {10, 11, 13, 255, 0, 10}, hb[6] = {128, 129, 128, 255, 0, 131};
    const uint8_t want[6] = {20, 22, 23, 255, 0, 22};
    uint8_t hy[6];
    k->add(ha, hb, 6, false, &h, hy);
    check(memcmp(hy, want, 6) == 0, "qlinear neon hand values");
}

/* add_rows against the scalar add() row by row over runs starting anywhere (mid-row too). */
static void test_qlinear_rows(void) {
    const pq_qeltwise_kernels *k = &pq_qeltwise_kernels_neon, *s = &pq_qeltwise_kernels_scalar;
    static const size_t inners[] = {16, 17, 31, 49, 529};
    int ok = 1, cases = 0;
    for (int ii = 0; ii < NELEM(inners); ii++)
        for (int u8 = 0; u8 < 2; u8++)
            for (int mul = 0; mul < 2; mul++)
                for (int act = 0; act < 3; act++) {
                    size_t inner = inners[ii], rows = inner > 100 ? 3 : 6, total = inner * rows;
                    uint8_t *a = malloc(total), *b = malloc(rows), *yr = malloc(total);
                    for (size_t i = 0; i < total; i++)
                        a[i] = (uint8_t)rng_next();
                    for (size_t i = 0; i < rows; i++)
                        b[i] = (uint8_t)rng_next();
                    pq_qadd_params p = ql_params(u8, mul, act, (int)(rng_next() % 4));
                    for (size_t r = 0; r < rows; r++)
                        s->add(a + r * inner, b + r, inner, true, &p, yr + r * inner);
                    const size_t e0s[] = {0, 3, inner - 1, inner, inner + 7, 2 * inner - 16};
                    const size_t ns[] = {total, 1, 15, 16, 17, 33, inner, total / 2};
                    for (int ei = 0; ei < NELEM(e0s); ei++)
                        for (int ni = 0; ni < NELEM(ns); ni++) {
                            size_t e0 = e0s[ei], n = ns[ni];
                            if (n > total - e0) n = total - e0;
                            uint8_t *y = guarded(n, 1);
                            k->add_rows(a + e0, b, e0, n, inner, &p, y + 1);
                            int good = guard_ok(y, 1, n) && memcmp(y + 1, yr + e0, n) == 0;
                            if (!good && ok)
                                printf("qlinear rows inner %zu e0 %zu n %zu %s %s act %d\n", inner,
                                       e0, n, u8 ? "u8" : "s8", mul ? "mul" : "add", act);
                            ok &= good;
                            cases++;
                            free(y);
                        }
                    free(a), free(b), free(yr);
                }
    check(ok, "qlinear neon add_rows vs scalar add per row (%d cases)", cases);
}

/* ---- the node runner (broadcast split, rows, threads) with the NEON and the scalar table ---- */

typedef struct ql_case {
    pq_graph *g;
    uint32_t nid;
    pq_error err;
    pq_tensor *in[8];
} ql_case;

static pq_tensor *ql_tensor(enum pq_dtype dt, int rank, const int64_t *dims) {
    pq_error err;
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    if (!t) {
        printf("tensor: %s\n", err.msg);
        exit(2);
    }
    return t;
}

static pq_tensor *ql_scalar(enum pq_dtype dt, const void *v) {
    pq_tensor *t = ql_tensor(dt, 0, NULL);
    memcpy(t->data, v, pq_dtype_size(dt));
    return t;
}

/* QLinearAdd / QLinearMul node (act NULL, "Relu" or "Clip(lo, hi)") over A [ra: da] and B. */
static int ql_case_init(ql_case *c, enum pq_op op, const char *act, float lo, float hi,
                        enum pq_dtype dt, int ra, const int64_t *da, int rb, const int64_t *db,
                        const pq_qadd_params *p) {
    memset(c, 0, sizeof *c);
    c->g = pq_graph_create(NULL, &c->err);
    if (!c->g) return 0;
    uint32_t ins[8], out;
    for (uint32_t i = 0; i < 8; i++)
        if (pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &c->err) != PQ_OK)
            return 0;
    if (pq_graph_add_value(c->g, NULL, PQ_DTYPE_UNDEFINED, NULL, &out, &c->err) != PQ_OK ||
        pq_graph_add_node(c->g, op, "n", ins, 8, &out, 1, &c->nid, &c->err) != PQ_OK)
        return 0;
    if (act && pq_node_set_string(c->g, c->nid, "activation", act, &c->err) != PQ_OK) return 0;
    if (act && !strcmp(act, "Clip") &&
        (pq_node_set_float(c->g, c->nid, "activation_alpha", lo, &c->err) != PQ_OK ||
         pq_node_set_float(c->g, c->nid, "activation_beta", hi, &c->err) != PQ_OK))
        return 0;
    c->in[0] = ql_tensor(dt, ra, da);
    c->in[3] = ql_tensor(dt, rb, db);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < c->in[k * 3]->nbytes; i++)
            ((uint8_t *)c->in[k * 3]->data)[i] = (uint8_t)rng_next();
    uint8_t z[3] = {(uint8_t)p->za, (uint8_t)p->zb, (uint8_t)p->zc};
    c->in[1] = ql_scalar(PQ_DTYPE_F32, &p->sa);
    c->in[2] = ql_scalar(dt, &z[0]);
    c->in[4] = ql_scalar(PQ_DTYPE_F32, &p->sb);
    c->in[5] = ql_scalar(dt, &z[1]);
    c->in[6] = ql_scalar(PQ_DTYPE_F32, &p->sc);
    c->in[7] = ql_scalar(dt, &z[2]);
    return 1;
}

static void ql_case_free(ql_case *c) {
    for (int i = 0; i < 8; i++)
        pq_tensor_destroy(c->in[i]);
    pq_graph_destroy(c->g);
}

/* The broadcast output (numpy rules) of the case, poisoned. */
static pq_tensor *ql_out(const ql_case *c) {
    const pq_tensor *A = c->in[0], *B = c->in[3];
    int r = A->rank > B->rank ? A->rank : B->rank;
    int64_t d[PQ_MAX_RANK];
    for (int k = 0; k < r; k++) {
        int ka = k - (r - A->rank), kb = k - (r - B->rank);
        int64_t x = ka >= 0 ? A->dims[ka] : 1, y = kb >= 0 ? B->dims[kb] : 1;
        d[k] = x == 1 ? y : x;
    }
    pq_tensor *t = ql_tensor(A->dtype, r, d);
    memset(t->data, POISON, t->nbytes);
    return t;
}

static enum pq_status ql_run(ql_case *c, const pq_qeltwise_kernels *k, pq_tensor *y, int th) {
    pq_tensor *o[1] = {y};
    pq_kernel_args a = {
        c->g, &c->g->nodes[c->nid], (const pq_tensor *const *)c->in, 8, o, 1, NULL, th, &c->err};
    return pq_qlinear_add_run(k, &a);
}

static void test_qlinear_runner(void) {
    const pq_qeltwise_kernels *k = &pq_qeltwise_kernels_neon, *s = &pq_qeltwise_kernels_scalar;
    check(pq_qeltwise_kernels_get() == k, "qlinear dispatch picks neon on aarch64");
    check(pq_qeltwise_kernels_for("neon") == k && pq_qeltwise_kernels_for("scalar") == s &&
              pq_qeltwise_kernels_for("avx2") == NULL && pq_qeltwise_kernels_for("avx512") == NULL,
          "pq_qeltwise_kernels_for on aarch64");
    const int64_t full[4] = {2, 5, 37, 41}, chan[4] = {2, 5, 1, 1}, one[1] = {1};
    const int64_t full1[4] = {1, 5, 37, 41}, chan3[3] = {5, 1, 1};
    const int64_t rows[5][4] = {
        {2, 7, 1, 3}, {3, 11, 4, 4}, {1, 13, 17, 1}, {2, 9, 7, 7}, {1, 64, 23, 23}};
    const int64_t rowb[5][4] = {
        {2, 7, 1, 1}, {3, 11, 1, 1}, {1, 13, 1, 1}, {2, 9, 1, 1}, {1, 64, 1, 1}};
    const int64_t big[4] = {1, 16, 130, 130}; /* 270400 elements: above the threading threshold */
    static const char *const acts[3] = {NULL, "Relu", "Clip"};
    for (int shape = 0; shape < 12; shape++)
        for (int dtc = 0; dtc < 4; dtc++) {
            enum pq_op op = dtc >= 2 ? PQ_OP_QLINEAR_MUL : PQ_OP_QLINEAR_ADD;
            enum pq_dtype dt = dtc % 2 ? PQ_DTYPE_I8 : PQ_DTYPE_U8;
            pq_qadd_params p = ql_params(dt == PQ_DTYPE_U8, false, 0, shape == 4 ? 1 : 0);
            const int64_t *da = full, *db = full;
            int ra = 4, rb = 4;
            if (shape == 1) db = chan;
            if (shape == 2) da = chan;
            if (shape == 3) db = one, rb = 1;
            if (shape == 4) da = one, ra = 0;
            if (shape == 5) da = db = big;
            if (shape == 6) da = full1, db = chan3, rb = 3;
            if (shape >= 7) da = rows[shape - 7], db = rowb[shape - 7];
            ql_case c;
            int built = ql_case_init(&c, op, acts[shape % 3], -0.5f, 0.5f, dt, ra, da, rb, db, &p);
            check(built, "qlinear runner case %d built: %s", shape, c.err.msg);
            if (!built) {
                ql_case_free(&c);
                continue;
            }
            pq_tensor *yr = ql_out(&c);
            enum pq_status sr = ql_run(&c, s, yr, 1);
            for (int th = 1; th <= 2; th++) {
                pq_tensor *y = ql_out(&c);
                enum pq_status st = ql_run(&c, k, y, th);
                check(sr == PQ_OK && st == PQ_OK && memcmp(y->data, yr->data, y->nbytes) == 0,
                      "qlinear runner neon vs scalar: shape %d %s %s threads %d", shape,
                      pq_op_name(op), pq_dtype_name(dt), th);
                pq_tensor_destroy(y);
            }
            pq_tensor_destroy(yr);
            ql_case_free(&c);
        }
    /* unsupported: both operands broadcast, a zero scale, NaN Clip bounds; output untouched */
    const int64_t ua[3] = {3, 1, 5}, ub[3] = {1, 4, 5};
    for (int cs = 0; cs < 3; cs++) {
        pq_qadd_params p = {.sa = 0.1f, .za = 3, .sb = 0.2f, .zb = 4, .sc = 0.3f, .zc = 5};
        if (cs == 1) p.sc = 0.0f;
        ql_case c;
        int built = ql_case_init(&c, PQ_OP_QLINEAR_ADD, cs == 2 ? "Clip" : NULL, NAN, 1.0f,
                                 PQ_DTYPE_U8, 3, cs == 0 ? ua : ub, 3, ub, &p);
        pq_tensor *y = built ? ql_out(&c) : NULL;
        enum pq_status st = built ? ql_run(&c, k, y, 1) : PQ_ERR_INVALID;
        int untouched = 1;
        for (size_t i = 0; y && i < y->nbytes; i++)
            untouched &= ((uint8_t *)y->data)[i] == POISON;
        check(built && st == PQ_ERR_UNSUPPORTED && untouched, "qlinear neon unsupported case %d",
              cs);
        pq_tensor_destroy(y);
        ql_case_free(&c);
    }
}

static void test_qlinear_all(void) {
    test_qlinear_kernel();
    test_qlinear_rows();
    test_qlinear_runner();
}
