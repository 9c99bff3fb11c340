/* kvs_fdw--0.1.0--0.2.0.sql - upgrade of the kvs_fdw extension from 0.1.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.2.0'" to load this file. \quit

-- the DROP clean-up fires under session_replication_role = replica too
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
