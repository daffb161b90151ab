/* Tests of the reference kernels of the data-movement, shape and constant ops (Reshape ...
 * Dropout): every dtype moves bytes unchanged, output shapes come from the inference rules,
 * expected values were computed with numpy and pasted as literals. */
#include "mv_harness.h"

TestSuite(ref_movement, .fini = mv_cleanup);
TestSuite(ref_shape, .fini = mv_cleanup);

/* ---- expected values (numpy) ---- */
/* tr_default: shape [4, 3, 2] */ static const double tr_default[] = {
    0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23};
/* tr_perm120: shape [3, 4, 2] */ static const double tr_perm120[] = {
    0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23};
/* concat_ax1: shape [2, 5] */ static const double concat_ax1[] = {0, 1, 10, 11, 12,
                                                                   2, 3, 13, 14, 15};
/* split_a: shape [2, 2] */ static const double split_a[] = {0, 1, 6, 7};
/* split_b: shape [2, 4] */ static const double split_b[] = {2, 3, 4, 5, 8, 9, 10, 11};
/* slice_neg: shape [3, 3, 3] */ static const double slice_neg[] = {
    119, 118, 117, 111, 110, 109, 103, 102, 101, 79, 78, 77, 71, 70,
    69,  63,  62,  61,  39,  38,  37,  31,  30,  29, 23, 22, 21};
/* slice_pos: shape [6, 4, 3] */ static const double slice_pos[] = {
    1,  2,  3,  5,  6,  7,  9,   10,  11,  13,  14,  15,  21,  22,  23,  25,  26,  27,
    29, 30, 31, 33, 34, 35, 41,  42,  43,  45,  46,  47,  49,  50,  51,  53,  54,  55,
    61, 62, 63, 65, 66, 67, 69,  70,  71,  73,  74,  75,  81,  82,  83,  85,  86,  87,
    89, 90, 91, 93, 94, 95, 101, 102, 103, 105, 106, 107, 109, 110, 111, 113, 114, 115};
/* gather_ax1: shape [3, 2, 2] */ static const double gather_ax1[] = {4, 4, 0,  2,  9,  9,
                                                                      5, 7, 14, 14, 10, 12};
/* gather_el: shape [2, 3] */ static const double gather_el[] = {3, 7, 2, 0, 7, 2};
/* expand: shape [2, 3, 6] */ static const double expand[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
                                                              2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
                                                              1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2};
/* tile4: shape [2, 3, 6, 4] */ static const double tile4[] = {
    0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,  0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,
    0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,  0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,
    0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,  0, 1, 0, 1, 2, 3, 2, 3, 4,  5,  4,  5,
    6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11,
    6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11,
    6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11};
/* d2s_dcr: shape [1, 2, 4, 6] */ static const double d2s_dcr[] = {
    0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4,  16, 5,  17, 27, 39, 28, 40, 29, 41,
    6, 18, 7, 19, 8, 20, 30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47};
/* d2s_crd: shape [1, 2, 4, 6] */ static const double d2s_crd[] = {
    0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10, 5,  11, 15, 21, 16, 22, 17, 23,
    24, 30, 25, 31, 26, 32, 36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47};
/* s2d: shape [1, 8, 2, 3] */ static const double s2d[] = {
    0, 2, 4,  12, 14, 16, 24, 26, 28, 36, 38, 40, 1, 3, 5,  13, 15, 17, 25, 27, 29, 37, 39, 41,
    6, 8, 10, 18, 20, 22, 30, 32, 34, 42, 44, 46, 7, 9, 11, 19, 21, 23, 31, 33, 35, 43, 45, 47};
/* range_f: shape [5] */ static const double range_f[] = {
    1.0, 1.2999999523162842, 1.5999999046325684, 1.8999998569488525, 2.1999998092651367};
/* range_i: shape [2] */ static const double range_i[] = {10, 7};
/* onehot_ax0: shape [3, 4] */ static const double onehot_ax0[] = {
    -1.0, -1.0, -1.0, 7.0, 7.0, -1.0, -1.0, -1.0, -1.0, 7.0, -1.0, -1.0};
/* tril_m1: shape [3, 4] */ static const double tril_m1[] = {0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0};
/* triu_p1: shape [2, 3, 3] */ static const double triu_p1[] = {0, 1,  2,  0, 0, 5,  0, 0, 0,
                                                                0, 10, 11, 0, 0, 14, 0, 0, 0};

/* all dtypes the movement kernels must handle */
static const enum pq_dtype all_types[] = {PQ_DTYPE_F32, PQ_DTYPE_F16, PQ_DTYPE_BF16, PQ_DTYPE_F64,
                                          PQ_DTYPE_I8,  PQ_DTYPE_U8,  PQ_DTYPE_I16,  PQ_DTYPE_U16,
                                          PQ_DTYPE_I32, PQ_DTYPE_U32, PQ_DTYPE_I64,  PQ_DTYPE_U64};

/* ---- Reshape / Flatten / Squeeze / Unsqueeze ---- */

Test(ref_movement, reshape_zero_and_minus_one) {
    mk_node(PQ_OP_RESHAPE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_I16, 3, D(2, 3, 4), NULL), T(PQ_DTYPE_I64, 1, D(2), V(0, -1))};
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    run1(in, 2, PQ_DTYPE_I16, 2, D(2, 12), v, 0);
}

Test(ref_movement, reshape_allowzero_empty) {
    mk_node(PQ_OP_RESHAPE, 2, 1);
    set_int("allowzero", 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 3, D(0, 3, 4), NULL), T(PQ_DTYPE_I64, 1, D(3), V(3, 4, 0))};
    run1(in, 2, PQ_DTYPE_F32, 3, D(3, 4, 0), V(0), 0);
}

Test(ref_movement, reshape_incompatible_is_invalid) {
    mk_node(PQ_OP_RESHAPE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 3, D(2, 3, 4), NULL), T(PQ_DTYPE_I64, 1, D(2), V(5, 5))};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 2, &o, 1), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "cannot reshape 24 elements to [5,5]"), "%s", err.msg);
    /* two -1 */
    mv_destroy(in[1]);
    in[1] = T(PQ_DTYPE_I64, 1, D(2), V(-1, -1));
    cr_assert_eq(run(in, 2, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
    mv_destroy(in[0]);
    mv_destroy(in[1]);
}

Test(ref_movement, reshape_into_planned_buffer) {
    mk_node(PQ_OP_RESHAPE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_U8, 2, D(2, 3), NULL), T(PQ_DTYPE_I64, 1, D(1), V(-1))};
    pq_tensor *o = pq_tensor_create(PQ_DTYPE_U8, 1, D(6), &err);
    cr_assert_eq(run(in, 2, &o, 1), PQ_OK, "%s", err.msg);
    expect(o, PQ_DTYPE_U8, 1, D(6), V(0, 1, 2, 3, 4, 5), 0);
    /* a planned buffer of the wrong shape is an internal error, not an overrun */
    pq_tensor *bad = pq_tensor_create(PQ_DTYPE_U8, 1, D(5), &err);
    cr_assert_eq(run(in, 2, &bad, 1), PQ_ERR_INTERNAL);
    mv_destroy(bad);
    mv_destroy(o);
    mv_destroy(in[0]);
    mv_destroy(in[1]);
}

Test(ref_movement, flatten_axes) {
    double v[120];
    for (int i = 0; i < 120; i++)
        v[i] = i;
    mk_node(PQ_OP_FLATTEN, 1, 1);
    set_int("axis", -2);
    pq_tensor *in[1] = {T(PQ_DTYPE_F64, 4, D(2, 3, 4, 5), NULL)};
    run1(in, 1, PQ_DTYPE_F64, 2, D(6, 20), v, 0);
    mk_node(PQ_OP_FLATTEN, 1, 1);
    set_int("axis", 0);
    in[0] = T(PQ_DTYPE_F64, 4, D(2, 3, 4, 5), NULL);
    run1(in, 1, PQ_DTYPE_F64, 2, D(1, 120), v, 0);
}

Test(ref_movement, squeeze_unsqueeze) {
    mk_node(PQ_OP_SQUEEZE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_I8, 4, D(1, 3, 1, 2), NULL), T(PQ_DTYPE_I64, 1, D(1), V(-2))};
    run1(in, 2, PQ_DTYPE_I8, 3, D(1, 3, 2), V(0, 1, 2, 3, 4, 5), 0);
    mk_node(PQ_OP_SQUEEZE, 2, 1); /* axes omitted: every 1 goes */
    pq_tensor *in1[2] = {T(PQ_DTYPE_I8, 4, D(1, 3, 1, 2), NULL), NULL};
    run1(in1, 1, PQ_DTYPE_I8, 2, D(3, 2), V(0, 1, 2, 3, 4, 5), 0);
    mk_node(PQ_OP_SQUEEZE, 2, 1); /* squeezing a dim that is not 1 */
    pq_tensor *bad[2] = {T(PQ_DTYPE_I8, 2, D(2, 3), NULL), T(PQ_DTYPE_I64, 1, D(1), V(0))};
    pq_tensor *o = shell();
    cr_assert_eq(run(bad, 2, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
    mk_node(PQ_OP_UNSQUEEZE, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_BF16, 2, D(3, 2), NULL), T(PQ_DTYPE_I64, 1, D(2), V(3, 0))};
    run1(in2, 2, PQ_DTYPE_BF16, 4, D(1, 3, 2, 1), V(0, 1, 2, 3, 4, 5), 0);
}

/* ---- Transpose ---- */

Test(ref_movement, transpose_every_dtype) {
    for (size_t k = 0; k < sizeof all_types / sizeof *all_types; k++) {
        enum pq_dtype dt = all_types[k];
        mk_node(PQ_OP_TRANSPOSE, 1, 1);
        pq_tensor *in[1] = {T(dt, 3, D(2, 3, 4), NULL)};
        run1(in, 1, dt, 3, D(4, 3, 2), tr_default, 0);
        mk_node(PQ_OP_TRANSPOSE, 1, 1);
        set_ints("perm", D(1, 2, 0), 3);
        in[0] = T(dt, 3, D(2, 3, 4), NULL);
        run1(in, 1, dt, 3, D(3, 4, 2), tr_perm120, 0);
    }
}

Test(ref_movement, transpose_bad_perm) {
    mk_node(PQ_OP_TRANSPOSE, 1, 1);
    set_ints("perm", D(0, 0, 1), 3);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 3, D(2, 3, 4), NULL)};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 1, &o, 1), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "perm"), "%s", err.msg);
    mv_destroy(o);
    mv_destroy(in[0]);
}

/* ---- Concat / Split ---- */

Test(ref_movement, concat_axis1) {
    mk_node(PQ_OP_CONCAT, 3, 1);
    set_int("axis", 1);
    pq_tensor *in[3] = {T(PQ_DTYPE_I32, 2, D(2, 2), NULL), T(PQ_DTYPE_I32, 2, D(2, 0), NULL),
                        T(PQ_DTYPE_I32, 2, D(2, 3), V(10, 11, 12, 13, 14, 15))};
    run1(in, 3, PQ_DTYPE_I32, 2, D(2, 5), concat_ax1, 0);
}

Test(ref_movement, concat_mismatch_is_invalid) {
    mk_node(PQ_OP_CONCAT, 2, 1);
    set_int("axis", 0);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 2, D(2, 2), NULL), T(PQ_DTYPE_F32, 2, D(2, 3), NULL)};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 2, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

Test(ref_movement, split_given_and_equal_parts) {
    mk_node(PQ_OP_SPLIT, 2, 2);
    set_int("axis", -1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F16, 2, D(2, 6), NULL), T(PQ_DTYPE_I64, 1, D(2), V(2, 4))};
    pq_tensor *o[2] = {shell(), shell()};
    cr_assert_eq(run(in, 2, o, 2), PQ_OK, "%s", err.msg);
    expect(o[0], PQ_DTYPE_F16, 2, D(2, 2), split_a, 0);
    expect(o[1], PQ_DTYPE_F16, 2, D(2, 4), split_b, 0);
    mv_destroy(o[0]);
    mv_destroy(o[1]);
    /* no split input: opset-18 rule, 7 into 3 gives 3, 3, 1 */
    mk_node(PQ_OP_SPLIT, 1, 3);
    pq_tensor *x = T(PQ_DTYPE_U16, 1, D(7), NULL);
    pq_tensor *o3[3] = {shell(), shell(), shell()};
    cr_assert_eq(run(&x, 1, o3, 3), PQ_OK, "%s", err.msg);
    expect(o3[0], PQ_DTYPE_U16, 1, D(3), V(0, 1, 2), 0);
    expect(o3[1], PQ_DTYPE_U16, 1, D(3), V(3, 4, 5), 0);
    expect(o3[2], PQ_DTYPE_U16, 1, D(1), V(6), 0);
    /* split that does not sum to the axis */
    mk_node(PQ_OP_SPLIT, 2, 2);
    pq_tensor *bad[2] = {x, T(PQ_DTYPE_I64, 1, D(2), V(3, 3))};
    pq_tensor *o2[2] = {shell(), shell()};
    cr_assert_eq(run(bad, 2, o2, 2), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "sum to 6"), "%s", err.msg);
}

/* ---- Slice ---- */

Test(ref_movement, slice_negative_steps) {
    mk_node(PQ_OP_SLICE, 5, 1);
    pq_tensor *in[5] = {T(PQ_DTYPE_I64, 3, D(6, 5, 4), NULL), T(PQ_DTYPE_I64, 1, D(3), V(5, -1, 3)),
                        T(PQ_DTYPE_I64, 1, D(3), V(0, -100, 0)),
                        T(PQ_DTYPE_I64, 1, D(3), V(0, 1, 2)),
                        T(PQ_DTYPE_I64, 1, D(3), V(-2, -2, -1))};
    run1(in, 5, PQ_DTYPE_I64, 3, D(3, 3, 3), slice_neg, 0);
}

Test(ref_movement, slice_clamped_ends_and_default_steps) {
    mk_node(PQ_OP_SLICE, 4, 1);
    pq_tensor *ends = T(PQ_DTYPE_I64, 1, D(2), V(0, -1));
    ((int64_t *)ends->data)[0] = INT64_MAX;
    pq_tensor *in[4] = {T(PQ_DTYPE_F32, 3, D(6, 5, 4), NULL), T(PQ_DTYPE_I32, 1, D(2), V(1, 0)),
                        ends, T(PQ_DTYPE_I64, 1, D(2), V(2, -2))};
    run1(in, 4, PQ_DTYPE_F32, 3, D(6, 4, 3), slice_pos, 0);
    /* empty result and a zero step */
    mk_node(PQ_OP_SLICE, 3, 1);
    pq_tensor *e[3] = {T(PQ_DTYPE_F32, 1, D(5), NULL), T(PQ_DTYPE_I64, 1, D(1), V(4)),
                       T(PQ_DTYPE_I64, 1, D(1), V(2))};
    run1(e, 3, PQ_DTYPE_F32, 1, D(0), V(0), 0);
    mk_node(PQ_OP_SLICE, 5, 1);
    pq_tensor *z[5] = {T(PQ_DTYPE_F32, 1, D(5), NULL), T(PQ_DTYPE_I64, 1, D(1), V(0)),
                       T(PQ_DTYPE_I64, 1, D(1), V(2)), NULL, T(PQ_DTYPE_I64, 1, D(1), V(0))};
    pq_tensor *o = shell();
    cr_assert_eq(run(z, 5, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

/* ---- Gather / GatherElements ---- */

Test(ref_movement, gather_2d_negative_indices) {
    mk_node(PQ_OP_GATHER, 2, 1);
    set_int("axis", 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F64, 2, D(3, 5), NULL),
                        T(PQ_DTYPE_I32, 2, D(2, 2), V(4, -1, 0, 2))};
    run1(in, 2, PQ_DTYPE_F64, 3, D(3, 2, 2), gather_ax1, 0);
    mk_node(PQ_OP_GATHER, 2, 1); /* scalar index from a shape vector (shape chains) */
    pq_tensor *in2[2] = {T(PQ_DTYPE_I64, 1, D(3), V(7, 8, 9)), T(PQ_DTYPE_I64, 0, NULL, V(-1))};
    run1(in2, 2, PQ_DTYPE_I64, 0, NULL, V(9), 0);
}

Test(ref_movement, gather_out_of_range_is_invalid) {
    mk_node(PQ_OP_GATHER, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 1, D(3), NULL), T(PQ_DTYPE_I64, 1, D(1), V(3))};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 2, &o, 1), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
    mv_destroy(o);
}

Test(ref_movement, gather_elements_negative) {
    mk_node(PQ_OP_GATHER_ELEMENTS, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_U32, 2, D(3, 3), NULL),
                        T(PQ_DTYPE_I64, 2, D(2, 3), V(1, -1, 0, 0, 2, -3))};
    run1(in, 2, PQ_DTYPE_U32, 2, D(2, 3), gather_el, 0);
}

/* ---- Expand / Tile ---- */

Test(ref_movement, expand_broadcasts) {
    mk_node(PQ_OP_EXPAND, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_I8, 2, D(3, 1), NULL), T(PQ_DTYPE_I64, 1, D(3), V(2, 1, 6))};
    run1(in, 2, PQ_DTYPE_I8, 3, D(2, 3, 6), expand, 0);
    mk_node(PQ_OP_EXPAND, 2, 1);
    pq_tensor *bad[2] = {T(PQ_DTYPE_I8, 1, D(3), NULL), T(PQ_DTYPE_I64, 1, D(1), V(4))};
    pq_tensor *o = shell();
    cr_assert_eq(run(bad, 2, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

Test(ref_movement, tile_rank4) {
    mk_node(PQ_OP_TILE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 4, D(2, 1, 3, 2), NULL),
                        T(PQ_DTYPE_I64, 1, D(4), V(1, 3, 2, 2))};
    run1(in, 2, PQ_DTYPE_F32, 4, D(2, 3, 6, 4), tile4, 0);
}

/* ---- DepthToSpace / SpaceToDepth ---- */

Test(ref_movement, depth_space) {
    mk_node(PQ_OP_DEPTH_TO_SPACE, 1, 1);
    set_int("blocksize", 2);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 4, D(1, 8, 2, 3), NULL)};
    run1(in, 1, PQ_DTYPE_F32, 4, D(1, 2, 4, 6), d2s_dcr, 0);
    mk_node(PQ_OP_DEPTH_TO_SPACE, 1, 1);
    set_int("blocksize", 2);
    set_str("mode", "CRD");
    in[0] = T(PQ_DTYPE_F32, 4, D(1, 8, 2, 3), NULL);
    run1(in, 1, PQ_DTYPE_F32, 4, D(1, 2, 4, 6), d2s_crd, 0);
    mk_node(PQ_OP_SPACE_TO_DEPTH, 1, 1);
    set_int("blocksize", 2);
    in[0] = T(PQ_DTYPE_I16, 4, D(1, 2, 4, 6), NULL);
    run1(in, 1, PQ_DTYPE_I16, 4, D(1, 8, 2, 3), s2d, 0);
}

/* ---- Shape / Size / ConstantOfShape / Constant / Range ---- */

Test(ref_shape, shape_start_end_and_size) {
    mk_node(PQ_OP_SHAPE, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F16, 3, D(3, 4, 5), NULL)};
    run1(in, 1, PQ_DTYPE_I64, 1, D(3), V(3, 4, 5), 0);
    mk_node(PQ_OP_SHAPE, 1, 1);
    set_int("start", -2);
    in[0] = T(PQ_DTYPE_F16, 3, D(3, 4, 5), NULL);
    run1(in, 1, PQ_DTYPE_I64, 1, D(2), V(4, 5), 0);
    mk_node(PQ_OP_SHAPE, 1, 1);
    set_int("start", 1);
    set_int("end", -1);
    in[0] = T(PQ_DTYPE_F16, 3, D(3, 4, 5), NULL);
    run1(in, 1, PQ_DTYPE_I64, 1, D(1), V(4), 0);
    mk_node(PQ_OP_SHAPE, 1, 1);
    set_int("start", 10);
    in[0] = T(PQ_DTYPE_F16, 3, D(3, 4, 5), NULL);
    run1(in, 1, PQ_DTYPE_I64, 1, D(0), V(0), 0);
    mk_node(PQ_OP_SIZE, 1, 1);
    in[0] = T(PQ_DTYPE_U8, 3, D(3, 4, 5), NULL);
    run1(in, 1, PQ_DTYPE_I64, 0, NULL, V(60), 0);
}

Test(ref_shape, constant_of_shape) {
    mk_node(PQ_OP_CONSTANT_OF_SHAPE, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_I64, 1, D(2), V(2, 3))};
    run1(in, 1, PQ_DTYPE_F32, 2, D(2, 3), V(0, 0, 0, 0, 0, 0), 0);
    mk_node(PQ_OP_CONSTANT_OF_SHAPE, 1, 1);
    cr_assert_eq(
        pq_node_set_tensor(g, nid, "value", mv_give(T(PQ_DTYPE_I32, 1, D(1), V(-7))), &err), PQ_OK);
    in[0] = T(PQ_DTYPE_I64, 1, D(2), V(3, 1));
    run1(in, 1, PQ_DTYPE_I32, 2, D(3, 1), V(-7, -7, -7), 0);
    mk_node(PQ_OP_CONSTANT_OF_SHAPE, 1, 1);
    in[0] = T(PQ_DTYPE_I64, 1, D(2), V(3, -1));
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 1, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

Test(ref_shape, constant_attrs) {
    mk_node(PQ_OP_CONSTANT, 0, 1);
    set_ints("value_ints", D(4, -5, 6), 3);
    run1(NULL, 0, PQ_DTYPE_I64, 1, D(3), V(4, -5, 6), 0);
    mk_node(PQ_OP_CONSTANT, 0, 1);
    set_float("value_float", 2.5f);
    run1(NULL, 0, PQ_DTYPE_F32, 0, NULL, V(2.5), 0);
    mk_node(PQ_OP_CONSTANT, 0, 1);
    cr_assert_eq(
        pq_node_set_tensor(g, nid, "value", mv_give(T(PQ_DTYPE_F16, 2, D(1, 2), V(1.5, -2))), &err),
        PQ_OK);
    run1(NULL, 0, PQ_DTYPE_F16, 2, D(1, 2), V(1.5, -2), 0);
}

Test(ref_shape, range_float_and_int) {
    mk_node(PQ_OP_RANGE, 3, 1);
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 0, NULL, V(1)), T(PQ_DTYPE_F32, 0, NULL, V(2.5)),
                        T(PQ_DTYPE_F32, 0, NULL, V(0.3))};
    run1(in, 3, PQ_DTYPE_F32, 1, D(5), range_f, 1e-6);
    mk_node(PQ_OP_RANGE, 3, 1);
    pq_tensor *in2[3] = {T(PQ_DTYPE_I32, 0, NULL, V(10)), T(PQ_DTYPE_I32, 0, NULL, V(4)),
                         T(PQ_DTYPE_I32, 0, NULL, V(-3))};
    run1(in2, 3, PQ_DTYPE_I32, 1, D(2), range_i, 0);
    mk_node(PQ_OP_RANGE, 3, 1); /* empty: limit before start */
    pq_tensor *in3[3] = {T(PQ_DTYPE_I64, 0, NULL, V(5)), T(PQ_DTYPE_I64, 0, NULL, V(1)),
                         T(PQ_DTYPE_I64, 0, NULL, V(2))};
    run1(in3, 3, PQ_DTYPE_I64, 1, D(0), V(0), 0);
    mk_node(PQ_OP_RANGE, 3, 1); /* zero delta */
    pq_tensor *bad[3] = {T(PQ_DTYPE_I64, 0, NULL, V(0)), T(PQ_DTYPE_I64, 0, NULL, V(1)),
                         T(PQ_DTYPE_I64, 0, NULL, V(0))};
    pq_tensor *o = shell();
    cr_assert_eq(run(bad, 3, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

/* ---- OneHot / Trilu / Identity / Dropout ---- */

Test(ref_shape, one_hot_axis0_negative_and_out_of_range) {
    mk_node(PQ_OP_ONE_HOT, 3, 1);
    set_int("axis", 0);
    pq_tensor *in[3] = {T(PQ_DTYPE_I64, 1, D(4), V(1, -1, 5, 0)), T(PQ_DTYPE_F32, 0, NULL, V(3)),
                        T(PQ_DTYPE_F64, 1, D(2), V(-1, 7))};
    run1(in, 3, PQ_DTYPE_F64, 2, D(3, 4), onehot_ax0, 0);
}

Test(ref_shape, trilu) {
    mk_node(PQ_OP_TRILU, 2, 1);
    set_int("upper", 0);
    pq_tensor *in[2] = {T(PQ_DTYPE_I64, 2, D(3, 4), NULL), T(PQ_DTYPE_I64, 0, NULL, V(-1))};
    run1(in, 2, PQ_DTYPE_I64, 2, D(3, 4), tril_m1, 0);
    mk_node(PQ_OP_TRILU, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_F32, 3, D(2, 3, 3), NULL), T(PQ_DTYPE_I64, 0, NULL, V(1))};
    run1(in2, 2, PQ_DTYPE_F32, 3, D(2, 3, 3), triu_p1, 0);
    mk_node(PQ_OP_TRILU, 1, 1); /* empty matrix */
    pq_tensor *in3[1] = {T(PQ_DTYPE_F32, 3, D(3, 0, 5), NULL)};
    run1(in3, 1, PQ_DTYPE_F32, 3, D(3, 0, 5), V(0), 0);
}

Test(ref_shape, identity_and_dropout_mask) {
    mk_node(PQ_OP_IDENTITY, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_BOOL, 1, D(3), V(1, 0, 1))};
    run1(in, 1, PQ_DTYPE_BOOL, 1, D(3), V(1, 0, 1), 0);
    mk_node(PQ_OP_DROPOUT, 2, 2);
    pq_tensor *x[2] = {T(PQ_DTYPE_F32, 2, D(2, 2), V(1, -2, 3, 4)),
                       T(PQ_DTYPE_F32, 0, NULL, V(0.5))};
    pq_tensor *o[2] = {shell(), shell()};
    cr_assert_eq(run(x, 2, o, 2), PQ_OK, "%s", err.msg);
    expect(o[0], PQ_DTYPE_F32, 2, D(2, 2), V(1, -2, 3, 4), 0);
    expect(o[1], PQ_DTYPE_BOOL, 2, D(2, 2), V(1, 1, 1, 1), 0);
}

Test(ref_shape, dropout_training_needs_zero_ratio) {
    mk_node(PQ_OP_DROPOUT, 3, 1);
    pq_tensor *x[3] = {T(PQ_DTYPE_F32, 1, D(2), V(1, 2)), T(PQ_DTYPE_F32, 0, NULL, V(0)),
                       T(PQ_DTYPE_BOOL, 0, NULL, V(1))};
    pq_tensor *o = shell();
    cr_assert_eq(run(x, 3, &o, 1), PQ_OK, "%s", err.msg); /* ratio 0: a copy */
    expect(o, PQ_DTYPE_F32, 1, D(2), V(1, 2), 0);
    pq_dtype_store(PQ_DTYPE_F32, x[1]->data, 0, 0.5);
    pq_tensor *o2 = shell();
    cr_assert_eq(run(x, 3, &o2, 1), PQ_ERR_UNSUPPORTED);
}

/* Runs the node on in (not consumed) and returns its single output. */
static pq_tensor *step(pq_tensor **in, uint32_t nin) {
    pq_tensor *o = shell();
    cr_assert_eq(run(in, nin, &o, 1), PQ_OK, "%s", err.msg);
    return o;
}

Test(ref_shape, shape_gather_unsqueeze_concat_reshape_chain) {
    /* what the runtime folds for x.reshape(x.shape[0], -1) in exported models */
    pq_tensor *x = T(PQ_DTYPE_F32, 3, D(2, 3, 4), NULL);
    mk_node(PQ_OP_SHAPE, 1, 1);
    pq_tensor *s = step(&x, 1);
    mk_node(PQ_OP_GATHER, 2, 1);
    pq_tensor *gi[2] = {s, T(PQ_DTYPE_I64, 0, NULL, V(0))};
    pq_tensor *b = step(gi, 2);
    expect(b, PQ_DTYPE_I64, 0, NULL, V(2), 0);
    mk_node(PQ_OP_UNSQUEEZE, 2, 1);
    pq_tensor *ui[2] = {b, T(PQ_DTYPE_I64, 1, D(1), V(0))};
    pq_tensor *u = step(ui, 2);
    mk_node(PQ_OP_CONCAT, 2, 1);
    set_int("axis", 0);
    pq_tensor *ci[2] = {u, T(PQ_DTYPE_I64, 1, D(1), V(-1))};
    pq_tensor *shape = step(ci, 2);
    expect(shape, PQ_DTYPE_I64, 1, D(2), V(2, -1), 0);
    mk_node(PQ_OP_RESHAPE, 2, 1);
    pq_tensor *ri[2] = {x, shape};
    pq_tensor *y = step(ri, 2);
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    expect(y, PQ_DTYPE_F32, 2, D(2, 12), v, 0);
}

Test(ref_movement, concat_and_split_with_many_operands) {
    /* more than 16 inputs / outputs */
    enum { N = 20 };
    mk_node(PQ_OP_CONCAT, N, 1);
    set_int("axis", 0);
    pq_tensor *in[N];
    double v[N];
    for (int i = 0; i < N; i++) {
        v[i] = 3 * i;
        in[i] = T(PQ_DTYPE_I32, 1, D(1), (double[]){v[i]});
    }
    pq_tensor *c = step(in, N);
    expect(c, PQ_DTYPE_I32, 1, D(N), v, 0);
    mk_node(PQ_OP_SPLIT, 1, N);
    pq_tensor *o[N];
    for (int i = 0; i < N; i++)
        o[i] = shell();
    cr_assert_eq(run(&c, 1, o, N), PQ_OK, "%s", err.msg);
    for (int i = 0; i < N; i++)
        expect(o[i], PQ_DTYPE_I32, 1, D(1), &v[i], 0);
}
