/*
 * journal.c - the write-ahead journal of page images (see kvs.h, "the
 * journal", and README.md, "The journal").
 *
 * PLACEHOLDER while the journal is being written on its own branch: the
 * interface compiles and behaves as the engine did before it (kvs_prepare
 * logs nothing, kvs_commit is the old write-out of kvs_end), so the FDW's
 * transaction work can build against it.  Not for main.
 */
#include <stdlib.h>
#include <string.h>

#include "kvs.h"

struct kvs_journal {
    kvs_journal_options o;
};

void
kvs_journal_options_init(kvs_journal_options *o)
{
    memset(o, 0, sizeof(*o));
}

int
kvs_journal_open(const char *dir, const kvs_journal_options *o, kvs_journal **out)
{
    kvs_journal *j = calloc(1, sizeof(*j));

    (void) dir;
    if (j == NULL)
        return KVS_ENOMEM;
    if (o)
        j->o = *o;
    *out = j;
    return KVS_OK;
}

int
kvs_journal_close(kvs_journal *j)
{
    free(j);
    return KVS_OK;
}

int
kvs_journal_flush(kvs_journal *j, uint64_t lsn)
{
    (void) j;
    (void) lsn;
    return KVS_OK;
}

int
kvs_journal_checkpoint(kvs_journal *j)
{
    (void) j;
    return KVS_OK;
}

void
kvs_journal_stats_get(kvs_journal *j, kvs_journal_stats *st)
{
    (void) j;
    memset(st, 0, sizeof(*st));
}

const char *
kvs_journal_errmsg(const kvs_journal *j)
{
    (void) j;
    return "";
}

int
kvs_prepare(kvs *db, uint64_t xid, uint64_t *lsn)
{
    (void) db;
    (void) xid;
    *lsn = 0;
    return KVS_OK;
}

int
kvs_commit(kvs *db)
{
    return kvs_end(db);
}
