-- 19_rowlock: row locks as one session sees them (the isolation specs in
-- specs/ show them against other sessions): what pg_locks shows, that they
-- last until the transaction ends whatever else is released, a savepoint's
-- rollback releasing its own, escalation to one table lock.
CREATE FOREIGN TABLE rl (id int, n int) SERVER kvs;
INSERT INTO rl SELECT g, 0 FROM generate_series(1, 3000) g;
CREATE VIEW my_kvs_locks AS
  SELECT objsubid, mode, count(*) FROM pg_locks
   WHERE locktype = 'advisory' AND pid = pg_backend_pid()
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   GROUP BY 1, 2 ORDER BY 1, 2;

-- each statement kind: keys in ExclusiveLock (27511) or ShareLock, the
-- table tag (27512) in an intent mode
BEGIN;
UPDATE rl SET n = n + 1 WHERE id = 1;              -- direct modify
UPDATE rl SET n = n + 1 WHERE id = 2 RETURNING n;  -- by key, ordinary path
DELETE FROM rl WHERE id = 3;
INSERT INTO rl VALUES (3001, 0);
SELECT * FROM my_kvs_locks;
SELECT * FROM rl WHERE id IN (10, 11) ORDER BY id FOR SHARE;
SELECT * FROM my_kvs_locks;
-- pg_advisory_unlock_all does not drop them (nor would DISCARD ALL, which
-- cannot run in a transaction block)
SELECT pg_advisory_unlock_all();
SELECT * FROM my_kvs_locks;
COMMIT;
SELECT * FROM my_kvs_locks;

-- a locking scan locks only the rows it returns: the other conditions are
-- checked before the lock
BEGIN;
SELECT * FROM rl WHERE n = 1 ORDER BY id FOR UPDATE;
SELECT * FROM my_kvs_locks;
ROLLBACK;

-- a rolled-back savepoint releases the locks taken in it; a released
-- savepoint hands them to the transaction
BEGIN;
UPDATE rl SET n = n + 1 WHERE id = 20;
SAVEPOINT a;
UPDATE rl SET n = n + 1 WHERE id = 21;
SELECT * FROM my_kvs_locks;
ROLLBACK TO SAVEPOINT a;
SELECT * FROM my_kvs_locks;
SAVEPOINT b;
UPDATE rl SET n = n + 1 WHERE id = 22;
RELEASE SAVEPOINT b;
SELECT * FROM my_kvs_locks;
COMMIT;

-- escalation: past kvs_fdw.lock_escalation keys of one table, one
-- ExclusiveLock on the table tag and no more key locks, however many rows
SET kvs_fdw.lock_escalation = 100;
BEGIN;
UPDATE rl SET n = n + 1;
SELECT * FROM my_kvs_locks;
UPDATE rl SET n = n + 1 WHERE id = 2999;
SELECT * FROM my_kvs_locks;
COMMIT;
SELECT count(*), min(n), max(n) FROM rl;
-- an escalation inside a rolled-back savepoint is undone with it, and so is
-- its count of keys: the next two keys it locks are key locks, no escalation
BEGIN;
UPDATE rl SET n = n + 1 WHERE id <= 50 AND n >= 0;
SAVEPOINT a;
UPDATE rl SET n = n + 1 WHERE id > 50 AND n >= 0;
SELECT * FROM my_kvs_locks;
ROLLBACK TO SAVEPOINT a;
SELECT * FROM my_kvs_locks;
UPDATE rl SET n = n + 1 WHERE id IN (60, 61);
SELECT * FROM my_kvs_locks;
COMMIT;
-- 0: the whole table from the first row.  A bulk INSERT locks at most
-- max_locks_per_transaction (64) keys, then no more (several loaders of one
-- table at once could not escalate; a key another one inserts meanwhile
-- fails at COMMIT instead)
SET kvs_fdw.lock_escalation = 0;
BEGIN;
UPDATE rl SET n = n + 1 WHERE id = 5;
SELECT * FROM my_kvs_locks;
COMMIT;
RESET kvs_fdw.lock_escalation;
BEGIN;
INSERT INTO rl SELECT g, 0 FROM generate_series(10001, 30000) g;
SELECT * FROM my_kvs_locks;
COMMIT;
SELECT count(*) FROM rl;
SET kvs_fdw.lock_escalation = -1;   -- refused

-- FOR UPDATE of a kvs table in a join: the kvs scan locks each row it
-- returns, whether the join keeps it or not (here a hash join over the
-- whole table: escalated); a nested loop's lookups lock only the keys looked
-- up
CREATE TABLE rl_heap (id int);
INSERT INTO rl_heap VALUES (7), (8);
BEGIN;
SELECT rl.* FROM rl JOIN rl_heap USING (id) ORDER BY id FOR UPDATE OF rl;
SELECT * FROM my_kvs_locks;
COMMIT;
BEGIN;
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
SELECT rl.* FROM rl JOIN rl_heap USING (id) ORDER BY id FOR UPDATE OF rl;
SELECT * FROM my_kvs_locks;
COMMIT;
DROP TABLE rl_heap;
DROP FOREIGN TABLE rl;

-- an UPDATE in a WITH clause of a SELECT locks as a plain one; a key change
-- locks the old key (the scan) and the new one
CREATE FOREIGN TABLE rl2 (id int, n int) SERVER kvs;
INSERT INTO rl2 VALUES (1, 0), (2, 0);
BEGIN;
WITH u AS (UPDATE rl2 SET n = n + 1 WHERE id = 1 RETURNING *) SELECT * FROM u;
SELECT * FROM my_kvs_locks;
UPDATE rl2 SET id = id + 10 WHERE id = 2;
SELECT * FROM my_kvs_locks;
COMMIT;
SELECT * FROM rl2 ORDER BY id;
DROP FOREIGN TABLE rl2;

-- COPY FROM locks the keys it loads (before checking they are free)
CREATE FOREIGN TABLE rl4 (id int, v text) SERVER kvs;
BEGIN;
COPY rl4 FROM stdin;
1	one
2	two
\.
SELECT * FROM my_kvs_locks;
COMMIT;
DROP FOREIGN TABLE rl4;

-- a volatile condition runs once per row (PostgreSQL's rule), so it is not
-- checked before the lock: the scan locks every row it returns
CREATE FOREIGN TABLE rl3 (id int, n int) SERVER kvs;
INSERT INTO rl3 VALUES (1, 0), (2, 0), (3, 0);
CREATE FUNCTION rl3_calls() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('rl.calls', (coalesce(nullif(current_setting('rl.calls', true), ''), '0')::int + 1)::text, true);
  RETURN false;
END $$;
BEGIN;
UPDATE rl3 SET n = 1 WHERE rl3_calls();
SELECT current_setting('rl.calls') AS calls;
SELECT * FROM my_kvs_locks;
COMMIT;
DROP FUNCTION rl3_calls();
DROP FOREIGN TABLE rl3;
DROP VIEW my_kvs_locks;
