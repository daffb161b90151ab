/* Pipelines: the ordered list of pass instances with validated, default-filled options, read from
 * YAML (pipeline.yaml files or the built-in presets of examples/pipelines/) or built in code. */
#ifndef PQ_PIPELINE_H
#define PQ_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pass.h"

/* Largest pipeline text pq_pipeline_parse / pq_pipeline_load accept (bytes). */
#define PQ_PIPELINE_MAX_TEXT (1u << 20)
/* Deepest YAML nesting accepted (collections inside collections). */
#define PQ_PIPELINE_MAX_DEPTH 32

/* A generic YAML node, used for sections the pipeline keeps without validating (`train:`). Maps
 * keep their keys in order (duplicates are rejected while parsing). Lines and columns are 1-based.
 * Everything is owned by the pipeline. */
enum pq_ynode_kind { PQ_YNODE_SCALAR, PQ_YNODE_SEQ, PQ_YNODE_MAP };
typedef struct pq_ynode {
    enum pq_ynode_kind kind;
    uint32_t line, col;
    char *scalar;           /* SCALAR: the text (never NULL; "" for an empty value) */
    bool quoted;            /* SCALAR: written in quotes (so "42" is a string, not a number) */
    struct pq_ynode *keys;  /* MAP: n scalar keys */
    struct pq_ynode *items; /* SEQ: n items; MAP: n values, items[i] belongs to keys[i] */
    uint32_t n;
} pq_ynode;

/* Child of map m under key, NULL when absent or when m is not a map. */
const pq_ynode *pq_ynode_get(const pq_ynode *m, const char *key);

/* One pass instance. opts has one value per schema option (defaults applied). line/col: where
 * the entry was written (1-based; 0 for entries built in code). */
typedef struct pq_pipeline_entry {
    const pq_pass *pass;
    pq_pass_opts opts;
    uint32_t line, col;
} pq_pipeline_entry;

typedef struct pq_pipeline {
    char *text;   /* the YAML source (NUL-terminated copy), NULL for pipelines built in code */
    char *source; /* file name, preset name or "<code>": the FILE of error messages */
    pq_pipeline_entry *entries;
    uint32_t n;
    /* The optional top-level `train:` mapping, kept verbatim as a parsed generic tree for the
     * training engine (not validated here beyond being a mapping); NULL when absent. */
    pq_ynode *train;
} pq_pipeline;

/* Parses a pipeline from YAML text (len bytes, need not be NUL-terminated). The document must be
 * a mapping with `passes:` (a sequence whose items are a pass name, `name:` followed by a mapping
 * of options (block or flow style), or `name:` with nothing) and optionally `train:` (a mapping).
 * Options are checked against the pass schema and missing ones take the schema default.
 * source_name names the text in messages (NULL: "pipeline"). On success *out is a new pipeline
 * (pq_pipeline_destroy it); on failure *out is NULL and:
 *   INVALID  with "SOURCE:LINE:COLUMN: ..." naming the problem and the accepted values: YAML
 *            syntax error, empty document, more than one document, a tab character, anchors or
 *            aliases, nesting deeper than PQ_PIPELINE_MAX_DEPTH, text above PQ_PIPELINE_MAX_TEXT,
 *            duplicate key in any mapping, unknown or missing top-level key, unknown pass,
 *            unknown option, wrong type, value out of range or not one of the choices;
 *   NOMEM    on allocation failure. */
enum pq_status pq_pipeline_parse(const char *text, size_t len, const char *source_name,
                                 pq_pipeline **out, pq_error *err);

/* Same against an explicit pass table instead of the registry (tests use passes of their own). */
enum pq_status pq_pipeline_parse_with(const pq_pass *const *passes, uint32_t n_passes,
                                      const char *text, size_t len, const char *source_name,
                                      pq_pipeline **out, pq_error *err);

/* Loads a pipeline file, or a built-in preset: a name without '/' and without a ".yaml"/".yml"
 * suffix that is not an existing file is looked up among the presets (source = preset name).
 * Returns what pq_pipeline_parse returns, and IO when the file cannot be read (message names the
 * file), INVALID when it is larger than PQ_PIPELINE_MAX_TEXT, USAGE for an unknown preset name
 * (message lists the presets). */
enum pq_status pq_pipeline_load(const char *path_or_preset, pq_pipeline **out, pq_error *err);

/* A pipeline of the registered passes names[0..n) with default options (text NULL, source
 * "<code>"). INVALID for an unknown name (message lists the passes); NOMEM. */
enum pq_status pq_pipeline_from_passes(const char *const *names, uint32_t n, pq_pipeline **out,
                                       pq_error *err);

/* Sets option `name` of entry `entry` from YAML value text ("piq2", "42", "[MatMul, Conv]"),
 * validated as in a pipeline file. On failure the entry is unchanged and the status is INVALID
 * (unknown option, wrong type, range, choices; the message names the accepted values), USAGE for
 * an entry index out of range, or NOMEM. */
enum pq_status pq_pipeline_set_option(pq_pipeline *p, uint32_t entry, const char *name,
                                      const char *value, pq_error *err);

/* Frees p and everything it owns. NULL allowed. */
void pq_pipeline_destroy(pq_pipeline *p);

/* Writes p as a YAML pipeline with every option value (defaults included); parsing the output
 * gives the same pipeline (train: is written back too). IO on a write error. */
enum pq_status pq_pipeline_print(FILE *f, const pq_pipeline *p, pq_error *err);

/* ---- Built-in presets (examples/pipelines/<name>.yaml, embedded at build time) -------------- */

typedef struct pq_pipeline_preset {
    const char *name; /* file name without ".yaml": "fp32", "ptq-piq3", ... */
    const char *text; /* NUL-terminated YAML */
    size_t len;
} pq_pipeline_preset;

/* All presets in name order; *n receives the count. Static storage. */
const pq_pipeline_preset *pq_pipeline_presets(uint32_t *n);
/* Preset by name, NULL when unknown. */
const pq_pipeline_preset *pq_pipeline_preset_find(const char *name);

#endif
