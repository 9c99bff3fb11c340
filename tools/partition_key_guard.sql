-- tools/partition_key_guard.sql - refuse UPDATEs that change the partition
-- key of a table partitioned over foreign tables (kvs_fdw shards behind
-- postgres_fdw).
--
-- PostgreSQL moves a row to another partition when an UPDATE changes its
-- partition key, but not when the partitions are foreign tables: the UPDATE
-- is done where the row is, and the row stays on a shard its new key does not
-- hash to, where a lookup by the new key (pruned to the right shard) does not
-- find it.  Run this file on the coordinator (plain SQL, no kvs_fdw needed
-- there), then, for each such table:
--
--   SELECT kvs_guard_partition_key('kv');
--
-- which creates a BEFORE UPDATE OF <key columns> row trigger on it (cloned to
-- every partition, also ones attached later) that raises 0A000 when a key
-- column changes.  A row trigger means postgres_fdw no longer sends UPDATEs of
-- that table whole to the shard: each one reads the rows (SELECT ... FOR
-- UPDATE) and updates them one by one by ctid (kvs tables with an integer key
-- have a ctid for that).  DELETE is not affected.
\set ON_ERROR_STOP 1

CREATE OR REPLACE FUNCTION kvs_partition_key_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF (to_jsonb(OLD) -> col) IS DISTINCT FROM (to_jsonb(NEW) -> col) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'feature_not_supported',
                MESSAGE = format('cannot change partition key column %I of table %I.%I',
                                 col, TG_TABLE_SCHEMA, TG_TABLE_NAME),
                DETAIL = 'Its partitions are foreign tables: PostgreSQL does not move a row '
                         'between them, so the row would stay on a shard its new key does not '
                         'belong to.',
                HINT = 'Delete the row and insert it with the new key, in one transaction.';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

-- kvs_guard_partition_key(table): the trigger for every column of the
-- table's partition key (an expression in the key is refused: name its
-- columns in a trigger of your own, with this function).
CREATE OR REPLACE FUNCTION kvs_guard_partition_key(tab regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols text[];
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.ord)
      INTO cols
      FROM pg_partitioned_table p
      CROSS JOIN LATERAL unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.attnum
     WHERE p.partrelid = tab;
    IF cols IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('%s is not a partitioned table', tab);
    END IF;
    IF array_position(cols, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = format('the partition key of %s has an expression', tab),
            HINT = 'Create the trigger yourself, naming the columns the expression uses: '
                   'EXECUTE FUNCTION kvs_partition_key_guard(''col'', ...).';
    END IF;
    EXECUTE format('CREATE TRIGGER partition_key_guard BEFORE UPDATE OF %s ON %s '
                   'FOR EACH ROW WHEN (%s) EXECUTE FUNCTION kvs_partition_key_guard(%s)',
                   (SELECT string_agg(quote_ident(c), ', ') FROM unnest(cols) c),
                   tab,
                   (SELECT string_agg(format('OLD.%1$I IS DISTINCT FROM NEW.%1$I', c), ' OR ')
                      FROM unnest(cols) c),
                   (SELECT string_agg(quote_literal(c), ', ') FROM unnest(cols) c));
END
$$;
