/* svg.h — a small SVG plot writer for the examples: a page of panels, each with a
 * frame, ticks, a title and axis labels mapping data coordinates to the page;
 * polylines, markers, arrows and a legend in data coordinates, clipped to the panel.
 * Plain stdio; the page is written as it is drawn.
 */
#ifndef EX_SVG_H
#define EX_SVG_H

#include <stddef.h>
#include <stdio.h>

typedef struct ex_svg {
    FILE  *f;
    int    err;                      /* a write failed */
    int    npanel;                   /* panels so far (clip-path ids) */
    double px, py, pw, ph;           /* the current panel's plot area on the page */
    double x0, x1, y0, y1;           /* ... and its data range */
} ex_svg;

/* Open path and write the page header (width × height pixels, white background).
   0, or -1 (errno) if the file cannot be created. */
int ex_svg_begin(ex_svg *s, const char *path, double width, double height);

/* Write the footer and close.  0, or -1 if any write failed. */
int ex_svg_end(ex_svg *s);

/* Start a panel: the box (x, y, w, h) on the page holds the title, the labels and
   the plot area; data [xmin, xmax] × [ymin, ymax] fill the plot area (y up).
   Draws the frame, ticks and grid; later drawing is clipped to the plot area until
   the next panel. */
void ex_svg_panel(ex_svg *s, double x, double y, double w, double h,
                  double xmin, double xmax, double ymin, double ymax,
                  const char *title, const char *xlabel, const char *ylabel);

/* A polyline through (x[i·xstride], y[i·ystride]), i < n, in data coordinates.
   dash: NULL for solid, or an SVG dash array ("6 4").  Non-finite points break
   the line. */
void ex_svg_line(ex_svg *s, size_t n, const double *x, size_t xstride,
                 const double *y, size_t ystride, const char *color, double width,
                 const char *dash);

/* A dot of radius r pixels at (x, y). */
void ex_svg_dot(ex_svg *s, double x, double y, double r, const char *color);

/* A filled rectangle with corners (x0, y0) and (x1, y1), data coordinates, no stroke
   (density maps: one cell each). */
void ex_svg_rect(ex_svg *s, double x0, double y0, double x1, double y1, const char *color);

/* An arrow from (x, y) to (x + dx, y + dy), data coordinates, with a head. */
void ex_svg_arrow(ex_svg *s, double x, double y, double dx, double dy,
                  const char *color, double width, double opacity);

/* A legend in the current panel's top-right corner: n entries of a line sample
   (colors[i], dashes[i] may be NULL) and a label. */
void ex_svg_legend(ex_svg *s, size_t n, const char *const *labels,
                   const char *const *colors, const char *const *dashes);

/* Text at page coordinates; anchor "start", "middle" or "end". */
void ex_svg_text(ex_svg *s, double x, double y, double size, const char *anchor,
                 const char *color, const char *text);

#endif /* EX_SVG_H */
