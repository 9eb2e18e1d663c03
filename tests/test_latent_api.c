/* test_latent_api.c — the latent ODE's contract besides its numbers (seq.h): defaults
 * and zero-means-default configs, every refused argument with its message, non-zero
 * reserved fields, allocation-free calls once a (B, nt) has been seen, failed
 * allocations at every point of create, load and a first loss call (nothing leaks, the
 * model stays usable), and model files: a bit-exact round trip, truncated and
 * corrupted files refused with NODE_EFORMAT.  Tests may use POSIX.
 */
#define _POSIX_C_SOURCE 200809L
#include "latent_fixtures.h"
#include "seq/latent.h"

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

/* ---- configuration ---------------------------------------------------------------- */

static void test_defaults_are_the_papers(void **state)
{
    (void)state;
    node_latent_config c;
    assert_status(node_latent_defaults(3, &c), NODE_OK);
    assert_int_equal(c.obs_dim, 3);
    assert_int_equal(c.latent_dim, 4);
    assert_int_equal(c.rnn_hidden, 25);
    assert_int_equal(c.dyn_hidden, 20);
    assert_int_equal(c.dec_hidden, 20);
    assert_close(c.obs_std, 0.3, 0, 0);
    assert_int_equal(c.rnn_cell, NODE_CELL_TANH);
    assert_status(node_latent_defaults(0, &c), NODE_EINVAL);
    assert_status(node_latent_defaults(2, NULL), NODE_EINVAL);

    /* zero fields mean the defaults: { .obs_dim = 2 } is the paper's model */
    node_latent_config z, got;
    memset(&z, 0, sizeof z);
    z.obs_dim = 2;
    node_latent *m;
    assert_status(node_latent_create(&m, &z, NULL), NODE_OK);
    assert_status(node_latent_config_get(m, &got), NODE_OK);
    assert_status(node_latent_defaults(2, &c), NODE_OK);
    assert_memory_equal(&got, &c, sizeof c);
    /* 25·(3+25)+25 + 26·8 + 5·20+21·20+21·4 + 5·20+21·2 */
    assert_int_equal(node_latent_nparams(m), 725 + 208 + 604 + 142);
    assert_status(node_latent_config_get(NULL, &got), NODE_EINVAL);
    assert_status(node_latent_config_get(m, NULL), NODE_EINVAL);
    node_latent_free(m);
    node_latent_free(NULL);
    assert_int_equal(node_latent_nparams(NULL), 0);
    assert_null(node_latent_params(NULL));
    node_latent_init(NULL, 1);   /* a no-op */
}

static void create_refused(const node_latent_config *c, const char *what)
{
    node_latent *m = NULL;
    node_error err;
    assert_status(node_latent_create(&m, c, &err), NODE_EINVAL);
    assert_null(m);
    assert_int_equal(err.status, NODE_EINVAL);
    if (!strstr(err.message, what))
        print_error("message \"%s\" does not name \"%s\"\n", err.message, what);
    assert_non_null(strstr(err.message, what));
}

static void test_create_refuses_bad_configs(void **state)
{
    (void)state;
    node_latent_config c = small_config();
    node_latent *m = NULL;
    node_error err;
    assert_status(node_latent_create(NULL, &c, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "out"));
    create_refused(NULL, "cfg is NULL");
    c.obs_dim = 0;
    create_refused(&c, "obs_dim");
    c = small_config();
    c.obs_std = -0.1;
    create_refused(&c, "obs_std");
    c.obs_std = NAN;
    create_refused(&c, "obs_std");
    c.obs_std = INFINITY;
    create_refused(&c, "obs_std");
    c = small_config();
    c.reserved_[0] = 1;
    create_refused(&c, "reserved");
    c = small_config();
    c.rnn_cell = 3;
    create_refused(&c, "rnn_cell = 3 is not a cell kind");
    c = small_config();
    c.rnn_hidden = UINT64_MAX / 2;   /* more parameters than memory */
    assert_status(node_latent_create(&m, &c, &err), NODE_ENOMEM);
    assert_non_null(strstr(err.message, "parameters"));
    assert_null(m);
}

/* ---- refused calls ---------------------------------------------------------------- */

typedef struct call {
    node_latent *m;
    node_solver *s;
    size_t B, nt;
    const double *ts, *xs, *eps;
    const unsigned char *enc, *obs;
    const node_options *opt;
    int how;
    node_latent_terms *terms;
    double *grad;
} call;

static call good_call(node_latent *m, node_solver *s, const double *xs,
                      node_latent_terms *terms, double *grad)
{
    call c = { m, s, LB, LNT, LTS, xs, LEPS, LENC, LOBS, NULL, NODE_GRAD_ADJOINT, terms,
               grad };
    return c;
}

/* The call is refused with want and a message naming what; stats says the same. */
static void refused(const call *c, node_status want, const char *what)
{
    node_error err;
    node_stats st;
    node_status got = node_latent_loss(c->m, c->s, c->B, c->nt, c->ts, c->xs, c->enc, c->obs,
                                       c->eps, c->opt, (node_grad_method)c->how, c->terms,
                                       c->grad, &st, &err);
    assert_status(got, want);
    assert_int_equal(err.status, want);
    assert_int_equal(st.status, want);
    assert_string_equal(st.message, err.message);
    if (!strstr(err.message, what))
        print_error("message \"%s\" does not name \"%s\"\n", err.message, what);
    assert_non_null(strstr(err.message, what));
}

static void test_loss_refuses_bad_arguments(void **state)
{
    (void)state;
    node_latent *m = small_model(1);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], grad[LP], ts[LNT], eps[LB * LL];
    batch_values(xs);
    node_latent_terms t;
    call c = good_call(m, s, xs, &t, grad);
    c.m = NULL;            refused(&c, NODE_EINVAL, "m is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.s = NULL;            refused(&c, NODE_EINVAL, "s is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.B = 0;               refused(&c, NODE_EINVAL, "B is 0");
    c = good_call(m, s, xs, &t, grad);
    c.nt = 0;              refused(&c, NODE_EINVAL, "nt is 0");
    c = good_call(m, s, xs, &t, grad);
    c.ts = NULL;           refused(&c, NODE_EINVAL, "ts is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.xs = NULL;           refused(&c, NODE_EINVAL, "xs is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.enc = NULL;          refused(&c, NODE_EINVAL, "enc_mask is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.obs = NULL;          refused(&c, NODE_EINVAL, "obs_mask is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.terms = NULL;        refused(&c, NODE_EINVAL, "terms is NULL");
    c = good_call(m, s, xs, &t, grad);
    c.how = 7;             refused(&c, NODE_EINVAL, "how = 7");

    /* times: finite, strictly increasing */
    memcpy(ts, LTS, sizeof ts);
    c = good_call(m, s, xs, &t, grad);
    c.ts = ts;
    ts[3] = ts[2];         refused(&c, NODE_EINVAL, "ts[3] = 0.45 is not after ts[2]");
    ts[3] = NAN;           refused(&c, NODE_EINVAL, "ts[3] = nan is not finite");
    memcpy(ts, LTS, sizeof ts);
    ts[0] = 5;             refused(&c, NODE_EINVAL, "strictly increasing");

    /* a series the encoder never sees */
    unsigned char enc[LNT * LB];
    memcpy(enc, LENC, sizeof enc);
    for (size_t i = 0; i < LNT; i++)
        enc[i * LB + 1] = 0;
    c = good_call(m, s, xs, &t, grad);
    c.enc = enc;           refused(&c, NODE_EINVAL, "series 1 has no observation in enc_mask");

    /* a NaN where a mask is 1 (an unread NaN is fine: batch_values puts them there) */
    double bad[LNT * LB * LD];
    memcpy(bad, xs, sizeof bad);
    bad[(5 * LB + 2) * LD + 1] = NAN;   /* time 5, series 2: likelihood only */
    c = good_call(m, s, bad, &t, grad);
    refused(&c, NODE_EINVAL, "(time 5, series 2)");
    memcpy(bad, xs, sizeof bad);
    bad[(4 * LB + 2) * LD] = INFINITY;  /* time 4, series 2: both */
    refused(&c, NODE_EINVAL, "xs[28] = inf");
    memcpy(eps, LEPS, sizeof eps);
    eps[4] = NAN;
    c = good_call(m, s, xs, &t, grad);
    c.eps = eps;           refused(&c, NODE_EINVAL, "eps[4] = nan");

    /* the solver's options, refused by the solve and reported as such */
    node_options o = node_options_default();
    o.rtol = -1;
    c = good_call(m, s, xs, &t, grad);
    c.opt = &o;            refused(&c, NODE_EINVAL, "forward solve: ");
    o = node_options_default();
    o.reserved_[2] = 1;    refused(&c, NODE_EINVAL, "reserved");
    o = node_options_default();
    o.max_steps = 3;       refused(&c, NODE_EMAXSTEPS, "max_steps");

    /* and the call still works */
    c = good_call(m, s, xs, &t, grad);
    node_error err;
    assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, NULL,
                                   NODE_GRAD_BACKPROP, &t, grad, NULL, &err), NODE_OK);
    assert_string_equal(err.message, "");
    assert_true(isfinite(t.loss));
    assert_int_equal(t.reserved_[0] | t.reserved_[3], 0);
    node_solver_free(s);
    node_latent_free(m);
}

static void test_predict_refuses_bad_arguments(void **state)
{
    (void)state;
    node_latent *m = small_model(1);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], pred[LNT * LB * LD], ts[LNT];
    batch_values(xs);
    node_error err;
    node_stats st;
#define PREDICT(m_, s_, B_, nt_, ts_, xs_, enc_, out_) \
    node_latent_predict(m_, s_, B_, nt_, ts_, xs_, enc_, NULL, NULL, out_, NULL, &st, &err)
    assert_status(PREDICT(NULL, s, LB, LNT, LTS, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "m is NULL"));
    assert_status(PREDICT(m, NULL, LB, LNT, LTS, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "s is NULL"));
    assert_status(PREDICT(m, s, 0, LNT, LTS, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "B is 0"));
    assert_status(PREDICT(m, s, LB, 0, LTS, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "nt is 0"));
    assert_status(PREDICT(m, s, LB, LNT, NULL, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "ts is NULL"));
    assert_status(PREDICT(m, s, LB, LNT, LTS, NULL, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "xs is NULL"));
    assert_status(PREDICT(m, s, LB, LNT, LTS, xs, NULL, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "enc_mask is NULL"));
    assert_status(PREDICT(m, s, LB, LNT, LTS, xs, LENC, NULL), NODE_EINVAL);
    assert_non_null(strstr(err.message, "xs_pred is NULL"));
    memcpy(ts, LTS, sizeof ts);
    ts[6] = 0;
    assert_status(PREDICT(m, s, LB, LNT, ts, xs, LENC, pred), NODE_EINVAL);
    assert_non_null(strstr(err.message, "ts[6] = 0 is not after"));
    assert_string_equal(st.message, err.message);
    /* predict reads xs only where enc_mask is 1: a NaN under obs_mask alone is fine */
    double x2[LNT * LB * LD];
    memcpy(x2, xs, sizeof x2);
    x2[(5 * LB + 2) * LD + 1] = NAN;
    assert_status(PREDICT(m, s, LB, LNT, LTS, x2, LENC, pred), NODE_OK);
    assert_string_equal(err.message, "");
    assert_int_equal(st.status, NODE_OK);
    assert_true(st.nfe > 0);
#undef PREDICT
    node_solver_free(s);
    node_latent_free(m);
}

/* ---- memory -------------------------------------------------------------------------- */

/* A second call at the same (B, nt), or at a smaller one, allocates nothing. */
static void test_calls_allocate_nothing_once_sized(void **state)
{
    (void)state;
    node_latent *m = small_model(2);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], grad[LP], pred[LNT * LB * LD], z[LNT * LB * LL];
    batch_values(xs);
    node_latent_terms t;
    for (int how = 0; how < 2; how++) {
        node_options o = how ? rk4_options() : node_options_default();
        assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, &o,
                                       (node_grad_method)how, &t, grad, NULL, NULL), NODE_OK);
        node_test_alloc_begin(-1);
        for (int rep = 0; rep < 2; rep++) {
            assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, &o,
                                           (node_grad_method)how, &t, grad, NULL, NULL),
                          NODE_OK);
            assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, NULL, &o,
                                           (node_grad_method)how, &t, NULL, NULL, NULL),
                          NODE_OK);
            assert_status(node_latent_predict(m, s, LB, LNT, LTS, xs, LENC, LEPS, &o, pred, z,
                                              NULL, NULL), NODE_OK);
            /* one series on the first five times: smaller, still nothing */
            assert_status(node_latent_predict(m, s, 1, 5, LTS, xs, LENC, NULL, &o, pred, z,
                                              NULL, NULL), NODE_OK);
        }
        assert_int_equal(node_test_alloc_end(), 0);
    }
    node_solver_free(s);
    node_latent_free(m);
}

static void test_create_survives_every_failed_allocation(void **state)
{
    (void)state;
    node_latent_config c = small_config();
    bool done = false;
    for (long k = 0; !done && k < 200; k++) {
        node_latent *m = NULL;
        node_error err;
        node_test_alloc_begin(k);
        node_status st = node_latent_create(&m, &c, &err);
        if (st == NODE_OK) {
            done = true;
            node_latent_free(m);
        } else {
            assert_status(st, NODE_ENOMEM);
            assert_null(m);
            assert_true(err.message[0] != '\0');
        }
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);
}

/* A first loss call (every workspace is grown then), with the model and solver made
   in the same count: each allocation failed in turn gives NODE_ENOMEM, leaks nothing,
   and leaves the model usable (the next call, whose allocations all succeed, gives
   the right value). */
static void test_first_loss_survives_every_failed_allocation(void **state)
{
    (void)state;
    double xs[LNT * LB * LD], grad[LP], want;
    batch_values(xs);
    node_latent_terms t;
    node_latent *m0 = small_model(4);
    node_solver *s0;
    assert_status(node_solver_create(&s0), NODE_OK);
    assert_status(node_latent_loss(m0, s0, LB, LNT, LTS, xs, LENC, LOBS, LEPS, NULL,
                                   NODE_GRAD_ADJOINT, &t, grad, NULL, NULL), NODE_OK);
    want = t.loss;
    node_solver_free(s0);
    node_latent_free(m0);
    const node_latent_config c = small_config();
    bool done = false;
    long failed_in_loss = 0;
    for (long k = 0; !done && k < 400; k++) {
        node_latent *m = NULL;
        node_solver *s = NULL;
        node_test_alloc_begin(k);
        node_status st = node_solver_create(&s);
        if (st == NODE_OK)
            st = node_latent_create(&m, &c, NULL);
        if (st == NODE_OK) {
            node_latent_init(m, 4);
            node_error err;
            st = node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, NULL,
                                  NODE_GRAD_ADJOINT, &t, grad, NULL, &err);
            if (st == NODE_OK)
                done = true;
            else {
                assert_status(st, NODE_ENOMEM);
                assert_true(err.message[0] != '\0');
                failed_in_loss++;
                /* the k-th allocation was the only one to fail: this one succeeds */
                assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS,
                                               NULL, NODE_GRAD_ADJOINT, &t, grad, NULL,
                                               NULL), NODE_OK);
            }
            assert_close(t.loss, want, 0, 0);
        } else
            assert_status(st, NODE_ENOMEM);
        node_solver_free(s);
        node_latent_free(m);
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);
    assert_true(failed_in_loss >= 4);   /* scratch, f's workspace, the solves' ... */
}

/* ---- files ------------------------------------------------------------------------------ */

static char dir[64], path[128];

/* Each file test works in a folder of its own, removed with whatever is in it even
   when the test fails. */
static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "test_latent_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/model.lat", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char f[sizeof dir + 260];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
            unlink(f);
        }
        closedir(d);
    }
    return rmdir(dir);
}

static unsigned char *read_all(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void write_all(const char *p, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void load_refused(const unsigned char *buf, size_t len, const char *what)
{
    node_latent *q = NULL;
    node_error err;
    write_all(path, buf, len);
    assert_status(node_latent_load(&q, path, &err), NODE_EFORMAT);
    assert_null(q);
    if (!strstr(err.message, what))
        print_error("message \"%s\" does not name \"%s\"\n", err.message, what);
    assert_non_null(strstr(err.message, what));
    assert_non_null(strstr(err.message, path));
}

/* q (loaded) is m (saved): the same config and np parameters, and the loss and its
   gradient the same bits. */
static void same_model(node_latent *m, node_latent *q, size_t np)
{
    node_latent_config a, b;
    node_latent_config_get(m, &a);
    node_latent_config_get(q, &b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(node_latent_nparams(q), np);
    assert_memory_equal(node_latent_params(m), node_latent_params(q), np * sizeof(double));
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], g1[LP_GRU], g2[LP_GRU];
    batch_values(xs);
    node_latent_terms t1, t2;
    assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, NULL,
                                   NODE_GRAD_ADJOINT, &t1, g1, NULL, NULL), NODE_OK);
    assert_status(node_latent_loss(q, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, NULL,
                                   NODE_GRAD_ADJOINT, &t2, g2, NULL, NULL), NODE_OK);
    assert_memory_equal(&t1.loss, &t2.loss, sizeof t1.loss);
    assert_memory_equal(g1, g2, np * sizeof(double));
    node_solver_free(s);
}

static void test_files_round_trip_bit_exact(void **state)
{
    (void)state;
    node_latent *m = small_model(8);
    node_error err;
    assert_status(node_latent_save(m, path, &err), NODE_OK);
    node_latent *q = NULL;
    assert_status(node_latent_load(&q, path, &err), NODE_OK);
    same_model(m, q, LP);
    /* the documented length: 76 + 8P */
    size_t len;
    unsigned char *buf = read_all(path, &len);
    assert_int_equal(len, 76 + 8 * LP);
    assert_memory_equal(buf, "NODELAT\x1a", 8);
    free(buf);
    /* a failed load of each kind of argument */
    assert_status(node_latent_load(NULL, path, &err), NODE_EINVAL);
    assert_status(node_latent_load(&q, NULL, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "path is NULL"));
    assert_status(node_latent_load(&q, "", &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "path is empty"));
    assert_status(node_latent_save(NULL, path, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "m is NULL"));
    assert_status(node_latent_save(m, "", &err), NODE_EINVAL);
    assert_status(node_latent_load(&q, "no/such/file.lat", &err), NODE_EIO);
    assert_non_null(strstr(err.message, "no/such/file.lat: "));
    assert_status(node_latent_save(m, "no/such/dir/file.lat", &err), NODE_EIO);
    node_latent_free(q);
    node_latent_free(m);
}

/* A GRU encoder's model: the cell kind goes into the file (byte 12) and comes back,
   with the parameters and the loss bit for bit. */
static void test_gru_files_round_trip_bit_exact(void **state)
{
    (void)state;
    node_latent *m = small_model_cell(9, NODE_CELL_GRU), *q = NULL;
    node_error err;
    assert_status(node_latent_save(m, path, &err), NODE_OK);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    assert_int_equal(len, 76 + 8 * LP_GRU);
    assert_int_equal(buf[12], NODE_CELL_GRU);
    free(buf);
    assert_status(node_latent_load(&q, path, &err), NODE_OK);
    node_latent_config b;
    node_latent_config_get(q, &b);
    assert_int_equal(b.rnn_cell, NODE_CELL_GRU);
    same_model(m, q, LP_GRU);
    node_latent_free(q);
    node_latent_free(m);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_malformed_files_are_refused(void **state)
{
    (void)state;
    node_latent *m = small_model(8);
    assert_status(node_latent_save(m, path, NULL), NODE_OK);
    size_t len;
    unsigned char *good = read_all(path, &len), *bad = malloc(len + 8);
    assert_non_null(bad);
    /* truncated anywhere: in the header, in θ, in the CRC */
    const size_t cut[] = { 0, 7, 40, 71, 72, 100, len - 4, len - 1 };
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        load_refused(good, cut[i], cut[i] < 72 ? "too short" : "bytes, but its header");
    /* one byte more */
    memcpy(bad, good, len);
    bad[len] = 0;
    load_refused(bad, len + 1, "needing");
    /* a flipped bit in θ, in the CRC, in obs_std */
    const size_t at[] = { 72, 72 + 8 * LP / 2 + 3, len - 2, 58 };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(bad, good, len);
        bad[at[i]] ^= 0x10;
        load_refused(bad, len, "checksum mismatch");
    }
    /* header fields */
    memcpy(bad, good, len);
    bad[0] = 'X';
    load_refused(bad, len, "NODELAT magic");
    memcpy(bad, good, len);
    bad[8] = 2;
    load_refused(bad, len, "format version 2");
    memcpy(bad, good, len);
    bad[12] = 9;
    load_refused(bad, len, "cell kind 9");
    memcpy(bad, good, len);
    bad[12] = 2;   /* a GRU's header over a tanh cell's θ: the counts disagree */
    load_refused(bad, len, "sizes imply");
    memcpy(bad, good, len);
    put64(bad + 24, 0);
    load_refused(bad, len, "latent_dim is 0");
    memcpy(bad, good, len);
    put64(bad + 56, 0xBFF0000000000000u);   /* obs_std = -1 */
    load_refused(bad, len, "obs_std = -1");
    memcpy(bad, good, len);
    put64(bad + 64, LP + 1);
    load_refused(bad, len, "counts");
    memcpy(bad, good, len);
    put64(bad + 40, 1000000);   /* dyn_hidden: the count no longer matches */
    load_refused(bad, len, "counts");
    /* an MLP's file is not a latent ODE's */
    const size_t sizes[2] = { 2, 2 };
    const node_activation acts[1] = { NODE_ACT_TANH };
    node_mlp *mlp;
    assert_status(node_mlp_create(&mlp, 1, sizes, acts, 0), NODE_OK);
    assert_status(node_mlp_save(mlp, path), NODE_OK);
    node_latent *q = NULL;
    node_error err;
    assert_status(node_latent_load(&q, path, &err), NODE_EFORMAT);
    assert_non_null(strstr(err.message, "NODELAT magic"));
    node_mlp_free(mlp);
    /* the same parser in memory, for every prefix of a good file */
    for (size_t n = 0; n < len; n += 13)
        assert_status(node__latent_load_mem(good, n, &q, NULL), NODE_EFORMAT);
    assert_status(node__latent_load_mem(good, len, &q, NULL), NODE_OK);
    node_latent_free(q);
    free(good);
    free(bad);
    node_latent_free(m);
}

static void test_load_survives_every_failed_allocation(void **state)
{
    (void)state;
    node_latent *m = small_model(8);
    assert_status(node_latent_save(m, path, NULL), NODE_OK);
    bool done = false;
    for (long k = 0; !done && k < 200; k++) {
        node_latent *q = NULL;
        node_error err;
        node_test_alloc_begin(k);
        node_status st = node_latent_load(&q, path, &err);
        if (st == NODE_OK) {
            done = true;
            assert_memory_equal(node_latent_params(q), node_latent_params(m),
                                LP * sizeof(double));
            node_latent_free(q);
        } else {
            assert_status(st, NODE_ENOMEM);
            assert_null(q);
        }
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);
    node_latent_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_papers),
        cmocka_unit_test(test_create_refuses_bad_configs),
        cmocka_unit_test(test_loss_refuses_bad_arguments),
        cmocka_unit_test(test_predict_refuses_bad_arguments),
        cmocka_unit_test(test_calls_allocate_nothing_once_sized),
        cmocka_unit_test(test_create_survives_every_failed_allocation),
        cmocka_unit_test(test_first_loss_survives_every_failed_allocation),
        cmocka_unit_test_setup_teardown(test_files_round_trip_bit_exact, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_gru_files_round_trip_bit_exact, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_malformed_files_are_refused, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_load_survives_every_failed_allocation, make_dir,
                                        remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
