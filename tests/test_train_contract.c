/* test_train_contract.c — what the training calls promise about NaN and Inf
 * (include/libnode/train.h): node_loss refuses a non-finite target (unless NaN marks
 * a missing entry), prediction or loss without writing anything; node_optim_step
 * refuses a step that would write a NaN or Inf and changes nothing, so the next good
 * step goes on as if the bad one had not been tried; node_optim_create_ex names the
 * hyper-parameter out of range; node_sched_lr refuses an overflowing rate.
 */
#include "test_util.h"

#include <float.h>
#include <string.h>

static void assert_message(const node_error *e, const char *want)
{
    if (!strstr(e->message, want))
        print_message("message \"%s\" lacks \"%s\"\n", e->message, want);
    assert_non_null(strstr(e->message, want));
}

/* ---- losses ------------------------------------------------------------------------ */

static const node_loss_kind kinds[2] = { NODE_LOSS_MSE, NODE_LOSS_MAE };

/* A refused call: the status, the message, and *loss and grad as they were (a
   sentinel pattern, compared bit for bit). */
static void assert_refused(node_loss_kind kind, size_t n, const double *p, const double *y,
                           const unsigned char *mask, uint32_t flags, node_status want,
                           const char *msg)
{
    double L = -7.25, g[16], g0[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < 16; i++)
        g[i] = g0[i] = 100.0 + (double)i;
    node_error e;
    assert_status(node_loss(kind, n, p, y, mask, flags, &L, g, &e), want);
    assert_int_equal(e.status, want);
    assert_message(&e, msg);
    assert_true(L == -7.25);
    assert_memory_equal(g, g0, sizeof g);
}

static void test_loss_nonfinite_target_is_refused_by_index(void **state)
{
    (void)state;
    double p[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    for (int k = 0; k < 2; k++) {
        y[6] = NAN;
        assert_refused(kinds[k], 8, p, y, NULL, 0, NODE_EINVAL,
                       "target[6] = nan at an observed entry");
        y[6] = INFINITY;
        assert_refused(kinds[k], 8, p, y, NULL, 0, NODE_EINVAL, "target[6] = inf");
        y[6] = -INFINITY;
        assert_refused(kinds[k], 8, p, y, NULL, 0, NODE_EINVAL, "target[6] = -inf");
        /* a masked entry may hold anything */
        unsigned char mask[8] = { 1, 1, 1, 1, 1, 1, 0, 1 };
        double L, g[8];
        assert_status(node_loss(kinds[k], 8, p, y, mask, 0, &L, g, NULL), NODE_OK);
        assert_true(isfinite(L) && g[6] == 0.0);
        /* the target check comes first: a bad prediction elsewhere is not reported */
        p[1] = NAN;
        y[6] = NAN;
        assert_refused(kinds[k], 8, p, y, NULL, 0, NODE_EINVAL, "target[6]");
        p[1] = 2;
        y[6] = 6;
    }
    /* the wrappers are node_loss with flags 0 */
    y[2] = NAN;
    double L = 5, g[8] = { 0 };
    assert_status(node_loss_mse(8, p, y, NULL, &L, g), NODE_EINVAL);
    assert_status(node_loss_mae(8, p, y, NULL, &L, g), NODE_EINVAL);
    assert_true(L == 5);
}

/* NODE_LOSS_NAN_MISSING: a NaN target is missing, as mask 0 (not counted, gradient
   0); an Inf target is still refused. */
static void test_loss_nan_missing_flag(void **state)
{
    (void)state;
    const double p[4] = { 1, 2, 3, 4 }, y[4] = { 0, NAN, 5, 3.5 };
    const unsigned char m3[4] = { 1, 0, 1, 1 };
    double L, g[4], Lm, gm[4];
    /* residuals 1, -, -2, 0.5 over 3 observed entries */
    assert_status(node_loss(NODE_LOSS_MSE, 4, p, y, NULL, NODE_LOSS_NAN_MISSING, &L, g, NULL),
                  NODE_OK);
    assert_close(L, (1 + 4 + 0.25) / 3, 1e-15, 0);
    assert_true(g[1] == 0.0);
    assert_close(g[2], 2 * -2.0 / 3, 1e-15, 0);
    assert_status(node_loss(NODE_LOSS_MAE, 4, p, y, NULL, NODE_LOSS_NAN_MISSING, &L, g, NULL),
                  NODE_OK);
    assert_close(L, (1 + 2 + 0.5) / 3, 1e-15, 0);
    assert_close(g[0], 1.0 / 3, 1e-15, 0);
    assert_true(g[1] == 0.0);
    /* the same as masking the entry, bit for bit, and combined with a mask */
    for (int k = 0; k < 2; k++) {
        assert_status(node_loss(kinds[k], 4, p, y, NULL, NODE_LOSS_NAN_MISSING, &L, g, NULL),
                      NODE_OK);
        assert_status(node_loss(kinds[k], 4, p, y, m3, 0, &Lm, gm, NULL), NODE_OK);
        assert_memory_equal(&L, &Lm, sizeof L);
        assert_memory_equal(g, gm, sizeof g);
        const unsigned char m2[4] = { 0, 1, 1, 1 };
        assert_status(node_loss(kinds[k], 4, p, y, m2, NODE_LOSS_NAN_MISSING, &L, g, NULL),
                      NODE_OK);
        assert_close(L, k ? (2 + 0.5) / 2 : (4 + 0.25) / 2, 1e-15, 0);
        assert_true(g[0] == 0.0 && g[1] == 0.0);
    }
    /* every target NaN: nothing observed, loss 0 */
    const double yn[4] = { NAN, NAN, NAN, NAN };
    g[2] = 9;
    assert_status(node_loss(NODE_LOSS_MSE, 4, p, yn, NULL, NODE_LOSS_NAN_MISSING, &L, g, NULL),
                  NODE_OK);
    assert_true(L == 0.0 && g[2] == 0.0);
    /* Inf is a value, not a marker */
    const double yi[4] = { 0, INFINITY, 5, NAN };
    for (int k = 0; k < 2; k++)
        assert_refused(kinds[k], 4, p, yi, NULL, NODE_LOSS_NAN_MISSING, NODE_EINVAL,
                       "target[1] = inf at an observed entry: only a NaN target marks a "
                       "missing entry");
}

/* Central differences in every entry of pred, with NaN targets as missing data and a
   mask together. */
static void test_loss_nan_missing_gradient_matches_finite_differences(void **state)
{
    (void)state;
    enum { N = 12 };
    const unsigned char mask[N] = { 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1 };
    double pred[N], target[N], grad[N];
    for (int i = 0; i < N; i++) {
        pred[i] = sin(1.3 * i + 0.2) * 1.5;
        target[i] = i % 5 == 3 ? NAN : cos(0.7 * i) + (i % 2 ? 0.31 : -0.27);
    }
    for (int k = 0; k < 2; k++) {
        double L;
        assert_status(node_loss(kinds[k], N, pred, target, mask, NODE_LOSS_NAN_MISSING, &L,
                                grad, NULL), NODE_OK);
        const double h = 1e-6;
        for (int i = 0; i < N; i++) {
            double save = pred[i], Lp, Lm;
            pred[i] = save + h;
            assert_status(node_loss(kinds[k], N, pred, target, mask, NODE_LOSS_NAN_MISSING,
                                    &Lp, NULL, NULL), NODE_OK);
            pred[i] = save - h;
            assert_status(node_loss(kinds[k], N, pred, target, mask, NODE_LOSS_NAN_MISSING,
                                    &Lm, NULL, NULL), NODE_OK);
            pred[i] = save;
            assert_close(grad[i], (Lp - Lm) / (2 * h), 1e-6, 1e-9);
            if (!mask[i] || isnan(target[i]))
                assert_true(grad[i] == 0.0);
        }
    }
}

static void test_loss_nonfinite_prediction_or_overflow(void **state)
{
    (void)state;
    double p[5] = { 1, 2, 3, 4, 5 }, y[5] = { 1, 1, 1, 1, 1 };
    const unsigned char mask[5] = { 1, 1, 0, 1, 1 };
    for (int k = 0; k < 2; k++) {
        p[2] = NAN;
        assert_refused(kinds[k], 5, p, y, NULL, 0, NODE_ENONFINITE,
                       "pred[2] = nan at an observed entry");
        double L, g[5];
        assert_status(node_loss(kinds[k], 5, p, y, mask, 0, &L, g, NULL), NODE_OK);
        p[2] = -INFINITY;
        assert_refused(kinds[k], 5, p, y, NULL, 0, NODE_ENONFINITE, "pred[2] = -inf");
        p[2] = 3;
    }
    /* (1e200)² overflows: MSE refused, MAE fine */
    double big[2] = { 1e200, 0 }, z[2] = { -1e200, 0 };
    assert_refused(NODE_LOSS_MSE, 2, big, z, NULL, 0, NODE_ENONFINITE,
                   "the sum of squared residuals overflows");
    double L;
    assert_status(node_loss(NODE_LOSS_MAE, 2, big, z, NULL, 0, &L, NULL, NULL), NODE_OK);
    assert_close(L, 1e200, 1e-15, 0);
    /* a residual beyond DBL_MAX, and a sum of finite |r| beyond it */
    const double hp[3] = { DBL_MAX, DBL_MAX, DBL_MAX }, hn[1] = { -DBL_MAX }, zero[3] = { 0 };
    assert_refused(NODE_LOSS_MAE, 1, hp, hn, NULL, 0, NODE_ENONFINITE,
                   "the sum of absolute residuals overflows");
    assert_refused(NODE_LOSS_MAE, 3, hp, zero, NULL, 0, NODE_ENONFINITE,
                   "the sum of absolute residuals overflows");
    const double small[3] = { DBL_MAX / 4, DBL_MAX / 4, 0 };
    assert_status(node_loss(NODE_LOSS_MAE, 3, small, zero, NULL, 0, &L, NULL, NULL), NODE_OK);
    assert_close(L, DBL_MAX / 6, 1e-15, 0);
}

static void test_loss_argument_messages(void **state)
{
    (void)state;
    const double p[2] = { 1, 2 };
    double L, g[2];
    node_error e;
    assert_status(node_loss((node_loss_kind)5, 2, p, p, NULL, 0, &L, g, &e), NODE_EINVAL);
    assert_message(&e, "kind = 5 is not a loss");
    assert_status(node_loss(NODE_LOSS_MSE, 2, p, p, NULL, 4, &L, g, &e), NODE_EINVAL);
    assert_message(&e, "flags = 0x4: unknown flags");
    assert_status(node_loss(NODE_LOSS_MSE, 0, p, p, NULL, 0, &L, g, &e), NODE_EINVAL);
    assert_message(&e, "n = 0");
    assert_status(node_loss(NODE_LOSS_MAE, 2, NULL, p, NULL, 0, &L, g, &e), NODE_EINVAL);
    assert_message(&e, "pred is NULL");
    assert_status(node_loss(NODE_LOSS_MAE, 2, p, NULL, NULL, 0, &L, g, &e), NODE_EINVAL);
    assert_message(&e, "target is NULL");
    assert_status(node_loss(NODE_LOSS_MAE, 2, p, p, NULL, 0, NULL, g, &e), NODE_EINVAL);
    assert_message(&e, "loss is NULL");
    assert_status(node_loss(NODE_LOSS_MAE, 2, p, p, NULL, 0, &L, NULL, &e), NODE_OK);
    assert_int_equal(e.status, NODE_OK);
    assert_string_equal(e.message, "");
    assert_status(node_loss(NODE_LOSS_MAE, 2, p, p, NULL, 0, &L, NULL, NULL), NODE_OK);
}

/* ---- optimizers: a refused step changes nothing -------------------------------------- */

enum { NO = 4 };

typedef struct optcase {
    const char *name;
    node_optim_kind kind;
    double momentum, dampening, weight_decay;
    int nesterov, centered, amsgrad;
} optcase;

static const optcase optcases[] = {
    { "sgd", NODE_OPTIM_SGD, 0, 0, 0, 0, 0, 0 },
    { "sgd momentum dampening decay", NODE_OPTIM_SGD, 0.9, 0.3, 0.01, 0, 0, 0 },
    { "sgd nesterov", NODE_OPTIM_SGD, 0.9, 0, 0, 1, 0, 0 },
    { "rmsprop", NODE_OPTIM_RMSPROP, 0, 0, 0, 0, 0, 0 },
    { "rmsprop centered momentum decay", NODE_OPTIM_RMSPROP, 0.5, 0, 0.01, 0, 1, 0 },
    { "adam", NODE_OPTIM_ADAM, 0, 0, 0.01, 0, 0, 0 },
    { "adam amsgrad", NODE_OPTIM_ADAM, 0, 0, 0, 0, 0, 1 },
    { "adamw", NODE_OPTIM_ADAMW, 0, 0, 0.01, 0, 0, 0 },
};

static node_optim *make_case(const optcase *c)
{
    node_optim_config cfg;
    assert_status(node_optim_defaults(c->kind, &cfg), NODE_OK);
    cfg.lr = 0.05;
    cfg.momentum = c->momentum;
    cfg.dampening = c->dampening;
    cfg.weight_decay = c->weight_decay;
    cfg.nesterov = c->nesterov;
    cfg.centered = c->centered;
    cfg.amsgrad = c->amsgrad;
    node_optim *o = NULL;
    assert_status(node_optim_create(&o, NO, &cfg), NODE_OK);
    return o;
}

static void grad_at(int it, double *g)
{
    for (int i = 0; i < NO; i++)
        g[i] = sin(0.7 * it + 1.1 * i) + 0.2;
}

/* A step refused: ENONFINITE, θ bit for bit as it was, the step count too. */
static void assert_step_refused_n(node_optim *o, size_t n, double *theta, const double *g)
{
    double before[NO];
    int64_t t0, t1;
    assert_true(n <= NO);
    memcpy(before, theta, n * sizeof *theta);
    assert_status(node_optim_get_step(o, &t0), NODE_OK);
    assert_status(node_optim_step(o, theta, g), NODE_ENONFINITE);
    assert_memory_equal(theta, before, n * sizeof *theta);
    assert_status(node_optim_get_step(o, &t1), NODE_OK);
    assert_int_equal(t1, t0);
}

static void assert_step_refused(node_optim *o, double *theta, const double *g)
{
    assert_step_refused_n(o, NO, theta, g);
}

static void test_optim_refused_step_changes_nothing(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof optcases / sizeof optcases[0]; c++) {
        const optcase *oc = &optcases[c];
        node_optim *a = make_case(oc), *b = make_case(oc);
        double ta[NO] = { 0.5, -1, 2, 0.25 }, tb[NO], g[NO];
        memcpy(tb, ta, sizeof ta);
        for (int it = 0; it < 3; it++) {   /* some state first */
            grad_at(it, g);
            assert_status(node_optim_step(a, ta, g), NODE_OK);
            assert_status(node_optim_step(b, tb, g), NODE_OK);
        }
        /* a NaN or Inf in the gradient */
        grad_at(3, g);
        g[2] = NAN;
        assert_step_refused(a, ta, g);
        g[2] = INFINITY;
        assert_step_refused(a, ta, g);
        g[2] = -INFINITY;
        assert_step_refused(a, ta, g);
        /* ... or in θ (refused, θ left as the caller had it) */
        grad_at(3, g);
        double tbad[NO];
        memcpy(tbad, ta, sizeof tbad);
        tbad[1] = NAN;
        assert_step_refused(a, tbad, g);
        assert_true(isnan(tbad[1]));
        tbad[1] = INFINITY;
        assert_step_refused(a, tbad, g);
        /* finite inputs, non-finite update: g² overflows into the second moment
           (RMSprop, Adam: v = Inf, although θ would move by a finite amount), lr·g
           overflows θ (SGD) */
        grad_at(3, g);
        g[3] = 1e300;
        double lr;
        assert_status(node_optim_get_lr(a, &lr), NODE_OK);
        if (oc->kind == NODE_OPTIM_SGD)
            assert_status(node_optim_set_lr(a, 1e10), NODE_OK);
        assert_step_refused(a, ta, g);
        /* ... and a huge rate that takes θ past DBL_MAX (the moments stay finite) */
        grad_at(3, g);
        g[0] = 1e3;
        memcpy(tbad, ta, sizeof tbad);
        tbad[0] = -0.9 * DBL_MAX;
        assert_status(node_optim_set_lr(a, DBL_MAX), NODE_OK);
        assert_step_refused(a, tbad, g);
        assert_status(node_optim_set_lr(a, lr), NODE_OK);
        /* the next good steps: as if the bad ones had never been tried */
        for (int it = 3; it < 7; it++) {
            grad_at(it, g);
            assert_status(node_optim_step(a, ta, g), NODE_OK);
            assert_status(node_optim_step(b, tb, g), NODE_OK);
            if (memcmp(ta, tb, sizeof ta) != 0)
                print_message("%s: step %d differs\n", oc->name, it);
            assert_memory_equal(ta, tb, sizeof ta);
        }
        int64_t t;
        assert_status(node_optim_get_step(a, &t), NODE_OK);
        assert_int_equal(t, 7);
        node_optim_free(a);
        node_optim_free(b);
    }
}

/* Finite inputs that overflow only in a state vector: SGD's momentum buffer
   μb + g with lr = 0, so that θ would not move at all. */
static void test_optim_state_overflow_is_refused(void **state)
{
    (void)state;
    node_optim_config cfg;
    assert_status(node_optim_defaults(NODE_OPTIM_SGD, &cfg), NODE_OK);
    cfg.momentum = 0.9;
    cfg.lr = 0;                  /* θ never moves: only the buffer could overflow */
    node_optim *o = NULL;
    assert_status(node_optim_create(&o, 1, &cfg), NODE_OK);
    double th = 1, g = DBL_MAX;
    assert_status(node_optim_step(o, &th, &g), NODE_OK);     /* b = DBL_MAX */
    assert_step_refused_n(o, 1, &th, &g);                     /* b = 1.9 DBL_MAX */
    g = -DBL_MAX;
    assert_status(node_optim_step(o, &th, &g), NODE_OK);     /* b = -0.1 DBL_MAX */
    int64_t t;
    assert_status(node_optim_get_step(o, &t), NODE_OK);
    assert_int_equal(t, 2);
    node_optim_free(o);
}

static void test_optim_create_ex_names_the_parameter(void **state)
{
    (void)state;
    node_optim *o = NULL;
    node_error e;
    node_optim_config c, bad;
    struct { node_optim_kind kind; const char *field; double value; const char *msg; } cases[] = {
        { NODE_OPTIM_ADAM, "beta1", 1.0, "cfg->beta1 = 1 is outside [0, 1)" },
        { NODE_OPTIM_ADAMW, "beta2", -0.1, "cfg->beta2 = -0.1 is outside [0, 1)" },
        { NODE_OPTIM_ADAM, "beta2", NAN, "cfg->beta2 = nan is outside [0, 1)" },
        { NODE_OPTIM_ADAM, "eps", -1e-8, "cfg->eps = -1e-08: must be finite and >= 0" },
        { NODE_OPTIM_RMSPROP, "alpha", 1.0, "cfg->alpha = 1 is outside [0, 1)" },
        { NODE_OPTIM_RMSPROP, "eps", INFINITY, "cfg->eps = inf" },
        { NODE_OPTIM_RMSPROP, "momentum", -0.5, "cfg->momentum = -0.5: must be finite" },
        { NODE_OPTIM_SGD, "lr", -1, "cfg->lr = -1: the learning rate must be finite and >= 0" },
        { NODE_OPTIM_SGD, "lr", INFINITY, "cfg->lr = inf" },
        { NODE_OPTIM_SGD, "weight_decay", -0.1, "cfg->weight_decay = -0.1" },
        { NODE_OPTIM_SGD, "dampening", NAN, "cfg->dampening = nan: must be finite" },
        { NODE_OPTIM_SGD, "nesterov", 1, "cfg->nesterov needs momentum > 0 and dampening = 0 "
                                         "(momentum = 0, dampening = 0)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_status(node_optim_defaults(cases[i].kind, &c), NODE_OK);
        bad = c;
        const char *f = cases[i].field;
        double v = cases[i].value;
        if (!strcmp(f, "beta1")) bad.beta1 = v;
        else if (!strcmp(f, "beta2")) bad.beta2 = v;
        else if (!strcmp(f, "eps")) bad.eps = v;
        else if (!strcmp(f, "alpha")) bad.alpha = v;
        else if (!strcmp(f, "momentum")) bad.momentum = v;
        else if (!strcmp(f, "lr")) bad.lr = v;
        else if (!strcmp(f, "weight_decay")) bad.weight_decay = v;
        else if (!strcmp(f, "dampening")) bad.dampening = v;
        else if (!strcmp(f, "nesterov")) bad.nesterov = (int32_t)v;
        assert_status(node_optim_create_ex(&o, 3, &bad, &e), NODE_EINVAL);
        assert_int_equal(e.status, NODE_EINVAL);
        assert_message(&e, cases[i].msg);
        assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
        assert_null(o);
    }
    /* a parameter another kind reads is not checked (alpha for Adam) */
    assert_status(node_optim_defaults(NODE_OPTIM_ADAM, &c), NODE_OK);
    bad = c;
    bad.alpha = 7;
    assert_status(node_optim_create_ex(&o, 3, &bad, &e), NODE_OK);
    assert_string_equal(e.message, "");
    node_optim_free(o);
    o = NULL;
    bad = c;
    bad.kind = (node_optim_kind)9;
    assert_status(node_optim_create_ex(&o, 3, &bad, &e), NODE_EINVAL);
    assert_message(&e, "cfg->kind = 9 is not an optimizer");
    bad = c;
    bad.reserved_[3] = 1;
    assert_status(node_optim_create_ex(&o, 3, &bad, &e), NODE_EINVAL);
    assert_message(&e, "non-zero reserved fields");
    bad = c;
    bad.reserved2_ = 1;
    assert_status(node_optim_create_ex(&o, 3, &bad, &e), NODE_EINVAL);
    assert_status(node_optim_create_ex(&o, 0, &c, &e), NODE_EINVAL);
    assert_message(&e, "n = 0");
    assert_status(node_optim_create_ex(NULL, 3, &c, &e), NODE_EINVAL);
    assert_message(&e, "out is NULL");
    assert_status(node_optim_create_ex(&o, 3, NULL, &e), NODE_EINVAL);
    assert_message(&e, "cfg is NULL");
    assert_null(o);
    assert_status(node_optim_create_ex(&o, 3, &c, NULL), NODE_OK);
    node_optim_free(o);
}

/* ---- schedules ---------------------------------------------------------------------- */

static void test_sched_refuses_an_overflowing_rate(void **state)
{
    (void)state;
    node_sched s = node_sched_constant(1);
    s.kind = NODE_SCHED_STEP;
    s.step_size = 1;
    s.gamma = 2;
    double lr = -3;
    assert_status(node_sched_lr(&s, 1023, &lr), NODE_OK);
    assert_close(lr, ldexp(1, 1023), 0, 0);
    lr = -3;
    assert_status(node_sched_lr(&s, 1024, &lr), NODE_ENONFINITE);
    assert_true(lr == -3);
    assert_status(node_sched_lr(&s, 100000, &lr), NODE_ENONFINITE);
    assert_true(lr == -3);
    s.lr0 = 0;                    /* 0 · γ^k = 0, not 0 · Inf */
    assert_status(node_sched_lr(&s, 5000, &lr), NODE_OK);
    assert_true(lr == 0);
    s.lr0 = 1;
    node_optim_config c;
    assert_status(node_optim_defaults(NODE_OPTIM_SGD, &c), NODE_OK);
    node_optim *o = NULL;
    assert_status(node_optim_create(&o, 2, &c), NODE_OK);
    assert_status(node_optim_schedule(o, &s, 4000), NODE_ENONFINITE);
    assert_status(node_optim_get_lr(o, &lr), NODE_OK);
    assert_close(lr, 1e-3, 0, 0);  /* the rate the optimizer had */
    node_optim_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_nonfinite_target_is_refused_by_index),
        cmocka_unit_test(test_loss_nan_missing_flag),
        cmocka_unit_test(test_loss_nan_missing_gradient_matches_finite_differences),
        cmocka_unit_test(test_loss_nonfinite_prediction_or_overflow),
        cmocka_unit_test(test_loss_argument_messages),
        cmocka_unit_test(test_optim_refused_step_changes_nothing),
        cmocka_unit_test(test_optim_state_overflow_is_refused),
        cmocka_unit_test(test_optim_create_ex_names_the_parameter),
        cmocka_unit_test(test_sched_refuses_an_overflowing_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
