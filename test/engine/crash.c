/*
 * crash.c - a child process committing in a loop, killed; the reopened file
 * must equal what the child had committed.
 *
 * Every cycle forks a child that opens the file (through crashos.h's table)
 * and commits transactions numbered c = 1, 2, ... (carrying on from the
 * previous cycle's): each is derived from (seed, c) alone -- 1 to 40 puts
 * and deletes of random keys out of NKEYS in one write section ended by
 * kvs_end, or a single put or delete in its own implicit section; values of
 * 0-300 bytes, now and then 20-200 KB (value chains) -- and writes c to a
 * pipe once kvs_end returned.  The parent keeps the model (for each key: the
 * commit that last wrote it and the value's length; the bytes follow from
 * those), kills the child, reopens the file (recovery runs in kvs_open) and
 * requires: kvs_check clean, and every record equal to the model after the
 * last commit the child acknowledged, or after the one in flight (the kill
 * may come between kvs_end's return and the pipe write).  Never anything
 * else: a lost acknowledged commit or a part of one is a failure.  Then it
 * moves the model on and starts the next cycle on the same file.
 *
 * The kills, in turn:
 *   random    SIGKILL after a random delay (0-30 ms of committing);
 *   at write  the child's table crashes at its Nth crash point (each write,
 *             fsync, ftruncate, name change) counted from the start of its
 *             K-th commit (K random, 1-4), for N = 1, 2, ... until a commit
 *             has fewer points, then again from N = 1: every write of a
 *             commit; the crash follows the models of crashos.h in turn
 *             (kill, power, torn-*, reorder: a power loss also changes the
 *             boot id the engine reads), each model with its own sweep of
 *             N, and an acknowledged commit must survive all of them
 *             (kvs_end returns once its record is durable).
 * Every other cycle the file uses a journal the test opens with a small
 * checkpoint size (256 KiB), so kills land in checkpoints too; the others
 * the handle's own journal (kvs_options.journal NULL).
 *
 *   crash [-s SEED]   cycles: KVS_CRASH_CYCLES (default 400, 40 with
 *                     KVS_TEST_QUICK), at most KVS_CRASH_SECONDS (default 60);
 *                     KVS_CRASH_ONLY_POINTS: no random kills (the run is then
 *                     the same for the same seed, to reproduce a failure);
 *                     KVS_CRASH_STOP: stop at the first failure, keeping a
 *                     copy of the crashed files as the reopen found them;
 *                     KVS_CRASH_VERBOSE: a line per cycle
 */
#include "kvs.h"
#include "tap.h"
#include "files.h"
#include "crashos.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NKEYS  2000
#define MAXV   (200 * 1024)
#define JCHECKPOINT (256 * 1024)

static char dir[] = "/tmp/kvs_crash.XXXXXX";
static char path[300], jdir[300], hidden[300];
static uint64_t seed = 42;
static unsigned char vbuf[MAXV], ebuf[MAXV];

/* ---- the transactions: everything follows from (seed, c) --------------------- */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct op { uint32_t key, len; int del; } op;
typedef struct txn { int nops, implicit; op ops[40]; } txn;

static void txn_of(uint64_t c, txn *t)
{
    uint64_t r = mix(seed * 0x9e3779b97f4a7c15ULL + c);
    int i;
    t->implicit = r % 4 == 0;
    t->nops = t->implicit ? 1 : 1 + (int)(mix(r + 1) % 40);
    for (i = 0; i < t->nops; i++) {
        uint64_t x = mix(r + 2 + (uint64_t)i);
        t->ops[i].key = (uint32_t)(x % NKEYS);
        t->ops[i].del = (x >> 20) % 5 == 0;
        t->ops[i].len = (x >> 24) % 60 == 0 ? 20000 + (uint32_t)((x >> 32) % (MAXV - 20000))
                                            : (uint32_t)((x >> 32) % 301);
    }
}

static size_t key_of(uint32_t k, char *buf) { return (size_t)sprintf(buf, "crash-key-%05u", k); }

static void val_of(uint32_t k, uint64_t c, uint32_t len, unsigned char *v)
{
    uint64_t h = mix(((uint64_t)k << 40) ^ c ^ ((uint64_t)len << 20));
    uint32_t i;
    for (i = 0; i < len; i++) {
        if ((i & 7) == 0)
            h = mix(h + i);
        v[i] = (unsigned char)(h >> (8 * (i & 7)));
    }
}

/* ---- the model ------------------------------------------------------------------ */
typedef struct mrec { uint64_t c; uint32_t len; int present; } mrec;
static mrec mstate[NKEYS], trial[NKEYS];

static void apply(mrec *m, uint64_t c)
{
    txn t;
    int i;
    txn_of(c, &t);
    for (i = 0; i < t.nops; i++) {
        mrec *e = &m[t.ops[i].key];
        if (t.ops[i].del)
            e->present = 0;
        else {
            e->present = 1;
            e->c = c;
            e->len = t.ops[i].len;
        }
    }
}

/* Does the open file hold exactly m?  why: the first difference. */
static int matches(kvs *db, const mrec *m, char *why, size_t wl)
{
    char k[64];
    kvs_slice v;
    uint32_t i;
    long n = 0, want = 0;
    int rc;
    for (i = 0; i < NKEYS; i++) {
        rc = kvs_get(db, k, key_of(i, k), &v);
        if (rc != KVS_OK && rc != KVS_NOTFOUND) {
            snprintf(why, wl, "get %u: %s", i, kvs_strerror(rc));
            return 0;
        }
        if ((rc == KVS_OK) != m[i].present) {
            snprintf(why, wl, "key %u %s", i, m[i].present ? "missing" : "present, should not be");
            return 0;
        }
        if (rc == KVS_OK) {
            want++;
            val_of(i, m[i].c, m[i].len, ebuf);
            if (v.len != m[i].len || memcmp(v.data, ebuf, v.len) != 0) {
                snprintf(why, wl, "key %u: value of %zu bytes, the model's is commit %llu, %u bytes", i,
                         v.len, (unsigned long long)m[i].c, m[i].len);
                return 0;
            }
        }
    }
    if ((rc = test_count(db, &n)) != KVS_OK || n != want) {
        snprintf(why, wl, "the cursor returns %ld records (%s), the model has %ld", n, kvs_strerror(rc), want);
        return 0;
    }
    return 1;
}

/* ---- opening, with the journal of the cycle ------------------------------------- */
static int open_db(int own_journal, kvs_journal **j, kvs **db, int create)
{
    kvs_options o;
    int rc;
    *j = NULL;
    kvs_options_init(&o);
    o.os = &crash_os;
    o.cache_pages = 64;
    if (create)
        o.flags = KVS_CREATE;
    if (own_journal) {
        kvs_journal_options jo;
        kvs_journal_options_init(&jo);
        jo.os = &crash_os;
        jo.checkpoint_bytes = JCHECKPOINT;
        if ((rc = kvs_journal_open(jdir, &jo, j)) != KVS_OK)
            return rc;
        o.journal = *j;
    }
    if ((rc = kvs_open(path, &o, db)) != KVS_OK && *j) {
        kvs_journal_close(*j);
        *j = NULL;
    }
    return rc;
}

static void close_db(kvs *db, kvs_journal *j)
{
    kvs_close(db);
    if (j)
        kvs_journal_close(j);
}

/* ---- the child ---------------------------------------------------------------------- */
typedef struct shared {
    cr_report rep;
    long commit_points;     /* points of the K-th commit, when it completed */
    int  reached;           /* the K-th commit began */
} shared;
static shared *sh;

static int commit_one(kvs *db, uint64_t c)
{
    txn t;
    char k[64];
    int i, rc = KVS_OK;
    txn_of(c, &t);
    if (!t.implicit && (rc = kvs_begin(db, KVS_WRITE)) != KVS_OK)
        return rc;
    for (i = 0; i < t.nops && rc == KVS_OK; i++) {
        size_t kl = key_of(t.ops[i].key, k);
        if (t.ops[i].del) {
            rc = kvs_delete(db, k, kl);
            if (rc == KVS_NOTFOUND)
                rc = KVS_OK;
        } else {
            val_of(t.ops[i].key, c, t.ops[i].len, vbuf);
            rc = kvs_put(db, k, kl, vbuf, t.ops[i].len, 0);
        }
    }
    if (t.implicit)
        return rc;
    if (rc != KVS_OK) {
        (void)kvs_abort(db);
        return rc;
    }
    return kvs_end(db);
}

/* Commits c0, c0+1, ... and acknowledges each on fd.  model >= 0: crash at
 * point `at` of commit number c0+K-1 under that model. */
static void child(int fd, int own_journal, uint64_t c0, int model, int K, long at)
{
    kvs_journal *j;
    kvs *db;
    uint64_t c;
    int rc;
    if ((rc = open_db(own_journal, &j, &db, 0)) != KVS_OK) {
        fprintf(stderr, "child: open: %s: %s\n", kvs_strerror(rc), kvs_open_errmsg());
        _exit(3);
    }
    cr_rep = &sh->rep;
    if (model >= 0)
        cr_arm(model, 0, CR_IS_POWER(model));
    for (c = c0;; c++) {
        if (model >= 0 && c == c0 + (uint64_t)K - 1) {
            sh->reached = 1;
            cr_window(at);
        }
        if ((rc = commit_one(db, c)) != KVS_OK) {
            fprintf(stderr, "child: commit %llu: %s: %s\n", (unsigned long long)c, kvs_strerror(rc),
                    kvs_errmsg(db));
            _exit(4);
        }
        if (model >= 0 && c == c0 + (uint64_t)K - 1) {
            /* the crash point was past this commit's last: stop here */
            sh->commit_points = cr_points;
            if (write(fd, &c, sizeof c) != (ssize_t)sizeof c)
                _exit(5);
            cr_disarm();
            close_db(db, j);
            _exit(0);
        }
        if (write(fd, &c, sizeof c) != (ssize_t)sizeof c)
            _exit(5);
    }
}

/* ---- cycles ------------------------------------------------------------------------- */
static uint64_t prng = 7;
static uint64_t rnd(void) { return mix(prng += 0x9e3779b97f4a7c15ULL); }

typedef struct tally { int cycles, bad, unclean, wrong, inflight, errors; long acked; } tally;

/* Builds the file afresh from the model (after a failure, so the next
 * cycle starts from a known state). */
static int rebuild(void)
{
    kvs_journal *j;
    kvs *db;
    char k[64];
    uint32_t i;
    int rc, ok = 1;
    rmtree(path);
    rmtree(jdir);
    {
        char pj[400];
        snprintf(pj, sizeof pj, "%s-journal", path);
        rmtree(pj);
    }
    if ((rc = open_db(0, &j, &db, 1)) != KVS_OK)
        return 0;
    for (i = 0; i < NKEYS && ok; i++)
        if (mstate[i].present) {
            val_of(i, mstate[i].c, mstate[i].len, vbuf);
            ok = kvs_put(db, k, key_of(i, k), vbuf, mstate[i].len, 0) == KVS_OK;
        }
    close_db(db, j);
    return ok;
}

/* One cycle.  kind 0: random SIGKILL; 1: crash at point `at` of commit K
 * under `model`.  Returns 1 if the file was right; *ran_out: the K-th
 * commit completed before its point `at`. */
static int cycle(int kind, int own_journal, int model, int K, long at, uint64_t *next_c, tally *t,
                 int *ran_out)
{
    int pfd[2], status, ok, rc;
    pid_t pid;
    uint64_t c, last = *next_c - 1;
    kvs_journal *j;
    kvs *db;
    char why[500] = "";

    *ran_out = 0;
    rmtree(hidden);
    mkdir(hidden, 0755);
    memset(sh, 0, sizeof *sh);
    cr_reset();
    if (pipe(pfd) != 0)
        return 0;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child(pfd[1], own_journal, *next_c, kind ? model : -1, K, at);
    }
    close(pfd[1]);
    if (kind == 0) {
        struct timespec ts = { 0, (long)(rnd() % 30000) * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    while (read(pfd[0], &c, sizeof c) == (ssize_t)sizeof c)
        last = c;
    close(pfd[0]);
    waitpid(pid, &status, 0);
    t->cycles++;
    if (kind == 0 ? !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                  : !(WIFEXITED(status) && (WEXITSTATUS(status) == CR_EXIT || WEXITSTATUS(status) == 0))) {
        t->errors++;
        printf("# cycle %d: the child %s %d\n", t->cycles, WIFSIGNALED(status) ? "died of signal" : "exited with",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    if (kind == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        *ran_out = 1;
    if (getenv("KVS_CRASH_VERBOSE"))
        printf("# cycle: child %ld, %s, %s journal, model %s, K %d, point %ld: %s at point %ld, acknowledged %llu\n",
               (long)pid, kind ? "at a point" : "random kill", own_journal ? "the test's" : "the handle's",
               kind ? cr_model_name[model] : "-", K, at, sh->rep.crashed ? "crashed" : "no crash", sh->rep.point,
               (unsigned long long)last);
    /* the model after the last acknowledged commit */
    for (c = *next_c; c <= last; c++)
        apply(mstate, c);
    t->acked += (long)(last + 1 - *next_c);
    *next_c = last + 1;
    if (kind == 1 && CR_IS_POWER(model) && sh->rep.crashed)
        cr_reboot();
    if (getenv("KVS_CRASH_STOP")) {
        /* debugging: the crashed files as the reopen finds them */
        char keep[400];
        snprintf(keep, sizeof keep, "%s.crashed", dir);
        rmtree(keep);
        copytree(dir, keep);
    }
    if ((rc = open_db(own_journal, &j, &db, 0)) != KVS_OK) {
        snprintf(why, sizeof why, "reopen: %s: %s", kvs_strerror(rc), kvs_open_errmsg());
        ok = 0;
        t->unclean++;
    } else {
        if ((rc = kvs_check(db)) != KVS_OK) {
            snprintf(why, sizeof why, "check: %s", kvs_errmsg(db));
            ok = 0;
            t->unclean++;
        } else if (matches(db, mstate, why, sizeof why))
            ok = 1;
        else {
            char why2[300];
            memcpy(trial, mstate, sizeof mstate);
            apply(trial, *next_c);
            ok = matches(db, trial, why2, sizeof why2);
            if (ok) {
                memcpy(mstate, trial, sizeof mstate);
                (*next_c)++;
                t->inflight++;
            } else {
                t->wrong++;     /* an acknowledged commit lost, or a part of one */
                snprintf(why + strlen(why), sizeof why - strlen(why), "; with commit %llu too: %.120s",
                         (unsigned long long)*next_c, why2);
            }
        }
        close_db(db, j);
    }
    if (!ok) {
        t->bad++;
        if (t->bad <= 5)
            printf("# cycle %d (%s, %s journal%s%s, K %d, point %ld): last acknowledged commit %llu: %s\n",
                   t->cycles, kind ? "crash at a point" : "random SIGKILL", own_journal ? "the test's" : "the handle's",
                   kind ? ", " : "", kind ? cr_model_name[model] : "", K, at, (unsigned long long)last, why);
        if (getenv("KVS_CRASH_STOP")) {
            printf("# KVS_CRASH_STOP: the crashed files are in %s.crashed\n", dir);
            exit(1);
        }
        if (!rebuild())
            printf("# cannot rebuild the file\n");
    }
    return ok;
}

int main(int argc, char **argv)
{
    const char *e;
    int cycles, quick = getenv("KVS_TEST_QUICK") != NULL, i, ran_out, model, K[CR_NMODELS], only_points;
    double seconds, t0;
    long at[CR_NMODELS], maxpoints = 0, points_done = 0;
    uint64_t next_c = 1;
    tally tr = {0}, tp = {0}, tm[CR_NMODELS];
    struct timespec ts;
    kvs_journal *j;
    kvs *db;

    for (i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "-s") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
    e = getenv("KVS_CRASH_CYCLES");
    cycles = e ? atoi(e) : quick ? 40 : 400;
    e = getenv("KVS_CRASH_SECONDS");
    seconds = e ? atof(e) : 60;
    only_points = getenv("KVS_CRASH_ONLY_POINTS") != NULL;
    memset(tm, 0, sizeof tm);
    for (i = 0; i < CR_NMODELS; i++) {
        K[i] = 1 + i % 4;
        at[i] = 1;
    }
    prng = seed;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof path, "%s/crash.kvs", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    snprintf(hidden, sizeof hidden, "%s/kept", dir);
    snprintf(cr_hidden, sizeof cr_hidden, "%s", hidden);
    snprintf(cr_boot_file, sizeof cr_boot_file, "%s/boot_id", dir);
    cr_seed = seed;
    cr_reboot();
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    if (open_db(0, &j, &db, 1) != KVS_OK) {
        tap_ok(0, "create the file: %s", kvs_open_errmsg());
        return tap_done();
    }
    close_db(db, j);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    for (i = 0; i < cycles; i++) {
        int own = i % 4 >= 2;       /* two cycles each way, in turn */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec + ts.tv_nsec / 1e9 - t0 > seconds) {
            tap_diag("stopped after %d cycles: the %.0f s bound (KVS_CRASH_SECONDS)", i, seconds);
            break;
        }
        if (i % 2 == 0) {
            if (!only_points)
                cycle(0, own, 0, 0, 0, &next_c, &tr, &ran_out);
            continue;
        }
        /* the models in turn, each with its own sweep of the points */
        model = (i / 2) % CR_NMODELS;
        cycle(1, own, model, K[model], at[model], &next_c, &tm[model], &ran_out);
        if (ran_out) {
            /* every point of that commit done: from 1 again, on a new one */
            if (sh->commit_points > maxpoints)
                maxpoints = sh->commit_points;
            at[model] = 1;
            K[model] = 1 + (int)(rnd() % 4);
        } else {
            points_done++;
            at[model]++;
        }
    }
    for (i = 0; i < CR_NMODELS; i++) {
        tp.cycles += tm[i].cycles; tp.bad += tm[i].bad; tp.unclean += tm[i].unclean; tp.wrong += tm[i].wrong;
        tp.inflight += tm[i].inflight; tp.errors += tm[i].errors;
        tp.acked += tm[i].acked;
    }
    tap_ok((only_points || tr.cycles > 0) && tr.bad == 0 && tr.errors == 0,
           "random SIGKILL: %d cycles, %ld acknowledged commits, the file right after every one "
           "(%d with the commit in flight too); %d in neither state (a lost or partial commit), %d unclean or "
           "unopenable, %d child errors", tr.cycles, tr.acked, tr.inflight, tr.wrong, tr.unclean, tr.errors);
    for (i = 0; i < CR_NMODELS; i++)
        tap_ok(tm[i].cycles > 0 && tm[i].bad == 0 && tm[i].errors == 0,
               "crash at each point of a commit, %s model: %d cycles, %ld acknowledged commits; %d in "
               "neither state, %d unclean or unopenable, %d child errors (%d with the commit in flight)",
               cr_model_name[i], tm[i].cycles, tm[i].acked, tm[i].wrong, tm[i].unclean,
               tm[i].errors, tm[i].inflight);
    tap_ok(tp.cycles > 0, "crash at a point: %d cycles, %ld of them at a point inside the commit (longest commit "
           "swept: %ld points), %ld commits acknowledged", tp.cycles, points_done, maxpoints, tp.acked);
    rmtree(dir);
    if (getenv("KVS_CRASH_STOP")) {
        char keep[400];
        snprintf(keep, sizeof keep, "%s.crashed", dir);
        rmtree(keep);
    }
    return tap_done();
}
