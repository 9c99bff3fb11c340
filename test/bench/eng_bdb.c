/*
 * eng_bdb.c - bench adapter for Berkeley DB 5.3, hash access method (db.h).
 *
 * Settings: DB_HASH, no environment (private cache, no locking, no
 * transactions, no log), page size 4096, h_nelem = N (the documented sizing
 * hint), set_cachesize = cache budget (BDB adds 25% under 500 MB).  Gets use
 * DB-owned memory (no copy).  Scan = cursor DB_NEXT.  DB->sync is the
 * workload's one sync (writes the cache back and fsyncs).
 * Durable commits (bench_conf.durable): a private environment in the file's
 * directory with DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK | DB_INIT_MPOOL (the
 * cache is the environment's), the database opened DB_AUTO_COMMIT, and each
 * begin..end one transaction committed synchronously (the default: its log
 * records fsynced at commit).
 */
#include "engine.h"

#include <db.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bh {
    DB_ENV *env;    /* durable mode only */
    DB_TXN *txn;    /* the open transaction (durable mode), else NULL */
    DB *db;
    int rc;
} bh;

static void b_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "DB_HASH, %s, pagesize 4096, h_nelem=%llu, cachesize=%.1f MiB",
             c->durable ? "private env with txn/log/lock, txn commit sync" : "no env/txn/lock",
             (unsigned long long)c->n, c->cache_bytes / 1048576.0);
}

static void *b_open(const bench_conf *c, char *err, size_t errlen)
{
    bh *h = calloc(1, sizeof *h);
    int rc;
    uint64_t cb = c->cache_bytes < 65536 ? 65536 : c->cache_bytes;

    if (!h)
        return NULL;
    if (c->durable) {
        char home[4096];
        snprintf(home, sizeof home, "%s", c->path);
        if ((rc = db_env_create(&h->env, 0)) != 0)
            goto fail;
        /* the load is one transaction: a page lock per page it touches */
        if ((rc = h->env->set_cachesize(h->env, (uint32_t)(cb >> 30), (uint32_t)(cb & ((1u << 30) - 1)), 1)) != 0 ||
            (rc = h->env->set_lk_max_locks(h->env, 200000)) != 0 ||
            (rc = h->env->set_lk_max_objects(h->env, 200000)) != 0 ||
            (rc = h->env->open(h->env, dirname(home), DB_CREATE | DB_PRIVATE | DB_INIT_MPOOL | DB_INIT_TXN |
                               DB_INIT_LOG | DB_INIT_LOCK, 0)) != 0)
            goto fail;
    }
    if ((rc = db_create(&h->db, h->env, 0)) != 0)
        goto fail;
    if (!h->env &&
        (rc = h->db->set_cachesize(h->db, (uint32_t)(cb >> 30), (uint32_t)(cb & ((1u << 30) - 1)), 1)) != 0)
        goto fail;
    if (c->create) {
        if ((rc = h->db->set_pagesize(h->db, 4096)) != 0)
            goto fail;
        if ((rc = h->db->set_h_nelem(h->db, (uint32_t)c->n)) != 0)
            goto fail;
    }
    if ((rc = h->db->open(h->db, NULL, c->path, NULL, DB_HASH,
                          (c->create ? DB_CREATE : 0) | (h->env ? DB_AUTO_COMMIT : 0), 0644)) != 0)
        goto fail;
    return h;
fail:
    snprintf(err, errlen, "berkeley db open: %s", db_strerror(rc));
    if (h->db)
        h->db->close(h->db, 0);
    if (h->env)
        h->env->close(h->env, 0);
    free(h);
    return NULL;
}

/* a transaction per begin..end in durable mode; nothing otherwise */
static int b_begin(void *p, int write)
{
    bh *h = p;
    (void)write;
    if (!h->env)
        return 0;
    h->rc = h->env->txn_begin(h->env, NULL, &h->txn, 0);
    return h->rc == 0 ? 0 : -1;
}

static int b_end(void *p)
{
    bh *h = p;
    if (!h->txn)
        return 0;
    h->rc = h->txn->commit(h->txn, 0);
    h->txn = NULL;
    return h->rc == 0 ? 0 : -1;
}

static int b_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    bh *h = p;
    DBT key, val;
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    key.data = (void *)k; key.size = (u_int32_t)kl;
    val.data = (void *)v; val.size = (u_int32_t)vl;
    h->rc = h->db->put(h->db, h->txn, &key, &val, 0);
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
    rc = h->db->get(h->db, h->txn, &key, &val, 0);
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
    rc = h->db->del(h->db, h->txn, &key, 0);
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

    if ((rc = h->db->cursor(h->db, h->txn, &cur, 0)) != 0) {
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
    int rc;
    if (h->txn)
        h->txn->abort(h->txn);
    rc = h->db->close(h->db, 0);
    if (h->env && h->env->close(h->env, 0) != 0)
        rc = -1;
    free(h);
    return rc == 0 ? 0 : -1;
}

static const char *b_errmsg(void *p)
{
    bh *h = p;
    return db_strerror(h->rc);
}

const engine engine_bdb = {
    "bdb", b_describe, b_open, b_begin, b_end, b_put, b_get, b_del, b_scan,
    b_sync, b_close, b_errmsg, NULL, NULL, NULL, NULL
};
