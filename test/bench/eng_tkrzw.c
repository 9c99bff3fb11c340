/*
 * eng_tkrzw.c - bench adapter for Tokyo/Kyoto's successor tkrzw, HashDBM
 * (tkrzw_langc.h).
 *
 * Settings: "dbm=HashDBM,num_buckets=2N,no_lock=true" (+truncate at
 * creation); default file class (memory-mapped) and update mode (in place).
 * HashDBM has no cache-size setting: it reads through mmap, i.e. the OS page
 * cache.  tkrzw_dbm_get returns a malloc'd copy, which is how the C API is
 * used.  Scan = tkrzw_dbm_process_each.  tkrzw_dbm_synchronize(hard) is the
 * one sync.
 */
#include "engine.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <tkrzw_langc.h>

typedef struct th {
    TkrzwDBM *dbm;
} th;

static void t_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "HashDBM num_buckets=%llu, no_lock, mmap file, no cache setting (OS page cache)",
             (unsigned long long)(2 * c->n));
}

static void *t_open(const bench_conf *c, char *err, size_t errlen)
{
    th *h = calloc(1, sizeof *h);
    char params[256];

    if (!h)
        return NULL;
    snprintf(params, sizeof params, "dbm=HashDBM,num_buckets=%llu,no_lock=true%s",
             (unsigned long long)(2 * c->n), c->create ? ",truncate=true" : "");
    h->dbm = tkrzw_dbm_open(c->path, true, params);
    if (!h->dbm) {
        snprintf(err, errlen, "tkrzw_dbm_open: %s", tkrzw_get_last_status_message());
        free(h);
        return NULL;
    }
    return h;
}

static int t_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    th *h = p;
    return tkrzw_dbm_set(h->dbm, k, (int32_t)kl, v, (int32_t)vl, true) ? 0 : -1;
}

static int t_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    th *h = p;
    int32_t n;
    char *v = tkrzw_dbm_get(h->dbm, k, (int32_t)kl, &n);

    if (!v)
        return tkrzw_get_last_status_code() == TKRZW_STATUS_NOT_FOUND_ERROR ? 0 : -1;
    copy_stamp(stamp, v, (size_t)n);
    *vl = (size_t)n;
    free(v);
    return 1;
}

static int t_del(void *p, const void *k, size_t kl)
{
    th *h = p;
    if (tkrzw_dbm_remove(h->dbm, k, (int32_t)kl))
        return 1;
    return tkrzw_get_last_status_code() == TKRZW_STATUS_NOT_FOUND_ERROR ? 0 : -1;
}

typedef struct scanst { int64_t n; uint64_t x; } scanst;

static const char *t_visit(void *arg, const char *kp, int32_t ks, const char *vp, int32_t vs, int32_t *sp)
{
    scanst *st = arg;
    uint64_t s;
    (void)kp; (void)ks; (void)sp;
    if (vp != NULL) {           /* NULL marks the start and end calls */
        copy_stamp(&s, vp, (size_t)vs);
        st->x ^= s;
        st->n++;
    }
    return TKRZW_REC_PROC_NOOP;
}

static int64_t t_scan(void *p, uint64_t *x)
{
    th *h = p;
    scanst st = { 0, 0 };
    if (!tkrzw_dbm_process_each(h->dbm, t_visit, &st, false))
        return -1;
    *x ^= st.x;
    return st.n;
}

static int t_sync(void *p)
{
    th *h = p;
    return tkrzw_dbm_synchronize(h->dbm, true, NULL, NULL, "") ? 0 : -1;
}

static int t_close(void *p)
{
    th *h = p;
    bool ok = tkrzw_dbm_close(h->dbm);
    free(h);
    return ok ? 0 : -1;
}

static const char *t_errmsg(void *p)
{
    (void)p;
    return tkrzw_get_last_status_message();
}

const engine engine_tkrzw = {
    "tkrzw", t_describe, t_open, NULL, NULL, t_put, t_get, t_del, t_scan,
    t_sync, t_close, t_errmsg, NULL, NULL, NULL, NULL
};
