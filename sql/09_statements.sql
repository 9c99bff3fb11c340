-- 09_statements: what statements do where kvs and heap tables could differ:
--   1. a row changed by a command nested in the UPDATE (a trigger): 27000,
--      and the failed statement leaves nothing of itself
--   2. a row changed by another session: 40001 with a retry hint (the failed
--      statement leaves nothing, so a retry is safe)
--   3. PREPARE TRANSACTION after a kvs write: refused (0A000)
--   4. TRUNCATE inside a transaction block: rolled back with it
--   5. TRUNCATE of a damaged file: one message, the same in every session
--   6. NOT NULL and CHECK constraints, enforced as heap enforces them
\set VERBOSITY default

-- ---- 1. a BEFORE UPDATE trigger that updates other rows of the table ------
-- On its first call (per transaction) the trigger adds 100 to every other
-- row.  The outer UPDATE has already read those rows; heap raises 27000 when
-- it reaches the next one, and so does kvs (not 40001: no other session is
-- involved).  Both roll the statement back.
CREATE FUNCTION bump_others() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('stmt09.fired', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('stmt09.fired', 'yes', true);
        EXECUTE format('UPDATE %I SET n = n + 100 WHERE id <> $1', TG_TABLE_NAME)
          USING OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TABLE trg_heap (id int PRIMARY KEY, n int);
CREATE FOREIGN TABLE trg_kvs (id int, n int) SERVER kvs;
INSERT INTO trg_heap SELECT g, 0 FROM generate_series(1, 3) g;
INSERT INTO trg_kvs SELECT g, 0 FROM generate_series(1, 3) g;
CREATE TRIGGER bu BEFORE UPDATE ON trg_heap FOR EACH ROW EXECUTE FUNCTION bump_others();
CREATE TRIGGER bu BEFORE UPDATE ON trg_kvs FOR EACH ROW EXECUTE FUNCTION bump_others();
UPDATE trg_heap SET n = n + 1;
UPDATE trg_kvs SET n = n + 1;
SELECT n, count(*) FROM trg_heap GROUP BY n ORDER BY n;
-- nothing of the failed statement stays, as with heap
SELECT n, count(*) FROM trg_kvs GROUP BY n ORDER BY n;
-- a trigger that changes the row being updated itself: heap 27000, kvs too
CREATE FUNCTION bump_self() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('stmt09.fired', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('stmt09.fired', 'yes', true);
        EXECUTE format('UPDATE %I SET n = n + 1000 WHERE id = $1', TG_TABLE_NAME)
          USING OLD.id;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER bu ON trg_heap;
DROP TRIGGER bu ON trg_kvs;
CREATE TRIGGER bu BEFORE UPDATE ON trg_heap FOR EACH ROW EXECUTE FUNCTION bump_self();
CREATE TRIGGER bu BEFORE UPDATE ON trg_kvs FOR EACH ROW EXECUTE FUNCTION bump_self();
UPDATE trg_heap SET n = n + 1 WHERE id = 2;
UPDATE trg_kvs SET n = n + 1 WHERE id = 2;
SELECT * FROM trg_heap WHERE id = 2;
SELECT * FROM trg_kvs WHERE id = 2;
-- the same for an UPDATE that moves keys (checked when the moves are applied)
UPDATE trg_kvs SET id = id + 10 WHERE id = 3;
SELECT * FROM trg_kvs ORDER BY id;
-- a join that matches one row twice: heap updates it once and skips the
-- second match, so does kvs (it was changed by the statement itself)
DROP TRIGGER bu ON trg_kvs;
CREATE TEMP TABLE twice (id int);
INSERT INTO twice VALUES (1), (1);
UPDATE trg_kvs k SET n = k.n + 1 FROM twice w WHERE k.id = w.id;
SELECT * FROM trg_kvs WHERE id = 1;
-- after the errors, ordinary UPDATEs work
UPDATE trg_kvs SET n = 0;
SELECT n, count(*) FROM trg_kvs GROUP BY n;
SELECT * FROM kvs_fdw_check('trg_kvs');

-- ---- 2. another session meanwhile: row locks, no 40001 ----------------------
-- The other session is a dblink connection to this server, driven by a
-- volatile function in the SET list: on its first call it updates rows from
-- there.  Rows the UPDATE has not reached yet are not locked yet: the other
-- session changes them, and the UPDATE, which reads a row again once its
-- lock is granted, adds to that change (no 40001, no lost update).  The row
-- being updated is locked: the other session waits for it (here until its
-- lock_timeout), and its error fails the UPDATE.
CREATE EXTENSION dblink;
SELECT format('dbname=%s user=%s port=%s host=%s', current_database(), current_user,
              current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1))
       AS conn \gset
CREATE FUNCTION meddle(id int, others boolean) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('stmt09.meddled', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('stmt09.meddled', 'yes', true);
        PERFORM dblink_exec(current_setting('stmt09.conn'),
                            format('SET lock_timeout = ''200ms''; UPDATE conc SET n = n + 100 WHERE id %s %s',
                                   CASE WHEN others THEN '<>' ELSE '=' END, id));
    END IF;
    RETURN 0;
END $$;
SELECT set_config('stmt09.conn', :'conn', false) IS NOT NULL AS conn_set;
CREATE FOREIGN TABLE conc (id int, n int) SERVER kvs;
INSERT INTO conc SELECT g, 0 FROM generate_series(1, 3) g;
-- the other rows, changed meanwhile, count both changes: 1, 101, 101
UPDATE conc SET n = n + 1 + meddle(id, true);
SELECT n, count(*) FROM conc GROUP BY n ORDER BY n;
-- the locked row: the other session times out, the UPDATE fails
UPDATE conc SET n = 0;
\set VERBOSITY terse
UPDATE conc SET n = n + 1 + meddle(id, false);
\set VERBOSITY default
SELECT n, count(*) FROM conc GROUP BY n ORDER BY n;
-- without another session meddling it works
SET stmt09.meddled = 'yes';
UPDATE conc SET n = n + 1 + meddle(id, false);
RESET stmt09.meddled;
SELECT n, count(*) FROM conc GROUP BY n ORDER BY n;

-- ---- 3. PREPARE TRANSACTION after a kvs write: refused ---------------------
-- (the suite's instance allows prepared transactions, so this reaches the
-- check: a transaction that wrote nothing to kvs tables prepares)
SELECT current_setting('max_prepared_transactions')::int > 0 AS can_prepare;
CREATE TABLE prep_heap (id int);
CREATE FOREIGN TABLE prep (id int, v text) SERVER kvs;
INSERT INTO prep VALUES (1, 'one');
BEGIN;
INSERT INTO prep_heap VALUES (1);
SELECT * FROM prep;
PREPARE TRANSACTION 'stmt09_read';
ROLLBACK PREPARED 'stmt09_read';
SELECT count(*) AS heap_rows_rolled_back FROM prep_heap;
-- each write path: INSERT, UPDATE by key (direct), UPDATE, DELETE, COPY,
-- TRUNCATE; the refused PREPARE rolls the transaction back
BEGIN;
INSERT INTO prep VALUES (2, 'two');
PREPARE TRANSACTION 'stmt09_insert';
BEGIN;
UPDATE prep SET v = 'ONE' WHERE id = 1;
PREPARE TRANSACTION 'stmt09_direct';
BEGIN;
UPDATE prep SET v = v || '!' RETURNING *;
PREPARE TRANSACTION 'stmt09_update';
BEGIN;
DELETE FROM prep WHERE v LIKE 'one%';
PREPARE TRANSACTION 'stmt09_delete';
BEGIN;
COPY prep FROM stdin;
3	three
\.
PREPARE TRANSACTION 'stmt09_copy';
BEGIN;
TRUNCATE prep;
PREPARE TRANSACTION 'stmt09_truncate';
-- a write rolled back to a savepoint is undone: the transaction prepares
BEGIN;
SAVEPOINT s;
INSERT INTO prep VALUES (4, 'four');
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'stmt09_savepoint';
COMMIT PREPARED 'stmt09_savepoint';
-- a statement that wrote nothing still holds the row lock of the key it
-- looked for: refused too
BEGIN;
UPDATE prep SET v = 'none' WHERE id = 1000;
DELETE FROM prep WHERE id = 1000;
PREPARE TRANSACTION 'stmt09_nothing';
-- so is a FOR UPDATE that wrote nothing; a FOR UPDATE that found no row
-- locked nothing (a full scan locks the rows it returns)
BEGIN;
SELECT * FROM prep WHERE id = 1 FOR UPDATE;
PREPARE TRANSACTION 'stmt09_forupdate';
BEGIN;
SELECT * FROM prep WHERE v = 'nothing like it' FOR UPDATE;
PREPARE TRANSACTION 'stmt09_nothing';
COMMIT PREPARED 'stmt09_nothing';
SELECT gid FROM pg_prepared_xacts;
-- nothing of the refused transactions stays
SELECT * FROM prep ORDER BY id;

-- ---- 4. TRUNCATE inside a transaction block: rolled back with it ----------
CREATE FOREIGN TABLE tr (id int) SERVER kvs;
CREATE TABLE tr_heap (id int);
INSERT INTO tr SELECT generate_series(1, 5);
INSERT INTO tr_heap SELECT generate_series(1, 5);
BEGIN;
TRUNCATE tr;
SELECT count(*) AS truncated_here FROM tr;
INSERT INTO tr VALUES (1);
SELECT * FROM tr;
ROLLBACK;
BEGIN;
SAVEPOINT a;
TRUNCATE tr_heap, tr;
ROLLBACK;
SELECT (SELECT count(*) FROM tr) AS kvs_rows, (SELECT count(*) FROM tr_heap) AS heap_rows;
-- in a function called inside a block: rolled back with the block; in a
-- PL/pgSQL block with an EXCEPTION clause (a subtransaction) that commits:
-- kept
CREATE FUNCTION truncate_tr() RETURNS void LANGUAGE sql AS 'TRUNCATE tr';
BEGIN;
SELECT truncate_tr();
ROLLBACK;
SELECT count(*) FROM tr;
DO $$ BEGIN TRUNCATE tr; EXCEPTION WHEN division_by_zero THEN NULL; END $$;
SELECT count(*) FROM tr;
INSERT INTO tr SELECT generate_series(1, 5);
-- with other statements in one query string (an implicit block): runs
SELECT 1 AS before \; TRUNCATE tr \; SELECT count(*) AS after FROM tr;
-- and a later error in the string brings the rows back
INSERT INTO tr SELECT generate_series(1, 5);
SELECT 1 AS before \; TRUNCATE tr \; SELECT 1 / 0;
SELECT count(*) FROM tr;
-- alone: runs
TRUNCATE tr;
SELECT count(*) FROM tr;

-- ---- 5. TRUNCATE of a damaged file -----------------------------------------
-- A damaged bucket page does not stop TRUNCATE (it throws every page away);
-- a damaged header or a file shorter than its header says is refused, in a
-- session that has the file open and in a new one alike.  (The message,
-- with the data directory masked, comes from psql's LAST_ERROR_MESSAGE.)
-- Local mode only: with kvs_fdw preloaded the shared pool keeps the file's
-- header and pages across sessions, so damage done behind the server's back
-- is not seen while the pool holds the file (test/fdw/shared.sh damages a
-- file while the server is stopped instead).
SELECT kvs_fdw_mode() = 'local' AS local_mode \gset
\if :local_mode
\set VERBOSITY sqlstate
SELECT current_setting('data_directory') || '/kvs_regress_trdamage.kvs' AS tfile \gset
CREATE FOREIGN TABLE trd (id int, v text) SERVER kvs OPTIONS (filename :'tfile');
INSERT INTO trd SELECT g, repeat('d', 50) FROM generate_series(1, 3000) g;
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; cp %s %s.good', :'tfile', :'tfile')) AS save_good,
       format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; cp %s.good %s', :'tfile', :'tfile')) AS restore_good,
       format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; printf XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX | dd of=%s bs=1 seek=%s conv=notrunc status=none',
                     :'tfile', (pages - 1) * 4096 + 2000)) AS damage_page,
       format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; printf XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX | dd of=%s bs=1 seek=200 conv=notrunc status=none',
                     :'tfile')) AS damage_header,
       format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; truncate -s %s %s', (pages / 2) * 4096, :'tfile')) AS cut,
       format('COPY (SELECT 1) TO PROGRAM %L',
              format('cat >/dev/null; rm -f %s %s.good', :'tfile', :'tfile')) AS cleanup
  FROM kvs_fdw_stats('trd') \gset
:save_good;
-- header damaged: this session has the file open
SELECT count(*) FROM trd WHERE id = 1;
:damage_header;
TRUNCATE trd;
\set open_msg :LAST_ERROR_MESSAGE
SELECT regexp_replace(:'open_msg', '"/[^"]*\.kvs"', '"FILE"') AS open_session;
\c
\set VERBOSITY sqlstate
TRUNCATE trd;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '"/[^"]*\.kvs"', '"FILE"') AS new_session,
       :'LAST_ERROR_MESSAGE' = :'open_msg' AS same_message;
-- shorter than its header says
:restore_good;
SELECT count(*) FROM trd WHERE id = 1;
:cut;
TRUNCATE trd;
\set open_msg :LAST_ERROR_MESSAGE
SELECT regexp_replace(:'open_msg', '"/[^"]*\.kvs"', '"FILE"') AS open_session;
\c
\set VERBOSITY sqlstate
TRUNCATE trd;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '"/[^"]*\.kvs"', '"FILE"') AS new_session,
       :'LAST_ERROR_MESSAGE' = :'open_msg' AS same_message;
-- the refused TRUNCATE left the file as it was (still the cut size)
SELECT (pg_stat_file(:'tfile')).size < (pg_stat_file(:'tfile' || '.good')).size AS still_cut;
-- a damaged page: TRUNCATE empties the file, in both kinds of session (the
-- first count shows the page is damaged; the new session opens the file
-- for the first time in its TRUNCATE)
:restore_good;
SELECT count(*) FROM trd WHERE id = 1;
:damage_page;
SELECT count(*) FROM trd;
TRUNCATE trd;
SELECT count(*) FROM trd;
SELECT * FROM kvs_fdw_check('trd');
:restore_good;
\c
:damage_page;
TRUNCATE trd;
SELECT count(*) FROM trd;
SELECT * FROM kvs_fdw_check('trd');
DROP FOREIGN TABLE trd;
:cleanup;
\set VERBOSITY default
\endif

-- ---- 6. NOT NULL and CHECK constraints --------------------------------------
-- Postgres does not check them for foreign tables; kvs_fdw does, with heap's
-- errors, on INSERT (single, multi-row, INSERT ... SELECT), COPY FROM and
-- UPDATE (also by key, the direct path)
CREATE TABLE ck_heap (id int PRIMARY KEY, n int NOT NULL, s text CHECK (length(s) < 5),
                      CONSTRAINT n_positive CHECK (n > 0));
CREATE FOREIGN TABLE ck_kvs (id int, n int NOT NULL, s text CHECK (length(s) < 5),
                             CONSTRAINT n_positive CHECK (n > 0)) SERVER kvs;
INSERT INTO ck_heap VALUES (1, 1, 'a');
INSERT INTO ck_kvs VALUES (1, 1, 'a');
INSERT INTO ck_heap VALUES (2, NULL, 'b');
INSERT INTO ck_kvs VALUES (2, NULL, 'b');
INSERT INTO ck_heap VALUES (2, 0, 'b');
INSERT INTO ck_kvs VALUES (2, 0, 'b');
INSERT INTO ck_heap VALUES (2, 2, 'toolong');
INSERT INTO ck_kvs VALUES (2, 2, 'toolong');
INSERT INTO ck_heap VALUES (2, 2, 'b'), (3, -3, 'c');
INSERT INTO ck_kvs VALUES (2, 2, 'b'), (3, -3, 'c');
INSERT INTO ck_heap SELECT g, 5 - g, 'x' FROM generate_series(2, 10) g;
INSERT INTO ck_kvs SELECT g, 5 - g, 'x' FROM generate_series(2, 10) g;
COPY ck_heap FROM stdin;
4	4	d
5	\N	e
\.
COPY ck_kvs FROM stdin;
4	4	d
5	\N	e
\.
-- the failed batch INSERTs and the COPY wrote nothing (their rows were
-- buffered and the statement failed before writing them)
SELECT * FROM ck_kvs ORDER BY id;
INSERT INTO ck_kvs SELECT g, g, 'ok' FROM generate_series(2, 4) g;
-- UPDATE by key: the direct path checks the new row too
EXPLAIN (COSTS OFF) UPDATE ck_kvs SET n = n - 10 WHERE id = 2;
UPDATE ck_heap SET n = n - 10 WHERE id = 1;
UPDATE ck_kvs SET n = n - 10 WHERE id = 2;
UPDATE ck_kvs SET n = NULL WHERE id = 2;
UPDATE ck_kvs SET s = s || 'long' WHERE id IN (3, 4);
-- UPDATE of other rows (the ordinary path), and with RETURNING
UPDATE ck_heap SET s = 'longer' WHERE n > 0;
UPDATE ck_kvs SET s = 'longer' WHERE n > 0;
UPDATE ck_kvs SET n = 0 WHERE id = 3 RETURNING *;
-- a key move is checked too
UPDATE ck_kvs SET id = id + 100, n = -1 WHERE id = 4;
SELECT * FROM ck_kvs ORDER BY id;
-- rows that pass are written, NULL passes a CHECK as in heap
UPDATE ck_kvs SET n = n + 1, s = NULL WHERE id = 2;
SELECT * FROM ck_kvs WHERE id = 2;
-- a CHECK calling a volatile function is not evaluated under the file lock:
-- the UPDATE by key then takes the ordinary path
CREATE FUNCTION ck_volatile(int) RETURNS boolean VOLATILE LANGUAGE sql AS 'SELECT $1 < 1000';
ALTER FOREIGN TABLE ck_kvs ADD CONSTRAINT n_small CHECK (ck_volatile(n));
EXPLAIN (COSTS OFF) UPDATE ck_kvs SET n = n + 1 WHERE id = 2;
UPDATE ck_kvs SET n = 5000 WHERE id = 2;
UPDATE ck_kvs SET n = 7 WHERE id = 2;
SELECT * FROM ck_kvs WHERE id = 2;
-- a partition: the constraints of the partition are checked when routing
CREATE TABLE ck_parted (id int, n int) PARTITION BY RANGE (id);
CREATE FOREIGN TABLE ck_part1 PARTITION OF ck_parted FOR VALUES FROM (0) TO (100) SERVER kvs;
ALTER FOREIGN TABLE ck_part1 ADD CONSTRAINT part_n CHECK (n <> 13);
INSERT INTO ck_parted VALUES (1, 13);
INSERT INTO ck_parted VALUES (1, 12);
SELECT * FROM ck_parted;
DROP TABLE ck_parted;
