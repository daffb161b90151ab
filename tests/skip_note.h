/* A visible note on standard error for a case a test skips and goes on without (an ISA this CPU
 * lacks, a race that did not happen), which does not fail the run: Criterion 2.4 exits 1 after
 * any cr_log_warn, even when every assertion passed. */
#ifndef PQ_TESTS_SKIP_NOTE_H
#define PQ_TESTS_SKIP_NOTE_H

#include <stdio.h>

/* printf-style; one line "[note] ..." on stderr (kept in ctest's log). */
#define PQ_TEST_NOTE(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "[note] ");                                                                \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#endif
