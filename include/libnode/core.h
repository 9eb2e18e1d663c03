/* libnode/core.h — status codes, the dynamics interface and the explicit ODE
 * solver core (fixed-step Euler, midpoint, RK4; adaptive Bogacki–Shampine 3(2),
 * Dormand–Prince 5(4), DOP853) with error control and dense output.
 * Include <libnode.h> rather than this file.
 */
#ifndef LIBNODE_CORE_H
#define LIBNODE_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared build: only what is marked NODE_API is exported. */
#if defined(_WIN32) && defined(LIBNODE_SHARED_BUILD)
#  define NODE_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define NODE_API __attribute__((visibility("default")))
#else
#  define NODE_API
#endif

#define NODE_VERSION_MAJOR 0
#define NODE_VERSION_MINOR 1
#define NODE_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked.  Never NULL. */
NODE_API const char *node_version(void);

/* ---- status codes ------------------------------------------------------ */

typedef enum node_status {
    NODE_OK = 0,
    NODE_EINVAL,      /* bad argument: NULL where data is needed, zero size, ts not strictly
                         monotone, non-positive tolerance or step, unknown method ... */
    NODE_ENOMEM,      /* an allocation failed */
    NODE_EMAXSTEPS,   /* options.max_steps reached before the end of the interval */
    NODE_ESTEPSIZE,   /* the adaptive step shrank below what floating point can resolve */
    NODE_ENONFINITE,  /* NaN or Inf in the state or its derivative that no smaller step cures */
    NODE_ECALLBACK,   /* a user callback returned non-zero; the solve stopped there */
    NODE_EIO,         /* reading or writing a file failed */
    NODE_EFORMAT      /* a model file is malformed, truncated, or fails its checksum */
} node_status;

/* A static, human-readable description of s (also for unknown values).  Never NULL. */
NODE_API const char *node_strerror(node_status s);

/* ---- dynamics ------------------------------------------------------------ */

typedef struct node_system {
    size_t dim;       /* length of the state y */
    size_t nparams;   /* length of the parameter vector θ that gradients are taken for */
    void  *ctx;       /* passed back to the callbacks */

    /* dydt = f(t, y; θ).  Return 0, or non-zero to abort (→ NODE_ECALLBACK). */
    int (*f)(void *ctx, double t, const double *y, double *dydt);

    /* Vector-Jacobian products at (t, y) for a row vector a (length dim):
         dydt  = f(t, y)           (skip if NULL)
         vjp_y = aᵀ ∂f/∂y          (length dim; always written)
         vjp_p = aᵀ ∂f/∂θ          (length nparams; skip if NULL)
        *vjp_t = aᵀ ∂f/∂t          (skip if NULL)
       Outputs are overwritten, not accumulated.  May be NULL when no gradient
       is ever asked for. */
    int (*vjp)(void *ctx, double t, const double *y, const double *a,
               double *dydt, double *vjp_y, double *vjp_p, double *vjp_t);
} node_system;

/* ---- solving --------------------------------------------------------------- */

typedef enum node_method {
    NODE_EULER, NODE_MIDPOINT, NODE_RK4,          /* fixed step */
    NODE_BOSH3, NODE_DOPRI5, NODE_DOP853          /* adaptive, embedded error estimate */
} node_method;

typedef struct node_options {
    node_method method;     /* default NODE_DOPRI5 */
    double rtol, atol;      /* default 1e-7, 1e-9 */
    double step;            /* fixed methods: the step (> 0, required);
                               adaptive: the first step, 0 = choose automatically */
    double max_step;        /* 0 = no limit */
    long   max_steps;       /* per call; 0 = a large default */
    double adjoint_rtol, adjoint_atol;  /* backward pass; 0 = same as forward */
    int    seminorm;        /* backward pass: leave the parameter-gradient part of the
                               augmented state out of the error norm */
} node_options;

/* The defaults above: DOPRI5, rtol 1e-7, atol 1e-9, everything else 0. */
NODE_API node_options node_options_default(void);

/* The method's name ("dopri5", ...) or NULL for an unknown value. */
NODE_API const char *node_method_name(node_method m);
/* Parse a method name as node_method_name writes it (also "rk45", "bs3", "dp853"
   and "dopri8" as aliases).  NODE_EINVAL for an unknown name or NULL argument. */
NODE_API node_status node_method_parse(const char *name, node_method *out);

typedef struct node_stats {
    long nfe;       /* evaluations of f (a vjp call counts as one) */
    long nsteps;    /* steps attempted */
    long naccept, nreject;
} node_stats;

/* Integrate from ts[0] and write y(ts[i]) as row i of ys (nt × dim, row-major;
   row 0 is y0).  ts is strictly increasing or strictly decreasing; nt >= 1.
   opt NULL = defaults; stats may be NULL.  Output times do not force steps to
   land on them (dense output); the last step is shortened to end on ts[nt-1].
   The error norm of an adaptive step is the RMS over all state elements of
   err_i / (atol + rtol * max(|y_i|, |ynew_i|)).
   Allocates one workspace per call (use node_solver to keep it across calls).
   On failure ys is unspecified; stats holds the work done up to the failure. */
NODE_API node_status node_odeint(const node_system *sys, const double *y0,
                                 const double *ts, size_t nt, double *ys,
                                 const node_options *opt, node_stats *stats);

/* ---- reusable solver ------------------------------------------------------- */

/* A solver object keeps its workspaces across calls: once it has served the
   largest problem it will see, node_solver_odeint / _adjoint / _backprop
   allocate nothing more (backprop's tape keeps the largest size it needed).
   One solver object must not be used by two threads at once. */
typedef struct node_solver node_solver;

/* Create an empty solver; workspaces grow on first use.  *out is written only on
   success.  NODE_EINVAL if out is NULL, NODE_ENOMEM. */
NODE_API node_status node_solver_create(node_solver **out);
NODE_API void        node_solver_free(node_solver *s);          /* NULL is fine */

/* node_odeint, with the workspace of s. */
NODE_API node_status node_solver_odeint(node_solver *s, const node_system *sys,
                                        const double *y0, const double *ts, size_t nt,
                                        double *ys, const node_options *opt,
                                        node_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_CORE_H */
