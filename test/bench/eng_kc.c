/*
 * eng_kc.c - bench adapter for Kyoto Cabinet HashDB (kclangc.h).
 *
 * Settings: "#type=kch#bnum=2N#msiz=<cache budget>" (bnum = twice the record
 * count, as KC's docs suggest; msiz = the memory-mapped region, KC's only
 * cache setting; beyond it KC uses pread/pwrite), default apow/fpow, no
 * autotran/autosync, KCONOLOCK.  Gets copy into a caller buffer
 * (kcdbgetbuf: no malloc).  Scan = kcdbiterate.  kcdbsync(hard) is the one
 * sync.
 */
#include "engine.h"

#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct kch {
    KCDB  *db;
    char  *buf;
    size_t buflen;
} kch;

static void k_describe(const bench_conf *c, char *buf, size_t len)
{
    snprintf(buf, len, "HashDB bnum=%llu msiz=%.1f MiB, NOLOCK, no autotran/autosync",
             (unsigned long long)(2 * c->n), c->cache_bytes / 1048576.0);
}

static void *k_open(const bench_conf *c, char *err, size_t errlen)
{
    kch *h = calloc(1, sizeof *h);
    char spec[4096];
    uint32_t mode = KCOWRITER | KCONOLOCK | (c->create ? KCOCREATE | KCOTRUNCATE : 0);

    if (!h)
        return NULL;
    h->buflen = c->vlen + 16;
    h->buf = malloc(h->buflen);
    h->db = kcdbnew();
    snprintf(spec, sizeof spec, "%s#type=kch#bnum=%llu#msiz=%llu", c->path,
             (unsigned long long)(2 * c->n), (unsigned long long)c->cache_bytes);
    if (!h->buf || !kcdbopen(h->db, spec, mode)) {
        snprintf(err, errlen, "kcdbopen: %s", kcdbemsg(h->db));
        kcdbdel(h->db);
        free(h->buf);
        free(h);
        return NULL;
    }
    return h;
}

static int k_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    kch *h = p;
    return kcdbset(h->db, k, kl, v, vl) ? 0 : -1;
}

static int k_get(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    kch *h = p;
    int32_t n = kcdbgetbuf(h->db, k, kl, h->buf, h->buflen);

    if (n < 0)
        return kcdbecode(h->db) == KCENOREC ? 0 : -1;
    copy_stamp(stamp, h->buf, (size_t)n);
    *vl = (size_t)n;
    return 1;
}

static int k_del(void *p, const void *k, size_t kl)
{
    kch *h = p;
    if (kcdbremove(h->db, k, kl))
        return 1;
    return kcdbecode(h->db) == KCENOREC ? 0 : -1;
}

typedef struct scanst { int64_t n; uint64_t x; } scanst;

static const char *k_visit(const char *kb, size_t ks, const char *vb, size_t vs, size_t *sp, void *opq)
{
    scanst *st = opq;
    uint64_t s;
    (void)kb; (void)ks; (void)sp;
    copy_stamp(&s, vb, vs);
    st->x ^= s;
    st->n++;
    return KCVISNOP;
}

static int64_t k_scan(void *p, uint64_t *x)
{
    kch *h = p;
    scanst st = { 0, 0 };
    if (!kcdbiterate(h->db, k_visit, &st, 0))
        return -1;
    *x ^= st.x;
    return st.n;
}

static int k_sync(void *p)
{
    kch *h = p;
    return kcdbsync(h->db, 1, NULL, NULL) ? 0 : -1;
}

static int k_close(void *p)
{
    kch *h = p;
    int ok = kcdbclose(h->db);
    kcdbdel(h->db);
    free(h->buf);
    free(h);
    return ok ? 0 : -1;
}

static const char *k_errmsg(void *p)
{
    kch *h = p;
    return kcdbemsg(h->db);
}

const engine engine_kc = {
    "kyoto", k_describe, k_open, NULL, NULL, k_put, k_get, k_del, k_scan,
    k_sync, k_close, k_errmsg, NULL, NULL, NULL, NULL
};
