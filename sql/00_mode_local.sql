-- 00_mode_local: this run is on a server without kvs_fdw in
-- shared_preload_libraries, so each backend caches kvs pages in its own memory
-- (local mode).  test/run runs the suite a second time on a preloaded server,
-- where 00_mode_shared runs instead of this file (Makefile: REGRESS_MODE).
CREATE EXTENSION kvs_fdw;
SELECT kvs_fdw_mode() AS mode, current_setting('shared_preload_libraries') AS preload;
DROP EXTENSION kvs_fdw;
