/* The pass manager: runs pipeline entries in order, refreshes order and types after each pass,
 * verifies, prints/dumps the IR around chosen passes, times passes, skips disabled ones. */
#include "manager.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline_internal.h"

#ifdef NDEBUG
#define PQ_VERIFY_DEFAULT false
#else
#define PQ_VERIFY_DEFAULT true
#endif

static double pq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool pq_name_in(const char *name, const char *const *list, uint32_t n, bool allow_all) {
    for (uint32_t i = 0; i < n; i++)
        if (list[i] && (strcmp(list[i], name) == 0 || (allow_all && !strcmp(list[i], "all"))))
            return true;
    return false;
}

/* USAGE when a name of list is neither a registered pass, a pass of p, nor ("all" allowed). */
static enum pq_status pq_check_names(const pq_pipeline *p, const char *what,
                                     const char *const *list, uint32_t n, bool allow_all,
                                     pq_error *err) {
    for (uint32_t i = 0; i < n; i++) {
        const char *name = list[i] ? list[i] : "";
        if (allow_all && !strcmp(name, "all")) continue;
        bool known = pq_pass_find(name) != NULL;
        for (uint32_t k = 0; k < p->n && !known; k++)
            known = !strcmp(p->entries[k].pass->name, name);
        if (known) continue;
        uint32_t na;
        const pq_pass *const *all = pq_passes_all(&na);
        char names[2048];
        pq_pass_names_str(all, na, names, sizeof(names));
        return pq_error_set(err, PQ_ERR_USAGE, "%s: unknown pass '%s'; accepted: %s%s", what, name,
                            allow_all ? "all, " : "", names);
    }
    return PQ_OK;
}

static enum pq_status pq_write_bytes(const char *path, const void *data, size_t n, pq_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return pq_error_set(err, PQ_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    int e = errno;
    if (fclose(f) != 0 || w != n) {
        return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", path,
                            strerror(w != n ? e : errno));
    }
    return PQ_OK;
}

/* Text IR with the sidecar, like frontends/pir.c writes it (pq_pir_load reads it back). */
static enum pq_status pq_dump_text(const pq_graph *g, const char *path, pq_error *err) {
    pq_text_bin bin = {0};
    char *text = NULL;
    size_t l = strlen(path);
    char *bpath = pq_malloc(l + 5);
    enum pq_status st;
    if (!bpath) return pq_error_nomem(err, path);
    memcpy(bpath, path, l);
    memcpy(bpath + l, ".bin", 5);
    PQ_TRY_GOTO(st, pq_text_print_string(g, &bin, &text, err), done);
    if (bin.size) PQ_TRY_GOTO(st, pq_write_bytes(bpath, bin.data, bin.size, err), done);
    PQ_TRY_GOTO(st, pq_write_bytes(path, text, strlen(text), err), done);
    if (!bin.size && unlink(bpath) != 0 && errno != ENOENT)
        st = pq_error_set(err, PQ_ERR_IO, "cannot remove the stale sidecar '%s': %s", bpath,
                          strerror(errno));
done:
    pq_free(text);
    pq_text_bin_free(&bin);
    pq_free(bpath);
    return st;
}

static enum pq_status pq_dump(const pq_pass_manager_opts *mo, const pq_graph *g, uint32_t index,
                              const char *name, pq_error *err) {
    size_t cap = strlen(mo->dump_dir) + strlen(name) + 32;
    char *path = pq_malloc(cap);
    if (!path) return pq_error_nomem(err, "dump path");
    snprintf(path, cap, "%s/%02u-%s.pir", mo->dump_dir, index, name);
    enum pq_status st =
        mo->dump ? mo->dump(mo->dump_ctx, g, path, err) : pq_dump_text(g, path, err);
    if (st != PQ_OK) pq_error_prefix(err, "dump '%s': ", path);
    pq_free(path);
    return st;
}

static enum pq_status pq_print_ir(FILE *log, const pq_graph *g, const char *when, const char *name,
                                  uint32_t index, pq_error *err) {
    fprintf(log, "// ---- IR %s %s (%u) ----\n", when, name, index);
    PQ_TRY(pq_text_print(g, log, NULL, err));
    fflush(log);
    return PQ_OK;
}

void pq_pass_run_stats_free(pq_pass_run_stats *stats) {
    if (!stats) return;
    pq_free(stats->passes);
    memset(stats, 0, sizeof(*stats));
}

enum pq_status pq_pipeline_run(pq_graph *g, const pq_pipeline *p, const pq_pass_manager_opts *mo,
                               pq_pass_ctx *ctx, pq_pass_run_stats *stats, pq_error *err) {
    static const pq_pass_manager_opts no_opts = {0};
    if (!mo) mo = &no_opts;
    FILE *log = mo->log ? mo->log : stderr;
    bool verify = mo->verify_each || PQ_VERIFY_DEFAULT;
    pq_pass_ctx local_ctx;
    pq_pass_run_stats local_stats = {0};
    enum pq_status st = PQ_OK;
    pq_pass_ctx_init(&local_ctx);
    if (!ctx) ctx = &local_ctx;
    if (!stats) stats = &local_stats;
    memset(stats, 0, sizeof(*stats));

    PQ_TRY_GOTO(st, pq_check_names(p, "disable-pass", mo->disabled, mo->n_disabled, false, err),
                done);
    PQ_TRY_GOTO(st,
                pq_check_names(p, "print-before", mo->print_before, mo->n_print_before, true, err),
                done);
    PQ_TRY_GOTO(st, pq_check_names(p, "print-after", mo->print_after, mo->n_print_after, true, err),
                done);
    stats->passes = pq_calloc(p->n ? p->n : 1, sizeof(*stats->passes));
    if (!stats->passes) {
        st = pq_error_nomem(err, "pass statistics");
        goto done;
    }
    double t_start = pq_now_ms();
    st = pq_graph_sort_infer(g, err);
    if (st == PQ_OK && verify) st = pq_graph_verify(g, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "input graph: ");
        goto done;
    }
    if (mo->dump_dir) {
        if (mkdir(mo->dump_dir, 0777) != 0 && errno != EEXIST) {
            st = pq_error_set(err, PQ_ERR_IO, "dump directory '%s': %s", mo->dump_dir,
                              strerror(errno));
            goto done;
        }
        PQ_TRY_GOTO(st, pq_dump(mo, g, 0, "input", err), done);
    }
    for (uint32_t i = 0; i < p->n; i++) {
        const pq_pipeline_entry *e = &p->entries[i];
        const char *name = e->pass->name;
        pq_pass_stat *ps = &stats->passes[stats->n++];
        ps->name = name;
        ps->nodes_before = ps->nodes_after = g->n_nodes;
        if (pq_name_in(name, mo->disabled, mo->n_disabled, false)) {
            ps->skipped = true;
            continue;
        }
        if (pq_name_in(name, mo->print_before, mo->n_print_before, true))
            PQ_TRY_GOTO(st, pq_print_ir(log, g, "before", name, i + 1, err), failed_pass);
        ctx->current_pass = name;
        double t0 = pq_now_ms();
        PQ_TRY_GOTO(st, e->pass->run(g, &e->opts, ctx, err), failed_pass);
        st = pq_graph_sort_infer(g, err);
        if (st != PQ_OK) {
            pq_error_prefix(err, "graph after the pass: ");
            goto failed_pass;
        }
        if (verify) {
            st = pq_graph_verify(g, err);
            if (st != PQ_OK) {
                pq_error_prefix(err, "graph invalid after the pass: ");
                goto failed_pass;
            }
        }
        if (mo->time_passes) ps->ms = pq_now_ms() - t0;
        ps->nodes_after = g->n_nodes;
        ctx->current_pass = NULL;
        if (pq_name_in(name, mo->print_after, mo->n_print_after, true))
            PQ_TRY_GOTO(st, pq_print_ir(log, g, "after", name, i + 1, err), failed_pass);
        if (mo->dump_dir) PQ_TRY_GOTO(st, pq_dump(mo, g, i + 1, name, err), failed_pass);
    }
    if (mo->time_passes) stats->total_ms = pq_now_ms() - t_start;
    goto done;
failed_pass:
    pq_error_prefix(err, "pass '%s': ", p->entries[stats->n - 1].pass->name);
done:
    ctx->current_pass = NULL;
    pq_pass_ctx_free(&local_ctx);
    pq_pass_run_stats_free(&local_stats);
    return st;
}

void pq_pass_stats_print(FILE *f, const pq_pass_run_stats *stats) {
    fprintf(f, "%4s  %-24s %10s  %s\n", "#", "pass", "ms", "nodes");
    double sum = 0;
    for (uint32_t i = 0; i < stats->n; i++) {
        const pq_pass_stat *s = &stats->passes[i];
        if (s->skipped) {
            fprintf(f, "%4u  %-24s %10s  %u\n", i + 1, s->name, "disabled", s->nodes_before);
            continue;
        }
        sum += s->ms;
        fprintf(f, "%4u  %-24s %10.3f  %u -> %u\n", i + 1, s->name, s->ms, s->nodes_before,
                s->nodes_after);
    }
    fprintf(f, "%4s  %-24s %10.3f  (passes %.3f)\n", "", "total", stats->total_ms, sum);
}

static const char *pq_opt_type_name(enum pq_opt_type t) {
    switch (t) {
    case PQ_OPT_BOOL:
        return "bool";
    case PQ_OPT_INT:
        return "int";
    case PQ_OPT_FLOAT:
        return "float";
    case PQ_OPT_STRING:
        return "string";
    case PQ_OPT_ENUM:
        return "enum";
    case PQ_OPT_STRING_LIST:
        return "string list";
    case PQ_OPT_ENUM_LIST:
        return "enum list";
    }
    return "?";
}

void pq_passes_print_list(FILE *f) {
    uint32_t n;
    const pq_pass *const *all = pq_passes_all(&n);
    for (uint32_t i = 0; i < n; i++) {
        const pq_pass *p = all[i];
        fprintf(f, "%s\n    %s\n", p->name, p->summary ? p->summary : "");
        for (uint32_t k = 0; k < p->n_options; k++) {
            const pq_pass_option *o = &p->options[k];
            char accepts[1200];
            pq_opt_describe(o, accepts, sizeof(accepts));
            fprintf(f, "    %s: %s, default %s; accepts %s\n", o->name, pq_opt_type_name(o->type),
                    o->def ? o->def : "(none)", accepts);
            if (o->summary) fprintf(f, "        %s\n", o->summary);
        }
    }
}
