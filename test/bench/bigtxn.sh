#!/bin/bash
# test/bench/bigtxn.sh - one big transaction into a kvs table: the peak
# memory of the backend that runs it, and that its commit works.
#
# A throwaway cluster (local mode unless --shared: kvs_fdw in
# shared_preload_libraries), default settings (kvs_fdw.pending_memory 64MB,
# so the write set spills to temporary files); ROWS rows (bigint key,
# 100-byte text) written to a server-side CSV file, then one COPY of them
# into an empty kvs table: one statement, one transaction.  Prints the
# backend's VmHWM (peak resident set), VmRSS and RssAnon / RssShmem from
# /proc/<pid>/status read by the same session right after the COMMIT, the
# COPY's seconds (wall, and the backend's CPU seconds from /proc/<pid>/stat:
# steadier on a shared machine), the temporary bytes PostgreSQL counted (a
# merge of the write set's runs writes a new file: every file counts), then count(*) and
# kvs_fdw_check (no problem row) checked in a new session.
#
# Must run as root (it uses runuser).  Usage:
#   bigtxn.sh [--rows N] [--port P] [--shared] [--set "name=value ..."]
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=10000000
PORT=${PORT:-55441}
SETTINGS=
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --shared) SETTINGS="$SETTINGS -c shared_preload_libraries=kvs_fdw"; shift ;;
        --set) for s in $2; do SETTINGS="$SETTINGS -c $s"; done; shift 2 ;;
        *) echo "usage: $0 [--rows N] [--port P] [--shared] [--set \"name=value ...\"]" >&2; exit 2 ;;
    esac
done

# TMP, cleanup, step, sql, pgb_initdb/pgb_start/pgb_stop
. "$HERE/pglib.sh"

if ! pgb_initdb || ! pgb_start "$SETTINGS"; then step bigtxn_cluster fail "server did not start"; exit 1; fi
sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
     CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs" >/dev/null
sql "COPY (SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g) TO '$TMP/rows.csv' (FORMAT csv)"
echo "# $ROWS rows (bigint key, 100-byte text), $(du -m "$TMP/rows.csv" | cut -f1) MB of CSV; settings:${SETTINGS:- defaults}"
show() { sql "LOAD 'kvs_fdw'; SHOW $1"; }
echo "# kvs_fdw.pending_memory = $(show kvs_fdw.pending_memory), kvs_fdw.cache_size = $(show kvs_fdw.cache_size), shared_buffers = $(show shared_buffers)"
sql "SELECT pg_stat_reset()" >/dev/null
cat >"$TMP/big.sql" <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv PID :pid
\! grep -E '^(VmHWM|VmRSS)' /proc/\$PID/status | tr -s ' \t' ' ' | sed 's/^/# at start: /'
\! date +%s%N >$TMP/t0
\! awk '{ print \$14 + \$15 }' /proc/\$PID/stat >$TMP/c0
COPY kv_kvs FROM '$TMP/rows.csv' (FORMAT csv);
\! date +%s%N >$TMP/t1
\! awk '{ print \$14 + \$15 }' /proc/\$PID/stat >$TMP/c1
\! grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem)' /proc/\$PID/status | tr -s ' \t' ' ' >$TMP/status
SQL
if ! "${PSQL[@]}" -f "$TMP/big.sql" >"$TMP/big.log" 2>&1; then
    sed 's/^/# /' "$TMP/big.log"
    step bigtxn_copy fail "the COPY or its commit failed"
    exit 1
fi
sed -n 's/^# at start/# backend at start/p' "$TMP/big.log"
secs=$(awk -v a="$(cat "$TMP/t0")" -v b="$(cat "$TMP/t1")" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
hwm=$(awk '/^VmHWM/ { print $2 }' "$TMP/status")
cpu=$(awk -v a="$(cat "$TMP/c0")" -v b="$(cat "$TMP/c1")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz }')
sed 's/^/# backend after COMMIT: /' "$TMP/status"
echo "# temporary files (pg_stat_database): $(sql "SELECT temp_files || ' files, ' || pg_size_pretty(temp_bytes) FROM pg_stat_database WHERE datname = current_database()")"
n=$(sql "SELECT count(*) FROM kv_kvs")
bad=$(sql "SELECT count(*) FROM kvs_fdw_check('kv_kvs')")
echo "# file: $(sql "SELECT pg_size_pretty(sum(size)) FROM pg_ls_dir('kvs_fdw', false, false) d, pg_stat_file('kvs_fdw/' || d) s WHERE d LIKE '%.kvs'" 2>/dev/null || echo ?)"
if [ "$n" = "$ROWS" ] && [ "$bad" = 0 ]; then
    step bigtxn ok "COPY of $ROWS rows in one transaction: ${secs}s (backend CPU ${cpu}s), backend VmHWM $((hwm / 1024)) MB; count(*) = $n, kvs_fdw_check clean"
else
    step bigtxn fail "count(*) = $n (expected $ROWS), kvs_fdw_check problems: $bad"
fi
exit $FAILED
