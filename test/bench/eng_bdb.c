/*
 * eng_bdb.c - bench adapter for Berkeley DB 5.3, hash access method (db.h).
 *
 * Settings: DB_HASH, no environment (private cache, no locking, no
 * transactions, no log), page size 4096, h_nelem = N (the documented sizing
 * hint), set_cachesize = cache budget (BDB adds 25% under 500 MB).  Gets use
 * DB-owned memory (no copy).  Scan = cursor DB_NEXT.  DB->sync is the
 * workload's one sync (writes the cache back and fsyncs).
 */
#include "engine.h"

#include <db.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bh {
    DB *db;
    int rc;
} bh;

static void b_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "DB_HASH, no env/txn/lock, pagesize 4096, h_nelem=%llu, cachesize=%.1f MiB",
             (unsigned long long)c->n, c->cache_bytes / 1048576.0);
}

static void *b_open(const bench_conf *c, char *err, size_t errlen)
{
    bh *h = calloc(1, sizeof *h);
    int rc;
    uint64_t cb = c->cache_bytes < 65536 ? 65536 : c->cache_bytes;

    if (!h)
        return NULL;
    if ((rc = db_create(&h->db, NULL, 0)) != 0)
        goto fail;
    if ((rc = h->db->set_cachesize(h->db, (uint32_t)(cb >> 30), (uint32_t)(cb & ((1u << 30) - 1)), 1)) != 0)
        goto fail;
    if (c->create) {
        if ((rc = h->db->set_pagesize(h->db, 4096)) != 0)
            goto fail;
        if ((rc = h->db->set_h_nelem(h->db, (uint32_t)c->n)) != 0)
            goto fail;
    }
    if ((rc = h->db->open(h->db, NULL, c->path, NULL, DB_HASH, c->create ? DB_CREATE : 0, 0644)) != 0)
        goto fail;
    return h;
fail:
    snprintf(err, errlen, "berkeley db open: %s", db_strerror(rc));
    if (h->db)
        h->db->close(h->db, 0);
    free(h);
    return NULL;
}

static int b_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    bh *h = p;
    DBT key, val;
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    key.data = (void *)k; key.size = (u_int32_t)kl;
    val.data = (void *)v; val.size = (u_int32_t)vl;
    h->rc = h->db->put(h->db, NULL, &key, &val, 0);
    return h->rc == 0 ? 0 : -1;
}

static int b_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    bh *h = p;
    DBT key, val;
    int rc;
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    key.data = (void *)k; key.size = (u_int32_t)kl;
    rc = h->db->get(h->db, NULL, &key, &val, 0);
    if (rc == 0) {
        copy_stamp(stamp, val.data, val.size);
        *vl = val.size;
        return 1;
    }
    if (rc == DB_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int b_del(void *p, const void *k, size_t kl)
{
    bh *h = p;
    DBT key;
    int rc;
    memset(&key, 0, sizeof key);
    key.data = (void *)k; key.size = (u_int32_t)kl;
    rc = h->db->del(h->db, NULL, &key, 0);
    if (rc == 0)
        return 1;
    if (rc == DB_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int64_t b_scan(void *p, uint64_t *x)
{
    bh *h = p;
    DBC *cur;
    DBT key, val;
    int64_t n = 0;
    uint64_t s;
    int rc;

    if ((rc = h->db->cursor(h->db, NULL, &cur, 0)) != 0) {
        h->rc = rc;
        return -1;
    }
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    while ((rc = cur->get(cur, &key, &val, DB_NEXT)) == 0) {
        copy_stamp(&s, val.data, val.size);
        *x ^= s;
        n++;
    }
    cur->close(cur);
    if (rc != DB_NOTFOUND) {
        h->rc = rc;
        return -1;
    }
    return n;
}

static int b_sync(void *p)
{
    bh *h = p;
    h->rc = h->db->sync(h->db, 0);
    return h->rc == 0 ? 0 : -1;
}

static int b_close(void *p)
{
    bh *h = p;
    int rc = h->db->close(h->db, 0);
    free(h);
    return rc == 0 ? 0 : -1;
}

static const char *b_errmsg(void *p)
{
    bh *h = p;
    return db_strerror(h->rc);
}

const engine engine_bdb = {
    "bdb", b_describe, b_open, NULL, NULL, b_put, b_get, b_del, b_scan,
    b_sync, b_close, b_errmsg, NULL, NULL
};
