-- 04_functions: kvs_fdw_stats, kvs_fdw_check, kvs_fdw_page,
-- kvs_fdw_cache_stats, kvs_fdw_reset_stats, and who may call them.
CREATE FOREIGN TABLE f (id int, v text) SERVER kvs;
INSERT INTO f SELECT g, repeat('v', 100) FROM generate_series(1, 2000) g;

SELECT file LIKE '%/kvs_fdw/%.kvs' AS in_data_dir, file_bytes >= pages * 4096 AS size_ok,
       pages > buckets AS more_pages_than_buckets, buckets >= 2 AS split,
       level >= 1 AS level_ok, split_pointer < buckets AS sp_ok, records,
       overflow_pages >= 0 AS ovf, value_pages, dir_pages >= 1 AS dir,
       free_pages >= 0 AS free, load_factor > 0 AND load_factor <= 1.5 AS lf_ok, fillfactor
  FROM kvs_fdw_stats('f');
SELECT buckets = (2 ^ level)::bigint + split_pointer AS linear_hashing FROM kvs_fdw_stats('f');
DELETE FROM f WHERE id > 1000;
SELECT records FROM kvs_fdw_stats('f');
-- a large value uses value pages
CREATE FOREIGN TABLE fbig (id int, v text) SERVER kvs;
INSERT INTO fbig VALUES (1, repeat('z', 100000));
SELECT records, value_pages > 0 AS has_value_pages FROM kvs_fdw_stats('fbig');

-- check: no rows when clean
SELECT * FROM kvs_fdw_check('f');
SELECT * FROM kvs_fdw_check('fbig');

-- page: the header page, a bucket page with its slots
SELECT page, type, checksum_ok, slot FROM kvs_fdw_page('f', 0);
SELECT count(*) > 0 AS has_bucket_pages
  FROM generate_series(1, 5) p, LATERAL kvs_fdw_page('f', p) x WHERE x.type = 'bucket';
SELECT bool_and(checksum_ok) AS checksums_ok, bool_and(slot IS NOT NULL) AS slots,
       sum(nslots) FILTER (WHERE slot = 0) > 0 AS has_records
  FROM generate_series(1, 5) p, LATERAL kvs_fdw_page('f', p) x WHERE x.type = 'bucket';
-- every record appears in exactly one slot of the bucket and overflow pages
SELECT count(*) AS slots, count(DISTINCT key) AS keys
  FROM generate_series(0, (SELECT pages - 1 FROM kvs_fdw_stats('f'))) p,
       LATERAL kvs_fdw_page('f', p) x
 WHERE x.type IN ('bucket', 'overflow') AND slot IS NOT NULL;
SELECT * FROM kvs_fdw_page('f', -1);
SELECT * FROM kvs_fdw_page('f', 1000000);

-- cache statistics of this backend: per file and a total row
SELECT kvs_fdw_reset_stats();
SELECT count(*) FROM f;
SELECT hits + reads > 0 AS counted FROM kvs_fdw_cache_stats() WHERE file IS NULL;
SELECT count(*) > 1 AS files FROM kvs_fdw_cache_stats();
SELECT kvs_fdw_reset_stats();
SELECT hits, reads, evictions, writes FROM kvs_fdw_cache_stats() WHERE file IS NULL;
-- a small cache evicts
SET kvs_fdw.cache_size = '32kB';
SELECT count(*) FROM f;
SELECT frames, evictions > 0 AS evicted FROM kvs_fdw_cache_stats() WHERE file LIKE '%_' || 'f'::regclass::oid || '.kvs';
RESET kvs_fdw.cache_size;

-- wrong objects
CREATE TABLE heap_t (id int);
SELECT * FROM kvs_fdw_stats('heap_t');
SELECT * FROM kvs_fdw_check('heap_t');
SELECT * FROM kvs_fdw_stats('no_such_table');
SELECT * FROM kvs_fdw_stats(NULL);

-- privileges: data-showing functions need SELECT on the table
CREATE ROLE kvs_bob NOLOGIN;
SET ROLE kvs_bob;
SELECT records FROM kvs_fdw_stats('f');
SELECT * FROM kvs_fdw_check('f');
SELECT count(*) FROM kvs_fdw_page('f', 0);
SELECT * FROM f WHERE id = 1;
INSERT INTO f VALUES (5000, 'no');
SELECT kvs_fdw_forget('f'::regclass);
RESET ROLE;
GRANT SELECT ON f TO kvs_bob;
SET ROLE kvs_bob;
SELECT records FROM kvs_fdw_stats('f');
SELECT * FROM kvs_fdw_check('f');
SELECT id FROM f WHERE id = 1;
UPDATE f SET v = 'no' WHERE id = 1;
DELETE FROM f WHERE id = 1;
TRUNCATE f;
RESET ROLE;
GRANT INSERT, UPDATE, DELETE ON f TO kvs_bob;
SET ROLE kvs_bob;
INSERT INTO f VALUES (5000, 'yes');
UPDATE f SET v = 'yes!' WHERE id = 5000 RETURNING *;
DELETE FROM f WHERE id = 5000 RETURNING id;
RESET ROLE;
-- kvs_fdw_forget refuses live tables even for superusers
SELECT kvs_fdw_forget('f'::regclass);
REVOKE ALL ON f FROM kvs_bob;
DROP ROLE kvs_bob;
