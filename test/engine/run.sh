#!/bin/bash
# test/engine/run.sh - runs the whole engine test suite (issues 2 and 3).
#
#   1. release build: every unit_* test, then model, damage, multiproc,
#      faults, reuse at CI size (model >= 1M operations);
#   2. ASan + UBSan build: the same programs again, smaller op counts;
#   3. debug build under valgrind (--error-exitcode=99 --leak-check=full),
#      small op counts: any report fails the program;
#   4. the libFuzzer target fuzz_open for a bounded time, seeded with small
#      valid files made by the engine (test/engine/fuzz/mkseeds.c).
#
# Output: one TAP stream.  Each program's lines are renumbered and prefixed
# with "<variant>/<program>:"; a program that exits non-zero without a
# "not ok" line (a crash, a sanitizer abort) gets one.  Exits non-zero if
# anything failed.  test/run counts the ok / not ok lines.
#
#   test/engine/run.sh [--fuzz-seconds N] [--long] [--only release|asan|valgrind|fuzz]...
#     --long            also run the 50M-operation model test (release; ~1 h or more)
#     --fuzz-seconds N  fuzzing time (default 60)
#     --only V          run only the given stage(s)
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
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--fuzz-seconds N] [--long] [--only STAGE]" >&2; exit 2 ;;
    esac
done

N=0          # TAP line counter over the whole run
FAILED=0
START=$(date +%s)

want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

emit_ok()     { N=$((N + 1)); echo "ok $N - $*"; }
emit_not_ok() { N=$((N + 1)); echo "not ok $N - $*"; FAILED=$((FAILED + 1)); }

# run_prog LABEL CMD... : runs a test program, renumbers its TAP lines.
run_prog() {
    local label=$1; shift
    local out rc line notok=0 t0=$(date +%s)
    out=$(mktemp)
    "$@" >"$out" 2>&1
    rc=$?
    while IFS= read -r line; do
        case "$line" in
            "ok "*)     emit_ok "$label: ${line#ok * - }" ;;
            "not ok "*) emit_not_ok "$label: ${line#not ok * - }"; notok=1 ;;
            1..*)       echo "# $label: plan $line" ;;
            "#"*)       echo "# $label: ${line#\#}" ;;
            "")         ;;
            *)          echo "#   $label| $line" ;;
        esac
    done <"$out"
    rm -f "$out"
    if [ $rc -ne 0 ] && [ $notok -eq 0 ]; then
        emit_not_ok "$label exited with status $rc (crash, sanitizer or valgrind report?)"
    fi
    echo "# $label: exit $rc, $(( $(date +%s) - t0 ))s"
}

build() {
    local variant=$1
    if make -s -C "$ROOT/test/engine" VARIANT="$variant" >"$ROOT/build/engine-tests-$variant.log" 2>&1; then
        emit_ok "build engine + tests ($variant)"
        return 0
    fi
    sed 's/^/#   /' "$ROOT/build/engine-tests-$variant.log" | tail -30
    emit_not_ok "build engine + tests ($variant)"
    return 1
}

# suite VARIANT WRAPPER... -- runs the programs of one build.
suite() {
    local variant=$1; shift
    local dir="$ROOT/build/tests/$variant" p name
    local model_n=$1 mp_n=$2 reuse_n=$3 big=$4 quick=$5; shift 5
    local wrap=("$@")
    for p in "$dir"/unit_*; do
        [ -x "$p" ] || continue
        run_prog "$variant/$(basename "$p")" "${wrap[@]}" "$p"
    done
    run_prog "$variant/model"     "${wrap[@]}" "$dir/model" -n "$model_n"
    run_prog "$variant/damage"    "${wrap[@]}" "$dir/damage" $quick
    run_prog "$variant/faults"    "${wrap[@]}" "$dir/faults" $quick
    run_prog "$variant/multiproc" "${wrap[@]}" "$dir/multiproc" -n "$mp_n"
    run_prog "$variant/reuse"     "${wrap[@]}" "$dir/reuse" -n "$reuse_n" --big-mib "$big"
}

mkdir -p "$ROOT/build"
echo "# engine suite: $(date -u '+%F %T') UTC, $(nproc) cores"

if want release && build release; then
    suite release 1400000 25000 1000000 64 ""
    if [ $LONG -eq 1 ]; then
        run_prog "release/model-long" "$ROOT/build/tests/release/model" --long
    fi
fi

if want asan && build asan; then
    # ASan's shadow memory makes ru_maxrss meaningless for the RSS bound, so
    # reuse runs smaller here; the release run is the one that measures.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        suite asan 250000 6000 100000 64 ""
fi

if want valgrind; then
    if ! command -v valgrind >/dev/null; then
        emit_not_ok "valgrind is not installed (apt-get install valgrind)"
    elif build debug; then
        suite debug 12000 600 20000 8 -q \
            valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
    fi
fi

if want fuzz; then
    FZ="$ROOT/build/fuzz"
    if make -s -C "$ROOT/test/engine" fuzz >"$ROOT/build/engine-fuzz.log" 2>&1 &&
       make -s -C "$ROOT/src/engine" VARIANT=release >>"$ROOT/build/engine-fuzz.log" 2>&1 &&
       cc -std=c99 -D_DEFAULT_SOURCE -O1 -I"$ROOT/src/engine" "$ROOT/test/engine/fuzz/mkseeds.c" \
          "$ROOT/build/engine/release/libkvs.a" -lxxhash -o "$FZ/mkseeds" >>"$ROOT/build/engine-fuzz.log" 2>&1; then
        emit_ok "build fuzz_open and the seed generator"
        rm -rf "$FZ/seeds"; mkdir -p "$FZ/seeds" "$FZ/corpus" "$FZ/artifacts"
        if "$FZ/mkseeds" "$FZ/seeds"; then
            emit_ok "fuzz: $(ls "$FZ/seeds" | wc -l) seed files made by the engine"
        else
            emit_not_ok "fuzz: seed generator failed"
        fi
        log=$(mktemp)
        ASAN_OPTIONS=detect_leaks=1 "$FZ/fuzz_open" -max_total_time="$FUZZ_SECONDS" -timeout=20 \
            -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$FZ/artifacts/" "$FZ/corpus" "$FZ/seeds" >"$log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        crashes=$(grep -c -E '^==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)|deadly signal|ERROR: libFuzzer' "$log")
        if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ]; then
            emit_ok "fuzz_open: ${execs:-?} executions in ${FUZZ_SECONDS}s, 0 crashes"
        else
            grep -E 'ERROR|SUMMARY|#[0-9]+ 0x|artifact|Test unit written' "$log" | head -40 | sed 's/^/#   /'
            emit_not_ok "fuzz_open: exit $rc after ${execs:-?} executions: crash/leak/timeout (artifacts in build/fuzz/artifacts)"
        fi
        echo "# fuzz: corpus $(ls "$FZ/corpus" | wc -l) inputs; $(grep -E '^#[0-9]+ +DONE' "$log" | tail -1)"
        rm -f "$log"
    else
        tail -30 "$ROOT/build/engine-fuzz.log" | sed 's/^/#   /'
        emit_not_ok "build fuzz_open"
    fi
fi

echo "1..$N"
echo "# engine suite: $N checks, $FAILED failed, $(( $(date +%s) - START ))s"
[ $FAILED -eq 0 ]
