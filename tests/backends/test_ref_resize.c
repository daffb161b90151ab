/* Tests of the Pad and Resize reference kernels: pad modes against numpy.pad, resize modes against
 * torch.nn.functional.interpolate and the ONNX conformance expectations, pasted as literals. */
#include "mv_harness.h"

TestSuite(ref_pad, .fini = mv_cleanup);
TestSuite(ref_resize, .fini = mv_cleanup);

/* ---- expected values (numpy.pad, torch interpolate, onnx test data) ---- */
/* pad_const: shape [4, 7] */
static const double pad_const[] = {9.5, 9.5, 9.5, 9.5, 9.5, 9.5,  9.5,  9.5, 9.5, 0.0,
                                   1.0, 2.0, 3.0, 9.5, 9.5, 9.5,  4.0,  5.0, 6.0, 7.0,
                                   9.5, 9.5, 9.5, 8.0, 9.0, 10.0, 11.0, 9.5};
/* pad_reflect: shape [6, 9] */
static const double pad_reflect[] = {
    11.0, 10.0, 9.0, 8.0, 9.0, 10.0, 11.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 5.0, 6.0, 7.0, 6.0, 5.0,
    3.0,  2.0,  1.0, 0.0, 1.0, 2.0,  3.0,  2.0,  1.0, 7.0, 6.0, 5.0, 4.0, 5.0, 6.0, 7.0, 6.0, 5.0,
    11.0, 10.0, 9.0, 8.0, 9.0, 10.0, 11.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 5.0, 6.0, 7.0, 6.0, 5.0};
/* pad_edge: shape [5, 6] */
static const double pad_edge[] = {0.0, 0.0,  1.0,  2.0,  3.0, 3.0,  4.0,  4.0,  5.0,  6.0,
                                  7.0, 7.0,  8.0,  8.0,  9.0, 10.0, 11.0, 11.0, 8.0,  8.0,
                                  9.0, 10.0, 11.0, 11.0, 8.0, 8.0,  9.0,  10.0, 11.0, 11.0};
/* pad_wrap: shape [5, 9] */
static const double pad_wrap[] = {
    11.0, 8.0,  9.0, 10.0, 11.0, 8.0,  9.0, 10.0, 11.0, 3.0, 0.0, 1.0, 2.0,  3.0, 0.0,
    1.0,  2.0,  3.0, 7.0,  4.0,  5.0,  6.0, 7.0,  4.0,  5.0, 6.0, 7.0, 11.0, 8.0, 9.0,
    10.0, 11.0, 8.0, 9.0,  10.0, 11.0, 3.0, 0.0,  1.0,  2.0, 3.0, 0.0, 1.0,  2.0, 3.0};
/* pad_crop: shape [3, 4] */
static const double pad_crop[] = {1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 0.0, 9.0, 10.0, 11.0, 0.0};
/* up_nearest: shape [1, 1, 5, 7] */
static const double up_nearest[] = {-2.0, -2.0, -0.5, -0.5, 1.0,  1.0,  2.5,  -2.0, -2.0,
                                    -0.5, -0.5, 1.0,  1.0,  2.5,  4.0,  4.0,  5.5,  5.5,
                                    7.0,  7.0,  8.5,  4.0,  4.0,  5.5,  5.5,  7.0,  7.0,
                                    8.5,  10.0, 10.0, 11.5, 11.5, 13.0, 13.0, 14.5};
/* lin_hp: shape [1, 1, 5, 7] */
static const double lin_hp[] = {-2.0,
                                -1.4642856121063232,
                                -0.6071428060531616,
                                0.2500001788139343,
                                1.1071430444717407,
                                1.964285969734192,
                                2.5,
                                0.4000002145767212,
                                0.9357144236564636,
                                1.7928574085235596,
                                2.6500003337860107,
                                3.507143497467041,
                                4.364286422729492,
                                4.90000057220459,
                                4.000000476837158,
                                4.535714626312256,
                                5.392857551574707,
                                6.250000476837158,
                                7.107143402099609,
                                7.964285850524902,
                                8.500000953674316,
                                7.600000381469727,
                                8.135714530944824,
                                8.992857933044434,
                                9.850000381469727,
                                10.707143783569336,
                                11.564286231994629,
                                12.100000381469727,
                                10.0,
                                10.535713195800781,
                                11.392857551574707,
                                12.25,
                                13.10714340209961,
                                13.964285850524902,
                                14.5};
/* lin_ac: shape [1, 1, 2, 6] */
static const double lin_ac[] = {
    -2.0, -1.0999999046325684, -0.19999992847442627, 0.7000001072883606, 1.6000001430511475, 2.5,
    10.0, 10.899999618530273,  11.800000190734863,   12.699999809265137, 13.600000381469727, 14.5};
/* cubic_hp: shape [1, 1, 6, 3] */
static const double cubic_hp[] = {-2.4435768127441406, -0.3828122913837433, 1.6779512166976929,
                                  -0.6623266339302063, 1.3984376192092896,  3.4592018127441406,
                                  2.1970486640930176,  4.2578125,           6.318577289581299,
                                  6.181424617767334,   8.2421875,           10.302953720092773,
                                  9.040800094604492,   11.1015625,          13.16232967376709,
                                  10.822050094604492,  12.8828125,          14.94357967376709};
/* trilinear: shape [1, 1, 3, 2, 4] */
static const double trilinear[] = {0.5,
                                   0.75,
                                   1.25,
                                   1.5,
                                   3.5,
                                   3.75,
                                   4.25,
                                   4.5,
                                   3.5,
                                   3.75,
                                   4.25,
                                   4.5,
                                   6.5,
                                   6.75,
                                   7.25,
                                   7.5,
                                   6.5,
                                   6.749999523162842,
                                   7.249999523162842,
                                   7.499999523162842,
                                   9.5,
                                   9.749999046325684,
                                   10.249999046325684,
                                   10.499999046325684};
/* downsample_scales_cubic_A_n0p5_exclude_outside: shape [1, 1, 3, 3] */
static const double downsample_scales_cubic_A_n0p5_exclude_outside[] = {
    1.3681267499923706, 2.669501304626465,  4.013336658477783,  6.573625087738037, 7.875,
    9.21883487701416,   11.948966026306152, 13.250341415405273, 14.594176292419434};
/* tf_crop_and_resize: shape [1, 1, 3, 3] */
static const double tf_crop_and_resize[] = {
    7.600000381469727, 10.0, 10.0, 12.40000057220459, 10.0, 10.0, 10.0, 10.0, 10.0};
/* upsample_sizes_nearest_round_prefer_ceil_asymmetric: shape [1, 1, 8, 8] */
static const double upsample_sizes_nearest_round_prefer_ceil_asymmetric[] = {
    1.0,  2.0,  2.0,  3.0,  3.0,  4.0,  4.0,  4.0,  5.0,  6.0,  6.0,  7.0,  7.0,  8.0,  8.0,  8.0,
    5.0,  6.0,  6.0,  7.0,  7.0,  8.0,  8.0,  8.0,  9.0,  10.0, 10.0, 11.0, 11.0, 12.0, 12.0, 12.0,
    9.0,  10.0, 10.0, 11.0, 11.0, 12.0, 12.0, 12.0, 13.0, 14.0, 14.0, 15.0, 15.0, 16.0, 16.0, 16.0,
    13.0, 14.0, 14.0, 15.0, 15.0, 16.0, 16.0, 16.0, 13.0, 14.0, 14.0, 15.0, 15.0, 16.0, 16.0, 16.0};

/* ---- Pad ---- */

static void pad_case(const char *mode, const double *pads, int n_pads, const double *cval,
                     const int64_t *odims, const double *want) {
    mk_node(PQ_OP_PAD, 3, 1);
    if (mode) set_str("mode", mode);
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 2, D(3, 4), NULL),
                        T(PQ_DTYPE_I64, 1, (int64_t[]){n_pads}, pads),
                        cval ? T(PQ_DTYPE_F32, 0, NULL, cval) : NULL};
    run1(in, cval ? 3 : 2, PQ_DTYPE_F32, 2, odims, want, 0);
}

Test(ref_pad, modes) {
    pad_case(NULL, V(1, 2, 0, 1), 4, V(9.5), D(4, 7), pad_const);
    pad_case("reflect", V(2, 3, 1, 2), 4, NULL, D(6, 9), pad_reflect);
    pad_case("edge", V(0, 1, 2, 1), 4, NULL, D(5, 6), pad_edge);
    pad_case("wrap", V(1, 5, 1, 0), 4, NULL, D(5, 9), pad_wrap);
    pad_case("constant", V(0, -1, 0, 1), 4, NULL, D(3, 4), pad_crop);
}

Test(ref_pad, axes_input_and_int_dtype) {
    mk_node(PQ_OP_PAD, 4, 1);
    set_str("mode", "edge");
    pq_tensor *in[4] = {T(PQ_DTYPE_I16, 2, D(3, 4), NULL), T(PQ_DTYPE_I64, 1, D(2), V(1, 1)), NULL,
                        T(PQ_DTYPE_I64, 1, D(1), V(-1))};
    run1(in, 4, PQ_DTYPE_I16, 2, D(3, 6),
         V(0, 0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 7, 8, 8, 9, 10, 11, 11), 0);
}

Test(ref_pad, bad_inputs) {
    mk_node(PQ_OP_PAD, 2, 1); /* crop below zero */
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 1, D(3), NULL), T(PQ_DTYPE_I64, 1, D(2), V(-2, -2))};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 2, &o, 1), PQ_ERR_INVALID);
    mk_node(PQ_OP_PAD, 2, 1); /* wrong pad count */
    pq_tensor *in2[2] = {T(PQ_DTYPE_F32, 1, D(3), NULL), T(PQ_DTYPE_I64, 1, D(3), V(1, 1, 1))};
    cr_assert_eq(run(in2, 2, &o, 1), PQ_ERR_INVALID);
    mk_node(PQ_OP_PAD, 2, 1); /* reflect of an empty axis */
    set_str("mode", "reflect");
    pq_tensor *in3[2] = {T(PQ_DTYPE_F32, 1, D(0), NULL), T(PQ_DTYPE_I64, 1, D(2), V(1, 1))};
    cr_assert_eq(run(in3, 2, &o, 1), PQ_ERR_INVALID);
    mv_destroy(o);
}

/* ---- Resize ---- */

/* Resize of the [1,1,3,4] tensor arange*1.5-2 to sizes (h, w). */
static void resize_sizes(const char *mode, const char *ctm, const char *nearest, int64_t h,
                         int64_t w, const double *want, double tol) {
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_str("mode", mode);
    if (ctm) set_str("coordinate_transformation_mode", ctm);
    if (nearest) set_str("nearest_mode", nearest);
    pq_tensor *x = T(PQ_DTYPE_F32, 4, D(1, 1, 3, 4), NULL);
    for (int i = 0; i < 12; i++)
        ((float *)x->data)[i] = (float)i * 1.5f - 2.0f;
    pq_tensor *in[4] = {x, NULL, NULL, T(PQ_DTYPE_I64, 1, D(4), V(1, 1, (double)h, (double)w))};
    run1(in, 4, PQ_DTYPE_F32, 4, D(1, 1, h, w), want, tol);
}

Test(ref_resize, torch_modes) {
    resize_sizes("nearest", "asymmetric", "floor", 5, 7, up_nearest, 0);
    resize_sizes("linear", NULL, NULL, 5, 7, lin_hp, 1e-5);
    resize_sizes("linear", "pytorch_half_pixel", NULL, 5, 7, lin_hp, 1e-5);
    resize_sizes("linear", "align_corners", NULL, 2, 6, lin_ac, 1e-5);
    resize_sizes("cubic", NULL, NULL, 6, 3, cubic_hp, 1e-5);
}

Test(ref_resize, trilinear_5d) {
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_str("mode", "linear");
    pq_tensor *in[4] = {T(PQ_DTYPE_F32, 5, D(1, 1, 2, 3, 2), NULL), NULL, NULL,
                        T(PQ_DTYPE_I64, 1, D(5), V(1, 1, 3, 2, 4))};
    run1(in, 4, PQ_DTYPE_F32, 5, D(1, 1, 3, 2, 4), trilinear, 1e-5);
}

static const double onnx_x16[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

Test(ref_resize, onnx_cubic_exclude_outside_scales) {
    mk_node(PQ_OP_RESIZE, 3, 1);
    set_str("mode", "cubic");
    set_float("cubic_coeff_a", -0.5f);
    set_int("exclude_outside", 1);
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 4, D(1, 1, 4, 4), onnx_x16), NULL,
                        T(PQ_DTYPE_F32, 1, D(4), V(1, 1, 0.8, 0.8))};
    run1(in, 3, PQ_DTYPE_F32, 4, D(1, 1, 3, 3), downsample_scales_cubic_A_n0p5_exclude_outside,
         1e-5);
}

Test(ref_resize, onnx_tf_crop_and_resize) {
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_str("mode", "linear");
    set_str("coordinate_transformation_mode", "tf_crop_and_resize");
    set_float("extrapolation_value", 10.0f);
    pq_tensor *in[4] = {T(PQ_DTYPE_F32, 4, D(1, 1, 4, 4), onnx_x16),
                        T(PQ_DTYPE_F32, 1, D(8), V(0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7)), NULL,
                        T(PQ_DTYPE_I64, 1, D(4), V(1, 1, 3, 3))};
    run1(in, 4, PQ_DTYPE_F32, 4, D(1, 1, 3, 3), tf_crop_and_resize, 1e-5);
}

Test(ref_resize, onnx_nearest_round_prefer_ceil_u8) {
    /* nearest moves bytes: u8 data gives the same picks */
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_str("coordinate_transformation_mode", "asymmetric");
    set_str("nearest_mode", "round_prefer_ceil");
    pq_tensor *in[4] = {T(PQ_DTYPE_U8, 4, D(1, 1, 4, 4), onnx_x16), NULL, NULL,
                        T(PQ_DTYPE_I64, 1, D(4), V(1, 1, 8, 8))};
    run1(in, 4, PQ_DTYPE_U8, 4, D(1, 1, 8, 8), upsample_sizes_nearest_round_prefer_ceil_asymmetric,
         0);
}

Test(ref_resize, axes_and_keep_aspect_ratio) {
    /* sizes (3, 10) over axes (2, 3) with not_larger: scale min(3/4, 10/4) = 0.75 -> [1,1,3,3] */
    mk_node(PQ_OP_RESIZE, 4, 1);
    set_ints("axes", D(2, 3), 2);
    set_str("keep_aspect_ratio_policy", "not_larger");
    set_str("coordinate_transformation_mode", "asymmetric");
    set_str("nearest_mode", "floor");
    pq_tensor *in[4] = {T(PQ_DTYPE_F32, 4, D(1, 1, 4, 4), onnx_x16), NULL, NULL,
                        T(PQ_DTYPE_I64, 1, D(2), V(3, 10))};
    /* asymmetric floor with scale 0.75: source index floor(o / 0.75) = 0, 1, 2 */
    run1(in, 4, PQ_DTYPE_F32, 4, D(1, 1, 3, 3), V(1, 2, 3, 5, 6, 7, 9, 10, 11), 0);
}

Test(ref_resize, bad_inputs) {
    mk_node(PQ_OP_RESIZE, 4, 1); /* both scales and sizes */
    pq_tensor *in[4] = {T(PQ_DTYPE_F32, 2, D(2, 2), NULL), NULL, T(PQ_DTYPE_F32, 1, D(2), V(2, 2)),
                        T(PQ_DTYPE_I64, 1, D(2), V(4, 4))};
    pq_tensor *o = shell();
    cr_assert_eq(run(in, 4, &o, 1), PQ_ERR_INVALID);
    mk_node(PQ_OP_RESIZE, 3, 1); /* negative scale */
    pq_tensor *in2[3] = {T(PQ_DTYPE_F32, 2, D(2, 2), NULL), NULL,
                         T(PQ_DTYPE_F32, 1, D(2), V(-1, 2))};
    cr_assert_eq(run(in2, 3, &o, 1), PQ_ERR_INVALID);
    mk_node(PQ_OP_RESIZE, 3, 1); /* unknown mode */
    set_str("mode", "area");
    pq_tensor *in3[3] = {T(PQ_DTYPE_F32, 2, D(2, 2), NULL), NULL,
                         T(PQ_DTYPE_F32, 1, D(2), V(2, 2))};
    cr_assert_eq(run(in3, 3, &o, 1), PQ_ERR_INVALID);
    cr_assert(strstr(err.msg, "area"), "%s", err.msg);
    mv_destroy(o);
}

Test(ref_resize, align_corners_uses_unrounded_length) {
    /* regression: ONNX computes align_corners with the resized length scale * input (2.4 here),
     * not the rounded output size; expectation from the onnx test data */
    mk_node(PQ_OP_RESIZE, 3, 1);
    set_str("mode", "linear");
    set_str("coordinate_transformation_mode", "align_corners");
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 4, D(1, 1, 2, 4), onnx_x16), NULL,
                        T(PQ_DTYPE_F32, 1, D(4), V(1, 1, 0.6, 0.6))};
    run1(in, 3, PQ_DTYPE_F32, 4, D(1, 1, 1, 2), V(1, 3.142857074737549), 1e-5);
}
