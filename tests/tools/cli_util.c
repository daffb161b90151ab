/* Helpers shared by the command-line tests: shell commands with captured output, temporary
 * directories, numbers read from printed text (see cli_util.h). */
#include "tools/cli_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int pq_cli_vsh(char *out, size_t size, const char *cwd, const char *fmt, va_list ap) {
    char cmd[4096], full[4400];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    if (cwd)
        snprintf(full, sizeof full, "cd %s && {\n%s\n} 2>&1", cwd, cmd);
    else
        snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert(p, "popen %s", cmd);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
}

int pq_cli_sh(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = pq_cli_vsh(out, size, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

void pq_cli_mkdtemp(char *dir, size_t size, const char *name) {
    snprintf(dir, size, "/tmp/piqc-%s-XXXXXX", name);
    cr_assert(mkdtemp(dir), "mkdtemp %s", dir);
}

void pq_cli_rmtree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

double pq_cli_number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1.0;
}
