-- 23_reserve: a commit whose write set has many keys against the file's
-- records (a bulk load into an empty or small table) sizes the file for them
-- before its first put.  The file then has the buckets a load that grew one
-- split at a time reaches, every row is there, the check is clean; a write
-- set of the table's own keys (an UPDATE, a DELETE) never grows the file.
CREATE FOREIGN TABLE rsv (id int, v text) SERVER kvs;
CREATE FOREIGN TABLE rsv_grown (id int, v text) SERVER kvs;

-- one statement into an empty table: one reserved load
INSERT INTO rsv SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 20000) g;
-- the same rows in 40 transactions of 500: the first of them reserves for
-- its 500 rows, every later one grows the file by splits
DO $$
BEGIN
    FOR i IN 0..39 LOOP
        INSERT INTO rsv_grown SELECT g, repeat(md5(g::text), 2)
          FROM generate_series(i * 500 + 1, i * 500 + 500) g;
        COMMIT;
    END LOOP;
END $$;
SELECT count(*), count(DISTINCT id), sum(id) FROM rsv;
SELECT count(*) FROM rsv_grown;
SELECT (SELECT buckets FROM kvs_fdw_stats('rsv')) = (SELECT buckets FROM kvs_fdw_stats('rsv_grown'))
       AS same_buckets,
       (SELECT free_pages FROM kvs_fdw_stats('rsv')) AS free_pages,
       (SELECT load_factor <= 0.75 FROM kvs_fdw_stats('rsv')) AS within_fillfactor,
       (SELECT pages <= buckets * 1.3 + dir_pages + 1 FROM kvs_fdw_stats('rsv')) AS few_overflow_pages;
-- the reserve allocated every bucket's page at once, before any overflow
-- page: pages 2 .. buckets + 1 are the buckets' (the grown file has its
-- overflow pages between them)
CREATE FUNCTION buckets_first(rel regclass) RETURNS boolean LANGUAGE sql AS $$
  SELECT count(DISTINCT p.page) = (SELECT buckets FROM kvs_fdw_stats(rel))
    FROM generate_series(2, (SELECT buckets + 1 FROM kvs_fdw_stats(rel))) g,
         LATERAL kvs_fdw_page(rel, g) p
   WHERE p.type = 'bucket'
$$;
SELECT buckets_first('rsv') AS reserved, buckets_first('rsv_grown') AS grown_reserved;
SELECT * FROM kvs_fdw_check('rsv');
SELECT * FROM kvs_fdw_check('rsv_grown');
SELECT id, v = repeat(md5(id::text), 2) AS v_ok FROM rsv WHERE id IN (1, 777, 20000) ORDER BY id;
SELECT count(*) FROM rsv r JOIN rsv_grown g USING (id) WHERE r.v = g.v;

-- the table's own keys: an UPDATE and a DELETE of every row change no bucket count
SELECT buckets AS rsv_buckets FROM kvs_fdw_stats('rsv') \gset
UPDATE rsv SET v = v || 'x';
DELETE FROM rsv WHERE id % 2 = 0;
SELECT buckets = :rsv_buckets AS same_buckets, records FROM kvs_fdw_stats('rsv');
SELECT * FROM kvs_fdw_check('rsv');

-- TRUNCATE and a load in one transaction: the reserve comes after the
-- truncate (else the truncate would drop it)
BEGIN;
TRUNCATE rsv;
INSERT INTO rsv SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 20000) g;
COMMIT;
SELECT count(*), sum(id) FROM rsv;
SELECT buckets = (SELECT buckets FROM kvs_fdw_stats('rsv_grown')) AS same_buckets, free_pages,
       buckets_first('rsv') AS reserved
  FROM kvs_fdw_stats('rsv');
SELECT * FROM kvs_fdw_check('rsv');

-- a small table and a big load: the file with records is split to the size
TRUNCATE rsv;
INSERT INTO rsv SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 10) g;
INSERT INTO rsv SELECT g, repeat(md5(g::text), 2) FROM generate_series(11, 20000) g;
SELECT count(*), sum(id) FROM rsv;
SELECT buckets = (SELECT buckets FROM kvs_fdw_stats('rsv_grown')) AS same_buckets
  FROM kvs_fdw_stats('rsv');
SELECT * FROM kvs_fdw_check('rsv');

-- a load bigger than the cache: a set whose keys are each written once
-- (counted once over memory and the spilled runs) is reserved whole; one
-- whose keys were rewritten after a spill (so counted in two runs) is
-- reserved no further than half the cache, the puts split the rest
SET kvs_fdw.cache_size = '256kB';
SET kvs_fdw.pending_memory = '256kB';
CREATE FOREIGN TABLE rsv_big (id int, v text) SERVER kvs;
INSERT INTO rsv_big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 20000) g;
SELECT count(*), sum(id) FROM rsv_big;
SELECT buckets = (SELECT buckets FROM kvs_fdw_stats('rsv_grown')) AS same_buckets,
       buckets_first('rsv_big') AS reserved
  FROM kvs_fdw_stats('rsv_big');
SELECT * FROM kvs_fdw_check('rsv_big');
TRUNCATE rsv_big;
BEGIN;
INSERT INTO rsv_big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 20000) g;
UPDATE rsv_big SET v = v || 'x';
SELECT spilled_runs > 0 AS spilled FROM kvs_fdw_pending('rsv_big');
COMMIT;
SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE '%x') AS updated FROM rsv_big;
SELECT buckets_first('rsv_big') AS reserved;
SELECT * FROM kvs_fdw_check('rsv_big');
RESET kvs_fdw.cache_size;
RESET kvs_fdw.pending_memory;

DROP FOREIGN TABLE rsv, rsv_grown, rsv_big;
DROP FUNCTION buckets_first(regclass);
