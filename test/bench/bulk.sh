#!/bin/bash
# test/bench/bulk.sh - bulk loads through Postgres: kvs against heap + btree.
#
# One throwaway cluster per mode (local: a private cache per backend;
# shared: kvs_fdw in shared_preload_libraries), per cache setting; in each,
# ROWS rows (bigint key, 100-byte text) loaded in one autocommit statement
# into an empty table -- COPY from a server-side CSV file and INSERT ...
# SELECT from generate_series -- at synchronous_commit off and on, kvs and
# heap + btree one after the other (interleaved, REPS rounds), so both see
# the same machine load.  Prints seconds per load (median of the rounds)
# and heap s / kvs s (above 1: kvs is faster), and the CPU seconds of the
# backend that ran it (steadier than wall clock on a busy machine; the
# flushes' waits are not in them).  Every load is checked by
# count(*).
#
# --ab A.so B.so (local mode only: a backend loads the module when it
# starts): every kvs load is made twice, with kvs_fdw.so A and then B
# installed (into pg_config --pkglibdir, which it leaves holding B), and
# B's seconds and A s / B s are printed beside them.  A and B each load a
# table of their own (kv_kvs, kv_kvsb), so neither ever opens a file the
# other wrote: A may be a build that knows only an older file format.
#
# --lookups S: after the loads of each mode and cache, point lookups by key
# on the loaded tables (pgbench -M prepared, 2 clients, uniform keys, S
# seconds a run, test/bench/pg/ycsb_c.sql): heap + btree, then kvs (with
# --ab: A on kv_kvs, then B on kv_kvsb), REPS rounds interleaved; prints the
# median tps and kvs/heap (with --ab: B/A and B/heap).
#
# Must run as root (it uses runuser).  Usage:
#   bulk.sh [--rows N] [--reps R] [--modes "local shared"]
#           [--caches "default small"] [--syncs "off on"] [--loads "copy insert"]
#           [--ab A.so B.so] [--lookups S] [--port P]
# cache "default": shared_buffers 128MB, kvs_fdw.cache_size 16MB (local) /
# kvs_fdw.shared_cache_size 128MB (shared); "small" and "large": pg.sh's
# two settings (16MB / 512MB for both).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=1000000
REPS=1
MODES="local shared"
CACHES="default"
SYNCS="off on"
LOADS="copy insert"
AB_A=
AB_B=
LOOKUPS=0
PORT=${PORT:-55440}
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --caches) CACHES=$2; shift 2 ;;
        --syncs) SYNCS=$2; shift 2 ;;
        --loads) LOADS=$2; shift 2 ;;
        --ab) AB_A=$2; AB_B=$3; shift 3 ;;
        --lookups) LOOKUPS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        *) echo "usage: $0 [--rows N] [--reps R] [--modes M] [--caches C] [--syncs S] [--port P]" >&2; exit 2 ;;
    esac
done

# TMP, cleanup, step, sql, pgb_initdb/pgb_start/pgb_stop
. "$HERE/pglib.sh"

settings() {   # settings MODE CACHE -> server options
    local sb kc
    case "$2" in
        default) sb=128MB; kc= ;;
        small) sb=16MB; kc=16MB ;;
        large) sb=512MB; kc=512MB ;;
    esac
    case "$1" in
        local) echo "-c shared_buffers=$sb${kc:+ -c kvs_fdw.cache_size=$kc}" ;;
        shared) echo "-c shared_buffers=$sb -c shared_preload_libraries=kvs_fdw${kc:+ -c kvs_fdw.shared_cache_size=$kc}" ;;
    esac
}

median() { cut -d' ' -f"${1:-1}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

load() {   # load TABLE copy|insert SYNC OUT: appends "wall-seconds backend-cpu-seconds" to OUT
    local stmt n
    sql "TRUNCATE $1" >/dev/null || return 1
    case "$2" in
        copy) stmt="COPY $1 FROM '$TMP/rows.csv' (FORMAT csv)" ;;
        insert) stmt="INSERT INTO $1 SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g" ;;
    esac
    # the backend's user + system CPU (/proc/PID/stat, clock ticks) around the statement
    cat >"$TMP/load.sql" <<SQL
SET synchronous_commit = $3;
SELECT pg_backend_pid() AS pid \gset
\setenv PID :pid
\! { date +%s%N; awk '{ print \$14 + \$15 }' /proc/\$PID/stat; } >$TMP/before
$stmt;
\! { date +%s%N; awk '{ print \$14 + \$15 }' /proc/\$PID/stat; } >$TMP/after
SQL
    "${PSQL[@]}" -f "$TMP/load.sql" >/dev/null || return 1
    n=$(sql "SELECT count(*) FROM $1")
    [ "$n" = "$ROWS" ] || { echo "# $1 $2: $n rows, expected $ROWS" >&2; return 1; }
    paste "$TMP/before" "$TMP/after" | awk -v hz="$(getconf CLK_TCK)" '
        NR == 1 { w = ($2 - $1) / 1e9 } NR == 2 { c = ($2 - $1) / hz }
        END { printf "%.3f %.2f\n", w, c }' >>"$4"
}

use_module() {   # install kvs_fdw.so $1 (a new file: running backends keep theirs)
    local d
    d=$(pg_config --pkglibdir)
    cp "$1" "$d/kvs_fdw.so.new" && mv -f "$d/kvs_fdw.so.new" "$d/kvs_fdw.so"
}

lookup_run() {   # lookup_run TABLE OUT: appends the tps of one pgbench run to OUT
    LEN=(-T "$LOOKUPS")
    run_pgbench "lookup.$1" ycsb_c "$1" uniform || return 1
    echo "$TPS" >>"$2"
}

lookups() {   # lookups MODE CACHE: point lookups on the tables the last loads filled
    local ok=1 r h a b
    : >"$TMP/lh.t"; : >"$TMP/la.t"; : >"$TMP/lb.t"
    [ -z "$AB_B" ] || [ "$(sql "SELECT count(*) FROM kv_kvsb")" = "$ROWS" ] || ok=0
    for r in $(seq "$REPS"); do
        lookup_run kv_btree "$TMP/lh.t" || ok=0
        [ -z "$AB_A" ] || use_module "$AB_A" || ok=0
        lookup_run kv_kvs "$TMP/la.t" || ok=0
        if [ -n "$AB_B" ]; then
            use_module "$AB_B" || ok=0
            lookup_run kv_kvsb "$TMP/lb.t" || ok=0
        fi
    done
    if [ $ok != 1 ]; then step "lookups_$1_$2" fail "a lookup run failed"; return; fi
    h=$(median <"$TMP/lh.t"); a=$(median <"$TMP/la.t")
    if [ -n "$AB_B" ]; then
        b=$(median <"$TMP/lb.t")
        printf '# %-6s %-7s lookups tps: heap %.0f, kvs A %.0f, kvs B %.0f; B/A %.2f, B/heap %.2f\n' "$1" "$2" "$h" "$a" "$b" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')" "$(awk -v h="$h" -v b="$b" 'BEGIN { print b / h }')"
        step "lookups_$1_$2" ok "tps heap $(paste -sd, "$TMP/lh.t"); A $(paste -sd, "$TMP/la.t"); B $(paste -sd, "$TMP/lb.t")"
    else
        printf '# %-6s %-7s lookups tps: heap %.0f, kvs %.0f; kvs/heap %.2f\n' "$1" "$2" "$h" "$a" \
            "$(awk -v h="$h" -v a="$a" 'BEGIN { print a / h }')"
        step "lookups_$1_$2" ok "tps heap $(paste -sd, "$TMP/lh.t"); kvs $(paste -sd, "$TMP/la.t")"
    fi
}

if ! pgb_initdb; then step bulk_cluster fail "initdb failed"; exit 1; fi
echo "# $ROWS rows (bigint key, 100-byte text), one autocommit statement into an empty table, $REPS round(s), median seconds"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
if [ -n "$AB_A" ]; then
    echo "# A/B: A = $AB_A, B = $AB_B"
    printf '# %-6s %-7s %-4s %-6s %9s %9s %9s %9s %9s\n' mode cache sync load "heap s" "kvs A s" "kvs B s" "A/B" "heap/B"
else
    printf '# %-6s %-7s %-4s %-6s %9s %9s %9s\n' mode cache sync load "heap s" "kvs s" "heap/kvs"
fi
for mode in $MODES; do
    for cache in $CACHES; do
        if ! pgb_start "$(settings "$mode" "$cache")"; then step "bulk_$mode" fail "server did not start"; continue; fi
        sql "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS kvs_fdw;
             DO \$\$ BEGIN CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
             DROP TABLE IF EXISTS kv_btree; DROP FOREIGN TABLE IF EXISTS kv_kvs, kv_kvsb;
             CREATE TABLE kv_btree (k bigint PRIMARY KEY, v text);
             CREATE FOREIGN TABLE kv_kvs (k bigint OPTIONS (key 'true'), v text) SERVER kvs;
             CREATE FOREIGN TABLE kv_kvsb (k bigint OPTIONS (key 'true'), v text) SERVER kvs" >/dev/null
        [ -f "$TMP/rows.csv" ] ||
            sql "COPY (SELECT g, $VALUE_EXPR FROM generate_series(1, $ROWS) g) TO '$TMP/rows.csv' (FORMAT csv)"
        for sync in $SYNCS; do
            for how in $LOADS; do
                : >"$TMP/heap.s"; : >"$TMP/kvs.s"; : >"$TMP/kvsb.s"
                ok=1
                for r in $(seq "$REPS"); do
                    load kv_btree "$how" "$sync" "$TMP/heap.s" || ok=0
                    [ -z "$AB_A" ] || use_module "$AB_A" || ok=0
                    load kv_kvs "$how" "$sync" "$TMP/kvs.s" || ok=0
                    if [ -n "$AB_B" ]; then
                        use_module "$AB_B" || ok=0
                        load kv_kvsb "$how" "$sync" "$TMP/kvsb.s" || ok=0
                    fi
                done
                h=$(median <"$TMP/heap.s"); k=$(median <"$TMP/kvs.s")
                hc=$(median 2 <"$TMP/heap.s"); kc=$(median 2 <"$TMP/kvs.s")
                runs="runs (wall s, backend CPU s): heap $(paste -sd, "$TMP/heap.s"); kvs $(paste -sd, "$TMP/kvs.s")"
                if [ $ok = 1 ] && [ -n "$AB_B" ]; then
                    b=$(median <"$TMP/kvsb.s"); bc=$(median 2 <"$TMP/kvsb.s")
                    printf '# %-6s %-7s %-4s %-6s %9.2f %9.2f %9.2f %9.2f %9.2f   CPU s: %.2f %.2f %.2f, A/B %.2f\n' "$mode" "$cache" "$sync" "$how" "$h" "$k" "$b" \
                        "$(awk -v a="$k" -v b="$b" 'BEGIN { print a / b }')" "$(awk -v h="$h" -v b="$b" 'BEGIN { print h / b }')" \
                        "$hc" "$kc" "$bc" "$(awk -v a="$kc" -v b="$bc" 'BEGIN { print a / b }')"
                    step "bulk_${mode}_${cache}_${sync}_$how" ok "heap ${h}s kvs A ${k}s B ${b}s; $runs; B $(paste -sd, "$TMP/kvsb.s")"
                elif [ $ok = 1 ]; then
                    printf '# %-6s %-7s %-4s %-6s %9.2f %9.2f %9.2f   CPU s: %.2f %.2f\n' "$mode" "$cache" "$sync" "$how" "$h" "$k" \
                        "$(awk -v h="$h" -v k="$k" 'BEGIN { print h / k }')" "$hc" "$kc"
                    step "bulk_${mode}_${cache}_${sync}_$how" ok "heap ${h}s kvs ${k}s; $runs"
                else
                    step "bulk_${mode}_${cache}_${sync}_$how" fail "a load failed"
                fi
            done
        done
        [ "$LOOKUPS" = 0 ] || lookups "$mode" "$cache"
        sql "DROP FOREIGN TABLE kv_kvs, kv_kvsb; DROP TABLE kv_btree" >/dev/null
        pgb_stop
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $FAILED
