/*
 * mkfixture.c - writes a format fixture: a new file at argv[1], fill
 * factor 100, with the records of fixture_data.h, each put in a section
 * of its own.  Built by test/engine/compat.sh --make-fixture against the
 * engine of the release that wrote the format, so it uses only the API
 * every release has had (kvs_options_init, kvs_open, kvs_put,
 * kvs_stats_get, kvs_close).  Prints "records R overflow O value V".
 */
#include <stdio.h>
#include "kvs.h"
#include "../fixture_data.h"

static char vbuf[FX_VMAX];

int main(int argc, char **argv)
{
    kvs_options o;
    kvs_stats st;
    kvs *db;
    char k[32];
    unsigned i;
    int rc;
    if (argc != 2) {
        fprintf(stderr, "usage: mkfixture FILE\n");
        return 2;
    }
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.fillfactor = 100;
    rc = kvs_open(argv[1], &o, &db);
    if (rc) {
        fprintf(stderr, "open: %s: %s\n", kvs_strerror(rc), kvs_open_errmsg());
        return 1;
    }
    for (i = 0; i < FX_RECORDS && rc == KVS_OK; i++) {
        size_t kl = fx_key(i, k, sizeof k), vl = fx_value(i, vbuf);
        rc = kvs_put(db, k, kl, vbuf, vl, 0);
    }
    if (rc == KVS_OK)
        rc = kvs_stats_get(db, &st);
    if (rc) {
        fprintf(stderr, "put/stats: %s: %s\n", kvs_strerror(rc), kvs_errmsg(db));
        return 1;
    }
    printf("records %llu overflow %llu value %llu\n", (unsigned long long)st.records,
           (unsigned long long)st.overflow_pages, (unsigned long long)st.value_pages);
    return kvs_close(db) == KVS_OK ? 0 : 1;
}
