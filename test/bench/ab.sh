#!/bin/bash
# test/bench/ab.sh - the kvs engine at two commits, side by side: is B as fast as A?
#
#   test/bench/ab.sh [--instructions] [-r RUNS] [-n N] [-s KLEN/VLEN] [-d uniform|zipf] [-c big|tenth] REV_A REV_B
#
# Exports each commit with `git archive` into its own temp dir, builds the
# engine and its benchmark (test/bench, as committed at that commit) there,
# then runs the two binaries interleaved, A B A B ..., RUNS times each
# (default 5) on one workload: bench.c's engine half for kvs alone, default
# 1M records of 16-byte keys and 100-byte values, uniform keys, cache larger
# than the data.  One bench run holds every phase, so get1 and put1 (one
# operation per section) come from the same runs as load, get, absent, ...
# Prints per metric the median ops/s of A and of B, the spread of each
# (slowest and fastest run against the median) and B/A, plus the machine load.
# Figures are never asserted: exit status 0 unless a build or a run failed.
#
# Needs only git, make, a C compiler and libxxhash-dev (test/lib/deps.sh
# installs them as root); no network.  Interleaving puts A and B under the
# same load: on a shared machine read the ratio, not the absolute figures.
# Takes about 30 s per A+B pair at 1M records here; run it at low priority
# (nice -n 10) when others share the machine.  Not part of test/run (too long).
#
# BENCH_CLOCK=cpu (bench.c) times CPU instead of wall clock, for a busy box.
#
# --instructions: count instead of time.  Each run goes under valgrind's callgrind
# (test/bench/icount.sh), which counts the user-space instructions of every phase; the
# table then gives instructions per operation (lower is better) and B/A, which does not
# depend on the machine's load (two runs of one binary agree to a few per million).
# Defaults then N = 100,000 and 3 runs; about 12 s per run here.  It measures CPU work
# only: system calls, cache misses and I/O waits are not in it (time mode sees those).
# Needs valgrind.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=5
N=1000000
SHAPE=16/100
DIST=uniform
CACHE=big
METRICS="load get absent get1 put1 replace delete"
MODE=time
RUNS_SET=0
N_SET=0

usage() { sed -n '2,4p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        -r) RUNS=$2; RUNS_SET=1; shift 2 ;;
        -n) N=$2; N_SET=1; shift 2 ;;
        -s) SHAPE=$2; shift 2 ;;
        -d) DIST=$2; shift 2 ;;
        -c) CACHE=$2; shift 2 ;;
        --instructions) MODE=instructions; shift ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        -*) usage ;;
        *) break ;;
    esac
done
[ $# = 2 ] || usage
if [ $MODE = instructions ]; then
    # counts barely vary: fewer and smaller runs than timing needs (unless given)
    [ $RUNS_SET = 1 ] || RUNS=3
    [ $N_SET = 1 ] || N=100000
fi
case $RUNS in ''|*[!0-9]*|0) usage ;; esac

. "$ROOT/test/lib/deps.sh"
kvs_deps make gcc libxxhash-dev || exit 1
[ $MODE = time ] || kvs_deps valgrind || exit 1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvs_ab.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM     # so a signal also removes WORK

# side NAME REV: export REV into WORK/NAME and build its bench there
side() {
    local name=$1 rev=$2 sha
    sha=$(git -C "$ROOT" rev-parse --verify -q "$rev^{commit}") ||
        { echo "ab.sh: $rev is not a commit of $ROOT" >&2; exit 2; }
    mkdir -p "$WORK/$name"
    git -C "$ROOT" archive "$sha" | tar -x -C "$WORK/$name" ||
        { echo "ab.sh: git archive $rev failed" >&2; exit 1; }
    if ! make -s -C "$WORK/$name/test/bench" >"$WORK/$name.build.log" 2>&1 ||
       ! "$WORK/$name/build/bench/bench" --list | grep -qx kvs; then
        tail -20 "$WORK/$name.build.log" | sed 's/^/#   /'; echo
        echo "ab.sh: building the bench of $rev failed" >&2
        exit 1
    fi
    echo "# $name = $rev = $(git -C "$ROOT" log -1 --format='%h %ad %s' --date=short "$sha" | cut -c1-100)"
}

echo "# kvs engine A/B: $(date -u '+%F %T') UTC, $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
side A "$1"
side B "$2"
if ! git -C "$ROOT" diff --quiet "$1" "$2" -- test/bench/bench.c test/bench/eng_kvs.c test/bench/keys.c; then
    echo "# note: the benchmark itself (bench.c, eng_kvs.c or keys.c) differs between A and B"
fi
if [ $MODE = time ]; then MEASURE="clock ${BENCH_CLOCK:-wall}"; else MEASURE="instructions counted by callgrind"; fi
echo "# workload: kvs, N=$N, shape $SHAPE, $DIST keys, cache $CACHE; $RUNS runs each, interleaved A B A B ...; $MEASURE"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$WORK/data"
: >"$WORK/results.tsv"
for i in $(seq 1 "$RUNS"); do
    for s in A B; do
        t0=$SECONDS
        if [ $MODE = instructions ]; then
            # icount.sh's lines (label phase instructions ops instr/op) in results.tsv's columns
            if "$HERE/icount.sh" "$WORK/$s/build/bench/bench" "$N" "$s" "$WORK/icount.tsv" \
                    -s "$SHAPE" -d "$DIST" -c "$CACHE" >"$WORK/run.log" 2>&1; then
                awk -F'\t' -v OFS='\t' '{ print $1, "", "", "", "", "kvs", $2, "instr/op", $5 }' \
                    "$WORK/icount.tsv" >>"$WORK/results.tsv"
                : >"$WORK/icount.tsv"
            else
                sed 's/^/#   /' "$WORK/run.log" | tail -20
                echo "ab.sh: run $i of $s failed" >&2
                exit 1
            fi
        elif ! "$WORK/$s/build/bench/bench" -e kvs -n "$N" -s "$SHAPE" -d "$DIST" -c "$CACHE" -r 1 \
                -t "$WORK/data" -o "$WORK/results.tsv" -l "$s" >"$WORK/run.log" 2>&1; then
            sed 's/^/#   /' "$WORK/run.log" | tail -20
            echo "ab.sh: run $i of $s failed" >&2
            exit 1
        fi
        echo "# run $i $s: $((SECONDS - t0)) s, load average $(cut -d' ' -f1 /proc/loadavg)"
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# TSV columns: label shape n dist cache engine phase unit value.  Time mode: ops/s
# (higher is better); instruction mode: instructions per operation (lower is better),
# with the spread in finer steps since runs differ by parts per million.
if [ $MODE = time ]; then UNIT=ops/s VF=%11.0f SF=%+.0f RF=%6.3f NW=7 SW=11
else UNIT=instr/op VF=%11.1f SF=%+.3f RF=%6.4f NW=8 SW=15; fi
awk -F'\t' -v metrics="$METRICS" -v unit="$UNIT" -v vf="$VF" -v sf="$SF" -v rf="$RF" \
    -v nw="$NW" -v sw="$SW" '
    $6 == "kvs" && $8 == unit { v[$1, $7, ++k[$1, $7]] = $9 }
    function median(s, m,    n, i, j, t, a) {
        n = k[s, m]
        for (i = 1; i <= n; i++) a[i] = v[s, m, i]
        for (i = 2; i <= n; i++)            # insertion sort: n is small
            for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        lo[s] = a[1]; hi[s] = a[n]
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function spread(s, med) {
        return sprintf(sf "%%/" sf "%%", 100 * (lo[s] / med - 1), 100 * (hi[s] / med - 1))
    }
    function dashes(n,    d) { d = ""; while (n-- > 0) d = d "-"; return d }
    END {
        nm = split(metrics, ms, " ")
        ns = "%-" nw "s"; ss = "%" sw "s"
        printf "| " ns " | %11s | %11s | " ss " | " ss " | %6s |\n", unit, "A median", "B median", "A min/max", "B min/max", "B/A"
        printf "|%s|------------:|------------:|%s:|%s:|-------:|\n", dashes(nw + 2), dashes(sw + 1), dashes(sw + 1)
        for (i = 1; i <= nm; i++) {
            m = ms[i]
            if (!k["A", m] || !k["B", m]) { printf "| " ns " | (no figures) |\n", m; bad = 1; continue }
            a = median("A", m); sa = spread("A", a)
            b = median("B", m); sb = spread("B", b)
            printf "| " ns " | " vf " | " vf " | " ss " | " ss " | " rf " |\n", m, a, b, sa, sb, (a > 0 ? b / a : 0)
        }
        exit bad
    }' "$WORK/results.tsv"
