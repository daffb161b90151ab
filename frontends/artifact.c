/* The piqc artifact on top of the GGUF layer: graph text + constants + packed weights + provenance
 * in, verified graph with re-attached constants and a list of packed weights out. */
#include "artifact.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf_internal.h"
#include "ir/alloc.h"
#include "ir/text.h"

#ifndef PIQC_VERSION
#define PIQC_VERSION "unknown"
#endif

/* ---- names ---- */

/* Tensor name of a value: itself when it fits and is not reserved, else prefix~hash. */
static void pq_artifact_name(const char *name, char out[64]) {
    bool reserved = strcmp(name, "config") == 0 || strncmp(name, "piqc.bin.", 9) == 0;
    if (!reserved) {
        pq_gguf_short_name(name, out);
        return;
    }
    char hex[65];
    if (pq_gguf_sha256_hex(name, strlen(name), hex, NULL) != PQ_OK) memset(hex, '0', 65);
    snprintf(out, 64, "%.46s~%.16s", name, hex);
}

/* Original value name of tensor gname (piqc.name.<gname>, else gname itself). */
static const char *pq_original_name(const pq_gguf *gg, const char *gname) {
    char key[96];
    snprintf(key, sizeof key, "piqc.name.%s", gname);
    const pq_gguf_kv *kv = pq_gguf_find(gg, key);
    return kv && kv->v.type == PQ_GGUF_STRING ? kv->v.u.str.s : gname;
}

static bool pq_is_packed_type(uint32_t t) {
    return t == PQ_GGUF_T_PIQ3 || t == PQ_GGUF_T_PIQ2;
}

/* A packed weight whose graph constant is u8 holds the packed bytes itself (a compiled graph);
 * the quantizer only ever replaces float constants. */
static bool pq_artifact_in_graph(const pq_tensor *c) {
    return c->dtype == PQ_DTYPE_U8;
}

/* ---- writing ---- */

/* A sidecar range named in the graph text ("bin OFF+LEN}") and the text position of ", bin". */
typedef struct pq_region {
    uint64_t off, len;
    size_t pos;
    bool packed; /* provided by a packed weight: bytes not stored */
} pq_region;

static bool pq_parse_u64(const char *s, size_t *i, uint64_t *out) {
    uint64_t v = 0;
    size_t j = *i;
    if (s[j] < '0' || s[j] > '9') return false;
    while (s[j] >= '0' && s[j] <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(s[j] - '0');
        j++;
    }
    *i = j;
    *out = v;
    return true;
}

/* Finds every ", bin OFF+LEN}" in text whose range lies inside the sidecar (a lookalike inside a
 * string literal only adds a harmless extra region holding identical bytes). */
static enum pq_status pq_find_regions(const char *text, size_t bin_size, pq_region **out,
                                      size_t *n_out, pq_error *err) {
    size_t n = 0, cap = 0;
    pq_region *r = NULL;
    for (const char *p = strstr(text, ", bin "); p; p = strstr(p + 1, ", bin ")) {
        size_t i = (size_t)(p - text) + 6;
        uint64_t off, len;
        if (!pq_parse_u64(text, &i, &off) || text[i] != '+') continue;
        i++;
        if (!pq_parse_u64(text, &i, &len) || text[i] != '}') continue;
        if (off > bin_size || len > bin_size - off) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            pq_region *nr = pq_realloc(r, nc * sizeof *nr);
            if (!nr) {
                pq_free(r);
                return pq_error_nomem(err, "artifact regions");
            }
            r = nr;
            cap = nc;
        }
        memset(&r[n], 0, sizeof r[n]);
        r[n].off = off;
        r[n].len = len;
        r[n].pos = (size_t)(p - text);
        n++;
    }
    *out = r;
    *n_out = n;
    return PQ_OK;
}

/* Value id -> index in packed[] (or -1); checks every packed entry. */
static enum pq_status pq_check_packed(const pq_graph *g, const pq_artifact_tensor *packed,
                                      uint32_t n_packed, int64_t *packed_of, pq_error *err) {
    for (uint32_t v = 0; v < g->n_values; v++)
        packed_of[v] = -1;
    for (uint32_t i = 0; i < n_packed; i++) {
        const pq_artifact_tensor *p = &packed[i];
        const char *nm = p->name ? p->name : "";
        uint32_t vid = pq_graph_find_value(g, nm);
        if (vid == PQ_NONE || !g->values[vid].constant)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "packed tensor '%s': no constant of that name in the graph", nm);
        if (packed_of[vid] >= 0)
            return pq_error_set(err, PQ_ERR_INVALID, "packed tensor '%s': listed twice", nm);
        if ((unsigned)p->fmt >= PQ_QFORMAT_COUNT)
            return pq_error_set(err, PQ_ERR_INVALID, "packed tensor '%s': unknown format %d", nm,
                                (int)p->fmt);
        if (p->group <= 0 || p->group % 8 != 0 || p->group > (int64_t)UINT32_MAX)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "packed tensor '%s': group %lld is not a positive multiple of 8 "
                                "that fits u32",
                                nm, (long long)p->group);
        size_t want = pq_packed_bytes(p->fmt, p->rows, p->cols, p->group);
        const pq_tensor *c = g->values[vid].constant;
        bool in_graph = pq_artifact_in_graph(c);
        size_t have = p->size;
        const void *bytes = p->data;
        if (in_graph) {
            /* a compiled graph: the u8 constant [nbytes] holds the packed bytes; p->data is NULL
             * or the same bytes */
            bool fits = c->rank == 1 && c->dims[0] >= 0 && c->nbytes >= (size_t)c->dims[0] &&
                        (c->dims[0] == 0 || c->data);
            have = fits ? (size_t)c->dims[0] : 0;
            if (p->data && (p->size != have ||
                            (p->data != c->data && have && memcmp(p->data, c->data, have) != 0)))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "packed tensor '%s': data differ from the u8 constant that "
                                    "holds them in the graph",
                                    nm);
            bytes = c->data;
        }
        if (want == 0 || have != want || !bytes)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "packed tensor '%s': %zu bytes%s, but %s %lldx%lld with G=%lld "
                                "needs %zu",
                                nm, have, in_graph ? " (u8 constant in the graph)" : "",
                                pq_qformat_name(p->fmt), (long long)p->rows, (long long)p->cols,
                                (long long)p->group, want);
        if (p->onnx_rank < 0 || p->onnx_rank > PQ_MAX_RANK || (p->onnx_rank && !p->onnx_dims))
            return pq_error_set(err, PQ_ERR_INVALID, "packed tensor '%s': bad ONNX rank %d", nm,
                                p->onnx_rank);
        int64_t numel = 1;
        bool same = p->onnx_rank == c->rank;
        for (int d = 0; d < p->onnx_rank; d++) {
            if (p->onnx_dims[d] < 0 || p->onnx_dims[d] > PQ_MAX_NUMEL)
                return pq_error_set(err, PQ_ERR_INVALID, "packed tensor '%s': bad ONNX dim", nm);
            numel *= p->onnx_dims[d];
            if (numel > PQ_MAX_NUMEL)
                return pq_error_set(err, PQ_ERR_INVALID, "packed tensor '%s': ONNX dims overflow",
                                    nm);
            if (same && p->onnx_dims[d] != c->dims[d]) same = false;
        }
        if ((!same && !in_graph) || numel != p->rows * p->cols)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "packed tensor '%s': ONNX shape does not match the constant or "
                                "rows x cols (%lldx%lld)",
                                nm, (long long)p->rows, (long long)p->cols);
        packed_of[vid] = i;
    }
    return PQ_OK;
}

static enum pq_status pq_set_name_key(pq_gguf *gg, const char *gname, const char *name,
                                      pq_error *err) {
    if (strcmp(gname, name) == 0) return PQ_OK;
    char key[96];
    snprintf(key, sizeof key, "piqc.name.%s", gname);
    return pq_gguf_set_string(gg, key, name, err);
}

/* Adds every top-level constant (dense or packed) as a tensor of gg. */
static enum pq_status pq_add_constants(pq_gguf *gg, const pq_graph *g,
                                       const pq_artifact_tensor *packed, const int64_t *packed_of,
                                       pq_error *err) {
    for (uint32_t v = 0; v < g->n_values; v++) {
        const pq_value *val = &g->values[v];
        const pq_tensor *c = val->constant;
        if (!c) continue;
        char gname[64], key[96];
        pq_artifact_name(val->name, gname);
        enum pq_status st;
        if (packed_of[v] >= 0) {
            const pq_artifact_tensor *p = &packed[packed_of[v]];
            int64_t dims[2] = {p->cols, p->rows};
            bool three = p->fmt == PQ_QFORMAT_PIQ3 || p->fmt == PQ_QFORMAT_Q3;
            snprintf(key, sizeof key, "piqc.k.%s", gname);
            PQ_TRY(pq_gguf_set_u32(gg, key, (uint32_t)pq_qformat_k(p->fmt), err));
            snprintf(key, sizeof key, "piqc.group.%s", gname);
            PQ_TRY(pq_gguf_set_u32(gg, key, (uint32_t)p->group, err));
            snprintf(key, sizeof key, "piqc.shape.%s", gname);
            PQ_TRY(
                pq_gguf_set_array(gg, key, PQ_GGUF_I64, p->onnx_dims, (uint64_t)p->onnx_rank, err));
            bool in_graph = pq_artifact_in_graph(c);
            st = pq_gguf_add_tensor(gg, gname, 2, dims, three ? PQ_GGUF_T_PIQ3 : PQ_GGUF_T_PIQ2,
                                    in_graph ? c->data : p->data,
                                    in_graph ? (size_t)c->dims[0] : p->size, err);
        } else {
            uint32_t type;
            if (!pq_gguf_ttype_for_dtype(c->dtype, &type))
                return pq_error_set(err, PQ_ERR_INVALID, "constant '%s': dtype %s cannot be stored",
                                    val->name, pq_dtype_name(c->dtype));
            int64_t numel;
            PQ_TRY(pq_shape_numel(c->rank, c->dims, &numel, err));
            size_t nbytes = (size_t)numel * pq_dtype_size(c->dtype);
            if (c->nbytes < nbytes || (nbytes && !c->data))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "constant '%s': holds %zu bytes, needs %zu", val->name,
                                    c->nbytes, nbytes);
            int64_t dims[PQ_MAX_RANK] = {1};
            for (int d = 0; d < c->rank; d++)
                dims[d] = c->dims[c->rank - 1 - d];
            uint32_t nd = c->rank ? (uint32_t)c->rank : 1;
            if (pq_gguf_ttype_dtype(type) != c->dtype) {
                snprintf(key, sizeof key, "piqc.dtype.%s", gname);
                PQ_TRY(pq_gguf_set_string(gg, key, pq_dtype_name(c->dtype), err));
            }
            st = pq_gguf_add_tensor(gg, gname, nd, dims, type, c->data, nbytes, err);
        }
        if (st != PQ_OK) return pq_error_prefix(err, "constant '%s': ", val->name);
        PQ_TRY(pq_set_name_key(gg, gname, val->name, err));
    }
    return PQ_OK;
}

/* Bytes a tensor of gg contributes to the sidecar: its own data, or for a packed weight the
 * original constant's data (g is the graph being written). */
static void pq_region_source(const pq_gguf *gg, const pq_graph *g, const pq_gguf_tensor *t,
                             const void **data, size_t *size) {
    *data = t->data;
    *size = t->size;
    if (!pq_is_packed_type(t->type)) return;
    uint32_t vid = pq_graph_find_value(g, pq_original_name(gg, t->name));
    const pq_tensor *c = vid == PQ_NONE ? NULL : g->values[vid].constant;
    *data = c ? c->data : NULL;
    *size = c ? c->nbytes : 0;
}

/* Assigns a provider tensor to every sidecar region (by content: length and SHA-256; dense
 * tensors first), adds I8 tensors "piqc.bin.<offset>" for regions no top-level constant provides
 * (constants of subgraphs and tensor attributes), and records the piqc.graph.bin_* keys. Regions
 * provided by a packed weight are flagged: their bytes are not stored. */
static enum pq_status pq_map_regions(pq_gguf *gg, const pq_graph *g, const pq_text_bin *bin,
                                     pq_region *r, size_t nr, pq_error *err) {
    enum pq_status st = PQ_OK;
    uint64_t nt = gg->n_tensors; /* the constants: added before this runs */
    char(*keys)[96] = pq_calloc(nt ? (size_t)nt : 1, sizeof *keys);
    pq_gguf_map *idx = pq_gguf_map_create(nt);
    uint64_t *offs = pq_calloc(nr ? nr : 1, sizeof *offs);
    uint64_t *lens = pq_calloc(nr ? nr : 1, sizeof *lens);
    const char **names = pq_calloc(nr ? nr : 1, sizeof *names);
    char(*extra)[64] = pq_calloc(nr ? nr : 1, sizeof *extra);
    if (!keys || !idx || !offs || !lens || !names || !extra) {
        st = pq_error_nomem(err, "artifact regions");
        goto done;
    }
    for (int pass = 0; pass < 2 && st == PQ_OK; pass++) {
        for (uint64_t t = 0; t < nt && st == PQ_OK; t++) {
            const pq_gguf_tensor *ti = &gg->tensors[t];
            if (pq_is_packed_type(ti->type) != (pass == 1)) continue;
            const void *data;
            size_t size;
            pq_region_source(gg, g, ti, &data, &size);
            bool wanted = false;
            for (size_t i = 0; i < nr && !wanted; i++)
                wanted = r[i].len == size;
            if (!wanted || (size && !data)) continue;
            char hex[65];
            st = pq_gguf_sha256_hex(data, size, hex, err);
            if (st != PQ_OK) break;
            snprintf(keys[t], sizeof keys[t], "%zu:%s", size, hex);
            if (pq_gguf_map_get(idx, keys[t]) == UINT64_MAX && !pq_gguf_map_put(idx, keys[t], t))
                st = pq_error_nomem(err, "artifact regions");
        }
    }
    for (size_t i = 0; i < nr && st == PQ_OK; i++) {
        char rh[65], k[96];
        st = pq_gguf_sha256_hex(bin->data + r[i].off, (size_t)r[i].len, rh, err);
        if (st != PQ_OK) break;
        snprintf(k, sizeof k, "%llu:%s", (unsigned long long)r[i].len, rh);
        uint64_t t = pq_gguf_map_get(idx, k);
        offs[i] = r[i].off;
        lens[i] = r[i].len;
        if (t != UINT64_MAX) {
            r[i].packed = pq_is_packed_type(gg->tensors[t].type);
            names[i] = gg->tensors[t].name;
            continue;
        }
        snprintf(extra[i], sizeof extra[i], "piqc.bin.%llu", (unsigned long long)r[i].off);
        names[i] = extra[i];
        if (pq_gguf_find_tensor(gg, extra[i])) continue; /* same range listed twice */
        int64_t dims[1] = {(int64_t)r[i].len};
        st = pq_gguf_add_tensor(gg, extra[i], 1, dims, PQ_GGUF_T_I8, bin->data + r[i].off,
                                (size_t)r[i].len, err);
    }
    if (st == PQ_OK) st = pq_gguf_set_u64(gg, "piqc.graph.bin_size", bin->size, err);
    if (st == PQ_OK)
        st = pq_gguf_set_array(gg, "piqc.graph.bin_offsets", PQ_GGUF_U64, offs, nr, err);
    if (st == PQ_OK)
        st = pq_gguf_set_array(gg, "piqc.graph.bin_lengths", PQ_GGUF_U64, lens, nr, err);
    if (st == PQ_OK)
        st = pq_gguf_set_array(gg, "piqc.graph.bin_tensors", PQ_GGUF_STRING, names, nr, err);
done:
    pq_gguf_map_destroy(idx);
    pq_free(keys);
    pq_free(offs);
    pq_free(lens);
    pq_free(names);
    pq_free(extra);
    return st;
}

/* The graph text with the SHA-256 prefix removed from the summaries of packed regions (their
 * bytes are rebuilt by dequantization, not stored, so the prefix could not be checked). */
static enum pq_status pq_strip_packed_sha(const char *text, const pq_region *r, size_t nr,
                                          char **out, pq_error *err) {
    size_t len = strlen(text);
    char *o = pq_malloc(len + 1);
    if (!o) return pq_error_nomem(err, "artifact graph text");
    size_t from = 0, w = 0;
    for (size_t i = 0; i < nr; i++) {
        if (!r[i].packed) continue;
        /* "..., sha256 0123456789ab, bin OFF+LEN}": drop "sha256 0123456789ab, " */
        size_t p = r[i].pos;
        if (p < 19 || p - 19 < from || strncmp(text + p - 19, "sha256 ", 7) != 0) continue;
        memcpy(o + w, text + from, p - 19 - from);
        w += p - 19 - from;
        from = p + 2;
    }
    memcpy(o + w, text + from, len - from);
    w += len - from;
    o[w] = '\0';
    *out = o;
    return PQ_OK;
}

static enum pq_status pq_timestamp(const pq_provenance *prov, char buf[32], pq_error *err) {
    if (prov->timestamp) {
        snprintf(buf, 32, "%s", prov->timestamp);
        return PQ_OK;
    }
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        long long v = strtoll(sde, &end, 10);
        if (errno || *end || v < 0 || v > 253402300799LL)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "SOURCE_DATE_EPOCH '%s' is not a number of seconds since 1970",
                                sde);
        t = (time_t)v;
    }
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return pq_error_set(err, PQ_ERR_INTERNAL, "cannot format the timestamp");
    return PQ_OK;
}

enum pq_status pq_artifact_write(const pq_graph *g, const char *pipeline_text,
                                 const pq_artifact_tensor *packed, uint32_t n_packed,
                                 const pq_provenance *prov, const char *path, pq_error *err) {
    enum pq_status st;
    pq_text_bin bin = {0};
    char *text = NULL, *stripped = NULL;
    pq_region *regions = NULL;
    size_t nr = 0;
    pq_gguf *gg = pq_gguf_create(err);
    int64_t *packed_of = pq_calloc(g->n_values ? g->n_values : 1, sizeof *packed_of);
    if (!gg || !packed_of) {
        st = pq_error_nomem(err, "artifact");
        goto fail;
    }
    PQ_TRY_GOTO(st, pq_check_packed(g, packed, n_packed, packed_of, err), fail);
    PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "general.architecture", "piqc", err), fail);
    PQ_TRY_GOTO(st, pq_gguf_set_u32(gg, "piqc.format_version", PQ_ARTIFACT_FORMAT_VERSION, err),
                fail);
    PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "piqc.version", PIQC_VERSION, err), fail);
    st = pq_text_print_string(g, &bin, &text, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "piqc.graph: ");
        goto fail;
    }
    PQ_TRY_GOTO(st, pq_add_constants(gg, g, packed, packed_of, err), fail);
    PQ_TRY_GOTO(st, pq_find_regions(text, bin.size, &regions, &nr, err), fail);
    PQ_TRY_GOTO(st, pq_map_regions(gg, g, &bin, regions, nr, err), fail);
    PQ_TRY_GOTO(st, pq_strip_packed_sha(text, regions, nr, &stripped, err), fail);
    PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "piqc.graph", stripped, err), fail);
    PQ_TRY_GOTO(
        st, pq_gguf_set_string(gg, "piqc.pipeline", pipeline_text ? pipeline_text : "", err), fail);
    if (prov) {
        char ts[32];
        PQ_TRY_GOTO(st, pq_timestamp(prov, ts, err), fail);
        if (prov->calib_sha256)
            PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "piqc.calib.sha256", prov->calib_sha256, err),
                        fail);
        PQ_TRY_GOTO(st, pq_gguf_set_u64(gg, "piqc.calib.samples", prov->calib_samples, err), fail);
        if (prov->calib_method)
            PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "piqc.calib.method", prov->calib_method, err),
                        fail);
        PQ_TRY_GOTO(st, pq_gguf_set_string(gg, "piqc.calib.timestamp", ts, err), fail);
    }
    st = pq_gguf_write(gg, path, err); /* its messages name the file already */
    goto out;
fail:
    pq_error_prefix(err, "artifact '%s': ", path);
out:
    pq_free(packed_of);
    pq_free(regions);
    pq_free(text);
    pq_free(stripped);
    pq_text_bin_free(&bin);
    pq_gguf_destroy(gg);
    return st;
}

/* ---- reading ---- */

void pq_artifact_destroy(pq_artifact *a) {
    if (!a) return;
    pq_graph_destroy(a->graph);
    pq_free(a->packed);
    pq_gguf_destroy(a->gguf);
    pq_free(a);
}

static enum pq_status pq_get_typed_array(const pq_gguf *gg, const char *key, enum pq_gguf_type want,
                                         const void **data, uint64_t *n, pq_error *err) {
    enum pq_gguf_type et;
    PQ_TRY(pq_gguf_get_array(gg, key, &et, n, data, err));
    if (et != want)
        return pq_error_set(err, PQ_ERR_INVALID, "key '%s': array of %s, expected %s", key,
                            pq_gguf_type_name(et), pq_gguf_type_name(want));
    return PQ_OK;
}

/* Rebuilds the text's sidecar from the tensors named by piqc.graph.bin_* (packed regions are
 * left zero). *out is pq_free'd by the caller. */
static enum pq_status pq_rebuild_bin(const pq_gguf *gg, unsigned char **out, size_t *out_len,
                                     pq_error *err) {
    uint64_t size, n_off, n_len, n_names;
    const uint64_t *offs, *lens;
    const pq_gguf_str *names;
    PQ_TRY(pq_gguf_get_u64(gg, "piqc.graph.bin_size", &size, err));
    PQ_TRY(pq_get_typed_array(gg, "piqc.graph.bin_offsets", PQ_GGUF_U64, (const void **)&offs,
                              &n_off, err));
    PQ_TRY(pq_get_typed_array(gg, "piqc.graph.bin_lengths", PQ_GGUF_U64, (const void **)&lens,
                              &n_len, err));
    PQ_TRY(pq_get_typed_array(gg, "piqc.graph.bin_tensors", PQ_GGUF_STRING, (const void **)&names,
                              &n_names, err));
    if (n_off != n_len || n_off != n_names)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "piqc.graph.bin_offsets/lengths/tensors have different lengths");
    uint64_t max_end = 0, total = 0, packed_total = 0;
    for (uint64_t i = 0; i < n_off; i++) {
        const pq_gguf_tensor *t = pq_gguf_find_tensor(gg, names[i].s);
        if (!t)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "piqc.graph.bin_tensors[%llu]: no tensor '%.80s'",
                                (unsigned long long)i, names[i].s);
        if (offs[i] > size || lens[i] > size - offs[i])
            return pq_error_set(
                err, PQ_ERR_INVALID, "piqc.graph.bin region %llu+%llu lies outside bin_size %llu",
                (unsigned long long)offs[i], (unsigned long long)lens[i], (unsigned long long)size);
        if (pq_is_packed_type(t->type)) {
            enum pq_qformat f;
            int64_t rows, cols, group;
            PQ_TRY(pq_gguf_packed_info(gg, t, &f, &rows, &cols, &group, err));
            if (lens[i] > (uint64_t)(rows * cols) * 8)
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "tensor '%s': sidecar region of %llu bytes is larger than "
                                    "its %lldx%lld weights",
                                    t->name, (unsigned long long)lens[i], (long long)rows,
                                    (long long)cols);
            packed_total += lens[i];
        } else if (t->size != lens[i]) {
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s': %zu bytes, but its sidecar region has %llu", t->name,
                                t->size, (unsigned long long)lens[i]);
        }
        if (offs[i] + lens[i] > max_end) max_end = offs[i] + lens[i];
        total += lens[i] + 64;
    }
    if (size != max_end || size > total ||
        packed_total > (uint64_t)gg->image_len * 64 + ((uint64_t)1 << 20))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "piqc.graph.bin_size %llu does not match its regions",
                            (unsigned long long)size);
    unsigned char *b = pq_calloc(size ? (size_t)size : 1, 1);
    if (!b) return pq_error_nomem(err, "artifact graph sidecar");
    for (uint64_t i = 0; i < n_off; i++) {
        const pq_gguf_tensor *t = pq_gguf_find_tensor(gg, names[i].s);
        if (!pq_is_packed_type(t->type) && lens[i]) memcpy(b + offs[i], t->data, (size_t)lens[i]);
    }
    *out = b;
    *out_len = (size_t)size;
    return PQ_OK;
}

/* Copies a dense tensor into the constant it stores, after checking dtype and shape. */
static enum pq_status pq_attach_dense(const pq_gguf *gg, const pq_gguf_tensor *t, pq_tensor *c,
                                      const char *orig, pq_error *err) {
    uint32_t type;
    if (!pq_gguf_ttype_for_dtype(c->dtype, &type) || type != t->type)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': type %s does not store the %s constant '%s'", t->name,
                            pq_gguf_ttype_name(t->type), pq_dtype_name(c->dtype), orig);
    char key[96];
    snprintf(key, sizeof key, "piqc.dtype.%s", t->name);
    const pq_gguf_kv *dk = pq_gguf_find(gg, key);
    bool need = pq_gguf_ttype_dtype(type) != c->dtype;
    if ((need && !dk) || (dk && (dk->v.type != PQ_GGUF_STRING ||
                                 strcmp(dk->v.u.str.s, pq_dtype_name(c->dtype)) != 0)))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': key '%s' does not say %s like the graph", t->name, key,
                            pq_dtype_name(c->dtype));
    bool same = c->rank == 0 ? (t->n_dims == 1 && t->dims[0] == 1) : t->n_dims == (uint32_t)c->rank;
    for (int d = 0; same && d < c->rank; d++)
        same = t->dims[d] == c->dims[c->rank - 1 - d];
    if (!same)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': shape does not match constant '%s' in piqc.graph",
                            t->name, orig);
    int64_t numel;
    PQ_TRY(pq_shape_numel(c->rank, c->dims, &numel, err));
    size_t nbytes = (size_t)numel * pq_dtype_size(c->dtype);
    if (t->size != nbytes || c->nbytes < nbytes || (nbytes && !c->data))
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': %zu bytes, constant needs %zu",
                            t->name, t->size, nbytes);
    if (nbytes) memcpy(c->data, t->data, nbytes);
    return PQ_OK;
}

static enum pq_status pq_attach_packed(const pq_gguf *gg, const pq_gguf_tensor *t, pq_tensor *c,
                                       const char *orig, uint32_t vid, pq_artifact_packed *p,
                                       pq_error *err) {
    memset(p, 0, sizeof *p);
    PQ_TRY(pq_gguf_packed_info(gg, t, &p->fmt, &p->rows, &p->cols, &p->group, err));
    char key[96];
    snprintf(key, sizeof key, "piqc.shape.%s", t->name);
    const int64_t *dims;
    uint64_t n;
    PQ_TRY(pq_get_typed_array(gg, key, PQ_GGUF_I64, (const void **)&dims, &n, err));
    if (n > PQ_MAX_RANK)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': key '%s' has %llu dims (max %d)",
                            t->name, key, (unsigned long long)n, PQ_MAX_RANK);
    int64_t numel;
    if (pq_artifact_in_graph(c)) {
        /* the u8 constant [nbytes] of a compiled graph: its data are the packed bytes */
        numel = 1;
        for (uint64_t d = 0; d < n && numel >= 0; d++)
            numel =
                dims[d] < 0 || (dims[d] && numel > PQ_MAX_NUMEL / dims[d]) ? -1 : numel * dims[d];
        if (c->rank != 1 || c->dims[0] < 0 || (size_t)c->dims[0] != t->size ||
            c->nbytes < t->size || (t->size && !c->data) || numel != p->rows * p->cols ||
            t->n_dims != 2)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s': %zu packed bytes (%lldx%lld weights) and key '%s' "
                                "do not match the u8 constant '%s' in piqc.graph",
                                t->name, t->size, (long long)p->rows, (long long)p->cols, key,
                                orig);
        if (t->size) memcpy(c->data, t->data, t->size);
        p->in_graph_packed = true;
    } else {
        bool same = n == (uint64_t)c->rank;
        for (uint64_t d = 0; same && d < n; d++)
            same = dims[d] == c->dims[d];
        if (!same || pq_shape_numel(c->rank, c->dims, &numel, NULL) != PQ_OK ||
            numel != p->rows * p->cols || t->n_dims != 2)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s': %lldx%lld packed weights and key '%s' do not match "
                                "constant '%s' in piqc.graph",
                                t->name, (long long)p->rows, (long long)p->cols, key, orig);
    }
    for (uint64_t d = 0; d < n; d++)
        p->onnx_dims[d] = dims[d];
    p->onnx_rank = (int)n;
    p->name = orig;
    p->gguf_name = t->name;
    p->value = vid;
    p->data = t->data;
    p->size = t->size;
    return PQ_OK;
}

static enum pq_status pq_artifact_load(pq_artifact *a, pq_error *err) {
    const pq_gguf *gg = a->gguf;
    if (!pq_gguf_is_piqc(gg))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "not a piqc artifact (general.architecture is not \"piqc\")");
    uint32_t fv;
    PQ_TRY(pq_gguf_get_u32(gg, "piqc.format_version", &fv, err));
    if (fv > PQ_ARTIFACT_FORMAT_VERSION)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "format version %u is newer than this piqc reads (%u)", fv,
                            PQ_ARTIFACT_FORMAT_VERSION);
    if (fv != PQ_ARTIFACT_FORMAT_VERSION)
        return pq_error_set(err, PQ_ERR_INVALID, "format version %u is not valid", fv);
    const char *text;
    uint64_t tlen;
    PQ_TRY(pq_gguf_get_string(gg, "piqc.graph", &text, &tlen, err));
    a->pipeline = "";
    if (pq_gguf_find(gg, "piqc.pipeline"))
        PQ_TRY(pq_gguf_get_string(gg, "piqc.pipeline", &a->pipeline, NULL, err));
    if (pq_gguf_get_string(gg, "piqc.version", &a->version, NULL, NULL) != PQ_OK) a->version = NULL;
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    PQ_TRY(pq_rebuild_bin(gg, &bin, &bin_len, err));
    enum pq_status st = pq_text_parse(text, (size_t)tlen, bin, bin_len, &a->graph, err);
    pq_free(bin);
    if (st != PQ_OK) return pq_error_prefix(err, "piqc.graph: ");
    pq_graph *g = a->graph;
    uint64_t n_packed = 0;
    for (uint64_t i = 0; i < gg->n_tensors; i++)
        n_packed += pq_is_packed_type(gg->tensors[i].type);
    a->packed = pq_calloc(n_packed ? (size_t)n_packed : 1, sizeof *a->packed);
    bool *covered = pq_calloc(g->n_values ? g->n_values : 1, sizeof *covered);
    if (!a->packed || !covered) {
        pq_free(covered);
        return pq_error_nomem(err, "artifact");
    }
    for (uint64_t i = 0; i < gg->n_tensors && st == PQ_OK; i++) {
        const pq_gguf_tensor *t = &gg->tensors[i];
        if (strncmp(t->name, "piqc.bin.", 9) == 0 && t->type == PQ_GGUF_T_I8) continue;
        const char *orig = pq_original_name(gg, t->name);
        uint32_t vid = pq_graph_find_value(g, orig);
        if (vid == PQ_NONE || !g->values[vid].constant) {
            st = pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': no constant '%s' in piqc.graph",
                              t->name, orig);
            break;
        }
        if (covered[vid]) {
            st = pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': constant '%s' stored twice",
                              t->name, orig);
            break;
        }
        covered[vid] = true;
        pq_tensor *c = g->values[vid].constant;
        if (pq_is_packed_type(t->type))
            st = pq_attach_packed(gg, t, c, orig, vid, &a->packed[a->n_packed++], err);
        else
            st = pq_attach_dense(gg, t, c, orig, err);
    }
    for (uint32_t v = 0; v < g->n_values && st == PQ_OK; v++) {
        if (g->values[v].constant && !covered[v])
            st = pq_error_set(err, PQ_ERR_INVALID, "constant '%s' of piqc.graph has no tensor",
                              g->values[v].name);
    }
    pq_free(covered);
    PQ_TRY(st);
    pq_provenance *pv = &a->provenance;
    a->has_provenance = pq_gguf_find(gg, "piqc.calib.timestamp") != NULL;
    if (pq_gguf_get_string(gg, "piqc.calib.sha256", &pv->calib_sha256, NULL, NULL) != PQ_OK)
        pv->calib_sha256 = NULL;
    if (pq_gguf_get_u64(gg, "piqc.calib.samples", &pv->calib_samples, NULL) != PQ_OK)
        pv->calib_samples = 0;
    if (pq_gguf_get_string(gg, "piqc.calib.method", &pv->calib_method, NULL, NULL) != PQ_OK)
        pv->calib_method = NULL;
    if (pq_gguf_get_string(gg, "piqc.calib.timestamp", &pv->timestamp, NULL, NULL) != PQ_OK)
        pv->timestamp = NULL;
    return PQ_OK;
}

enum pq_status pq_artifact_read(const char *path, pq_artifact **out, pq_error *err) {
    *out = NULL;
    pq_gguf *gg;
    PQ_TRY(pq_gguf_read(path, &gg, PQ_GGUF_VERIFY, err));
    pq_artifact *a = pq_calloc(1, sizeof *a);
    if (!a) {
        pq_gguf_destroy(gg);
        return pq_error_nomem(err, "artifact");
    }
    a->gguf = gg;
    enum pq_status st = pq_artifact_load(a, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "artifact '%s': ", path);
        pq_artifact_destroy(a);
        return st;
    }
    *out = a;
    return PQ_OK;
}
