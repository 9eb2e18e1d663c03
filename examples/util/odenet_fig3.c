/* odenet_fig3.c — see odenet_fig3.h.  The paper's Fig. 3 (Chen et al. 2018, §3): (a)
 * numerical error vs NFE-F, one cluster per tolerance, each below its dashed tolerance
 * line; (b) forward time relative to the slowest, linear in NFE-F; (c) NFE-B vs NFE-F
 * with the diagonal; (d) NFE-F over training.
 */
#include "odenet_fig3.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "svg.h"

static const char *const tol_color[EX_FIG3_NTOL] = { "#d62728", "#ff7f0e", "#bcbd22",
                                                     "#2ca02c", "#1f77b4", "#9467bd" };

static double tol_of(int k)
{
    return pow(10.0, -k);
}

int ex_fig3_measure(ex_odenet *m, size_t nb, size_t B, const double *x,
                    const unsigned char *labels, ex_fig3 *f, char *msg, size_t msgn)
{
    memset(f, 0, sizeof *f);
    const size_t BD = B * m->D, img = m->rows * m->cols;
    const node_options keep = m->opt;
    static const double ts[2] = { 0.0, 1.0 };
    double *ref = malloc(BD * sizeof *ref);
    f->pt = calloc(nb * EX_FIG3_NTOL, sizeof *f->pt);
    if (!ref || !f->pt) {
        free(ref);
        snprintf(msg, msgn, "out of memory");
        return -1;
    }
    int rc = -1;
    node_system sys;
    node_stats st;
    if (node_net_system(m->net[1], B, &sys) != NODE_OK) {
        snprintf(msg, msgn, "the ODE block as a system refused batch %zu", B);
        goto done;
    }
    for (size_t j = 0; j < nb; j++) {
        const double *xj = x + j * B * img;
        if (node_net_forward(m->net[0], B, 0.0, xj, m->h0) != NODE_OK) {
            snprintf(msg, msgn, "downsampling forward failed");
            goto done;
        }
        m->opt.method = NODE_DOPRI5;
        m->opt.rtol = m->opt.atol = EX_FIG3_REF_TOL;
        if (node_solver_odeint(m->solver, &sys, m->h0, ts, 2, m->ys, &m->opt, &st) != NODE_OK) {
            snprintf(msg, msgn, "reference solve at tol %g: %s", EX_FIG3_REF_TOL, st.message);
            goto done;
        }
        f->ref_nfe += (double)st.nfe / (double)nb;
        memcpy(ref, m->ys + BD, BD * sizeof *ref);
        for (int k = 0; k < EX_FIG3_NTOL; k++) {
            ex_fig3_point *p = &f->pt[f->n++];
            p->tol = tol_of(k);
            p->batch = j;
            m->opt.rtol = m->opt.atol = p->tol;
            const double t0 = ex_clock();
            node_status s = node_solver_odeint(m->solver, &sys, m->h0, ts, 2, m->ys, &m->opt, &st);
            p->seconds = ex_clock() - t0;
            if (s != NODE_OK) {
                snprintf(msg, msgn, "forward solve at tol %g: %s", p->tol, st.message);
                goto done;
            }
            p->nfe_f = (double)st.nfe;
            double e2 = 0;
            const double *h = m->ys + BD;
            for (size_t i = 0; i < BD; i++) {
                double e = (h[i] - ref[i]) / (1.0 + fabs(ref[i]));
                e2 += e * e;
            }
            p->error = sqrt(e2 / (double)BD);
            ex_step sc;
            if (ex_odenet_head_grad(m, B, labels + j * B, &sc, msg, msgn) != 0)
                goto done;
            s = node_solver_adjoint(m->solver, &sys, ts, 2, m->ys, m->dys, m->a0, m->grad[1],
                                    NULL, &m->opt, &st);
            if (s != NODE_OK) {
                snprintf(msg, msgn, "adjoint at tol %g: %s", p->tol, st.message);
                goto done;
            }
            p->nfe_b = (double)st.nfe;
        }
    }
    rc = 0;
done:
    m->opt = keep;
    free(ref);
    if (rc != 0) {
        free(f->pt);
        memset(f, 0, sizeof *f);
    }
    return rc;
}

void ex_fig3_means(const ex_fig3 *f, int k, double *nfe_f, double *nfe_b, double *error,
                   double *seconds)
{
    double a = 0, b = 0, e = 0, t = 0, n = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->pt[i].tol == tol_of(k)) {
            a += f->pt[i].nfe_f;
            b += f->pt[i].nfe_b;
            e += f->pt[i].error;
            t += f->pt[i].seconds;
            n++;
        }
    n = n > 0 ? n : NAN;
    *nfe_f = a / n;
    *nfe_b = b / n;
    *error = e / n;
    *seconds = t / n;
}

int ex_fig3_write_csv(const char *path, const ex_fig3 *f)
{
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "tol,batch,nfe_forward,nfe_backward,error,forward_seconds\n");
    for (size_t i = 0; i < f->n; i++) {
        const ex_fig3_point *p = &f->pt[i];
        fprintf(o, "%g,%zu,%.0f,%.0f,%.6e,%.6e\n", p->tol, p->batch, p->nfe_f, p->nfe_b,
                p->error, p->seconds);
    }
    int bad = ferror(o);
    return fclose(o) == 0 && !bad ? 0 : -1;
}

static int tol_index(double tol)
{
    return (int)lround(-log10(tol));
}

int ex_fig3_write_svg(const char *path, const ex_fig3 *f, const char *title)
{
    ex_svg s;
    if (ex_svg_begin(&s, path, 960, 800) != 0)
        return -1;
    ex_svg_text(&s, 480, 22, 15, "middle", "black", title);
    double xmax = 0, tmax = 0, emin = INFINITY, emax = -INFINITY, bmax = 0;
    for (size_t i = 0; i < f->n; i++) {
        const ex_fig3_point *p = &f->pt[i];
        xmax = fmax(xmax, p->nfe_f);
        bmax = fmax(bmax, p->nfe_b);
        tmax = fmax(tmax, p->seconds);
        if (p->error > 0) {
            emin = fmin(emin, log10(p->error));
            emax = fmax(emax, log10(p->error));
        }
    }
    xmax = ceil(fmax(xmax, bmax) * 1.05 + 1);
    emin = floor(fmin(emin, -(double)EX_FIG3_NTOL));
    emax = ceil(fmax(emax, 0.5));
    const char *labels[EX_FIG3_NTOL];
    char lab[EX_FIG3_NTOL][16];
    for (int k = 0; k < EX_FIG3_NTOL; k++) {
        snprintf(lab[k], sizeof lab[k], k ? "tol 1e-%d" : "tol 1e%d", k);
        labels[k] = lab[k];
    }

    /* (a) numerical error vs NFE-F, dashed lines at the tolerances */
    ex_svg_panel(&s, 10, 40, 470, 370, 0, xmax, emin, emax, "(a) numerical error",
                 "NFE forward", "log10 numerical error");
    for (int k = 0; k < EX_FIG3_NTOL; k++) {
        const double xs[2] = { 0, xmax }, ys[2] = { -(double)k, -(double)k };
        ex_svg_line(&s, 2, xs, 1, ys, 1, tol_color[k], 1, "6 4");
    }
    for (size_t i = 0; i < f->n; i++)
        ex_svg_dot(&s, f->pt[i].nfe_f, f->pt[i].error > 0 ? log10(f->pt[i].error) : emin, 3.5,
                   tol_color[tol_index(f->pt[i].tol)]);
    ex_svg_legend(&s, EX_FIG3_NTOL, labels, tol_color, NULL);

    /* (b) relative time vs NFE-F */
    ex_svg_panel(&s, 480, 40, 470, 370, 0, xmax, 0, 1.05, "(b) NFE vs time", "NFE forward",
                 "relative time of the forward solve");
    for (size_t i = 0; i < f->n; i++)
        ex_svg_dot(&s, f->pt[i].nfe_f, tmax > 0 ? f->pt[i].seconds / tmax : 0, 3.5,
                   tol_color[tol_index(f->pt[i].tol)]);

    /* (c) NFE-B vs NFE-F, with y = x */
    ex_svg_panel(&s, 10, 420, 470, 370, 0, xmax, 0, xmax, "(c) NFE forward vs backward",
                 "NFE forward", "NFE backward (adjoint)");
    {
        const double d[2] = { 0, xmax };
        ex_svg_line(&s, 2, d, 1, d, 1, "#888", 1, "4 3");
    }
    for (size_t i = 0; i < f->n; i++)
        ex_svg_dot(&s, f->pt[i].nfe_f, f->pt[i].nfe_b, 3.5, tol_color[tol_index(f->pt[i].tol)]);

    /* (d) NFE-F over training: every batch, and each epoch's mean */
    const size_t nt = f->ntrain, pe = f->per_epoch ? f->per_epoch : 1;
    double ymax = 1;
    for (size_t i = 0; i < nt; i++)
        ymax = fmax(ymax, f->train_nfe[i]);
    ex_svg_panel(&s, 480, 420, 470, 370, 0, nt ? (double)nt / (double)pe : 1, 0, ymax * 1.1,
                 "(d) NFE over training", "training epoch", "NFE forward");
    if (nt) {
        double *ep = malloc(nt * sizeof *ep);
        if (ep) {
            for (size_t i = 0; i < nt; i++)
                ep[i] = (double)(i + 1) / (double)pe;
            ex_svg_line(&s, nt, ep, 1, f->train_nfe, 1, "#9ab", 1, NULL);
            free(ep);
        }
        for (size_t e = 0; e * pe < nt; e++) {
            double sum = 0;
            size_t c = 0;
            for (size_t i = e * pe; i < nt && i < (e + 1) * pe; i++, c++)
                sum += f->train_nfe[i];
            ex_svg_dot(&s, (double)(e * pe + c) / (double)pe, sum / (double)c, 4.5, "#1f3b73");
        }
        const char *l2[2] = { "each batch", "epoch mean" };
        const char *c2[2] = { "#9ab", "#1f3b73" };
        ex_svg_legend(&s, 2, l2, c2, NULL);
    }
    return ex_svg_end(&s);
}

void ex_fig3_free(ex_fig3 *f)
{
    free(f->pt);
    memset(f, 0, sizeof *f);
}
