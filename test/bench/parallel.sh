#!/bin/bash
# test/bench/parallel.sh - a parallel full scan of a kvs table against the
# same scan in one process, on one throwaway server (run as root).
#
#   test/bench/parallel.sh [--rows N] [--reps N] [--port P] [--cache SIZE] [--quick]
#
# Loads N rows (bigint key, 100-byte text value; default 10,000,000), then
# times `SELECT count(*) FROM pt WHERE v LIKE '%ab%'` (every row decoded and
# filtered) with max_parallel_workers_per_gather = 1 (the leader and one
# worker claim chunks of the file) and = 0 (the leader alone), interleaved,
# after one untimed run of each.  Prints every time, the median of each side
# and their ratio, and checks both sides count the same rows (a FAILED line
# otherwise).  --cache: kvs_fdw.cache_size of each backend (default 2GB: the
# 10M-row file, ~1.3 GB, fits in each participant's cache once warm).
# --quick: 200,000 rows, 3 repetitions (a code-path check; the
# figure means little at that size).  The ratio wants two idle cores: on a
# shared machine it says how much the second process got.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=10000000
REPS=5
PORT=55439
CACHE=2GB
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --quick) ROWS=200000; REPS=3; shift ;;
        *) echo "usage: $0 [--rows N] [--reps N] [--port P] [--quick]" >&2; exit 2 ;;
    esac
done

# TMP, cleanup, step, sql, pgb_initdb/pgb_start/pgb_stop, VALUE_EXPR
. "$HERE/pglib.sh"

pgb_initdb || exit 1
pgb_start "-c max_worker_processes=8 -c max_parallel_workers=4 -c kvs_fdw.cache_size=$CACHE" || exit 1
sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
     CREATE FOREIGN TABLE pt (k bigint OPTIONS (key 'true'), v text) SERVER kvs" >/dev/null || exit 1
t0=$(now_ns)
sql "INSERT INTO pt SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g" >/dev/null || exit 1
echo "# loaded $ROWS rows in $(secs_since "$t0") s; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
sql "ANALYZE pt" >/dev/null

Q="SELECT count(*) FROM pt WHERE v LIKE '%ab%'"
SETS="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
echo "# workers = 1 plan:"
sql "$SETS SET max_parallel_workers_per_gather = 1; EXPLAIN (COSTS OFF) $Q" | sed 's/^/#   /'

# run W: one timed query with max_parallel_workers_per_gather = W; sets SECS, COUNT
run() {
    local t0
    t0=$(now_ns)
    COUNT=$(sql "$SETS SET max_parallel_workers_per_gather = $1; $Q") || COUNT=error
    SECS=$(secs_since "$t0")
}
run 1; run 0          # warm: the file's pages in the OS cache
echo "# workers = 1, EXPLAIN ANALYZE (rows per participant):"
sql "$SETS SET max_parallel_workers_per_gather = 1; EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) $Q" |
    grep -E 'Workers Launched|Worker [0-9]|Foreign Scan|Execution' | sed 's/^/#   /'
P=(); S=(); BAD=0
for i in $(seq 1 "$REPS"); do
    run 1; P+=("$SECS"); c1=$COUNT
    run 0; S+=("$SECS"); c0=$COUNT
    echo "rep $i: workers=1 ${P[-1]} s ($c1 rows)  workers=0 ${S[-1]} s ($c0 rows)"
    [ "$c1" = "$c0" ] && [ "$c1" != error ] || BAD=1
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mp=$(median "${P[@]}")
ms=$(median "${S[@]}")
echo "median: workers=1 $mp s, workers=0 $ms s, speedup $(awk -v a="$ms" -v b="$mp" 'BEGIN { printf "%.2f", a / b }')x ($ROWS rows, $REPS reps)"
if [ $BAD = 0 ]; then
    step parallel_scan ok "same row count both ways ($c0)"
else
    step parallel_scan fail "row counts differ between the parallel and the plain scan"
fi
exit $FAILED
