/* Text IR helpers shared by printer and parser: bare-name rules, the sidecar buffer, and float
 * spellings that round-trip exactly (shortest "%.Ng" that reads back to the same bits). */
#include "text_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dtype.h"

void pq_text_bin_free(pq_text_bin *bin) {
    if (!bin) return;
    pq_free(bin->data);
    bin->data = NULL;
    bin->size = bin->cap = 0;
}

bool pq_text_value_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '/' || c == '-';
}

bool pq_text_plain_value(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if (!pq_text_value_char((unsigned char)*s)) return false;
    return true;
}

bool pq_text_plain_word(const char *s) {
    if (!s || !*s) return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (s++; *s; s++) {
        int c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Decimal numbers ([+-]digits[.digits][e[+-]digits]) and "inf"/"-inf" only: strtod alone would
 * also take hex floats, "nan" and "infinity". */
static bool pq_text_number_syntax(const char *s) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (strcmp(p, "inf") == 0) return true;
    bool digits = false;
    while (*p >= '0' && *p <= '9')
        p++, digits = true;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits = true;
    }
    if (!digits) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

bool pq_text_read_f32(const char *s, float *out) {
    if (!pq_text_number_syntax(s)) return false;
    *out = strtof(s, NULL); /* overflow gives inf, underflow rounds: both correctly rounded */
    return true;
}

bool pq_text_read_f64(const char *s, double *out) {
    if (!pq_text_number_syntax(s)) return false;
    *out = strtod(s, NULL);
    return true;
}

static bool pq_fmt_special(double v, bool canonical_nan, unsigned long long bits, int hexdigits,
                           char *buf, size_t cap) {
    if (isnan(v)) {
        if (canonical_nan)
            snprintf(buf, cap, "nan");
        else
            snprintf(buf, cap, "nan(0x%0*llx)", hexdigits, bits);
        return true;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v < 0 ? "-inf" : "inf");
        return true;
    }
    return false;
}

void pq_text_fmt_f32(float v, char *buf, size_t cap) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    if (pq_fmt_special(v, bits == 0x7fc00000u, bits, 8, buf, cap)) return;
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        float r;
        uint32_t rb;
        if (pq_text_read_f32(buf, &r) && (memcpy(&rb, &r, 4), rb == bits)) return;
    }
}

void pq_text_fmt_f64(double v, char *buf, size_t cap) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    if (pq_fmt_special(v, bits == 0x7ff8000000000000ull, bits, 16, buf, cap)) return;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        double r;
        uint64_t rb;
        if (pq_text_read_f64(buf, &r) && (memcpy(&rb, &r, 8), rb == bits)) return;
    }
}

/* Half-precision types: shortest spelling whose f32 reading converts back to the same code. */
static void pq_fmt_half(uint16_t h, bool bf, char *buf, size_t cap) {
    float v = bf ? pq_bf16_to_f32(h) : pq_f16_to_f32(h);
    if (pq_fmt_special(v, h == (bf ? 0x7fc0 : 0x7e00), h, 4, buf, cap)) return;
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        float r;
        if (pq_text_read_f32(buf, &r) && (bf ? pq_f32_to_bf16(r) : pq_f32_to_f16(r)) == h) return;
    }
}

void pq_text_fmt_f16(uint16_t h, char *buf, size_t cap) {
    pq_fmt_half(h, false, buf, cap);
}
void pq_text_fmt_bf16(uint16_t h, char *buf, size_t cap) {
    pq_fmt_half(h, true, buf, cap);
}
