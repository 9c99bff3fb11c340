/*
 * unit_cursor.c - the cursor when its handle changes the file in the middle
 * of a bucket: the rest of the bucket's copy is read again from the file
 * (lhash.c, lh_cursor_next).  After the cursor has returned the first record
 * of the scan order, the same handle deletes the next record in that order,
 * replaces the one after with a value of another length and the one after
 * that with an external (value chain) value, and inserts enough new keys to
 * split buckets; the rest of the scan must return the deleted record never,
 * the replaced ones once each with their new values, every other old record
 * once with its own value, and the first one not again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

#define N     2000
#define NEW   3000
#define BIG   9000              /* more than a page: stored in a value chain */

static char path[256];
static uint32_t order[N];

#define mkkey numbered_key
static void mkval(char *buf, unsigned i) { memset(buf, 'a' + i % 26, 100); sprintf(buf, "old-%u", i); }

static int by_order(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    if (order[x] != order[y])
        return order[x] < order[y] ? -1 : 1;
    return x < y ? -1 : x > y;    /* same length keys: id order is key order */
}

int main(void)
{
    kvs *db;
    kvs_cursor *c;
    kvs_slice k, v;
    static unsigned ids[N];
    static unsigned char seen[N];
    static char big[BIG];
    char key[32], val[128];
    unsigned i, first, del, rep, ext, bad = 0, wrong = 0, n = 0;
    int rc;

    snprintf(path, sizeof path, "/tmp/unit_cursor.%d.kvs", (int)getpid());
    db = open_fresh(path, 256, 0);
    tap_ok(db != NULL, "create");
    if (!db)
        return tap_done();
    bad = load_numbered(db, N, mkval, order);
    for (i = 0; i < N; i++)
        ids[i] = i;
    tap_ok(bad == 0, "%u records loaded", N);
    qsort(ids, N, sizeof ids[0], by_order);
    first = ids[0];
    del = ids[1];
    rep = ids[2];
    ext = ids[3];

    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    rc = kvs_cursor_next(c, &k, &v);
    mkkey(key, first);
    tap_ok(rc == KVS_OK && k.len == 12 && memcmp(k.data, key, 12) == 0,
           "the scan starts with the first key of kvs_key_order");
    seen[first] = 1;

    /* this handle changes the records the cursor's copy holds next */
    memset(big, 'x', sizeof big);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    mkkey(key, del);
    TAP_RC(kvs_delete(db, key, 12), KVS_OK);
    mkkey(key, rep);
    TAP_RC(kvs_put(db, key, 12, "replaced", 8, 0), KVS_OK);
    mkkey(key, ext);
    TAP_RC(kvs_put(db, key, 12, big, BIG, 0), KVS_OK);
    for (i = 0; i < NEW; i++) {
        char nk[32];
        sprintf(nk, "new-%u", i);
        if (kvs_put(db, nk, strlen(nk), big, 100, 0) != KVS_OK)
            bad++;
    }
    TAP_RC(kvs_end(db), KVS_OK);
    tap_ok(bad == 0, "%u new records inserted (splits)", NEW);

    bad = 0;
    while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
        unsigned id;
        char kb[32];
        if (k.len != 12)
            continue;           /* a new key: may or may not be seen */
        memcpy(kb, k.data, 12);
        kb[12] = 0;
        if (sscanf(kb, "key-%8u", &id) != 1 || id >= N) {
            bad++;
            continue;
        }
        if (seen[id]++) {
            tap_diag("key %u seen again", id);
            bad++;
        }
        n++;
        if (id == rep)
            wrong += !(v.len == 8 && memcmp(v.data, "replaced", 8) == 0);
        else if (id == ext)
            wrong += !(v.len == BIG && memcmp(v.data, big, BIG) == 0);
        else {
            mkval(val, id);
            wrong += !(v.len == 100 && memcmp(v.data, val, 100) == 0);
        }
    }
    TAP_RC(rc, KVS_NOTFOUND);
    kvs_cursor_close(c);
    tap_ok(bad == 0, "no old record returned twice (the first one included)");
    tap_ok(!seen[del], "the record deleted mid-bucket is not returned");
    tap_ok(seen[rep] == 1 && seen[ext] == 1, "the records replaced mid-bucket are returned once each");
    tap_ok(wrong == 0, "every record with its value as of now: %u wrong", wrong);
    tap_ok(n == N - 2, "every other old record once: %u of %u", n, N - 2);
    TAP_RC(kvs_check(db), KVS_OK);
    kvs_close(db);
    unlink(path);
    return tap_done();
}
