#!/bin/bash
# test/engine/compat.sh - this tree's engine (format 6) and the last release
# that writes format 5, on the same files, in turn and at once.
#
# The format-5 engine is built from git history (git archive of
# $KVS_FORMAT5_COMMIT, src/engine only); both engines drive the same
# program, test/engine/compat/kvsdrv.c.  Checks (TAP, unnumbered "ok - " /
# "not ok - " lines, as test/engine/run.sh's stages print them):
#   1. a file the format-5 engine makes is read by this one and left at
#      version 5 by reads;
#   2. a reader of this engine holding a version-5 header sees each write a
#      format-5 engine makes meanwhile (it does not bump the change
#      generations: the reader must not skip its header reread);
#   3. this engine's first write makes the file version 6; the format-5
#      engine then refuses it at open (KVS_EVERSION, "file format version
#      6, this engine reads versions 1 to 5"), and a format-5 handle opened
#      before the upgrade refuses it at its next section, reads and writes,
#      and leaves it as it was;
#   4. a format-5 engine's open recovers a crashed format-6 writer's record
#      (it takes the header it cannot decode for a torn one) and then
#      refuses the file; a reader of this engine alive all along sees the
#      replayed write (the journal's replayed-pages count is part of the
#      generation it compares).
# Without git history (an export of the tree) it says so and skips.
#
#   test/engine/compat.sh                     the checks
#   test/engine/compat.sh --make-fixture N F  write a format-N fixture (1 to 5)
#       to F: test/engine/compat/mkfixture.c (the records of fixture_data.h)
#       built against the engine of the last commit that wrote format N
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# the last commit whose engine writes format 5 (the parent of format 6)
OLD=${KVS_FORMAT5_COMMIT:-0186bd74b3935712c530f66b954b62e3492a9ba7}
# the last commit whose engine writes format N, N = 1..5
fixture_commit() {
    case $1 in
        1) echo 0cebd04^ ;;     # the next one brought format 2
        2) echo 10b3123^ ;;     # format 3
        3) echo 4405aeb^ ;;     # format 4
        4) echo 7363bed^ ;;     # format 5
        5) echo "$OLD" ;;
        *) return 1 ;;
    esac
}

T=$(mktemp -d "${TMPDIR:-/tmp}/kvs_compat.XXXXXX")
CP_PID=""
cleanup() {
    [ -n "$CP_PID" ] && kill "$CP_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

if ! git -C "$ROOT" cat-file -e "$OLD^{commit}" 2>/dev/null; then
    echo "ok - compat: skipped, no git history with the format-5 engine ($OLD) # SKIP"
    exit 0
fi

# build_engine COMMIT DIR: that commit's src/engine, built in DIR
build_engine() {
    mkdir -p "$2" &&
    git -C "$ROOT" archive "$1" src/engine | tar -x -C "$2" &&
    make -s -C "$2/src/engine" VARIANT=release >>"$T/build.log" 2>&1
}
CFLAGS="-std=c99 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -O1"

if [ "${1:-}" = --make-fixture ]; then
    c=$(fixture_commit "${2:-}") && [ -n "${3:-}" ] || { sed -n '26,29p' "$0" >&2; exit 2; }
    if ! build_engine "$c" "$T/e" ||
       ! cc $CFLAGS -I"$T/e/src/engine" "$ROOT/test/engine/compat/mkfixture.c" \
            "$T/e/build/engine/release/libkvs.a" -lxxhash -lpthread -o "$T/mkfixture" 2>>"$T/build.log"; then
        tail -20 "$T/build.log" >&2
        exit 1
    fi
    "$T/mkfixture" "$T/fx.kvs" || exit 1
    v=$(od -An -tu4 -j24 -N4 "$T/fx.kvs" | tr -d ' ')
    [ "$v" = "$2" ] || { echo "the engine of $c wrote version $v, not $2" >&2; exit 1; }
    cp "$T/fx.kvs" "$3" || exit 1
    echo "format $v, made by the engine of $(git -C "$ROOT" rev-parse --short "$c")"
    exit 0
fi

# ---- the two engines and their drivers ---------------------------------------
if ! build_engine "$OLD" "$T/old" || ! make -s -C "$ROOT/src/engine" VARIANT=release >>"$T/build.log" 2>&1; then
    sed 's/^/#   /' "$T/build.log" | tail -20
    echo "not ok - compat: build the format-5 engine ($OLD) and this one"
    exit 1
fi
if ! cc $CFLAGS -I"$T/old/src/engine" "$ROOT/test/engine/compat/kvsdrv.c" \
        "$T/old/build/engine/release/libkvs.a" -lxxhash -lpthread -o "$T/drv5" 2>>"$T/build.log" ||
   ! cc $CFLAGS -I"$ROOT/src/engine" "$ROOT/test/engine/compat/kvsdrv.c" \
        "$ROOT/build/engine/release/libkvs.a" -lxxhash -lpthread -o "$T/drv6" 2>>"$T/build.log"; then
    sed 's/^/#   /' "$T/build.log" | tail -20
    echo "not ok - compat: build the driver against both engines"
    exit 1
fi
echo "ok - compat: built the format-5 engine of ${OLD:0:12} and this tree's, one driver against each"

# ---- helpers -------------------------------------------------------------------
# run DRIVER CMD...: one process, the commands in order; prints its answers
run() {
    local drv=$1
    shift
    printf '%s\n' "$@" | "$T/$drv"
}
# last answer of a run
last() { run "$@" | tail -1; }
# coprocess: one long-lived driver (its handle stays open between commands)
cp_start() {
    coproc CP { "$T/$1"; }
}
ask() {
    local line
    printf '%s\n' "$1" >&"${CP[1]}"
    IFS= read -r -t 60 line <&"${CP[0]}" || line="(no answer)"
    echo "$line"
}
cp_stop() {
    local fd=${CP[1]}
    ask close >/dev/null
    eval "exec $fd>&-"
    wait "$CP_PID" 2>/dev/null
    CP_PID=""
}
# version FILE: the format version at offset 24 of page 0
version() { od -An -tu4 -j24 -N4 "$1" | tr -d ' '; }
is() {
    if [ "$1" = "$2" ]; then
        echo "ok - compat: $3"
    else
        echo "not ok - compat: $3 (got '$1', want '$2')"
    fi
}
like() {
    case $1 in
        $2) echo "ok - compat: $3" ;;
        *)  echo "not ok - compat: $3 (got '$1', want $2)" ;;
    esac
}

# ---- 1. a format-5 file, read by this engine ---------------------------------------
A=$T/a.kvs
is "$(run drv5 "open $A" "put k v1" fill close | tr '\n' ' ')" "ok ok ok 120 ok " \
    "the format-5 engine makes a file with a key and the fixture records"
is "$(version "$A")" 5 "it is version 5"
like "$(run drv6 "open $A" "get k" verify stats check close | tr '\n' ' ')" \
    "ok val v1 ok 121 records 121 overflow * value [1-9]* version 5 ok ok " \
    "this engine reads every record of it exactly (get and a cursor), and check passes"
is "$(version "$A")" 5 "reads leave it at version 5"

# ---- 2. a reader of this engine, a format-5 writer at work meanwhile -------------
cp_start drv6
is "$(ask "open $A")" ok "a reader of this engine opens the version-5 file"
is "$(ask "get k")" "val v1" "and reads it"
is "$(ask "get k")" "val v1" "an idle section"
is "$(last drv5 "open $A" "put k v2" close)" ok "the format-5 engine writes (no change generation bumped)"
is "$(ask "get k")" "val v2" "the reader sees that write (a version-5 header is reread at every section)"
is "$(last drv5 "open $A" "put k v3" close)" ok "the format-5 engine writes again"
is "$(ask "get k")" "val v3" "the reader sees it too"
is "$(version "$A")" 5 "the file is still version 5"

# ---- 3. this engine's first write: version 6, refused by the format-5 engine ------
is "$(last drv6 "open $A" "put k v4" close)" ok "this engine writes the file"
is "$(version "$A")" 6 "its first write made it version 6"
is "$(ask "get k")" "val v4" "the reader sees it"
cp_stop
like "$(last drv5 "open $A")" "err -31005 *file format version 6, this engine reads versions 1 to 5" \
    "the format-5 engine refuses to open the version-6 file (KVS_EVERSION)"

B=$T/b.kvs
is "$(last drv5 "open $B" "put k w1" close)" ok "the format-5 engine makes another file"
cp_start drv5
is "$(ask "open $B")" ok "a format-5 handle opens it"
is "$(ask "get k")" "val w1" "and reads it"
is "$(last drv6 "open $B" "put k w2" close)" ok "this engine writes it meanwhile"
is "$(version "$B")" 6 "the file is version 6"
like "$(ask "get k")" "err -31005 *file format version 6, this engine reads versions 1 to 5" \
    "the format-5 handle's next read section refuses it (KVS_EVERSION)"
like "$(ask "put k w3")" "err -3100[35] *file format version 6*" \
    "and its next write section (KVS_ECORRUPT: the handle is poisoned by the refusal)"
cp_stop
is "$(run drv6 "open $B" "get k" check close | tr '\n' ' ')" "ok val w2 ok ok " \
    "the file has this engine's write, not the refused one, and check passes"

# ---- 4. the format-5 engine's recovery of a crashed format-6 writer ---------------
C=$T/c.kvs
is "$(last drv6 "open $C" "put k c1" close)" ok "this engine makes a version-6 file"
cp_start drv6
is "$(ask "open $C")" ok "a reader of this engine opens it"
is "$(ask "get k")" "val c1" "and reads it"
run drv6 "open $C" "crash k c2" >/dev/null
is "$(ask "get k")" "val c1" "a writer crashed after its journal record (nothing in the file yet)"
is "$(ask "get k")" "val c1" "an idle section"
like "$(last drv5 "open $C")" "err -31005 *file format version 6*" \
    "the format-5 engine's open recovers the record, then refuses the file"
is "$(ask "get k")" "val c2" "the reader sees the record that open replayed"
cp_stop
is "$(run drv6 "open $C" "get k" check close | tr '\n' ' ')" "ok val c2 ok ok " \
    "a new open reads it, check passes"
exit 0
