/* `piqc inspect MODEL`: summarises a model: producer and opsets, op histogram (subgraphs
 * included), parameter count and bytes, inputs and outputs with symbolic dims, and the planned
 * peak activation memory with symbolic dims bound (default 1, or --bind NAME=N). Artifacts also
 * show integrity, provenance, the pipeline, the packed layers and resident weight bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "frontends/frontends.h"
#include "runtime/runtime.h"

#define PQ_INSPECT_MAX_BINDS 16

static void pq_inspect_help(FILE *f) {
    fprintf(
        f, "usage: piqc inspect MODEL [--bind NAME=N]...\n\n"
           "Summarises MODEL (.onnx, .pir or .gguf): opsets, op histogram, parameters, inputs and\n"
           "outputs, and the planned peak activation memory. Symbolic dimensions are bound to\n"
           "1 for the memory plan unless --bind NAME=N says otherwise. For a .gguf artifact it\n"
           "also checks every SHA-256 and lists the calibration provenance, the pipeline,\n"
           "the packed layers (packed: kept packed in the graph; dequantized: expanded to f32\n"
           "on load) and the resident weight bytes against their f32 equivalent.\n");
}

static void pq_count_ops(const pq_graph *g, int64_t *hist, int64_t *nodes) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        hist[g->nodes[i].op]++;
        (*nodes)++;
        for (uint32_t a = 0; a < g->nodes[i].n_attrs; a++)
            if (g->nodes[i].attrs[a].type == PQ_ATTR_GRAPH)
                pq_count_ops(g->nodes[i].attrs[a].u.graph, hist, nodes);
    }
}

typedef struct {
    const char *name;
    int64_t value;
} pq_bind;

/* What the int8/f16 weights of PackedMatMul/PackedConv nodes would add as f32: rows x cols x 4
 * bytes minus their i8/f16 bytes and f32 row scales (resident), once per weight constant. */
static int64_t pq_inspect_wide_extra(const pq_graph *g) {
    int64_t extra = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        if (nd->op != PQ_OP_PACKED_MAT_MUL && nd->op != PQ_OP_PACKED_CONV) continue;
        const char *fs = pq_node_attr_string(nd, "format", "");
        uint32_t w = pq_node_input(nd, 1), s = pq_node_input(nd, 3);
        if ((strcmp(fs, "int8") && strcmp(fs, "f16")) || w == PQ_NONE || !g->values[w].constant)
            continue;
        bool seen = false;
        for (uint32_t k = 0; k < i && !seen; k++)
            seen =
                (g->nodes[k].op == PQ_OP_PACKED_MAT_MUL || g->nodes[k].op == PQ_OP_PACKED_CONV) &&
                pq_node_input(&g->nodes[k], 1) == w;
        if (seen) continue;
        extra += pq_node_attr_int(nd, "rows", 0) * pq_node_attr_int(nd, "cols", 0) * 4 -
                 (int64_t)g->values[w].constant->nbytes;
        if (s != PQ_NONE && g->values[s].constant) extra -= (int64_t)g->values[s].constant->nbytes;
    }
    return extra;
}

/* What the s8 weights of QLinearConv / QLinearMatMul (input 3; an INT8 artifact of int8-cnn)
 * would add as f32: 3 bytes per element, minus their per-channel scales and zero points, which
 * an f32 model does not have; a weight shared by several nodes counts once. */
static int64_t pq_inspect_qlinear_extra(const pq_graph *g) {
    int64_t extra = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const pq_node *nd = &g->nodes[i];
        if (nd->op != PQ_OP_QLINEAR_CONV && nd->op != PQ_OP_QLINEAR_MATMUL) continue;
        uint32_t w = pq_node_input(nd, 3);
        if (w == PQ_NONE || !g->values[w].constant) continue;
        const pq_tensor *t = g->values[w].constant;
        if (t->dtype != PQ_DTYPE_I8 && t->dtype != PQ_DTYPE_U8) continue;
        bool seen = false;
        for (uint32_t k = 0; k < i && !seen; k++)
            seen =
                (g->nodes[k].op == PQ_OP_QLINEAR_CONV || g->nodes[k].op == PQ_OP_QLINEAR_MATMUL) &&
                pq_node_input(&g->nodes[k], 3) == w;
        if (seen) continue;
        extra += 3 * (int64_t)t->nbytes;
        for (uint32_t in = 4; in <= 5; in++) { /* w_scale, w_zero_point */
            uint32_t v = pq_node_input(nd, in);
            if (v != PQ_NONE && g->values[v].constant)
                extra -= (int64_t)g->values[v].constant->nbytes;
        }
    }
    return extra;
}

/* Prints the artifact part of `inspect FILE.gguf`: provenance, pipeline, packed tensors,
 * integrity. *f32_extra receives what the packed tensors kept packed in the graph would add as
 * f32 (f32 bytes of their weights minus their packed bytes). */
static int pq_inspect_artifact(const char *path, int64_t *f32_extra, pq_error *err) {
    *f32_extra = 0;
    pq_artifact *a = NULL;
    if (pq_artifact_read(path, &a, err) != PQ_OK) {
        printf("artifact: %s\nintegrity: FAILED\n", path);
        return pq_cli_fail("inspect", err);
    }
    printf("artifact: %s (GGUF v%u, piqc format %u, written by piqc %s)\n", path, a->gguf->version,
           PQ_ARTIFACT_FORMAT_VERSION, a->version ? a->version : "?");
    printf("integrity: OK (header and %llu tensor SHA-256 hashes verified)\n",
           (unsigned long long)a->gguf->n_tensors);
    if (a->has_provenance)
        printf("calibration: method %s, %llu samples, data sha256 %s, at %s\n",
               a->provenance.calib_method ? a->provenance.calib_method : "?",
               (unsigned long long)a->provenance.calib_samples,
               a->provenance.calib_sha256 && a->provenance.calib_sha256[0]
                   ? a->provenance.calib_sha256
                   : "(weights only)",
               a->provenance.timestamp ? a->provenance.timestamp : "?");
    if (a->pipeline[0]) {
        printf("pipeline:\n");
        for (const char *l = a->pipeline; *l;) {
            const char *e = strchr(l, '\n');
            int len = e ? (int)(e - l) : (int)strlen(l);
            printf("  | %.*s\n", len, l);
            l += len + (e ? 1 : 0);
        }
    } else {
        printf("pipeline: (none)\n");
    }
    uint64_t packed_bytes = 0, packed_weights = 0;
    printf("%-40s %-6s %-16s %-12s %6s %9s %7s %s\n", "packed tensor", "format", "onnx shape",
           "rows x cols", "G", "bytes", "bpw", "in graph");
    for (uint32_t i = 0; i < a->n_packed; i++) {
        const pq_artifact_packed *p = &a->packed[i];
        char shape[64], rc[40];
        pq_shape_format(p->onnx_rank, p->onnx_dims, shape, sizeof shape);
        snprintf(rc, sizeof rc, "%lldx%lld", (long long)p->rows, (long long)p->cols);
        double bpw = 8.0 * (double)p->size / (double)(p->rows * p->cols);
        printf("%-40.40s %-6s %-16.16s %-12s %6lld %9zu %7.4f %s\n", p->name,
               pq_qformat_name(p->fmt), shape, rc, (long long)p->group, p->size, bpw,
               p->in_graph_packed ? "packed" : "dequantized");
        if (p->in_graph_packed) *f32_extra += p->rows * p->cols * 4 - (int64_t)p->size;
        packed_bytes += p->size;
        packed_weights += (uint64_t)(p->rows * p->cols);
    }
    if (a->n_packed)
        printf("packed: %u tensors, %llu weights, %llu bytes, %.4f bits per weight\n", a->n_packed,
               (unsigned long long)packed_weights, (unsigned long long)packed_bytes,
               8.0 * (double)packed_bytes / (double)packed_weights);
    pq_artifact_destroy(a);
    return 0;
}

int pq_cmd_inspect(int argc, char **argv) {
    const char *model = NULL;
    pq_bind binds[PQ_INSPECT_MAX_BINDS];
    int n_binds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            pq_inspect_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--bind")) {
            char *eq = ++i < argc ? strchr(argv[i], '=') : NULL;
            if (!eq || n_binds >= PQ_INSPECT_MAX_BINDS ||
                !pq_cli_parse_int(eq + 1, 0, (int64_t)1 << 32, &binds[n_binds].value))
                return pq_cli_usage_error("inspect", "--bind needs NAME=N with N >= 0");
            *eq = '\0';
            binds[n_binds++].name = argv[i];
        } else if (argv[i][0] == '-') {
            return pq_cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return pq_cli_usage_error("inspect", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model) return pq_cli_usage_error("inspect", "missing MODEL");
    pq_error err;
    pq_error_clear(&err);
    size_t ml = strlen(model);
    bool artifact = ml > 5 && !strcmp(model + ml - 5, ".gguf");
    int64_t f32_extra = 0;
    if (artifact) {
        int arc = pq_inspect_artifact(model, &f32_extra, &err);
        if (arc) return arc;
    }
    pq_graph *g = NULL;
    if (pq_cli_load_model(model, true, &g, &err) != PQ_OK) return pq_cli_fail("inspect", &err);

    printf("model: %s\n", model);
    if (g->producer_name) printf("producer: %s\n", g->producer_name);
    if (g->ir_version) printf("ir_version: %lld\n", (long long)g->ir_version);
    printf("opsets:");
    for (uint32_t i = 0; i < g->n_opsets; i++)
        printf(" %s%s%lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", " v",
               (long long)g->opsets[i].version);
    printf("\n");

    int64_t hist[PQ_OP_COUNT] = {0}, n_nodes = 0;
    pq_count_ops(g, hist, &n_nodes);
    printf("nodes: %lld\nop histogram:\n", (long long)n_nodes);
    for (int pass = 0; pass < 1; pass++) {
        bool done[PQ_OP_COUNT] = {false};
        for (;;) { /* most frequent first, then by name */
            int best = -1;
            for (int op = 0; op < PQ_OP_COUNT; op++) {
                if (done[op] || !hist[op]) continue;
                if (best < 0 || hist[op] > hist[best] ||
                    (hist[op] == hist[best] && strcmp(pq_op_name(op), pq_op_name(best)) < 0))
                    best = op;
            }
            if (best < 0) break;
            done[best] = true;
            printf("  %-24s %lld\n", pq_op_name(best), (long long)hist[best]);
        }
    }
    int64_t pel, pby;
    pq_graph_param_stats(g, &pel, &pby);
    printf("parameters: %lld elements, %lld bytes (%.2f MiB)\n", (long long)pel, (long long)pby,
           (double)pby / 1048576.0);
    if (artifact) {
        int64_t f32_eq = pby + f32_extra + pq_inspect_wide_extra(g) + pq_inspect_qlinear_extra(g);
        printf("resident weights: %lld bytes vs f32 equivalent %lld bytes (%.1f%%)\n",
               (long long)pby, (long long)f32_eq,
               f32_eq ? 100.0 * (double)pby / (double)f32_eq : 0.0);
    }
    char type[256];
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        pq_cli_format_type(g, &g->values[g->inputs[i]], type, sizeof type);
        printf("input  %s: %s\n", g->values[g->inputs[i]].name, type);
    }
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        pq_cli_format_type(g, &g->values[g->outputs[i]], type, sizeof type);
        printf("output %s: %s\n", g->values[g->outputs[i]].name, type);
    }

    /* planned peak memory with symbols bound */
    int rc = 0;
    int64_t *dims = pq_calloc((size_t)g->n_inputs * PQ_MAX_RANK + 1, sizeof *dims);
    const int64_t **rows = pq_calloc(g->n_inputs + 1, sizeof *rows);
    pq_session *s = NULL;
    if (!dims || !rows) {
        pq_error_nomem(&err, "inspect");
        rc = pq_cli_fail("inspect", &err);
        goto done;
    }
    printf("binding:");
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const pq_value *v = &g->values[g->inputs[i]];
        rows[i] = dims + (size_t)i * PQ_MAX_RANK;
        for (int d = 0; d < v->shape.rank; d++) {
            pq_dim dim = v->shape.dims[d];
            int64_t size = pq_dim_known(dim) ? dim.size : 1;
            if (!pq_dim_known(dim)) {
                const char *sym = dim.sym ? pq_graph_symbol_name(g, dim.sym) : "?";
                for (int b = 0; b < n_binds; b++)
                    if (!strcmp(binds[b].name, sym)) size = binds[b].value;
                printf(" %s.%d(%s)=%lld", v->name, d, sym, (long long)size);
            }
            dims[(size_t)i * PQ_MAX_RANK + (size_t)d] = size;
        }
    }
    printf("\n");
    if (pq_session_create(g, NULL, &s, &err) != PQ_OK || pq_session_plan(s, rows, &err) != PQ_OK) {
        printf("planned peak activation memory: unavailable (%s)\n", err.msg);
    } else {
        size_t peak = pq_session_planned_peak(s);
        printf("planned peak activation memory: %zu bytes (%.2f MiB)\n", peak,
               (double)peak / 1048576.0);
    }
done:
    pq_session_destroy(s);
    pq_free(dims);
    pq_free(rows);
    pq_graph_destroy(g);
    return rc;
}
