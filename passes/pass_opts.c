/* Typed getters of pass options (pq_opts_*): a pass reads its validated, default-filled options
 * by name; asking for a name or type the schema lacks is a bug in the pass (assert). */
#include <assert.h>
#include <string.h>

#include "pass.h"

/* The value of option name when its schema type is one of the accepted ones, else NULL. */
static const pq_opt_value *pq_opts_get(const pq_pass_opts *o, const char *name, int t1, int t2) {
    if (!o || !name) return NULL;
    for (uint32_t i = 0; i < o->n; i++) {
        const pq_opt_value *v = &o->v[i];
        if (!v->schema || strcmp(v->schema->name, name) != 0) continue;
        int t = (int)v->schema->type;
        assert((t == t1 || t == t2) && "pass option read with the wrong type");
        return (t == t1 || t == t2) ? v : NULL;
    }
    assert(0 && "pass option not in the pass schema");
    return NULL;
}

bool pq_opts_is_set(const pq_pass_opts *o, const char *name) {
    if (!o || !name) return false;
    for (uint32_t i = 0; i < o->n; i++)
        if (o->v[i].schema && strcmp(o->v[i].schema->name, name) == 0) return o->v[i].set;
    assert(0 && "pass option not in the pass schema");
    return false;
}

bool pq_opts_bool(const pq_pass_opts *o, const char *name) {
    const pq_opt_value *v = pq_opts_get(o, name, PQ_OPT_BOOL, PQ_OPT_BOOL);
    return v && v->set ? v->b : false;
}

int64_t pq_opts_int(const pq_pass_opts *o, const char *name) {
    const pq_opt_value *v = pq_opts_get(o, name, PQ_OPT_INT, PQ_OPT_INT);
    return v && v->set ? v->i : 0;
}

double pq_opts_float(const pq_pass_opts *o, const char *name) {
    const pq_opt_value *v = pq_opts_get(o, name, PQ_OPT_FLOAT, PQ_OPT_INT);
    return v && v->set ? v->f : 0.0;
}

const char *pq_opts_string(const pq_pass_opts *o, const char *name) {
    const pq_opt_value *v = pq_opts_get(o, name, PQ_OPT_STRING, PQ_OPT_ENUM);
    return v && v->set ? v->s : NULL;
}

const char *const *pq_opts_list(const pq_pass_opts *o, const char *name, uint32_t *n) {
    const pq_opt_value *v = pq_opts_get(o, name, PQ_OPT_STRING_LIST, PQ_OPT_ENUM_LIST);
    if (n) *n = v && v->set ? v->n_list : 0;
    return v && v->set ? (const char *const *)v->list : NULL;
}
