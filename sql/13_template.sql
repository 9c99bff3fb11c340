-- 13_template: CREATE DATABASE ... TEMPLATE copies the template's kvs files
-- (when kvs_fdw is loaded in the session that runs it), each with its
-- identity rewritten to the new database; explicit filenames are shared.
SELECT current_database() AS regdb,
       current_setting('data_directory') || '/kvs_regress_shared.kvs' AS sharedfile \gset
CREATE DATABASE kvs_tmpl;
\c kvs_tmpl
SET client_min_messages = warning;
CREATE EXTENSION kvs_fdw;
RESET client_min_messages;
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE t (k int, v text) SERVER kvs;
INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g;
CREATE FOREIGN TABLE big (k int, v text) SERVER kvs;     -- a value chain
INSERT INTO big VALUES (1, repeat('x', 100000));
CREATE FOREIGN TABLE unused (k int) SERVER kvs;          -- no file yet
CREATE FOREIGN TABLE shared_t (k int, v text) SERVER kvs OPTIONS (filename :'sharedfile');
INSERT INTO shared_t VALUES (1, 'shared');
\c :regdb
LOAD 'kvs_fdw';
CREATE DATABASE kvs_copy TEMPLATE kvs_tmpl;
\c kvs_copy
SELECT count(*), sum(k), min(v), max(v) FROM t;
SELECT * FROM t WHERE k = 42;
SELECT length(v) FROM big;
SELECT count(*) FROM unused;
-- the copy has its own file, sound, under the new database's OID
SELECT file ~ ('/kvs_fdw/' || (SELECT oid FROM pg_database WHERE datname = current_database())
               || '_' || 't'::regclass::oid || '\.kvs$') AS own_file,
       records FROM kvs_fdw_stats('t');
SELECT * FROM kvs_fdw_check('t');
SELECT * FROM kvs_fdw_check('big');
-- writes in the copy stay in the copy; the explicit file is shared
INSERT INTO t VALUES (2001, 'only in the copy');
UPDATE t SET v = 'changed in the copy' WHERE k = 1;
DELETE FROM big;
UPDATE shared_t SET v = 'changed through the copy';
SELECT count(*), max(k) FROM t;
SELECT v FROM t WHERE k = 1;
\c kvs_tmpl
SELECT count(*), max(k) FROM t;
SELECT v FROM t WHERE k = 1;
SELECT length(v) FROM big;
SELECT * FROM shared_t;
-- a session without kvs_fdw loaded cannot copy: the tables start empty, and
-- the first use of one warns (README: LOAD 'kvs_fdw' first, or preload it)
-- (with kvs_fdw in shared_preload_libraries every session has it loaded: the
-- copy is made; expected/13_template_shared.out)
\c :regdb
SELECT count(*) AS kvs_fdw_loaded FROM pg_settings WHERE name = 'kvs_fdw.cache_size';
CREATE DATABASE kvs_copy2 TEMPLATE kvs_tmpl;
\c kvs_copy2
SELECT count(*) FROM t;
\c :regdb
DROP DATABASE kvs_copy;
DROP DATABASE kvs_copy2;
DROP DATABASE kvs_tmpl;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', format('cat >/dev/null; rm -f %s', :'sharedfile')) AS cleanup \gset
:cleanup;
