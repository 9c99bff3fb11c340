/*
 * unit_owner.c - the file's owner (format version 4) and the hold of a
 * shared pool's handles (kvs.h, "A shared pool's sections"; README.md,
 * "Processes outside the cluster").  Two pools in malloc'd memory stand for
 * two PostgreSQL clusters, owner ids A and B for their system identifiers.
 *
 *  - the first handle of a shared pool with an owner id records it in the
 *    header (version 4, offset 2184; kvs_stats.owner_id); handles with
 *    owner 0, private-pool handles and read-only handles record nothing;
 *  - a handle of another owner is refused (KVS_EBUSY, both ids named), the
 *    file untouched; with KVS_ADOPT it takes the file over;
 *  - while a shared pool's handle has the file open, a private-pool handle
 *    gets KVS_EBUSY (not a hang) for a write, for a read of an owned file
 *    and for an open; after the close it works; with owner 0 a write waits
 *    for the holder (another process) and then succeeds;
 *  - a private handle whose owner id is the file's owner (its own host, no
 *    pool of it running) shares the file with another process's long read
 *    section and waits for it to write; with owner 0 or another id the same
 *    section is refused as a host's hold;
 *  - a version-3 file opens and reads right with owner 0, stays byte for
 *    byte under a read-only handle, becomes version 6 with its id kept and
 *    the owner recorded at a shared open's first write (owner 0 at a
 *    private handle's);
 *  - a compaction keeps the owner (new id); a shared handle's hold moves to
 *    the new file, its own and a follower's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

#define HD_VERSION_OFF 24
#define HD_FILEID_OFF  2176
#define HD_OWNER_OFF   2184
#define NREC 500

static const uint64_t A = 7362059120834567891ULL, B = 7400000000000000042ULL;
static char path[256];

static uint64_t file_u64(off_t off)
{
    return file_le64(path, off);
}

static uint32_t file_version(void)
{
    return (uint32_t)(file_u64(HD_VERSION_OFF) & 0xffffffffu);
}

static kvs_pool *new_pool(void **mem)
{
    size_t sz = kvs_pool_size(64, 4);
    kvs_pool *p = NULL;
    if (posix_memalign(mem, 4096, sz) != 0 || kvs_pool_format(*mem, sz, 64, 4, KVS_CACHE_CLOCK, &p) != KVS_OK)
        abort();
    return p;
}

static int open_as(kvs_pool *pool, uint64_t owner, int flags, kvs **db)
{
    kvs_options o;
    kvs_options_init(&o);
    o.pool = pool;
    o.owner_id = owner;
    o.flags = flags;
    return kvs_open(path, &o, db);
}

static int fill(void)
{
    kvs *db;
    char k[32];
    int i, rc;
    unlink(path);
    if (open_as(NULL, 0, KVS_CREATE, &db) != KVS_OK)
        return 0;
    rc = kvs_begin(db, KVS_WRITE);
    for (i = 0; i < NREC && rc == KVS_OK; i++) {
        snprintf(k, sizeof k, "key-%06d", i);
        rc = kvs_put(db, k, strlen(k), k, strlen(k), 0);
    }
    if (rc == KVS_OK)
        rc = kvs_end(db);
    return kvs_close(db) == KVS_OK && rc == KVS_OK;
}

/* Every record of fill() is there, right. */
static int verify(kvs *db)
{
    char k[32];
    kvs_slice v;
    int i;
    for (i = 0; i < NREC; i++) {
        snprintf(k, sizeof k, "key-%06d", i);
        if (kvs_get(db, k, strlen(k), &v) != KVS_OK || v.len != strlen(k) || memcmp(v.data, k, v.len))
            return 0;
    }
    return 1;
}

static uint64_t owner_of(kvs *db, uint32_t *version)
{
    kvs_stats st;
    if (kvs_stats_get(db, &st) != KVS_OK)
        return UINT64_MAX;
    if (version)
        *version = st.format_version;
    return st.owner_id;
}

static int has_id(const char *msg, uint64_t id)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)id);
    return strstr(msg, s) != NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int waits_begun;
static void count_wait(void *arg, int waiting)
{
    (void)arg;
    waits_begun += waiting;
}

static void test_record_and_refuse(kvs_pool *p1, kvs_pool *p2)
{
    kvs *a, *b, *r;
    uint64_t h, id;
    uint32_t ver = 0;

    tap_ok(fill() && file_u64(HD_OWNER_OFF) == 0 && file_version() == 6, "a new file: version 6, owner 0");
    /* who records nothing */
    TAP_RC(open_as(p1, 0, 0, &a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(open_as(NULL, A, 0, &a), KVS_OK);
    TAP_RC(kvs_put(a, "x", 1, "1", 1, 0), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    h = hashfile(path);
    TAP_RC(open_as(p1, A, KVS_RDONLY, &a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    tap_ok(file_u64(HD_OWNER_OFF) == 0 && hashfile(path) == h,
           "owner 0 on a shared pool, an owner on a private pool, a read-only shared handle: nothing recorded");

    /* the first shared open with an owner records it */
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    id = owner_of(a, &ver);
    tap_ok(file_u64(HD_OWNER_OFF) == A && id == A && ver == 6,
           "the first shared open records owner %llu at offset 2184 (kvs_stats.owner_id, version %u)",
           (unsigned long long)A, (unsigned)ver);
    TAP_RC(open_as(p1, A, 0, &b), KVS_OK);
    tap_ok(verify(b), "a second handle of the same owner opens and reads");
    TAP_RC(kvs_close(b), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);

    /* another owner: refused, the file untouched (also read-only, also while
     * nobody has the file open) */
    h = hashfile(path);
    b = NULL;
    TAP_RC(open_as(p2, B, 0, &b), KVS_EBUSY);
    tap_ok(b == NULL && has_id(kvs_open_errmsg(), A) && has_id(kvs_open_errmsg(), B),
           "another owner is refused, both ids named: %s", kvs_open_errmsg());
    TAP_RC(open_as(p2, B, KVS_RDONLY, &b), KVS_EBUSY);
    tap_ok(hashfile(path) == h, "the file untouched");
    tap_ok(strcmp(kvs_strerror(KVS_EBUSY), "file is in use") == 0, "KVS_EBUSY is named: %s",
           kvs_strerror(KVS_EBUSY));

    /* KVS_ADOPT takes it over */
    TAP_RC(open_as(p2, B, KVS_ADOPT, &b), KVS_OK);
    tap_ok(file_u64(HD_OWNER_OFF) == B && owner_of(b, NULL) == B && verify(b),
           "KVS_ADOPT records the new owner %llu, every record there", (unsigned long long)B);
    TAP_RC(kvs_close(b), KVS_OK);
    TAP_RC(open_as(p1, A, 0, &a), KVS_EBUSY);
    tap_ok(has_id(kvs_open_errmsg(), B), "and now the first owner is the one refused: %s", kvs_open_errmsg());
    TAP_RC(open_as(p1, A, KVS_ADOPT, &a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    tap_ok(file_u64(HD_OWNER_OFF) == A, "and may adopt it back");
    TAP_RC(open_as(NULL, B, 0, &r), KVS_OK);
    tap_ok(verify(r) && owner_of(r, NULL) == A, "a private-pool handle of another owner neither checks nor records");
    TAP_RC(kvs_close(r), KVS_OK);
}

/* A holder in another process: spawn_holder forks a child that takes the
 * file (take), tells the parent it has it, holds it hold_ms, then releases
 * it (release) and exits 0 (3: could not take it, 4: could not tell, 5:
 * the release failed).  Returns once the child holds the file. */
static int take_shared_owner0(kvs **h)
{
    static void *mem;           /* the pool's memory, held until the child exits */
    return open_as(new_pool(&mem), 0, 0, h) == KVS_OK;
}
static int release_close(kvs *h) { return kvs_close(h) == KVS_OK; }
static int take_read_section(kvs **h)
{
    return open_as(NULL, A, 0, h) == KVS_OK && kvs_begin(*h, KVS_READ) == KVS_OK;
}
static int release_section(kvs *h) { return kvs_end(h) == KVS_OK && kvs_close(h) == KVS_OK; }

static pid_t spawn_holder(int (*take)(kvs **), int (*release)(kvs *), int hold_ms)
{
    int pfd[2];
    char c;
    pid_t pid;
    if (pipe(pfd) != 0)
        abort();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        kvs *ch;
        if (!take(&ch))
            _exit(3);
        if (write(pfd[1], "x", 1) != 1)
            _exit(4);
        usleep((useconds_t)hold_ms * 1000);
        _exit(release(ch) ? 0 : 5);
    }
    close(pfd[1]);
    if (read(pfd[0], &c, 1) != 1)
        abort();
    close(pfd[0]);
    return pid;
}

static void test_outside(kvs_pool *p1)
{
    kvs *a, *out, *out2;
    kvs_slice v;
    kvs_options o;
    double t0, t1;
    int rc, status;
    pid_t pid;

    /* (the file's owner is A from test_record_and_refuse) */
    TAP_RC(open_as(NULL, 0, 0, &out), KVS_OK);     /* before the pool has it */
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    t0 = now_ms();
    rc = kvs_put(out, "outside", 7, "w", 1, 0);
    t1 = now_ms();
    tap_ok(rc == KVS_EBUSY && has_id(kvs_errmsg(out), A),
           "a private handle's write while a shared handle holds the file: KVS_EBUSY after %.0f ms, "
           "not a hang: %s", t1 - t0, kvs_errmsg(out));
    rc = kvs_get(out, "key-000001", 10, &v);
    tap_ok(rc == KVS_EBUSY, "its read of the owned file too (no torn read-out): %s", kvs_strerror(rc));
    out2 = NULL;
    TAP_RC(open_as(NULL, 0, KVS_RDONLY, &out2), KVS_EBUSY);
    tap_ok(out2 == NULL && has_id(kvs_open_errmsg(), A), "a new private handle's open too: %s",
           kvs_open_errmsg());
    TAP_RC(kvs_begin(out, KVS_WRITE), KVS_EBUSY);
    tap_ok(kvs_in_section(out) < 0, "a refused kvs_begin leaves no section open");
    tap_ok(verify(a) && kvs_put(a, "inside", 6, "1", 1, 0) == KVS_OK,
           "the shared handle reads and writes meanwhile");
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_put(out, "outside", 7, "w", 1, 0), KVS_OK);
    TAP_RC(kvs_get(out, "inside", 6, &v), KVS_OK);
    tap_ok(verify(out), "after the close the private handle writes and reads (and sees the shared write)");
    TAP_RC(kvs_check(out), KVS_OK);
    TAP_RC(kvs_close(out), KVS_OK);

    /* owner 0: a shared handle without an owner id in another process; the
     * private write waits for its close (as for any lock), then succeeds */
    tap_ok(fill(), "a fresh file, owner 0");
    pid = spawn_holder(take_shared_owner0, release_close, 300);
    kvs_options_init(&o);
    o.lock_wait = count_wait;
    waits_begun = 0;
    TAP_RC(kvs_open(path, &o, &out), KVS_OK);
    TAP_RC(kvs_get(out, "key-000002", 10, &v), KVS_OK);
    tap_ok(waits_begun == 0, "owner 0: a private handle's read shares the file with the holder");
    t0 = now_ms();
    rc = kvs_put(out, "waited", 6, "1", 1, 0);
    t1 = now_ms();
    waitpid(pid, &status, 0);
    tap_ok(rc == KVS_OK && waits_begun == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "owner 0: its write waited %.0f ms for the holder's close, then succeeded (%s)", t1 - t0,
           kvs_strerror(rc));
    TAP_RC(kvs_close(out), KVS_OK);
}

/* A private handle whose owner id names the file's owner (the host itself,
 * which runs no shared pool meanwhile: PostgreSQL in local mode after a
 * shared-mode run): another process's read section, held longer than the
 * grace (a preempted reader), is a reader to share the file with or wait
 * for, not a host's hold.  Without the owner id, or with another one, the
 * same section is taken for the hold (KVS_EBUSY). */
static void test_own_host(kvs_pool *p1)
{
    kvs *a, *r;
    kvs_slice v;
    kvs_options o;
    double t0, t1;
    int rc, status;
    pid_t pid;

    tap_ok(fill(), "a fresh file");
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    tap_ok(file_u64(HD_OWNER_OFF) == A, "owned by %llu (a shared-mode run), nobody has it open",
           (unsigned long long)A);
    pid = spawn_holder(take_read_section, release_section, 700);   /* outlasts the grace */
    r = NULL;
    TAP_RC(open_as(NULL, 0, KVS_RDONLY, &r), KVS_EBUSY);
    tap_ok(r == NULL, "owner id 0: the other process's read section is taken for a host's hold");
    TAP_RC(open_as(NULL, B, KVS_RDONLY, &r), KVS_EBUSY);
    tap_ok(r == NULL, "another host's owner id: the same");
    kvs_options_init(&o);
    o.owner_id = A;
    o.lock_wait = count_wait;
    waits_begun = 0;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    tap_ok(r != NULL && verify(r) && waits_begun == 0,
           "the owner's own id: opens and reads beside the other reader, no wait");
    t0 = now_ms();
    rc = kvs_put(r, "own", 3, "1", 1, 0);
    t1 = now_ms();
    waitpid(pid, &status, 0);
    tap_ok(rc == KVS_OK && waits_begun == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "and its write waited %.0f ms for that section, then succeeded (%s)", t1 - t0, kvs_strerror(rc));
    TAP_RC(kvs_get(r, "own", 3, &v), KVS_OK);
    TAP_RC(kvs_check(r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
    tap_ok(file_u64(HD_OWNER_OFF) == A, "the owner stays recorded (a private handle records nothing)");
}

static void test_v3(kvs_pool *p1)
{
    kvs *a, *r;
    uint64_t h, h2, id;
    uint32_t ver = 0;

    tap_ok(fill() && file_make_version(path, 3) && file_version() == 3, "the header rewritten as version 3 (no owner)");
    id = file_u64(HD_FILEID_OFF);
    h = hashfile(path);
    TAP_RC(open_as(NULL, 0, KVS_RDONLY, &r), KVS_OK);
    h2 = owner_of(r, &ver);
    tap_ok(verify(r) && h2 == 0 && ver == 3, "a version-3 file reads right: version %u, owner 0",
           (unsigned)ver);
    TAP_RC(kvs_check(r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
    TAP_RC(open_as(p1, A, KVS_RDONLY, &r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
    tap_ok(hashfile(path) == h, "read-only handles (private, shared) leave it byte for byte");
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    tap_ok(file_version() == 6 && file_u64(HD_OWNER_OFF) == A && file_u64(HD_FILEID_OFF) == id &&
           owner_of(a, &ver) == A && ver == 6,
           "a shared open's first write made it version 6 with owner %llu, its id kept", (unsigned long long)A);
    tap_ok(verify(a), "every record still there");
    TAP_RC(kvs_close(a), KVS_OK);

    tap_ok(file_make_version(path, 3) && file_version() == 3, "version 3 again");
    TAP_RC(open_as(NULL, 0, 0, &a), KVS_OK);
    TAP_RC(kvs_put(a, "v4", 2, "1", 1, 0), KVS_OK);
    tap_ok(file_version() == 6 && file_u64(HD_OWNER_OFF) == 0 && file_u64(HD_FILEID_OFF) == id &&
           owner_of(a, &ver) == 0 && ver == 6, "a private handle's first write: version 6, owner 0, id kept");
    TAP_RC(kvs_check(a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
}

static void test_compact(kvs_pool *p1)
{
    kvs *a, *f, *out;
    kvs_slice v;
    uint64_t id;
    int rc;

    tap_ok(fill(), "a fresh file");
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    TAP_RC(open_as(p1, A, 0, &f), KVS_OK);
    TAP_RC(kvs_get(f, "key-000004", 10, &v), KVS_OK);
    id = file_u64(HD_FILEID_OFF);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    tap_ok(file_u64(HD_FILEID_OFF) != id && file_u64(HD_OWNER_OFF) == A && owner_of(a, NULL) == A,
           "a shared handle's compaction: a new file id, the owner kept");
    TAP_RC(kvs_get(f, "key-000004", 10, &v), KVS_OK);
    tap_ok(owner_of(f, NULL) == A && verify(f), "the other handle followed; owner and records there");
    TAP_RC(kvs_close(a), KVS_OK);
    out = NULL;
    rc = open_as(NULL, 0, 0, &out);
    tap_ok(rc == KVS_EBUSY && out == NULL, "the follower holds the new file: a private open is refused (%s)",
           kvs_open_errmsg());
    TAP_RC(kvs_close(f), KVS_OK);
    TAP_RC(open_as(p1, A, 0, &a), KVS_OK);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    rc = open_as(NULL, 0, 0, &out);
    tap_ok(rc == KVS_EBUSY && out == NULL, "the compacting handle holds the new file itself (%s)",
           kvs_open_errmsg());
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(open_as(NULL, 0, 0, &out), KVS_OK);
    id = file_u64(HD_FILEID_OFF);
    TAP_RC(kvs_compact(out, NULL), KVS_OK);
    tap_ok(file_u64(HD_FILEID_OFF) != id && file_u64(HD_OWNER_OFF) == A && verify(out),
           "a private handle's compaction (nobody holds it now) keeps the owner too");
    TAP_RC(kvs_check(out), KVS_OK);
    TAP_RC(kvs_close(out), KVS_OK);
}

int main(void)
{
    void *m1 = NULL, *m2 = NULL;
    kvs_pool *p1 = new_pool(&m1), *p2 = new_pool(&m2);
    snprintf(path, sizeof path, "/tmp/unit_owner.%d.kvs", (int)getpid());
    test_record_and_refuse(p1, p2);
    test_outside(p1);
    test_own_host(p1);
    test_v3(p1);
    test_compact(p1);
    unlink(path);
    free(m1);
    free(m2);
    tap_diag("owner: %d checks", tap_n);
    return tap_done();
}
