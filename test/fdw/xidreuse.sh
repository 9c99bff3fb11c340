#!/bin/bash
# test/fdw/xidreuse.sh - a kvs commit's transaction id is never handed out
# again after a crash (TAP output), in local mode and then, after a restart
# with shared_preload_libraries, in shared mode.
#
# A kvs commit's journal records carry its transaction id X, and after a
# crash the commit log judges them by X (src/fdw/txn.c).  A transaction that
# writes only kvs tables writes no WAL before its commit record, so if
# nothing else made X durable in WAL, the server's crash recovery would not
# know X was ever used and would hand it out again; the next transaction to
# commit with X would make the crashed transaction's kvs rows look committed.
# Each case:
#   1. ten committed rows; then a kvs-only transaction inserts ten more; its
#      COMMIT (id X, from pg_stat_activity.backend_xid) is held by
#      kvs_fdw.debug_commit_delay after the journal flush and before the
#      commit record;
#   2. kill -9 of the postmaster and of its children (only this cluster's:
#      the postmaster's pid from postmaster.pid, its children by ps --ppid),
#      then a start (crash recovery);
#   3. committed transactions (SELECT txid_current(), autocommit) until the
#      next xid is past X (X itself is handed out again if the server
#      forgot it);
#   4. only then the kvs table is written (its file recovers from the
#      journal) and read: the crashed transaction's rows are absent, the ten
#      committed ones and the new row there, kvs_fdw_check clean.
# Cases: a crash with WAL written since the last checkpoint, and a crash
# right after a CHECKPOINT (no WAL of anyone after it but what the commit
# wrote), each in local and in shared mode; and in shared mode a crash
# followed by a start without shared_preload_libraries (where no code of
# kvs_fdw runs) that consumes the xids and is killed in turn, then a start
# in shared mode again before the table is used (a scheme that judged the
# records by what shared mode alone saw of the starts would fail here).
# Assumes the extension is built and installed (test/run does that first).
#   KVS_XIDREUSE_PORT  port of the throwaway cluster (default KVS_TEST_PORT3,
#                      else 55447)
#   KVS_KEEP=1         keep the temp dir (server log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_XIDREUSE_PORT:-${KVS_TEST_PORT3:-55447}}

ct_start xidreuse "$PORT" autovacuum=off
echo "# kvs_fdw xid reuse test: port $PORT"
ct_extension

# one_case MODE NAME CHECKPOINT(0|1) [VIA_LOCAL(0|1)]
one_case() {
    local mode=$1 name=$2 ckpt=$3 via_local=${4:-0} x pid out next n
    q "DROP FOREIGN TABLE IF EXISTS tx; CREATE FOREIGN TABLE tx (id int, n int) SERVER kvs;
       INSERT INTO tx SELECT g, 1 FROM generate_series(1, 10) g;" >/dev/null ||
        bail "$mode $name: cannot create the table"
    [ "$ckpt" = 1 ] && q "CHECKPOINT" >/dev/null
    ct_bg hold "SET kvs_fdw.debug_commit_delay = '60s'; BEGIN;
                INSERT INTO tx SELECT g, 2 FROM generate_series(101, 110) g; COMMIT;"
    pid=$(ct_bg_pid hold Extension)
    x=
    [ -n "$pid" ] && x=$(q "SELECT backend_xid FROM pg_stat_activity WHERE pid = $pid")
    if [ -z "$pid" ] || [ -z "$x" ]; then
        nok "$mode $name: the commit is held after its journal flush"
        return
    fi
    ok "$mode $name: the commit of xid $x is held after its journal flush"
    ct_kill_server || bail "$mode $name: the cluster's processes do not die"
    ct_bg_done hold 50
    # the start after the crash without the library preloaded: it recovers
    # and commits xids without any code of kvs_fdw running
    [ "$via_local" = 1 ] &&
        echo "shared_preload_libraries = ''  # xidreuse local start" | as_pg tee -a "$PGC_DATA/postgresql.conf" >/dev/null
    pgc_start_again 2>/dev/null || bail "$mode $name: the server does not start again"
    next=$(q "SELECT txid_current()")
    echo "first xid after the restart: $next (the crashed commit's: $x)" | diag
    n=0
    while [ "$next" -le "$x" ] && [ $n -lt 100 ]; do
        next=$(q "SELECT txid_current()"); n=$((n + 1))
    done
    if [ "$next" -gt "$x" ]; then ok "$mode $name: xids consumed past $x ($n more)"; else
        nok "$mode $name: xids consumed past $x"; fi
    if [ "$via_local" = 1 ]; then
        is "$(q "SELECT current_setting('shared_preload_libraries')")" "" \
            "$mode $name: that start was without shared_preload_libraries"
        ct_kill_server || bail "$mode $name: the cluster's processes do not die"
        as_pg sed -i '/# xidreuse local start$/d' "$PGC_DATA/postgresql.conf"
        pgc_start_again 2>/dev/null || bail "$mode $name: the server does not start again"
        is "$(q "SELECT kvs_fdw_mode()")" "$mode" "$mode $name: then a start in $mode mode again"
    fi
    out=$(q "INSERT INTO tx VALUES (1000, 3)" 2>&1)
    is "$out" "" "$mode $name: the table takes a write after the restart"
    is "$(q "SELECT count(*) FILTER (WHERE n = 1) || '|' || count(*) FILTER (WHERE n = 2) || '|' ||
                    count(*) FILTER (WHERE n = 3) FROM tx")" "10|0|1" \
        "$mode $name: the crashed commit's rows are absent, the committed ones there"
    is "$(q "SELECT count(*) FROM kvs_fdw_check('tx')")" "0" "$mode $name: kvs_fdw_check clean"
}

round() {
    local mode=$1
    is "$(q "SELECT kvs_fdw_mode()")" "$mode" "$mode: kvs_fdw_mode()"
    one_case "$mode" "crash" 0
    one_case "$mode" "crash after a checkpoint" 1
    [ "$mode" = shared ] &&
        one_case "$mode" "crash, a start in local mode, a crash" 0 1
}

round local
echo "shared_preload_libraries = 'kvs_fdw'" | as_pg tee -a "$PGC_DATA/postgresql.conf" >/dev/null
pgc_restart || bail "restart with shared_preload_libraries failed"
round shared
LOG_MARK=$(wc -l <"$WORK/server.log")     # the crashes above were ours
finish
