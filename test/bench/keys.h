/*
 * keys.h - deterministic keys, values and key-choice sequences for bench.c.
 *
 * Record i (0 <= i < N) has a key derived from i by splitmix64, which is a
 * bijection on 64-bit words: the first 8 key bytes already differ for every
 * i, so keys are unique and look random to every engine's hash.  Absent keys
 * are records N..2N-1, never loaded.  A value carries a stamp in its first 8
 * bytes (record number and version) so gets and scans can be checked.
 *
 * Key choice sequences are computed before a phase's timer starts, so the
 * generator's cost (a pow() per Zipfian draw) is not charged to any engine.
 */
#ifndef BENCH_KEYS_H
#define BENCH_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define STAMP_VER_SHIFT 48
#define STAMP_ID_MASK   ((UINT64_C(1) << STAMP_VER_SHIFT) - 1)

static inline uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Fill key of record i; klen >= 8. */
static inline void make_key(uint64_t i, uint8_t *key, uint32_t klen)
{
    uint64_t w = splitmix64(i);
    uint32_t off = 0, j = 1;

    memcpy(key, &w, 8);
    for (off = 8; off < klen; off += 8, j++) {
        uint32_t n = klen - off < 8 ? klen - off : 8;
        w = splitmix64(i + j * UINT64_C(0x632be59bd9b4e019));
        memcpy(key + off, &w, n);
    }
}

static inline uint64_t make_stamp(uint64_t i, uint64_t ver)
{
    return i | (ver << STAMP_VER_SHIFT);
}

/* Small fast PRNG (xorshift64*) for sequences. */
typedef struct rng { uint64_t s; } rng;
static inline void rng_seed(rng *r, uint64_t seed) { r->s = splitmix64(seed) | 1; }
static inline uint64_t rng_next(rng *r)
{
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * UINT64_C(2685821657736338717);
}
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}
static inline double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Zipfian over ranks 0..n-1 (Gray et al., as in YCSB), theta < 1. Rank r is
 * mapped to a record through a random permutation, so hot records are spread
 * over the key space ("scrambled Zipfian"). */
typedef struct zipf {
    uint64_t n;
    double   theta, alpha, zetan, eta, half_pow;
    uint32_t *perm;          /* rank -> record, n entries */
} zipf;

int  zipf_init(zipf *z, uint64_t n, double theta, uint64_t seed);
uint64_t zipf_next(zipf *z, rng *r);
void zipf_free(zipf *z);

/* Fill seq[0..count) with record numbers in [0,n): uniform if z == NULL,
 * else Zipfian. */
void make_sequence(uint32_t *seq, uint64_t count, uint64_t n, zipf *z, uint64_t seed);
/* A random permutation of 0..n-1. */
void make_permutation(uint32_t *perm, uint64_t n, uint64_t seed);

#endif
