#!/bin/bash
# test/fdw/crashloop.sh - kill -9 of the whole server at random moments while
# clients commit to kvs and heap tables in one transaction; after each restart
# every acknowledged commit must be fully there and no transaction partly
# there (TAP output).
#
# A throwaway cluster with two kvs tables ka, kb and a heap table h, and a kvs
# table kbulk with its heap marker table hmark.  Each cycle:
#   1. the server runs alternately with kvs_fdw in shared_preload_libraries
#      (odd cycles: the shared pool, small so that pages are evicted) and
#      without (even cycles: each backend its own cache), and two cycles in
#      four (3, 4, 7, 8, ...) with synchronous_commit = off: a transaction
#      that writes kvs commits synchronously all the same, so even there no
#      acknowledged commit may be lost;
#   2. CLIENTS psql clients each commit, one after the other, transactions
#      that insert row ID into ka, kb and h and set the client's counter row
#      (id = -client) to ID in all three; one more client commits 20,000-row
#      transactions: INSERT ... SELECT of batch B into kbulk, its marker row
#      B into hmark, and the deletion of batches up to B - 3 from both (so
#      the file stays small and kills also land in bulk deletes).  A client prints
#      "ack KIND ID" only after COMMIT returned, so its log holds exactly the
#      commits the server acknowledged;
#   3. after a random 0.4 - 3 s, SIGKILL of the postmaster and of every
#      process whose working directory is the data directory (the backends,
#      the auxiliary processes), repeated until none is left alive: an
#      orphaned backend must not keep writing into the next start
#      (zombies left for init to reap hold nothing and are ignored);
#   4. the server starts again, in the next cycle's mode (Postgres's crash
#      recovery; kvs files recover when opened; this server then serves the
#      next cycle), the acknowledged commits of the cycle are added to the
#      heap table acked, and every check runs over all cycles so far:
#        lost     an acknowledged row missing from ka, kb or h; a client's
#                 counter behind its last acknowledged commit; an
#                 acknowledged batch without its marker or its 20,000 rows
#                 (unless a batch that deletes it, B + 3 or later, committed);
#        partial  a row in some of ka, kb, h but not all, or with other
#                 contents than written; counter rows that disagree; a batch
#                 marker without exactly 20,000 rows, rows without a marker;
#        check    kvs_fdw_check clean for ka, kb and kbulk.
#      A problem is recorded once (heap table problems) in the cycle that
#      found it; each cycle is one TAP line.  A cycle whose checks cannot
#      read a table (a damaged file, a commit in doubt) fails, and the loop
#      goes on: the next crash and recovery may change that.
# At the end: cycles (and how many could not be read), acknowledged commits
# checked, lost, partial.
#
# Before the loop, the window of an asynchronous commit, made certain: with
# the WAL writer stopped (SIGSTOP), a transaction writing a kvs table and a
# heap table commits at synchronous_commit = off, then the whole server is
# killed; after the restart both halves must be there or neither (an
# asynchronous commit record still in the WAL buffers at the kill, after the
# kvs pages were written back, left the kvs half alone).
#
# Postgres runs with fsync = off (test/lib/pgcluster.sh): a killed process
# loses nothing the kernel already has, and this test kills processes, not the
# machine.  Assumes the extension is built and installed (test/run does that).
#   --cycles N             cycles (default 20; KVS_CRASHLOOP_CYCLES)
#   KVS_CRASHLOOP_PORT     port (default: KVS_TEST_PORT, else 55444)
#   KVS_CRASHLOOP_CLIENTS  single-row clients (default 3, at most 9)
#   KVS_KEEP=1             keep the temp dir (server log, client logs)
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

CYCLES=${KVS_CRASHLOOP_CYCLES:-20}
while [ $# -gt 0 ]; do
    case $1 in
        --cycles) CYCLES=$2; shift ;;
        *) echo "usage: $0 [--cycles N]" >&2; exit 2 ;;
    esac
    shift
done
PORT=${KVS_CRASHLOOP_PORT:-${KVS_TEST_PORT:-55444}}
CLIENTS=${KVS_CRASHLOOP_CLIENTS:-3}
BATCH=20000
# row ids are CYCLE * 10^7 + CLIENT * 10^6 + N: one digit for the client
[ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 9 ] || { echo "KVS_CRASHLOOP_CLIENTS must be 1 to 9" >&2; exit 2; }
SHARED_SETTINGS="-c shared_preload_libraries=kvs_fdw -c kvs_fdw.shared_cache_size=8MB"

ct_start crashloop "$PORT" max_connections=20 autovacuum=off
echo "# kvs_fdw crash loop: port $PORT, $CYCLES cycles, $CLIENTS single-row clients + 1 client of $BATCH-row transactions"
ct_extension
if ! q "CREATE FOREIGN TABLE ka (id bigint OPTIONS (key 'true'), client int, seq bigint, pad text) SERVER kvs;
        CREATE FOREIGN TABLE kb (id bigint OPTIONS (key 'true'), client int, seq bigint, pad text) SERVER kvs;
        CREATE TABLE h (id bigint PRIMARY KEY, client int, seq bigint, pad text);
        CREATE FOREIGN TABLE kbulk (id bigint OPTIONS (key 'true'), batch int, pad text) SERVER kvs;
        CREATE TABLE hmark (batch int PRIMARY KEY);
        CREATE TABLE acked (kind text, id bigint, cycle int, PRIMARY KEY (kind, id));
        CREATE TABLE problems (kind text, what text, id bigint, cycle int, PRIMARY KEY (kind, what, id));
        INSERT INTO ka SELECT -c, c, 0, '' FROM generate_series(1, $CLIENTS) c;
        INSERT INTO kb SELECT -c, c, 0, '' FROM generate_series(1, $CLIENTS) c;
        INSERT INTO h SELECT -c, c, 0, '' FROM generate_series(1, $CLIENTS) c;" >/dev/null; then
    bail "cannot create the tables"
fi
ok "tables ka, kb (kvs), h (heap), kbulk (kvs), hmark (heap) and $CLIENTS counter rows"
pgc_stop

# ---- the server: started by us, so that we reap the postmaster ------------------------
# (pg_ctl would leave it to init, which here may leave it a zombie for a while,
# and a zombie's pid in postmaster.pid looks like a running postmaster)
SERVER_PID=
server_start() {      # server_start shared|local [on|off: synchronous_commit]
    local n=0 opts
    eval "opts=($PGC_OPTS)"      # the options of pgc_start, quoting and all
    [ "$1" = shared ] && opts+=($SHARED_SETTINGS)
    opts+=(-c "synchronous_commit=${2:-on}")
    pgc_as "$PG_BINDIR/postgres" -D "$PGC_DATA" "${opts[@]}" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    until q "SELECT 1" >/dev/null 2>&1; do
        n=$((n + 1))
        if [ $n -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
}
# ct_kill_server, then reap the postmaster this script started
server_kill() {
    ct_kill_server || return 1
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
ct_at_exit() {
    [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null && pgc_stop
    local p
    for p in $CLIENT_PIDS; do kill "$p" 2>/dev/null; done
}

# ---- the clients ----------------------------------------------------------------
# a client is an endless stream of transactions (awk) piped into one psql
# that stops at the first error (the server gone); "\echo ack" runs only once
# COMMIT has returned.
CLIENT_PIDS=
client_rows() {       # client_rows CYCLE CLIENT
    local cy=$1 c=$2
    awk -v base=$((cy * 10000000 + c * 1000000)) -v c="$c" 'BEGIN {
        for (n = 1; n < 1000000; n++) {
            id = base + n
            printf "BEGIN;\n"
            printf "INSERT INTO ka VALUES (%d, %d, %d, repeat(%s, %d));\n", id, c, id, "'\''a'\''", id % 200
            printf "INSERT INTO kb VALUES (%d, %d, %d, repeat(%s, %d));\n", id, c, id, "'\''b'\''", id % 300
            printf "INSERT INTO h VALUES (%d, %d, %d, repeat(%s, %d));\n", id, c, id, "'\''h'\''", id % 100
            printf "UPDATE ka SET seq = %d WHERE id = %d;\n", id, -c
            printf "UPDATE kb SET seq = %d WHERE id = %d;\n", id, -c
            printf "UPDATE h SET seq = %d WHERE id = %d;\n", id, -c
            printf "COMMIT;\n\\echo ack s %d\n", id
        } }' | stdbuf -oL "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 >"$WORK/ack.$cy.$c" 2>"$WORK/err.$cy.$c"
}
client_bulk() {       # client_bulk CYCLE FIRST_BATCH
    local cy=$1 b0=$2
    awk -v b0="$b0" -v n="$BATCH" 'BEGIN {
        for (b = b0; b < b0 + 100000; b++) {
            printf "BEGIN;\n"
            printf "INSERT INTO kbulk SELECT %d::bigint * 100000 + g, %d, repeat(%s, g %% 50) FROM generate_series(1, %d) g;\n", b, b, "'\''x'\''", n
            printf "INSERT INTO hmark VALUES (%d);\n", b
            printf "DELETE FROM kbulk WHERE batch <= %d;\n", b - 3
            printf "DELETE FROM hmark WHERE batch <= %d;\n", b - 3
            printf "COMMIT;\n\\echo ack b %d\n", b
        } }' | stdbuf -oL "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 >"$WORK/ack.$cy.bulk" 2>"$WORK/err.$cy.bulk"
}

# ---- the checks --------------------------------------------------------------------
# One psql session: the kvs tables read once into temporary heap tables, then
# every check as an INSERT INTO problems ... ON CONFLICT DO NOTHING, so each
# problem counts once, in the cycle that first found it.
check_sql() {      # check_sql CYCLE
    cat <<EOF
CREATE TEMP TABLE ta AS SELECT * FROM ka;
CREATE TEMP TABLE tb AS SELECT * FROM kb;
CREATE TEMP TABLE tbulk AS SELECT batch, count(*) AS n,
    bool_and(pad = repeat('x', (id % 100000 % 50)::int)) AS good FROM kbulk GROUP BY batch;
CREATE TEMP TABLE expect AS SELECT id, (id / 1000000 % 10)::int AS client, id AS seq FROM acked WHERE kind = 's';
ANALYZE ta; ANALYZE tb; ANALYZE tbulk; ANALYZE expect;
INSERT INTO problems
SELECT 'lost', 'row not in ka', id, $1 FROM expect e WHERE NOT EXISTS (SELECT 1 FROM ta WHERE ta.id = e.id)
UNION ALL SELECT 'lost', 'row not in kb', id, $1 FROM expect e WHERE NOT EXISTS (SELECT 1 FROM tb WHERE tb.id = e.id)
UNION ALL SELECT 'lost', 'row not in h', id, $1 FROM expect e WHERE NOT EXISTS (SELECT 1 FROM h WHERE h.id = e.id)
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'partial', 'row in ' || concat_ws('+', CASE WHEN a THEN 'ka' END, CASE WHEN b THEN 'kb' END, CASE WHEN c THEN 'h' END) || ' only', id, $1
  FROM (SELECT id, bool_or(t = 'a') a, bool_or(t = 'b') b, bool_or(t = 'h') c
          FROM (SELECT id, 'a' t FROM ta WHERE id > 0 UNION ALL SELECT id, 'b' FROM tb WHERE id > 0
                UNION ALL SELECT id, 'h' FROM h WHERE id > 0) u GROUP BY id) s
 WHERE NOT (a AND b AND c)
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'partial', 'row contents in ' || t, id, $1
  FROM (SELECT 'ka' t, * FROM ta UNION ALL SELECT 'kb', * FROM tb) r
 WHERE id > 0 AND (client IS DISTINCT FROM (id / 1000000 % 10)::int OR seq IS DISTINCT FROM id
                   OR pad IS DISTINCT FROM repeat(CASE t WHEN 'ka' THEN 'a' ELSE 'b' END, (id % CASE t WHEN 'ka' THEN 200 ELSE 300 END)::int))
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'partial', 'counters disagree: ka ' || coalesce(ta.seq::text, '-') || ', kb ' || coalesce(tb.seq::text, '-') || ', h ' || coalesce(h.seq::text, '-'), h.id, $1
  FROM h LEFT JOIN ta USING (id) LEFT JOIN tb USING (id)
 WHERE h.id < 0 AND (ta.seq IS DISTINCT FROM h.seq OR tb.seq IS DISTINCT FROM h.seq)
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'lost', 'counter of client ' || e.client || ' behind its last acknowledged commit', e.seq, $1
  FROM (SELECT client, max(seq) seq FROM expect GROUP BY client) e JOIN h ON h.id = -e.client
 WHERE h.seq < e.seq
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'lost', 'batch without marker or rows', a.id, $1 FROM acked a
 WHERE a.kind = 'b' AND NOT (EXISTS (SELECT 1 FROM hmark WHERE batch = a.id) AND EXISTS (SELECT 1 FROM tbulk WHERE batch = a.id))
   AND NOT EXISTS (SELECT 1 FROM hmark WHERE batch >= a.id + 3)
   AND NOT EXISTS (SELECT 1 FROM acked WHERE kind = 'b' AND id >= a.id + 3)
ON CONFLICT DO NOTHING;
INSERT INTO problems SELECT 'partial', 'batch: marker ' || (m.batch IS NOT NULL) || ', ' || coalesce(t.n, 0) || ' rows' || CASE WHEN t.good IS NOT FALSE THEN '' ELSE ' (some with other contents)' END,
       coalesce(m.batch, t.batch), $1
  FROM hmark m FULL JOIN tbulk t USING (batch)
 WHERE m.batch IS NULL OR t.batch IS NULL OR t.n <> $BATCH OR NOT t.good
ON CONFLICT DO NOTHING;
SELECT 'checked ' || (SELECT count(*) FROM acked) || ' new ' || (SELECT count(*) FROM acked WHERE cycle = $1)
    || ' lost ' || (SELECT count(*) FROM problems WHERE kind = 'lost' AND cycle = $1)
    || ' partial ' || (SELECT count(*) FROM problems WHERE kind = 'partial' AND cycle = $1)
    || ' kvscheck ' || (SELECT count(*) FROM kvs_fdw_check('ka')) + (SELECT count(*) FROM kvs_fdw_check('kb'))
                       + (SELECT count(*) FROM kvs_fdw_check('kbulk'))
    || ' rows ' || (SELECT count(*) FROM ta) || '/' || (SELECT count(*) FROM kbulk);
EOF
}

# ---- an asynchronous commit's window, made certain ---------------------------------
# async_window MODE: the WAL writer stopped, one commit at synchronous_commit
# = off, the whole server killed at once; after the restart both halves of
# the commit are there or neither
async_window() {
    local mode=$1 ww got
    server_start "$mode" off || bail "the server does not start ($mode)"
    ww=$(ct_server_pids | xargs -r ps -o pid=,args= -p | awk '/walwriter/ { print $1 }')
    [ -n "$ww" ] || bail "$mode: no WAL writer to stop"
    kill -STOP "$ww"
    if ! q "BEGIN; INSERT INTO wk VALUES (1, '$mode'); INSERT INTO wh VALUES (1); COMMIT;" >/dev/null; then
        nok "$mode: the commit at synchronous_commit = off"
    fi
    server_kill || bail "$mode: the server processes do not go away"
    server_start "$mode" || bail "the server does not start again ($mode)"
    got=$(q "SELECT (SELECT count(*) FROM wk) || '|' || (SELECT count(*) FROM wh WHERE id = 1)" 2>&1)
    case $got in
        1\|1) ok "$mode: a commit at synchronous_commit = off whose WAL writer was stopped, then kill -9: both halves there" ;;
        0\|0) ok "$mode: a commit at synchronous_commit = off whose WAL writer was stopped, then kill -9: neither half there" ;;
        *) nok "$mode: a commit at synchronous_commit = off whose WAL writer was stopped, then kill -9: kvs|heap rows $got, not both or neither" ;;
    esac
    is "$(q "SELECT count(*) FROM kvs_fdw_check('wk')" 2>&1)" 0 "$mode: kvs_fdw_check clean after it"
    q "DELETE FROM wk; DELETE FROM wh" >/dev/null
    server_kill || bail "$mode: the server processes do not go away"
}
server_start local || bail "the server does not start (local)"
q "CREATE FOREIGN TABLE wk (id int OPTIONS (key 'true'), v text) SERVER kvs; CREATE TABLE wh (id int)" >/dev/null ||
    bail "cannot create the window's tables"
server_kill || bail "the server processes do not go away"
async_window local
async_window shared

# ---- the loop ---------------------------------------------------------------------------
# The server that recovers from cycle N's crash, and is checked, runs in
# cycle N + 1's mode and serves cycle N + 1's clients: recovery in either mode
# follows a crash in the other, and at either synchronous_commit.
mode_of() { if [ $(($1 % 2)) = 1 ]; then echo shared; else echo local; fi; }
sync_of() { if [ $((($1 - 1) / 2 % 2)) = 1 ]; then echo off; else echo on; fi; }
DONE=0          # cycles run
UNREADABLE=0    # cycles whose checks could not read a table
server_start "$(mode_of 1)" "$(sync_of 1)" || bail "the server does not start ($(mode_of 1))"
for cy in $(seq 1 "$CYCLES"); do
    mode=$(mode_of "$cy")
    next=$(mode_of $((cy + 1)))
    got=$(q "SELECT kvs_fdw_mode()" 2>&1)
    [ "$got" = "$mode" ] || nok "cycle $cy: kvs_fdw_mode() is $got, not $mode"
    # past every batch committed (hmark) or acknowledged, and past the one that
    # was in flight at the kill (+ 2), whose rows may be in kbulk; read from
    # heap tables only, so a kbulk that cannot be read does not stop the loop
    b0=$(q "SELECT greatest((SELECT max(batch) FROM hmark), (SELECT max(id) FROM acked WHERE kind = 'b'), 0) + 2" 2>&1)
    [[ $b0 =~ ^[0-9]+$ ]] || { nok "cycle $cy: read the next batch number: $b0"; break; }
    CLIENT_PIDS=
    for c in $(seq 1 "$CLIENTS"); do client_rows "$cy" "$c" & CLIENT_PIDS="$CLIENT_PIDS $!"; done
    client_bulk "$cy" "$b0" & CLIENT_PIDS="$CLIENT_PIDS $!"
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.4 + 2.6 * r / 32768 }')"
    if ! server_kill; then
        nok "cycle $cy: every server process is gone within 10 s of kill -9"
        ct_server_pids | xargs -r ps -o pid,stat,cmd -p | diag
        break
    fi
    # the clients end once the server is gone (their psql fails and stops)
    for p in $CLIENT_PIDS; do wait "$p" 2>/dev/null; done
    CLIENT_PIDS=
    server_start "$next" "$(sync_of $((cy + 1)))" || { nok "cycle $cy: the server starts after the kill ($next)"; tail -20 "$WORK/server.log" | diag; break; }
    # a client may only have stopped because the server went away
    errs=$(cat "$WORK"/err."$cy".* | grep -vE "^(FATAL:  terminating connection due to unexpected postmaster exit|server closed the connection unexpectedly|no connection to the server|connection to server was lost|psql:<stdin>:[0-9]+: (FATAL|error): .*(connection|terminat).*)\$|^\s" || true)
    [ -z "$errs" ] || { nok "cycle $cy: a client stopped on an error of its own"; echo "$errs" | head -5 | diag; }
    cat "$WORK"/ack."$cy".* | awk -v cy="$cy" '$1 == "ack" { print $2 "\t" $3 "\t" cy }' >"$WORK/acked.$cy"
    if ! out=$(pgc_psql -At -c "\\copy acked FROM '$WORK/acked.$cy'" 2>&1); then
        nok "cycle $cy: load the acknowledged commits: $out"; break
    fi
    if ! res=$(check_sql "$cy" | pgc_psql -At 2>&1); then
        nok "cycle $cy ($mode, recovered in $next mode): the checks ran"; echo "$res" | tail -5 | diag
        DONE=$cy
        UNREADABLE=$((UNREADABLE + 1))
        continue      # the next crash and recovery may make it readable again
    fi
    read -r _ checked _ new _ lost _ partial _ kvscheck _ rows <<<"$res"
    DONE=$cy
    name="cycle $cy ($mode, synchronous_commit $(sync_of "$cy"), recovered in $next mode): $new new acknowledged commits ($checked in all), $lost lost, $partial partial, kvs_fdw_check $kvscheck problems (rows ka/kbulk $rows)"
    if [ "$lost" = 0 ] && [ "$partial" = 0 ] && [ "$kvscheck" = 0 ]; then ok "$name"; else
        nok "$name"
        q "SELECT kind || ': ' || what || ' (id ' || id || ')' FROM problems WHERE cycle = $cy ORDER BY kind, id LIMIT 5" | diag
        [ "$kvscheck" = 0 ] || q "SELECT 'ka' t, * FROM kvs_fdw_check('ka') UNION ALL SELECT 'kb', * FROM kvs_fdw_check('kb')
                                 UNION ALL SELECT 'kbulk', * FROM kvs_fdw_check('kbulk') LIMIT 5" 2>&1 | diag
    fi
done

IFS='|' read -r lost partial <<<"$(q "SELECT count(*) FILTER (WHERE kind = 'lost'), count(*) FILTER (WHERE kind = 'partial') FROM problems" 2>&1)"
is "$DONE" "$CYCLES" "all $CYCLES cycles ran"
is "$UNREADABLE" "0" "every table could be read after every restart"
echo "# totals: cycles $DONE ($UNREADABLE with a table that could not be read), acknowledged commits checked $(q "SELECT count(*) || ' (' || count(*) FILTER (WHERE kind = 's') || ' single-row, '
        || count(*) FILTER (WHERE kind = 'b') || ' batches of $BATCH rows)' FROM acked WHERE cycle <= $DONE"), lost $lost, partial $partial"
is "$lost" "0" "no acknowledged commit lost over $DONE cycles"
is "$partial" "0" "no transaction partly there over $DONE cycles"
LOG_MARK=$(wc -l <"$WORK/server.log")
finish
