# test/lib/tap.sh - TAP output for the shell test scripts (test/fdw/*.sh).
#
# Sourced.  ok/nok NAME print a numbered line; is GOT EXPECTED NAME and
# like GOT REGEX NAME (extended regex) compare and show both on failure; diag
# indents its input as a TAP comment; bail MSG stops the script; tap_end
# prints the plan and exits non-zero if anything failed.

T=0
FAILED=0
ok()   { T=$((T + 1)); echo "ok $T - $1"; }
nok()  { T=$((T + 1)); FAILED=$((FAILED + 1)); echo "not ok $T - $1"; }
diag() { sed 's/^/#   /'; }
is() {
    if [ "$1" = "$2" ]; then ok "$3"; else
        nok "$3"; printf 'got:      %s\nexpected: %s\n' "$1" "$2" | diag
    fi
}
like() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then ok "$3"; else
        nok "$3"; printf 'got:      %s\nexpected: /%s/\n' "$1" "$2" | diag
    fi
}
bail() { echo "Bail out! $1"; exit 1; }
tap_end() {
    echo "1..$T"
    [ "$FAILED" = 0 ] || { echo "# $FAILED of $T failed"; exit 1; }
    exit 0
}
