/* Packed low-bit weight formats (PiQ3, PiQ2 and the uniform Q3/Q2 baselines) and their byte
 * sizes: shared by the quantizer, the kernels, and the GGUF reader and writer (SPEC section 2). */
#ifndef PQ_PACKED_H
#define PQ_PACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pq_qformat {
    PQ_QFORMAT_PIQ3 = 0, /* 3 bits, step = a * pi/4 */
    PQ_QFORMAT_PIQ2,     /* 2 bits, step = a * pi/3 */
    PQ_QFORMAT_Q3,       /* uniform 3-bit baseline, step = a */
    PQ_QFORMAT_Q2,       /* uniform 2-bit baseline, step = a */
    PQ_QFORMAT_COUNT
};

/* Bits per stored code (3 or 2). */
int pq_qformat_bits(enum pq_qformat f);
/* k of the pi/k grid (4 for PiQ3, 3 for PiQ2, 0 for the uniform formats). */
int pq_qformat_k(enum pq_qformat f);
/* "piq3", "piq2", "q3", "q2". */
const char *pq_qformat_name(enum pq_qformat f);
bool pq_qformat_from_name(const char *name, enum pq_qformat *out);

/* Bytes of the packed codes of n weights (n padded up to a multiple of 8). */
size_t pq_packed_code_bytes(enum pq_qformat f, int64_t n);
/* Bytes of one packed row of `cols` weights in groups of `group` (scale words + codes). */
size_t pq_packed_row_bytes(enum pq_qformat f, int64_t cols, int64_t group);
/* Bytes of a rows x cols packed matrix; 0 on invalid arguments or overflow past 2^62. */
size_t pq_packed_bytes(enum pq_qformat f, int64_t rows, int64_t cols, int64_t group);

#endif
