/* The pass manager: runs a pipeline over a graph, re-sorting and re-inferring after every pass,
 * with verification, IR printing and dumps before/after passes, per-pass timing and disabling. */
#ifndef PQ_MANAGER_H
#define PQ_MANAGER_H

#include <stdbool.h>
#include <stdio.h>

#include "pipeline.h"

/* Writes g to path in a form `piqc import` reads back (tools/ wires this to the .pir writer). */
typedef enum pq_status (*pq_dump_fn)(void *ctx, const pq_graph *g, const char *path, pq_error *err);

/* How to run a pipeline. A zeroed struct (or NULL) runs every pass quietly, verifying only in
 * builds without NDEBUG. Pass names in the lists are registered pass names (or names of passes in
 * the pipeline); "all" in print_before/print_after selects every pass. */
typedef struct pq_pass_manager_opts {
    const char *const *print_before; /* print the IR to log before these passes */
    uint32_t n_print_before;
    const char *const *print_after; /* ... and after these */
    uint32_t n_print_after;
    /* When set, the graph is written to DIR/00-input.pir before the first pass and to
     * DIR/NN-<pass>.pir after pass NN (1-based index in the pipeline; disabled passes write
     * nothing). DIR is created when missing (one level). Through dump when non-NULL, else as text
     * IR with the large constants' bytes in NN-<pass>.pir.bin (the .pir file format). */
    const char *dump_dir;
    pq_dump_fn dump;
    void *dump_ctx;
    bool time_passes; /* measure each pass's wall time into the stats (else ms stay 0); the
                       * caller prints the table with pq_pass_stats_print */
    const char *const *disabled; /* passes skipped by name */
    uint32_t n_disabled;
    bool verify_each; /* pq_graph_verify after every pass (always on without NDEBUG) */
    FILE *log;        /* IR printing and the timing table; NULL = stderr */
} pq_pass_manager_opts;

/* What happened to one pipeline entry. */
typedef struct pq_pass_stat {
    const char *name; /* pass name (static) */
    bool skipped;     /* disabled by name */
    double ms;        /* wall time of run() plus re-inference and verification (time_passes) */
    uint32_t nodes_before, nodes_after; /* top-level node counts */
} pq_pass_stat;

typedef struct pq_pass_run_stats {
    pq_pass_stat *passes; /* one per pipeline entry that was reached, in order */
    uint32_t n;
    double total_ms;
} pq_pass_run_stats;

/* Runs p over g in place. Before the first pass the graph is sorted and inferred (prefix "input
 * graph: "); after every pass it is sorted and re-inferred (subgraphs too) and verified when
 * mo->verify_each is set or NDEBUG is undefined. ctx may be NULL (a temporary one is used; notes
 * and records are then dropped); the manager sets ctx->current_pass. stats may be NULL; when
 * given it is filled (pq_pass_run_stats_free it, also after a failure). Returns:
 *   USAGE    a name in disabled/print_before/print_after is no known pass (message lists them);
 *   IO       a dump could not be written (message names the file);
 *   whatever a pass, inference or verification returns, prefixed with "pass '<name>': ";
 *   NOMEM.
 * After a failure g is in whatever state the failing pass left it. */
enum pq_status pq_pipeline_run(pq_graph *g, const pq_pipeline *p, const pq_pass_manager_opts *mo,
                               pq_pass_ctx *ctx, pq_pass_run_stats *stats, pq_error *err);

/* Frees stats->passes and zeroes *stats (a zeroed struct or NULL is fine; it can be reused). */
void pq_pass_run_stats_free(pq_pass_run_stats *stats);

/* Table: index, pass, ms, nodes before -> after, then the total. */
void pq_pass_stats_print(FILE *f, const pq_pass_run_stats *stats);

/* --list-passes: every registered pass with its summary and options (type, default,
 * range/choices). */
void pq_passes_print_list(FILE *f);

#endif
