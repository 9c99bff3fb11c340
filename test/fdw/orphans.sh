#!/bin/bash
# test/fdw/orphans.sh - files removed by DROP EXTENSION / DROP DATABASE do not
# confuse the journal or the shared pool (TAP output).
#
# On a throwaway cluster in shared mode (kvs_fdw preloaded, a small pool):
# database x has kvs tables written in many commits (the journal names their
# files), database y a table that stays.  DROP EXTENSION kvs_fdw CASCADE in x
# removes x's files at commit (kvs_fdw_drop_start); then the server is stopped
# in immediate mode (a crash: no shutdown, the journal is recovered from at
# the next open) and started again: y's table reads back whole and clean, x
# gets new tables that work.  Then enough writes in y to pass the journal's
# checkpoint threshold (64 MiB): the checkpoint, which fsyncs every file
# named since the last one, skips the removed files and completes.  Last,
# DROP DATABASE y removes y's files (the ProcessUtility hook), and
# kvs_fdw_orphans() from another database lists nothing of x or y.
#
# Assumes the extension is built and installed (test/run does that first).
# Environment:
#   KVS_ORPHANS_PORT  port of the throwaway cluster (default 5665)
#   KVS_KEEP=1        keep the temp dir (server log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_ORPHANS_PORT:-5665}

# qd DB SQL: q in database DB
qd() { pgc_psql -At -d "$1" -c "$2"; }
# files DBOID: the data-directory kvs files of that database
files() { as_pg ls "$WORK/data/kvs_fdw" 2>/dev/null | grep -c "^$1_[0-9]*\.kvs$"; }

ct_start orphans "$PORT" "shared_preload_libraries=kvs_fdw" "kvs_fdw.shared_cache_size=4MB"
echo "# kvs_fdw orphans test: port $PORT, work dir $WORK"

q "CREATE DATABASE x" >/dev/null && q "CREATE DATABASE y" >/dev/null || bail "cannot create databases"
XOID=$(q "SELECT oid FROM pg_database WHERE datname = 'x'")
YOID=$(q "SELECT oid FROM pg_database WHERE datname = 'y'")
for db in x y; do
    qd $db "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;" >/dev/null ||
        bail "cannot create the extension in $db"
done
is "$(qd x "SELECT kvs_fdw_mode()")" "shared" "the cluster runs in shared mode"

# x: two tables, written in 40 commits each (journal records name their files)
for i in $(seq 1 40); do
    echo "INSERT INTO a SELECT g, repeat('a', 200) FROM generate_series($(( (i - 1) * 250 + 1 )), $(( i * 250 ))) g;"
    echo "INSERT INTO b SELECT g, repeat('b', 100) FROM generate_series($(( (i - 1) * 100 + 1 )), $(( i * 100 ))) g;"
done >"$WORK/x.sql"
qd x "CREATE FOREIGN TABLE a (k int, v text) SERVER kvs; CREATE FOREIGN TABLE b (k int, v text) SERVER kvs;" >/dev/null
pgc_psql -d x -f "$WORK/x.sql" >/dev/null || nok "the writes in x"
qd y "CREATE FOREIGN TABLE keep (k int, v text) SERVER kvs;
      INSERT INTO keep SELECT g, md5(g::text) FROM generate_series(1, 5000) g;" >/dev/null
WANT=$(qd y "SELECT count(*) || ' ' || md5(string_agg(v, '' ORDER BY k)) FROM keep")
is "$(qd x "SELECT (SELECT count(*) FROM a) || ' ' || (SELECT count(*) FROM b)")" "10000 4000" "x's tables hold their rows"
is "$(files "$XOID") $(files "$YOID")" "2 1" "x has two kvs files, y one"
CP0=$(qd y "SELECT checkpoint_lsn FROM kvs_fdw_journal_stats()")

# DROP EXTENSION in x: the files go at commit
out=$(qd x "DROP EXTENSION kvs_fdw CASCADE" 2>&1) || { nok "DROP EXTENSION kvs_fdw CASCADE in x"; echo "$out" | diag; }
is "$(files "$XOID")" "0" "DROP EXTENSION kvs_fdw CASCADE removed x's files at commit"

# a crash: immediate stop, start again
as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/data" -w -m immediate stop >/dev/null 2>&1
pgc_start_again || bail "cannot start the server again"
ok "the server restarts after an immediate stop"
is "$(qd y "SELECT count(*) FROM keep" >/dev/null; files "$XOID")" "0" \
    "x's removed files stay removed after the restart and y's first open"
is "$(qd y "SELECT count(*) || ' ' || md5(string_agg(v, '' ORDER BY k)) FROM keep")" "$WANT" \
    "y's table reads back exactly after the restart"
is "$(qd y "SELECT count(*) FROM kvs_fdw_check('keep')")" "0" "kvs_fdw_check is clean on y's table"
out=$(qd x "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
            CREATE FOREIGN TABLE a (k int, v text) SERVER kvs;
            INSERT INTO a SELECT g, 'new' FROM generate_series(1, 1000) g;
            SELECT count(*) || ' ' || max(v) FROM a" 2>&1)
is "$out" "1000 new" "x: a new extension and table after the drop work"

# past the checkpoint threshold: about 80 MB of page images through y
out=$(qd y "CREATE FOREIGN TABLE big (k int, v text) SERVER kvs;" 2>&1)
for i in $(seq 1 8); do
    qd y "INSERT INTO big SELECT g, repeat(md5(g::text), 60) FROM generate_series($(( (i - 1) * 5000 + 1 )), $(( i * 5000 ))) g" >/dev/null ||
        nok "write batch $i into y"
done
qd y "UPDATE keep SET v = v WHERE k <= 10" >/dev/null
CP1=$(qd y "SELECT checkpoint_lsn FROM kvs_fdw_journal_stats()")
if [ "$CP1" != "$CP0" ]; then ok "the journal checkpointed after the drop (checkpoint LSN $CP0 -> $CP1)"; else
    nok "the journal checkpointed after the drop (checkpoint LSN stayed $CP0)"; fi
is "$(qd y "SELECT count(*) || ' ' || md5(string_agg(v, '' ORDER BY k)) FROM keep")" "$WANT" \
    "y's table is unchanged after the checkpoint"
is "$(qd y "SELECT count(*) FROM big")" "40000" "y's new table holds its rows"
like "$(grep -i 'kvs' "$WORK/server.log" | grep -ci 'error\|warning\|fail')" "^0$" "no kvs error or warning in the server log"

# DROP DATABASE y: the hook removes its files; nothing is left as an orphan
q "DROP DATABASE y" >/dev/null || nok "DROP DATABASE y"
is "$(files "$YOID")" "0" "DROP DATABASE y removed y's files"
is "$(qd x "SELECT count(*) FROM kvs_fdw_orphans() WHERE database_oid IN ($XOID, $YOID)")" "0" \
    "kvs_fdw_orphans lists nothing of x or y"

tap_end
