/* json.c — see json.h. */
#include "json.h"

#include <inttypes.h>
#include <math.h>

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void key(ex_json *j, const char *k)
{
    if (j->n++ > 0)
        fputs(", ", j->f);
    put_string(j->f, k);
    fputs(": ", j->f);
}

void ex_json_begin(ex_json *j, FILE *f)
{
    j->f = f;
    j->n = 0;
    fputc('{', f);
}

void ex_json_str(ex_json *j, const char *k, const char *value)
{
    key(j, k);
    put_string(j->f, value);
}

void ex_json_num(ex_json *j, const char *k, double value)
{
    key(j, k);
    if (isfinite(value))
        fprintf(j->f, "%.10g", value);
    else
        fputs("null", j->f);
}

void ex_json_int(ex_json *j, const char *k, int64_t value)
{
    key(j, k);
    fprintf(j->f, "%" PRId64, value);
}

void ex_json_bool(ex_json *j, const char *k, int value)
{
    key(j, k);
    fputs(value ? "true" : "false", j->f);
}

void ex_json_raw(ex_json *j, const char *k, const char *json)
{
    key(j, k);
    fputs(json && json[0] ? json : "null", j->f);
}

void ex_json_end(ex_json *j)
{
    fputs("}\n", j->f);
    fflush(j->f);
}
