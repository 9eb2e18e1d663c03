/* io.c — the MLP model-file format: a versioned little-endian layout with a CRC-32,
 * its writer (in pieces, to any sink) and its parser (from any source: memory for
 * the fuzzer, a file for node_mlp_load in fileio.c).  The parser learns the exact
 * length from the header before it allocates anything, and streams the parameters
 * straight into the new model.
 *
 * Format, version 1 (all integers little-endian, L = number of layers):
 *   offset          size      field
 *   0               8         magic "LIBNODE\x1a"  ("\x1a" stops a text viewer)
 *   8               4  u32    version = 1
 *   12              4  u32    flags: bit 0 = time input; other bits must be 0
 *   16              4  u32    L (>= 1)
 *   20              8(L+1)    u64 sizes[0..L], each >= 1
 *   20+8(L+1)       4L        u32 activations (node_activation values, the registry's)
 *   H = 28+12L      8P        parameters, IEEE-754 binary64, the node_mlp_params
 *                             layout, P = Σ_k (sizes[k] + [k=0]·time + 1) sizes[k+1]
 *   H+8P            4  u32    CRC-32 (IEEE 802.3, as zlib's crc32) of bytes [0, H+8P)
 * The file is exactly H + 8P + 4 bytes long.
 */
#include "nn/nn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const unsigned char MAGIC[8] = { 'L', 'I', 'B', 'N', 'O', 'D', 'E', 0x1a };
#define VERSION 1u
#define FIXED_HEAD 20u     /* magic, version, flags, L */

/* ---- CRC-32 ------------------------------------------------------------------- */

/* Half-byte table of the reflected polynomial 0xEDB88320. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};

uint32_t node__crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

/* ---- messages ------------------------------------------------------------------------ */

/* "path: reason" into msg, the path shortened from the left ("...") when the line
   would not hold both: the reason is what the reader needs whole. */
static void with_path(char *msg, node_status st, const char *path, const char *reason)
{
    size_t n = strlen(path), r = strlen(reason), room = NODE_MESSAGE_SIZE - 1;
    room = room > r + 2 ? room - r - 2 : 0;
    if (n > room && room > 3)
        node__msg(msg, st, "...%s: %s", path + n - (room - 3), reason);
    else
        node__msg(msg, st, "%s: %s", path, reason);
}

node_status node__io_say(char *msg, node_status st, const char *path, const char *fmt, ...)
{
    if (msg) {
        char reason[NODE_MESSAGE_SIZE];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        if (n < 0)
            reason[0] = '\0';
        if (path)
            with_path(msg, st, path, reason);
        else
            node__msg(msg, st, "%s", reason);
    }
    return st;
}
#define say node__io_say

/* ---- writing ---------------------------------------------------------------------- */

/* Saturating arithmetic for lengths computed from untrusted sizes. */
static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

uint64_t node__mlp_file_size(const node_mlp *m)
{
    uint64_t L = m->nlayers;
    return sat_add(sat_add(28, sat_mul(12, L)), sat_add(sat_mul(8, m->nparams), 4));
}

/* The pieces go through a small buffer, so that the sink sees few large writes. */
typedef struct out_buf {
    node__mlp_write_fn write;
    void *ctx;
    uint32_t crc;
    size_t n;
    node_status st;
    unsigned char b[4096];
} out_buf;

static void flush(out_buf *o)
{
    if (o->st == NODE_OK && o->n) {
        o->crc = node__crc32(o->crc, o->b, o->n);
        o->st = o->write(o->ctx, o->b, o->n);
    }
    o->n = 0;
}

/* Room for k more bytes in the buffer (k <= sizeof o->b). */
static unsigned char *room(out_buf *o, size_t k)
{
    if (o->n + k > sizeof o->b)
        flush(o);
    unsigned char *p = o->b + o->n;
    o->n += k;
    return p;
}

node_status node__mlp_serialize(const node_mlp *m, node__mlp_write_fn write, void *ctx)
{
    size_t L = m->nlayers;
    if (L > UINT32_MAX)
        return NODE_EINVAL;
    out_buf o;
    o.write = write;
    o.ctx = ctx;
    o.crc = 0;
    o.n = 0;
    o.st = NODE_OK;
    unsigned char *p = room(&o, FIXED_HEAD);
    memcpy(p, MAGIC, 8);
    node__put_u32(p + 8, VERSION);
    node__put_u32(p + 12, m->time_input ? 1u : 0u);
    node__put_u32(p + 16, (uint32_t)L);
    for (size_t k = 0; k <= L; k++)
        node__put_u64(room(&o, 8), (uint64_t)m->sizes[k]);
    for (size_t k = 0; k < L; k++)
        node__put_u32(room(&o, 4), (uint32_t)m->acts[k]);
    for (size_t i = 0; i < m->nparams && o.st == NODE_OK; i++) {
        uint64_t bits;
        memcpy(&bits, &m->theta[i], 8);
        node__put_u64(room(&o, 8), bits);
    }
    flush(&o);
    unsigned char crc[4];
    node__put_u32(crc, o.crc);
    return o.st == NODE_OK ? write(ctx, crc, 4) : o.st;
}

typedef struct mem_out {
    unsigned char *p;
    size_t n, cap;
} mem_out;

static node_status mem_write(void *ctx, const unsigned char *p, size_t n)
{
    mem_out *o = ctx;
    if (n > o->cap - o->n)   /* cannot happen: the length is exact */
        return NODE_EINVAL;
    memcpy(o->p + o->n, p, n);
    o->n += n;
    return NODE_OK;
}

node_status node__mlp_save_mem(const node_mlp *m, unsigned char **buf, size_t *len)
{
    uint64_t n = node__mlp_file_size(m);
    if (n > SIZE_MAX)
        return NODE_ENOMEM;
    mem_out o = { node__malloc((size_t)n), 0, (size_t)n };
    if (!o.p)
        return NODE_ENOMEM;
    node_status st = node__mlp_serialize(m, mem_write, &o);
    if (st != NODE_OK || o.n != n) {
        node__free(o.p);
        return st != NODE_OK ? st : NODE_EINVAL;
    }
    *buf = o.p;
    *len = o.n;
    return NODE_OK;
}

/* ---- parsing ----------------------------------------------------------------------- */

/* A source and the running CRC of what was read from it since the last rewind
   (internal.h). */
typedef node__reader in;

node_status node__read_crc(node__reader *r, unsigned char *buf, size_t n)
{
    node_status st = r->src->read(r->src->ctx, r->pos, buf, n, r->msg);
    if (st != NODE_OK)
        return st;
    r->pos += n;
    r->crc = node__crc32(r->crc, buf, n);
    return NODE_OK;
}

/* What the header says. */
typedef struct head {
    uint32_t flags;
    size_t L;
    uint64_t P;        /* parameters */
    uint64_t length;   /* the exact file length the header implies */
} head;

/* Read and check the header from the start of the source.  With sizes and acts
   (room for h->L + 1 and h->L entries, h from an earlier call) also store them,
   and insist on the same L, P and length as before (a file could change between
   the two reads).  Nothing is allocated. */
static node_status read_head(in *r, head *h, size_t *sizes, node_activation *acts)
{
    const node__mlp_src *s = r->src;
    const char *nm = s->name;
    r->pos = 0;
    r->crc = 0;
    if (s->size < FIXED_HEAD)
        return say(r->msg, NODE_EFORMAT, nm, "%llu bytes: too short for a model file",
                   (unsigned long long)s->size);
    unsigned char b[256];
    node_status st = node__read_crc(r, b, FIXED_HEAD);
    if (st != NODE_OK)
        return st;
    if (memcmp(b, MAGIC, 8) != 0)
        return say(r->msg, NODE_EFORMAT, nm, "not a libnode model file (no LIBNODE magic)");
    uint32_t version = node__get_u32(b + 8), flags = node__get_u32(b + 12), L = node__get_u32(b + 16);
    if (version != VERSION)
        return say(r->msg, NODE_EFORMAT, nm, "format version %lu; this libnode reads version %u",
                   (unsigned long)version, VERSION);
    if (flags & ~1u)
        return say(r->msg, NODE_EFORMAT, nm, "unknown flags 0x%lx", (unsigned long)flags);
    if (L == 0)
        return say(r->msg, NODE_EFORMAT, nm, "0 layers");
    uint64_t least = 32 + 28 * (uint64_t)L;   /* 28 + 12L + 8P + 4 with every P_k >= 2 */
    if (least > s->size)
        return say(r->msg, NODE_EFORMAT, nm,
                   "%llu bytes, but its header describes %lu layers needing at least %llu bytes",
                   (unsigned long long)s->size, (unsigned long)L, (unsigned long long)least);
    if (sizes && (L != h->L || flags != h->flags))
        return say(r->msg, NODE_EIO, nm, "changed while being read");

    /* The sizes, in pieces; P with saturation (a huge P cannot match the length). */
    uint64_t P = 0, prev = 0;
    for (size_t k = 0; k <= L; k += 32) {
        size_t n = L + 1 - k < 32 ? L + 1 - k : 32;
        if ((st = node__read_crc(r, b, 8 * n)) != NODE_OK)
            return st;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = node__get_u64(b + 8 * i);
            if (v == 0)
                return say(r->msg, NODE_EFORMAT, nm, "sizes[%zu] is 0", k + i);
            if (k + i > 0) {   /* layer k+i-1: (in + time + 1) × out */
                uint64_t cols = sat_add(prev, (k + i == 1 ? (flags & 1u) : 0) + 1);
                P = sat_add(P, sat_mul(cols, v));
            }
            if (sizes)
                sizes[k + i] = (size_t)v;   /* v <= P <= SIZE_MAX / 8: checked below */
            prev = v;
        }
    }
    uint64_t length = sat_add(sat_add(28, 12 * (uint64_t)L), sat_add(sat_mul(8, P), 4));
    if (sizes && (P != h->P || length != h->length))
        return say(r->msg, NODE_EIO, nm, "changed while being read");
    if (length != s->size) {
        if (length == UINT64_MAX)
            return say(r->msg, NODE_EFORMAT, nm,
                       "%llu bytes, but its header describes %lu layers needing more "
                       "than 2^64 bytes", (unsigned long long)s->size, (unsigned long)L);
        return say(r->msg, NODE_EFORMAT, nm,
                   "%llu bytes, but its header describes %lu layer%s needing %llu bytes",
                   (unsigned long long)s->size, (unsigned long)L, L == 1 ? "" : "s",
                   (unsigned long long)length);
    }
    if (P > SIZE_MAX / sizeof(double))
        return say(r->msg, NODE_ENOMEM, nm, "%llu parameters do not fit in memory",
                   (unsigned long long)P);

    for (size_t k = 0; k < L; k += 64) {
        size_t n = L - k < 64 ? L - k : 64;
        if ((st = node__read_crc(r, b, 4 * n)) != NODE_OK)
            return st;
        for (size_t i = 0; i < n; i++) {
            uint32_t a = node__get_u32(b + 4 * i);
            size_t ix = node__act_index((int64_t)a);
            if (ix == NODE__NACT)
                return say(r->msg, NODE_EFORMAT, nm, "acts[%zu] = %lu is not an activation",
                           k + i, (unsigned long)a);
            if (acts)
                acts[k + i] = node__act_registry[ix].value;
        }
    }
    h->flags = flags;
    h->L = L;
    h->P = P;
    h->length = length;
    return NODE_OK;
}

/* The parameters, read straight into theta (as bytes, then in place from
   little-endian to doubles), and the checksum. */
static node_status read_params(in *r, node_mlp *m)
{
    const char *nm = r->src->name;
    unsigned char *bytes = (unsigned char *)(void *)m->theta;
    size_t total = 8 * m->nparams;
    for (size_t off = 0; off < total;) {
        size_t n = total - off < ((size_t)1 << 20) ? total - off : (size_t)1 << 20;
        node_status st = node__read_crc(r, bytes + off, n);
        if (st != NODE_OK)
            return st;
        off += n;
    }
    for (size_t i = 0; i < m->nparams; i++) {
        uint64_t bits = node__get_u64(bytes + 8 * i);
        memcpy(&m->theta[i], &bits, 8);
    }
    uint32_t crc = r->crc;
    unsigned char c[4];
    node_status st = node__read_crc(r, c, 4);
    if (st != NODE_OK)
        return st;
    if (node__get_u32(c) != crc)
        return say(r->msg, NODE_EFORMAT, nm, "checksum mismatch");
    return NODE_OK;
}

node_status node__mlp_parse(const node__mlp_src *src, node_mlp **out, char *msg)
{
    in r = { src, 0, 0, msg };
    head h;
    /* First pass: the header alone decides whether the length is right. */
    node_status st = read_head(&r, &h, NULL, NULL);
    if (st != NODE_OK)
        return st;
    /* Second pass: the header again, kept; then the model.  The arrays are smaller
       than the model's own index block, which is smaller than the file. */
    size_t sizes_small[9], *sizes = sizes_small;
    node_activation acts_small[8], *acts = acts_small;
    if (h.L > 8) {
        sizes = node__malloc((h.L + 1) * sizeof *sizes);
        acts = node__malloc(h.L * sizeof *acts);
    }
    node_mlp *m = NULL;
    if (!sizes || !acts)
        st = say(msg, NODE_ENOMEM, src->name, "no memory for a header of %zu layers", h.L);
    else
        st = read_head(&r, &h, sizes, acts);
    if (st == NODE_OK) {
        st = node_mlp_create(&m, h.L, sizes, acts, (int)(h.flags & 1u));
        if (st != NODE_OK)   /* the header was checked: only NODE_ENOMEM is left */
            st = say(msg, st, src->name, "no memory for a model of %llu parameters",
                     (unsigned long long)h.P);
    }
    if (st == NODE_OK && m->nparams != h.P)   /* the same formula; kept as a guard */
        st = say(msg, NODE_EFORMAT, src->name, "parameter count mismatch");
    if (st == NODE_OK)
        st = read_params(&r, m);
    if (sizes != sizes_small)
        node__free(sizes);
    if (acts != acts_small)
        node__free(acts);
    if (st != NODE_OK) {
        node_mlp_free(m);
        return st;
    }
    *out = m;
    return NODE_OK;
}

/* ---- models in memory -------------------------------------------------------------- */

static node_status mem_read(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                            char *msg)
{
    (void)msg;
    memcpy(buf, (const unsigned char *)ctx + pos, n);   /* the parser stays in [0, size) */
    return NODE_OK;
}

node_status node__mlp_load_mem(const unsigned char *buf, size_t len, node_mlp **out,
                               char *msg)
{
    if (!out || (!buf && len))
        return node__msg(msg, NODE_EINVAL, "%s is NULL", out ? "buf" : "out");
    static const unsigned char none[1] = { 0 };
    node__mlp_src src = { mem_read, buf ? buf : none, len, NULL };
    return node__mlp_parse(&src, out, msg);
}
