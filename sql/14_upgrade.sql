-- 14_upgrade: the extension's upgrade path, and the DROP clean-up under
-- session_replication_role = replica.

-- the clean-up trigger fires whatever the replication role
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname = 'kvs_fdw_sql_drop';
CREATE FOREIGN TABLE up_replica (k int, v text) SERVER kvs;
INSERT INTO up_replica VALUES (1, 'one');
SELECT format('kvs_fdw/%s_%s.kvs', d.oid, 'up_replica'::regclass::oid) AS up_file
  FROM pg_database d WHERE d.datname = current_database() \gset
SELECT (pg_stat_file(:'up_file', true)).size > 0 AS file_there;
SET session_replication_role = replica;
DROP FOREIGN TABLE up_replica;
RESET session_replication_role;
SELECT pg_stat_file(:'up_file', true) IS NULL AS file_removed;

-- every earlier version, installed (its install script as shipped: the
-- commit each one was released at is named in test/meta.sh, which checks the
-- scripts against it), given tables with rows, then updated to the current
-- version: the rows read back, the functions of every version work, the set
-- of objects and their privileges (0.3.0's kvs_fdw_buffercache and 0.4.0's
-- kvs_fdw_journal_stats are pg_monitor's only) equals a fresh install's, and
-- both drop triggers work: DROP FOREIGN TABLE (sql_drop) and DROP EXTENSION
-- CASCADE (kvs_fdw_drop_start, 0.5.0) remove the files.
\set objs_query 'SELECT pg_describe_object(classid, objid, 0) AS obj FROM pg_depend WHERE refclassid = \'pg_extension\'::regclass AND deptype = \'e\' UNION ALL SELECT \'function \' || p.oid::regprocedure || \' returns \' || pg_get_function_result(p.oid) || \' acl \' || coalesce(p.proacl::text, \'-\') FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = \'pg_proc\'::regclass WHERE d.refclassid = \'pg_extension\'::regclass AND d.deptype = \'e\' UNION ALL SELECT \'relation \' || c.oid::regclass || \' acl \' || coalesce(c.relacl::text, \'-\') FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = \'pg_class\'::regclass WHERE d.refclassid = \'pg_extension\'::regclass AND d.deptype = \'e\' UNION ALL SELECT \'event trigger \' || evtname || \' \' || evtevent || \' \' || evtenabled::text || \' \' || coalesce(evttags::text, \'-\') FROM pg_event_trigger'
-- before the update: a server, two tables with rows
\set fill 'CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw; CREATE FOREIGN TABLE up_t (k int, v text) SERVER kvs; CREATE FOREIGN TABLE up_drop (k int) SERVER kvs; INSERT INTO up_t SELECT g, \'v\' || g FROM generate_series(1, 100) g; INSERT INTO up_drop VALUES (1); CREATE TABLE up_files AS SELECT c.relname, format(\'kvs_fdw/%s_%s.kvs\', d.oid, c.oid) AS path FROM pg_class c, pg_database d WHERE c.relname IN (\'up_t\', \'up_drop\') AND d.datname = current_database();'
\set files 'SELECT relname, (pg_stat_file(path, true)).size IS NOT NULL AS file_there FROM up_files ORDER BY relname;'
-- after it: rows, functions, objects (into table objs), the triggers
\set check 'SELECT extversion FROM pg_extension WHERE extname = \'kvs_fdw\'; SELECT count(*), max(v) FROM up_t; INSERT INTO up_t VALUES (101, \'after\'); SELECT v FROM up_t WHERE k = 101; SELECT records FROM kvs_fdw_stats(\'up_t\'); BEGIN; DELETE FROM up_t WHERE k <= 10; SELECT keys FROM kvs_fdw_pending(\'up_t\'); ROLLBACK; SELECT end_lsn >= flushed_lsn AS lsns_in_order FROM kvs_fdw_journal_stats(); SELECT kvs_fdw_mode(); SELECT count(*) AS orphans_here FROM kvs_fdw_orphans() WHERE database_name = current_database(); CREATE TABLE objs AS ' :objs_query '; SELECT evtname, evtenabled FROM pg_event_trigger ORDER BY 1; DROP FOREIGN TABLE up_drop;'
\set drop_all 'DROP EXTENSION kvs_fdw CASCADE;'
SELECT current_database() AS regdb \gset
CREATE DATABASE kvs_upgrade_010;
CREATE DATABASE kvs_upgrade_020;
CREATE DATABASE kvs_upgrade_030;
CREATE DATABASE kvs_upgrade_040;
CREATE DATABASE kvs_upgrade_new;
\c kvs_upgrade_010
CREATE EXTENSION kvs_fdw VERSION '0.1.0';
SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'kvs_fdw_sql_drop';
:fill
:files
ALTER EXTENSION kvs_fdw UPDATE;
:check
:files
SELECT string_agg(obj, E'\n' ORDER BY obj) AS objs FROM objs \gset v010_
:drop_all
:files
\c kvs_upgrade_020
CREATE EXTENSION kvs_fdw VERSION '0.2.0';
:fill
:files
ALTER EXTENSION kvs_fdw UPDATE;
:check
:files
SELECT string_agg(obj, E'\n' ORDER BY obj) AS objs FROM objs \gset v020_
:drop_all
:files
\c kvs_upgrade_030
CREATE EXTENSION kvs_fdw VERSION '0.3.0';
:fill
:files
ALTER EXTENSION kvs_fdw UPDATE;
:check
:files
SELECT string_agg(obj, E'\n' ORDER BY obj) AS objs FROM objs \gset v030_
:drop_all
:files
\c kvs_upgrade_040
CREATE EXTENSION kvs_fdw VERSION '0.4.0';
:fill
:files
ALTER EXTENSION kvs_fdw UPDATE;
:check
:files
SELECT string_agg(obj, E'\n' ORDER BY obj) AS objs FROM objs \gset v040_
:drop_all
:files
\c kvs_upgrade_new
CREATE EXTENSION kvs_fdw;
CREATE TABLE objs AS :objs_query;
SELECT count(*) > 0 AS has_objects,
       count(*) FILTER (WHERE obj LIKE 'relation kvs_fdw_buffercache acl %pg_monitor=r/%') AS view_granted,
       count(*) FILTER (WHERE obj LIKE 'event trigger kvs_fdw_% A %') AS enabled_always
  FROM objs;
-- compare through the old databases' lists, exported as text: no row
\set updated :v010_objs
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'updated', E'\n')) ORDER BY 1;
SELECT unnest(string_to_array(:'updated', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs ORDER BY 1;
\set updated :v020_objs
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'updated', E'\n')) ORDER BY 1;
SELECT unnest(string_to_array(:'updated', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs ORDER BY 1;
\set updated :v030_objs
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'updated', E'\n')) ORDER BY 1;
SELECT unnest(string_to_array(:'updated', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs ORDER BY 1;
\set updated :v040_objs
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'updated', E'\n')) ORDER BY 1;
SELECT unnest(string_to_array(:'updated', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs ORDER BY 1;
\c :regdb
DROP DATABASE kvs_upgrade_010;
DROP DATABASE kvs_upgrade_020;
DROP DATABASE kvs_upgrade_030;
DROP DATABASE kvs_upgrade_040;
DROP DATABASE kvs_upgrade_new;
