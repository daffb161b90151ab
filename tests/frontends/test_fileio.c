/* Atomic output files: the writer never replaces something that is not a regular file (as root,
 * renaming over /dev/null or a FIFO would destroy it). Regression test for that bug. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontends/fileio.h"

Test(fileio, atomic_open_refuses_a_fifo_and_leaves_it) {
    char dir[] = "/tmp/piqc-fileio-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/pipe", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    pq_atomic_file af;
    pq_error err;
    pq_error_clear(&err);
    cr_assert_eq(pq_atomic_open(&af, path, &err), PQ_ERR_IO);
    cr_expect(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    unlink(path);
    rmdir(dir);
}

Test(fileio, atomic_write_replaces_a_regular_file) {
    char dir[] = "/tmp/piqc-fileio-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("old", f);
    fclose(f);
    pq_atomic_file af;
    pq_error err;
    cr_assert_eq(pq_atomic_open(&af, path, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_atomic_write(&af, "new!", 4, &err), PQ_OK, "%s", err.msg);
    cr_assert_eq(pq_atomic_commit(&af, &err), PQ_OK, "%s", err.msg);
    char buf[8] = {0};
    f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, 1, sizeof buf, f), 4u);
    fclose(f);
    cr_expect_str_eq(buf, "new!");
    unlink(path);
    rmdir(dir);
}
