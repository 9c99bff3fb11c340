#!/bin/bash
# test/fdw/salvage.sh - kvs_fdw_salvage on damaged files, on a throwaway
# PostgreSQL cluster (TAP output).
#
# A table of 6000 rows (every 40th with a value large enough for a value
# chain) is loaded; before any damage, kvs_fdw_page records which page holds
# each key and a heap copy keeps every row.  Then, each on a fresh copy of the
# good file, damaged behind the server's back with dd / truncate:
#   1. random bytes over two bucket pages and an overflow page;
#   2. the header overwritten (the normal open fails) and a page zeroed;
#   3. a value page overwritten (one record's value chain broken);
#   4. the file truncated inside a page;
#   5. a torn write-out: one bucket page put back as it was before later
#      inserts split its bucket, so some keys are on two pages;
# the normal read fails (XX001), and kvs_fdw_salvage returns exactly the rows
# of the intact pages (compared row for row with the heap copy), says what it
# skipped in its WARNING, and `INSERT INTO fresh SELECT * FROM
# kvs_fdw_salvage(NULL::t)` gives a clean new table with those rows.
#
# Assumes the extension is built and installed (test/run does that first).
# Environment: KVS_SALVAGE_PORT (default 55437), KVS_KEEP=1 keeps the temp dir.
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_SALVAGE_PORT:-55437}

# warn SQL: the WARNING/NOTICE line SQL prints (stderr), first one
warn() { pgc_psql -At -c "$1" 2>&1 >/dev/null | grep -E '^(WARNING|NOTICE):' | head -1; }

ct_start salvage "$PORT"
echo "# kvs_fdw salvage test: port $PORT, work dir $WORK"
FILES=$WORK/files
pgc_as mkdir -p "$FILES"
F=$FILES/sal.kvs

ct_extension
q "CREATE FOREIGN TABLE sal (id bigint, val text, big text) SERVER kvs OPTIONS (filename '$F');
   INSERT INTO sal SELECT g, rpad(g::text, 60, 'v'),
                          CASE WHEN g % 40 = 0 THEN repeat(md5(g::text), 300) END
     FROM generate_series(1, 6000) g;" || bail "cannot load the table"
is "$(q "SELECT count(*) FROM kvs_fdw_check('sal')" 2>&1)" "0" "the table's file is clean before any damage"
pages=$(q "SELECT pages FROM kvs_fdw_stats('sal')")
like "$(q "SELECT value_pages > 0 AND overflow_pages > 0 FROM kvs_fdw_stats('sal')")" '^t$' \
    "the file has value chains and overflow pages ($pages pages)"

# The oracle, taken before any damage: every row (heap copy) and the page that
# holds each key (kvs_fdw_page's key_value).  saved SQL-SET-OF-DAMAGED-PAGES:
# the rows kvs_fdw_salvage must return when those pages are lost.
save_oracle() {
    q "SET client_min_messages = warning; DROP TABLE IF EXISTS ref, loc, pg_type_of;
       CREATE TABLE ref AS SELECT * FROM sal;
       CREATE TABLE loc AS
         SELECT p AS page, x.key_value::bigint AS id
           FROM generate_series(1, $pages - 1) p, LATERAL kvs_fdw_page('sal', p) x
          WHERE x.type IN ('bucket', 'overflow') AND x.slot IS NOT NULL;
       CREATE TABLE pg_type_of AS
         SELECT p AS page, (SELECT type FROM kvs_fdw_page('sal', p) LIMIT 1) AS type
           FROM generate_series(1, $pages - 1) p;" >/dev/null
}
save_oracle
is "$(q "SELECT count(*) || ' ' || count(DISTINCT id) FROM loc")" "6000 6000" \
    "kvs_fdw_page shows every key once, as a bigint"
pgc_as cp "$F" "$FILES/sal.good"

# nth_page TYPE N: the Nth page (0-based) of a type, by page number
nth_page() { q "SELECT page FROM pg_type_of WHERE type = '$1' ORDER BY page OFFSET $2 LIMIT 1"; }
# diff_count LOST-PAGES-SQL: rows missing from / extra in the salvage, against
# the heap copy minus the rows of the lost pages ("missing extra")
diff_count() {
    q "WITH want AS (SELECT * FROM ref WHERE id NOT IN (SELECT id FROM loc WHERE page IN ($1))),
            got AS (SELECT * FROM kvs_fdw_salvage(NULL::sal))
       SELECT (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got) a) || ' ' ||
              (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want) b)" 2>/dev/null
}
fresh_copy() { pgc_as cp "$FILES/sal.good" "$F"; }

# ---- 1. random bytes over two bucket pages and an overflow page ---------------
fresh_copy
b1=$(nth_page bucket 3); b2=$(nth_page bucket 20); o1=$(nth_page overflow 0)
for p in $b1 $b2 $o1; do
    pgc_as dd if=/dev/urandom of="$F" bs=1 seek=$((p * 4096 + 1500)) count=700 conv=notrunc status=none
done
lost=$(q "SELECT count(*) FROM loc WHERE page IN ($b1, $b2, $o1)")
like "$(qerr "SELECT count(*) FROM sal")" '^XX001 ' "random bytes over pages $b1, $b2, $o1: a full scan fails with XX001"
like "$(qerr "COPY (SELECT * FROM sal) TO STDOUT")" '^XX001 ' "... and COPY (SELECT ...) TO fails too"
is "$(diff_count "$b1, $b2, $o1")" "0 0" \
    "kvs_fdw_salvage returns exactly the rows of the intact pages ($((6000 - lost)) of 6000)"
like "$(warn "SELECT count(*) FROM kvs_fdw_salvage(NULL::sal)")" \
    "^WARNING: .* $((6000 - lost)) rows returned .*skipped: 3 damaged pages, 0 all-zero pages, 0 records with a damaged value chain" \
    "the WARNING counts the 3 damaged pages"

# ---- 2. header overwritten and a page zeroed: the normal open fails -------------
fresh_copy
z=$(nth_page bucket 10)
pgc_as dd if=/dev/urandom of="$F" bs=1 seek=200 count=32 conv=notrunc status=none
pgc_as dd if=/dev/zero of="$F" bs=4096 seek="$z" count=1 conv=notrunc status=none
like "$(qerr "SELECT * FROM sal WHERE id = 77")" '^XX001 .*[^0-9]0([^0-9]|$)' \
    "header overwritten: even a lookup fails with XX001 naming page 0"
is "$(diff_count "$z")" "0 0" "header overwritten, page $z zeroed: salvage returns exactly the other pages' rows"
w=$(warn "SELECT count(*) FROM kvs_fdw_salvage(NULL::sal)")
like "$w" "^WARNING: .*skipped: 1 damaged pages, 1 all-zero pages" "the WARNING counts the damaged header and the zeroed page"
like "$(pgc_psql -At -c "SELECT count(*) FROM kvs_fdw_salvage(NULL::sal)" 2>&1 | grep '^DETAIL')" \
    "the header is damaged" "its DETAIL says the header is damaged"
# the user's way out: copy what survives into a new table
q "CREATE FOREIGN TABLE fresh (id bigint, val text, big text) SERVER kvs;
   INSERT INTO fresh SELECT * FROM kvs_fdw_salvage(NULL::sal);" 2>/dev/null ||
    nok "INSERT INTO fresh SELECT * FROM kvs_fdw_salvage(NULL::sal)"
is "$(q "SELECT count(*) FROM ((SELECT * FROM ref WHERE id NOT IN (SELECT id FROM loc WHERE page = $z))
                              EXCEPT ALL SELECT * FROM fresh) x")|$(q "SELECT count(*) FROM fresh")" \
    "0|$(q "SELECT count(*) FROM ref WHERE id NOT IN (SELECT id FROM loc WHERE page = $z)")" \
    "INSERT INTO fresh SELECT * FROM kvs_fdw_salvage(NULL::sal): the new table holds exactly those rows"
is "$(q "SELECT count(*) FROM kvs_fdw_check('fresh')")" "0" "... and its file is clean"
q "DROP FOREIGN TABLE fresh" >/dev/null

# ---- 3. a value page overwritten: exactly one record is lost --------------------
fresh_copy
v=$(nth_page value 5)
pgc_as dd if=/dev/urandom of="$F" bs=1 seek=$((v * 4096 + 3000)) count=50 conv=notrunc status=none
missing=$(q "SELECT string_agg(id::text, ',') FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM kvs_fdw_salvage(NULL::sal)) x" 2>/dev/null)
like "$missing" '^[0-9]+$' "value page $v overwritten: exactly one row is missing from the salvage ($missing)"
is "$(q "SELECT big IS NOT NULL FROM ref WHERE id = ${missing:-0}")" "t" "... a row with a large value"
is "$(q "SELECT count(*) FROM (SELECT * FROM kvs_fdw_salvage(NULL::sal) EXCEPT ALL SELECT * FROM ref) x" 2>/dev/null)" \
    "0" "... and no row comes back that was not there"
like "$(warn "SELECT count(*) FROM kvs_fdw_salvage(NULL::sal)")" \
    "skipped: 1 damaged pages, 0 all-zero pages, 1 records with a damaged value chain" "the WARNING counts the broken value chain"

# ---- 4. truncated inside a page ----------------------------------------------------
fresh_copy
cut=$((pages * 2 / 3))
pgc_as truncate -s $((cut * 4096 + 1234)) "$F"
like "$(qerr "SELECT count(*) FROM sal")" '^XX001 ' "truncated inside page $cut: a full scan fails"
# the pages before the cut, minus rows whose value chain reached past it
dc=$(diff_count "SELECT page FROM loc WHERE page >= $cut")
w=$(warn "SELECT count(*) FROM kvs_fdw_salvage(NULL::sal)")
chains=$(printf '%s' "$w" | sed -n 's/.* \([0-9]*\) records with a damaged value chain.*/\1/p')
is "$dc" "${chains:-?} 0" "truncated: exactly the rows of the pages before the cut come back, less the $chains whose value chain was cut"
is "$(q "SELECT count(*) FROM (SELECT * FROM ref WHERE id NOT IN (SELECT id FROM loc WHERE page >= $cut)
                             EXCEPT ALL SELECT * FROM kvs_fdw_salvage(NULL::sal)) x WHERE big IS NULL" 2>/dev/null)" \
    "0" "truncated: every missing row before the cut has a large value"

# ---- 5. a torn write-out: one page back as it was before a split -------------------
# Load more rows (buckets split, records move to the new buckets' pages), then
# put one page of the old file back at its place, as a write-out torn before
# that page was rewritten leaves it: the keys that moved off it are now on
# two pages, the keys that moved onto it are lost.
fresh_copy
q "ALTER TABLE loc RENAME TO loc_old" >/dev/null
q "INSERT INTO sal SELECT g, rpad(g::text, 60, 'v'), NULL FROM generate_series(6001, 9000) g" ||
    nok "load more rows"
pages=$(q "SELECT pages FROM kvs_fdw_stats('sal')")
save_oracle
# the record page that most of its old keys moved off
old=$(q "SELECT o.page FROM loc_old o
          WHERE o.page IN (SELECT page FROM pg_type_of WHERE type IN ('bucket', 'overflow'))
            AND NOT EXISTS (SELECT 1 FROM loc n WHERE n.page = o.page AND n.id = o.id)
          GROUP BY o.page ORDER BY count(*) DESC, o.page LIMIT 1")
moved=$(q "SELECT count(*) FROM loc_old o WHERE o.page = ${old:-0}
            AND NOT EXISTS (SELECT 1 FROM loc n WHERE n.page = o.page AND n.id = o.id)")
pgc_as dd if="$FILES/sal.good" of="$F" bs=4096 skip="${old:-0}" seek="${old:-0}" count=1 conv=notrunc status=none
dups=$(q "SELECT count(*) FROM (SELECT (rec).id FROM kvs_fdw_salvage_pages(NULL::sal) GROUP BY 1
                                 HAVING count(*) > 1 AND bool_or(page = ${old:-0})) x" 2>/dev/null)
is "$dups" "$moved" "page $old put back as it was before the split: the $moved keys that had moved off it come back twice, once from page $old"
is "$(q "SELECT count(*) FROM (SELECT (rec).id FROM kvs_fdw_salvage_pages(NULL::sal) GROUP BY 1 HAVING count(*) > 1) x" 2>/dev/null)" \
    "$moved" "... and no other key comes back twice"
q "CREATE FOREIGN TABLE fresh2 (id bigint, val text, big text) SERVER kvs" >/dev/null
like "$(qerr "INSERT INTO fresh2 SELECT * FROM kvs_fdw_salvage(NULL::sal)")" '^23505 ' \
    "copying every copy into a table keyed like the old one fails cleanly (23505): salvage does not pick one"
# the user chooses with the page numbers: here the copy not on the old page
q "TRUNCATE fresh2" >/dev/null
q "INSERT INTO fresh2 SELECT (s.rec).* FROM (
       SELECT DISTINCT ON ((rec).id) rec FROM kvs_fdw_salvage_pages(NULL::sal)
        ORDER BY (rec).id, page = $old) s" 2>/dev/null || nok "INSERT ... DISTINCT ON from kvs_fdw_salvage_pages"
# expected: every row but those that had moved onto the old page since
q "CREATE TABLE want5 AS SELECT * FROM ref WHERE id NOT IN
     (SELECT id FROM loc WHERE page = $old EXCEPT SELECT id FROM loc_old WHERE page = $old)" >/dev/null
is "$(q "SELECT count(*) FROM ((SELECT * FROM want5 EXCEPT ALL SELECT * FROM fresh2)
                              UNION ALL (SELECT * FROM fresh2 EXCEPT ALL SELECT * FROM want5)) x")" "0" \
    "choosing by page from kvs_fdw_salvage_pages gives exactly the rows of the intact pages, each once ($(q "SELECT count(*) FROM want5") of 9000)"

is "$(q "SELECT 1")" "1" "the server answers after every case"
crash=$(grep -E 'terminated by signal|PANIC|reinitializing' "$WORK/server.log" || true)
is "$crash" "" "no backend crash in the server log"

tap_end
