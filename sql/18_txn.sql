-- 18_txn: kvs writes follow the transaction.  The transaction sees its own
-- INSERT/UPDATE/DELETE/COPY/TRUNCATE at once (lookups, scans, joins,
-- RETURNING), other sessions only after COMMIT; ROLLBACK, ROLLBACK TO
-- SAVEPOINT and a failed statement discard exactly their writes.  The other
-- session is a dblink connection to this server.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT format('dbname=%s user=%s port=%s host=%s', current_database(), current_user,
              current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1))
       AS conn \gset
SELECT dblink_connect('other', :'conn');
CREATE FOREIGN TABLE tx (id int, v text) SERVER kvs;
CREATE TABLE tx_heap (id int, w text);
INSERT INTO tx VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO tx_heap VALUES (1, 'h1'), (2, 'h2'), (4, 'h4');
-- what the other session sees
CREATE FUNCTION other_rows() RETURNS TABLE (id int, v text) LANGUAGE sql AS $$
  SELECT * FROM dblink('other', 'SELECT id, v FROM tx ORDER BY id') AS r(id int, v text)
$$;

-- ---- own writes are seen at once, by nobody else ---------------------------
BEGIN;
INSERT INTO tx VALUES (4, 'four');
UPDATE tx SET v = 'TWO' WHERE id = 2;           -- by key (direct)
UPDATE tx SET v = v || '+' WHERE v LIKE 't%';   -- scan + update
DELETE FROM tx WHERE id = 1 RETURNING *;
SELECT * FROM tx ORDER BY id;                   -- full scan
SELECT * FROM tx WHERE id = 4;                  -- lookup
SELECT * FROM tx WHERE id = 1;                  -- deleted here
SELECT * FROM tx WHERE id IN (1, 2, 3, 4) ORDER BY id;
SELECT t.id, t.v, h.w FROM tx t JOIN tx_heap h USING (id) ORDER BY id;
UPDATE tx SET v = v || '!' WHERE id = 4 RETURNING *;
INSERT INTO tx VALUES (4, 'again');             -- own row: 23505
ROLLBACK;
SELECT * FROM tx ORDER BY id;

BEGIN;
INSERT INTO tx VALUES (4, 'four');
UPDATE tx SET v = 'TWO' WHERE id = 2;
DELETE FROM tx WHERE id = 1;
SELECT * FROM other_rows();                     -- the committed rows only
-- kvs_fdw_stats shows the committed file; kvs_fdw_pending what waits
SELECT records FROM kvs_fdw_stats('tx');
SELECT keys, bytes > 0 AS has_bytes, truncated FROM kvs_fdw_pending('tx');
COMMIT;
SELECT * FROM other_rows();
SELECT records FROM kvs_fdw_stats('tx');
SELECT keys, bytes, truncated FROM kvs_fdw_pending('tx');
SELECT * FROM kvs_fdw_check('tx');

-- ---- ROLLBACK undoes every kind of write ------------------------------------
BEGIN;
INSERT INTO tx SELECT g, 'g' || g FROM generate_series(10, 19) g;
COPY tx FROM STDIN;
20	copied
\.
UPDATE tx SET v = 'changed';
DELETE FROM tx WHERE id = 3;
SELECT count(*) FROM tx;
ROLLBACK;
SELECT * FROM tx ORDER BY id;

-- ---- savepoints -------------------------------------------------------------
BEGIN;
INSERT INTO tx VALUES (5, 'five');
SAVEPOINT a;
UPDATE tx SET v = 'five in a' WHERE id = 5;
INSERT INTO tx VALUES (6, 'six');
SAVEPOINT b;
DELETE FROM tx WHERE id IN (2, 5);
INSERT INTO tx VALUES (7, 'seven');
SELECT * FROM tx ORDER BY id;
ROLLBACK TO SAVEPOINT b;                        -- 2 and 5 back, 7 gone
SELECT * FROM tx ORDER BY id;
SAVEPOINT c;
UPDATE tx SET v = 'six in c' WHERE id = 6;
RELEASE SAVEPOINT c;                            -- kept in a
ROLLBACK TO SAVEPOINT a;                        -- undoes a, b and c
SELECT * FROM tx ORDER BY id;
SAVEPOINT d;
INSERT INTO tx VALUES (8, 'eight');
RELEASE SAVEPOINT d;
COMMIT;
SELECT * FROM other_rows();

-- a rolled-back savepoint's insert makes the key free again
BEGIN;
SAVEPOINT s;
INSERT INTO tx VALUES (9, 'nine');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM tx WHERE id = 9;
INSERT INTO tx VALUES (9, 'nine, second try');
COMMIT;
SELECT * FROM tx WHERE id = 9;

-- ---- a failed statement in a savepoint (psql's ON_ERROR_ROLLBACK) ---------
\set ON_ERROR_ROLLBACK on
BEGIN;
INSERT INTO tx VALUES (30, 'kept');
INSERT INTO tx VALUES (31, 'lost'), (2, 'duplicate');   -- 23505: none of it
UPDATE tx SET id = id + 100 WHERE id IN (30, 9);        -- 130 and 109
UPDATE tx SET id = 109 WHERE id = 130;                  -- 109 exists: 23505
INSERT INTO tx VALUES (32, 'kept too');
SELECT * FROM tx ORDER BY id;
COMMIT;
\set ON_ERROR_ROLLBACK off
SELECT * FROM other_rows();

-- ---- failed multi-row statements leave nothing -----------------------------
INSERT INTO tx SELECT g, 'batch' FROM generate_series(40, 49) g
  UNION ALL SELECT 2, 'duplicate';
COPY tx FROM STDIN;
50	copied
51	copied
2	duplicate
\.
UPDATE tx SET v = CASE WHEN id = 32 THEN (1 / 0)::text ELSE 'updated' END;
SELECT * FROM tx ORDER BY id;
-- and in a transaction, an error leaves the transaction nothing of kvs
BEGIN;
INSERT INTO tx VALUES (60, 'sixty');
INSERT INTO tx VALUES (2, 'duplicate');
COMMIT;
SELECT count(*) FROM tx WHERE id = 60;

-- ---- key updates and UPDATE t SET id = id + 1 inside a transaction --------
UPDATE tx SET id = id + 1;                      -- every key moves, none twice
SELECT * FROM tx ORDER BY id;
BEGIN;
UPDATE tx SET id = id + 1000;
SELECT * FROM tx ORDER BY id;
UPDATE tx SET id = id - 1000 WHERE id > 1000 RETURNING *;
UPDATE tx SET id = 500 WHERE id = 3;
SELECT * FROM tx WHERE id IN (3, 500);
ROLLBACK;
SELECT * FROM tx ORDER BY id;
-- INSERT ... SELECT from the same table sees no row it inserts itself
BEGIN;
INSERT INTO tx SELECT id + 200, v FROM tx;
SELECT count(*) FROM tx;
COMMIT;
SELECT count(*), min(id), max(id) FROM tx;
DELETE FROM tx WHERE id > 200;

-- ---- TRUNCATE in a transaction ---------------------------------------------
-- (it holds ACCESS EXCLUSIVE on the table until the transaction ends, as for
-- heap tables: other sessions' reads of the table wait)
BEGIN;
TRUNCATE tx;
SELECT count(*) FROM tx;
INSERT INTO tx VALUES (1, 'after truncate'), (3, 'a key the file has');
SELECT * FROM tx ORDER BY id;
SELECT * FROM tx WHERE id IN (1, 2, 3) ORDER BY id;
SELECT keys, truncated FROM kvs_fdw_pending('tx');
ROLLBACK;
SELECT * FROM tx ORDER BY id;
BEGIN;
SAVEPOINT s;
TRUNCATE tx;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM tx;
TRUNCATE tx;
INSERT INTO tx VALUES (1, 'only row');
COMMIT;
SELECT * FROM other_rows();
SELECT * FROM kvs_fdw_check('tx');
INSERT INTO tx VALUES (2, 'two'), (3, 'three');

-- ---- two tables in one transaction: both or neither ------------------------
CREATE FOREIGN TABLE tx2 (id int, v text) SERVER kvs;
BEGIN;
INSERT INTO tx2 VALUES (1, 'a');
UPDATE tx SET v = 'with tx2' WHERE id = 1;
INSERT INTO tx_heap VALUES (5, 'h5');
ROLLBACK;
SELECT (SELECT count(*) FROM tx2) AS tx2_rows, (SELECT v FROM tx WHERE id = 1) AS tx_v,
       (SELECT count(*) FROM tx_heap WHERE id = 5) AS heap_rows;
BEGIN;
INSERT INTO tx2 VALUES (1, 'a');
UPDATE tx SET v = 'with tx2' WHERE id = 1;
INSERT INTO tx_heap VALUES (5, 'h5');
COMMIT;
SELECT (SELECT count(*) FROM tx2) AS tx2_rows, (SELECT v FROM tx WHERE id = 1) AS tx_v,
       (SELECT count(*) FROM tx_heap WHERE id = 5) AS heap_rows;
-- synchronous_commit = off commits too, and a transaction that wrote kvs
-- still flushes the journal (the write-back follows at once, in place: an
-- asynchronous commit record lost to a crash would leave its kvs half)
SELECT flushes + flush_shared AS jf_async FROM kvs_fdw_journal_stats() \gset
SET synchronous_commit = off;
INSERT INTO tx2 VALUES (2, 'async');
RESET synchronous_commit;
SELECT flushes + flush_shared > :jf_async AS async_commit_flushed FROM kvs_fdw_journal_stats();
SELECT * FROM dblink('other', 'SELECT id, v FROM tx2 ORDER BY id') AS r(id int, v text);

-- ---- a second writer of our rows waits for our row locks ----------------
-- The other session's UPDATE, DELETE and INSERT of keys we wrote wait for
-- our transaction (row locks); with lock_timeout it gives up, its error is
-- only a NOTICE here (fail_on_error false), and our writes commit.  (The
-- commit-time 40001 check, reached by bulk inserts past the locked keys, is
-- the isolation spec iso_insert's case.)
SELECT dblink_exec('other', 'SET lock_timeout = ''1s''');
\set VERBOSITY terse
BEGIN;
UPDATE tx SET v = 'mine' WHERE id = 2;
SELECT dblink_exec('other', 'UPDATE tx SET v = ''theirs'' WHERE id = 2', false);
DELETE FROM tx WHERE id = 3 RETURNING *;
SELECT dblink_exec('other', 'DELETE FROM tx WHERE id = 3', false);
INSERT INTO tx VALUES (61, 'mine');
SELECT dblink_exec('other', 'INSERT INTO tx VALUES (61, ''theirs'')', false);
COMMIT;
\set VERBOSITY default
SELECT * FROM tx WHERE id IN (2, 3, 61) ORDER BY id;
-- once we committed, their statements work on the committed rows
SELECT dblink_exec('other', 'UPDATE tx SET v = v || '' theirs'' WHERE id = 2');
\set VERBOSITY terse
SELECT dblink_exec('other', 'INSERT INTO tx VALUES (61, ''theirs'')', false);
\set VERBOSITY default
SELECT * FROM tx WHERE id IN (2, 3, 61) ORDER BY id;
DELETE FROM tx WHERE id = 61;
INSERT INTO tx VALUES (3, 'three');
UPDATE tx SET v = 'two' WHERE id = 2;

-- ---- a cancel during COMMIT keeps nothing ----------------------------------
-- kvs_fdw.debug_flush_delay also sleeps in the commit's write section; the
-- other session cancels us there
SELECT dblink_connect('canceller', :'conn');
BEGIN;
INSERT INTO tx VALUES (70, 'cancelled in commit');
SET LOCAL kvs_fdw.debug_flush_delay = '60s';
SELECT dblink_send_query('canceller',
    format('SELECT pg_cancel_backend(%s) FROM pg_sleep(1)', pg_backend_pid()));
COMMIT;
SELECT * FROM dblink_get_result('canceller') AS r(cancelled boolean);
SELECT dblink_disconnect('canceller');
SELECT count(*) FROM tx WHERE id = 70;
SELECT count(*) FROM other_rows() WHERE id = 70;

-- ---- PREPARE TRANSACTION ---------------------------------------------------
BEGIN;
INSERT INTO tx VALUES (80, 'prepared?');
PREPARE TRANSACTION 'txn18';
SELECT count(*) FROM tx WHERE id = 80;
BEGIN;
SELECT count(*) FROM tx;
PREPARE TRANSACTION 'txn18_read';
COMMIT PREPARED 'txn18_read';

-- ---- isolation levels: kvs tables give read committed ----------------------
SHOW kvs_fdw.weak_isolation;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tx;                        -- one WARNING
SELECT count(*) FROM tx WHERE id = 1;           -- not again
INSERT INTO tx VALUES (90, 'rr');
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM tx;                        -- again, per transaction
COMMIT;
SET kvs_fdw.weak_isolation = error;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tx;
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tx_heap;                   -- heap alone: fine
DELETE FROM tx WHERE id = 90;
ROLLBACK;
BEGIN;                                          -- read committed: fine
SELECT count(*) FROM tx;
COMMIT;
SET kvs_fdw.weak_isolation = allow;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM tx;
COMMIT;
RESET kvs_fdw.weak_isolation;
SET kvs_fdw.weak_isolation = sometimes;

-- ---- a write set past kvs_fdw.pending_memory spills to a temporary file ---
SET kvs_fdw.pending_memory = '64kB';
CREATE FOREIGN TABLE spl (id int, v text) SERVER kvs;
CREATE TABLE spl_heap (id int, v text);
INSERT INTO spl SELECT g, 'committed' FROM generate_series(1, 100) g;
INSERT INTO spl_heap SELECT g, 'committed' FROM generate_series(1, 100) g;
CREATE FUNCTION spl_differs() RETURNS TABLE (only_kvs bigint, only_heap bigint) LANGUAGE sql AS $$
  SELECT (SELECT count(*) FROM (SELECT * FROM spl EXCEPT SELECT * FROM spl_heap) d),
         (SELECT count(*) FROM (SELECT * FROM spl_heap EXCEPT SELECT * FROM spl) d)
$$;
BEGIN;
INSERT INTO spl SELECT g, repeat('x', 100) || g FROM generate_series(101, 5000) g;
INSERT INTO spl_heap SELECT g, repeat('x', 100) || g FROM generate_series(101, 5000) g;
SELECT keys >= 4900 AS all_keys, spilled_runs > 0 AS spilled FROM kvs_fdw_pending('spl');
SAVEPOINT s;
DELETE FROM spl WHERE id % 3 = 0;
UPDATE spl SET v = 'changed' WHERE id % 5 = 0;
SELECT count(*) FROM spl;
ROLLBACK TO SAVEPOINT s;                        -- its spilled versions too
SELECT count(*), count(*) FILTER (WHERE v = 'changed') FROM spl;
UPDATE spl SET v = 'u' || id WHERE id % 7 = 0;
UPDATE spl_heap SET v = 'u' || id WHERE id % 7 = 0;
DELETE FROM spl WHERE id % 11 = 0;
DELETE FROM spl_heap WHERE id % 11 = 0;
UPDATE spl SET id = id + 10000 WHERE id > 4990;
UPDATE spl_heap SET id = id + 10000 WHERE id > 4990;
SAVEPOINT d;
INSERT INTO spl VALUES (3, 'spilled key');      -- 23505 from a spilled run
ROLLBACK TO SAVEPOINT d;
INSERT INTO spl VALUES (11, 'deleted, then again');
INSERT INTO spl_heap VALUES (11, 'deleted, then again');
SELECT * FROM spl WHERE id IN (3, 7, 11, 14991, 4991) ORDER BY id;
SELECT count(*) FROM spl;
SELECT * FROM spl_differs();
COMMIT;
RESET kvs_fdw.pending_memory;
SELECT count(*) FROM spl;
SELECT * FROM spl_differs();
SELECT * FROM kvs_fdw_check('spl');
DROP FOREIGN TABLE spl;
DROP TABLE spl_heap;
DROP FUNCTION spl_differs();

-- kvs_fdw_journal_stats() counts every backend's records and flushes: a
-- commit the other session makes shows here, though this backend wrote none
SELECT records AS jr0, flushes + flush_shared AS jf0 FROM kvs_fdw_journal_stats() \gset
SELECT dblink_exec('other', 'INSERT INTO tx VALUES (9001, ''counted'')');
SELECT records = :jr0 + 1 AS one_more_record, flushes + flush_shared > :jf0 AS flushed,
       end_lsn >= flushed_lsn AND flushed_lsn >= checkpoint_lsn AS lsns_in_order
  FROM kvs_fdw_journal_stats();

SELECT dblink_disconnect('other');
SELECT * FROM kvs_fdw_check('tx');
DROP FOREIGN TABLE tx, tx2;
DROP TABLE tx_heap;
DROP FUNCTION other_rows();
