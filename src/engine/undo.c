/*
 * undo.c - the undo of a failed write-out (undo.h): a list of (page number,
 * image) pairs, the images in spill-file slots after the spilled pages or
 * in a memory buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include "undo.h"

struct undo {
    spill    *sp;             /* where the images go; NULL = undo_buf */
    kvs_err  *err;
    uint32_t  n, cap;         /* images kept, room for */
    uint32_t  base;           /* first spill-file slot of the images */
    uint32_t *pgno;           /* page of each image */
    uint8_t  *buf;            /* images in memory, only without a spill file */
};

undo *undo_new(spill *sp, kvs_err *err)
{
    undo *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->sp = sp;
    u->err = err;
    return u;
}

void undo_free(undo *u)
{
    if (!u)
        return;
    free(u->pgno);
    free(u->buf);
    free(u);
}

void undo_begin(undo *u)
{
    u->n = 0;
    /* images go to spill-file slots after the spilled pages' */
    u->base = u->sp ? spill_end(u->sp) : 0;
}

uint32_t undo_count(const undo *u)
{
    return u->n;
}

/* A failure here fails the write-out before it overwrites the pages. */
int undo_save_run(undo *u, uint32_t pgno, uint32_t n, const uint8_t *imgs)
{
    uint32_t i;
    if (u->sp) {
        int rc = spill_open(u->sp);
        if (rc)
            return rc;
    }
    while (u->cap - u->n < n) {
        uint32_t cap = u->cap ? u->cap * 2 : 64;
        uint32_t *pn = realloc(u->pgno, (size_t)cap * sizeof *pn);
        if (!pn)
            return kvs_seterr(u->err, KVS_ENOMEM, 0, "out of memory (undo)");
        u->pgno = pn;
        if (!u->sp) {
            uint8_t *buf = realloc(u->buf, (size_t)cap * PG_SIZE);
            if (!buf)
                return kvs_seterr(u->err, KVS_ENOMEM, 0, "out of memory (undo)");
            u->buf = buf;
        }
        u->cap = cap;
    }
    if (!u->sp)
        memcpy(u->buf + (size_t)u->n * PG_SIZE, imgs, (size_t)n * PG_SIZE);
    else if (spill_slots_write(u->sp, u->base + u->n, n, imgs) != 0)
        return kvs_seterrno(u->err, errno, pgno, "write of an undo image to the spill file failed");
    for (i = 0; i < n; i++)
        u->pgno[u->n++] = pgno + i;
    return KVS_OK;
}

int undo_apply(undo *u, pager *pg)
{
    uint8_t tmp[PG_SIZE];
    int rc = KVS_OK;
    uint32_t i = u->n;
    while (i-- > 0) {
        const uint8_t *img = tmp;
        if (!u->sp)
            img = u->buf + (size_t)i * PG_SIZE;
        else if (spill_slot_read(u->sp, u->base + i, tmp) != 0) {
            if (rc == KVS_OK)
                rc = kvs_seterrno(u->err, errno, u->pgno[i], "read of an undo image failed");
            continue;
        }
        if (pager_write_image(pg, u->pgno[i], img) != 0 && rc == KVS_OK)
            rc = kvs_seterrno(u->err, errno, u->pgno[i], "undo of a failed write-out failed");
    }
    u->n = 0;
    return rc;
}

void undo_end(undo *u)
{
    u->n = 0;
    /* a huge unit should not pin its undo memory for the handle's life */
    if (u->cap > 1024) {
        free(u->pgno);
        free(u->buf);
        u->pgno = NULL;
        u->buf = NULL;
        u->cap = 0;
    }
}
