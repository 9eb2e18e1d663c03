/* svg.c — see svg.h. */
#include "svg.h"

#include <math.h>
#include <string.h>

int ex_svg_begin(ex_svg *s, const char *path, double width, double height)
{
    memset(s, 0, sizeof *s);
    s->f = fopen(path, "w");
    if (!s->f)
        return -1;
    fprintf(s->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"Helvetica, Arial, sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            width, height, width, height);
    return 0;
}

int ex_svg_end(ex_svg *s)
{
    if (!s->f)
        return -1;
    fprintf(s->f, "</svg>\n");
    int bad = s->err || ferror(s->f);
    if (fclose(s->f) != 0)
        bad = 1;
    s->f = NULL;
    return bad ? -1 : 0;
}

static double page_x(const ex_svg *s, double x)
{
    return s->px + (x - s->x0) / (s->x1 - s->x0) * s->pw;
}

static double page_y(const ex_svg *s, double y)
{
    return s->py + s->ph - (y - s->y0) / (s->y1 - s->y0) * s->ph;
}

/* Write text with &, <, > escaped. */
static void put_escaped(FILE *f, const char *t)
{
    for (; *t; t++) {
        if (*t == '&')
            fputs("&amp;", f);
        else if (*t == '<')
            fputs("&lt;", f);
        else if (*t == '>')
            fputs("&gt;", f);
        else
            fputc(*t, f);
    }
}

void ex_svg_text(ex_svg *s, double x, double y, double size, const char *anchor,
                 const char *color, const char *text)
{
    if (!s->f || !text)
        return;
    fprintf(s->f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" text-anchor=\"%s\" "
            "fill=\"%s\">", x, y, size, anchor ? anchor : "start", color ? color : "black");
    put_escaped(s->f, text);
    fprintf(s->f, "</text>\n");
}

/* A "nice" tick spacing (1, 2 or 5 × 10^k) for about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10.0, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void ticks(ex_svg *s, int vertical)
{
    double lo = vertical ? s->y0 : s->x0, hi = vertical ? s->y1 : s->x1;
    double step = nice_step(hi - lo, 5);
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
        double tv = fabs(v) < step * 1e-9 ? 0.0 : v;
        char lab[32];
        snprintf(lab, sizeof lab, "%g", tv);
        if (vertical) {
            double y = page_y(s, tv);
            fprintf(s->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"#e4e4e4\" stroke-width=\"1\"/>\n", s->px, y, s->px + s->pw, y);
            ex_svg_text(s, s->px - 5, y + 4, 11, "end", "#333", lab);
        } else {
            double x = page_x(s, tv);
            fprintf(s->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"#e4e4e4\" stroke-width=\"1\"/>\n", x, s->py, x, s->py + s->ph);
            ex_svg_text(s, x, s->py + s->ph + 15, 11, "middle", "#333", lab);
        }
    }
}

void ex_svg_panel(ex_svg *s, double x, double y, double w, double h,
                  double xmin, double xmax, double ymin, double ymax,
                  const char *title, const char *xlabel, const char *ylabel)
{
    if (!s->f)
        return;
    s->npanel++;
    /* Margins: title above, tick labels and axis labels left and below. */
    s->px = x + 52;
    s->py = y + 30;
    s->pw = w - 52 - 12;
    s->ph = h - 30 - 42;
    s->x0 = xmin;
    s->x1 = xmax > xmin ? xmax : xmin + 1;
    s->y0 = ymin;
    s->y1 = ymax > ymin ? ymax : ymin + 1;

    ticks(s, 0);
    ticks(s, 1);
    fprintf(s->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
            "stroke=\"#555\" stroke-width=\"1\"/>\n", s->px, s->py, s->pw, s->ph);
    ex_svg_text(s, s->px + s->pw / 2, y + 18, 14, "middle", "black", title);
    ex_svg_text(s, s->px + s->pw / 2, s->py + s->ph + 34, 12, "middle", "black", xlabel);
    if (ylabel) {
        double cx = x + 14, cy = s->py + s->ph / 2;
        fprintf(s->f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\" text-anchor=\"middle\" "
                "transform=\"rotate(-90 %.2f %.2f)\">", cx, cy, cx, cy);
        put_escaped(s->f, ylabel);
        fprintf(s->f, "</text>\n");
    }
    fprintf(s->f, "<clipPath id=\"clip%d\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\"/></clipPath>\n", s->npanel, s->px, s->py, s->pw, s->ph);
}

void ex_svg_line(ex_svg *s, size_t n, const double *x, size_t xstride,
                 const double *y, size_t ystride, const char *color, double width,
                 const char *dash)
{
    if (!s->f || n == 0)
        return;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        double xv = x[i * xstride], yv = y[i * ystride];
        if (!isfinite(xv) || !isfinite(yv)) {
            if (open)
                fprintf(s->f, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open) {
            fprintf(s->f, "<polyline clip-path=\"url(#clip%d)\" fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"%g\" stroke-linejoin=\"round\"%s%s%s points=\"",
                    s->npanel, color, width,
                    dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
            open = 1;
        }
        /* Clamp far-off points so renderers do not choke on huge coordinates. */
        double px = fmax(-1e5, fmin(1e5, page_x(s, xv)));
        double py = fmax(-1e5, fmin(1e5, page_y(s, yv)));
        fprintf(s->f, "%.2f,%.2f ", px, py);
    }
    if (open)
        fprintf(s->f, "\"/>\n");
}

void ex_svg_dot(ex_svg *s, double x, double y, double r, const char *color)
{
    if (!s->f || !isfinite(x) || !isfinite(y))
        return;
    fprintf(s->f, "<circle clip-path=\"url(#clip%d)\" cx=\"%.2f\" cy=\"%.2f\" r=\"%g\" "
            "fill=\"%s\"/>\n", s->npanel, page_x(s, x), page_y(s, y), r, color);
}

void ex_svg_rect(ex_svg *s, double x0, double y0, double x1, double y1, const char *color)
{
    if (!s->f || !isfinite(x0 + y0 + x1 + y1))
        return;
    double a = page_x(s, x0), b = page_x(s, x1), c = page_y(s, y1), d = page_y(s, y0);
    fprintf(s->f, "<rect clip-path=\"url(#clip%d)\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\" fill=\"%s\" shape-rendering=\"crispEdges\"/>\n", s->npanel,
            a < b ? a : b, c < d ? c : d, fabs(b - a), fabs(d - c), color);
}

void ex_svg_arrow(ex_svg *s, double x, double y, double dx, double dy,
                  const char *color, double width, double opacity)
{
    if (!s->f || !isfinite(x + y + dx + dy))
        return;
    double ax = page_x(s, x), ay = page_y(s, y);
    double bx = page_x(s, x + dx), by = page_y(s, y + dy);
    double ux = bx - ax, uy = by - ay, len = sqrt(ux * ux + uy * uy);
    if (len < 1e-9)
        return;
    ux /= len;
    uy /= len;
    double hl = fmin(0.35 * len + 2.0, 7.0), hw = 0.5 * hl;
    double cx = bx - hl * ux, cy = by - hl * uy;
    fprintf(s->f, "<g clip-path=\"url(#clip%d)\" stroke=\"%s\" fill=\"%s\" opacity=\"%.3f\">"
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"%g\"/>"
            "<polygon stroke=\"none\" points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f\"/></g>\n",
            s->npanel, color, color, opacity, ax, ay, cx, cy, width, bx, by, cx - hw * uy, cy + hw * ux,
            cx + hw * uy, cy - hw * ux);
}

void ex_svg_legend(ex_svg *s, size_t n, const char *const *labels,
                   const char *const *colors, const char *const *dashes)
{
    if (!s->f || n == 0)
        return;
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, 6.5 * (double)strlen(labels[i]));
    double bx = s->px + s->pw - w - 46, by = s->py + 6;
    fprintf(s->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"white\" "
            "fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n", bx, by, w + 40, 16.0 * (double)n + 6);
    for (size_t i = 0; i < n; i++) {
        double ly = by + 14 + 16.0 * (double)i;
        const char *d = dashes ? dashes[i] : NULL;
        fprintf(s->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s%s%s/>\n", bx + 6, ly - 4, bx + 30, ly - 4,
                colors && colors[i] ? colors[i] : "black", d ? " stroke-dasharray=\"" : "",
                d ? d : "", d ? "\"" : "");
        ex_svg_text(s, bx + 35, ly, 11, "start", "black", labels[i]);
    }
}
