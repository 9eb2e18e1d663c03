#!/usr/bin/python3
"""xoshiro_ref.py -- an independent re-implementation, in Python integers, of
xoshiro256** (Blackman & Vigna; the reference xoshiro256starstar.c at
prng.di.unimi.it) and of SplitMix64 (the seeding the authors recommend), written from
those reference sources without libnode.  It prints the values pinned in
tests/test_seq_dist.c: the first outputs from the state {1, 2, 3, 4} (the first three,
11520, 0, 1509978240, are easy to check by hand: rotl(5 s[1], 7) * 9 with s[1] = 2
gives 11520), the state SplitMix64 makes from seeds 0 and 42, the first outputs
after seeding, and two permutations (Fisher-Yates with rejection of the 2^64 mod i
lowest outputs, one of them exercising a rejection).

    /usr/bin/python3 tests/ref/xoshiro_ref.py
"""
M = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


def xoshiro_next(s):
    result = (rotl((s[1] * 5) & M, 7) * 9) & M
    t = (s[1] << 17) & M
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    return result


def splitmix_state(seed):
    x, out = seed, []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & M
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        out.append(z ^ (z >> 31))
    return out


def permutation(n, s):
    """Fisher-Yates (Durstenfeld): for i = n .. 2, swap idx[i-1] with idx[j], j
    uniform on 0 .. i-1 from one 64-bit output x as x mod i, outputs below 2^64 mod i
    rejected (so that no residue is favoured)."""
    idx = list(range(n))
    for i in range(n, 1, -1):
        while True:
            x = xoshiro_next(s)
            if x >= (1 << 64) % i:
                break
        j = x % i
        idx[i - 1], idx[j] = idx[j], idx[i - 1]
    return idx


def main():
    s = [1, 2, 3, 4]
    print("/* state {1, 2, 3, 4}: first 8 outputs */")
    print(", ".join("%#018xu" % xoshiro_next(s) for _ in range(8)))
    for seed in (0, 42):
        st = splitmix_state(seed)
        print("/* seed %d: SplitMix64 state */" % seed)
        print(", ".join("%#018xu" % w for w in st))
        print("/* seed %d: first 8 outputs */" % seed)
        print(", ".join("%#018xu" % xoshiro_next(st) for _ in range(8)))
    # The state {1, 2, 3, 4} yields 0 as its second output: for n = 8 that draw is for
    # the bound 7 (2^64 mod 7 = 2) and must be rejected.
    print("/* state {1, 2, 3, 4}: permutation of 8 */")
    print(", ".join(str(i) for i in permutation(8, [1, 2, 3, 4])))
    print("/* seed 42: permutation of 10 */")
    print(", ".join(str(i) for i in permutation(10, splitmix_state(42))))


if __name__ == "__main__":
    main()
