/*
 * unit_pager.c - unit tests of the pager layer (pager.c): checksums seeded by
 * page number, header encode/decode and its validation (magic, version,
 * truncation, checksum, fields), older versions read and upgraded, the file
 * id (round trip, fresh ids nonzero and distinct, the fallback's too, a new
 * one for a compacted header), page read/write/verify, growth (allocated,
 * or zero pages written where the file system cannot allocate, a full disk)
 * and its discard, the write path handing the undo (undo.c) the old image of each
 * page the unit began with and the undo putting them back, short writes
 * retried through the I/O table, and the section lock (filelock.c): flock
 * waits interrupted, the host told when a lock wait begins and ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/wait.h>
#include "pager.h"
#include "undo.h"
#include "filelock.h"
#include "tap.h"

static int short_writes;           /* next N pwrites write half */
static ssize_t half_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (short_writes > 0 && n > 1) {
        short_writes--;
        n /= 2;
    }
    return pwrite(fd, buf, n, off);
}

static int calls;
static int interrupt_after_3(void *arg)
{
    (void)arg;
    return ++calls >= 3;
}

/* lock_wait callback: counts begins and ends, and checks they alternate */
typedef struct waits {
    int begins, ends, waiting, bad;
    int calls_at_begin;            /* interrupt polls before the wait began */
} waits;
static void count_waits(void *arg, int waiting)
{
    waits *w = arg;
    if (waiting) {
        w->bad += w->waiting;
        w->begins++;
        w->calls_at_begin = calls;
    } else {
        w->bad += !w->waiting;
        w->ends++;
    }
    w->waiting = waiting;
}

/* Growth through kvs_os.allocate: counted, and failed on demand */
static int n_alloc, n_zero_writes;
static int alloc_errno;            /* nonzero: every allocate fails with it */
static int alloc_fail_big;         /* allocate fails with ENOSPC above 1 page */
static int counting_allocate(int fd, off_t off, off_t len)
{
    n_alloc++;
    if (alloc_errno) {
        errno = alloc_errno;
        return -1;
    }
    if (alloc_fail_big && len > PG_SIZE) {
        errno = ENOSPC;
        return -1;
    }
    return kvs_os_posix()->allocate(fd, off, len);
}
static ssize_t counting_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    n_zero_writes++;
    return pwrite(fd, buf, n, off);
}

/* A fresh 64-page file and a pager over it, growth reset */
static pager *growth_file(const char *path, kvs_os *os, int *fd, kvs_err *err)
{
    static uint8_t zero[PG_SIZE];
    int i;
    unlink(path);
    *fd = open(path, O_RDWR | O_CREAT, 0600);
    for (i = 0; i < 64; i++)
        if (pwrite(*fd, zero, PG_SIZE, (off_t)i * PG_SIZE) != PG_SIZE)
            return NULL;
    os->pwrite = counting_pwrite;
    os->allocate = counting_allocate;
    n_alloc = n_zero_writes = alloc_errno = alloc_fail_big = 0;
    return pager_new(os, *fd, 0, err);
}

/* The file grows by allocation, writing nothing; a file system that cannot
 * allocate gets zero pages written instead (and is not asked again); a full
 * disk is tried again for just the page needed, and reported when even that
 * fails. */
static void test_growth(void)
{
    static uint8_t page[PG_SIZE];
    char path[128];
    kvs_os os = *kvs_os_posix();
    kvs_err err;
    pager *pg;
    int fd, i, zeros;

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "/tmp/unit_pager_grow.%d", (int)getpid());

    pg = growth_file(path, &os, &fd, &err);
    pager_begin_unit(pg);
    TAP_RC(pager_extend(pg, 64), KVS_OK);
    tap_ok(os.filesize(fd) == 68 * PG_SIZE, "allocate: the file grows by a chunk of 4 pages (%lld)",
           (long long)os.filesize(fd));
    tap_ok(n_alloc == 1 && n_zero_writes == 0, "allocate: one call, no bytes written (%d, %d)",
           n_alloc, n_zero_writes);
    TAP_RC(pager_extend(pg, 67), KVS_OK);
    tap_ok(n_alloc == 1, "allocate: pages of the chunk need no second call");
    memset(page, 0xee, sizeof page);
    zeros = pread(fd, page, PG_SIZE, 67 * PG_SIZE) == PG_SIZE;
    for (i = 0; zeros && i < PG_SIZE; i++)
        zeros = page[i] == 0;
    tap_ok(zeros, "allocate: an allocated page reads as zeros");
    TAP_RC(pager_discard_extension(pg), KVS_OK);
    tap_ok(os.filesize(fd) == 64 * PG_SIZE, "allocate: discard_extension cuts the chunk off");
    pager_free(pg);
    close(fd);

    pg = growth_file(path, &os, &fd, &err);
    alloc_errno = EOPNOTSUPP;
    pager_begin_unit(pg);
    TAP_RC(pager_extend(pg, 64), KVS_OK);
    tap_ok(os.filesize(fd) == 68 * PG_SIZE && n_zero_writes >= 1,
           "EOPNOTSUPP: the chunk is written as zeros instead (%d writes)", n_zero_writes);
    TAP_RC(pager_extend(pg, 70), KVS_OK);
    tap_ok(n_alloc == 1 && os.filesize(fd) > 70 * PG_SIZE,
           "EOPNOTSUPP: the file system is not asked again (%d calls)", n_alloc);
    pager_free(pg);
    close(fd);

    pg = growth_file(path, &os, &fd, &err);
    alloc_fail_big = 1;
    pager_begin_unit(pg);
    TAP_RC(pager_extend(pg, 64), KVS_OK);
    tap_ok(os.filesize(fd) == 65 * PG_SIZE && n_alloc == 2 && n_zero_writes == 0,
           "disk nearly full: the chunk fails, the one page needed is allocated (%d calls)", n_alloc);
    alloc_errno = ENOSPC;
    TAP_RC(pager_extend(pg, 65), KVS_ENOSPC);
    tap_ok(strstr(err.msg, "cannot grow") != NULL && os.filesize(fd) == 65 * PG_SIZE && n_zero_writes == 0,
           "disk full: KVS_ENOSPC, the file as it was, no zeros written instead: %s", err.msg);
    alloc_errno = EIO;
    TAP_RC(pager_extend(pg, 65), KVS_EIO);
    pager_free(pg);
    close(fd);
    unlink(path);
}

int main(void)
{
    static uint8_t page[PG_SIZE], page2[PG_SIZE];
    char path[128];
    kvs_hdr h, h2;
    kvs_err err;
    pager *pg;
    kvs_os os = *kvs_os_posix();
    int fd, i, rc;

    memset(&err, 0, sizeof err);
    /* checksums depend on the page number */
    memset(page, 0xab, sizeof page);
    pager_seal(page, 5);
    tap_ok(rd64(page) == pager_checksum(page, 5), "sealed page verifies at its own number");
    tap_ok(rd64(page) != pager_checksum(page, 6), "and fails at another page number");

    /* header round trip */
    memset(&h, 0, sizeof h);
    h.file_id = 0x0123456789abcdefULL;
    h.hash_seed = 42;
    h.level = 3;
    h.split = 5;
    h.npages = 20;
    h.dir_root = 1;
    h.dir_depth = 1;
    h.dir_pages = 1;
    h.overflow_pages = 5;
    h.fillfactor = 75;
    h.records = 99;
    h.data_bytes = 99 * 130;    /* each record holds bytes: hdr_decode checks it */
    h.desc_len = 3;
    memcpy(h.desc, "abc", 3);
    hdr_encode(&h, page);
    memset(&h2, 0, sizeof h2);
    TAP_RC(hdr_decode(page, PG_SIZE, &h2, &err), KVS_OK);
    tap_ok(h2.hash_seed == 42 && h2.level == 3 && h2.split == 5 && h2.records == 99 &&
           h2.desc_len == 3 && memcmp(h2.desc, "abc", 3) == 0, "header fields round trip");
    {
        /* a header whose record bytes could not fit its pages (found by the
         * fuzzer: it made one put split millions of times) is refused */
        kvs_hdr bad = h;
        bad.data_bytes = 0xfb00000000000000ULL;
        hdr_encode(&bad, page);
        TAP_RC(hdr_decode(page, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        bad = h;
        bad.records = bad.data_bytes + 1;
        hdr_encode(&bad, page);
        TAP_RC(hdr_decode(page, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        hdr_encode(&h, page);
    }
    tap_ok(memcmp(page + HD_MAGIC, KVS_MAGIC, 8) == 0, "magic at offset 16");
    tap_ok(rd32(page + HD_VERSION) == KVS_FORMAT_VERSION && KVS_FORMAT_VERSION == 6,
           "format version 6 at offset 24");
    tap_ok(rd64(page + HD_FILEID) == 0x0123456789abcdefULL && hdr_file_id(&h2) == 0x0123456789abcdefULL,
           "the file id round trips at offset 2176");

    memcpy(page2, page, PG_SIZE);
    page2[HD_MAGIC] ^= 1;
    TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ENOTKVS);
    memcpy(page2, page, PG_SIZE);
    wr32(page2 + HD_VERSION, 99);
    pager_seal(page2, 0);
    TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_EVERSION);
    tap_ok(strstr(err.msg, "version 99") != NULL, "version error names the version: %s", err.msg);
    {
        /* the flags word (version 2): round trip, unknown bits refused, and
         * a version-1 header has none whatever its reserved bytes hold */
        kvs_hdr f = h;
        hdr_set_replacing(&f, 1);
        hdr_encode(&f, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_OK);
        tap_ok(hdr_replacing(&h2) && rd32(page2 + HD_FLAGS) == KVS_HDR_REPLACING &&
               hdr_version(&h2) == KVS_FORMAT_VERSION, "REPLACING flag round trips at offset 120");
        wr32(page2 + HD_FLAGS, 0x81);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        wr32(page2 + HD_VERSION, 1);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_OK);
        tap_ok(!hdr_replacing(&h2) && hdr_version(&h2) == 1 && hdr_file_id(&h2) == 0,
               "a version-1 header is read, without flags or id");
        hdr_upgrade(&h2);
        hdr_encode(&h2, page2);
        tap_ok(rd32(page2 + HD_VERSION) == KVS_FORMAT_VERSION && rd32(page2 + HD_FLAGS) == 0 &&
               hdr_file_id(&h2) != 0 && rd64(page2 + HD_FILEID) == hdr_file_id(&h2),
               "and written back as version %u with a new id once upgraded", KVS_FORMAT_VERSION);
        wr32(page2 + HD_VERSION, KVS_FORMAT_VERSION + 1);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_EVERSION);
        wr32(page2 + HD_VERSION, 7);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_EVERSION);
        tap_ok(strstr(err.msg, "version 7") != NULL && strstr(err.msg, "1 to 6") != NULL,
               "a version-7 header is refused: %s", err.msg);
    }
    {
        /* the file id (version 3) */
        kvs_hdr v = h, g;
        uint64_t id;
        hdr_encode(&v, page2);
        wr64(page2 + HD_FILEID, 0);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_ECORRUPT);
        tap_ok(strstr(err.msg, "file id 0") != NULL, "a version-3 header with id 0 is damage: %s", err.msg);
        /* version 2 had no id: whatever those bytes hold, it has none */
        hdr_encode(&v, page2);
        wr32(page2 + HD_VERSION, 2);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_OK);
        tap_ok(hdr_version(&g) == 2 && hdr_file_id(&g) == 0,
               "a version-2 header is read with id 0 (nonzero bytes at 2176 ignored)");
        hdr_encode(&g, page2);
        tap_ok(rd32(page2 + HD_VERSION) == 2 && rd64(page2 + HD_FILEID) == 0,
               "not upgraded, it encodes as the version-2 header it was (no id)");
        hdr_upgrade(&g);
        id = hdr_file_id(&g);
        hdr_encode(&g, page2);
        tap_ok(id != 0 && hdr_version(&g) == 6 && rd32(page2 + HD_VERSION) == 6 &&
               rd64(page2 + HD_FILEID) == id, "upgraded: version 6 with a fresh id");
        hdr_upgrade(&g);
        tap_ok(hdr_file_id(&g) == id, "a second upgrade keeps the id");
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_OK);
        tap_ok(hdr_file_id(&g) == id, "and it reads back");
        hdr_init(&g, 1, 75, NULL, 0);
        hdr_init(&v, 1, 75, NULL, 0);
        tap_ok(hdr_file_id(&g) != 0 && hdr_file_id(&v) != 0 && hdr_file_id(&g) != hdr_file_id(&v) &&
               hdr_version(&g) == 6 && hdr_owner(&g) == 0, "hdr_init gives each new header its own id, no owner");
        hdr_set_owner(&g, 0xfedcba9876543210ULL);
        hdr_derive(&v, &g);
        tap_ok(hdr_file_id(&v) != 0 && hdr_file_id(&v) != hdr_file_id(&g) && hdr_seed(&v) == hdr_seed(&g) &&
               hdr_owner(&v) == 0xfedcba9876543210ULL,
               "hdr_derive (compaction) gives a new id, the same seed and owner");
    }
    {
        /* the owner (version 4) */
        kvs_hdr v = h, g;
        hdr_set_owner(&v, 7362059120834567891ULL);
        hdr_encode(&v, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_OK);
        tap_ok(rd64(page2 + HD_OWNER) == 7362059120834567891ULL && hdr_owner(&g) == 7362059120834567891ULL &&
               hdr_file_id(&g) == hdr_file_id(&v), "the owner round trips at offset 2184, beside the id");
        /* version 3 had no owner: whatever those bytes hold, it has none */
        wr32(page2 + HD_VERSION, 3);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_OK);
        tap_ok(hdr_version(&g) == 3 && hdr_owner(&g) == 0 && hdr_file_id(&g) == hdr_file_id(&v),
               "a version-3 header is read with its id and owner 0 (nonzero bytes at 2184 ignored)");
        hdr_upgrade(&g);
        tap_ok(hdr_version(&g) == 6 && hdr_file_id(&g) == hdr_file_id(&v),
               "upgraded: version 6, its id kept");
        hdr_set_owner(&g, 5);
        hdr_encode(&g, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &v, &err), KVS_OK);
        tap_ok(rd32(page2 + HD_VERSION) == 6 && hdr_owner(&v) == 5, "and written as version 6 with its owner");
    }
    {
        /* version 5 (the journal LSN and path): version 6 has the same
         * page, so a version-5 header is read whole and upgraded to 6 with
         * nothing else changed; only hdr_version tells them apart (the
         * change generations' rule, kvs.c gen_remember) */
        kvs_hdr v = h, g;
        uint8_t page3[PG_SIZE];
        hdr_set_owner(&v, 77);
        hdr_set_journal(&v, 0x1234, "/j/dir", 6);
        hdr_encode(&v, page2);
        wr32(page2 + HD_VERSION, 5);
        pager_seal(page2, 0);
        TAP_RC(hdr_decode(page2, PG_SIZE, &g, &err), KVS_OK);
        {
            uint32_t n;
            const char *jp = hdr_journal_path(&g, &n);
            tap_ok(hdr_version(&g) == 5 && hdr_journal_lsn(&g) == 0x1234 && n == 6 && memcmp(jp, "/j/dir", 6) == 0 &&
                   hdr_owner(&g) == 77 && hdr_file_id(&g) == hdr_file_id(&v),
                   "a version-5 header is read with its journal LSN and path, owner and id");
        }
        hdr_upgrade(&g);
        hdr_encode(&g, page3);
        tap_ok(hdr_version(&g) == 6 && rd32(page3 + HD_VERSION) == 6 &&
               memcmp(page3 + 8, page2 + 8, HD_VERSION - 8) == 0 &&
               memcmp(page3 + HD_VERSION + 4, page2 + HD_VERSION + 4, PG_SIZE - HD_VERSION - 4) == 0,
               "upgraded: version 6, every other byte of the page as it was (the checksum aside)");
    }
    {
        /* ids: nonzero and distinct, from getrandom and from the fallback
         * alone (also in a forked child, which starts with the parent's
         * counter) */
        static uint64_t ids[2000];
        int dup = 0, zero = 0, j, pfd[2];
        uint64_t child = 0, mine;
        pid_t pid;
        for (i = 0; i < 2000; i++) {
            ids[i] = i < 1000 ? hdr_new_file_id() : hdr_id_fallback();
            zero += ids[i] == 0;
        }
        for (i = 0; i < 2000; i++)
            for (j = 0; j < i; j++)
                dup += ids[i] == ids[j];
        tap_ok(zero == 0 && dup == 0, "1000 ids and 1000 fallback ids: %d zero, %d repeated", zero, dup);
        if (pipe(pfd) == 0) {
            fflush(stdout);
            pid = fork();
            if (pid == 0) {
                uint64_t c = hdr_id_fallback();
                _exit(write(pfd[1], &c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
            }
            mine = hdr_id_fallback();
            if (read(pfd[0], &child, sizeof child) != (ssize_t)sizeof child)
                child = 0;
            waitpid(pid, NULL, 0);
            close(pfd[0]);
            close(pfd[1]);
            tap_ok(child != 0 && child != mine, "a forked child's fallback id differs from its parent's");
        }
    }
    TAP_RC(hdr_decode(page, 100, &h2, &err), KVS_ETRUNCATED);
    TAP_RC(hdr_decode(page, 0, &h2, &err), KVS_ETRUNCATED);
    memcpy(page2, page, PG_SIZE);
    page2[3000] ^= 0x10;
    TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
    tap_ok(err.page == 0 && strstr(err.msg, "page 0") != NULL, "checksum error names page 0: %s", err.msg);
    /* field validation behind a good checksum */
    {
        kvs_hdr bad = h;
        bad.split = 9;                       /* >= 2^level */
        hdr_encode(&bad, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        bad = h;
        bad.dir_root = 500;                  /* beyond npages */
        hdr_encode(&bad, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        bad = h;
        bad.overflow_pages = 6;              /* counts do not add up */
        hdr_encode(&bad, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
        bad = h;
        bad.desc_len = KVS_MAX_DESCRIPTOR + 1;
        hdr_encode(&bad, page2);
        TAP_RC(hdr_decode(page2, PG_SIZE, &h2, &err), KVS_ECORRUPT);
    }

    /* pages on a file */
    snprintf(path, sizeof path, "/tmp/unit_pager.%d", (int)getpid());
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    os.pwrite = half_pwrite;
    pg = pager_new(&os, fd, 0, &err);
    *pager_hdr(pg) = h;
    TAP_RC(pager_store_header(pg), KVS_OK);
    for (i = 1; i < 20; i++) {
        memset(page, i, PG_SIZE);
        page[PG_TYPE] = KVS_PAGE_FREE;
        short_writes = 3;                   /* each page written in several pieces */
        rc = pager_write(pg, (uint32_t)i, page);
        if (rc)
            break;
    }
    tap_ok(i == 20, "19 pages written through short writes");
    TAP_RC(pager_load_header(pg, 1, 0), KVS_OK);
    TAP_RC(pager_read(pg, 7, page), KVS_OK);
    tap_ok(page[100] == 7, "page 7 reads back");
    /* flip a byte of page 7 on disk */
    page[100] ^= 0xff;
    pwrite(fd, page + 100, 1, 7 * PG_SIZE + 100);
    TAP_RC(pager_read(pg, 7, page), KVS_ECORRUPT);
    tap_ok(err.page == 7 && strstr(err.msg, "page 7") != NULL, "corruption names page 7: %s", err.msg);
    TAP_RC(pager_read(pg, 25, page), KVS_ETRUNCATED);
    tap_ok(strstr(err.msg, "page 25") != NULL, "read past the end names the page: %s", err.msg);

    /* growth, and its discard */
    pager_begin_unit(pg);
    TAP_RC(pager_extend(pg, 20), KVS_OK);
    TAP_RC(pager_extend(pg, 21), KVS_OK);
    tap_ok(os.filesize(fd) == 22 * PG_SIZE, "extend grows the file to 22 pages");
    TAP_RC(pager_discard_extension(pg), KVS_OK);
    tap_ok(os.filesize(fd) == 20 * PG_SIZE, "discard_extension shrinks it back");

    /* the undo of a write-out: only pages the unit began with (20) are saved,
     * each before its overwrite; apply puts their bytes back, the header's too */
    {
        undo *u = undo_new(NULL, &err);
        uint8_t *run[2];
        uint8_t before7[PG_SIZE], before0[PG_SIZE];
        TAP_RC(pager_read_raw(pg, 7, before7), KVS_OK);
        TAP_RC(pager_read_raw(pg, 0, before0), KVS_OK);
        pager_begin_unit(pg);
        undo_begin(u);
        pager_set_undo(pg, u);
        memset(page, 0x77, PG_SIZE);
        memset(page2, 0x78, PG_SIZE);
        TAP_RC(pager_write(pg, 7, page), KVS_OK);
        run[0] = page;
        run[1] = page2;
        TAP_RC(pager_write_run(pg, 19, run, 2), KVS_OK);   /* 19 old, 20 beyond the unit */
        hdr_change_bump(pager_hdr(pg));
        TAP_RC(pager_store_header(pg), KVS_OK);
        tap_ok(undo_count(u) == 3, "3 old images saved (pages 7, 19, 0), not page 20: %u",
               (unsigned)undo_count(u));
        pager_set_undo(pg, NULL);
        TAP_RC(pager_write(pg, 8, page), KVS_OK);
        tap_ok(undo_count(u) == 3, "no image saved once the undo is detached");
        TAP_RC(undo_apply(u, pg), KVS_OK);
        TAP_RC(pager_read_raw(pg, 7, page2), KVS_OK);
        tap_ok(memcmp(page2, before7, PG_SIZE) == 0, "page 7 back byte for byte");
        TAP_RC(pager_read_raw(pg, 0, page2), KVS_OK);
        tap_ok(memcmp(page2, before0, PG_SIZE) == 0, "header page back byte for byte");
        TAP_RC(pager_read(pg, 19, page2), KVS_OK);
        tap_ok(page2[100] == 19, "page 19 back");
        TAP_RC(pager_read(pg, 8, page2), KVS_OK);
        tap_ok(page2[100] == 0x77, "page 8, written without the undo, stays");
        undo_end(u);
        undo_free(u);
        TAP_RC(pager_load_header(pg, 0, 0), KVS_OK);
        TAP_RC(pager_set_size(pg, 20), KVS_OK);
    }

    /* header says more pages than the file has */
    pager_hdr(pg)->npages = 40;
    pager_hdr(pg)->overflow_pages = 25;
    TAP_RC(pager_store_header(pg), KVS_OK);
    TAP_RC(pager_load_header(pg, 1, 0), KVS_ETRUNCATED);
    tap_ok(strstr(err.msg, "page 20") != NULL, "truncation names the first missing page: %s", err.msg);

    /* read-only pager never writes */
    pager_free(pg);
    pg = pager_new(&os, fd, 1, &err);
    TAP_RC(pager_write(pg, 3, page), KVS_ERDONLY);
    pager_free(pg);

    /* flock: a child holds LOCK_EX; our wait is interrupted */
    {
        int pfd[2], fd2;
        pid_t pid;
        char c;
        if (pipe(pfd) != 0)
            return 1;
        pid = fork();
        if (pid == 0) {
            int cfd = open(path, O_RDWR);
            flock(cfd, LOCK_EX);
            if (write(pfd[1], "x", 1) != 1)
                _exit(1);
            sleep(2);
            _exit(0);
        }
        if (read(pfd[0], &c, 1) != 1)
            return 1;
        fd2 = open(path, O_RDWR);
        calls = 0;
        {
            waits w = {0, 0, 0, 0, -1};
            filelock_hooks hk = {interrupt_after_3, NULL, count_waits, NULL, 0, 0};
            hk.lock_wait_arg = &w;
            TAP_RC(filelock_take(kvs_os_posix(), fd2, 0, &hk, &err), KVS_EINTR);
            tap_ok(calls == 3, "interrupt callback polled while waiting (%d calls)", calls);
            tap_ok(w.begins == 1 && w.ends == 1 && !w.waiting && !w.bad && w.calls_at_begin == 0,
                   "interrupted wait: host told it began (before the first poll) and ended "
                   "(%d begins, %d ends)", w.begins, w.ends);
        }
        {
            /* a wait that gets the lock: the child holds it until it exits */
            waits w = {0, 0, 0, 0, -1};
            filelock_hooks hk = {NULL, NULL, count_waits, NULL, 0, 0};
            hk.lock_wait_arg = &w;
            TAP_RC(filelock_take(kvs_os_posix(), fd2, 1, &hk, &err), KVS_OK);
            tap_ok(w.begins == 1 && w.ends == 1 && !w.waiting && !w.bad,
                   "wait that gets the lock: began and ended once (%d begins, %d ends)",
                   w.begins, w.ends);
            waitpid(pid, NULL, 0);
            TAP_RC(filelock_release(kvs_os_posix(), fd2, &err), KVS_OK);
        }
        {
            /* no contention: no wait to report */
            waits w = {0, 0, 0, 0, -1};
            filelock_hooks hk = {interrupt_after_3, NULL, count_waits, NULL, 0, 0};
            hk.lock_wait_arg = &w;
            TAP_RC(filelock_take(kvs_os_posix(), fd2, 1, &hk, &err), KVS_OK);
            tap_ok(w.begins == 0 && w.ends == 0, "lock taken at once: no wait reported");
            TAP_RC(filelock_release(kvs_os_posix(), fd2, &err), KVS_OK);
        }
        close(fd2);
    }
    close(fd);
    unlink(path);
    test_growth();
    tap_diag("pager: %d checks", tap_n);
    return tap_done();
}
