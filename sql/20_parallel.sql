-- 20_parallel: a full scan of a kvs table runs in parallel (Gather over a
-- Parallel Foreign Scan: the participants claim chunks of the file's scan
-- order).  The answers equal the non-parallel ones and every key comes
-- once; a transaction with its own pending writes gets them (a fresh plan
-- is not parallel, a cached parallel plan runs in the leader alone, and a
-- worker given a plain kvs scan refuses); rescans of the parallel scan
-- restart it.
CREATE FOREIGN TABLE par (id int, v text) SERVER kvs;
INSERT INTO par SELECT g, repeat(chr(97 + g % 26), 1 + g % 7) FROM generate_series(1, 20000) g;
ANALYZE par;
-- the non-parallel answers
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM par WHERE v LIKE 'b%';
SELECT count(*) AS n0, sum(id) AS s0 FROM par WHERE v LIKE 'b%' \gset
SELECT :n0 AS n0, :s0 AS s0;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- workers launched by the Gather under the top node (the number only: row
-- counts per participant vary with timing)
CREATE FUNCTION workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->'Plans'->0->>'Workers Launched')::int;  -- the Gather
END $$;

-- ---- a parallel scan gives the same answer, each key once ----------------
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM par WHERE v LIKE 'b%';
SELECT count(*) = :n0 AS same_count, sum(id) = :s0 AS same_sum FROM par WHERE v LIKE 'b%';
SELECT workers_launched('SELECT count(*) FROM par WHERE v LIKE ''b%''') AS launched;
EXPLAIN (COSTS OFF) SELECT count(*), count(DISTINCT id) FROM par;
SELECT count(*), count(DISTINCT id), min(id), max(id) FROM par;
-- no column needed: each participant counts its chunks' rows, copying none
EXPLAIN (COSTS OFF) SELECT count(*) FROM par;
SELECT count(*) FROM par;
SELECT workers_launched('SELECT count(*) FROM par') AS launched;
-- lookups and write statements are not split
EXPLAIN (COSTS OFF) SELECT * FROM par WHERE id = 7;
EXPLAIN (COSTS OFF) UPDATE par SET v = v WHERE v LIKE 'b%';
EXPLAIN (COSTS OFF) SELECT id FROM par WHERE v = 'q' FOR UPDATE;

-- ---- rescans: the parallel scan under a nested loop, three times ---------
SET enable_material = off;
EXPLAIN (COSTS OFF)
SELECT * FROM (SELECT count(*) AS n, sum(id) AS s FROM par WHERE v LIKE 'b%') ss
  RIGHT JOIN (VALUES (1), (2), (3)) v(x) ON true;
SELECT x, n = :n0 AS same_count, s = :s0 AS same_sum
  FROM (SELECT count(*) AS n, sum(id) AS s FROM par WHERE v LIKE 'b%') ss
  RIGHT JOIN (VALUES (1), (2), (3)) v(x) ON true;
RESET enable_material;

-- ---- pending writes of the transaction -----------------------------------
-- a plan cached before the writes: parallel
SET plan_cache_mode = force_generic_plan;
PREPARE q AS SELECT count(*) AS n, sum(id) AS s FROM par WHERE v LIKE 'b%';
EXPLAIN (COSTS OFF) EXECUTE q;
EXECUTE q \gset q_
SELECT :q_n = :n0 AS same_count, :q_s = :s0 AS same_sum;
BEGIN;
DELETE FROM par WHERE id = 1;                     -- was 'b'
UPDATE par SET v = 'b-upd' WHERE id = 3;          -- was 'ddd'
INSERT INTO par VALUES (20001, 'bnew');
-- a fresh plan is not parallel now
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM par WHERE v LIKE 'b%';
SELECT count(*) - :n0 AS count_diff, sum(id) - :s0 AS sum_diff FROM par WHERE v LIKE 'b%';
-- the cached parallel plan runs in the leader alone, with the writes
EXPLAIN (COSTS OFF) EXECUTE q;
EXECUTE q \gset q_
SELECT :q_n - :n0 AS count_diff, :q_s - :s0 AS sum_diff;
-- and again under a nested loop (the rescan decides again)
SET enable_material = off;
SELECT x, n - :n0 AS count_diff, s - :s0 AS sum_diff
  FROM (SELECT count(*) AS n, sum(id) AS s FROM par WHERE v LIKE 'b%') ss
  RIGHT JOIN (VALUES (1), (2)) v(x) ON true;
RESET enable_material;
ROLLBACK;
EXECUTE q \gset q_
SELECT :q_n = :n0 AS same_count, :q_s = :s0 AS same_sum;

-- ---- force_parallel_mode: the whole plan in a worker ---------------------
SET force_parallel_mode = on;
SELECT count(*) = :n0 AS same_count, sum(id) = :s0 AS same_sum FROM par WHERE v LIKE 'b%';
SELECT * FROM par WHERE id = 7;                   -- a lookup in a worker
SELECT count(*), count(DISTINCT id) FROM par;
-- a worker given a plain kvs scan cannot see the leader's writes: refused
PREPARE q2 AS SELECT * FROM par WHERE id = 7;
EXPLAIN (COSTS OFF) EXECUTE q2;
EXECUTE q2;
BEGIN;
INSERT INTO par VALUES (20002, 'x');
EXECUTE q2;
ROLLBACK;
BEGIN;
INSERT INTO par VALUES (20002, 'x');
-- planned now: kept in the leader, and sees the write
EXPLAIN (COSTS OFF) SELECT * FROM par WHERE id = 20002;
SELECT * FROM par WHERE id = 20002;
ROLLBACK;
RESET force_parallel_mode;
RESET plan_cache_mode;
DEALLOCATE q;
DEALLOCATE q2;
-- the setting that tells workers is the extension's own
SET kvs_fdw.parallel_leader_writes = on;
DROP FUNCTION workers_launched(text);
DROP FOREIGN TABLE par;
