-- 17_shared: the shared cache's SQL objects as a server without
-- shared_preload_libraries = 'kvs_fdw' shows them (local mode: each backend
-- has its own caches).  Shared mode itself runs in a preloaded throwaway
-- cluster (test/fdw/shmem.sh).
SELECT kvs_fdw_mode();
-- cache_policy is a superuser setting here (a postmaster one when preloaded)
SELECT context FROM pg_settings WHERE name = 'kvs_fdw.cache_policy';
-- the shared pool's settings exist only when preloaded
SELECT count(*) FROM pg_settings WHERE name LIKE 'kvs_fdw.shared%';

CREATE FOREIGN TABLE sh_t (k int, v text) SERVER kvs;
INSERT INTO sh_t SELECT g, repeat('x', 50) || g FROM generate_series(1, 500) g;
SELECT count(*) FROM sh_t;
-- no frames to show: this backend's caches are not in shared memory
SELECT count(*) FROM kvs_fdw_buffercache;
-- the columns, as pg_buffercache's
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'kvs_fdw_buffercache'::regclass AND attnum > 0 ORDER BY attnum;
-- this backend's counters, a row per open file and a total; no ring here
SELECT file IS NULL AS total, frames > 0 AS has_frames, reads > 0 AS has_read,
       ring_reuses
  FROM kvs_fdw_cache_stats()
 WHERE file IS NULL OR file = (SELECT file FROM kvs_fdw_stats('sh_t'))
 ORDER BY 1;

-- kvs_fdw_buffercache is pg_monitor's only (as pg_buffercache); resetting
-- this backend's own counters needs no privilege in local mode
CREATE ROLE kvs_sh_nobody NOLOGIN;
CREATE ROLE kvs_sh_monitor NOLOGIN IN ROLE pg_monitor;
SET ROLE kvs_sh_nobody;
SELECT count(*) FROM kvs_fdw_buffercache;
SELECT count(*) FROM kvs_fdw_buffercache_frames();
SELECT kvs_fdw_mode();
SELECT kvs_fdw_reset_stats();
SELECT kvs_fdw_adopt('sh_t');
RESET ROLE;
SET ROLE kvs_sh_monitor;
SELECT count(*) FROM kvs_fdw_buffercache;
SELECT count(*) FROM kvs_fdw_buffercache_frames();
RESET ROLE;
-- (in shared mode the reset was refused: the cluster's counters stay)
SELECT hits = 0 AND reads = 0 AS reset FROM kvs_fdw_cache_stats() WHERE file IS NULL;
DROP ROLE kvs_sh_nobody;
DROP ROLE kvs_sh_monitor;

-- files' owners are checked in shared mode only: nothing to adopt here
SELECT kvs_fdw_adopt('sh_t');

-- no writers' lock (objsubid 27510) held between statements: in local mode
-- flock excludes writers, in shared mode it lasts a write section; the row
-- locks of the INSERT do last: the key (27511) and the table's intent lock
-- (27512)
BEGIN;
INSERT INTO sh_t VALUES (1000, 'in a transaction');
SELECT objsubid, mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
 ORDER BY 1, 2;
COMMIT;
DROP FOREIGN TABLE sh_t;
