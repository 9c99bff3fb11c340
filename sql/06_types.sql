-- 06_types: values of many types round-trip exactly, in binary, NULLs kept.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 10);
CREATE FOREIGN TABLE ty (
    id int,
    b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric(20, 5),
    money_ money, ch char(4), vc varchar(8), tx text, nm name, by bytea,
    d date, t time, tz timetz, ts timestamp, tstz timestamptz, iv interval,
    u uuid, j json, jb jsonb, x xml, ip inet, cid cidr, mac macaddr,
    pt point, bx box, arr int[], tarr text[], rng int4range, m mood, p pair,
    dom short_text, bits bit varying(10), tsv tsvector, oid_ oid, reg regclass
) SERVER kvs;
SET timezone = 'UTC';
INSERT INTO ty VALUES (
    1,
    true, -32768, 2147483647, -9223372036854775808, 'Infinity', -1.5e-300, 123456789012345.12345,
    '12.34', 'ab', 'héllo', E'line\nbreak\ttab \\ "q"', 'a_name', '\x00010203ff',
    '4713-01-01 BC', '23:59:59.999999', '12:00+05:30', '2000-02-29 01:02:03.456789', '1970-01-01 00:00:00+00', '1 year 2 mons -3 days 04:05:06.7',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}', '<a x="1">t</a>', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
    '(1.5,-2)', '((0,0),(1,1))', '{{1,2},{3,NULL}}', '{"a b", NULL, "", "\"q\""}', '[1,10)', 'happy', ROW(7, 'seven'),
    'short', B'10101', 'a fat cat', 4294967295, 'pg_class'
);
INSERT INTO ty (id) VALUES (2);
INSERT INTO ty (id, f8, num, tx, arr) VALUES (3, 'NaN', 'NaN', '', '{}');
SELECT * FROM ty ORDER BY id;
-- each value equals what was inserted, compared by the types' own equality
CREATE TABLE ty_heap AS SELECT * FROM ty;
SELECT count(*) FROM ty t JOIN ty_heap h USING (id)
 WHERE (t.b, t.i2, t.i4, t.i8, t.f4, t.num, t.money_, t.ch, t.vc, t.tx, t.nm, t.by,
        t.d, t.t, t.tz, t.ts, t.tstz, t.iv, t.u, t.jb, t.ip, t.cid, t.mac,
        t.arr, t.tarr, t.rng, t.m, t.p, t.dom, t.bits, t.tsv, t.oid_, t.reg)
   IS NOT DISTINCT FROM
       (h.b, h.i2, h.i4, h.i8, h.f4, h.num, h.money_, h.ch, h.vc, h.tx, h.nm, h.by,
        h.d, h.t, h.tz, h.ts, h.tstz, h.iv, h.u, h.jb, h.ip, h.cid, h.mac,
        h.arr, h.tarr, h.rng, h.m, h.p, h.dom, h.bits, h.tsv, h.oid_, h.reg);
SELECT id, f8::text, j::text, x::text, pt::text, bx::text FROM ty ORDER BY id;
-- every column NULL except the key
SELECT id, num_nulls(b, i2, i4, i8, f4, f8, num, money_, ch, vc, tx, nm, by, d, t, tz, ts, tstz,
                     iv, u, j, jb, x, ip, cid, mac, pt, bx, arr, tarr, rng, m, p, dom, bits,
                     tsv, oid_, reg) AS nulls
  FROM ty ORDER BY id;
-- values that came from TOAST (compressed and out of line) are stored detoasted
CREATE TABLE toasted (id int, t text);
INSERT INTO toasted VALUES (1, repeat('compressible ', 100000)),
                           (2, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g));
CREATE FOREIGN TABLE from_toast (id int, t text) SERVER kvs;
INSERT INTO from_toast SELECT * FROM toasted;
SELECT f.id, length(f.t), f.t = h.t AS same FROM from_toast f JOIN toasted h USING (id) ORDER BY 1;
-- a domain's constraint is checked on insert
INSERT INTO ty (id, dom) VALUES (4, 'far too long for the domain');
-- updates of single columns keep the others
UPDATE ty SET tx = 'changed' WHERE id = 1;
SELECT count(*) FROM ty t JOIN ty_heap h USING (id)
 WHERE t.id = 1 AND t.tx = 'changed' AND (t.u, t.jb, t.arr, t.p) = (h.u, h.jb, h.arr, h.p);
RESET timezone;
-- a table with many columns
SELECT format('CREATE FOREIGN TABLE wide (%s) SERVER kvs',
              string_agg(format('c%s int', g), ', ')) AS ddl
  FROM generate_series(1, 200) g \gset
:ddl;
SELECT format('INSERT INTO wide VALUES (%s)', string_agg(g::text, ', ')) AS ins
  FROM generate_series(1, 200) g \gset
:ins;
SELECT c1, c100, c200 FROM wide WHERE c1 = 1;
SELECT format('CREATE FOREIGN TABLE too_wide (%s) SERVER kvs',
              string_agg(format('c%s int', g), ', ')) AS ddl
  FROM generate_series(1, 400) g \gset
:ddl;
SELECT * FROM too_wide;
