# test/lib/clustertest.sh - what the throwaway-cluster scripts in test/fdw/
# share.  Sourced once near the top (it sources test/lib/pgcluster.sh and
# test/lib/tap.sh itself):
#   start:    ct_start NAME PORT [postgres settings...]: WORK (a new temp dir),
#             the cluster in it, cleanup at exit; bails if it does not start
#   extension: ct_extension: CREATE EXTENSION kvs_fdw and SERVER kvs, or bail
#   TAP:      test/lib/tap.sh (ok, nok, diag, is, like, bail, qerr, tap_end)
#   cleanup:  ct_at_exit (if the script defines it), kills the sessions and
#             the pids in CT_PIDS, stops the server, removes WORK unless
#             KVS_KEEP=1 (trap EXIT)
#   SQL:      q SQL (one result, unaligned), as_pg CMD (as the server's OS user)
#   sessions: long-lived psql sessions: sess_open ID, sess_run ID SQL,
#             sess_close ID (sess_run waits up to CT_SESS_WAIT s, default 30)
#   background: one statement string in the background, to cancel or kill:
#             ct_bg NAME SQL, ct_bg_done NAME TENTHS, ct_bg_pid NAME
#   crashes:  ct_server_pids (the live processes in the data directory),
#             ct_kill_server (kill -9 of all of them, until none is left)
#   finish:   the closing checks, the plan, the exit status

. "$(dirname "${BASH_SOURCE[0]}")/pgcluster.sh"   # pgc_start, pgc_stop, pgc_as, pgc_psql
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"   # ok, nok, diag, is, like, bail, qerr, tap_end

# ---- start and cleanup: temp dir, server, sessions --------------------------------
WORK=
LOG_MARK=0
CT_PIDS=""
cleanup() {
    local p
    if declare -F ct_at_exit >/dev/null; then ct_at_exit; fi
    for p in $CT_PIDS; do kill "$p" 2>/dev/null; done
    pgc_stop
    [ -n "$WORK" ] || return 0
    if [ "${KVS_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM     # so a signal also runs cleanup

# ct_start NAME PORT [postgres -c settings...]
ct_start() {
    local name=$1 port=$2
    shift 2
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvs_$name.XXXXXX") || bail "cannot make a temp dir"
    chmod 755 "$WORK"          # the server's OS user works in it too
    echo 0 >"$WORK/seq"
    pgc_start "$WORK" "$port" "$@" || bail "cannot start a cluster on port $port"
}

# ct_extension: the extension and the server every script uses
ct_extension() {
    local out
    if out=$(q "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;" 2>&1); then
        ok "CREATE EXTENSION kvs_fdw and a server"
    else
        nok "CREATE EXTENSION kvs_fdw and a server"; echo "$out" | diag
        bail "the extension is not installed (make && make install)"
    fi
}

# ---- SQL helpers ---------------------------------------------------------------
# q SQL: one value/row set, unaligned, tuples only; errors to stderr.
q() { pgc_psql -At -c "$1"; }
# Files the server must read and write are made by the server's OS user.
as_pg() { pgc_as "$@"; }

# ---- sessions -------------------------------------------------------------------
# Each session is a psql reading a fifo; sess_run sends SQL plus an \echo
# marker and waits for the marker in its output file.  The marker counter
# lives in a file (made by ct_start): sess_run often runs in a $(...) subshell.
sess_open() {
    local i=$1 fd
    mkfifo "$WORK/s$i.in"
    stdbuf -oL -eL "$PG_BINDIR/psql" -X -At -v ON_ERROR_STOP=0 -v VERBOSITY=verbose \
        <"$WORK/s$i.in" >"$WORK/s$i.out" 2>&1 &
    CT_PIDS="$CT_PIDS $!"
    eval "SPID_$i=$!"
    exec {fd}>"$WORK/s$i.in"
    eval "SFD_$i=$fd"
}
# sess_run ID SQL -> prints the output of SQL in session ID
sess_run() {
    local i=$1 sql=$2 fd pid start n=0 SEQ max=$(( ${CT_SESS_WAIT:-30} * 20 ))
    eval "fd=\$SFD_$i pid=\$SPID_$i"
    # a write to a fifo nobody reads would kill this script with SIGPIPE
    kill -0 "$pid" 2>/dev/null || { echo "session $i is gone"; return 1; }
    SEQ=$(($(cat "$WORK/seq") + 1))
    echo "$SEQ" >"$WORK/seq"
    start=$(wc -l <"$WORK/s$i.out")
    printf '%s\n\\echo __done_%d__\n' "$sql" "$SEQ" >&"$fd"
    until grep -q "^__done_${SEQ}__\$" "$WORK/s$i.out"; do
        n=$((n + 1)); [ $n -gt $max ] && { echo "session $i timed out"; return 1; }
        kill -0 "$pid" 2>/dev/null || { echo "session $i ended"; return 1; }
        sleep 0.05
    done
    tail -n +$((start + 1)) "$WORK/s$i.out" | grep -v "^__done_${SEQ}__\$"
}
sess_close() {
    local i=$1 fd pid
    eval "fd=\$SFD_$i pid=\$SPID_$i"
    kill -0 "$pid" 2>/dev/null && printf '\\q\n' >&"$fd"
    exec {fd}>&-
}

# ---- background statements ------------------------------------------------------
# ct_bg NAME SQL: run SQL (one psql -c) in the background as application_name
# NAME; its output (VERBOSITY verbose: errors as "ERROR:  SQLSTATE: ...")
# goes to $WORK/NAME.out, its exit status to $WORK/NAME.rc.
ct_bg() {
    rm -f "$WORK/$1.out" "$WORK/$1.rc"
    ( PGAPPNAME=$1 pgc_psql -At -v VERBOSITY=verbose -c "$2" >"$WORK/$1.out" 2>&1
      echo $? >"$WORK/$1.rc" ) &
    CT_PIDS="$CT_PIDS $!"
}
# ct_bg_done NAME TENTHS: wait up to TENTHS/10 s for ct_bg NAME to finish
ct_bg_done() {
    local n=0
    while [ ! -s "$WORK/$1.rc" ] && [ $n -lt "$2" ]; do sleep 0.1; n=$((n + 1)); done
    [ -s "$WORK/$1.rc" ]
}
# ct_bg_pid NAME [WAIT_EVENT_TYPE]: the pid of ct_bg NAME's backend once it runs its
# statement (and, if given, waits on that wait event type); polls up to 10 s,
# prints nothing if it never does
ct_bg_pid() {
    local n=0 pid="" cond="state = 'active'"
    [ -n "${2:-}" ] && cond="$cond AND wait_event_type = '$2'"
    while [ $n -lt 200 ]; do
        pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = '$1' AND $cond")
        [ -n "$pid" ] && break
        sleep 0.05
        n=$((n + 1))
    done
    echo "$pid"
}

# ---- crashes ------------------------------------------------------------------------
# ct_server_pids: the pids of live processes working in the data directory
# (the postmaster and its children; a zombie's cwd cannot be read, so a
# killed process that nobody has reaped yet is not listed)
ct_server_pids() {
    local d
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/cwd" 2>/dev/null)" = "$PGC_DATA" ] || continue
        grep -q '^State:.*Z' "$d/status" 2>/dev/null || echo "${d#/proc/}"
    done
}
# ct_kill_server: kill -9 of the postmaster (postmaster.pid's) and of
# everything in the data directory in one go (no backend is left running to
# notice the postmaster's death and act on it), again until nothing is left
# (a backend forked meanwhile), then until the postmaster's pid is gone: a
# new postmaster refuses to start while the pid in postmaster.pid exists, and
# a killed one started by pg_ctl stays a zombie until something reaps it
# (seconds on a machine without a reaper); 0 when all are gone within 30 s.
# A script whose own child the postmaster is must reap it (wait) itself.
ct_kill_server() {
    local pm pids n=0
    pm=$(head -1 "$PGC_DATA/postmaster.pid" 2>/dev/null)
    # shellcheck disable=SC2046
    kill -9 $pm $(ct_server_pids) 2>/dev/null
    while pids=$(ct_server_pids) && [ -n "$pids" ]; do
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null
        n=$((n + 1)); [ $n -gt 100 ] && return 1
        sleep 0.1
    done
    [ -n "$pm" ] || return 0
    wait "$pm" 2>/dev/null
    while kill -0 "$pm" 2>/dev/null; do
        n=$((n + 1)); [ $n -gt 300 ] && return 1
        sleep 0.1
    done
}

# ---- the end ----------------------------------------------------------------------
# finish: the server still answers and no backend crashed since line LOG_MARK
# of the server log; then the plan and the exit status.
finish() {
    local crash
    is "$(q "SELECT 1")" "1" "SELECT 1 works at the end"
    crash=$(tail -n +$((LOG_MARK + 1)) "$WORK/server.log" |
        grep -E 'terminated by signal|terminated by exception|PANIC|exited with exit code [^0]|reinitializing' || true)
    is "$crash" "" "no backend crash in the server log"
    tap_end
}
