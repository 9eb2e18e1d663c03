/* rnn_baseline.c — see rnn_baseline.h.  Steps are time-major as in node_rnn:
 * row k·B + b is series b's k-th step; padding steps of short series are masked
 * (their state is carried, their likelihood left out). */
#include "rnn_baseline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

node_status ex_rnn_create(ex_rnn_model *m, size_t D, size_t H, int with_dt, size_t maxB,
                          size_t maxlen, uint64_t seed, node_error *err)
{
    memset(m, 0, sizeof *m);
    m->D = D;
    m->H = H;
    m->with_dt = with_dt;
    m->nin = D + (with_dt ? 1 : 0);
    m->maxB = maxB;
    m->maxT = maxlen > 1 ? maxlen - 1 : 1;
    node_status st = node_rnn_create(&m->cell, NODE_CELL_TANH, m->nin, H, err);
    if (st != NODE_OK)
        return st;
    const size_t sizes[2] = { H, 2 * D };
    const node_activation acts[1] = { NODE_ACT_IDENTITY };
    if ((st = node_mlp_create_ex(&m->readout, 1, sizes, acts, 0, err)) != NODE_OK)
        return st;
    node_rnn_init(m->cell, seed);
    node_mlp_init(m->readout, seed + 1);
    const size_t T = m->maxT, B = maxB, R = T * B;
    m->xs = malloc(R * m->nin * sizeof *m->xs);
    m->hs = malloc((T + 1) * B * H * sizeof *m->hs);
    m->dhs = malloc((T + 1) * B * H * sizeof *m->dhs);
    m->out = malloc(R * 2 * D * sizeof *m->out);
    m->dout = malloc(R * 2 * D * sizeof *m->dout);
    m->mu = malloc(R * D * sizeof *m->mu);
    m->lv = malloc(R * D * sizeof *m->lv);
    m->tgt = malloc(R * D * sizeof *m->tgt);
    m->dmu = malloc(R * D * sizeof *m->dmu);
    m->dlv = malloc(R * D * sizeof *m->dlv);
    m->mask = malloc(R);
    m->tmask = malloc(R * D);
    m->g_cell = malloc(node_rnn_nparams(m->cell) * sizeof *m->g_cell);
    m->g_out = malloc(node_mlp_nparams(m->readout) * sizeof *m->g_out);
    if (!m->xs || !m->hs || !m->dhs || !m->out || !m->dout || !m->mu || !m->lv || !m->tgt ||
        !m->dmu || !m->dlv || !m->mask || !m->tmask || !m->g_cell || !m->g_out)
        return NODE_ENOMEM;
    return node_mlp_reserve(m->readout, R);
}

void ex_rnn_free(ex_rnn_model *m)
{
    node_rnn_free(m->cell);
    node_mlp_free(m->readout);
    free(m->xs);
    free(m->hs);
    free(m->dhs);
    free(m->out);
    free(m->dout);
    free(m->mu);
    free(m->lv);
    free(m->tgt);
    free(m->dmu);
    free(m->dlv);
    free(m->mask);
    free(m->tmask);
    free(m->g_cell);
    free(m->g_out);
    memset(m, 0, sizeof *m);
}

node_status ex_rnn_loss(ex_rnn_model *m, const node_tseries *d, size_t B, const size_t *sel,
                        double *loss, node_error *err)
{
    const size_t D = m->D, H = m->H, nin = m->nin;
    if (B == 0 || B > m->maxB) {
        snprintf(err->message, sizeof err->message, "batch of %zu series (room for %zu)", B,
                 m->maxB);
        return NODE_EINVAL;
    }
    /* Steps: series b reads x_0 .. x_{n−2} and predicts x_1 .. x_{n−1}. */
    size_t T = 1;
    for (size_t b = 0; b < B; b++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, sel[b], &id, &n, &t, &x);
        if (n - 1 > T)
            T = n - 1;
    }
    if (T > m->maxT) {
        snprintf(err->message, sizeof err->message, "a series of %zu points (room for %zu)",
                 T + 1, m->maxT + 1);
        return NODE_EINVAL;
    }
    for (size_t b = 0; b < B; b++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, sel[b], &id, &n, &t, &x);
        for (size_t k = 0; k < T; k++) {
            const size_t r = k * B + b;
            const int on = k + 1 < n;
            m->mask[r] = (unsigned char)on;
            memset(m->tmask + r * D, on, D);
            if (!on) {
                memset(m->xs + r * nin, 0, nin * sizeof *m->xs);
                memset(m->tgt + r * D, 0, D * sizeof *m->tgt);
                continue;
            }
            memcpy(m->xs + r * nin, x + k * D, D * sizeof *x);
            if (m->with_dt)
                m->xs[r * nin + D] = t[k + 1] - t[k];
            memcpy(m->tgt + r * D, x + (k + 1) * D, D * sizeof *x);
        }
    }
    const size_t R = T * B;
    node_status st = node_rnn_forward(m->cell, T, B, m->xs, m->mask, NULL, m->hs);
    if (st != NODE_OK)
        return st;
    /* Readout of h_1 .. h_T: row r predicts tgt[r]. */
    if ((st = node_mlp_forward(m->readout, R, 0.0, m->hs + B * H, m->out)) != NODE_OK)
        return st;
    for (size_t r = 0; r < R; r++) {
        memcpy(m->mu + r * D, m->out + r * 2 * D, D * sizeof *m->mu);
        memcpy(m->lv + r * D, m->out + r * 2 * D + D, D * sizeof *m->lv);
    }
    double nll;
    st = node_gaussian_nll(R * D, m->tgt, m->mu, m->lv, 0.0, m->tmask, &nll, m->dmu, m->dlv,
                           err);
    if (st != NODE_OK)
        return st;
    const double s = 1.0 / (double)B;
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < D; j++) {
            m->dout[r * 2 * D + j] = s * m->dmu[r * D + j];
            m->dout[r * 2 * D + D + j] = s * m->dlv[r * D + j];
        }
    memset(m->dhs, 0, B * H * sizeof *m->dhs);
    st = node_mlp_vjp(m->readout, R, 0.0, m->hs + B * H, m->dout, NULL, m->dhs + B * H,
                      m->g_out, NULL);
    if (st != NODE_OK)
        return st;
    st = node_rnn_backward(m->cell, T, B, m->xs, m->mask, m->hs, m->dhs, NULL, NULL, m->g_cell);
    if (st != NODE_OK)
        return st;
    *loss = nll * s;
    return NODE_OK;
}

node_status ex_rnn_predict(ex_rnn_model *m, size_t n, const double *t, const double *x,
                           size_t nenc, double *pred)
{
    const size_t D = m->D, H = m->H, nin = m->nin;
    double in[65], h[512], hs[2 * 512], out[128];   /* one step: nin, h_k, [h_k, h_{k+1}], 2D */
    if (nin > 65 || H > 512 || D > 64 || nenc < 1 || nenc > n)
        return NODE_EINVAL;
    memset(h, 0, H * sizeof *h);
    memcpy(pred, x, D * sizeof *x);
    for (size_t k = 0; k + 1 < n; k++) {
        /* Read x_k (observed, or the previous prediction), predict x_{k+1}. */
        memcpy(in, k < nenc ? x + k * D : pred + k * D, D * sizeof *in);
        if (m->with_dt)
            in[D] = t[k + 1] - t[k];
        node_status st = node_rnn_forward(m->cell, 1, 1, in, NULL, h, hs);
        if (st != NODE_OK)
            return st;
        memcpy(h, hs + H, H * sizeof *h);
        if ((st = node_mlp_forward(m->readout, 1, 0.0, h, out)) != NODE_OK)
            return st;
        memcpy(pred + (k + 1) * D, out, D * sizeof *out);
    }
    return NODE_OK;
}
