/*
 * eng_sqlite.c - bench adapter for SQLite 3 (sqlite3.h).
 *
 * Settings: one table kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID (the
 * key is the b-tree's key, as in the other engines), journal_mode = WAL,
 * page_size 4096, cache_size = the cache budget, locking_mode = EXCLUSIVE
 * (one process).  synchronous = OFF for the main workload (no fsync at
 * commit, like the other adapters' settings), FULL when the bench asks for
 * durable commits (bench_conf.durable: the WAL is fsynced at every commit).
 * Each phase is one transaction (BEGIN IMMEDIATE for writes); put = INSERT
 * OR REPLACE, get = SELECT, del = DELETE, scan = SELECT v FROM kv, all
 * prepared once.  The one sync: synchronous = FULL for a
 * wal_checkpoint(TRUNCATE) (the WAL fsynced, copied into the database file,
 * that fsynced).
 */
#include "engine.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

enum { ST_PUT, ST_GET, ST_DEL, ST_SCAN, NST };
static const char *const st_sql[NST] = {
    "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)",
    "SELECT v FROM kv WHERE k = ?1",
    "DELETE FROM kv WHERE k = ?1",
    "SELECT v FROM kv",
};

typedef struct sh {
    sqlite3      *db;
    sqlite3_stmt *st[NST];
    int           durable;
    int           rc;
    char          msg[256];
} sh;

static void s_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "WITHOUT ROWID b-tree, WAL, synchronous=%s, cache_size=%.1f MiB, EXCLUSIVE locking, one txn per %s",
             c->durable ? "FULL" : "OFF", c->cache_bytes / 1048576.0, c->durable ? "commit" : "phase");
}

/* runs one statement with no result; 0 ok, -1 error (message kept) */
static int s_exec(sh *h, const char *sql)
{
    char *e = NULL;
    h->rc = sqlite3_exec(h->db, sql, NULL, NULL, &e);
    if (h->rc != SQLITE_OK) {
        snprintf(h->msg, sizeof h->msg, "%s: %s", sql, e ? e : sqlite3_errstr(h->rc));
        sqlite3_free(e);
        return -1;
    }
    return 0;
}

static int s_close_db(sh *h)
{
    int i, rc;
    for (i = 0; i < NST; i++)
        sqlite3_finalize(h->st[i]);
    rc = sqlite3_close(h->db);
    free(h);
    return rc == SQLITE_OK ? 0 : -1;
}

static void *s_open(const bench_conf *c, char *err, size_t errlen)
{
    sh *h = calloc(1, sizeof *h);
    char pragmas[256];
    int i;

    if (!h)
        return NULL;
    h->durable = c->durable;
    h->rc = sqlite3_open_v2(c->path, &h->db, SQLITE_OPEN_READWRITE | (c->create ? SQLITE_OPEN_CREATE : 0), NULL);
    if (h->rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite open: %s", sqlite3_errstr(h->rc));
        s_close_db(h);
        return NULL;
    }
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;"
             " PRAGMA cache_size = -%llu; PRAGMA locking_mode = EXCLUSIVE;",
             c->durable ? "FULL" : "OFF", (unsigned long long)(c->cache_bytes / 1024));
    if (s_exec(h, pragmas) != 0 ||
        (c->create && s_exec(h, "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID") != 0))
        goto fail;
    for (i = 0; i < NST; i++)
        if ((h->rc = sqlite3_prepare_v2(h->db, st_sql[i], -1, &h->st[i], NULL)) != SQLITE_OK) {
            snprintf(h->msg, sizeof h->msg, "prepare: %s", sqlite3_errmsg(h->db));
            goto fail;
        }
    return h;
fail:
    snprintf(err, errlen, "sqlite open: %s", h->msg);
    s_close_db(h);
    return NULL;
}

static int s_begin(void *p, int write)
{
    return s_exec(p, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int s_end(void *p)
{
    return s_exec(p, "COMMIT");
}

/* steps a prepared statement once, then resets it: the step's code */
static int s_step(sh *h, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        h->rc = rc;
        snprintf(h->msg, sizeof h->msg, "%s", sqlite3_errmsg(h->db));
    }
    return rc;
}

static int s_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    sh *h = p;
    sqlite3_stmt *st = h->st[ST_PUT];
    int rc;
    sqlite3_bind_blob(st, 1, k, (int)kl, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, v, (int)vl, SQLITE_STATIC);
    rc = s_step(h, st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int s_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    sh *h = p;
    sqlite3_stmt *st = h->st[ST_GET];
    int rc, found = 0;
    sqlite3_bind_blob(st, 1, k, (int)kl, SQLITE_STATIC);
    rc = s_step(h, st);
    if (rc == SQLITE_ROW) {
        *vl = (size_t)sqlite3_column_bytes(st, 0);
        copy_stamp(stamp, sqlite3_column_blob(st, 0), *vl);
        found = 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

static int s_del(void *p, const void *k, size_t kl)
{
    sh *h = p;
    sqlite3_stmt *st = h->st[ST_DEL];
    int rc;
    sqlite3_bind_blob(st, 1, k, (int)kl, SQLITE_STATIC);
    rc = s_step(h, st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    return sqlite3_changes(h->db) > 0;
}

static int64_t s_scan(void *p, uint64_t *x)
{
    sh *h = p;
    sqlite3_stmt *st = h->st[ST_SCAN];
    int64_t n = 0;
    uint64_t s;
    int rc;
    while ((rc = s_step(h, st)) == SQLITE_ROW) {
        copy_stamp(&s, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        *x ^= s;
        n++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? n : -1;
}

static int s_sync(void *p)
{
    sh *h = p;
    if (s_exec(h, "PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(TRUNCATE)") != 0)
        return -1;
    return h->durable ? 0 : s_exec(h, "PRAGMA synchronous = OFF");
}

static int s_close(void *p)
{
    return s_close_db(p);
}

static const char *s_errmsg(void *p)
{
    sh *h = p;
    return h->msg[0] ? h->msg : sqlite3_errstr(h->rc);
}

const engine engine_sqlite = {
    "sqlite", s_describe, s_open, s_begin, s_end, s_put, s_get, s_del, s_scan,
    s_sync, s_close, s_errmsg, NULL, NULL, NULL, NULL
};
