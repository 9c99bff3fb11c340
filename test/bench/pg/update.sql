-- test/bench/pg/update.sql - one UPDATE of one row by key per transaction
-- (pgbench's own transaction: with synchronous_commit = on, one durable
-- commit each).  @T@ = table, @KEY@ = key expression; durable.sh fills them in.
\set k @KEY@
\set r random(1, 1000000)
UPDATE @T@ SET v = rpad(md5(:r::text), 100, 'u') WHERE k = :k;
