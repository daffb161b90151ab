/* `piqc compile` reporting: the packed tensors of a compiled graph for the artifact, per-format
 * aggregates of the fake-quant records (SPEC section 5), the printed summary and the JSON. */
#include "compile_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/fileio.h"
#include "json.h"

uint64_t pq_compile_f32_param_bytes(const pq_graph *g) {
    uint64_t total = 0;
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_tensor *c = g->values[v].constant;
        if (c && c->dtype == PQ_DTYPE_F32) total += (uint64_t)pq_tensor_numel(c) * 4u;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t a = 0; a < g->nodes[i].n_attrs; a++)
            if (g->nodes[i].attrs[a].type == PQ_ATTR_GRAPH)
                total += pq_compile_f32_param_bytes(g->nodes[i].attrs[a].u.graph);
    return total;
}

/* The record whose weight was packed into the constant named packed_name, or NULL. */
static const pq_quant_record *pq_record_of(const pq_pass_ctx *ctx, const char *packed_name,
                                           int64_t rows, int64_t cols) {
    size_t pl = strlen(packed_name);
    for (uint32_t i = 0; ctx && i < ctx->n_records; i++) {
        const pq_quant_record *r = &ctx->records[i];
        size_t vl = strlen(r->value_name);
        if (vl + 7 == pl && strncmp(packed_name, r->value_name, vl) == 0 &&
            strcmp(packed_name + vl, ".packed") == 0 && r->rows == rows && r->cols == cols)
            return r;
    }
    return NULL;
}

enum pq_status pq_compile_packed_list(const pq_graph *g, const pq_pass_ctx *ctx,
                                      pq_artifact_tensor **out, uint32_t *n, int64_t **dims_store,
                                      pq_error *err) {
    *out = NULL;
    *n = 0;
    *dims_store = NULL;
    pq_artifact_tensor *ts = pq_calloc(g->n_nodes + 1, sizeof *ts);
    int64_t *dims = pq_calloc(((size_t)g->n_nodes + 1) * PQ_MAX_RANK, sizeof *dims);
    bool *seen = pq_calloc(g->n_values + 1, sizeof *seen);
    enum pq_status st = PQ_OK;
    uint32_t count = 0;
    if (!ts || !dims || !seen) {
        st = pq_error_nomem(err, "packed tensor list");
        goto cleanup;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        if (nd->op != PQ_OP_PACKED_MAT_MUL && nd->op != PQ_OP_PACKED_CONV) continue;
        const char *wf = pq_node_attr_string(nd, "format", "");
        if (!strcmp(wf, "int8") || !strcmp(wf, "f16")) continue; /* plain i8/f16 constants */
        uint32_t v = pq_node_input(nd, 1);
        const pq_tensor *c = v != PQ_NONE ? g->values[v].constant : NULL;
        if (!c || c->dtype != PQ_DTYPE_U8 || c->rank != 1) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "node '%s' (%s): input 1 is not a u8 1-D constant of packed codes",
                              nd->name ? nd->name : "?", pq_op_name(nd->op));
            goto cleanup;
        }
        enum pq_qformat f;
        const char *fs = pq_node_attr_string(nd, "format", "");
        int64_t group = pq_node_attr_int(nd, "qgroup", 0);
        int64_t rows = pq_node_attr_int(nd, "rows", 0), cols = pq_node_attr_int(nd, "cols", 0);
        size_t want = pq_qformat_from_name(fs, &f) ? pq_packed_bytes(f, rows, cols, group) : 0;
        if (want == 0 || want != (size_t)c->dims[0]) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "node '%s' (%s): format '%s', qgroup %lld, rows %lld, cols %lld do "
                              "not describe the %lld bytes of '%s'",
                              nd->name ? nd->name : "?", pq_op_name(nd->op), fs, (long long)group,
                              (long long)rows, (long long)cols, (long long)c->dims[0],
                              g->values[v].name);
            goto cleanup;
        }
        if (seen[v]) continue;
        seen[v] = true;
        pq_artifact_tensor *t = &ts[count];
        int64_t *d = dims + (size_t)count * PQ_MAX_RANK;
        t->name = g->values[v].name;
        t->fmt = f;
        t->rows = rows;
        t->cols = cols;
        t->group = group;
        const pq_quant_record *r = pq_record_of(ctx, t->name, rows, cols);
        int64_t numel = 1;
        for (int k = 0; r && k < r->onnx_rank; k++)
            numel *= r->onnx_dims[k];
        if (r && r->onnx_rank > 0 && numel == rows * cols) {
            memcpy(d, r->onnx_dims, sizeof(int64_t) * (size_t)r->onnx_rank);
            t->onnx_rank = r->onnx_rank;
        } else {
            d[0] = rows;
            d[1] = cols;
            t->onnx_rank = 2;
        }
        t->onnx_dims = d;
        count++;
    }
cleanup:
    pq_free(seen);
    if (st != PQ_OK) {
        pq_free(ts);
        pq_free(dims);
        return st;
    }
    *out = ts;
    *n = count;
    *dims_store = dims;
    return PQ_OK;
}

void pq_compile_record_acc(const pq_quant_record *r, pq_metrics_acc *acc) {
    acc->n += r->n;
    acc->sum_e2 += r->sum_e2;
    acc->sum_w2 += r->sum_w2;
    acc->sum_h2 += r->sum_h2;
    acc->dot += r->dot;
    acc->outliers += r->outliers;
    acc->outliers_kept += r->outliers_kept;
    acc->stored_bytes += r->stored_bytes;
}

void pq_compile_record_metrics(const pq_quant_record *r, pq_metrics *out) {
    pq_metrics_acc acc;
    pq_metrics_acc_init(&acc);
    pq_compile_record_acc(r, &acc);
    pq_metrics_acc_finish(&acc, out);
}

void pq_compile_calib_methods(const pq_pass_ctx *ctx, char *buf, size_t size) {
    size_t used = 0;
    if (!size) return;
    buf[0] = '\0';
    for (uint32_t i = 0; i < ctx->n_records; i++) {
        const char *m = ctx->records[i].calib ? ctx->records[i].calib : "-";
        bool seen = false;
        for (uint32_t k = 0; k < i && !seen; k++)
            seen = !strcmp(ctx->records[k].calib ? ctx->records[k].calib : "-", m);
        if (seen || used + strlen(m) + 2 > size) continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", m);
    }
    if (!used) snprintf(buf, size, "-");
}

/* Nominal bits per weight of a record's format and group (SPEC 2: bits + 16/G). */
static double pq_record_nominal(const pq_quant_record *r) {
    enum pq_qformat f;
    if (pq_qformat_from_name(r->format, &f)) return pq_bpw_nominal(f, r->group);
    if (!strcmp(r->format, "int8")) return 8.0;
    if (!strcmp(r->format, "f16")) return 16.0;
    return 32.0;
}

void pq_compile_aggregate(const pq_pass_ctx *ctx, pq_compile_agg *aggs, uint32_t *n,
                          pq_compile_agg *all) {
    *n = 0;
    memset(all, 0, sizeof *all);
    all->format = "all";
    pq_metrics_acc_init(&all->acc);
    for (uint32_t i = 0; i < ctx->n_records; i++) {
        const pq_quant_record *r = &ctx->records[i];
        pq_compile_agg *a = NULL;
        for (uint32_t k = 0; k < *n && !a; k++)
            if (!strcmp(aggs[k].format, r->format)) a = &aggs[k];
        if (!a) {
            a = &aggs[(*n)++];
            memset(a, 0, sizeof *a);
            a->format = r->format;
            pq_metrics_acc_init(&a->acc);
        }
        double nom = pq_record_nominal(r) * (double)r->n;
        a->layers++;
        pq_compile_record_acc(r, &a->acc);
        a->nominal_bits += nom;
        all->layers++;
        pq_compile_record_acc(r, &all->acc);
        all->nominal_bits += nom;
    }
}

static double pq_nominal_bpw(const pq_compile_agg *a) {
    return a->acc.n ? a->nominal_bits / (double)a->acc.n : 0.0;
}

static void pq_print_size(FILE *f, const char *label, uint64_t bytes) {
    fprintf(f, "%s %llu bytes (%.2f KiB)", label, (unsigned long long)bytes,
            (double)bytes / 1024.0);
}

void pq_compile_print_summary(FILE *f, const pq_compile_summary *s, const pq_pass_ctx *ctx) {
    pq_compile_agg *aggs = pq_calloc(ctx->n_records + 1, sizeof *aggs);
    pq_compile_agg all;
    uint32_t na = 0;
    if (aggs) pq_compile_aggregate(ctx, aggs, &na, &all);
    if (!aggs || all.layers == 0) {
        fprintf(f, "quantized weights: none\n");
    } else {
        fprintf(f, "%-8s %6s %12s %12s %8s %8s %9s %8s %6s\n", "format", "layers", "weights",
                "bytes", "bpw", "nominal", "sd_dB", "cosine", "outl");
        for (uint32_t k = 0; k <= na; k++) {
            const pq_compile_agg *a = k < na ? &aggs[k] : &all;
            if (k == na && na == 1) break; /* "all" repeats the only format */
            pq_metrics m;
            pq_metrics_acc_finish(&a->acc, &m);
            fprintf(f, "%-8s %6u %12lld %12llu %8.4f %8.4f %9.2f %8.5f %6.3f\n", a->format,
                    a->layers, (long long)a->acc.n, (unsigned long long)a->acc.stored_bytes,
                    m.bpw_actual, pq_nominal_bpw(a), m.sd_db, m.cosine, m.outlier_retention);
        }
    }
    pq_free(aggs);
    if (s->n_packed)
        fprintf(f, "packed in the graph: %u tensors, %llu bytes (PackedMatMul/PackedConv)\n",
                s->n_packed, (unsigned long long)s->packed_bytes);
    else
        fprintf(f, "packed in the graph: none (PiQ/Q)%s\n",
                all.layers ? "; FakeQuant weights stay f32, lowered int8/f16 weights are plain "
                             "i8/f16 constants"
                           : "");
    pq_print_size(f, "artifact:", s->artifact_bytes);
    pq_print_size(f, " vs FP32 weights:", s->fp32_bytes);
    if (s->fp32_bytes)
        fprintf(f, " -> %.1f%% (%.2fx smaller)\n",
                100.0 * (double)s->artifact_bytes / (double)s->fp32_bytes,
                s->artifact_bytes ? (double)s->fp32_bytes / (double)s->artifact_bytes : 0.0);
    else
        fprintf(f, "\n");
    if (!s->time_passes)
        fprintf(f, "pipeline %s: %u passes in %.1f ms\n", s->pipeline_source, s->n_passes,
                s->total_ms);
}

void pq_compile_json_record_dims(pq_json *j, const pq_quant_record *r) {
    pq_json_key(j, "shape");
    pq_json_begin_array(j);
    for (int d = 0; d < r->onnx_rank; d++)
        pq_json_int(j, r->onnx_dims[d]);
    pq_json_end_array(j);
    pq_json_key(j, "rows");
    pq_json_int(j, r->rows);
    pq_json_key(j, "cols");
    pq_json_int(j, r->cols);
}

void pq_compile_json_metric_fields(pq_json *j, const pq_metrics *m, const double *nominal) {
    pq_json_key(j, "bpw");
    pq_json_number(j, m->bpw_actual);
    if (nominal) {
        pq_json_key(j, "bpw_nominal");
        pq_json_number(j, *nominal);
    }
    pq_json_key(j, "mse");
    pq_json_number(j, m->mse);
    pq_json_key(j, "sd_db");
    pq_json_number(j, m->sd_db);
    pq_json_key(j, "cosine");
    pq_json_number(j, m->cosine);
    pq_json_key(j, "outlier_retention");
    pq_json_number(j, m->outlier_retention);
}

static void pq_json_agg(pq_json *j, const pq_compile_agg *a) {
    pq_metrics m;
    pq_metrics_acc_finish(&a->acc, &m);
    pq_json_key(j, a->format);
    pq_json_begin_object(j);
    pq_json_key(j, "layers");
    pq_json_int(j, a->layers);
    pq_json_key(j, "weights");
    pq_json_int(j, a->acc.n);
    pq_json_key(j, "bytes");
    pq_json_int(j, (int64_t)a->acc.stored_bytes);
    double nominal = pq_nominal_bpw(a);
    pq_compile_json_metric_fields(j, &m, &nominal);
    pq_json_end_object(j);
}

enum pq_status pq_compile_write_json(const char *path, const pq_compile_summary *s,
                                     const pq_pass_ctx *ctx, pq_error *err) {
    pq_compile_agg *aggs = pq_calloc(ctx->n_records + 1, sizeof *aggs);
    if (!aggs) return pq_error_nomem(err, "JSON report");
    pq_compile_agg all;
    uint32_t na = 0;
    pq_compile_aggregate(ctx, aggs, &na, &all);
    pq_atomic_file af;
    enum pq_status st = pq_atomic_open(&af, path, err);
    if (st != PQ_OK) {
        pq_free(aggs);
        return st;
    }
    pq_json j;
    pq_json_init(&j, af.f);
    pq_json_begin_object(&j);
    pq_json_key(&j, "model");
    pq_json_string(&j, s->model);
    pq_json_key(&j, "pipeline");
    pq_json_string(&j, s->pipeline_source);
    pq_json_key(&j, "output");
    pq_json_string(&j, s->output);
    pq_json_key(&j, "fp32_bytes");
    pq_json_int(&j, (int64_t)s->fp32_bytes);
    pq_json_key(&j, "artifact_bytes");
    pq_json_int(&j, (int64_t)s->artifact_bytes);
    pq_json_key(&j, "packed_tensors");
    pq_json_int(&j, s->n_packed);
    pq_json_key(&j, "packed_bytes");
    pq_json_int(&j, (int64_t)s->packed_bytes);
    pq_json_key(&j, "tensors");
    pq_json_begin_array(&j);
    for (uint32_t i = 0; i < ctx->n_records; i++) {
        const pq_quant_record *r = &ctx->records[i];
        pq_metrics m;
        pq_compile_record_metrics(r, &m);
        pq_json_begin_object(&j);
        pq_json_key(&j, "name");
        pq_json_string(&j, r->value_name);
        pq_json_key(&j, "node");
        pq_json_string(&j, r->node_name);
        pq_json_key(&j, "op");
        pq_json_string(&j, pq_op_name(r->op));
        pq_compile_json_record_dims(&j, r);
        pq_json_key(&j, "format");
        pq_json_string(&j, r->format);
        pq_json_key(&j, "group");
        pq_json_int(&j, r->group);
        pq_json_key(&j, "calib");
        pq_json_string(&j, r->calib);
        pq_json_key(&j, "rotated");
        pq_json_bool(&j, r->rotated);
        pq_json_key(&j, "bytes");
        pq_json_int(&j, (int64_t)r->stored_bytes);
        pq_compile_json_metric_fields(&j, &m, NULL);
        pq_json_key(&j, "compare"); /* the shape of `piqc quantize --json`; compile has none */
        pq_json_null(&j);
        pq_json_end_object(&j);
    }
    pq_json_end_array(&j);
    pq_json_key(&j, "aggregate");
    pq_json_begin_object(&j);
    for (uint32_t k = 0; k < na; k++)
        pq_json_agg(&j, &aggs[k]);
    pq_json_agg(&j, &all);
    pq_json_end_object(&j);
    pq_json_key(&j, "passes");
    pq_json_begin_array(&j);
    for (uint32_t i = 0; i < s->n_passes; i++) {
        const pq_compile_pass_row *p = &s->passes[i];
        pq_json_begin_object(&j);
        pq_json_key(&j, "name");
        pq_json_string(&j, p->name);
        pq_json_key(&j, "ms");
        pq_json_number(&j, p->ms);
        pq_json_key(&j, "nodes_before");
        pq_json_int(&j, p->nodes_before);
        pq_json_key(&j, "nodes_after");
        pq_json_int(&j, p->nodes_after);
        pq_json_key(&j, "disabled");
        pq_json_bool(&j, p->skipped);
        pq_json_end_object(&j);
    }
    pq_json_end_array(&j);
    pq_json_key(&j, "total_ms");
    pq_json_number(&j, s->total_ms);
    pq_json_end_object(&j);
    fputc('\n', af.f);
    pq_free(aggs);
    return pq_atomic_commit(&af, err);
}

/* The pipeline text stored in the artifact: the YAML as given (or as printed when built in
 * code), with a trailing comment naming the passes --disable-pass skipped. */
enum pq_status pq_compile_pipeline_text(const pq_pipeline *p, const char *const *disabled,
                                        uint32_t n_disabled, char **out, pq_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pq_error_nomem(err, "pipeline text");
    enum pq_status st = PQ_OK;
    if (p->text)
        fputs(p->text, f);
    else
        st = pq_pipeline_print(f, p, err);
    if (st == PQ_OK && n_disabled) {
        if (len && buf[len - 1] != '\n') fputc('\n', f);
        fprintf(f, "# piqc compile --disable-pass:");
        for (uint32_t i = 0; i < n_disabled; i++)
            fprintf(f, " %s", disabled[i]);
        fputc('\n', f);
    }
    if (fclose(f) != 0 && st == PQ_OK) st = pq_error_nomem(err, "pipeline text");
    if (st != PQ_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return PQ_OK;
}
