#!/bin/bash
# test/bench/durable.sh - durable commits through Postgres: kvs against heap +
# btree on one server in one run, synchronous_commit = on (--sync off: off), fsync on.
#
# Starts a throwaway cluster (test/bench/pglib.sh: the `postgres` OS user, its
# own temp dir and port, stopped and removed at exit) with kvs_fdw in
# shared_preload_libraries, loads ROWS rows (bigint key, 100-byte value) into
# a kvs table and a heap table with a btree primary key, then runs pgbench
# -M prepared for SECS s each:
#   update   one UPDATE of one row by key (uniform keys) per transaction
#   ycsb_a   YCSB A: 50 % lookups, 50 % updates, scrambled Zipfian keys
# on kvs and on heap, at each client count in CLIENTS (which of the two goes
# first alternates; a transaction that fails with 40001 or 40P01 is retried,
# pgbench --max-tries, and the retries shown), and prints tps, the ratio
# kvs/heap and the fsyncs per commit of each run.  The fsyncs of every server process are counted by an
# LD_PRELOAD shim (fsyncount.c, built here) and sorted by the file synced:
# the WAL (pg_wal/), the kvs journal (a path with "journal"), kvs files
# (*.kvs), anything else; pg_stat_wal's wal_sync is shown beside as a cross-check.  Then
# pg_test_fsync's fdatasync figure for the disk the data directory is on (one
# 8 kB write): the ceiling of a commit that waits for one fsync alone.
# Figures are printed, never asserted (the machine is small and shared).
#
# Must run as root (runuser).  Usage:
#   durable.sh [--quick] [--rows N] [--secs S] [--clients "1 2 8"] [--port P]
#              [--no-count] [--local] [--ceiling BYTES]
#   defaults     100,000 rows, 10 s runs, 1, 2 and 8 clients, both workloads
#   --quick      10,000 rows, 2 s runs, 1 and 8 clients, no pg_test_fsync
#                (checks the harness; test/bench/run --quick does)
#   --no-count   without the shim (no C compiler): fsyncs per commit only
#                from pg_stat_wal (the WAL)
#   --local      without the preload (each backend its own cache)
#   --sync off   synchronous_commit = off on the server (heap commits then
#                wait for no flush; a transaction that writes kvs still does,
#                README "Transactions"): what that setting costs kvs
#   --ceiling B  also, at each client count beside a heap update run: commits
#                whose only write is one transactional WAL record of B bytes
#                (pg/walmsg.sql), alone and under one lock held through the
#                commit (pg/walmsg_serial.sql): the ceiling of a design that
#                puts kvs's page images in PostgreSQL's WAL, with and without
#                the one-commit-per-table section of today's design
# Prints "# " comment lines and "step NAME ok|fail DETAIL" lines (as pg.sh).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=100000
SECS=10
CLIENTS="1 2 8"
PORT=55445
QUICK=0
TRACE=1
MODE=shared
CEILING=0
SYNC=on
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; ROWS=10000; SECS=2; CLIENTS="1 8"; shift ;;
        --rows) ROWS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --no-count) TRACE=0; shift ;;
        --local) MODE=local; shift ;;
        --ceiling) CEILING=$2; shift 2 ;;
        --sync) SYNC=$2; shift 2 ;;
        *) echo "usage: $0 [--quick] [--rows N] [--secs S] [--clients \"1 2 8\"] [--port P] [--no-count] [--local] [--ceiling BYTES] [--sync on|off]" >&2; exit 2 ;;
    esac
done

# TMP, cleanup, step, sql, pgb_initdb, pgb_stop, script, run_pgbench
. "$HERE/pglib.sh"

# the fsync counter shim and its counters (4 x 8 bytes, see fsyncount.c)
FSYNC_FILE=$TMP/fsyncs
if [ $TRACE = 1 ]; then
    if cc -shared -fPIC -O2 -o "$TMP/fsyncount.so" "$HERE/fsyncount.c" -ldl >"$TMP/cc.log" 2>&1; then
        head -c 32 /dev/zero >"$FSYNC_FILE" && chown postgres: "$FSYNC_FILE"
    else
        sed 's/^/#   /' "$TMP/cc.log" | tail -3
        echo "# the fsync counter did not build: fsyncs from pg_stat_wal only"
        TRACE=0
    fi
fi

# ---- cluster: the postmaster started by us, with the shim in its environment --------
SETTINGS="-c synchronous_commit=$SYNC -c fsync=on -c shared_buffers=128MB -c max_connections=30"
[ "$MODE" = shared ] && SETTINGS="$SETTINGS -c shared_preload_libraries=kvs_fdw -c kvs_fdw.shared_cache_size=128MB"
start_server() {
    local shim=() n=0
    [ $TRACE = 1 ] && shim=(env LD_PRELOAD="$TMP/fsyncount.so" FSYNCOUNT_FILE="$FSYNC_FILE")
    # shellcheck disable=SC2086   # SETTINGS is a list of options
    runuser -u postgres -- "${shim[@]}" "$PGBIN/postgres" -D "$TMP/data" -p "$PORT" -k "$TMP" \
        -c "listen_addresses=" $SETTINGS >>"$TMP/log" 2>&1 &
    STARTED=1
    until sql "SELECT 1" >/dev/null 2>&1; do
        n=$((n + 1)); [ $n -gt 300 ] && return 1
        sleep 0.1
    done
}
if ! pgb_initdb || ! start_server; then
    tail -20 "$TMP/log" 2>/dev/null | sed 's/^/#   /'
    step durable_cluster fail "the server did not start ($SETTINGS)"
    exit 1
fi
if ! sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw" >"$TMP/ext.log" 2>&1; then
    sed 's/^/# /' "$TMP/ext.log"
    step durable_cluster fail "CREATE EXTENSION kvs_fdw failed"
    exit 1
fi
EXTV=$(sql "SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw'")
HAS_JSTATS=$(sql "SELECT count(*) FROM pg_proc WHERE proname = 'kvs_fdw_journal_stats'")
step durable_cluster ok "PostgreSQL $(sql 'SHOW server_version'), kvs_fdw $EXTV ($MODE mode), synchronous_commit $(sql 'SHOW synchronous_commit'), fsync $(sql 'SHOW fsync'), wal_sync_method $(sql 'SHOW wal_sync_method'), port $PORT"
[ "$HAS_JSTATS" = 0 ] && echo "# kvs_fdw $EXTV has no kvs_fdw_journal_stats() (0.4.0): the fsyncs below are the shim's counts only"

# ---- load ------------------------------------------------------------------------
if { sql "CREATE TABLE kv_btree (k bigint PRIMARY KEY, v text);
          INSERT INTO kv_btree SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g" &&
       sql "VACUUM (ANALYZE) kv_btree" &&
       sql "CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs;
            INSERT INTO kv_kvs SELECT * FROM kv_btree" &&
       sql "ANALYZE kv_kvs" && sql "CHECKPOINT"; } >"$TMP/load.log" 2>&1; then
    step durable_load ok "$ROWS rows in kv_btree (heap + btree) and kv_kvs"
else
    sed 's/^/#   /' "$TMP/load.log" | tail -5
    step durable_load fail "load"
    exit 1
fi

# ---- fsync counting ------------------------------------------------------------------
# fsync_mark -> "wal journal kvsfile other": the counters now
fsync_mark() { if [ $TRACE = 1 ]; then od -An -t u8 -w32 "$FSYNC_FILE" | tr -s ' ' | sed 's/^ //'; else echo "- - - -"; fi; }
# fsyncs_since "MARK" -> the counters' growth since fsync_mark printed MARK
fsyncs_since() {
    [ $TRACE = 1 ] || { echo "- - - -"; return; }
    echo "$1 $(fsync_mark)" | awk '{ print $5 - $1, $6 - $2, $7 - $3, $8 - $4 }'
}
wal_syncs() { sql "SELECT wal_sync FROM pg_stat_wal"; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b <= 0) print "-"; else printf "%.2f", a / b }'; }

# ---- runs ----------------------------------------------------------------------------
LEN=(-T "$SECS")
echo "# pgbench -M prepared, ${SECS}s per run, $ROWS rows; synchronous_commit = on, fsync = on; fsyncs counted $([ $TRACE = 1 ] && echo "in every server process (fsyncount.c)" || echo "from pg_stat_wal only")"
printf '# %-8s %7s %9s %9s %8s   %-26s %-26s\n' workload clients "kvs tps" "heap tps" kvs/heap \
    "kvs fsyncs/commit" "heap fsyncs/commit"
printf '# %-8s %7s %9s %9s %8s   %-26s %-26s\n' "" "" "" "" "" "wal+journal+file+other" "wal+journal+file+other"
round=0
for wl in update ycsb_a; do
    case $wl in update) dist=uniform ;; ycsb_a) dist=zipf ;; esac
    for c in $CLIENTS; do
        round=$((round + 1))
        if [ $((round % 2)) = 1 ]; then order="kv_kvs kv_btree"; else order="kv_btree kv_kvs"; fi
        for t in $order; do
            m=$(fsync_mark); w0=$(wal_syncs)
            # a kvs COMMIT may fail with 40001 (a key another commit changed
            # first): pgbench retries those, and the retries are shown
            PGB_CLIENTS=$c run_pgbench "$wl.$t.$c" "$wl" "$t" "$dist" --max-tries=1000
            rc=$?
            n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/pgbench.$wl.$t.$c.log")
            retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$TMP/pgbench.$wl.$t.$c.log")
            sleep 0.5    # the backends' WAL statistics reach pg_stat_wal as they exit
            read -r fw fj fk fo <<<"$(fsyncs_since "$m")"
            ws=$(( $(wal_syncs) - w0 ))
            desc="$(per "$fw" "${n:-0}")+$(per "$fj" "${n:-0}")+$(per "$fk" "${n:-0}")+$(per "$fo" "${n:-0}") (wal_sync $(per "$ws" "${n:-0}"))"
            [ "${retried:-0}" -gt 0 ] && desc="$desc, $retried retried"
            if [ "$t" = kv_kvs ]; then KT=$TPS; KD=$desc; KRC=$rc; else HT=$TPS; HD=$desc; HRC=$rc; fi
            if [ "$t" = kv_kvs ] && [ "$HAS_JSTATS" != 0 ]; then
                echo "# journal (all backends, cumulative) after $wl, $c clients: $(sql "SELECT row_to_json(s) FROM kvs_fdw_journal_stats() s" 2>&1 | paste -sd' ')"
            fi
        done
        line=$(printf '%-8s %7s %9.0f %9.0f %8.2f   %-26s %-26s' "$wl" "$c" "$KT" "$HT" \
               "$(awk -v k="$KT" -v h="$HT" 'BEGIN { print (h > 0 ? k / h : 0) }')" "$KD" "$HD")
        echo "# $line"
        if [ "$KRC" = 0 ] && [ "$HRC" = 0 ]; then step "durable_${wl}_c$c" ok "$(echo "$line" | tr -s ' ')"
        else step "durable_${wl}_c$c" fail "a pgbench run failed"; fi
    done
done
if [ "$CEILING" != 0 ]; then
    echo "# ceiling: commits of one ${CEILING}-byte transactional WAL record, beside heap updates (tps, fsyncs/commit)"
    printf '# %7s %9s %9s %9s %9s %9s   %s\n' clients "heap tps" "wal tps" "serial" wal/heap serial/heap "wal+journal+file+other per commit: heap; wal; serial"
    for c in $CLIENTS; do
        ok=1; tps=(); descs=()
        for wl in update walmsg walmsg_serial; do
            m=$(fsync_mark)
            PGB_CLIENTS=$c run_pgbench "ceil.$wl.$c" "$wl" kv_btree uniform -D bytes="$CEILING" || ok=0
            n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/pgbench.ceil.$wl.$c.log")
            read -r fw fj fk fo <<<"$(fsyncs_since "$m")"
            tps+=("$TPS"); descs+=("$(per "$fw" "${n:-0}")+$(per "$fj" "${n:-0}")+$(per "$fk" "${n:-0}")+$(per "$fo" "${n:-0}")")
        done
        line=$(printf '%7s %9.0f %9.0f %9.0f %9.2f %9.2f   %s; %s; %s' "$c" "${tps[0]}" "${tps[1]}" "${tps[2]}" \
               "$(awk -v a="${tps[1]}" -v h="${tps[0]}" 'BEGIN { print (h > 0 ? a / h : 0) }')" \
               "$(awk -v a="${tps[2]}" -v h="${tps[0]}" 'BEGIN { print (h > 0 ? a / h : 0) }')" "${descs[@]}")
        echo "# $line"
        if [ $ok = 1 ]; then step "durable_ceiling_c$c" ok "$(echo "$line" | tr -s ' ')"
        else step "durable_ceiling_c$c" fail "a pgbench run failed"; fi
    done
fi
problems=$(sql "SELECT count(*) FROM kvs_fdw_check('kv_kvs')" 2>&1)
if [ "$problems" = 0 ]; then step durable_check ok "kv_kvs: kvs_fdw_check clean after the runs"
else step durable_check fail "kv_kvs: kvs_fdw_check: $problems"; fi

# ---- the disk ----------------------------------------------------------------------------
if [ $QUICK = 1 ]; then
    echo "# pg_test_fsync skipped (--quick)"
elif out=$(runuser -u postgres -- "$PGBIN/pg_test_fsync" -s 2 -f "$TMP/data/pg_test_fsync.tmp" 2>&1); then
    fds=$(echo "$out" | awk '/one 8kB write/ { one = 1 } one && $1 == "fdatasync" { print $2; exit }')
    echo "$out" | sed -n '/one 8kB write/,/^$/p' | sed 's/^/#   /'
    step durable_pg_test_fsync ok "fdatasync of one 8 kB write: $fds ops/s on the data directory's disk (pg_test_fsync -s 2)"
else
    echo "$out" | tail -3 | sed 's/^/#   /'
    step durable_pg_test_fsync fail "pg_test_fsync"
fi
exit $FAILED
