/* tseries.c — data sets of irregularly sampled series (each with its own strictly
 * increasing times), read from long-format CSV, and batches of series on the sorted
 * union of their times with observation masks (the layout of Chen et al. 2018,
 * Section 5: one solve serves every series of a batch).
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    int64_t id;
    size_t n;
    double *t;   /* n times, then (same block) x: n × dim values */
    double *x;
} series;

struct node_tseries {
    size_t dim, count, cap;
    series *s;
};

/* The most observations of one series: its block of n × (dim + 1) doubles must be
   addressable. */
static size_t max_obs(size_t dim) { return SIZE_MAX / sizeof(double) / (dim + 1); }

node_status node_tseries_create(node_tseries **out, size_t dim, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (dim == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "dim = 0: a series needs at "
                                            "least one value per time"));
    if (dim > SIZE_MAX / 64)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "dim = %zu is too large",
                                            dim));
    node_tseries *d = node__calloc(1, sizeof *d);
    if (!d)
        return node__err_end(err, NODE_ENOMEM);
    d->dim = dim;
    *out = d;
    return node__err_end(err, NODE_OK);
}

void node_tseries_free(node_tseries *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++)
        node__free(d->s[i].t);
    node__free(d->s);
    node__free(d);
}

size_t node_tseries_count(const node_tseries *d) { return d ? d->count : 0; }
size_t node_tseries_dim(const node_tseries *d) { return d ? d->dim : 0; }

/* A new last series of n observations (n <= max_obs), arrays to be filled by the
   caller; NULL when an allocation fails (d unchanged but for spare room). */
static series *append(node_tseries *d, int64_t id, size_t n)
{
    if (d->count == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 8;
        if (cap > SIZE_MAX / sizeof(series))
            return NULL;
        series *s = node__realloc(d->s, cap * sizeof(series));
        if (!s)
            return NULL;
        d->s = s;
        d->cap = cap;
    }
    double *block = node__malloc(n * (d->dim + 1) * sizeof(double));
    if (!block)
        return NULL;
    series *s = &d->s[d->count++];
    s->id = id;
    s->n = n;
    s->t = block;
    s->x = block + n;
    return s;
}

node_status node_tseries_add(node_tseries *d, int64_t id, size_t n, const double *t,
                             const double *x, node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (!d)
        return node__err_end(err, node__msg(msg, st, "d is NULL"));
    if (n == 0)
        return node__err_end(err, node__msg(msg, st, "n = 0: a series needs at least one "
                                            "observation"));
    if (n > max_obs(d->dim))
        return node__err_end(err, node__msg(msg, st, "n = %zu observations of %zu values "
                                            "do not fit in memory", n, d->dim));
    if (!t)
        return node__err_end(err, node__msg(msg, st, "t is NULL"));
    if (!x)
        return node__err_end(err, node__msg(msg, st, "x is NULL"));
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(t[i]))
            return node__err_end(err, node__msg(msg, st, "t[%zu] = %g is not finite", i,
                                                t[i]));
        if (i > 0 && !(t[i] > t[i - 1]))
            return node__err_end(err, node__msg(msg, st, "t[%zu] = %.17g is not after "
                                                "t[%zu] = %.17g: times must be strictly "
                                                "increasing", i, t[i], i - 1, t[i - 1]));
    }
    size_t D = d->dim;
    for (size_t i = 0; i < n * D; i++)
        if (!isfinite(x[i]))
            return node__err_end(err, node__msg(msg, st, "x[%zu] = %g (observation %zu, "
                                                "value %zu) is not finite", i, x[i], i / D,
                                                i % D));
    series *s = append(d, id, n);
    if (!s)
        return node__err_end(err, NODE_ENOMEM);
    memcpy(s->t, t, n * sizeof(double));
    memcpy(s->x, x, n * D * sizeof(double));
    return node__err_end(err, NODE_OK);
}

node_status node_tseries_get(const node_tseries *d, size_t i, int64_t *id, size_t *n,
                             const double **t, const double **x)
{
    if (!d || i >= d->count)
        return NODE_EINVAL;
    const series *s = &d->s[i];
    if (id)
        *id = s->id;
    if (n)
        *n = s->n;
    if (t)
        *t = s->t;
    if (x)
        *x = s->x;
    return NODE_OK;
}

/* ---- reading CSV ------------------------------------------------------------------ */

typedef struct row {
    int64_t id;
    size_t r;      /* index in file order (values at vals + r·(D + 1)) */
    size_t line;
} row;

/* A series of the file: its rows are rows[a .. a+n-1] after sorting; r is the file
   index of its first row. */
typedef struct group {
    size_t r, a, n;
} group;

typedef struct reader {
    const char *path;
    FILE *f;
    char *buf;          /* the current line */
    size_t buf_cap;
    size_t line;        /* its number, from 1 */
    char where[400];    /* "path:line" for messages */
    char **field;       /* D + 2 field pointers into buf */
    row *rows;
    double *vals;       /* per row: t, x_1 .. x_D */
    size_t nrows, rows_cap;
    group *group;       /* the series, in the order of their first rows */
} reader;

/* "path:line" (the path's last 300 bytes at most: node__io_say shortens the rest). */
static const char *at(reader *c, size_t line)
{
    size_t n = strlen(c->path);
    const char *p = n > 300 ? c->path + n - 300 : c->path;
    snprintf(c->where, sizeof c->where, "%s:%zu", p, line);
    return c->where;
}

/* Read the next line into c->buf (newline and a trailing CR removed).  1: a line,
   0: end of file, -1: read error, -2: out of memory. */
static int next_line(reader *c)
{
    size_t len = 0;
    for (;;) {
        if (c->buf_cap - len < 2) {
            size_t cap = c->buf_cap ? 2 * c->buf_cap : 256;
            char *b = cap > c->buf_cap ? node__realloc(c->buf, cap) : NULL;
            if (!b)
                return -2;
            c->buf = b;
            c->buf_cap = cap;
        }
        if (!fgets(c->buf + len, (int)(c->buf_cap - len > 1 << 30 ? 1 << 30
                                                                   : c->buf_cap - len), c->f)) {
            if (ferror(c->f))
                return -1;
            if (len == 0)
                return 0;
            break;
        }
        len += strlen(c->buf + len);
        if (len > 0 && c->buf[len - 1] == '\n')
            break;
    }
    c->line++;
    if (len > 0 && c->buf[len - 1] == '\n')
        c->buf[--len] = '\0';
    if (len > 0 && c->buf[len - 1] == '\r')
        c->buf[--len] = '\0';
    return 1;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t'; }

/* Trim blanks at both ends, in place. */
static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool blank(const char *s)
{
    while (is_space(*s))
        s++;
    return *s == '\0';
}

/* Split c->buf at commas into at most max fields (trimmed) stored in out; returns the
   number of fields the line has (which may exceed max: then out holds the first max). */
static size_t split(char *s, char **out, size_t max)
{
    size_t n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        if (n < max)
            out[n] = trim(s);
        n++;
        if (!comma)
            return n;
        s = comma + 1;
    }
}

/* Parse a whole field as a double: 0 ok, 1 empty, 2 not a number. */
static int parse_double(const char *s, double *v)
{
    if (!*s)
        return 1;
    char *end;
    *v = strtod(s, &end);
    return *end ? 2 : 0;
}

static int row_cmp(const void *a, const void *b)
{
    const row *p = a, *q = b;
    if (p->id != q->id)
        return p->id < q->id ? -1 : 1;
    return p->r < q->r ? -1 : p->r > q->r;
}

static int group_cmp(const void *a, const void *b)
{
    const group *p = a, *q = b;
    return p->r < q->r ? -1 : p->r > q->r;
}

static void reader_free(reader *c)
{
    if (c->f)
        fclose(c->f);
    node__free(c->buf);
    node__free(c->field);
    node__free(c->rows);
    node__free(c->vals);
    node__free(c->group);
}

/* Read the header and every row into c (rows in file order). */
static node_status read_rows(reader *c, size_t *dim, char *msg)
{
    int rc;
    const char *p = c->path;
    while ((rc = next_line(c)) == 1 && blank(c->buf))
        ;
    if (rc == -2)
        return NODE_ENOMEM;
    if (rc == -1)
        return node__io_say(msg, NODE_EIO, p, "read error: %s", strerror(errno));
    if (rc == 0)
        return node__io_say(msg, NODE_EFORMAT, at(c, c->line + 1), "empty file: expected a "
                            "header line series,t,x1,...,xD");

    /* header: series,t,<D names> */
    char *h = c->buf;
    if ((unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
        (unsigned char)h[2] == 0xBF)
        h += 3;   /* a UTF-8 byte-order mark */
    size_t ncol = 1;
    for (const char *q = h; *q; q++)
        ncol += *q == ',';
    if (ncol < 3)
        return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "bad header: %zu column%s, "
                            "expected series,t,x1,...,xD (at least 3)", ncol,
                            ncol == 1 ? "" : "s");
    size_t D = ncol - 2;
    if (D > SIZE_MAX / 64)
        return NODE_ENOMEM;
    c->field = node__malloc(ncol * sizeof(char *));
    if (!c->field)
        return NODE_ENOMEM;
    split(h, c->field, ncol);
    if (strcmp(c->field[0], "series") != 0 || strcmp(c->field[1], "t") != 0)
        return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "bad header: the first two "
                            "columns must be named series and t, found '%.40s' and '%.40s'",
                            c->field[0], c->field[1]);
    *dim = D;

    while ((rc = next_line(c)) == 1) {
        if (blank(c->buf))
            continue;
        size_t got = split(c->buf, c->field, ncol);
        if (got != ncol)
            return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "%zu columns, expected "
                                "%zu (series, t and %zu value%s as in the header)", got, ncol,
                                D, D == 1 ? "" : "s");
        if (c->nrows == c->rows_cap) {
            size_t cap = c->rows_cap ? 2 * c->rows_cap : 64;
            if (cap > SIZE_MAX / sizeof(row) || cap > max_obs(D))
                return NODE_ENOMEM;
            row *r = node__realloc(c->rows, cap * sizeof(row));
            if (!r)
                return NODE_ENOMEM;
            c->rows = r;
            double *v = node__realloc(c->vals, cap * (D + 1) * sizeof(double));
            if (!v)
                return NODE_ENOMEM;
            c->vals = v;
            c->rows_cap = cap;
        }
        /* the series id: a whole decimal integer */
        const char *f0 = c->field[0];
        char *end;
        errno = 0;
        long long id = strtoll(f0, &end, 10);
        if (!*f0 || *end)
            return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "series id '%.40s' is not "
                                "an integer", f0);
        if (errno == ERANGE)
            return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "series id '%.40s' is out "
                                "of range", f0);
        double *v = c->vals + c->nrows * (D + 1);
        for (size_t k = 1; k < ncol; k++) {
            int e = parse_double(c->field[k], &v[k - 1]);
            if (e == 1)
                return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "column %zu is empty",
                                    k + 1);
            if (e == 2)
                return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "column %zu: "
                                    "'%.40s' is not a number", k + 1, c->field[k]);
            if (!isfinite(v[k - 1]))
                return node__io_say(msg, NODE_EFORMAT, at(c, c->line), "column %zu: "
                                    "'%.40s' is not finite (NaN and Inf are refused)", k + 1,
                                    c->field[k]);
        }
        c->rows[c->nrows] = (row){ .id = (int64_t)id, .r = c->nrows, .line = c->line };
        c->nrows++;
    }
    if (rc == -2)
        return NODE_ENOMEM;
    if (rc == -1)
        return node__io_say(msg, NODE_EIO, p, "read error: %s", strerror(errno));
    if (c->nrows == 0)
        return node__io_say(msg, NODE_EFORMAT, at(c, c->line + 1), "no observations after "
                            "the header");
    return NODE_OK;
}

node_status node_tseries_read_csv(node_tseries **out, const char *path, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (!path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is NULL"));
    reader c = { .path = path };
    c.f = fopen(path, "r");
    if (!c.f)
        return node__err_end(err, node__io_say(msg, NODE_EIO, path, "%s", strerror(errno)));
    size_t D = 0;
    node_status st = read_rows(&c, &D, msg);
    node_tseries *d = NULL;
    if (st)
        goto done;

    /* group the rows by series (file order kept within a series) and check each */
    qsort(c.rows, c.nrows, sizeof(row), row_cmp);
    size_t ngroups = 0, bad_line = 0, bad = 0;
    for (size_t a = 0, b; a < c.nrows; a = b) {
        for (b = a + 1; b < c.nrows && c.rows[b].id == c.rows[a].id; b++)
            if (!(c.vals[c.rows[b].r * (D + 1)] > c.vals[c.rows[b - 1].r * (D + 1)]) &&
                (!bad_line || c.rows[b].line < bad_line)) {
                bad_line = c.rows[b].line;
                bad = b;
            }
        if (b - a < 2 && (!bad_line || c.rows[a].line < bad_line)) {
            bad_line = c.rows[a].line;
            bad = a;
        }
        ngroups++;
    }
    if (bad_line) {
        const row *r = &c.rows[bad];
        bool single = (bad == 0 || c.rows[bad - 1].id != r->id) &&
                      (bad + 1 == c.nrows || c.rows[bad + 1].id != r->id);
        if (single)
            st = node__io_say(msg, NODE_EFORMAT, at(&c, r->line), "series %lld has one "
                              "observation: a series needs at least 2", (long long)r->id);
        else
            st = node__io_say(msg, NODE_EFORMAT, at(&c, r->line), "t = %.17g of series %lld "
                              "is not after its previous time %.17g (line %zu): times must "
                              "increase within a series", c.vals[r->r * (D + 1)],
                              (long long)r->id, c.vals[c.rows[bad - 1].r * (D + 1)],
                              c.rows[bad - 1].line);
        goto done;
    }

    /* series in the order of their first row in the file */
    c.group = node__malloc(ngroups * sizeof(group));
    if (!c.group) {
        st = NODE_ENOMEM;
        goto done;
    }
    for (size_t a = 0, b, g = 0; a < c.nrows; a = b, g++) {
        for (b = a + 1; b < c.nrows && c.rows[b].id == c.rows[a].id; b++)
            ;
        c.group[g] = (group){ .r = c.rows[a].r, .a = a, .n = b - a };
    }
    qsort(c.group, ngroups, sizeof(group), group_cmp);

    if ((st = node_tseries_create(&d, D, NULL)))
        goto done;
    for (size_t g = 0; g < ngroups; g++) {
        size_t a = c.group[g].a, n = c.group[g].n;
        series *s = append(d, c.rows[a].id, n);
        if (!s) {
            st = NODE_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const double *v = c.vals + c.rows[a + i].r * (D + 1);
            s->t[i] = v[0];
            memcpy(s->x + i * D, v + 1, D * sizeof(double));
        }
    }
done:
    reader_free(&c);
    if (st) {
        node_tseries_free(d);
        return node__err_end(err, st);
    }
    *out = d;
    return node__err_end(err, NODE_OK);
}

/* ---- batches on the union of times ----------------------------------------------- */

/* The first index of t[0 .. n-1] (ascending) with t[i] > v; n if none. */
static size_t upper_bound(const double *t, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] > v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The smallest time of the selected series after v (+Inf if none).  Found by binary
   search in every series, so that the union needs no scratch (and the data set may be
   read by several threads at once): a sweep costs O(nt · nsel · log n), the order of
   writing the nt · nsel · dim values of xs.  (1000 series of 50 random times: 0.4 s
   to count the 50000 union times, 3.5 s to write the 800 MB batch.) */
static double next_time(const node_tseries *d, size_t nsel, const size_t *sel, double v)
{
    double next = INFINITY;
    for (size_t b = 0; b < nsel; b++) {
        const series *s = &d->s[sel[b]];
        size_t p = upper_bound(s->t, s->n, v);
        if (p < s->n && s->t[p] < next)
            next = s->t[p];
    }
    return next;
}

/* The sorted union of the selected series' times into ts, by a merge of their sorted
   times: cur (nsel doubles, the caller's xs before it is written) holds each series'
   position.  O(union · nsel) comparisons.  Returns the union's size. */
static size_t merge_times(const node_tseries *d, size_t nsel, const size_t *sel,
                          double *cur, double *ts)
{
    for (size_t b = 0; b < nsel; b++)
        cur[b] = 0.0;
    size_t U = 0;
    for (;;) {
        double next = INFINITY;
        for (size_t b = 0; b < nsel; b++) {
            const series *s = &d->s[sel[b]];
            size_t p = (size_t)cur[b];
            if (p < s->n && s->t[p] < next)
                next = s->t[p];
        }
        if (!(next < INFINITY))
            return U;
        ts[U++] = next;
        for (size_t b = 0; b < nsel; b++) {
            const series *s = &d->s[sel[b]];
            size_t p = (size_t)cur[b];
            if (p < s->n && s->t[p] == next)
                cur[b] = (double)(p + 1);
        }
    }
}

node_status node_tseries_union(const node_tseries *d, size_t nsel, const size_t *sel,
                               size_t cap, double *ts, size_t *nt, double *xs,
                               unsigned char *mask, node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (!d)
        return node__err_end(err, node__msg(msg, st, "d is NULL"));
    if (nsel == 0)
        return node__err_end(err, node__msg(msg, st, "nsel = 0: select at least one series"));
    if (!sel)
        return node__err_end(err, node__msg(msg, st, "sel is NULL"));
    if (!nt)
        return node__err_end(err, node__msg(msg, st, "nt is NULL"));
    if (cap > 0 && (!ts || !xs || !mask))
        return node__err_end(err, node__msg(msg, st, "%s is NULL with cap = %zu > 0",
                                            !ts ? "ts" : !xs ? "xs" : "mask", cap));
    size_t D = d->dim;
    if (cap > 0 && (nsel > SIZE_MAX / sizeof(double) / D ||
                    cap > SIZE_MAX / sizeof(double) / D / nsel))
        return node__err_end(err, node__msg(msg, st, "cap = %zu times of %zu series: the "
                                            "arrays cannot be that large", cap, nsel));
    for (size_t b = 0; b < nsel; b++)
        if (sel[b] >= d->count)
            return node__err_end(err, node__msg(msg, st, "sel[%zu] = %zu is out of range "
                                                "(the set has %zu series)", b, sel[b],
                                                d->count));

    /* Count the distinct times and write nothing unless they fit; when the series'
       times together fit (Σ n_b <= cap), so does their union, and no count is needed. */
    size_t total = 0, U = 0;
    for (size_t b = 0; b < nsel && total <= cap; b++)
        total += d->s[sel[b]].n;
    if (total > cap) {
        for (double v = next_time(d, nsel, sel, -INFINITY); v < INFINITY;
             v = next_time(d, nsel, sel, v))
            U++;
        if (U > cap) {
            *nt = U;
            return node__err_end(err, node__msg(msg, st, "the union has %zu times, cap is "
                                                "%zu: call again with cap >= %zu", U, cap, U));
        }
    }
    if (cap > 0)
        U = merge_times(d, nsel, sel, xs, ts);

    /* each series' column: its values where its times meet the union's */
    for (size_t b = 0; b < nsel; b++) {
        const series *s = &d->s[sel[b]];
        size_t p = 0;
        for (size_t k = 0; k < U; k++) {
            double *row = xs + (k * nsel + b) * D;
            if (p < s->n && s->t[p] == ts[k]) {
                memcpy(row, s->x + p * D, D * sizeof(double));
                mask[k * nsel + b] = 1;
                p++;
            } else {
                memset(row, 0, D * sizeof(double));
                mask[k * nsel + b] = 0;
            }
        }
    }
    *nt = U;
    return node__err_end(err, NODE_OK);
}
