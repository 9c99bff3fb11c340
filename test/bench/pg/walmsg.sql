-- test/bench/pg/walmsg.sql - durable.sh --ceiling: a commit whose only write
-- is one transactional WAL record of :bytes bytes (pg_logical_emit_message),
-- the size of a kvs journal record of one small update: what a commit would
-- cost if kvs's page images went into PostgreSQL's WAL, flushed with the
-- commit record, and commits of one table did not wait for each other.
-- @T@ and @KEY@ are unused.
SELECT pg_logical_emit_message(true, 'kvs', repeat('x', :bytes)) IS NOT NULL;
