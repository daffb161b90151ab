/* Test harness for one-node graphs of piqc's own ops and fused activations (tests/backends/
 * test_piqc_ops.c defines it; test_fused_act.c uses it): constant inputs, attributes, inference,
 * poisoned outputs and a chosen kernel entry (reference, fast dispatcher, or one ISA's table). */
#ifndef PQ_TEST_PIQC_HARNESS_H
#define PQ_TEST_PIQC_HARNESS_H

#include "backends/fast.h"
#include "ir/ir.h"

typedef struct pq_tp {
    pq_graph *g;
    uint32_t nid;
} pq_tp;

/* f32 tensor of dims with deterministic values in [-scale, scale) (seeded). */
pq_tensor *pq_tp_rand(int rank, const int64_t *dims, uint32_t seed, float scale);
/* Tensor of dtype and dims, zero-filled. */
pq_tensor *pq_tp_tensor(enum pq_dtype dt, int rank, const int64_t *dims);
/* One node "n0" of op whose inputs are constants cloned from in[] (NULL = omitted). */
pq_tp pq_tp_node(enum pq_op op, const pq_tensor *const *in, uint32_t n_in);
void pq_tp_int(pq_tp *t, const char *name, int64_t v);
void pq_tp_float(pq_tp *t, const char *name, float v);
void pq_tp_str(pq_tp *t, const char *name, const char *v);
void pq_tp_ints(pq_tp *t, const char *name, const int64_t *v, uint32_t n);
/* Infers the node, allocates output 0 poisoned with 0xFF and runs fn (pq_ref_run when NULL).
 * *out receives the output (caller destroys it), NULL on an inference failure. */
enum pq_status pq_tp_run(pq_tp *t, pq_kernel_fn fn, pq_tensor **out, pq_error *err);
void pq_tp_free(pq_tp *t);

#endif
