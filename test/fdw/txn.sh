#!/bin/bash
# test/fdw/txn.sh - kvs writes follow the transaction, seen from other
# sessions (TAP output), in local mode and then, after a restart with
# shared_preload_libraries, in shared mode:
#   1. a transaction's INSERT/UPDATE/DELETE/TRUNCATE are seen by itself at
#      once and by another session only after COMMIT; the other session's
#      reads do not wait for the open transaction; ROLLBACK leaves nothing;
#   2. a COMMIT held inside its write section (kvs_fdw.debug_flush_delay):
#      a reader waits, then sees the whole commit (never part of it);
#   3. two tables and a heap table in one transaction: all or nothing, also
#      when the backend is terminated (pg_terminate_backend) or killed
#      (kill -9: the cluster restarts) with the transaction open;
#   4. kvs_fdw_check clean, no backend crash.
# Assumes the extension is built and installed (test/run does that first).
#   KVS_TXN_PORT     port of the throwaway cluster (default KVS_TEST_PORT2,
#                    else 55446)
#   KVS_KEEP=1       keep the temp dir (server log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_TXN_PORT:-${KVS_TEST_PORT2:-55446}}

ct_start txn "$PORT"
echo "# kvs_fdw transaction test: port $PORT"
ct_extension

# the rows another session sees, as "count|sum"
seen() { q "SELECT count(*) || '|' || coalesce(sum(n), 0) FROM $1"; }

round() {
    local mode=$1 out t0 t1 pid ms cpid
    q "DROP FOREIGN TABLE IF EXISTS ta, tb; DROP TABLE IF EXISTS th;
       CREATE FOREIGN TABLE ta (id int, n int) SERVER kvs;
       CREATE FOREIGN TABLE tb (id int, n int) SERVER kvs;
       CREATE TABLE th (id int, n int);
       INSERT INTO ta SELECT g, 1 FROM generate_series(1, 100) g;" >/dev/null ||
        bail "$mode: cannot create the tables"
    is "$(q "SELECT kvs_fdw_mode()")" "$mode" "$mode: kvs_fdw_mode()"

    # ---- 1. visibility -----------------------------------------------------
    sess_open A
    sess_run A "BEGIN; INSERT INTO ta SELECT g, 1 FROM generate_series(101, 150) g;
                UPDATE ta SET n = 10 WHERE id <= 10; DELETE FROM ta WHERE id > 140;" >/dev/null
    is "$(sess_run A "SELECT count(*) || '|' || sum(n) FROM ta;")" "140|230" \
        "$mode: the transaction sees its own writes"
    t0=$(date +%s%N)
    is "$(seen ta)" "100|100" "$mode: another session sees only the committed rows"
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [ $ms -lt 5000 ]; then ok "$mode: and does not wait for the open transaction (${ms} ms)"; else
        nok "$mode: and does not wait for the open transaction (${ms} ms)"; fi
    is "$(q "SELECT records FROM kvs_fdw_stats('ta')")" "100" "$mode: kvs_fdw_stats shows the committed file"
    sess_run A "COMMIT;" >/dev/null
    is "$(seen ta)" "140|230" "$mode: after COMMIT the other session sees all of it"

    sess_run A "BEGIN; TRUNCATE ta; INSERT INTO ta VALUES (1, 1000);" >/dev/null
    is "$(sess_run A "SELECT count(*) || '|' || sum(n) FROM ta;")" "1|1000" \
        "$mode: TRUNCATE + INSERT seen by the transaction"
    sess_run A "ROLLBACK;" >/dev/null
    is "$(seen ta)" "140|230" "$mode: ROLLBACK of TRUNCATE + INSERT leaves the rows"

    # ---- 2. a commit held in its write section -----------------------------
    sess_run A "SET kvs_fdw.debug_flush_delay = '2s'; BEGIN;
                UPDATE ta SET n = n + 1; INSERT INTO tb VALUES (1, 1);" >/dev/null
    # COMMIT in the session, in the background: it sleeps in pre-commit
    ( sess_run A "COMMIT;" >/dev/null ) &
    cpid=$!
    sleep 0.5
    t0=$(date +%s%N)
    out=$(seen ta)
    t1=$(date +%s%N)
    is "$out" "140|370" "$mode: a reader during the commit's write section sees the whole commit"
    ms=$(( (t1 - t0) / 1000000 ))
    if [ $ms -ge 500 ]; then ok "$mode: and waited for it (${ms} ms)"; else
        nok "$mode: and waited for it (${ms} ms)"; fi
    wait "$cpid"
    sess_run A "RESET kvs_fdw.debug_flush_delay;" >/dev/null
    is "$(seen tb)" "1|1" "$mode: the second table of that commit"

    # ---- 3. all or nothing over two kvs tables and a heap table ------------
    sess_run A "BEGIN; UPDATE ta SET n = 0; INSERT INTO tb VALUES (2, 2); INSERT INTO th VALUES (1, 1);
                SELECT pg_backend_pid();" >"$WORK/apid"
    pid=$(grep -E '^[0-9]+$' "$WORK/apid" | head -1)
    q "SELECT pg_terminate_backend($pid)" >/dev/null
    sess_close A
    sleep 0.5
    is "$(seen ta)|$(seen tb)|$(seen th)" "140|370|1|1|0|0" \
        "$mode: a terminated transaction left nothing in any table"
    sess_open B
    sess_run B "BEGIN; UPDATE ta SET n = 0; INSERT INTO tb VALUES (3, 3); INSERT INTO th VALUES (2, 2);
                SELECT pg_backend_pid();" >"$WORK/bpid"
    pid=$(grep -E '^[0-9]+$' "$WORK/bpid" | head -1)
    as_pg kill -9 "$pid"
    sess_close B
    # the postmaster restarts every backend; wait until it answers again
    for _ in $(seq 1 100); do q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
    LOG_MARK=$(wc -l <"$WORK/server.log")     # that crash was ours
    is "$(seen ta)|$(seen tb)|$(seen th)" "140|370|1|1|0|0" \
        "$mode: a killed transaction left nothing in any table"
    sess_open C
    sess_run C "BEGIN; UPDATE ta SET n = 5; INSERT INTO tb VALUES (4, 4); INSERT INTO th VALUES (3, 3); COMMIT;" >/dev/null
    sess_close C
    is "$(seen ta)|$(seen tb)|$(seen th)" "140|700|2|5|1|3" "$mode: a committed one is all there"
    is "$(q "SELECT count(*) FROM kvs_fdw_check('ta')")|$(q "SELECT count(*) FROM kvs_fdw_check('tb')")" \
        "0|0" "$mode: kvs_fdw_check clean"
}

round local
echo "shared_preload_libraries = 'kvs_fdw'" | as_pg tee -a "$PGC_DATA/postgresql.conf" >/dev/null
pgc_restart || bail "restart with shared_preload_libraries failed"
round shared
finish
