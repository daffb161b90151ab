/* Element type table (sizes, names), f16/bf16 conversions and generic element access.
 * The conversions are bit-exact IEEE round-to-nearest-even and are the only ones in piqc. */
#include "dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} pq_dtype_info[PQ_DTYPE_COUNT] = {
    [PQ_DTYPE_UNDEFINED] = {"undefined", 0},
    [PQ_DTYPE_F32] = {"f32", 4},
    [PQ_DTYPE_F16] = {"f16", 2},
    [PQ_DTYPE_BF16] = {"bf16", 2},
    [PQ_DTYPE_F64] = {"f64", 8},
    [PQ_DTYPE_I8] = {"i8", 1},
    [PQ_DTYPE_U8] = {"u8", 1},
    [PQ_DTYPE_I16] = {"i16", 2},
    [PQ_DTYPE_U16] = {"u16", 2},
    [PQ_DTYPE_I32] = {"i32", 4},
    [PQ_DTYPE_U32] = {"u32", 4},
    [PQ_DTYPE_I64] = {"i64", 8},
    [PQ_DTYPE_U64] = {"u64", 8},
    [PQ_DTYPE_BOOL] = {"bool", 1},
};

size_t pq_dtype_size(enum pq_dtype t) {
    return (unsigned)t < PQ_DTYPE_COUNT ? pq_dtype_info[t].size : 0;
}

const char *pq_dtype_name(enum pq_dtype t) {
    return (unsigned)t < PQ_DTYPE_COUNT ? pq_dtype_info[t].name : "invalid";
}

bool pq_dtype_from_name(const char *name, enum pq_dtype *out) {
    for (int t = 1; t < PQ_DTYPE_COUNT; t++) {
        if (strcmp(name, pq_dtype_info[t].name) == 0) {
            *out = (enum pq_dtype)t;
            return true;
        }
    }
    return false;
}

bool pq_dtype_is_float(enum pq_dtype t) {
    return t == PQ_DTYPE_F32 || t == PQ_DTYPE_F16 || t == PQ_DTYPE_BF16 || t == PQ_DTYPE_F64;
}

bool pq_dtype_is_integer(enum pq_dtype t) {
    return t >= PQ_DTYPE_I8 && t <= PQ_DTYPE_U64;
}

bool pq_dtype_is_signed(enum pq_dtype t) {
    return pq_dtype_is_float(t) || t == PQ_DTYPE_I8 || t == PQ_DTYPE_I16 || t == PQ_DTYPE_I32 ||
           t == PQ_DTYPE_I64;
}

static uint32_t pq_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float pq_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t pq_f32_to_f16(float f) {
    uint32_t x = pq_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xFFu;
    uint32_t man = x & 0x7FFFFFu;
    if (exp == 0xFF) { /* inf or nan */
        if (man == 0) return sign | 0x7C00u;
        return sign | 0x7E00u | (uint16_t)(man >> 13);
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return sign | 0x7C00u; /* overflow to inf */
    if (e <= 0) {                       /* subnormal or zero in f16 */
        if (e < -10) return sign;       /* rounds to zero (|f| < 2^-25) */
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++; /* may carry into inf: correct */
    return sign | (uint16_t)half;
}

float pq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0) {
        if (man == 0) return pq_bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return pq_bits_f32(sign | 0x7F800000u | (man << 13));
    return pq_bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t pq_f32_to_bf16(float f) {
    uint32_t x = pq_f32_bits(f);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu)) return (uint16_t)((x >> 16) | 0x40u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7FFFu + lsb;
    return (uint16_t)(x >> 16);
}

float pq_bf16_to_f32(uint16_t h) {
    return pq_bits_f32((uint32_t)h << 16);
}

double pq_dtype_load(enum pq_dtype t, const void *data, size_t i) {
    switch (t) {
    case PQ_DTYPE_F32:
        return ((const float *)data)[i];
    case PQ_DTYPE_F16:
        return pq_f16_to_f32(((const uint16_t *)data)[i]);
    case PQ_DTYPE_BF16:
        return pq_bf16_to_f32(((const uint16_t *)data)[i]);
    case PQ_DTYPE_F64:
        return ((const double *)data)[i];
    case PQ_DTYPE_I8:
        return ((const int8_t *)data)[i];
    case PQ_DTYPE_U8:
        return ((const uint8_t *)data)[i];
    case PQ_DTYPE_I16:
        return ((const int16_t *)data)[i];
    case PQ_DTYPE_U16:
        return ((const uint16_t *)data)[i];
    case PQ_DTYPE_I32:
        return ((const int32_t *)data)[i];
    case PQ_DTYPE_U32:
        return ((const uint32_t *)data)[i];
    case PQ_DTYPE_I64:
        return (double)((const int64_t *)data)[i];
    case PQ_DTYPE_U64:
        return (double)((const uint64_t *)data)[i];
    case PQ_DTYPE_BOOL:
        return ((const uint8_t *)data)[i] ? 1.0 : 0.0;
    default:
        return 0.0;
    }
}

int64_t pq_dtype_load_i64(enum pq_dtype t, const void *data, size_t i) {
    switch (t) {
    case PQ_DTYPE_I8:
        return ((const int8_t *)data)[i];
    case PQ_DTYPE_U8:
        return ((const uint8_t *)data)[i];
    case PQ_DTYPE_BOOL:
        return ((const uint8_t *)data)[i] != 0;
    case PQ_DTYPE_I16:
        return ((const int16_t *)data)[i];
    case PQ_DTYPE_U16:
        return ((const uint16_t *)data)[i];
    case PQ_DTYPE_I32:
        return ((const int32_t *)data)[i];
    case PQ_DTYPE_U32:
        return ((const uint32_t *)data)[i];
    case PQ_DTYPE_I64:
        return ((const int64_t *)data)[i];
    case PQ_DTYPE_U64:
        return (int64_t)((const uint64_t *)data)[i];
    default: {
        double v = pq_dtype_load(t, data, i);
        if (!(v == v)) return 0;
        if (v >= 9.2233720368547758e18) return INT64_MAX;
        if (v <= -9.2233720368547758e18) return INT64_MIN;
        return (int64_t)v;
    }
    }
}

/* Clamps a double into [lo, hi] before an integer conversion (NaN -> 0). */
static double pq_clampd(double v, double lo, double hi) {
    if (!(v == v)) return 0.0;
    return v < lo ? lo : (v > hi ? hi : v);
}

void pq_dtype_store(enum pq_dtype t, void *data, size_t i, double v) {
    switch (t) {
    case PQ_DTYPE_F32:
        ((float *)data)[i] = (float)v;
        break;
    case PQ_DTYPE_F16:
        ((uint16_t *)data)[i] = pq_f32_to_f16((float)v);
        break;
    case PQ_DTYPE_BF16:
        ((uint16_t *)data)[i] = pq_f32_to_bf16((float)v);
        break;
    case PQ_DTYPE_F64:
        ((double *)data)[i] = v;
        break;
    case PQ_DTYPE_I8:
        ((int8_t *)data)[i] = (int8_t)pq_clampd(v, -128, 127);
        break;
    case PQ_DTYPE_U8:
        ((uint8_t *)data)[i] = (uint8_t)pq_clampd(v, 0, 255);
        break;
    case PQ_DTYPE_I16:
        ((int16_t *)data)[i] = (int16_t)pq_clampd(v, -32768, 32767);
        break;
    case PQ_DTYPE_U16:
        ((uint16_t *)data)[i] = (uint16_t)pq_clampd(v, 0, 65535);
        break;
    case PQ_DTYPE_I32:
        ((int32_t *)data)[i] = (int32_t)pq_clampd(v, -2147483648.0, 2147483647.0);
        break;
    case PQ_DTYPE_U32:
        ((uint32_t *)data)[i] = (uint32_t)pq_clampd(v, 0, 4294967295.0);
        break;
    case PQ_DTYPE_I64:
        ((int64_t *)data)[i] = (int64_t)pq_clampd(v, -9.2233720368547758e18, 9.2233720368547748e18);
        break;
    case PQ_DTYPE_U64:
        ((uint64_t *)data)[i] = (uint64_t)pq_clampd(v, 0, 1.8446744073709550e19);
        break;
    case PQ_DTYPE_BOOL:
        ((uint8_t *)data)[i] = (v != 0.0 && v == v) ? 1 : (v != v ? 1 : 0);
        break;
    default:
        break;
    }
}
