/* idx.c — IDX files, gzip-compressed or plain (idx.h): the header's magic and
 * big-endian dimensions checked against the data; MNIST-style image sets.
 */
#include "idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* ---- IDX --------------------------------------------------------------------------------- */

static int parse_plain(const unsigned char *b, size_t n, const char *name, ex_idx *out,
                       unsigned char *owned, char *msg, size_t msgn)
{
    if (n < 4) {
        ex_say(msg, msgn, name, "truncated IDX header (%zu bytes)", n);
        goto bad;
    }
    if (b[0] || b[1]) {
        ex_say(msg, msgn, name, "neither a gzip file (0x1f 0x8b ...) nor an IDX file (0x00 "
            "0x00 ...): it starts with 0x%02x 0x%02x", b[0], b[1]);
        goto bad;
    }
    if (b[2] != 0x08) {
        ex_say(msg, msgn, name, "IDX data type 0x%02x: only unsigned bytes (0x08) are read",
            b[2]);
        goto bad;
    }
    const size_t nd = b[3];
    if (nd < 1 || nd > EX_IDX_MAXDIM) {
        ex_say(msg, msgn, name, "IDX header has %zu dimensions (1 to %d are read)", nd,
            EX_IDX_MAXDIM);
        goto bad;
    }
    if (n < 4 + 4 * nd) {
        ex_say(msg, msgn, name, "truncated IDX header (%zu bytes, its %zu dimensions need %zu)",
            n, nd, 4 + 4 * nd);
        goto bad;
    }
    ex_idx x;
    memset(&x, 0, sizeof x);
    x.ndim = nd;
    x.size = 1;
    for (size_t i = 0; i < nd; i++) {
        const unsigned char *p = b + 4 + 4 * i;
        x.dims[i] = (size_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                             (uint32_t)p[2] << 8 | p[3]);
        if (x.dims[i] == 0) {
            ex_say(msg, msgn, name, "IDX dimension %zu is 0", i + 1);
            goto bad;
        }
        if (x.size > SIZE_MAX / x.dims[i]) {
            ex_say(msg, msgn, name, "IDX dimensions overflow the address space");
            goto bad;
        }
        x.size *= x.dims[i];
    }
    const size_t have = n - 4 - 4 * nd;
    if (have != x.size) {
        char dims[160];
        size_t w = 0;
        for (size_t i = 0; i < nd && w < sizeof dims; i++)
            w += (size_t)snprintf(dims + w, sizeof dims - w, "%s%zu", i ? " x " : "",
                                  x.dims[i]);
        ex_say(msg, msgn, name, "IDX header promises %s = %zu bytes of data, the file has %zu "
            "(%s)", dims, x.size, have, have < x.size ? "truncated" : "trailing bytes");
        goto bad;
    }
    if (owned) {   /* reuse the inflated buffer: move the data to its front */
        memmove(owned, b + 4 + 4 * nd, x.size);
        x.data = owned;
    } else if (!(x.data = malloc(x.size))) {
        ex_say(msg, msgn, name, "out of memory");
        return EX_IDX_ENOMEM;
    } else {
        memcpy(x.data, b + 4 + 4 * nd, x.size);
    }
    *out = x;
    return EX_IDX_OK;
bad:
    free(owned);
    return EX_IDX_EINPUT;
}

int ex_idx_parse(const unsigned char *buf, size_t n, const char *name, ex_idx *out,
                 char *msg, size_t msgn)
{
    if (n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        unsigned char *raw;
        size_t rawn;
        int r = ex_gunzip(buf, n, &raw, &rawn, name, msg, msgn);
        if (r != EX_IDX_OK)
            return r;
        return parse_plain(raw, rawn, name, out, raw, msg, msgn);
    }
    return parse_plain(buf, n, name, out, NULL, msg, msgn);
}

void ex_idx_free(ex_idx *x)
{
    if (!x)
        return;
    free(x->data);
    memset(x, 0, sizeof *x);
}

int ex_idx_read(const char *path, ex_idx *out, char *msg, size_t msgn)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ex_say(msg, msgn, path, "%s", strerror(errno));
        return EX_IDX_EINPUT;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int r = EX_IDX_OK;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? 2 * cap : 1u << 20;
            unsigned char *p = realloc(buf, nc);
            if (!p) {
                ex_say(msg, msgn, path, "out of memory");
                r = EX_IDX_ENOMEM;
                goto done;
            }
            buf = p;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                ex_say(msg, msgn, path, "read error: %s", strerror(errno));
                r = EX_IDX_EINPUT;
                goto done;
            }
            break;
        }
    }
    r = ex_idx_parse(buf, n, path, out, msg, msgn);
done:
    free(buf);
    fclose(f);
    return r;
}

/* ---- image sets ------------------------------------------------------------------------ */

/* DIR/BASE.gz if it exists, else DIR/BASE (whose absence is then reported). */
static int read_either(const char *dir, const char *base, ex_idx *x, char *msg, size_t msgn)
{
    char path[4096], gz[512];
    snprintf(gz, sizeof gz, "%s.gz", base);
    if (ex_path_join(path, sizeof path, dir, gz) != 0) {
        ex_say(msg, msgn, dir, "path too long");
        return EX_IDX_EINPUT;
    }
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else if (errno == ENOENT) {
        char plain[4096];
        if (ex_path_join(plain, sizeof plain, dir, base) == 0 && (f = fopen(plain, "rb"))) {
            fclose(f);
            return ex_idx_read(plain, x, msg, msgn);
        }
    }
    return ex_idx_read(path, x, msg, msgn);   /* the .gz name is the one reported */
}

int ex_imageset_read(const char *dir, const char *prefix, size_t nclass, ex_imageset *out,
                     char *msg, size_t msgn)
{
    char base[256], path[4096];
    ex_idx im, lb;
    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    int r = read_either(dir, base, &im, msg, msgn);
    if (r != EX_IDX_OK)
        return r;
    ex_path_join(path, sizeof path, dir, base);
    if (im.ndim != 3) {
        ex_say(msg, msgn, path, "%zu dimensions, images need 3 (count x rows x cols)", im.ndim);
        r = EX_IDX_EINPUT;
        goto done;
    }
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if ((r = read_either(dir, base, &lb, msg, msgn)) != EX_IDX_OK)
        goto done;
    ex_path_join(path, sizeof path, dir, base);
    r = EX_IDX_EINPUT;
    if (lb.ndim != 1) {
        ex_say(msg, msgn, path, "%zu dimensions, labels need 1", lb.ndim);
        goto done;
    }
    if (lb.dims[0] != im.dims[0]) {
        ex_say(msg, msgn, path, "%zu labels for %zu images", lb.dims[0], im.dims[0]);
        goto done;
    }
    for (size_t i = 0; i < lb.size; i++)
        if (lb.data[i] >= nclass) {
            ex_say(msg, msgn, path, "label %zu is %u, not below %zu", i, lb.data[i], nclass);
            goto done;
        }
    out->count = im.dims[0];
    out->rows = im.dims[1];
    out->cols = im.dims[2];
    out->pixels = im.data;
    out->labels = lb.data;
    return EX_IDX_OK;
done:
    ex_idx_free(&im);
    ex_idx_free(&lb);
    return r;
}

void ex_imageset_free(ex_imageset *s)
{
    if (!s)
        return;
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}
