/* rng.c — see rng.h. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ex_rng_seed(ex_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ex_rng_next(ex_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double ex_rng_uniform(ex_rng *r) { return (double)(ex_rng_next(r) >> 11) * 0x1.0p-53; }

size_t ex_rng_below(ex_rng *r, size_t n)
{
    /* Rejection: drop the top sliver that would bias the modulo. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)n, x;
    do
        x = ex_rng_next(r);
    while (x >= lim);
    return (size_t)(x % (uint64_t)n);
}

double ex_rng_normal(ex_rng *r, double mean, double std)
{
    double u = 1.0 - ex_rng_uniform(r);   /* (0, 1]: log(u) finite */
    double v = ex_rng_uniform(r);
    return mean + std * sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

void ex_rng_iota(size_t n, size_t *perm)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
}

void ex_rng_sample(ex_rng *r, size_t n, size_t k, size_t *perm, size_t *idx)
{
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + ex_rng_below(r, n - i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
}
