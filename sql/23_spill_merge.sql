-- 23_spill_merge: a write set spilled many times.  With the smallest
-- kvs_fdw.pending_memory the transaction below spills about 700 runs; the
-- runs are merged as they come (four of one level make one of the next), so
-- a dozen at most are left, and every rule of the write set holds across the
-- merges: savepoints between spills, ROLLBACK TO a savepoint set runs and
-- merges ago, duplicates (23505) found in merged runs, UPDATEs of values and
-- of keys, DELETEs, the scan returning the transaction's new keys, then the
-- commit.  Each step is compared with the same statements on a heap table.
SET kvs_fdw.pending_memory = '64kB';
CREATE FOREIGN TABLE sm (id int, v text) SERVER kvs;
CREATE TABLE sm_heap (id int PRIMARY KEY, v text);
INSERT INTO sm SELECT g, 'committed' FROM generate_series(1, 1000) g;
INSERT INTO sm_heap SELECT g, 'committed' FROM generate_series(1, 1000) g;
CREATE FUNCTION sm_differs() RETURNS TABLE (only_kvs bigint, only_heap bigint) LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM (SELECT * FROM sm EXCEPT SELECT * FROM sm_heap) d),
         (SELECT count(*) FROM (SELECT * FROM sm_heap EXCEPT SELECT * FROM sm) d)
$$;

BEGIN;
INSERT INTO sm SELECT g, repeat('x', 100) || g FROM generate_series(1001, 30000) g;
INSERT INTO sm_heap SELECT g, repeat('x', 100) || g FROM generate_series(1001, 30000) g;
-- 29,000 keys of about 130 bytes in 64kB: about 290 spills
SELECT keys >= 29000 AS all_keys, spilled_runs BETWEEN 2 AND 12 AS few_runs FROM kvs_fdw_pending('sm');
SAVEPOINT a;
UPDATE sm SET v = 'a' || id WHERE id % 2 = 0;
INSERT INTO sm SELECT g, 'in a' FROM generate_series(30001, 45000) g;
SAVEPOINT b;
DELETE FROM sm WHERE id % 3 = 0;
INSERT INTO sm SELECT g, 'in b' FROM generate_series(45001, 60000) g;
SELECT count(*), count(*) FILTER (WHERE v LIKE 'a%') AS a, count(*) FILTER (WHERE v = 'in b') AS b FROM sm;
ROLLBACK TO SAVEPOINT b;                        -- b's versions, spilled and merged
SELECT count(*), count(*) FILTER (WHERE v LIKE 'a%') AS a, count(*) FILTER (WHERE v = 'in b') AS b FROM sm;
SELECT spilled_runs BETWEEN 2 AND 12 AS few_runs FROM kvs_fdw_pending('sm');
ROLLBACK TO SAVEPOINT a;                        -- a's too: back to the first INSERT
SELECT count(*), count(*) FILTER (WHERE v LIKE 'a%') AS a, max(id) FROM sm;
SELECT * FROM sm_differs();
-- more spills and merges after the rollbacks, the dead versions among them
UPDATE sm SET v = 'u' || id WHERE id % 7 = 0;
UPDATE sm_heap SET v = 'u' || id WHERE id % 7 = 0;
INSERT INTO sm SELECT g, 'late' || g FROM generate_series(30001, 40000) g;
INSERT INTO sm_heap SELECT g, 'late' || g FROM generate_series(30001, 40000) g;
DELETE FROM sm WHERE id % 11 = 0;
DELETE FROM sm_heap WHERE id % 11 = 0;
UPDATE sm SET id = id + 100000 WHERE id > 39990;
UPDATE sm_heap SET id = id + 100000 WHERE id > 39990;
-- duplicates: a committed key, keys first written many runs ago, a moved key
SAVEPOINT d;
INSERT INTO sm VALUES (5, 'dup');               -- committed, rewritten: 23505
ROLLBACK TO SAVEPOINT d;
INSERT INTO sm VALUES (2000, 'dup');            -- from the first INSERT: 23505
ROLLBACK TO SAVEPOINT d;
INSERT INTO sm VALUES (100000 + 39995, 'dup');  -- moved here by the UPDATE: 23505
ROLLBACK TO SAVEPOINT d;
INSERT INTO sm VALUES (39995, 'moved away, free again');
INSERT INTO sm_heap VALUES (39995, 'moved away, free again');
INSERT INTO sm VALUES (22, 'deleted, then again');
INSERT INTO sm_heap VALUES (22, 'deleted, then again');
INSERT INTO sm VALUES (44, 'deleted, then again') ON CONFLICT DO NOTHING;
INSERT INTO sm_heap VALUES (44, 'deleted, then again') ON CONFLICT DO NOTHING;
INSERT INTO sm VALUES (45, 'there') ON CONFLICT DO NOTHING;    -- skipped
SELECT * FROM sm WHERE id IN (5, 7, 22, 44, 45, 2000, 39995, 139995, 35000) ORDER BY id;
SELECT count(*), sum(id) FROM sm;
SELECT count(*), sum(id) FROM sm_heap;
SELECT * FROM sm_differs();
SELECT spilled_runs BETWEEN 2 AND 12 AS few_runs FROM kvs_fdw_pending('sm');
COMMIT;
RESET kvs_fdw.pending_memory;
SELECT count(*), sum(id) FROM sm;
SELECT * FROM sm_differs();
SELECT * FROM kvs_fdw_check('sm');

-- a transaction rolled back whole after many merges leaves the file as it was
SET kvs_fdw.pending_memory = '64kB';
BEGIN;
DELETE FROM sm;
INSERT INTO sm SELECT g, 'gone' FROM generate_series(1, 30000) g;
SELECT count(*) FROM sm WHERE v = 'gone';
ROLLBACK;
RESET kvs_fdw.pending_memory;
SELECT * FROM sm_differs();

-- TRUNCATE between spills: the runs before it are hidden, merged or not;
-- one rolled back to a savepoint hides nothing
SET kvs_fdw.pending_memory = '64kB';
BEGIN;
INSERT INTO sm SELECT g, 'before' FROM generate_series(100001, 120000) g;
TRUNCATE sm;
INSERT INTO sm SELECT g, 'after' FROM generate_series(1, 20000) g;
SAVEPOINT t;
TRUNCATE sm;
INSERT INTO sm SELECT g, 'rolled back' FROM generate_series(1, 5000) g;
ROLLBACK TO SAVEPOINT t;
UPDATE sm SET v = 'after, changed' WHERE id % 10 = 0;
SELECT v, count(*), min(id), max(id) FROM sm GROUP BY v ORDER BY v;
SELECT spilled_runs BETWEEN 2 AND 12 AS few_runs, truncated FROM kvs_fdw_pending('sm');
COMMIT;
RESET kvs_fdw.pending_memory;
SELECT v, count(*), min(id), max(id) FROM sm GROUP BY v ORDER BY v;
SELECT * FROM kvs_fdw_check('sm');
DROP FOREIGN TABLE sm;
DROP TABLE sm_heap;
DROP FUNCTION sm_differs();
