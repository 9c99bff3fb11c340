-- 00_mode_shared: this run is on a server started with
-- shared_preload_libraries = 'kvs_fdw' (test/regress-shared.conf), so every
-- backend uses the one kvs page pool in shared memory (shared mode).  Without
-- this check a run against a server that lacks the preload would test the
-- local mode a second time and pass.
CREATE EXTENSION kvs_fdw;
SELECT kvs_fdw_mode() AS mode, current_setting('shared_preload_libraries') AS preload;
DROP EXTENSION kvs_fdw;
