# test/lib/tap.sh - TAP output for the throwaway-cluster scripts (test/fdw/*.sh).
#
# Sourced after test/lib/pgcluster.sh.  Each check prints "ok N - name" or
# "not ok N - name"; the script ends with tap_end (the plan, and its exit
# status: non-zero when a check failed).
#
#   ok NAME / nok NAME        a passed / failed check
#   is GOT EXPECTED NAME      string equality (shows both on failure)
#   like GOT REGEX NAME       extended-regex match
#   diag                      filter: prefixes lines with "#   "
#   bail MESSAGE              "Bail out!" and exit
#   qerr SQL                  "SQLSTATE message" of the first error SQL raises,
#                             or "no error: <output>"

T=0
FAILED=0
ok()   { T=$((T + 1)); echo "ok $T - $1"; }
nok()  { T=$((T + 1)); FAILED=$((FAILED + 1)); echo "not ok $T - $1"; }
diag() { sed 's/^/#   /'; }
# is GOT EXPECTED NAME
is() {
    if [ "$1" = "$2" ]; then ok "$3"; else
        nok "$3"; printf 'got:      %s\nexpected: %s\n' "$1" "$2" | diag
    fi
}
# like GOT REGEX NAME   (extended regex)
like() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then ok "$3"; else
        nok "$3"; printf 'got:      %s\nexpected: /%s/\n' "$1" "$2" | diag
    fi
}
bail() { echo "Bail out! $1"; exit 1; }

# VERBOSITY verbose puts the SQLSTATE after "ERROR:  ".
qerr() {
    local out
    out=$(pgc_psql -At -v VERBOSITY=verbose -c "$1" 2>&1)
    if printf '%s\n' "$out" | grep -q '^ERROR:'; then
        printf '%s\n' "$out" | sed -n 's/^ERROR:  *//p' | head -1 | sed 's/: / /'
    else
        echo "no error: $out" | head -3
    fi
}

tap_end() {
    echo "1..$T"
    [ "$FAILED" = 0 ] || { echo "# $FAILED of $T failed"; exit 1; }
    exit 0
}
