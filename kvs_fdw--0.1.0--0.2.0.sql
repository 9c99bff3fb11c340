/* kvs_fdw--0.1.0--0.2.0.sql - upgrade of the kvs_fdw extension from 0.1.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.2.0'" to load this file. \quit

-- the DROP clean-up fires under session_replication_role = replica too
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;

-- kvs_fdw_compact (issue 8, item 14): rewrite a table's file into a new one
-- sized for its records and swap it in atomically; the table's owner only
CREATE FUNCTION kvs_fdw_compact(rel regclass,
    OUT records bigint, OUT bytes_before bigint, OUT bytes_after bigint)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;
