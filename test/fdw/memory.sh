#!/bin/bash
# test/fdw/memory.sh - kvs_fdw statements run in bounded backend memory (TAP).
#
# The goal: a full scan of 10M rows runs in constant backend memory.  Here,
# scaled to run in seconds: one backend loads ROWS rows (INSERT ... SELECT and
# COPY FROM PROGRAM, the FDW's buffered-batch path), scans them (count, sum of
# value lengths, a filter checked locally on every row), and walks them with
# kvs_fdw_check.  A sampler reads the backend's private memory (RssAnon in
# /proc/PID/status) every 10 ms; the peak during each statement must stay
# within LIMIT_MB of the backend's baseline, while each statement touches far
# more data than that (a leak per row or per value byte would show).  The kvs
# cache is set to 1 MB so a filling cache does not hide or fake a leak, and
# kvs_fdw.pending_memory to 4 MB: a load's uncommitted rows are kept in
# memory up to that much, then spilled to a temporary file.
#
# Assumes the extension is built and installed.  Root or a normal user.
#   KVS_TEST_PORT2   port (default 55434)      KVS_MEM_ROWS   rows (default 400000)
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_TEST_PORT2:-55434}
ROWS=${KVS_MEM_ROWS:-400000}
VLEN=200
LIMIT_MB=16

SAMPLER=""
ct_at_exit() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null; return 0; }

ct_start memory "$PORT"
echo "# kvs_fdw memory test: port $PORT, $ROWS rows of $VLEN-byte values, limit ${LIMIT_MB} MB"
ct_extension
q "CREATE FOREIGN TABLE memt (id bigint, val text) SERVER kvs;" || bail "cannot create memt"

# One long-lived session, so every statement runs in the same backend; its
# whole output is $WORK/sM.out.  run SQL waits for SQL (up to 300 s: 400,000
# rows on a loaded box).
CT_SESS_WAIT=300
sess_open M
OUT=$WORK/sM.out
run() { sess_run M "$1" >/dev/null || { echo "# statement did not finish: $1"; return 1; }; }
# jit off: LLVM's own memory (~15 MB when a plan's cost passes jit_above_cost)
# is not the FDW's.
run "SET kvs_fdw.cache_size = '1MB'; SET kvs_fdw.pending_memory = '4MB'; SET jit = off; SELECT pg_backend_pid();"
BPID=$(grep -E '^[0-9]+$' "$OUT" | head -1)
[ -r "/proc/$BPID/status" ] || bail "cannot read /proc/$BPID/status"
anon_kb() {
    local k v rest
    while read -r k v rest; do [ "$k" = RssAnon: ] && { echo "$v"; return; }; done <"/proc/$BPID/status"
}

# measure NAME SQL: run SQL while sampling; check peak - baseline.
measure() {
    local name=$1 sql=$2 base peak
    base=$(anon_kb)
    ( while :; do anon_kb; sleep 0.01; done ) >"$WORK/samples" 2>/dev/null &
    SAMPLER=$!
    run "$sql" || nok "$name: finished"
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=""
    peak=$(sort -n "$WORK/samples" | tail -1)
    [ -n "$peak" ] || peak=$base
    local grow=$(( (peak - base) / 1024 ))
    if [ "$grow" -lt "$LIMIT_MB" ]; then ok "$name: backend memory grew $grow MB (< $LIMIT_MB)"; else
        nok "$name: backend memory grew $grow MB (limit $LIMIT_MB)"; fi
    echo "baseline $((base / 1024)) MB, peak $((peak / 1024)) MB over $(wc -l <"$WORK/samples") samples" | diag
}

# Warm up: the code paths, catalog caches and the 1 MB kvs cache.
run "INSERT INTO memt SELECT g, rpad(g::text, $VLEN, 'w') FROM generate_series(1, 1000) g;
     SELECT count(*), sum(length(val)) FROM memt; SELECT count(*) FROM kvs_fdw_check('memt');"
HALF=$((ROWS / 2))
measure "INSERT ... SELECT of $((HALF - 1000)) rows" \
    "INSERT INTO memt SELECT g, rpad(g::text, $VLEN, 'i') FROM generate_series(1001, $HALF) g;"
measure "COPY FROM PROGRAM of $((ROWS - HALF)) rows" \
    "COPY memt FROM PROGRAM 'seq $((HALF + 1)) $ROWS | awk ''{ printf \"%d\\t%0${VLEN}d\\n\", \$1, \$1 }''';"
measure "full scan, count and sum of value lengths" "SELECT 'scan', count(*), sum(length(val)) FROM memt;"
measure "full scan with a local filter on every row" "SELECT count(*) FROM memt WHERE val LIKE '%no such value%';"
measure "kvs_fdw_check over the whole file" "SELECT count(*) FROM kvs_fdw_check('memt');"
measure "key lookups joined from $((ROWS / 4)) outer rows" \
    "SELECT 'join', count(*) FROM generate_series(1, $ROWS, 4) g JOIN memt ON memt.id = g;"

# kvs_fdw.cache_size is one budget for all the files a backend has open: a
# scan of a table with 64 kvs partitions, loaded by another session, stays
# within it (each partition's file holds more than the whole 1 MB budget;
# when every file had a pool of the full size this grew by 64 MB).
PROWS=$((64 * 6000))
pgc_psql -c "CREATE TABLE memp (id bigint, val text) PARTITION BY HASH (id);
             DO \$\$ BEGIN FOR i IN 0..63 LOOP
               EXECUTE format('CREATE FOREIGN TABLE memp_%1\$s PARTITION OF memp
                               FOR VALUES WITH (MODULUS 64, REMAINDER %1\$s) SERVER kvs', i);
             END LOOP; END \$\$;
             SET kvs_fdw.cache_size = '1MB';
             INSERT INTO memp SELECT g, rpad(g::text, $VLEN, 'p') FROM generate_series(1, $PROWS) g;" ||
    nok "load 64 kvs partitions"
measure "full scan of 64 kvs partitions, each file larger than the budget" \
    "SELECT 'parts', count(*), sum(length(val)) FROM memp;"

# The statements above must have done their work, not failed quickly.
errs=$(grep -E '^(ERROR|FATAL)' "$OUT" || true)
if [ -z "$errs" ]; then ok "no statement failed"; else nok "no statement failed"; echo "$errs" | diag; fi
want="scan|$ROWS|$((ROWS * VLEN))"
got=$(grep '^scan|' "$OUT")
if [ "$got" = "$want" ]; then ok "the scan saw $ROWS rows and $((ROWS * VLEN)) value bytes"; else
    nok "the scan saw $ROWS rows and $((ROWS * VLEN)) value bytes"; echo "got: '$got'" | diag; fi
want="parts|$PROWS|$((PROWS * VLEN))"
got=$(grep '^parts|' "$OUT")
if [ "$got" = "$want" ]; then ok "the partition scan saw $PROWS rows"; else
    nok "the partition scan saw $PROWS rows"; echo "got: '$got'" | diag; fi
want="join|$(( (ROWS + 3) / 4 ))"
got=$(grep '^join|' "$OUT")
if [ "$got" = "$want" ]; then ok "the join found $(( (ROWS + 3) / 4 )) rows by key"; else
    nok "the join found $(( (ROWS + 3) / 4 )) rows by key"; echo "got: '$got'" | diag; fi

tap_end
