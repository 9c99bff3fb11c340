-- 08_direct: UPDATE and DELETE by key done as one read-modify-write per key
-- ("Foreign Update"/"Foreign Delete"), when everything they evaluate is safe
-- to run under the file lock; otherwise the ordinary path, which refuses to
-- overwrite a row changed since the statement read it (40001).
CREATE FOREIGN TABLE dm (id int, v text, n int) SERVER kvs;
INSERT INTO dm SELECT g, 'v' || g, g FROM generate_series(1, 20) g;

-- direct: by key, by key list, with extra conditions checked on the row
EXPLAIN (COSTS OFF) UPDATE dm SET n = n + 1 WHERE id = 1;
UPDATE dm SET n = n + 1 WHERE id = 1;
UPDATE dm SET n = n + 1 WHERE id = 1000;
EXPLAIN (COSTS OFF) UPDATE dm SET v = upper(v), n = n * 10 WHERE id IN (2, 3, 3, 999);
UPDATE dm SET v = upper(v), n = n * 10 WHERE id IN (2, 3, 3, 999);
EXPLAIN (COSTS OFF) UPDATE dm SET n = 0 WHERE id = 4 AND v = 'nope';
UPDATE dm SET n = 0 WHERE id = 4 AND v = 'nope';
UPDATE dm SET n = 0 WHERE id = 4 AND v = 'v4';
UPDATE dm SET v = NULL WHERE id = 5;
UPDATE dm SET v = 'back', n = NULL WHERE id = 5;
PREPARE up(int, int) AS UPDATE dm SET n = n + $2 WHERE id = $1;
EXECUTE up(6, 100); EXECUTE up(6, 100); EXECUTE up(6, 100); EXECUTE up(6, 100);
EXECUTE up(6, 100); EXECUTE up(6, 100); EXECUTE up(6, 100);
EXPLAIN (COSTS OFF) EXECUTE up(6, 1);
SELECT * FROM dm WHERE id BETWEEN 1 AND 6 ORDER BY id;
EXPLAIN (COSTS OFF) DELETE FROM dm WHERE id = 7;
DELETE FROM dm WHERE id = 7;
DELETE FROM dm WHERE id = 7;
EXPLAIN (COSTS OFF) DELETE FROM dm WHERE id IN (8, 9) AND n > 8;
DELETE FROM dm WHERE id IN (8, 9) AND n > 8;
SELECT id FROM dm WHERE id BETWEEN 7 AND 9 ORDER BY id;
-- errors while computing the new row leave the table usable
UPDATE dm SET n = n / 0 WHERE id = 10;
CREATE DOMAIN small_int AS int CHECK (VALUE < 100);
UPDATE dm SET n = (n * 1000)::small_int WHERE id = 10;
EXPLAIN (COSTS OFF) UPDATE dm SET n = (n * 1000)::small_int WHERE id = 10;  -- domain checks: not direct
UPDATE dm SET n = -1 WHERE id = 10;
SELECT * FROM dm WHERE id = 10;

-- not direct: RETURNING, key changes, volatile or user-defined stable
-- functions, sub-selects, no key condition
EXPLAIN (COSTS OFF) UPDATE dm SET n = n + 1 WHERE id = 11 RETURNING n;
UPDATE dm SET n = n + 1 WHERE id = 11 RETURNING n;
EXPLAIN (COSTS OFF) UPDATE dm SET id = 111 WHERE id = 11;
EXPLAIN (COSTS OFF) UPDATE dm SET n = (random() * 0)::int WHERE id = 11;
CREATE FUNCTION dm_stable(int) RETURNS int STABLE LANGUAGE plpgsql AS $$ BEGIN RETURN $1 + 1; END $$;
CREATE FUNCTION dm_inlined(int) RETURNS int STABLE LANGUAGE sql AS $$ SELECT $1 + 1 $$;
CREATE FUNCTION dm_immutable(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN $1 + 1; END $$;
EXPLAIN (COSTS OFF) UPDATE dm SET n = dm_stable(n) WHERE id = 11;
EXPLAIN (COSTS OFF) UPDATE dm SET n = dm_inlined(n) WHERE id = 11;   -- inlined: n + 1
EXPLAIN (COSTS OFF) UPDATE dm SET n = dm_immutable(n) WHERE id = 11;
UPDATE dm SET n = dm_immutable(n) WHERE id = 11;
EXPLAIN (COSTS OFF) UPDATE dm SET n = (SELECT max(n) FROM dm) WHERE id = 11;
EXPLAIN (COSTS OFF) UPDATE dm SET n = n + 1 WHERE n = 12;
SELECT * FROM dm WHERE id = 11;

-- the ordinary path does not overwrite a row changed after it was read:
-- here a function called while computing the new row changes that row (a
-- command nested in the statement: 27000, as heap; see 09_statements)
CREATE FUNCTION dm_meddle(int) RETURNS int VOLATILE LANGUAGE plpgsql AS
$$ BEGIN UPDATE dm SET v = v || '!' WHERE id = $1; RETURN 0; END $$;
\set VERBOSITY default
UPDATE dm SET n = dm_meddle(id) WHERE id = 12;
UPDATE dm SET id = 112 + dm_meddle(id) WHERE id = 12;
\set VERBOSITY terse
SELECT * FROM dm WHERE id IN (12, 112);
SELECT count(*), sum(n) FROM dm;
SELECT * FROM kvs_fdw_check('dm');
