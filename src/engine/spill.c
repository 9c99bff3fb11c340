/*
 * spill.c - the spill file and its map (spill.h).
 *
 * No-steal: a dirty page that existed before the write section must not
 * reach the file before the section ends (a later failure would leave the
 * file half-changed).  When the pool must evict one, it comes here and goes
 * back to the pool when needed again; kvs_end copies the spilled pages into
 * the file after the pool's dirty pages.  Pages the section grew the file
 * with are not spilled (the pool writes them to the file: nothing on disk
 * points to them).
 *
 * The map is ptab.h's open-addressing hash (key: the page number, value:
 * the slot), 16 bytes a slot, 1024 slots at first, doubled before the load
 * passes one half.  A page taken back keeps its entry, marked taken, so
 * that when it is evicted again it overwrites its old slot: a page the
 * section keeps coming back to (a bucket or directory page of a file being
 * loaded past the pool) costs one slot, not one per eviction.  The file is
 * truncated by nobody (it is unlinked: its space goes back to the system
 * when the handle closes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "spill.h"
#include "ptab.h"

#define SPILL_MAP_BITS0 10      /* the map's first size: 1024 slots */
#define SLOT_TAKEN      0x80000000u     /* entry's page is back in the pool */

struct spill {
    const kvs_os *os;
    kvs_err    *err;
    int         fd;             /* -1 until first needed */
    uint32_t    next;           /* next free slot in the file */
    uint32_t    count;          /* pages in the spill file (entries not taken) */
    uint32_t    entries;        /* entries in the map, taken ones too */
    uint32_t    bits;           /* the map has 2^bits slots; 0 = none yet */
    ptab_slot  *map;
    uint64_t    written;
    char        path[];         /* the database path (the file's name) */
};

spill *spill_new(const kvs_os *os, const char *path, kvs_err *err)
{
    size_t n = strlen(path) + 1;
    spill *sp = calloc(1, sizeof *sp + n);
    if (!sp)
        return NULL;
    sp->os = os;
    sp->err = err;
    sp->fd = -1;
    memcpy(sp->path, path, n);
    return sp;
}

void spill_free(spill *sp)
{
    if (!sp)
        return;
    if (sp->fd >= 0)
        sp->os->close(sp->fd);
    free(sp->map);
    free(sp);
}

int spill_open(spill *sp)
{
    static unsigned counter;
    char *name;
    size_t n;
    if (sp->fd >= 0)
        return KVS_OK;
    n = strlen(sp->path) + 48;
    name = malloc(n);
    if (!name)
        return kvs_seterr(sp->err, KVS_ENOMEM, 0, "out of memory");
    snprintf(name, n, "%s.spill.%ld.%u", sp->path, (long)getpid(), counter++);
    sp->fd = sp->os->open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (sp->fd < 0) {
        int rc = kvs_seterrno(sp->err, errno, 0, "cannot create the spill file");
        free(name);
        return rc;
    }
    sp->os->unlink(name);
    free(name);
    return KVS_OK;
}

uint32_t spill_end(const spill *sp)
{
    return sp->next;
}

int spill_slot_write(spill *sp, uint32_t slot, const uint8_t *page)
{
    return spill_slots_write(sp, slot, 1, page);
}

int spill_slots_write(spill *sp, uint32_t slot, uint32_t n, const uint8_t *pages)
{
    return pager_write_all(sp->os, sp->fd, pages, (size_t)n * PG_SIZE, (off_t)slot * PG_SIZE);
}

int spill_slot_read(spill *sp, uint32_t slot, uint8_t *page)
{
    ssize_t r = pager_read_all(sp->os, sp->fd, page, PG_SIZE, (off_t)slot * PG_SIZE);
    if (r < 0)
        return -1;
    if (r < PG_SIZE) {
        errno = EIO;
        return -1;
    }
    return 0;
}

uint32_t spill_count(const spill *sp)
{
    return sp->count;
}

uint64_t spill_written(const spill *sp)
{
    return sp->written;
}

/* Adds pgno -> slot (not present), doubling the map first if the load
 * would pass one half. */
static int map_insert(spill *sp, uint32_t pgno, uint32_t slot)
{
    if (!sp->bits || 2 * ((uint64_t)sp->entries + 1) > ((uint64_t)1 << sp->bits)) {
        uint32_t bits = sp->bits ? sp->bits + 1 : SPILL_MAP_BITS0, i, oldn = sp->bits ? 1u << sp->bits : 0;
        ptab_slot *map = malloc(((size_t)1 << bits) * sizeof *map);
        if (!map)
            return kvs_seterr(sp->err, KVS_ENOMEM, 0, "out of memory for the spill map");
        ptab_clear(map, bits);
        for (i = 0; i < oldn; i++)
            if (sp->map[i].val != PTAB_EMPTY)
                ptab_insert(map, bits, sp->map[i].key, sp->map[i].val);
        free(sp->map);
        sp->map = map;
        sp->bits = bits;
    }
    ptab_insert(sp->map, sp->bits, pgno, slot);
    sp->entries++;
    return KVS_OK;
}

/* The map slot of pgno (taken or not), or PTAB_EMPTY. */
static uint32_t map_find(const spill *sp, uint32_t pgno)
{
    return sp->entries ? ptab_find_slot(sp->map, sp->bits, pgno) : PTAB_EMPTY;
}

int spill_write(spill *sp, uint32_t pgno, uint8_t *page)
{
    uint32_t i = map_find(sp, pgno), slot;
    int rc = spill_open(sp);
    if (rc)
        return rc;
    slot = i != PTAB_EMPTY ? sp->map[i].val & ~SLOT_TAKEN : sp->next;
    if (slot & SLOT_TAKEN)
        return kvs_seterr(sp->err, KVS_ENOSPC, pgno, "the spill file is full (2^31 pages)");
    pager_seal(page, pgno);
    if (spill_slot_write(sp, slot, page) != 0)
        return kvs_seterrno(sp->err, errno, pgno, "write to the spill file failed");
    if (i == PTAB_EMPTY) {
        rc = map_insert(sp, pgno, slot);
        if (rc)
            return rc;
        sp->next++;
        sp->count++;
    } else if (sp->map[i].val & SLOT_TAKEN) {
        sp->map[i].val = slot;
        sp->count++;
    }
    sp->written++;
    return KVS_OK;
}

/* Reads the image of pgno in slot back, checking it is the page written. */
static int read_back(spill *sp, uint32_t slot, uint32_t pgno, uint8_t *page)
{
    if (spill_slot_read(sp, slot, page) != 0)
        return kvs_seterrno(sp->err, errno, pgno, "read from the spill file failed");
    if (rd64(page + PG_CKSUM) != pager_checksum(page, pgno))
        return kvs_seterr(sp->err, KVS_EIO, 0, "page %u came back from the spill file damaged",
                          (unsigned)pgno);
    return KVS_OK;
}

/* (No look-up while nothing is spilled: every pool miss asks.) */
int spill_take(spill *sp, uint32_t pgno, uint8_t *page, int want_data)
{
    uint32_t i = sp->count ? map_find(sp, pgno) : PTAB_EMPTY;
    if (i == PTAB_EMPTY || (sp->map[i].val & SLOT_TAKEN))
        return 0;
    if (want_data) {
        int rc = read_back(sp, sp->map[i].val, pgno, page);
        if (rc)
            return rc;
    }
    sp->map[i].val |= SLOT_TAKEN;
    sp->count--;
    return 1;
}

int spill_capture(spill *sp, pager *pg)
{
    uint8_t page[PG_SIZE];
    uint32_t i, n = sp->count ? 1u << sp->bits : 0;
    for (i = 0; i < n; i++) {
        uint32_t pgno = (uint32_t)sp->map[i].key;
        int rc;
        if (sp->map[i].val == PTAB_EMPTY || (sp->map[i].val & SLOT_TAKEN))
            continue;
        rc = read_back(sp, sp->map[i].val, pgno, page);
        if (!rc)
            rc = pager_write(pg, pgno, page);
        if (rc)
            return rc;
    }
    return KVS_OK;
}

int spill_flush(spill *sp, pager *pg)
{
    int rc = spill_capture(sp, pg);
    if (rc)
        return rc;
    spill_reset(sp);
    return KVS_OK;
}

void spill_reset(spill *sp)
{
    /* a map without entries is all empty slots already (entries are never
     * deleted one by one: a taken page keeps its entry) */
    if (sp->entries)
        ptab_clear(sp->map, sp->bits);
    sp->count = sp->entries = 0;
    sp->next = 0;
}
