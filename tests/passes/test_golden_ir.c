/* Golden text-IR tests: for every registered pass, a small graph (tests/passes/golden/<case>.in.pir)
 * goes through the real pipeline machinery (pq_pipeline_parse of a one-pass YAML, pq_pipeline_run
 * with verification after the pass), is printed with pq_text_print and compared byte for byte with
 * tests/passes/golden/<case>.out.pir. A mismatch names the first differing line and shows both.
 *
 * Regenerate the expected files after an intended change with
 *     PIQC_UPDATE_GOLDEN=1 build/tests/test_passes --filter 'golden_ir/?*'
 * then review the diff (git diff tests/passes/golden) before committing. Goldens must not depend
 * on time or machine: every seeded pass gets its seed from the pipeline (defaults included). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/text.h"
#include "passes/manager.h"
#include "passes/pipeline.h"

#define PQ_GOLDEN_DIR PQ_SOURCE_DIR "/tests/passes/golden"

/* Reads a whole file into a NUL-terminated malloc'ed buffer; NULL when it cannot be read. */
static char *pq_golden_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Copies line `line` (1-based) of text into out (without the newline; "<end of file>" past it). */
static void pq_golden_line(const char *text, int line, char *out, size_t cap) {
    const char *p = text;
    for (int i = 1; i < line && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) {
        snprintf(out, cap, "<end of file>");
        return;
    }
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* 1-based number of the first line where a and b differ, 0 when they are equal. */
static int pq_golden_first_diff(const char *a, const char *b) {
    int line = 1;
    size_t i = 0;
    for (; a[i] && a[i] == b[i]; i++)
        if (a[i] == '\n') line++;
    return a[i] == b[i] ? 0 : line;
}

/* Runs `pipeline` (YAML) over <name>.in.pir and checks the printed result against <name>.out.pir
 * (or rewrites it when PIQC_UPDATE_GOLDEN=1). */
static void pq_golden_check(const char *name, const char *pipeline) {
    char in_path[1024], out_path[1024];
    snprintf(in_path, sizeof in_path, "%s/%s.in.pir", PQ_GOLDEN_DIR, name);
    snprintf(out_path, sizeof out_path, "%s/%s.out.pir", PQ_GOLDEN_DIR, name);
    pq_error err;
    pq_error_clear(&err);

    size_t len = 0;
    char *src = pq_golden_read(in_path, &len);
    cr_assert(src, "cannot read %s", in_path);
    pq_graph *g = NULL;
    cr_assert_eq(pq_text_parse(src, len, NULL, 0, &g, &err), PQ_OK, "%s: %s", in_path, err.msg);
    free(src);

    pq_pipeline *p = NULL;
    cr_assert_eq(pq_pipeline_parse(pipeline, strlen(pipeline), name, &p, &err), PQ_OK, "%s",
                 err.msg);
    pq_pass_ctx ctx;
    pq_pass_ctx_init(&ctx);
    ctx.verbose = 0;
    pq_pass_manager_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.verify_each = true;
    enum pq_status st = pq_pipeline_run(g, p, &mo, &ctx, NULL, &err);
    cr_assert_eq(st, PQ_OK, "%s: %s", name, err.msg);
    pq_pass_ctx_free(&ctx);
    pq_pipeline_destroy(p);

    char *got = NULL;
    cr_assert_eq(pq_text_print_string(g, NULL, &got, &err), PQ_OK, "%s", err.msg);
    pq_graph_destroy(g);

    /* the printed result must itself be valid text IR (it reparses when nothing is summarised) */
    if (!strstr(got, "sha256")) {
        pq_graph *again = NULL;
        cr_assert_eq(pq_text_parse(got, strlen(got), NULL, 0, &again, &err), PQ_OK,
                     "%s: output does not reparse: %s", name, err.msg);
        pq_graph_destroy(again);
    }

    const char *update = getenv("PIQC_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(out_path, "wb");
        cr_assert(f, "cannot write %s", out_path);
        size_t n = strlen(got);
        cr_assert_eq(fwrite(got, 1, n, f), n, "short write to %s", out_path);
        cr_assert_eq(fclose(f), 0, "cannot close %s", out_path);
        cr_log_info("golden %s rewritten", out_path);
        pq_free(got);
        return;
    }
    char *want = pq_golden_read(out_path, NULL);
    if (!want) {
        pq_free(got);
        cr_assert_fail("%s is missing: run with PIQC_UPDATE_GOLDEN=1 to create it", out_path);
    }
    int line = pq_golden_first_diff(want, got);
    if (line) {
        char a[2048], b[2048];
        pq_golden_line(want, line, a, sizeof a);
        pq_golden_line(got, line, b, sizeof b);
        free(want);
        pq_free(got);
        cr_assert_fail("%s: printed IR differs from %s at line %d\n  expected: %s\n  got:      "
                       "%s\n(PIQC_UPDATE_GOLDEN=1 rewrites the golden file after an intended "
                       "change)",
                       name, out_path, line, a, b);
    }
    free(want);
    pq_free(got);
}

/* ---- the helpers themselves ---- */

Test(golden_ir, first_diff_and_line) {
    cr_assert_eq(pq_golden_first_diff("a\nb\n", "a\nb\n"), 0);
    cr_assert_eq(pq_golden_first_diff("a\nb\n", "a\nc\n"), 2);
    cr_assert_eq(pq_golden_first_diff("a\nb\n", "a\nb\nc\n"), 3);
    cr_assert_eq(pq_golden_first_diff("x", "y"), 1);
    char buf[64];
    pq_golden_line("one\ntwo\nthree", 2, buf, sizeof buf);
    cr_assert_str_eq(buf, "two");
    pq_golden_line("one\n", 2, buf, sizeof buf);
    cr_assert_str_eq(buf, "<end of file>");
}

/* ---- one case per pass (and a few second patterns) ---- */

Test(golden_ir, fold_constants) {
    pq_golden_check("fold_constants", "passes: [fold-constants]\n");
}

Test(golden_ir, canonicalize) {
    pq_golden_check("canonicalize", "passes: [canonicalize]\n");
}

Test(golden_ir, canonicalize_layernorm) {
    pq_golden_check("canonicalize_layernorm", "passes: [canonicalize]\n");
}

Test(golden_ir, dce) {
    pq_golden_check("dce", "passes: [dce]\n");
}

Test(golden_ir, cse) {
    pq_golden_check("cse", "passes: [cse]\n");
}

Test(golden_ir, fold_batchnorm) {
    pq_golden_check("fold_batchnorm", "passes: [fold-batchnorm]\n");
}

Test(golden_ir, fold_batchnorm_matmul) {
    pq_golden_check("fold_batchnorm_matmul", "passes: [fold-batchnorm]\n");
}

Test(golden_ir, fuse_activations) {
    pq_golden_check("fuse_activations", "passes: [fuse-activations]\n");
}

Test(golden_ir, hadamard) {
    pq_golden_check("hadamard", "passes:\n  - hadamard: {min-elements: 0, seed: 42}\n");
}

Test(golden_ir, hadamard_fold) {
    /* only the second layer is selected; its input comes from a MatMul used only there, so the
     * rotation is folded into the first layer's weight instead of a Hadamard node */
    pq_golden_check("hadamard_fold",
                    "passes:\n  - hadamard: {min-elements: 0, include: '^down$', seed: 7}\n");
}

Test(golden_ir, fake_quant) {
    pq_golden_check("fake_quant",
                    "passes:\n  - fake-quant: {min-elements: 0, format: piq3, group: 8}\n");
}

Test(golden_ir, fake_quant_int8) {
    pq_golden_check("fake_quant_int8",
                    "passes:\n  - fake-quant: {min-elements: 0, format: int8, ste: lsq}\n");
}

Test(golden_ir, lora) {
    pq_golden_check("lora", "passes:\n  - lora: {min-elements: 0, rank: 2, alpha: 4, seed: 1}\n");
}

Test(golden_ir, lower_quant) {
    pq_golden_check("lower_quant", "passes: [lower-quant]\n");
}
