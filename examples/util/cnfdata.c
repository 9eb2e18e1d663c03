/* cnfdata.c — see cnfdata.h.  Densities: two circles by the angular integral of a
 * Gaussian around a ring, (1/2π)∫ N(x; r(cos φ, sin φ), σ²I) dφ
 *   = (2πσ²)^{-1} exp(−(|x|² + r²)/(2σ²)) I₀(r|x|/σ²)   (Abramowitz & Stegun 9.6.16);
 * moons by Simpson's rule over the arc; 8 Gaussians and the checkerboard in closed form.
 */
#define _POSIX_C_SOURCE 200809L
#include "cnfdata.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

static const char *const toy_names[EX_TOY_COUNT] = {
    "circles", "moons", "8gaussians", "checkerboard", "pinwheel"
};

const char *ex_toy_name(ex_toy t)
{
    return (unsigned)t < EX_TOY_COUNT ? toy_names[t] : NULL;
}

int ex_toy_parse(const char *name, ex_toy *out)
{
    for (int k = 0; name && k < EX_TOY_COUNT; k++)
        if (!strcmp(name, toy_names[k])) {
            *out = (ex_toy)k;
            return 0;
        }
    return -1;
}

int ex_toy_has_density(ex_toy t) { return t != EX_TOY_PINWHEEL && (unsigned)t < EX_TOY_COUNT; }

double ex_toy_extent(ex_toy t) { return t == EX_TOY_CIRCLES ? 1.5 : 4.0; }

/* ---- the definitions' constants ------------------------------------------------------ */

#define CIRCLES_NOISE 0.06
#define CIRCLES_FACTOR 0.5
#define MOONS_NOISE 0.1
#define GAUSS8_SCALE 4.0
#define GAUSS8_STD 0.5
#define GAUSS8_DIV 1.414   /* FFJORD divides by 1.414, not by √2 */

/* ---- sampling ---------------------------------------------------------------------------- */

void ex_toy_sample(ex_toy t, ex_rng *r, size_t n, double *x)
{
    for (size_t i = 0; i < n; i++) {
        double *p = x + 2 * i;
        switch (t) {
        case EX_TOY_CIRCLES: {
            double rad = ex_rng_uniform(r) < 0.5 ? 1.0 : CIRCLES_FACTOR;
            double a = 2 * PI * ex_rng_uniform(r);
            p[0] = rad * cos(a) + ex_rng_normal(r, 0, CIRCLES_NOISE);
            p[1] = rad * sin(a) + ex_rng_normal(r, 0, CIRCLES_NOISE);
            break;
        }
        case EX_TOY_MOONS: {
            int lower = ex_rng_uniform(r) < 0.5;
            double a = PI * ex_rng_uniform(r);
            double u = lower ? 1 - cos(a) : cos(a), v = lower ? 0.5 - sin(a) : sin(a);
            u += ex_rng_normal(r, 0, MOONS_NOISE);
            v += ex_rng_normal(r, 0, MOONS_NOISE);
            p[0] = 2 * u - 1;
            p[1] = 2 * v - 0.2;
            break;
        }
        case EX_TOY_8GAUSSIANS: {
            double a = (double)ex_rng_below(r, 8) * PI / 4;
            p[0] = (GAUSS8_SCALE * cos(a) + ex_rng_normal(r, 0, GAUSS8_STD)) / GAUSS8_DIV;
            p[1] = (GAUSS8_SCALE * sin(a) + ex_rng_normal(r, 0, GAUSS8_STD)) / GAUSS8_DIV;
            break;
        }
        case EX_TOY_CHECKERBOARD: {
            /* FFJORD: x1 ~ U[-2, 2), x2 = U[0, 1) - 2·B + (floor(x1) mod 2), times 2 */
            double x1 = 4 * ex_rng_uniform(r) - 2;
            double x2 = ex_rng_uniform(r) - 2.0 * (double)ex_rng_below(r, 2);
            x2 += fmod(floor(x1) + 2, 2.0);
            p[0] = 2 * x1;
            p[1] = 2 * x2;
            break;
        }
        case EX_TOY_PINWHEEL:
        default: {
            double rr = ex_rng_normal(r, 1.0, 0.3), s = ex_rng_normal(r, 0, 0.1);
            double a = 2 * PI * (double)ex_rng_below(r, 5) / 5 + 0.25 * exp(rr);
            p[0] = 2 * (rr * cos(a) + s * sin(a));
            p[1] = 2 * (-rr * sin(a) + s * cos(a));
            break;
        }
        }
    }
}

/* ---- densities ----------------------------------------------------------------------------- */

double ex_i0e(double z)
{
    if (z < 20) {
        /* I0(z) = Σ ((z/2)^k / k!)²: positive terms, no cancellation */
        double q = 0.25 * z * z, term = 1, sum = 1;
        for (int k = 1; k < 500 && term > 1e-17 * sum; k++) {
            term *= q / ((double)k * k);
            sum += term;
        }
        return sum * exp(-z);
    }
    /* e^{-z} I0(z) ~ (2πz)^{-1/2} Σ ((2k-1)!!)² / (k! (8z)^k)  (A&S 9.7.1); its smallest
       term, near k = 2z, is ~e^{-2z} < 1e-17 here */
    double term = 1, sum = 1;
    for (int k = 1; k < 200; k++) {
        double next = term * (2.0 * k - 1) * (2.0 * k - 1) / (8.0 * k * z);
        if (next > term || next < 1e-18 * sum)
            break;
        term = next;
        sum += term;
    }
    return sum / sqrt(2 * PI * z);
}

/* log(e^a + e^b) */
static double log_add(double a, double b)
{
    double m = a > b ? a : b;
    if (m == -INFINITY)
        return m;
    return m + log(exp(a - m) + exp(b - m));
}

static double circles_log_prob(const double *x)
{
    const double s2 = CIRCLES_NOISE * CIRCLES_NOISE, rho = hypot(x[0], x[1]);
    double lp = -INFINITY;
    for (int k = 0; k < 2; k++) {
        double r = k ? CIRCLES_FACTOR : 1.0;
        /* exp(−(ρ² + r²)/2σ²) I0(rρ/σ²) = exp(−(ρ − r)²/2σ²) I0e(rρ/σ²) */
        double l = log(0.5) - log(2 * PI * s2) - (rho - r) * (rho - r) / (2 * s2) +
                   log(ex_i0e(r * rho / s2));
        lp = log_add(lp, l);
    }
    return lp;
}

/* Simpson's rule over θ ∈ [0, π] on each arc: the integrand's scale in θ is σ = 0.1,
   and MOONS_N intervals (h = 0.006) leave a relative error below ~1e-7. */
#define MOONS_N 512
static double moons_log_prob(const double *y)
{
    const double u = (y[0] + 1) / 2, v = (y[1] + 0.2) / 2, s2 = MOONS_NOISE * MOONS_NOISE;
    const double h = PI / MOONS_N;
    double e[2 * (MOONS_N + 1)], m = -INFINITY;
    for (int arc = 0; arc < 2; arc++)
        for (int i = 0; i <= MOONS_N; i++) {
            double a = h * i, cu = arc ? 1 - cos(a) : cos(a), cv = arc ? 0.5 - sin(a) : sin(a);
            double q = -((u - cu) * (u - cu) + (v - cv) * (v - cv)) / (2 * s2);
            e[arc * (MOONS_N + 1) + i] = q;
            if (q > m)
                m = q;
        }
    double sum = 0;
    for (int arc = 0; arc < 2; arc++)
        for (int i = 0; i <= MOONS_N; i++) {
            double w = (i == 0 || i == MOONS_N) ? 1 : (i % 2 ? 4 : 2);
            sum += w * exp(e[arc * (MOONS_N + 1) + i] - m);
        }
    /* ½ per arc, (1/π) dθ, Simpson's h/3, the Gaussian's 1/(2πσ²), the map's 1/4 */
    return m + log(sum) + log(0.5 / PI * h / 3 / (2 * PI * s2) / 4);
}

static double gauss8_log_prob(const double *x)
{
    const double s = GAUSS8_STD / GAUSS8_DIV, s2 = s * s;
    double lp = -INFINITY;
    for (int k = 0; k < 8; k++) {
        double a = k * PI / 4;
        double dx = x[0] - GAUSS8_SCALE * cos(a) / GAUSS8_DIV;
        double dy = x[1] - GAUSS8_SCALE * sin(a) / GAUSS8_DIV;
        lp = log_add(lp, -(dx * dx + dy * dy) / (2 * s2));
    }
    return lp + log(1.0 / 8) - log(2 * PI * s2);
}

static double checker_log_prob(const double *x)
{
    double u = x[0] / 2, v = x[1] / 2;
    if (!(u >= -2 && u < 2 && v >= -2 && v < 2))
        return -INFINITY;
    long i = (long)floor(u), j = (long)floor(v);
    return ((i + j) % 2 == 0) ? -log(32.0) : -INFINITY;
}

double ex_toy_log_prob(ex_toy t, const double *x)
{
    switch (t) {
    case EX_TOY_CIRCLES: return circles_log_prob(x);
    case EX_TOY_MOONS: return moons_log_prob(x);
    case EX_TOY_8GAUSSIANS: return gauss8_log_prob(x);
    case EX_TOY_CHECKERBOARD: return checker_log_prob(x);
    default: return NAN;
    }
}

int ex_toy_entropy(ex_toy t, uint64_t seed, size_t n, double *H, double *se)
{
    if (!ex_toy_has_density(t) || n < 2)
        return -1;
    ex_rng r;
    ex_rng_seed(&r, seed);
    /* Welford's running mean and variance of −log p */
    double mean = 0, m2 = 0, x[2];
    for (size_t i = 0; i < n; i++) {
        ex_toy_sample(t, &r, 1, x);
        double v = -ex_toy_log_prob(t, x), d = v - mean;
        mean += d / (double)(i + 1);
        m2 += d * (v - mean);
    }
    *H = mean;
    *se = sqrt(m2 / (double)(n - 1) / (double)n);
    return 0;
}

/* ---- point clouds in CSV ------------------------------------------------------------------- */

static int say(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (msg && size)
        vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

static int blank_line(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* Parse field [a, b) as a number: 0, 1 empty, 2 not a number. */
static int parse_field(char *a, char *b, double *v)
{
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    if (a == b)
        return 1;
    char save = *b, *end;
    *b = '\0';
    errno = 0;
    *v = strtod(a, &end);
    int bad = end != b;
    *b = save;
    return bad ? 2 : 0;
}

int ex_points_read_csv(const char *path, double **x, size_t *n, size_t *dim, char *msg,
                       size_t msgsize)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return say(msg, msgsize, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0, D = 0, rows = 0, vcap = 0;
    double *vals = NULL;
    int rc = -1;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (blank_line(line))
            continue;
        size_t ncol = 1;
        for (const char *q = line; *q; q++)
            ncol += *q == ',';
        if (D == 0) {
            /* the header: its column count is D; a row of numbers is not a header */
            int numeric = 1;
            for (char *a = line, *b;; a = b + 1) {
                b = strchr(a, ',');
                if (!b)
                    b = a + strlen(a);
                double v;
                if (parse_field(a, b, &v) != 0)
                    numeric = 0;
                if (!*b)
                    break;
            }
            if (numeric) {
                say(msg, msgsize, "%s:%zu: expected a header line (column names), found "
                    "numbers", path, lineno);
                goto done;
            }
            D = ncol;
            continue;
        }
        if (ncol != D) {
            say(msg, msgsize, "%s:%zu: %zu column%s, expected %zu as in the header", path,
                lineno, ncol, ncol == 1 ? "" : "s", D);
            goto done;
        }
        if (rows == vcap) {
            size_t nc = vcap ? 2 * vcap : 256;
            if (nc > (size_t)-1 / sizeof(double) / D) {
                say(msg, msgsize, "%s:%zu: too many rows", path, lineno);
                goto done;
            }
            double *nv = realloc(vals, nc * D * sizeof(double));
            if (!nv) {
                say(msg, msgsize, "%s:%zu: out of memory", path, lineno);
                goto done;
            }
            vals = nv;
            vcap = nc;
        }
        size_t k = 0;
        for (char *a = line, *b;; a = b + 1, k++) {
            b = strchr(a, ',');
            if (!b)
                b = a + strlen(a);
            double *v = vals + rows * D + k;
            int e = parse_field(a, b, v);
            char save = *b;
            *b = '\0';
            if (e == 1)
                say(msg, msgsize, "%s:%zu: column %zu is empty", path, lineno, k + 1);
            else if (e == 2)
                say(msg, msgsize, "%s:%zu: column %zu: '%.40s' is not a number", path,
                    lineno, k + 1, a);
            else if (!isfinite(*v))
                say(msg, msgsize, "%s:%zu: column %zu: '%.40s' is not finite (NaN and Inf "
                    "are refused)", path, lineno, k + 1, a);
            *b = save;
            if (e || !isfinite(*v))
                goto done;
            if (!*b)
                break;
        }
        rows++;
    }
    if (ferror(f)) {
        say(msg, msgsize, "%s:%zu: read error: %s", path, lineno + 1, strerror(errno));
        goto done;
    }
    if (D == 0) {
        say(msg, msgsize, "%s:%zu: empty file: expected a header line, then one point per "
            "row", path, lineno + 1);
        goto done;
    }
    if (rows == 0) {
        say(msg, msgsize, "%s:%zu: no points after the header", path, lineno + 1);
        goto done;
    }
    *x = vals;
    vals = NULL;
    *n = rows;
    *dim = D;
    rc = 0;
done:
    free(vals);
    free(line);
    fclose(f);
    return rc;
}

int ex_points_write_csv(const char *path, const double *x, size_t n, size_t dim)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t k = 0; k < dim; k++)
        fprintf(f, "%sx%zu", k ? "," : "", k + 1);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < dim; k++)
            fprintf(f, "%.17g%c", x[i * dim + k], k + 1 < dim ? ',' : '\n');
    int bad = ferror(f);
    if (fclose(f) != 0)
        bad = 1;
    return bad ? -1 : 0;
}
