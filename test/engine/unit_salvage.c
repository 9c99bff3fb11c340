/*
 * unit_salvage.c - the salvage reader (salvage.c, kvs_salvage_* in kvs.h).
 *
 * Builds one file with small records, records with external values (value
 * chains of 3 pages), a free list and a directory, and learns through the
 * normal API (kvs_page_info_get / kvs_page_slot, not salvage) which page
 * holds each key, plus, parsing the pages by the README's layout, which
 * pages each external value's chain uses.  Then, each on a fresh copy:
 *   - the clean file: every record exactly once, byte for byte;
 *   - random bytes over some bucket/overflow pages;
 *   - a zeroed header (the normal open fails) and a zeroed directory page;
 *   - the file truncated inside a page;
 *   - one page of a value chain damaged;
 *   - a slotted page with a valid checksum but a broken structure;
 *   - a stale copy of a bucket page appended past the end (what a torn
 *     split can leave): its keys come back twice, once per page;
 * and checks that salvage returns exactly the records of the intact pages
 * (each value byte for byte, each key as often as intact pages hold it,
 * from the page that holds it), and counts what it skipped.
 */
#include "kvs.h"
#include "tap.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <xxhash.h>

#define PS        4096
#define NKEYS     2500
#define NFREED    300           /* deleted again: their pages end on the free list */

/* layout (src/engine/README.md, "Page layouts") */
#define OFF_TYPE  8
#define OFF_NSLOT 10
#define OFF_NEXT  12
#define OFF_UPPER 20

static char dir[] = "/tmp/kvs_salvage.XXXXXX";
static char pristine[600], victim[600];
static unsigned char *orig;
static size_t orig_len;
static uint32_t npages;
static int ptype[1 << 16];
static uint32_t page_of[NKEYS];         /* page holding key i; 0 = deleted */
static uint32_t chain[NKEYS][4];        /* value chain pages of key i (external) */
static int nchain[NKEYS];

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static int is_big(int i) { return i % 97 == 5; }
static size_t key_of(int i, char *k) { return (size_t)sprintf(k, "salv-%06d", i); }
static size_t vlen_of(int i) { return is_big(i) ? 9000 + (size_t)i : (size_t)(i * 37 % 300); }
static void val_of(int i, unsigned char *v)
{
    size_t j, n = vlen_of(i);
    for (j = 0; j < n; j++)
        v[j] = (unsigned char)(i * 31 + j * 7 + (j >> 8));
}
static int key_index(const kvs_slice *k)
{
    char buf[32];
    int i;
    if (k->len < 6 || k->len >= sizeof buf)
        return -1;
    memcpy(buf, k->data, k->len);
    buf[k->len] = 0;
    if (sscanf(buf, "salv-%d", &i) != 1 || i < 0 || i >= NKEYS || key_of(i, buf) != k->len)
        return -1;
    return i;
}

static int writefile(const char *p, const unsigned char *b, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ok = fd >= 0 && write(fd, b, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int build(void)
{
    static unsigned char v[20000];
    kvs_options o;
    kvs *db;
    kvs_page_info pi;
    kvs_slot_info si;
    char k[32];
    int i, fd;
    uint32_t p, s;
    struct stat st;

    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.hash_seed = 12345;
    if (kvs_open(pristine, &o, &db) != KVS_OK)
        return 0;
    kvs_begin(db, KVS_WRITE);
    for (i = 0; i < NKEYS + NFREED; i++) {
        int j = i < NKEYS ? i : i - NKEYS;
        size_t kl = i < NKEYS ? key_of(i, k) : (size_t)sprintf(k, "gone-%d", j);
        val_of(j, v);
        if (kvs_put(db, k, kl, v, i < NKEYS ? vlen_of(i) : 5000, 0) != KVS_OK)
            return 0;
    }
    if (kvs_end(db) != KVS_OK)
        return 0;
    for (i = 0; i < NFREED; i++)
        if (kvs_delete(db, k, (size_t)sprintf(k, "gone-%d", i)) != KVS_OK)
            return 0;
    if (kvs_check(db) != KVS_OK)
        return 0;
    /* the oracle, from the normal API: which page holds each key */
    kvs_begin(db, KVS_READ);
    for (p = 1;; p++) {
        if (kvs_page_info_get(db, p, &pi) != KVS_OK)
            break;
        ptype[p] = pi.type;
        if (pi.type != KVS_PAGE_BUCKET && pi.type != KVS_PAGE_OVERFLOW)
            continue;
        for (s = 0; kvs_page_slot(db, p, s, &si) == KVS_OK; s++) {
            int ki = key_index(&si.key);
            if (ki < 0 || page_of[ki])
                return 0;
            page_of[ki] = p;
        }
    }
    kvs_end(db);
    kvs_close(db);
    fd = open(pristine, O_RDONLY);
    fstat(fd, &st);
    orig_len = (size_t)st.st_size;
    npages = (uint32_t)(orig_len / PS);
    orig = malloc(orig_len + PS);
    if (read(fd, orig, orig_len) != (ssize_t)orig_len)
        return 0;
    close(fd);
    /* value chains, by the record layout: flags, klen, vlen, [stamp], key, vpage */
    for (p = 1; p < npages; p++) {
        const unsigned char *pg = orig + (size_t)p * PS;
        if (ptype[p] != KVS_PAGE_BUCKET && ptype[p] != KVS_PAGE_OVERFLOW)
            continue;
        for (s = 0; s < rd16(pg + OFF_NSLOT); s++) {
            const unsigned char *rec = pg + rd16(pg + 24 + 8 * s);
            unsigned klen = rd16(rec + 1), off = 7 + ((rec[0] & 2) ? 8 : 0);
            kvs_slice key = { rec + off, klen };
            int ki = key_index(&key);
            uint32_t vp;
            if (ki < 0 || !(rec[0] & 1))
                continue;
            for (vp = rd32(rec + off + klen); vp && nchain[ki] < 4; vp = rd32(orig + (size_t)vp * PS + OFF_NEXT))
                chain[ki][nchain[ki]++] = vp;
        }
    }
    for (i = 0; i < NKEYS; i++)
        if (!page_of[i] || (is_big(i) && nchain[i] != 3))
            return 0;
    return 1;
}

/* Which keys a case expects, and how often. */
static int want[NKEYS];
static uint32_t want_page2[NKEYS];      /* second page expected (stale copy), 0 = none */

static void expect_all(void)
{
    int i;
    for (i = 0; i < NKEYS; i++) {
        want[i] = 1;
        want_page2[i] = 0;
    }
}

/* Drops the keys held on page p, and those whose value chain uses p. */
static void expect_page_lost(uint32_t p)
{
    int i, j;
    for (i = 0; i < NKEYS; i++) {
        if (page_of[i] == p)
            want[i] = 0;
        for (j = 0; j < nchain[i]; j++)
            if (chain[i][j] == p)
                want[i] = 0;
    }
}

static int count_want(void)
{
    int i, n = 0;
    for (i = 0; i < NKEYS; i++)
        n += want[i] + (want_page2[i] != 0);
    return n;
}

/* Salvages victim and compares with want[].  Returns 1 if exact. */
static int salvage_matches(const char *what, kvs_salvage_stats *st)
{
    static unsigned char ev[20000];
    static int seen[NKEYS];
    kvs_salvage *s;
    kvs_salvage_rec r;
    int rc, bad = 0, i, n = 0;

    memset(seen, 0, sizeof seen);
    rc = kvs_salvage_open(victim, NULL, &s);
    if (rc != KVS_OK) {
        printf("# %s: salvage_open: %s: %s\n", what, kvs_strerror(rc), kvs_salvage_open_errmsg());
        return 0;
    }
    while ((rc = kvs_salvage_next(s, &r)) == KVS_OK) {
        int ki = key_index(&r.key);
        n++;
        if (ki < 0) {
            if (bad++ < 3)
                printf("# %s: a key that was never written (page %u)\n", what, (unsigned)r.pageno);
            continue;
        }
        val_of(ki, ev);
        if (r.value.len != vlen_of(ki) || memcmp(r.value.data, ev, r.value.len) != 0) {
            if (bad++ < 3)
                printf("# %s: key %d (page %u): wrong value\n", what, ki, (unsigned)r.pageno);
        }
        if (r.pageno != page_of[ki] && r.pageno != want_page2[ki]) {
            if (bad++ < 3)
                printf("# %s: key %d from page %u, expected page %u\n", what, ki,
                       (unsigned)r.pageno, (unsigned)page_of[ki]);
        }
        seen[ki]++;
    }
    if (rc != KVS_NOTFOUND) {
        printf("# %s: salvage_next: %s: %s\n", what, kvs_strerror(rc), kvs_salvage_errmsg(s));
        bad++;
    }
    kvs_salvage_stats_get(s, st);
    kvs_salvage_close(s);
    for (i = 0; i < NKEYS; i++) {
        int w = want[i] + (want_page2[i] != 0);
        if (seen[i] != w && bad++ < 6)
            printf("# %s: key %d (page %u) returned %d times, expected %d\n", what, i,
                   (unsigned)page_of[i], seen[i], w);
    }
    if ((uint64_t)n != st->records) {
        printf("# %s: %d records returned, stats say %llu\n", what, n, (unsigned long long)st->records);
        bad++;
    }
    return bad == 0 && n == count_want();
}

static uint32_t nth_page_of_type(int t1, int t2, int nth)
{
    uint32_t p;
    for (p = 1; p < npages; p++)
        if ((ptype[p] == t1 || ptype[p] == t2) && nth-- == 0)
            return p;
    return 0;
}

static void reseal(unsigned char *pg, uint32_t pgno)
{
    uint64_t c = XXH3_64bits_withSeed(pg + 8, PS - 8, pgno);
    memcpy(pg, &c, 8);
}

int main(void)
{
    static unsigned char buf[PS];
    kvs_salvage_stats st;
    unsigned char *img;
    kvs_options o;
    kvs *db;
    uint32_t p, dmg[3];
    int i, rc, big = -1;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(pristine, sizeof pristine, "%s/pristine.kvs", dir);
    snprintf(victim, sizeof victim, "%s/victim.kvs", dir);
    if (!build()) {
        tap_ok(0, "test file builds, and the oracle learns every key's page");
        return tap_done();
    }
    img = malloc(orig_len + PS);
    {
        unsigned nt[8] = {0};
        for (p = 1; p < npages; p++)
            nt[ptype[p] & 7]++;
        tap_diag("file: %u pages (%u bucket, %u overflow, %u value, %u free, %u dir)", (unsigned)npages,
                 nt[KVS_PAGE_BUCKET], nt[KVS_PAGE_OVERFLOW], nt[KVS_PAGE_VALUE], nt[KVS_PAGE_FREE],
                 nt[KVS_PAGE_DIR]);
        tap_ok(nt[KVS_PAGE_OVERFLOW] > 0 && nt[KVS_PAGE_VALUE] > 0 && nt[KVS_PAGE_FREE] > 0,
               "the file has overflow, value and free pages");
    }

    /* clean */
    writefile(victim, orig, orig_len);
    expect_all();
    rc = salvage_matches("clean", &st);
    tap_ok(rc, "clean file: every record exactly once, byte for byte (%llu)",
           (unsigned long long)st.records);
    tap_ok(st.header_ok && st.header_records == NKEYS && st.pages_bad_checksum == 0 &&
           st.pages_bad_structure == 0 && st.records_bad_value == 0 && st.pages_read == npages &&
           st.pages_records + st.pages_other + st.pages_zero == npages,
           "clean file: header ok (%llu records), nothing skipped, every page read (%llu of %u)",
           (unsigned long long)st.header_records, (unsigned long long)st.pages_read, (unsigned)npages);
    tap_ok(st.pages_other > 0, "clean file: value, free and directory pages give no records (%llu such pages)",
           (unsigned long long)st.pages_other);

    /* random bytes over 3 record pages (a bucket page, an overflow page, another bucket page) */
    memcpy(img, orig, orig_len);
    dmg[0] = nth_page_of_type(KVS_PAGE_BUCKET, -1, 3);
    dmg[1] = nth_page_of_type(KVS_PAGE_OVERFLOW, -1, 0);
    dmg[2] = nth_page_of_type(KVS_PAGE_BUCKET, -1, 40);
    expect_all();
    srand(7);
    for (i = 0; i < 3; i++) {
        size_t j, at = (size_t)(rand() % 3000);
        for (j = 0; j < 900; j++)
            img[(size_t)dmg[i] * PS + at + j] = (unsigned char)rand();
        expect_page_lost(dmg[i]);
    }
    writefile(victim, img, orig_len);
    tap_ok(dmg[0] && dmg[1] && dmg[2] && salvage_matches("random bytes", &st) &&
           st.pages_bad_checksum == 3 && st.pages_bad_structure == 0,
           "random bytes over pages %u, %u (overflow), %u: exactly the other pages' records (%d of %d), 3 bad checksums",
           (unsigned)dmg[0], (unsigned)dmg[1], (unsigned)dmg[2], count_want(), NKEYS);

    /* zeroed header: the normal open fails, salvage does not care */
    memcpy(img, orig, orig_len);
    memset(img, 0, PS);
    writefile(victim, img, orig_len);
    expect_all();
    kvs_options_init(&o);
    rc = kvs_open(victim, &o, &db);
    if (rc == KVS_OK)
        kvs_close(db);
    tap_ok(rc != KVS_OK, "zeroed header: the normal open fails (%s)", kvs_strerror(rc));
    rc = salvage_matches("zeroed header", &st);
    tap_ok(rc && !st.header_ok && st.pages_zero == 1,
           "zeroed header: every record, header reported damaged (%s)", st.header_error);

    /* a zeroed directory page: nothing needs it */
    memcpy(img, orig, orig_len);
    p = nth_page_of_type(KVS_PAGE_DIR, -1, 0);
    memset(img + (size_t)p * PS, 0, PS);
    writefile(victim, img, orig_len);
    expect_all();
    tap_ok(p && salvage_matches("zeroed directory", &st),
           "zeroed directory page %u: every record still comes back", (unsigned)p);

    /* truncated inside a page: what lies beyond is lost, and so are values
     * whose chain reaches beyond */
    {
        /* cut inside the 2nd page of a value chain whose record lies before it */
        uint32_t cut = 0;
        for (i = 0; i < NKEYS; i++)
            if (is_big(i) && page_of[i] < chain[i][1] && chain[i][1] > cut)
                cut = chain[i][1];
        writefile(victim, orig, (size_t)cut * PS + 1000);
        expect_all();
        for (p = cut; p < npages; p++)
            expect_page_lost(p);
        rc = salvage_matches("truncated", &st);
        tap_ok(cut > 0 && rc && st.partial_page_bytes == 1000 && st.records_bad_value > 0 &&
               st.file_pages == cut && count_want() < NKEYS,
               "file truncated inside page %u: exactly the records before it whose chains are whole (%d), "
               "%llu records skipped for their value chain", (unsigned)cut, count_want(),
               (unsigned long long)st.records_bad_value);
    }

    /* one value chain damaged: its record is skipped and counted, nothing else lost */
    for (i = 0; i < NKEYS && big < 0; i++)
        if (is_big(i))
            big = i;
    memcpy(img, orig, orig_len);
    img[(size_t)chain[big][1] * PS + 100] ^= 0x40;
    writefile(victim, img, orig_len);
    expect_all();
    want[big] = 0;
    tap_ok(salvage_matches("value chain", &st) && st.records_bad_value == 1 && st.pages_bad_checksum == 1,
           "a bit flipped in page %u, the 2nd of key %d's value chain: that record skipped and counted, all others back",
           (unsigned)chain[big][1], big);
    /* the chain's page resealed but given a wrong byte count: shape check */
    memcpy(img, orig, orig_len);
    memcpy(buf, img + (size_t)chain[big][2] * PS, PS);
    buf[16] ^= 1;               /* AUX = data bytes on this page */
    reseal(buf, chain[big][2]);
    memcpy(img + (size_t)chain[big][2] * PS, buf, PS);
    writefile(victim, img, orig_len);
    tap_ok(salvage_matches("value chain shape", &st) && st.records_bad_value == 1,
           "the last page of key %d's chain resealed with a wrong byte count: that record skipped", big);

    /* structure broken under a valid checksum: the page is refused, not read off its end */
    memcpy(img, orig, orig_len);
    p = nth_page_of_type(KVS_PAGE_BUCKET, -1, 10);
    memcpy(buf, img + (size_t)p * PS, PS);
    buf[OFF_UPPER] ^= 0x10;
    reseal(buf, p);
    memcpy(img + (size_t)p * PS, buf, PS);
    writefile(victim, img, orig_len);
    expect_all();
    expect_page_lost(p);
    tap_ok(salvage_matches("bad structure", &st) && st.pages_bad_structure == 1,
           "bucket page %u with a valid checksum but a bad record area: skipped as bad structure", (unsigned)p);

    /* a stale copy: bucket page p again, resealed as an extra page past the
     * end (as a torn split can leave a record in its old and new bucket) */
    memcpy(img, orig, orig_len);
    p = nth_page_of_type(KVS_PAGE_BUCKET, -1, 5);
    memcpy(img + orig_len, orig + (size_t)p * PS, PS);
    reseal(img + orig_len, npages);
    writefile(victim, img, orig_len + PS);
    expect_all();
    for (i = 0; i < NKEYS; i++)
        if (page_of[i] == p)
            want_page2[i] = npages;
    tap_ok(salvage_matches("stale copy", &st) && count_want() > NKEYS,
           "a stale copy of page %u as page %u: its %d keys come back twice, once from each page",
           (unsigned)p, (unsigned)npages, count_want() - NKEYS);

    /* not a kvs file at all: no records, no crash, every page counted */
    memset(img, 'x', 5 * PS);
    writefile(victim, img, 5 * PS);
    expect_all();
    for (i = 0; i < NKEYS; i++)
        want[i] = 0;
    tap_ok(salvage_matches("text file", &st) && st.pages_bad_checksum == 5 && !st.header_ok,
           "a text file: no records, 5 pages with bad checksums");
    writefile(victim, img, 0);
    tap_ok(salvage_matches("empty file", &st) && st.file_pages == 0,
           "an empty file: no records");
    {
        kvs_salvage *s = NULL;
        rc = kvs_salvage_open("/nonexistent/x.kvs", NULL, &s);
        tap_ok(rc == KVS_EIO && s == NULL, "a missing file: KVS_EIO (%s)", kvs_salvage_open_errmsg());
    }

    unlink(victim);
    unlink(pristine);
    rmdir(dir);
    free(orig);
    free(img);
    return tap_done();
}
