#!/bin/bash
# test/fdw/locks.sh - a backend waiting for a kvs file lock shows it in
# pg_stat_activity (TAP output).
#
# The engine locks a file with flock(2) for each read or write section; while
# another process holds the lock, the backend waits (polling for cancels), and
# reports the wait as wait_event_type / wait_event "Extension" (PG 15 has no
# named wait events for extensions).  Here this script itself takes the
# table's file lock with util-linux flock(1) on a descriptor it keeps open,
# and:
#   1. a SELECT on the table waits (Extension), and once the lock is released
#      finishes with the right answer; an INSERT waits likewise behind a
#      shared lock that a SELECT passes;
#   2. statement_timeout during the wait gives 57014 soon (not when the lock
#      is released), and afterwards the backend is not left showing the wait:
#      not when idle, not inside the same statement after an exception block
#      caught the cancel; pg_cancel_backend() during the wait gives 57014 too;
#   3. the table is intact and the server never crashed.
# Every wait is bounded (polls of at most a few seconds).
#
# Assumes the extension is built and installed (test/run does that first).
# Root (the cluster runs as the "postgres" OS user) or a normal user.
#   KVS_LOCKS_PORT   port of the throwaway cluster (default 55436)
#   KVS_KEEP=1       keep the temp dir (server log) at exit
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_LOCKS_PORT:-55436}

# cleanup (test/lib/clustertest.sh) first drops our lock, then kills the
# background clients (CT_PIDS) and stops the server
LFD=""
ct_at_exit() { [ -n "$LFD" ] && exec {LFD}<&-; return 0; }

# ---- the outside lock: flock(1) on a descriptor of this shell --------------------
# The lock belongs to the open file, so it lasts until we unlock or close it
# (or this script exits): no holder process to clean up.
hold() {                    # hold -x|-s : lock the table's file
    exec {LFD}<"$FILE" || return 1
    flock "$1" -w 5 "$LFD"
}
release() {
    flock -u "$LFD"
    exec {LFD}<&-
    LFD=""
}

# bg NAME SQL : run SQL in the background as application_name NAME; its
# output (VERBOSITY verbose: errors as "ERROR:  SQLSTATE: ...") goes to
# $WORK/NAME.out, its exit status to $WORK/NAME.rc (ct_bg_done NAME TENTHS
# waits for it).  As ct_bg, but the child does not keep our lock descriptor.
bg() {
    local name=$1 sql=$2
    if [ -n "$LFD" ]; then
        ( PGAPPNAME=$name pgc_psql -At -v VERBOSITY=verbose -c "$sql" >"$WORK/$name.out" 2>&1
          echo $? >"$WORK/$name.rc" ) {LFD}<&- &
    else
        ( PGAPPNAME=$name pgc_psql -At -v VERBOSITY=verbose -c "$sql" >"$WORK/$name.out" 2>&1
          echo $? >"$WORK/$name.rc" ) &
    fi
    CT_PIDS="$CT_PIDS $!"
}
# wait_event NAME : the wait event of bg NAME's backend, "type/event" or
# "none"; polls up to 5 s for it to be "Extension/Extension"
wait_event() {
    local n=0 got=""
    while [ $n -lt 100 ]; do
        got=$(q "SELECT coalesce(wait_event_type, 'none') || '/' || coalesce(wait_event, 'none')
                   FROM pg_stat_activity WHERE application_name = '$1'")
        [ "$got" = "Extension/Extension" ] && break
        sleep 0.05
        n=$((n + 1))
    done
    echo "${got:-no backend}"
}

ct_start locks "$PORT"
echo "# kvs_fdw lock-wait test: port $PORT, work dir $WORK"
if ! out=$(q "CREATE EXTENSION kvs_fdw; CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
              CREATE FOREIGN TABLE lk (id int, v text) SERVER kvs;
              INSERT INTO lk SELECT g, 'v' || g FROM generate_series(1, 100) g;" 2>&1); then
    echo "$out" | diag
    bail "the extension is not installed (make && make install)"
fi
FILE=$PGC_DATA/kvs_fdw/$(q "SELECT oid FROM pg_database WHERE datname = current_database()")_$(q "SELECT 'lk'::regclass::oid").kvs
[ -f "$FILE" ] || bail "no kvs file at $FILE"
ok "table lk has its file in the data directory"

# ---- 1. waits are visible, and end with the right answer ----------------------------
hold -x || bail "cannot lock $FILE"
bg reader "SELECT count(*) || ' ' || sum(id) FROM lk"
is "$(wait_event reader)" "Extension/Extension" "a SELECT waiting for the file lock shows wait_event Extension"
is "$(q "SELECT state || ' ' || query FROM pg_stat_activity WHERE application_name = 'reader'")" \
    "active SELECT count(*) || ' ' || sum(id) FROM lk" "pg_stat_activity shows the waiting query as active"
sleep 0.3
[ -s "$WORK/reader.rc" ] && nok "the SELECT still waits while the lock is held" ||
    ok "the SELECT still waits while the lock is held"
release
if ct_bg_done reader 100; then
    is "$(cat "$WORK/reader.out")" "100 5050" "after the release the SELECT finishes with the right answer"
else
    nok "after the release the SELECT finishes within 10 s"
fi
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'")" "0" \
    "no backend shows the wait any more"

# a shared lock: readers pass, a writer waits
hold -s || bail "cannot lock $FILE (shared)"
is "$(timeout 10 "$PG_BINDIR/psql" -X -At -c "SELECT count(*) FROM lk")" "100" \
    "a SELECT passes a shared lock held outside"
bg writer "INSERT INTO lk VALUES (101, 'v101')"
is "$(wait_event writer)" "Extension/Extension" "an INSERT waiting behind the shared lock shows wait_event Extension"
release
if ct_bg_done writer 100; then
    is "$(cat "$WORK/writer.out")" "" "after the release the INSERT succeeds"
else
    nok "after the release the INSERT finishes within 10 s"
fi
is "$(q "SELECT v FROM lk WHERE id = 101")" "v101" "the inserted row is there"

# ---- 2. cancels during the wait -------------------------------------------------------
hold -x || bail "cannot lock $FILE"
t0=$(date +%s%N)
bg tmo "SET statement_timeout = '500ms'; SELECT count(*) FROM lk"
if ct_bg_done tmo 50; then
    ms=$((($(date +%s%N) - t0) / 1000000))
    like "$(cat "$WORK/tmo.out")" "ERROR:  57014: canceling statement due to statement timeout" \
        "statement_timeout during the wait: 57014"
    if [ "$ms" -lt 3000 ]; then ok "... after ${ms} ms, while the lock is still held"; else
        nok "... after ${ms} ms, while the lock is still held (want < 3000 ms)"; fi
else
    nok "statement_timeout during the wait ends the statement within 5 s"
    nok "... while the lock is still held"
fi

# A session that stays: after the timeout its backend is idle, not waiting.
mkfifo "$WORK/sess.in"
( PGAPPNAME=sess "$PG_BINDIR/psql" -X -At -v VERBOSITY=verbose <"$WORK/sess.in" >"$WORK/sess.out" 2>&1 ) {LFD}<&- &
CT_PIDS="$CT_PIDS $!"
exec {SFD}>"$WORK/sess.in"
printf '%s\n' "SET statement_timeout = '300ms';" "SELECT count(*) FROM lk;" "\\echo __done__" >&"$SFD"
n=0
until grep -q '^__done__$' "$WORK/sess.out" || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
like "$(cat "$WORK/sess.out")" "57014: canceling statement due to statement timeout" \
    "a session's statement times out during the wait"
n=0
until [ "$(q "SELECT state FROM pg_stat_activity WHERE application_name = 'sess'")" = idle ] || [ $n -ge 50 ]; do
    sleep 0.1; n=$((n + 1))
done
is "$(q "SELECT state || ' ' || coalesce(wait_event_type, 'none') || '/' || coalesce(wait_event, 'none')
           FROM pg_stat_activity WHERE application_name = 'sess'")" "idle Client/ClientRead" \
    "after the timeout the backend is idle, waiting for its client, not for the file"
# In one statement: the cancel caught by an exception block, then the
# backend's own wait event read before it returns to the client.
printf '%s\n' "SET statement_timeout = '300ms';" \
    "DO \$\$ DECLARE w text; BEGIN
       BEGIN PERFORM count(*) FROM lk; RAISE NOTICE 'no cancel';
       EXCEPTION WHEN query_canceled THEN NULL; END;
       SELECT coalesce(wait_event_type, 'none') INTO w FROM pg_stat_activity WHERE pid = pg_backend_pid();
       RAISE NOTICE 'after the caught cancel: %', w;
     END \$\$;" "\\echo __done2__" >&"$SFD"
n=0
until grep -q '^__done2__$' "$WORK/sess.out" || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
like "$(cat "$WORK/sess.out")" "after the caught cancel: none" \
    "inside the statement, after the caught cancel, the backend shows no wait event"
printf '\\q\n' >&"$SFD"
exec {SFD}>&-

# pg_cancel_backend during the wait
bg cancel "SELECT count(*) FROM lk"
is "$(wait_event cancel)" "Extension/Extension" "another SELECT waits"
is "$(q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'cancel'")" "t" \
    "pg_cancel_backend() sent"
if ct_bg_done cancel 50; then
    like "$(cat "$WORK/cancel.out")" "ERROR:  57014: canceling statement due to user request" \
        "pg_cancel_backend during the wait: 57014"
else
    nok "pg_cancel_backend during the wait ends the statement within 5 s"
fi
release

# ---- 3. the table is intact, the server never crashed ------------------------------
is "$(q "SELECT count(*) || ' ' || sum(id) FROM lk")" "101 5151" "all rows are there after the waits"
is "$(q "SELECT count(*) FROM kvs_fdw_check('lk')")" "0" "kvs_fdw_check is clean"
finish
