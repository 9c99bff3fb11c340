#!/bin/bash
# test/fdw/dump.sh - pg_dump and restore of kvs_fdw tables on a throwaway
# cluster (TAP output).
#
# pg_dump dumps a foreign table's rows only with --include-foreign-data=SERVER
# (it reads them with COPY (SELECT ...) TO and restores them with COPY FROM,
# which kvs_fdw supports).  This script loads several kvs tables of several
# column and key types (NULLs, a large value, an empty table), dumps the
# database in plain and custom format, restores each into a new database, and
# checks that every table holds exactly the rows of the original and that the
# restored files are clean.  Without the option only the definitions come
# back (the tables are empty).  A dump without data plus a copy of the
# data-directory files does not bring the rows back either (the restored table
# has another OID, and empties a file recorded as another table's); copying a
# file out of the data directory and IMPORT FOREIGN SCHEMA over it does.
#
# Assumes the extension is built and installed (test/run does that first).
# Environment:
#   KVS_DUMP_PORT   port of the throwaway cluster (default 55435)
#   KVS_KEEP=1      keep the temp dir (server log, dumps) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_DUMP_PORT:-55435}

# qd DB SQL: q in database DB
qd() { pgc_psql -At -d "$1" -c "$2"; }

ct_start dump "$PORT"
echo "# kvs_fdw dump test: port $PORT, work dir $WORK"

# ---- the original database ------------------------------------------------------
pgc_psql -c "CREATE DATABASE src" >/dev/null || bail "cannot create database src"
if out=$(pgc_psql -d src 2>&1 <<'SQL'
CREATE EXTENSION kvs_fdw;
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE FOREIGN TABLE ints (id bigint, n integer, r real, d double precision, b boolean) SERVER kvs;
INSERT INTO ints SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 3 END, g / 3.0, g / 7.0, g % 2 = 0
  FROM generate_series(1, 5000) g;
CREATE FOREIGN TABLE texts (name text OPTIONS (key 'true'), body text, raw bytea, big text) SERVER kvs;
INSERT INTO texts SELECT 'name-' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE repeat(md5(g::text), g % 5) END,
                         decode(md5(g::text), 'hex'), NULL
  FROM generate_series(1, 3000) g;
INSERT INTO texts VALUES ('', 'empty key', '\x00ff', NULL),
                         ('large', 'a large value', NULL, repeat('0123456789', 50000)),
                         (E'tab\there', E'line\nbreak and \\ backslash', '\x', NULL);
CREATE FOREIGN TABLE misc (id uuid, doc jsonb, amount numeric(12, 2), day date, at timestamptz,
                           tags text[], m mood) SERVER kvs;
INSERT INTO misc SELECT md5(g::text)::uuid, jsonb_build_object('g', g, 'sq', g * g),
                        g * 1.25, date '2020-01-01' + g, timestamptz '2020-01-01 00:00+00' + g * interval '1 hour',
                        ARRAY['t' || g, NULL, 'x'], (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::mood
  FROM generate_series(1, 2000) g;
CREATE FOREIGN TABLE empty (id int, v text) SERVER kvs;
CREATE TABLE plain (id int PRIMARY KEY, v text);
INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 100) g;
SQL
); then ok "load four kvs tables and a heap table in database src"; else
    nok "load four kvs tables and a heap table in database src"; echo "$out" | diag
fi

# fp DB TABLE: row count and an md5 over every row's text form, in a fixed order
fp() { qd "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM $2 t"; }
TABLES="ints texts misc empty plain"
declare -A WANT
for t in $TABLES; do WANT[$t]=$(fp src "$t"); done
is "${WANT[ints]%% *} ${WANT[texts]%% *} ${WANT[misc]%% *} ${WANT[empty]%% *}" "5000 3003 2000 0" \
    "src: the kvs tables hold the rows loaded"

# check_restored DB HOW: every table equals the original, files clean
check_restored() {
    local db=$1 how=$2 t bad=""
    for t in $TABLES; do
        [ "$(fp "$db" "$t" 2>&1)" = "${WANT[$t]}" ] || bad="$bad $t"
    done
    is "${bad:-none}" "none" "$how: every table has exactly the original rows (tables differing:${bad:- none})"
    is "$(qd "$db" "SELECT count(*) FROM kvs_fdw_check('ints') a, kvs_fdw_check('texts') b, kvs_fdw_check('misc') c" 2>&1)" \
        "0" "$how: kvs_fdw_check is clean on the restored files"
    is "$(qd "$db" "SELECT length(big) FROM texts WHERE name = 'large'")" "500000" \
        "$how: the 500 kB value came back"
    is "$(qd "$db" "SELECT string_agg(m::text, ',' ORDER BY day) FROM misc WHERE day < '2020-01-05'")" \
        "ok,happy,sad" "$how: enum values came back (as the restored type's values)"
    # the restored tables are ordinary kvs tables: key lookups and writes work
    is "$(qd "$db" "UPDATE ints SET n = -1 WHERE id = 42; SELECT n FROM ints WHERE id = 42")" "-1" \
        "$how: the restored table takes writes"
}

# ---- plain-format dump, restored with psql ---------------------------------------
DUMP=$WORK/src.sql
if out=$("$PG_BINDIR/pg_dump" --include-foreign-data=kvs -d src -f "$DUMP" 2>&1); then
    ok "pg_dump --include-foreign-data=kvs (plain)"
else
    nok "pg_dump --include-foreign-data=kvs (plain)"; echo "$out" | diag
fi
is "$(grep -c '^COPY public\.\(ints\|texts\|misc\|empty\) ' "$DUMP")" "4" \
    "the plain dump has a COPY of every kvs table"
pgc_psql -c "CREATE DATABASE r_plain" >/dev/null
if out=$(pgc_psql -d r_plain -v ON_ERROR_STOP=1 -f "$DUMP" 2>&1 >/dev/null); then
    ok "the plain dump restores into a new database without error"
else
    nok "the plain dump restores into a new database without error"; echo "$out" | head -5 | diag
fi
check_restored r_plain "plain restore"

# ---- custom-format dump, restored with pg_restore ----------------------------------
"$PG_BINDIR/pg_dump" --include-foreign-data=kvs -Fc -d src -f "$WORK/src.dump" 2>&1 | diag
pgc_psql -c "CREATE DATABASE r_custom" >/dev/null
if out=$("$PG_BINDIR/pg_restore" --exit-on-error -d r_custom "$WORK/src.dump" 2>&1); then
    ok "pg_restore of the custom-format dump into a new database"
else
    nok "pg_restore of the custom-format dump into a new database"; echo "$out" | head -5 | diag
fi
check_restored r_custom "custom restore"

# ---- without --include-foreign-data: definitions only ------------------------------
"$PG_BINDIR/pg_dump" -d src -f "$WORK/nodata.sql" 2>&1 | diag
pgc_psql -c "CREATE DATABASE r_nodata" >/dev/null
pgc_psql -d r_nodata -v ON_ERROR_STOP=1 -f "$WORK/nodata.sql" >/dev/null 2>&1 ||
    nok "restore of the dump without foreign data"
is "$(qd r_nodata "SELECT (SELECT count(*) FROM ints) + (SELECT count(*) FROM texts) + (SELECT count(*) FROM misc)")" "0" \
    "without --include-foreign-data the kvs tables come back empty"
is "$(qd r_nodata "SELECT count(*) FROM plain")" "100" "... while heap tables keep their rows"

# ---- a dump without data plus a copy of the data-directory files: does not work ----
# The restored tables have new OIDs, so their files have new names; a file
# copied to such a name still records the original table as its own, and a
# data-directory file of another table is what a dropped table left behind:
# the restored table empties it and starts afresh (never reads it).
pgc_psql -c "CREATE DATABASE r_filecopy" >/dev/null
pgc_psql -d r_filecopy -v ON_ERROR_STOP=1 -f "$WORK/nodata.sql" >/dev/null 2>&1 ||
    nok "restore of the dump without foreign data into r_filecopy"
# dbfile DB TABLE: the path of TABLE's data-directory file in database DB
dbfile() { qd "$1" "SELECT current_setting('data_directory') || '/kvs_fdw/' ||
                   (SELECT oid FROM pg_database WHERE datname = current_database()) || '_' || '$2'::regclass::oid || '.kvs'"; }
SRCF=$(dbfile src ints) DSTF=$(dbfile r_filecopy ints)
[ "$SRCF" != "$DSTF" ] && [ -f "$SRCF" ] && [ ! -e "$DSTF" ] &&
    ok "the restored table has another OID, so another file name (not made before its first use)" ||
    nok "the restored table has another OID, so another file name (not made before its first use)"
as_pg cp "$SRCF" "$DSTF" || nok "copy src's file to the restored table's file name"
is "$(qd r_filecopy "SELECT count(*) FROM ints")" "0" \
    "dump without data + file copy: the restored table is empty (it does not take another table's file)"
is "$(qd r_filecopy "SELECT records FROM kvs_fdw_stats('ints')") $(qd r_filecopy "SELECT count(*) FROM kvs_fdw_check('ints')")" \
    "0 0" "... the copied file was emptied and restamped for it: clean, nothing misread"
is "$(fp src ints)" "${WANT[ints]}" "... the original's file is untouched"

# ---- what works at file level: copy the file out, IMPORT FOREIGN SCHEMA it ---------
# No write is running in src here, so its files hold every commit (a commit is
# written back into the file before it returns; the journal is only for a crash).
# Built-in types only: a user-defined type is stored by OID (misc's enum).
FILES=$WORK/files
as_pg mkdir "$FILES"
as_pg cp "$SRCF" "$FILES/ints.kvs" && as_pg cp "$(dbfile src texts)" "$FILES/texts.kvs" ||
    nok "copy src's files out of the data directory"
pgc_psql -c "CREATE DATABASE r_import" >/dev/null
pgc_psql -d r_import -v ON_ERROR_STOP=1 -f "$WORK/nodata.sql" >/dev/null 2>&1 ||
    nok "restore of the dump without foreign data into r_import"
if out=$(qd r_import "CREATE SCHEMA imported;
        IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO imported OPTIONS (directory '$FILES')" 2>&1); then
    ok "IMPORT FOREIGN SCHEMA over the copied files"
else
    nok "IMPORT FOREIGN SCHEMA over the copied files"; echo "$out" | diag
fi
is "$(fp r_import imported.ints) | $(fp r_import imported.texts)" "${WANT[ints]} | ${WANT[texts]}" \
    "the imported tables have exactly the original rows"
is "$(qd r_import "SELECT count(*) FROM kvs_fdw_check('imported.ints') a, kvs_fdw_check('imported.texts') b")" "0" \
    "kvs_fdw_check is clean on the imported files"
qd r_import "INSERT INTO ints SELECT * FROM imported.ints; INSERT INTO texts SELECT * FROM imported.texts" >/dev/null ||
    nok "INSERT INTO the restored tables SELECT * FROM the imported ones"
is "$(fp r_import ints) | $(fp r_import texts)" "${WANT[ints]} | ${WANT[texts]}" \
    "INSERT ... SELECT from the imported tables fills the restored data-directory tables exactly"

# ... or point a restored table at its copy with the filename option
as_pg mkdir "$WORK/own"
as_pg cp "$(dbfile src texts)" "$WORK/own/texts.kvs" || nok "copy src's texts file out"
if out=$(qd r_filecopy "ALTER FOREIGN TABLE texts OPTIONS (ADD filename '$WORK/own/texts.kvs')" 2>&1); then
    ok "ALTER FOREIGN TABLE ... OPTIONS (ADD filename) on a restored table, to a copied-out file"
else
    nok "ALTER FOREIGN TABLE ... OPTIONS (ADD filename) on a restored table, to a copied-out file"; echo "$out" | diag
fi
is "$(fp r_filecopy texts) $(qd r_filecopy "SELECT count(*) FROM kvs_fdw_check('texts')")" "${WANT[texts]} 0" \
    "the restored table reads exactly the original rows from it, clean"
is "$(qd r_filecopy "UPDATE texts SET body = 'changed' WHERE name = 'name-1'; SELECT body FROM texts WHERE name = 'name-1'")" \
    "changed" "... and writes to it"

# the original is untouched by all this
for t in $TABLES; do [ "$(fp src "$t")" = "${WANT[$t]}" ] || nok "src.$t changed"; done
ok "the original tables are unchanged"

tap_end
