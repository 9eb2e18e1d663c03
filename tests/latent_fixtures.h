/* latent_fixtures.h — test data shared by the latent ODE tests (test_latent.c,
 * test_latent_api.c): a small model, a batch of three 2-D series on the union of
 * their irregular times (each with its own encoder and likelihood observations), the
 * documented parameter layout, and the loss through the public call.
 */
#ifndef LIBNODE_TEST_LATENT_FIXTURES_H
#define LIBNODE_TEST_LATENT_FIXTURES_H

#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* Small sizes, so that differences over many parameters stay fast. */
#define LD 2     /* obs_dim */
#define LL 3     /* latent_dim */
#define LH 5     /* rnn_hidden */
#define LHF 6    /* dyn_hidden */
#define LHG 5    /* dec_hidden */
#define LSTD 0.5
#define L_PI 3.14159265358979323846

/* seq.h's layout: [cell | encoder output layer | f | g]. */
#define LP_CELL (LH * (LD + 1 + LH) + LH)
#define LP_ENC ((LH + 1) * 2 * LL)
#define LP_F ((LL + 1) * LHF + (LHF + 1) * LHF + (LHF + 1) * LL)
#define LP_G ((LL + 1) * LHG + (LHG + 1) * LD)
#define LP (LP_CELL + LP_ENC + LP_F + LP_G)
/* The same model with a GRU encoder cell: H (3 (D + 1 + H) + 4) cell parameters. */
#define LP_CELL_GRU (LH * (3 * (LD + 1 + LH) + 4))
#define LP_GRU (LP_CELL_GRU + LP_ENC + LP_F + LP_G)

static inline node_latent_config small_config(void)
{
    node_latent_config c;
    memset(&c, 0, sizeof c);
    c.obs_dim = LD;
    c.latent_dim = LL;
    c.rnn_hidden = LH;
    c.dyn_hidden = LHF;
    c.dec_hidden = LHG;
    c.obs_std = LSTD;
    return c;
}

/* The small model with the encoder cell kind (0: the default, tanh). */
static inline node_latent *small_model_cell(uint64_t seed, node_cell_kind kind)
{
    node_latent_config c = small_config();
    c.rnn_cell = (uint64_t)kind;
    node_latent *m = NULL;
    node_error err;
    assert_status(node_latent_create(&m, &c, &err), NODE_OK);
    assert_int_equal(node_latent_nparams(m), kind == NODE_CELL_GRU ? LP_GRU : LP);
    node_latent_init(m, seed);
    return m;
}

static inline node_latent *small_model(uint64_t seed)
{
    return small_model_cell(seed, (node_cell_kind)0);
}

/* Three series on the union of their times; '1' in a mask row: observed there.
     series 0: encoder and likelihood at 0, 0.3, 0.9, 1.5, 2.25
     series 1: encoder at 0.45, 0.9; likelihood at 0.45, 0.9, 1.8 (extrapolation)
     series 2: encoder at 0.3, 1.2, 1.8; likelihood at 1.2, 1.5, 1.8, 2.25 */
#define LB 3
#define LNT 8
static const double LTS[LNT] = { 0.0, 0.3, 0.45, 0.9, 1.2, 1.5, 1.8, 2.25 };
static const unsigned char LENC[LNT * LB] = {
    1, 0, 0,   1, 0, 1,   0, 1, 0,   1, 1, 0,   0, 0, 1,   1, 0, 0,   0, 0, 1,   1, 0, 0,
};
static const unsigned char LOBS[LNT * LB] = {
    1, 0, 0,   1, 0, 0,   0, 1, 0,   1, 1, 0,   0, 0, 1,   1, 0, 1,   0, 1, 1,   1, 0, 1,
};
static const double LEPS[LB * LL] = { 0.3, -1.1, 0.7, -0.4, 0.9, 0.2, 1.3, -0.6, -0.8 };

/* Series b's value at time t: a rotation of its own speed and phase, decaying
   (unobserved entries hold NaN: they must never be read). */
static inline void series_value(size_t b, double t, double *x)
{
    double w = 0.8 + 0.3 * (double)b, ph = 0.5 * (double)b, r = 1.2 * exp(-0.15 * t);
    x[0] = r * cos(w * t + ph);
    x[1] = r * sin(w * t + ph) + 0.1 * (double)b;
}

static inline void batch_values(double *xs)
{
    for (size_t i = 0; i < LNT; i++)
        for (size_t b = 0; b < LB; b++) {
            double *x = xs + (i * LB + b) * LD;
            if (LENC[i * LB + b] || LOBS[i * LB + b])
                series_value(b, LTS[i], x);
            else
                x[0] = x[1] = NAN;
        }
}

static inline node_options tight_options(void)
{
    node_options o = node_options_default();
    o.rtol = 1e-11;
    o.atol = 1e-12;
    return o;
}

/* A fixed-step RK4 solve: backprop is then the exact gradient of a smooth map. */
static inline node_options rk4_options(void)
{
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = 0.01;
    return o;
}

/* got against want entry by entry, to rtol relative and atol_rel × the largest |want|. */
static inline void assert_grads_close(size_t n, const double *got, const double *want,
                                      double rtol, double atol_rel)
{
    double gmax = 0;
    for (size_t k = 0; k < n; k++)
        gmax = fmax(gmax, fabs(want[k]));
    for (size_t k = 0; k < n; k++)
        assert_close(got[k], want[k], rtol, atol_rel * gmax);
}

#endif /* LIBNODE_TEST_LATENT_FIXTURES_H */
