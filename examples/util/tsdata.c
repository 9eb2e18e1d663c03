/* tsdata.c — see tsdata.h.  The spirals follow torchdiffeq's generate_spiral2d
 * (examples/latent_ode.py); everything random comes from node_rng, so a seed gives
 * the same data on every platform. */
#include "tsdata.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- spirals ------------------------------------------------------------------------- */

/* Point k of the clockwise (cw) or counter-clockwise curve. */
static void curve(const ex_spiral_config *c, int cw, size_t k, double *xy)
{
    double t = c->stop * (double)k / (double)(c->ntotal - 1);
    if (cw) {
        double z = c->stop + 1.0 - t, r = c->a + c->b * 50.0 / z;
        xy[0] = r * cos(z) - 5.0;
        xy[1] = r * sin(z);
    } else {
        double z = t, r = c->a + c->b * z;
        xy[0] = r * cos(z) + 5.0;
        xy[1] = r * sin(z);
    }
}

int ex_spirals_generate(ex_spirals *s, const ex_spiral_config *cfg, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    const size_t N = cfg->nspiral, L = cfg->window + cfg->extra;
    s->len = L;
    s->dt = cfg->stop / (double)(cfg->ntotal - 1);
    s->t = malloc(L * sizeof *s->t);
    s->truth = malloc(N * L * 2 * sizeof *s->truth);
    s->noisy = malloc(N * L * 2 * sizeof *s->noisy);
    s->cw = malloc(N ? N : 1);
    s->valid = malloc((N ? N : 1) * sizeof *s->valid);
    size_t *perm = malloc((N ? N : 1) * sizeof *perm);
    if (!s->t || !s->truth || !s->noisy || !s->cw || !s->valid || !perm) {
        free(perm);
        return -1;
    }
    for (size_t k = 0; k < L; k++)
        s->t[k] = s->dt * (double)k;

    node_rng rng;
    node_rng_seed(&rng, seed);
    /* Exactly half of each direction, in random order. */
    node_rng_permutation(&rng, N, perm);
    for (size_t i = 0; i < N; i++)
        s->cw[perm[i]] = i < N / 2;
    free(perm);
    for (size_t i = 0; i < N; i++) {
        /* Training spirals observe a window anywhere on the curve; test spirals leave
           room for the points after theirs.  So every point a test asks for lies on a
           part of the curve that training windows cover. */
        const int test = i >= N - cfg->ntest;
        const size_t nstart = cfg->ntotal - (test ? L : cfg->window) + 1;
        double u;
        node_rng_uniform(&rng, 1, &u);
        size_t t0 = (size_t)(u * (double)nstart);
        if (t0 >= nstart)
            t0 = nstart - 1;
        double *tr = s->truth + i * L * 2, *no = s->noisy + i * L * 2;
        s->valid[i] = cfg->ntotal - t0 < L ? cfg->ntotal - t0 : L;
        for (size_t k = 0; k < L; k++)   /* (past the curve's end: unused, kept finite) */
            curve(cfg, s->cw[i], t0 + k < cfg->ntotal ? t0 + k : cfg->ntotal - 1, tr + 2 * k);
        node_rng_normal(&rng, 2 * L, no);
        for (size_t k = 0; k < 2 * L; k++)
            no[k] = tr[k] + cfg->noise * no[k];
    }
    return 0;
}

void ex_spirals_free(ex_spirals *s)
{
    free(s->t);
    free(s->truth);
    free(s->noisy);
    free(s->cw);
    free(s->valid);
    memset(s, 0, sizeof *s);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

node_status ex_spirals_subsample(const ex_spirals *s, size_t n_obs, size_t train_extra,
                                 uint64_t seed,
                                 node_tseries **train, node_tseries **test,
                                 node_tseries **truth, double *split, node_error *err)
{
    const ex_spiral_config *c = &s->cfg;
    const size_t N = c->nspiral, W = c->window, L = s->len, ntr = N - c->ntest;
    const size_t m = n_obs + c->extra;   /* points of a test series */
    node_tseries *tr = NULL, *te = NULL, *tt = NULL;
    const size_t E = c->extra;
    size_t *perm = malloc(W * sizeof *perm), *pe = malloc((E ? E : 1) * sizeof *pe);
    double *t = malloc(m * sizeof *t), *x = malloc(2 * m * sizeof *x);
    double *xt = malloc(2 * m * sizeof *xt);
    node_status st = NODE_ENOMEM;
    if (train_extra > E) {
        if (err)
            snprintf(err->message, sizeof err->message,
                     "train_extra = %zu: a window has only %zu points after it", train_extra, E);
        st = NODE_EINVAL;
        goto out;
    }
    if (!perm || !pe || !t || !x || !xt)
        goto out;
    if ((st = node_tseries_create(&tr, 2, err)) != NODE_OK ||
        (st = node_tseries_create(&te, 2, err)) != NODE_OK ||
        (st = node_tseries_create(&tt, 2, err)) != NODE_OK)
        goto out;
    node_rng rng, rng_extra;   /* a stream of its own: the windows do not depend on it */
    node_rng_seed(&rng, seed);
    node_rng_seed(&rng_extra, seed ^ 0x5851f42d4c957f2dull);
    for (size_t i = 0; i < N; i++) {
        node_rng_permutation(&rng, W, perm);
        qsort(perm, n_obs, sizeof *perm, cmp_size);
        const double *no = s->noisy + i * L * 2, *gt = s->truth + i * L * 2;
        for (size_t j = 0; j < m; j++) {
            size_t k = j < n_obs ? perm[j] : W + (j - n_obs);
            t[j] = s->t[k];
            x[2 * j] = no[2 * k];
            x[2 * j + 1] = no[2 * k + 1];
            xt[2 * j] = gt[2 * k];
            xt[2 * j + 1] = gt[2 * k + 1];
        }
        if (i < ntr) {
            /* Training: the window's points, then train_extra of the points after it
               that lie on the curve (from their own stream: the same seed gives the
               same windows, training and test, whatever train_extra). */
            size_t nt = n_obs;
            if (train_extra > 0) {
                node_rng_permutation(&rng_extra, E, pe);
                qsort(pe, train_extra, sizeof *pe, cmp_size);
                for (size_t j = 0; j < train_extra; j++) {
                    const size_t k = W + pe[j];
                    if (k >= s->valid[i])
                        break;
                    t[nt] = s->t[k];
                    x[2 * nt] = no[2 * k];
                    x[2 * nt + 1] = no[2 * k + 1];
                    nt++;
                }
            }
            st = node_tseries_add(tr, (int64_t)i, nt, t, x, err);
        }
        else if ((st = node_tseries_add(te, (int64_t)i, m, t, x, err)) == NODE_OK)
            st = node_tseries_add(tt, (int64_t)i, m, t, xt, err);
        if (st != NODE_OK)
            goto out;
    }
    *split = s->t[W - 1] + 0.5 * s->dt;
    *train = tr;
    *test = te;
    *truth = tt;
    tr = te = tt = NULL;
    st = NODE_OK;
out:
    node_tseries_free(tr);
    node_tseries_free(te);
    node_tseries_free(tt);
    free(perm);
    free(pe);
    free(t);
    free(x);
    free(xt);
    return st;
}

/* ---- files ---------------------------------------------------------------------------- */

int ex_tseries_write_csv(const node_tseries *d, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const size_t D = node_tseries_dim(d), ns = node_tseries_count(d);
    fprintf(f, "series,t");
    for (size_t j = 0; j < D; j++)
        fprintf(f, ",x%zu", j + 1);
    fputc('\n', f);
    for (size_t i = 0; i < ns; i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, i, &id, &n, &t, &x);
        for (size_t k = 0; k < n; k++) {
            fprintf(f, "%lld,%.17g", (long long)id, t[k]);
            for (size_t j = 0; j < D; j++)
                fprintf(f, ",%.17g", x[k * D + j]);
            fputc('\n', f);
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}

/* ---- batches on the union of times ------------------------------------------------------ */

int ex_batch_init(ex_batch *b, size_t maxB, size_t cap, size_t dim)
{
    memset(b, 0, sizeof *b);
    b->maxB = maxB;
    b->cap = cap;
    b->dim = dim;
    b->tbuf = malloc((cap + 1) * sizeof *b->tbuf);
    b->xbuf = malloc((cap + 1) * maxB * dim * sizeof *b->xbuf);
    b->mbuf = malloc((cap + 1) * maxB);
    b->ebuf = malloc((cap + 1) * maxB);
    return b->tbuf && b->xbuf && b->mbuf && b->ebuf ? 0 : -1;
}

void ex_batch_free(ex_batch *b)
{
    free(b->tbuf);
    free(b->xbuf);
    free(b->mbuf);
    free(b->ebuf);
    memset(b, 0, sizeof *b);
}

node_status ex_batch_fill(ex_batch *b, const node_tseries *d, size_t nsel, const size_t *sel,
                          double t0, const double *split, node_error *err)
{
    const size_t D = b->dim;
    size_t nt = 0;
    /* The union goes one row down, leaving row 0 for t0. */
    node_status st = node_tseries_union(d, nsel, sel, b->cap, b->tbuf + 1, &nt,
                                        b->xbuf + nsel * D, b->mbuf + nsel, err);
    if (st != NODE_OK)
        return st;
    size_t off = 1;
    if (b->tbuf[1] > t0) {
        off = 0;
        b->tbuf[0] = t0;
        memset(b->xbuf, 0, nsel * D * sizeof *b->xbuf);
        memset(b->mbuf, 0, nsel);
    }
    b->B = nsel;
    b->nt = nt + 1 - off;
    b->ts = b->tbuf + off;
    b->xs = b->xbuf + off * nsel * D;
    b->mask = b->mbuf + off * nsel;
    b->enc = b->ebuf + off * nsel;
    for (size_t i = 0; i < b->nt; i++)
        for (size_t j = 0; j < nsel; j++)
            b->enc[i * nsel + j] = b->mask[i * nsel + j] && (!split || b->ts[i] <= split[j]);
    return NODE_OK;
}

/* a (na sorted distinct times) merged with t (n increasing) into out; returns the count. */
static size_t merge_times(const double *a, size_t na, const double *t, size_t n, double *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < n) {
        if (j == n || (i < na && a[i] < t[j]))
            out[k++] = a[i++];
        else if (i == na || t[j] < a[i])
            out[k++] = t[j++];
        else {
            out[k++] = a[i++];
            j++;
        }
    }
    return k;
}

size_t ex_union_groups(const node_tseries *d, size_t nsel, const size_t *sel, size_t cap,
                       double density, double *work, size_t *start)
{
    size_t g = 0, points = 0, u = 0;
    start[0] = 0;
    if (cap == 0 && !(density > 0)) {
        start[1] = nsel;
        return nsel ? 1 : 0;
    }
    /* The union of the current group so far, kept sorted in one half of work (a),
       merged with each new series into the other half (b): O(union) per series. */
    size_t M = 0;
    for (size_t j = 0; j < nsel; j++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, sel[j], &id, &n, &t, &x);
        M += n;
    }
    double *a = work;
    for (size_t j = 0; j < nsel; j++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, sel[j], &id, &n, &t, &x);
        if (j > start[g]) {
            double *b = a == work ? work + M : work;
            const size_t nu = merge_times(a, u, t, n, b);
            const size_t k = j + 1 - start[g];
            if (!((cap > 0 && nu > cap) ||
                  (double)(points + n) < density * (double)nu * (double)k)) {
                a = b;
                u = nu;
                points += n;
                continue;
            }
            start[++g] = j;
        }
        /* j starts a group: its union is its own times. */
        a = work;
        memcpy(a, t, n * sizeof *t);
        u = n;
        points = n;
    }
    start[++g] = nsel;
    return g;
}

void ex_tseries_extent(const node_tseries *d, double *tmin, double *tmax, size_t *maxlen)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t mx = 0;
    for (size_t i = 0; i < node_tseries_count(d); i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(d, i, &id, &n, &t, &x);
        lo = fmin(lo, t[0]);
        hi = fmax(hi, t[n - 1]);
        mx = n > mx ? n : mx;
    }
    *tmin = lo;
    *tmax = hi;
    *maxlen = mx;
}
