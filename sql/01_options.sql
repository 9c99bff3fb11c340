-- 01_options: the extension, the wrapper, option validation and the GUC.
CREATE EXTENSION kvs_fdw;
SELECT extname, extversion = (SELECT default_version FROM pg_available_extensions
                               WHERE name = 'kvs_fdw') AS default_version
  FROM pg_extension WHERE extname = 'kvs_fdw';
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc FROM pg_foreign_data_wrapper;
SELECT evtname, evtevent FROM pg_event_trigger;
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;

-- the default: the file lives in the data directory and belongs to the table
CREATE FOREIGN TABLE kv (key text, value text) SERVER kvs;
INSERT INTO kv VALUES ('a', 'alpha');
SELECT * FROM kv;

-- column option key marks the key; table option fillfactor
CREATE FOREIGN TABLE users (name text, id bigint OPTIONS (key 'true'), born date)
  SERVER kvs OPTIONS (fillfactor '60');
INSERT INTO users VALUES ('ann', 1, '1990-01-02');
INSERT INTO users VALUES ('ann', 2, NULL);   -- name is not the key
SELECT * FROM users ORDER BY id;
SELECT fillfactor FROM kvs_fdw_stats('users');
ALTER FOREIGN TABLE users OPTIONS (SET fillfactor '90');
SELECT count(*) FROM users;
SELECT fillfactor FROM kvs_fdw_stats('users');

-- unknown options: HV00D with a hint
\set VERBOSITY default
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (filname '/tmp/x.kvs');
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (fillfacter '50');
CREATE FOREIGN TABLE bad (id int OPTIONS (ky 'true')) SERVER kvs;
CREATE FOREIGN TABLE bad (id int OPTIONS (nothing_like_it 'true')) SERVER kvs;
CREATE SERVER bad FOREIGN DATA WRAPPER kvs_fdw OPTIONS (filename '/tmp/x.kvs');
CREATE USER MAPPING FOR CURRENT_USER SERVER kvs OPTIONS (user 'x');
ALTER FOREIGN DATA WRAPPER kvs_fdw OPTIONS (fillfactor '50');

-- bad values: 22023 naming the option
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (fillfactor '5');
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (fillfactor '101');
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (fillfactor 'lots');
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (filename 'relative/x.kvs');
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (filename '');
CREATE FOREIGN TABLE bad (id int OPTIONS (key 'perhaps')) SERVER kvs;
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (fillfactor '50', fillfactor '60');

-- two key columns: refused when the table is used
CREATE FOREIGN TABLE twokeys (a int OPTIONS (key 'true'), b int OPTIONS (key 'true')) SERVER kvs;
SELECT * FROM twokeys;
DROP FOREIGN TABLE twokeys;
-- key 'false' is accepted; with no column marked, the first column is the key
CREATE FOREIGN TABLE keyfalse (a int OPTIONS (key 'false'), b int) SERVER kvs;
INSERT INTO keyfalse VALUES (1, 1), (1, 2);
SELECT * FROM keyfalse ORDER BY b;
DROP FOREIGN TABLE keyfalse;
-- a table without columns has no key
CREATE FOREIGN TABLE nocols () SERVER kvs;
SELECT * FROM nocols;
DROP FOREIGN TABLE nocols;

-- filename: only superusers and pg_write_server_files members (42501)
CREATE ROLE kvs_alice NOLOGIN;
CREATE ROLE kvs_writer NOLOGIN IN ROLE pg_write_server_files;
GRANT USAGE ON FOREIGN SERVER kvs TO kvs_alice, kvs_writer;
GRANT CREATE ON SCHEMA public TO kvs_alice, kvs_writer;
-- outside the data directory, which only superusers may use (13_security)
SELECT regexp_replace(current_setting('data_directory'), '/[^/]*$', '') || '/kvs_regress_writer.kvs' AS wfile \gset
SET ROLE kvs_alice;
CREATE FOREIGN TABLE bad (id int) SERVER kvs OPTIONS (filename '/tmp/kvs_regress_never.kvs');
CREATE FOREIGN TABLE alice_t (id int, v text) SERVER kvs;   -- default file: fine
INSERT INTO alice_t VALUES (1, 'mine');
SELECT * FROM alice_t;
ALTER FOREIGN TABLE alice_t OPTIONS (ADD filename '/tmp/kvs_regress_never.kvs');
RESET ROLE;
SET ROLE kvs_writer;
CREATE FOREIGN TABLE writer_t (id int, v text) SERVER kvs OPTIONS (filename :'wfile');
INSERT INTO writer_t VALUES (1, 'w');
SELECT * FROM writer_t;
RESET ROLE;
DROP FOREIGN TABLE writer_t;
-- an explicit filename is never deleted by DROP
SELECT (pg_stat_file(:'wfile', true)).size > 0 AS explicit_file_kept;
-- a new table over the same file sees the rows
CREATE FOREIGN TABLE writer_t2 (id int, v text) SERVER kvs OPTIONS (filename :'wfile');
SELECT * FROM writer_t2;
DROP FOREIGN TABLE writer_t2;

-- GUC kvs_fdw.cache_size: memory units, 4 kB pages; one budget shared by the
-- files a backend used lately, so in a fresh backend kv gets it all
\c
LOAD 'kvs_fdw';
SHOW kvs_fdw.cache_size;
SET kvs_fdw.cache_size = '64MB';
SHOW kvs_fdw.cache_size;
SELECT count(*) FROM kv;
SELECT frames FROM kvs_fdw_cache_stats() WHERE file = (SELECT file FROM kvs_fdw_stats('kv'));
SET kvs_fdw.cache_size = 40;     -- kB: 10 pages
SELECT count(*) FROM kv;
SELECT frames FROM kvs_fdw_cache_stats() WHERE file = (SELECT file FROM kvs_fdw_stats('kv'));
SET kvs_fdw.cache_size = '1kB';
SET kvs_fdw.cache_size = 'lots';
RESET kvs_fdw.cache_size;
SET kvs_fdw.no_such_setting = 1;
