/* Implementation of the streaming JSON writer: comma placement by nesting level, escaping of
 * control characters, quotes and backslashes, shortest round-trip-safe number formatting. */
#include "json.h"

#include <math.h>

void pq_json_init(pq_json *j, FILE *f) {
    j->f = f;
    j->depth = 0;
    j->need_comma[0] = false;
    j->after_key = false;
}

static void pq_json_sep(pq_json *j) {
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth]) fputs(", ", j->f);
    j->need_comma[j->depth] = true;
}

static void pq_json_open(pq_json *j, char c) {
    pq_json_sep(j);
    fputc(c, j->f);
    if (j->depth < 31) j->depth++;
    j->need_comma[j->depth] = false;
}

static void pq_json_close(pq_json *j, char c) {
    if (j->depth > 0) j->depth--;
    fputc(c, j->f);
}

void pq_json_begin_object(pq_json *j) {
    pq_json_open(j, '{');
}
void pq_json_end_object(pq_json *j) {
    pq_json_close(j, '}');
}
void pq_json_begin_array(pq_json *j) {
    pq_json_open(j, '[');
}
void pq_json_end_array(pq_json *j) {
    pq_json_close(j, ']');
}

static void pq_json_raw_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void pq_json_key(pq_json *j, const char *key) {
    pq_json_sep(j);
    pq_json_raw_string(j->f, key);
    fputs(": ", j->f);
    j->after_key = true;
}

void pq_json_string(pq_json *j, const char *s) {
    pq_json_sep(j);
    if (s)
        pq_json_raw_string(j->f, s);
    else
        fputs("null", j->f);
}

void pq_json_number(pq_json *j, double v) {
    pq_json_sep(j);
    if (isfinite(v))
        fprintf(j->f, "%.17g", v);
    else
        fputs("null", j->f);
}

void pq_json_int(pq_json *j, int64_t v) {
    pq_json_sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void pq_json_bool(pq_json *j, bool v) {
    pq_json_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void pq_json_null(pq_json *j) {
    pq_json_sep(j);
    fputs("null", j->f);
}
