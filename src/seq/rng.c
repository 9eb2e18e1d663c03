/* rng.c — node_rng: xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", ACM TOMS 2021; prng.di.unimi.it) seeded by SplitMix64 (Steele,
 * Lea & Flood, OOPSLA 2014), uniform doubles from the top 53 bits, normals by the
 * Marsaglia polar method (Marsaglia & Bray 1964), permutations by Fisher–Yates with
 * unbiased bounded integers (rejection of the 2^64 mod n lowest values).
 */
#include "internal.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The reference next() of xoshiro256starstar.c. */
static uint64_t next64(node_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* U[0, 1) on the grid of 2^-53. */
static double uniform1(node_rng *r) { return (double)(next64(r) >> 11) * 0x1p-53; }

/* Uniform on 0 .. n-1 (n >= 1) without bias: of the 2^64 raw values, the lowest
   2^64 mod n are rejected so that every residue is equally likely. */
static uint64_t below(node_rng *r, uint64_t n)
{
    uint64_t threshold = (0 - n) % n;   /* 2^64 mod n */
    for (;;) {
        uint64_t x = next64(r);
        if (x >= threshold)
            return x % n;
    }
}

/* NULL, or reserved fields that are not zero (a generator of a newer libnode, or a
   struct that was never seeded)? */
static bool refused(const node_rng *r)
{
    return !r || r->reserved0_ || !node__zero_words(r->reserved_, 2);
}

node_status node_rng_seed(node_rng *r, uint64_t seed)
{
    if (!r)
        return NODE_EINVAL;
    /* SplitMix64 outputs are a bijection of distinct counters, so at most one of the
       four words is zero: never the all-zero state xoshiro must avoid. */
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9E3779B97F4A7C15u);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        r->s[i] = z ^ (z >> 31);
    }
    r->spare = 0;
    r->has_spare = 0;
    r->reserved0_ = 0;
    r->reserved_[0] = r->reserved_[1] = 0;
    return NODE_OK;
}

node_status node_rng_uniform(node_rng *r, size_t n, double *out)
{
    if (refused(r) || (n && !out))
        return NODE_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = uniform1(r);
    return NODE_OK;
}

node_status node_rng_normal(node_rng *r, size_t n, double *out)
{
    if (refused(r) || (n && !out))
        return NODE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (r->has_spare) {
            out[i] = r->spare;
            r->has_spare = 0;
            r->spare = 0;
            continue;
        }
        /* Polar method: (u, v) uniform in the unit disc (0 excluded), then
           u·m and v·m with m = sqrt(-2 ln s / s) are independent N(0, 1). */
        double u, v, s;
        do {
            u = 2.0 * uniform1(r) - 1.0;
            v = 2.0 * uniform1(r) - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        double m = sqrt(-2.0 * log(s) / s);
        out[i] = u * m;
        r->spare = v * m;
        r->has_spare = 1;
    }
    return NODE_OK;
}

node_status node_rng_permutation(node_rng *r, size_t n, size_t *idx)
{
    if (refused(r) || (n && !idx))
        return NODE_EINVAL;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    /* Fisher–Yates (Durstenfeld): position i-1 swaps with a uniform pick of 0 .. i-1. */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)below(r, (uint64_t)i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
    return NODE_OK;
}
