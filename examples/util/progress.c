/* progress.c — see progress.h. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double ex_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ex_format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0))
        snprintf(buf, n, "?");
    else if (s < 1.0)
        snprintf(buf, n, "%.0f ms", s * 1e3);
    else if (s < 60.0)
        snprintf(buf, n, "%.1f s", s);
    else if (s < 3600.0)
        snprintf(buf, n, "%d min %02d s", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%d h %02d min", (int)(s / 3600), ((int)s % 3600) / 60);
}

void ex_progress_start(ex_progress *p, FILE *out, long total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total;
    p->t_start = ex_clock();
    p->t_drawn = -1.0;
}

void ex_progress_draw(ex_progress *p, long done, int force, const char *fmt, ...)
{
    double now = ex_clock();
    if (p->tty ? (!force && now - p->t_drawn < 0.1) : !force)
        return;
    p->t_drawn = now;

    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(p->line, sizeof p->line, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len >= sizeof p->line)
        len = (int)sizeof p->line - 1;

    double el = now - p->t_start;
    char e[32], eta[32] = "";
    ex_format_duration(el, e, sizeof e);
    if (p->total > 0 && done > 0 && done < p->total) {
        char r[24];
        ex_format_duration(el / (double)done * (double)(p->total - done), r, sizeof r);
        snprintf(eta, sizeof eta, " | ETA %s", r);
    }
    if (p->tty) {
        int w = fprintf(p->out, "\r%s | %s%s", p->line, e, eta) - 1;
        for (int i = w; i < p->width; i++)
            fputc(' ', p->out);      /* blank what the longer last line left */
        p->width = w;
    } else {
        fprintf(p->out, "%s | %s%s\n", p->line, e, eta);
    }
    fflush(p->out);
}

void ex_progress_print(ex_progress *p, const char *fmt, ...)
{
    if (p->tty && p->width > 0) {
        fputc('\r', p->out);
        for (int i = 0; i < p->width; i++)
            fputc(' ', p->out);
        fputc('\r', p->out);
        p->width = 0;
        p->t_drawn = -1.0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fflush(p->out);
}

double ex_progress_end(ex_progress *p)
{
    if (p->tty && p->width > 0)
        fputc('\n', p->out);
    p->width = 0;
    fflush(p->out);
    return ex_clock() - p->t_start;
}
