#!/bin/bash
# test/fdw/cluster.sh - kvs_fdw on a throwaway PostgreSQL cluster (TAP output).
#
# What pg_regress cannot show, because it needs a server we may restart, many
# concurrent clients, or a file we damage behind the server's back:
#   1. rows survive a clean restart and an immediate (crash) shutdown;
#   2. several long-lived sessions read and write one table, and each sees
#      the others' writes on its next statement (the engine's change counter),
#      also through a prepared statement; a cursor left open while another
#      session splits buckets returns every row exactly once;
#   3. pgbench clients insert (ON CONFLICT DO NOTHING), update, delete, move
#      keys and read overlapping keys of one kvs table at once, applying the
#      same changes to a heap reference table; afterwards the two agree and
#      kvs_fdw_check() is clean, and no pgbench transaction failed; hot-key
#      counters incremented at once add up exactly (no lost update); rows
#      deleted while others update them never come back (no resurrection);
#      then six bulk loaders (COPY, INSERT ... SELECT) fill one table at once;
#   4. a damaged file (a page overwritten or zeroed, the header overwritten,
#      the file truncated) gives XX001 naming the page, is not written to by
#      reads, and the server stays up; a foreign file (a copy of /etc/passwd)
#      gives a clear error and is not written to either.
#
# Assumes the extension is built and installed (test/run does that first).
# Runs as root (the cluster then runs as the "postgres" OS user, see
# test/lib/pgcluster.sh) or as a normal user.  Environment:
#   KVS_TEST_PORT      port of the throwaway cluster (default 55433)
#   KVS_PGBENCH_SECS   seconds per pgbench phase (default 8)
#   KVS_KEEP=1         keep the temp dir (server log, pgbench output) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_TEST_PORT:-55433}
SECS=${KVS_PGBENCH_SECS:-8}

ct_start cluster "$PORT" "max_connections=40"
echo "# kvs_fdw cluster test: port $PORT, work dir $WORK"
FILES=$WORK/files
as_pg mkdir -p "$FILES"

# ---- 0. extension -------------------------------------------------------------
ct_extension
q "CREATE FUNCTION kvs_assert(okay boolean, msg text) RETURNS int LANGUAGE plpgsql AS
   \$\$BEGIN IF okay IS NOT TRUE THEN RAISE EXCEPTION 'kvs_assert: %', msg; END IF; RETURN 1; END\$\$;" ||
    bail "cannot create helper function"

# ---- 1. restart ---------------------------------------------------------------
# A fingerprint over all rows (count, and an md5 of every row in key order)
# computed from the kvs table and from the generating expression.
fp() { q "SELECT count(*) || ' ' || md5(string_agg(id || ':' || coalesce(val, 'NULL') || ':' || coalesce(n::text, 'NULL'), ',' ORDER BY id)) FROM $1"; }
GEN="(SELECT g AS id, CASE WHEN g % 10 = 0 THEN NULL ELSE rpad(g::text, 100, md5(g::text)) END AS val,
             CASE WHEN g % 7 = 0 THEN NULL ELSE g * 3 END AS n FROM generate_series(1, 20000) g) s"
q "CREATE FOREIGN TABLE persist (id bigint, val text, n integer) SERVER kvs;
   INSERT INTO persist SELECT * FROM $GEN;" || nok "load 20000 rows into persist"
want=$(fp "$GEN")
is "$(fp persist)" "$want" "20000 rows (with NULLs) read back as generated"
pgc_restart || bail "restart failed"
is "$(fp persist)" "$want" "rows survive a clean restart"
is "$(q "SELECT val FROM persist WHERE id = 12345")" "$(q "SELECT rpad('12345', 100, md5('12345'))")" \
    "key lookup after restart"
q "INSERT INTO persist VALUES (20001, 'after restart', 1); DELETE FROM persist WHERE id <= 100;
   UPDATE persist SET n = -1 WHERE id = 500;" || nok "writes after restart"
want=$(q "SELECT count(*) || ' ' || sum(id) || ' ' || sum(coalesce(n, 0)) FROM persist")
# Immediate shutdown: the postmaster kills backends without a checkpoint.
# Completed statements have written their pages (the engine writes back at the
# end of every write section), so they must still be there.
# (pg_ctl restart reuses the original options: port, socket dir.)
pgc_as "$PG_BINDIR/pg_ctl" -D "$PGC_DATA" -l "$WORK/server.log" -w -m immediate restart >/dev/null 2>&1 ||
    bail "restart after immediate stop failed"
# The crash check at the end reads the log from here on.
LOG_MARK=$(wc -l <"$WORK/server.log")
is "$(q "SELECT count(*) || ' ' || sum(id) || ' ' || sum(coalesce(n, 0)) FROM persist")" "$want" \
    "completed writes survive an immediate (crash) shutdown"
is "$(q "SELECT count(*) FROM kvs_fdw_check('persist')" 2>&1)" "0" "kvs_fdw_check clean after restarts"

# ---- 2. several sessions ------------------------------------------------------
# (sess_open / sess_run / sess_close: test/lib/clustertest.sh)
q "CREATE FOREIGN TABLE shared (id bigint, val text) SERVER kvs;
   INSERT INTO shared SELECT g, 'v' || g FROM generate_series(1, 100) g;" || nok "create shared"
for s in A B C; do sess_open $s; done
# Warm each session's cache with a scan and a lookup.
for s in A B C; do
    is "$(sess_run $s "SELECT count(*) FROM shared; SELECT val FROM shared WHERE id = 7;" | tr '\n' ' ')" \
        "100 v7 " "session $s reads the table"
done
sess_run B "INSERT INTO shared VALUES (1001, 'from B');" >/dev/null
is "$(sess_run A "SELECT val FROM shared WHERE id = 1001;")" "from B" "A's lookup sees B's insert"
# A prepared statement, run often enough to switch to its generic plan.
is "$(sess_run A "PREPARE get(bigint) AS SELECT val FROM shared WHERE id = \$1;
                  EXECUTE get(1001); EXECUTE get(1001); EXECUTE get(1001);
                  EXECUTE get(1001); EXECUTE get(1001); EXECUTE get(1001);" | grep -v PREPARE | sort -u)" "from B" \
    "A's prepared lookup (generic plan) sees B's insert"
is "$(sess_run C "SELECT count(*) FROM shared;")" "101" "C's scan sees B's insert"
sess_run C "UPDATE shared SET val = 'from C' WHERE id = 1001;" >/dev/null
is "$(sess_run A "SELECT val FROM shared WHERE id = 1001;")" "from C" "A sees C's update"
is "$(sess_run A "EXECUTE get(1001);")" "from C" "A's prepared lookup sees C's update"
is "$(sess_run B "SELECT val FROM shared WHERE id = 1001;")" "from C" "B sees C's update of its row"
sess_run A "DELETE FROM shared WHERE id = 1001;" >/dev/null
is "$(sess_run B "SELECT count(*) FROM shared WHERE id = 1001;")" "0" "B sees A's delete (lookup)"
is "$(sess_run C "SELECT count(*) FROM shared;")" "100" "C sees A's delete (scan)"
# Enough rows to split many buckets while the others hold cached pages.
sess_run A "INSERT INTO shared SELECT g, 'w' || g FROM generate_series(2001, 12000) g;" >/dev/null
is "$(sess_run B "SELECT count(*) FROM shared;")" "10100" "B's scan sees A's 10000 inserts (bucket splits)"
is "$(sess_run C "SELECT val FROM shared WHERE id = 11999;")" "w11999" "C's lookup finds a key inserted by A"
sess_run B "UPDATE shared SET val = val || '!' WHERE id % 2 = 0;" >/dev/null
is "$(sess_run A "SELECT count(*) FROM shared WHERE val LIKE '%!';")" "5050" "A sees B's scan-driven update"
is "$(sess_run C "SELECT val FROM shared WHERE id = 2002;")" "w2002!" "C's lookup sees B's update"
sess_run C "UPDATE shared SET id = id + 100000 WHERE id <= 100;" >/dev/null
is "$(sess_run A "SELECT count(*) FROM shared WHERE id > 100000; SELECT count(*) FROM shared WHERE id <= 100;" | tr '\n' ' ')" \
    "100 0 " "A sees C's key update"
# A scan left open in a cursor holds no lock between rows: another session
# inserts enough rows to split most buckets and deletes some, and the cursor
# still returns every row present for its whole life exactly once.
q "CREATE FOREIGN TABLE scanme (id bigint, val text) SERVER kvs;
   INSERT INTO scanme SELECT g, 'o' || g FROM generate_series(1, 10000) g;" || nok "create scanme"
sess_run A "BEGIN; DECLARE c CURSOR FOR SELECT id FROM scanme; FETCH 2000 FROM c;" | grep -E '^[0-9]+$' >"$WORK/cursor.ids"
is "$(sess_run B "INSERT INTO scanme SELECT g, 'n' || g FROM generate_series(100001, 130000) g;
                  DELETE FROM scanme WHERE id > 9000 AND id <= 10000; SELECT count(*) FROM scanme;" | tail -1)" \
    "39000" "B writes 30000 rows and deletes 1000 while A's cursor is open"
sess_run A "FETCH ALL FROM c; COMMIT;" | grep -E '^[0-9]+$' >>"$WORK/cursor.ids"
is "$(awk '$1 <= 9000' "$WORK/cursor.ids" | sort -u | wc -l) $(awk '$1 <= 9000' "$WORK/cursor.ids" | wc -l)" \
    "9000 9000" "A's cursor saw each of the 9000 rows present throughout exactly once"
is "$(sort "$WORK/cursor.ids" | uniq -d | head -3 | tr '\n' ' ')" "" "A's cursor returned no row twice"
q "SELECT 'cursor returned ' || $(wc -l <"$WORK/cursor.ids") || ' rows (splits during the scan: '
          || (SELECT buckets FROM kvs_fdw_stats('scanme')) || ' buckets now)'" | diag
is "$(q "SELECT count(*) FROM kvs_fdw_check('scanme')" 2>&1)" "0" "kvs_fdw_check clean after the cursor test"
sess_run C "TRUNCATE shared;" >/dev/null
is "$(sess_run A "SELECT count(*) FROM shared;")" "0" "A sees C's TRUNCATE"
sess_run B "INSERT INTO shared VALUES (1, 'after truncate');" >/dev/null
is "$(sess_run C "SELECT val FROM shared WHERE id = 1;")" "after truncate" "C sees B's insert after TRUNCATE"
errs=$(cat "$WORK"/s?.out | grep -E '^(ERROR|FATAL|PANIC)' || true)
is "$errs" "" "no errors in the sessions"
for s in A B C; do sess_close $s; done
wait 2>/dev/null
is "$(q "SELECT count(*) FROM kvs_fdw_check('shared')" 2>&1)" "0" "kvs_fdw_check clean after the sessions"

# ---- 3. pgbench: concurrent writers and readers against a heap reference ------
# Phase A, unserialized: clients insert (ON CONFLICT DO NOTHING), update and
# read random keys of 1..NKEYS at the same moment.  Every write is a
# deterministic function of the key and the row's state, so whatever the
# interleaving: the set of keys is the set ever inserted (identical in both
# tables), and every value is one of two forms of its key (short, or long:
# up to ~400 bytes, and ~14 KB for every 97th key, so value chains move too).
# Readers check that invariant on every row they see, by key and by full scan.
#
# Phase B, serialized per key: each transaction takes an advisory lock on its
# key slot first, so kvs and heap see the same operations on that key in the
# same order; operations are non-idempotent (counter increments, value growth,
# deletes, key moves), and the final contents must be identical, row for row.
# Readers compare kvs and heap for their key while holding the lock.
q "CREATE FUNCTION short_v(k bigint) RETURNS text IMMUTABLE LANGUAGE sql AS \$\$ SELECT 'a' || k \$\$;
   CREATE FUNCTION long_v(k bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
     \$\$ SELECT repeat('b' || k || ',', CASE WHEN k % 97 = 0 THEN 2000 ELSE 1 + (k % 50)::int END) \$\$;
   CREATE FUNCTION v_ok(k bigint, v text) RETURNS boolean IMMUTABLE LANGUAGE sql AS
     \$\$ SELECT v = short_v(k) OR v = long_v(k) \$\$;
   CREATE FOREIGN TABLE ca (k bigint, v text) SERVER kvs;
   CREATE TABLE ca_ref (k bigint PRIMARY KEY, v text);
   CREATE FOREIGN TABLE cb (k bigint, v text, n integer) SERVER kvs;
   CREATE TABLE cb_ref (k bigint PRIMARY KEY, v text, n integer);" || bail "cannot create pgbench tables"

B=$WORK/bench
mkdir -p "$B"
cat >"$B/a_ins.sql" <<'EOF'
\set k random(1, :nkeys)
INSERT INTO ca VALUES (:k, short_v(:k)) ON CONFLICT DO NOTHING;
INSERT INTO ca_ref VALUES (:k, short_v(:k)) ON CONFLICT DO NOTHING;
EOF
cat >"$B/a_upd.sql" <<'EOF'
\set k random(1, :nkeys)
UPDATE ca SET v = CASE WHEN v = short_v(k) THEN long_v(k) ELSE short_v(k) END WHERE k = :k;
UPDATE ca_ref SET v = CASE WHEN v = short_v(k) THEN long_v(k) ELSE short_v(k) END WHERE k = :k;
EOF
cat >"$B/a_get.sql" <<'EOF'
\set k random(1, :nkeys)
SELECT kvs_assert(count(*) <= 1 AND coalesce(bool_and(v_ok(k, v)), true), 'bad row for key ' || :k) FROM ca WHERE k = :k;
SELECT kvs_assert(count(*) <= 3 AND coalesce(bool_and(v_ok(k, v)), true), 'bad rows for keys ' || :k || '..') FROM ca WHERE k IN (:k, :k + 1, :k + 2);
EOF
cat >"$B/a_scan.sql" <<'EOF'
SELECT kvs_assert(count(*) = count(DISTINCT k) AND coalesce(bool_and(v_ok(k, v)), true), 'scan saw a duplicate or a bad value') FROM ca;
EOF
# Phase B: slot s lives at key s, or at key s + :nkeys after a move.
cat >"$B/b_ins.sql" <<'EOF'
\set s random(1, :nkeys)
BEGIN;
SELECT pg_advisory_xact_lock(:s);
INSERT INTO cb VALUES (:s, 'x' || :s, 0) ON CONFLICT DO NOTHING;
INSERT INTO cb_ref VALUES (:s, 'x' || :s, 0) ON CONFLICT DO NOTHING;
COMMIT;
EOF
cat >"$B/b_inc.sql" <<'EOF'
\set s random(1, :nkeys)
BEGIN;
SELECT pg_advisory_xact_lock(:s);
UPDATE cb SET n = n + 1, v = CASE WHEN length(v) > 3000 THEN 'x' || k ELSE v || repeat('.', 50) END WHERE k IN (:s, :s + :nkeys);
UPDATE cb_ref SET n = n + 1, v = CASE WHEN length(v) > 3000 THEN 'x' || k ELSE v || repeat('.', 50) END WHERE k IN (:s, :s + :nkeys);
COMMIT;
EOF
cat >"$B/b_del.sql" <<'EOF'
\set s random(1, :nkeys)
BEGIN;
SELECT pg_advisory_xact_lock(:s);
DELETE FROM cb WHERE k = :s;
DELETE FROM cb_ref WHERE k = :s;
COMMIT;
EOF
cat >"$B/b_mov.sql" <<'EOF'
\set s random(1, :nkeys)
\set up random(0, 1)
BEGIN;
SELECT pg_advisory_xact_lock(:s);
\if :up
UPDATE cb SET k = k + :nkeys WHERE k = :s AND NOT EXISTS (SELECT 1 FROM cb WHERE k = :s + :nkeys);
UPDATE cb_ref SET k = k + :nkeys WHERE k = :s AND NOT EXISTS (SELECT 1 FROM cb_ref WHERE k = :s + :nkeys);
\else
UPDATE cb SET k = k - :nkeys WHERE k = :s + :nkeys AND NOT EXISTS (SELECT 1 FROM cb WHERE k = :s);
UPDATE cb_ref SET k = k - :nkeys WHERE k = :s + :nkeys AND NOT EXISTS (SELECT 1 FROM cb_ref WHERE k = :s);
\endif
COMMIT;
EOF
cat >"$B/b_get.sql" <<'EOF'
\set s random(1, :nkeys)
BEGIN;
SELECT pg_advisory_xact_lock(:s);
SELECT kvs_assert((SELECT string_agg(k || '/' || v || '/' || n, ',' ORDER BY k) FROM cb WHERE k IN (:s, :s + :nkeys))
         IS NOT DISTINCT FROM (SELECT string_agg(k || '/' || v || '/' || n, ',' ORDER BY k) FROM cb_ref WHERE k IN (:s, :s + :nkeys)),
       'kvs and heap differ at slot ' || :s);
COMMIT;
EOF

# run_bench NAME MODE NKEYS SCRIPT@WEIGHT...: pgbench with 4 clients, 2
# threads, SECS seconds.  Checks exit status and failed transactions; prints
# per-script transaction counts as TAP comments.
run_bench() {
    local name=$1 mode=$2 nkeys=$3 args="" s
    shift 3
    for s in "$@"; do args="$args -f $B/$s"; done
    "$PG_BINDIR/pgbench" -n -c 4 -j 2 -T "$SECS" -M "$mode" -D nkeys="$nkeys" $args \
        >"$B/$name.out" 2>"$B/$name.err"
    local rc=$?
    if [ $rc = 0 ]; then ok "pgbench $name: exit 0 (no client aborted)"; else
        nok "pgbench $name: exit $rc"; grep -v '^pgbench: client .* receiving' "$B/$name.err" | head -20 | diag
    fi
    like "$(grep 'number of failed transactions' "$B/$name.out")" \
        'number of failed transactions: 0 ' "pgbench $name: 0 failed transactions"
    grep -E 'number of transactions actually processed|^SQL script|transactions \(' "$B/$name.out" |
        sed 's/^ *- *//' | diag
}

echo "# pgbench phase A: 4 clients, ${SECS}s, insert/update/read keys 1..3000, prepared"
run_bench phaseA prepared 3000 a_ins.sql@30 a_upd.sql@30 a_get.sql@38 a_scan.sql@2
is "$(q "SELECT count(*) FROM ca")" "$(q "SELECT count(*) FROM ca_ref")" "phase A: kvs row count = heap row count"
like "$(q "SELECT count(*) FROM ca")" '^[1-9][0-9]{2,}$' "phase A: at least 100 rows were inserted"
is "$(q "SELECT count(*) FROM (SELECT k FROM ca EXCEPT SELECT k FROM ca_ref) a")+$(q "SELECT count(*) FROM (SELECT k FROM ca_ref EXCEPT SELECT k FROM ca) a")" \
    "0+0" "phase A: kvs and heap hold the same set of keys"
is "$(q "SELECT count(*) FROM ca WHERE NOT v_ok(k, v)")" "0" "phase A: every kvs value is one of its key's two forms"
like "$(q "SELECT count(*) FROM ca WHERE v = long_v(k)")" '^[1-9]' "phase A: some values are in their long form"
is "$(q "SELECT count(*) FROM ca_ref r JOIN ca c ON c.k = r.k")" "$(q "SELECT count(*) FROM ca_ref")" \
    "phase A: a join heap -> kvs on the key finds every row"
is "$(q "SELECT count(*) FROM kvs_fdw_check('ca')" 2>&1)" "0" "phase A: kvs_fdw_check clean"

echo "# pgbench phase B: 4 clients, ${SECS}s, per-key serialized insert/update/delete/move/read, slots 1..500, simple,"
echo "# kvs_fdw.cache_size = 32kB (8 frames: constant eviction)"
PGOPTIONS="${PGOPTIONS:-} -c kvs_fdw.cache_size=32kB" run_bench phaseB simple 500 b_ins.sql@25 b_inc.sql@25 b_del.sql@10 b_mov.sql@15 b_get.sql@25
is "$(q "SELECT count(*) FROM cb")" "$(q "SELECT count(*) FROM cb_ref")" "phase B: kvs row count = heap row count"
is "$(q "SELECT count(*) FROM ((SELECT * FROM cb EXCEPT ALL SELECT * FROM cb_ref) UNION ALL
                              (SELECT * FROM cb_ref EXCEPT ALL SELECT * FROM cb)) d")" "0" \
    "phase B: kvs and heap identical row for row"
like "$(q "SELECT count(*) FILTER (WHERE k > 500) || ' ' || sum(n) FROM cb")" '^[1-9][0-9]* [1-9][0-9]*$' \
    "phase B: moved keys and increments happened"
q "SELECT 'kvs rows ' || count(*) || ', moved ' || count(*) FILTER (WHERE k > 500) || ', increments ' || sum(n) FROM cb" | diag
is "$(q "SELECT count(*) FROM kvs_fdw_check('cb')" 2>&1)" "0" "phase B: kvs_fdw_check clean"

# Phase C, lost updates: clients increment counters of 50 hot keys at once,
# with no lock of their own: by key, by key with local quals, and through a
# full scan with a filter (the ordinary scan-then-update path, which may
# refuse with 40001 when the row changed under it).  Every transaction pgbench counts
# as done must show in the sum, and no failed one may.
q "CREATE FOREIGN TABLE cc (k bigint, n bigint, pad text) SERVER kvs;
   INSERT INTO cc SELECT g, 0, repeat('p', 50) FROM generate_series(1, 50) g;" || nok "create cc"
cat >"$B/c_key.sql" <<'EOF'
\set k random(1, 50)
UPDATE cc SET n = n + 1 WHERE k = :k;
EOF
cat >"$B/c_qual.sql" <<'EOF'
\set k random(1, 50)
UPDATE cc SET n = n + 1 WHERE k = :k AND n >= 0 AND pad LIKE 'p%';
EOF
cat >"$B/c_scan.sql" <<'EOF'
\set k random(1, 50)
UPDATE cc SET n = n + 1 WHERE k % 50 = :k % 50;
EOF
# -t, not -T: a fixed count per client, so no transaction is cut off at a
# deadline and the count is exact.
CTX=$((SECS * 500))
echo "# pgbench phase C: 4 clients x $CTX increments of 50 hot keys, prepared"
"$PG_BINDIR/pgbench" -n -c 4 -j 2 -t "$CTX" -M prepared -f "$B/c_key.sql" -f "$B/c_qual.sql" -f "$B/c_scan.sql" \
    >"$B/phaseC.out" 2>"$B/phaseC.err"
rc=$?
is "$rc" "0" "pgbench phaseC: exit 0"
[ $rc = 0 ] || head -20 "$B/phaseC.err" | diag
# The total "actually processed" counts the increments that succeeded (its
# per-script counts can be a few off); failed transactions (40001) are not in
# it and must not have changed anything.
done_all=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$B/phaseC.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$B/phaseC.out")
grep -E '^SQL script|^ - [0-9]+ transactions|^ - number of failed' "$B/phaseC.out" | diag
is "$(q "SELECT sum(n) FROM cc")" "${done_all:-none}" \
    "phase C: sum of counters = increments pgbench completed (no lost or phantom update)"
like "${done_all:-0} ${failed:-?}" '^[1-9][0-9]* [0-9]+$' "phase C: $done_all increments done, ${failed:-?} refused (40001)"
is "$(q "SELECT count(*) FROM kvs_fdw_check('cc')" 2>&1)" "0" "phase C: kvs_fdw_check clean"

# Phase D, no resurrection: every inserted row gets a new generation number
# from a sequence; inserts and deletes log the generations they added or
# removed in heap tables (same statement).  Updates by key and through a scan
# race the deletes; an update that wrote back a row deleted since it read it
# would bring a logged generation back.  At the end the table holds exactly
# the inserted generations minus the deleted ones.
q "CREATE SEQUENCE gen; CREATE TABLE deleted (g bigint); CREATE TABLE inserted (g bigint);
   CREATE FOREIGN TABLE cr (k bigint, g bigint, n bigint) SERVER kvs;" || nok "create cr"
cat >"$B/d_ins.sql" <<'EOF'
\set k random(1, 20)
WITH i AS (INSERT INTO cr VALUES (:k, nextval('gen'), 0) ON CONFLICT DO NOTHING RETURNING g) INSERT INTO inserted SELECT g FROM i;
EOF
cat >"$B/d_del.sql" <<'EOF'
\set k random(1, 20)
WITH d AS (DELETE FROM cr WHERE k = :k RETURNING g) INSERT INTO deleted SELECT g FROM d;
EOF
cat >"$B/d_upd.sql" <<'EOF'
\set k random(1, 20)
UPDATE cr SET n = n + 1 WHERE k = :k;
EOF
cat >"$B/d_scan.sql" <<'EOF'
\set k random(1, 20)
UPDATE cr SET n = n + 1 WHERE k % 20 = :k % 20;
EOF
echo "# pgbench phase D: 4 clients x $((SECS * 250)) inserts/deletes/updates of 20 hot keys, prepared"
"$PG_BINDIR/pgbench" -n -c 4 -j 2 -t $((SECS * 250)) -M prepared \
    -f "$B/d_ins.sql" -f "$B/d_del.sql" -f "$B/d_upd.sql" -f "$B/d_scan.sql" >"$B/phaseD.out" 2>"$B/phaseD.err"
rc=$?
is "$rc" "0" "pgbench phaseD: exit 0"
[ $rc = 0 ] || head -20 "$B/phaseD.err" | diag
grep -E '^number of (transactions actually processed|failed)' "$B/phaseD.out" | diag
q "SELECT 'rows inserted ' || (SELECT count(*) FROM inserted) || ', deleted ' || (SELECT count(*) FROM deleted)
          || ', rows now ' || (SELECT count(*) FROM cr)" | diag
like "$(q "SELECT count(*) FROM deleted")" '^[1-9]' "phase D: deletes happened"
is "$(q "SELECT count(*) FROM cr JOIN deleted USING (g)")" "0" "phase D: no deleted row came back (no resurrection)"
is "$(q "SELECT count(*) FROM (SELECT g FROM deleted GROUP BY g HAVING count(*) > 1) x")" "0" \
    "phase D: no generation deleted twice"
is "$(q "SELECT count(*) FROM ((SELECT g FROM cr EXCEPT ALL (SELECT g FROM inserted EXCEPT ALL SELECT g FROM deleted))
                              UNION ALL ((SELECT g FROM inserted EXCEPT ALL SELECT g FROM deleted) EXCEPT ALL SELECT g FROM cr)) x")" \
    "0" "phase D: the table holds exactly the inserted minus the deleted rows"
is "$(q "SELECT count(*) FROM cr")" "$(q "SELECT count(DISTINCT k) FROM cr")" "phase D: one row per key"
is "$(q "SELECT count(*) FROM kvs_fdw_check('cr')" 2>&1)" "0" "phase D: kvs_fdw_check clean"

# ---- 3b. bulk loads at once --------------------------------------------------------
# Four COPY clients and two INSERT ... SELECT clients load disjoint key ranges
# of one table at the same time (the FDW's buffered-batch path, with bucket
# splits racing), while a reader counts the rows over and over: a row present
# when a scan starts is seen by it, so the counts never go down.
q "CREATE FOREIGN TABLE bulk (id bigint, val text) SERVER kvs;" || nok "create bulk"
pids=""
for c in 0 1 2 3; do
    seq $((c * 25000 + 1)) $(((c + 1) * 25000)) | awk '{ printf "%d\tcopy-%d-%s\n", $1, $1, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }' |
        pgc_psql -c "COPY bulk FROM STDIN" >"$WORK/copy$c.out" 2>&1 &
    pids="$pids $!"
done
for c in 4 5; do
    pgc_psql -c "INSERT INTO bulk SELECT g, 'insert-' || g FROM generate_series($((c * 25000 + 1)), $(((c + 1) * 25000))) g" \
        >"$WORK/copy$c.out" 2>&1 &
    pids="$pids $!"
done
( until [ -f "$WORK/loads.done" ]; do pgc_psql -At -c "SELECT count(*) FROM bulk"; done ) >"$WORK/counts" 2>&1 &
counter=$!
rc=0
for p in $pids; do wait "$p" || rc=1; done
touch "$WORK/loads.done"
wait "$counter"
is "$rc" "0" "6 concurrent bulk loaders (4 COPY, 2 INSERT ... SELECT) succeed"
[ $rc = 0 ] || cat "$WORK"/copy?.out | diag
like "$(awk 'BEGIN { m = 0; bad = 0 } !/^[0-9]+$/ { bad++ } /^[0-9]+$/ { if ($1 < m) bad++; m = $1 } END { print NR " " bad }' "$WORK/counts")" \
    '^[1-9][0-9]* 0$' "counts read during the loads never go down (and never error)"
echo "counts seen by $(wc -l <"$WORK/counts") scans during the loads: $(awk 'NR % 5 == 1' "$WORK/counts" | head -12 | tr '\n' ' ')..." | diag
is "$(q "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(id) FROM bulk")" "150000 150000 11250075000" \
    "all 150000 rows loaded once each"
is "$(q "SELECT count(*) FROM bulk WHERE val <> CASE WHEN id <= 100000 THEN 'copy-' || id || '-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' ELSE 'insert-' || id END")" \
    "0" "every loaded value is intact"
is "$(q "SELECT count(*) FROM kvs_fdw_check('bulk')" 2>&1)" "0" "kvs_fdw_check clean after the concurrent loads"

# ---- 4. damaged and foreign files ----------------------------------------------
DMG=$FILES/dmg.kvs
q "CREATE FOREIGN TABLE dmg (id bigint, val text) SERVER kvs OPTIONS (filename '$DMG');
   INSERT INTO dmg SELECT g, rpad(g::text, 100, 'x') FROM generate_series(1, 20000) g;" ||
    nok "create and load dmg"
is "$(q "SELECT count(*) FROM kvs_fdw_check('dmg')" 2>&1)" "0" "dmg: kvs_fdw_check clean before damage"
size=$(stat -c %s "$DMG" 2>/dev/null || echo 0)
pages=$((size / 4096))
like "$pages" '^[1-9][0-9]+$' "dmg: the file has pages ($pages)"
# chain_page FROM: the first bucket or overflow page at or after FROM (a scan
# reads every such page; a free page it would never read).
chain_page() {
    q "SELECT p FROM generate_series($1, $pages - 1) p
       WHERE (SELECT type FROM kvs_fdw_page('dmg', p) LIMIT 1) IN ('bucket', 'overflow') LIMIT 1"
}
page=$(chain_page $((pages / 2)))
[ -n "$page" ] || page=$((pages / 2))
as_pg cp "$DMG" "$FILES/dmg.good"
q "SELECT page, type, nslots, free_bytes, bucket FROM kvs_fdw_page('dmg', $page) LIMIT 1" 2>&1 | sed "s/^/damaging page (page|type|nslots|free_bytes|bucket): /" | diag
# 64 bytes of 'X' in the middle of the middle page (notrunc: keep the size).
head -c 64 /dev/zero | tr '\0' 'X' |
    as_pg dd of="$DMG" bs=1 seek=$((page * 4096 + 2000)) conv=notrunc status=none
sum_before=$(md5sum <"$DMG")
err=$(qerr "SELECT count(*) FROM dmg")
like "$err" '^XX001 ' "damaged file: full scan fails with XX001"
like "$err" "(page|block)[^0-9]*$page([^0-9]|\$)" "damaged file: the error names page $page"
err=$(qerr "SELECT * FROM kvs_fdw_check('dmg')")
case $err in
    XX001*) like "$err" "[^0-9]$page([^0-9]|\$)" "kvs_fdw_check on the damaged file raises XX001 naming the page" ;;
    *) like "$(q "SELECT * FROM kvs_fdw_check('dmg')" 2>&1)" "[^0-9]$page([^0-9]|\$)" \
           "kvs_fdw_check on the damaged file reports page $page" ;;
esac
is "$(md5sum <"$DMG")" "$sum_before" "damaged file: not one byte written by the failed reads"
# A DELETE of every row must reach the damaged page; rows deleted before it
# may be gone (no transactions yet), but the error must be the same.
like "$(qerr "DELETE FROM dmg")" '^XX001 ' "damaged file: DELETE of all rows fails with XX001"
is "$(q "SELECT 1")" "1" "server answers after the damaged-file errors"

# More kinds of damage, each on a fresh copy of the good file: a full scan
# gives XX001 (naming the page where one is given), and reads write nothing.
# damage_case NAME PAGE-REGEX CMD...   (CMD runs as the server's OS user)
damage_case() {
    local name=$1 re=$2 err sum
    shift 2
    as_pg cp "$FILES/dmg.good" "$DMG"
    as_pg "$@" || { nok "$name: could not damage the file"; return; }
    sum=$(md5sum <"$DMG")
    err=$(qerr "SELECT count(*) FROM dmg")
    like "$err" "^XX001 .*$re" "$name: XX001${re:+ naming the page}"
    err=$(qerr "SELECT * FROM dmg WHERE id = 777")
    like "$err" '^(XX001 |no error: (777\||$))' "$name: a key lookup errors or answers correctly"
    is "$(md5sum <"$DMG")" "$sum" "$name: the file is not written to"
}
zero_page=$(chain_page $((pages / 3)))
[ -n "$zero_page" ] || zero_page=$((pages / 3))
damage_case "header page overwritten" "[^0-9]0([^0-9]|\$)" \
    dd if=/dev/urandom of="$DMG" bs=1 seek=200 count=32 conv=notrunc status=none
damage_case "page $zero_page zero-filled" "[^0-9]$zero_page([^0-9]|\$)" \
    dd if=/dev/zero of="$DMG" bs=4096 seek=$zero_page count=1 conv=notrunc status=none
damage_case "truncated to half" "" truncate -s $((pages / 2 * 4096)) "$DMG"
damage_case "last page torn (size not a page multiple)" "" truncate -s $((size - 100)) "$DMG"

# A write statement that fails half-way must leave the file as it was: with
# an 8-frame cache, a 1000-row INSERT dirties far more pages than fit before
# it meets the damaged page.  Repairing that page must give back exactly the
# good file (nothing of the failed statement reached the disk).
as_pg cp "$FILES/dmg.good" "$DMG"
head -c 64 /dev/zero | tr '\0' 'X' |
    as_pg dd of="$DMG" bs=1 seek=$((page * 4096 + 2000)) conv=notrunc status=none
like "$(PGOPTIONS="-c kvs_fdw.cache_size=32kB" qerr "INSERT INTO dmg SELECT g, 'new' FROM generate_series(100001, 101000) g")" \
    "^XX001 .*[^0-9]$page([^0-9]|\$)" "1000-row INSERT meeting the damaged page fails with XX001"
as_pg dd if="$FILES/dmg.good" of="$DMG" bs=4096 skip="$page" seek="$page" count=1 conv=notrunc status=none
if cmp -s "$DMG" "$FILES/dmg.good"; then ok "the failed INSERT left the file untouched (byte-identical after repair)"; else
    nok "the failed INSERT left the file untouched (byte-identical after repair)"
    q "SELECT * FROM kvs_fdw_check('dmg')" 2>&1 | head -3 | diag
fi
as_pg cp "$FILES/dmg.good" "$DMG"
is "$(q "SELECT count(*) FROM dmg")" "20000" "the good copy reads again in full"
is "$(q "SELECT 1")" "1" "server answers after all damaged-file cases"

as_pg cp /etc/passwd "$FILES/passwd.kvs"
q "CREATE FOREIGN TABLE pw (id bigint, val text) SERVER kvs OPTIONS (filename '$FILES/passwd.kvs')" 2>&1 | diag
err=$(qerr "SELECT * FROM pw")
like "$err" '^XX001 .{10,}' "foreign file (/etc/passwd copy): XX001 with a message"
echo "$err" | diag
err=$(qerr "INSERT INTO pw VALUES (1, 'x')")
like "$err" '^[0-9A-Z]{5} ' "foreign file: INSERT fails ($err)"
if cmp -s /etc/passwd "$FILES/passwd.kvs"; then ok "foreign file: not modified"; else nok "foreign file: not modified"; fi

# Files that cannot be opened: the SQLSTATE says why (errcode_for_file_access).
as_pg touch "$FILES/noperm.kvs"
chmod 000 "$FILES/noperm.kvs"
q "CREATE FOREIGN TABLE noperm (id bigint, val text) SERVER kvs OPTIONS (filename '$FILES/noperm.kvs');
   CREATE FOREIGN TABLE nodir (id bigint, val text) SERVER kvs OPTIONS (filename '$FILES/no/such/dir/x.kvs');" 2>&1 | diag
if [ "$(pgc_as cat "$FILES/noperm.kvs" 2>/dev/null; echo $?)" != 0 ]; then
    like "$(qerr "SELECT * FROM noperm")" '^42501 ' "unreadable file: 42501"
else
    ok "unreadable file: 42501 # SKIP the server's OS user can read mode-000 files"
fi
like "$(qerr "INSERT INTO nodir VALUES (1, 'x')")" '^58P01 ' "file in a missing directory: 58P01"
q "DROP FOREIGN TABLE pw; DROP FOREIGN TABLE dmg;" 2>&1 | diag
if [ -f "$DMG" ] && [ -f "$FILES/passwd.kvs" ]; then ok "DROP keeps explicit filename files"; else
    nok "DROP keeps explicit filename files"; fi

# ---- 5. the server never crashed ------------------------------------------------
finish
