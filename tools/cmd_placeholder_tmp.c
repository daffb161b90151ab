/* Temporary: subcommands under construction (removed as each cmd_*.c lands). */
#include <stdio.h>
#include "cmd.h"
int pq_cmd_import(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 4; }
int pq_cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 4; }
int pq_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 4; }
