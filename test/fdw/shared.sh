#!/bin/bash
# test/fdw/shared.sh - the shared cache (kvs_fdw in shared_preload_libraries)
# under concurrent backends, cancels and a crash (TAP output).
#
# A throwaway cluster with kvs_fdw preloaded and a pool smaller than the
# table, so pages are evicted and read again while the clients run:
#   1. CLIENTS pgbench clients at once on one kvs table st and its heap
#      reference sr: each client owns the keys k = CLIENTS * i + client_id + 1
#      and applies the same operation to both tables in one transaction
#      (point lookups compared with the heap, UPDATE by key both direct and
#      read-modify-write, DELETE, INSERT, full scans of its own keys compared
#      with the heap); a lookup or scan that disagrees is logged in bad.
#      Since no two clients touch the same key, whatever the interleaving the
#      two tables must end equal: nothing in bad, EXCEPT both ways empty, every
#      heap row found by a point lookup on st, kvs_fdw_check clean, no frame
#      pinned (kvs_fdw_buffercache), no invalidation (kvs_fdw_cache_stats:
#      in shared mode a write leaves the other backends' pages valid).
#   2. cancels: statement_timeout and pg_cancel_backend in the middle of a
#      full scan, and inside a write section (kvs_fdw.debug_flush_delay, a
#      test-only sleep inside the section: an INSERT ... SELECT and a key-moving
#      UPDATE, each in a transaction with the same change to the heap): 57014,
#      the backend that was cancelled reads on, and afterwards the tables are
#      equal, no frame is pinned and no lock is left.  (A second writer
#      waiting in pg_locks, lock_timeout: test/fdw/shmem.sh.)
#   3. kill -9 of a backend in the middle of a scan: the postmaster restarts
#      every backend and builds shared memory again; once the server accepts
#      connections the pool is cold (no page in kvs_fdw_buffercache) and the
#      table is intact (kvs_fdw_check clean, equal to the heap).
#   4. a bucket page damaged (dd) while the server is stopped: after the start
#      a scan gives XX001 naming the page, and kvs_fdw_check reports it.
#
# Assumes the extension is built and installed (test/run does that first).
# Root (the cluster runs as the "postgres" OS user) or a normal user.
#   KVS_SHARED_PORT      port of the throwaway cluster (default 55443)
#   KVS_SHARED_CLIENTS   concurrent clients (default 4)
#   KVS_SHARED_XACTS     transactions per client (default 2500)
#   KVS_SHARED_KEYS      keys in all (default 6000, about 2.5 times the pool)
#   KVS_SHARED_MODE      shared (default) | local: the same without the
#                        preload, a check of the script itself (the shared-only
#                        checks are skipped)
#   KVS_KEEP=1           keep the temp dir (server log, pgbench log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_SHARED_PORT:-55443}
CLIENTS=${KVS_SHARED_CLIENTS:-4}
XACTS=${KVS_SHARED_XACTS:-2500}
MODE=${KVS_SHARED_MODE:-shared}
PER=$(( ${KVS_SHARED_KEYS:-6000} / CLIENTS ))
NKEYS=$((CLIENTS * PER))

SETTINGS=(max_connections=30 autovacuum=off)   # no autovacuum lock in pg_locks
# 1 MB = 256 frames: a third of the table or so, so the clients evict and
# read pages back while the others use them
[ "$MODE" = shared ] && SETTINGS+=(shared_preload_libraries=kvs_fdw kvs_fdw.shared_cache_size=1MB)
ct_start shared "$PORT" "${SETTINGS[@]}"
echo "# kvs_fdw shared-cache test ($MODE mode): port $PORT, $CLIENTS clients x $XACTS transactions, $NKEYS keys"
ct_extension

# a check that only means something in shared mode
skip() { ok "$1 # SKIP local mode"; }
shared_is() {       # shared_is GOT EXPECTED NAME (GOT is evaluated lazily: a command)
    if [ "$MODE" = shared ]; then is "$(eval "$1")" "$2" "$3"; else skip "$3"; fi
}

is "$(q "SELECT kvs_fdw_mode()" 2>&1)" "$MODE" "kvs_fdw_mode() is '$MODE'"

# values of 0 to 400 bytes, and every 97th key a 6000-byte one (value pages)
if ! q "CREATE FOREIGN TABLE st (k bigint OPTIONS (key 'true'), v text, n int) SERVER kvs;
        CREATE TABLE sr (k bigint PRIMARY KEY, v text, n int);
        CREATE TABLE bad (client int, k bigint, what text);
        INSERT INTO sr SELECT g, repeat(chr(97 + g % 26), CASE WHEN g % 97 = 0 THEN 6000 ELSE g % 401 END), 0
          FROM generate_series(1, $NKEYS) g;
        INSERT INTO st SELECT * FROM sr;
        CREATE FUNCTION slow() RETURNS boolean LANGUAGE plpgsql VOLATILE
          AS \$\$ BEGIN PERFORM pg_sleep(0.002); RETURN true; END \$\$;" >/dev/null; then
    bail "cannot create and load the tables"
fi
ok "st (kvs) and sr (heap) loaded with $NKEYS rows"
echo "# st: $(q "SELECT pages || ' pages, ' || records || ' records' FROM kvs_fdw_stats('st')" 2>&1)"

# equal LABEL: the closing checks after each part
equal() {
    is "$(q "SELECT count(*) FROM ((TABLE st EXCEPT TABLE sr) UNION ALL (TABLE sr EXCEPT TABLE st)) d")" "0" \
        "$1: st and sr hold the same rows (EXCEPT both ways)"
    is "$(q "SELECT count(*) FROM sr WHERE (SELECT v || '/' || n FROM st WHERE st.k = sr.k)
                                          IS DISTINCT FROM v || '/' || n")" "0" \
        "$1: a point lookup on st finds every row of sr"
    is "$(q "SELECT count(*) FROM kvs_fdw_check('st')" 2>&1)" "0" "$1: kvs_fdw_check('st') is clean"
    shared_is 'q "SELECT count(*) FROM kvs_fdw_buffercache WHERE pins <> 0" 2>&1' "0" "$1: no frame is pinned"
    # every other backend is idle or gone: none may still hold a lock
    is "$(q "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid()")" "0" "$1: no lock is left"
}

# ---- 1. concurrent clients ----------------------------------------------------------
cat >"$WORK/mix.sql" <<EOF
\\set k random(0, $PER - 1) * $CLIENTS + :client_id + 1
\\set r random(1, 100)
\\set x random(1, 1000000)
\\set len random(0, 400)
\\if :x % 40 = 0
\\set len 6000
\\endif
BEGIN;
\\if :r <= 35
INSERT INTO bad SELECT :client_id, :k, 'lookup'
 WHERE (SELECT v || '/' || n FROM st WHERE k = :k) IS DISTINCT FROM (SELECT v || '/' || n FROM sr WHERE k = :k);
\\elif :r <= 55
UPDATE st SET v = repeat(chr(97 + :x % 26), :len), n = n + 1 WHERE k = :k;
UPDATE sr SET v = repeat(chr(97 + :x % 26), :len), n = n + 1 WHERE k = :k;
\\elif :r <= 60
UPDATE st SET n = n + 2 WHERE k = :k RETURNING n;
UPDATE sr SET n = n + 2 WHERE k = :k RETURNING n;
\\elif :r <= 72
DELETE FROM st WHERE k = :k;
DELETE FROM sr WHERE k = :k;
\\elif :r <= 96
INSERT INTO st SELECT :k, repeat(chr(65 + :x % 26), :len), 0 WHERE NOT EXISTS (SELECT 1 FROM sr WHERE k = :k);
INSERT INTO sr SELECT :k, repeat(chr(65 + :x % 26), :len), 0 WHERE NOT EXISTS (SELECT 1 FROM sr WHERE k = :k);
\\else
INSERT INTO bad SELECT :client_id, :k, 'scan'
 WHERE (SELECT count(*) || '/' || coalesce(sum(n), 0) || '/' || coalesce(sum(length(v)), 0)
          FROM st WHERE k % $CLIENTS = (:client_id + 1) % $CLIENTS)
       IS DISTINCT FROM
       (SELECT count(*) || '/' || coalesce(sum(n), 0) || '/' || coalesce(sum(length(v)), 0)
          FROM sr WHERE k % $CLIENTS = (:client_id + 1) % $CLIENTS);
\\endif
COMMIT;
EOF
[ "$MODE" = shared ] && q "SELECT kvs_fdw_reset_stats()" >/dev/null
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t "$XACTS" -f "$WORK/mix.sql" \
    >"$WORK/pgbench.log" 2>&1
rc=$?
is "$rc" "0" "$CLIENTS pgbench clients ran $XACTS transactions each (exit status)"
is "$(sed -n 's/^number of transactions actually processed: //p' "$WORK/pgbench.log")" \
    "$((CLIENTS * XACTS))/$((CLIENTS * XACTS))" "... every transaction was processed"
if [ "$rc" != 0 ]; then grep -E "error|ERROR|abort" "$WORK/pgbench.log" | head -5 | diag; fi
echo "# $(grep -E '^tps' "$WORK/pgbench.log" | head -1)"
is "$(q "SELECT count(*) FROM bad")" "0" "no point lookup or full scan disagreed with the heap while the clients ran"
[ "$(q "SELECT count(*) FROM bad")" = 0 ] || q "SELECT what, count(*) FROM bad GROUP BY 1" | diag
equal "after the clients"
shared_is 'q "SELECT invalidations FROM kvs_fdw_cache_stats() WHERE file IS NULL"' "0" \
    "no invalidation in the pool (kvs_fdw_cache_stats)"
shared_is 'q "SELECT hits > 0 AND reads > 0 AND evictions > 0 FROM kvs_fdw_cache_stats() WHERE file IS NULL"' "t" \
    "... while the pool counted hits, reads and evictions of all the clients"
[ "$MODE" = shared ] && echo "# pool: $(q "SELECT 'hits ' || hits || ', reads ' || reads || ', evictions ' || evictions || ', writes ' || writes
                                           FROM kvs_fdw_cache_stats() WHERE file IS NULL" 2>&1)"

# ---- 2. cancels -------------------------------------------------------------------------
# statement_timeout in the middle of a scan (slow(): 2 ms a row), then the
# same backend reads on
sess_open S
like "$(sess_run S "SET statement_timeout = '500ms'; SELECT count(*) FROM st WHERE slow();")" \
    "ERROR:  57014: canceling statement due to statement timeout" "statement_timeout in the middle of a scan: 57014"
is "$(sess_run S "RESET statement_timeout; SELECT count(*) FROM st;" | tail -1)" "$(q "SELECT count(*) FROM sr")" \
    "... and the same backend then reads the whole table"
sess_close S
equal "after statement_timeout in a scan"

# pg_cancel_backend in the middle of a scan
ct_bg scan "SELECT count(*) FROM st WHERE slow()"
pid=$(ct_bg_pid scan)
sleep 0.5
q "SELECT pg_cancel_backend($pid)" >/dev/null
if ct_bg_done scan 100; then
    like "$(cat "$WORK/scan.out")" "ERROR:  57014: canceling statement due to user request" \
        "pg_cancel_backend in the middle of a scan: 57014"
else
    nok "pg_cancel_backend in the middle of a scan ends it within 10 s"
fi
equal "after pg_cancel_backend in a scan"

# statement_timeout inside a write section: an INSERT ... SELECT (one
# buffer, one section) and a key-moving UPDATE (its deletes done, its
# inserts not yet), each after the same change to the heap in one
# transaction, so the heap's rollback must match what the section keeps
t0=$(date +%s%N)
like "$(qerr "SET kvs_fdw.debug_flush_delay = '30s'; SET statement_timeout = '1s';
              INSERT INTO sr SELECT g, 'timed out', 0 FROM generate_series($NKEYS + 1, $NKEYS + 500) g;
              INSERT INTO st SELECT g, 'timed out', 0 FROM generate_series($NKEYS + 1, $NKEYS + 500) g;")" \
    "^57014 canceling statement due to statement timeout" "statement_timeout inside the write section of an INSERT ... SELECT: 57014"
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$ms" -lt 10000 ]; then ok "... after $ms ms, not at the end of the 30 s sleep"; else nok "... after $ms ms (want < 10 s)"; fi
like "$(qerr "SET kvs_fdw.debug_flush_delay = '30s'; SET statement_timeout = '1s';
              UPDATE sr SET k = k + 1000000 WHERE k <= 200;
              UPDATE st SET k = k + 1000000 WHERE k <= 200;")" \
    "^57014 canceling statement due to statement timeout" "statement_timeout inside the write section of a key-moving UPDATE: 57014"
is "$(q "SELECT count(*) FROM st WHERE k > $NKEYS")" "0" "... neither kept a row in st"
equal "after statement_timeout in write sections"

# pg_cancel_backend inside a write section (a second writer waiting for the
# first on the heavyweight lock, pg_locks and lock_timeout are test/fdw/shmem.sh's)
ct_bg w1 "SET kvs_fdw.debug_flush_delay = '30s';
          INSERT INTO sr SELECT g, 'cancelled', 0 FROM generate_series($NKEYS + 1, $NKEYS + 500) g;
          INSERT INTO st SELECT g, 'cancelled', 0 FROM generate_series($NKEYS + 1, $NKEYS + 500) g;"
pid=$(ct_bg_pid w1 Extension)
[ -n "$pid" ] && ok "a writer sleeps inside its write section (pid $pid)" || nok "a writer sleeps inside its write section"
[ -n "$pid" ] && q "SELECT pg_cancel_backend($pid)" >/dev/null
if ct_bg_done w1 100; then
    like "$(cat "$WORK/w1.out")" "ERROR:  57014: canceling statement due to user request" \
        "pg_cancel_backend inside a write section: 57014"
else
    nok "pg_cancel_backend inside a write section ends it within 10 s"
fi
is "$(q "SELECT count(*) FROM st WHERE k > $NKEYS")" "0" "... nothing of it is in st"
equal "after pg_cancel_backend in a write section"

# ---- 3. kill -9 of a reading backend ------------------------------------------------------
ct_bg victim "SELECT count(*) FROM st WHERE slow()"
pid=$(ct_bg_pid victim)
sleep 0.5
shared_is 'q "SELECT count(*) > 0 FROM kvs_fdw_buffercache WHERE page IS NOT NULL" 2>&1' "t" \
    "before the kill the pool holds pages"
mark=$(wc -l <"$WORK/server.log")
if [ -n "$pid" ] && as_pg kill -9 "$pid"; then ok "kill -9 of a backend in the middle of a scan (pid $pid)"; else
    nok "kill -9 of a backend in the middle of a scan"; fi
# the postmaster notices the death, ends every backend, then starts afresh;
# until it has noticed, new connections may still be accepted: wait for the log
n=0
until tail -n +$((mark + 1)) "$WORK/server.log" | grep -q "all server processes terminated; reinitializing"; do
    n=$((n + 1)); [ $n -gt 300 ] && break; sleep 0.1
done
n=0
until q "SELECT 1" >/dev/null 2>&1; do n=$((n + 1)); [ $n -gt 600 ] && break; sleep 0.1; done
like "$(tail -n +$((mark + 1)) "$WORK/server.log" | grep -c "database system is ready to accept connections")" "^[1-9]" \
    "the postmaster restarted every backend and accepts connections again"
ct_bg_done victim 50
LOG_MARK=$(wc -l <"$WORK/server.log")    # finish: no crash after this one
shared_is 'q "SELECT count(*) FROM kvs_fdw_buffercache WHERE page IS NOT NULL" 2>&1' "0" \
    "the pool starts cold after the restart"
equal "after kill -9 and the restart"
shared_is 'q "SELECT invalidations FROM kvs_fdw_cache_stats() WHERE file IS NULL"' "0" \
    "no invalidation in the pool since the restart"

# ---- 4. a page damaged while the server is stopped ------------------------------------------
# (while the pool holds a file, a change made behind the server's back is not
# seen, as with shared_buffers; a pool built anew reads the file and finds it)
read -r FILE PAGE <<<"$(q "SELECT s.file || ' ' || p FROM kvs_fdw_stats('st') s, generate_series(1, s.pages - 1) p
                          WHERE (SELECT type = 'bucket' AND nslots > 0 FROM kvs_fdw_page('st', p) LIMIT 1)
                          ORDER BY p DESC LIMIT 1" | tr '|' ' ')"
pgc_stop
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' |
    as_pg dd of="$FILE" bs=1 seek=$((PAGE * 4096 + 2000)) conv=notrunc status=none
pgc_start_again || bail "the server does not start again"
like "$(qerr "SELECT count(*) FROM st")" "^XX001 .*damaged at page $PAGE: page $PAGE: checksum mismatch" \
    "bucket page $PAGE damaged while the server was stopped: a scan gives XX001 naming it"
is "$(q "SELECT page FROM kvs_fdw_check('st')")" "$PAGE" "... and kvs_fdw_check reports that page"
LOG_MARK=$(wc -l <"$WORK/server.log")
finish
