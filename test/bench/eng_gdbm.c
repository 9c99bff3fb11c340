/*
 * eng_gdbm.c - bench adapter for GNU dbm (gdbm.h, libgdbm).
 *
 * Settings: block size 4096, GDBM_NOLOCK (one process), no GDBM_SYNC (so no
 * fsync per write); bucket cache = cache budget / 4096 buckets
 * (GDBM_SETCACHESIZE, which also turns off gdbm's cache auto-growth);
 * gdbm's mmap of the file is left unlimited: limiting it below the file size
 * (GDBM_SETMAXMAPSIZE) made gdbm 1.23 fail with "File write error" here.  gdbm_fetch returns
 * a malloc'd copy, which is how gdbm is used.  Scan = firstkey/nextkey +
 * fetch.  gdbm_sync is the workload's one fsync.
 */
#include "engine.h"

#include <errno.h>
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct gh {
    GDBM_FILE f;
} gh;

static void g_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "block 4096, NOLOCK, no SYNC flag, cachesize=%llu buckets (%.1f MiB), mmap unlimited",
             (unsigned long long)(c->cache_bytes / 4096), c->cache_bytes / 1048576.0);
}

static void *g_open(const bench_conf *c, char *err, size_t errlen)
{
    gh *h = calloc(1, sizeof *h);
    size_t cs = c->cache_bytes / 4096;

    if (!h)
        return NULL;
    h->f = gdbm_open(c->path, 4096, (c->create ? GDBM_NEWDB : GDBM_WRITER) | GDBM_NOLOCK, 0644, NULL);
    if (!h->f) {
        snprintf(err, errlen, "gdbm_open: %s", gdbm_strerror(gdbm_errno));
        free(h);
        return NULL;
    }
    if (cs < 10)
        cs = 10;
    if (gdbm_setopt(h->f, GDBM_SETCACHESIZE, &cs, sizeof cs) != 0) {
        snprintf(err, errlen, "gdbm_setopt: %s", gdbm_strerror(gdbm_errno));
        gdbm_close(h->f);
        free(h);
        return NULL;
    }
    return h;
}

static int g_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    gh *h = p;
    datum key = { (char *)k, (int)kl }, val = { (char *)v, (int)vl };
    return gdbm_store(h->f, key, val, GDBM_REPLACE) == 0 ? 0 : -1;
}

static int g_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    gh *h = p;
    datum key = { (char *)k, (int)kl };
    datum v = gdbm_fetch(h->f, key);

    if (v.dptr == NULL)
        return gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 : -1;
    copy_stamp(stamp, v.dptr, (size_t)v.dsize);
    *vl = (size_t)v.dsize;
    free(v.dptr);
    return 1;
}

static int g_del(void *p, const void *k, size_t kl)
{
    gh *h = p;
    datum key = { (char *)k, (int)kl };
    if (gdbm_delete(h->f, key) == 0)
        return 1;
    return gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 : -1;
}

static int64_t g_scan(void *p, uint64_t *x)
{
    gh *h = p;
    int64_t n = 0;
    datum k = gdbm_firstkey(h->f);
    uint64_t s;

    while (k.dptr) {
        datum v = gdbm_fetch(h->f, k), nk;
        if (!v.dptr) {
            free(k.dptr);
            return -1;
        }
        copy_stamp(&s, v.dptr, (size_t)v.dsize);
        *x ^= s;
        free(v.dptr);
        n++;
        nk = gdbm_nextkey(h->f, k);
        free(k.dptr);
        k = nk;
    }
    if (gdbm_errno != GDBM_ITEM_NOT_FOUND && gdbm_errno != GDBM_NO_ERROR)
        return -1;
    return n;
}

static int g_sync(void *p)
{
    gh *h = p;
    return gdbm_sync(h->f) == 0 ? 0 : -1;
}

static int g_close(void *p)
{
    gh *h = p;
    int rc = gdbm_close(h->f);
    free(h);
    return rc == 0 ? 0 : -1;
}

static const char *g_errmsg(void *p)
{
    (void)p;
    return gdbm_strerror(gdbm_errno);
}

const engine engine_gdbm = {
    "gdbm", g_describe, g_open, NULL, NULL, g_put, g_get, g_del, g_scan,
    g_sync, g_close, g_errmsg, NULL, NULL, NULL, NULL
};
