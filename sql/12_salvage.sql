-- 12_salvage: kvs_fdw_salvage / kvs_fdw_salvage_pages on files that need no
-- damage (the damaged cases are in test/fdw/salvage.sh), the key as a SQL
-- value in kvs_fdw_page, kvs_fdw_key_column, and the errors of every
-- function taking a relation when it is missing or not a kvs_fdw table.
CREATE FOREIGN TABLE sv (id int, name text, born date, meta jsonb, big text) SERVER kvs;
INSERT INTO sv SELECT g, 'n' || g, date '2000-01-01' + g, jsonb_build_object('g', g),
                      CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 400) END
  FROM generate_series(1, 1000) g;
SELECT records, value_pages > 0 AS has_value_chains FROM kvs_fdw_stats('sv');

-- a clean table salvages to exactly its rows (the NOTICE gives the counts)
SELECT count(*), sum(length(big)) FROM kvs_fdw_salvage(NULL::sv);
SET client_min_messages = warning;
SELECT count(*) AS missing FROM (SELECT * FROM sv EXCEPT ALL SELECT * FROM kvs_fdw_salvage(NULL::sv)) x;
SELECT count(*) AS extra FROM (SELECT * FROM kvs_fdw_salvage(NULL::sv) EXCEPT ALL SELECT * FROM sv) x;
-- copied into a fresh table
CREATE FOREIGN TABLE sv_fresh (id int, name text, born date, meta jsonb, big text) SERVER kvs;
INSERT INTO sv_fresh SELECT * FROM kvs_fdw_salvage(NULL::sv);
SELECT count(*) AS differ FROM (SELECT * FROM sv EXCEPT ALL SELECT * FROM sv_fresh) x;
SELECT count(*) FROM sv_fresh;
-- each row with its page and slot, which kvs_fdw_page confirms
SELECT count(*) AS rows, count(DISTINCT (page, slot)) AS places FROM kvs_fdw_salvage_pages(NULL::sv);
SELECT count(*) AS disagree
  FROM kvs_fdw_salvage_pages(NULL::sv) s
  LEFT JOIN LATERAL kvs_fdw_page('sv', s.page) p ON p.slot = s.slot
 WHERE p.key_value IS DISTINCT FROM (s.rec).id::text OR p.type NOT IN ('bucket', 'overflow');
SELECT (s.rec).id, (s.rec).name, (s.rec).born FROM kvs_fdw_salvage_pages(NULL::sv) s
 WHERE (s.rec).id <= 3 ORDER BY 1;
RESET client_min_messages;

-- an empty table, a key that is not the first column
CREATE FOREIGN TABLE sv_empty (id int, v text) SERVER kvs;
SELECT * FROM kvs_fdw_salvage(NULL::sv_empty);
CREATE FOREIGN TABLE sv_mid (a text, k date OPTIONS (key 'true'), b int) SERVER kvs;
INSERT INTO sv_mid VALUES ('x', '2024-02-29', 1), ('y', '1999-12-31', NULL);
SELECT * FROM kvs_fdw_salvage(NULL::sv_mid) ORDER BY k;

-- records that do not decode as rows of the table are skipped and counted:
-- a second table over the same file with another layout (the normal path
-- refuses it with 42804; salvage reads the records and cannot decode them)
\set VERBOSITY terse
SELECT current_setting('data_directory') || '/kvs_regress_salvage.kvs' AS sfile \gset
CREATE FOREIGN TABLE sv_a (id int, v text) SERVER kvs OPTIONS (filename :'sfile');
INSERT INTO sv_a SELECT g, 'v' || g FROM generate_series(1, 50) g;
CREATE FOREIGN TABLE sv_b (id bigint, v text) SERVER kvs OPTIONS (filename :'sfile');
SELECT count(*) FROM sv_b;
SELECT count(*) FROM kvs_fdw_salvage(NULL::sv_b);
CREATE FOREIGN TABLE sv_c (id int, v text, w int) SERVER kvs OPTIONS (filename :'sfile');
SELECT count(*) FROM kvs_fdw_salvage(NULL::sv_c);
SELECT count(*) FROM kvs_fdw_salvage(NULL::sv_a);
-- salvaging into the table being read (its own lock and the writer's do not deadlock)
SET statement_timeout = '60s';
SET client_min_messages = warning;
INSERT INTO sv_a SELECT id + 1000, v FROM kvs_fdw_salvage(NULL::sv_a);
RESET client_min_messages;
RESET statement_timeout;
SELECT count(*), count(DISTINCT v) FROM sv_a;
\set VERBOSITY default

-- kvs_fdw_page shows each key as its column's type prints it
CREATE FOREIGN TABLE kt_text (k text, v int) SERVER kvs;
INSERT INTO kt_text VALUES ('hello', 1);
SELECT key, key_value FROM kvs_fdw_page('kt_text', 2) WHERE slot IS NOT NULL;
CREATE FOREIGN TABLE kt_ts (v int, k timestamptz OPTIONS (key 'true')) SERVER kvs;
SET timezone = 'UTC';
INSERT INTO kt_ts VALUES (1, '2026-12-01 09:30:00+00');
SELECT key_value FROM kvs_fdw_page('kt_ts', 2) WHERE slot IS NOT NULL;
RESET timezone;
CREATE FOREIGN TABLE kt_uuid (k uuid, v int) SERVER kvs;
INSERT INTO kt_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1);
SELECT key_value FROM kvs_fdw_page('kt_uuid', 2) WHERE slot IS NOT NULL;
SELECT key_value IS NULL AS no_key FROM kvs_fdw_page('kt_uuid', 0);
-- which column is the key
SELECT kvs_fdw_key_column('kt_text'), kvs_fdw_key_column('kt_ts'), kvs_fdw_key_column('sv_mid');

-- every function taking a relation: a missing one is 42P01, one that is
-- not a kvs_fdw table 42809 (never XX000)
CREATE FUNCTION sv_err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
CREATE TABLE sv_heap (id int);
CREATE VIEW sv_view AS SELECT 1 AS id;
CREATE FOREIGN DATA WRAPPER sv_other_fdw;
CREATE SERVER sv_other FOREIGN DATA WRAPPER sv_other_fdw;
CREATE FOREIGN TABLE sv_other_t (id int) SERVER sv_other;
SELECT s AS stmt, sv_err(s) AS error FROM unnest(ARRAY[
  'SELECT * FROM kvs_fdw_stats(0)',
  'SELECT * FROM kvs_fdw_check(0)',
  'SELECT * FROM kvs_fdw_page(0, 0)',
  'SELECT kvs_fdw_key_column(0)',
  'SELECT * FROM kvs_fdw_stats(4294967295)',
  'SELECT * FROM kvs_fdw_stats(''sv_heap'')',
  'SELECT * FROM kvs_fdw_check(''sv_heap'')',
  'SELECT * FROM kvs_fdw_page(''sv_heap'', 0)',
  'SELECT kvs_fdw_key_column(''sv_heap'')',
  'SELECT * FROM kvs_fdw_salvage(NULL::sv_heap)',
  'SELECT * FROM kvs_fdw_salvage_pages(NULL::sv_heap)',
  'SELECT * FROM kvs_fdw_stats(''sv_view'')',
  'SELECT * FROM kvs_fdw_salvage(NULL::sv_view)',
  'SELECT * FROM kvs_fdw_stats(''sv_other_t'')',
  'SELECT * FROM kvs_fdw_check(''sv_other_t'')',
  'SELECT * FROM kvs_fdw_page(''sv_other_t'', 0)',
  'SELECT kvs_fdw_key_column(''sv_other_t'')',
  'SELECT * FROM kvs_fdw_salvage(NULL::sv_other_t)',
  'SELECT * FROM kvs_fdw_salvage_pages(NULL::sv_other_t)',
  'SELECT * FROM kvs_fdw_salvage(NULL::int)',
  'SELECT * FROM kvs_fdw_salvage(1)',
  'SELECT * FROM kvs_fdw_stats(''pg_class_oid_index'')',
  'SELECT * FROM kvs_fdw_stats(''pg_class'')']) s;

-- salvage needs SELECT on the table
CREATE ROLE kvs_sv_eve NOLOGIN;
SET ROLE kvs_sv_eve;
SELECT count(*) FROM kvs_fdw_salvage(NULL::sv);
SELECT count(*) FROM kvs_fdw_salvage_pages(NULL::sv);
SELECT kvs_fdw_key_column('sv');
RESET ROLE;
GRANT SELECT ON sv TO kvs_sv_eve;
SET ROLE kvs_sv_eve;
SET client_min_messages = warning;
SELECT count(*) FROM kvs_fdw_salvage(NULL::sv);
RESET client_min_messages;
RESET ROLE;
REVOKE ALL ON sv FROM kvs_sv_eve;
DROP ROLE kvs_sv_eve;

DROP FOREIGN TABLE sv, sv_fresh, sv_empty, sv_mid, sv_a, sv_b, sv_c, kt_text, kt_ts, kt_uuid,
  sv_other_t;
DROP SERVER sv_other;
DROP FOREIGN DATA WRAPPER sv_other_fdw;
DROP TABLE sv_heap;
DROP VIEW sv_view;
DROP FUNCTION sv_err(text);
