#!/bin/bash
# test/bench/report.sh TSV - turns a bench run's TSV into Markdown tables (the
# "Latest full figures" of README.md are this script's output for the last full run).
set -eu
TSV=$1
PH="load get absent replace get1 put1 delete scan cold disk"

fmt() { awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2fM", v / 1e6; else if (v >= 1e3) printf "%.0fK", v / 1e3; else printf "%.0f", v }'; }

engine_table() {   # LABEL TITLE
    local l=$1 es e p v k
    es=$(awk -F'\t' -v l="$l" '$1 == l && $7 == "get" { print $6 }' "$TSV")
    [ -n "$es" ] || return 0
    echo
    echo "**$2** ($(awk -F'\t' -v l="$l" '$1 == l { printf "%s, N=%s, %s keys, cache %s", $2, $3, $4, $5; exit }' "$TSV"))"
    echo
    printf '| ops/s |'; for p in $PH; do printf ' %s |' "$p"; done; printf ' B/rec | peak RSS MB |\n'
    printf '|---|'; for p in $PH; do printf -- '---:|'; done; printf -- '---:|---:|\n'
    for e in $es; do
        printf '| %s |' "$e"
        for p in $PH; do
            v=$(awk -F'\t' -v l="$l" -v e="$e" -v p="$p" '$1 == l && $6 == e && $7 == p { print $9 }' "$TSV")
            printf ' %s |' "$(fmt "${v:-0}")"
        done
        printf ' %s | %s |\n' "$(awk -F'\t' -v l="$l" -v e="$e" '$1 == l && $6 == e && $7 == "bytes_per_record" { printf "%.1f", $9 }' "$TSV")" \
            "$(awk -F'\t' -v l="$l" -v e="$e" '$1 == l && $6 == e && $7 == "peak_rss" { printf "%.0f", $9 }' "$TSV")"
    done
    if echo "$es" | grep -qx kvs; then
        echo
        printf '| kvs / x |'; for p in $PH; do printf ' %s |' "$p"; done; printf '\n'
        printf '|---|'; for p in $PH; do printf -- '---:|'; done; printf '\n'
        for e in $es; do
            [ "$e" = kvs ] && continue
            printf '| %s |' "$e"
            for p in $PH; do
                awk -F'\t' -v l="$l" -v e="$e" -v p="$p" '$1 == l && $7 == p && $6 == "kvs" { k = $9 } $1 == l && $7 == p && $6 == e { x = $9 }
                    END { printf " %.2f |", (x > 0 ? k / x : 0) }' "$TSV"
            done
            printf '\n'
        done
        k=$(awk -F'\t' -v l="$l" '$1 == l && $6 == "kvs" && $7 == "pages_per_get" { printf "%.3f", $9 }' "$TSV")
        echo
        echo "kvs bucket-chain pages per successful get: $k"
    fi
}

echo "### Engine alone"
for l in main-big main-tenth zipf-big zipf-tenth s8-uniform-big s8-zipf-big s8-uniform-tenth \
         s32-uniform-big s32-zipf-big s32-uniform-tenth; do
    case $l in
        main-big) t="Main shape, cache larger than the data" ;;
        main-tenth) t="Main shape, cache 1/10 of the data" ;;
        zipf-*) t="Main shape, Zipfian keys" ;;
        s8-*) t="8-byte keys, 8-byte values" ;;
        s32-*) t="32-byte keys, 1000-byte values" ;;
    esac
    engine_table "$l" "$t"
done

if grep -q '^sweep	' "$TSV"; then
    echo
    echo "**kvs fill-factor sweep** (16/100, cache > data)"
    echo
    echo "| fill factor | pages per get | file bytes per record | load/s | get/s |"
    echo "|---:|---:|---:|---:|---:|"
    awk -F'\t' 'function f(v) { return v >= 1e6 ? sprintf("%.2fM", v / 1e6) : sprintf("%.0fK", v / 1e3) }
        $1 == "sweep" { printf "| %s | %.3f | %.1f | %s | %s |\n", $5, $7, $8, f($9), f($10) }' "$TSV"
fi

if grep -q '^pgload	' "$TSV"; then
    echo
    echo "### Through Postgres"
    echo
    echo "**Load, $(awk -F'\t' '$1 == "pgload" { print $3; exit }' "$TSV") rows** (seconds)"
    echo
    echo "| table | COPY | multi-row INSERT |"
    echo "|---|---:|---:|"
    awk -F'\t' '$1 == "pgload" { v[$2, $4] = $5; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
        END { for (i = 0; i < n; i++) { t = order[i]
                c = ((t, "copy_s") in v) ? v[t, "copy_s"] : "timeout (" v[t, "copy_timeout_rows"] " rows in)"
                printf "| %s | %s | %s |\n", t, c, v[t, "insert_s"] } }' "$TSV"
    for cache in large small; do
        for dist in uniform zipf; do
            grep -q "^pg	$cache	$dist	" "$TSV" || continue
            echo
            echo "**pgbench tps, cache $cache, $dist keys** (shared_buffers hit % in parentheses)"
            echo
            tabs=$(awk -F'\t' -v c="$cache" -v d="$dist" '$1 == "pg" && $2 == c && $3 == d && $4 == "c" && $6 == "tps" { print $5 }' "$TSV")
            printf '| mix | SELECT 1 |'; for t in $tabs; do printf ' %s |' "$t"; done
            echo "$tabs" | grep -qx kv_kvs && printf ' kvs / btree | kvs / SELECT 1 |'
            printf '\n|---|---:|'; for t in $tabs; do printf -- '---:|'; done
            echo "$tabs" | grep -qx kv_kvs && printf -- '---:|---:|'
            printf '\n'
            for m in c b a; do
                awk -F'\t' -v c="$cache" -v d="$dist" -v m="$m" -v tabs="$tabs" '
                    $1 == "pg" && $2 == c && $3 == d && $5 == "select1" && $6 == "tps" { s = $7 }
                    $1 == "pg" && $2 == c && $3 == d && $4 == m && $6 == "tps" { tps[$5] = $7 }
                    $1 == "pg" && $2 == c && $3 == d && $4 == m && $6 == "sb_hit_pct" { hit[$5] = $7 }
                    END { n = split(tabs, T, "\n"); printf "| %s | %.0f |", toupper(m), s
                          for (i = 1; i <= n; i++) printf " %.0f%s |", tps[T[i]], (hit[T[i]] == "-" ? "" : " (" hit[T[i]] ")")
                          if ("kv_kvs" in tps) printf " %.2f | %.2f |", (tps["kv_btree"] > 0 ? tps["kv_kvs"] / tps["kv_btree"] : 0), (s > 0 ? tps["kv_kvs"] / s : 0)
                          printf "\n" }' "$TSV"
            done
            awk -F'\t' -v c="$cache" -v d="$dist" '$1 == "pg" && $2 == c && $3 == d && $6 == "kvs_hit_pct" {
                printf "\nkvs cache hit ratio (one connection, YCSB C): %s %%\n", $7 }' "$TSV"
        done
    done
fi
