/* odenet_fig3.h — the paper's Figure 3 ("Statistics of a trained ODE-Net") for a
 * model of odenet_model.h: for every tolerance 1e0 … 1e-5 (rtol = atol) and a few
 * test batches, the ODE block's forward NFE, its numerical error against a solve at
 * 1e-7, the forward solve's wall time, and the adjoint's backward NFE; the NFE-F of
 * every training batch.  Four SVG panels and a CSV of the points.
 */
#ifndef EX_ODENET_FIG3_H
#define EX_ODENET_FIG3_H

#include <stdint.h>

#include "odenet_model.h"

#define EX_FIG3_NTOL 6
#define EX_FIG3_REF_TOL 1e-7

typedef struct ex_fig3_point {
    double tol;
    size_t batch;
    double nfe_f, nfe_b;
    double error;     /* RMS over the block output of |h − h_ref| / (1 + |h_ref|): the
                         solver's own error norm times tol, so tol is its target */
    double seconds;   /* the forward solve */
} ex_fig3_point;

typedef struct ex_fig3 {
    size_t n;                          /* points: EX_FIG3_NTOL × batches */
    ex_fig3_point *pt;
    double ref_nfe;                    /* mean NFE of the reference solves */
    /* panel (d): NFE-F of training batch i at epoch i / per_epoch */
    const double *train_nfe;
    size_t ntrain, per_epoch;
} ex_fig3;

/* Measure on nb batches of B images each (x: nb·B images of rows × cols, labels).
   The model's solver options are restored afterwards.  0; -1 with msg set. */
int ex_fig3_measure(ex_odenet *m, size_t nb, size_t B, const double *x,
                    const unsigned char *labels, ex_fig3 *f, char *msg, size_t msgn);

/* Summary over the points of one tolerance (the index into 1e0 … 1e-5). */
void ex_fig3_means(const ex_fig3 *f, int k, double *nfe_f, double *nfe_b, double *error,
                   double *seconds);

/* The four panels as one SVG page; the points as CSV.  0, or -1 (errno). */
int ex_fig3_write_svg(const char *path, const ex_fig3 *f, const char *title);
int ex_fig3_write_csv(const char *path, const ex_fig3 *f);

void ex_fig3_free(ex_fig3 *f);

#endif /* EX_ODENET_FIG3_H */
