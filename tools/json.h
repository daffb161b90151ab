/* A small streaming JSON writer for the command line's reports: nesting, commas and string
 * escapes handled; non-finite numbers are written as null (JSON has no infinities). */
#ifndef PQ_JSON_H
#define PQ_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pq_json {
    FILE *f;
    int depth;
    bool need_comma[32];
    bool after_key;
} pq_json;

void pq_json_init(pq_json *j, FILE *f);
void pq_json_begin_object(pq_json *j);
void pq_json_end_object(pq_json *j);
void pq_json_begin_array(pq_json *j);
void pq_json_end_array(pq_json *j);
/* Writes "key": (the next value call writes the value). */
void pq_json_key(pq_json *j, const char *key);
void pq_json_string(pq_json *j, const char *s); /* NULL writes null */
void pq_json_number(pq_json *j, double v);      /* non-finite writes null */
void pq_json_int(pq_json *j, int64_t v);
void pq_json_bool(pq_json *j, bool v);
void pq_json_null(pq_json *j);

#endif
