/* kvs_fdw--0.2.0--0.3.0.sql - upgrade of the kvs_fdw extension from 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.3.0'" to load this file. \quit

-- ---- the shared cache (0.3.0) -------------------------------------------
-- 'shared' when kvs_fdw is in shared_preload_libraries (one kvs cache in
-- shared memory for the cluster), else 'local' (a cache per backend)
CREATE FUNCTION kvs_fdw_mode()
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE;

-- kvs_fdw_cache_stats gains ring_reuses (misses a bulk-read ring served);
-- in shared mode it shows the pool's cluster-wide counters.  Its result
-- type changes, so it is dropped and created again.
DROP FUNCTION kvs_fdw_cache_stats();
CREATE FUNCTION kvs_fdw_cache_stats()
RETURNS TABLE (file text, frames bigint, hits bigint, reads bigint,
               evictions bigint, writes bigint, invalidations bigint,
               ring_reuses bigint)
AS 'MODULE_PATHNAME'
LANGUAGE C;

-- one row per frame of the shared cache, like pg_buffercache (no rows in
-- local mode); pg_monitor only
CREATE FUNCTION kvs_fdw_buffercache_frames()
RETURNS TABLE (frame integer, tbl regclass, file_slot integer, page bigint,
               page_type text, dirty boolean, pins integer, usage integer,
               lru_rank integer)
AS 'MODULE_PATHNAME', 'kvs_fdw_buffercache'
LANGUAGE C;
REVOKE ALL ON FUNCTION kvs_fdw_buffercache_frames() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kvs_fdw_buffercache_frames() TO pg_monitor;

CREATE VIEW kvs_fdw_buffercache AS
  SELECT * FROM kvs_fdw_buffercache_frames();
REVOKE ALL ON kvs_fdw_buffercache FROM PUBLIC;
GRANT SELECT ON kvs_fdw_buffercache TO pg_monitor;

-- shared mode: take a table's kvs file over from the cluster its header
-- names as owner (a restored or copied cluster); superusers only
CREATE FUNCTION kvs_fdw_adopt(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION kvs_fdw_adopt(regclass) FROM PUBLIC;
