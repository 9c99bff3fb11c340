/*
 * eng_lmdb.c - bench adapter for LMDB (lmdb.h).
 *
 * Settings: MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOLOCK (one process; no fsync at
 * commit; without MDB_NOSYNC for durable commits: the data pages and then the
 * meta page fsynced at each commit), no MDB_WRITEMAP, mapsize large enough for the data.  LMDB has no
 * cache setting of its own: it reads through mmap, i.e. the OS page cache.
 * Each phase is one transaction (write for load/replace/delete, read-only
 * for gets and scan), like kvs's sections; a write transaction that fills
 * up (MDB_TXN_FULL) is committed and a new one begun.  Gets return pointers
 * into the map (no copy).  Scan = cursor MDB_NEXT.  mdb_env_sync(force) is
 * the one sync.
 */
#include "engine.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct lh {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  dbi;
    int      write;
    int      rc;
} lh;

static uint64_t mapsize(const bench_conf *c)
{
    uint64_t m = 4 * c->n * (uint64_t)(c->klen + c->vlen + 64) + (UINT64_C(256) << 20);
    return m;
}

static void l_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "NOSUBDIR|%sNOLOCK, mapsize=%.0f MiB, no cache setting (OS page cache via mmap), %s",
             c->durable ? "" : "NOSYNC|", mapsize(c) / 1048576.0,
             c->durable ? "sync at commit" : "one txn per phase");
}

static void *l_open(const bench_conf *c, char *err, size_t errlen)
{
    lh *h = calloc(1, sizeof *h);
    int rc;
    MDB_txn *t;

    if (!h)
        return NULL;
    if ((rc = mdb_env_create(&h->env)) != 0 ||
        (rc = mdb_env_set_mapsize(h->env, (size_t)mapsize(c))) != 0 ||
        (rc = mdb_env_open(h->env, c->path, MDB_NOSUBDIR | MDB_NOLOCK | (c->durable ? 0 : MDB_NOSYNC), 0644)) != 0 ||
        (rc = mdb_txn_begin(h->env, NULL, 0, &t)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(t, NULL, 0, &h->dbi)) != 0) {
        mdb_txn_abort(t);
        goto fail;
    }
    if ((rc = mdb_txn_commit(t)) != 0)
        goto fail;
    return h;
fail:
    snprintf(err, errlen, "lmdb open: %s", mdb_strerror(rc));
    if (h->env)
        mdb_env_close(h->env);
    free(h);
    return NULL;
}

static int l_begin(void *p, int write)
{
    lh *h = p;
    h->write = write;
    h->rc = mdb_txn_begin(h->env, NULL, write ? 0 : MDB_RDONLY, &h->txn);
    return h->rc == 0 ? 0 : -1;
}

static int l_end(void *p)
{
    lh *h = p;
    h->rc = mdb_txn_commit(h->txn);
    h->txn = NULL;
    return h->rc == 0 ? 0 : -1;
}

static int l_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    lh *h = p;
    MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
    int rc = mdb_put(h->txn, h->dbi, &key, &val, 0);

    if (rc == MDB_TXN_FULL) {       /* commit what we have, go on in a new txn */
        if ((rc = mdb_txn_commit(h->txn)) == 0 &&
            (rc = mdb_txn_begin(h->env, NULL, 0, &h->txn)) == 0)
            rc = mdb_put(h->txn, h->dbi, &key, &val, 0);
    }
    h->rc = rc;
    return rc == 0 ? 0 : -1;
}

static int l_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    lh *h = p;
    MDB_val key = { kl, (void *)k }, val;
    int rc = mdb_get(h->txn, h->dbi, &key, &val);

    if (rc == 0) {
        copy_stamp(stamp, val.mv_data, val.mv_size);
        *vl = val.mv_size;
        return 1;
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int l_del(void *p, const void *k, size_t kl)
{
    lh *h = p;
    MDB_val key = { kl, (void *)k };
    int rc = mdb_del(h->txn, h->dbi, &key, NULL);

    if (rc == 0)
        return 1;
    if (rc == MDB_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int64_t l_scan(void *p, uint64_t *x)
{
    lh *h = p;
    MDB_cursor *cur;
    MDB_val key, val;
    int64_t n = 0;
    uint64_t s;
    int rc;

    if ((rc = mdb_cursor_open(h->txn, h->dbi, &cur)) != 0) {
        h->rc = rc;
        return -1;
    }
    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        copy_stamp(&s, val.mv_data, val.mv_size);
        *x ^= s;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        h->rc = rc;
        return -1;
    }
    return n;
}

static int l_sync(void *p)
{
    lh *h = p;
    h->rc = mdb_env_sync(h->env, 1);
    return h->rc == 0 ? 0 : -1;
}

static int l_close(void *p)
{
    lh *h = p;
    int rc = 0;
    if (h->txn)
        mdb_txn_abort(h->txn);
    rc = mdb_env_sync(h->env, 1);
    mdb_env_close(h->env);
    free(h);
    return rc == 0 ? 0 : -1;
}

static const char *l_errmsg(void *p)
{
    lh *h = p;
    return mdb_strerror(h->rc);
}

const engine engine_lmdb = {
    "lmdb", l_describe, l_open, l_begin, l_end, l_put, l_get, l_del, l_scan,
    l_sync, l_close, l_errmsg, NULL, NULL, NULL, NULL
};
