/* rng.h — a small seeded PRNG for the examples (xoshiro256**, Blackman & Vigna 2018,
 * seeded by splitmix64): the same numbers for a seed on every platform, uniform and
 * normal (Box–Muller) draws, and sampling without replacement (partial Fisher–Yates).
 */
#ifndef EX_RNG_H
#define EX_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ex_rng { uint64_t s[4]; } ex_rng;

void     ex_rng_seed(ex_rng *r, uint64_t seed);
uint64_t ex_rng_next(ex_rng *r);
double   ex_rng_uniform(ex_rng *r);                 /* in [0, 1), 53 random bits */
size_t   ex_rng_below(ex_rng *r, size_t n);         /* in [0, n), unbiased; n > 0 */
double   ex_rng_normal(ex_rng *r, double mean, double std);

/* Draw k distinct values from 0..n-1 (k <= n) into idx[0..k-1], in random order.
   perm is caller scratch of n entries (left permuted: pass it again, no reset needed). */
void ex_rng_sample(ex_rng *r, size_t n, size_t k, size_t *perm, size_t *idx);

/* perm[i] = i for i < n: call once before the first ex_rng_sample. */
void ex_rng_iota(size_t n, size_t *perm);

#endif /* EX_RNG_H */
