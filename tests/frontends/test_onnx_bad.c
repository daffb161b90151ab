/* Hostile-input corpus for the ONNX importer: every file in tests/data/bad_onnx/ (written by
 * scripts/make_bad_onnx.py) must be refused with the listed exit code and message substring, and
 * every prefix of a valid model must be refused or accepted cleanly (never crash). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/onnx.h"
#include "ir/ir.h"

#define BAD_DIR PQ_SOURCE_DIR "/tests/data/bad_onnx"

Test(onnx_bad, corpus_matches_expected) {
    FILE *f = fopen(BAD_DIR "/expected.txt", "r");
    cr_assert_not_null(f, "missing " BAD_DIR "/expected.txt (run scripts/make_bad_onnx.py)");
    char line[1024];
    int checked = 0;
    char listed[128][256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        char file[256];
        int code, off = 0;
        cr_assert_eq(sscanf(line, "%255s %d %n", file, &code, &off), 2, "bad line: %s", line);
        const char *want = line + off;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", BAD_DIR, file);
        pq_graph *g = (pq_graph *)&g; /* must be reset to NULL */
        pq_error err;
        enum pq_status st = pq_onnx_import_file(path, &g, &err);
        cr_expect_eq(pq_status_exit_code(st), code, "%s: exit code %d, expected %d (%s)", file,
                     pq_status_exit_code(st), code, err.msg);
        cr_expect_null(g, "%s: graph returned on failure", file);
        cr_expect(strncmp(err.msg, "onnx: ", 6) == 0, "%s: message lacks prefix: %s", file,
                  err.msg);
        cr_expect(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", file, err.msg,
                  want);
        if (checked < 128) snprintf(listed[checked], sizeof listed[0], "%s", file);
        checked++;
    }
    fclose(f);
    cr_assert_geq(checked, 30, "only %d cases", checked);
    /* every .onnx file in the folder has an expectation */
    DIR *d = opendir(BAD_DIR);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".onnx") != 0) continue;
        bool found = false;
        for (int i = 0; i < checked && i < 128; i++)
            found |= strcmp(listed[i], e->d_name) == 0;
        cr_expect(found, "%s has no line in expected.txt", e->d_name);
    }
    closedir(d);
}

/* Every truncation and many single-byte corruptions of a real model import or fail cleanly. */
Test(onnx_bad, truncations_and_bit_flips) {
    const char *path = "/usr/share/libonnx-testdata/data/node/test_if/model.onnx";
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_gt(len, 0);
    int ok = 0, refused = 0;
    for (size_t n = 0; n < len; n++) {
        pq_graph *g;
        pq_error err;
        enum pq_status st = pq_onnx_import_buffer(buf, n, NULL, &g, &err);
        if (st == PQ_OK) {
            ok++;
            pq_graph_destroy(g);
        } else {
            refused++;
            cr_assert(st == PQ_ERR_INVALID || st == PQ_ERR_UNSUPPORTED, "len %zu: %d %s", n, st,
                      err.msg);
            cr_assert(strncmp(err.msg, "onnx: ", 6) == 0);
        }
    }
    cr_assert_gt(refused, 0);
    uint8_t *copy = malloc(len);
    srand(1234);
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(copy, buf, len);
        for (int k = 0; k < 1 + trial % 4; k++)
            copy[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
        pq_graph *g;
        pq_error err;
        enum pq_status st = pq_onnx_import_buffer(copy, len, NULL, &g, &err);
        if (st == PQ_OK)
            pq_graph_destroy(g);
        else
            cr_assert(st != PQ_ERR_INTERNAL, "trial %d: internal error %s", trial, err.msg);
    }
    free(copy);
    (void)ok;
}
