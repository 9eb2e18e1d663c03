/* io.c — network files (net.h: node_net_save / node_net_load): k networks in one
 * versioned little-endian file with a CRC-32, saved atomically and loaded with the
 * checks of the MLP's files (src/nn/fileio.c does the files themselves).  The
 * parser walks every header before it allocates anything: the length the headers
 * imply must be the file's, and every layer must be one node_net_add_* accepts.
 *
 * Format, version 1 (all integers little-endian):
 *   0    8        magic "NODENET\x1a"
 *   8    4  u32   version = 1
 *   12   4  u32   flags = 0
 *   16   8  u64   k, networks (>= 1)
 *   then k networks, each:
 *        24       u64 c, h, w: the input sample (each >= 1)
 *        8        u64 L: layers
 *        48 L     a record per layer: u32 kind, u32 flags (bit 0 bias, bit 1 time;
 *                 dense and conv2d only), u64 v[5]: dense (out), conv2d (out_ch,
 *                 kh, kw, stride, pad), groupnorm (groups), act (the activation's
 *                 node_activation value), avgpool (), flatten (), resblock
 *                 (groups); kinds 1 .. 7 in that order; unused v are 0
 *        8        u64 P: parameters (node_net_nparams of the network so made)
 *        8 P      the parameters, IEEE-754 binary64, node_net_params' layout
 *   4  u32   CRC-32 (as zlib's crc32) of every byte before it.
 * A loaded network saves back to the same bytes.
 */
#include "net/net_internal.h"

#include <string.h>

static const unsigned char MAGIC[8] = { 'N', 'O', 'D', 'E', 'N', 'E', 'T', 0x1a };
#define VERSION 1u
#define HEAD 24u      /* magic, version, flags, k */
#define NETHEAD 32u   /* c, h, w, L */
#define REC 48u       /* one layer */

/* v entries each kind uses, and whether it takes the bias / time flags (by kind). */
static const int used_v[8] = { 0, 1, 5, 1, 1, 0, 0, 1 };

#define say node__io_say

/* ---- writing ------------------------------------------------------------------------ */

static uint64_t file_size(const node_net *const *nets, size_t k)
{
    uint64_t n = HEAD + 4;
    for (size_t i = 0; i < k; i++)
        n += NETHEAD + REC * (uint64_t)nets[i]->nlayers + 8 + 8 * (uint64_t)nets[i]->nparams;
    return n;
}

static unsigned char *put_net(unsigned char *p, const node_net *n)
{
    node__put_u64(p, n->c);
    node__put_u64(p + 8, n->h);
    node__put_u64(p + 16, n->w);
    node__put_u64(p + 24, n->nlayers);
    p += NETHEAD;
    for (size_t l = 0; l < n->nlayers; l++, p += REC) {
        const node__layer_spec *s = &n->layers[l];
        node__put_u32(p, s->kind);
        node__put_u32(p + 4, (s->bias ? 1u : 0u) | (s->time ? 2u : 0u));
        for (int i = 0; i < 5; i++)
            node__put_u64(p + 8 + 8 * i, s->v[i]);
    }
    node__put_u64(p, n->nparams);
    p += 8;
    for (size_t i = 0; i < n->nparams; i++, p += 8) {
        uint64_t bits;
        memcpy(&bits, &n->theta[i], 8);
        node__put_u64(p, bits);
    }
    return p;
}

node_status node__net_save_mem(const node_net *const *nets, size_t k, unsigned char **buf,
                               size_t *len)
{
    uint64_t n = file_size(nets, k);
    if (n > SIZE_MAX)
        return NODE_ENOMEM;
    unsigned char *b = node__malloc((size_t)n), *p = b;
    if (!b)
        return NODE_ENOMEM;
    memcpy(p, MAGIC, 8);
    node__put_u32(p + 8, VERSION);
    node__put_u32(p + 12, 0);
    node__put_u64(p + 16, k);
    p += HEAD;
    for (size_t i = 0; i < k; i++)
        p = put_net(p, nets[i]);
    node__put_u32(p, node__crc32(0, b, (size_t)(p - b)));
    *buf = b;
    *len = (size_t)n;
    return NODE_OK;
}

typedef struct net_set {
    const node_net *const *nets;
    size_t k;
} net_set;

static node_status net_serialize(const void *obj, node__write_fn write, void *wctx)
{
    const net_set *s = obj;
    unsigned char *b;
    size_t n;
    node_status st = node__net_save_mem(s->nets, s->k, &b, &n);
    if (st != NODE_OK)
        return st;
    st = write(wctx, b, n);
    node__free(b);
    return st;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct in {
    const node__src *src;
    uint64_t pos;
    uint32_t crc;
    char *msg;
} in;

/* n bytes from the current position; running CRC. */
static node_status get(in *r, unsigned char *buf, size_t n)
{
    const char *nm = r->src->name;
    if (r->src->size < 4 || n > r->src->size - 4 - r->pos)
        return say(r->msg, NODE_EFORMAT, nm, "%llu bytes: truncated (a field at byte %llu "
                   "runs past the checksum)", (unsigned long long)r->src->size,
                   (unsigned long long)r->pos);
    node_status st = r->src->read(r->src->ctx, r->pos, buf, n, r->msg);
    if (st != NODE_OK)
        return st;
    r->pos += n;
    r->crc = node__crc32(r->crc, buf, n);
    return NODE_OK;
}

/* The header of network i and its layers: checked, and (nets non-NULL) the network
   made; then its parameter count.  Without nets nothing is allocated and the
   parameters are skipped. */
static node_status read_net(in *r, size_t i, node_net **made)
{
    const char *nm = r->src->name;
    unsigned char b[REC];
    node_status st = get(r, b, NETHEAD);
    if (st != NODE_OK)
        return st;
    uint64_t c = node__get_u64(b), h = node__get_u64(b + 8), w = node__get_u64(b + 16);
    uint64_t L = node__get_u64(b + 24);
    char why[NODE_MESSAGE_SIZE];
    if (c > SIZE_MAX || h > SIZE_MAX || w > SIZE_MAX
        || node__net_shape_check((size_t)c, (size_t)h, (size_t)w, why) != NODE_OK)
        return say(r->msg, NODE_EFORMAT, nm, "network %zu: input %llu x %llu x %llu: %s", i,
                   (unsigned long long)c, (unsigned long long)h, (unsigned long long)w,
                   c > SIZE_MAX || h > SIZE_MAX || w > SIZE_MAX ? "too large" : why);
    if (L > (r->src->size - r->pos) / REC)
        return say(r->msg, NODE_EFORMAT, nm, "network %zu: %llu layers, more than the "
                   "%llu bytes left can hold", i, (unsigned long long)L,
                   (unsigned long long)(r->src->size - r->pos));
    node_net *n = NULL;
    /* The shape as the layers change it (the parameters counted) without a net. */
    size_t sc = (size_t)c, sh = (size_t)h, sw = (size_t)w, P = 0;
    if (made && (st = node_net_create(&n, sc, sh, sw, NULL)) != NODE_OK)
        return say(r->msg, st, nm, "no memory for network %zu", i);
    for (uint64_t l = 0; l < L && st == NODE_OK; l++) {
        if ((st = get(r, b, REC)) != NODE_OK)
            break;
        node__layer_spec s;
        memset(&s, 0, sizeof s);
        s.kind = node__get_u32(b);
        uint32_t fl = node__get_u32(b + 4);
        for (int v = 0; v < 5; v++)
            s.v[v] = node__get_u64(b + 8 + 8 * v);
        s.bias = (int)(fl & 1u);
        s.time = (int)(fl >> 1 & 1u);
        int known = s.kind >= 1 && s.kind <= 7;
        int unused = 0;
        for (int v = known ? used_v[s.kind] : 5; v < 5; v++)
            unused |= s.v[v] != 0;
        if (!known)
            st = say(r->msg, NODE_EFORMAT, nm, "network %zu, layer %llu: kind %lu is unknown",
                     i, (unsigned long long)l, (unsigned long)s.kind);
        else if ((fl & ~3u) || (fl && s.kind != NODE__LAYER_DENSE && s.kind != NODE__LAYER_CONV))
            st = say(r->msg, NODE_EFORMAT, nm, "network %zu, layer %llu: flags 0x%lx",
                     i, (unsigned long long)l, (unsigned long)fl);
        else if (unused)
            st = say(r->msg, NODE_EFORMAT, nm, "network %zu, layer %llu: unused fields "
                     "are not 0", i, (unsigned long long)l);
        else if (n) {
            if ((st = node__net_add(n, &s, why)) != NODE_OK)
                st = say(r->msg, st == NODE_ENOMEM ? st : NODE_EFORMAT, nm,
                         "network %zu, layer %llu: %s", i, (unsigned long long)l, why);
        } else {
            size_t oc, oh, ow, np;
            if (node__layer_plan(&s, sc, sh, sw, &oc, &oh, &ow, &np, why) != NODE_OK
                || !node__add_ok(P, np, &P) || P > SIZE_MAX / 32)
                st = say(r->msg, NODE_EFORMAT, nm, "network %zu, layer %llu: %s", i,
                         (unsigned long long)l, P > SIZE_MAX / 32 ? "too many parameters" : why);
            sc = oc, sh = oh, sw = ow;
        }
    }
    if (st == NODE_OK && (st = get(r, b, 8)) == NODE_OK) {
        uint64_t want = n ? n->nparams : P, got = node__get_u64(b);
        if (got != want)
            st = say(r->msg, NODE_EFORMAT, nm, "network %zu: %llu parameters, but its "
                     "layers have %llu", i, (unsigned long long)got, (unsigned long long)want);
        else if (!n && 8 * got > r->src->size - 4 - r->pos)
            st = say(r->msg, NODE_EFORMAT, nm, "%llu bytes: truncated (network %zu's %llu "
                     "parameters run past the checksum)", (unsigned long long)r->src->size,
                     i, (unsigned long long)got);
        else if (!n)
            r->pos += 8 * got;   /* first pass: skipped */
    }
    if (st == NODE_OK && n) {   /* the parameters, straight into theta */
        unsigned char *bytes = (unsigned char *)(void *)n->theta;
        st = get(r, bytes, 8 * n->nparams);
        for (size_t j = 0; st == NODE_OK && j < n->nparams; j++) {
            uint64_t bits = node__get_u64(bytes + 8 * j);
            memcpy(&n->theta[j], &bits, 8);
        }
    }
    if (st != NODE_OK) {
        node_net_free(n);
        return st;
    }
    if (made)
        *made = n;
    return NODE_OK;
}

static node_status read_all(in *r, node_net **out, size_t cap, size_t *k_out)
{
    const node__src *s = r->src;
    const char *nm = s->name;
    unsigned char b[HEAD];
    r->pos = 0;
    r->crc = 0;
    if (s->size < HEAD + 4)
        return say(r->msg, NODE_EFORMAT, nm, "%llu bytes: too short for a network file",
                   (unsigned long long)s->size);
    node_status st = get(r, b, HEAD);
    if (st != NODE_OK)
        return st;
    if (memcmp(b, MAGIC, 8) != 0)
        return say(r->msg, NODE_EFORMAT, nm, "not a libnode network file (no NODENET magic)");
    uint32_t version = node__get_u32(b + 8), flags = node__get_u32(b + 12);
    uint64_t k = node__get_u64(b + 16);
    if (version != VERSION)
        return say(r->msg, NODE_EFORMAT, nm, "format version %lu; this libnode reads version %u",
                   (unsigned long)version, VERSION);
    if (flags)
        return say(r->msg, NODE_EFORMAT, nm, "unknown flags 0x%lx", (unsigned long)flags);
    if (k == 0)
        return say(r->msg, NODE_EFORMAT, nm, "0 networks");
    if (k > cap)
        return say(r->msg, NODE_EFORMAT, nm, "%llu networks, room for %zu",
                   (unsigned long long)k, cap);
    size_t made = 0;
    for (size_t i = 0; i < k && st == NODE_OK; i++)
        if ((st = read_net(r, i, out ? &out[i] : NULL)) == NODE_OK)
            made++;
    if (st == NODE_OK && r->pos + 4 != s->size)
        st = say(r->msg, NODE_EFORMAT, nm, "%llu bytes, but its headers describe %llu",
                 (unsigned long long)s->size, (unsigned long long)(r->pos + 4));
    if (st == NODE_OK && out) {
        uint32_t crc = r->crc;
        unsigned char c[4];
        st = s->read(s->ctx, r->pos, c, 4, r->msg);
        if (st == NODE_OK && node__get_u32(c) != crc)
            st = say(r->msg, NODE_EFORMAT, nm, "checksum mismatch");
    }
    if (st != NODE_OK) {
        if (out)   /* the networks made before the failure */
            for (size_t j = 0; j < made; j++)
                node_net_free(out[j]);
        return st;
    }
    *k_out = (size_t)k;
    return NODE_OK;
}

/* Two passes: the headers alone (the length, every layer; nothing allocated), then
   the networks.  out receives them only on success. */
static node_status net_parse_into(const node__src *src, node_net **out, size_t cap,
                                  size_t *k, char *msg)
{
    in r = { src, 0, 0, msg };
    size_t k1;
    node_status st = read_all(&r, NULL, cap, &k1);
    if (st != NODE_OK)
        return st;
    node_net **tmp = node__malloc(k1 * sizeof *tmp);
    if (!tmp)
        return say(msg, NODE_ENOMEM, src->name, "no memory for %zu networks", k1);
    st = read_all(&r, tmp, cap, k);
    if (st == NODE_OK && *k != k1) {   /* the file changed between the passes */
        for (size_t j = 0; j < *k; j++)
            node_net_free(tmp[j]);
        st = say(msg, NODE_EIO, src->name, "changed while being read");
    }
    if (st == NODE_OK)
        memcpy(out, tmp, *k * sizeof *out);
    node__free(tmp);
    return st;
}

/* ---- in memory (tests, the fuzzer) ------------------------------------------------ */

static node_status mem_read(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                            char *msg)
{
    (void)msg;
    memcpy(buf, (const unsigned char *)ctx + pos, n);
    return NODE_OK;
}

node_status node__net_load_mem(const unsigned char *buf, size_t len, node_net **out,
                               size_t cap, size_t *k, char *msg)
{
    static const unsigned char none[1] = { 0 };
    node__src src = { mem_read, buf ? buf : none, buf ? len : 0, NULL };
    return net_parse_into(&src, out, cap, k, msg);
}

/* ---- files -------------------------------------------------------------------------- */

typedef struct load_ctx {
    node_net **out;
    size_t cap, k;
} load_ctx;

/* node__file_load hands its out pointer to the parser as it is: here it points at
   the context, which the parser fills in (k networks, not one object). */
static node_status net_parse(const node__src *src, void **out, char *msg)
{
    load_ctx *c = *out;
    return net_parse_into(src, c->out, c->cap, &c->k, msg);
}

node_status node_net_save(const node_net *const *nets, size_t k, const char *path,
                          node_error *err)
{
    char *msg = node__err_begin(err);
    if (!nets || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            nets ? "path" : "nets"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    if (k == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "k is 0"));
    for (size_t i = 0; i < k; i++)
        if (!nets[i])
            return node__err_end(err, node__msg(msg, NODE_EINVAL, "nets[%zu] is NULL", i));
    net_set s = { nets, k };
    return node__err_end(err, node__file_save(&s, net_serialize, path, msg));
}

node_status node_net_load(node_net **out, size_t cap, size_t *k_out, const char *path,
                          node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out || !k_out || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            !out ? "out" : !k_out ? "k_out" : "path"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    if (cap == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "cap is 0"));
    load_ctx c = { out, cap, 0 };
    void *obj = &c;
    node_status st = node__file_load(&obj, net_parse, path, msg);
    if (st == NODE_OK)
        *k_out = c.k;
    return node__err_end(err, st);
}
