/* io.c — MLP model files: a versioned little-endian binary format with a CRC-32,
 * written atomically (temporary file in the same folder, then rename) and read by
 * a loader that checks every size against the file length before allocating.
 *
 * Format, version 1 (all integers little-endian, L = number of layers):
 *   offset          size      field
 *   0               8         magic "LIBNODE\x1a"  ("\x1a" stops a text viewer)
 *   8               4  u32    version = 1
 *   12              4  u32    flags: bit 0 = time input; other bits must be 0
 *   16              4  u32    L (>= 1)
 *   20              8(L+1)    u64 sizes[0..L], each >= 1
 *   20+8(L+1)       4L        u32 activations (node_activation values)
 *   H = 28+12L      8P        parameters, IEEE-754 binary64, the node_mlp_params
 *                             layout, P = Σ_k (sizes[k] + [k=0]·time + 1) sizes[k+1]
 *   H+8P            4  u32    CRC-32 (IEEE 802.3, as zlib's crc32) of bytes [0, H+8P)
 * The file is exactly H + 8P + 4 bytes long.
 */
#include "nn/nn_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* ---- little-endian fields --------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- serialization ------------------------------------------------------------------ */

node_status node__mlp_save_mem(const node_mlp *m, unsigned char **buf, size_t *len)
{
    size_t L = m->nlayers;
    if (L > UINT32_MAX)
        return NODE_EINVAL;
    /* The mlp exists, so its parameters fit in memory; the header is small. */
    size_t head = FIXED_HEAD + 8 * (L + 1) + 4 * L;
    size_t n = head + 8 * m->nparams + 4;
    unsigned char *p = node__malloc(n);
    if (!p)
        return NODE_ENOMEM;
    memcpy(p, MAGIC, 8);
    put_u32(p + 8, VERSION);
    put_u32(p + 12, m->time_input ? 1u : 0u);
    put_u32(p + 16, (uint32_t)L);
    for (size_t k = 0; k <= L; k++)
        put_u64(p + FIXED_HEAD + 8 * k, (uint64_t)m->sizes[k]);
    for (size_t k = 0; k < L; k++)
        put_u32(p + FIXED_HEAD + 8 * (L + 1) + 4 * k, (uint32_t)m->acts[k]);
    for (size_t i = 0; i < m->nparams; i++) {
        uint64_t bits;
        memcpy(&bits, &m->theta[i], 8);
        put_u64(p + head + 8 * i, bits);
    }
    put_u32(p + n - 4, node__crc32(0, p, n - 4));
    *buf = p;
    *len = n;
    return NODE_OK;
}

node_status node__mlp_load_mem(const unsigned char *buf, size_t len, node_mlp **out)
{
    if (!out || (!buf && len))
        return NODE_EINVAL;
    if (len < FIXED_HEAD + 8 + 4 || memcmp(buf, MAGIC, 8) != 0)
        return NODE_EFORMAT;
    if (get_u32(buf + 8) != VERSION)
        return NODE_EFORMAT;
    uint32_t flags = get_u32(buf + 12);
    if (flags & ~1u)
        return NODE_EFORMAT;
    uint64_t L = get_u32(buf + 16);
    /* 12 bytes per layer plus the fixed parts must fit in the file: bounds L by len. */
    if (L == 0 || L > (len - FIXED_HEAD - 8 - 4) / 12)
        return NODE_EFORMAT;
    size_t head = FIXED_HEAD + 8 * ((size_t)L + 1) + 4 * (size_t)L;
    if (get_u32(buf + len - 4) != node__crc32(0, buf, len - 4))
        return NODE_EFORMAT;

    /* Parameter count with overflow checks; every size is bounded by the file. */
    size_t avail = (len - head - 4) / 8, P = 0;
    if ((len - head - 4) % 8 != 0)
        return NODE_EFORMAT;
    for (size_t k = 0; k < L; k++) {
        uint64_t in = get_u64(buf + FIXED_HEAD + 8 * k);
        uint64_t o = get_u64(buf + FIXED_HEAD + 8 * (k + 1));
        if (in == 0 || o == 0 || in > avail || o > avail)
            return NODE_EFORMAT;
        uint64_t cols = in + (k == 0 ? (flags & 1u) : 0) + 1;
        if (o > avail / cols || o * cols > avail - P)
            return NODE_EFORMAT;
        P += (size_t)(o * cols);
    }
    if (P != avail)
        return NODE_EFORMAT;

    size_t sizes_small[9], *sizes = sizes_small;
    node_activation acts_small[8], *acts = acts_small;
    if (L > 8) {   /* bounded by the file length, checked above */
        sizes = node__malloc(((size_t)L + 1) * sizeof *sizes);
        acts = node__malloc((size_t)L * sizeof *acts);
    }
    node_status st = NODE_ENOMEM;
    node_mlp *m = NULL;
    if (!sizes || !acts)
        goto done;
    st = NODE_EFORMAT;
    for (size_t k = 0; k <= L; k++)
        sizes[k] = (size_t)get_u64(buf + FIXED_HEAD + 8 * k);
    for (size_t k = 0; k < L; k++) {
        uint32_t a = get_u32(buf + FIXED_HEAD + 8 * ((size_t)L + 1) + 4 * k);
        if (a > (uint32_t)NODE_ACT_SILU)
            goto done;
        acts[k] = (node_activation)a;
    }
    st = node_mlp_create(&m, (size_t)L, sizes, acts, (int)(flags & 1u));
    if (st != NODE_OK) {
        st = st == NODE_ENOMEM ? NODE_ENOMEM : NODE_EFORMAT;
        goto done;
    }
    if (m->nparams != P) {   /* cannot happen: the same formula; kept as a guard */
        node_mlp_free(m);
        st = NODE_EFORMAT;
        goto done;
    }
    for (size_t i = 0; i < P; i++) {
        uint64_t bits = get_u64(buf + head + 8 * i);
        memcpy(&m->theta[i], &bits, 8);
    }
    *out = m;
    st = NODE_OK;
done:
    if (sizes != sizes_small)
        node__free(sizes);
    if (acts != acts_small)
        node__free(acts);
    return st;
}

/* ---- files ------------------------------------------------------------------------ */

/* Read all of f into a new buffer; grows by doubling, so at most twice the file. */
static node_status read_all(FILE *f, unsigned char **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    unsigned char *p = node__malloc(cap);
    if (!p)
        return NODE_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                node__free(p);
                return NODE_ENOMEM;
            }
            unsigned char *q = node__realloc(p, cap * 2);
            if (!q) {
                node__free(p);
                return NODE_ENOMEM;
            }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n < cap) {
            if (ferror(f)) {
                node__free(p);
                return NODE_EIO;
            }
            if (feof(f))
                break;
        }
    }
    *buf = p;
    *len = n;
    return NODE_OK;
}

node_status node_mlp_load(node_mlp **out, const char *path)
{
    if (!out || !path)
        return NODE_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NODE_EIO;
    unsigned char *buf = NULL;
    size_t len = 0;
    node_status st = read_all(f, &buf, &len);
    if (fclose(f) != 0 && st == NODE_OK)
        st = NODE_EIO;
    if (st == NODE_OK)
        st = node__mlp_load_mem(buf, len, out);
    node__free(buf);
    return st;
}

/* A name for the temporary file: path + ".tmp" + 16 hex digits mixed from the
   clock, the time, a stack address and the attempt number (no global state). */
static void temp_name(char *name, const char *path, size_t plen, unsigned attempt)
{
    uint64_t z = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20)
               ^ (uint64_t)(uintptr_t)&z ^ ((uint64_t)attempt << 40);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    memcpy(name, path, plen);
    memcpy(name + plen, ".tmp", 4);
    for (int i = 0; i < 16; i++)
        name[plen + 4 + i] = "0123456789abcdef"[(z >> (4 * i)) & 15u];
    name[plen + 20] = '\0';
}

node_status node_mlp_save(const node_mlp *m, const char *path)
{
    if (!m || !path || !*path)
        return NODE_EINVAL;
    unsigned char *buf;
    size_t len;
    node_status st = node__mlp_save_mem(m, &buf, &len);
    if (st != NODE_OK)
        return st;
    size_t plen = strlen(path);
    char *name = plen < SIZE_MAX - 32 ? node__malloc(plen + 32) : NULL;
    if (!name) {
        node__free(buf);
        return NODE_ENOMEM;
    }
    FILE *f = NULL;
    for (unsigned attempt = 0; attempt < 64 && !f; attempt++) {
        temp_name(name, path, plen, attempt);
        FILE *probe = fopen(name, "rb");
        if (probe) {               /* taken: try another name */
            fclose(probe);
            continue;
        }
        /* "x" (C11, and glibc in any mode) refuses an existing file; a C99 library
           that rejects the mode gets the probe above and a plain "wb". */
        f = fopen(name, "wbx");
        if (!f)
            f = fopen(name, "wb");
        if (!f)
            break;                 /* e.g. the folder does not exist */
    }
    st = NODE_EIO;
    if (f) {
        bool ok = fwrite(buf, 1, len, f) == len;
        ok = fflush(f) == 0 && ok;
        ok = !ferror(f) && ok;
        ok = fclose(f) == 0 && ok;
        if (ok && rename(name, path) == 0)
            st = NODE_OK;
        else
            remove(name);
    }
    node__free(name);
    node__free(buf);
    return st;
}
