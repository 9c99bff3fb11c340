-- 03_pushdown: which quals become key lookups (EXPLAIN shows "Kvs Lookup:")
-- and which are checked locally ("Kvs Scan:" plus a Filter), for every key
-- type; the answers are the same either way.
CREATE FUNCTION explain_filtered(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q
    LOOP
        RETURN NEXT regexp_replace(line, '=\d+', '=N', 'g');
    END LOOP;
END $$;

CREATE FUNCTION explain_rows(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q
    LOOP
        RETURN NEXT regexp_replace(line, 'cost=[0-9.]+\.\.[0-9.]+ ', '', 'g');
    END LOOP;
END $$;

CREATE FUNCTION explain_verbose(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q
    LOOP
        RETURN NEXT regexp_replace(replace(line, current_setting('data_directory'), '$PGDATA'),
                                   '\d+_\d+\.kvs', 'DBOID_RELOID.kvs');
    END LOOP;
END $$;

-- integers
CREATE FOREIGN TABLE i8 (id bigint, v text) SERVER kvs;
INSERT INTO i8 SELECT g, 'v' || g FROM generate_series(-50, 50) g;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id = 7;
SELECT * FROM i8 WHERE id = 7;
SELECT * FROM i8 WHERE 7 = id;
SELECT * FROM i8 WHERE id = 7::smallint;
SELECT * FROM i8 WHERE id = -50::bigint;
SELECT * FROM i8 WHERE id = 1000;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id IN (1, 2, 2, 3, 1000, NULL);
SELECT * FROM i8 WHERE id IN (1, 2, 2, 3, 1000, NULL) ORDER BY id;
SELECT * FROM i8 WHERE id = ANY ('{4,4,5}'::int[]) ORDER BY id;
SELECT * FROM i8 WHERE id = ANY ('{}'::bigint[]);
SELECT * FROM i8 WHERE id = NULL;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id = 7 AND v LIKE 'v%';
SELECT * FROM i8 WHERE id = 7 AND v = 'nope';
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id = 7 OR id = 8;
SELECT * FROM i8 WHERE id = 7 OR id = 8 ORDER BY id;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id < 3 AND id > 0;
SELECT * FROM i8 WHERE id < 3 AND id > 0 ORDER BY id;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id + 0 = 7;
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE v = 'v7';
SELECT * FROM i8 WHERE v = 'v7';
-- a volatile expression is evaluated per row, never pushed
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id = (random() * 0)::int;
-- stable expressions and sub-selects are evaluated once, then looked up
EXPLAIN (COSTS OFF) SELECT * FROM i8 WHERE id = length(current_user) - length(current_user) + 9;
SELECT * FROM i8 WHERE id = (SELECT 10);
-- int4 key, int8 constants out of its range
CREATE FOREIGN TABLE i4 (id int, v text) SERVER kvs;
INSERT INTO i4 VALUES (2147483647, 'max'), (-2147483648, 'min'), (0, 'zero');
SELECT * FROM i4 WHERE id = 2147483647;
SELECT * FROM i4 WHERE id = 2147483648;
SELECT * FROM i4 WHERE id = -2147483648::bigint;
SELECT * FROM i4 WHERE id IN (0::bigint, 9999999999) ORDER BY id;
CREATE FOREIGN TABLE i2 (id smallint, v text) SERVER kvs;
INSERT INTO i2 VALUES (1, 'one'), (-32768, 'min');
SELECT * FROM i2 WHERE id = 1;
SELECT * FROM i2 WHERE id = 100000;
SELECT * FROM i2 WHERE id = -32768;

-- parameters: PREPARE and plpgsql
PREPARE q(bigint) AS SELECT v FROM i8 WHERE id = $1;
EXPLAIN (COSTS OFF) EXECUTE q(3);
EXECUTE q(3); EXECUTE q(4); EXECUTE q(5); EXECUTE q(6); EXECUTE q(7); EXECUTE q(8);
EXECUTE q(NULL);
SET plan_cache_mode = force_generic_plan;
PREPARE q2(bigint) AS SELECT v FROM i8 WHERE id = $1;
EXPLAIN (COSTS OFF) EXECUTE q2(3);
EXECUTE q2(9);
PREPARE q3(int[]) AS SELECT v FROM i8 WHERE id = ANY($1) ORDER BY v;
EXPLAIN (COSTS OFF) EXECUTE q3('{1,2}');
EXECUTE q3('{1,2,2,-1}');
RESET plan_cache_mode;
DO $$ DECLARE r text; BEGIN
  FOR i IN 1..3 LOOP SELECT v INTO r FROM i8 WHERE id = i; RAISE NOTICE '%', r; END LOOP;
END $$;

-- joins on the key: one lookup per outer row (parameterized path)
CREATE TABLE outer_rows (x int, y bigint);
INSERT INTO outer_rows VALUES (1, 10), (2, 20), (3, 999), (NULL, NULL);
ANALYZE outer_rows;
EXPLAIN (COSTS OFF) SELECT o.x, i8.v FROM outer_rows o JOIN i8 ON i8.id = o.x;
SELECT o.x, i8.v FROM outer_rows o JOIN i8 ON i8.id = o.x ORDER BY o.x;
EXPLAIN (COSTS OFF) SELECT o.y, i8.v FROM outer_rows o JOIN i8 ON o.y = i8.id;
SELECT o.y, i8.v FROM outer_rows o JOIN i8 ON o.y = i8.id ORDER BY o.y;
SELECT o.x, i8.v FROM outer_rows o LEFT JOIN i8 ON i8.id = o.x ORDER BY o.x;
SELECT o.x, l.v FROM outer_rows o, LATERAL (SELECT v FROM i8 WHERE id = o.x + 1) l ORDER BY o.x;
SET enable_memoize = off;
SELECT * FROM explain_filtered('SELECT o.x, i8.v FROM outer_rows o JOIN i8 ON i8.id = o.x');
RESET enable_memoize;
-- a kvs table joined with itself
SELECT a.id, b.v FROM i8 a JOIN i8 b ON b.id = a.id + 1 WHERE a.id IN (1, 50) ORDER BY a.id;

-- text and varchar keys (deterministic collations), bytea, uuid, bool,
-- date, timestamp, timestamptz, time, oid, "char": all pushed down
CREATE FOREIGN TABLE kt (k text, v int) SERVER kvs;
INSERT INTO kt VALUES ('apple', 1), ('Apple', 2), ('', 3), ('ünï', 4);
EXPLAIN (COSTS OFF) SELECT v FROM kt WHERE k = 'apple';
SELECT v FROM kt WHERE k = 'apple';
SELECT v FROM kt WHERE k = 'ünï';
SELECT v FROM kt WHERE k = 'apple' COLLATE "C";
SELECT v FROM kt WHERE k IN ('apple', 'APPLE', '') ORDER BY v;
CREATE FOREIGN TABLE kvc (k varchar(10), v int) SERVER kvs;
INSERT INTO kvc VALUES ('abc', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kvc WHERE k = 'abc';
SELECT v FROM kvc WHERE k = 'abc';
SELECT v FROM kvc WHERE k = 'abc'::text;
CREATE FOREIGN TABLE kb (k bytea, v int) SERVER kvs;
INSERT INTO kb VALUES ('\x00', 1), ('\x0000', 2), ('\x', 3);
EXPLAIN (COSTS OFF) SELECT v FROM kb WHERE k = '\x00';
SELECT v FROM kb WHERE k = '\x00';
SELECT v FROM kb WHERE k = '\x';
CREATE FOREIGN TABLE ku (k uuid, v int) SERVER kvs;
INSERT INTO ku VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1);
EXPLAIN (COSTS OFF) SELECT v FROM ku WHERE k = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11';
SELECT v FROM ku WHERE k = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11';
CREATE FOREIGN TABLE kbool (k boolean, v int) SERVER kvs;
INSERT INTO kbool VALUES (true, 1), (false, 0);
EXPLAIN (COSTS OFF) SELECT v FROM kbool WHERE k = false;
SELECT v FROM kbool WHERE k = false;
EXPLAIN (COSTS OFF) SELECT v FROM kbool WHERE k;
SELECT v FROM kbool WHERE k;
SELECT v FROM kbool WHERE k IS TRUE;
CREATE FOREIGN TABLE kd (k date, v int) SERVER kvs;
INSERT INTO kd VALUES ('2024-02-29', 1), ('infinity', 2);
EXPLAIN (COSTS OFF) SELECT v FROM kd WHERE k = '2024-02-29';
SELECT v FROM kd WHERE k = '2024-02-29';
SELECT v FROM kd WHERE k = 'infinity';
CREATE FOREIGN TABLE kts (k timestamp, v int) SERVER kvs;
INSERT INTO kts VALUES ('2024-01-01 12:00:00.5', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kts WHERE k = '2024-01-01 12:00:00.5';
SELECT v FROM kts WHERE k = '2024-01-01 12:00:00.5';
CREATE FOREIGN TABLE ktz (k timestamptz, v int) SERVER kvs;
SET timezone = 'UTC';
INSERT INTO ktz VALUES ('2024-01-01 12:00:00+00', 1);
EXPLAIN (COSTS OFF) SELECT v FROM ktz WHERE k = '2024-01-01 14:00:00+02';
SELECT v FROM ktz WHERE k = '2024-01-01 14:00:00+02';
RESET timezone;
CREATE FOREIGN TABLE ktime (k time, v int) SERVER kvs;
INSERT INTO ktime VALUES ('12:34:56', 1);
SELECT v FROM ktime WHERE k = '12:34:56';
CREATE FOREIGN TABLE koid (k oid, v int) SERVER kvs;
INSERT INTO koid VALUES (4294967295, 1), (0, 2);
EXPLAIN (COSTS OFF) SELECT v FROM koid WHERE k = 4294967295;
SELECT v FROM koid WHERE k = 4294967295;
CREATE FOREIGN TABLE kch (k "char", v int) SERVER kvs;
INSERT INTO kch VALUES ('a', 1), ('b', 2);
SELECT v FROM kch WHERE k = 'b';
-- a domain over a pushable type
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE FOREIGN TABLE kdom (k posint, v text) SERVER kvs;
INSERT INTO kdom VALUES (5, 'five');
INSERT INTO kdom VALUES (-5, 'minus five');
EXPLAIN (COSTS OFF) SELECT v FROM kdom WHERE k = 5;
SELECT v FROM kdom WHERE k = 5;

-- refused: the binary image does not decide equality; scanned and filtered
CREATE FOREIGN TABLE knum (k numeric, v int) SERVER kvs;
INSERT INTO knum VALUES (1.0, 1), (2.50, 2);
EXPLAIN (COSTS OFF) SELECT v FROM knum WHERE k = 1;
SELECT v FROM knum WHERE k = 1;
SELECT v FROM knum WHERE k = 1.00;
SELECT v FROM knum WHERE k = 2.5;
INSERT INTO knum VALUES (1.00, 3);   -- a different image: another key
SELECT k, v FROM knum WHERE k = 1 ORDER BY v;
CREATE FOREIGN TABLE kf8 (k float8, v int) SERVER kvs;
INSERT INTO kf8 VALUES ('-0', 1), ('NaN', 2), (1.5, 3);
EXPLAIN (COSTS OFF) SELECT v FROM kf8 WHERE k = 0;
SELECT v FROM kf8 WHERE k = 0;
SELECT v FROM kf8 WHERE k = 'NaN';
CREATE FOREIGN TABLE kf4 (k real, v int) SERVER kvs;
INSERT INTO kf4 VALUES (1.5, 1);
EXPLAIN (COSTS OFF) SELECT v FROM kf4 WHERE k = 1.5;
SELECT v FROM kf4 WHERE k = 1.5;
CREATE FOREIGN TABLE kbp (k char(5), v int) SERVER kvs;
INSERT INTO kbp VALUES ('ab', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kbp WHERE k = 'ab   ';
SELECT v FROM kbp WHERE k = 'ab   ';
SELECT v FROM kbp WHERE k = 'ab';
CREATE FOREIGN TABLE kjs (k jsonb, v int) SERVER kvs;
INSERT INTO kjs VALUES ('{"a": 1, "b": 2}', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kjs WHERE k = '{"b": 2, "a": 1}';
SELECT v FROM kjs WHERE k = '{"b": 2, "a": 1}';
CREATE FOREIGN TABLE kint (k interval, v int) SERVER kvs;
INSERT INTO kint VALUES ('1 day', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kint WHERE k = '24 hours';
SELECT v FROM kint WHERE k = '24 hours';
CREATE FOREIGN TABLE karr (k int[], v int) SERVER kvs;
INSERT INTO karr VALUES ('{1,2}', 1);
EXPLAIN (COSTS OFF) SELECT v FROM karr WHERE k = '{1,2}';
SELECT v FROM karr WHERE k = '{1,2}';
-- a nondeterministic collation: text equality is not byte equality
CREATE COLLATION kvs_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE FOREIGN TABLE kci (k text COLLATE kvs_ci, v int) SERVER kvs;
INSERT INTO kci VALUES ('Apple', 1);
EXPLAIN (COSTS OFF) SELECT v FROM kci WHERE k = 'apple';
SELECT v FROM kci WHERE k = 'apple';
EXPLAIN (COSTS OFF) SELECT v FROM kt WHERE k = 'apple' COLLATE kvs_ci;
SELECT v FROM kt WHERE k = 'apple' COLLATE kvs_ci ORDER BY v;

-- EXPLAIN ANALYZE: the node's own cache counters
SELECT * FROM explain_filtered('SELECT * FROM i8 WHERE id = 7');
SELECT * FROM explain_filtered('SELECT count(*) FROM i8');
SELECT * FROM explain_verbose('SELECT v FROM i8 WHERE id = 7');
-- UPDATE and DELETE plans use the same lookups
EXPLAIN (COSTS OFF) UPDATE i8 SET v = 'x' WHERE id = 7;
EXPLAIN (COSTS OFF) DELETE FROM i8 WHERE id IN (7, 8);
SELECT * FROM explain_filtered('UPDATE i8 SET v = ''seven'' WHERE id = 7');
SELECT v FROM i8 WHERE id = 7;

-- row estimates follow the file's record count
SELECT * FROM explain_rows('SELECT * FROM i8');
SELECT * FROM explain_rows('SELECT * FROM i8 WHERE id = 1');
SELECT * FROM explain_rows('SELECT * FROM i8 WHERE id IN (1, 2, 3)');
ANALYZE i8;
SELECT reltuples FROM pg_class WHERE relname = 'i8';
SELECT attname, n_distinct FROM pg_stats WHERE tablename = 'i8' ORDER BY attname;
