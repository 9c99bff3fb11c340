#!/bin/bash
# test/fdw/upgrade.sh - pg_upgrade of a cluster with kvs_fdw tables (TAP output).
#
# pg_upgrade moves the catalogs and the heap files, not $PGDATA/kvs_fdw/.
# This script shows, once in local mode and once with kvs_fdw in
# shared_preload_libraries (shared mode), on PostgreSQL 15 to 15:
#   - an old cluster with kvs tables (two in the data directory, one with an
#     explicit filename outside it; rows committed in several transactions),
#     stopped cleanly, upgrades with pg_upgrade (copy mode) to a new cluster;
#   - pg_upgrade keeps the database OID, the table OIDs and their row type
#     OIDs (what a data-directory file's header names as its table);
#   - without copying the files the data-directory tables of the new cluster
#     are empty (new files, nothing misread) and the explicit-filename table
#     reads the old cluster's file in place;
#   - the recipe: before the new cluster's first start, copy the old
#     $PGDATA/kvs_fdw/*.kvs files (not the journal directory) into the new
#     $PGDATA/kvs_fdw/; in shared mode then run kvs_fdw_adopt(regclass) on
#     every table (the new cluster has a new system identifier, and a file
#     another cluster owns is refused, 55006); every row is back,
#     kvs_fdw_check is clean, writes work and survive an immediate stop;
#   - local mode: a commit a crash caught between its journal record and
#     its write-back (gdb kills the backend at kvs_commit) is in the old file
#     only once the old cluster has opened the table again: files copied
#     before that lack the row; started again (copy mode leaves the old
#     cluster usable) and the table read, the old cluster recovers it from
#     its journal, and the copy made after that has it;
#   - a file of the old cluster copied out of its data directory and
#     imported with IMPORT FOREIGN SCHEMA has its rows; in shared mode IMPORT
#     skips it (another cluster owns it), and a table made by hand over it
#     works after kvs_fdw_adopt.
#
# Assumes the extension is built and installed (test/run does that first).
# Environment:
#   KVS_UPGRADE_PORT   port of the throwaway clusters (one runs at a time;
#                      default 5745)
#   KVS_KEEP=1         keep the temp dir (server logs, pg_upgrade logs) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/pgcluster.sh"
. "$ROOT/test/lib/tap.sh"

PORT=${KVS_UPGRADE_PORT:-5745}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvs_upgrade.XXXXXX") || bail "cannot make a temp dir"
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown "$(pgc_osuser)" "$WORK"
STARTED=""                      # data directories this script started
stop_all() {
    local d
    for d in $STARTED; do
        [ -f "$d/postmaster.pid" ] || continue
        pgc_as "$PG_BINDIR/pg_ctl" -D "$d" -w -m fast stop >/dev/null 2>&1 ||
            pgc_as "$PG_BINDIR/pg_ctl" -D "$d" -w -m immediate stop >/dev/null 2>&1
    done
}
cleanup() {
    stop_all
    if [ "${KVS_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "# kvs_fdw pg_upgrade test: port $PORT, work dir $WORK"

SETTINGS=""                     # -c settings of the current mode
# initdb DIR: a new cluster in DIR/data (DIR made by the server's OS user)
new_cluster() {
    pgc_as mkdir -p "$1"
    pgc_as "$PG_BINDIR/initdb" -D "$1/data" -U postgres -A trust --no-sync >"$1/initdb.log" 2>&1
}
# up DIR: start the cluster in DIR/data on PORT, socket in DIR; psql goes there
up() {
    local s opts="-p $PORT -k $1 -c listen_addresses='' -c fsync=off"
    for s in $SETTINGS; do opts="$opts -c $s"; done
    STARTED="$STARTED $1/data"
    export PGHOST=$1 PGPORT=$PORT PGUSER=postgres PGDATABASE=app
    pgc_as "$PG_BINDIR/pg_ctl" -D "$1/data" -l "$1/server.log" -w -o "$opts" start >/dev/null
}
# down DIR [MODE]: stop it (fast: a clean shutdown)
down() { pgc_as "$PG_BINDIR/pg_ctl" -D "$1/data" -w -m "${2:-fast}" stop >/dev/null; }
qa() { pgc_psql -At -d app -c "$1"; }
# fp TABLE: row count and an md5 over every row's text form
fp() { qa "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM $1 t"; }
# oids: database OID, then each table's OID and row type OID
oids() { qa "SELECT (SELECT oid FROM pg_database WHERE datname = 'app') || ' ' ||
                    string_agg(relname || '=' || oid || '/' || reltype, ' ' ORDER BY relname)
             FROM pg_class WHERE relname IN ('kv', 'names', 'outside', 'plain')"; }
checks() { qa "SELECT count(*) FROM kvs_fdw_check('kv') a, kvs_fdw_check('names') b, kvs_fdw_check('outside') c"; }
TABLES="kv names outside plain"

# crash_in_writeback DIR: commit a row to kv and plain in one transaction, and
# kill -9 its backend (gdb, at the kvs_commit that would write its pages
# back) after PostgreSQL's commit record and the kvs journal record are
# written: the commit is in the journal only, its record in flight, and the
# file in place lacks it until the file is next opened.  Then wait for the
# server's crash restart.  False if gdb is missing or did not stop there.
crash_in_writeback() {
    local dir=$1 pid n=0
    command -v gdb >/dev/null || return 1
    rm -f "$WORK/gdb.out" "$WORK/cw.in"
    mkfifo "$WORK/cw.in"
    "$PG_BINDIR/psql" -X -At -d app <"$WORK/cw.in" >"$WORK/cw.out" 2>&1 &
    local psql_pid=$!
    exec {cwfd}>"$WORK/cw.in"
    echo "LOAD 'kvs_fdw'; SELECT pg_backend_pid();" >&"$cwfd"
    until pid=$(grep -E "^[0-9]+$" "$WORK/cw.out" 2>/dev/null | head -1) && [ -n "$pid" ]; do
        n=$((n + 1)); [ $n -gt 100 ] && break; sleep 0.1
    done
    timeout 60 gdb -p "$pid" -batch -ex 'break kvs_commit' -ex continue -ex kill >"$WORK/gdb.out" 2>&1 &
    local gdb_pid=$!
    n=0
    until grep -q '^Breakpoint 1 at' "$WORK/gdb.out" 2>/dev/null; do
        n=$((n + 1)); [ $n -gt 300 ] && break; sleep 0.1
    done
    sleep 0.5
    printf "BEGIN; INSERT INTO kv VALUES (77777, 'caught by a crash'); INSERT INTO plain VALUES (77777, 'x'); COMMIT;\n" >&"$cwfd"
    wait "$gdb_pid"
    exec {cwfd}>&-
    wait "$psql_pid" 2>/dev/null
    grep -Eq 'Breakpoint 1[.0-9]*, kvs_commit' "$WORK/gdb.out" || { diag <"$WORK/gdb.out"; return 1; }
    n=0
    until pgc_psql -At -d app -c "SELECT 1" >/dev/null 2>&1; do
        n=$((n + 1)); [ $n -gt 300 ] && return 1; sleep 0.1
    done
}
# jpath FILE: the journal directory a kvs file's header names (format 5: its
# length at byte 2200, the path at 2204)
jpath() {
    local n
    n=$(od -A n -t u4 -j 2200 -N 4 "$1" | tr -d ' ')
    dd if="$1" bs=1 skip=2204 count="$n" 2>/dev/null
}

# run_mode MODE: the whole scenario in local or shared mode
run_mode() {
    local m=$1 old=$WORK/$1-old new=$WORK/$1-new nocopy=$WORK/$1-nocopy t bad out
    local -A want
    [ "$m" = shared ] && SETTINGS="shared_preload_libraries=kvs_fdw kvs_fdw.shared_cache_size=4MB" || SETTINGS=""

    # ---- the old cluster ---------------------------------------------------------
    new_cluster "$old" && up "$old" || bail "$m: cannot start the old cluster"
    pgc_as mkdir -p "$old/files"
    # databases and tables made and dropped first, so that the OIDs kept
    # below are not the ones a fresh cluster would hand out anyway
    if out=$(pgc_psql -d postgres 2>&1 <<SQL
CREATE DATABASE junk1; CREATE DATABASE junk2; DROP DATABASE junk1; DROP DATABASE junk2;
CREATE DATABASE app;
\c app
CREATE EXTENSION kvs_fdw;
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
CREATE TABLE junk (a int, b text); DROP TABLE junk;
CREATE FOREIGN TABLE kv (id int, v text) SERVER kvs;
INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 3000) g;
UPDATE kv SET v = v || '-updated' WHERE id % 10 = 0;
DELETE FROM kv WHERE id % 17 = 0;
BEGIN; INSERT INTO kv VALUES (-1, 'in a transaction'); UPDATE kv SET v = NULL WHERE id = 5; COMMIT;
CREATE FOREIGN TABLE names (name text OPTIONS (key 'true'), n bigint, at timestamptz) SERVER kvs;
INSERT INTO names SELECT 'name-' || g, g * g, timestamptz '2020-01-01 00:00+00' + g * interval '1 min'
  FROM generate_series(1, 2000) g;
INSERT INTO names VALUES ('large', 0, NULL);
UPDATE names SET n = length(repeat('x', 100000)) WHERE name = 'large';
CREATE FOREIGN TABLE outside (id bigint, v text) SERVER kvs OPTIONS (filename '$old/files/outside.kvs');
INSERT INTO outside SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
CREATE TABLE plain (id int PRIMARY KEY, v text);
INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 100) g;
SQL
    ); then ok "$m: old cluster: kvs tables (two in the data directory, one outside) and a heap table"; else
        nok "$m: old cluster: kvs tables (two in the data directory, one outside) and a heap table"; echo "$out" | diag
    fi
    for t in $TABLES; do want[$t]=$(fp "$t"); done
    is "${want[kv]%% *} ${want[names]%% *} ${want[outside]%% *} ${want[plain]%% *}" "2825 2001 1000 100" \
        "$m: old cluster: the tables hold the rows written"
    is "$(checks)" "0" "$m: old cluster: kvs_fdw_check clean"
    local oldoids oldsysid
    oldoids=$(oids)
    [ "$m" = shared ] && is "$(qa "SELECT kvs_fdw_mode()")" "shared" "$m: the clusters run in shared mode"
    local nkv=2825 crash=0
    if [ "$m" = local ] && ! command -v gdb >/dev/null; then
        ok "$m: a commit caught by a crash # skip gdb is not installed"
    elif [ "$m" = local ]; then
        crash=1
        # a commit a crash caught before its write-back; kv not opened after it
        if crash_in_writeback "$old"; then
            ok "$m: old cluster: a backend killed at the write-back of a committed row (crash restart)"
        else
            nok "$m: old cluster: a backend killed at the write-back of a committed row (crash restart)"
        fi
        is "$(qa "SELECT count(*) FROM plain WHERE id = 77777")" "1" "$m: ... its transaction committed (the heap row is there)"
        want[plain]=$(fp plain)
        nkv=2826
    fi
    down "$old" || nok "$m: the old cluster stops cleanly"
    oldsysid=$(pgc_as "$PG_BINDIR/pg_controldata" "$old/data" | sed -n 's/^Database system identifier: *//p')

    # ---- pg_upgrade ---------------------------------------------------------------
    new_cluster "$new" || bail "$m: initdb of the new cluster failed"
    if out=$(cd "$new" && pgc_as "$PG_BINDIR/pg_upgrade" -b "$PG_BINDIR" -B "$PG_BINDIR" \
            -d "$old/data" -D "$new/data" -p "$PORT" -P "$PORT" -s "$new" -U postgres 2>&1); then
        ok "$m: pg_upgrade from the old cluster to the new one"
    else
        nok "$m: pg_upgrade from the old cluster to the new one"; echo "$out" | tail -20 | diag
        pgc_as sh -c "cat $new/data/pg_upgrade_output.d/*/log/*.log" 2>/dev/null | tail -20 | diag
        return
    fi
    is "$(pgc_as find "$new/data" -name '*.kvs' | wc -l)" "0" \
        "$m: pg_upgrade copied no kvs file into the new data directory"
    like "$(pgc_as "$PG_BINDIR/pg_controldata" "$new/data" | sed -n 's/^Database system identifier: *//p')" \
        "^[0-9]+$" "$m: the new cluster has a system identifier"
    [ "$(pgc_as "$PG_BINDIR/pg_controldata" "$new/data" | sed -n 's/^Database system identifier: *//p')" != "$oldsysid" ] &&
        ok "$m: ... not the old cluster's (pg_upgrade does not keep it)" ||
        nok "$m: ... not the old cluster's (pg_upgrade does not keep it)"

    # ---- without the copy (on a copy of the upgraded data directory) ----------------
    pgc_as cp -a "$new" "$nocopy"
    pgc_as rm -f "$nocopy/data/postmaster.pid"
    up "$nocopy" || bail "$m: cannot start the upgraded cluster"
    is "$(oids)" "$oldoids" "$m: pg_upgrade kept the database OID, the table OIDs and row type OIDs ($oldoids)"
    is "$(qa "SELECT (SELECT count(*) FROM kv) || ' ' || (SELECT count(*) FROM names)")" "0 0" \
        "$m: without the copy the data-directory tables are empty"
    is "$(qa "SELECT count(*) FROM kvs_fdw_check('kv') a, kvs_fdw_check('names') b")" "0" \
        "$m: ... over new, clean files (nothing misread)"
    is "$(fp plain)" "${want[plain]}" "$m: ... while heap tables keep their rows"
    if [ "$m" = local ]; then
        is "$(fp outside)" "${want[outside]}" \
            "$m: the explicit-filename table reads the old cluster's file in place"
    else
        out=$(pgc_psql -At -d app -v VERBOSITY=verbose -c "SELECT count(*) FROM outside" 2>&1)
        like "$out" "55006" "$m: the explicit-filename table refuses the file the old cluster owns (55006)"
    fi
    down "$nocopy"

    if [ "$crash" = 1 ]; then
        # copying the files now, without step 1, loses the commit the crash caught
        local skip=$WORK/$m-skip
        pgc_as cp -a "$new" "$skip"
        pgc_as sh -c "mkdir -p '$skip/data/kvs_fdw' && cp -p '$old'/data/kvs_fdw/*.kvs '$skip/data/kvs_fdw/'"
        up "$skip" || bail "$m: cannot start the upgraded copy"
        is "$(qa "SELECT count(*) FROM kv") $(qa "SELECT count(*) FROM kv WHERE id = 77777") $(qa "SELECT count(*) FROM plain WHERE id = 77777")" \
            "2825 0 1" "$m: copied without reading kv in the old cluster after its crash: the committed row the crash caught is missing"
        down "$skip"
        # step 1: the old cluster (copy mode left it usable) reads each table once
        up "$old" || bail "$m: cannot start the old cluster again"
        is "$(qa "SELECT count(*) FROM kv WHERE id = 77777")" "1" \
            "$m: the old cluster, started again, recovers the row from its journal when kv is read"
        want[kv]=$(fp kv)
        is "$(checks)" "0" "$m: old cluster: kvs_fdw_check clean after the recovery"
        down "$old" || nok "$m: the old cluster stops cleanly again"
    fi

    # ---- the recipe: copy the .kvs files before the first start --------------------
    pgc_as mkdir -p "$new/data/kvs_fdw"
    pgc_as sh -c "cp -p '$old'/data/kvs_fdw/*.kvs '$new/data/kvs_fdw/' && sync" ||
        nok "$m: copy the old cluster's kvs files"
    is "$(ls "$new/data/kvs_fdw" | grep -c '\.kvs$')" "2" "$m: copied the two data-directory files (not the journal)"
    local kvf
    kvf=$(ls "$new/data/kvs_fdw/"*.kvs | head -1)
    is "$(jpath "$kvf")" "$old/data/kvs_fdw/journal" \
        "$m: a copied file's header still names the old cluster's journal (read as it is; no record of it there counts here)"
    up "$new" || bail "$m: cannot start the new cluster"
    if [ "$m" = shared ]; then
        out=$(pgc_psql -At -d app -v VERBOSITY=verbose -c "SELECT count(*) FROM kv" 2>&1)
        like "$out" "55006" "$m: before kvs_fdw_adopt a copied file is refused (55006: the old cluster owns it)"
        if out=$(qa "SELECT kvs_fdw_adopt('kv'); SELECT kvs_fdw_adopt('names'); SELECT kvs_fdw_adopt('outside')" 2>&1); then
            ok "$m: kvs_fdw_adopt on each table"
        else
            nok "$m: kvs_fdw_adopt on each table"; echo "$out" | diag
        fi
    fi
    bad=""
    for t in $TABLES; do [ "$(fp "$t" 2>&1)" = "${want[$t]}" ] || bad="$bad $t"; done
    is "${bad:-none}" "none" "$m: after the copy every table has exactly its old rows (differing:${bad:- none})"
    is "$(checks)" "0" "$m: kvs_fdw_check clean on the copied files"
    is "$(qa "SELECT n FROM names WHERE name = 'large'")" "100000" "$m: a lookup by key works"
    # a file of the old cluster copied out, imported here
    pgc_as mkdir "$WORK/$m-imp"
    pgc_as cp -p "$old/data/kvs_fdw/$(basename "$kvf")" "$WORK/$m-imp/kvcopy.kvs"
    out=$(qa "CREATE SCHEMA imp; IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO imp OPTIONS (directory '$WORK/$m-imp')" 2>&1)
    if [ "$m" = local ]; then
        is "$(fp imp.kvcopy)" "${want[kv]}" "$m: IMPORT FOREIGN SCHEMA over a copied-out file of the old cluster: its exact rows"
    else
        # shared mode: IMPORT reads the header through the pool, which refuses
        # a file another cluster owns; a table made by hand, then adopted, works
        like "$(echo "$out" | tr '\n' ' ')" "WARNING: .*not imported.*belongs to owner [0-9]+" \
            "$m: IMPORT FOREIGN SCHEMA skips a file another cluster owns, with a WARNING"
        like "$(echo "$out" | tr '\n' ' ')" "HINT: .*kvs_fdw_adopt" \
            "$m: ... whose hint says how to take the file over (kvs_fdw_adopt)"
        qa "CREATE FOREIGN TABLE imp.kvcopy (id int, v text) SERVER kvs OPTIONS (filename '$WORK/$m-imp/kvcopy.kvs')" ||
            nok "$m: CREATE FOREIGN TABLE over the copied-out file"
        out=$(pgc_psql -At -d app -v VERBOSITY=verbose -c "SELECT count(*) FROM imp.kvcopy" 2>&1)
        like "$out" "55006" "$m: a table over the copied-out file is refused before kvs_fdw_adopt (55006)"
        like "$(echo "$out" | tr '\n' ' ')" "HINT: .*kvs_fdw_adopt" "$m: ... with a hint naming kvs_fdw_adopt"
        qa "SELECT kvs_fdw_adopt('imp.kvcopy')" >/dev/null || nok "$m: kvs_fdw_adopt('imp.kvcopy')"
        is "$(fp imp.kvcopy)" "${want[kv]}" "$m: ... after kvs_fdw_adopt it has exactly the old rows"
    fi
    if out=$(qa "UPDATE kv SET v = 'new' WHERE id = 1; INSERT INTO kv VALUES (100000, 'added');
                 DELETE FROM names WHERE name = 'name-7'; INSERT INTO outside VALUES (0, 'zero')" 2>&1); then
        ok "$m: writes to the copied tables"
    else
        nok "$m: writes to the copied tables"; echo "$out" | diag
    fi
    is "$(jpath "$kvf")" "$new/data/kvs_fdw/journal" "$m: the first write there names the new cluster's journal"
    down "$new" immediate
    up "$new" || bail "$m: cannot restart the new cluster"
    is "$(qa "SELECT (SELECT v FROM kv WHERE id = 1) || (SELECT v FROM kv WHERE id = 100000) ||
                     (SELECT count(*) FROM kv) || ' ' || (SELECT count(*) FROM names) || ' ' || (SELECT count(*) FROM outside)")" \
        "newadded$((nkv + 1)) 2000 1001" "$m: the writes survive an immediate stop (recovered from the new journal)"
    is "$(checks)" "0" "$m: kvs_fdw_check clean after the restart"
    crash=$(grep -E 'terminated by signal|terminated by exception|PANIC|exited with exit code [^0]' \
        "$new/server.log" "$nocopy/server.log" | grep -v 'logical replication launcher' || true)
    is "$crash" "" "$m: no backend crash in the server logs"
    down "$new"
}

run_mode local
run_mode shared
tap_end
