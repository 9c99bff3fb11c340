-- 16_sections: a statement is all or nothing (its writes wait in the
-- transaction's write set until COMMIT): an error or a cancel anywhere in it
-- (one write buffer of INSERT ... SELECT / COPY FROM, the key moves of an
-- UPDATE) leaves nothing of it, and the file is as before.
-- kvs_fdw.debug_flush_delay (test only, superuser only) sleeps where a
-- write buffer or the key moves are added to the write set, and inside the
-- commit's write section, so statement_timeout cancels the statement there.
CREATE FOREIGN TABLE sec (k int, v text) SERVER kvs;

-- the test setting is for superusers only, and hidden
CREATE ROLE regress_sections_user;
SET ROLE regress_sections_user;
SET kvs_fdw.debug_flush_delay = '1s';
RESET ROLE;
DROP ROLE regress_sections_user;
SELECT count(*) FROM pg_settings WHERE name = 'kvs_fdw.debug_flush_delay';
SHOW kvs_fdw.debug_flush_delay;

-- a write buffer is 4 MB with this cache size (4121 of these rows): a
-- duplicate key in the second buffer keeps nothing of the statement, not
-- even the first buffer
SET kvs_fdw.cache_size = '1MB';
INSERT INTO sec VALUES (6000, 'there before');
INSERT INTO sec SELECT g, repeat('x', 1000) FROM generate_series(1, 8000) g;
SELECT count(*) AS rows, max(k) FILTER (WHERE k <> 6000) AS last_of_first_buffer,
       count(*) FILTER (WHERE v = 'there before') AS old_row FROM sec;
SELECT * FROM kvs_fdw_check('sec');
RESET kvs_fdw.cache_size;

-- a cancel inside the flush of a buffer keeps nothing of it
TRUNCATE sec;
INSERT INTO sec SELECT g, 'v' || g FROM generate_series(1, 100) g;
SET kvs_fdw.debug_flush_delay = '30s';
SET statement_timeout = '2s';
INSERT INTO sec SELECT g, 'new' FROM generate_series(1001, 1500) g;
COPY sec FROM STDIN;
2001	copied
2002	copied
\.
RESET statement_timeout;
RESET kvs_fdw.debug_flush_delay;
SELECT count(*) AS rows, max(k), count(*) FILTER (WHERE v = 'v' || k) AS intact FROM sec;
SELECT * FROM kvs_fdw_check('sec');

-- key moves: UPDATE k = k + 1 deletes every old key, then inserts the new
-- ones, in one section; a cancel after the deletes keeps none of them
SET kvs_fdw.debug_flush_delay = '30s';
SET statement_timeout = '2s';
UPDATE sec SET k = k + 1;
RESET statement_timeout;
RESET kvs_fdw.debug_flush_delay;
SELECT count(*) AS rows, min(k), max(k), sum(k), count(*) FILTER (WHERE v = 'v' || k) AS intact
FROM sec;
SELECT * FROM kvs_fdw_check('sec');

-- a colliding key move (101 exists and does not move) keeps nothing either
INSERT INTO sec VALUES (101, 'stays');
UPDATE sec SET k = k + 1 WHERE k <= 100;
SELECT count(*) AS rows, min(k), max(k), sum(k) FROM sec;
SELECT * FROM kvs_fdw_check('sec');

-- and the moves work once nothing stops them
UPDATE sec SET k = k + 1000;
SELECT count(*) AS rows, min(k), max(k), count(*) FILTER (WHERE v = 'v' || (k - 1000)) AS moved
FROM sec;
SELECT * FROM kvs_fdw_check('sec');

DROP FOREIGN TABLE sec;
