#!/bin/bash
# test/bench/pg.sh - the through-Postgres half of the benchmark.
#
# Starts a throwaway PostgreSQL 15 cluster (run by the `postgres` OS user,
# port 55432 by default, its own temp dir, stopped and removed by a trap),
# loads ROWS rows (bigint key, 100-byte text) into a heap table with a btree
# primary key, a heap table with a hash index and (when the extension is
# installed) a kvs_fdw foreign table -- each by COPY and by multi-row INSERT
# (1000 rows a statement), timed per table -- then runs pgbench, prepared,
# 2 clients, YCSB C (read only), B (95/5) and A (50/50) with uniform and
# scrambled Zipfian keys, plus `SELECT 1` as the ceiling, at a large and a
# small cache setting (shared_buffers and kvs_fdw.cache_size).  Beside each
# tps: shared_buffers' hit ratio for that run (pg_statio); and, from a
# one-connection run, the kvs cache's hit ratio (kvs_fdw_cache_stats()).
# That is local mode (each backend its own kvs cache of kvs_fdw.cache_size).
# Shared mode (--mode shared|both): the server restarted with kvs_fdw in
# shared_preload_libraries and kvs_fdw.shared_cache_size = kvs_fdw.cache_size,
# the pool warmed by a full scan (kvs_fdw.scan_ring off), then the point
# lookups alone (YCSB C) on kvs and heap + btree beside SELECT 1; a last table
# per cache setting puts the lookups of both modes side by side.
#
# Must run as root (it uses runuser).  Usage:
#   pg.sh [--rows N] [--secs S | --xacts T] [--out TSV] [--port P]
#         [--caches "large small"] [--kvs-one-xacts N] [--load-timeout S]
#         [--cache-large "SB KC"] [--cache-small "SB KC"] [--mode local|shared|both]
# Prints "# " comment lines and one "step <name> ok|fail <detail>" line per
# step for the caller (test/bench/run) to turn into TAP; exits non-zero if
# any step failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=1000000
SECS=8
XACTS=
ONE_XACTS=100000
OUT=/dev/null
PORT=55432
CACHES="large small"
MODE=both             # local: every mix, private caches; shared: lookups with the shared pool; both
LOAD_TIMEOUT=120      # seconds per load statement (keeps the full run inside its budget)
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --xacts) XACTS=$2; shift 2 ;;
        --kvs-one-xacts) ONE_XACTS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --caches) CACHES=$2; shift 2 ;;
        --load-timeout) LOAD_TIMEOUT=$2; shift 2 ;;
        --cache-large) CACHE_LARGE=$2; shift 2 ;;
        --cache-small) CACHE_SMALL=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        *) echo "usage: $0 [--rows N] [--secs S|--xacts T] [--out TSV] [--port P] [--mode local|shared|both]" >&2; exit 2 ;;
    esac
done
case "$MODE" in
    local|shared) MODES=$MODE ;;
    both) MODES="local shared" ;;
    *) echo "$0: --mode is local, shared or both" >&2; exit 2 ;;
esac

# TMP, cleanup, step, sql, pgb_initdb/pgb_start/pgb_stop, key_expr, script, run_pgbench
. "$HERE/pglib.sh"

CACHE_LARGE=${CACHE_LARGE:-"512MB 512MB"}   # shared_buffers, kvs_fdw.cache_size: both above the data (~150 MB)
CACHE_SMALL=${CACHE_SMALL:-"16MB 16MB"}     # about 1/10 of the data
cache_setting() {   # large|small -> "shared_buffers kvs_cache_size"
    case "$1" in
        large) echo "$CACHE_LARGE" ;;
        small) echo "$CACHE_SMALL" ;;
    esac
}

start_server() {   # start_server large|small [local|shared]
    local sb kc pre=
    read -r sb kc <<<"$(cache_setting "$1")"
    [ "${2:-local}" = shared ] && pre="-c shared_preload_libraries=kvs_fdw -c kvs_fdw.shared_cache_size=$kc"
    pgb_start "-c shared_buffers=$sb -c kvs_fdw.cache_size=$kc $pre"
}
stop_server() { pgb_stop; }

# ---- cluster --------------------------------------------------------------
if ! pgb_initdb; then
    step pg_cluster fail "initdb failed"
    exit 1
fi
if ! start_server large; then
    step pg_cluster fail "server did not start"
    exit 1
fi
step pg_cluster ok "PostgreSQL $(sql 'SHOW server_version') on port $PORT"

HAVE_KVS=0
if [ "$(sql "SELECT count(*) FROM pg_available_extensions WHERE name = 'kvs_fdw'")" = 1 ]; then
    if sql "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;" >"$TMP/ext.log" 2>&1; then
        HAVE_KVS=1
    else
        sed 's/^/# /' "$TMP/ext.log"
        step pg_kvs_extension fail "CREATE EXTENSION kvs_fdw failed"
    fi
else
    echo "# kvs_fdw is not installed: Postgres figures for heap tables only"
fi
if [ $HAVE_KVS = 1 ]; then
    echo "# kvs_fdw: $(sql "SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw'"), module installed $(date -u -r "$(pg_config --pkglibdir)/kvs_fdw.so" "+%Y-%m-%d %H:%M UTC" 2>/dev/null)"
fi
sql "CREATE EXTENSION pg_prewarm" >/dev/null

TABLES="kv_btree kv_hash"
[ $HAVE_KVS = 1 ] && TABLES="kv_kvs $TABLES"

create_table() {
    case "$1" in
        kv_btree) sql "CREATE TABLE kv_btree (k bigint PRIMARY KEY, v text)" ;;
        kv_hash)  sql "CREATE TABLE kv_hash (k bigint NOT NULL, v text); CREATE INDEX kv_hash_k ON kv_hash USING hash (k)" ;;
        kv_kvs)   sql "CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs" ;;
    esac
}

# ---- load phase -------------------------------------------------------------
sql "COPY (SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g) TO '$TMP/rows.csv' (FORMAT csv)"
sql "COPY (SELECT 'INSERT INTO :\"tbl\" VALUES ' || string_agg(format('(%s,%L)', g, $VALUE_EXPR), ',' ORDER BY g) || ';'
           FROM generate_series(1, $ROWS) g GROUP BY (g - 1) / 1000 ORDER BY (g - 1) / 1000)
      TO '$TMP/insert.sql'"
echo "# load: $ROWS rows (bigint, 100-byte text); COPY from a server-side CSV file; multi-row INSERT = $(( (ROWS + 999) / 1000 )) statements of 1000 rows through psql"
printf '# %-9s %9s %9s %9s %9s\n' table "COPY s" "rows/s" "INSERT s" "rows/s"
for t in $TABLES; do
    ok=1
    create_table "$t" || ok=0
    t0=$(now_ns)
    timed_out=
    if ! "${PSQL[@]}" -c "SET statement_timeout = '${LOAD_TIMEOUT}s'" \
           -c "COPY $t FROM '$TMP/rows.csv' (FORMAT csv)" >"$TMP/copy.log" 2>&1; then
        if grep -q "statement timeout" "$TMP/copy.log"; then timed_out=1; else ok=0; sed 's/^/# /' "$TMP/copy.log"; fi
    fi
    copy_s=$(secs_since "$t0")
    n1=$(sql "SELECT count(*) FROM $t")
    if [ -n "$timed_out" ]; then
        echo "# $t: COPY of $ROWS rows did not finish in ${LOAD_TIMEOUT}s ($n1 rows in when cancelled)"
        printf 'pgload\t%s\t%s\tcopy_timeout_rows\t%s\n' "$t" "$ROWS" "$n1" >>"$OUT"
        n1=$ROWS
    fi
    sql "TRUNCATE $t" || ok=0
    t0=$(now_ns)
    "${PSQL[@]}" -v tbl="$t" -f "$TMP/insert.sql" || ok=0
    ins_s=$(secs_since "$t0")
    n2=$(sql "SELECT count(*) FROM $t")
    case "$t" in kv_kvs) sql "ANALYZE $t" ;; *) sql "VACUUM (ANALYZE) $t" ;; esac
    if [ $ok = 1 ] && [ "$n1" = "$ROWS" ] && [ "$n2" = "$ROWS" ]; then
        [ -n "$timed_out" ] && copy_s=">$LOAD_TIMEOUT"
        printf '# %-9s %9s %9.0f %9.2f %9.0f\n' "$t" "$copy_s" \
            "$(awk -v r="$ROWS" -v s="${copy_s#>}" 'BEGIN { print r / s }')" \
            "$ins_s" "$(awk -v r="$ROWS" -v s="$ins_s" 'BEGIN { print r / s }')"
        [ -n "$timed_out" ] || printf 'pgload\t%s\t%s\tcopy_s\t%s\n' "$t" "$ROWS" "$copy_s" >>"$OUT"
        printf 'pgload\t%s\t%s\tinsert_s\t%s\n' "$t" "$ROWS" "$ins_s" >>"$OUT"
        step "pg_load_$t" ok "COPY ${copy_s}s$([ -n "$timed_out" ] && echo " (cancelled: timeout)"), INSERT ${ins_s}s"
    else
        step "pg_load_$t" fail "load failed or wrong count (COPY: $n1, INSERT: $n2 rows)"
    fi
done
if [ $HAVE_KVS = 1 ]; then
    echo "# kvs_fdw_stats(kv_kvs) after the load:"
    "${PSQL[@]}" -c "SELECT * FROM kvs_fdw_stats('kv_kvs')" -x 2>&1 | sed 's/^/#   /'
    sql "CREATE TABLE kvs_cache_log AS SELECT ''::text AS label, * FROM kvs_fdw_cache_stats() WITH NO DATA" \
        || step pg_kvs_cache_log fail "kvs_fdw_cache_stats() unusable"
fi
sql "CHECKPOINT"

# ---- pgbench ------------------------------------------------------------------
if [ -n "$XACTS" ]; then LEN=(-t "$XACTS"); LENDESC="$XACTS transactions per client"
else LEN=(-T "$SECS"); LENDESC="${SECS}s per run"; fi


warm_kvs() {   # a full scan of kv_kvs with the scan ring off: the pool keeps the pages
    "${PSQL[@]}" -At -c "SET kvs_fdw.scan_ring = off" -c "SELECT count(*) FROM kv_kvs" >/dev/null
}
pool_hit() {   # the shared pool's hit % since kvs_fdw_reset_stats()
    sql "SELECT coalesce(round(100.0 * hits / nullif(hits + reads, 0), 1)::text, '-') FROM kvs_fdw_cache_stats() WHERE file IS NULL"
}
lookup_table() {   # lookup_table CACHE: the point lookups of every mode run, side by side
    echo "# point lookups (YCSB C), cache $1: shared_buffers=$SB, kvs cache $KC (local: per backend; shared: one pool)"
    printf '# %-8s %-6s %9s %9s %9s %9s %9s\n' dist mode "SELECT 1" kv_kvs kv_btree "kvs/btree" "kvs/sel1"
    local dist mode
    for dist in uniform zipf; do
        for mode in $MODES; do
            [ -n "${LK[$mode.$dist.kv_kvs]:-}" ] || continue
            awk -v d="$dist" -v m="$mode" -v s="${LK[$mode.$dist.select1]}" -v k="${LK[$mode.$dist.kv_kvs]}" -v b="${LK[$mode.$dist.kv_btree]}" \
                'BEGIN { printf "# %-8s %-6s %9.0f %9.0f %9.0f %9.2f %9.2f\n", d, m, s, k, b, (b > 0 ? k / b : 0), (s > 0 ? k / s : 0) }'
        done
    done
}

local_mode() {   # local_mode CACHE: every mix, each backend with its own kvs cache
    local cache=$1 dist mix t line allok hit f label r tps1
    for t in $TABLES; do
        case "$t" in kv_kvs) ;; kv_btree) sql "SELECT pg_prewarm('kv_btree'), pg_prewarm('kv_btree_pkey')" >/dev/null ;;
            kv_hash) sql "SELECT pg_prewarm('kv_hash'), pg_prewarm('kv_hash_k')" >/dev/null ;; esac
    done
    echo "# pgbench -M prepared -c 2 -j 2, $LENDESC, $ROWS rows; cache $cache: shared_buffers=$SB, kvs_fdw.cache_size=$KC (per backend)"
    echo "# tps (shared_buffers hit %); zipf = 1 + permute(random_zipfian(0, n-1, $ZIPF_S), n)"
    echo "# durability: synchronous_commit = off; mixes b and a write, and a transaction that writes a kvs table commits synchronously whatever the setting (src/fdw/txn.c: the xid's WAL flush, the journal fsync, the commit record), so their kvs column pays three fsyncs per writing transaction where the heap pays none (the same mode on both sides: test/bench/durable.sh)"
    printf '# %-8s %-4s %9s' dist mix "SELECT 1"
    for t in $TABLES; do printf ' %17s' "$t"; done
    [ $HAVE_KVS = 1 ] && printf ' %9s %9s' "kvs/btree" "kvs/sel1"
    printf '\n'
    for dist in uniform zipf; do
        run_pgbench "select1.$cache.$dist" select1 none "$dist"; S1=$TPS
        LK[local.$dist.select1]=$S1
        printf 'pg\t%s\t%s\t-\tselect1\ttps\t%s\n' "$cache" "$dist" "$S1" >>"$OUT"
        [ "$S1" != 0 ] || step "pg_select1_${cache}_$dist" fail "pgbench SELECT 1 failed"
        for mix in c b a; do
            line=$(printf '# %-8s %-4s %9.0f' "$dist" "$mix" "$S1")
            declare -A T=()
            allok=1
            for t in $TABLES; do
                sql "SELECT pg_stat_reset()" >/dev/null
                if run_pgbench "$mix.$t.$cache.$dist" "ycsb_$mix" "$t" "$dist"; then
                    sleep 0.3   # let the clients' statistics reach the shared stats
                    hit=$(sb_hit "$t")
                else
                    hit="-"; allok=0
                fi
                T[$t]=$TPS
                [ "$mix" = c ] && LK[local.$dist.$t]=$TPS
                line+=$(printf ' %9.0f (%5s)' "$TPS" "$hit")
                printf 'pg\t%s\t%s\t%s\t%s\ttps\t%s\n' "$cache" "$dist" "$mix" "$t" "$TPS" >>"$OUT"
                printf 'pg\t%s\t%s\t%s\t%s\tsb_hit_pct\t%s\n' "$cache" "$dist" "$mix" "$t" "$hit" >>"$OUT"
            done
            if [ $HAVE_KVS = 1 ]; then
                line+=$(awk -v k="${T[kv_kvs]}" -v b="${T[kv_btree]}" -v s="$S1" \
                    'BEGIN { printf " %9.2f %9.2f", (b > 0 ? k / b : 0), (s > 0 ? k / s : 0) }')
            fi
            echo "$line"
            if [ $allok = 1 ]; then step "pg_ycsb_${mix}_${cache}_$dist" ok "$(echo "$line" | tr -s ' ' | cut -c3-)"
            else step "pg_ycsb_${mix}_${cache}_$dist" fail "a pgbench run failed"; fi
        done
        if [ $HAVE_KVS = 1 ]; then
            # one connection, same key distribution, counters read by the client itself
            f=$(script kvscache kv_kvs "$dist")
            label="$cache.$dist"
            if "$PGBIN/pgbench" -n -M prepared -c 1 -j 1 -t "$ONE_XACTS" -D nrows="$ROWS" -D ntx="$ONE_XACTS" \
                 -D i=0 -D label="$label" -f "$f" -h "$TMP" -p "$PORT" -U postgres postgres >"$TMP/one.log" 2>&1 \
               && r=$(sql "SELECT round(100.0 * hits / nullif(hits + reads, 0), 1)
                           FROM kvs_cache_log WHERE label = '$label' AND file IS NULL") && [ -n "$r" ]; then
                tps1=$(sed -n 's/^tps = \([0-9.]*\) .*without initial.*/\1/p' "$TMP/one.log")
                echo "# kvs cache hit ratio, one connection, $ONE_XACTS lookups, $dist, cache_size=$KC: $r% ($tps1 tps)"
                printf 'pg\t%s\t%s\tc1\tkv_kvs\tkvs_hit_pct\t%s\n' "$cache" "$dist" "$r" >>"$OUT"
                step "pg_kvs_cache_${cache}_$dist" ok "hit ratio $r%"
            else
                grep -iE "error|abort" "$TMP/one.log" | head -5 | sed 's/^/#   /'
                step "pg_kvs_cache_${cache}_$dist" fail "one-connection kvs cache run failed"
            fi
        fi
    done
}

shared_mode() {   # shared_mode CACHE: the lookups alone, kvs_fdw preloaded, the pool warmed as shared_buffers is
    local cache=$1 dist t ok hit frames line
    # shared mode: the lookups alone, the pool warmed as shared_buffers is
    sql "SELECT pg_prewarm('kv_btree'), pg_prewarm('kv_btree_pkey')" >/dev/null
    warm_kvs
    frames=$(sql "SELECT count(*) FROM kvs_fdw_buffercache WHERE tbl = 'kv_kvs'::regclass")
    echo "# shared mode: kvs_fdw preloaded, kvs_fdw.shared_cache_size=$KC, $frames frames hold kv_kvs after a full scan; pgbench -M prepared -c 2 -j 2, $LENDESC"
    printf '# %-8s %9s %17s %17s %9s %9s\n' dist "SELECT 1" "kv_kvs (pool %)" "kv_btree (sb %)" "kvs/btree" "kvs/sel1"
    declare -A H=()
    for dist in uniform zipf; do
        ok=1
        run_pgbench "select1.$cache.$dist.shared" select1 none "$dist" || ok=0
        LK[shared.$dist.select1]=$TPS
        printf 'pgmode\t%s\t%s\tshared\tselect1\ttps\t%s\n' "$cache" "$dist" "$TPS" >>"$OUT"
        for t in kv_kvs kv_btree; do
            sql "SELECT pg_stat_reset(), kvs_fdw_reset_stats()" >/dev/null
            if run_pgbench "c.$t.$cache.$dist.shared" ycsb_c "$t" "$dist"; then
                sleep 0.3
                if [ $t = kv_kvs ]; then hit=$(pool_hit); else hit=$(sb_hit "$t"); fi
            else
                hit="-"; ok=0
            fi
            LK[shared.$dist.$t]=$TPS; H[$t]=$hit
            printf 'pgmode\t%s\t%s\tshared\t%s\ttps\t%s\n' "$cache" "$dist" "$t" "$TPS" >>"$OUT"
        done
        line=$(awk -v d="$dist" -v s="${LK[shared.$dist.select1]}" -v k="${LK[shared.$dist.kv_kvs]}" -v b="${LK[shared.$dist.kv_btree]}" \
                   -v kh="${H[kv_kvs]}" -v bh="${H[kv_btree]}" \
            'BEGIN { printf "%-8s %9.0f %9.0f (%5s) %9.0f (%5s) %9.2f %9.2f", d, s, k, kh, b, bh, (b > 0 ? k / b : 0), (s > 0 ? k / s : 0) }')
        echo "# $line"
        if [ $ok = 1 ]; then step "pg_lookup_shared_${cache}_$dist" ok "$(echo "$line" | tr -s ' ')"
        else step "pg_lookup_shared_${cache}_$dist" fail "a pgbench run failed"; fi
    done
}

for cache in $CACHES; do
    read -r SB KC <<<"$(cache_setting "$cache")"
    declare -A LK=()
    for mode in $MODES; do
        [ "$mode" = shared ] && [ $HAVE_KVS = 0 ] && continue
        stop_server
        if ! start_server "$cache" "$mode"; then
            step "pg_server_${cache}_$mode" fail "restart with shared_buffers=$SB ($mode mode) failed"
            continue
        fi
        if [ $HAVE_KVS = 1 ] && [ "$(sql "SELECT kvs_fdw_mode()")" != "$mode" ]; then
            step "pg_server_${cache}_$mode" fail "kvs_fdw_mode() is not $mode"
            continue
        fi
        if [ "$mode" = local ]; then local_mode "$cache"; else shared_mode "$cache"; fi
    done
    [ $HAVE_KVS = 1 ] && lookup_table "$cache"
done
[ $HAVE_KVS = 1 ] && echo "# kvs_fdw_check: $(sql "SELECT count(*) FROM kvs_fdw_check('kv_kvs')") problems"
exit $FAILED
