#!/bin/bash
# test/bench/shared.sh - figures of the shared kvs cache: kvs_fdw preloaded
# (one pool in PostgreSQL shared memory) against heap + btree in
# shared_buffers, on one server in one run.
#
# Starts a throwaway cluster (test/bench/pglib.sh: the `postgres` OS user,
# its own temp dir and port, stopped and removed at exit) with
# shared_preload_libraries = 'kvs_fdw', loads ROWS rows (bigint key, 100-byte
# value) into a kvs table and a heap table with a btree primary key, warms
# both caches (each larger than its table), then:
#   1. pgbench -M prepared -c 2 -j 2 for SECS s each, REPS rounds (medians),
#      uniform keys: SELECT 1 (the ceiling of the query pipeline), point
#      lookups (YCSB C), YCSB B
#      (95 % lookups, 5 % updates by key) and YCSB A (50/50) on kvs and on
#      heap + btree, with the kvs pool's and shared_buffers' hit ratios; the
#      ratios kvs/heap and kvs/SELECT 1 side by side.  Both at
#      synchronous_commit = off: kvs has no durable commit yet.
#   2. the wait of a point lookup during a bulk load: one client runs
#      INSERT ... SELECT of BULK new rows into the table while another runs
#      point lookups of present keys one after the other (pgbench -c 1, one
#      second at a time, --log: each lookup's latency); the count, median, p99
#      and max of the lookups that overlapped the load, beside the same
#      lookups with no load, for kvs and for heap + btree.
# Figures are printed, never asserted (the machine is small and shared).
#
# Must run as root (runuser).  Usage:
#   shared.sh [--quick] [--rows N] [--secs S] [--reps R] [--bulk-rows N] [--port P]
#             [--cache SIZE] [--local]
#   defaults   1M rows, 5 s runs, 3 rounds, a 500,000-row bulk load
#   --quick    20,000 rows, 2 s runs, 1 round, 20,000-row bulk load (checks the harness)
#   --cache    kvs_fdw.shared_cache_size and shared_buffers (default 512MB,
#              both above their table's size at 1M rows)
#   --local    the same without the preload: each backend its own cache of
#              that size (kvs_fdw.cache_size), as before the shared pool
# Prints "# " comment lines and "step NAME ok|fail DETAIL" lines (as pg.sh).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=1000000
SECS=5
REPS=3
BULK=
PORT=55442
CACHE=512MB
MODE=shared
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ROWS=20000; SECS=2; REPS=1; BULK=20000; CACHE=32MB; shift ;;
        --rows) ROWS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --bulk-rows) BULK=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --local) MODE=local; shift ;;
        *) echo "usage: $0 [--quick] [--rows N] [--secs S] [--reps R] [--bulk-rows N] [--port P] [--cache SIZE] [--local]" >&2; exit 2 ;;
    esac
done
BULK=${BULK:-$((ROWS / 2))}

# TMP, cleanup, step, sql, pgb_initdb/pgb_start, script, run_pgbench, sb_hit
. "$HERE/pglib.sh"

# ---- cluster ------------------------------------------------------------------
if [ "$MODE" = shared ]; then
    SETTINGS="-c shared_preload_libraries=kvs_fdw -c kvs_fdw.shared_cache_size=$CACHE"
else
    SETTINGS="-c kvs_fdw.cache_size=$CACHE"
fi
if ! pgb_initdb || ! pgb_start "-c shared_buffers=$CACHE -c max_connections=20 $SETTINGS"; then
    step shared_cluster fail "the server did not start ($SETTINGS)"
    exit 1
fi
if ! sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw; CREATE EXTENSION pg_prewarm" >"$TMP/ext.log" 2>&1; then
    sed 's/^/# /' "$TMP/ext.log"
    step shared_cluster fail "CREATE EXTENSION kvs_fdw failed"
    exit 1
fi
got=$(sql "SELECT kvs_fdw_mode()" 2>&1)
# before 0.3.0 there was no shared mode and no kvs_fdw_mode()
[ "$MODE" = local ] && [[ $got == *"kvs_fdw_mode() does not exist"* ]] && got=local
if [ "$got" = "$MODE" ]; then
    step shared_cluster ok "PostgreSQL $(sql 'SHOW server_version'), kvs_fdw $(sql "SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw'") in $MODE mode, port $PORT"
else
    step shared_cluster fail "kvs_fdw_mode() is not '$MODE': $got"
    exit 1
fi
if [ "$MODE" = shared ]; then
    echo "# kvs: one pool in shared memory, kvs_fdw.shared_cache_size = $CACHE; heap: shared_buffers = $CACHE"
else
    echo "# kvs: a cache of $CACHE in each backend (kvs_fdw.cache_size, local mode); heap: shared_buffers = $CACHE"
fi

# ---- load ---------------------------------------------------------------------------
t0=$(now_ns)
sql "CREATE TABLE kv_btree (k bigint PRIMARY KEY, v text);
     INSERT INTO kv_btree SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g" &&
    sql "VACUUM (ANALYZE) kv_btree" || { step shared_load fail "heap load"; exit 1; }
heap_s=$(secs_since "$t0")
t0=$(now_ns)
sql "CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs;
     INSERT INTO kv_kvs SELECT * FROM kv_btree;
     ANALYZE kv_kvs" || { step shared_load fail "kvs load"; exit 1; }
kvs_s=$(secs_since "$t0")
sql "CHECKPOINT"
step shared_load ok "$ROWS rows: heap + btree ${heap_s}s, kvs ${kvs_s}s (INSERT ... SELECT)"
echo "# sizes: heap + btree $(sql "SELECT pg_size_pretty(pg_total_relation_size('kv_btree'))"), kvs file $(sql "SELECT pg_size_pretty(pages * 4096) FROM kvs_fdw_stats('kv_kvs')")"

# warm both caches: pg_prewarm; a full scan with the scan ring off (the
# table is larger than a quarter of the pool: the ring would keep it out).
# The pool keeps the file's pages after that session ends (checked at the
# next open), as shared_buffers keeps the heap's.
warm() {
    sql "SELECT pg_prewarm('kv_btree') + pg_prewarm('kv_btree_pkey')" >/dev/null
    "${PSQL[@]}" -At -c "LOAD 'kvs_fdw'" \
        -c "SELECT set_config('kvs_fdw.scan_ring', 'off', false) FROM pg_settings WHERE name = 'kvs_fdw.scan_ring'" \
        -c "SELECT count(*) FROM kv_kvs" >/dev/null
}
warm
[ "$MODE" = shared ] && echo "# kvs pool after warming: $(sql "SELECT count(*) || ' frames hold pages of kv_kvs' FROM kvs_fdw_buffercache WHERE tbl = 'kv_kvs'::regclass" 2>&1)"

# kvs pool hit % since the last kvs_fdw_reset_stats() (shared mode: the
# cluster-wide counters; local mode: not visible from another backend)
pool_hit() {
    [ "$MODE" = shared ] || { echo "-"; return; }
    sql "SELECT coalesce(round(100.0 * hits / nullif(hits + reads, 0), 1)::text, '-') FROM kvs_fdw_cache_stats() WHERE file IS NULL"
}
reset_counters() {
    sql "SELECT pg_stat_reset()" >/dev/null
    [ "$MODE" = shared ] && sql "SELECT kvs_fdw_reset_stats()" >/dev/null
}

# ---- 1. pgbench ------------------------------------------------------------------
# REPS rounds, each: SELECT 1, then every mix on kvs and on heap (which of
# the two goes first alternates), so a change in the machine's load over the
# run touches both sides alike; the table shows medians over the rounds and
# the range of the rounds' own kvs/heap ratios.
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
LEN=(-T "$SECS")
echo "# pgbench -M prepared -c $PGB_CLIENTS -j $PGB_CLIENTS, ${SECS}s per run, $REPS rounds (medians), $ROWS rows, uniform keys; synchronous_commit = off for both (kvs has no durable commit yet)"
declare -A TK=() TH=() KH=() HH=() RANGE=()
S1S=""
ok=1
for r in $(seq 1 "$REPS"); do
    run_pgbench "select1.$r" select1 none uniform || ok=0
    S1S="$S1S $TPS"
    for mix in c b a; do
        if [ $((r % 2)) = 1 ]; then order="kv_kvs kv_btree"; else order="kv_btree kv_kvs"; fi
        for t in $order; do
            reset_counters
            run_pgbench "$mix.$t.$r" "ycsb_$mix" "$t" uniform || ok=0
            if [ "$t" = kv_kvs ]; then
                TK[$mix]="${TK[$mix]:-} $TPS"; KH[$mix]=$(pool_hit); k1=$TPS
            else
                TH[$mix]="${TH[$mix]:-} $TPS"; h1=$TPS
                sleep 0.3   # let the clients' statistics reach the shared stats
                HH[$mix]=$(sb_hit kv_btree)
            fi
        done
        RANGE[$mix]="${RANGE[$mix]:-} $(awk -v k="$k1" -v h="$h1" 'BEGIN { printf "%.2f", (h > 0 ? k / h : 0) }')"
    done
done
S1=$(echo "$S1S" | median)
[ "$ok" = 1 ] || step shared_pgbench fail "a pgbench run failed"
printf '# %-22s %9s %18s %18s %9s %11s %9s\n' workload "SELECT 1" "kvs (pool hit %)" "heap (sb hit %)" kvs/heap "(rounds)" kvs/sel1
for mix in c b a; do
    case $mix in c) label="lookups (YCSB C)" ;; b) label="YCSB B 95/5" ;; a) label="YCSB A 50/50" ;; esac
    K=$(echo "${TK[$mix]}" | median); H=$(echo "${TH[$mix]}" | median)
    rng=$(echo "${RANGE[$mix]}" | tr ' ' '\n' | grep . | sort -g | sed -n '1p;$p' | paste -sd- -)
    line=$(awk -v l="$label" -v s="$S1" -v k="$K" -v h="$H" -v kh="${KH[$mix]}" -v hh="${HH[$mix]}" -v rg="$rng" 'BEGIN {
        printf "%-22s %9.0f %10.0f (%5s) %10.0f (%5s) %9.2f %11s %9.2f", l, s, k, kh, h, hh,
               (h > 0 ? k / h : 0), rg, (s > 0 ? k / s : 0) }')
    echo "# $line"
    step "shared_ycsb_$mix" ok "$(echo "$line" | tr -s ' ')"
done

# ---- 2. point lookups during a bulk load -------------------------------------------
# lat_stats FROM_NS TO_NS LOGS...: "n median p99 max over10 over100" (ms;
# the last two: how many took more than 10 and 100 ms) of the logged
# transactions that ran at least partly between FROM and TO (pgbench --log
# lines: client xact latency_us script epoch_s epoch_us, the epoch at the end)
lat_stats() {
    local from=$1 to=$2
    shift 2
    cat "$@" | awk -v a="$from" -v b="$to" '{
            end = $5 * 1e6 + $6; start = end - $3;
            if (end * 1000 >= a && start * 1000 <= b) print $3 / 1000 }' | sort -g |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "0 - - - - -"; exit }
            i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1;
            for (j = 1; j <= NR; j++) { if (v[j] > 10) o10++; if (v[j] > 100) o100++ }
            printf "%d %.2f %.2f %.2f %d %d\n", NR, v[int((NR + 1) / 2)], v[i], v[NR], o10, o100 }'
}
# lookups_during TABLE: lookups on TABLE, first 3 s alone, then while an
# INSERT ... SELECT of BULK new rows into TABLE runs; sets IDLE and DURING
# (as lat_stats), BULK_S (the load's seconds) and BULK_RC (its status)
lookups_during() {
    local t=$1 i=0 b0 b1 bpid
    LEN=(-T 3)
    PGB_CLIENTS=1 run_pgbench "idle.$t" ycsb_c "$t" uniform --log --log-prefix="$TMP/idle.$t"
    IDLE=$(lat_stats 0 99999999999999999999 "$TMP"/idle."$t".*)
    LEN=(-T 1)
    b0=$(now_ns)
    sql "INSERT INTO $t SELECT g, $VALUE_EXPR FROM generate_series($ROWS + 1, $ROWS + $BULK) g" >"$TMP/bulk.$t.log" 2>&1 &
    bpid=$!
    while kill -0 "$bpid" 2>/dev/null; do
        i=$((i + 1))
        PGB_CLIENTS=1 run_pgbench "look.$t.$i" ycsb_c "$t" uniform --log --log-prefix="$TMP/look.$t.$i"
    done
    wait "$bpid"
    BULK_RC=$?
    b1=$(now_ns)
    BULK_S=$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    DURING=$(lat_stats "$b0" "$b1" "$TMP"/look."$t".*)
}
echo "# point lookups (pgbench -c 1, one after the other) alone and during INSERT ... SELECT of $BULK new rows into the same table"
printf '# %-12s %-22s %8s %10s %10s %10s %8s %8s\n' table when lookups "median ms" "p99 ms" "max ms" ">10 ms" ">100 ms"
for t in kv_kvs kv_btree; do
    lookups_during "$t"
    read -r n1 m1 p1 x1 a1 b1 <<<"$IDLE"
    read -r n2 m2 p2 x2 a2 b2 <<<"$DURING"
    printf '# %-12s %-22s %8s %10s %10s %10s %8s %8s\n' "$t" "alone" "$n1" "$m1" "$p1" "$x1" "$a1" "$b1"
    printf '# %-12s %-22s %8s %10s %10s %10s %8s %8s\n' "$t" "during the load (${BULK_S}s)" "$n2" "$m2" "$p2" "$x2" "$a2" "$b2"
    if [ "$BULK_RC" = 0 ] && [ "$n2" -gt 0 ]; then
        step "shared_bulk_$t" ok "lookups during the bulk load: $n2, p99 ${p2} ms, max ${x2} ms, $b2 over 100 ms (alone: p99 ${p1} ms, max ${x1} ms)"
    else
        sed 's/^/#   /' "$TMP/bulk.$t.log" | tail -5
        step "shared_bulk_$t" fail "bulk load status $BULK_RC, $n2 lookups measured"
    fi
done
n=$(sql "SELECT count(*) FROM kv_kvs")
problems=$(sql "SELECT count(*) FROM kvs_fdw_check('kv_kvs')")
if [ "$n" = $((ROWS + BULK)) ] && [ "$problems" = 0 ]; then
    step shared_check ok "kv_kvs: $n rows, kvs_fdw_check clean"
else
    step shared_check fail "kv_kvs: $n rows (want $((ROWS + BULK))), kvs_fdw_check: $problems problems"
fi
exit $FAILED
