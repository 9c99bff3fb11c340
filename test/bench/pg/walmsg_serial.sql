-- test/bench/pg/walmsg_serial.sql - durable.sh --ceiling: walmsg.sql with one
-- transaction-level lock held from before the record to the end of the
-- commit (its flush included), as a kvs commit holds its file's write
-- section: commits of one table one at a time.  @T@ and @KEY@ are unused.
BEGIN;
SELECT pg_advisory_xact_lock(27509);
SELECT pg_logical_emit_message(true, 'kvs', repeat('x', :bytes)) IS NOT NULL;
COMMIT;
