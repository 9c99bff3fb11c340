-- test/bench/pg/ycsb_c.sql - YCSB C: read only.  @T@ = table, @KEY@ = key
-- expression (uniform or scrambled Zipfian); pg.sh fills them in.
\set k @KEY@
SELECT v FROM @T@ WHERE k = :k;
