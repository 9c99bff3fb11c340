#!/bin/bash
# test/fdw/policy.sh - kvs_fdw.cache_policy: both replacement policies give
# the same answers as a heap table through a cache far smaller than the
# data (TAP output).
#
# A throwaway cluster starts with kvs_fdw.cache_policy = clock; SHOW says so.
# A kvs table and a heap table get the same 20,000 rows; with a 256 kB cache
# (64 frames, the file is far larger) a count, a sum of value lengths, 2,000
# point lookups and an UPDATE of every tenth row must agree with the heap,
# the cache must have evicted pages, and kvs_fdw_check is clean.  A
# non-superuser cannot change the setting (a warning that drops the value if
# it was set before the library loaded, 42501 after); a superuser's SET lru runs
# the same checks again on the same file, and one session that switches
# policy between statements (each switch reopens the idle handle) still
# agrees with the heap.
#
# Assumes the extension is built and installed (test/run does that first).
# Root (the cluster runs as the "postgres" OS user) or a normal user.
#   KVS_POLICY_PORT   port of the throwaway cluster (default 55439)
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
. "$ROOT/test/lib/clustertest.sh"

PORT=${KVS_POLICY_PORT:-55439}
ROWS=20000

ct_start policy "$PORT" "kvs_fdw.cache_policy=clock"
echo "# kvs_fdw.cache_policy test: port $PORT, $ROWS rows"
ct_extension
q "CREATE FOREIGN TABLE pk (id bigint, val text) SERVER kvs;
   CREATE TABLE ph (id bigint PRIMARY KEY, val text);
   INSERT INTO ph SELECT g, repeat(md5(g::text), 1 + g % 7) FROM generate_series(1, $ROWS) g;
   INSERT INTO pk SELECT * FROM ph;" >/dev/null || bail "cannot load the tables"

# checks POLICY: the answers of pk equal ph's through a 64-frame cache; the
# sessions set the policy (the server's setting for the first round)
checks() {
    local policy=$1 got want
    export PGOPTIONS="-c kvs_fdw.cache_policy=$policy"
    is "$(q "SHOW kvs_fdw.cache_policy")" "$policy" "$policy: SHOW kvs_fdw.cache_policy"
    got=$(q "SET kvs_fdw.cache_size = '256kB';
             SELECT count(*), sum(length(val)) FROM pk;")
    want=$(q "SELECT count(*), sum(length(val)) FROM ph;")
    is "$got" "$want" "$policy: count and sum of value lengths equal the heap's ($want)"
    got=$(q "SET kvs_fdw.cache_size = '256kB';
             SELECT count(*) FROM generate_series(1, 2000) s(i)
              WHERE (SELECT val FROM pk WHERE id = (i * 7919) % $ROWS + 1)
                  = (SELECT val FROM ph WHERE id = (i * 7919) % $ROWS + 1);")
    is "$got" "2000" "$policy: 2000 point lookups equal the heap's"
    q "SET kvs_fdw.cache_size = '256kB';
       UPDATE pk SET val = val || '$policy' WHERE id % 10 = 0;
       UPDATE ph SET val = val || '$policy' WHERE id % 10 = 0;" >/dev/null
    got=$(q "SELECT count(*) FROM pk JOIN ph USING (id) WHERE pk.val = ph.val")
    is "$got" "$ROWS" "$policy: after an UPDATE of every tenth row, all $ROWS rows equal the heap's"
    got=$(q "SET kvs_fdw.cache_size = '256kB';
             SELECT count(*) FROM pk;
             SELECT evictions > 0 FROM kvs_fdw_cache_stats()
              WHERE file = (SELECT file FROM kvs_fdw_stats('pk'));" | tail -1)
    is "$got" "t" "$policy: the cache evicted pages (the file is larger than 64 frames)"
    is "$(q "SELECT count(*) FROM kvs_fdw_check('pk')" 2>&1)" "0" "$policy: kvs_fdw_check is clean"
    unset PGOPTIONS
}

is "$(q "SHOW kvs_fdw.cache_policy")" "clock" "the server was started with cache_policy clock"
checks clock
q "CREATE ROLE pu LOGIN; GRANT SELECT ON pk TO pu;" >/dev/null
# before the library is loaded the name is a placeholder anyone may SET;
# loading it (the first use of a kvs table) throws a non-superuser's value
# away with a warning, as for every superuser-only extension setting
got=$(pgc_psql -At -U pu -c "SET kvs_fdw.cache_policy = 'lru'" -c "SELECT count(*) FROM pk" \
      -c "SHOW kvs_fdw.cache_policy" 2>&1)
case $got in
    *'permission denied to set parameter "kvs_fdw.cache_policy"'*"$ROWS"*clock) ok "a non-superuser cannot change kvs_fdw.cache_policy" ;;
    *) nok "a non-superuser cannot change kvs_fdw.cache_policy"; echo "$got" | diag ;;
esac
got=$(pgc_psql -At -U pu -c "SELECT count(*) FROM pk" -c "SET kvs_fdw.cache_policy = 'lru'" 2>&1)
case $got in
    *'permission denied to set parameter "kvs_fdw.cache_policy"'*) ok "nor once the library is loaded (42501)" ;;
    *) nok "nor once the library is loaded (42501)"; echo "$got" | diag ;;
esac

checks lru
# one session, the policy switched between statements: the idle handle is
# reopened with the new policy each time, answers unchanged
got=$(q "SET kvs_fdw.cache_size = '256kB';
         SET kvs_fdw.cache_policy = 'clock'; SELECT sum(length(val)) FROM pk;
         SET kvs_fdw.cache_policy = 'lru'; SELECT sum(length(val)) FROM pk;
         SET kvs_fdw.cache_policy = 'clock'; SELECT sum(length(val)) FROM pk;" | sort -u)
is "$got" "$(q "SELECT sum(length(val)) FROM ph")" "one session switching clock, lru, clock: the same sum each time"
finish
