#!/bin/bash
# test/fdw/shards.sh - a kvs table sharded over two servers behind a
# postgres_fdw coordinator (TAP output).
#
# Runs test/shards --tap on 2 shards and 20,000 rows: throwaway clusters (two
# shards with kvs_fdw, a coordinator with postgres_fdw and a hash-partitioned
# table over the shards' kvs tables, a heap reference table with the same
# rows), and asserts each of its checks: a key lookup pruned to one partition
# whose remote SQL selects by key and runs as a kvs lookup on the shard; a scan
# of every shard at once (Append of Async Foreign Scans); a GROUP BY pushed
# down per partition (enable_partitionwise_aggregate); an UPDATE and a DELETE
# postgres_fdw does row by row (SELECT ... ctid ... FOR UPDATE, then
# ... WHERE ctid = $1) changing exactly the rows they should; counts and
# checksums equal to the reference after each step; an UPDATE of the
# partition key leaving the row on the wrong shard without a guard, and
# refused with 0A000 with tools/partition_key_guard.sql; no crash in any
# server log.  Every server is stopped at the end (test/shards' trap).
#
# Assumes the extension is built and installed (test/run does that first).
# Environment:
#   KVS_SHARDS_PORT  the coordinator's port; shard i listens on it + i
#                    (default 5621)
set -u

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
exec "$ROOT/test/shards" --tap --no-build --shards 2 --rows 20000 --port "${KVS_SHARDS_PORT:-5621}"
