/* Weight selection shared by the weight-rewriting passes (hadamard, lora, fake-quant, ...): the
 * common options (targets, include/exclude regexes, min-elements, skip) and the layer list. */
#ifndef PQ_SELECT_H
#define PQ_SELECT_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "pass.h"
#include "weights.h"

/* Choices of the `targets` and `skip` options (NULL-terminated). */
extern const char *const pq_select_target_choices[];
extern const char *const pq_select_skip_choices[];

/* The five common options, as initializers, so that a pass's schema starts with them:
 *
 *     static const pq_pass_option my_options[] = {
 *         PQ_SELECT_OPTION_ENTRIES,
 *         {"seed", PQ_OPT_INT, "rotation seed", "42", 0, 9.2e18, NULL},
 *     };
 *
 * - targets      ENUM_LIST of MatMul, Gemm, Conv; default [MatMul, Gemm, Conv]
 * - include      STRING, POSIX extended regex matched against the node name OR the weight value
 *                name (a layer is kept when either matches); no default (absent: everything)
 * - exclude      STRING, same matching; a layer is dropped when either name matches
 * - min-elements INT 0..2^40, default 1024: weights with fewer elements are left alone
 * - skip         ENUM_LIST of first, last; default []: drop the first / last selected layer */
/* clang-format off */
#define PQ_SELECT_OPTION_ENTRIES                                                                   \
    {"targets", PQ_OPT_ENUM_LIST, "ops whose weights are rewritten", "[MatMul, Gemm, Conv]",      \
     0, 0, pq_select_target_choices},                                                              \
    {"include", PQ_OPT_STRING, "POSIX extended regex on node or weight name: only these layers",   \
     NULL, 0, 0, NULL},                                                                            \
    {"exclude", PQ_OPT_STRING, "POSIX extended regex on node or weight name: leave these layers",  \
     NULL, 0, 0, NULL},                                                                            \
    {"min-elements", PQ_OPT_INT, "leave weights with fewer elements", "1024", 0, 1099511627776.0, \
     NULL},                                                                                        \
    {"skip", PQ_OPT_ENUM_LIST, "leave the first and/or last selected layer", "[]", 0, 0,           \
     pq_select_skip_choices}
/* clang-format on */

/* The same five options as an array (PQ_SELECT_N_OPTIONS entries), for code that lists them. */
extern const pq_pass_option pq_select_options[];
#define PQ_SELECT_N_OPTIONS 5

/* One selected layer: node `node` reads its weight at input `slot` (1 for MatMul B, Gemm B and
 * Conv W); view is the weight view of SPEC 2 as THIS node sees it (Gemm transB decides the
 * orientation; view.node_name / view.op are this node's). */
typedef struct pq_weight_target {
    uint32_t node;
    uint32_t slot;
    pq_weight_view view;
    /* pq_select_weights_ex with PQ_SELECT_THROUGH_FAKE_QUANT only: the FakeQuant node between the
     * constant (view.value) and the layer, else PQ_NONE */
    uint32_t fake_quant;
} pq_weight_target;

/* The weight view of node nid's weight input (MatMul/Gemm input 1, Conv/ConvTranspose input 1)
 * when it is an f32 constant of rank >= 2 (Gemm: rank 2); false otherwise. Does not look at
 * options. */
bool pq_select_view(const pq_graph *g, uint32_t nid, pq_weight_view *out);
/* pq_select_view for the weight value v as node nid's weight (v need not be nid's input: the
 * constant behind a FakeQuant). */
bool pq_select_view_of(const pq_graph *g, uint32_t nid, uint32_t v, pq_weight_view *out);

/* Checks the select options of o when a pipeline is read (pq_pass.check): the include/exclude
 * regular expressions must compile. INVALID naming the option and the regcomp message. */
enum pq_status pq_select_check(const pq_pass_opts *o, pq_error *err);

/* Compiles option `name` of o as a POSIX extended regex into re (regfree it when *have); *have =
 * false when the option is unset. Patterns longer than 256 bytes or whose quantifiers could make
 * glibc's regcomp allocate without bound (stacked or nested repetitions) are refused before
 * regcomp. INVALID naming the option and the reason. */
enum pq_status pq_select_regcomp(const pq_pass_opts *o, const char *name, regex_t *re, bool *have,
                                 pq_error *err);

/* Every node of a `targets` op (MatMul: constant B; Gemm: constant B; Conv: constant f32 W), in
 * graph order, whose weight is f32 with >= min-elements elements, is not a LoRA adapter constant
 * (name ending in ".lora_A" / ".lora_B": trainable, never rewritten) and passes include/exclude;
 * then `skip: [first]` / `[last]` drop the first / last of that list. A weight shared by several
 * nodes appears once per node (the caller decides what sharing means for it). o must be an instance
 * of a schema that starts with PQ_SELECT_OPTION_ENTRIES (absent options read as their defaults).
 * *out is pq_malloc'ed (pq_free it; NULL when *n is 0).
 * Returns PQ_OK; PQ_ERR_INVALID when include/exclude is not a valid regex (the message names the
 * option and gives regerror's text); PQ_ERR_NOMEM. */
enum pq_status pq_select_weights(const pq_graph *g, const pq_pass_opts *o, pq_weight_target **out,
                                 uint32_t *n, pq_error *err);

/* Flags of pq_select_weights_ex. */
enum pq_select_flags {
    /* also select a layer whose weight input is the output of a FakeQuant node reading an f32
     * constant (lora after fake-quant): view describes that constant, target.fake_quant is the
     * FakeQuant node. Passes that change the weight itself must not set this. */
    PQ_SELECT_THROUGH_FAKE_QUANT = 1u << 0,
};

/* pq_select_weights with flags (pq_select_flags); pq_select_weights is flags = 0. */
enum pq_status pq_select_weights_ex(const pq_graph *g, const pq_pass_opts *o, unsigned flags,
                                    pq_weight_target **out, uint32_t *n, pq_error *err);

#endif
