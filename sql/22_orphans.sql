-- 22_orphans: files whose table is gone.  Commands that drop the extension
-- itself (and its sql_drop trigger) remove the kvs files of the tables they
-- drop at commit, through the ddl_command_start trigger kvs_fdw_drop_start;
-- kvs_fdw_orphans() lists what is left, kvs_fdw_remove_orphan() removes one.
-- Everything happens in databases of its own (the regression database is
-- shared with the other tests, and has their files).
SELECT current_database() AS regdb, current_setting('data_directory') AS pgdata \gset
CREATE DATABASE kvs_orph_a;
CREATE DATABASE kvs_orph_b;
CREATE DATABASE kvs_orph_gone;
CREATE DATABASE kvs_orph_gone2;
CREATE ROLE kvs_orph_su SUPERUSER NOLOGIN;
CREATE ROLE kvs_orph_user NOLOGIN;
CREATE ROLE kvs_orph_mon NOLOGIN IN ROLE pg_monitor;

\c kvs_orph_a
CREATE EXTENSION kvs_fdw;
SELECT evtname, evtevent, evtenabled, evttags
  FROM pg_event_trigger WHERE evtname LIKE 'kvs_fdw%drop%' ORDER BY 1;
\set make_tables 'CREATE SERVER s FOREIGN DATA WRAPPER kvs_fdw; CREATE FOREIGN TABLE t1 (k int, v text) SERVER s; CREATE FOREIGN TABLE t2 (k int, v text) SERVER s; INSERT INTO t1 SELECT g, \'a\' || g FROM generate_series(1, 50) g; INSERT INTO t2 VALUES (1, \'b\');'
-- the files of t1 and t2 as watched holds them: there or not
CREATE TABLE watched (label text, path text);
\set file_names 'DELETE FROM watched; INSERT INTO watched SELECT t, format(\'kvs_fdw/%s_%s.kvs\', d.oid, t::regclass::oid) FROM pg_database d, unnest(ARRAY[\'t1\', \'t2\']) t WHERE d.datname = current_database();'
\set files_there 'SELECT label, (pg_stat_file(path, true)).size IS NOT NULL AS there FROM watched ORDER BY label;'
:make_tables
-- an explicit filename (here in the data directory, as a superuser may): never removed
SELECT :'pgdata' || '/kvs_fdw/orph_explicit.kvs' AS explicit_path \gset
CREATE FOREIGN TABLE tx (k int, v text) SERVER s OPTIONS (filename :'explicit_path');
INSERT INTO tx VALUES (1, 'x');
:file_names
:files_there

-- DROP EXTENSION ... CASCADE rolled back, whole or to a savepoint: files kept
BEGIN;
DROP EXTENSION kvs_fdw CASCADE;
ROLLBACK;
BEGIN;
SAVEPOINT sp;
DROP EXTENSION kvs_fdw CASCADE;
ROLLBACK TO sp;
COMMIT;
:files_there
SELECT count(*), max(v) FROM t1;

-- committed: the files go at commit (not before), the explicit file stays;
-- also with writes of the transaction pending for a dropped table
BEGIN;
INSERT INTO t2 VALUES (2, 'pending');
DROP EXTENSION kvs_fdw CASCADE;
:files_there
COMMIT;
:files_there
SELECT (pg_stat_file('kvs_fdw/orph_explicit.kvs', true)).size IS NOT NULL AS explicit_kept;

-- the extension in a schema of its own: DROP SCHEMA ... CASCADE drops it too
CREATE SCHEMA kvs_ext;
CREATE EXTENSION kvs_fdw SCHEMA kvs_ext;
:make_tables
:file_names
:files_there
DROP SCHEMA kvs_ext CASCADE;
:files_there

-- DROP OWNED of the extension's owner drops the extension and the tables
SET ROLE kvs_orph_su;
CREATE EXTENSION kvs_fdw;
:make_tables
RESET ROLE;
:file_names
:files_there
DROP OWNED BY kvs_orph_su;
SELECT count(*) AS kvs_fdw_installed FROM pg_extension WHERE extname = 'kvs_fdw';
:files_there

-- DROP FOREIGN DATA WRAPPER ... CASCADE of a wrapper of our handler, with
-- the sql_drop trigger disabled: kvs_fdw_drop_start alone removes the files
CREATE EXTENSION kvs_fdw;
CREATE FOREIGN DATA WRAPPER my_kvs HANDLER kvs_fdw_handler VALIDATOR kvs_fdw_validator;
CREATE SERVER m FOREIGN DATA WRAPPER my_kvs;
CREATE FOREIGN TABLE t1 (k int, v text) SERVER m;
CREATE FOREIGN TABLE t2 (k int, v text) SERVER m;
INSERT INTO t1 VALUES (1, 'm');
INSERT INTO t2 VALUES (1, 'm');
:file_names
:files_there
ALTER EVENT TRIGGER kvs_fdw_sql_drop DISABLE;
DROP FOREIGN DATA WRAPPER my_kvs CASCADE;
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;
:files_there

-- an orphan of this database: a table dropped with the sql_drop trigger
-- disabled leaves its file
CREATE SERVER s FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE live (k int, v text) SERVER s;
INSERT INTO live VALUES (1, 'live');
CREATE FOREIGN TABLE lost (k int, v text) SERVER s;
INSERT INTO lost SELECT g, 'lost' FROM generate_series(1, 100) g;
SELECT format('kvs_fdw/%s_%s.kvs', d.oid, 'lost'::regclass::oid) AS lost_file,
       format('kvs_fdw/%s_%s.kvs', d.oid, 'live'::regclass::oid) AS live_file,
       d.oid AS a_oid, 'lost'::regclass::oid AS lost_oid
  FROM pg_database d WHERE d.datname = current_database() \gset
ALTER EVENT TRIGGER kvs_fdw_sql_drop DISABLE;
DROP FOREIGN TABLE lost;
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;

-- a live database's table, and a database dropped in a session that had not
-- loaded kvs_fdw (local mode: the file stays; shared mode, kvs_fdw is in every
-- session: the ProcessUtility hook removes the dropped database's files)
\c kvs_orph_b
CREATE EXTENSION kvs_fdw;
CREATE SERVER s FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE b_t (k int) SERVER s;
INSERT INTO b_t VALUES (1);
\c kvs_orph_gone
CREATE EXTENSION kvs_fdw;
CREATE SERVER s FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE g_t (k int) SERVER s;
INSERT INTO g_t VALUES (1);
SELECT oid AS gone_oid FROM pg_database WHERE datname = current_database() \gset
\c kvs_orph_gone2
CREATE EXTENSION kvs_fdw;
CREATE SERVER s FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE g_t (k int) SERVER s;
INSERT INTO g_t VALUES (1);
SELECT oid AS gone2_oid FROM pg_database WHERE datname = current_database() \gset
\c :regdb
SELECT oid AS b_oid FROM pg_database WHERE datname = 'kvs_orph_b' \gset
DROP DATABASE kvs_orph_gone;
-- with kvs_fdw loaded in the session, in either mode: the files go with it
LOAD 'kvs_fdw';
DROP DATABASE kvs_orph_gone2;

\c kvs_orph_a
SELECT path = :'lost_file' AS is_lost_file, database_oid = :a_oid AS this_db,
       database_name, table_oid = :lost_oid AS lost_oid, size > 0 AS has_size, status
  FROM kvs_fdw_orphans() WHERE database_oid = :a_oid;
SELECT database_name, size > 0 AS has_size, status
  FROM kvs_fdw_orphans() WHERE database_oid = :b_oid;
SELECT database_name IS NULL AS no_name, size > 0 AS has_size, status
  FROM kvs_fdw_orphans() WHERE database_oid = :gone_oid;
SELECT count(*) AS gone2_files FROM kvs_fdw_orphans() WHERE database_oid = :gone2_oid;
SELECT count(*) AS live_listed FROM kvs_fdw_orphans() WHERE path = :'live_file';

-- who may call them
SET ROLE kvs_orph_user;
SELECT count(*) FROM kvs_fdw_orphans();
SELECT kvs_fdw_remove_orphan(:'lost_file');
RESET ROLE;
SET ROLE kvs_orph_mon;
SELECT count(*) >= 1 AS monitor_sees FROM kvs_fdw_orphans();
RESET ROLE;
BEGIN;
GRANT EXECUTE ON FUNCTION kvs_fdw_remove_orphan(text) TO kvs_orph_user;
SET ROLE kvs_orph_user;
\set VERBOSITY sqlstate
SELECT kvs_fdw_remove_orphan(:'lost_file');
\set VERBOSITY default
ROLLBACK;

-- what it refuses: a live table's file, another live database's, a path
-- outside the kvs_fdw directory, one with "..", a file that is not there
\set VERBOSITY sqlstate
SELECT kvs_fdw_remove_orphan(:'live_file');
SELECT kvs_fdw_remove_orphan(format('kvs_fdw/%s_%s.kvs', :b_oid, 1));
SELECT kvs_fdw_remove_orphan('base/1/1259');
SELECT kvs_fdw_remove_orphan(:'pgdata' || '/PG_VERSION');
SELECT kvs_fdw_remove_orphan('/etc/passwd');
SELECT kvs_fdw_remove_orphan('kvs_fdw/orph_explicit.kvs');
SELECT kvs_fdw_remove_orphan('kvs_fdw/../kvs_fdw/' || split_part(:'lost_file', '/', 2));
SELECT kvs_fdw_remove_orphan(format('kvs_fdw/%s_%s.kvs', :a_oid, 4000000000));
\set VERBOSITY default
SELECT kvs_fdw_remove_orphan('/etc/passwd');
SELECT kvs_fdw_remove_orphan('kvs_fdw/../PG_VERSION');
SELECT count(*) AS live_rows FROM live;

-- a table another session is dropping (not committed yet) holds its lock:
-- 55P03, and the file stays (that session then rolls back)
CREATE FOREIGN TABLE busy (k int) SERVER s;
INSERT INTO busy VALUES (1);
SELECT format('kvs_fdw/%s_%s.kvs', :a_oid, 'busy'::regclass::oid) AS busy_file \gset
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT format('dbname=%s user=%s port=%s host=%s', current_database(), current_user,
              current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1))
       AS conn \gset
SELECT dblink_connect('other', :'conn');
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'DROP FOREIGN TABLE busy');
\set VERBOSITY sqlstate
SELECT kvs_fdw_remove_orphan(:'busy_file');
\set VERBOSITY default
SELECT dblink_exec('other', 'ROLLBACK');
SELECT dblink_disconnect('other');
SELECT count(*) AS busy_rows FROM busy;

-- removed at commit, not after ROLLBACK; an absolute path works too
BEGIN;
SELECT kvs_fdw_remove_orphan(:'lost_file');
ROLLBACK;
SELECT (pg_stat_file(:'lost_file', true)).size IS NOT NULL AS lost_kept;
SELECT kvs_fdw_remove_orphan(:'pgdata' || '/' || :'lost_file');
SELECT (pg_stat_file(:'lost_file', true)).size IS NULL AS lost_removed;
SELECT count(*) AS left_here FROM kvs_fdw_orphans() WHERE database_oid = :a_oid;
-- the dropped database's file (local mode), from here
SELECT kvs_fdw_remove_orphan(path) FROM kvs_fdw_orphans() WHERE database_oid = :gone_oid;
SELECT count(*) AS left_gone FROM kvs_fdw_orphans() WHERE database_oid = :gone_oid;

\c :regdb
DROP DATABASE kvs_orph_a;
DROP DATABASE kvs_orph_b;
DROP ROLE kvs_orph_su;
DROP ROLE kvs_orph_user;
DROP ROLE kvs_orph_mon;
