/*
 * unit_spill.c - unit tests of the spill file (spill.c) and of the undo
 * keeping its images there (undo.c): spill, respill into the same slot,
 * take with and without the data, flush into the database file, reset, the
 * map grown past several doublings (5000 pages: 1024 -> 16384 slots), the
 * file created on first need and unlinked at once, a damaged spill page
 * detected on its way back (take and flush), and a write-out's undo images
 * kept after the spilled pages without clobbering them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "spill.h"
#include "undo.h"
#include "tap.h"
#include "files.h"

#define NPAGES 6000     /* database pages */
#define NSPILL 5000     /* pages spilled at once */

static int spill_fd = -1;  /* the spill file's descriptor, seen by the open hook */
static int (*real_open)(const char *, int, mode_t);
static int spy_open(const char *path, int flags, mode_t mode)
{
    int fd = real_open(path, flags, mode);
    if (fd >= 0 && strstr(path, ".spill."))
        spill_fd = fd;
    return fd;
}

/* A page image whose body says pgno and version v. */
static void fill(uint8_t *page, uint32_t pgno, uint32_t v)
{
    memset(page, 0, PG_SIZE);
    page[PG_TYPE] = KVS_PAGE_FREE;
    wr32(page + PG_HDR, pgno);
    wr32(page + PG_HDR + 4, v);
    memset(page + PG_HDR + 8, (int)((pgno + v) & 0xff), 1000);
}

static int holds(const uint8_t *page, uint32_t pgno, uint32_t v)
{
    return rd32(page + PG_HDR) == pgno && rd32(page + PG_HDR + 4) == v &&
           page[PG_HDR + 8 + 999] == (uint8_t)((pgno + v) & 0xff);
}

/* Files in dir whose name holds ".spill.". */
static int spill_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".spill.") != NULL;
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    static uint8_t page[PG_SIZE];
    char dir[] = "/tmp/unit_spill.XXXXXX", path[128];
    kvs_os os = *kvs_os_posix();
    kvs_err err;
    pager *pg;
    spill *sp;
    uint32_t i, bad;
    int fd, rc;

    memset(&err, 0, sizeof err);
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/db", dir);
    real_open = os.open;
    os.open = spy_open;
    fd = open(path, O_RDWR | O_CREAT, 0600);
    pg = pager_new(&os, fd, 0, &err);
    for (i = 1; i < NPAGES; i++) {
        fill(page, i, 0);
        if (pager_write(pg, i, page) != KVS_OK)
            break;
    }
    tap_ok(i == NPAGES, "database of %d pages written", NPAGES);

    sp = spill_new(&os, path, &err);
    tap_ok(sp && spill_count(sp) == 0 && spill_fd < 0 && spill_files(dir) == 0,
           "a new spill object has no file yet");
    TAP_RC(spill_take(sp, 7, page, 1), 0);

    /* spill NSPILL pages: the map doubles 1024 -> 16384 slots on the way */
    bad = 0;
    for (i = 1; i <= NSPILL; i++) {
        fill(page, i, 1);
        if (spill_write(sp, i, page) != KVS_OK || rd64(page + PG_CKSUM) != pager_checksum(page, i))
            bad++;
    }
    tap_ok(bad == 0 && spill_count(sp) == NSPILL && spill_end(sp) == NSPILL && spill_written(sp) == NSPILL,
           "%d pages spilled, each sealed, one slot each (count %u, end %u)", NSPILL,
           (unsigned)spill_count(sp), (unsigned)spill_end(sp));
    tap_ok(spill_fd >= 0 && spill_files(dir) == 0, "the spill file was created and unlinked at once");
    tap_ok(os.filesize(spill_fd) == (off_t)NSPILL * PG_SIZE, "it holds %d pages", NSPILL);
    /* a page spilled again keeps its slot */
    fill(page, 10, 2);
    TAP_RC(spill_write(sp, 10, page), KVS_OK);
    tap_ok(spill_count(sp) == NSPILL && spill_end(sp) == NSPILL, "respilling page 10 reuses its slot");
    /* the database file is untouched by spilling */
    TAP_RC(pager_read(pg, 10, page), KVS_OK);
    tap_ok(holds(page, 10, 0), "the database still has page 10's old version");

    /* take: every other page, half with the data, half without */
    bad = 0;
    for (i = 2; i <= NSPILL; i += 2) {
        int want = (i % 4) == 0;
        memset(page, 0xee, PG_SIZE);
        rc = spill_take(sp, i, page, want);
        if (rc != 1 || (want && !holds(page, i, i == 10 ? 2 : 1)) || (!want && page[100] != 0xee))
            bad++;
    }
    tap_ok(bad == 0, "taken back: %d pages, each with its latest version when asked, "
           "the buffer untouched when not", NSPILL / 2);
    tap_ok(spill_count(sp) == NSPILL / 2, "%u left spilled", (unsigned)spill_count(sp));
    TAP_RC(spill_take(sp, 2, page, 1), 0);
    TAP_RC(spill_take(sp, NSPILL + 1, page, 1), 0);
    bad = 0;
    for (i = 1; i <= NSPILL; i += 2)
        if (spill_take(sp, i, page, 1) != 1 || !holds(page, i, 1) || spill_write(sp, i, page) != KVS_OK)
            bad++;
    tap_ok(bad == 0 && spill_count(sp) == NSPILL / 2, "the odd pages are all still there");

    /* flush: the spilled pages go into the database file, the map empties */
    TAP_RC(spill_flush(sp, pg), KVS_OK);
    tap_ok(spill_count(sp) == 0 && spill_end(sp) == 0, "flush empties the map and restarts the slots");
    bad = 0;
    for (i = 1; i <= NSPILL; i++)
        if (pager_read(pg, i, page) != KVS_OK || !holds(page, i, i % 2 ? 1 : 0))
            bad++;
    tap_ok(bad == 0, "the database file has the flushed pages (odd) and its own (even)");

    /* reset forgets */
    fill(page, 3, 5);
    TAP_RC(spill_write(sp, 3, page), KVS_OK);
    spill_reset(sp);
    tap_ok(spill_count(sp) == 0 && spill_end(sp) == 0, "reset: nothing spilled");
    TAP_RC(spill_take(sp, 3, page, 1), 0);
    TAP_RC(spill_flush(sp, pg), KVS_OK);
    TAP_RC(pager_read(pg, 3, page), KVS_OK);
    tap_ok(holds(page, 3, 1), "a reset page never reaches the database file");

    /* a damaged spill page is detected on its way back */
    fill(page, 40, 3);
    TAP_RC(spill_write(sp, 40, page), KVS_OK);
    fill(page, 41, 3);
    TAP_RC(spill_write(sp, 41, page), KVS_OK);
    {
        uint8_t b = 0x5a;
        tap_ok(pwrite(spill_fd, &b, 1, 0 * PG_SIZE + 2000) == 1, "one byte of spill slot 0 flipped");
    }
    TAP_RC(spill_take(sp, 40, page, 1), KVS_EIO);
    tap_ok(strstr(err.msg, "page 40") && strstr(err.msg, "damaged"), "the error names it: %s", err.msg);
    TAP_RC(spill_flush(sp, pg), KVS_EIO);
    TAP_RC(pager_read(pg, 40, page), KVS_OK);
    tap_ok(holds(page, 40, 0), "a damaged spilled page is not written into the database file");
    spill_reset(sp);

    /* the undo of a write-out keeps its images after the spilled pages: a
     * flush of 300 spilled pages saves 300 images without clobbering a
     * spilled page still to be read, and apply restores the file */
    {
        undo *u = undo_new(sp, &err);
        uint64_t before = hashfile(path), after;
        for (i = 100; i < 400; i++) {
            fill(page, i, 9);
            if (spill_write(sp, i, page) != KVS_OK)
                break;
        }
        pager_begin_unit(pg);       /* the header counts 0 pages: none is old */
        tap_ok(i == 400, "300 pages spilled");
        undo_begin(u);
        pager_set_undo(pg, u);
        TAP_RC(spill_flush(sp, pg), KVS_OK);
        pager_set_undo(pg, NULL);
        after = hashfile(path);
        bad = 0;
        for (i = 100; i < 400; i++)
            if (pager_read(pg, i, page) != KVS_OK || !holds(page, i, 9))
                bad++;
        tap_ok(bad == 0 && after != before, "flushed with the undo attached: every page written whole");
        tap_ok(undo_count(u) == 0, "no image saved for pages beyond the unit's start count (0 here)");
        undo_end(u);
        /* now with the unit's start count covering the file */
        *pager_hdr(pg) = (kvs_hdr){0};
        pager_hdr(pg)->npages = NPAGES;
        pager_begin_unit(pg);
        before = hashfile(path);
        for (i = 100; i < 400; i++) {
            fill(page, i, 11);
            if (spill_write(sp, i, page) != KVS_OK)
                break;
        }
        undo_begin(u);
        pager_set_undo(pg, u);
        TAP_RC(spill_flush(sp, pg), KVS_OK);
        pager_set_undo(pg, NULL);
        tap_ok(undo_count(u) == 300 && os.filesize(spill_fd) >= (off_t)600 * PG_SIZE,
               "300 images saved in the spill file after the 300 spilled slots");
        TAP_RC(pager_read(pg, 250, page), KVS_OK);
        tap_ok(holds(page, 250, 11), "the flush wrote the new versions");
        TAP_RC(undo_apply(u, pg), KVS_OK);
        tap_ok(hashfile(path) == before, "undo_apply puts the file back byte for byte");
        undo_end(u);
        undo_free(u);
    }

    spill_free(sp);
    pager_free(pg);
    close(fd);
    unlink(path);
    rmdir(dir);
    tap_diag("spill: %d checks", tap_n);
    return tap_done();
}
