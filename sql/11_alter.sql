-- 11_alter: ALTER FOREIGN TABLE on kvs tables that hold rows, next to heap
-- tables given the same changes: ADD COLUMN (stored rows read NULL or the
-- default, as heap's fast default), DROP COLUMN (stored rows skip it), type
-- changes that need no rewrite; changes the file cannot follow are refused at
-- ALTER time with a hint and the table keeps working; an ALTER rolled back;
-- the inspection functions and EXPLAIN on a table whose columns do not match
-- its file.  (Every file here starts with a fresh layout, as 0.1.0 wrote it.)

-- rows of a that are not in b, plus rows of b not in a: 0 when they agree
CREATE FUNCTION differences(a regclass, b regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT (SELECT count(*) FROM (TABLE %s EXCEPT ALL TABLE %s) x)'
                   ' + (SELECT count(*) FROM (TABLE %s EXCEPT ALL TABLE %s) y)',
                   a, b, b, a) INTO n;
    RETURN n;
END
$$;

CREATE FOREIGN TABLE ak (id int, v text) SERVER kvs;
CREATE TABLE ah (id int PRIMARY KEY, v text);
INSERT INTO ak VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
INSERT INTO ah SELECT * FROM ak;

-- ADD COLUMN without a default: stored rows read NULL
ALTER FOREIGN TABLE ak ADD COLUMN n int;
ALTER TABLE ah ADD COLUMN n int;
SELECT * FROM ak ORDER BY id;
INSERT INTO ak VALUES (5, 'five', 5);
INSERT INTO ah VALUES (5, 'five', 5);

-- ADD COLUMN with a constant default: stored rows read it (the option
-- "missing" records it), new rows get it or their own value
ALTER FOREIGN TABLE ak ADD COLUMN d text DEFAULT 'dflt';
ALTER TABLE ah ADD COLUMN d text DEFAULT 'dflt';
SELECT attname, attfdwoptions FROM pg_attribute
 WHERE attrelid = 'ak'::regclass AND attnum > 0 ORDER BY attnum;
INSERT INTO ak VALUES (6, 'six', 6);
INSERT INTO ah VALUES (6, 'six', 6);
INSERT INTO ak VALUES (7, 'seven', 7, 'own');
INSERT INTO ah VALUES (7, 'seven', 7, 'own');
SELECT * FROM ak ORDER BY id;
SELECT differences('ak', 'ah');
-- lookups by key, old and new rows; a filter on an added column
SELECT * FROM ak WHERE id = 1;
SELECT * FROM ak WHERE id IN (3, 5, 7) ORDER BY id;
SELECT id FROM ak WHERE d = 'dflt' ORDER BY id;
SELECT id FROM ak WHERE n IS NULL ORDER BY id;
SELECT count(*), count(n), count(d) FROM ak;
-- UPDATE of stored rows: by key, not by key, moving the key; then read back
UPDATE ak SET n = 10 WHERE id = 1;
UPDATE ah SET n = 10 WHERE id = 1;
UPDATE ak SET d = d || '!' WHERE v = 'two';
UPDATE ah SET d = d || '!' WHERE v = 'two';
UPDATE ak SET id = id + 100 WHERE v = 'three' RETURNING *;
UPDATE ah SET id = id + 100 WHERE v = 'three' RETURNING *;
DELETE FROM ak WHERE id = 4 RETURNING *;
DELETE FROM ah WHERE id = 4 RETURNING *;
SELECT * FROM ak WHERE id IN (1, 2, 103) ORDER BY id;
SELECT differences('ak', 'ah');

-- DROP COLUMN: stored rows skip it; then ADD another column
ALTER FOREIGN TABLE ak DROP COLUMN v;
ALTER TABLE ah DROP COLUMN v;
SELECT * FROM ak ORDER BY id;
SELECT * FROM ak WHERE id = 2;
ALTER FOREIGN TABLE ak ADD COLUMN w int DEFAULT 7;
ALTER TABLE ah ADD COLUMN w int DEFAULT 7;
INSERT INTO ak VALUES (8, 80, 'eight', 88);
INSERT INTO ah VALUES (8, 80, 'eight', 88);
UPDATE ak SET w = w + 1 WHERE id = 1;
UPDATE ah SET w = w + 1 WHERE id = 1;
UPDATE ak SET n = -1 WHERE w = 7;
UPDATE ah SET n = -1 WHERE w = 7;
SELECT * FROM ak ORDER BY id;
SELECT * FROM ak WHERE id = 5;
SELECT differences('ak', 'ah');
SELECT * FROM kvs_fdw_check('ak');

-- type changes that need no rewrite: varchar(10) -> varchar(20) -> text,
-- also of the key (lookups by key still find the stored rows)
CREATE FOREIGN TABLE tk (code varchar(5), s varchar(10)) SERVER kvs;
CREATE TABLE th (code varchar(5) PRIMARY KEY, s varchar(10));
INSERT INTO tk VALUES ('a', 'ten chars!'), ('bb', NULL), ('ccc', 'x');
INSERT INTO th SELECT * FROM tk;
ALTER FOREIGN TABLE tk ALTER COLUMN s TYPE varchar(20);
ALTER TABLE th ALTER COLUMN s TYPE varchar(20);
INSERT INTO tk VALUES ('dddd', 'twenty characters!!!');
INSERT INTO th VALUES ('dddd', 'twenty characters!!!');
ALTER FOREIGN TABLE tk ALTER COLUMN s TYPE text, ALTER COLUMN code TYPE varchar(10);
ALTER TABLE th ALTER COLUMN s TYPE text, ALTER COLUMN code TYPE varchar(10);
INSERT INTO tk VALUES ('eeeeeeeeee', repeat('long ', 10));
INSERT INTO th VALUES ('eeeeeeeeee', repeat('long ', 10));
ALTER FOREIGN TABLE tk ALTER COLUMN code TYPE text;
ALTER TABLE th ALTER COLUMN code TYPE text;
SELECT * FROM tk ORDER BY code;
SELECT * FROM tk WHERE code = 'bb';
SELECT * FROM tk WHERE code = 'eeeeeeeeee';
SELECT differences('tk', 'th');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'tk'::regclass AND attnum > 0 ORDER BY attnum;

-- changes the file cannot follow are refused when the ALTER ends, with a
-- hint, and leave the table as it was
CREATE FOREIGN TABLE rk (id int, s varchar(20), t text) SERVER kvs;
INSERT INTO rk VALUES (1, 'one', 'x'), (2, 'two', NULL);
ALTER FOREIGN TABLE rk ALTER COLUMN s TYPE varchar(2);     -- old values might not fit
ALTER FOREIGN TABLE rk ALTER COLUMN id TYPE bigint;        -- other bytes
ALTER FOREIGN TABLE rk ALTER COLUMN t TYPE varchar(5);
ALTER FOREIGN TABLE rk ADD COLUMN r float8 DEFAULT random();  -- a value per row
ALTER FOREIGN TABLE rk ADD COLUMN c serial;
ALTER FOREIGN TABLE rk ADD COLUMN nn int NOT NULL;          -- stored rows: NULL
CREATE DOMAIN alter_nn AS int NOT NULL;
ALTER FOREIGN TABLE rk ADD COLUMN dn alter_nn;
ALTER FOREIGN TABLE rk ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED;
ALTER FOREIGN TABLE rk DROP COLUMN id;                      -- the key
ALTER FOREIGN TABLE rk ALTER COLUMN s OPTIONS (ADD key 'true');  -- another key
-- several subcommands: one refused, none done
ALTER FOREIGN TABLE rk ADD COLUMN fine int, ALTER COLUMN id TYPE bigint;
SELECT * FROM rk ORDER BY id;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'rk'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
INSERT INTO rk VALUES (3, 'three', 'z');
SELECT * FROM rk WHERE id = 3;
-- what the refused ones need a rewrite for is fine with NOT NULL and a
-- constant default
ALTER FOREIGN TABLE rk ADD COLUMN nn int NOT NULL DEFAULT 0;
SELECT * FROM rk ORDER BY id;
-- an empty file takes the new layout: the same changes are fine on it
CREATE FOREIGN TABLE ek (id int, s varchar(20)) SERVER kvs;
INSERT INTO ek VALUES (1, 'gone');
DELETE FROM ek;
ALTER FOREIGN TABLE ek ALTER COLUMN s TYPE varchar(2), ALTER COLUMN id TYPE bigint,
  ADD COLUMN r float8 DEFAULT random(), ADD COLUMN nn int NOT NULL;
INSERT INTO ek VALUES (10000000000, 'ab', 0.5, 1);
SELECT * FROM ek;

-- an ALTER rolled back: in its transaction the rows read with the new
-- columns but cannot be written; after the ROLLBACK all is as before
BEGIN;
ALTER FOREIGN TABLE rk ADD COLUMN later int DEFAULT 42;
ALTER FOREIGN TABLE rk DROP COLUMN t;
SELECT * FROM rk ORDER BY id;
INSERT INTO rk VALUES (4, 'four', 0, 1);
ROLLBACK;
SELECT * FROM rk ORDER BY id;
INSERT INTO rk VALUES (4, 'four', 'w', 4);
SELECT * FROM rk WHERE id = 4;
-- committed, the next use takes the new layout and writes work again
BEGIN;
ALTER FOREIGN TABLE rk DROP COLUMN t;
COMMIT;
UPDATE rk SET s = 'FOUR' WHERE id = 4;
SELECT * FROM rk ORDER BY id;

-- several ALTERs in a row with no use in between, and one with several
-- subcommands; a column added then dropped before any use
CREATE FOREIGN TABLE sk (id int, a text, b int) SERVER kvs;
CREATE TABLE sh (id int PRIMARY KEY, a text, b int);
INSERT INTO sk VALUES (1, 'a1', 1), (2, 'a2', NULL);
INSERT INTO sh SELECT * FROM sk;
ALTER FOREIGN TABLE sk ADD COLUMN c int DEFAULT 1;
ALTER TABLE sh ADD COLUMN c int DEFAULT 1;
ALTER FOREIGN TABLE sk DROP COLUMN a;
ALTER TABLE sh DROP COLUMN a;
ALTER FOREIGN TABLE sk ADD COLUMN tmp int DEFAULT 5;
ALTER TABLE sh ADD COLUMN tmp int DEFAULT 5;
ALTER FOREIGN TABLE sk DROP COLUMN tmp;
ALTER TABLE sh DROP COLUMN tmp;
ALTER FOREIGN TABLE sk ADD COLUMN e text DEFAULT 'e', DROP COLUMN b, ADD COLUMN f numeric DEFAULT 2.5;
ALTER TABLE sh ADD COLUMN e text DEFAULT 'e', DROP COLUMN b, ADD COLUMN f numeric DEFAULT 2.5;
ALTER FOREIGN TABLE sk ALTER COLUMN c SET DEFAULT 100;
ALTER TABLE sh ALTER COLUMN c SET DEFAULT 100;
INSERT INTO sk (id) VALUES (3);
INSERT INTO sh (id) VALUES (3);
SELECT * FROM sk ORDER BY id;
SELECT * FROM sk WHERE id = 2;
SELECT differences('sk', 'sh');

-- a key that is not the first column, and a column before it dropped
CREATE FOREIGN TABLE nk (a text, b int, id int OPTIONS (key 'true'), c text) SERVER kvs;
CREATE TABLE nh (a text, b int, id int PRIMARY KEY, c text);
INSERT INTO nk VALUES ('a1', 10, 1, 'c1'), ('a2', 20, 2, NULL), (NULL, 30, 3, 'c3');
INSERT INTO nh SELECT * FROM nk;
ALTER FOREIGN TABLE nk DROP COLUMN a;
ALTER TABLE nh DROP COLUMN a;
ALTER FOREIGN TABLE nk ADD COLUMN z int DEFAULT 0;
ALTER TABLE nh ADD COLUMN z int DEFAULT 0;
SELECT * FROM nk ORDER BY id;
SELECT * FROM nk WHERE id = 2;
UPDATE nk SET c = 'x' WHERE id = 1;
UPDATE nh SET c = 'x' WHERE id = 1;
UPDATE nk SET z = z + b WHERE c IS NOT NULL;
UPDATE nh SET z = z + b WHERE c IS NOT NULL;
INSERT INTO nk VALUES (40, 4, 'c4', 4);
INSERT INTO nh VALUES (40, 4, 'c4', 4);
ALTER FOREIGN TABLE nk DROP COLUMN b;
ALTER TABLE nh DROP COLUMN b;
SELECT * FROM nk ORDER BY id;
SELECT * FROM nk WHERE id = 3;
SELECT differences('nk', 'nh');
ALTER FOREIGN TABLE nk DROP COLUMN id;                      -- still the key
SELECT * FROM nk WHERE id = 4;

-- a table whose columns do not match its file (another table of other types
-- over the same file): rows give 42804, the inspection functions work and
-- say so, EXPLAIN too
SELECT current_setting('data_directory') || '/kvs_regress_alter.kvs' AS afile \gset
CREATE FOREIGN TABLE xk (id int, v text) SERVER kvs OPTIONS (filename :'afile');
INSERT INTO xk VALUES (1, 'a'), (2, 'b');
CREATE FOREIGN TABLE xk2 (id int, v int) SERVER kvs OPTIONS (filename :'afile');
SELECT * FROM xk2;
INSERT INTO xk2 VALUES (3, 3);
SELECT records FROM kvs_fdw_stats('xk2');
SELECT * FROM kvs_fdw_check('xk2');
SELECT count(*) > 0 AS has_rows FROM kvs_fdw_page('xk2', 0);
EXPLAIN (COSTS OFF) SELECT * FROM xk2;
EXPLAIN (COSTS OFF) SELECT * FROM xk2 WHERE id = 1;
EXPLAIN (COSTS OFF) UPDATE xk2 SET v = 0 WHERE id = 1;
EXPLAIN (COSTS OFF) INSERT INTO xk2 VALUES (3, 3);
EXPLAIN (COSTS OFF) SELECT * FROM xk;
SELECT * FROM kvs_fdw_check('xk');
-- the other table may change to match (its ALTER is checked against the
-- file too), and then reads the rows
ALTER FOREIGN TABLE xk2 ALTER COLUMN v TYPE bigint;
ALTER FOREIGN TABLE xk2 ALTER COLUMN v TYPE text;
SELECT * FROM xk2 ORDER BY id;
SELECT * FROM kvs_fdw_check('xk2');
-- but only the file's own table moves its layout on
ALTER FOREIGN TABLE xk2 ADD COLUMN w int;
SELECT * FROM xk ORDER BY id;

DROP FOREIGN TABLE ak, tk, rk, ek, sk, nk, xk, xk2;
DROP TABLE ah, th, sh, nh;
DROP FUNCTION differences(regclass, regclass);
DROP DOMAIN alter_nn;
