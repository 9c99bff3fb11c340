-- test/bench/pg/ycsb_a.sql - YCSB A: 50 % reads, 50 % updates of one row.
-- @T@ = table, @KEY@ = key expression; pg.sh fills them in.
\set k @KEY@
\set r random(1, 100)
\if :r <= 50
SELECT v FROM @T@ WHERE k = :k;
\else
UPDATE @T@ SET v = rpad(md5(:r::text), 100, 'u') WHERE k = :k;
\endif
