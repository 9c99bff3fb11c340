-- 13_cache: kvs_fdw.cache_size is one budget for all the kvs files a backend
-- has open: the frames of its open files add up to at most the budget (each
-- file has at least 8), whether the files are used one statement at a time or
-- all in one query, and the answers stay right.  Local mode only (the
-- budget of a backend's own caches): with kvs_fdw preloaded the pages are in
-- the one shared pool, whose size is kvs_fdw.shared_cache_size (Makefile:
-- REGRESS_ONLY_local).
CREATE FUNCTION frames_total() RETURNS bigint LANGUAGE sql AS
$$ SELECT frames FROM kvs_fdw_cache_stats() WHERE file IS NULL $$;
CREATE FUNCTION files_open() RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM kvs_fdw_cache_stats() WHERE file IS NOT NULL $$;

-- 20 tables, one statement each
DO $$
BEGIN
    FOR i IN 1..20 LOOP
        EXECUTE format('CREATE FOREIGN TABLE c%s (k int, v text) SERVER kvs', i);
        EXECUTE format('INSERT INTO c%1$s SELECT g, %1$s || ''-'' || g FROM generate_series(1, 300) g', i);
    END LOOP;
END $$;
\c
SET kvs_fdw.cache_size = '1MB';     -- 256 frames
SELECT count(*) FROM c1;
SELECT frames_total() AS one_file;
DO $$
DECLARE n bigint; total bigint := 0; worst bigint := 0;
BEGIN
    FOR r IN 1..3 LOOP
        FOR i IN 1..20 LOOP
            EXECUTE format('SELECT count(*) FROM c%s', i) INTO n;
            IF n <> 300 THEN RAISE 'c%: % rows', i, n; END IF;
            worst := greatest(worst, frames_total());
        END LOOP;
    END LOOP;
    RAISE NOTICE 'most frames while using 20 tables in turn: %', CASE WHEN worst <= 256 THEN 'within 256' ELSE worst::text END;
END $$;
SELECT files_open() > 1 AS several_open, frames_total() <= 256 AS within_budget;
-- all 20 in one query
SELECT count(*), count(DISTINCT v), sum(k) FROM (
  SELECT * FROM c1 UNION ALL SELECT * FROM c2 UNION ALL SELECT * FROM c3 UNION ALL SELECT * FROM c4
  UNION ALL SELECT * FROM c5 UNION ALL SELECT * FROM c6 UNION ALL SELECT * FROM c7 UNION ALL SELECT * FROM c8
  UNION ALL SELECT * FROM c9 UNION ALL SELECT * FROM c10 UNION ALL SELECT * FROM c11 UNION ALL SELECT * FROM c12
  UNION ALL SELECT * FROM c13 UNION ALL SELECT * FROM c14 UNION ALL SELECT * FROM c15 UNION ALL SELECT * FROM c16
  UNION ALL SELECT * FROM c17 UNION ALL SELECT * FROM c18 UNION ALL SELECT * FROM c19 UNION ALL SELECT * FROM c20) u;
SELECT files_open() AS files, frames_total() <= 256 AS within_budget;
-- a join of two of them, with lookups into a third per row
SELECT count(*) FROM c1 JOIN c2 USING (k) WHERE EXISTS (SELECT 1 FROM c3 WHERE c3.k = c1.k);
SELECT frames_total() <= 256 AS within_budget;

-- a partitioned table with 64 kvs partitions: every partition is held by the
-- one query (a minimum of 8 frames each: 2MB = 512 frames for 64 files)
CREATE TABLE parted (k int, v text) PARTITION BY HASH (k);
DO $$
BEGIN
    FOR i IN 0..63 LOOP
        EXECUTE format('CREATE FOREIGN TABLE parted_%1$s PARTITION OF parted FOR VALUES WITH (MODULUS 64, REMAINDER %1$s) SERVER kvs', i);
    END LOOP;
END $$;
INSERT INTO parted SELECT g, 'p' || g FROM generate_series(1, 6400) g;
\c
SET kvs_fdw.cache_size = '2MB';
SELECT count(*), count(DISTINCT v), sum(k) FROM parted;
SELECT files_open() AS files, frames_total() AS frames, frames_total() <= 512 AS within_budget;
SELECT count(*), sum(k) FROM parted WHERE k % 7 = 0;
SELECT * FROM parted WHERE k = 4242;
UPDATE parted SET v = v || '!' WHERE k % 100 = 0;
SELECT count(*) FROM parted WHERE v LIKE '%!';
SELECT frames_total() <= 512 AS within_budget;
-- then one table alone: once the others are no longer used it gets the
-- whole budget back (reopened when that at least doubles its frames)
SET kvs_fdw.cache_size = '4MB';    -- 1024 frames
SELECT count(*) FROM parted;
SELECT frames_total() <= 1024 AS within_budget;
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        PERFORM count(*) FROM c1;
    END LOOP;
END $$;
SELECT frames AS c1_frames FROM kvs_fdw_cache_stats() WHERE file = (SELECT file FROM kvs_fdw_stats('c1'));
SELECT frames_total() <= 1024 AS within_budget;
RESET kvs_fdw.cache_size;

DROP TABLE parted;
DO $$
BEGIN
    FOR i IN 1..20 LOOP
        EXECUTE format('DROP FOREIGN TABLE c%s', i);
    END LOOP;
END $$;
DROP FUNCTION frames_total(), files_open();
