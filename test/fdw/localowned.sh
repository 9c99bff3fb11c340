#!/bin/bash
# test/fdw/localowned.sh - local mode on files a shared-mode run of the same
# cluster left owned (TAP output).
#
# A shared-mode handle records the cluster's system identifier in the file's
# header (the owner) and nothing clears it.  After a restart without the
# preload (local mode), every backend reads through a private cache, and a
# private handle's read section on an owned file probes for a host's hold
# (src/engine/README.md, "Processes outside the cluster").  Backends of that
# same cluster must still read and write side by side, never see one
# another's short sections as that hold ("kvs file ... is in use elsewhere"):
#   1. a table loaded in shared mode (the owner recorded: kvs_fdw_stats);
#   2. the server restarted in local mode;
#   3. parallel count(*) and filtered scans (the leader and one worker, each
#      with its own private cache, reading the file at the same time), again
#      and again: every one gives the right count;
#   4. three backends at once (pgbench) running full scans, and a writer
#      among them: no error, the counts right afterwards;
#   5. a backend stopped (SIGSTOP, as the scheduler may preempt it) while
#      its read section holds the file's flock(LOCK_SH): another backend's
#      scan and write still run (a reader shares the lock; a writer waits
#      for the section, then writes) instead of failing after the grace;
#      resumed, the stopped backend's statement ends right.
#
# Assumes the extension is built and installed (test/run does that first).
#   KVS_LOCALOWNED_PORT  port of the throwaway cluster (default KVS_TEST_PORT,
#                        else 55461)
#   KVS_LOCALOWNED_ROUNDS  parallel scans of each kind (default 20)
#   KVS_KEEP=1        keep the temp dir (server log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_LOCALOWNED_PORT:-${KVS_TEST_PORT:-55461}}
ROUNDS=${KVS_LOCALOWNED_ROUNDS:-20}
ROWS=200000

LOCAL_SETTINGS=(max_connections=30 autovacuum=off max_worker_processes=8 max_parallel_workers=4)
ct_start localowned "$PORT" "${LOCAL_SETTINGS[@]}" shared_preload_libraries=kvs_fdw
LOCAL_OPTS=${PGC_OPTS% -c shared_preload_libraries=kvs_fdw}
echo "# kvs_fdw on a once-shared file in local mode: port $PORT, $ROWS rows, $ROUNDS rounds"
ct_extension

# ---- 1. loaded in shared mode ---------------------------------------------------
is "$(q "SELECT kvs_fdw_mode()" 2>&1)" "shared" "the first run is in shared mode"
q "CREATE FOREIGN TABLE t (k bigint OPTIONS (key 'true'), v text) SERVER kvs;
   INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, $ROWS) g;" >/dev/null ||
    bail "cannot create and load t"
want_filter=$(q "SELECT count(*) FROM generate_series(1, $ROWS) g WHERE md5(g::text) || md5((g * 7)::text) LIKE '%ab%'")
is "$(q "SELECT count(*) FROM t")" "$ROWS" "t loaded with $ROWS rows in shared mode"

# ---- 2. local mode --------------------------------------------------------------
pgc_stop
PGC_OPTS=$LOCAL_OPTS
pgc_start_again || bail "cannot start the cluster again in local mode"
is "$(q "SELECT kvs_fdw_mode()" 2>&1)" "local" "started again in local mode"

# ---- 3. parallel scans: the leader and a worker read the owned file at once -----
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
     SET max_parallel_workers_per_gather = 1;"
like "$(q "$PAR EXPLAIN (COSTS OFF) SELECT count(*) FROM t")" "Gather" "count(*) of t is planned parallel"
run_rounds() {      # run_rounds LABEL SQL WANT
    local i out bad=0 first=""
    for i in $(seq 1 "$ROUNDS"); do
        out=$(q "$PAR $2" 2>&1)
        if [ "$out" != "$3" ]; then
            bad=$((bad + 1))
            [ -n "$first" ] || first=$out
        fi
    done
    is "$bad" "0" "$1: $ROUNDS parallel scans, each counting $3"
    [ -z "$first" ] || echo "$first" | diag
}
run_rounds "count(*)" "SELECT count(*) FROM t" "$ROWS"
run_rounds "filter" "SELECT count(*) FROM t WHERE v LIKE '%ab%'" "$want_filter"
is "$(q "$PAR EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM t" |
      grep -c 'Workers Launched: 1')" "1" "a worker was launched"

# ---- 4. many backends at once, readers and writers ------------------------------
cat >"$WORK/scan.sql" <<EOF
SELECT count(*) FROM t;
EOF
cat >"$WORK/write.sql" <<EOF
\\set k random(1, $ROWS)
UPDATE t SET v = md5(k::text) || md5((k * 7)::text) WHERE k = :k;
EOF
if out=$(pgc_as "$PG_BINDIR/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U postgres -c 3 -j 3 -t 15 \
    -f "$WORK/scan.sql@3" -f "$WORK/write.sql@1" postgres 2>&1); then
    ok "3 local-mode clients scanning and writing t at once: no error"
else
    nok "3 local-mode clients scanning and writing t at once: no error"
    echo "$out" | grep -iv '^pgbench: client .* executing' | tail -5 | diag
fi
is "$(q "SELECT count(*) FROM t")" "$ROWS" "t still counts $ROWS rows"
is "$(q "SELECT count(*) FROM kvs_fdw_check('t')" 2>&1)" "0" "kvs_fdw_check('t') is clean"

# ---- 5. a reader stopped inside its section -----------------------------------------
file=$(ls "$PGC_DATA"/kvs_fdw/*.kvs)
ino=$(stat -c %i "$file")
# holds_flock PID: PID holds a flock on t's file (/proc/locks: the inode)
holds_flock() { grep -Eq "FLOCK +ADVISORY +(READ|WRITE) +$1 +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks; }
ct_bg stopped "SELECT sum(c) FROM generate_series(1, 100000) g,
                 LATERAL (SELECT count(*) AS c FROM t WHERE k > g - g) s"
pid=$(ct_bg_pid stopped)
[ -n "$pid" ] || bail "the background scan did not start"
inside=0
for i in $(seq 1 300); do
    kill -STOP "$pid"
    if holds_flock "$pid"; then inside=1; break; fi
    kill -CONT "$pid"
    sleep 0.01
done
is "$inside" "1" "a scanning backend stopped while its read section holds the file's lock"
if [ "$inside" = 1 ]; then
    is "$(q "SET statement_timeout = '20s'; SELECT count(*) FROM t" 2>&1)" "$ROWS" \
        "another backend's count(*) meanwhile: $ROWS rows, no 'in use elsewhere'"
    is "$(q "SET statement_timeout = '20s'; SELECT count(*) FROM t WHERE v LIKE '%ab%'" 2>&1)" "$want_filter" \
        "and its filtered scan: $want_filter rows"
    # a writer waits for the stopped reader's section: resume it after a while
    ( sleep 1; kill -CONT "$pid" ) &
    CT_PIDS="$CT_PIDS $!"
    is "$(q "SET statement_timeout = '20s'; UPDATE t SET v = v WHERE k = 1" 2>&1)" "" \
        "a write meanwhile waits for that section (resumed after 1 s) and succeeds"
fi
kill -CONT "$pid" 2>/dev/null
q "SELECT pg_cancel_backend($pid)" >/dev/null
ct_bg_done stopped 100 || nok "the background scan ends after its cancel"
like "$(cat "$WORK/stopped.out")" "^$|57014" "the resumed scan ended by its cancel, no other error"
is "$(q "SELECT count(*) FROM t")" "$ROWS" "t counts $ROWS rows at the end"

tap_end
