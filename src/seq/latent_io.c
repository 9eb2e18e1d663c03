/* latent_io.c — latent ODE model files: the format, its writer and its parser, saved
 * and loaded through the crash-safe file layer of nn/fileio.c (node__file_save /
 * node__file_load: the guarantees of node_mlp_save / node_mlp_load).  The conventions
 * of the MLP's format (nn/io.c): little-endian, exact length, CRC-32 at the end; the
 * header alone decides the length, before anything is allocated.
 *
 * Format, version 1:
 *   offset   size   field
 *   0        8      magic "NODELAT\x1a"
 *   8        4 u32  version = 1
 *   12       4 u32  cell kind (node_cell_kind: 1 = NODE_CELL_TANH, 2 = NODE_CELL_GRU)
 *   16       8 u64  obs_dim      (each of the five sizes >= 1)
 *   24       8 u64  latent_dim
 *   32       8 u64  rnn_hidden
 *   40       8 u64  dyn_hidden
 *   48       8 u64  dec_hidden
 *   56       8 f64  obs_std (IEEE-754 binary64; positive, finite)
 *   64       8 u64  P, the parameter count the sizes imply (seq.h's layout)
 *   72       8P     θ, binary64, the node_latent_params layout
 *   72+8P    4 u32  CRC-32 (IEEE 802.3, as zlib's crc32) of bytes [0, 72+8P)
 * The file is exactly 76 + 8P bytes long.
 */
#include "seq/latent.h"

#include <math.h>
#include <string.h>

static const unsigned char MAGIC[8] = { 'N', 'O', 'D', 'E', 'L', 'A', 'T', 0x1a };
#define VERSION 1u
#define HEAD 72u

#define say node__io_say

/* ---- writing ---------------------------------------------------------------------- */

/* The header, then θ through a 4 KiB buffer (few large writes), then the CRC. */
static node_status serialize(const void *obj, node__write_fn write, void *wctx)
{
    const node_latent *m = obj;
    unsigned char b[4096];
    memcpy(b, MAGIC, 8);
    node__put_u32(b + 8, VERSION);
    node__put_u32(b + 12, (uint32_t)m->cfg.rnn_cell);
    node__put_u64(b + 16, m->cfg.obs_dim);
    node__put_u64(b + 24, m->cfg.latent_dim);
    node__put_u64(b + 32, m->cfg.rnn_hidden);
    node__put_u64(b + 40, m->cfg.dyn_hidden);
    node__put_u64(b + 48, m->cfg.dec_hidden);
    uint64_t bits;
    memcpy(&bits, &m->cfg.obs_std, 8);
    node__put_u64(b + 56, bits);
    node__put_u64(b + 64, (uint64_t)m->np);
    size_t n = HEAD;
    uint32_t crc = 0;
    node_status st = NODE_OK;
    for (size_t i = 0; i < m->np && st == NODE_OK; i++) {
        if (n + 8 > sizeof b) {
            crc = node__crc32(crc, b, n);
            st = write(wctx, b, n);
            n = 0;
        }
        memcpy(&bits, &m->theta[i], 8);
        node__put_u64(b + n, bits);
        n += 8;
    }
    if (st != NODE_OK)
        return st;
    crc = node__crc32(crc, b, n);
    if (n + 4 > sizeof b) {
        if ((st = write(wctx, b, n)) != NODE_OK)
            return st;
        n = 0;
    }
    node__put_u32(b + n, crc);
    return write(wctx, b, n + 4);
}

/* ---- parsing --------------------------------------------------------------------------- */

static node_status get(const node__src *src, uint64_t pos, unsigned char *buf, size_t n,
                       uint32_t *crc, char *msg)
{
    node_status st = src->read(src->ctx, pos, buf, n, msg);
    if (st == NODE_OK)
        *crc = node__crc32(*crc, buf, n);
    return st;
}

static node_status parse(const node__src *src, void **out, char *msg)
{
    const char *nm = src->name;
    if (src->size < HEAD)
        return say(msg, NODE_EFORMAT, nm, "%llu bytes: too short for a latent ODE file",
                   (unsigned long long)src->size);
    unsigned char h[HEAD];
    uint32_t crc = 0;
    node_status st = get(src, 0, h, HEAD, &crc, msg);
    if (st != NODE_OK)
        return st;
    if (memcmp(h, MAGIC, 8) != 0)
        return say(msg, NODE_EFORMAT, nm, "not a libnode latent ODE file (no NODELAT magic)");
    uint32_t version = node__get_u32(h + 8), kind = node__get_u32(h + 12);
    if (version != VERSION)
        return say(msg, NODE_EFORMAT, nm, "format version %lu; this libnode reads version %u",
                   (unsigned long)version, VERSION);
    if (kind != (uint32_t)NODE_CELL_TANH && kind != (uint32_t)NODE_CELL_GRU)
        return say(msg, NODE_EFORMAT, nm, "cell kind %lu is not one this libnode knows",
                   (unsigned long)kind);
    static const char *const names[5] = { "obs_dim", "latent_dim", "rnn_hidden",
                                          "dyn_hidden", "dec_hidden" };
    uint64_t v[5];
    for (int k = 0; k < 5; k++) {
        v[k] = node__get_u64(h + 16 + 8 * k);
        if (v[k] == 0)
            return say(msg, NODE_EFORMAT, nm, "%s is 0", names[k]);
    }
    node_latent_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.rnn_cell = kind;
    cfg.obs_dim = v[0];
    cfg.latent_dim = v[1];
    cfg.rnn_hidden = v[2];
    cfg.dyn_hidden = v[3];
    cfg.dec_hidden = v[4];
    uint64_t bits = node__get_u64(h + 56);
    memcpy(&cfg.obs_std, &bits, 8);
    if (!(cfg.obs_std > 0) || !isfinite(cfg.obs_std))
        return say(msg, NODE_EFORMAT, nm, "obs_std = %g is not positive and finite",
                   cfg.obs_std);
    uint64_t P = node__latent_count(&cfg), Pfile = node__get_u64(h + 64);
    if (P != Pfile)
        return say(msg, NODE_EFORMAT, nm,
                   "the header counts %llu parameters, but its sizes imply %llu",
                   (unsigned long long)Pfile, (unsigned long long)P);
    uint64_t length = P > (UINT64_MAX - HEAD - 4) / 8 ? UINT64_MAX : HEAD + 8 * P + 4;
    if (length != src->size)
        return say(msg, NODE_EFORMAT, nm,
                   "%llu bytes, but its header describes %llu parameters needing %llu bytes",
                   (unsigned long long)src->size, (unsigned long long)P,
                   (unsigned long long)length);

    node_latent *m = NULL;
    node_error e;
    st = node_latent_create(&m, &cfg, &e);
    if (st != NODE_OK)   /* the header was checked: memory is what is left */
        return say(msg, st, nm, "no memory for a latent ODE of %llu parameters (%s)",
                   (unsigned long long)P, e.message);
    /* θ straight into the model, as bytes, then in place from little-endian. */
    unsigned char *bytes = (unsigned char *)(void *)m->theta;
    size_t total = 8 * m->np;
    for (size_t off = 0; off < total && st == NODE_OK;) {
        size_t k = total - off < ((size_t)1 << 20) ? total - off : (size_t)1 << 20;
        st = get(src, HEAD + off, bytes + off, k, &crc, msg);
        off += k;
    }
    if (st == NODE_OK) {
        for (size_t i = 0; i < m->np; i++) {
            uint64_t w = node__get_u64(bytes + 8 * i);
            memcpy(&m->theta[i], &w, 8);
        }
        uint32_t want = crc;
        unsigned char c[4];
        st = get(src, HEAD + total, c, 4, &crc, msg);
        if (st == NODE_OK && node__get_u32(c) != want)
            st = say(msg, NODE_EFORMAT, nm, "checksum mismatch");
    }
    if (st != NODE_OK) {
        node_latent_free(m);
        return st;
    }
    *out = m;
    return NODE_OK;
}

/* ---- the public calls ---------------------------------------------------------------- */

node_status node_latent_save(const node_latent *m, const char *path, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!m || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL", m ? "path" : "m"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    return node__err_end(err, node__file_save(m, serialize, path, msg));
}

node_status node_latent_load(node_latent **out, const char *path, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            out ? "path" : "out"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    void *m = NULL;
    node_status st = node__file_load(&m, parse, path, msg);
    if (st == NODE_OK)
        *out = m;
    return node__err_end(err, st);
}

/* ---- models in memory (tests) ------------------------------------------------------------ */

static node_status mem_read(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                            char *msg)
{
    (void)msg;
    memcpy(buf, (const unsigned char *)ctx + pos, n);   /* the parser stays in [0, size) */
    return NODE_OK;
}

node_status node__latent_load_mem(const unsigned char *buf, size_t len, node_latent **out,
                                  char *msg)
{
    static const unsigned char none[1] = { 0 };
    node__src src = { mem_read, buf ? buf : none, len, NULL };
    void *m = NULL;
    node_status st = parse(&src, &m, msg);
    if (st == NODE_OK)
        *out = m;
    return st;
}
