#!/bin/bash
# test/bench/icount.sh - instructions per operation of each phase of one bench run:
# a speed measure that does not depend on the machine's load.
#
#   test/bench/icount.sh BENCH N LABEL TSV [bench args...]
#
# Runs `BENCH -e kvs -n N -r 1 [bench args]` (build/bench/bench of any commit) once under
# valgrind's callgrind, which counts the user-space instructions the program executes
# (system calls and waiting are not counted; a VM without a hardware PMU, like this one,
# cannot run `perf stat -e instructions`).  `--dump-before=clock_gettime*` cuts the count
# at every clock read: bench.c's run_workload reads the clock exactly twice per phase
# (t0 = now() ... now() - t0), so the counts between reads 2p+1 and 2p+2 are phase p's.
# The workload runs in a forked child (bench.c), whose profile parts are the ones used;
# there must be exactly 2 per phase (26), else the bench's phase layout differs from the
# list below and the run is refused rather than mislabelled.  Instructions of the
# harness's own work inside a phase (making keys, checking values) are counted too: the
# same for two engines measured with the same bench.c.
#
# Appends to TSV one line per phase: LABEL phase instructions ops instructions/op,
# where ops are bench.c's phase sizes for N (N gets, min(N, 20000) get1, ...).
# Exit status non-zero if valgrind or the bench failed or the parts do not match.
# About 40x slower than a native run: N = 100,000 takes some 20 s here.
set -u
[ $# -ge 4 ] || { sed -n '5p' "$0" >&2; exit 2; }
BENCH=$1 N=$2 LABEL=$3 TSV=$4
shift 4
case $N in ''|*[!0-9]*|0) echo "icount.sh: N must be a positive number" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "icount.sh: valgrind is not installed" >&2; exit 1; }

# bench.c's phases in the order run_workload times them
PHASES="load sync get absent replace get1 put1 delete scan close reopen cold disk"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kvs_icount.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
mkdir "$DIR/data" "$DIR/cg"
if ! valgrind --tool=callgrind --dump-before='clock_gettime*' --dump-instr=no --dump-line=no \
        --callgrind-out-file="$DIR/cg/out.%p" \
        "$BENCH" -e kvs -n "$N" -r 1 "$@" -t "$DIR/data" -o "$DIR/bench.tsv" -l icount \
        >"$DIR/run.log" 2>&1; then
    sed 's/^/#   /' "$DIR/run.log" | grep -v '^#   ==[0-9]*== *$' | tail -15 >&2
    echo "icount.sh: the bench run under valgrind failed" >&2
    exit 1
fi
# the process whose profile has numbered parts is the workload's child
pids=$(cd "$DIR/cg" && ls | sed -n 's/^out\.\([0-9]*\)\.[0-9]*$/\1/p' | sort -u)
if [ "$(echo "$pids" | grep -c .)" != 1 ]; then
    echo "icount.sh: expected one process with clock reads, found: ${pids:-none}" >&2
    exit 1
fi
nparts=$(ls "$DIR/cg" | grep -c "^out\.$pids\.[0-9]*$")
nph=$(echo $PHASES | wc -w)
if [ "$nparts" != $((2 * nph)) ]; then
    echo "icount.sh: $nparts clock reads in the workload, expected $((2 * nph)) (2 per phase:" \
         "$PHASES): this bench.c times other phases, update PHASES" >&2
    exit 1
fi
for k in $(seq 1 "$nparts"); do
    printf '%s\t%s\n' "$k" "$(sed -n 's/^totals: *//p' "$DIR/cg/out.$pids.$k")"
done | awk -F'\t' -v label="$LABEL" -v n="$N" -v phases="$PHASES" '
    function min(a, b) { return a < b ? a : b }
    { tot[$1] = $2 }
    END {
        np = split(phases, ph, " ")
        # ops of each phase as bench.c counts them for N records
        ops["load"] = n; ops["sync"] = 1; ops["get"] = n; ops["absent"] = n; ops["replace"] = n
        ops["get1"] = min(n, 20000); ops["put1"] = min(n, 5000)
        ops["delete"] = int((n + 1) / 2); ops["scan"] = int(n / 2)
        ops["close"] = 1; ops["reopen"] = 1; ops["cold"] = n; ops["disk"] = min(n, 10000)
        for (p = 1; p <= np; p++) {
            ins = tot[2 * p]
            if (ins == "") exit 1
            printf "%s\t%s\t%d\t%d\t%.1f\n", label, ph[p], ins, ops[ph[p]], ins / ops[ph[p]]
        }
    }' >>"$TSV"
