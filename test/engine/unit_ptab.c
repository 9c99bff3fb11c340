/*
 * unit_ptab.c - unit tests of ptab.h, the open-addressing hash shared by the
 * pool's page table and the spill map: random churn of inserts, deletes and
 * finds against a plain reference array at several table sizes (one up to a
 * table held at load 1/2), keys of both users' shapes (a page number alone;
 * a file slot in the high word), the probe invariant checked after every
 * change (each entry reachable from its home slot without crossing an empty
 * slot), wrap-around at the table's end, and backward-shift deletion moving
 * exactly the entries it may.
 */
#include <string.h>
#include "kvs.h"
#include "ptab.h"
#include "tap.h"

#define MAXBITS 12

static ptab_slot tab[1u << MAXBITS];

/* Every entry is reachable: no empty slot between its home and its slot. */
static int invariant_ok(uint32_t bits, uint32_t *count)
{
    uint32_t n = (uint32_t)1 << bits, mask = n - 1, i, used = 0;
    for (i = 0; i < n; i++) {
        uint32_t j;
        if (tab[i].val == PTAB_EMPTY)
            continue;
        used++;
        for (j = ptab_home(tab[i].key, bits); j != i; j = (j + 1) & mask)
            if (tab[j].val == PTAB_EMPTY)
                return 0;
    }
    *count = used;
    return 1;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Churn on a table of 2^bits slots: keys from a universe of twice the
 * slots, the load kept at or under one half (full = kept at one half once
 * reached: every insert follows a delete).  Returns the number of
 * disagreements with the reference. */
static int churn(uint32_t bits, int highword, int full, uint32_t ops)
{
    uint32_t n = (uint32_t)1 << bits, cap = n / 2, nkeys = 2 * n, i, count = 0, used;
    static uint64_t keys[2u << MAXBITS];
    static uint32_t ref[2u << MAXBITS];    /* value, PTAB_EMPTY = absent */
    int bad = 0;
    for (i = 0; i < nkeys; i++) {
        keys[i] = highword ? ((uint64_t)(i % 5) << 32) | (uint64_t)(i * 13 + 3) : (uint64_t)i * 7 + 1;
        ref[i] = PTAB_EMPTY;
    }
    ptab_clear(tab, bits);
    for (i = 0; i < ops; i++) {
        uint32_t k = (uint32_t)(next_rand() % nkeys), got;
        int op = (int)(next_rand() % 3);
        if (full && count < cap)
            op = 0;                     /* fill up first */
        if (op == 0 && ref[k] == PTAB_EMPTY && count < cap) {
            uint32_t v = (uint32_t)(next_rand() % 1000000);
            ptab_insert(tab, bits, keys[k], v);
            ref[k] = v;
            count++;
        } else if (op == 1 || (op == 0 && count >= cap)) {
            int was = ptab_delete(tab, bits, keys[k]);
            if (was != (ref[k] != PTAB_EMPTY))
                bad++;
            if (was) {
                ref[k] = PTAB_EMPTY;
                count--;
            }
        } else {
            got = ptab_find(tab, bits, keys[k]);
            if (got != ref[k])
                bad++;
        }
        if ((i & 63) == 0 || bits <= 4) {
            if (!invariant_ok(bits, &used) || used != count)
                bad++;
        }
    }
    for (i = 0; i < nkeys; i++)
        if (ptab_find(tab, bits, keys[i]) != ref[i])
            bad++;
    if (!invariant_ok(bits, &used) || used != count)
        bad++;
    return bad;
}

/* The first key >= from (a page number) whose home slot is want. */
static uint64_t key_homed(uint32_t bits, uint32_t want, uint64_t from)
{
    while (ptab_home(from, bits) != want)
        from++;
    return from;
}

int main(void)
{
    static const uint32_t sizes[] = {1, 2, 3, 4, 6, 8, 10, 12};
    size_t s;
    uint32_t used;

    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t bits = sizes[s];
        int b1 = churn(bits, 0, 0, 40000), b2 = churn(bits, 1, 0, 40000), b3 = churn(bits, 0, 1, 40000);
        tap_ok(b1 == 0, "2^%u slots, page-number keys: churn agrees with the reference (%d bad)",
               (unsigned)bits, b1);
        tap_ok(b2 == 0, "2^%u slots, (file slot, page) keys: churn agrees (%d bad)", (unsigned)bits, b2);
        tap_ok(b3 == 0, "2^%u slots held at load 1/2: churn agrees (%d bad)", (unsigned)bits, b3);
    }

    /* wrap-around: three keys homed at the last slot of 16 fill 15, 0, 1 */
    {
        uint32_t bits = 4, last = 15;
        uint64_t a = key_homed(bits, last, 1), b = key_homed(bits, last, a + 1),
                 c = key_homed(bits, last, b + 1), d = key_homed(bits, 0, 1);
        ptab_clear(tab, bits);
        ptab_insert(tab, bits, a, 1);
        ptab_insert(tab, bits, b, 2);
        ptab_insert(tab, bits, c, 3);
        tap_ok(tab[15].key == a && tab[0].key == b && tab[1].key == c,
               "keys homed at the end wrap to slots 0 and 1");
        ptab_insert(tab, bits, d, 4);     /* homed at 0, pushed to 2 */
        tap_ok(tab[2].key == d && ptab_find(tab, bits, d) == 4, "a key homed at slot 0 probes past them");
        TAP_RC(ptab_delete(tab, bits, a), 1);
        tap_ok(tab[15].key == b && tab[0].key == c && tab[1].key == d && tab[2].val == PTAB_EMPTY,
               "deleting at the end shifts the wrapped entries back across it (%llu %llu %llu)",
               (unsigned long long)tab[15].key, (unsigned long long)tab[0].key,
               (unsigned long long)tab[1].key);
        tap_ok(ptab_find(tab, bits, b) == 2 && ptab_find(tab, bits, c) == 3 &&
               ptab_find(tab, bits, d) == 4 && ptab_find(tab, bits, a) == PTAB_EMPTY,
               "all found after the shift, the deleted one not");
        tap_ok(invariant_ok(bits, &used) && used == 3, "probe invariant holds");
    }

    /* backward shift moves only the entries it may: x, y homed at 5, z
     * homed at 7 sits at 7; deleting x moves y to 5 and leaves z at 7 */
    {
        uint32_t bits = 4;
        uint64_t x = key_homed(bits, 5, 1), y = key_homed(bits, 5, x + 1), z = key_homed(bits, 7, 1),
                 w = key_homed(bits, 6, 1);
        ptab_clear(tab, bits);
        ptab_insert(tab, bits, x, 1);
        ptab_insert(tab, bits, y, 2);
        ptab_insert(tab, bits, z, 3);
        tap_ok(tab[5].key == x && tab[6].key == y && tab[7].key == z, "x, y at 5, 6; z at its home 7");
        TAP_RC(ptab_delete(tab, bits, x), 1);
        tap_ok(tab[5].key == y && tab[6].val == PTAB_EMPTY && tab[7].key == z,
               "deleting x moves y home to 5 and leaves z at 7");
        /* w homed at 6 goes to 6: deleting y at 5 must move neither w nor
         * z into it (both homes lie after 5) */
        ptab_insert(tab, bits, w, 4);
        TAP_RC(ptab_delete(tab, bits, y), 1);
        tap_ok(tab[5].val == PTAB_EMPTY && tab[6].key == w && tab[7].key == z,
               "deleting y at 5 moves neither w (home 6) nor z (home 7)");
        TAP_RC(ptab_delete(tab, bits, y), 0);
        tap_ok(ptab_find(tab, bits, w) == 4 && ptab_find(tab, bits, z) == 3 && invariant_ok(bits, &used) &&
               used == 2, "w and z found, invariant holds");
    }
    tap_diag("ptab: %d checks", tap_n);
    return tap_done();
}
