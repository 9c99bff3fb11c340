/*
 * kvsdrv.c - a kvs client driven line by line, for test/engine/compat.sh:
 * built once against this tree's engine and once against an older
 * release's (the last one that writes format 5), so that engines of two
 * formats can work on one file in turn, or at once (one of them kept alive
 * as a coprocess).  Only the API both have is used.
 *
 * Reads commands from stdin, one a line, and answers each with one line:
 *   open PATH [FILLFACTOR]  kvs_open, KVS_CREATE | KVS_NOSYNC, the default
 *                           journal (the one the header names, else
 *                           PATH-journal)                    -> ok
 *   get KEY                 one read section       -> val VALUE | notfound
 *   put KEY VALUE           one write section                -> ok
 *   crash KEY VALUE         a write section whose record is appended to the
 *                           journal (kvs_prepare), then _exit(0) before the
 *                           write-back: a writer's crash     (no answer)
 *   fill                    the fixture records (fixture_data.h), one write
 *                           section each                     -> ok N
 *   verify                  every fixture record read exactly by get, and
 *                           a cursor's count                 -> ok N
 *   stats                   -> records R overflow O value V version X
 *   check                   kvs_check                        -> ok
 *   close                   kvs_close                        -> ok
 * A failure answers "err CODE TEXT: detail" (the code, its kvs_strerror).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "../fixture_data.h"

static kvs *db;
static char vbuf[FX_VMAX + 1];

static void answer_err(int rc, const char *detail)
{
    printf("err %d %s: %s\n", rc, kvs_strerror(rc), detail ? detail : "");
}

static void answer(int rc)
{
    if (rc == KVS_OK)
        printf("ok\n");
    else
        answer_err(rc, db ? kvs_errmsg(db) : "no handle");
}

static int put_one(const char *k, size_t kl, const char *v, size_t vl)
{
    int rc = kvs_begin(db, KVS_WRITE);
    if (rc)
        return rc;
    rc = kvs_put(db, k, kl, v, vl, 0);
    if (rc) {
        (void)kvs_abort(db);
        return rc;
    }
    return kvs_end(db);
}

static int verify(unsigned *n)
{
    kvs_cursor *c = NULL;
    kvs_slice ks, vs;
    int rc;
    *n = fx_first_wrong(db, vbuf, &rc);
    if (*n < FX_RECORDS)
        return rc ? rc : KVS_ECORRUPT;
    rc = kvs_begin(db, KVS_READ);
    if (rc)
        return rc;
    rc = kvs_cursor_open(db, &c);
    *n = 0;
    while (rc == KVS_OK && (rc = kvs_cursor_next(c, &ks, &vs)) == KVS_OK)
        (*n)++;
    if (rc == KVS_NOTFOUND)
        rc = KVS_OK;
    if (c)
        kvs_cursor_close(c);
    (void)kvs_end(db);
    return rc;
}

int main(void)
{
    char line[4096];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char *cmd, *a, *b;
        int rc;
        line[strcspn(line, "\n")] = 0;
        cmd = strtok(line, " ");
        a = strtok(NULL, " ");
        b = strtok(NULL, " ");
        if (!cmd)
            continue;
        if (strcmp(cmd, "open") == 0 && a) {
            kvs_options o;
            kvs_options_init(&o);
            o.flags = KVS_CREATE | KVS_NOSYNC;
            o.fillfactor = b ? (uint32_t)atoi(b) : 0;
            rc = kvs_open(a, &o, &db);
            if (rc)
                answer_err(rc, kvs_open_errmsg());
            else
                printf("ok\n");
        } else if (!db) {
            answer_err(KVS_EINVAL, "no handle open");
        } else if (strcmp(cmd, "get") == 0 && a) {
            kvs_slice v;
            rc = kvs_get(db, a, strlen(a), &v);
            if (rc == KVS_OK)
                printf("val %.*s\n", (int)v.len, (const char *)v.data);
            else if (rc == KVS_NOTFOUND)
                printf("notfound\n");
            else
                answer(rc);
        } else if (strcmp(cmd, "put") == 0 && a && b) {
            answer(put_one(a, strlen(a), b, strlen(b)));
        } else if (strcmp(cmd, "crash") == 0 && a && b) {
            uint64_t lsn = 0;
            rc = kvs_begin(db, KVS_WRITE);
            if (!rc)
                rc = kvs_put(db, a, strlen(a), b, strlen(b), 0);
            if (!rc)
                rc = kvs_prepare(db, 0, &lsn);
            if (!rc && lsn != 0)
                _exit(0);       /* in flight: the file has nothing of it */
            answer(rc ? rc : KVS_EINVAL);
        } else if (strcmp(cmd, "fill") == 0) {
            char k[32];
            unsigned i;
            for (rc = KVS_OK, i = 0; rc == KVS_OK && i < FX_RECORDS; i++) {
                size_t kl = fx_key(i, k, sizeof k), vl = fx_value(i, vbuf);
                rc = put_one(k, kl, vbuf, vl);
            }
            if (rc)
                answer(rc);
            else
                printf("ok %u\n", i);
        } else if (strcmp(cmd, "verify") == 0) {
            unsigned n = 0;
            rc = verify(&n);
            if (rc == KVS_ECORRUPT)
                printf("err record %u differs\n", n);
            else if (rc)
                answer(rc);
            else
                printf("ok %u\n", n);
        } else if (strcmp(cmd, "stats") == 0) {
            kvs_stats st;
            rc = kvs_stats_get(db, &st);
            if (rc)
                answer(rc);
            else
                printf("records %llu overflow %llu value %llu version %u\n",
                       (unsigned long long)st.records, (unsigned long long)st.overflow_pages,
                       (unsigned long long)st.value_pages, (unsigned)st.format_version);
        } else if (strcmp(cmd, "check") == 0) {
            answer(kvs_check(db));
        } else if (strcmp(cmd, "close") == 0) {
            rc = kvs_close(db);
            db = NULL;
            answer(rc);
        } else {
            answer_err(KVS_EINVAL, "unknown command");
        }
    }
    if (db)
        (void)kvs_close(db);
    return 0;
}
