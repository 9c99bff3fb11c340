-- 02_dml: INSERT, COPY, UPDATE (also of the key), DELETE, TRUNCATE, RETURNING,
-- ON CONFLICT DO NOTHING, NULLs, large values, and the key's errors.
CREATE FOREIGN TABLE t (id int, v text, n numeric, flag boolean) SERVER kvs;

-- single and multi-row INSERT, RETURNING
INSERT INTO t VALUES (1, 'one', 1.5, true) RETURNING *;
INSERT INTO t VALUES (2, 'two', NULL, NULL), (3, NULL, 3, false), (4, '', 0, true)
  RETURNING id, v IS NULL AS v_null, n;
SELECT * FROM t ORDER BY id;

-- INSERT ... SELECT (batched) and from the same table: each row read once
INSERT INTO t SELECT g, 'g' || g, g / 10.0, g % 2 = 0 FROM generate_series(10, 209) g;
SELECT count(*), sum(id) FROM t;
INSERT INTO t SELECT id + 1000, v, n, flag FROM t;
SELECT count(*), sum(id) FROM t;
DELETE FROM t WHERE id >= 1000;

-- the key: NULL (23502), duplicate (23505, like a unique index), ON CONFLICT
INSERT INTO t VALUES (NULL, 'x');
INSERT INTO t VALUES (1, 'again');
INSERT INTO t VALUES (500, 'a'), (500, 'b');
SELECT count(*) FROM t WHERE id = 500;
INSERT INTO t VALUES (1, 'again'), (600, 'new') ON CONFLICT DO NOTHING RETURNING id, v;
INSERT INTO t VALUES (1, 'again') ON CONFLICT DO NOTHING;
SELECT * FROM t WHERE id IN (1, 600) ORDER BY id;
INSERT INTO t VALUES (1, 'x') ON CONFLICT (id) DO NOTHING;
INSERT INTO t VALUES (1, 'x') ON CONFLICT DO UPDATE SET v = 'y';

-- UPDATE of values, RETURNING
UPDATE t SET v = 'ONE', n = n * 2 WHERE id = 1 RETURNING *;
UPDATE t SET flag = NULL WHERE id BETWEEN 10 AND 19;
SELECT count(*) FROM t WHERE flag IS NULL;
UPDATE t SET v = 'none' WHERE id = 99999 RETURNING *;

-- UPDATE of the key: delete old + insert new
UPDATE t SET id = 700 WHERE id = 600 RETURNING *;
SELECT * FROM t WHERE id IN (600, 700);
UPDATE t SET id = 1 WHERE id = 2;         -- collides with a row that stays
SELECT id, v FROM t WHERE id IN (1, 2) ORDER BY id;
UPDATE t SET id = NULL WHERE id = 2;
-- swapping two keys works: the key is checked at the end of the statement
UPDATE t SET id = CASE id WHEN 3 THEN 4 ELSE 3 END WHERE id IN (3, 4) RETURNING id, v, n;
SELECT id, v, n FROM t WHERE id IN (3, 4) ORDER BY id;

-- the whole table: every row moves exactly once
SELECT count(*), sum(id), min(id), max(id) FROM t;
UPDATE t SET id = id + 1;
SELECT count(*), sum(id), min(id), max(id) FROM t;
UPDATE t SET id = id * 2;
SELECT count(*), sum(id), min(id), max(id) FROM t;
UPDATE t SET id = id / 2 - 1;
SELECT count(*), sum(id), min(id), max(id) FROM t;
UPDATE t SET id = 5;                      -- many rows to one key
SELECT count(*), sum(id) FROM t;

-- DELETE by key, by any WHERE, RETURNING
DELETE FROM t WHERE id = 1 RETURNING *;
DELETE FROM t WHERE id = 1;
WITH d AS (DELETE FROM t WHERE v LIKE 'g10%' RETURNING id, v) SELECT * FROM d ORDER BY id;
SELECT count(*) FROM t;
WITH d AS (DELETE FROM t WHERE n > 15 RETURNING id) SELECT count(*) FROM d;
SELECT count(*) FROM t;

-- COPY FROM, COPY TO via a query
CREATE FOREIGN TABLE c (id bigint, s text, b bytea) SERVER kvs;
COPY c FROM STDIN;
1	one	\\x00ff
2	two	\N
3	\N	\\x
\.
SELECT * FROM c ORDER BY id;
COPY c FROM STDIN;
4	four	\N
1	duplicate	\N
\.
SELECT id FROM c ORDER BY id;
COPY (SELECT * FROM c ORDER BY id) TO STDOUT;
COPY c TO STDOUT;

-- TRUNCATE
TRUNCATE c;
SELECT count(*) FROM c;
INSERT INTO c VALUES (1, 'after truncate', NULL);
SELECT * FROM c;
TRUNCATE c, t;
SELECT (SELECT count(*) FROM c) AS c, (SELECT count(*) FROM t) AS t;

-- large values: 1 MB and more round-trip; NULLs beside them
CREATE FOREIGN TABLE big (id int, a text, b bytea, c text) SERVER kvs;
INSERT INTO big VALUES (1, repeat('x', 1024 * 1024), NULL, 'small'),
                       (2, NULL, decode(repeat('00ff', 1500000), 'hex'), NULL),
                       (3, repeat(md5('k'), 100000), NULL, repeat('y', 5000000));
SELECT id, length(a) AS a, length(b) AS b, length(c) AS c, md5(a) = md5(repeat('x', 1024 * 1024)) AS a_ok
  FROM big ORDER BY id;
SELECT id, md5(b) = md5(decode(repeat('00ff', 1500000), 'hex')) AS b_ok FROM big WHERE id = 2;
UPDATE big SET a = a || 'z' WHERE id = 1;
SELECT length(a) FROM big WHERE id = 1;
UPDATE big SET id = 10 WHERE id = 3;
SELECT id, length(a), length(c) FROM big WHERE id = 10;
DELETE FROM big WHERE id = 2 RETURNING id, length(b);
SELECT id FROM big ORDER BY id;

-- key length: 1024 bytes at most (54000)
CREATE FOREIGN TABLE longkey (k text, v int) SERVER kvs;
INSERT INTO longkey VALUES (repeat('k', 1024), 1);
INSERT INTO longkey VALUES (repeat('k', 1025), 2);
SELECT length(k), v FROM longkey;
SELECT v FROM longkey WHERE k = repeat('k', 1025);   -- no such key: no rows, no error

-- a table with only a key column, and empty keys/values
CREATE FOREIGN TABLE keyonly (k text) SERVER kvs;
INSERT INTO keyonly VALUES (''), ('a');
SELECT k, length(k) FROM keyonly ORDER BY k;
SELECT count(*) FROM keyonly WHERE k = '';
UPDATE keyonly SET k = 'b' WHERE k = '' RETURNING *;
SELECT k FROM keyonly ORDER BY k;

-- ROLLBACK undoes the transaction's writes
BEGIN;
INSERT INTO keyonly VALUES ('in rolled back transaction');
ROLLBACK;
SELECT k FROM keyonly ORDER BY k;

-- triggers on a foreign table see the rows
CREATE FUNCTION keyonly_trig() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE '% % %', TG_OP, TG_WHEN, COALESCE(NEW.k, OLD.k); RETURN COALESCE(NEW, OLD); END $$;
CREATE TRIGGER keyonly_trig BEFORE INSERT OR UPDATE OR DELETE ON keyonly
  FOR EACH ROW EXECUTE FUNCTION keyonly_trig();
INSERT INTO keyonly VALUES ('t');
UPDATE keyonly SET k = 'u' WHERE k = 't';
DELETE FROM keyonly WHERE k = 'u';
COPY keyonly FROM STDIN;
copied 1
copied 2
\.
SELECT k FROM keyonly WHERE k LIKE 'copied%' ORDER BY k;
DELETE FROM keyonly WHERE k = 'copied 1';
DELETE FROM keyonly WHERE k = 'copied 2';
DROP TRIGGER keyonly_trig ON keyonly;
SELECT k FROM keyonly ORDER BY k;

-- errors caught inside a statement (a subtransaction per row) leave the
-- statement's own bookkeeping intact: every row still changes exactly once
CREATE FOREIGN TABLE sx (id int, n int) SERVER kvs;
INSERT INTO sx SELECT g, 0 FROM generate_series(1, 2000) g;
CREATE FUNCTION bump(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO sx VALUES (1, 0);   -- a duplicate, caught below
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    RETURN x + 1;
END $$;
UPDATE sx SET n = bump(n);
SELECT count(*), sum(n), min(n), max(n) FROM sx;
UPDATE sx SET id = id + 5000, n = bump(n);
SELECT count(*), sum(n), min(id), max(id) FROM sx;
INSERT INTO sx SELECT id + 10000, bump(n) FROM sx;
SELECT count(*), sum(n) FROM sx;

-- partitions: kvs tables with different keys under one partitioned table
CREATE TABLE pm (a int, b text, c bigint) PARTITION BY LIST (b);
CREATE FOREIGN TABLE pm1 PARTITION OF pm FOR VALUES IN ('x') SERVER kvs;
CREATE FOREIGN TABLE pm2 (a int, b text, c bigint OPTIONS (key 'true')) SERVER kvs;
ALTER TABLE pm ATTACH PARTITION pm2 FOR VALUES IN ('y');
CREATE TABLE pm3 PARTITION OF pm FOR VALUES IN ('z');
INSERT INTO pm VALUES (1, 'x', 10), (2, 'x', 20), (1, 'y', 10), (2, 'y', 20), (1, 'z', 1);
COPY pm FROM STDIN;
3	x	30
3	y	30
\.
WITH u AS (UPDATE pm SET a = a + 100 RETURNING *) SELECT * FROM u ORDER BY b, a;
WITH u AS (UPDATE pm SET c = c + 1 WHERE b = 'y' RETURNING *) SELECT * FROM u ORDER BY b, a;
WITH d AS (DELETE FROM pm WHERE a = 101 RETURNING *) SELECT * FROM d ORDER BY b, a;
SELECT tableoid::regclass, * FROM pm ORDER BY b, a;
EXPLAIN (COSTS OFF) SELECT * FROM pm WHERE a = 102;
DROP TABLE pm;
