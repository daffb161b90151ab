/* `piqc export MODEL --onnx OUT.onnx | --onnx-qdq OUT.onnx`: writes a model or compiled artifact
 * as ONNX; --onnx-qdq turns the QLinear* ops into the QDQ form onnxruntime fuses. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "frontends/onnx_export.h"

static void pq_export_help(FILE *f) {
    fprintf(f,
            "usage: piqc export MODEL (--onnx OUT.onnx | --onnx-qdq OUT.onnx) [--opset N]\n\n"
            "Writes MODEL (.gguf artifact, .onnx or .pir) as an ONNX model (written atomically).\n"
            "  --onnx OUT       plain export: every op as it is in the graph (QLinearConv stays)\n"
            "  --onnx-qdq OUT   QDQ export: each QLinearConv / QLinearMatMul becomes\n"
            "                   DequantizeLinear(x), DequantizeLinear(w, per-channel axis 0),\n"
            "                   [DequantizeLinear(bias_i32, s_x*s_w)] -> Conv/MatMul ->\n"
            "                   QuantizeLinear(y), the form onnxruntime fuses into integer\n"
            "                   kernels; QLinearAdd / QLinearMul / QLinearGlobalAveragePool\n"
            "                   become DequantizeLinear -> Add / Mul / GlobalAveragePool\n"
            "                   [-> Relu] -> QuantizeLinear; QuantizeLinear/DequantizeLinear\n"
            "                   at the borders stay\n"
            "  --opset N        lowest default-domain opset to write (7-18; default: the\n"
            "                   graph's, raised to what its ops need)\n"
            "Artifacts with packed piqc weights (PackedConv, PackedMatMul) have no ONNX form.\n");
}

int pq_cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    bool qdq = false;
    int64_t opset = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            pq_export_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--onnx") || !strcmp(argv[i], "--onnx-qdq")) {
            if (out) return pq_cli_usage_error("export", "give one of --onnx / --onnx-qdq once");
            qdq = !strcmp(argv[i], "--onnx-qdq");
            if (++i >= argc)
                return pq_cli_usage_error("export", "%s needs a file name", argv[i - 1]);
            out = argv[i];
        } else if (!strcmp(argv[i], "--opset")) {
            if (++i >= argc || !pq_cli_parse_int(argv[i], 7, 18, &opset))
                return pq_cli_usage_error("export", "--opset needs a number in 7..18");
        } else if (argv[i][0] == '-') {
            return pq_cli_usage_error("export", "unknown option '%s'", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return pq_cli_usage_error("export", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model) return pq_cli_usage_error("export", "missing MODEL");
    if (!out) return pq_cli_usage_error("export", "missing --onnx OUT.onnx or --onnx-qdq OUT.onnx");
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    if (pq_cli_load_model(model, true, &g, &err) != PQ_OK) return pq_cli_fail("export", &err);
    /* the integer ops the QDQ export rewrites, counted for the summary line */
    static const enum pq_op qops[] = {PQ_OP_QLINEAR_CONV, PQ_OP_QLINEAR_MATMUL, PQ_OP_QLINEAR_ADD,
                                      PQ_OP_QLINEAR_MUL, PQ_OP_QLINEAR_GLOBAL_AVERAGE_POOL};
    enum { NQ = sizeof qops / sizeof qops[0] };
    uint32_t nq[NQ] = {0};
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < NQ; k++)
            nq[k] += g->nodes[i].op == qops[k];
    pq_onnx_export_opts o = {.qdq = qdq, .min_opset = opset, .producer = "piqc"};
    enum pq_status st = pq_onnx_export_file(g, &o, out, &err);
    uint32_t nodes = g->n_nodes;
    pq_graph_destroy(g);
    if (st != PQ_OK) return pq_cli_fail("export", &err);
    if (qdq) {
        /* "2 QLinearConv and 1 QLinearMatMul" (always listed), then the others present */
        int shown[NQ], ns = 0;
        for (int k = 0; k < NQ; k++)
            if (k < 2 || nq[k] > 0) shown[ns++] = k;
        char list[256] = "";
        size_t len = 0;
        for (int i = 0; i < ns && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%u %s",
                                    i == 0 ? "" : (i == ns - 1 ? " and " : ", "), nq[shown[i]],
                                    pq_op_name(qops[shown[i]]));
        fprintf(stderr, "piqc export: wrote %s (%u nodes in piqc; %s in QDQ form)\n", out, nodes,
                list);
    } else
        fprintf(stderr, "piqc export: wrote %s (%u nodes)\n", out, nodes);
    return 0;
}
