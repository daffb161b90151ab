/* Internals shared by the pipeline files (pipeline_yaml.c, pipeline.c, manager.c): option value
 * conversion, entry set-up and the generic YAML tree's lifetime. Not part of the public face. */
#ifndef PQ_PIPELINE_INTERNAL_H
#define PQ_PIPELINE_INTERNAL_H

#include "pipeline.h"

/* Frees what y owns (not y itself) and zeroes it; safe to call twice. */
void pq_ynode_free(pq_ynode *y);
/* Frees the strings/list of v and resets it to "not set" (schema kept). */
void pq_optv_clear(pq_opt_value *v);
/* "an integer in 8..65536", "one of: a, b", ...: what option o accepts. */
void pq_opt_describe(const pq_pass_option *o, char *buf, size_t cap);
/* Converts YAML node y into *out (replaced only on success). On failure INVALID with a message
 * without position; *at is the node the message is about. */
enum pq_status pq_opt_from_node(const pq_pass *pass, const pq_pass_option *o, const pq_ynode *y,
                                pq_opt_value *out, const pq_ynode **at, pq_error *err);
/* Same from YAML value text ("42", "[a, b]"). */
enum pq_status pq_opt_from_text(const pq_pass *pass, const pq_pass_option *o, const char *text,
                                pq_opt_value *out, pq_error *err);
/* Entry of pass with every option unset (NOMEM); then defaults (INTERNAL for a bad schema). */
enum pq_status pq_entry_init(pq_pipeline_entry *e, const pq_pass *pass, pq_error *err);
enum pq_status pq_entry_defaults(pq_pipeline_entry *e, pq_error *err);
void pq_entry_free(pq_pipeline_entry *e);
/* "a, b, c": the names of passes[0..n) into buf. */
void pq_pass_names_str(const pq_pass *const *passes, uint32_t n, char *buf, size_t cap);
/* Empty pipeline with a copy of source; NULL (and NOMEM in err) on failure. */
pq_pipeline *pq_pipeline_new(const char *source, pq_error *err);

/* Built-in presets, generated at build time from examples/pipelines/ (passes/CMakeLists.txt). */
extern const pq_pipeline_preset pq_pipeline_preset_table[];
extern const uint32_t pq_pipeline_preset_count;

#endif
