/*
 * mkseeds.c - writes the seed corpus for fuzz_open: small valid kvs files
 * made by the engine itself (empty; a few records; overflow chains; a value
 * chain; free pages; a descriptor; stamped records), one file each, and
 * one of them rewritten as an older engine wrote it (format version 2: no
 * file id), so the fuzzer also starts from the path that upgrades it.
 *
 *   mkseeds OUTDIR
 */
#include "kvs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define HD_VERSION_OFF 24       /* src/engine/header.h: u32 format version */
#define HD_FILEID_OFF  2176     /* u64 file id (version 3; 0 before) */

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

/* Copies dir/from to dir/to with the header rewritten as format version 2
 * (the id bytes zero) and resealed (xxh3 of bytes 8.. seeded with page 0). */
static int make_version2(const char *dir, const char *from, const char *to)
{
    char a[512], b[512];
    static unsigned char buf[1 << 16];
    uint64_t ck;
    ssize_t r;
    int in, out, i, ok = 1;
    snprintf(a, sizeof a, "%s/%s", dir, from);
    snprintf(b, sizeof b, "%s/%s", dir, to);
    in = open(a, O_RDONLY);
    out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || (r = read(in, buf, sizeof buf)) < KVS_PAGE_SIZE) {
        fprintf(stderr, "%s: cannot copy to %s\n", a, b);
        return 1;
    }
    buf[HD_VERSION_OFF] = 2;
    memset(buf + HD_FILEID_OFF, 0, 8);
    ck = XXH3_64bits_withSeed(buf + 8, KVS_PAGE_SIZE - 8, 0);
    for (i = 0; i < 8; i++)
        buf[i] = (unsigned char)(ck >> (8 * i));
    do
        ok &= write(out, buf, (size_t)r) == r;
    while ((r = read(in, buf, sizeof buf)) > 0);
    close(in);
    return close(out) != 0 || !ok;
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
    bad |= make_version2(d, "mixed.kvs", "mixed-v2.kvs");
    {   /* the seeds' journals ("<name>-journal") are not seeds */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/*.kvs-journal", d);
        bad |= system(cmd) != 0;
    }
    return bad;
}
