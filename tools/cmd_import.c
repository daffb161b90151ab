/* `piqc import MODEL [-o OUT.pir]`: imports a model and prints its text IR, or saves it as
 * OUT.pir (+ OUT.pir.bin holding the data of large constants). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "frontends/frontends.h"

static void pq_import_help(FILE *f) {
    fprintf(f, "usage: piqc import MODEL.onnx [-o OUT.pir] [--no-infer]\n\n"
               "Imports MODEL (.onnx or .pir), infers shapes and prints the piqc text IR.\n"
               "  -o OUT.pir   save to OUT.pir (large constants go to OUT.pir.bin) instead\n"
               "  --no-infer   print the graph as imported, without shape inference\n");
}

int pq_cmd_import(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    bool infer = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            pq_import_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o")) {
            if (++i >= argc) return pq_cli_usage_error("import", "-o needs a file name");
            out = argv[i];
        } else if (!strcmp(argv[i], "--no-infer")) {
            infer = false;
        } else if (argv[i][0] == '-') {
            return pq_cli_usage_error("import", "unknown option '%s'", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return pq_cli_usage_error("import", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model) return pq_cli_usage_error("import", "missing MODEL");
    pq_error err;
    pq_error_clear(&err);
    pq_graph *g = NULL;
    if (pq_cli_load_model(model, infer, &g, &err) != PQ_OK) return pq_cli_fail("import", &err);
    enum pq_status st;
    if (out)
        st = pq_pir_save(g, out, &err);
    else
        st = pq_text_print(g, stdout, NULL, &err);
    pq_graph_destroy(g);
    if (st != PQ_OK) return pq_cli_fail("import", &err);
    if (out) fprintf(stderr, "piqc import: wrote %s\n", out);
    return 0;
}
