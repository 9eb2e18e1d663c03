/* latent.c — the latent ODE of Chen, Rubanova, Bettencourt, Duvenaud (NeurIPS 2018),
 * Section 5 and Appendix E (torchdiffeq's examples/latent_ode.py), the model object:
 * its configuration, its four parts (recognition cell, encoder output layer, dynamics
 * f, decoder g) and their one flat parameter vector, PyTorch's initialisation.  The
 * −ELBO, its gradient and prediction are latent_loss.c; files latent_io.c.
 */
#include "seq/latent.h"

#include <math.h>
#include <string.h>

/* ---- sizes ---------------------------------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* [cell: H (D+1+H) + H (tanh) or H (3 (D+1+H) + 4) (GRU)] [encoder: (H+1) 2L] [f: (L+1) Hf + (Hf+1) Hf + (Hf+1) L]
   [g: (L+1) Hg + (Hg+1) D] */
uint64_t node__latent_count(const node_latent_config *c)
{
    uint64_t D = c->obs_dim, L = c->latent_dim, H = c->rnn_hidden, Hf = c->dyn_hidden,
             Hg = c->dec_hidden;
    uint64_t w = sat_add(sat_add(D, 1), H);
    uint64_t cell = c->rnn_cell == NODE_CELL_GRU ? sat_mul(H, sat_add(sat_mul(3, w), 4))
                                                 : sat_add(sat_mul(H, w), H);
    uint64_t enc = sat_mul(sat_add(H, 1), sat_mul(2, L));
    uint64_t f = sat_add(sat_add(sat_mul(sat_add(L, 1), Hf), sat_mul(sat_add(Hf, 1), Hf)),
                         sat_mul(sat_add(Hf, 1), L));
    uint64_t g = sat_add(sat_mul(sat_add(L, 1), Hg), sat_mul(sat_add(Hg, 1), D));
    return sat_add(sat_add(cell, enc), sat_add(f, g));
}

/* ---- configuration ----------------------------------------------------------------- */

node_status node_latent_defaults(size_t obs_dim, node_latent_config *cfg)
{
    if (!cfg || obs_dim == 0)
        return NODE_EINVAL;
    memset(cfg, 0, sizeof *cfg);
    cfg->obs_dim = obs_dim;
    cfg->latent_dim = 4;     /* torchdiffeq's latent_ode.py: latent_dim = 4, */
    cfg->rnn_hidden = 25;    /* rnn_nhidden = 25, */
    cfg->dyn_hidden = 20;    /* nhidden = 20 (f and g), */
    cfg->dec_hidden = 20;
    cfg->obs_std = 0.3;      /* noise_std = 0.3 */
    cfg->rnn_cell = NODE_CELL_TANH;
    return NODE_OK;
}

node_status node__latent_resolve(const node_latent_config *cfg, node_latent_config *out,
                                 size_t *np, char *msg)
{
    if (!cfg)
        return node__msg(msg, NODE_EINVAL, "cfg is NULL");
    if (!node__zero_words(cfg->reserved_, sizeof cfg->reserved_ / sizeof cfg->reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "cfg has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not zero the struct "
                         "(start from node_latent_defaults)", node_version());
    if (cfg->obs_dim == 0)
        return node__msg(msg, NODE_EINVAL, "cfg->obs_dim is 0: the series need a dimension");
    if (!(cfg->obs_std >= 0) || !isfinite(cfg->obs_std))
        return node__msg(msg, NODE_EINVAL,
                         "cfg->obs_std = %g: the likelihood's standard deviation must be "
                         "positive and finite (0: the default, 0.3)", cfg->obs_std);
    if (cfg->rnn_cell != 0 && cfg->rnn_cell != NODE_CELL_TANH && cfg->rnn_cell != NODE_CELL_GRU)
        return node__msg(msg, NODE_EINVAL,
                         "cfg->rnn_cell = %llu is not a cell kind of the encoder (%d: tanh, "
                         "%d: GRU, 0: tanh)", (unsigned long long)cfg->rnn_cell,
                         (int)NODE_CELL_TANH, (int)NODE_CELL_GRU);
    node_latent_config c;
    node_latent_defaults(1, &c);
    c.obs_dim = cfg->obs_dim;
    if (cfg->latent_dim)
        c.latent_dim = cfg->latent_dim;
    if (cfg->rnn_hidden)
        c.rnn_hidden = cfg->rnn_hidden;
    if (cfg->dyn_hidden)
        c.dyn_hidden = cfg->dyn_hidden;
    if (cfg->dec_hidden)
        c.dec_hidden = cfg->dec_hidden;
    if (cfg->obs_std > 0)
        c.obs_std = cfg->obs_std;
    if (cfg->rnn_cell)
        c.rnn_cell = cfg->rnn_cell;
    /* Every size enters the count at least once, so a count that fits bounds them all. */
    uint64_t P = node__latent_count(&c);
    if (P > SIZE_MAX / sizeof(double))
        return node__msg(msg, NODE_ENOMEM,
                         "cfg describes %llu parameters: more than memory can hold",
                         (unsigned long long)P);
    *out = c;
    *np = (size_t)P;
    return NODE_OK;
}

/* ---- creation --------------------------------------------------------------------- */

void node_latent_free(node_latent *m)
{
    if (!m)
        return;
    node_rnn_free(m->rnn);
    node_mlp_free(m->enc);
    node_mlp_free(m->f);
    node_mlp_free(m->g);
    node_mlp_ws_free(m->fws);
    node__free(m->dhs);
    node__free(m->theta);
    node__free(m->arena);
    node__free(m);
}

node_status node_latent_create(node_latent **out, const node_latent_config *cfg,
                               node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    node_latent_config c;
    size_t np;
    node_status st = node__latent_resolve(cfg, &c, &np, msg);
    if (st != NODE_OK)
        return node__err_end(err, st);
    node_latent *m = node__calloc(1, sizeof *m);
    if (!m)
        return node__err_end(err, node__msg(msg, NODE_ENOMEM, "no memory for the model"));
    m->cfg = c;
    m->D = (size_t)c.obs_dim;
    m->L = (size_t)c.latent_dim;
    m->H = (size_t)c.rnn_hidden;
    m->Hf = (size_t)c.dyn_hidden;
    m->Hg = (size_t)c.dec_hidden;
    m->np = np;
    const size_t enc_sizes[2] = { m->H, 2 * m->L };
    const node_activation enc_acts[1] = { NODE_ACT_IDENTITY };
    const size_t f_sizes[4] = { m->L, m->Hf, m->Hf, m->L };
    const node_activation f_acts[3] = { NODE_ACT_ELU, NODE_ACT_ELU, NODE_ACT_IDENTITY };
    const size_t g_sizes[3] = { m->L, m->Hg, m->D };
    const node_activation g_acts[2] = { NODE_ACT_RELU, NODE_ACT_IDENTITY };
    /* The sizes were checked: what fails below is memory. */
    if ((st = node_rnn_create(&m->rnn, (node_cell_kind)c.rnn_cell, m->D + 1, m->H, NULL))
            != NODE_OK
        || (st = node_mlp_create(&m->enc, 1, enc_sizes, enc_acts, 0)) != NODE_OK
        || (st = node_mlp_create(&m->f, 3, f_sizes, f_acts, 0)) != NODE_OK
        || (st = node_mlp_create(&m->g, 2, g_sizes, g_acts, 0)) != NODE_OK) {
        node_latent_free(m);
        return node__err_end(err, node__msg(msg, st, "the model's parts could not be made: %s",
                                            node_strerror(st)));
    }
    m->off_enc = node_rnn_nparams(m->rnn);
    m->off_f = m->off_enc + node_mlp_nparams(m->enc);
    m->off_g = m->off_f + node_mlp_nparams(m->f);
    if (m->off_g + node_mlp_nparams(m->g) != np) {   /* the layouts' formulas; a guard */
        node_latent_free(m);
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "the parts hold %zu parameters, not the %zu "
                                            "of the documented layout",
                                            m->off_g + node_mlp_nparams(m->g), np));
    }
    m->theta = node__calloc(np, sizeof(double));
    if (!m->theta) {
        node_latent_free(m);
        return node__err_end(err, node__msg(msg, NODE_ENOMEM,
                                            "no memory for %zu parameters", np));
    }
    *out = m;
    return node__err_end(err, NODE_OK);
}

size_t node_latent_nparams(const node_latent *m) { return m ? m->np : 0; }
double *node_latent_params(node_latent *m) { return m ? m->theta : NULL; }

node_status node_latent_config_get(const node_latent *m, node_latent_config *cfg)
{
    if (!m || !cfg)
        return NODE_EINVAL;
    *cfg = m->cfg;
    return NODE_OK;
}

void node__latent_params_in(node_latent *m)
{
    memcpy(node_rnn_params(m->rnn), m->theta, m->off_enc * sizeof(double));
    memcpy(node_mlp_params(m->enc), m->theta + m->off_enc,
           (m->off_f - m->off_enc) * sizeof(double));
    memcpy(node_mlp_params(m->f), m->theta + m->off_f, (m->off_g - m->off_f) * sizeof(double));
    memcpy(node_mlp_params(m->g), m->theta + m->off_g, (m->np - m->off_g) * sizeof(double));
}

static uint64_t mix(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + k * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

void node_latent_init(node_latent *m, uint64_t seed)
{
    if (!m)
        return;
    node_rnn_init(m->rnn, mix(seed, 1));
    node_mlp_init(m->enc, mix(seed, 2));
    node_mlp_init(m->f, mix(seed, 3));
    node_mlp_init(m->g, mix(seed, 4));
    memcpy(m->theta, node_rnn_params(m->rnn), m->off_enc * sizeof(double));
    memcpy(m->theta + m->off_enc, node_mlp_params(m->enc),
           (m->off_f - m->off_enc) * sizeof(double));
    memcpy(m->theta + m->off_f, node_mlp_params(m->f), (m->off_g - m->off_f) * sizeof(double));
    memcpy(m->theta + m->off_g, node_mlp_params(m->g), (m->np - m->off_g) * sizeof(double));
}
