/*
 * keys.c - Zipfian generator and sequence helpers for bench.c (see keys.h).
 */
#include "keys.h"

#include <math.h>
#include <stdlib.h>

void make_permutation(uint32_t *perm, uint64_t n, uint64_t seed)
{
    rng r;
    uint64_t i;

    rng_seed(&r, seed);
    for (i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (i = n; i > 1; i--) {
        uint64_t j = rng_below(&r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

int zipf_init(zipf *z, uint64_t n, double theta, uint64_t seed)
{
    double zeta2 = 1.0 + pow(0.5, theta);
    double zetan = 0.0;
    uint64_t i;

    for (i = 1; i <= n; i++)
        zetan += 1.0 / pow((double)i, theta);
    z->n = n;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    z->zetan = zetan;
    z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    z->half_pow = 1.0 + pow(0.5, theta);
    z->perm = malloc(n * sizeof(uint32_t));
    if (z->perm == NULL)
        return -1;
    make_permutation(z->perm, n, seed ^ UINT64_C(0x5eed));
    return 0;
}

uint64_t zipf_next(zipf *z, rng *r)
{
    double u = rng_unit(r);
    double uz = u * z->zetan;
    uint64_t rank;

    if (uz < 1.0)
        rank = 0;
    else if (uz < z->half_pow)
        rank = 1;
    else
        rank = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    if (rank >= z->n)
        rank = z->n - 1;
    return z->perm[rank];
}

void zipf_free(zipf *z)
{
    free(z->perm);
    z->perm = NULL;
}

void make_sequence(uint32_t *seq, uint64_t count, uint64_t n, zipf *z, uint64_t seed)
{
    rng r;
    uint64_t i;

    rng_seed(&r, seed);
    for (i = 0; i < count; i++)
        seq[i] = (uint32_t)(z ? zipf_next(z, &r) : rng_below(&r, n));
}
