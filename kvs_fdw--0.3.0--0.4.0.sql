/* kvs_fdw--0.3.0--0.4.0.sql - upgrade of the kvs_fdw extension from 0.3.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.4.0'" to load this file. \quit

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
