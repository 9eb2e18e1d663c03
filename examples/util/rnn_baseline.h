/* rnn_baseline.h — the RNN baselines of Chen et al. (2018), Table 2, for
 * examples/latent_ode.c: a tanh RNN (node_rnn) reads a series one observation at a
 * time — input x_k, or [x_k, t_{k+1} − t_k] with the time gap ("rnn-dt") — and a
 * linear readout (node_mlp, hidden → 2D) gives the mean and log-variance of the next
 * observation.  Trained on the Gaussian negative log-likelihood of every next
 * observation (node_gaussian_nll) by backprop through time (node_rnn_backward);
 * predicts beyond its observations by feeding its own means back.
 */
#ifndef EX_RNN_BASELINE_H
#define EX_RNN_BASELINE_H

#include <libnode.h>

typedef struct ex_rnn_model {
    node_rnn *cell;
    node_mlp *readout;
    size_t D, H, nin;
    int with_dt;
    /* workspaces of a batch: up to maxB series of up to maxT steps */
    size_t maxB, maxT;
    double *xs, *hs, *out, *mu, *lv, *tgt, *dmu, *dlv, *dout, *dhs;
    unsigned char *mask, *tmask;
    double *g_cell, *g_out;     /* gradients, the layouts of the two parameter vectors */
} ex_rnn_model;

/* A model for D-dimensional series, H hidden units, batches of up to maxB series of up
   to maxlen observations; parameters initialised from seed (PyTorch's defaults).
   NODE_EINVAL / NODE_ENOMEM (err says which); call ex_rnn_free all the same. */
node_status ex_rnn_create(ex_rnn_model *m, size_t D, size_t H, int with_dt, size_t maxB,
                          size_t maxlen, uint64_t seed, node_error *err);
void ex_rnn_free(ex_rnn_model *m);

/* Mean over the series sel[0 .. B-1] of d of the summed NLL of each next observation,
   and its gradient (g_cell, g_out).  Series of one point contribute nothing. */
node_status ex_rnn_loss(ex_rnn_model *m, const node_tseries *d, size_t B, const size_t *sel,
                        double *loss, node_error *err);

/* One series (times t, values x, n points): read the first nenc observations, then
   predict every point: pred[k] (n × D) is the one-step prediction of x_k from
   x_0 .. x_{k−1} for 0 < k < nenc (teacher forcing), and for k >= nenc the free run
   that feeds back its own means; pred[0] = x_0 (no prediction).  nenc >= 1. */
node_status ex_rnn_predict(ex_rnn_model *m, size_t n, const double *t, const double *x,
                           size_t nenc, double *pred);

#endif /* EX_RNN_BASELINE_H */
