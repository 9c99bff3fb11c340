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

-- installing an old version and updating gives the objects of a fresh
-- install, with the same privileges (0.3.0's kvs_fdw_buffercache is
-- pg_monitor's only, as 0.4.0's kvs_fdw_journal_stats): from 0.1.0 (through
-- 0.2.0 and 0.3.0) and from 0.2.0 (through 0.3.0)
\set objs_query 'SELECT pg_describe_object(classid, objid, 0) AS obj FROM pg_depend WHERE refclassid = \'pg_extension\'::regclass AND deptype = \'e\' UNION ALL SELECT \'function \' || p.oid::regprocedure || \' returns \' || pg_get_function_result(p.oid) || \' acl \' || coalesce(p.proacl::text, \'-\') FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = \'pg_proc\'::regclass WHERE d.refclassid = \'pg_extension\'::regclass AND d.deptype = \'e\' UNION ALL SELECT \'relation \' || c.oid::regclass || \' acl \' || coalesce(c.relacl::text, \'-\') FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = \'pg_class\'::regclass WHERE d.refclassid = \'pg_extension\'::regclass AND d.deptype = \'e\' UNION ALL SELECT \'event trigger \' || evtname || \' \' || evtevent || \' \' || evtenabled::text FROM pg_event_trigger'
SELECT current_database() AS regdb \gset
CREATE DATABASE kvs_upgrade_old;
CREATE DATABASE kvs_upgrade_mid;
CREATE DATABASE kvs_upgrade_new;
\c kvs_upgrade_old
CREATE EXTENSION kvs_fdw VERSION '0.1.0';
SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'kvs_fdw_sql_drop';
ALTER EXTENSION kvs_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw';
CREATE TABLE objs AS :objs_query;
SELECT string_agg(obj, E'\n' ORDER BY obj) AS old_objs FROM objs \gset
\c kvs_upgrade_mid
-- a 0.2.0 install with a table and rows: they stay readable after the update
CREATE EXTENSION kvs_fdw VERSION '0.2.0';
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
CREATE FOREIGN TABLE up_mid (k int, v text) SERVER kvs;
INSERT INTO up_mid SELECT g, 'v' || g FROM generate_series(1, 100) g;
ALTER EXTENSION kvs_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw';
SELECT count(*), max(v) FROM up_mid;
-- 0.4.0's functions work on the updated install
BEGIN;
DELETE FROM up_mid WHERE k <= 10;
SELECT * FROM kvs_fdw_pending('up_mid');
ROLLBACK;
SELECT end_lsn >= flushed_lsn AS lsns_in_order FROM kvs_fdw_journal_stats();
SELECT kvs_fdw_mode();
SELECT count(*) FILTER (WHERE file = (SELECT file FROM kvs_fdw_stats('up_mid'))) AS up_mid_rows,
       count(*) FILTER (WHERE file IS NULL) AS total_rows,
       bool_and(ring_reuses = 0) AS no_ring_reuses
  FROM kvs_fdw_cache_stats();
CREATE TABLE objs AS :objs_query;
SELECT string_agg(obj, E'\n' ORDER BY obj) AS mid_objs FROM objs \gset
\c kvs_upgrade_new
CREATE EXTENSION kvs_fdw;
CREATE TABLE objs AS :objs_query;
SELECT count(*) > 0 AS has_objects,
       count(*) FILTER (WHERE obj LIKE 'relation kvs_fdw_buffercache acl %pg_monitor=r/%') AS view_granted
  FROM objs;
-- compare through the old databases' lists, exported as text
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'old_objs', E'\n'))
ORDER BY 1;
SELECT unnest(string_to_array(:'old_objs', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs
ORDER BY 1;
SELECT obj AS only_in_fresh_install FROM objs
EXCEPT SELECT unnest(string_to_array(:'mid_objs', E'\n'))
ORDER BY 1;
SELECT unnest(string_to_array(:'mid_objs', E'\n')) AS only_in_updated_from_020
EXCEPT SELECT obj FROM objs
ORDER BY 1;
\c :regdb
DROP DATABASE kvs_upgrade_old;
DROP DATABASE kvs_upgrade_mid;
DROP DATABASE kvs_upgrade_new;
