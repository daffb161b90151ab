/* ONNX TensorProto -> pq_tensor: element types, raw_data (little-endian) and typed repeated
 * fields, external data files (confined to the model's folder), size checks; plus the protobuf
 * plumbing shared by the importer (allocator, depth-checked unpacking, file reading). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.h"
#include "onnx_internal.h"

/* ---- protobuf plumbing ---- */

static void *pq_pb_alloc(void *data, size_t size) {
    void *p = pq_malloc(size);
    if (!p && data) *(bool *)data = true; /* remember that decoding ran out of memory */
    return p;
}

static void pq_pb_free(void *data, void *p) {
    (void)data;
    pq_free(p);
}

ProtobufCAllocator pq_onnx_pb_allocator = {pq_pb_alloc, pq_pb_free, NULL};

/* Reads a varint at *p (< end); false when truncated or longer than 10 bytes. */
static bool pq_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end) return false;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Walks the wire data of one message and its sub-messages (bounded recursion) to refuse
 * malformed framing and nesting deeper than PQ_ONNX_MAX_MESSAGE_DEPTH before protobuf-c (which
 * recurses without a limit) sees it. Returns NULL when fine, else a static reason. */
static const char *pq_pb_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                              const uint8_t *end, int depth) {
    if (depth > PQ_ONNX_MAX_MESSAGE_DEPTH) return "messages nested too deeply";
    while (p < end) {
        uint64_t key;
        if (!pq_pb_varint(&p, end, &key)) return "truncated or bad varint";
        uint32_t wire = (uint32_t)(key & 7);
        uint64_t tag = key >> 3;
        if (tag == 0 || tag > 536870911u) return "bad field number";
        uint64_t n;
        switch (wire) {
        case 0:
            if (!pq_pb_varint(&p, end, &n)) return "truncated or bad varint";
            break;
        case 1:
            if (end - p < 8) return "truncated fixed64";
            p += 8;
            break;
        case 5:
            if (end - p < 4) return "truncated fixed32";
            p += 4;
            break;
        case 2: {
            if (!pq_pb_varint(&p, end, &n)) return "truncated or bad varint";
            if (n > (uint64_t)(end - p)) return "length-delimited field runs past the end";
            const ProtobufCFieldDescriptor *f =
                desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)tag) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                const char *why = pq_pb_scan(f->descriptor, p, p + n, depth + 1);
                if (why) return why;
            }
            p += n;
            break;
        }
        default:
            return "unsupported wire type (groups)";
        }
    }
    return NULL;
}

ProtobufCMessage *pq_onnx_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                 size_t len, const char *what, pq_error *err) {
    if (len == 0) {
        pq_error_set(err, PQ_ERR_INVALID, "onnx: %s: file is empty", what);
        return NULL;
    }
    const char *why = pq_pb_scan(desc, buf, buf + len, 0);
    if (why) {
        pq_error_set(err, PQ_ERR_INVALID, "onnx: %s: not a valid protobuf message (%s)", what, why);
        return NULL;
    }
    bool failed = false;
    ProtobufCAllocator a = {pq_pb_alloc, pq_pb_free, &failed};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, buf);
    if (!m && failed)
        pq_error_nomem(err, "onnx: decoding the protobuf message");
    else if (!m)
        pq_error_set(err, PQ_ERR_INVALID,
                     "onnx: %s: cannot decode the protobuf message (corrupt or truncated)", what);
    return m;
}

/* Opens path for reading as a regular file (never blocks on FIFOs/devices); returns fd or -1
 * with an IO error ("cannot open 'path': reason", no prefix); *size receives the file size. */
static int pq_open_regular(const char *path, off_t *size, pq_error *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        pq_error_set(err, PQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        pq_error_set(err, PQ_ERR_IO, "'%s' is not a regular file", path);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

/* Reads exactly n bytes at offset off; false on error or short read. */
static bool pq_pread_all(int fd, void *dst, size_t n, off_t off) {
    uint8_t *d = dst;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(fd, d, chunk, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        d += r;
        n -= (size_t)r;
        off += r;
    }
    return true;
}

enum pq_status pq_onnx_read_file(const char *path, uint8_t **data, size_t *len, pq_error *err) {
    off_t size;
    *data = NULL;
    *len = 0;
    int fd = pq_open_regular(path, &size, err);
    if (fd < 0) return pq_error_prefix(err, "onnx: ");
    if ((uint64_t)size > PQ_ONNX_MAX_FILE_BYTES) {
        close(fd);
        return pq_error_set(err, PQ_ERR_INVALID,
                            "onnx: '%s' is larger than 2 GiB, the protobuf limit", path);
    }
    uint8_t *buf = pq_malloc((size_t)size);
    if (!buf) {
        close(fd);
        return pq_error_nomem(err, "onnx: file contents");
    }
    if (!pq_pread_all(fd, buf, (size_t)size, 0)) {
        close(fd);
        pq_free(buf);
        return pq_error_set(err, PQ_ERR_IO, "onnx: cannot read '%s': %s", path, strerror(errno));
    }
    close(fd);
    *data = buf;
    *len = (size_t)size;
    return PQ_OK;
}

char *pq_onnx_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return pq_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = pq_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* ---- element types ---- */

const char *pq_onnx_type_name(int32_t dt, char *buf, size_t size) {
    static const char *const names[] = {
        "UNDEFINED",      "FLOAT",      "UINT8",          "INT8",       "UINT16",   "INT16",
        "INT32",          "INT64",      "STRING",         "BOOL",       "FLOAT16",  "DOUBLE",
        "UINT32",         "UINT64",     "COMPLEX64",      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",      "INT4",     "FLOAT4E2M1"};
    if (dt >= 0 && (size_t)dt < sizeof names / sizeof names[0]) return names[dt];
    snprintf(buf, size, "type %d", (int)dt);
    return buf;
}

bool pq_onnx_dtype(int32_t dt, enum pq_dtype *out) {
    enum pq_dtype t;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        t = PQ_DTYPE_F32;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        t = PQ_DTYPE_U8;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        t = PQ_DTYPE_I8;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        t = PQ_DTYPE_U16;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
        t = PQ_DTYPE_I16;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        t = PQ_DTYPE_I32;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        t = PQ_DTYPE_I64;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        t = PQ_DTYPE_BOOL;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        t = PQ_DTYPE_F16;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        t = PQ_DTYPE_F64;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        t = PQ_DTYPE_U32;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        t = PQ_DTYPE_U64;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
        t = PQ_DTYPE_BF16;
        break;
    default:
        return false;
    }
    *out = t;
    return true;
}

/* ---- tensor data ---- */

static bool pq_host_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Copies little-endian elements of size es from src into dst (bools normalised to 0/1). */
static void pq_copy_le(void *dst, const uint8_t *src, size_t n, size_t es, enum pq_dtype dt) {
    uint8_t *d = dst;
    if (pq_host_little_endian() || es == 1) {
        if (n) memcpy(d, src, n * es);
    } else {
        for (size_t i = 0; i < n; i++)
            for (size_t b = 0; b < es; b++)
                d[i * es + b] = src[i * es + es - 1 - b];
    }
    if (dt == PQ_DTYPE_BOOL)
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] != 0;
}

/* Name of the typed field a dtype's values live in. */
static const char *pq_typed_field(enum pq_dtype t) {
    switch (t) {
    case PQ_DTYPE_F32:
        return "float_data";
    case PQ_DTYPE_F64:
        return "double_data";
    case PQ_DTYPE_I64:
        return "int64_data";
    case PQ_DTYPE_U32:
    case PQ_DTYPE_U64:
        return "uint64_data";
    default:
        return "int32_data";
    }
}

/* Fills t from the typed repeated field of its dtype; INVALID on a count mismatch or values in
 * another field. */
static enum pq_status pq_from_typed(const Onnx__TensorProto *tp, const char *nm, pq_tensor *t,
                                    size_t numel, pq_error *err) {
    size_t counts[5] = {tp->n_float_data, tp->n_double_data, tp->n_int64_data, tp->n_uint64_data,
                        tp->n_int32_data};
    static const char *const fields[5] = {"float_data", "double_data", "int64_data", "uint64_data",
                                          "int32_data"};
    const char *want = pq_typed_field(t->dtype);
    size_t have = 0;
    for (int i = 0; i < 5; i++) {
        if (strcmp(fields[i], want) == 0) {
            have = counts[i];
        } else if (counts[i] > 0) {
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s' of type %s stores values in %s (expected %s)", nm,
                                pq_dtype_name(t->dtype), fields[i], want);
        }
    }
    if (tp->n_string_data > 0)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s' of type %s has string_data", nm,
                            pq_dtype_name(t->dtype));
    if (have != numel)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s' has %zu values in %s, expected %zu for its shape", nm,
                            have, want, numel);
    void *d = t->data;
    for (size_t i = 0; i < numel; i++) {
        switch (t->dtype) {
        case PQ_DTYPE_F32:
            ((float *)d)[i] = tp->float_data[i];
            break;
        case PQ_DTYPE_F64:
            ((double *)d)[i] = tp->double_data[i];
            break;
        case PQ_DTYPE_I64:
            ((int64_t *)d)[i] = tp->int64_data[i];
            break;
        case PQ_DTYPE_U64:
            ((uint64_t *)d)[i] = tp->uint64_data[i];
            break;
        case PQ_DTYPE_U32:
            ((uint32_t *)d)[i] = (uint32_t)tp->uint64_data[i];
            break;
        case PQ_DTYPE_I32:
            ((int32_t *)d)[i] = tp->int32_data[i];
            break;
        case PQ_DTYPE_I16:
            ((int16_t *)d)[i] = (int16_t)tp->int32_data[i];
            break;
        case PQ_DTYPE_U16:
        case PQ_DTYPE_F16:
        case PQ_DTYPE_BF16:
            ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i];
            break;
        case PQ_DTYPE_I8:
            ((int8_t *)d)[i] = (int8_t)tp->int32_data[i];
            break;
        case PQ_DTYPE_U8:
            ((uint8_t *)d)[i] = (uint8_t)tp->int32_data[i];
            break;
        case PQ_DTYPE_BOOL:
            ((uint8_t *)d)[i] = tp->int32_data[i] != 0;
            break;
        default:
            return pq_error_set(err, PQ_ERR_INTERNAL, "tensor '%s': bad dtype", nm);
        }
    }
    return PQ_OK;
}

/* Parses a non-negative decimal integer string; false when malformed or too large. */
static bool pq_parse_u63(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* True when location is a relative path without '..' components. */
static bool pq_safe_location(const char *loc) {
    if (!*loc || loc[0] == '/') return false;
    const char *p = loc;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!e) break;
        p = e + 1;
    }
    return true;
}

/* Creates *out of dtype dt and shape (rank, dims) from the tensor's external data file; nbytes is
 * the exact byte count the shape needs. The file range is checked before anything is allocated. */
static enum pq_status pq_from_external(const Onnx__TensorProto *tp, const char *nm,
                                       const char *base_dir, enum pq_dtype dt, size_t nbytes,
                                       pq_tensor **out, pq_error *err) {
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e || !e->key) continue;
        if (strcmp(e->key, "location") == 0) {
            loc = e->value;
        } else if (strcmp(e->key, "offset") == 0) {
            if (!pq_parse_u63(e->value, &offset))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "tensor '%s': external data offset '%s' is not a number", nm,
                                    e->value ? e->value : "");
        } else if (strcmp(e->key, "length") == 0) {
            if (!pq_parse_u63(e->value, &length))
                return pq_error_set(err, PQ_ERR_INVALID,
                                    "tensor '%s': external data length '%s' is not a number", nm,
                                    e->value ? e->value : "");
        }
    }
    if (!loc || !*loc)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s': external data has no location", nm);
    if (!pq_safe_location(loc))
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': external data location '%s' must be a relative path "
                            "inside the model's folder (no absolute path, no '..')",
                            nm, loc);
    if (!base_dir)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': external data '%s' but the model was read from memory "
                            "without a folder",
                            nm, loc);
    if (length >= 0 && (uint64_t)length != nbytes)
        return pq_error_set(err, PQ_ERR_INVALID,
                            "tensor '%s': external data length %lld, expected %zu bytes for its "
                            "type and shape",
                            nm, (long long)length, nbytes);
    size_t plen = strlen(base_dir) + strlen(loc) + 2;
    char *path = pq_malloc(plen);
    if (!path) return pq_error_nomem(err, "external data path");
    snprintf(path, plen, "%s/%s", base_dir, loc);
    off_t size;
    int fd = pq_open_regular(path, &size, err);
    pq_free(path);
    if (fd < 0) return pq_error_prefix(err, "tensor '%s': external data: ", nm);
    enum pq_status st = PQ_OK;
    if ((uint64_t)offset > (uint64_t)size || nbytes > (uint64_t)size - (uint64_t)offset) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "tensor '%s': external data range [%lld, %llu) lies outside file '%s' "
                          "of %lld bytes",
                          nm, (long long)offset, (unsigned long long)offset + nbytes, loc,
                          (long long)size);
    } else if (length < 0 && (uint64_t)size - (uint64_t)offset != nbytes) {
        st = pq_error_set(err, PQ_ERR_INVALID,
                          "tensor '%s': external file '%s' holds %lld bytes after offset %lld, "
                          "expected %zu",
                          nm, loc, (long long)(size - offset), (long long)offset, nbytes);
    } else {
        pq_tensor *t = pq_tensor_create(dt, (int)tp->n_dims, tp->dims, err);
        uint8_t *tmp = t ? pq_malloc(nbytes) : NULL;
        if (!t) {
            st = pq_error_prefix(err, "tensor '%s': ", nm);
        } else if (!tmp) {
            st = pq_error_nomem(err, "external data");
        } else if (!pq_pread_all(fd, tmp, nbytes, (off_t)offset)) {
            st = pq_error_set(err, PQ_ERR_IO, "tensor '%s': cannot read external file '%s'", nm,
                              loc);
        } else {
            size_t es = pq_dtype_size(dt);
            pq_copy_le(t->data, tmp, nbytes / es, es, dt);
            *out = t;
            t = NULL;
        }
        pq_free(tmp);
        pq_tensor_destroy(t);
    }
    close(fd);
    return st;
}

enum pq_status pq_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *label,
                                         const char *base_dir, pq_tensor **out, pq_error *err) {
    *out = NULL;
    const char *nm = tp->name && *tp->name ? tp->name : (label ? label : "?");
    char tbuf[32];
    if (!tp->has_data_type || tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED)
        return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s' has no data type", nm);
    enum pq_dtype dt;
    if (!pq_onnx_dtype(tp->data_type, &dt))
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "tensor '%s' has element type %s, which piqc does not support", nm,
                            pq_onnx_type_name(tp->data_type, tbuf, sizeof tbuf));
    if (tp->segment) return pq_error_set(err, PQ_ERR_UNSUPPORTED, "tensor '%s' is segmented", nm);
    if (tp->n_dims > PQ_MAX_RANK)
        return pq_error_set(err, PQ_ERR_UNSUPPORTED,
                            "tensor '%s' has rank %zu, piqc supports at most %d", nm, tp->n_dims,
                            PQ_MAX_RANK);
    int rank = (int)tp->n_dims;
    int64_t numel;
    if (pq_shape_numel(rank, tp->dims, &numel, err) != PQ_OK)
        return pq_error_prefix(err, "tensor '%s': ", nm);
    size_t es = pq_dtype_size(dt);
    bool external =
        tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* validate the amount of data before allocating anything of the declared size */
    if (!external && tp->has_raw_data) {
        if ((uint64_t)numel > SIZE_MAX / es || tp->raw_data.len != (size_t)numel * es)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s' has %zu bytes of raw_data, expected %lld (%lld "
                                "elements of %s)",
                                nm, tp->raw_data.len, (long long)numel * (long long)es,
                                (long long)numel, pq_dtype_name(dt));
    } else if (!external) {
        size_t have = tp->n_float_data + tp->n_double_data + tp->n_int64_data + tp->n_uint64_data +
                      tp->n_int32_data;
        if ((uint64_t)numel != have)
            return pq_error_set(err, PQ_ERR_INVALID,
                                "tensor '%s' has %zu values, expected %lld for its shape", nm, have,
                                (long long)numel);
    } else {
        if ((uint64_t)numel > SIZE_MAX / es)
            return pq_error_set(err, PQ_ERR_INVALID, "tensor '%s' is too large", nm);
        return pq_from_external(tp, nm, base_dir, dt, (size_t)numel * es, out, err);
    }
    pq_tensor *t = pq_tensor_create(dt, rank, tp->dims, err);
    if (!t) return pq_error_prefix(err, "tensor '%s': ", nm);
    enum pq_status st;
    if (tp->has_raw_data) {
        pq_copy_le(t->data, tp->raw_data.data, (size_t)numel, es, dt);
        st = PQ_OK;
    } else
        st = pq_from_typed(tp, nm, t, (size_t)numel, err);
    if (st != PQ_OK) {
        pq_tensor_destroy(t);
        return st;
    }
    *out = t;
    return PQ_OK;
}

static enum pq_status pq_load_tensor_file(const char *path, pq_tensor **out, char **name_out,
                                          pq_error *err) {
    *out = NULL;
    if (name_out) *name_out = NULL;
    uint8_t *buf;
    size_t len;
    PQ_TRY(pq_onnx_read_file(path, &buf, &len, err));
    enum pq_status st = PQ_OK;
    char *dir = NULL;
    Onnx__TensorProto *tp =
        (Onnx__TensorProto *)pq_onnx_unpack(&onnx__tensor_proto__descriptor, buf, len, path, err);
    if (!tp) {
        st = err ? err->status : PQ_ERR_INVALID;
        goto done;
    }
    dir = pq_onnx_dirname(path);
    if (!dir) {
        st = pq_error_nomem(err, "onnx: path");
        goto done;
    }
    st = pq_onnx_tensor_from_proto(tp, path, dir, out, err);
    if (st != PQ_OK) {
        pq_error_prefix(err, "onnx: %s: ", path);
        goto done;
    }
    if (name_out) {
        *name_out = pq_strdup(tp->name ? tp->name : "");
        if (!*name_out) {
            pq_tensor_destroy(*out);
            *out = NULL;
            st = pq_error_nomem(err, "onnx: tensor name");
        }
    }
done:
    if (tp) protobuf_c_message_free_unpacked(&tp->base, &pq_onnx_pb_allocator);
    pq_free(dir);
    pq_free(buf);
    return st;
}

enum pq_status pq_onnx_load_tensor_file(const char *path, pq_tensor **out, char **name_out,
                                        pq_error *err) {
    pq_error local; /* messages are composed in place, so always work on a real context */
    pq_error_clear(&local);
    enum pq_status st = pq_load_tensor_file(path, out, name_out, &local);
    if (err) *err = local;
    return st;
}
