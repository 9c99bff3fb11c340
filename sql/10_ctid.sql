-- 10_ctid: system columns.  A kvs row has no physical address and no
-- xmin/xmax/cmin/cmax; once every row reported the same invalid ctid, so
-- `WHERE ctid = $1` matched every row, and postgres_fdw's UPDATE/DELETE that
-- it cannot send whole (it updates by ctid) changed every row of the table.
-- xmin, xmax, cmin and cmax fail at plan time with 0A000, before a row is
-- touched.  A table with an integer key has a ctid: the key, encoded (one
-- tid per key, the same in every statement), and `ctid = expr` is a lookup
-- of the key the tid encodes, so postgres_fdw's row-by-row UPDATE and DELETE
-- change exactly the rows it read.  Other key types refuse ctid too.
-- tableoid, whole-row references and the key work.
CREATE FUNCTION ct_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FOREIGN TABLE ct (id int, v text) SERVER kvs;
INSERT INTO ct SELECT g, 'v' || g FROM generate_series(1, 5) g;

-- an integer key: ctid is the key, zigzag-encoded (0, -1, 1, ... -> 0, 1, 2, ...)
-- in 47 bits, offset = low 15 bits + 1
SELECT ctid, id FROM ct ORDER BY id;
-- a text key has none: the message names the column and the table, the hint the key
CREATE FOREIGN TABLE ct_text (k text, v text) SERVER kvs;
SELECT ctid, k FROM ct_text;
SELECT ct_sqlstate('UPDATE ct_text SET v = ''x'' WHERE ctid = ''(0,3)''');
-- every kind of reference, every meaningless system column
SELECT ct_sqlstate(q) FROM (VALUES
    ('SELECT id FROM ct WHERE ctid = ''(0,1)'''),
    ('SELECT id FROM ct WHERE id = 1 AND ctid = ''(0,1)'''),
    ('SELECT xmin FROM ct'),
    ('SELECT id FROM ct WHERE xmax = 0'),
    ('SELECT cmin FROM ct WHERE id = 1'),
    ('SELECT id, cmax FROM ct'),
    ('SELECT id FROM ct ORDER BY ctid'),
    ('SELECT count(*) FROM ct GROUP BY ctid'),
    ('SELECT a.id FROM ct a JOIN ct b ON a.ctid = b.ctid'),
    ('SELECT a.id FROM ct a JOIN (VALUES (''(0,1)''::tid)) x(t) ON a.ctid = x.t'),
    ('SELECT a.id FROM ct a LEFT JOIN ct b ON a.id = b.id AND b.ctid IS NOT NULL'),
    ('SELECT (SELECT ct.ctid) FROM ct'),
    ('SELECT id FROM ct WHERE id IN (SELECT id FROM ct WHERE ctid IS NOT NULL)'),
    ('EXPLAIN SELECT ctid FROM ct'),
    ('UPDATE ct SET v = ''x'' WHERE ctid = ''(0,1)'''),
    ('UPDATE ct SET v = ''x'' WHERE id = 1 AND ctid = ''(0,1)'''),
    ('DELETE FROM ct WHERE ctid = ''(0,1)'''),
    ('DELETE FROM ct WHERE id = 2 AND xmin IS NOT NULL'),
    ('UPDATE ct SET v = ''x'' WHERE id = 1 RETURNING ctid'),
    ('UPDATE ct SET v = ''x'' RETURNING id, xmax'),
    ('DELETE FROM ct WHERE id = 1 RETURNING ctid'),
    ('INSERT INTO ct VALUES (99, ''x'') RETURNING ctid'),
    ('INSERT INTO ct VALUES (99, ''x'') RETURNING id, cmin'),
    ('UPDATE ct SET v = b.v FROM ct b WHERE ct.ctid = b.ctid')
) AS x(q);
COPY (SELECT ctid, id FROM ct) TO STDOUT;
-- nothing was changed: no key has ctid (0,1) (it is key 0)
SELECT * FROM ct ORDER BY id;

-- ctid = expr is a lookup of that one key; a tid no key has finds nothing
EXPLAIN (COSTS OFF) SELECT id FROM ct WHERE ctid = '(0,7)';
SELECT id, v FROM ct WHERE ctid = '(0,7)';
SELECT id FROM ct WHERE ctid = ANY (ARRAY['(0,3)', '(0,5)']::tid[]) ORDER BY id;
SELECT count(*) FROM ct WHERE ctid IN ('(0,0)', '(0,13)', '(0,40000)', '(4294967295,32768)');
SELECT a.id, b.id FROM ct a JOIN ct b ON a.ctid = b.ctid ORDER BY a.id;
-- by ctid as a scan returned it, in a later statement: exactly that row
CREATE TEMP TABLE ct_seen AS SELECT ctid AS t, id FROM ct WHERE id IN (2, 4);
UPDATE ct SET v = v || '+' WHERE ctid = (SELECT t FROM ct_seen WHERE id = 2);
DELETE FROM ct WHERE ctid = (SELECT t FROM ct_seen WHERE id = 4) RETURNING id;
SELECT * FROM ct ORDER BY id;
UPDATE ct SET v = 'v2' WHERE id = 2;
INSERT INTO ct VALUES (4, 'v4');
-- every integer key type; a bigint key outside -2^46 .. 2^46-1 has no ctid
CREATE FOREIGN TABLE ct_big (id bigint, v text) SERVER kvs;
CREATE FOREIGN TABLE ct_small (id smallint, v text) SERVER kvs;
INSERT INTO ct_big VALUES (-70368744177664, 'min'), (70368744177663, 'max'), (-1, 'm1');
INSERT INTO ct_small VALUES (-32768, 'min'), (32767, 'max');
SELECT ctid, id, (SELECT b.id FROM ct_big b WHERE b.ctid = a.ctid) AS back FROM ct_big a ORDER BY id;
SELECT ctid, id, (SELECT b.id FROM ct_small b WHERE b.ctid = a.ctid) AS back FROM ct_small a ORDER BY id;
SELECT count(*) FROM ct_small WHERE ctid = '(2,1)';   -- key 32768: not a smallint
INSERT INTO ct_big VALUES (70368744177664, 'too big');
SELECT id FROM ct_big WHERE id = 70368744177664;
SELECT ctid FROM ct_big WHERE id = 70368744177664;
DROP FOREIGN TABLE ct_big, ct_small, ct_text;

-- what works: tableoid (the executor sets it), whole rows, the key
SELECT tableoid::regclass, id FROM ct WHERE tableoid = 'ct'::regclass ORDER BY id;
SELECT ct FROM ct WHERE id <= 2 ORDER BY id;
UPDATE ct SET v = 'w' || id WHERE id = 2 AND tableoid = 'ct'::regclass
  RETURNING tableoid::regclass, ct;
UPDATE ct SET v = 'v2' WHERE id = 2 RETURNING ct.*;
INSERT INTO ct VALUES (6, 'v6') RETURNING tableoid::regclass, ct;
DELETE FROM ct WHERE id = 6 RETURNING tableoid::regclass, id;
SELECT id FROM ct WHERE id <= 2 ORDER BY id FOR UPDATE;

-- a partitioned table with a heap and a kvs partition: UPDATE and DELETE of
-- both work (the heap partition's rows by ctid, the kvs partition's by key);
-- ctid works on both partitions; RETURNING ctid of the kvs partition fails
CREATE TABLE ct_parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE ct_heap PARTITION OF ct_parts FOR VALUES FROM (1) TO (100);
CREATE FOREIGN TABLE ct_kvs PARTITION OF ct_parts FOR VALUES FROM (100) TO (200) SERVER kvs;
INSERT INTO ct_parts VALUES (1, 'h1'), (2, 'h2'), (101, 'k101'), (102, 'k102');
UPDATE ct_parts SET v = v || '!' WHERE id IN (1, 101);
DELETE FROM ct_parts WHERE id IN (2, 102);
SELECT tableoid::regclass, * FROM ct_parts ORDER BY id;
SELECT ct_sqlstate('SELECT ctid FROM ct_parts');
SELECT ct_sqlstate('UPDATE ct_parts SET v = ''x'' WHERE ctid = ''(0,1)''');
SELECT ct_sqlstate('INSERT INTO ct_parts VALUES (150, ''x'') RETURNING ctid');
SELECT ctid IS NOT NULL AS heap_ctid FROM ct_parts WHERE id = 1;
UPDATE ct_parts SET v = 'h1' WHERE id = 1 RETURNING ctid IS NOT NULL AS heap_ctid;
SELECT tableoid::regclass, * FROM ct_parts ORDER BY id;

-- postgres_fdw over a kvs table (a loopback server): what it sends whole
-- ("Foreign Update"/"Foreign Delete") works by key; what it does row by row
-- (SELECT ... ctid ... FOR UPDATE, then UPDATE ... WHERE ctid = $1) changes
-- exactly the rows it read
CREATE EXTENSION postgres_fdw;
DO $$ BEGIN
    EXECUTE format('CREATE SERVER ct_loop FOREIGN DATA WRAPPER postgres_fdw
                      OPTIONS (host %L, port %L, dbname %L)',
                   current_setting('unix_socket_directories'), current_setting('port'),
                   current_database());
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER ct_loop;
CREATE FOREIGN TABLE ct_remote (id int, v text) SERVER ct_loop OPTIONS (table_name 'ct');
CREATE TABLE ct_local (id int, w text);
INSERT INTO ct_local VALUES (3, 'from local');
-- a kvs table read by an UPDATE or MERGE of a heap table (the heap rows by
-- ctid, the kvs rows as whole rows): works
UPDATE ct_local l SET w = 'local ' || c.v FROM ct c WHERE l.id = c.id RETURNING l.*;
MERGE INTO ct_local l USING ct c ON l.id = c.id
  WHEN MATCHED THEN UPDATE SET w = 'from local'
  WHEN NOT MATCHED AND c.id = 4 THEN INSERT VALUES (c.id, 'merged ' || c.v);
SELECT * FROM ct_local ORDER BY id;
DELETE FROM ct_local WHERE id = 4;
SELECT * FROM ct ORDER BY id;
-- direct: by key, also with RETURNING
EXPLAIN (VERBOSE, COSTS OFF) UPDATE ct_remote SET v = 'direct' WHERE id = 1;
UPDATE ct_remote SET v = 'direct' WHERE id = 1;
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM ct_remote WHERE id = 5 RETURNING *;
DELETE FROM ct_remote WHERE id = 5 RETURNING *;
INSERT INTO ct_remote VALUES (5, 'v5');
EXPLAIN (VERBOSE, COSTS OFF) UPDATE ct_remote SET v = upper(v) WHERE id > 3;
UPDATE ct_remote SET v = upper(v) WHERE id > 3;
SELECT * FROM ct_remote ORDER BY id;
-- not direct: a volatile expression, a join with a local table, a local
-- condition; each reads the rows with their ctid and changes exactly those
SELECT * FROM ct ORDER BY id;
EXPLAIN (VERBOSE, COSTS OFF) UPDATE ct_remote SET v = v || (random() * 0)::int WHERE id = 2;
UPDATE ct_remote SET v = v || (random() * 0)::int WHERE id = 2;
EXPLAIN (VERBOSE, COSTS OFF) UPDATE ct_remote r SET v = l.w FROM ct_local l WHERE r.id = l.id;
UPDATE ct_remote r SET v = l.w FROM ct_local l WHERE r.id = l.id;
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM ct_remote WHERE id = 4 AND random() >= 0;
DELETE FROM ct_remote WHERE id = 4 AND random() >= 0;
UPDATE ct_remote SET v = v || '?' WHERE random() >= 0 RETURNING *;
SELECT ctid, * FROM ct_remote ORDER BY id;
-- rows 2 and 3 changed, 4 gone, every row got '?'; nothing else
SELECT * FROM ct ORDER BY id;
DROP USER MAPPING FOR CURRENT_USER SERVER ct_loop;
DROP SERVER ct_loop CASCADE;
DROP EXTENSION postgres_fdw;
