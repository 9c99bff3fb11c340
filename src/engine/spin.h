/*
 * spin.h - the engine's own short locks, for a pool shared by processes:
 * a spinlock and a reader/writer spinlock on a 32-bit word in shared
 * memory, with PostgreSQL's s_lock manner of waiting (spin with a pause
 * instruction, then yield, then sleep a growing while), so a holder that
 * was descheduled does not leave the waiters burning a core.  They guard
 * a few instructions each (a list splice, a table probe) and are never
 * held across I/O or another lock's wait.  A host that gives map_lock
 * callbacks (kvs.h) replaces them for the mapping-table partitions.
 */
#ifndef KVS_SPIN_H
#define KVS_SPIN_H

#include <stdint.h>
#include <sched.h>
#include <time.h>

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One step of waiting, *n counting the steps so far. */
static inline void spin_delay(unsigned *n)
{
    unsigned k = ++*n;
    if (k < 100) {
        spin_pause();
    } else if (k < 120) {
        sched_yield();
    } else {
        struct timespec ts;
        long us = 10L << (k - 120 < 7 ? k - 120 : 7);   /* 10 us .. 1.28 ms */
        ts.tv_sec = 0;
        ts.tv_nsec = us * 1000;
        nanosleep(&ts, NULL);
    }
}

static inline void spin_lock(uint32_t *l)
{
    unsigned n = 0;
    while (__atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE) != 0)
        while (__atomic_load_n(l, __ATOMIC_RELAXED) != 0)
            spin_delay(&n);
}

static inline void spin_unlock(uint32_t *l)
{
    __atomic_store_n(l, 0u, __ATOMIC_RELEASE);
}

/* Reader/writer: the high bit is the writer, the rest count readers. */
#define RWSPIN_WRITER 0x80000000u

static inline void rwspin_lock(uint32_t *l, int exclusive)
{
    unsigned n = 0;
    for (;;) {
        uint32_t v = __atomic_load_n(l, __ATOMIC_RELAXED);
        if (exclusive ? v == 0 : !(v & RWSPIN_WRITER)) {
            uint32_t want = exclusive ? RWSPIN_WRITER : v + 1;
            if (__atomic_compare_exchange_n(l, &v, want, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
            continue;
        }
        spin_delay(&n);
    }
}

static inline void rwspin_unlock(uint32_t *l, int exclusive)
{
    if (exclusive)
        __atomic_store_n(l, 0u, __ATOMIC_RELEASE);
    else
        __atomic_fetch_sub(l, 1u, __ATOMIC_RELEASE);
}

#endif
