#!/bin/bash
# test/engine/run.sh - runs the whole engine test suite (the engine alone,
# no Postgres).
#
#   1. release build: every program test/engine/Makefile builds (`make
#      progs`): the unit_* tests, then crash, damage, faults, model,
#      multiproc, reuse at CI size (model >= 1M operations), and any newer
#      program with no arguments; alone on the box, since reuse measures
#      peak memory and unit_perf measures speed.  faults crashes a commit at
#      every one of its writes and fsyncs under each crash model (all points
#      here, a seeded, printed sample with -q / -qq below); crash runs KVS_CRASH_CYCLES kill cycles
#      (400 here, 40 with KVS_TEST_QUICK), at most KVS_CRASH_SECONDS (60);
#   2. ASan + UBSan build: the same programs again (smaller op counts),
#      then every libFuzzer target (`make fuzz-progs`: fuzz_open) for a
#      bounded time each, seeded with small valid files made by the engine
#      (test/engine/fuzz/mkseeds.c);
#   3. at the same time as 2 (the box has 2 cores): the debug build under
#      valgrind (--error-exitcode=99 --leak-check=full), small op counts;
#      any report fails the program.
#   4. compat (after 1): this engine and the last release that writes
#      format 5, built from git history, on the same files in turn and at
#      once (test/engine/compat.sh; skipped without git history);
#   KVS_TEST_QUICK=1 is set for the ASan stage and KVS_TEST_QUICK=2 for
#   valgrind (~50x slower): unit tests read it to shrink their sizes
#   (tap.h's tap_quick() gives the level).  Set at all: unit_perf,
#   unit_compact, unit_shared, crash; 1 and 2: unit_locks (3000, 1500 keys);
#   2 only: unit_range (5000 records, KVS_NOSYNC), unit_reserve (5000),
#   unit_lhash (12500), unit_kvs (5000), unit_page (40000 damaged pages).
#   faults gets -q under ASan (about 8 N per sweep, 12 crash points per
#   model) and -qq under valgrind (half of that), each sample from an
#   offset its printed seed picks (faults -q -s SEED repeats it); damage
#   -q in both; the release build runs every size and every point.
#
# Output: one TAP stream.  Each program's lines are prefixed with
# "<variant>/<program>:" and renumbered; a program that exits non-zero without
# a "not ok" line (a crash, a sanitizer abort, a valgrind report) gets one.
# Exits non-zero if anything failed.  test/run counts the ok / not ok lines.
#
#   test/engine/run.sh [--fuzz-seconds N] [--long] [--only STAGE]...
#     --long            also run the 50M-operation model test (release)
#     --fuzz-seconds N  fuzzing time (default 60)
#     --only STAGE      release | compat | asan | valgrind | fuzz (repeatable)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_SECONDS=60
LONG=0
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --fuzz-seconds) FUZZ_SECONDS=$2; shift 2 ;;
        --long) LONG=1; shift ;;
        --only) ONLY="$ONLY $2"; shift 2 ;;
        -h|--help) sed -n '2,42p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--fuzz-seconds N] [--long] [--only STAGE]" >&2; exit 2 ;;
    esac
done
START=$(date +%s)
mkdir -p "$ROOT/build"
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/kvs_engine_run.XXXXXX")
trap 'rm -rf "$LOGDIR"' EXIT

want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# Stages print unnumbered "ok - ..." / "not ok - ..." lines; the filter at
# the bottom numbers them.
# run_prog LABEL CMD... : runs a test program and relabels its TAP lines.
run_prog() {
    local label=$1; shift
    local out rc line notok=0 t0
    t0=$(date +%s)
    out=$(mktemp "$LOGDIR/prog.XXXXXX")
    "$@" >"$out" 2>&1
    rc=$?
    while IFS= read -r line; do
        case "$line" in
            "ok "*)     echo "ok - $label: ${line#ok * - }" ;;
            "not ok "*) echo "not ok - $label: ${line#not ok * - }"; notok=1 ;;
            1..*)       echo "# $label: plan $line" ;;
            "#"*)       echo "# $label:${line#\#}" ;;
            "")         ;;
            *)          echo "#   $label| $line" ;;
        esac
    done <"$out"
    rm -f "$out"
    if [ $rc -ne 0 ] && [ $notok -eq 0 ]; then
        echo "not ok - $label exited with status $rc (crash, sanitizer or valgrind report?)"
    fi
    echo "# $label: exit $rc, $(( $(date +%s) - t0 ))s"
}

build() {
    local variant=$1 log="$ROOT/build/engine-tests-$1.log"
    if make -s -C "$ROOT/test/engine" VARIANT="$variant" >"$log" 2>&1; then
        echo "ok - build engine + tests ($variant)"
        return 0
    fi
    tail -30 "$log" | sed 's/^/#   /'
    echo "not ok - build engine + tests ($variant)"
    return 1
}

# The programs test/engine/Makefile builds (`make progs`, `make fuzz-progs`):
# every one of them runs, so a new test cannot be built and never run.  A
# program not named in suite's case below runs with no arguments.
progs() { make -s --no-print-directory -C "$ROOT/test/engine" "$1"; }

# suite VARIANT MODEL_OPS MP_OPS REUSE_RECORDS BIG_MIB QUICK [WRAPPER...]
#   QUICK: "" (every size and point), -q or -qq (faults' sample; damage
#   gets -q for either)
suite() {
    local variant=$1 model_n=$2 mp_n=$3 reuse_n=$4 big=$5 quick=$6
    shift 6
    local wrap=("$@") dir="$ROOT/build/tests/$variant" all p args
    if ! all=$(progs progs) || [ -z "$all" ]; then
        echo "not ok - $variant: make progs listed no test program"
        return
    fi
    # unit tests first, then the others in the Makefile's order
    for p in $(printf '%s\n' $all | grep '^unit_') $(printf '%s\n' $all | grep -v '^unit_'); do
        case $p in
            model)         args=(-n "$model_n") ;;
            damage)        args=(${quick:+-q}) ;;
            faults)        args=($quick) ;;
            multiproc)     args=(-n "$mp_n") ;;
            reuse)         args=(-n "$reuse_n" --big-mib "$big") ;;
            *)             args=() ;;
        esac
        if [ ! -x "$dir/$p" ]; then
            echo "not ok - $variant/$p: built by test/engine/Makefile but missing from $dir"
            continue
        fi
        run_prog "$variant/$p" "${wrap[@]}" "$dir/$p" "${args[@]}"
    done
}

stage_release() {
    build release || return
    suite release 1400000 25000 1000000 64 ""
    if [ $LONG -eq 1 ]; then
        run_prog "release/model-long" "$ROOT/build/tests/release/model" --long
    fi
}

# compat.sh prints its own "ok - " / "not ok - " lines; one that printed
# none (or exited non-zero without a "not ok") is a failure too
stage_compat() {
    local out rc
    out=$(bash "$ROOT/test/engine/compat.sh" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if ! grep -Eq '^(not )?ok - ' <<<"$out" || { [ $rc -ne 0 ] && ! grep -q '^not ok - ' <<<"$out"; }; then
        echo "not ok - compat: test/engine/compat.sh exited with status $rc and no result line"
    fi
}

stage_asan() {
    build asan || return
    KVS_TEST_QUICK=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        suite asan 400000 6000 100000 64 -q
}

stage_valgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "not ok - valgrind is not installed (apt-get install valgrind)"
        return
    fi
    build debug || return
    KVS_TEST_QUICK=2 suite debug 50000 600 20000 8 -qq \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
}

stage_fuzz() {
    local FZ="$ROOT/build/fuzz" log rc execs crashes
    if make -s -C "$ROOT/test/engine" fuzz >"$ROOT/build/engine-fuzz.log" 2>&1 &&
       make -s -C "$ROOT/src/engine" VARIANT=release >>"$ROOT/build/engine-fuzz.log" 2>&1 &&
       cc -std=c99 -D_DEFAULT_SOURCE -O1 -I"$ROOT/src/engine" "$ROOT/test/engine/fuzz/mkseeds.c" \
          "$ROOT/build/engine/release/libkvs.a" -lxxhash -o "$FZ/mkseeds" >>"$ROOT/build/engine-fuzz.log" 2>&1; then
        echo "ok - build the fuzz targets and the seed generator"
    else
        tail -30 "$ROOT/build/engine-fuzz.log" | sed 's/^/#   /'
        echo "not ok - build the fuzz targets"
        return
    fi
    rm -rf "$FZ/seeds"
    mkdir -p "$FZ/seeds" "$FZ/artifacts"
    if "$FZ/mkseeds" "$FZ/seeds"; then
        echo "ok - fuzz: $(ls "$FZ/seeds" | wc -l) seed files made by the engine"
    else
        echo "not ok - fuzz: the seed generator failed"
    fi
    # every target `make fuzz` builds, each for FUZZ_SECONDS, seeded with the
    # engine's valid files, each with its own corpus
    local all t
    if ! all=$(progs fuzz-progs) || [ -z "$all" ]; then
        echo "not ok - fuzz: make fuzz-progs listed no fuzz target"
        return
    fi
    for t in $all; do
        log="$LOGDIR/$t.log"
        mkdir -p "$FZ/corpus-$t"
        ASAN_OPTIONS=detect_leaks=1 "$FZ/$t" -max_total_time="$FUZZ_SECONDS" -timeout=20 \
            -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$FZ/artifacts/" "$FZ/corpus-$t" "$FZ/seeds" >"$log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        crashes=$(grep -c -E '^==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)|deadly signal|ERROR: libFuzzer' "$log")
        if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ]; then
            echo "ok - $t: ${execs:-?} executions in ${FUZZ_SECONDS}s, 0 crashes"
        else
            grep -E 'ERROR|SUMMARY|#[0-9]+ 0x|artifact|Test unit written' "$log" | head -40 | sed 's/^/#   /'
            echo "not ok - $t: exit $rc after ${execs:-?} executions: crash/leak/timeout (inputs in build/fuzz/artifacts)"
        fi
        echo "# $t: corpus $(ls "$FZ/corpus-$t" | wc -l) inputs; $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
    done
}

main() {
    echo "# engine suite: $(date -u '+%F %T') UTC, $(nproc) cores"
    want release && stage_release
    want compat && stage_compat
    # valgrind (one core, slow) runs beside ASan + fuzzing (the other core)
    local vpid=""
    if want valgrind; then
        stage_valgrind >"$LOGDIR/valgrind.tap" 2>&1 &
        vpid=$!
    fi
    want asan && stage_asan
    want fuzz && stage_fuzz
    if [ -n "$vpid" ]; then
        wait "$vpid"
        cat "$LOGDIR/valgrind.tap"
    fi
    echo "# engine suite: $(( $(date +%s) - START ))s"
}

# Number the TAP lines, print the plan, exit 1 if anything failed.
main | awk '
    /^ok - /     { n++; sub(/^ok - /, ""); print "ok " n " - " $0; fflush(); next }
    /^not ok - / { n++; bad++; sub(/^not ok - /, ""); print "not ok " n " - " $0; fflush(); next }
    { print; fflush() }
    END { print "1.." n; printf "# engine suite: %d checks, %d failed\n", n, bad; exit bad ? 1 : 0 }'
