/* .npy reader and writer: the magic/version preamble, a small parser for the header's Python
 * dict literal (robust to spacing and key order, bounded against hostile input) and the raw data.
 */
#include "npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "ir/alloc.h"

static const unsigned char pq_npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* What the header says. */
typedef struct pq_npy_info {
    enum pq_dtype dtype;
    int rank;
    int64_t dims[PQ_MAX_RANK];
    size_t data_off; /* byte offset of the data */
    size_t nbytes;   /* byte size of the data */
} pq_npy_info;

static bool pq_host_little_endian(void) {
    uint16_t x = 1;
    unsigned char b;
    memcpy(&b, &x, 1);
    return b == 1;
}

/* ---- preamble: magic, version, header length ---- */

static enum pq_status pq_npy_preamble(const unsigned char *p, size_t avail, const char *what,
                                      size_t *hdr_start, size_t *hdr_len, pq_error *err) {
    if (avail < 10 || memcmp(p, pq_npy_magic, 6) != 0)
        return pq_error_set(err, PQ_ERR_INVALID, "npy: '%s': not a .npy file (bad magic)", what);
    unsigned major = p[6], minor = p[7];
    if (minor != 0 || major < 1 || major > 3)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "npy: '%s': format version %u.%u is not supported (1.0, 2.0, 3.0 are)",
                            what, major, minor);
    if (major == 1) {
        *hdr_len = (size_t)p[8] | (size_t)p[9] << 8;
        *hdr_start = 10;
    } else {
        if (avail < 12)
            return pq_error_set(err, PQ_ERR_INVALID, "npy: '%s': truncated header length", what);
        uint32_t l =
            (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
        if (l > PQ_NPY_MAX_HEADER)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "npy: '%s': header length %u exceeds the limit of %u bytes", what,
                                l, PQ_NPY_MAX_HEADER);
        *hdr_len = l;
        *hdr_start = 12;
    }
    return PQ_OK;
}

/* ---- header dict parser ---- */

typedef struct pq_npy_lex {
    const char *s;
    size_t n, i;
    const char *what;
    pq_error *err;
} pq_npy_lex;

static void pq_npy_skip_ws(pq_npy_lex *lx) {
    while (lx->i < lx->n && (lx->s[lx->i] == ' ' || lx->s[lx->i] == '\t' || lx->s[lx->i] == '\n' ||
                             lx->s[lx->i] == '\r'))
        lx->i++;
}

static enum pq_status pq_npy_bad(pq_npy_lex *lx, const char *expect) {
    char got[24];
    if (lx->i >= lx->n)
        snprintf(got, sizeof got, "end of header");
    else if (lx->s[lx->i] >= 0x20 && lx->s[lx->i] < 0x7f)
        snprintf(got, sizeof got, "'%c'", lx->s[lx->i]);
    else
        snprintf(got, sizeof got, "byte 0x%02x", (unsigned char)lx->s[lx->i]);
    return pq_error_set(lx->err, PQ_ERR_INVALID,
                        "npy: '%s': header offset %zu: expected %s, got %s", lx->what, lx->i,
                        expect, got);
}

static bool pq_npy_accept(pq_npy_lex *lx, char c) {
    pq_npy_skip_ws(lx);
    if (lx->i < lx->n && lx->s[lx->i] == c) {
        lx->i++;
        return true;
    }
    return false;
}

/* Python string literal ('...' or "...", no escapes) into buf. */
static enum pq_status pq_npy_string(pq_npy_lex *lx, char *buf, size_t cap) {
    pq_npy_skip_ws(lx);
    if (lx->i >= lx->n || (lx->s[lx->i] != '\'' && lx->s[lx->i] != '"'))
        return pq_npy_bad(lx, "a string");
    char q = lx->s[lx->i++];
    size_t k = 0;
    while (lx->i < lx->n && lx->s[lx->i] != q) {
        char c = lx->s[lx->i];
        if (c == '\\' || c == '\n') return pq_npy_bad(lx, "a plain string character");
        if (k + 1 < cap)
            buf[k++] = c;
        else
            return pq_error_set(lx->err, PQ_ERR_INVALID,
                                "npy: '%s': header offset %zu: string too long", lx->what, lx->i);
        lx->i++;
    }
    if (lx->i >= lx->n) return pq_npy_bad(lx, "a closing quote");
    lx->i++;
    buf[k] = '\0';
    return PQ_OK;
}

static bool pq_npy_word(pq_npy_lex *lx, const char *w) {
    pq_npy_skip_ws(lx);
    size_t l = strlen(w);
    if (lx->n - lx->i >= l && memcmp(lx->s + lx->i, w, l) == 0) {
        char next = lx->i + l < lx->n ? lx->s[lx->i + l] : ' ';
        if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '_' ||
            (next >= '0' && next <= '9'))
            return false;
        lx->i += l;
        return true;
    }
    return false;
}

static enum pq_status pq_npy_shape(pq_npy_lex *lx, pq_npy_info *info) {
    if (!pq_npy_accept(lx, '(')) return pq_npy_bad(lx, "'(' starting the shape tuple");
    info->rank = 0;
    for (;;) {
        if (pq_npy_accept(lx, ')')) return PQ_OK;
        pq_npy_skip_ws(lx);
        if (lx->i >= lx->n || lx->s[lx->i] < '0' || lx->s[lx->i] > '9') {
            if (lx->i < lx->n && lx->s[lx->i] == '-')
                return pq_error_set(lx->err, PQ_ERR_INVALID,
                                    "npy: '%s': negative dimension in shape", lx->what);
            return pq_npy_bad(lx, "a dimension or ')'");
        }
        int64_t v = 0;
        while (lx->i < lx->n && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9') {
            int d = lx->s[lx->i++] - '0';
            if (v > (PQ_MAX_NUMEL - d) / 10)
                return pq_error_set(lx->err, PQ_ERR_INVALID,
                                    "npy: '%s': dimension %d of the shape is larger than 2^40",
                                    lx->what, info->rank);
            v = v * 10 + d;
        }
        if (lx->i < lx->n && lx->s[lx->i] == 'L') lx->i++; /* Python 2 long literal */
        if (info->rank >= PQ_MAX_RANK)
            return pq_error_set(lx->err, PQ_ERR_UNSUPPORTED, "npy: '%s': more than %d dimensions",
                                lx->what, PQ_MAX_RANK);
        info->dims[info->rank++] = v;
        if (pq_npy_accept(lx, ',')) continue;
        if (pq_npy_accept(lx, ')')) return PQ_OK;
        return pq_npy_bad(lx, "',' or ')' in the shape tuple");
    }
}

static enum pq_status pq_npy_descr(const char *d, const char *what, enum pq_dtype *out,
                                   pq_error *err) {
    static const struct {
        const char *code;
        enum pq_dtype dtype;
    } tab[] = {{"f4", PQ_DTYPE_F32}, {"f8", PQ_DTYPE_F64}, {"f2", PQ_DTYPE_F16},
               {"i1", PQ_DTYPE_I8},  {"u1", PQ_DTYPE_U8},  {"i2", PQ_DTYPE_I16},
               {"u2", PQ_DTYPE_U16}, {"i4", PQ_DTYPE_I32}, {"u4", PQ_DTYPE_U32},
               {"i8", PQ_DTYPE_I64}, {"u8", PQ_DTYPE_U64}, {"b1", PQ_DTYPE_BOOL}};
    char order = d[0];
    const char *code = d;
    if (order == '<' || order == '|' || order == '>' || order == '=')
        code = d + 1;
    else
        order = '|';
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(code, tab[i].code) != 0) continue;
        if ((order == '>' || order == '=') && pq_dtype_size(tab[i].dtype) > 1)
            return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                "npy: '%s': descr '%s' is %s; only little-endian data is supported",
                                what, d, order == '>' ? "big-endian" : "native-endian");
        *out = tab[i].dtype;
        return PQ_OK;
    }
    return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                        "npy: '%s': element type descr '%s' is not supported", what, d);
}

static enum pq_status pq_npy_header(const char *h, size_t hl, const char *what, pq_npy_info *info,
                                    pq_error *err) {
    pq_npy_lex lx = {h, hl, 0, what, err};
    bool have_descr = false, have_order = false, have_shape = false;
    char descr[64];
    if (!pq_npy_accept(&lx, '{')) return pq_npy_bad(&lx, "'{' opening the header dict");
    for (;;) {
        if (pq_npy_accept(&lx, '}')) break;
        char key[32];
        PQ_TRY(pq_npy_string(&lx, key, sizeof key));
        if (!pq_npy_accept(&lx, ':')) return pq_npy_bad(&lx, "':' after a key");
        if (strcmp(key, "descr") == 0) {
            if (have_descr) goto dup;
            have_descr = true;
            pq_npy_skip_ws(&lx);
            if (lx.i < lx.n && lx.s[lx.i] == '[')
                return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                    "npy: '%s': structured dtypes are not supported", what);
            PQ_TRY(pq_npy_string(&lx, descr, sizeof descr));
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_order) goto dup;
            have_order = true;
            if (pq_npy_word(&lx, "True"))
                return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                                    "npy: '%s': fortran_order True is not supported (C order only)",
                                    what);
            if (!pq_npy_word(&lx, "False")) return pq_npy_bad(&lx, "True or False");
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape) goto dup;
            have_shape = true;
            PQ_TRY(pq_npy_shape(&lx, info));
        } else {
            return pq_error_set(err, PQ_ERR_INVALID, "npy: '%s': unknown header key '%s'", what,
                                key);
        }
        if (pq_npy_accept(&lx, ',')) continue;
        if (pq_npy_accept(&lx, '}')) break;
        return pq_npy_bad(&lx, "',' or '}'");
    dup:
        return pq_error_set(err, PQ_ERR_INVALID, "npy: '%s': header key '%s' appears twice", what,
                            key);
    }
    pq_npy_skip_ws(&lx);
    while (lx.i < lx.n && lx.s[lx.i] == '\0')
        lx.i++; /* some writers pad with NULs */
    if (lx.i != lx.n) return pq_npy_bad(&lx, "only padding after '}'");
    if (!have_descr || !have_order || !have_shape)
        return pq_error_set(err, PQ_ERR_INVALID, "npy: '%s': header lacks the key '%s'", what,
                            !have_descr   ? "descr"
                            : !have_order ? "fortran_order"
                                          : "shape");
    PQ_TRY(pq_npy_descr(descr, what, &info->dtype, err));
    int64_t numel;
    if (pq_shape_numel(info->rank, info->dims, &numel, err) != PQ_OK)
        return pq_error_prefix(err, "npy: '%s': ", what);
    info->nbytes = (size_t)numel * pq_dtype_size(info->dtype);
    return PQ_OK;
}

/* Parses everything up to the data. p holds avail bytes of a file of total bytes. */
static enum pq_status pq_npy_parse(const unsigned char *p, size_t avail, uint64_t total,
                                   const char *what, pq_npy_info *info, pq_error *err) {
    if (!pq_host_little_endian())
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "npy: big-endian hosts are not supported");
    size_t hs = 0, hl = 0;
    PQ_TRY(pq_npy_preamble(p, avail, what, &hs, &hl, err));
    if (hs + hl > avail)
        return pq_error_set(
            err, PQ_ERR_INVALID,
            "npy: '%s': header of %zu bytes runs past the end of the file (%llu bytes)", what, hl,
            (unsigned long long)total);
    memset(info, 0, sizeof *info);
    PQ_TRY(pq_npy_header((const char *)p + hs, hl, what, info, err));
    info->data_off = hs + hl;
    if (total - info->data_off < info->nbytes)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "npy: '%s': data is %llu bytes, shape and dtype need %zu", what,
                            (unsigned long long)(total - info->data_off), info->nbytes);
    return PQ_OK;
}

static enum pq_status pq_npy_check_bool(const pq_tensor *t, const char *what, pq_error *err) {
    if (t->dtype != PQ_DTYPE_BOOL) return PQ_OK;
    const unsigned char *b = t->data;
    for (size_t i = 0; i < t->nbytes; i++)
        if (b[i] > 1)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "npy: '%s': bool element %zu has byte value %u", what, i, b[i]);
    return PQ_OK;
}

enum pq_status pq_npy_read_buffer(const void *buf, size_t len, const char *what, pq_tensor **out,
                                  pq_error *err) {
    *out = NULL;
    if (!what) what = "buffer";
    pq_npy_info info;
    PQ_TRY(pq_npy_parse(buf, len, len, what, &info, err));
    pq_tensor *t = pq_tensor_create(info.dtype, info.rank, info.dims, err);
    if (!t) return err ? err->status : PQ_ERR_NOMEM;
    if (info.nbytes) memcpy(t->data, (const unsigned char *)buf + info.data_off, info.nbytes);
    enum pq_status st = pq_npy_check_bool(t, what, err);
    if (st != PQ_OK) {
        pq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return PQ_OK;
}

enum pq_status pq_npy_read(const char *path, pq_tensor **out, pq_error *err) {
    *out = NULL;
    enum pq_status st = PQ_OK;
    unsigned char *head = NULL;
    pq_tensor *t = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pq_error_set(err, PQ_ERR_IO, "npy: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = pq_error_set(err, PQ_ERR_IO, "npy: '%s' is not a readable regular file", path);
        goto done;
    }
    uint64_t total = (uint64_t)sb.st_size;
    unsigned char pre[12];
    size_t got = fread(pre, 1, sizeof pre, f);
    size_t hs = 0, hl = 0;
    PQ_TRY_GOTO(st, pq_npy_preamble(pre, got, path, &hs, &hl, err), done);
    size_t need = hs + hl;
    if (need > total) {
        st = pq_error_set(
            err, PQ_ERR_INVALID,
            "npy: '%s': header of %zu bytes runs past the end of the file (%llu bytes)", path, hl,
            (unsigned long long)total);
        goto done;
    }
    head = pq_malloc(need);
    if (!head) {
        st = pq_error_nomem(err, path);
        goto done;
    }
    if (fseek(f, 0, SEEK_SET) != 0 || fread(head, 1, need, f) != need) {
        st = pq_error_set(err, PQ_ERR_IO, "npy: cannot read the header of '%s'", path);
        goto done;
    }
    pq_npy_info info;
    PQ_TRY_GOTO(st, pq_npy_parse(head, need, total, path, &info, err), done);
    t = pq_tensor_create(info.dtype, info.rank, info.dims, err);
    if (!t) {
        st = err ? err->status : PQ_ERR_NOMEM;
        goto done;
    }
    if (info.nbytes && fread(t->data, 1, info.nbytes, f) != info.nbytes) {
        st = pq_error_set(err, PQ_ERR_IO, "npy: cannot read the data of '%s'", path);
        goto done;
    }
    PQ_TRY_GOTO(st, pq_npy_check_bool(t, path, err), done);
    *out = t;
    t = NULL;
done:
    pq_tensor_destroy(t);
    pq_free(head);
    fclose(f);
    return st;
}

static const char *pq_npy_descr_of(enum pq_dtype dt) {
    switch (dt) {
    case PQ_DTYPE_F32:
        return "<f4";
    case PQ_DTYPE_F64:
        return "<f8";
    case PQ_DTYPE_F16:
        return "<f2";
    case PQ_DTYPE_I8:
        return "|i1";
    case PQ_DTYPE_U8:
        return "|u1";
    case PQ_DTYPE_I16:
        return "<i2";
    case PQ_DTYPE_U16:
        return "<u2";
    case PQ_DTYPE_I32:
        return "<i4";
    case PQ_DTYPE_U32:
        return "<u4";
    case PQ_DTYPE_I64:
        return "<i8";
    case PQ_DTYPE_U64:
        return "<u8";
    case PQ_DTYPE_BOOL:
        return "|b1";
    default:
        return NULL;
    }
}

/* Builds the preamble + padded header; returns its length in hdr (caller-provided 256+ bytes). */
static enum pq_status pq_npy_make_header(const pq_tensor *t, unsigned char *hdr, size_t cap,
                                         size_t *hlen, size_t *nbytes, pq_error *err) {
    if (!pq_host_little_endian())
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "npy: big-endian hosts are not supported");
    if (t->dtype == PQ_DTYPE_BF16)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED, "npy: bf16 has no .npy element type");
    const char *descr = pq_npy_descr_of(t->dtype);
    if (!descr)
        return pq_error_set(err, PQ_ERR_INVALID, "npy: cannot write a tensor of type %s",
                            pq_dtype_name(t->dtype));
    int64_t numel;
    PQ_TRY(pq_shape_numel(t->rank, t->dims, &numel, err));
    size_t need = (size_t)numel * pq_dtype_size(t->dtype);
    if (need > t->nbytes || (need && !t->data))
        return pq_error_set(err, PQ_ERR_INVALID, "npy: tensor holds %zu bytes, shape needs %zu",
                            t->nbytes, need);
    char dict[256];
    int k =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%lld", i ? ", " : "",
                      (long long)t->dims[i]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", t->rank == 1 ? "," : "");
    size_t dl = (size_t)k;
    size_t pre = 10; /* version 1.0: 2-byte length; the dict is always short enough */
    size_t total = (pre + dl + 1 + 63) / 64 * 64;
    if (total > cap) return pq_error_set(err, PQ_ERR_INTERNAL, "npy: header buffer too small");
    memcpy(hdr, pq_npy_magic, 6);
    hdr[6] = 1;
    hdr[7] = 0;
    size_t hl = total - pre;
    hdr[8] = (unsigned char)(hl & 0xff);
    hdr[9] = (unsigned char)(hl >> 8);
    memcpy(hdr + pre, dict, dl);
    memset(hdr + pre + dl, ' ', total - pre - dl - 1);
    hdr[total - 1] = '\n';
    *hlen = total;
    *nbytes = need;
    return PQ_OK;
}

enum pq_status pq_npy_write_buffer(const pq_tensor *t, unsigned char **out, size_t *len,
                                   pq_error *err) {
    unsigned char hdr[384];
    size_t hl = 0, nb = 0;
    *out = NULL;
    *len = 0;
    PQ_TRY(pq_npy_make_header(t, hdr, sizeof hdr, &hl, &nb, err));
    unsigned char *b = pq_malloc(hl + nb);
    if (!b) return pq_error_nomem(err, "npy buffer");
    memcpy(b, hdr, hl);
    if (nb) memcpy(b + hl, t->data, nb);
    *out = b;
    *len = hl + nb;
    return PQ_OK;
}

enum pq_status pq_npy_write(const char *path, const pq_tensor *t, pq_error *err) {
    unsigned char hdr[384];
    size_t hl = 0, nb = 0;
    PQ_TRY(pq_npy_make_header(t, hdr, sizeof hdr, &hl, &nb, err));
    pq_atomic_file af;
    enum pq_status st;
    if ((st = pq_atomic_open(&af, path, err)) != PQ_OK) return pq_error_prefix(err, "npy: ");
    if ((st = pq_atomic_write(&af, hdr, hl, err)) != PQ_OK ||
        (st = pq_atomic_write(&af, t->data, nb, err)) != PQ_OK) {
        pq_atomic_abort(&af);
        return pq_error_prefix(err, "npy: ");
    }
    if ((st = pq_atomic_commit(&af, err)) != PQ_OK) return pq_error_prefix(err, "npy: ");
    return PQ_OK;
}
