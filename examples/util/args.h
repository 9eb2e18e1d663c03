/* args.h — a small command-line parser shared by the examples: "--name value" and
 * "--name=value" options bound to typed variables, --help generated from the table
 * (with each variable's current value shown as its default), clear errors.
 */
#ifndef EX_ARGS_H
#define EX_ARGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum ex_argtype {
    EX_FLAG,     /* int *: set to 1, takes no value */
    EX_INT,      /* int * */
    EX_LONG,     /* long * */
    EX_DOUBLE,   /* double * (finite) */
    EX_STRING    /* const char ** (points into argv) */
} ex_argtype;

typedef struct ex_arg {
    const char *name;   /* with the dashes: "--iters" */
    ex_argtype  type;
    void       *dest;
    const char *meta;   /* the value's placeholder in --help ("N"); NULL for flags */
    const char *help;   /* one line */
} ex_arg;

enum { EX_ARGS_OK = 0, EX_ARGS_HELP = 1, EX_ARGS_ERROR = 2 };

/* Parse argv[1..argc-1] against args.  EX_ARGS_OK; EX_ARGS_HELP after printing the
   usage to stdout for --help / -h; EX_ARGS_ERROR after printing what was wrong to
   stderr (unknown option, missing or malformed value, stray argument).  A program
   returns 0 for HELP and 2 for ERROR.  summary is the first line of --help. */
int ex_args_parse(int argc, char **argv, const ex_arg *args, size_t nargs,
                  const char *summary);

/* Print the usage (summary, then one line per option with its current value). */
void ex_args_usage(FILE *out, const char *prog, const ex_arg *args, size_t nargs,
                   const char *summary);

/* Print "prog: <message>\nTry 'prog --help'." to stderr; returns EX_ARGS_ERROR, for
   checks the table cannot express (ranges, choices). */
int ex_args_fail(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* EX_ARGS_H */
