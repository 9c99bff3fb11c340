#!/bin/bash
# test/fdw/compact.sh - kvs_fdw_compact on a throwaway PostgreSQL cluster (TAP).
#
# What pg_regress cannot show: other sessions that had the table open (their
# backends hold the old file open) before a compaction ran.
#   1. sessions A, B and C read a large, mostly deleted table (A and B also
#      write it), C leaves a cursor open half-way; then the table is
#      compacted while B's writes wait for the file's lock; afterwards every
#      session sees the compacted file (a new inode at the same path, much
#      smaller), B's writes are all there and seen by A and C, the writes of
#      A and B after the compaction land in the new file, C's cursor returns
#      each row present throughout exactly once, kvs_fdw_check is clean;
#   2. the rows survive a clean restart and an immediate (crash) shutdown;
#   3. a leftover temporary file (a crash's) is replaced by the next
#      compaction and none is left; the server never crashed.
#
# Assumes the extension is built and installed (test/run does that first).
# Root or a normal user.  Environment:
#   KVS_TEST_PORT3   port of the throwaway cluster (default 55438)
#   KVS_KEEP=1       keep the temp dir at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_TEST_PORT3:-55438}

ct_start compact "$PORT"
echo "# kvs_fdw compaction test: port $PORT, work dir $WORK"
ct_extension

# ---- 1. sessions across a compaction -----------------------------------------
N=300000
# (each statement commits on its own: in one query string they would be one
# transaction, and the file would only ever get the rows that stay)
q "CREATE FOREIGN TABLE big (id bigint, val text) SERVER kvs;" &&
q "INSERT INTO big SELECT g, rpad(g::text, 80, md5(g::text)) FROM generate_series(1, $N) g;" &&
q "INSERT INTO big VALUES (0, repeat('large value ', 20000));" &&
q "DELETE FROM big WHERE id % 5 <> 3 AND id <> 0;" || bail "cannot load big"
FILE=$(q "SELECT file FROM kvs_fdw_stats('big')")
size0=$(q "SELECT file_bytes FROM kvs_fdw_stats('big')")
ino0=$(stat -c %i "$FILE")
# every row present throughout (none of the sessions' writes touches id < 1000000)
q "CREATE TABLE big_ref AS SELECT * FROM big" || bail "cannot copy big"
fp() { q "SELECT count(*) || ' ' || md5(string_agg(id || ':' || val, ',' ORDER BY id)) FROM $1 WHERE id < 1000000"; }
want=$(fp big_ref)
is "$(fp big)" "$want" "big: $(q "SELECT count(*) FROM big") rows after deleting 80% of $N"

for s in A B C; do sess_open $s; done
for s in A B C; do
    is "$(sess_run $s "SELECT count(*) FROM big; SELECT val FROM big WHERE id = 13;" | tr '\n' ' ')" \
        "$(q "SELECT count(*) FROM big") $(q "SELECT val FROM big WHERE id = 13") " \
        "session $s reads the table (its backend opens the old file)"
done
sess_run A "INSERT INTO big VALUES (2000000, 'A before');" >/dev/null
sess_run B "INSERT INTO big VALUES (2000001, 'B before');" >/dev/null
# C's cursor is half-way through the scan when the file is replaced
sess_run C "BEGIN; DECLARE c CURSOR FOR SELECT id FROM big WHERE id < 1000000; FETCH 10000 FROM c;" |
    grep -E '^[0-9]+$' >"$WORK/cursor.ids"

# The compaction runs in the main session; 0.1 s later B starts writing: its
# INSERT waits for the file's lock until the new file is in place (if the
# compaction was quicker, B simply writes after it: the check is skipped).
t0=$(date +%s.%N)
q "SELECT clock_timestamp(), bytes_before, bytes_after FROM kvs_fdw_compact('big')" >"$WORK/compact.out" 2>&1 &
cpid=$!
sleep 0.1
b_out=$(sess_run B "SELECT clock_timestamp();
                    INSERT INTO big SELECT g, 'B during' FROM generate_series(3000000, 3004999) g;
                    UPDATE big SET val = 'B updated' WHERE id = 2000000;
                    SELECT clock_timestamp();")
wait $cpid
rc=$?
IFS='|' read -r c_end bytes_before bytes_after <"$WORK/compact.out"
is "$rc" "0" "kvs_fdw_compact('big') ran while the sessions had the table open"
[ "$rc" = 0 ] || diag <"$WORK/compact.out"
b_start=$(echo "$b_out" | grep -E '^[0-9]{4}-' | head -1)
echo "compaction: $bytes_before -> $bytes_after bytes in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s" | diag
if [ -n "$b_start" ] && [ "$(q "SELECT '$b_start'::timestamptz < '$c_end'::timestamptz")" = t ]; then
    ok "B's writes started before the compaction ended (they waited for the file's lock)"
else
    ok "B's writes started before the compaction ended # SKIP the compaction ended first ($b_start, $c_end)"
fi
is "$(echo "$b_out" | grep -cE '^ERROR')" "0" "B's writes raised no error"
like "$bytes_after" '^[0-9]+$' "kvs_fdw_compact returned the new size"
if [ "$bytes_after" -gt 0 ] && [ "$((bytes_after * 4))" -lt "$size0" ]; then
    ok "the file shrank to less than a quarter ($size0 -> $bytes_after bytes)"
else
    nok "the file shrank to less than a quarter ($size0 -> $bytes_after bytes)"
fi
ino1=$(stat -c %i "$FILE")
if [ "$ino1" != "$ino0" ]; then ok "a new file is at the table's path (inode $ino0 -> $ino1)"; else
    nok "a new file is at the table's path (inode $ino0 -> $ino1)"; fi

# every session now works on the new file
for s in A B C; do
    is "$(sess_run $s "SELECT count(*) FILTER (WHERE val = 'B during'), max(val) FILTER (WHERE id = 2000000),
                              max(val) FILTER (WHERE id = 2000001) FROM big;")" \
        "5000|B updated|B before" "session $s sees B's writes from during the compaction"
done
sess_run A "INSERT INTO big SELECT g, 'A after' FROM generate_series(4000000, 4002999) g;
            DELETE FROM big WHERE id = 2000001;" >/dev/null
is "$(sess_run B "SELECT count(*) FROM big WHERE val = 'A after'; SELECT count(*) FROM big WHERE id = 2000001;" | tr '\n' ' ')" \
    "3000 0 " "B sees A's writes after the compaction"
sess_run B "UPDATE big SET val = 'B after' WHERE id = 4000000;" >/dev/null
is "$(sess_run A "SELECT val FROM big WHERE id = 4000000;")" "B after" "A sees B's update after the compaction"
is "$(q "SELECT count(*) FROM big WHERE val IN ('B during', 'A after', 'B after')")" "8000" \
    "a new connection sees every write of A and B"
q "SELECT 'stats after: ' || file_bytes || ' bytes, ' || pages || ' pages, ' || buckets || ' buckets, '
          || records || ' records, ' || free_pages || ' free' FROM kvs_fdw_stats('big')" | diag
# C's cursor continues in the new file
sess_run C "FETCH ALL FROM c; COMMIT;" | grep -E '^[0-9]+$' >>"$WORK/cursor.ids"
nref=$(q "SELECT count(*) FROM big_ref")
is "$(sort -n "$WORK/cursor.ids" | uniq | wc -l) $(wc -l <"$WORK/cursor.ids")" "$nref $nref" \
    "C's cursor, open across the compaction, returned each of the $nref rows exactly once"
is "$(fp big)" "$want" "every row present before the compaction is there, unchanged"
is "$(q "SELECT count(*) FROM kvs_fdw_check('big')" 2>&1)" "0" "kvs_fdw_check clean after the compaction"
errs=$(cat "$WORK"/s?.out | grep -E '^(ERROR|FATAL|PANIC)' || true)
is "$errs" "" "no errors in the sessions"
for s in A B C; do sess_close $s; done
wait 2>/dev/null
total=$(q "SELECT count(*) || ' ' || sum(id) FROM big")

# ---- 2. restarts ----------------------------------------------------------------
pgc_restart || bail "restart failed"
is "$(q "SELECT count(*) || ' ' || sum(id) FROM big")" "$total" "the compacted table survives a clean restart"
q "SELECT records FROM kvs_fdw_compact('big')" >/dev/null
pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -l "$WORK/server.log" -w -m immediate restart >/dev/null 2>&1 ||
    bail "restart after immediate stop failed"
LOG_MARK=$(wc -l <"$WORK/server.log")
is "$(q "SELECT count(*) || ' ' || sum(id) FROM big")" "$total" \
    "a compaction just before an immediate (crash) shutdown: every row there"
is "$(q "SELECT count(*) FROM kvs_fdw_check('big')" 2>&1)" "0" "kvs_fdw_check clean after the restarts"

# ---- 3. a crash's leftover -----------------------------------------------------
echo "half-written by a crashed compaction" | as_pg tee "$FILE.compact" >/dev/null
like "$(q "SELECT records FROM kvs_fdw_compact('big')" 2>&1)" '^[0-9]+$' "compaction over a leftover temporary file"
is "$(ls "$(dirname "$FILE")" | grep -c '\.compact')" "0" "no temporary file left in the kvs_fdw directory"
is "$(q "SELECT count(*) || ' ' || sum(id) FROM big")" "$total" "every row there after it"

finish
