/* json.h — the one-line JSON result object every example prints last:
 *   ex_json j; ex_json_begin(&j, stdout); ex_json_str(&j, "example", "spiral");
 *   ex_json_num(&j, "loss", 0.25); ex_json_int(&j, "iterations", 2000); ex_json_end(&j);
 * prints {"example": "spiral", "loss": 0.25, "iterations": 2000} and a newline.
 * Strings are escaped (quotes, backslashes, control characters); non-finite numbers
 * are written as null, which JSON can represent.
 */
#ifndef EX_JSON_H
#define EX_JSON_H

#include <stdint.h>
#include <stdio.h>

typedef struct ex_json {
    FILE *f;
    int n;   /* members written so far */
} ex_json;

void ex_json_begin(ex_json *j, FILE *f);
void ex_json_str(ex_json *j, const char *key, const char *value);
void ex_json_num(ex_json *j, const char *key, double value);
void ex_json_int(ex_json *j, const char *key, int64_t value);
void ex_json_bool(ex_json *j, const char *key, int value);
/* A member whose value is already JSON text (an array or object built by the caller). */
void ex_json_raw(ex_json *j, const char *key, const char *json);
void ex_json_end(ex_json *j);

#endif /* EX_JSON_H */
