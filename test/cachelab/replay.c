/*
 * replay.c - offline replay of kvs page-access traces (kvs_set_trace,
 * kvs_fdw.trace_directory) through LRU, clock sweep and Belady's MIN.
 *
 *   replay [--frames N[,N...]] [--group all|pid] [--nocount FILE]... FILE...
 *   replay --selftest
 *
 * Each trace file is an array of kvs_trace_rec (src/engine/kvs.h): seq,
 * file_slot, page, flags.  The records of all files are merged by seq (one
 * counter per pool, so the files of the handles of one pool merge into the
 * order the pool saw); with --group pid the files of each backend
 * (kvs-trace.<pid>.<n>) form a pool of their own, as the backend-local
 * caches do.  Files given with --nocount are replayed too but their
 * accesses are not counted: a warm-up run's trace warms the simulated pools
 * as it warmed the live one, and another client's accesses (a full scan
 * beside the lookups) compete for the frames without being the figure.  For each frame count each pool starts empty and is
 * simulated with
 *   lru    exact LRU (a hit moves the page to the head),
 *   clock  the engine's clock sweep (src/engine/pool.c policy_victim,
 *          PostgreSQL's StrategyGetBuffer): usage count 1 on admit, +1 per
 *          hit up to 5, a hand that decrements counts and takes the first
 *          frame at 0; empty frames are used first, in frame order,
 *   min    Belady's optimal demand-paging policy: on a miss in a full pool
 *          evict the page whose next use is farthest (an indexed max-heap
 *          over the frames keyed by precomputed next-use positions),
 * and the misses among the counted accesses are printed, with the live
 * pool's own misses (records without KVS_TRACE_HIT) beside them:
 *
 *   frames  policy  accesses  misses  misses_per_access  all_misses
 *
 * all_misses counts the misses of every replayed access, counted or not.
 * MIN is optimal for that total, not for the counted accesses alone: with
 * uncounted accesses beside the counted ones (a scanner's), MIN may give a
 * counted page's frame to a scan page used again sooner, and LRU or clock,
 * which keep it, may miss fewer counted accesses while missing more in all.
 * So the invariant checked is MIN's all_misses <= LRU's and clock's.
 *
 * Pages are keyed by (file_slot, page).  The simulation ignores pins (the
 * live pool skips a pinned frame when it picks a victim) and bulk-read rings
 * (KVS_TRACE_RING misses are replayed like any other access), so the live
 * and replayed figures of LRU and clock agree closely, not always exactly.
 * --selftest runs hand-made traces with known answers and random ones
 * against the invariants (MIN <= LRU, MIN <= clock, cold misses), and
 * exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the record of src/engine/kvs.h, repeated so this tool builds alone */
typedef struct trace_rec {
    uint64_t seq;
    uint32_t file_slot;
    uint32_t page;
    uint32_t flags;
    uint32_t pad;
} trace_rec;
#define TRACE_HIT 0x1
#define NONE      UINT32_MAX
#define USAGE_MAX 5

typedef struct acc {
    uint64_t seq;
    uint64_t key;          /* file_slot << 32 | page */
    uint32_t group;        /* pool it belongs to */
    uint8_t  counted;      /* not from a --nocount file */
    uint8_t  live_hit;     /* the live pool had the page */
} acc;

typedef struct trace {     /* the accesses of one pool, in seq order */
    size_t    n;
    uint32_t *id;          /* dense page id of each acc */
    uint8_t  *counted, *live_hit;
    uint32_t  npages;      /* distinct pages */
} trace;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "replay: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static int cmp_access(const void *a, const void *b)
{
    const acc *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- reading ---------------------------------------------------------------- */

static acc *all;
static size_t nall, capall;

/* the pid of kvs-trace.<pid>.<n>, or 0 */
static uint32_t file_pid(const char *path)
{
    const char *b = strrchr(path, '/'), *p;
    b = b ? b + 1 : path;
    p = strstr(b, "kvs-trace.");
    return p ? (uint32_t)strtoul(p + 10, NULL, 10) : 0;
}

static int read_file(const char *path, uint32_t group, int counted)
{
    FILE *f = fopen(path, "rb");
    trace_rec r[1024];
    size_t k, i;
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((k = fread(r, sizeof r[0], 1024, f)) > 0) {
        if (nall + k > capall) {
            capall = (nall + k) * 2;
            acc *na = realloc(all, capall * sizeof *all);
            if (!na) {
                fprintf(stderr, "replay: out of memory\n");
                exit(2);
            }
            all = na;
        }
        for (i = 0; i < k; i++) {
            acc *a = &all[nall++];
            a->seq = r[i].seq;
            a->key = (uint64_t)r[i].file_slot << 32 | r[i].page;
            a->group = group;
            a->counted = (uint8_t)counted;
            a->live_hit = (r[i].flags & TRACE_HIT) != 0;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (ftell(f) % (long)sizeof(trace_rec))
        fprintf(stderr, "replay: %s ends in a partial record (ignored)\n", path);
    fclose(f);
    return 0;
}

/* dense ids for the keys of a[0..n) (open addressing, keys never deleted) */
static void build_trace(const acc *a, size_t n, trace *t)
{
    size_t cap = 16, i;
    uint64_t *keys;
    uint32_t *ids;
    while (cap < 2 * n)
        cap <<= 1;
    keys = xmalloc(cap * sizeof *keys);
    ids = xmalloc(cap * sizeof *ids);
    for (i = 0; i < cap; i++)
        ids[i] = NONE;
    t->n = n;
    t->id = xmalloc(n * sizeof *t->id);
    t->counted = xmalloc(n);
    t->live_hit = xmalloc(n);
    t->npages = 0;
    for (i = 0; i < n; i++) {
        uint64_t h = a[i].key * 0x9E3779B97F4A7C15ULL;
        size_t s = (size_t)(h >> 20) & (cap - 1);
        while (ids[s] != NONE && keys[s] != a[i].key)
            s = (s + 1) & (cap - 1);
        if (ids[s] == NONE) {
            keys[s] = a[i].key;
            ids[s] = t->npages++;
        }
        t->id[i] = ids[s];
        t->counted[i] = a[i].counted;
        t->live_hit[i] = a[i].live_hit;
    }
    free(keys);
    free(ids);
}

static void free_trace(trace *t)
{
    free(t->id);
    free(t->counted);
    free(t->live_hit);
}

/* ---- the policies: each returns the misses among the counted accesses ------- */

/* page id -> frame holding it, all NONE (no page cached) */
static uint32_t *no_frames(const trace *t)
{
    uint32_t *where = xmalloc(t->npages * sizeof *where);
    uint32_t i;
    for (i = 0; i < t->npages; i++)
        where[i] = NONE;
    return where;
}

static uint64_t sim_lru(const trace *t, uint32_t frames, uint64_t *all_misses)
{
    uint32_t *where = no_frames(t);
    uint32_t *page = xmalloc(frames * sizeof *page), *prev = xmalloc(frames * sizeof *prev),
             *next = xmalloc(frames * sizeof *next);
    uint32_t head = NONE, tail = NONE, used = 0, f;
    uint64_t misses = 0;
    size_t i;
    for (i = 0; i < t->n; i++) {
        uint32_t id = t->id[i];
        f = where[id];
        if (f != NONE) {
            if (f == head)
                continue;
            /* unlink */
            next[prev[f]] = next[f];
            if (next[f] != NONE)
                prev[next[f]] = prev[f];
            else
                tail = prev[f];
        } else {
            misses += t->counted[i];
            (*all_misses)++;
            if (used < frames) {
                f = used++;
            } else {
                f = tail;
                tail = prev[f];
                if (tail != NONE)
                    next[tail] = NONE;
                else
                    head = NONE;
                where[page[f]] = NONE;
            }
            page[f] = id;
            where[id] = f;
        }
        /* push at head */
        prev[f] = NONE;
        next[f] = head;
        if (head != NONE)
            prev[head] = f;
        head = f;
        if (tail == NONE)
            tail = f;
    }
    free(where);
    free(page);
    free(prev);
    free(next);
    return misses;
}

static uint64_t sim_clock(const trace *t, uint32_t frames, uint64_t *all_misses)
{
    uint32_t *where = no_frames(t);
    uint32_t *page = xmalloc(frames * sizeof *page);
    uint8_t *usage = xmalloc(frames);
    uint32_t hand = 0, used = 0, f;
    uint64_t misses = 0;
    size_t i;
    for (i = 0; i < t->n; i++) {
        uint32_t id = t->id[i];
        f = where[id];
        if (f != NONE) {
            if (usage[f] < USAGE_MAX)
                usage[f]++;
            continue;
        }
        misses += t->counted[i];
        (*all_misses)++;
        if (used < frames) {
            f = used++;
        } else {
            for (;;) {
                f = hand;
                hand = f + 1 < frames ? f + 1 : 0;
                if (usage[f] == 0)
                    break;
                usage[f]--;
            }
            where[page[f]] = NONE;
        }
        page[f] = id;
        usage[f] = 1;
        where[id] = f;
    }
    free(where);
    free(page);
    free(usage);
    return misses;
}

/* MIN: an indexed max-heap of the frames by the next use of their page */
typedef struct minheap {
    uint32_t n;
    uint32_t *heap;        /* frame numbers */
    uint32_t *pos;         /* frame -> index in heap */
    uint64_t *nextuse;     /* frame -> next access position of its page */
} minheap;

static void heap_swap(minheap *h, uint32_t a, uint32_t b)
{
    uint32_t fa = h->heap[a], fb = h->heap[b];
    h->heap[a] = fb;
    h->heap[b] = fa;
    h->pos[fb] = a;
    h->pos[fa] = b;
}

static void heap_up(minheap *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->nextuse[h->heap[p]] >= h->nextuse[h->heap[i]])
            break;
        heap_swap(h, p, i);
        i = p;
    }
}

static void heap_down(minheap *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->nextuse[h->heap[l]] > h->nextuse[h->heap[m]])
            m = l;
        if (r < h->n && h->nextuse[h->heap[r]] > h->nextuse[h->heap[m]])
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
}

static uint64_t sim_min(const trace *t, uint32_t frames, uint64_t *all_misses)
{
    uint64_t *nextpos = xmalloc(t->n * sizeof *nextpos);
    uint64_t *last = xmalloc(t->npages * sizeof *last);
    uint32_t *where = xmalloc(t->npages * sizeof *where);
    uint32_t *page = xmalloc(frames * sizeof *page);
    minheap h;
    uint64_t misses = 0;
    size_t i;
    h.n = 0;
    h.heap = xmalloc(frames * sizeof *h.heap);
    h.pos = xmalloc(frames * sizeof *h.pos);
    h.nextuse = xmalloc(frames * sizeof *h.nextuse);
    for (i = 0; i < t->npages; i++) {
        last[i] = UINT64_MAX;          /* never used again */
        where[i] = NONE;
    }
    for (i = t->n; i-- > 0;) {
        nextpos[i] = last[t->id[i]];
        last[t->id[i]] = i;
    }
    for (i = 0; i < t->n; i++) {
        uint32_t id = t->id[i], f = where[id];
        if (f != NONE) {
            h.nextuse[f] = nextpos[i];  /* later than i: moves up */
            heap_up(&h, h.pos[f]);
            continue;
        }
        misses += t->counted[i];
        (*all_misses)++;
        if (h.n < frames) {
            f = h.n;
            h.heap[h.n] = f;
            h.pos[f] = h.n++;
        } else {
            f = h.heap[0];              /* farthest next use */
            where[page[f]] = NONE;
        }
        page[f] = id;
        where[id] = f;
        h.nextuse[f] = nextpos[i];
        heap_up(&h, h.pos[f]);
        heap_down(&h, h.pos[f]);
    }
    free(nextpos);
    free(last);
    free(where);
    free(page);
    free(h.heap);
    free(h.pos);
    free(h.nextuse);
    return misses;
}

/* ---- running ------------------------------------------------------------------ */

typedef struct result {
    uint64_t accesses, live, lru, clock, min, npages;
    /* misses over every replayed access, counted or not: what MIN minimizes */
    uint64_t lru_all, clock_all, min_all;
} result;

/* sorts all[0..nall), splits it by group, replays each at `frames` */
static void replay_all(uint32_t frames, result *r)
{
    size_t s = 0, e, i;
    memset(r, 0, sizeof *r);
    qsort(all, nall, sizeof *all, cmp_access);
    while (s < nall) {
        trace t;
        for (e = s; e < nall && all[e].group == all[s].group; e++)
            ;
        build_trace(all + s, e - s, &t);
        for (i = 0; i < t.n; i++) {
            r->accesses += t.counted[i];
            r->live += t.counted[i] && !t.live_hit[i];
        }
        r->npages += t.npages;
        r->lru += sim_lru(&t, frames, &r->lru_all);
        r->clock += sim_clock(&t, frames, &r->clock_all);
        r->min += sim_min(&t, frames, &r->min_all);
        free_trace(&t);
        s = e;
    }
}

/* ---- self test -------------------------------------------------------------- */

static int failures, checks;

static void expect(const char *what, uint64_t got, uint64_t want)
{
    checks++;
    if (got != want) {
        failures++;
        printf("not ok %d - %s: %llu, expected %llu\n", checks, what,
               (unsigned long long)got, (unsigned long long)want);
    } else {
        printf("ok %d - %s: %llu\n", checks, what, (unsigned long long)got);
    }
}

static void load_pages(const uint32_t *pages, size_t n)
{
    size_t i;
    nall = 0;
    for (i = 0; i < n; i++) {
        if (nall == capall) {
            capall = capall ? capall * 2 : 1024;
            all = realloc(all, capall * sizeof *all);
            if (!all)
                exit(2);
        }
        all[nall].seq = i;
        all[nall].key = pages[i];
        all[nall].group = 0;
        all[nall].counted = 1;
        all[nall].live_hit = 0;
        nall++;
    }
}

static void known(const char *name, const uint32_t *pages, size_t n, uint32_t frames,
                  uint64_t lru, uint64_t clock, uint64_t min)
{
    result r;
    char what[200];
    load_pages(pages, n);
    replay_all(frames, &r);
    snprintf(what, sizeof what, "%s, %u frames: LRU misses", name, (unsigned)frames);
    expect(what, r.lru, lru);
    snprintf(what, sizeof what, "%s, %u frames: clock misses", name, (unsigned)frames);
    expect(what, r.clock, clock);
    snprintf(what, sizeof what, "%s, %u frames: MIN misses", name, (unsigned)frames);
    expect(what, r.min, min);
}

static int write_trace(const char *path, const trace_rec *r, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(r, sizeof *r, n, f) != n || fclose(f) != 0)
        return -1;
    return 0;
}

static int selftest(void)
{
    /* the textbook string (Silberschatz et al., Operating System Concepts,
     * 3 frames: OPT 9 faults, LRU 12); clock worked by hand */
    static const uint32_t book[] = {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1};
    static const uint32_t cyc[] = {1, 2, 3, 1, 2, 3, 1, 2, 3};
    static const uint32_t c1[] = {1, 2, 3, 1, 4, 2, 3};
    static const uint32_t c2[] = {1, 1, 2, 3, 1};
    char dir[] = "/tmp/kvs_replay_selftest.XXXXXX", p1[300], p2[300], p3[300];
    trace_rec r1[4], r2[3], w[2];
    result r;
    uint32_t *rnd;
    size_t i, n = 20000;
    unsigned seed = 12345;
    int bad = 0, frames;

    known("textbook string", book, 20, 3, 12, 13, 9);
    /* a loop of 3 pages in 2 frames: LRU and clock miss every time,
     * MIN keeps one page: 1 2 3 m, 1 h, 2 m, 3 h, 1 m, 2 h, 3 m */
    known("cycle of 3 pages", cyc, 9, 2, 9, 9, 6);
    known("1 2 3 1 4 2 3", c1, 7, 3, 6, 6, 4);
    /* clock keeps page 1 (usage 2) where LRU evicts it */
    known("1 1 2 3 1", c2, 5, 2, 4, 3, 3);
    known("1 1 2 3 1 with room for all", c2, 5, 8, 3, 3, 3);

    /* files: two handles of one pool merge by seq; a warm-up file counts
     * for the state, not the misses; live hits come from the flags */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(p1, sizeof p1, "%s/kvs-trace.100.1", dir);
    snprintf(p2, sizeof p2, "%s/kvs-trace.200.1", dir);
    snprintf(p3, sizeof p3, "%s/kvs-trace.100.2", dir);
    memset(r1, 0, sizeof r1);
    memset(r2, 0, sizeof r2);
    memset(w, 0, sizeof w);
    /* merged order by seq: w(1) w(2) | 1 2 3 1 2 3 1 (pages of slot 0),
     * then slot 1 page 1 */
    w[0].seq = 0; w[0].page = 1;
    w[1].seq = 1; w[1].page = 2;
    r1[0].seq = 2; r1[0].page = 1; r1[0].flags = TRACE_HIT;
    r2[0].seq = 3; r2[0].page = 2; r2[0].flags = TRACE_HIT;
    r1[1].seq = 4; r1[1].page = 3;
    r2[1].seq = 5; r2[1].page = 1;
    r1[2].seq = 6; r1[2].page = 2;
    r2[2].seq = 7; r2[2].page = 3;
    r1[3].seq = 8; r1[3].page = 1; r1[3].file_slot = 1;
    if (write_trace(p1, r1, 4) || write_trace(p2, r2, 3) || write_trace(p3, w, 2)) {
        perror("write");
        return 1;
    }
    nall = 0;
    if (read_file(p3, 0, 0) || read_file(p1, 0, 1) || read_file(p2, 0, 1))
        return 1;
    replay_all(2, &r);
    /* 2 frames, warm {1,2}: 1 h 2 h 3 m 1 m 2 m 3 m (1,1) m: LRU 5 */
    expect("merged files: counted accesses", r.accesses, 7);
    expect("merged files: live misses (records without the hit flag)", r.live, 5);
    expect("merged files, warm-up replayed first: LRU misses", r.lru, 5);
    /* MIN, warm {1,2}: 1 h, 2 h, 3 m (1 is next used at seq 5, 2 at 6:
     * evict 2), 1 h, 2 m (3 is next used at 7, 1 never: evict 1), 3 h,
     * (1,1) m */
    expect("merged files, warm-up replayed first: MIN misses", r.min, 3);
    /* grouped by pid: 100 (warm + r1) and 200 (r2) are separate pools */
    for (i = 0; i < nall; i++)
        all[i].group = file_pid(all[i].seq == 3 || all[i].seq == 5 || all[i].seq == 7 ? p2 : p1);
    replay_all(2, &r);
    /* pid 100: warm 1 2 | 1 h, 3 m, 2 m, (1,1) m = 3 misses (LRU);
     * pid 200 cold: 2 m, 1 m, 3 m = 3 */
    expect("grouped by pid: LRU misses", r.lru, 6);
    expect("grouped by pid: distinct pages over both pools", r.npages, 7);
    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(dir);

    /* random traces (a skewed mix of hot and cold pages): the invariants */
    rnd = xmalloc(n * sizeof *rnd);
    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        rnd[i] = (seed >> 16) % 8 ? (seed >> 8) % 50 : 50 + (seed >> 4) % 2000;
    }
    load_pages(rnd, n);
    for (frames = 8; frames <= 8192; frames *= 4) {
        replay_all((uint32_t)frames, &r);
        if (r.min > r.lru || r.min > r.clock || r.min_all > r.lru_all ||
            r.min_all > r.clock_all || r.min_all != r.min || r.min < r.npages || r.lru < r.npages ||
            r.clock < r.npages || (frames >= (int)r.npages && (r.lru != r.npages ||
                                   r.clock != r.npages || r.min != r.npages))) {
            printf("# %d frames: lru %llu clock %llu min %llu pages %llu\n", frames,
                   (unsigned long long)r.lru, (unsigned long long)r.clock,
                   (unsigned long long)r.min, (unsigned long long)r.npages);
            bad++;
        }
    }
    expect("random trace at 8..8192 frames: cold <= MIN <= LRU, clock; all cold when it fits "
           "(violations)", (uint64_t)bad, 0);
    free(rnd);
    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}

/* ---- main ------------------------------------------------------------------- */

static void print_policy(uint32_t frames, const char *name, uint64_t accesses, uint64_t misses,
                         uint64_t all_misses)
{
    printf("%u\t%s\t%llu\t%llu\t%.6f\t%llu\n", frames, name, (unsigned long long)accesses,
           (unsigned long long)misses, accesses ? (double)misses / accesses : 0.0,
           (unsigned long long)all_misses);
}

static void usage(void)
{
    fprintf(stderr, "usage: replay [--frames N[,N...]] [--group all|pid] [--nocount FILE]... FILE...\n"
                    "       replay --selftest\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint32_t frames[64];
    int nframes = 0, by_pid = 0, i, j, nfiles = 0;
    result r;
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--selftest") == 0)
            return selftest();
    /* first pass: options */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
            char *s = argv[++i], *e;
            while (*s && nframes < 64) {
                unsigned long v = strtoul(s, &e, 10);
                if (e == s || v == 0 || v > UINT32_MAX)
                    usage();
                frames[nframes++] = (uint32_t)v;
                s = *e == ',' ? e + 1 : e;
                if (*e && *e != ',')
                    usage();
            }
        } else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "pid") == 0)
                by_pid = 1;
            else if (strcmp(argv[i], "all") != 0)
                usage();
        } else if (strcmp(argv[i], "--nocount") == 0 && i + 1 < argc) {
            i++;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage();
        }
    }
    for (i = 1; i < argc; i++) {
        int counted = 1;
        if (strcmp(argv[i], "--frames") == 0 || strcmp(argv[i], "--group") == 0) {
            i++;
            continue;
        }
        if (strcmp(argv[i], "--nocount") == 0) {
            i++;
            counted = 0;
        }
        if (read_file(argv[i], by_pid ? file_pid(argv[i]) : 0, counted))
            return 2;
        nfiles++;
    }
    if (nframes == 0 || nfiles == 0)
        usage();
    printf("# replay: %d files, %zu accesses\n", nfiles, nall);
    printf("frames\tpolicy\taccesses\tmisses\tmisses_per_access\tall_misses\n");
    for (j = 0; j < nframes; j++) {
        replay_all(frames[j], &r);
        if (j == 0) {
            printf("# %llu distinct pages in %s\n", (unsigned long long)r.npages,
                   by_pid ? "the backends' pools together" : "the pool");
            printf("-\tlive\t%llu\t%llu\t%.6f\t-\n", (unsigned long long)r.accesses,
                   (unsigned long long)r.live, r.accesses ? (double)r.live / r.accesses : 0.0);
        }
        print_policy(frames[j], "lru", r.accesses, r.lru, r.lru_all);
        print_policy(frames[j], "clock", r.accesses, r.clock, r.clock_all);
        print_policy(frames[j], "min", r.accesses, r.min, r.min_all);
    }
    return 0;
}
