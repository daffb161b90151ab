/* Element types of piqc tensors, their sizes and names, and f16/bf16 conversion, which every
 * folder needs (importer, reference kernels, quantization). */
#ifndef PQ_DTYPE_H
#define PQ_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pq_dtype {
    PQ_DTYPE_UNDEFINED = 0,
    PQ_DTYPE_F32,
    PQ_DTYPE_F16,
    PQ_DTYPE_BF16,
    PQ_DTYPE_F64,
    PQ_DTYPE_I8,
    PQ_DTYPE_U8,
    PQ_DTYPE_I16,
    PQ_DTYPE_U16,
    PQ_DTYPE_I32,
    PQ_DTYPE_U32,
    PQ_DTYPE_I64,
    PQ_DTYPE_U64,
    PQ_DTYPE_BOOL, /* one byte, 0 or 1 */
    PQ_DTYPE_COUNT
};

/* Bytes per element (0 for UNDEFINED). */
size_t pq_dtype_size(enum pq_dtype t);
/* Short lowercase name: "f32", "i64", "bool"... ("undefined" for UNDEFINED). */
const char *pq_dtype_name(enum pq_dtype t);
/* Parses a name from pq_dtype_name; false if unknown. */
bool pq_dtype_from_name(const char *name, enum pq_dtype *out);
bool pq_dtype_is_float(enum pq_dtype t);   /* f32 f16 bf16 f64 */
bool pq_dtype_is_integer(enum pq_dtype t); /* signed or unsigned integers (not bool) */
bool pq_dtype_is_signed(enum pq_dtype t);

/* IEEE binary16 conversion, round to nearest even; subnormals, infinities and NaN handled. */
uint16_t pq_f32_to_f16(float f);
float pq_f16_to_f32(uint16_t h);
/* bfloat16 conversion, round to nearest even; NaN stays NaN. */
uint16_t pq_f32_to_bf16(float f);
float pq_bf16_to_f32(uint16_t h);

/* Reads element i of a buffer of type t as double / writes double v (with C conversion semantics
 * for integers after clamping NaN to 0; bool: v != 0). For generic, non-hot code paths. */
double pq_dtype_load(enum pq_dtype t, const void *data, size_t i);
void pq_dtype_store(enum pq_dtype t, void *data, size_t i, double v);
/* Exact integer view of element i of an integer or bool buffer (u64 reinterpreted as int64);
 * floats are truncated toward zero (NaN -> 0, saturating). */
int64_t pq_dtype_load_i64(enum pq_dtype t, const void *data, size_t i);

#endif
