/* Gradient rules of the shape and data-movement ops (passes/grad_movement.c) against central
 * finite differences on f64 graphs (the kernels move or sum exact doubles: step 1e-5, 1e-6
 * relative): Concat, Split (split sizes as input and equal parts, unused outputs), Slice (steps
 * 1, 2, 3, -1, -2, -3, negative and clamped starts/ends, axes subsets), Gather (embedding tables
 * with repeated and negative indices, other axes, scalar indices), GatherElements, GatherND, the
 * scatters (none/add), Expand, Tile, Pad (constant with its value, negative pads, edge, reflect,
 * wrap, axes), Resize (nearest, linear, cubic; the coordinate modes; scales, sizes, axes, roi),
 * DepthToSpace (DCR, CRD), SpaceToDepth, Trilu, CumSum, ReverseSequence, Compress, TopK,
 * MaxUnpool. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "grad_check.h"
#include "pass_test_util.h"

#define X_ONLY "{wrt: '^X$'}"

Test(grad_movement, concat) {
    pq_gc_body("  const %A: f64[2, 2, 3] = @s\n  const %B: f64[2, 1, 3] = @s\n"
               "  const %C: f64[2, 3, 3] = @s\n  %y = Concat(%A, %B, %C) {axis = 1}\n",
               PQ_GC_F64, 4);
    pq_gc_body("  const %A: f64[2, 2] = @s\n  const %B: f64[2, 3] = @s\n"
               "  %y = Concat(%A, %B, %A) {axis = -1}\n",
               PQ_GC_F64, 3);
}

Test(grad_movement, split) {
    /* split sizes as an input; output b unused (its gradient is zeros) */
    pq_gc_body("  const %X: f64[2, 6] = @s\n  const %sp: i64[3] = [1, 3, 2]\n"
               "  %a, %b, %c = Split(%X, %sp) {axis = 1}\n  %y = Concat(%c, %a) {axis = 1}\n",
               PQ_GC_F64, 2);
    /* equal parts (the last one smaller) */
    pq_gc_body("  const %X: f64[5, 3] = @s\n  %a, %b, %c = Split(%X) {axis = 0}\n"
               "  %t = Concat(%c, %b) {axis = 0}\n  %y = Mul(%t, %t)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[4, 3] = @s\n  %a, %b = Split(%X) {axis = -2, num_outputs = 2}\n"
               "  %y = Sub(%a, %b)\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, slice) {
    /* n, starts, ends, axes (NULL: omitted), steps (NULL: omitted) on x [4, 5, 6] */
    struct {
        int n;
        const char *st, *en, *ax, *sp;
    } cases[] = {
        {2, "[1, 0]", "[3, 4]", "[0, 2]", NULL},
        {1, "[0]", "[6]", "[2]", "[2]"},
        {1, "[-1]", "[-1000]", "[1]", "[-1]"},
        {1, "[5]", "[0]", "[2]", "[-2]"},
        {2, "[1, 4]", "[4, 0]", "[0, 1]", "[2, -3]"},
        {2, "[1, 1]", "[-1, 4]", NULL, NULL},
        {2, "[-3, 2]", "[100, 100]", "[-1, 0]", "[1, 3]"},
        {2, "[4, -100]", "[-100, 100]", "[2, 1]", "[-3, 2]"},
        {3, "[0, 0, 1]", "[4, 5, 6]", "[0, 1, 2]", "[3, 2, 2]"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char body[1024], axl[96] = "", spl[96] = "", ins[32] = "";
        int n = cases[k].n;
        if (cases[k].ax) {
            snprintf(axl, sizeof axl, "  const %%ax: i64[%d] = %s\n", n, cases[k].ax);
            snprintf(ins, sizeof ins, ", %%ax");
        }
        if (cases[k].sp) {
            snprintf(spl, sizeof spl, "  const %%sp: i64[%d] = %s\n", n, cases[k].sp);
            snprintf(ins, sizeof ins, ", %%ax, %%sp");
        }
        snprintf(body, sizeof body,
                 "  const %%X: f64[4, 5, 6] = @s\n  const %%st: i64[%d] = %s\n"
                 "  const %%en: i64[%d] = %s\n%s%s  %%y = Slice(%%X, %%st, %%en%s)\n",
                 n, cases[k].st, n, cases[k].en, axl, spl, ins);
        pq_gc_body(body, PQ_GC_F64, 2);
    }
}

Test(grad_movement, gather) {
    /* embedding lookup: repeated and negative token ids accumulate */
    pq_gc_body("  const %E: f64[6, 4] = @s\n  const %ids: i64[2, 3] = [0, 5, 2, 2, -1, 0]\n"
               "  %y = Gather(%E, %ids) {axis = 0}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 5, 2] = @s\n  const %i: i64[4] = [4, 0, 4, -2]\n"
               "  %y = Gather(%X, %i) {axis = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 5, 2] = @s\n  const %i: i64[] = [2]\n"
               "  %y = Gather(%X, %i) {axis = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 5, 2] = @s\n  const %i: i64[] = [-3]\n"
               "  %y = Gather(%X, %i) {axis = 0}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 2, 4] = @s\n  const %i: i64[2, 2] = [3, 1, 1, 0]\n"
               "  %y = Gather(%X, %i) {axis = -1}\n",
               PQ_GC_F64, 2);
    /* i32 indices */
    pq_gc_body("  const %X: f64[4, 3] = @s\n  const %i: i32[3] = [1, 1, 3]\n"
               "  %y = Gather(%X, %i)\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, gather_elements_nd) {
    pq_gc_body("  const %X: f64[3, 4] = @s\n  const %i: i64[3, 2] = [0, 3, 3, 3, -1, 1]\n"
               "  %y = GatherElements(%X, %i) {axis = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 4] = @s\n  const %i: i64[2, 4] = [0, 2, 2, 1, 0, 0, 1, 2]\n"
               "  %y = GatherElements(%X, %i) {axis = 0}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 4, 2] = @s\n  const %i: i64[3, 2] = [0, 1, 2, 3, 0, 1]\n"
               "  %y = GatherND(%X, %i)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 4, 2] = @s\n  const %i: i64[2, 1] = [2, 2]\n"
               "  %y = GatherND(%X, %i)\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, scatter) {
    pq_gc_body("  const %D: f64[3, 4] = @s\n  const %i: i64[2, 2] = [1, 3, 0, 2]\n"
               "  const %U: f64[2, 2] = @s\n  %y = ScatterElements(%D, %i, %U) {axis = 1}\n",
               PQ_GC_F64, 3);
    pq_gc_body("  const %D: f64[3, 4] = @s\n  const %i: i64[2, 2] = [1, 1, 0, 0]\n"
               "  const %U: f64[2, 2] = @s\n"
               "  %y = ScatterElements(%D, %i, %U) {axis = 1, reduction = \"add\"}\n",
               PQ_GC_F64, 3);
    pq_gc_body("  const %D: f64[4, 3] = @s\n  const %i: i64[2, 1] = [1, 3]\n"
               "  const %U: f64[2, 3] = @s\n  %y = ScatterND(%D, %i, %U)\n",
               PQ_GC_F64, 3);
    pq_gc_body("  const %D: f64[4, 3] = @s\n  const %i: i64[3, 1] = [1, 3, 1]\n"
               "  const %U: f64[3, 3] = @s\n  %y = ScatterND(%D, %i, %U) {reduction = \"add\"}\n",
               PQ_GC_F64, 3);
}

Test(grad_movement, expand_tile) {
    pq_gc_body("  const %X: f64[3, 1] = @s\n  const %s: i64[3] = [2, 3, 4]\n"
               "  %y = Expand(%X, %s)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3] = @s\n  const %r: i64[2] = [2, 1]\n  %y = Tile(%X, %r)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 1, 3] = @s\n  const %r: i64[3] = [1, 4, 2]\n"
               "  %y = Tile(%X, %r)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3] = @s\n  const %r: i64[2] = [3, 2]\n  %y = Tile(%X, %r)\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, pad) {
    /* constant with its value (a one-element constant gets a gradient too) */
    pq_gc_body("  const %X: f64[2, 3] = @s\n  const %p: i64[4] = [1, 0, 2, 1]\n"
               "  const %v: f64[1] = [0.5]\n  %y = Pad(%X, %p, %v)\n",
               PQ_GC_F64, 3);
    /* negative pads crop */
    pq_gc_body("  const %X: f64[3, 4] = @s\n  const %p: i64[4] = [-1, 1, 0, -2]\n"
               "  %y = Pad(%X, %p)\n",
               PQ_GC_F64, 2);
    const char *modes[] = {"edge", "reflect", "wrap"};
    for (int m = 0; m < 3; m++) {
        char body[512];
        snprintf(body, sizeof body,
                 "  const %%X: f64[3, 4] = @s\n  const %%p: i64[4] = [2, 1, 1, 3]\n"
                 "  %%y = Pad(%%X, %%p) {mode = \"%s\"}\n",
                 modes[m]);
        pq_gc_body(body, PQ_GC_F64, 2);
        snprintf(body, sizeof body,
                 "  const %%X: f64[2, 3, 4] = @s\n  const %%p: i64[2] = [1, 2]\n"
                 "  const %%a: i64[1] = [-1]\n  %%y = Pad(%%X, %%p, _, %%a) {mode = \"%s\"}\n",
                 modes[m]);
        pq_gc_body(body, PQ_GC_F64, 2);
    }
}

static void pq_gm_resize(const char *attrs, const char *inputs, const char *consts) {
    char body[1024];
    snprintf(body, sizeof body, "  const %%X: f64[1, 2, 3, 4] = @s\n%s  %%y = Resize(%%X%s) %s\n",
             consts, inputs, attrs);
    pq_gc_body_opts(body, X_ONLY, PQ_GC_F64, 1);
}

Test(grad_movement, resize) {
    const char *up = "  const %sc: f32[4] = [1.0, 1.0, 2.0, 1.5]\n";
    const char *down = "  const %sc: f32[4] = [1.0, 1.0, 0.6, 0.5]\n";
    const char *sizes = "  const %sz: i64[4] = [1, 2, 5, 7]\n";
    const char *modes[] = {"nearest", "linear", "cubic"};
    const char *ctms[] = {"half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",
                          "align_corners", "asymmetric",           "tf_half_pixel_for_nn"};
    for (int m = 0; m < 3; m++)
        for (int t = 0; t < 6; t++) {
            if (m != 0 && t == 5) continue; /* tf_half_pixel_for_nn is for nearest */
            char attrs[256];
            snprintf(attrs, sizeof attrs,
                     "{mode = \"%s\", coordinate_transformation_mode = \"%s\"}", modes[m], ctms[t]);
            pq_gm_resize(attrs, ", _, %sc", up);
            pq_gm_resize(attrs, ", _, %sc", down);
            pq_gm_resize(attrs, ", _, _, %sz", sizes);
        }
    const char *nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    for (int k = 0; k < 4; k++) {
        char attrs[256];
        snprintf(attrs, sizeof attrs,
                 "{mode = \"nearest\", coordinate_transformation_mode = \"asymmetric\", "
                 "nearest_mode = \"%s\"}",
                 nms[k]);
        pq_gm_resize(attrs, ", _, %sc", up);
    }
    pq_gm_resize("{mode = \"cubic\", exclude_outside = 1, cubic_coeff_a = -0.5}", ", _, %sc", up);
    /* axes, keep_aspect_ratio_policy, tf_crop_and_resize with a roi and extrapolation */
    pq_gm_resize("{mode = \"linear\", axes = [3, 2]}", ", _, %sc",
                 "  const %sc: f32[2] = [1.5, 2.0]\n");
    pq_gm_resize("{mode = \"linear\", keep_aspect_ratio_policy = \"not_larger\", axes = [2, 3]}",
                 ", _, _, %sz", "  const %sz: i64[2] = [5, 7]\n");
    pq_gm_resize("{mode = \"linear\", coordinate_transformation_mode = \"tf_crop_and_resize\", "
                 "extrapolation_value = 0.5}",
                 ", %roi, _, %sz",
                 "  const %roi: f32[8] = [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3]\n"
                 "  const %sz: i64[4] = [1, 2, 4, 5]\n");
}

Test(grad_movement, depth_space) {
    pq_gc_body("  const %X: f64[1, 8, 2, 3] = @s\n  %y = DepthToSpace(%X) {blocksize = 2}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 8, 2, 3] = @s\n"
               "  %y = DepthToSpace(%X) {blocksize = 2, mode = \"CRD\"}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 2, 4, 6] = @s\n  %y = SpaceToDepth(%X) {blocksize = 2}\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, trilu_cumsum_reverse_sequence) {
    pq_gc_body("  const %X: f64[3, 4] = @s\n  const %k: i64[] = [1]\n  %y = Trilu(%X, %k)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3, 4] = @s\n  %y = Trilu(%X) {upper = 0}\n", PQ_GC_F64, 2);
    for (int ex = 0; ex < 2; ex++)
        for (int rev = 0; rev < 2; rev++) {
            char body[512];
            snprintf(body, sizeof body,
                     "  const %%X: f64[3, 4] = @s\n  const %%a: i64[] = [1]\n"
                     "  %%y = CumSum(%%X, %%a) {exclusive = %d, reverse = %d}\n",
                     ex, rev);
            pq_gc_body(body, PQ_GC_F64, 2);
        }
    pq_gc_body("  const %X: f64[4, 3, 2] = @s\n  const %l: i64[3] = [4, 2, 1]\n"
               "  %y = ReverseSequence(%X, %l) {batch_axis = 1, time_axis = 0}\n",
               PQ_GC_F64, 2);
}

Test(grad_movement, compress_topk_maxunpool) {
    pq_gc_body("  const %X: f64[2, 4] = @s\n  const %c: bool[3] = [true, false, true]\n"
               "  %y = Compress(%X, %c) {axis = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[2, 3] = @s\n  const %c: bool[6] = [false, true, true, false, "
               "false, true]\n  %y = Compress(%X, %c)\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 5] = @d\n  const %k: i64[1] = [2]\n"
               "  %y, %i = TopK(%X, %k) {axis = 1}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[3, 5] = @d\n  const %k: i64[1] = [3]\n"
               "  %y, %i = TopK(%X, %k) {axis = 0, largest = 0}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[1, 1, 2, 2] = @s\n  const %I: i64[1, 1, 2, 2] = [1, 7, 8, 14]\n"
               "  %y = MaxUnpool(%X, %I) {kernel_shape = [2, 2], strides = [2, 2]}\n",
               PQ_GC_F64, 2);
    pq_gc_body("  const %X: f64[1, 1, 2, 2] = @s\n  const %I: i64[1, 1, 2, 2] = [0, 6, 9, 15]\n"
               "  const %os: i64[4] = [1, 1, 5, 5]\n"
               "  %y = MaxUnpool(%X, %I, %os) {kernel_shape = [2, 2], strides = [2, 2]}\n",
               PQ_GC_F64, 2);
}
