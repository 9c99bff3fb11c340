-- 15_compact: kvs_fdw_compact(regclass) rewrites a table's file into a new
-- one sized for its records: the file shrinks after deletes, every row stays,
-- lookups, writes and the integrity check work on; the owner only.
CREATE FUNCTION cmp_error(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE FOREIGN TABLE cmp (id int, v text) SERVER kvs;
INSERT INTO cmp SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
-- a value in a value chain too
INSERT INTO cmp VALUES (100007, repeat('large', 20000));
SELECT file_bytes AS full_bytes, pages AS full_pages, buckets AS full_buckets
  FROM kvs_fdw_stats('cmp') \gset
DELETE FROM cmp WHERE id % 20 <> 7;
-- deleting rows never shrinks the file: the pages go to the free list
SELECT file_bytes = :full_bytes AS same_size, free_pages > 0 AS has_free_pages, records
  FROM kvs_fdw_stats('cmp');
CREATE TABLE cmp_ref AS SELECT * FROM cmp;

SELECT records, bytes_before = :full_bytes AS bytes_before_ok,
       bytes_after * 5 < bytes_before AS shrunk_5x
  FROM kvs_fdw_compact('cmp');
SELECT file_bytes * 5 < :full_bytes AS file_5x_smaller, pages * 5 < :full_pages AS pages_5x_fewer,
       buckets * 5 < :full_buckets AS buckets_5x_fewer, free_pages, records, value_pages > 0 AS value_pages,
       file_bytes = pages * 4096 AS size_is_pages, load_factor <= 0.75 AS within_fillfactor
  FROM kvs_fdw_stats('cmp');
SELECT * FROM kvs_fdw_check('cmp');

-- every remaining row intact
SELECT count(*) FROM cmp;
SELECT count(*) AS missing FROM (SELECT * FROM cmp_ref EXCEPT SELECT * FROM cmp) d;
SELECT count(*) AS extra FROM (SELECT * FROM cmp EXCEPT SELECT * FROM cmp_ref) d;
-- lookups by key
SELECT v = repeat(md5('27'), 3) AS right_value FROM cmp WHERE id = 27;
SELECT count(*) AS deleted_key FROM cmp WHERE id = 28;
SELECT length(v) FROM cmp WHERE id = 100007;
EXPLAIN (COSTS OFF) SELECT v FROM cmp WHERE id = 27;
SELECT count(*) FROM cmp WHERE id = ANY (ARRAY[7, 8, 47, 100007]);

-- writes go on, the file grows again as usual
INSERT INTO cmp SELECT g, 'new' FROM generate_series(20001, 30000) g;
UPDATE cmp SET v = 'updated' WHERE id = 27;
DELETE FROM cmp WHERE id = 47;
SELECT count(*), count(*) FILTER (WHERE v = 'new') AS new_rows,
       count(*) FILTER (WHERE v = 'updated') AS updated FROM cmp;
SELECT records FROM kvs_fdw_stats('cmp');
SELECT * FROM kvs_fdw_check('cmp');

-- compacting an already compact table keeps it about the same
SELECT records, bytes_after <= bytes_before AS not_larger FROM kvs_fdw_compact('cmp');
SELECT * FROM kvs_fdw_check('cmp');

-- a compaction changes no row, so a rollback has nothing to undo
BEGIN;
SELECT records FROM kvs_fdw_compact('cmp');
ROLLBACK;
SELECT count(*) FROM cmp;

-- this session's own scan, compacted under it half-way, returns every row once
CREATE FUNCTION cmp_scan_across() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    c refcursor;
    r record;
    n int := 0;
    ids int[] := '{}';
BEGIN
    OPEN c FOR SELECT id FROM cmp;
    LOOP
        FETCH c INTO r;
        EXIT WHEN NOT FOUND;
        ids := ids || r.id;
        n := n + 1;
        IF n = 100 THEN
            PERFORM kvs_fdw_compact('cmp');
        END IF;
    END LOOP;
    CLOSE c;
    RETURN n || ' rows, ' || (SELECT count(DISTINCT x) FROM unnest(ids) x) || ' distinct';
END $$;
SELECT cmp_scan_across();
SELECT * FROM kvs_fdw_check('cmp');

-- an emptied table goes back to the 3 pages of a new file
CREATE FOREIGN TABLE cmp_empty (k text, v int) SERVER kvs;
INSERT INTO cmp_empty SELECT 'k' || g, g FROM generate_series(1, 5000) g;
DELETE FROM cmp_empty;
SELECT records, bytes_before > 100000 AS was_large, bytes_after FROM kvs_fdw_compact('cmp_empty');
SELECT pages, buckets, records, free_pages FROM kvs_fdw_stats('cmp_empty');
INSERT INTO cmp_empty VALUES ('again', 1);
SELECT * FROM cmp_empty;
SELECT * FROM kvs_fdw_check('cmp_empty');

-- an explicit fill factor sizes the new file
CREATE FOREIGN TABLE cmp_ff (id int, v text) SERVER kvs OPTIONS (fillfactor '30');
INSERT INTO cmp_ff SELECT g, repeat('x', 50) FROM generate_series(1, 4000) g;
DELETE FROM cmp_ff WHERE id > 400;
SELECT records FROM kvs_fdw_compact('cmp_ff');
SELECT fillfactor, load_factor <= 0.30 AS within_fillfactor, load_factor > 0.2 AS not_oversized
  FROM kvs_fdw_stats('cmp_ff');
SELECT count(*) FROM cmp_ff;

-- privileges: the owner only (as VACUUM FULL); table privileges are not enough
CREATE ROLE kvs_cmp_user NOLOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cmp TO kvs_cmp_user;
SET ROLE kvs_cmp_user;
SELECT cmp_error($$SELECT kvs_fdw_compact('cmp')$$);
SELECT count(*) FROM cmp;
RESET ROLE;
ALTER FOREIGN TABLE cmp_empty OWNER TO kvs_cmp_user;
SET ROLE kvs_cmp_user;
SELECT records, bytes_after FROM kvs_fdw_compact('cmp_empty');
RESET ROLE;

-- wrong objects
CREATE TABLE cmp_heap (id int);
CREATE VIEW cmp_view AS SELECT 1 AS x;
SELECT cmp_error($$SELECT kvs_fdw_compact('cmp_heap')$$);
SELECT cmp_error($$SELECT kvs_fdw_compact('cmp_view')$$);
SELECT cmp_error($$SELECT kvs_fdw_compact(0)$$);
SELECT cmp_error($$SELECT kvs_fdw_compact('no_such_table')$$);
SELECT * FROM kvs_fdw_compact(NULL);

DROP FOREIGN TABLE cmp, cmp_empty, cmp_ff;
DROP TABLE cmp_ref, cmp_heap;
DROP VIEW cmp_view;
DROP FUNCTION cmp_error(text);
DROP FUNCTION cmp_scan_across();
DROP ROLE kvs_cmp_user;
