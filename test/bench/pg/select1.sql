-- test/bench/pg/select1.sql - the ceiling of the query pipeline.  The key is
-- drawn as in the other scripts so the client pays the generator's cost too.
\set k @KEY@
SELECT 1;
