/* test_tableau.c — consistency of every Butcher tableau: row sums, the order
 * conditions Σ b_i Φ_i(t) = 1/γ(t) over all rooted trees t up to the claimed order
 * (HNW I, Section II.2, Theorem 2.13), the embedded weights' lower order, and the
 * dense weights (w(0) = 0, w(1) = b, Σ w = θ, dw = w', continuous order conditions
 * Σ w_i(θ) Φ_i(t) = θ^|t| / γ(t), HNW I, Section II.6).
 */
#include "test_util.h"
#include "internal.h"

#include <string.h>

/* y' = y cos t (y = e^{sin t}) */
static int expsin(void *ctx, double t, const double *y, double *dy)
{
    (void)ctx;
    dy[0] = y[0] * cos(t);
    return 0;
}

/* ---- rooted trees up to order 8 ---------------------------------------------------- */

#define MAXORDER 8
#define MAXTREES 200   /* 1 + 1 + 2 + 4 + 9 + 20 + 48 + 115 (OEIS A000081) */

typedef struct tree {
    int order;
    double gamma;           /* the density γ(t) */
    int nch, ch[MAXORDER + 1];  /* children (indices of smaller trees), non-increasing */
} tree;

static tree trees[MAXTREES];
static int ntrees;

/* All multisets of trees (indices <= maxi, non-increasing) with orders summing to rem
   become the children of a new root; the tree has order `order`. */
static void gen(int order, int rem, int maxi, int *ch, int nch)
{
    if (rem == 0) {
        assert_true(ntrees < MAXTREES);
        tree *t = &trees[ntrees++];
        t->order = order;
        t->nch = nch;
        t->gamma = order;
        for (int i = 0; i < nch; i++) {
            t->ch[i] = ch[i];
            t->gamma *= trees[ch[i]].gamma;
        }
        return;
    }
    for (int i = maxi; i >= 0; i--)
        if (trees[i].order <= rem && nch < MAXORDER) {
            ch[nch] = i;
            gen(order, rem - trees[i].order, i, ch, nch + 1);
        }
}

static void make_trees(void)
{
    if (ntrees)
        return;
    int ch[MAXORDER + 1];
    for (int n = 1; n <= MAXORDER; n++) {
        int before = ntrees;
        gen(n, n - 1, before - 1, ch, 0);
    }
}

/* phi[t][i] = Φ_i(t): 1 for the one-node tree, Π_children (A Φ(child))_i otherwise. */
static double phi[MAXTREES][NODE__MAXSTAGES];

static void elementary_weights(const node__tableau *tab)
{
    int n = tab->s_dense;
    for (int t = 0; t < ntrees; t++)
        for (int i = 0; i < n; i++) {
            double p = 1;
            for (int c = 0; c < trees[t].nch; c++) {
                double a = 0;
                for (int j = 0; j < i; j++)
                    a += tab->A[i * n + j] * phi[trees[t].ch[c]][j];
                p *= a;
            }
            phi[t][i] = p;
        }
}

/* Largest |Σ w_i Φ_i(t) - θ^|t|/γ(t)| over trees of order `order` (ns stages). */
static double defect(const double *w, int ns, int order, double theta)
{
    double worst = 0;
    for (int t = 0; t < ntrees; t++) {
        if (trees[t].order != order)
            continue;
        double sum = 0;
        for (int i = 0; i < ns; i++)
            sum += w[i] * phi[t][i];
        worst = fmax(worst, fabs(sum - pow(theta, order) / trees[t].gamma));
    }
    return worst;
}

/* Every test runs over the whole registry: a new method is checked by adding it. */
#define NMETHODS (int)node__tableau_count()
#define ENTRY(m) node__tableau_at((size_t)(m))

/* Coefficients of DOP853 are 30-digit decimals of irrationals as large as ~50:
   its conditions hold to rounding, ~1e-13. */
#define TOL 1e-12

static void test_tree_counts_match_oeis(void **state)
{
    (void)state;
    make_trees();
    static const int want[MAXORDER + 1] = { 0, 1, 1, 2, 4, 9, 20, 48, 115 };
    int count[MAXORDER + 1] = { 0 };
    for (int t = 0; t < ntrees; t++)
        count[trees[t].order]++;
    for (int n = 1; n <= MAXORDER; n++)
        assert_int_equal(count[n], want[n]);
}

static void test_rows_of_A_sum_to_c_and_A_is_strictly_lower(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        assert_non_null(tab);
        assert_true(node__tableau_get(tab->method) == tab);
        assert_true(tab->s >= 1 && tab->s <= tab->s_dense && tab->s_dense <= NODE__MAXSTAGES);
        int n = tab->s_dense;
        for (int i = 0; i < n; i++) {
            double sum = 0;
            for (int j = 0; j < n; j++) {
                if (j >= i)
                    assert_true(tab->A[i * n + j] == 0);
                sum += tab->A[i * n + j];
            }
            assert_close(sum, tab->c[i], 0, 1e-14);
        }
        assert_true(tab->c[0] == 0);
    }
}

static void test_weights_sum_to_one_and_errors_to_zero(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        double sb = 0, se = 0, se3 = 0;
        for (int i = 0; i < tab->s; i++) {
            sb += tab->b[i];
            se += tab->e ? tab->e[i] : 0;
            se3 += tab->e3 ? tab->e3[i] : 0;
        }
        assert_close(sb, 1, 0, 1e-14);
        assert_close(se, 0, 0, 1e-14);
        assert_close(se3, 0, 0, 1e-14);
        assert_true((tab->err_order > 0) == (tab->e != NULL));
    }
}

/* FSAL: stage s-1 is f(t+h, ynew); fixed methods' dense stage s likewise (the
   integrator reuses both as the next k_0). */
static void test_fsal_and_dense_stage_rows_equal_b(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        int n = tab->s_dense, row = -1;
        if (tab->fsal)
            row = tab->s - 1;
        else if (tab->s_dense > tab->s)
            row = tab->s;
        if (row < 0)
            continue;
        assert_true(tab->c[row] == 1);
        for (int j = 0; j < n; j++)
            assert_true(tab->A[row * n + j] == (j < tab->s ? tab->b[j] : 0));
        if (tab->fsal)
            assert_true(tab->b[tab->s - 1] == 0);
    }
}

static void check_order(const double *w, int ns, int order, const char *what, const char *name)
{
    for (int p = 1; p <= order; p++) {
        double d = defect(w, ns, p, 1.0);
        if (d > TOL)
            fail_msg("%s %s: order-%d conditions violated by %.3g", name, what, p, d);
    }
    /* ...and the order is not higher than claimed. */
    if (order < MAXORDER) {
        double d = defect(w, ns, order + 1, 1.0);
        if (d < 1e-8)
            fail_msg("%s %s: order %d claimed but order-%d conditions hold", name, what,
                     order, order + 1);
    }
}

static void test_order_conditions_of_b(void **state)
{
    (void)state;
    make_trees();
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        elementary_weights(tab);
        check_order(tab->b, tab->s, tab->order, "b", tab->name);
        /* the quadrature conditions b·c^k = 1/(k+1), spelled out */
        for (int k = 0; k < tab->order; k++) {
            double sum = 0;
            for (int i = 0; i < tab->s; i++)
                sum += tab->b[i] * pow(tab->c[i], k);
            assert_close(sum, 1.0 / (k + 1), 0, TOL);
        }
    }
}

static void test_embedded_weights_have_the_lower_order(void **state)
{
    (void)state;
    make_trees();
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        if (!tab->e)
            continue;
        elementary_weights(tab);
        double bhat[NODE__MAXSTAGES];
        for (int i = 0; i < tab->s; i++)
            bhat[i] = tab->b[i] - tab->e[i];
        check_order(bhat, tab->s, tab->err_order, "b - e", tab->name);
        if (tab->e3) {
            for (int i = 0; i < tab->s; i++)
                bhat[i] = tab->b[i] - tab->e3[i];
            check_order(bhat, tab->s, 3, "b - e3", tab->name);
        }
    }
}

static void test_dense_weights_endpoints_sum_and_derivative(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        int n = tab->s_dense;
        double w[NODE__MAXSTAGES], dw[NODE__MAXSTAGES], wp[NODE__MAXSTAGES],
            wm[NODE__MAXSTAGES];
        tab->dense(0, w, dw);
        for (int i = 0; i < n; i++)
            assert_close(w[i], 0, 0, 1e-15);
        tab->dense(1, w, NULL);
        for (int i = 0; i < n; i++)
            assert_close(w[i], i < tab->s ? tab->b[i] : 0, 0, 1e-13);
        for (double th = 0.05; th < 1; th += 0.1) {
            tab->dense(th, w, dw);
            double sum = 0;
            for (int i = 0; i < n; i++)
                sum += w[i];
            assert_close(sum, th, 0, 1e-13);
            /* dw = dw/dθ by central differences (O(δ²) with δ = 1e-5) */
            double dl = 1e-5;
            tab->dense(th + dl, wp, NULL);
            tab->dense(th - dl, wm, NULL);
            for (int i = 0; i < n; i++)
                assert_close(dw[i], (wp[i] - wm[i]) / (2 * dl), 1e-6, 1e-6);
        }
    }
}

static void test_dense_weights_satisfy_continuous_order_conditions(void **state)
{
    (void)state;
    make_trees();
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        elementary_weights(tab);
        double w[NODE__MAXSTAGES];
        for (double th = 0.1; th < 1; th += 0.2) {
            tab->dense(th, w, NULL);
            for (int p = 1; p <= tab->dense_order; p++) {
                double d = defect(w, tab->s_dense, p, th);
                if (d > TOL)
                    fail_msg("%s dense θ=%g: order-%d conditions violated by %.3g",
                             tab->name, th, p, d);
            }
        }
        /* not of a higher order than claimed (somewhere in the step) */
        double worst = 0;
        for (double th = 0.1; th < 1; th += 0.2) {
            tab->dense(th, w, NULL);
            worst = fmax(worst, defect(w, tab->s_dense, tab->dense_order + 1, th));
        }
        assert_true(worst > 1e-8);
    }
}

static void test_unknown_method_has_no_tableau(void **state)
{
    (void)state;
    assert_null(node__tableau_get((node_method)99));
    assert_null(node__tableau_get((node_method)-1));
}

static void test_method_names_round_trip(void **state)
{
    (void)state;
    /* the public names (the API contract) */
    static const struct { node_method m; const char *name; } expect[] = {
        { NODE_EULER, "euler" }, { NODE_MIDPOINT, "midpoint" }, { NODE_RK4, "rk4" },
        { NODE_BOSH3, "bosh3" }, { NODE_DOPRI5, "dopri5" }, { NODE_DOP853, "dop853" } };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_string_equal(node_method_name(expect[i].m), expect[i].name);
    assert_int_equal(NMETHODS, sizeof expect / sizeof expect[0]);
    assert_null(node_method_name((node_method)42));
    node_method out = NODE_EULER;
    assert_status(node_method_parse("rk45", &out), NODE_OK);
    assert_int_equal(out, NODE_DOPRI5);
    assert_status(node_method_parse("bs3", &out), NODE_OK);
    assert_int_equal(out, NODE_BOSH3);
    assert_status(node_method_parse("dp853", &out), NODE_OK);
    assert_int_equal(out, NODE_DOP853);
    assert_status(node_method_parse("dopri8", &out), NODE_OK);
    assert_int_equal(out, NODE_DOP853);
    assert_status(node_method_parse("rk5", &out), NODE_EINVAL);
    assert_status(node_method_parse("", &out), NODE_EINVAL);
    assert_status(node_method_parse("DOPRI5", &out), NODE_EINVAL);
    assert_status(node_method_parse(NULL, &out), NODE_EINVAL);
    assert_status(node_method_parse("rk4", NULL), NODE_EINVAL);
    assert_null(node__tableau_at((size_t)NMETHODS));
}

/* Every entry: its name and aliases parse back to it and to nothing else, its method
   value is its own, its orders and controller constants make sense. */
static void test_every_registry_entry_is_consistent(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        const char *names[1 + NODE__MAXALIASES] = { tab->name };
        int nn = 1;
        for (int a = 0; a < NODE__MAXALIASES && tab->aliases[a]; a++)
            names[nn++] = tab->aliases[a];
        for (int a = 0; a < nn; a++) {
            node_method back = (node_method)-1;
            assert_status(node_method_parse(names[a], &back), NODE_OK);
            assert_int_equal(back, tab->method);
            /* no other entry claims the name */
            for (int o = 0; o < NMETHODS; o++) {
                const node__tableau *other = ENTRY(o);
                if (other == tab)
                    continue;
                assert_true(other->method != tab->method);
                assert_true(strcmp(other->name, names[a]) != 0);
                for (int b = 0; b < NODE__MAXALIASES && other->aliases[b]; b++)
                    assert_true(strcmp(other->aliases[b], names[a]) != 0);
            }
        }
        assert_string_equal(node_method_name(tab->method), tab->name);
        assert_true(node__tableau_get(tab->method) == tab);
        assert_true(tab->order >= 1 && tab->dense_order >= 1 && tab->dense_order <= tab->order);
        assert_true(tab->dense != NULL && tab->c && tab->A && tab->b);
        const node__step_control *k = &tab->ctl;
        if (tab->err_order == 0) {          /* fixed step: no estimate, no controller */
            assert_null(tab->e);
            assert_null(tab->e3);
            assert_true(k->safety == 0 && k->beta == 0 && k->facmin == 0 && k->facmax == 0 &&
                        k->q == 0);
            continue;
        }
        assert_non_null(tab->e);
        assert_true(tab->err_order < tab->order);
        assert_true(k->safety > 0.5 && k->safety < 1);
        assert_true(k->beta >= 0 && k->beta <= 0.2);   /* dopri5.f's limit */
        assert_true(k->facmin > 0 && k->facmin < 1 && k->facmax > 1 && k->facmax <= 100);
        /* q: the exponent of the estimate the controller uses, err ~ h^q; DOP853's
           combined e5²/sqrt(e5² + 0.01 e3²) ~ h^(2(p̂+1) - 4) with p̂ = err_order */
        if (tab->e3)
            assert_int_equal(k->q, 2 * (tab->err_order + 1) - 4);
        else
            assert_int_equal(k->q, tab->err_order + 1);
        assert_true(1.0 / k->q - 0.75 * k->beta > 0);   /* α > 0: larger errors, smaller steps */
    }
}

/* The controller's q is the observed exponent of the method's error estimate: one step
   of size h and h/2 from the same point of y' = y cos t (y = e^{sin t}), the estimate
   formed from the entry's e (and e3) as the solver forms it; log2 of the ratio is q. */
static double one_step_error(const node__tableau *tab, double h)
{
    static double kbuf[NODE__MAXSTAGES], tmp[1];
    double *k[NODE__MAXSTAGES];
    for (int i = 0; i < NODE__MAXSTAGES; i++)
        k[i] = &kbuf[i];
    node__ode ode = { 1, expsin, NULL, NULL, NULL };
    double t = 0.7, y = exp(sin(t));
    int64_t nfe = 0;
    const node__ode_kernels *kern = node__ode_kernels_for(NODE__ISA_GENERIC);
    assert_int_equal(node__rk_stages(kern, tab, &ode, t, h, &y, k, 0, tab->s, tmp, &nfe), 0);
    double e5 = 0, e3 = 0;
    node__rk_combine(kern, 1, &e5, h, tab->e, tab->s, k, &e5);
    e5 = fabs(e5);
    if (!tab->e3)
        return e5;
    node__rk_combine(kern, 1, &e3, h, tab->e3, tab->s, k, &e3);
    e3 = fabs(e3);
    return e5 * e5 / sqrt(e5 * e5 + 0.01 * e3 * e3);
}

static void test_error_estimate_behaves_like_h_to_the_q(void **state)
{
    (void)state;
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = ENTRY(m);
        if (!tab->e)
            continue;
        /* h and t where the leading error terms dominate (DOP853's e3 must dominate e5)
           and roundoff does not */
        double h = 0.05;
        double p = log2(one_step_error(tab, h) / one_step_error(tab, h / 2));
        if (fabs(p - tab->ctl.q) > 0.25)
            fail_msg("%s: the error estimate behaves like h^%.2f, q = %d", tab->name, p,
                     tab->ctl.q);
    }
}

static void test_options_default(void **state)
{
    (void)state;
    node_options o = node_options_default();
    assert_int_equal(o.method, NODE_DOPRI5);
    assert_true(o.rtol == 1e-7 && o.atol == 1e-9);
    assert_true(o.step == 0 && o.max_step == 0 && o.max_steps == 0);
    assert_true(o.adjoint_rtol == 0 && o.adjoint_atol == 0 && o.seminorm == 0);
    node_options r;
    assert_status(node__options_resolve(NULL, &r, NULL), NODE_OK);
    assert_true(r.max_steps == 1000000 && r.adjoint_rtol == 1e-7 && r.adjoint_atol == 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_counts_match_oeis),
        cmocka_unit_test(test_rows_of_A_sum_to_c_and_A_is_strictly_lower),
        cmocka_unit_test(test_weights_sum_to_one_and_errors_to_zero),
        cmocka_unit_test(test_fsal_and_dense_stage_rows_equal_b),
        cmocka_unit_test(test_order_conditions_of_b),
        cmocka_unit_test(test_embedded_weights_have_the_lower_order),
        cmocka_unit_test(test_dense_weights_endpoints_sum_and_derivative),
        cmocka_unit_test(test_dense_weights_satisfy_continuous_order_conditions),
        cmocka_unit_test(test_unknown_method_has_no_tableau),
        cmocka_unit_test(test_method_names_round_trip),
        cmocka_unit_test(test_every_registry_entry_is_consistent),
        cmocka_unit_test(test_error_estimate_behaves_like_h_to_the_q),
        cmocka_unit_test(test_options_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
