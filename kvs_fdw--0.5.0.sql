/* kvs_fdw--0.5.0.sql - install script of the kvs_fdw extension */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION kvs_fdw" to load this file. \quit

CREATE FUNCTION kvs_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kvs_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER kvs_fdw
  HANDLER kvs_fdw_handler
  VALIDATOR kvs_fdw_validator;

-- file and hashing statistics of a table's kvs file
CREATE FUNCTION kvs_fdw_stats(rel regclass,
    OUT file text, OUT file_bytes bigint, OUT pages bigint, OUT buckets bigint,
    OUT level integer, OUT split_pointer bigint, OUT records bigint,
    OUT overflow_pages bigint, OUT value_pages bigint, OUT dir_pages bigint,
    OUT free_pages bigint, OUT load_factor double precision, OUT fillfactor integer)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- integrity walk of a table's kvs file: no rows when clean
CREATE FUNCTION kvs_fdw_check(rel regclass)
RETURNS TABLE (page bigint, problem text)
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- one page of a table's kvs file, like pageinspect: a row per slot
CREATE FUNCTION kvs_fdw_page(rel regclass, page bigint)
RETURNS TABLE (page bigint, type text, checksum_ok boolean, checksum text,
               next_page bigint, nslots integer, free_bytes integer, bucket bigint,
               slot integer, slot_offset integer, slot_length integer, hash text,
               flags integer, value_length bigint, stamp bigint, key bytea)
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- the kvs caches, a row per file and a total row (file NULL): this
-- backend's (local mode), or the shared pool's, cluster-wide (shared mode)
CREATE FUNCTION kvs_fdw_cache_stats()
RETURNS TABLE (file text, frames bigint, hits bigint, reads bigint,
               evictions bigint, writes bigint, invalidations bigint,
               ring_reuses bigint)
AS 'MODULE_PATHNAME'
LANGUAGE C;

CREATE FUNCTION kvs_fdw_reset_stats()
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C;

-- DROP FOREIGN TABLE removes the table's data-directory file at commit.
CREATE FUNCTION kvs_fdw_forget(oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION kvs_fdw_forget(oid) FROM PUBLIC;

CREATE FUNCTION kvs_fdw_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT objid FROM pg_event_trigger_dropped_objects()
             WHERE classid = 'pg_class'::regclass AND object_type = 'foreign table'
    LOOP
        PERFORM @extschema@.kvs_fdw_forget(r.objid);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION kvs_fdw_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER kvs_fdw_sql_drop ON sql_drop
    EXECUTE FUNCTION kvs_fdw_sql_drop();
-- fire under session_replication_role = replica too: a dropped table's file
-- must go whatever the role (event triggers default to ENABLE ORIGIN)
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;


-- ALTER FOREIGN TABLE / ALTER TABLE that add, drop or retype columns of a kvs
-- table: before it, a file with rows records its columns' attnums; after it,
-- a change the file cannot follow is refused (and rolled back), and an added
-- column with a default gets the option "missing" (what stored rows read)
CREATE FUNCTION kvs_fdw_alter_start()
RETURNS event_trigger
AS 'MODULE_PATHNAME'
LANGUAGE C;
REVOKE ALL ON FUNCTION kvs_fdw_alter_start() FROM PUBLIC;

CREATE FUNCTION kvs_fdw_alter_end()
RETURNS event_trigger
AS 'MODULE_PATHNAME'
LANGUAGE C;
REVOKE ALL ON FUNCTION kvs_fdw_alter_end() FROM PUBLIC;

CREATE EVENT TRIGGER kvs_fdw_alter_start ON ddl_command_start
    WHEN TAG IN ('ALTER FOREIGN TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION kvs_fdw_alter_start();
CREATE EVENT TRIGGER kvs_fdw_alter_end ON ddl_command_end
    WHEN TAG IN ('ALTER FOREIGN TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION kvs_fdw_alter_end();
-- a table's file must follow its columns whatever session_replication_role
ALTER EVENT TRIGGER kvs_fdw_alter_start ENABLE ALWAYS;
ALTER EVENT TRIGGER kvs_fdw_alter_end ENABLE ALWAYS;
-- ---- key display, key column, salvage -----------------------------------
-- kvs_fdw_page gains key_value, the key as its column's type prints it
-- (NULL for a key that does not decode).  Its result type changes, so it is
-- dropped and created again.
DROP FUNCTION kvs_fdw_page(regclass, bigint);
CREATE FUNCTION kvs_fdw_page(rel regclass, page bigint)
RETURNS TABLE (page bigint, type text, checksum_ok boolean, checksum text,
               next_page bigint, nslots integer, free_bytes integer, bucket bigint,
               slot integer, slot_offset integer, slot_length integer, hash text,
               flags integer, value_length bigint, stamp bigint, key bytea,
               key_value text)
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- the name of a table's key column (key 'true', else the first column)
CREATE FUNCTION kvs_fdw_key_column(rel regclass)
RETURNS name
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- every record of every intact page of a table's file (damaged or not),
-- decoded as rows of the table; called with a row of it, so not STRICT:
--   INSERT INTO fresh SELECT * FROM kvs_fdw_salvage(NULL::damaged);
CREATE FUNCTION kvs_fdw_salvage(anyelement)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME'
LANGUAGE C;

-- the same, each row with the page and slot it was found in
CREATE FUNCTION kvs_fdw_salvage_pages(anyelement, OUT page bigint,
                                      OUT slot integer, OUT rec anyelement)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C;
-- kvs_fdw_compact: rewrite a table's file into a new one
-- sized for its records and swap it in atomically; the table's owner only
CREATE FUNCTION kvs_fdw_compact(rel regclass,
    OUT records bigint, OUT bytes_before bigint, OUT bytes_after bigint)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;
-- ---- the shared cache (0.3.0) -------------------------------------------
-- 'shared' when kvs_fdw is in shared_preload_libraries (one kvs cache in
-- shared memory for the cluster), else 'local' (a cache per backend)
CREATE FUNCTION kvs_fdw_mode()
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE;

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

-- 0.4.0: writes follow the transaction.  The journal's counters as this
-- backend sees them (pg_monitor only), and this transaction's pending
-- (uncommitted) writes to one table; kvs_fdw_stats shows the committed file.
CREATE FUNCTION kvs_fdw_journal_stats(
    OUT records bigint, OUT bytes bigint, OUT flushes bigint,
    OUT flush_shared bigint, OUT checkpoints bigint,
    OUT recovered_records bigint, OUT recovered_pages bigint,
    OUT end_lsn bigint, OUT flushed_lsn bigint, OUT checkpoint_lsn bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'kvs_fdw_journal_stats_sql'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION kvs_fdw_journal_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kvs_fdw_journal_stats() TO pg_monitor;

CREATE FUNCTION kvs_fdw_pending(rel regclass,
    OUT keys bigint, OUT bytes bigint, OUT truncated boolean,
    OUT spilled_runs integer)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- ---- orphaned files (0.5.0) ---------------------------------------------
-- A command that drops the extension itself (DROP EXTENSION kvs_fdw CASCADE,
-- DROP SCHEMA of its schema, DROP OWNED of its owner) drops the sql_drop
-- trigger above with it, which then cannot fire: this trigger records, before
-- such a command runs, the kvs tables of the database with a data-directory
-- file, and the library removes at commit the files of those the command
-- dropped (nothing of the extension is needed then).
CREATE FUNCTION kvs_fdw_drop_start()
RETURNS event_trigger
AS 'MODULE_PATHNAME'
LANGUAGE C;
REVOKE ALL ON FUNCTION kvs_fdw_drop_start() FROM PUBLIC;

CREATE EVENT TRIGGER kvs_fdw_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP FOREIGN DATA WRAPPER', 'DROP OWNED',
                 'DROP SCHEMA')
    EXECUTE FUNCTION kvs_fdw_drop_start();
ALTER EVENT TRIGGER kvs_fdw_drop_start ENABLE ALWAYS;

-- data-directory kvs files no table of this database uses: 'orphan' (its
-- database is gone, or no table here has it) or 'check in database X';
-- pg_monitor only
CREATE FUNCTION kvs_fdw_orphans()
RETURNS TABLE (path text, database_oid oid, database_name text,
               table_oid oid, size bigint, status text)
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION kvs_fdw_orphans() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kvs_fdw_orphans() TO pg_monitor;

-- remove one orphan kvs_fdw_orphans lists (at commit); superusers only
CREATE FUNCTION kvs_fdw_remove_orphan(path text)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION kvs_fdw_remove_orphan(text) FROM PUBLIC;
