-- 05_files: the file's life: created on first use, removed by DROP at commit
-- (not on rollback), explicit files kept, the row layout checked against the
-- file (42804), damaged and foreign files (XX001), never a crash.
CREATE FUNCTION file_exists(path text) RETURNS boolean LANGUAGE sql AS
$$ SELECT (pg_stat_file(path, true)).size IS NOT NULL $$;
-- run a statement, show its SQLSTATE and message with file paths masked
CREATE FUNCTION show_error(q text, mask boolean DEFAULT true) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    IF NOT mask THEN
        RETURN SQLSTATE || ': ' || SQLERRM;
    END IF;
    RETURN SQLSTATE || ': ' ||
           regexp_replace(regexp_replace(SQLERRM, '/[^ ":]*\.kvs', 'FILE', 'g'), '[0-9a-f]*[0-9][0-9a-f]*', 'N', 'g');
END $$;

-- created on first use, in the data directory
CREATE FOREIGN TABLE d1 (id int, v text) SERVER kvs;
SELECT current_setting('data_directory') || '/kvs_fdw/' ||
       (SELECT oid FROM pg_database WHERE datname = current_database()) || '_' ||
       'd1'::regclass::oid || '.kvs' AS d1file \gset
SELECT file_exists(:'d1file');
INSERT INTO d1 VALUES (1, 'one');
SELECT file_exists(:'d1file');
SELECT file = :'d1file' AS same_file FROM kvs_fdw_stats('d1');

-- DROP removes it at commit, not on rollback
BEGIN;
DROP FOREIGN TABLE d1;
ROLLBACK;
SELECT file_exists(:'d1file');
SELECT * FROM d1;
BEGIN;
SAVEPOINT s1;
DROP FOREIGN TABLE d1;
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT file_exists(:'d1file');
BEGIN;
SAVEPOINT s1;
DROP FOREIGN TABLE d1;
RELEASE SAVEPOINT s1;
SELECT file_exists(:'d1file') AS exists_before_commit;
COMMIT;
SELECT file_exists(:'d1file') AS exists_after_commit;
-- DROP of a table never used: no file, nothing to do
CREATE FOREIGN TABLE unused (id int) SERVER kvs;
DROP FOREIGN TABLE unused;
-- DROP SCHEMA ... CASCADE and DROP SERVER ... CASCADE too
CREATE SCHEMA kvs_s;
CREATE FOREIGN TABLE kvs_s.d2 (id int) SERVER kvs;
INSERT INTO kvs_s.d2 VALUES (1);
SELECT file AS d2file FROM kvs_fdw_stats('kvs_s.d2') \gset
DROP SCHEMA kvs_s CASCADE;
SELECT file_exists(:'d2file');
CREATE SERVER kvs2 FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE d3 (id int) SERVER kvs2;
INSERT INTO d3 VALUES (1);
SELECT file AS d3file FROM kvs_fdw_stats('d3') \gset
DROP SERVER kvs2 CASCADE;
SELECT file_exists(:'d3file');
-- a non-superuser dropping their own table
SELECT file AS alicefile FROM kvs_fdw_stats('alice_t') \gset
SET ROLE kvs_alice;
DROP FOREIGN TABLE alice_t;
RESET ROLE;
SELECT file_exists(:'alicefile');
-- a new table starts empty
CREATE FOREIGN TABLE d1 (id int, v text) SERVER kvs;
SELECT count(*) FROM d1;

-- a leftover file at a new table's path (as after an OID wraparound) is not
-- adopted: its header names another table, so the new table starts empty
CREATE FOREIGN TABLE old_owner (id int, v text) SERVER kvs;
INSERT INTO old_owner VALUES (1, 'old row');
SELECT file AS oldfile FROM kvs_fdw_stats('old_owner') \gset
CREATE FOREIGN TABLE new_owner (id int, v text) SERVER kvs;
SELECT current_setting('data_directory') || '/kvs_fdw/' ||
       (SELECT oid FROM pg_database WHERE datname = current_database()) || '_' ||
       'new_owner'::regclass::oid || '.kvs' AS newfile \gset
SELECT format('COPY (SELECT 1) TO PROGRAM %L', format('cat >/dev/null; cp %s %s', :'oldfile', :'newfile')) AS cp \gset
:cp;
SELECT * FROM new_owner;
INSERT INTO new_owner VALUES (2, 'new row');
SELECT * FROM new_owner;
SELECT * FROM old_owner;
DROP FOREIGN TABLE old_owner, new_owner;
SELECT file_exists(:'oldfile') OR file_exists(:'newfile') AS any_left;

-- the row layout is checked against the file (42804 naming the column)
\set VERBOSITY terse
SELECT current_setting('data_directory') || '/kvs_regress_layout.kvs' AS lfile \gset
CREATE FOREIGN TABLE l1 (id int, v text) SERVER kvs OPTIONS (filename :'lfile');
INSERT INTO l1 VALUES (1, 'a');
CREATE FOREIGN TABLE l2 (id int, v int) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l2;
INSERT INTO l2 VALUES (2, 2);
CREATE FOREIGN TABLE l3 (id bigint, v text) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l3;
CREATE FOREIGN TABLE l4 (id int, v text, w int) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l4;
CREATE FOREIGN TABLE l5 (id int) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l5;
CREATE FOREIGN TABLE l6 (id int, v text OPTIONS (key 'true')) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l6;
CREATE FOREIGN TABLE l7 (v varchar(5), w text) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l7;
CREATE FOREIGN TABLE l8 (a int, b text) SERVER kvs OPTIONS (filename :'lfile');
SELECT * FROM l8;                 -- names may differ, types may not
ALTER FOREIGN TABLE l1 ADD COLUMN w int;
SELECT * FROM l1;
ALTER FOREIGN TABLE l1 DROP COLUMN w;
SELECT * FROM l1;
ALTER FOREIGN TABLE l1 ALTER COLUMN v TYPE varchar(3);
SELECT * FROM l1;
ALTER FOREIGN TABLE l1 ALTER COLUMN v TYPE text;
SELECT * FROM l1;
-- an empty file takes the layout of the table that uses it
TRUNCATE l1;
SELECT * FROM l2;
INSERT INTO l2 VALUES (2, 2);
SELECT * FROM l2;
SELECT * FROM l1;
\set VERBOSITY default
DROP FOREIGN TABLE l1, l2, l3, l4, l5, l6, l7, l8;
SELECT file_exists(:'lfile') AS explicit_file_kept;

-- Local mode only (\if below): with kvs_fdw preloaded the shared pool keeps
-- a file's pages and header across sessions, as shared_buffers does, so what
-- a process outside the server does to the file meanwhile (an flock, dd, cp,
-- truncate) is not seen while the pool holds the file; test/fdw/shared.sh
-- damages a file while the server is stopped instead.
SELECT kvs_fdw_mode() = 'local' AS local_mode \gset
\if :local_mode
-- waiting for the file lock can be cancelled (57014), here by statement_timeout
-- while another process holds an exclusive flock on the file for 6 seconds
CREATE FOREIGN TABLE locked (id int) SERVER kvs;
INSERT INTO locked VALUES (1);
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; rm -f %2$s; (flock -x %1$s sh -c "touch %2$s; sleep 6" </dev/null >/dev/null 2>&1 &); '
                     'while [ ! -e %2$s ]; do sleep 0.05; done; rm -f %2$s',
                     file, file || '.held')) AS lockit
  FROM kvs_fdw_stats('locked') \gset
:lockit;
SET statement_timeout = '1s';
SELECT count(*) FROM locked;
INSERT INTO locked VALUES (2);
RESET statement_timeout;
SELECT * FROM locked;      -- waits until the other process lets go
DROP FOREIGN TABLE locked;
\endif

-- I/O errors: errcode_for_file_access() (58P01 for a missing directory)
CREATE FOREIGN TABLE nodir (id int) SERVER kvs OPTIONS (filename '/nonexistent_kvs_dir/x.kvs');
SELECT show_error('SELECT * FROM nodir', false);
SELECT show_error('INSERT INTO nodir VALUES (1)', false);
ALTER FOREIGN TABLE nodir OPTIONS (SET filename '/proc/kvs_regress_denied.kvs');
SELECT show_error('SELECT * FROM nodir', false);
DROP FOREIGN TABLE nodir;

-- a foreign file, a damaged page, a truncated file: XX001, never a crash
SELECT current_setting('data_directory') || '/kvs_regress_foreign.kvs' AS ffile \gset
COPY (SELECT repeat('this is not a kvs file ', 400)) TO :'ffile';
CREATE FOREIGN TABLE foreign_file (id int) SERVER kvs OPTIONS (filename :'ffile');
SELECT show_error('SELECT * FROM foreign_file');
SELECT show_error('INSERT INTO foreign_file VALUES (1)');
-- kvs_fdw_check reports such a file as a problem (a row), not an error
SELECT page, regexp_replace(problem, '/[^ :]*\.kvs', 'FILE') AS problem
  FROM kvs_fdw_check('foreign_file');
SELECT (pg_stat_file(:'ffile')).size AS foreign_file_untouched;

SELECT current_setting('data_directory') || '/kvs_regress_damaged.kvs' AS dfile \gset
-- (local mode only, as above)
\if :local_mode
CREATE FOREIGN TABLE damaged (id int, v text) SERVER kvs OPTIONS (filename :'dfile');
INSERT INTO damaged SELECT g, repeat('d', 50) FROM generate_series(1, 3000) g;
SELECT pages > 10 AS enough_pages FROM kvs_fdw_stats('damaged');
SELECT * FROM kvs_fdw_check('damaged');
-- overwrite 64 bytes in the middle of the last page (a bucket, overflow or
-- value page), behind the server's back
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; printf XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX | dd of=%s bs=1 seek=%s conv=notrunc status=none',
                     :'dfile', (pages - 1) * 4096 + 2000)) AS damage,
       pages - 1 AS damaged_page
  FROM kvs_fdw_stats('damaged') \gset
:damage;
\c
SELECT show_error('SELECT count(*) FROM damaged', false) ~ ('^XX001: .* page ' || :damaged_page || ':') AS names_page;
SELECT show_error('SELECT count(*) FROM damaged');
SELECT page = :damaged_page AS same_page, problem IS NOT NULL AS has_problem FROM kvs_fdw_check('damaged');
SELECT checksum_ok FROM kvs_fdw_page('damaged', :damaged_page) LIMIT 1;
SELECT 'still alive' AS server;
-- truncated
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; truncate -s 6000 %s', :'dfile')) AS trunc \gset
:trunc;
\c
SELECT show_error('SELECT count(*) FROM damaged');
SELECT count(*) AS problems FROM kvs_fdw_check('damaged');
SELECT 'still alive' AS server;
DROP FOREIGN TABLE damaged;
\endif
DROP FOREIGN TABLE foreign_file;
SELECT regexp_replace(current_setting('data_directory'), '/[^/]*$', '') || '/kvs_regress_writer.kvs' AS wfile \gset
SELECT format('COPY (SELECT 1) TO PROGRAM %L', format('cat >/dev/null; rm -f %s %s %s %s', :'ffile', :'dfile', :'lfile', :'wfile')) AS cleanup \gset
:cleanup;
