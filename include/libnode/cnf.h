/* libnode/cnf.h — continuous normalizing flows (Chen et al. 2018, §4; Grathwohl et
 * al. 2019, "FFJORD"): dynamics with a divergence (the "trace" product and its
 * vector-Jacobian product), the augmented CNF state [z, Δlog p] solved by the usual
 * solver, adjoint and backprop, log-densities, sampling, and the planar flows of the
 * paper (the continuous one with a hypernetwork of t, and the discrete one of
 * Rezende & Mohamed 2015).  Include <libnode.h> rather than this file.
 *
 * By the instantaneous change of variables (the paper's Theorem 1),
 *     d log p(z(t)) / dt = −tr(∂f/∂z(t)),
 * so a flow z' = f(t, z) carries a density along with its points.  The CNF state of
 * one point is the row [z (D values), ℓ] with dℓ/dt = −div f, where div f is the
 * exact trace tr(∂f/∂z) (D products per evaluation: right for small D) or
 * Hutchinson's estimate εᵀ(∂f/∂z)ε with a probe ε drawn once per solve (one product;
 * unbiased when E[εεᵀ] = I: Rademacher or standard normal entries).  Along a solve
 * from t_a to t_b,   log p(z(t_b)) = log p(z(t_a)) + ℓ(t_b) − ℓ(t_a).
 *
 * Threads: as everywhere in libnode (core.h).  A node_flow made by a model owns a
 * workspace of that model: one thread at a time per flow; a node_cnf is one object.
 */
#ifndef LIBNODE_CNF_H
#define LIBNODE_CNF_H

#include "core.h"
#include "mlp.h"
#include "seq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dynamics with a divergence ------------------------------------------------

   A flow maps a batch of rows z (batch × width, row-major) to dz/dt row by row: row
   r of the output depends only on row r of z (and on t and θ).  batch is an argument
   of every call, so one flow serves any batch; implementations keep workspaces that
   grow on the first larger batch and never shrink (reserve them with the model's
   reserve call to keep a training loop allocation-free).  Callbacks return 0, or
   non-zero to abort the solve (NODE_ECALLBACK, as for node_system). */
typedef struct node_flow {
    size_t width;     /* D: the length of one row z */
    size_t nparams;   /* length of θ (gradients are taken for it) */
    void  *ctx;       /* passed back to the callbacks */

    /* dzdt = f(t, z), batch × width. */
    int (*f)(void *ctx, size_t batch, double t, const double *z, double *dzdt);

    /* For every row r:
         div[r] = tr(∂f_r/∂z_r)                           (eps NULL: exact trace)
         div[r] = eps_rᵀ (∂f_r/∂z_r) eps_r                (eps batch × width)
       and dzdt = f(t, z) (skip if NULL). */
    int (*div)(void *ctx, size_t batch, double t, const double *z, const double *eps,
               double *dzdt, double *div);

    /* The vector-Jacobian product of (f, div) at (t, z) for cotangents a
       (batch × width, of dzdt) and b (batch, of div):
         vjp_z[r] = a_rᵀ ∂f_r/∂z_r + b_r ∂div_r/∂z_r      (batch × width; always written)
         vjp_p    = Σ_r (a_rᵀ ∂f_r/∂θ + b_r ∂div_r/∂θ)     (nparams; skip if NULL)
        *vjp_t    = Σ_r (a_rᵀ ∂f_r/∂t + b_r ∂div_r/∂t)     (skip if NULL)
       dzdt and div as above (each skip if NULL).  eps as for div.  b may be NULL
       (all zero: the plain VJP of f).  Outputs are overwritten, not accumulated. */
    int (*div_vjp)(void *ctx, size_t batch, double t, const double *z, const double *eps,
                   const double *a, const double *b, double *dzdt, double *div,
                   double *vjp_z, double *vjp_p, double *vjp_t);

    /* Fields of later versions: leave zero. */
    uint64_t reserved_[8];
} node_flow;

/* ---- the MLP as a flow ------------------------------------------------------------

   For an MLP with sizes[0] == sizes[nlayers] (time_input allowed: t is then an input
   of the first layer, and ∂/∂t flows through it), the trace and Hutchinson products
   go forward in tangent mode (one tangent per probe: D for the exact trace, one for
   Hutchinson) and their VJP reverses the primal and tangent passes together, using
   the second derivative of each activation (every activation has one; relu's is 0
   and its kink is taken as a point of slope 0).  node_mlp_div / node_mlp_div_vjp
   compute, with the caller's workspace (m is only read):
     y   = MLP(t, x)                      (batch × D; skip if NULL)
     div = per-row trace or eps-product   (batch; skip if NULL)
   and the products of node_flow.div_vjp.  NODE_EINVAL for NULL m, w, x, a zero
   batch, a non-square MLP, a NULL vjp_x in node_mlp_div_vjp; NODE_ENOMEM. */
LIBNODE_API node_status node_mlp_div(const node_mlp *m, node_mlp_ws *w, size_t batch,
                                     double t, const double *x, const double *eps,
                                     double *y, double *div);
LIBNODE_API node_status node_mlp_div_vjp(const node_mlp *m, node_mlp_ws *w, size_t batch,
                                         double t, const double *x, const double *eps,
                                         const double *a, const double *b, double *y,
                                         double *div, double *vjp_x, double *vjp_p,
                                         double *vjp_t);

/* The MLP as a node_flow (width sizes[0], nparams node_mlp_nparams(m)) with a
   workspace of its own, allocated here and owned by m: valid until node_mlp_free(m)
   or node_mlp_flow_release(m, out).  reserve_batch > 0 sizes the workspace for that
   batch now.  NODE_EINVAL for NULL arguments or a non-square MLP; NODE_ENOMEM. */
LIBNODE_API node_status node_mlp_flow(node_mlp *m, size_t reserve_batch, node_flow *out);
LIBNODE_API node_status node_mlp_flow_release(node_mlp *m, node_flow *flow);

/* ---- continuous normalizing flows -------------------------------------------------- */

typedef enum node_trace_kind {
    NODE_TRACE_EXACT = 0,        /* tr(∂f/∂z): D tangent products per evaluation */
    NODE_TRACE_RADEMACHER = 1,   /* Hutchinson, ε_i = ±1 with probability ½ each */
    NODE_TRACE_GAUSSIAN = 2      /* Hutchinson, ε_i ~ N(0, 1) */
} node_trace_kind;

/* "exact", "rademacher", "gaussian"; NULL for another value.  Parse also accepts
   "hutchinson" (= rademacher).  NODE_EINVAL for an unknown name. */
LIBNODE_API const char *node_trace_name(node_trace_kind k);
LIBNODE_API node_status node_trace_parse(const char *name, node_trace_kind *out);

typedef struct node_cnf_options {
    node_options ode;         /* the solves (forward and backward); a zero struct means
                                 dopri5 with rtol = atol = 1e-5 (the paper's setting) */
    double t0, t1;            /* base density at t0, data at t1; t0 == t1 (both zero by
                                 default) means t0 = 0, t1 = 1 */
    double base_var;          /* the base density N(0, base_var · I); 0 = 1 */
    node_trace_kind trace;    /* default NODE_TRACE_EXACT */
    node_grad_method grad;    /* default NODE_GRAD_ADJOINT; with NODE_GRAD_BACKPROP
                                 every transport records its solve (the tape of
                                 node_odeint_backprop, opt.ode.checkpoints included;
                                 without checkpoints and with dopri5 or bosh3 the
                                 stages too, s + 1 times the state per step), so that
                                 its gradient runs no second forward solve (and, with
                                 the stages, evaluates no f: only VJPs) */
    uint64_t seed;            /* of the Hutchinson probes (node_cnf_seed re-seeds) */
    uint64_t reserved_[8];    /* leave zero */
} node_cnf_options;

/* The defaults above, filled in (ode = dopri5, rtol = atol = 1e-5; t0 = 0, t1 = 1;
   base_var = 1; exact trace; adjoint; seed 0). */
LIBNODE_API node_cnf_options node_cnf_options_default(void);

typedef struct node_cnf node_cnf;   /* opaque */

/* A CNF over `flow` (copied; the flow's model must outlive the cnf) for batches up
   to max_batch (more grows the workspaces).  opt NULL = defaults; copied.
   NODE_EINVAL (err says which): NULL out or flow, flow->width 0, NULL callbacks,
   non-zero reserved fields, bad options (non-finite times, negative or non-finite
   base_var, unknown trace or grad, an ode option node_odeint refuses); NODE_ENOMEM. */
LIBNODE_API node_status node_cnf_create(node_cnf **out, const node_flow *flow,
                                        size_t max_batch, const node_cnf_options *opt,
                                        node_error *err);
LIBNODE_API void        node_cnf_free(node_cnf *c);               /* NULL is fine */
LIBNODE_API node_status node_cnf_set_options(node_cnf *c, const node_cnf_options *opt,
                                             node_error *err);
LIBNODE_API node_status node_cnf_get_options(const node_cnf *c, node_cnf_options *out);
/* Re-seed the probe generator. */
LIBNODE_API node_status node_cnf_seed(node_cnf *c, uint64_t seed);

/* The augmented dynamics of `batch` rows as a plain node_system, for the solver,
   adjoint and backprop calls of core.h / grad.h: the state is batch rows of
   [z (D), ℓ] (dim = batch·(D+1)), dz/dt = f, dℓ/dt = −div; vjp_p is the flow's θ.
   eps (batch × D) is the Hutchinson probe (NULL: exact trace); the system keeps the
   pointer, so the probe must outlive its use.  Valid until the next call on c that
   makes a system, or node_cnf_free. */
LIBNODE_API node_status node_cnf_system(node_cnf *c, size_t batch, const double *eps,
                                        node_system *out);

/* Move `batch` points x_in (batch × D) from time t_from to t_to (t_from != t_to,
   either order) with the CNF's trace kind (a new Hutchinson probe per call, kept for
   node_cnf_transport_grad): x_out (batch × D) and dlogp (batch), so that
       log p_{t_to}(x_out[r]) = log p_{t_from}(x_in[r]) + dlogp[r].
   stats (may be NULL) as for node_odeint. */
LIBNODE_API node_status node_cnf_transport(node_cnf *c, size_t batch, const double *x_in,
                                           double t_from, double t_to, double *x_out,
                                           double *dlogp, node_stats *stats);

/* The gradient of a loss L(x_out, dlogp) of the last node_cnf_transport (same batch,
   x_in, times and probe; x_out and dlogp as it wrote them) by the cnf's grad method:
   given dL/dx_out (batch × D) and dL/ddlogp (batch; NULL = 0), writes dL/dx_in
   (batch × D; may be NULL) and dL/dθ (flow->nparams; may be NULL).  NODE_EINVAL
   when the arguments do not match the last transport. */
LIBNODE_API node_status node_cnf_transport_grad(node_cnf *c, size_t batch,
                                                const double *x_in, double t_from,
                                                double t_to, const double *x_out,
                                                const double *dlogp,
                                                const double *dL_dxout,
                                                const double *dL_ddlogp, double *dL_dxin,
                                                double *dL_dtheta, node_stats *stats);

/* log p(x) of points at t1 under the flow (batch results in logp): transport x from
   t1 to t0 and add the base log-density there. */
LIBNODE_API node_status node_cnf_log_prob(node_cnf *c, size_t batch, const double *x,
                                          double *logp, node_stats *stats);

/* Maximum likelihood: the mean negative log-likelihood of the batch,
   nll = −(1/batch) Σ_r log p(x_r), and its gradient dnll/dθ (flow->nparams; NULL =
   skip the backward pass).  nfe_backward (may be NULL): evaluations of the backward
   pass. */
LIBNODE_API node_status node_cnf_nll(node_cnf *c, size_t batch, const double *x,
                                     double *nll, double *grad, int64_t *nfe_forward,
                                     int64_t *nfe_backward, node_stats *stats);

/* Samples: z0 (batch × D) drawn from the base density with rng (z0_out may be NULL,
   else batch × D receives them), moved from t0 to t1: x (batch × D) and, if logp is
   not NULL, log p(x) (batch). */
LIBNODE_API node_status node_cnf_sample(node_cnf *c, node_rng *rng, size_t batch,
                                        double *z0_out, double *x, double *logp,
                                        node_stats *stats);

/* ---- planar flows (the paper's eq. 7 and 9) -----------------------------------------

   The planar CNF of torchdiffeq's examples/cnf.py and the paper's Appendix A.1:
       dz/dt = (1/M) Σ_m u_m(t) tanh(w_m(t)ᵀ z + b_m(t)),
   u_m = U_m ⊙ sigmoid(G_m) (gated per unit and per dimension), where
   [W (M×D), U (M×D), G (M×D), B (M)] = H(t), a hypernetwork MLP
   1 → hidden → hidden → 3MD + M (tanh, tanh, identity).  Its trace is analytic:
   tr ∂f/∂z = (1/M) Σ_m tanh'(w_mᵀz + b_m) u_mᵀw_m, so exact traces cost one pass.
   θ is the hypernetwork's parameter vector (node_mlp layout). */
typedef struct node_planar node_planar;   /* opaque */

/* D dims, M units, hypernetwork hidden width (0 = 32).  Parameters zero until
   node_planar_init.  NODE_EINVAL for zero sizes; NODE_ENOMEM. */
LIBNODE_API node_status node_planar_create(node_planar **out, size_t dim, size_t units,
                                           size_t hidden, node_error *err);
LIBNODE_API void        node_planar_free(node_planar *p);           /* NULL is fine */
LIBNODE_API void        node_planar_init(node_planar *p, uint64_t seed);  /* PyTorch default */
LIBNODE_API size_t      node_planar_nparams(const node_planar *p);
LIBNODE_API double     *node_planar_params(node_planar *p);
/* The hypernetwork (owned by p): for saving it with node_mlp_save. */
LIBNODE_API node_mlp   *node_planar_hypernet(node_planar *p);
/* p as a node_flow (one workspace, owned by p; valid while p lives). */
LIBNODE_API node_status node_planar_flow(node_planar *p, size_t reserve_batch,
                                         node_flow *out);

/* The discrete planar normalizing flow of Rezende & Mohamed (2015), K layers:
       z_{k+1} = z_k + û_k tanh(w_kᵀ z_k + b_k),
       log p(z_{k+1}) = log p(z_k) − log |1 + û_kᵀ w_k tanh'(w_kᵀ z_k + b_k)|,
   û = u + (m(wᵀu) − wᵀu) w/|w|², m(s) = −1 + softplus(s) (their appendix A: keeps
   each layer invertible).  θ = [w_1 (D), u_1 (D), b_1, w_2, ...]. */
typedef struct node_planar_nf node_planar_nf;   /* opaque */

LIBNODE_API node_status node_planar_nf_create(node_planar_nf **out, size_t dim,
                                              size_t layers, node_error *err);
LIBNODE_API void        node_planar_nf_free(node_planar_nf *f);     /* NULL is fine */
/* w, u ~ U(−1/√D, 1/√D)... see src; b = 0. */
LIBNODE_API void        node_planar_nf_init(node_planar_nf *f, uint64_t seed);
LIBNODE_API size_t      node_planar_nf_nparams(const node_planar_nf *f);
LIBNODE_API double     *node_planar_nf_params(node_planar_nf *f);
/* z_out = flow(z_in) for batch rows (batch × D) and dlogp[r] = −Σ_k log|det| so that
   log p(z_out[r]) = log p(z_in[r]) + dlogp[r].  Keeps what its gradient needs for
   batches up to the largest seen (grows, never shrinks). */
LIBNODE_API node_status node_planar_nf_forward(node_planar_nf *f, size_t batch,
                                               const double *z_in, double *z_out,
                                               double *dlogp);
/* The gradient of L(z_out, dlogp) of the last node_planar_nf_forward (same batch and
   z_in): dL/dz_in (may be NULL) and dL/dθ (may be NULL). */
LIBNODE_API node_status node_planar_nf_grad(node_planar_nf *f, size_t batch,
                                            const double *z_in, const double *dL_dzout,
                                            const double *dL_ddlogp, double *dL_dzin,
                                            double *dL_dtheta);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_CNF_H */
