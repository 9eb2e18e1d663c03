/* tsdata.h — time-series data for examples/latent_ode.c: torchdiffeq's two spirals
 * (examples/latent_ode.py, generate_spiral2d) as node_tseries with irregular
 * subsampling and a held-out test set, a long-format CSV writer (the format
 * node_tseries_read_csv reads), and batches of series on the union of their times,
 * started at a common time and split into sub-batches when the union grows large.
 */
#ifndef EX_TSDATA_H
#define EX_TSDATA_H

#include <libnode.h>

/* ---- spirals ---------------------------------------------------------------------

   generate_spiral2d (Chen et al. 2018, torchdiffeq examples/latent_ode.py): two curves
   sampled at ntotal times t_k = stop·k/(ntotal-1) (start 0):
     clockwise          z = stop + 1 − t, r = a + 50 b / z, (r cos z − 5, r sin z)
     counter-clockwise  z = t,            r = a + b z,      (r cos z + 5, r sin z)
   Each spiral takes one curve (half each, in random order) from a random index t0:
   `window` points to observe, then (test spirals) `extra` points beyond them for the
   predictive test; t0 is uniform in [0, ntotal − window] for training spirals and in
   [0, ntotal − window − extra] for test spirals, so that training windows cover every
   part of the curves a test extrapolates into (as latent_ode.py's windows cover
   [100, 500)).  Times count from the spiral's start: t_k − t_{t0}.
   Observations are the curve plus N(0, noise²) noise. */
typedef struct ex_spiral_config {
    size_t nspiral;   /* 1000 */
    size_t ntotal;    /* 500 (generate_spiral2d's default, which latent_ode.py uses) */
    size_t window;    /* 100: the observed window */
    size_t extra;     /* 100: points beyond it, for the predictive RMSE */
    size_t ntest;     /* spirals held out for the test (the last ones) */
    double stop;      /* 6π */
    double a, b;      /* 0, 0.3 */
    double noise;     /* observation noise std */
} ex_spiral_config;

typedef struct ex_spirals {
    ex_spiral_config cfg;
    size_t len;              /* window + extra */
    double dt;               /* spacing of the times */
    double *t;               /* len: 0, dt, 2dt, ... */
    double *truth, *noisy;   /* nspiral × len × 2 */
    unsigned char *cw;       /* nspiral: 1 clockwise */
    size_t *valid;           /* nspiral: points of the len that lie on the curve */
} ex_spirals;

/* Generate.  0, or -1 when out of memory (ex_spirals_free all the same). */
int  ex_spirals_generate(ex_spirals *s, const ex_spiral_config *cfg, uint64_t seed);
void ex_spirals_free(ex_spirals *s);

/* Subsample every spiral's window at n_obs random points (without replacement, the
   same seed giving the same points): train = the first nspiral − ntest spirals at
   those points; test = the last ntest at those points and the `extra` points after
   the window; truth = test without noise.  Series ids are spiral indices.
   train_extra > 0 (at most extra): each training spiral also keeps that many of the
   points after its window (a random subset, only those on the curve), so that
   training can ask for the extrapolation the test asks for (see latent_fit.h,
   train_split).
   *split = the time between the window and what follows.  NODE_ENOMEM, or EINVAL
   from node_tseries (never for valid configs); on failure nothing is returned. */
node_status ex_spirals_subsample(const ex_spirals *s, size_t n_obs, size_t train_extra,
                                 uint64_t seed,
                                 node_tseries **train, node_tseries **test,
                                 node_tseries **truth, double *split, node_error *err);

/* ---- files -------------------------------------------------------------------------- */

/* Write d as "series,t,x1,...,xD" long format.  0, or -1 (errno). */
int ex_tseries_write_csv(const node_tseries *d, const char *path);

/* ---- batches on the union of times ----------------------------------------------

   A batch of series on the sorted union of their times (node_tseries_union), with
   t0 put first when no series is observed there, so that every batch starts its
   latent state at the same time.  Buffers hold `cap` times for up to maxB series. */
typedef struct ex_batch {
    size_t maxB, cap, dim;
    double *tbuf, *xbuf;          /* cap + 1 times, (cap + 1) × maxB × dim */
    unsigned char *mbuf, *ebuf;   /* (cap + 1) × maxB */
    /* the current batch: */
    size_t B, nt;
    double *ts, *xs;              /* nt, nt × B × dim (pointers into the buffers) */
    unsigned char *mask, *enc;    /* nt × B: observed; observed and given to the encoder */
} ex_batch;

int  ex_batch_init(ex_batch *b, size_t maxB, size_t cap, size_t dim);   /* 0, -1 ENOMEM */
void ex_batch_free(ex_batch *b);

/* Fill b with series sel[0 .. nsel-1] of d (nsel <= maxB) from time t0 (<= every
   time of d).  enc = mask where the time is <= split[i] of the series (split NULL:
   enc = mask).  NODE_EINVAL (err) when the union needs more than cap times. */
node_status ex_batch_fill(ex_batch *b, const node_tseries *d, size_t nsel, const size_t *sel,
                          double t0, const double *split, node_error *err);

/* Cut sel[0 .. nsel-1] into consecutive groups, each solved on the union of its times:
   a group grows while its union holds at most cap times (cap 0: no limit) and its
   series fill at least a fraction `density` of its times × series grid (points /
   (union · series); 0: no limit).  Every per-time cost of a batch (the solver's stops,
   the encoder's steps, decoder and likelihood rows) scales with union · series, so the
   density bounds the work wasted on times a series is not observed at.  A series
   alone always makes a group.  start[g] .. start[g+1]-1 is group g (start has room
   for nsel + 1 entries); work is scratch for 2 × the points of the selected series.
   O(nsel × union).  Returns the number of groups. */
size_t ex_union_groups(const node_tseries *d, size_t nsel, const size_t *sel, size_t cap,
                       double density, double *work, size_t *start);

/* The smallest first time and the largest number of points of any series of d. */
void ex_tseries_extent(const node_tseries *d, double *tmin, double *tmax, size_t *maxlen);

#endif /* EX_TSDATA_H */
