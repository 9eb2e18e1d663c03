/* abi.c — the layout of every public struct, queryable by name (node_abi_sizeof,
 * node_abi_offsetof) so that an FFI binding can check its mirror of the structs
 * when it loads the library.  The scheme itself is in docs/ABI.md.
 */
#include "internal.h"

#include <string.h>

typedef struct abi_entry {
    const char *type, *field;   /* field NULL: the struct itself */
    size_t value;               /* sizeof the struct, or offsetof the field */
} abi_entry;

#define T(type) { #type, NULL, sizeof(type) }
#define F(type, field) { #type, #field, offsetof(type, field) }

static const abi_entry abi[] = {
    T(node_error),
    F(node_error, status), F(node_error, message), F(node_error, reserved_),

    T(node_system),
    F(node_system, dim), F(node_system, nparams), F(node_system, ctx), F(node_system, f),
    F(node_system, vjp), F(node_system, reserved_),

    T(node_options),
    F(node_options, method), F(node_options, rtol), F(node_options, atol),
    F(node_options, step), F(node_options, max_step), F(node_options, max_steps),
    F(node_options, adjoint_rtol), F(node_options, adjoint_atol), F(node_options, seminorm),
    F(node_options, checkpoints), F(node_options, record), F(node_options, reserved_),

    T(node_stats),
    F(node_stats, nfe), F(node_stats, nsteps), F(node_stats, naccept),
    F(node_stats, nreject), F(node_stats, t_reached), F(node_stats, rows_done),
    F(node_stats, callback_rc), F(node_stats, status), F(node_stats, message),
    F(node_stats, reserved_),

    T(node_optim_config),
    F(node_optim_config, kind), F(node_optim_config, lr), F(node_optim_config, weight_decay),
    F(node_optim_config, momentum), F(node_optim_config, dampening),
    F(node_optim_config, nesterov), F(node_optim_config, alpha),
    F(node_optim_config, centered), F(node_optim_config, beta1), F(node_optim_config, beta2),
    F(node_optim_config, eps), F(node_optim_config, amsgrad), F(node_optim_config, reserved_),

    T(node_sched),
    F(node_sched, kind), F(node_sched, lr0), F(node_sched, step_size), F(node_sched, gamma),
    F(node_sched, T), F(node_sched, lr_min), F(node_sched, reserved_),

    T(node_latent_config),
    F(node_latent_config, obs_dim), F(node_latent_config, latent_dim),
    F(node_latent_config, rnn_hidden), F(node_latent_config, dyn_hidden),
    F(node_latent_config, dec_hidden), F(node_latent_config, obs_std),
    F(node_latent_config, rnn_cell), F(node_latent_config, reserved_),

    T(node_latent_terms),
    F(node_latent_terms, loss), F(node_latent_terms, nll), F(node_latent_terms, kl),
    F(node_latent_terms, nfe_forward), F(node_latent_terms, nfe_backward),
    F(node_latent_terms, reserved_),

    T(node_rng),
    F(node_rng, s), F(node_rng, spare), F(node_rng, has_spare), F(node_rng, reserved_),

    T(node_flow),
    F(node_flow, width), F(node_flow, nparams), F(node_flow, ctx), F(node_flow, f),
    F(node_flow, div), F(node_flow, div_vjp), F(node_flow, reserved_),

    T(node_cnf_options),
    F(node_cnf_options, ode), F(node_cnf_options, t0), F(node_cnf_options, t1),
    F(node_cnf_options, base_var), F(node_cnf_options, trace), F(node_cnf_options, grad),
    F(node_cnf_options, seed), F(node_cnf_options, reserved_),

    T(node_event),
    F(node_event, nparams), F(node_event, ctx), F(node_event, g), F(node_event, g_vjp),
    F(node_event, direction), F(node_event, terminal), F(node_event, t_tol),
    F(node_event, reserved_),

    T(node_ensemble_system),
    F(node_ensemble_system, dim), F(node_ensemble_system, nparams),
    F(node_ensemble_system, ctx), F(node_ensemble_system, f), F(node_ensemble_system, vjp),
    F(node_ensemble_system, max_rows), F(node_ensemble_system, workers),
    F(node_ensemble_system, reserved_),

    T(node_ensemble_options),
    F(node_ensemble_options, per_sample_ts), F(node_ensemble_options, threads),
    F(node_ensemble_options, group), F(node_ensemble_options, reserved_),
};

#undef T
#undef F

/* The enumerations of the structs above are 32-bit (core.h). */
typedef char node_abi_cnf_enums_are_32_bit_[sizeof(node_trace_kind) == 4 &&
                                            sizeof(node_grad_method) == 4 ? 1 : -1];

size_t node_abi_sizeof(const char *type)
{
    if (!type)
        return 0;
    for (size_t i = 0; i < sizeof abi / sizeof abi[0]; i++)
        if (!abi[i].field && strcmp(abi[i].type, type) == 0)
            return abi[i].value;
    return 0;
}

size_t node_abi_offsetof(const char *type, const char *field)
{
    if (!type || !field)
        return (size_t)-1;
    for (size_t i = 0; i < sizeof abi / sizeof abi[0]; i++)
        if (abi[i].field && strcmp(abi[i].type, type) == 0 && strcmp(abi[i].field, field) == 0)
            return abi[i].value;
    return (size_t)-1;
}
