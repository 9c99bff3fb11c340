-- 07_model: a random mix of INSERT (single, batched, ON CONFLICT), UPDATE (values,
-- keys moved in ranges, keys negated, = ANY), DELETE on a kvs table and on a heap table
-- with a deferrable primary key (checked at the end of each statement, like the kvs
-- key); after every statement both give the same error or none, and every 100 steps
-- both hold the same rows.
CREATE FOREIGN TABLE mk (id int, v text, n int) SERVER kvs;
CREATE TABLE mh (id int PRIMARY KEY DEFERRABLE INITIALLY IMMEDIATE, v text, n int);
SELECT setseed(0.42);
DO $$
DECLARE
  op int; a int; b int; k int; ek text; eh text; diff int; rk int; rh int;
  ops int := 0; errs int := 0;
BEGIN
  FOR i IN 1..3000 LOOP
    op := (random() * 9)::int;
    a := (random() * 2000)::int; b := a + (random() * 50)::int; k := (random() * 20)::int - 10;
    ek := NULL; eh := NULL;
    BEGIN
      CASE op
      WHEN 0 THEN INSERT INTO mk VALUES (a, md5(a::text), b);
      WHEN 1 THEN INSERT INTO mk SELECT DISTINCT g, repeat('x', g % 300), g FROM generate_series(a, b) g
                  WHERE NOT EXISTS (SELECT 1 FROM mk WHERE id = g);
      WHEN 2 THEN UPDATE mk SET v = v || 'u', n = n + 1 WHERE id = a;
      WHEN 3 THEN UPDATE mk SET id = id + k WHERE id BETWEEN a AND b;
      WHEN 4 THEN DELETE FROM mk WHERE id IN (a, b, a + 1);
      WHEN 5 THEN DELETE FROM mk WHERE n % 97 = a % 97 AND id < b;
      WHEN 6 THEN UPDATE mk SET n = n * 2 WHERE id = ANY (ARRAY[a, b, a + 3]);
      WHEN 7 THEN INSERT INTO mk VALUES (a, NULL, NULL) ON CONFLICT DO NOTHING;
      WHEN 8 THEN UPDATE mk SET id = -id WHERE id % 50 = a % 50;
      ELSE UPDATE mk SET v = NULL WHERE v LIKE 'x%' AND id BETWEEN a AND b;
      END CASE;
    EXCEPTION WHEN OTHERS THEN ek := SQLSTATE;
    END;
    BEGIN
      CASE op
      WHEN 0 THEN INSERT INTO mh VALUES (a, md5(a::text), b);
      WHEN 1 THEN INSERT INTO mh SELECT DISTINCT g, repeat('x', g % 300), g FROM generate_series(a, b) g
                  WHERE NOT EXISTS (SELECT 1 FROM mh WHERE id = g);
      WHEN 2 THEN UPDATE mh SET v = v || 'u', n = n + 1 WHERE id = a;
      WHEN 3 THEN UPDATE mh SET id = id + k WHERE id BETWEEN a AND b;
      WHEN 4 THEN DELETE FROM mh WHERE id IN (a, b, a + 1);
      WHEN 5 THEN DELETE FROM mh WHERE n % 97 = a % 97 AND id < b;
      WHEN 6 THEN UPDATE mh SET n = n * 2 WHERE id = ANY (ARRAY[a, b, a + 3]);
      WHEN 7 THEN INSERT INTO mh SELECT a, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM mh WHERE id = a);
      WHEN 8 THEN UPDATE mh SET id = -id WHERE id % 50 = a % 50;
      ELSE UPDATE mh SET v = NULL WHERE v LIKE 'x%' AND id BETWEEN a AND b;
      END CASE;
    EXCEPTION WHEN OTHERS THEN eh := SQLSTATE;
    END;
    ops := ops + 1;
    IF ek IS NOT NULL THEN errs := errs + 1; END IF;
    IF ek IS DISTINCT FROM eh THEN
      RAISE EXCEPTION 'step %: op % (a=% b=% k=%): kvs error % heap error %', i, op, a, b, k, ek, eh;
    END IF;
    IF i % 100 = 0 THEN
      SELECT count(*) INTO diff FROM ((SELECT * FROM mk EXCEPT ALL SELECT * FROM mh)
                                      UNION ALL (SELECT * FROM mh EXCEPT ALL SELECT * FROM mk)) d;
      IF diff <> 0 THEN RAISE EXCEPTION 'step %: % rows differ', i, diff; END IF;
    END IF;
  END LOOP;
  SELECT count(*) INTO rk FROM mk; SELECT count(*) INTO rh FROM mh;
  RAISE NOTICE 'ok: % operations, % errors (same in both), % rows', ops, errs, rk;
END $$;
SELECT count(*) AS problems FROM kvs_fdw_check('mk');
