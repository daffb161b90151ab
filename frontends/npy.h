/* NumPy .npy files: read (format versions 1.0, 2.0 and 3.0) and write (atomically), for
 * calibration data, test fixtures and tensor dumps. Little-endian, C order only. */
#ifndef PQ_NPY_H
#define PQ_NPY_H

#include <stddef.h>

#include "ir/status.h"
#include "ir/tensor.h"

/* Largest header (dict text) accepted when reading, in bytes. */
#define PQ_NPY_MAX_HEADER (1u << 20)

/* Reads the .npy file at path into a new tensor (*out, pq_tensor_destroy it). Supported descr
 * strings: <f4 <f8 <f2 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1 ('<' and '|' are both accepted; a
 * one-byte type with '>' too). Returns IO when the file cannot be read; INVALID (message naming
 * the file) for a bad magic, version, header (syntax, missing/unknown/duplicate keys, huge
 * length), bad dims (negative, overflow beyond PQ_MAX_NUMEL) or data shorter than the shape;
 * UNSUPPORTED for big-endian data, fortran_order True, rank > PQ_MAX_RANK or a descr piqc has no
 * dtype for (complex, strings, objects, structured, bf16); NOMEM. Bool bytes other than 0/1 are
 * INVALID. Trailing bytes after the data are ignored, as numpy does. */
enum pq_status pq_npy_read(const char *path, pq_tensor **out, pq_error *err);

/* Same from memory: buf holds a whole .npy file of len bytes; what names it in messages (NULL ->
 * "buffer"). The tensor owns a copy of the data. */
enum pq_status pq_npy_read_buffer(const void *buf, size_t len, const char *what, pq_tensor **out,
                                  pq_error *err);

/* Writes t to path as .npy (version 1.0, or 2.0 when the header needs it) atomically: temporary
 * file in the same directory, fsync, rename. UNSUPPORTED for bf16; INVALID for an undefined dtype
 * or bad shape; IO naming the path (temporary file removed). */
enum pq_status pq_npy_write(const char *path, const pq_tensor *t, pq_error *err);

/* Encodes t as a complete .npy file in memory (*out, pq_free it; *len bytes). Same statuses as
 * pq_npy_write minus IO. */
enum pq_status pq_npy_write_buffer(const pq_tensor *t, unsigned char **out, size_t *len,
                                   pq_error *err);

#endif
