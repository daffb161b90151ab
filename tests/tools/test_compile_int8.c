/* End to end `piqc compile` of int8 and f16 weight pipelines (fake-quant format int8/f16 +
 * lower-quant) on the digits CNN: verify, run through the packed int8/f16 kernels (accuracy
 * printed and >= 95%), I8/F16/F32 tensors in the artifact, inspect's resident bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/gguf.h"
#include "ir/ir.h"
#include "tools/cli_util.h"

#define PIQC PQ_BINARY_DIR "/tools/piqc"
#define DIGITS PQ_SOURCE_DIR "/examples/digits"
#define DIGITS_RUN "--input input=" DIGITS "/test_x.npy --labels " DIGITS "/labels.npy"

static char tmpdir[256];

static void make_tmp(void) {
    pq_cli_mkdtemp(tmpdir, sizeof tmpdir, "int8");
}

static void rm_tmp(void) {
    pq_cli_rmtree(tmpdir);
}

TestSuite(compile_wide, .init = make_tmp, .fini = rm_tmp, .timeout = 300);

/* Compiles digits with fake-quant {format: fmt} + lower-quant, then verify / run / inspect and
 * the artifact's tensor types. Returns the accuracy (percent). */
static double digits_wide(const char *fmt) {
    char out[65536], yaml[512], gguf[512];
    snprintf(yaml, sizeof yaml, "%s/%s.yaml", tmpdir, fmt);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmpdir, fmt);
    FILE *f = fopen(yaml, "w");
    cr_assert_not_null(f);
    fprintf(f, "passes:\n  - fake-quant: {format: %s, min-elements: 0}\n  - lower-quant\n", fmt);
    fclose(f);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s compile %s/model.onnx --pipeline %s -o %s", PIQC,
                           DIGITS, yaml, gguf),
                 0, "%s", out);
    cr_assert(strstr(out, "lowered 3 of 3 FakeQuants (1 PackedMatMul, 2 PackedConv)"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s verify %s", PIQC, gguf), 0, "%s", out);
    cr_assert(strstr(out, "OK"), "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s run %s " DIGITS_RUN, PIQC, gguf), 0, "%s", out);
    double acc = pq_cli_number_after(out, "accuracy: ");
    fprintf(stderr, "digits %s (lowered, packed %s kernels): accuracy %.2f%%\n", fmt, fmt, acc);
    cr_assert_geq(acc, 95.0, "%s: accuracy %.2f%%\n%s", fmt, acc, out);
    /* the scalar reference kernels give the same accuracy */
    cr_assert_eq(pq_cli_sh(out, sizeof out, "PIQC_ISA=scalar %s run %s " DIGITS_RUN, PIQC, gguf), 0,
                 "%s", out);
    cr_assert_eq(pq_cli_number_after(out, "accuracy: "), acc, "%s", out);
    cr_assert_eq(pq_cli_sh(out, sizeof out, "%s inspect %s", PIQC, gguf), 0, "%s", out);
    cr_assert(strstr(out, "PackedMatMul") && strstr(out, "PackedConv"), "%s", out);
    cr_assert(!strstr(out, "FakeQuant"), "%s", out);
    double resident = pq_cli_number_after(out, "resident weights: ");
    double f32 = pq_cli_number_after(out, "f32 equivalent ");
    cr_assert(resident > 0 && f32 > 0 && resident < (strcmp(fmt, "int8") ? 0.6 : 0.35) * f32,
              "resident %.0f vs f32 %.0f\n%s", resident, f32, out);
    /* artifact tensors: the weight as I8 (with F32 scales) or F16, no f32 copy */
    pq_gguf *g = NULL;
    pq_error err;
    cr_assert_eq(pq_gguf_read(gguf, &g, 0, &err), PQ_OK, "%s", err.msg);
    bool int8 = !strcmp(fmt, "int8");
    char name[128];
    snprintf(name, sizeof name, "fc.weight.%s", fmt);
    const pq_gguf_tensor *t = pq_gguf_find_tensor(g, name);
    cr_assert_not_null(t, "no tensor %s", name);
    cr_assert_eq(t->type, int8 ? 24u : 1u, "%s type %u", name, t->type);
    cr_assert_eq(t->size, (size_t)(10 * 256 * (int8 ? 1 : 2)));
    if (int8) {
        t = pq_gguf_find_tensor(g, "fc.weight.scales");
        cr_assert(t && t->type == 0u && t->size == 40, "fc.weight.scales");
    }
    cr_assert_null(pq_gguf_find_tensor(g, "fc.weight"), "f32 weight left in the artifact");
    cr_assert_null(pq_gguf_find_tensor(g, "features.0.weight"), "f32 weight left");
    pq_gguf_destroy(g);
    return acc;
}

Test(compile_wide, digits_int8_round_trip) {
    digits_wide("int8");
}

Test(compile_wide, digits_f16_round_trip) {
    digits_wide("f16");
}
