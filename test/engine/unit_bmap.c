/*
 * unit_bmap.c - what a handle keeps across sections follows every change
 * another handle or process makes to the file.
 *
 * A handle remembers, from one section to the next, each bucket's primary
 * page (lhash.c's map, so a get reads no directory page) and the last
 * header image it validated (pager.c, so a section begin that rereads the
 * same bytes skips the checksum).  Both are right only while nobody else
 * changed the file.  Here a reader handle fills both, then a writer (another
 * handle of the process, a forked process, through a private pool or
 * through one shared pool) changes the file under it: more records (splits:
 * new buckets, a new header), and a truncate followed by a refill that puts
 * every bucket's primary page somewhere else (a large value's chain is
 * allocated first).  The reader must then read every record exactly as the
 * writer left it and find the file clean: a stale map entry would send its
 * get to another page (wrong bucket: ECORRUPT, or a miss), a stale header to
 * the wrong bucket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"

#define NKEYS 3000
#define BIG   30000

static char dir[] = "/tmp/unit_bmap.XXXXXX";
static char path[256];
static char big[BIG];

static size_t val_of(char *buf, char gen, int i)
{
    return (size_t)snprintf(buf, 32, "%c%d-value", gen, i);
}

/* Writes keys [from, to) with generation gen's values in one write section;
 * with `truncate`, empties the file first and puts the large value before
 * them.  KVS_OK or the first failure. */
static int write_step(kvs *db, int from, int to, char gen, int truncate)
{
    char k[32], v[32];
    int i, rc = kvs_begin(db, KVS_WRITE);
    if (rc)
        return rc;
    if (truncate) {
        rc = kvs_truncate(db);
        if (rc == KVS_OK)
            rc = kvs_put(db, "big", 3, big, BIG, 0);
    }
    for (i = from; i < to && rc == KVS_OK; i++) {
        int kl = snprintf(k, sizeof k, "key-%d", i);
        rc = kvs_put(db, k, (size_t)kl, v, val_of(v, gen, i), 0);
    }
    if (rc) {
        kvs_abort(db);
        return rc;
    }
    return kvs_end(db);
}

/* Reads keys [0, n) in one read section: how many are missing or wrong
 * (generation gen[i] expected; '-': must be absent), errors counted too;
 * *first gets the first failure's code. */
static int read_step(kvs *db, int n, const char *gen, int *first)
{
    char k[32], v[32];
    kvs_slice s;
    int i, bad = 0, rc = kvs_begin(db, KVS_READ);
    *first = rc;
    if (rc)
        return n;
    for (i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key-%d", i);
        size_t vl = val_of(v, gen[i], i);
        rc = kvs_get(db, k, (size_t)kl, &s);
        if (gen[i] == '-' ? rc != KVS_NOTFOUND
                          : rc != KVS_OK || s.len != vl || memcmp(s.data, v, vl) != 0) {
            if (!*first)
                *first = rc ? rc : -1;
            bad++;
        }
    }
    kvs_end(db);
    return bad;
}

/* The writer's step: on `w` in this process, or (w NULL) in a forked child
 * that opens its own handle with options o. */
static int writer(kvs *w, const kvs_options *o, int from, int to, char gen, int truncate)
{
    pid_t pid;
    int st;
    kvs *db;
    if (w)
        return write_step(w, from, to, gen, truncate);
    pid = fork();
    if (pid == 0) {
        int rc = kvs_open(path, o, &db);
        if (rc == KVS_OK)
            rc = write_step(db, from, to, gen, truncate);
        if (kvs_close(db) != KVS_OK && rc == KVS_OK)
            rc = -1;
        _exit(rc == KVS_OK ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? KVS_OK : -1;
}

static void round_(const char *what, kvs_pool *pool, int forked)
{
    static char gen[2 * NKEYS];
    kvs_options o;
    kvs *r, *w = NULL;
    kvs_slice s;
    int bad, first;
    unlink(path);
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_NOSYNC;
    o.cache_pages = 4096;          /* every page stays cached */
    o.pool = pool;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    if (!forked)
        TAP_RC(kvs_open(path, &o, &w), KVS_OK);

    /* the reader's map, filters and header come from its own reads (the
     * keys still absent walk whole chains: the buckets' filters) */
    TAP_RC(writer(w, &o, 0, NKEYS, 'a', 0), KVS_OK);
    memset(gen, 'a', NKEYS);
    memset(gen + NKEYS, '-', NKEYS);
    bad = read_step(r, 2 * NKEYS, gen, &first);
    tap_ok(bad == 0, "%s: the reader reads the first %d records, the next %d are absent "
           "(%d bad, first %s)", what, NKEYS, NKEYS, bad, kvs_strerror(first));

    /* splits: buckets the reader has never seen, a new header */
    TAP_RC(writer(w, &o, NKEYS, 2 * NKEYS, 'b', 0), KVS_OK);
    memset(gen + NKEYS, 'b', NKEYS);
    bad = read_step(r, 2 * NKEYS, gen, &first);
    tap_ok(bad == 0, "%s: after the writer's %d more records (splits) the reader reads all "
           "(%d bad, first %s)", what, NKEYS, bad, kvs_strerror(first));

    /* every bucket's primary page moves */
    TAP_RC(writer(w, &o, 0, 2 * NKEYS, 'c', 1), KVS_OK);
    memset(gen, 'c', 2 * NKEYS);
    bad = read_step(r, 2 * NKEYS, gen, &first);
    tap_ok(bad == 0, "%s: after the writer's truncate and refill (every primary page "
           "elsewhere) the reader reads every record anew (%d bad, first %s)",
           what, bad, kvs_strerror(first));
    TAP_RC(kvs_get(r, "big", 3, &s), KVS_OK);
    tap_ok(s.len == BIG && memcmp(s.data, big, BIG) == 0, "%s: and the large value", what);
    TAP_RC(kvs_check(r), KVS_OK);

    /* and the other way round: the reader writes, the writer's handle
     * (in this process) must follow */
    if (w) {
        /* its own puts into buckets whose filters it has (absent keys first,
         * then put: some land in known buckets, some split them) */
        memset(gen + 2 * NKEYS - 500, '-', 500);
        TAP_RC(write_step(r, 0, 2 * NKEYS - 500, 'c', 1), KVS_OK);
        bad = read_step(r, 2 * NKEYS, gen, &first);
        memset(gen + 2 * NKEYS - 500, 'c', 500);
        TAP_RC(write_step(r, 2 * NKEYS - 500, 2 * NKEYS, 'c', 0), KVS_OK);
        bad += read_step(r, 2 * NKEYS, gen, &first);
        tap_ok(bad == 0, "%s: the reader's own puts after its gets of the same keys "
               "found absent are read back (%d bad, first %s)", what, bad, kvs_strerror(first));
        /* puts that are the reader's first walk of their buckets since the
         * writer's change (their filters are learnt by the puts) */
        TAP_RC(write_step(w, 0, 100, 'e', 0), KVS_OK);
        TAP_RC(write_step(r, 100, 200, 'f', 0), KVS_OK);
        memset(gen, 'e', 100);
        memset(gen + 100, 'f', 100);
        bad = read_step(r, 2 * NKEYS, gen, &first);
        tap_ok(bad == 0, "%s: the reader's replaces right after another handle's write "
               "(%d bad, first %s)", what, bad, kvs_strerror(first));
        TAP_RC(write_step(r, 0, NKEYS, 'd', 1), KVS_OK);
        memset(gen, 'd', NKEYS);
        bad = read_step(w, NKEYS, gen, &first);
        tap_ok(bad == 0 && kvs_get(w, "key-4000", 8, &s) == KVS_NOTFOUND,
               "%s: the first writer follows the reader's truncate (%d bad, first %s)",
               what, bad, kvs_strerror(first));
        TAP_RC(kvs_close(w), KVS_OK);
    }
    TAP_RC(kvs_close(r), KVS_OK);
}

int main(void)
{
    size_t sz = kvs_pool_size(4096, 4);
    void *mem;
    kvs_pool *pool;
    int i;

    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/t.kvs", dir);
    for (i = 0; i < BIG; i++)
        big[i] = (char)('A' + i % 26);

    round_("two handles, private pools", NULL, 0);
    round_("a forked writer, private pools", NULL, 1);

    /* one pool in memory shared with the forked writer (the host's content
     * locks are not needed: the reader holds no section while it writes) */
    mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 1;
    TAP_RC(kvs_pool_format(mem, sz, 4096, 4, KVS_CACHE_CLOCK, &pool), KVS_OK);
    round_("two handles, one shared pool", pool, 0);
    round_("a forked writer, one shared pool", pool, 1);
    munmap(mem, sz);

    {
        char cmd[300];     /* the file and its private journal beside it */
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            tap_diag("could not remove %s", dir);
    }
    return tap_done();
}
