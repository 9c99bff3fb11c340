/*
 * ptab.h - the engine's one open-addressing hash: a 64-bit key to a 32-bit
 * value, linear probing, backward-shift deletion (no tombstones, so probe
 * sequences never grow with churn).
 *
 * Two users: the buffer pool's page table ((file slot, page number) ->
 * frame, fixed size, inside the pool's memory block) and the spill map
 * (page number -> slot in the spill file, grown by its owner).  The
 * functions are stateless over a caller's slot array and its size (a power
 * of two), so the array can live anywhere -- inside a block shared between
 * processes too, where only offsets are stored and the caller computes the
 * array's address each time.  Keeping the load at or under one half is the
 * caller's job (the pool sizes the table at twice its frames; the spill map
 * doubles before it passes half).  Everything is static inline: the page
 * table lookup is on the path of every page access.
 */
#ifndef KVS_PTAB_H
#define KVS_PTAB_H

#include <stdint.h>

#define PTAB_EMPTY 0xffffffffu    /* .val of an empty slot */

typedef struct ptab_slot {
    uint64_t key;
    uint32_t val;                 /* PTAB_EMPTY = empty */
    uint32_t pad;
} ptab_slot;

/* Home slot of key in a table of 2^bits slots (bits >= 1) (Fibonacci hashing of both
 * halves: a page number alone, or a file slot in the high word). */
static inline uint32_t ptab_home(uint64_t key, uint32_t bits)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static inline void ptab_clear(ptab_slot *s, uint32_t bits)
{
    uint32_t i, n = (uint32_t)1 << bits;
    for (i = 0; i < n; i++) {
        s[i].key = 0;
        s[i].val = PTAB_EMPTY;
        s[i].pad = 0;
    }
}

/* The slot index holding key, or PTAB_EMPTY. */
static inline uint32_t ptab_find_slot(const ptab_slot *s, uint32_t bits, uint64_t key)
{
    uint32_t mask = ((uint32_t)1 << bits) - 1, i = ptab_home(key, bits);
    for (;;) {
        if (s[i].val == PTAB_EMPTY)
            return PTAB_EMPTY;
        if (s[i].key == key)
            return i;
        i = (i + 1) & mask;
    }
}

/* The value of key, or PTAB_EMPTY. */
static inline uint32_t ptab_find(const ptab_slot *s, uint32_t bits, uint64_t key)
{
    uint32_t i = ptab_find_slot(s, bits, key);
    return i == PTAB_EMPTY ? PTAB_EMPTY : s[i].val;
}

/* Inserts key (not present; the table has room). */
static inline void ptab_insert(ptab_slot *s, uint32_t bits, uint64_t key, uint32_t val)
{
    uint32_t mask = ((uint32_t)1 << bits) - 1, i = ptab_home(key, bits);
    while (s[i].val != PTAB_EMPTY)
        i = (i + 1) & mask;
    s[i].key = key;
    s[i].val = val;
}

/* Empties slot i, shifting later entries of the cluster back so that every
 * remaining key is still reachable from its home slot. */
static inline void ptab_delete_slot(ptab_slot *s, uint32_t bits, uint32_t i)
{
    uint32_t mask = ((uint32_t)1 << bits) - 1, j = i;
    for (;;) {
        uint32_t k;
        j = (j + 1) & mask;
        if (s[j].val == PTAB_EMPTY)
            break;
        k = ptab_home(s[j].key, bits);
        /* entry j may move to i unless its home lies cyclically in (i, j] */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            s[i] = s[j];
            i = j;
        }
    }
    s[i].val = PTAB_EMPTY;
}

/* Deletes key if present; returns whether it was. */
static inline int ptab_delete(ptab_slot *s, uint32_t bits, uint64_t key)
{
    uint32_t i = ptab_find_slot(s, bits, key);
    if (i == PTAB_EMPTY)
        return 0;
    ptab_delete_slot(s, bits, i);
    return 1;
}

#endif
