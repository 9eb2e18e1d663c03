/* gunzip.c — see gunzip.h.  The inflate follows RFC 1951 (blocks, canonical Huffman
 * codes, the length/distance tables) in the manner of Mark Adler's puff.c, with a 10-bit
 * lookup table in front of the bit-by-bit canonical decode for speed; the gzip wrapper
 * follows RFC 1952 (header flags, CRC-32 of the data, ISIZE = its length mod 2^32).
 */
#include "gunzip.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ex_say(char *msg, size_t msgn, const char *name, const char *fmt, ...)
{
    if (!msg || !msgn)
        return;
    int k = name ? snprintf(msg, msgn, "%s: ", name) : 0;
    if (k < 0 || (size_t)k >= msgn)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, msgn - (size_t)k, fmt, ap);
    va_end(ap);
}

/* ---- CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, as gzip) ---------------- */

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {   /* idempotent: racing threads would write the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- inflate (RFC 1951) ------------------------------------------------------------ */

#define MAXBITS 15     /* longest code */
#define FASTBITS 10    /* lookup table width */

typedef struct huff {
    uint16_t count[MAXBITS + 1];    /* codes of each length (count[0]: unused symbols) */
    uint16_t symbol[288];           /* symbols in canonical order */
    uint16_t fast[1u << FASTBITS];  /* next FASTBITS bits → symbol << 4 | length; 0: slow */
} huff;

typedef struct inflater {
    const unsigned char *in;
    size_t n, pos;          /* input and the next byte to load */
    uint64_t bb;            /* bit buffer, the next bit in bit 0 */
    unsigned bc;            /* bits in bb */
    unsigned char *out;
    size_t len, cap;        /* output so far, allocated */
    const char *why;        /* the error: a static string */
    int nomem;
} inflater;

static void refill(inflater *s)
{
    while (s->bc <= 56 && s->pos < s->n) {
        s->bb |= (uint64_t)s->in[s->pos++] << s->bc;
        s->bc += 8;
    }
}

/* k <= 32 bits, LSB first; -1 when the input ends first. */
static long bits(inflater *s, unsigned k)
{
    refill(s);
    if (s->bc < k) {
        s->why = "truncated deflate data";
        return -1;
    }
    long v = (long)(s->bb & ((1ull << k) - 1));
    s->bb >>= k;
    s->bc -= k;
    return v;
}

/* Give back the whole bytes still in the bit buffer (after dropping the partial one). */
static void align_to_byte(inflater *s)
{
    s->bb >>= s->bc & 7;
    s->bc -= s->bc & 7;
    s->pos -= s->bc / 8;
    s->bb = 0;
    s->bc = 0;
}

/* Build the canonical code of n symbols from their lengths.  0; -1 for an
   over-subscribed code or an incomplete one, unless allow_single and it is a single
   code of length 1 (zlib's rule, for a block's distance code). */
static int build(huff *h, const unsigned char *length, int n, int allow_single)
{
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++)
        h->count[length[i]]++;
    if (h->count[0] == n) {   /* no codes: every decode fails */
        memset(h->fast, 0, sizeof h->fast);
        return 0;
    }
    int left = 1;
    for (int len = 1; len <= MAXBITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0)
            return -1;
    }
    if (left > 0 && !(allow_single && n - h->count[0] == 1 && h->count[1] == 1))
        return -1;
    uint16_t offs[MAXBITS + 2];
    offs[1] = 0;
    for (int len = 1; len <= MAXBITS; len++)
        offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    for (int i = 0; i < n; i++)
        if (length[i])
            h->symbol[offs[length[i]]++] = (uint16_t)i;
    /* The lookup table: codes are sent most significant bit first, so the table is
       indexed by the bit-reversed code, every completion of the free high bits. */
    memset(h->fast, 0, sizeof h->fast);
    unsigned code = 0, k = 0;
    for (unsigned len = 1; len <= MAXBITS; len++, code <<= 1)
        for (unsigned j = 0; j < h->count[len]; j++, code++, k++) {
            if (len > FASTBITS)
                continue;
            unsigned rev = 0;
            for (unsigned b = 0; b < len; b++)
                rev |= ((code >> b) & 1u) << (len - 1 - b);
            for (unsigned f = rev; f < (1u << FASTBITS); f += 1u << len)
                h->fast[f] = (uint16_t)(h->symbol[k] << 4 | len);
        }
    return 0;
}

/* The next symbol, or -1 (s->why says why). */
static int decode(inflater *s, const huff *h)
{
    refill(s);
    unsigned e = h->fast[s->bb & ((1u << FASTBITS) - 1)];
    if (e && (e & 15) <= s->bc) {
        s->bb >>= e & 15;
        s->bc -= e & 15;
        return (int)(e >> 4);
    }
    int code = 0, first = 0, index = 0;   /* canonical decode, one bit at a time */
    for (int len = 1; len <= MAXBITS; len++) {
        if (s->bc == 0) {
            s->why = "truncated deflate data";
            return -1;
        }
        code |= (int)(s->bb & 1);
        s->bb >>= 1;
        s->bc--;
        int count = h->count[len];
        if (code - count < first)
            return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    s->why = "invalid deflate data (a code that the block's Huffman table does not have)";
    return -1;
}

static int reserve(inflater *s, size_t more)
{
    if (s->cap - s->len >= more)
        return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap - s->len < more) {
        if (cap > SIZE_MAX / 2) {
            s->nomem = 1;
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(s->out, cap);
    if (!p) {
        s->nomem = 1;
        return -1;
    }
    s->out = p;
    s->cap = cap;
    return 0;
}

static const uint16_t len_base[29] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27,
                                       31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
                                       227, 258 };
static const uint8_t len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3,
                                       3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t dist_base[30] = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
                                        193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                        4097, 6145, 8193, 12289, 16385, 24577 };
static const uint8_t dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
                                        8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

/* The literal/length and distance symbols of one compressed block, to its end code. */
static int codes(inflater *s, const huff *lencode, const huff *distcode)
{
    for (;;) {
        int sym = decode(s, lencode);
        if (sym < 0)
            return -1;
        if (sym < 256) {
            if (reserve(s, 1))
                return -1;
            s->out[s->len++] = (unsigned char)sym;
            continue;
        }
        if (sym == 256)
            return 0;
        sym -= 257;
        if (sym >= 29) {
            s->why = "invalid deflate data (length code 286 or 287)";
            return -1;
        }
        long e = bits(s, len_extra[sym]);
        if (e < 0)
            return -1;
        size_t len = len_base[sym] + (size_t)e;
        int dsym = decode(s, distcode);
        if (dsym < 0)
            return -1;
        if (dsym >= 30) {
            s->why = "invalid deflate data (distance code 30 or 31)";
            return -1;
        }
        e = bits(s, dist_extra[dsym]);
        if (e < 0)
            return -1;
        size_t dist = dist_base[dsym] + (size_t)e;
        if (dist > s->len) {
            s->why = "invalid deflate data (a distance before the start of the data)";
            return -1;
        }
        if (reserve(s, len))
            return -1;
        unsigned char *o = s->out + s->len;
        const unsigned char *from = o - dist;
        for (size_t i = 0; i < len; i++)   /* byte by byte: the copy may overlap */
            o[i] = from[i];
        s->len += len;
    }
}

static int stored(inflater *s)
{
    align_to_byte(s);
    if (s->n - s->pos < 4) {
        s->why = "truncated deflate data (a stored block's header)";
        return -1;
    }
    const unsigned char *p = s->in + s->pos;
    unsigned len = p[0] | (unsigned)p[1] << 8, nlen = p[2] | (unsigned)p[3] << 8;
    if (len != (~nlen & 0xFFFFu)) {
        s->why = "invalid deflate data (a stored block's length and its complement differ)";
        return -1;
    }
    s->pos += 4;
    if (s->n - s->pos < len) {
        s->why = "truncated deflate data (inside a stored block)";
        return -1;
    }
    if (reserve(s, len))
        return -1;
    memcpy(s->out + s->len, s->in + s->pos, len);
    s->len += len;
    s->pos += len;
    return 0;
}

static int fixed(inflater *s)
{
    static huff lencode, distcode;
    static int ready;
    if (!ready) {   /* RFC 1951 3.2.6; idempotent */
        unsigned char l[288];
        for (int i = 0; i < 288; i++)
            l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
        build(&lencode, l, 288, 0);
        for (int i = 0; i < 32; i++)   /* 30 and 31 are refused when decoded */
            l[i] = 5;
        build(&distcode, l, 32, 0);
        ready = 1;
    }
    return codes(s, &lencode, &distcode);
}

static int dynamic(inflater *s, huff *lencode, huff *distcode)
{
    static const uint8_t order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13,
                                       2, 14, 1, 15 };
    long nlen = bits(s, 5), ndist = bits(s, 5), ncode = bits(s, 4);
    if (ncode < 0 || ndist < 0 || nlen < 0)
        return -1;
    nlen += 257;
    ndist += 1;
    ncode += 4;
    if (nlen > 286 || ndist > 30) {
        s->why = "invalid deflate data (more than 286 length or 30 distance codes)";
        return -1;
    }
    unsigned char lengths[320];
    memset(lengths, 0, 19);
    for (long i = 0; i < ncode; i++) {
        long v = bits(s, 3);
        if (v < 0)
            return -1;
        lengths[order[i]] = (unsigned char)v;
    }
    if (build(lencode, lengths, 19, 0)) {
        s->why = "invalid deflate data (a bad code-length code)";
        return -1;
    }
    long i = 0;
    while (i < nlen + ndist) {
        int sym = decode(s, lencode);
        if (sym < 0)
            return -1;
        if (sym < 16) {
            lengths[i++] = (unsigned char)sym;
            continue;
        }
        unsigned char v = 0;
        long rep;
        if (sym == 16) {
            if (i == 0) {
                s->why = "invalid deflate data (a repeat with no length before it)";
                return -1;
            }
            v = lengths[i - 1];
            rep = bits(s, 2);
            rep = rep < 0 ? -1 : 3 + rep;
        } else if (sym == 17) {
            rep = bits(s, 3);
            rep = rep < 0 ? -1 : 3 + rep;
        } else {
            rep = bits(s, 7);
            rep = rep < 0 ? -1 : 11 + rep;
        }
        if (rep < 0)
            return -1;
        if (i + rep > nlen + ndist) {
            s->why = "invalid deflate data (code lengths repeated past their count)";
            return -1;
        }
        while (rep--)
            lengths[i++] = v;
    }
    if (lengths[256] == 0) {
        s->why = "invalid deflate data (no end-of-block code)";
        return -1;
    }
    if (build(lencode, lengths, (int)nlen, 0)) {
        s->why = "invalid deflate data (an over-subscribed or incomplete literal/length code)";
        return -1;
    }
    if (build(distcode, lengths + nlen, (int)ndist, 1)) {
        s->why = "invalid deflate data (an over-subscribed or incomplete distance code)";
        return -1;
    }
    return codes(s, lencode, distcode);
}

/* Inflate the raw deflate stream at s->in + s->pos onward; s->pos ends just after it. */
static int inflate_stream(inflater *s)
{
    huff *tabs = malloc(2 * sizeof *tabs);
    if (!tabs) {
        s->nomem = 1;
        return -1;
    }
    int last;
    do {
        long hdr = bits(s, 3);
        if (hdr < 0)
            goto fail;
        last = (int)(hdr & 1);
        int type = (int)(hdr >> 1);
        int r = type == 0 ? stored(s) : type == 1 ? fixed(s) : type == 2 ? dynamic(s, &tabs[0], &tabs[1]) : -1;
        if (type == 3)
            s->why = "invalid deflate data (block type 3)";
        if (r)
            goto fail;
    } while (!last);
    align_to_byte(s);
    free(tabs);
    return 0;
fail:
    free(tabs);
    return -1;
}

/* ---- gzip (RFC 1952) ------------------------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int ex_gunzip(const unsigned char *in, size_t n, unsigned char **out, size_t *outn,
              const char *name, char *msg, size_t msgn)
{
    inflater s;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.n = n;
    /* A first guess at the size, from the last member's ISIZE (never trusted: a
       stream grows its buffer as it goes; deflate expands at most ~1032:1). */
    if (n >= 18) {
        uint32_t isize = le32(in + n - 4);
        if (isize / 1032 <= n && reserve(&s, isize ? isize : 1))
            goto nomem;
    }
    size_t member = 0;
    do {
        const size_t start = s.pos;
        const unsigned char *h = in + start;
        size_t avail = n - start;
        if (avail < 2 || h[0] != 0x1f || h[1] != 0x8b) {
            if (member == 0)
                ex_say(msg, msgn, name, "not a gzip file (it starts with 0x%02x 0x%02x, not "
                    "0x1f 0x8b)", avail ? h[0] : 0, avail > 1 ? h[1] : 0);
            else
                ex_say(msg, msgn, name, "%zu bytes of trailing data after the gzip stream", avail);
            goto bad;
        }
        if (avail < 10) {
            ex_say(msg, msgn, name, "truncated gzip header (%zu bytes of 10)", avail);
            goto bad;
        }
        if (h[2] != 8) {
            ex_say(msg, msgn, name, "gzip compression method %u is not deflate (8)", h[2]);
            goto bad;
        }
        const unsigned flg = h[3];
        if (flg & 0xE0) {
            ex_say(msg, msgn, name, "gzip header has reserved flag bits set (0x%02x)", flg);
            goto bad;
        }
        size_t p = start + 10;
        if (flg & 4) {   /* FEXTRA */
            if (n - p < 2 || n - p - 2 < (size_t)(in[p] | in[p + 1] << 8)) {
                ex_say(msg, msgn, name, "truncated gzip header (its extra field)");
                goto bad;
            }
            p += 2 + (size_t)(in[p] | in[p + 1] << 8);
        }
        for (unsigned f = 8; f <= 16; f <<= 1)   /* FNAME, FCOMMENT: zero-terminated */
            if (flg & f) {
                while (p < n && in[p])
                    p++;
                if (p == n) {
                    ex_say(msg, msgn, name, "truncated gzip header (its %s)",
                        f == 8 ? "file name" : "comment");
                    goto bad;
                }
                p++;
            }
        if (flg & 2) {   /* FHCRC: the low 16 bits of the CRC-32 of the header */
            if (n - p < 2) {
                ex_say(msg, msgn, name, "truncated gzip header (its CRC-16)");
                goto bad;
            }
            unsigned want = in[p] | (unsigned)in[p + 1] << 8;
            if ((crc32_update(0, in + start, p - start) & 0xFFFFu) != want) {
                ex_say(msg, msgn, name, "gzip header CRC mismatch");
                goto bad;
            }
            p += 2;
        }
        s.pos = p;
        const size_t from = s.len;
        if (inflate_stream(&s)) {
            if (s.nomem)
                goto nomem;
            ex_say(msg, msgn, name, "%s (member %zu, compressed byte %zu)", s.why, member + 1,
                s.pos);
            goto bad;
        }
        if (n - s.pos < 8) {
            ex_say(msg, msgn, name, "truncated gzip trailer (%zu bytes of 8 after the data)",
                n - s.pos);
            goto bad;
        }
        const uint32_t crc = crc32_update(0, s.out + from, s.len - from);
        const uint32_t want_crc = le32(in + s.pos), want_size = le32(in + s.pos + 4);
        if (crc != want_crc) {
            ex_say(msg, msgn, name, "CRC-32 mismatch: the data gives 0x%08lx, the trailer says "
                "0x%08lx (a damaged file)", (unsigned long)crc, (unsigned long)want_crc);
            goto bad;
        }
        if ((uint32_t)(s.len - from) != want_size) {
            ex_say(msg, msgn, name, "length mismatch: %zu bytes inflated, the trailer's ISIZE "
                "says %lu (mod 2^32)", s.len - from, (unsigned long)want_size);
            goto bad;
        }
        s.pos += 8;
        member++;
    } while (s.pos < n);
    *out = s.out;
    *outn = s.len;
    return EX_IDX_OK;
nomem:
    free(s.out);
    ex_say(msg, msgn, name, "out of memory");
    return EX_IDX_ENOMEM;
bad:
    free(s.out);
    return EX_IDX_EINPUT;
}

