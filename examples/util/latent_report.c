/* latent_report.c — see latent_report.h.  Figures after Chen et al. (2018), Figs. 8
 * and 9: plain SVG through svg.h; the dynamics and decoder of Fig. 9 are rebuilt as
 * node_mlp from the documented parameter layout of node_latent_params. */
#include "latent_report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

#define DENSE 300          /* grid times of the latent ODE's curves in Fig. 8 */
#define NVARY 7            /* decoded trajectories per panel in Fig. 9 */
#define FIG9_NT 240        /* their times */

static const char *const c_obs = "#222222", *const c_later = "#b0b0b0",
                         *const c_truth = "#9a9a9a", *const c_rec = "#1f5fbf",
                         *const c_ext = "#d62728";

static void series(const node_tseries *d, size_t i, size_t *n, const double **t,
                   const double **x)
{
    int64_t id;
    node_tseries_get(d, i, &id, n, t, x);
}

/* The colour a fraction s in [0, 1] of the way from blue to red. */
static void ramp(double s, char *buf, size_t n)
{
    s = fmin(1, fmax(0, s));
    snprintf(buf, n, "#%02x%02x%02x", (int)(31 + s * (214 - 31)), (int)(95 + s * (39 - 95)),
             (int)(191 + s * (40 - 191)));
}

/* The two principal axes of the rows of z (n × L) into ax (2 × L), and the mean. */
static void principal_axes(size_t n, size_t L, const double *z, double *mean, double *ax)
{
    double *C = calloc(L * L, sizeof *C), *v = malloc(L * sizeof *v);
    if (!C || !v) {
        free(C);
        free(v);
        for (size_t j = 0; j < 2 * L; j++)
            ax[j] = (j == 0 || j == L + 1) ? 1.0 : 0.0;
        return;
    }
    for (size_t j = 0; j < L; j++)
        mean[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < L; j++)
            mean[j] += z[i * L + j] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; a < L; a++)
            for (size_t b = 0; b < L; b++)
                C[a * L + b] += (z[i * L + a] - mean[a]) * (z[i * L + b] - mean[b]);
    for (int k = 0; k < 2; k++) {
        double *u = ax + (size_t)k * L;
        for (size_t j = 0; j < L; j++)
            u[j] = 1.0 / sqrt((double)L) + 0.01 * (double)(j + (size_t)k);
        for (int it = 0; it < 300; it++) {   /* power iteration */
            double nv = 0;
            for (size_t a = 0; a < L; a++) {
                v[a] = 0;
                for (size_t b = 0; b < L; b++)
                    v[a] += C[a * L + b] * u[b];
            }
            if (k == 1) {   /* deflate: stay orthogonal to the first axis */
                double p = 0;
                for (size_t a = 0; a < L; a++)
                    p += v[a] * ax[a];
                for (size_t a = 0; a < L; a++)
                    v[a] -= p * ax[a];
            }
            for (size_t a = 0; a < L; a++)
                nv += v[a] * v[a];
            if (!(nv > 0))
                break;
            for (size_t a = 0; a < L; a++)
                u[a] = v[a] / sqrt(nv);
        }
    }
    if (L == 1)
        ax[1] = 0;
    free(C);
    free(v);
}

/* Up to 4 test series to show: two of each direction when directions are known. */
static size_t pick_series(const ex_report *r, size_t *idx)
{
    const size_t N = node_tseries_count(r->test);
    size_t k = 0;
    if (r->cw) {
        for (int dir = 1; dir >= 0; dir--)
            for (size_t i = 0, got = 0; i < N && got < 2; i++)
                if (r->cw[i] == dir) {
                    idx[k++] = i;
                    got++;
                }
    } else {
        for (size_t i = 0; i < N && k < 4; i++)
            idx[k++] = i;
    }
    return k;
}

/* Plot coordinates of point j: (x1, x2), or (t, x1) for one-dimensional data. */
static double px(size_t D, const double *t, const double *x, size_t j)
{
    return D >= 2 ? x[j * D] : t[j];
}
static double py(size_t D, const double *x, size_t j) { return D >= 2 ? x[j * D + 1] : x[j * D]; }

/* ---- Fig. 8 --------------------------------------------------------------------------- */

/* The latent ODE on series i at its own times merged with a dense grid: ts (nt), xp
   (nt × D).  0, or -1 with a message in err. */
static int dense_prediction(const ex_report *r, size_t i, node_latent *m, node_solver *s,
                            const node_options *opt, double *ts, double *xs,
                            unsigned char *enc, double *xp, size_t *nt, node_error *err)
{
    const size_t D = node_tseries_dim(r->test);
    size_t n;
    const double *t, *x;
    series(r->test, i, &n, &t, &x);
    const double a = r->t0, b = t[n - 1];
    size_t k = 0, j = 0;
    for (size_t g = 0; g <= DENSE || j < n;) {
        double tg = g <= DENSE ? a + (b - a) * (double)g / DENSE : INFINITY;
        double tj = j < n ? t[j] : INFINITY;
        double tn = fmin(tg, tj);
        if (k > 0 && tn <= ts[k - 1]) {   /* a duplicate */
            if (tg <= tn)
                g++;
            if (tj <= tn)
                j++;
            continue;
        }
        ts[k] = tn;
        enc[k] = 0;
        memset(xs + k * D, 0, D * sizeof *xs);
        if (tj <= tn) {
            memcpy(xs + k * D, x + j * D, D * sizeof *xs);
            enc[k] = tj <= r->split[i];
            j++;
        }
        if (tg <= tn)
            g++;
        k++;
    }
    *nt = k;
    node_stats st;
    st.message[0] = '\0';
    err->message[0] = '\0';
    node_status rc = node_latent_predict(m, s, 1, k, ts, xs, enc, NULL, opt, xp, NULL, &st, err);
    if (rc != NODE_OK) {
        if (!err->message[0])
            snprintf(err->message, sizeof err->message, "%s",
                     st.message[0] ? st.message : node_strerror(rc));
        return -1;
    }
    return 0;
}

int ex_fig8_write(const char *path, const ex_report *r, node_latent *m, node_solver *s,
                  const node_options *opt, node_error *err)
{
    const size_t D = node_tseries_dim(r->test), N = node_tseries_count(r->test);
    size_t idx[4], rows[EX_NMODELS], nrow = 0, maxlen = 0;
    const size_t ncol = pick_series(r, idx);
    static const int order[EX_NMODELS] = { 0, 2, 1 };   /* latent ODE, RNN + Δt, RNN */
    for (int q = 0; q < EX_NMODELS; q++)
        if (r->pred[order[q]])
            rows[nrow++] = (size_t)order[q];
    for (size_t i = 0; i < N; i++) {
        size_t n;
        const double *t, *x;
        series(r->test, i, &n, &t, &x);
        maxlen = n > maxlen ? n : maxlen;
    }
    const size_t cap = maxlen + DENSE + 2;
    double *ts = malloc(cap * sizeof *ts), *xs = malloc(cap * D * sizeof *xs);
    double *xp = malloc(cap * D * sizeof *xp), *tmp = malloc(2 * cap * sizeof *tmp);
    unsigned char *enc = malloc(cap);
    int rc = -1;
    ex_svg g;
    g.f = NULL;
    if (!ts || !xs || !xp || !tmp || !enc) {
        errno = ENOMEM;
        goto out;
    }
    const double W = 300, H = 300, LW = r->zpath ? 380 : 0;
    const double width = W * (double)ncol + LW, height = fmax(H * (double)nrow, LW) + 30;
    if (ex_svg_begin(&g, path, width, height) != 0)
        goto out;
    for (size_t c = 0; c < ncol; c++) {
        const size_t i = idx[c];
        size_t n, nenc = 0;
        const double *t, *x, *tt = NULL, *xt = NULL;
        series(r->test, i, &n, &t, &x);
        if (r->truth)
            series(r->truth, i, &n, &tt, &xt);
        while (nenc < n && t[nenc] <= r->split[i])
            nenc++;
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (size_t j = 0; j < n; j++) {
            x0 = fmin(x0, px(D, t, x, j));
            x1 = fmax(x1, px(D, t, x, j));
            y0 = fmin(y0, py(D, x, j));
            y1 = fmax(y1, py(D, x, j));
        }
        const double mx = 0.12 * (x1 - x0) + 1e-9, my = 0.12 * (y1 - y0) + 1e-9;
        size_t nt = 0;
        if (m && dense_prediction(r, i, m, s, opt, ts, xs, enc, xp, &nt, err) != 0)
            goto out;
        for (size_t q = 0; q < nrow; q++) {
            const size_t k = rows[q];
            char title[96];
            snprintf(title, sizeof title, "%s, series %zu%s", r->names[k], i,
                     r->cw ? (r->cw[i] ? " (cw)" : " (ccw)") : "");
            ex_svg_panel(&g, W * (double)c, H * (double)q, W, H, x0 - mx, x1 + mx, y0 - my,
                         y1 + my, title, D >= 2 ? "x1" : "t", D >= 2 ? "x2" : "x1");
            if (xt) {
                for (size_t j = 0; j < n; j++) {
                    tmp[j] = px(D, tt, xt, j);
                    tmp[cap + j] = py(D, xt, j);
                }
                ex_svg_line(&g, n, tmp, 1, tmp + cap, 1, c_truth, 1.2, NULL);
            }
            for (size_t j = 0; j < n; j++)
                ex_svg_dot(&g, px(D, t, x, j), py(D, x, j), j < nenc ? 2.6 : 1.8,
                           j < nenc ? c_obs : c_later);
            if (k == 0) {
                /* The latent ODE on the dense grid: up to the split, then beyond. */
                size_t cut = 0;
                while (cut < nt && ts[cut] <= r->split[i])
                    cut++;
                for (size_t j = 0; j < nt; j++) {
                    tmp[j] = px(D, ts, xp, j);
                    tmp[cap + j] = py(D, xp, j);
                }
                ex_svg_line(&g, cut, tmp, 1, tmp + cap, 1, c_rec, 2, NULL);
                if (cut > 0 && cut < nt)
                    ex_svg_line(&g, nt - cut + 1, tmp + cut - 1, 1, tmp + cap + cut - 1, 1,
                                c_ext, 2, "6 4");
            } else {
                /* An RNN at the series' times: one-step predictions, then the free run. */
                const double *p = r->pred[k] + r->off[i] * D;
                for (size_t j = 0; j < n; j++) {
                    tmp[j] = px(D, t, p, j);
                    tmp[cap + j] = py(D, p, j);
                }
                if (nenc > 1)
                    ex_svg_line(&g, nenc - 1, tmp + 1, 1, tmp + cap + 1, 1, c_rec, 2, NULL);
                if (nenc < n)
                    ex_svg_line(&g, n - nenc + 1, tmp + nenc - 1, 1, tmp + cap + nenc - 1, 1,
                                c_ext, 2, "6 4");
            }
            if (c == 0 && q == 0) {
                const char *lab[4] = { "truth", "reconstruction", "extrapolation",
                                       "observed / later (dots)" };
                const char *col[4] = { c_truth, c_rec, c_ext, c_obs };
                const char *dash[4] = { NULL, NULL, "6 4", "1 3" };
                ex_svg_legend(&g, r->truth ? 4 : 3, r->truth ? lab : lab + 1,
                              r->truth ? col : col + 1, r->truth ? dash : dash + 1);
            }
        }
    }
    if (r->zpath && m) {
        /* The latent trajectories of every test series, principal-axes projection. */
        node_latent_config cfg;
        node_latent_config_get(m, &cfg);
        const size_t L = (size_t)cfg.latent_dim, P = r->off[N];
        double mean[64], ax[128];
        if (L <= 64) {
            principal_axes(P, L, r->zpath, mean, ax);
            double u0 = INFINITY, u1 = -INFINITY, v0 = INFINITY, v1 = -INFINITY;
            double *proj = malloc(2 * P * sizeof *proj);
            if (!proj) {
                errno = ENOMEM;
                goto out;
            }
            for (size_t p = 0; p < P; p++) {
                double a = 0, b = 0;
                for (size_t j = 0; j < L; j++) {
                    a += (r->zpath[p * L + j] - mean[j]) * ax[j];
                    b += (r->zpath[p * L + j] - mean[j]) * ax[L + j];
                }
                proj[p] = a;
                proj[P + p] = b;
                u0 = fmin(u0, a);
                u1 = fmax(u1, a);
                v0 = fmin(v0, b);
                v1 = fmax(v1, b);
            }
            const double mu = 0.06 * (u1 - u0) + 1e-9, mv = 0.06 * (v1 - v0) + 1e-9;
            ex_svg_panel(&g, W * (double)ncol, 0, LW, LW, u0 - mu, u1 + mu, v0 - mv, v1 + mv,
                         "latent trajectories (principal axes)", "PC 1", "PC 2");
            for (size_t i = 0; i < N && i < 200; i++) {
                char col[16];
                if (r->cw)
                    snprintf(col, sizeof col, "%s", r->cw[i] ? c_rec : c_ext);
                else
                    ramp((double)i / (double)(N > 1 ? N - 1 : 1), col, sizeof col);
                const size_t o = r->off[i], n = r->off[i + 1] - o;
                ex_svg_line(&g, n, proj + o, 1, proj + P + o, 1, col, 0.8, NULL);
                ex_svg_dot(&g, proj[o], proj[P + o], 1.8, col);
            }
            if (r->cw) {
                const char *lab[2] = { "clockwise", "counter-clockwise" };
                const char *col[2] = { c_rec, c_ext };
                ex_svg_legend(&g, 2, lab, col, NULL);
            }
            free(proj);
        }
    }
    char note[300];
    snprintf(note, sizeof note, "libnode latent_ode example: %s (Chen et al. 2018, Fig. 8 style)",
             r->title);
    ex_svg_text(&g, 8, height - 10, 11, "start", "#666", note);
    rc = ex_svg_end(&g);
    g.f = NULL;
out:
    if (g.f)
        ex_svg_end(&g);
    free(ts);
    free(xs);
    free(xp);
    free(tmp);
    free(enc);
    return rc;
}

/* ---- Fig. 9 ---------------------------------------------------------------------------- */

/* The dynamics f and the decoder g of m as MLPs: the last parameters of
   node_latent_params are [f, g], each in node_mlp's layout. */
static int latent_parts(node_latent *m, node_mlp **f, node_mlp **g, node_error *err)
{
    node_latent_config c;
    if (node_latent_config_get(m, &c) != NODE_OK)
        return -1;
    const size_t L = (size_t)c.latent_dim;
    const size_t fs[4] = { L, (size_t)c.dyn_hidden, (size_t)c.dyn_hidden, L };
    const node_activation fa[3] = { NODE_ACT_ELU, NODE_ACT_ELU, NODE_ACT_IDENTITY };
    const size_t gs[3] = { L, (size_t)c.dec_hidden, (size_t)c.obs_dim };
    const node_activation ga[2] = { NODE_ACT_RELU, NODE_ACT_IDENTITY };
    if (node_mlp_create_ex(f, 3, fs, fa, 0, err) != NODE_OK ||
        node_mlp_create_ex(g, 2, gs, ga, 0, err) != NODE_OK)
        return -1;
    const size_t Pf = node_mlp_nparams(*f), Pg = node_mlp_nparams(*g);
    const size_t P = node_latent_nparams(m);
    const double *theta = node_latent_params(m);
    if (Pf + Pg > P) {
        snprintf(err->message, sizeof err->message, "the model has %zu parameters, fewer than "
                 "its dynamics and decoder need (%zu)", P, Pf + Pg);
        return -1;
    }
    memcpy(node_mlp_params(*f), theta + P - Pg - Pf, Pf * sizeof *theta);
    memcpy(node_mlp_params(*g), theta + P - Pg, Pg * sizeof *theta);
    return 0;
}

/* Self-check of latent_parts on test series i: node_latent_predict's latent path,
   decoded by g, must give its predictions, and f solved from its first latent state
   its latent path (to solver tolerance). */
static int check_parts(const ex_report *r, size_t i, node_latent *m, node_mlp *f, node_mlp *g,
                       const node_options *opt, node_error *err)
{
    const size_t D = node_tseries_dim(r->test);
    node_latent_config c;
    node_latent_config_get(m, &c);
    const size_t L = (size_t)c.latent_dim;
    size_t n;
    const double *t, *x;
    series(r->test, i, &n, &t, &x);
    const size_t o = t[0] > r->t0 ? 1 : 0, nt = n + o;
    double *ts = malloc(nt * sizeof *ts), *xs = calloc(nt * D, sizeof *xs);
    double *xp = malloc(nt * D * sizeof *xp), *xd = malloc(nt * D * sizeof *xd);
    double *z = malloc(nt * L * sizeof *z), *zf = malloc(nt * L * sizeof *zf);
    unsigned char *enc = calloc(nt, 1);
    node_solver *s = NULL;
    node_system sys;
    int rc = -1;
    memset(&sys, 0, sizeof sys);
    if (!ts || !xs || !xp || !xd || !z || !zf || !enc || node_solver_create(&s) != NODE_OK) {
        snprintf(err->message, sizeof err->message, "out of memory");
        goto out;
    }
    ts[0] = r->t0;
    for (size_t j = 0; j < n; j++) {
        ts[j + o] = t[j];
        memcpy(xs + (j + o) * D, x + j * D, D * sizeof *xs);
        enc[j + o] = t[j] <= r->split[i];
    }
    node_stats st;
    st.message[0] = '\0';
    if (node_latent_predict(m, s, 1, nt, ts, xs, enc, NULL, opt, xp, z, &st, err) != NODE_OK ||
        node_mlp_forward(g, nt, 0.0, z, xd) != NODE_OK ||
        node_mlp_system(f, 1, &sys) != NODE_OK ||
        node_solver_odeint(s, &sys, z, ts, nt, zf, opt, &st) != NODE_OK) {
        if (!err->message[0])
            snprintf(err->message, sizeof err->message, "self-check: %.187s", st.message);
        goto out;
    }
    double dx = 0, sx = 0, dz = 0, sz = 0;
    for (size_t k = 0; k < nt * D; k++) {
        dx = fmax(dx, fabs(xd[k] - xp[k]));
        sx = fmax(sx, fabs(xp[k]));
    }
    for (size_t k = 0; k < nt * L; k++) {
        dz = fmax(dz, fabs(zf[k] - z[k]));
        sz = fmax(sz, fabs(z[k]));
    }
    if (dx > 1e-9 * (1 + sx) || dz > 1e-3 * (1 + sz)) {
        snprintf(err->message, sizeof err->message, "self-check: the decoder rebuilt from "
                 "node_latent_params differs from node_latent_predict by %.3g (outputs), %.3g "
                 "(latent path): the parameter layout is not [..., f, g]", dx, dz);
        goto out;
    }
    rc = 0;
out:
    if (sys.dim)
        node_mlp_system_release(f, &sys);
    node_solver_free(s);
    free(ts);
    free(xs);
    free(xp);
    free(xd);
    free(z);
    free(zf);
    free(enc);
    return rc;
}

int ex_fig9_write(const char *path, const ex_report *r, node_latent *m,
                  const node_options *opt, node_error *err)
{
    const size_t D = node_tseries_dim(r->test), N = node_tseries_count(r->test);
    node_latent_config c;
    node_latent_config_get(m, &c);
    const size_t L = (size_t)c.latent_dim;
    node_mlp *f = NULL, *g = NULL;
    node_system sys;
    memset(&sys, 0, sizeof sys);
    double *tg = malloc(FIG9_NT * sizeof *tg), *z0 = malloc(NVARY * L * sizeof *z0);
    double *zs = malloc(FIG9_NT * NVARY * L * sizeof *zs);
    double *xd = malloc(FIG9_NT * NVARY * D * sizeof *xd);
    double *mean = calloc(3 * L, sizeof *mean), *sd = mean ? mean + L : NULL;
    double *score = mean ? mean + 2 * L : NULL;
    ex_svg sv;
    sv.f = NULL;
    int rc = -1;
    if (!r->zpath || !tg || !z0 || !zs || !xd || !mean) {
        snprintf(err->message, sizeof err->message, "out of memory");
        goto out;
    }
    size_t idx[4];
    pick_series(r, idx);
    const size_t i0 = idx[0];
    if (latent_parts(m, &f, &g, err) != 0 || check_parts(r, i0, m, f, g, opt, err) != 0 ||
        node_mlp_system(f, NVARY, &sys) != NODE_OK)
        goto out;
    /* The latent state at each test series' first point: spread per dimension, and how
       well each dimension separates the directions (or its spread). */
    double m1[64] = { 0 }, m0[64] = { 0 };
    size_t n1 = 0, n0 = 0;
    for (size_t i = 0; i < N; i++) {
        const double *zi = r->zpath + r->off[i] * L;
        for (size_t j = 0; j < L; j++) {
            mean[j] += zi[j] / (double)N;
            if (r->cw && L <= 64)
                (r->cw[i] ? m1 : m0)[j] += zi[j];
        }
        if (r->cw && r->cw[i])
            n1++;
        else if (r->cw)
            n0++;
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < L; j++) {
            double e = r->zpath[r->off[i] * L + j] - mean[j];
            sd[j] += e * e / (double)N;
        }
    for (size_t j = 0; j < L; j++) {
        sd[j] = sqrt(sd[j]) + 1e-12;
        score[j] = sd[j];
        if (r->cw && n1 && n0 && L <= 64)
            score[j] = fabs(m1[j] / (double)n1 - m0[j] / (double)n0) / sd[j];
    }
    size_t dims[4], nd = 0;
    for (; nd < 4 && nd < L; nd++) {
        size_t best = 0;
        double bs = -1;
        for (size_t j = 0; j < L; j++) {
            int used = 0;
            for (size_t q = 0; q < nd; q++)
                used |= dims[q] == j;
            if (!used && score[j] > bs) {
                bs = score[j];
                best = j;
            }
        }
        dims[nd] = best;
    }
    size_t n;
    const double *t, *x;
    series(r->test, i0, &n, &t, &x);
    for (size_t k = 0; k < FIG9_NT; k++)
        tg[k] = t[0] + (t[n - 1] - t[0]) * (double)k / (FIG9_NT - 1);
    const double W = 330, H = 330;
    if (ex_svg_begin(&sv, path, W * (double)nd, H + 30) != 0)
        goto out;
    for (size_t q = 0; q < nd; q++) {
        const size_t j = dims[q];
        const double *zb = r->zpath + r->off[i0] * L;
        for (size_t k = 0; k < NVARY; k++) {
            memcpy(z0 + k * L, zb, L * sizeof *z0);
            z0[k * L + j] += sd[j] * (-2.0 + 4.0 * (double)k / (NVARY - 1));
        }
        node_stats st;
        st.message[0] = '\0';
        if (node_odeint(&sys, z0, tg, FIG9_NT, zs, opt, &st) != NODE_OK ||
            node_mlp_forward(g, FIG9_NT * NVARY, 0.0, zs, xd) != NODE_OK) {
            snprintf(err->message, sizeof err->message, "decoding: %.189s", st.message);
            goto out;
        }
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (size_t k = 0; k < FIG9_NT * NVARY; k++) {
            double a = D >= 2 ? xd[k * D] : tg[k / NVARY], b = D >= 2 ? xd[k * D + 1] : xd[k * D];
            if (isfinite(a) && isfinite(b)) {
                x0 = fmin(x0, a);
                x1 = fmax(x1, a);
                y0 = fmin(y0, b);
                y1 = fmax(y1, b);
            }
        }
        const double mx = 0.08 * (x1 - x0) + 1e-9, my = 0.08 * (y1 - y0) + 1e-9;
        char title[96];
        snprintf(title, sizeof title, "z%zu varied, -2 to +2 sd (blue to red)", j + 1);
        ex_svg_panel(&sv, W * (double)q, 0, W, H, x0 - mx, x1 + mx, y0 - my, y1 + my, title,
                     D >= 2 ? "x1" : "t", D >= 2 ? "x2" : "x1");
        for (size_t k = 0; k < NVARY; k++) {
            char col[16];
            ramp((double)k / (NVARY - 1), col, sizeof col);
            if (D >= 2) {
                ex_svg_line(&sv, FIG9_NT, xd + k * D, NVARY * D, xd + k * D + 1, NVARY * D, col,
                            1.6, NULL);
                ex_svg_dot(&sv, xd[k * D], xd[k * D + 1], 2.5, col);
            } else {
                ex_svg_line(&sv, FIG9_NT, tg, 1, xd + k * D, NVARY * D, col, 1.6, NULL);
            }
        }
    }
    char note[300];
    snprintf(note, sizeof note, "libnode latent_ode example: %s; decoded from series %zu's "
             "latent state (Chen et al. 2018, Fig. 9 style)", r->title, i0);
    ex_svg_text(&sv, 8, H + 20, 11, "start", "#666", note);
    rc = ex_svg_end(&sv);
    sv.f = NULL;
out:
    if (sv.f)
        ex_svg_end(&sv);
    if (sys.dim)
        node_mlp_system_release(f, &sys);
    node_mlp_free(f);
    node_mlp_free(g);
    free(tg);
    free(z0);
    free(zs);
    free(xd);
    free(mean);
    return rc;
}

/* ---- predictions CSV -------------------------------------------------------------------- */

int ex_predictions_csv(const char *path, const ex_report *r)
{
    const size_t D = node_tseries_dim(r->test), N = node_tseries_count(r->test);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "series,t,part");
    for (size_t j = 0; j < D; j++)
        fprintf(f, ",x%zu", j + 1);
    if (r->truth)
        for (size_t j = 0; j < D; j++)
            fprintf(f, ",true_x%zu", j + 1);
    for (int k = 0; k < EX_NMODELS; k++)
        if (r->pred[k])
            for (size_t j = 0; j < D; j++)
                fprintf(f, ",%s_x%zu", r->names[k], j + 1);
    fputc('\n', f);
    for (size_t i = 0; i < N; i++) {
        int64_t id;
        size_t n;
        const double *t, *x, *tt, *xt = NULL;
        node_tseries_get(r->test, i, &id, &n, &t, &x);
        if (r->truth)
            series(r->truth, i, &n, &tt, &xt);
        for (size_t p = 0; p < n; p++) {
            fprintf(f, "%lld,%.9g,%s", (long long)id, t[p],
                    t[p] <= r->split[i] ? "observed" : "predicted");
            for (size_t j = 0; j < D; j++)
                fprintf(f, ",%.9g", x[p * D + j]);
            for (size_t j = 0; xt && j < D; j++)
                fprintf(f, ",%.9g", xt[p * D + j]);
            for (int k = 0; k < EX_NMODELS; k++)
                for (size_t j = 0; r->pred[k] && j < D; j++)
                    fprintf(f, ",%.9g", r->pred[k][(r->off[i] + p) * D + j]);
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
