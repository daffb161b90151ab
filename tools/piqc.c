/* Entry point of the piqc command line: dispatches to one subcommand per file (tools/cmd_*.c).
 * Exit codes: 0 ok, 1 usage, 2 invalid input, 3 unsupported, 4 internal, 5 I/O. */
#include <stdio.h>
#include <string.h>

#include "backends/cpu.h"
#include "backends/int8/int8_gemm.h"
#include "backends/quant/piq_gemv_i8.h"
#include "backends/quant/qkernels.h"

#include "cmd.h"

static const pq_command pq_commands[] = {
    {"import", "print or save a model's text IR", pq_cmd_import},
    {"run", "run an .onnx, .pir or .gguf model on .npy inputs", pq_cmd_run},
    {"inspect", "summarise a model or artifact", pq_cmd_inspect},
    {"quantize", "quantize weights to PiQ3/PiQ2/Q3/Q2/INT8 and report quality", pq_cmd_quantize},
    {"verify", "check every SHA-256 of a .gguf artifact", pq_cmd_verify},
    {"compile", "run a pass pipeline over a model and write a .gguf artifact", pq_cmd_compile},
    {"sensitivity", "measure each layer's output drift when quantized alone", pq_cmd_sensitivity},
    {"export", "write a model or artifact as ONNX (QDQ for onnxruntime)", pq_cmd_export},
    {"eval", "accuracy, perplexity or cosine of a model over a data folder", pq_cmd_eval},
    {"train", "quantization-aware training (QAT, LoRA-QAT, distillation) into an artifact",
     pq_cmd_train},
};

static void pq_usage(FILE *f) {
    fprintf(f, "usage: piqc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof pq_commands / sizeof pq_commands[0]; i++)
        fprintf(f, "  %-12s %s\n", pq_commands[i].name, pq_commands[i].summary);
    fprintf(f, "\n'piqc <command> --help' describes each command; 'piqc --version' prints the\n"
               "version, the CPU features seen and the kernels chosen (environment: PIQC_ISA=\n"
               "scalar|avx2|avxvnni|avx512|amx forces a kernel family, PIQC_CPU_MAX=scalar|avx2|\n"
               "avxvnni|avx512 hides the CPU features above a level).\n"
               "exit codes: 0 ok, 1 usage, 2 invalid input, 3 unsupported, 4 internal error, "
               "5 I/O error\n");
}

/* The CPU features piqc sees (after PIQC_CPU_MAX) and the kernel families it picked (after
 * PIQC_ISA), for bug reports and for checking what a machine runs. */
static void pq_print_kernels(void) {
    const char *cap = pq_cpu_max_level(), *isa = pq_isa_forced_exact();
    printf("cpu:%s%s%s%s%s%s%s", pq_cpu_has_avx2() ? " avx2" : "",
           pq_cpu_has_avxvnni() ? " avx-vnni" : "", pq_cpu_has_avx512() ? " avx512" : "",
           pq_cpu_has_avx512_vnni() ? " avx512-vnni" : "",
           pq_cpu_has_avx512_vbmi() ? " avx512-vbmi" : "",
           pq_i8_kernels_for(PQ_I8_AMX) ? " amx-int8" : "", pq_cpu_has_neon() ? " neon" : "");
    if (!pq_cpu_has_avx2() && !pq_cpu_has_neon()) printf(" (no SIMD kernels)");
    if (cap) printf(" (capped by PIQC_CPU_MAX=%s)", cap);
    printf("\nkernels: piq %s, piq-int8 %s, int8 %s", pq_qkernels_get()->isa,
           pq_piq_i8_kernels_get()->isa, pq_i8_kernels_get()->name);
    if (isa) printf(" (forced by PIQC_ISA=%s)", isa);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        pq_usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        pq_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("piqc %s\n", PIQC_VERSION);
        pq_print_kernels();
        return 0;
    }
    for (size_t i = 0; i < sizeof pq_commands / sizeof pq_commands[0]; i++)
        if (!strcmp(argv[1], pq_commands[i].name)) return pq_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "piqc: unknown command '%s'\n", argv[1]);
    pq_usage(stderr);
    return 1;
}
