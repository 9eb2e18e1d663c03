/* args.c — see args.h. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int ex_args_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", basename_of(prog));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", basename_of(prog));
    return EX_ARGS_ERROR;
}

void ex_args_usage(FILE *out, const char *prog, const ex_arg *args, size_t nargs,
                   const char *summary)
{
    if (summary)
        fprintf(out, "%s\n\n", summary);
    fprintf(out, "Usage: %s [options]\n\nOptions:\n", basename_of(prog));
    for (size_t i = 0; i < nargs; i++) {
        const ex_arg *a = &args[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", a->name, a->meta ? " " : "",
                 a->meta ? a->meta : "");
        fprintf(out, "  %-22s %s", left, a->help ? a->help : "");
        switch (a->type) {
        case EX_INT:    fprintf(out, " (default %d)", *(const int *)a->dest); break;
        case EX_LONG:   fprintf(out, " (default %ld)", *(const long *)a->dest); break;
        case EX_DOUBLE: fprintf(out, " (default %g)", *(const double *)a->dest); break;
        case EX_STRING: {
            const char *s = *(const char *const *)a->dest;
            if (s)
                fprintf(out, " (default %s)", s);
            break;
        }
        case EX_FLAG:
            break;
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-22s %s\n", "--help", "show this help");
}

/* Store the text v into a's variable; 0 or -1 for a malformed value. */
static int store(const ex_arg *a, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (a->type) {
    case EX_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < -2147483647L || x > 2147483647L)
            return -1;
        *(int *)a->dest = (int)x;
        return 0;
    }
    case EX_LONG: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno)
            return -1;
        *(long *)a->dest = x;
        return 0;
    }
    case EX_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x))
            return -1;
        *(double *)a->dest = x;
        return 0;
    }
    case EX_STRING:
        *(const char **)a->dest = v;
        return 0;
    case EX_FLAG:
        return -1;
    }
    return -1;
}

static const char *type_word(ex_argtype t)
{
    switch (t) {
    case EX_INT:
    case EX_LONG:   return "an integer";
    case EX_DOUBLE: return "a number";
    default:        return "a value";
    }
}

int ex_args_parse(int argc, char **argv, const ex_arg *args, size_t nargs,
                  const char *summary)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "program";
    for (int i = 1; i < argc; i++) {
        const char *tok = argv[i];
        if (strcmp(tok, "--help") == 0 || strcmp(tok, "-h") == 0) {
            ex_args_usage(stdout, prog, args, nargs, summary);
            return EX_ARGS_HELP;
        }
        if (strncmp(tok, "--", 2) != 0)
            return ex_args_fail(prog, "unexpected argument '%s'", tok);
        const char *eq = strchr(tok, '=');
        size_t len = eq ? (size_t)(eq - tok) : strlen(tok);
        const ex_arg *a = NULL;
        for (size_t k = 0; k < nargs; k++)
            if (strlen(args[k].name) == len && strncmp(args[k].name, tok, len) == 0)
                a = &args[k];
        if (!a)
            return ex_args_fail(prog, "unknown option '%.*s'", (int)len, tok);
        if (a->type == EX_FLAG) {
            if (eq)
                return ex_args_fail(prog, "option '%s' takes no value", a->name);
            *(int *)a->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc)
                return ex_args_fail(prog, "option '%s' needs %s", a->name,
                                    type_word(a->type));
            v = argv[++i];
        }
        if (store(a, v) != 0)
            return ex_args_fail(prog, "option '%s' needs %s, not '%s'", a->name,
                                type_word(a->type), v);
    }
    return EX_ARGS_OK;
}
