#!/bin/bash
# test/engine/run.sh - runs the whole engine test suite (issues 2 and 3).
#
#   1. release build: every unit_* test, then model, damage, multiproc,
#      faults, reuse at CI size (model >= 1M operations); alone on the box,
#      since reuse measures peak memory and unit_perf measures speed;
#   2. ASan + UBSan build: the same programs again (smaller op counts),
#      then the libFuzzer target fuzz_open for a bounded time, seeded with
#      small valid files made by the engine (test/engine/fuzz/mkseeds.c);
#   3. at the same time as 2 (the box has 2 cores): the debug build under
#      valgrind (--error-exitcode=99 --leak-check=full), small op counts;
#      any report fails the program.
#   KVS_TEST_QUICK=1 is set for the ASan and valgrind stages: unit tests
#   read it to shrink their sizes (unit_perf and unit_compact do; valgrind
#   runs ~50x slower).
#
# Output: one TAP stream.  Each program's lines are prefixed with
# "<variant>/<program>:" and renumbered; a program that exits non-zero without
# a "not ok" line (a crash, a sanitizer abort, a valgrind report) gets one.
# Exits non-zero if anything failed.  test/run counts the ok / not ok lines.
#
#   test/engine/run.sh [--fuzz-seconds N] [--long] [--only STAGE]...
#     --long            also run the 50M-operation model test (release)
#     --fuzz-seconds N  fuzzing time (default 60)
#     --only STAGE      release | asan | valgrind | fuzz (repeatable)
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
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
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

# suite VARIANT MODEL_OPS MP_OPS REUSE_RECORDS BIG_MIB QUICK WITH_PERF [WRAPPER...]
suite() {
    local variant=$1 model_n=$2 mp_n=$3 reuse_n=$4 big=$5 quick=$6 perf=$7
    shift 7
    local wrap=("$@") dir="$ROOT/build/tests/$variant" p
    for p in "$dir"/unit_*; do
        [ -x "$p" ] || continue
        if [ "$(basename "$p")" = unit_perf ] && [ "$perf" = 0 ]; then
            continue
        fi
        run_prog "$variant/$(basename "$p")" "${wrap[@]}" "$p"
    done
    run_prog "$variant/model"     "${wrap[@]}" "$dir/model" -n "$model_n"
    run_prog "$variant/damage"    "${wrap[@]}" "$dir/damage" $quick
    run_prog "$variant/faults"    "${wrap[@]}" "$dir/faults" $quick
    run_prog "$variant/multiproc" "${wrap[@]}" "$dir/multiproc" -n "$mp_n"
    run_prog "$variant/reuse"     "${wrap[@]}" "$dir/reuse" -n "$reuse_n" --big-mib "$big"
}

stage_release() {
    build release || return
    suite release 1400000 25000 1000000 64 "" 1
    if [ $LONG -eq 1 ]; then
        run_prog "release/model-long" "$ROOT/build/tests/release/model" --long
    fi
}

stage_asan() {
    build asan || return
    KVS_TEST_QUICK=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        suite asan 400000 6000 100000 64 -q 1
}

stage_valgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "not ok - valgrind is not installed (apt-get install valgrind)"
        return
    fi
    build debug || return
    KVS_TEST_QUICK=1 suite debug 50000 600 20000 8 -q 1 \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
}

stage_fuzz() {
    local FZ="$ROOT/build/fuzz" log rc execs crashes
    if make -s -C "$ROOT/test/engine" fuzz >"$ROOT/build/engine-fuzz.log" 2>&1 &&
       make -s -C "$ROOT/src/engine" VARIANT=release >>"$ROOT/build/engine-fuzz.log" 2>&1 &&
       cc -std=c99 -D_DEFAULT_SOURCE -O1 -I"$ROOT/src/engine" "$ROOT/test/engine/fuzz/mkseeds.c" \
          "$ROOT/build/engine/release/libkvs.a" -lxxhash -o "$FZ/mkseeds" >>"$ROOT/build/engine-fuzz.log" 2>&1; then
        echo "ok - build fuzz_open and the seed generator"
    else
        tail -30 "$ROOT/build/engine-fuzz.log" | sed 's/^/#   /'
        echo "not ok - build fuzz_open"
        return
    fi
    rm -rf "$FZ/seeds"
    mkdir -p "$FZ/seeds" "$FZ/corpus" "$FZ/artifacts"
    if "$FZ/mkseeds" "$FZ/seeds"; then
        echo "ok - fuzz: $(ls "$FZ/seeds" | wc -l) seed files made by the engine"
    else
        echo "not ok - fuzz: the seed generator failed"
    fi
    log="$LOGDIR/fuzz.log"
    ASAN_OPTIONS=detect_leaks=1 "$FZ/fuzz_open" -max_total_time="$FUZZ_SECONDS" -timeout=20 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$FZ/artifacts/" "$FZ/corpus" "$FZ/seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crashes=$(grep -c -E '^==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)|deadly signal|ERROR: libFuzzer' "$log")
    if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ]; then
        echo "ok - fuzz_open: ${execs:-?} executions in ${FUZZ_SECONDS}s, 0 crashes"
    else
        grep -E 'ERROR|SUMMARY|#[0-9]+ 0x|artifact|Test unit written' "$log" | head -40 | sed 's/^/#   /'
        echo "not ok - fuzz_open: exit $rc after ${execs:-?} executions: crash/leak/timeout (inputs in build/fuzz/artifacts)"
    fi
    echo "# fuzz: corpus $(ls "$FZ/corpus" | wc -l) inputs; $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
}

main() {
    echo "# engine suite: $(date -u '+%F %T') UTC, $(nproc) cores"
    want release && stage_release
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
