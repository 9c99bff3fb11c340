/* kvs_fdw--0.4.0--0.5.0.sql - upgrade of the kvs_fdw extension from 0.4.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.5.0'" to load this file. \quit

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
