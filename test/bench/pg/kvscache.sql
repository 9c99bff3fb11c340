-- test/bench/pg/kvscache.sql - YCSB C in ONE connection (pgbench -c 1 -t
-- :ntx -D i=0), which at its last transaction saves this backend's kvs cache
-- counters into kvs_cache_log: the kvs cache is per backend until it moves to
-- shared memory, so a pgbench client must read its own counters.
\set k @KEY@
\set i :i + 1
SELECT v FROM @T@ WHERE k = :k;
\if :i = :ntx
INSERT INTO kvs_cache_log SELECT :label, * FROM kvs_fdw_cache_stats();
\endif
