/*
 * unit_gen.c - a section that skips its header reread (the journal's change
 * generations, src/engine/README.md "Change generations") still sees every
 * change another process makes to the file.
 *
 * A reader handle of a private pool keeps its header, cache and bucket map
 * from one section to the next as long as the generation of its file's
 * inode in its journal's control file has not moved.  Here it first proves
 * it takes that path (an idle section reads nothing from the file), then
 * forked processes change the file under it in every way a write can reach
 * it: a write through the same journal, a write through another journal
 * (the header then names that one), a write back through the first journal,
 * a compaction (rename over the path), and a crash after kvs_prepare whose
 * record a later open replays.  After each the reader must read the value
 * the other process left.  A file of format 5 (whose writers may not bump)
 * is reread at every section until a write makes it version 6.  The
 * planner's estimate (kvs_size_estimate) read without a section must count
 * another process's new record.  The same sequence runs again with
 * KVS_READ1 sections (one get, no lock while the cache has the page and the
 * generation holds: README "Read sections without the lock"), which must
 * make no flock when idle, refuse a second get, read a cached page as of
 * its begin, and see a write that came after its begin once it has to read
 * the file (the gate takes the lock and finds the generation moved).  Without the bump at a write section's
 * begin, the bump of the journal the header names, the bump at a replay,
 * or the version test, a check here fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

static char dir[] = "/tmp/unit_gen.XXXXXX";
static char path[256], other[300];

/* Puts key "k" = val in one write section of a fresh handle (its journal:
 * `jdir` if given, else the one the header names); with `crash`, prepares
 * the section and dies before the write-back; with `compact`, compacts
 * afterwards.  Runs in a child: 0 when everything worked. */
static int child_write(const char *val, const char *jdir, int crash, int compact)
{
    kvs_options o;
    kvs_journal *j = NULL;
    kvs *db;
    uint64_t lsn;
    int rc;
    kvs_options_init(&o);
    o.flags = KVS_NOSYNC;
    if (jdir) {
        if (kvs_journal_open(jdir, NULL, &j) != KVS_OK)
            return 1;
        o.journal = j;
    }
    if (kvs_open(path, &o, &db) != KVS_OK)
        return 2;
    if (val) {
        if (kvs_begin(db, KVS_WRITE) != KVS_OK || kvs_put(db, "k", 1, val, strlen(val), 0) != KVS_OK)
            return 3;
        if (crash) {
            if (kvs_prepare(db, 0, &lsn) != KVS_OK || lsn == 0)
                return 4;
            _exit(0);       /* the record is in flight, the file has none of it */
        }
        if (kvs_end(db) != KVS_OK)
            return 5;
    }
    if (compact && kvs_compact(db, NULL) != KVS_OK)
        return 6;
    rc = kvs_close(db);
    if (j)
        kvs_journal_close(j);
    return rc != KVS_OK ? 7 : 0;
}

static int in_child(const char *val, const char *jdir, int crash, int compact)
{
    int st;
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_write(val, jdir, crash, compact));
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int read_mode = KVS_READ;     /* the readers' sections: KVS_READ or KVS_READ1 */

/* The reader's value of key in one read section (a static buffer). */
static const char *read_key(kvs *db, const char *key)
{
    static char buf[64];
    kvs_slice s;
    int rc = kvs_begin(db, read_mode);
    if (rc)
        return "(begin failed)";
    rc = kvs_get(db, key, strlen(key), &s);
    if (rc == KVS_OK && s.len < sizeof buf) {
        memcpy(buf, s.data, s.len);
        buf[s.len] = 0;
    } else {
        snprintf(buf, sizeof buf, "(get: %d)", rc);
    }
    kvs_end(db);
    return buf;
}

static const char *read_k(kvs *db)
{
    return read_key(db, "k");
}

/* The reader's I/O table counts its reads of page 0 (the header reread). */
static kvs_os counting;
static uint64_t header_reads;

static ssize_t count_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off == 0)
        header_reads++;
    return kvs_os_posix()->pread(fd, buf, n, off);
}

static uint64_t flocks;

static int count_flock(int fd, int op)
{
    flocks++;
    return kvs_os_posix()->flock(fd, op);
}

static uint64_t file_reads(kvs *db)
{
    (void)db;
    return header_reads;
}

#define SEES(db, want, what) do { \
        const char *got_ = read_k(db); \
        tap_ok(strcmp(got_, want) == 0, "after %s the reader reads %s (got %s)", what, want, got_); \
    } while (0)

/* Writes in a child: key = val (a fresh handle, the header's journal),
 * with `empty` into the file emptied first (kvs_truncate: every page the
 * reader knew is gone, the file shorter). */
static int child_put_in(const char *key, const char *val, int empty)
{
    kvs_options co;
    kvs *w;
    int st;
    pid_t pid = fork();
    if (pid == 0) {
        kvs_options_init(&co);
        co.flags = KVS_NOSYNC;
        _exit(kvs_open(path, &co, &w) != KVS_OK || kvs_begin(w, KVS_WRITE) != KVS_OK ||
              (empty && kvs_truncate(w) != KVS_OK) ||
              kvs_put(w, key, strlen(key), val, strlen(val), 0) != KVS_OK || kvs_end(w) != KVS_OK ||
              kvs_close(w) != KVS_OK);
    }
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int child_put(const char *key, const char *val)
{
    return child_put_in(key, val, 0);
}

/* KVS_READ1 alone: a reader with a 16-frame cache over 3000 records. */
static void read1_rules(void)
{
    kvs_options o;
    kvs *r;
    kvs_slice s;
    uint64_t f0;
    const char *got;
    int i, bad = 0;
    snprintf(path, sizeof path, "%s/r1.kvs", dir);
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_NOSYNC;
    o.os = &counting;
    o.cache_pages = 16;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    TAP_RC(kvs_put(r, "k", 1, "a1", 2, 0), KVS_OK);
    TAP_RC(kvs_begin(r, KVS_WRITE), KVS_OK);
    for (i = 0; i < 3000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "fill-%d", i);
        bad += kvs_put(r, k, (size_t)kl, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 40, 0) != KVS_OK;
    }
    TAP_RC(kvs_end(r), KVS_OK);
    tap_ok(bad == 0, "read1: 3000 more records (%d failed)", bad);
    read_mode = KVS_READ1;
    got = read_k(r);
    got = read_k(r);
    f0 = flocks;
    got = read_k(r);
    tap_ok(strcmp(got, "a1") == 0 && flocks == f0, "read1: an idle one-get section of a cached page makes no flock "
           "(%llu) and reads a1 (got %s)", (unsigned long long)(flocks - f0), got);
    TAP_RC(kvs_begin(r, KVS_READ1), KVS_OK);
    TAP_RC(kvs_get(r, "k", 1, &s), KVS_OK);
    TAP_RC(kvs_get(r, "k", 1, &s), KVS_EINVAL);
    TAP_RC(kvs_end(r), KVS_OK);
    /* a write after the begin: a cached page is read as it was at the begin */
    got = read_k(r);
    TAP_RC(kvs_begin(r, KVS_READ1), KVS_OK);
    tap_ok(child_put("k", "a2"), "read1: another process writes k = a2 after the section began");
    {
        int rc = kvs_get(r, "k", 1, &s);
        tap_ok(rc == KVS_OK && s.len == 2 && memcmp(s.data, "a1", 2) == 0,
               "read1: the section reads k's cached page as of its begin (a1)");
    }
    TAP_RC(kvs_end(r), KVS_OK);
    got = read_k(r);
    tap_ok(strcmp(got, "a2") == 0, "read1: the next section sees a2 (got %s)", got);
    /* a write after the begin, the page not cached: the read from the file
     * takes the lock, finds the generation moved and reads the file anew
     * (the writer emptied the file first: read with the header and bucket
     * map the section began with, the page is past the end of the file) */
    for (i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "fill-%d", (i * 37) % 3000);
        got = read_key(r, k);
        bad += strcmp(got, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") != 0;
    }
    tap_ok(bad == 0, "read1: 200 other keys read through the 16-frame cache (%d wrong)", bad);
    TAP_RC(kvs_begin(r, KVS_READ1), KVS_OK);
    tap_ok(child_put_in("k", "a3", 1), "read1: another process empties the file and writes k = a3 after the section began");
    f0 = flocks;
    {
        int rc = kvs_get(r, "k", 1, &s);
        tap_ok(rc == KVS_OK && s.len == 2 && memcmp(s.data, "a3", 2) == 0 && flocks > f0,
               "read1: k's page not cached: the get takes the lock (%llu flocks) and reads a3 (rc %d, %.*s)",
               (unsigned long long)(flocks - f0), rc, rc == KVS_OK ? (int)s.len : 0, rc == KVS_OK ? s.data : "");
    }
    TAP_RC(kvs_end(r), KVS_OK);
    /* a write before the begin: the section takes the lock at once */
    tap_ok(child_put("k", "a4"), "read1: another process writes k = a4");
    f0 = flocks;
    got = read_k(r);
    tap_ok(strcmp(got, "a4") == 0 && flocks > f0, "read1: the next section locks and reads a4 (got %s)", got);
    TAP_RC(kvs_check(r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
    read_mode = KVS_READ;
}

/* The generation sequence, the readers' sections of read_mode, on file name. */
static void sequence(const char *name)
{
    kvs_options o;
    kvs *r;
    uint64_t before;
    int i;
    snprintf(path, sizeof path, "%s/%s", dir, name);

    /* the file, its header naming <path>-journal; the reader opens it there */
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_NOSYNC;
    o.os = &counting;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    TAP_RC(kvs_put(r, "k", 1, "v1", 2, 0), KVS_OK);
    {
        int bad = 0;
        for (i = 0; i < 200; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "fill-%d", i);
            bad += kvs_put(r, k, (size_t)kl, "x", 1, 0) != KVS_OK;
        }
        tap_ok(bad == 0, "200 more records (%d failed)", bad);
    }
    SEES(r, "v1", "its own write");

    /* the path this test is about is taken: an idle section reads nothing */
    SEES(r, "v1", "a second section");
    before = file_reads(r);
    SEES(r, "v1", "an idle section");
    tap_ok(file_reads(r) == before, "an idle read section does not reread the header (%llu -> %llu reads of page 0)",
           (unsigned long long)before, (unsigned long long)file_reads(r));

    {
        /* the planner's estimate: from memory while nothing moved, and the
         * other process's new record counted once it wrote */
        uint64_t nrec = 0, npg = 0;
        TAP_RC(kvs_size_estimate(r, &nrec, &npg), KVS_OK);
        tap_ok(nrec == 201 && file_reads(r) == before, "an idle estimate: %llu records, no header read",
               (unsigned long long)nrec);
        tap_ok(child_put("new", "n"), "another process adds a record");
        TAP_RC(kvs_size_estimate(r, &nrec, &npg), KVS_OK);
        tap_ok(nrec == 202, "the estimate after it counts it (%llu records)", (unsigned long long)nrec);
    }
    TAP_RC(in_child("v2", NULL, 0, 0), 0);
    SEES(r, "v2", "another process's write through the same journal");

    TAP_RC(in_child("v3", other, 0, 0), 0);
    SEES(r, "v3", "a write through another journal");
    TAP_RC(in_child("v4", NULL, 0, 0), 0);
    SEES(r, "v4", "a write through the journal the header now names");
    {
        char own[300];
        snprintf(own, sizeof own, "%s-journal", path);
        TAP_RC(in_child("v5", own, 0, 0), 0);
        SEES(r, "v5", "a write back through the reader's journal");
    }
    before = file_reads(r);
    SEES(r, "v5", "an idle section");
    tap_ok(file_reads(r) == before, "the header names the reader's journal again: no reread");

    TAP_RC(in_child("v6", NULL, 0, 1), 0);
    SEES(r, "v6", "another process's write and compaction");
    {
        kvs_stats st;
        TAP_RC(kvs_stats_get(r, &st), KVS_OK);
        tap_ok(st.reopens == 1, "the reader followed the compaction (reopens %llu)",
               (unsigned long long)st.reopens);
    }
    SEES(r, "v6", "an idle section on the new file");

    /* a crash after kvs_prepare: the file has nothing of it until an open
     * recovers it (the crashed writer's begin already moved the
     * generation: the reader reads once in between, then must see the
     * replay's change too) */
    TAP_RC(in_child("v7", NULL, 1, 0), 0);
    SEES(r, "v6", "a writer's crash after prepare (not replayed yet)");
    TAP_RC(in_child(NULL, NULL, 0, 0), 0);
    SEES(r, "v7", "another process's open that replayed the record");

    TAP_RC(kvs_check(r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
}

int main(void)
{
    kvs_options o;
    kvs *r;
    uint64_t before;
    int i;
    if (!mkdtemp(dir))
        return 1;
    snprintf(other, sizeof other, "%s/other-journal", dir);
    counting = *kvs_os_posix();
    counting.pread = count_pread;
    counting.flock = count_flock;
    sequence("t.kvs");
    read_mode = KVS_READ1;
    snprintf(other, sizeof other, "%s/other-journal-1", dir);
    sequence("t1.kvs");
    read_mode = KVS_READ;
    read1_rules();
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_NOSYNC;

    /* A version-5 file may have an engine at work on it that does not bump
     * (format 5 came before the rule): its header is reread at every
     * section until this engine's first write makes it version 6. */
    snprintf(path, sizeof path, "%s/t5.kvs", dir);
    o.os = NULL;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    TAP_RC(kvs_put(r, "k", 1, "u1", 2, 0), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);
    tap_ok(file_make_version(path, 5) && file_le64(path, 24) % (1ull << 32) == 5,
           "a file rewritten as format 5 (its journal path kept)");
    o.flags = KVS_NOSYNC;
    o.os = &counting;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    SEES(r, "u1", "the version-5 file's first section");
    before = file_reads(r);
    SEES(r, "u1", "a second section");
    SEES(r, "u1", "a third section");
    tap_ok(file_reads(r) - before == 2, "a version-5 header is reread at every section (%llu reads of page 0 in 2)",
           (unsigned long long)(file_reads(r) - before));
    TAP_RC(in_child("u2", NULL, 0, 0), 0);
    tap_ok(file_le64(path, 24) % (1ull << 32) == 6, "another process's write made the file version 6");
    SEES(r, "u2", "that write");
    before = file_reads(r);
    SEES(r, "u2", "an idle section of the version-6 file");
    tap_ok(file_reads(r) == before, "version 6: an idle section rereads nothing (%llu -> %llu)",
           (unsigned long long)before, (unsigned long long)file_reads(r));
    TAP_RC(kvs_check(r), KVS_OK);
    TAP_RC(kvs_close(r), KVS_OK);

    /* The control file's layout (src/engine/README.md, "Control file"): the
     * cluster-wide counters at 3968..4024 and the generations after them,
     * 4024..4088, neither written over by the other; 4088..4096 zero. */
    {
        char ctl[400];
        uint64_t rec0, gens0 = 0, gens1 = 0;
        kvs_journal *j;
        kvs_journal_stats js;
        snprintf(ctl, sizeof ctl, "%s-journal/control", path);
        rec0 = file_le64(ctl, 3968);
        for (i = 0; i < 8; i++)
            gens0 += file_le64(ctl, 4024 + 8 * i);
        TAP_RC(in_child("u3", NULL, 0, 0), 0);
        for (i = 0; i < 8; i++)
            gens1 += file_le64(ctl, 4024 + 8 * i);
        tap_ok(file_le64(ctl, 3968) == rec0 + 1 && gens1 == gens0 + 1 && file_le64(ctl, 4088) == 0,
               "one write: the records counter at 3968 %llu -> %llu, the generations at 4024..4088 "
               "%llu -> %llu, 4088 zero", (unsigned long long)rec0, (unsigned long long)file_le64(ctl, 3968),
               (unsigned long long)gens0, (unsigned long long)gens1);
        snprintf(ctl, sizeof ctl, "%s-journal", path);
        TAP_RC(kvs_journal_open(ctl, NULL, &j), KVS_OK);
        kvs_journal_stats_cluster(j, &js);
        snprintf(ctl, sizeof ctl, "%s-journal/control", path);
        tap_ok(js.records == file_le64(ctl, 3968), "kvs_journal_stats_cluster reads the counter there (%llu)",
               (unsigned long long)js.records);
        kvs_journal_close(j);
    }
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            tap_diag("could not remove %s", dir);
    }
    return tap_done();
}
