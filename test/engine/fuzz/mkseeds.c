/*
 * mkseeds.c - writes the seed corpus for fuzz_open: small valid kvs files
 * made by the engine itself (empty; a few records; overflow chains; a value
 * chain; free pages; a descriptor; stamped records), one file each.
 *
 *   mkseeds OUTDIR
 */
#include "kvs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int make(const char *dir, const char *name, int nrec, size_t vlen, int ff,
                int bigval, int freed, int desc, int stamp)
{
    char p[512], k[32];
    static unsigned char v[20000];
    kvs_options o;
    kvs *db;
    int i, rc;
    uint64_t s;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.fillfactor = (uint32_t)ff;
    if (desc) {
        o.descriptor = "seed-descriptor";
        o.descriptor_len = 15;
    }
    if ((rc = kvs_open(p, &o, &db)) != KVS_OK) {
        fprintf(stderr, "%s: %s\n", p, kvs_open_errmsg());
        return 1;
    }
    if (stamp && kvs_begin(db, KVS_WRITE) == KVS_OK) {
        if (kvs_new_stamp(db, &s) == KVS_OK)
            kvs_set_stamp(db, s);
        kvs_end(db);
    }
    memset(v, 'v', sizeof v);
    for (i = 0; i < nrec; i++) {
        snprintf(k, sizeof k, "key-%05d", i);
        kvs_put(db, k, strlen(k), v, vlen, 0);
    }
    if (bigval)
        kvs_put(db, "fuzz", 4, v, 9000, 0);
    if (freed) {
        kvs_put(db, "gone", 4, v, 20000, 0);
        kvs_delete(db, "gone", 4);
    }
    rc = kvs_close(db);
    return rc != KVS_OK;
}

int main(int argc, char **argv)
{
    const char *d = argc > 1 ? argv[1] : ".";
    int bad = 0;
    bad |= make(d, "empty.kvs", 0, 0, 75, 0, 0, 0, 0);
    bad |= make(d, "few.kvs", 5, 10, 75, 0, 0, 0, 0);
    bad |= make(d, "overflow.kvs", 60, 200, 100, 0, 0, 0, 0);
    bad |= make(d, "value-chain.kvs", 3, 5, 75, 1, 0, 0, 0);
    bad |= make(d, "free-pages.kvs", 3, 5, 75, 0, 1, 0, 0);
    bad |= make(d, "descriptor.kvs", 2, 5, 75, 0, 0, 1, 0);
    bad |= make(d, "stamped.kvs", 4, 5, 75, 0, 0, 0, 1);
    bad |= make(d, "mixed.kvs", 30, 100, 90, 1, 1, 1, 1);
    return bad;
}
