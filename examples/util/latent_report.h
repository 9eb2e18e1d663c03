/* latent_report.h — the outputs of examples/latent_ode.c: figures in the style of
 * Chen et al. (2018), Fig. 8 (observations, truth, reconstruction and extrapolation of
 * test series by each model; the latent trajectories projected to two dimensions,
 * coloured by direction) and Fig. 9 (decoded trajectories as one latent dimension
 * varies), and a CSV of every prediction.
 */
#ifndef EX_LATENT_REPORT_H
#define EX_LATENT_REPORT_H

#include <libnode.h>

#define EX_NMODELS 3

/* The test set and what the models predicted for it.  Arrays over "points" hold one
   row per observation of the test series, series after series: series i's points
   start at off[i]. */
typedef struct ex_report {
    const char *title;                 /* "n = 30 of 100", or the data file */
    const node_tseries *test;          /* values as given (noisy) */
    const node_tseries *truth;         /* the same times without noise, or NULL */
    const double *split;               /* per series: the encoder saw t <= split */
    const unsigned char *cw;           /* per series: 1 clockwise (spirals), or NULL */
    const size_t *off;
    const char *names[EX_NMODELS];     /* model names */
    const double *pred[EX_NMODELS];    /* points × D, NULL for a model not trained */
    const double *zpath;               /* points × latent_dim (latent ODE), or NULL */
    double t0;                         /* where the latent state starts */
} ex_report;

/* Fig. 8: for up to 4 test series (both directions when cw is given), one panel per
   trained model with the observations the encoder saw, the later points, the truth
   (if any), the reconstruction up to the split and the extrapolation after it (the
   latent ODE's on a dense time grid through m, the RNNs' at the series' times); then
   the latent trajectories of every test series projected onto their two principal
   axes.  m may be NULL (no latent ODE).  0, or -1 with errno (a write failed) or a
   message in err (a solve failed). */
int ex_fig8_write(const char *path, const ex_report *r, node_latent *m, node_solver *s,
                  const node_options *opt, node_error *err);

/* Fig. 9: decoded trajectories from the posterior mean z0 of a test series as one
   latent dimension varies over ±2 standard deviations of the test set's z0, for the
   (up to) four dimensions that separate the two directions best (or vary most).
   The dynamics and the decoder are rebuilt as node_mlp from the tail of
   node_latent_params ([..., f, g]); a self-check decodes the latent path of
   node_latent_predict and compares it with its output (returns -1 with a message in
   err if they differ). */
int ex_fig9_write(const char *path, const ex_report *r, node_latent *m,
                  const node_options *opt, node_error *err);

/* CSV: series, t, part (observed / predicted), x1..xD [, truth1..D], then each trained
   model's prediction.  0, or -1 with errno. */
int ex_predictions_csv(const char *path, const ex_report *r);

#endif /* EX_LATENT_REPORT_H */
