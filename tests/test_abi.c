/* test_abi.c — the ABI contract of docs/ABI.md: every public struct's size and
 * field offsets pinned (LP64), the introspection functions that FFI bindings use,
 * version numbers, and reserved fields that must be zero on input.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

typedef struct layout {
    const char *type, *field;
    size_t offset;
} layout;

/* The layout on LP64 platforms (Linux and macOS on x86-64 and aarch64).  A change
   here is an ABI change: it needs a new soname (docs/ABI.md). */
static const layout lp64[] = {
        { "node_error", "status", 0 },
        { "node_error", "message", 8 },
        { "node_error", "reserved_", 208 },
        { "node_system", "dim", 0 },
        { "node_system", "nparams", 8 },
        { "node_system", "ctx", 16 },
        { "node_system", "f", 24 },
        { "node_system", "vjp", 32 },
        { "node_system", "reserved_", 40 },
        { "node_options", "method", 0 },
        { "node_options", "rtol", 8 },
        { "node_options", "atol", 16 },
        { "node_options", "step", 24 },
        { "node_options", "max_step", 32 },
        { "node_options", "max_steps", 40 },
        { "node_options", "adjoint_rtol", 48 },
        { "node_options", "adjoint_atol", 56 },
        { "node_options", "seminorm", 64 },
        { "node_options", "checkpoints", 72 },
        { "node_options", "record", 80 },
        { "node_options", "reserved_", 88 },
        { "node_stats", "nfe", 0 },
        { "node_stats", "nsteps", 8 },
        { "node_stats", "naccept", 16 },
        { "node_stats", "nreject", 24 },
        { "node_stats", "t_reached", 32 },
        { "node_stats", "rows_done", 40 },
        { "node_stats", "callback_rc", 48 },
        { "node_stats", "status", 52 },
        { "node_stats", "message", 56 },
        { "node_stats", "reserved_", 256 },
        { "node_optim_config", "kind", 0 },
        { "node_optim_config", "lr", 8 },
        { "node_optim_config", "weight_decay", 16 },
        { "node_optim_config", "momentum", 24 },
        { "node_optim_config", "dampening", 32 },
        { "node_optim_config", "nesterov", 40 },
        { "node_optim_config", "alpha", 48 },
        { "node_optim_config", "centered", 56 },
        { "node_optim_config", "beta1", 64 },
        { "node_optim_config", "beta2", 72 },
        { "node_optim_config", "eps", 80 },
        { "node_optim_config", "amsgrad", 88 },
        { "node_optim_config", "reserved_", 96 },
        { "node_sched", "kind", 0 },
        { "node_sched", "lr0", 8 },
        { "node_sched", "step_size", 16 },
        { "node_sched", "gamma", 24 },
        { "node_sched", "T", 32 },
        { "node_sched", "lr_min", 40 },
        { "node_sched", "reserved_", 48 },
        { "node_latent_config", "obs_dim", 0 },
        { "node_latent_config", "latent_dim", 8 },
        { "node_latent_config", "rnn_hidden", 16 },
        { "node_latent_config", "dyn_hidden", 24 },
        { "node_latent_config", "dec_hidden", 32 },
        { "node_latent_config", "obs_std", 40 },
        { "node_latent_config", "rnn_cell", 48 },
        { "node_latent_config", "reserved_", 56 },
        { "node_latent_terms", "loss", 0 },
        { "node_latent_terms", "nll", 8 },
        { "node_latent_terms", "kl", 16 },
        { "node_latent_terms", "nfe_forward", 24 },
        { "node_latent_terms", "nfe_backward", 32 },
        { "node_latent_terms", "reserved_", 40 },
        { "node_rng", "s", 0 },
        { "node_rng", "spare", 32 },
        { "node_rng", "has_spare", 40 },
        { "node_rng", "reserved_", 48 },
        { "node_flow", "width", 0 },
        { "node_flow", "nparams", 8 },
        { "node_flow", "ctx", 16 },
        { "node_flow", "f", 24 },
        { "node_flow", "div", 32 },
        { "node_flow", "div_vjp", 40 },
        { "node_flow", "reserved_", 48 },
        { "node_cnf_options", "ode", 0 },
        { "node_cnf_options", "t0", 192 },
        { "node_cnf_options", "t1", 200 },
        { "node_cnf_options", "base_var", 208 },
        { "node_cnf_options", "trace", 216 },
        { "node_cnf_options", "grad", 220 },
        { "node_cnf_options", "seed", 224 },
        { "node_cnf_options", "reserved_", 232 },
        { "node_event", "nparams", 0 },
        { "node_event", "ctx", 8 },
        { "node_event", "g", 16 },
        { "node_event", "g_vjp", 24 },
        { "node_event", "direction", 32 },
        { "node_event", "terminal", 36 },
        { "node_event", "t_tol", 40 },
        { "node_event", "reserved_", 48 },
        { "node_ensemble_system", "dim", 0 },
        { "node_ensemble_system", "nparams", 8 },
        { "node_ensemble_system", "ctx", 16 },
        { "node_ensemble_system", "f", 24 },
        { "node_ensemble_system", "vjp", 32 },
        { "node_ensemble_system", "max_rows", 40 },
        { "node_ensemble_system", "workers", 48 },
        { "node_ensemble_system", "reserved_", 56 },
        { "node_ensemble_options", "per_sample_ts", 0 },
        { "node_ensemble_options", "threads", 4 },
        { "node_ensemble_options", "group", 8 },
        { "node_ensemble_options", "reserved_", 16 },
};

static const struct {
    const char *type;
    size_t size;
} lp64_sizes[] = {
    { "node_error", 232 },  { "node_system", 128 },       { "node_options", 192 },
    { "node_stats", 320 },  { "node_optim_config", 192 }, { "node_sched", 128 },
    { "node_latent_config", 128 }, { "node_latent_terms", 72 }, { "node_rng", 64 },
    { "node_flow", 112 }, { "node_cnf_options", 296 }, { "node_event", 112 },
    { "node_ensemble_system", 128 }, { "node_ensemble_options", 128 },
};

static int is_lp64(void) { return sizeof(void *) == 8 && sizeof(long) == 8; }

static void test_struct_layouts_are_pinned(void **state)
{
    (void)state;
    if (!is_lp64())
        skip();
    for (size_t i = 0; i < sizeof lp64_sizes / sizeof lp64_sizes[0]; i++)
        assert_int_equal(node_abi_sizeof(lp64_sizes[i].type), lp64_sizes[i].size);
    for (size_t i = 0; i < sizeof lp64 / sizeof lp64[0]; i++) {
        size_t got = node_abi_offsetof(lp64[i].type, lp64[i].field);
        if (got != lp64[i].offset)
            print_error("%s.%s at %zu, pinned at %zu\n", lp64[i].type, lp64[i].field, got,
                        lp64[i].offset);
        assert_int_equal(got, lp64[i].offset);
    }
}

/* The library's answers agree with this compiler's view of the header. */
static void test_introspection_matches_the_header(void **state)
{
    (void)state;
    assert_int_equal(node_abi_sizeof("node_system"), sizeof(node_system));
    assert_int_equal(node_abi_sizeof("node_options"), sizeof(node_options));
    assert_int_equal(node_abi_sizeof("node_stats"), sizeof(node_stats));
    assert_int_equal(node_abi_sizeof("node_error"), sizeof(node_error));
    assert_int_equal(node_abi_sizeof("node_optim_config"), sizeof(node_optim_config));
    assert_int_equal(node_abi_sizeof("node_sched"), sizeof(node_sched));
    assert_int_equal(node_abi_sizeof("node_latent_config"), sizeof(node_latent_config));
    assert_int_equal(node_abi_sizeof("node_latent_terms"), sizeof(node_latent_terms));
    assert_int_equal(node_abi_sizeof("node_rng"), sizeof(node_rng));
    assert_int_equal(node_abi_sizeof("node_flow"), sizeof(node_flow));
    assert_int_equal(node_abi_offsetof("node_flow", "div_vjp"), offsetof(node_flow, div_vjp));
    assert_int_equal(node_abi_sizeof("node_cnf_options"), sizeof(node_cnf_options));
    assert_int_equal(node_abi_offsetof("node_cnf_options", "trace"),
                     offsetof(node_cnf_options, trace));
    assert_int_equal(sizeof(node_trace_kind), 4);   /* enums are 32-bit in the ABI */
    assert_int_equal(node_abi_sizeof("node_event"), sizeof(node_event));
    assert_int_equal(node_abi_offsetof("node_event", "t_tol"), offsetof(node_event, t_tol));
    assert_int_equal(node_abi_sizeof("node_ensemble_system"), sizeof(node_ensemble_system));
    assert_int_equal(node_abi_offsetof("node_ensemble_system", "workers"),
                     offsetof(node_ensemble_system, workers));
    assert_int_equal(node_abi_sizeof("node_ensemble_options"), sizeof(node_ensemble_options));
    assert_int_equal(node_abi_offsetof("node_ensemble_options", "group"),
                     offsetof(node_ensemble_options, group));
    assert_int_equal(node_abi_offsetof("node_rng", "has_spare"), offsetof(node_rng, has_spare));
    assert_int_equal(node_abi_offsetof("node_options", "max_steps"),
                     offsetof(node_options, max_steps));
    assert_int_equal(node_abi_offsetof("node_stats", "message"), offsetof(node_stats, message));
    assert_int_equal(node_abi_offsetof("node_system", "vjp"), offsetof(node_system, vjp));
    assert_int_equal(node_abi_sizeof("node_nothing"), 0);
    assert_int_equal(node_abi_sizeof(NULL), 0);
    assert_true(node_abi_offsetof("node_options", "nothing") == (size_t)-1);
    assert_true(node_abi_offsetof("node_nothing", "dim") == (size_t)-1);
    assert_true(node_abi_offsetof(NULL, "dim") == (size_t)-1);
    assert_true(node_abi_offsetof("node_system", NULL) == (size_t)-1);
    /* every struct ends with its reserved tail */
    const char *types[] = { "node_error", "node_system", "node_options", "node_stats",
                            "node_optim_config", "node_sched", "node_latent_config",
                            "node_latent_terms", "node_rng", "node_flow",
                            "node_cnf_options", "node_event", "node_ensemble_system",
                            "node_ensemble_options" };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_true(node_abi_offsetof(types[i], "reserved_") < node_abi_sizeof(types[i]));
}

static void test_version_number_matches_the_string(void **state)
{
    (void)state;
    char want[32];
    uint32_t v = node_version_number();
    snprintf(want, sizeof want, "%u.%u.%u", (unsigned)(v / 10000), (unsigned)(v / 100 % 100),
             (unsigned)(v % 100));
    assert_string_equal(node_version(), want);
    assert_int_equal(v, NODE_VERSION_NUMBER);
}

static void test_isa_name_is_a_known_level(void **state)
{
    (void)state;
    const char *isa = node_isa_name();
    assert_non_null(isa);
    assert_true(strcmp(isa, "generic") == 0 || strcmp(isa, "avx2") == 0 ||
                strcmp(isa, "avx512") == 0);
}

static int decay(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    (void)t;
    dydt[0] = -y[0];
    return 0;
}

/* A program built against a newer header that sets a field this library does not
   know, or a struct that was never zeroed, is refused with a message. */
static void test_reserved_fields_must_be_zero(void **state)
{
    (void)state;
    double y0 = 1, ts[2] = { 0, 1 }, ys[2];
    node_stats st;
    node_system sys = { .dim = 1, .f = decay };
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, NULL, &st), NODE_OK);
    assert_int_equal(st.status, NODE_OK);
    assert_string_equal(st.message, "");
    sys.reserved_[10] = 1;
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, NULL, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "reserved"));
    assert_int_equal(st.status, NODE_EINVAL);
    sys.reserved_[10] = 0;

    node_options o = node_options_default();
    o.reserved_[3] = 7;
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "reserved"));
    o = node_options_default();
    o.reserved1_ = 1;
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, &st), NODE_EINVAL);
    o = node_options_default();
    o.reserved0_ = 1;
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, &st), NODE_EINVAL);

    /* the training structs too */
    node_optim_config cfg;
    node_optim *opt;
    node_error err;
    assert_status(node_optim_defaults(NODE_OPTIM_ADAM, &cfg), NODE_OK);
    cfg.reserved_[0] = 1;
    assert_status(node_optim_create_ex(&opt, 4, &cfg, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "reserved"));
    node_sched sc = node_sched_constant(0.1);
    double lr;
    assert_status(node_sched_lr(&sc, 3, &lr), NODE_OK);
    sc.reserved_[9] = 1;
    assert_status(node_sched_lr(&sc, 3, &lr), NODE_EINVAL);
    sc.reserved_[9] = 0;
    sc.reserved0_ = 1;
    assert_status(node_sched_lr(&sc, 3, &lr), NODE_EINVAL);

    /* and the latent ODE's config */
    node_latent_config lc;
    node_latent *lm = NULL;
    assert_status(node_latent_defaults(2, &lc), NODE_OK);
    lc.reserved_[8] = 1;   /* the last word */
    assert_status(node_latent_create(&lm, &lc, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "reserved"));
    assert_null(lm);
    node_rng r;
    double u;
    size_t idx[2];
    assert_status(node_rng_seed(&r, 1), NODE_OK);
    assert_status(node_rng_uniform(&r, 1, &u), NODE_OK);
    r.reserved_[1] = 1;
    assert_status(node_rng_uniform(&r, 1, &u), NODE_EINVAL);
    assert_status(node_rng_normal(&r, 1, &u), NODE_EINVAL);
    assert_status(node_rng_permutation(&r, 2, idx), NODE_EINVAL);
    r.reserved_[1] = 0;
    r.reserved0_ = 1;
    assert_status(node_rng_normal(&r, 1, &u), NODE_EINVAL);
    assert_status(node_rng_seed(&r, 1), NODE_OK);   /* seeding zeroes them */
    assert_status(node_rng_normal(&r, 1, &u), NODE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_layouts_are_pinned),
        cmocka_unit_test(test_introspection_matches_the_header),
        cmocka_unit_test(test_version_number_matches_the_string),
        cmocka_unit_test(test_isa_name_is_a_known_level),
        cmocka_unit_test(test_reserved_fields_must_be_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
