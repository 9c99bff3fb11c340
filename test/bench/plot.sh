#!/bin/bash
# test/bench/plot.sh TSV PNG - draws the report of a bench run (test/bench/run)
# with gnuplot: engine ops/s with a big and a small cache, kvs's fill-factor
# trade-off (pages per get against bytes per record, anchors' bytes per record
# beside it), and the Postgres tps and load times.
set -eu
TSV=$1
PNG=$2
D=$(mktemp -d /tmp/kvs_plot.XXXXXX)
trap 'rm -rf "$D"' EXIT
PHASES="load get absent replace get1 put1 delete scan cold disk"

engines() { awk -F'\t' -v l="$1" '$1 == l && $7 == "get" { print $6 }' "$TSV"; }
table() {   # table LABEL -> D/LABEL.dat: phase, one column of Mops/s per engine
    local l=$1 e
    local es; es=$(engines "$l")
    { printf 'phase'; for e in $es; do printf ' %s' "$e"; done; printf '\n'
      for p in $PHASES; do
          printf '%s' "$p"
          for e in $es; do
              awk -F'\t' -v l="$l" -v e="$e" -v p="$p" '$1 == l && $6 == e && $7 == p { printf " %.4f", $9 / 1e6; f = 1 }
                  END { if (!f) printf " 0" }' "$TSV"
          done
          printf '\n'
      done; } >"$D/$l.dat"
    echo "$es" | wc -w
}
NB=$(table main-big)
NT=$(table main-tenth)
N=$(awk -F'\t' '$1 == "main-big" { print $3; exit }' "$TSV")
awk -F'\t' '$1 == "sweep" { print $8, $7, $5 }' "$TSV" >"$D/sweep.dat"
awk -F'\t' '$1 == "main-big" && $7 == "bytes_per_record" { print $9, $6 }' "$TSV" >"$D/bpr.dat"
YMAX=$(awk 'BEGIN { m = 1.05 } $2 > m { m = $2 } END { printf "%.3f", m + 0.03 }' "$D/sweep.dat")
# Postgres: mix rows, table columns, tps in thousands
pgtable() {   # pgtable CACHE DIST
    local t
    local ts; ts=$(awk -F'\t' -v c="$1" -v d="$2" '$1 == "pg" && $2 == c && $3 == d && $4 == "c" && $6 == "tps" { print $5 }' "$TSV")
    { printf 'mix select1'; for t in $ts; do printf ' %s' "$t"; done; printf '\n'
      for m in c b a; do
          printf '%s' "$(echo $m | tr a-z A-Z)"
          awk -F'\t' -v c="$1" -v d="$2" '$1 == "pg" && $2 == c && $3 == d && $5 == "select1" && $6 == "tps" { printf " %.3f", $7 / 1e3 }' "$TSV"
          for t in $ts; do
              awk -F'\t' -v c="$1" -v d="$2" -v m="$m" -v t="$t" '$1 == "pg" && $2 == c && $3 == d && $4 == m && $5 == t && $6 == "tps" { printf " %.3f", $7 / 1e3 }' "$TSV"
          done
          printf '\n'
      done; } >"$D/pg-$1-$2.dat"
    echo $(( $(echo "$ts" | wc -w) + 1 ))
}
HAVE_PG=0
if grep -q '^pg	' "$TSV"; then
    HAVE_PG=1
    NPU=$(pgtable large uniform)
    NPZ=$(pgtable large zipf)
fi
awk -F'\t' '$1 == "pgload" { v[$2, $4] = $5; t[$2] = 1 } END { for (x in t) print x, v[x, "copy_s"], v[x, "insert_s"] }' "$TSV" >"$D/load.dat"

cat >"$D/p.gp" <<GP
set terminal pngcairo size 1500,1100 font ",10" noenhanced
set output "$PNG"
set multiplot layout 2,3 title "kvs_fdw benchmark ($(basename "$TSV" .tsv))"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right font ",8"
set grid ytics
set xtics font ",9" rotate by -30
set logscale y
set ylabel "million ops/s (log)"
set title "Engine alone, 16 B keys / 100 B values, N=$N, cache > data"
plot for [i=2:$((NB + 1))] "$D/main-big.dat" using i:xtic(1) title columnheader(i)
set title "Engine alone, cache = 1/10 of data"
plot for [i=2:$((NT + 1))] "$D/main-tenth.dat" using i:xtic(1) title columnheader(i)
unset logscale y
set xtics norotate
set style data linespoints
set title "kvs fill factor 50..95: pages per get vs file bytes per record\n(vertical lines: anchors' bytes per record)"
set xlabel "file bytes per record"
set ylabel "bucket-chain pages per get"
set key bottom left
set yrange [0.995:$YMAX]
plot "$D/sweep.dat" using 1:2 with linespoints pt 7 title "kvs, fill factor 50..95", \
     "$D/sweep.dat" using 1:2:(sprintf("%d", \$3)) with labels offset 0,-1 notitle, \
     "$D/bpr.dat" using 1:(0.995):(0):($YMAX - 0.995) with vectors nohead dt 2 lw 2 notitle, \
     "$D/bpr.dat" using 1:($YMAX - 0.004):2 with labels rotate by 90 right offset -0.8,0 notitle
set autoscale y
unset xlabel
set style data histograms
set key top right
GP
if [ $HAVE_PG = 1 ]; then
cat >>"$D/p.gp" <<GP
set ylabel "thousand tps"
set title "Postgres, pgbench prepared, 2 clients, uniform keys, large cache"
plot for [i=2:$NPU+1] "$D/pg-large-uniform.dat" using i:xtic(1) title columnheader(i)
set title "Postgres, scrambled Zipfian keys, large cache"
plot for [i=2:$NPZ+1] "$D/pg-large-zipf.dat" using i:xtic(1) title columnheader(i)
set ylabel "seconds"
set yrange [0:*]
set title "Postgres load, $(awk -F'\t' '$1 == "pgload" { print $3; exit }' "$TSV") rows: COPY and multi-row INSERT"
plot "$D/load.dat" using 2:xtic(1) title "COPY", "" using 3 title "INSERT (1000 rows/statement)"
GP
fi
echo "unset multiplot" >>"$D/p.gp"
gnuplot "$D/p.gp"
