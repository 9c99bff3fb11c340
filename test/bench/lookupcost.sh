#!/bin/bash
# test/bench/lookupcost.sh - what one prepared point lookup costs a backend:
# user-space instructions (callgrind) and system calls (strace), for a kvs
# table, heap + btree on the same rows, and a prepared `SELECT 1`.
#
# Counts, not times: they do not depend on the machine's load.  One backend in
# single-user mode (`postgres --single`, so no client, no socket, no other
# process) reads a script from stdin: it warms the caches (pg_prewarm of the
# heap and its index; a full scan of the kvs table), PREPAREs
# `SELECT v FROM T WHERE k = $1`, runs W EXECUTEs with varying keys (the plan
# cache settles on its generic plan, every cache is warm), then N more between
# two markers, then a third marker.  A marker is `SELECT pg_stat_file('M',
# true)`: callgrind cuts its count at each call of pg_stat_file
# (--dump-before), strace shows its stat() of M.  Per lookup = (the count
# between markers 1 and 2 - the count between markers 2 and 3, one marker
# statement) / N.  Both counts include what every EXECUTE costs in this mode
# whatever it reads (parsing `EXECUTE q(42)`, the plan cache, printing the row
# to stdout): the `SELECT 1` row is that floor.  pgbench -M prepared sends
# Bind/Execute messages instead (no parse of EXECUTE), and its backend also
# reads and writes a socket per statement; what the table's access costs is
# the difference to the `SELECT 1` row, alike in both.
#
#   lookupcost.sh [--quick] [--rows N] [--lookups N] [--warm N] [--cache SIZE]
#                 [--shared] [--tables "kv_kvs kv_btree select1"] [--no-strace]
#                 [--no-callgrind] [--profile DIR]
#   defaults   1M rows, 20,000 lookups after 2,000 warm-up ones, cache 512MB
#              (shared_buffers and kvs_fdw.cache_size: both above their table,
#              test/bench/pg.sh's "large"); about 10 minutes here
#   --quick    20,000 rows, 2,000 lookups after 200: checks the harness (~25 s)
#   --shared   shared_preload_libraries = 'kvs_fdw' (kvs_fdw.shared_cache_size =
#              the cache: the shared pool) instead of a backend's own pool
#   --profile  keep each table's callgrind file of the lookups (DIR/T.callgrind,
#              for callgrind_annotate) and strace log (DIR/T.strace)
#
# Uses the installed kvs_fdw (make install).  As root the backend runs as the
# `postgres` OS user (test/lib/pgcluster.sh).  Prints one line per table:
#   table  instructions/lookup  system calls/lookup  (the calls, per lookup)
# and "lookupcost: FAILED ..." with status 1 when a run did not give sane
# figures (every lookup must return its row; counts nonzero).  Figures are
# printed, never compared against a target.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/pgcluster.sh"

ROWS=1000000
N=20000
W=2000
CACHE=512MB
MODE=local
TABLES="kv_kvs kv_btree select1"
STRACE=1
CALLGRIND=1
PROFILE=
usage() { sed -n '/^#   lookupcost.sh/,/^#   defaults/p' "$0" | sed '$d' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ROWS=20000; N=2000; W=200; CACHE=32MB; shift ;;
        --rows) ROWS=$2; shift 2 ;;
        --lookups) N=$2; shift 2 ;;
        --warm) W=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --shared) MODE=shared; shift ;;
        --tables) TABLES=$2; shift 2 ;;
        --no-strace) STRACE=0; shift ;;
        --no-callgrind) CALLGRIND=0; shift ;;
        --profile) PROFILE=$2; shift 2 ;;
        *) usage ;;
    esac
done
for v in "$ROWS" "$N" "$W"; do
    case $v in ''|*[!0-9]*|0) echo "lookupcost: --rows, --lookups, --warm take positive numbers" >&2; exit 2 ;; esac
done
[ "$W" -ge 10 ] || { echo "lookupcost: --warm must be at least 10 (the plan cache's custom plans)" >&2; exit 2; }
if [ $CALLGRIND = 1 ] && ! command -v valgrind >/dev/null; then
    echo "lookupcost: valgrind is not installed (or pass --no-callgrind)" >&2; exit 1
fi
if [ $STRACE = 1 ] && ! command -v strace >/dev/null; then
    echo "lookupcost: strace is not installed (or pass --no-strace)" >&2; exit 1
fi
if [ ! -e "$(pg_config --pkglibdir)/kvs_fdw.so" ]; then
    echo "lookupcost: kvs_fdw is not installed in $(pg_config --pkglibdir) (make install)" >&2; exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvs_lookupcost.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"
[ "$(id -u)" = 0 ] && chown "$(pgc_osuser)" "$TMP"
if [ -n "$PROFILE" ]; then
    mkdir -p "$PROFILE" && PROFILE=$(cd "$PROFILE" && pwd)
fi
fail() { echo "lookupcost: FAILED $*"; exit 1; }

DATA=$TMP/data
pgc_as "$PG_BINDIR/initdb" -D "$DATA" -U postgres -A trust --no-sync >"$TMP/initdb.log" 2>&1 ||
    { cat "$TMP/initdb.log" >&2; fail "initdb"; }
{
    echo "shared_buffers = '$CACHE'"
    echo "huge_pages = off"
    echo "max_wal_size = 8GB"
    echo "synchronous_commit = off"
    echo "fsync = off"
    if [ $MODE = shared ]; then
        echo "shared_preload_libraries = 'kvs_fdw'"
        echo "kvs_fdw.shared_cache_size = '$CACHE'"
        echo "kvs_fdw.scan_ring = off"
    else
        echo "kvs_fdw.cache_size = '$CACHE'"
    fi
} >>"$DATA/postgresql.conf"

single() {   # single SCRIPT OUT [wrapper...]: the script through one single-user backend
    local in=$1 out=$2
    shift 2
    pgc_as "$@" "$PG_BINDIR/postgres" --single -D "$DATA" postgres <"$in" >"$out" 2>&1
}

# ---- the rows -----------------------------------------------------------------
VALUE_EXPR="rpad(md5(g::text), 100, md5((g + 1)::text))"
cat >"$TMP/load.sql" <<SQL
CREATE EXTENSION kvs_fdw
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw
CREATE EXTENSION pg_prewarm
CREATE TABLE kv_btree (k bigint PRIMARY KEY, v text)
CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs
INSERT INTO kv_btree SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g
INSERT INTO kv_kvs SELECT k, v FROM kv_btree
VACUUM (ANALYZE) kv_btree
ANALYZE kv_kvs
SELECT kvs_fdw_mode()
SELECT count(*) AS kvs_rows FROM kv_kvs
SQL
single "$TMP/load.sql" "$TMP/load.out" || { tail -20 "$TMP/load.out" >&2; fail "the load"; }
grep -q ERROR "$TMP/load.out" && { grep -B2 -A2 ERROR "$TMP/load.out" | head -20 >&2; fail "the load"; }
grep -q "kvs_fdw_mode = \"$MODE\"" "$TMP/load.out" || { grep kvs_fdw_mode "$TMP/load.out" >&2; fail "kvs_fdw_mode is not $MODE"; }
grep -q "kvs_rows = \"$ROWS\"" "$TMP/load.out" || fail "kv_kvs does not hold $ROWS rows"

# ---- one script per table -----------------------------------------------------
MARK=lookupcost.mark
# keys: MINSTD (x * 48271 mod 2^31 - 1: exact in awk's doubles), the same sequence
# for every table and run, uniform over 1..ROWS
keys() { awk -v n="$1" -v rows="$ROWS" -v seed="$2" 'BEGIN {
    x = seed; for (i = 0; i < n; i++) { x = (x * 48271) % 2147483647; print 1 + x % rows } }'; }
make_script() {   # make_script TABLE -> $TMP/TABLE.sql
    local t=$1 f=$TMP/$1.sql
    {
        case $t in
            kv_btree) echo "SELECT pg_prewarm('kv_btree') + pg_prewarm('kv_btree_pkey') AS warm" ;;
            kv_kvs) echo "SELECT count(*) AS warm FROM kv_kvs" ;;
        esac
        case $t in
            select1) echo 'PREPARE q(bigint) AS SELECT 1' ;;
            *) echo "PREPARE q(bigint) AS SELECT v FROM $t WHERE k = \$1" ;;
        esac
        keys "$W" 7 | sed 's/.*/EXECUTE q(&)/'
        echo "SELECT pg_stat_file('$MARK', true) IS NULL AS mark1"
        keys "$N" 11 | sed 's/.*/EXECUTE q(&)/'
        echo "SELECT pg_stat_file('$MARK', true) IS NULL AS mark2"
        echo "SELECT pg_stat_file('$MARK', true) IS NULL AS mark3"
    } >"$f"
}
rows_ok() {   # rows_ok TABLE OUT: every EXECUTE returned its row, no error
    local want=$((W + N)) got
    grep -q 'ERROR' "$2" && { grep -m3 -B1 ERROR "$2" >&2; return 1; }
    case $1 in
        select1) got=$(grep -c '1: ?column? = "1"' "$2") ;;
        *) got=$(grep -c '1: v = "' "$2") ;;
    esac
    [ "$got" = "$want" ] || { echo "lookupcost: $1: $got rows for $want lookups" >&2; return 1; }
    grep -q 'mark3 = "t"' "$2" || { echo "lookupcost: $1: the script did not run to its end" >&2; return 1; }
}

printf '# %s rows, %s lookups after %s warm-up ones, cache %s, %s mode, one single-user backend\n' \
    "$ROWS" "$N" "$W" "$CACHE" "$MODE"
printf '%-8s  %14s  %12s  %s\n' table instr/lookup syscalls/lookup "system calls per lookup"
for t in $TABLES; do
    case $t in kv_kvs|kv_btree|select1) ;; *) fail "unknown table $t (kv_kvs, kv_btree, select1)" ;; esac
    make_script "$t"
    ins=-
    if [ $CALLGRIND = 1 ]; then
        mkdir -p "$TMP/cg.$t"
        [ "$(id -u)" = 0 ] && chown "$(pgc_osuser)" "$TMP/cg.$t"
        single "$TMP/$t.sql" "$TMP/$t.cg.out" valgrind --tool=callgrind --dump-before=pg_stat_file \
            --dump-instr=no --dump-line=no --callgrind-out-file="$TMP/cg.$t/out.%p" ||
            { tail -20 "$TMP/$t.cg.out" >&2; fail "$t: the backend under callgrind"; }
        rows_ok "$t" "$TMP/$t.cg.out" || fail "$t: under callgrind"
        # parts: .1 = start .. mark 1, .2 = mark 1 .. mark 2 (the lookups), .3 = mark 2 .. 3,
        # and the rest (the dump at exit) without a number
        cg=$(ls "$TMP/cg.$t" | sed -n 's/^\(out\.[0-9]*\)\.3$/\1/p')
        [ -n "$cg" ] && [ ! -e "$TMP/cg.$t/$cg.4" ] || fail "$t: expected 3 profile parts (pg_stat_file not seen?)"
        p2=$(sed -n 's/^totals: *//p' "$TMP/cg.$t/$cg.2")
        p3=$(sed -n 's/^totals: *//p' "$TMP/cg.$t/$cg.3")
        ins=$(awk -v a="$p2" -v b="$p3" -v n="$N" 'BEGIN { if (a > b && b > 0) printf "%.0f", (a - b) / n }')
        [ -n "$ins" ] || fail "$t: instruction counts $p2, $p3"
        [ -n "$PROFILE" ] && cp "$TMP/cg.$t/$cg.2" "$PROFILE/$t.callgrind"
    fi
    sc=-
    calls=
    if [ $STRACE = 1 ]; then
        single "$TMP/$t.sql" "$TMP/$t.st.out" strace -f -qq -o "$TMP/$t.strace" ||
            { tail -20 "$TMP/$t.st.out" >&2; fail "$t: the backend under strace"; }
        rows_ok "$t" "$TMP/$t.st.out" || fail "$t: under strace"
        [ -n "$PROFILE" ] && cp "$TMP/$t.strace" "$PROFILE/$t.strace"
        # system calls between the marks: (1..2 - 2..3) / N, by name
        read -r sc calls < <(awk -v mark="\"$MARK\"" -v n="$N" '
            index($0, mark) { m++; next }
            {
                # "PID name(args" or "PID <... name resumed>": count each call once
                if ($0 ~ /resumed>/) next
                s = $2; sub(/\(.*/, "", s)
                if (s == "" || s ~ /^[+-]/) next
                if (m == 1) { a[s]++; ta++ }
                else if (m == 2) { b[s]++; tb++ }
            }
            END {
                if (m != 3) { print "-"; exit }
                printf "%.2f", (ta - tb) / n
                k = 0
                for (s in a) names[++k] = s
                for (i = 2; i <= k; i++)    # by name
                    for (j = i; j > 1 && names[j - 1] > names[j]; j--) { t = names[j]; names[j] = names[j - 1]; names[j - 1] = t }
                for (i = 1; i <= k; i++) {
                    v = (a[names[i]] - b[names[i]]) / n
                    if (v >= 0.005 || v <= -0.005) out = out sprintf(" %s %.2f", names[i], v)
                }
                print out
            }' "$TMP/$t.strace")
        [ "$sc" != - ] || fail "$t: the three markers are not in the strace log"
    fi
    printf '%-8s  %14s  %12s  %s\n' "$t" "$ins" "$sc" "${calls# }"
done
exit 0
