/* kvs_fdw--0.1.0--0.2.0.sql - upgrade of the kvs_fdw extension from 0.1.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.2.0'" to load this file. \quit

-- the DROP clean-up fires under session_replication_role = replica too
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;

-- ---- issue 8: key display, key column, salvage (items 7, 15) -------------
-- kvs_fdw_page gains key_value, the key as its column's type prints it
-- (NULL for a key that does not decode).  Its result type changes, so it is
-- dropped and created again; kept in this block so parallel changes merge.
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
