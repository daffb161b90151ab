/* Subcommand table entries and the helpers the subcommands share (error reporting, loading a
 * model of any supported kind). */
#ifndef PQ_CMD_H
#define PQ_CMD_H

typedef struct pq_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
} pq_command;

int pq_cmd_import(int argc, char **argv);
int pq_cmd_run(int argc, char **argv);
int pq_cmd_inspect(int argc, char **argv);
int pq_cmd_quantize(int argc, char **argv);
int pq_cmd_verify(int argc, char **argv);
int pq_cmd_compile(int argc, char **argv);
int pq_cmd_sensitivity(int argc, char **argv);
int pq_cmd_export(int argc, char **argv);
int pq_cmd_eval(int argc, char **argv);
int pq_cmd_train(int argc, char **argv);

#endif
