/* progress.h — a live progress line for the examples: on a terminal it redraws in
 * place with '\r' (a few times a second at most), elsewhere (a log, a pipe, CI) it
 * prints plain lines only when asked to.  Elapsed time and ETA are appended.
 * Uses POSIX isatty/clock_gettime; allocates nothing.
 */
#ifndef EX_PROGRESS_H
#define EX_PROGRESS_H

#include <stdio.h>

typedef struct ex_progress {
    FILE  *out;
    int    tty;          /* out is a terminal: redraw in place */
    long   total;        /* iterations planned (0: no ETA) */
    double t_start;      /* ex_clock() at start */
    double t_drawn;      /* last redraw */
    int    width;        /* length of the last line drawn (to blank its tail) */
    char   line[256];
} ex_progress;

/* Seconds on a monotonic clock. */
double ex_clock(void);

/* "1.23 s", "4 min 05 s", "2 h 03 min", "123 ms" into buf. */
void ex_format_duration(double seconds, char *buf, size_t n);

/* Start timing `total` iterations, writing to out (stderr, typically). */
void ex_progress_start(ex_progress *p, FILE *out, long total);

/* After iteration `done` (1-based) of total: the caller's text, then elapsed / ETA.
   On a terminal: redrawn in place, at most ~10 times a second unless force.
   Elsewhere: printed as its own line only when force is non-zero. */
void ex_progress_draw(ex_progress *p, long done, int force, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Print text above the live line (the line is redrawn on the next draw). */
void ex_progress_print(ex_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* End the live line (a newline on a terminal).  Returns the seconds elapsed. */
double ex_progress_end(ex_progress *p);

#endif /* EX_PROGRESS_H */
