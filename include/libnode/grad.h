/* libnode/grad.h — gradients of a loss on an ODE solution: the adjoint
 * sensitivity method (Chen et al. 2018, Algorithm 1) and exact backpropagation
 * through the discrete solve.  Include <libnode.h> rather than this file.
 */
#ifndef LIBNODE_GRAD_H
#define LIBNODE_GRAD_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Both take the forward solution ys (nt × dim, as node_odeint wrote it) and dLdys
   (nt × dim, the loss gradient at each output time) and write dLdy0 (dim),
   dLdp (nparams, may be NULL: the parameter work is then skipped, vjp_p = NULL) and
   dLdts (nt, may be NULL: vjp_t = NULL).  sys->f and sys->vjp are required.
   stats (may be NULL) counts the backward work (for backprop, the recorded forward
   re-run included, unless opt->record let it reverse the forward solve's own
   recording) and, after a failure, says where and why (node_stats).
   NODE_EINVAL for NULL or empty arguments, bad ts or options, a NaN or Inf in ys or
   dLdys (the message names the entry), and for a dLdp given with sys->nparams == 0
   (there would be nothing to write: a silent no-op hides a mis-built system);
   NODE_ECALLBACK when f or vjp returns non-zero (stats->callback_rc holds the value);
   NODE_ENONFINITE when a gradient, the adjoint state or a recomputed stage comes out
   NaN or Inf (a gradient is never returned with NODE_OK unless every entry is
   finite); NODE_EMAXSTEPS when the steps attempted in the whole call exceed
   opt->max_steps, counted as for a forward solve: the adjoint's backward intervals
   share one budget (each starts with what the earlier ones left), backprop's forward
   re-run has it as node_odeint has (its reverse pass attempts no steps);
   NODE_ESTEPSIZE and NODE_ENOMEM as for a solve.
   After a failure stats->t_reached is how far the backward pass got: everything
   between ts[nt-1] and t_reached was differentiated (the adjoint: solved backward in
   accepted steps; backprop: the recorded steps reversed), the failure lies beyond it
   towards ts[0]; a failure in backprop's forward re-run reports the time that run
   reached, as node_odeint does.  ts[0] after success.  stats->message says which
   callback, at which t, and in which pass ("sys->vjp returned 3 at t = 0.5 (backward
   pass)", "dL/dθ[4] = nan after the backward pass: ...").  The adjoint's error norm
   rejects a step with a NaN or Inf in any block (the seminorm's left-out ones too),
   so a smaller step may avoid it.  On failure the outputs are unspecified and nothing
   leaks.
   Threads: reentrant; with a node_solver, one thread at a time per solver. */

/* Adjoint sensitivity (Chen et al. 2018, Algorithm 1): integrates the augmented
   state [z, a, dL/dθ, dL/dt] backward, one solver call per interval between output
   times; at each output time z is reset to ys[i] and dLdys[i] is added to a.
   The backward error norm is the largest of the per-block RMS norms of z, a,
   dL/dθ and dL/dt; opt->seminorm leaves the dL/dθ and dL/dt blocks out
   (Kidger, Chen, Lyons 2021).  opt->adjoint_rtol/atol (0 = forward's) apply; an
   adaptive method picks its first step on the first backward interval and starts each
   later one with the step its controller had planned when the previous one ended (not
   the last step, cut to land on the output time); a fixed one steps by opt->step from
   each output time.  dL/dt_i = dLdys[i]ᵀ f(t_i, ys[i]) for
   i >= 1; dL/dt0 from the dL/dt block (Chen et al., appendix B.2).
   Memory does not grow with the number of steps: O(dim + nparams). */
LIBNODE_API node_status node_odeint_adjoint(const node_system *sys, const double *ts, size_t nt,
                                         const double *ys, const double *dLdys,
                                         double *dLdy0, double *dLdp, double *dLdts,
                                         const node_options *opt, node_stats *stats);

/* Discretise-then-optimise: re-runs the forward solve from ys[0], records it,
   and returns the exact gradient of the discrete solution (step sizes taken as
   constants), dense output at ts included: dLdts[i] through the interpolant's θ,
   dLdts[0] through the stage times t_n + c_i h as every step shifts with t0.
   The re-run records each accepted step with its stages where dense output needs no
   stage of its own (dopri5, bosh3: (s + 1)·dim + 2 doubles a step; other methods
   dim + 2 and their stages recomputed), so the reverse pass evaluates no f: one vjp
   per stage of each accepted step, and for an FSAL method one for a step's last stage
   and the next step's first together (the same f value; vjp is linear in its
   cotangent): (s - 1) per step, one more if the last step holds an output inside it,
   against the forward's 1 + (s - 1) per step attempted.  stats->nfe counts the re-run
   and the vjp calls.  With opt->record (core.h) the re-run is skipped when s holds
   node_solver_odeint's recording of this very solve: the vjp calls alone, fewer than
   the forward's evaluations.
   Memory grows with the number of steps: O(steps × dim) for the tape, which a
   reused solver object keeps at its largest size.
   Checkpointed (opt->checkpoints = N >= 1): the forward re-run keeps the accepted
   step sequence (t_n, h_n: 2 doubles a step) and at most N states, evenly spaced
   (steps 0, k, 2k, ... with k the smallest power of 2 that leaves at most N of them);
   the reverse pass rebuilds each segment of k steps from its saved state with the
   recorded step sizes (no error control: the same steps give the same bits) and
   reverses it from a tape of k records.  The gradient is plain backprop's (bit for
   bit in the tests); memory O(N × dim + steps + (steps / N) × dim), e.g.
   O(√steps × dim) for N = √steps, at the price of one more forward pass of f
   evaluations (the segments' steps, FSAL reused; stats->nfe counts them).  N = 1 keeps
   y0 alone and rebuilds the whole tape; N >= steps saves every state. */
LIBNODE_API node_status node_odeint_backprop(const node_system *sys, const double *ts, size_t nt,
                                          const double *ys, const double *dLdys,
                                          double *dLdy0, double *dLdp, double *dLdts,
                                          const node_options *opt, node_stats *stats);

/* Interpolating (checkpointed) adjoint: the adjoint equations of node_odeint_adjoint,
   but z(t) is not integrated backward.  Between consecutive restart points (ts, plus
   opt->checkpoints = N points evenly spaced inside (ts[0], ts[nt-1]) if N > 0) the
   forward solution is re-solved from the restart state (ys[i], or for the extra
   points the state a forward solve from ys[0] gives there), keeping its dense output
   (all stages of every accepted step: (s_dense + 1) × dim doubles a step, for that
   segment only); the backward pass then integrates [a, dL/dθ, dL/dt] alone, reading
   z(t) from that interpolant.  No backward reconstruction drift: z(t) is the forward
   solution to the forward tolerance everywhere.  Same arguments, outputs and
   failures as node_odeint_adjoint: the jumps of a and dL/dt at the output times,
   adjoint_rtol/atol and the seminorm (leaving dL/dθ and dL/dt out; the error norm is
   the largest of the RMS norms of the a, dL/dθ and dL/dt blocks), an adaptive first
   step on the first backward interval and the planned one on later intervals.
   opt->max_steps bounds the segments' forward re-solves together and the backward
   intervals together (and the solve for the extra restart states as a forward
   solve).  stats counts all of it.  Memory: O((nt + N) × dim + nparams) plus the
   dense solution of the longest segment; cost: one forward solve of f more than the
   adjoint's (two with N > 0), and no f in the backward pass (only vjp calls). */
LIBNODE_API node_status node_odeint_adjoint_interp(const node_system *sys, const double *ts,
                                                   size_t nt, const double *ys,
                                                   const double *dLdys, double *dLdy0,
                                                   double *dLdp, double *dLdts,
                                                   const node_options *opt, node_stats *stats);

/* The same three, with the workspaces (and tape) of a reusable solver object. */
LIBNODE_API node_status node_solver_adjoint(node_solver *s, const node_system *sys,
                                         const double *ts, size_t nt,
                                         const double *ys, const double *dLdys,
                                         double *dLdy0, double *dLdp, double *dLdts,
                                         const node_options *opt, node_stats *stats);
LIBNODE_API node_status node_solver_adjoint_interp(node_solver *s, const node_system *sys,
                                                   const double *ts, size_t nt,
                                                   const double *ys, const double *dLdys,
                                                   double *dLdy0, double *dLdp,
                                                   double *dLdts, const node_options *opt,
                                                   node_stats *stats);
LIBNODE_API node_status node_solver_backprop(node_solver *s, const node_system *sys,
                                          const double *ts, size_t nt,
                                          const double *ys, const double *dLdys,
                                          double *dLdy0, double *dLdp, double *dLdts,
                                          const node_options *opt, node_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_GRAD_H */
