-- test/bench/pg/ycsb_b.sql - YCSB B: 95 % reads, 5 % updates of one row.
-- @T@ = table, @KEY@ = key expression; pg.sh fills them in.
\set k @KEY@
\set r random(1, 100)
\if :r <= 95
SELECT v FROM @T@ WHERE k = :k;
\else
UPDATE @T@ SET v = rpad(md5(:r::text), 100, 'u') WHERE k = :k;
\endif
