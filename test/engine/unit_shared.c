/*
 * unit_shared.c - one pool shared by several processes at once, as a
 * PostgreSQL cluster's backends share it: the pool lives in anonymous
 * shared memory, content locks (and, in some rounds, the mapping-table
 * partition locks) are process-shared pthread rwlocks, and forked children
 * read and write one file through it concurrently.
 *
 * Each child owns a key range and writes values that name their key and a
 * version; every child reads every range.  A get that finds a value must
 * get one naming the key it asked for (a page read while another process
 * changed it, a frame re-keyed under a reader, a torn header would give
 * another record or garbage); a child's own keys must read back exactly as
 * it last wrote them, at any moment (a write by one process must be seen at
 * once by the others' next section, never an older page).  A cursor scan
 * checks every record the same way.  Small pools (64 frames) make misses,
 * evictions and re-keys race all the time.  Afterwards: every child's
 * verdict, kvs_check of the file, no frame pinned, no file in use, under
 * both policies, with the engine's own partition spinlocks and with the
 * host's locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"

#define FRAMES   64
#define CHILDREN 4
#define RANGE    400

typedef struct shm_locks {
    pthread_rwlock_t frame[FRAMES];
    pthread_rwlock_t part[KVS_POOL_PARTITIONS];
} shm_locks;

static void rw_lock(pthread_rwlock_t *l, int mode)
{
    if (mode == KVS_LOCK_EXCLUSIVE)
        pthread_rwlock_wrlock(l);
    else
        pthread_rwlock_rdlock(l);
}
static void lk_frame(void *arg, uint32_t frame, int mode)
{
    rw_lock(&((shm_locks *)arg)->frame[frame], mode);
}
static void unlk_frame(void *arg, uint32_t frame)
{
    pthread_rwlock_unlock(&((shm_locks *)arg)->frame[frame]);
}
static void lk_part(void *arg, uint32_t part, int mode)
{
    rw_lock(&((shm_locks *)arg)->part[part], mode);
}
static void unlk_part(void *arg, uint32_t part)
{
    pthread_rwlock_unlock(&((shm_locks *)arg)->part[part]);
}

static void init_rw(pthread_rwlock_t *l)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int keyof(char *buf, int child, int i)
{
    return sprintf(buf, "c%d-%05d", child, i);
}

/* A value names its key and version; long ones (every 16th) take a value chain. */
static size_t valof(char *buf, const char *key, unsigned ver, unsigned i)
{
    size_t n = (size_t)sprintf(buf, "%s:v%u:", key, ver), len = (i % 16 == 0) ? 5000 : 40 + i % 60;
    while (n < len) {
        buf[n] = (char)('a' + (n + ver) % 26);
        n++;
    }
    return n;
}

/* Does a value found for key look like one written for it? */
static int names_key(const kvs_slice *v, const char *key)
{
    size_t kl = strlen(key);
    return v->len > kl + 2 && memcmp(v->data, key, kl) == 0 && ((const char *)v->data)[kl] == ':';
}

static int child_run(const char *path, kvs_pool *pool, const kvs_locks *locks, int me, int ops)
{
    static unsigned ver[RANGE];          /* 0 = absent */
    char key[32], val[6000];
    kvs_options o;
    kvs *db;
    kvs_slice v;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(me + 1);
    int bad = 0, op, i;
    kvs_options_init(&o);
    o.pool = pool;
    o.locks = locks;
    if (kvs_open(path, &o, &db) != KVS_OK) {
        fprintf(stderr, "child %d: open: %s\n", me, kvs_open_errmsg());
        return 1;
    }
    memset(ver, 0, sizeof ver);
    for (op = 0; op < ops && bad < 5; op++) {
        unsigned r = (unsigned)(rnd(&seed) % 100);
        if (r < 25) {
            /* a write section of a few changes to my own keys */
            int n = 1 + (int)(rnd(&seed) % 8), k;
            if (kvs_begin(db, KVS_WRITE) != KVS_OK) {
                bad++;
                continue;
            }
            for (k = 0; k < n; k++) {
                i = (int)(rnd(&seed) % RANGE);
                keyof(key, me, i);
                if (rnd(&seed) % 5 == 0) {
                    int rc = kvs_delete(db, key, strlen(key));
                    if (rc != (ver[i] ? KVS_OK : KVS_NOTFOUND)) {
                        fprintf(stderr, "child %d: delete %s: %d\n", me, key, rc);
                        bad++;
                    }
                    ver[i] = 0;
                } else {
                    unsigned nv = ver[i] + 1;
                    size_t vl = valof(val, key, nv, (unsigned)i);
                    if (kvs_put(db, key, strlen(key), val, vl, 0) != KVS_OK) {
                        fprintf(stderr, "child %d: put %s: %s\n", me, key, kvs_errmsg(db));
                        bad++;
                    }
                    ver[i] = nv;
                }
            }
            if (kvs_end(db) != KVS_OK) {
                fprintf(stderr, "child %d: end: %s\n", me, kvs_errmsg(db));
                bad++;
            }
        } else if (r < 97) {
            /* a lookup of anyone's key; my own must be exactly my last write */
            int who = (int)(rnd(&seed) % CHILDREN), rc;
            i = (int)(rnd(&seed) % RANGE);
            keyof(key, who, i);
            rc = kvs_get(db, key, strlen(key), &v);
            if (rc == KVS_OK && !names_key(&v, key)) {
                fprintf(stderr, "child %d: get %s found another record\n", me, key);
                bad++;
            } else if (rc != KVS_OK && rc != KVS_NOTFOUND) {
                fprintf(stderr, "child %d: get %s: %s\n", me, key, kvs_errmsg(db));
                bad++;
            } else if (who == me) {
                size_t vl = ver[i] ? valof(val, key, ver[i], (unsigned)i) : 0;
                if (ver[i] ? rc != KVS_OK || v.len != vl || memcmp(v.data, val, vl) : rc != KVS_NOTFOUND) {
                    fprintf(stderr, "child %d: my %s reads back wrong (rc %d)\n", me, key, rc);
                    bad++;
                }
            }
        } else {
            /* a full scan: every record names its key */
            kvs_cursor *c;
            kvs_slice k;
            if (kvs_cursor_open(db, &c) != KVS_OK) {
                bad++;
                continue;
            }
            while (kvs_cursor_next(c, &k, &v) == KVS_OK) {
                char kb[40];
                if (k.len >= sizeof kb) {
                    bad++;
                    break;
                }
                memcpy(kb, k.data, k.len);
                kb[k.len] = 0;
                if (!names_key(&v, kb)) {
                    fprintf(stderr, "child %d: scan: %s has another record's value\n", me, kb);
                    bad++;
                    break;
                }
            }
            kvs_cursor_close(c);
        }
    }
    if (kvs_close(db) != KVS_OK)
        bad++;
    return bad ? 1 : 0;
}

static void round_(const char *path, int policy, int host_parts, int ops)
{
    size_t sz = kvs_pool_size(FRAMES, 4), lsz = sizeof(shm_locks);
    uint8_t *mem = mmap(NULL, sz + lsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shm_locks *sl;
    kvs_locks locks;
    kvs_pool *pool;
    kvs_options o;
    kvs *db;
    pid_t pids[CHILDREN];
    int c, failed = 0, status, pinned = 0;
    uint32_t f, slot;
    const char *name = policy == KVS_CACHE_LRU ? "lru" : "clock";
    if (mem == MAP_FAILED)
        abort();
    sl = (shm_locks *)(mem + sz);
    for (c = 0; c < FRAMES; c++)
        init_rw(&sl->frame[c]);
    for (c = 0; c < KVS_POOL_PARTITIONS; c++)
        init_rw(&sl->part[c]);
    memset(&locks, 0, sizeof locks);
    locks.lock = lk_frame;
    locks.unlock = unlk_frame;
    locks.arg = sl;
    if (host_parts) {
        locks.map_lock = lk_part;
        locks.map_unlock = unlk_part;
    }
    TAP_RC(kvs_pool_format(mem, sz, FRAMES, 4, policy, &pool), KVS_OK);
    unlink(path);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    for (c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        if (pids[c] == 0)
            _exit(child_run(path, pool, &locks, c, ops));
    }
    for (c = 0; c < CHILDREN; c++)
        if (waitpid(pids[c], &status, 0) != pids[c] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    tap_ok(failed == 0, "%s%s: %d processes x %d operations on one file through one %d-frame pool: "
           "every read right (%d failed)", name, host_parts ? ", host partition locks" : "",
           CHILDREN, ops, FRAMES, failed);
    for (f = 0; f < FRAMES; f++) {
        kvs_frame_info fi;
        if (kvs_pool_frame(pool, f, NULL, &fi) == KVS_OK && fi.pins)
            pinned++;
    }
    tap_ok(pinned == 0, "%s: no frame left pinned (%d)", name, pinned);
    for (slot = 0; slot < 4; slot++) {
        kvs_pool_file_info pi;
        if (kvs_pool_file(pool, slot, &pi) == KVS_OK)
            tap_ok(pi.users == 0 && pi.dirty == 0 && pi.reads > 0 && pi.hits > 0,
                   "%s: slot %u idle, clean, counted (users %u, dirty %u, hits %llu, reads %llu, evictions %llu)",
                   name, (unsigned)slot, (unsigned)pi.users, (unsigned)pi.dirty,
                   (unsigned long long)pi.hits, (unsigned long long)pi.reads,
                   (unsigned long long)pi.evictions);
    }
    kvs_options_init(&o);
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    munmap(mem, sz + lsz);
    unlink(path);
}

int main(void)
{
    char path[64];
    int ops = getenv("KVS_TEST_QUICK") ? 1500 : 12000;
    snprintf(path, sizeof path, "/tmp/unit_shared.%d.kvs", (int)getpid());
    round_(path, KVS_CACHE_LRU, 0, ops);
    round_(path, KVS_CACHE_CLOCK, 0, ops);
    round_(path, KVS_CACHE_LRU, 1, ops);
    round_(path, KVS_CACHE_CLOCK, 1, ops);
    tap_diag("shared: %d checks", tap_n);
    return tap_done();
}
