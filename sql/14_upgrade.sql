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

-- installing the old version and updating gives the objects of a fresh install
SELECT current_database() AS regdb \gset
CREATE DATABASE kvs_upgrade_old;
CREATE DATABASE kvs_upgrade_new;
\c kvs_upgrade_old
CREATE EXTENSION kvs_fdw VERSION '0.1.0';
SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'kvs_fdw_sql_drop';
ALTER EXTENSION kvs_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'kvs_fdw';
CREATE TABLE objs_old AS
  SELECT pg_describe_object(classid, objid, 0) AS obj
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
    FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  UNION ALL
  SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtenabled::text FROM pg_event_trigger;
\c kvs_upgrade_new
CREATE EXTENSION kvs_fdw;
CREATE TABLE objs_new AS
  SELECT pg_describe_object(classid, objid, 0) AS obj
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
    FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  UNION ALL
  SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtenabled::text FROM pg_event_trigger;
SELECT count(*) > 0 AS has_objects FROM objs_new;
-- compare through the old database's list, exported as text
\c kvs_upgrade_old
SELECT string_agg(obj, E'\n' ORDER BY obj) AS old_objs FROM objs_old \gset
\c kvs_upgrade_new
SELECT obj AS only_in_fresh_install FROM objs_new
EXCEPT SELECT unnest(string_to_array(:'old_objs', E'\n'))
ORDER BY 1;
SELECT unnest(string_to_array(:'old_objs', E'\n')) AS only_in_updated
EXCEPT SELECT obj FROM objs_new
ORDER BY 1;
\c :regdb
DROP DATABASE kvs_upgrade_old;
DROP DATABASE kvs_upgrade_new;
