#!/bin/bash
# test/fdw/shmem.sh - shared mode: kvs_fdw in shared_preload_libraries, one
# kvs cache in shared memory for the cluster (TAP output).
#
# A throwaway cluster starts with shared_preload_libraries = 'kvs_fdw' and a
# 16 MB shared cache (4096 frames).  Checked:
#   - kvs_fdw_mode() is 'shared'; the postmaster settings; cache_policy
#     cannot be changed in a session
#   - a kvs table answers as a heap table with the same rows
#   - kvs_fdw_buffercache: a row per frame, the table's pages under its
#     regclass, none pinned between statements, LRU ranks
#   - kvs_fdw_cache_stats: the pool's counters move with another backend's
#     scans (cluster-wide), no invalidations after writes by others;
#     kvs_fdw_reset_stats is superuser-only
#   - EXPLAIN (ANALYZE)'s Kvs Cache line counts a node's hits in the pool
#   - kvs_fdw.scan_ring: a full scan of a table larger than the pool reads
#     through a ring (ring_reuses, no evictions); off, it evicts instead
#   - the writers' heavyweight lock (after a kvs_fdw_compact by another
#     backend: still one lock for all), taken by a COMMIT for its write
#     section: pg_locks shows it while that section sleeps
#     (kvs_fdw.debug_flush_delay); a second transaction's COMMIT waits for it
#     (a Lock wait in pg_stat_activity), lock_timeout ends that wait with
#     55P03, pg_cancel_backend with 57014 (both roll back); the waiter
#     commits once it is free
#   - pg_terminate_backend of a writer inside its write section: nothing of
#     that section is kept, the next writer gets the file, the file checks
#     clean and no frame stays pinned
#   - with kvs_fdw.shared_files = 3 (restart): a fourth file open at once is
#     refused (53200); pg_terminate_backend of the backend holding three
#     gives their slots back (its handles are closed as it exits)
#
# Assumes the extension is built and installed (test/run does that first).
# Root (the cluster runs as the "postgres" OS user) or a normal user.
#   KVS_SHMEM_PORT   port of the throwaway cluster (default 55441)
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_SHMEM_PORT:-55441}
ROWS=20000

ct_start shmem "$PORT" "shared_preload_libraries=kvs_fdw" "kvs_fdw.shared_cache_size=16MB" \
    "kvs_fdw.cache_policy=lru"
echo "# kvs_fdw shared mode test: port $PORT, $ROWS rows"
ct_extension

# ---- mode and settings -------------------------------------------------------------
is "$(q "SELECT kvs_fdw_mode()")" "shared" "kvs_fdw_mode() is shared with the library preloaded"
is "$(q "SELECT string_agg(name || '=' || setting || ' ' || context, ', ' ORDER BY name)
           FROM pg_settings WHERE name IN ('kvs_fdw.shared_cache_size', 'kvs_fdw.shared_files',
                                          'kvs_fdw.cache_policy')")" \
   "kvs_fdw.cache_policy=lru postmaster, kvs_fdw.shared_cache_size=16384 postmaster, kvs_fdw.shared_files=256 postmaster" \
   "shared_cache_size (kB), shared_files and cache_policy are postmaster settings"
like "$(qerr "SET kvs_fdw.cache_policy = 'clock'")" '^55P02 ' \
   "cache_policy cannot be changed in a session (55P02)"

# ---- answers --------------------------------------------------------------------------
q "CREATE FOREIGN TABLE sk (id bigint, val text) SERVER kvs;
   CREATE TABLE sh (id bigint PRIMARY KEY, val text);
   INSERT INTO sh SELECT g, repeat(md5(g::text), 1 + g % 5) FROM generate_series(1, $ROWS) g;
   INSERT INTO sk SELECT * FROM sh;" >/dev/null || bail "cannot load the tables"
is "$(q "SELECT count(*), sum(length(val)) FROM sk")" "$(q "SELECT count(*), sum(length(val)) FROM sh")" \
   "count and sum of value lengths equal the heap's"
is "$(q "SELECT count(*) FROM generate_series(1, 500) s(i)
          WHERE (SELECT val FROM sk WHERE id = i * 37) = (SELECT val FROM sh WHERE id = i * 37)")" "500" \
   "500 point lookups equal the heap's"

# Session 1 keeps the file open from here on: today's engine drops a file's
# frames when its last handle closes (a backend that ends closes its
# handles), so the checks below, each in a backend of its own, would see an
# empty cache.
sess_open 1
sess_run 1 "SET application_name = 'w1'; SELECT count(*) FROM sk;" >/dev/null

# ---- kvs_fdw_buffercache ----------------------------------------------------------------
is "$(q "SELECT count(*) FROM kvs_fdw_buffercache")" "4096" "kvs_fdw_buffercache has a row per frame (16 MB = 4096)"
got=$(q "SELECT count(*) > 100, bool_and(page_type IN ('bucket', 'overflow', 'dir', 'value', 'free')),
                count(*) FILTER (WHERE page_type = 'bucket') > 0
           FROM kvs_fdw_buffercache WHERE tbl = 'sk'::regclass")
is "$got" "t|t|t" "its frames name the table (tbl = sk) and page types like kvs_fdw_page's"
is "$(q "SELECT count(*) FROM kvs_fdw_buffercache WHERE page IS NOT NULL AND tbl IS NULL")" "0" \
   "every cached page belongs to a table of this database"
is "$(q "SELECT coalesce(sum(pins), 0) FROM kvs_fdw_buffercache")" "0" "no frame is pinned between statements"
is "$(q "SELECT count(*) = count(DISTINCT lru_rank), min(lru_rank), bool_and(usage IS NOT NULL)
           FROM kvs_fdw_buffercache WHERE page IS NOT NULL")" "t|0|t" \
   "LRU: each cached frame has its own rank, 0 the most recent"
q "CREATE ROLE shm_mon LOGIN IN ROLE pg_monitor; CREATE ROLE shm_nobody LOGIN;" >/dev/null
is "$(pgc_psql -At -U shm_mon -c "SELECT count(*) FROM kvs_fdw_buffercache" 2>&1)" "4096" \
   "pg_monitor may read kvs_fdw_buffercache"
like "$(pgc_psql -At -U shm_nobody -c "SELECT count(*) FROM kvs_fdw_buffercache" 2>&1)" \
   'permission denied for view kvs_fdw_buffercache' "others may not"

# ---- kvs_fdw_cache_stats: cluster-wide --------------------------------------------------------
FILE=$(q "SELECT file FROM kvs_fdw_stats('sk')")
stats() { q "SELECT hits, reads, invalidations FROM kvs_fdw_cache_stats() WHERE file = '$FILE'"; }
before=$(stats)
q "SELECT count(*) FROM sk" >/dev/null          # another backend scans
after=$(stats)
h0=${before%%|*} h1=${after%%|*}
if [ "$h1" -gt "$h0" ]; then ok "another backend's scan moves the file's hits ($h0 -> $h1)"; else
    nok "another backend's scan moves the file's hits"; echo "$before -> $after" | diag; fi
is "$(q "SELECT count(*) FROM kvs_fdw_cache_stats() WHERE file IS NULL")" "1" "a total row (file NULL)"
is "$(q "SELECT t.hits = s.hits, t.reads = s.reads FROM kvs_fdw_cache_stats() t, kvs_fdw_cache_stats() s
          WHERE t.file IS NULL AND s.file = '$FILE'")" "t|t" "the total is the only file's counters"
like "$(pgc_psql -At -U shm_nobody -v VERBOSITY=verbose -c "SELECT kvs_fdw_reset_stats()" 2>&1)" '42501' \
   "kvs_fdw_reset_stats is superuser-only in shared mode (42501)"
q "SELECT kvs_fdw_reset_stats()" >/dev/null
is "$(q "SELECT hits, reads FROM kvs_fdw_cache_stats() WHERE file = '$FILE'")" "0|0" \
   "a superuser's kvs_fdw_reset_stats zeroes the pool's counters"

# kvs_fdw_adopt: superusers only (the engine's owner check is another part)
is "$(q "SELECT kvs_fdw_adopt('sk')" 2>&1)" "" "a superuser's kvs_fdw_adopt of a table's file"
like "$(pgc_psql -At -U shm_nobody -c "SELECT kvs_fdw_adopt('sk')" 2>&1)" 'permission denied for function kvs_fdw_adopt' \
   "others may not call kvs_fdw_adopt"

# a write by one backend leaves another's cached pages valid
got=$(pgc_psql -At -c "SELECT count(*) FROM sk" \
    -c "SELECT pg_sleep(0)" -c "\\! $PG_BINDIR/psql -X -q -c \"UPDATE sk SET val = val || 'u' WHERE id % 100 = 0\"" \
    -c "SELECT count(*) FILTER (WHERE val LIKE '%u') FROM sk" \
    -c "SELECT invalidations FROM kvs_fdw_cache_stats() WHERE file = '$FILE'" 2>&1 | tail -2 | tr '\n' ' ')
is "$got" "$((ROWS / 100)) 0 " "another backend's UPDATE is seen at once, with no invalidation of this backend's cache"

# ---- EXPLAIN (ANALYZE) ------------------------------------------------------------------------------
got=$(q "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM sk WHERE id = 7" | grep 'Kvs Cache')
like "$got" 'Kvs Cache: hit=[1-9][0-9]* read=0 ' "EXPLAIN ANALYZE: a cached lookup counts its hits in the pool, no read ($got)"

# ---- kvs_fdw.scan_ring: a scan of a table larger than the pool -----------------------------------
q "CREATE FOREIGN TABLE big (id bigint, val text) SERVER kvs;
   INSERT INTO big SELECT g, repeat('b', 200) FROM generate_series(1, 100000) g;" >/dev/null ||
    bail "cannot load table big"
BIGFILE=$(q "SELECT file FROM kvs_fdw_stats('big')")
BIGPAGES=$(q "SELECT pages FROM kvs_fdw_stats('big')")
ring() {   # ring on|off: reset, one full scan of big, whether it reused ring frames, and evictions
    q "SELECT kvs_fdw_reset_stats()" >/dev/null
    # one scan, one ring: no parallel workers (each participant has a ring)
    pgc_psql -At -c "SET kvs_fdw.scan_ring = $1" -c "SET max_parallel_workers_per_gather = 0" \
        -c "SELECT count(*) FROM big" \
        -c "SELECT ring_reuses > 0, evictions FROM kvs_fdw_cache_stats() WHERE file = '$BIGFILE'"
}
# With the ring, the scan evicts at most the ring's own 64 frames (its first
# fills) and the directory pages it reads outside the ring (the load went
# through the bucket map and left them cold) and reuses the ring for the
# rest; without it, every miss past the pool evicts.
BIGDIR=$(q "SELECT dir_pages FROM kvs_fdw_stats('big')")
got=$(ring on | tr '\n' ' ')
ev=$(echo "$got" | sed -n 's/^100000 t|\([0-9]*\) $/\1/p')
is "$([ -n "$ev" ] && [ "$ev" -le $((64 + BIGDIR)) ] && echo yes || echo no)" yes \
    "a full scan of $BIGPAGES pages (more than the 4096 frames) reads through its ring: ring reuses, at most 64 + $BIGDIR (directory pages) evictions ($got)"
got=$(ring off | tr '\n' ' ')
like "$got" '^100000 f\|[0-9]{3,} $' "with kvs_fdw.scan_ring off it evicts instead, no ring ($got)"

# ---- the writers' heavyweight lock ---------------------------------------------------------------
wait_until() {   # wait_until SQL EXPECTED: poll up to 10 s
    local i
    for i in $(seq 1 100); do
        [ "$(q "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
WRITER_LOCK="locktype = 'advisory' AND database = 0 AND objsubid = 27510 AND mode = 'ExclusiveLock'"
# sessions 2 and 3 have the file open before the slow writer begins (a
# backend's first open reads the header in a read section of the engine,
# which waits for a write section there, not in the lock manager)
sess_open 2
sess_open 3
sess_run 2 "SET application_name = 'waiter'; SELECT count(*) FROM sk;" >/dev/null
sess_run 3 "SET application_name = 'patient'; SELECT count(*) FROM sk;" >/dev/null
# another backend compacts the file under session 1's handle (which moves
# to the new file at its next section): the writers' lock must still be
# the same lock for both (it is keyed on the path, not the file id)
like "$(q "SELECT records FROM kvs_fdw_compact('sk')" 2>&1)" "^$((ROWS))\$" "kvs_fdw_compact in shared mode"
sess_run 1 "SELECT count(*) FROM sk;" >/dev/null
# sessions 1 to 3 each write a row in a transaction they commit later,
# during the slow writer's commit (their INSERTs read the file for the
# uniqueness check, which a commit's write section would hold up)
sess_run 1 "BEGIN; INSERT INTO sk VALUES (-1, 'timed out');" >/dev/null
sess_run 2 "BEGIN; INSERT INTO sk VALUES (-2, 'cancelled');" >/dev/null
sess_run 3 "BEGIN; INSERT INTO sk VALUES (-3, 'waited');" >/dev/null
# a slow writer: kvs_fdw.debug_flush_delay sleeps 4 s where its rows are
# buffered, then 4 s in its commit's write section, holding the lock
pgc_psql -At -c "SET application_name = 'slow'" -c "SET kvs_fdw.debug_flush_delay = 4000" \
    -c "INSERT INTO sk SELECT g, 'slow' FROM generate_series($ROWS + 1, $ROWS + 10) g" \
    >"$WORK/slow.out" 2>&1 &
SLOW=$!
CT_PIDS="$CT_PIDS $SLOW"
if wait_until "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE $WRITER_LOCK AND granted AND a.application_name = 'slow'" 1; then
    ok "pg_locks shows the writer's lock while its write section runs"
else
    nok "pg_locks shows the writer's lock while its write section runs"
    q "SELECT * FROM pg_locks" | diag
fi
got=$(sess_run 1 "\\set VERBOSITY verbose
SET lock_timeout = '200ms';
COMMIT;
RESET lock_timeout;")
like "$got" 'ERROR:  55P03' "lock_timeout ends a second writer's wait (55P03)"
# a writer that waits: a Lock wait, then cancelled
sess_run 2 "\\set VERBOSITY verbose
COMMIT;" >"$WORK/waiter.out" 2>&1 &
WAITER=$!
sleep 0.2
if wait_until "SELECT wait_event_type || ' ' || wait_event FROM pg_stat_activity WHERE application_name = 'waiter'" \
        "Lock advisory"; then
    ok "a waiting writer shows as a Lock wait in pg_stat_activity"
else
    nok "a waiting writer shows as a Lock wait in pg_stat_activity"
    q "SELECT application_name, state, wait_event_type, wait_event FROM pg_stat_activity" | diag
fi
is "$(q "SELECT count(*) FROM pg_locks WHERE $WRITER_LOCK AND NOT granted")" "1" "pg_locks shows its wait (granted false)"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'waiter'" >/dev/null
wait "$WAITER"
like "$(cat "$WORK/waiter.out")" 'ERROR:  57014' "pg_cancel_backend ends the wait (57014)"
# one more writer waits through to the end of the slow one
sess_run 3 "COMMIT;" >"$WORK/patient.out" 2>&1 &
PATIENT=$!
wait "$SLOW"
wait "$PATIENT"
is "$(cat "$WORK/slow.out"; cat "$WORK/patient.out")" "COMMIT" \
   "the slow writer and the one that waited for it both wrote, without an error"
is "$(q "SELECT count(*) FILTER (WHERE val = 'slow'), string_agg(id::text, ',') FILTER (WHERE id < 0) FROM sk")" \
   "10|-3" "their rows are there, the timed-out and cancelled ones are not"
is "$(q "SELECT count(*) FROM pg_locks WHERE $WRITER_LOCK")" "0" "no writer's lock is left"

# ---- FATAL inside a write section -------------------------------------------------------------
pgc_psql -At -c "SET application_name = 'doomed'" -c "SET kvs_fdw.debug_flush_delay = 6000" \
    -c "INSERT INTO sk SELECT g, 'doomed' FROM generate_series(-1000, -900) g" >"$WORK/doomed.out" 2>&1 &
DOOMED=$!
wait_until "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE $WRITER_LOCK AND granted AND a.application_name = 'doomed'" 1 ||
    nok "the doomed writer did not start its section"
is "$(q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'doomed'")" "t" \
   "pg_terminate_backend of a writer inside its write section"
wait "$DOOMED"
got=$(sess_run 1 "SET lock_timeout = '5s'; INSERT INTO sk VALUES (-4, 'after'); SELECT count(*) FROM sk WHERE val = 'doomed';")
is "$(echo "$got" | tr '\n' ' ')" "SET INSERT 0 1 0 " "the next writer gets the file; nothing of the killed section is kept"
is "$(q "SELECT count(*) FROM kvs_fdw_check('sk')")" "0" "kvs_fdw_check is clean"
is "$(q "SELECT coalesce(sum(pins), 0) FROM kvs_fdw_buffercache")" "0" "no frame is left pinned"
is "$(q "SELECT count(*) FROM sk")" "$((ROWS + 10 + 2))" "row count: the table, the slow ten, -3 and -4"
sess_close 1
sess_close 2
sess_close 3

# ---- the file table: a backend's end, even by FATAL, gives its slots back --------------------
q "ALTER SYSTEM SET kvs_fdw.shared_files = 3" >/dev/null
pgc_restart || bail "cannot restart the server"
LOG_MARK=$(wc -l <"$WORK/server.log")
is "$(q "SHOW kvs_fdw.shared_files")" "3" "restarted with kvs_fdw.shared_files = 3"
for i in 1 2 3 4; do
    q "CREATE FOREIGN TABLE f$i (k int, v text) SERVER kvs;
       INSERT INTO f$i SELECT g, 'f$i' FROM generate_series(1, 1000) g" >/dev/null
done
is "$(for i in 1 2 3 4; do q "SELECT v FROM f$i WHERE k = 1"; done | tr -d '\n')" \
   "f1f2f3f4" "backends one after another use four files through three slots"
# the holder has f1 and f2 open and is in the middle of a scan of f3 (its
# cursor open, past the first batch of rows) when it is terminated
q "CREATE SEQUENCE holder_rows" >/dev/null
pgc_psql -At -c "SET application_name = 'holder'" \
    -c "SELECT (SELECT v FROM f1 WHERE k = 1) || (SELECT v FROM f2 WHERE k = 1)" \
    -c "SELECT k, pg_sleep(CASE WHEN nextval('holder_rows') = 1 THEN 60 ELSE 0 END) FROM f3" \
    >"$WORK/holder.out" 2>&1 &
HOLDER=$!
wait_until "SELECT wait_event FROM pg_stat_activity WHERE application_name = 'holder'" "PgSleep" ||
    nok "the holder did not reach its sleep"
like "$(qerr "SELECT * FROM f4")" '^53200 .*' "a fourth file while another backend holds three: 53200"
is "$(q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'")" "t" \
   "pg_terminate_backend of the backend holding the three files, one mid-scan"
wait "$HOLDER"
is "$(q "SELECT (SELECT v FROM f4 WHERE k = 1) || (SELECT v FROM f1 WHERE k = 1) || (SELECT v FROM f2 WHERE k = 1)" 2>&1)" \
   "f4f1f2" "its files were closed as it ended, the one mid-scan too: three others open at once"
finish
