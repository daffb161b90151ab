/* Byte sizes and names of the packed low-bit formats: one place that the quantizer, kernels
 * and artifact reader/writer agree on (SPEC section 2, "Row layout"). */
#include "packed.h"

#include <string.h>

static const struct {
    const char *name;
    int bits;
    int k;
} pq_qformat_info[PQ_QFORMAT_COUNT] = {
    [PQ_QFORMAT_PIQ3] = {"piq3", 3, 4},
    [PQ_QFORMAT_PIQ2] = {"piq2", 2, 3},
    [PQ_QFORMAT_Q3] = {"q3", 3, 0},
    [PQ_QFORMAT_Q2] = {"q2", 2, 0},
};

int pq_qformat_bits(enum pq_qformat f) {
    return (unsigned)f < PQ_QFORMAT_COUNT ? pq_qformat_info[f].bits : 0;
}

int pq_qformat_k(enum pq_qformat f) {
    return (unsigned)f < PQ_QFORMAT_COUNT ? pq_qformat_info[f].k : 0;
}

const char *pq_qformat_name(enum pq_qformat f) {
    return (unsigned)f < PQ_QFORMAT_COUNT ? pq_qformat_info[f].name : "invalid";
}

bool pq_qformat_from_name(const char *name, enum pq_qformat *out) {
    for (int f = 0; f < PQ_QFORMAT_COUNT; f++) {
        if (strcmp(name, pq_qformat_info[f].name) == 0) {
            *out = (enum pq_qformat)f;
            return true;
        }
    }
    return false;
}

size_t pq_packed_code_bytes(enum pq_qformat f, int64_t n) {
    if (n <= 0) return 0;
    size_t blocks = (size_t)((n + 7) / 8);
    return blocks * (size_t)pq_qformat_bits(f); /* 8 codes of b bits = b bytes */
}

size_t pq_packed_row_bytes(enum pq_qformat f, int64_t cols, int64_t group) {
    if (cols <= 0 || group <= 0 || group % 8 != 0 || (unsigned)f >= PQ_QFORMAT_COUNT) return 0;
    int64_t full = cols / group;
    int64_t rest = cols % group;
    size_t bytes = (size_t)full * (2 + pq_packed_code_bytes(f, group));
    if (rest) bytes += 2 + pq_packed_code_bytes(f, rest);
    return bytes;
}

size_t pq_packed_bytes(enum pq_qformat f, int64_t rows, int64_t cols, int64_t group) {
    if (rows <= 0 || rows > ((int64_t)1 << 40) || cols > ((int64_t)1 << 40)) return 0;
    size_t row = pq_packed_row_bytes(f, cols, group);
    if (row == 0) return 0;
    if ((size_t)rows > (((size_t)1 << 62) / row)) return 0;
    return (size_t)rows * row;
}
