#!/bin/bash
# test/bench/fullscan.sh - a full scan of a kvs table against the heap's
# sequential scan, side by side on one throwaway server (run as root).
#
#   test/bench/fullscan.sh [--rows N] [--reps N] [--port P] [--cache SIZE]
#                          [--mode local|shared|both] [--quick]
#
# Loads N rows (bigint key, 100-byte text value; default 1,000,000) into a
# heap table and a kvs table, then times two statements on each,
#   count:  SELECT count(*) FROM t                  (no column needed)
#   filter: SELECT count(*) FROM t WHERE v LIKE '%ab%'  (every value decoded)
# with max_parallel_workers_per_gather = 0 and index scans off (the heap's
# count(*) is then its sequential scan), each statement in a new
# connection (psql's \timing: the statement alone, not the connection),
# heap and kvs interleaved within each round (the order alternating from
# round to round), after one untimed run of each (warm caches: heap in
# shared_buffers after pg_prewarm; local mode, the file in the OS page cache
# - a new backend starts with an empty kvs cache and reads the file through
# pread; shared mode, the file's pages in the shared pool after a scan with
# the scan ring off).  Prints every time, the medians and heap/kvs (>= 1:
# kvs at least as fast), and checks both sides count the same rows (a
# "step ... fail" line otherwise).  --mode both (default) runs local mode,
# then restarts the server with kvs_fdw preloaded (shared mode) on the same
# data.  --cache: shared_buffers, kvs_fdw.cache_size (local) and
# kvs_fdw.shared_cache_size (shared); default 512MB, above both tables.
# --quick: 20,000 rows, 1 round (a code-path check: the figures mean little).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=1000000
REPS=5
PORT=55443
CACHE=512MB
MODES="local shared"
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --mode) case "$2" in both) MODES="local shared" ;; *) MODES=$2 ;; esac; shift 2 ;;
        --quick) ROWS=20000; REPS=1; CACHE=32MB; shift ;;
        *) echo "usage: $0 [--rows N] [--reps N] [--port P] [--cache SIZE] [--mode local|shared|both] [--quick]" >&2; exit 2 ;;
    esac
done

# TMP, cleanup, step, sql, pgb_initdb/pgb_start/pgb_stop, VALUE_EXPR
. "$HERE/pglib.sh"

start() {   # start local|shared
    local s="-c shared_buffers=$CACHE -c kvs_fdw.cache_size=$CACHE"
    [ "$1" = shared ] && s="-c shared_buffers=$CACHE -c shared_preload_libraries=kvs_fdw -c kvs_fdw.shared_cache_size=$CACHE"
    pgb_start "$s" || { step "fullscan_$1" fail "the server did not start"; exit 1; }
}

pgb_initdb || exit 1
start local
sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw; CREATE EXTENSION pg_prewarm;
     CREATE TABLE t_heap (k bigint PRIMARY KEY, v text);
     CREATE FOREIGN TABLE t_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs" >/dev/null || exit 1
t0=$(now_ns)
sql "INSERT INTO t_heap SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g;
     INSERT INTO t_kvs SELECT * FROM t_heap" >/dev/null || exit 1
sql "VACUUM (ANALYZE) t_heap" >/dev/null && sql "ANALYZE t_kvs" >/dev/null && sql "CHECKPOINT" >/dev/null || exit 1
echo "# loaded $ROWS rows into both tables in $(secs_since "$t0") s; heap $(sql "SELECT pg_size_pretty(pg_relation_size('t_heap'))"), kvs file $(sql "SELECT pg_size_pretty(pages * 4096) FROM kvs_fdw_stats('t_kvs')")"

QCOUNT="SELECT count(*) FROM @T@"
QFILTER="SELECT count(*) FROM @T@ WHERE v LIKE '%ab%'"

# parallelism off; the heap's count(*) would otherwise be an index-only scan of
# its primary key (the visibility map is set after VACUUM): a sequential scan
SETS="SET max_parallel_workers_per_gather = 0; SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off"
# timed TABLE QUERY: one statement in a new connection; sets MS, COUNT
timed() {
    local out q=${2//@T@/$1}
    out=$("${PSQL[@]}" -At -c "$SETS" -c '\timing on' -c "$q" 2>&1) || { COUNT=error; MS=0; return; }
    COUNT=$(sed -n 1p <<<"$out")
    MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out")
    [ -n "$MS" ] || { COUNT=error; MS=0; }
}
warm() {
    sql "SELECT pg_prewarm('t_heap')" >/dev/null
    # the scan ring off: the file may be larger than a quarter of the pool
    "${PSQL[@]}" -At -c "SET kvs_fdw.scan_ring = off" -c "SELECT count(*) FROM t_kvs" >/dev/null
    timed t_heap "$QCOUNT"; timed t_kvs "$QCOUNT"; timed t_heap "$QFILTER"; timed t_kvs "$QFILTER"
}
echo "# heap count(*) plan: $(sql "$SETS; EXPLAIN (COSTS OFF) ${QCOUNT//@T@/t_heap}" | tr '\n' ' ')"
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

for mode in $MODES; do
    if [ "$mode" = shared ]; then
        pgb_stop; start shared
    fi
    echo "# $mode mode ($(sql "SELECT kvs_fdw_mode()")); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    warm
    bad=0; summary=
    for name in count filter; do
        [ $name = count ] && Q=$QCOUNT || Q=$QFILTER
        H=(); K=()
        for i in $(seq 1 "$REPS"); do
            if [ $((i % 2)) = 1 ]; then
                timed t_heap "$Q"; H+=("$MS"); ch=$COUNT
                timed t_kvs "$Q"; K+=("$MS"); ck=$COUNT
            else
                timed t_kvs "$Q"; K+=("$MS"); ck=$COUNT
                timed t_heap "$Q"; H+=("$MS"); ch=$COUNT
            fi
            echo "# $mode $name round $i: heap ${H[-1]} ms ($ch rows)  kvs ${K[-1]} ms ($ck rows)"
            [ "$ch" = "$ck" ] && [ "$ch" != error ] || bad=1
        done
        mh=$(median "${H[@]}"); mk=$(median "${K[@]}")
        r=$(awk -v h="$mh" -v k="$mk" 'BEGIN { printf "%.2f", (k > 0) ? h / k : 0 }')
        echo "$mode $name: median heap $mh ms, kvs $mk ms, heap/kvs ${r}x ($ch rows, $REPS rounds)"
        summary="$summary $name ${r}x (heap $mh ms, kvs $mk ms);"
    done
    echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $bad = 0 ]; then
        step "fullscan_$mode" ok "heap/kvs:${summary% ;} $ROWS rows, same counts both sides"
    else
        step "fullscan_$mode" fail "row counts differ between heap and kvs (or a statement failed)"
    fi
done
exit $FAILED
