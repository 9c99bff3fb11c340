-- 21_import: IMPORT FOREIGN SCHEMA makes one foreign table per kvs file of a
-- directory, with the columns, types (schema-qualified), key, "missing"
-- values and fillfactor the file's header records; LIMIT TO / EXCEPT by
-- table name; names that need quoting; damaged, foreign and empty files
-- warned about and skipped, other files ignored; a file without column
-- names (too wide for them) imported with generated names when its types
-- are built-in, else skipped; 42501 before anything is read; the data
-- directory's own kvs files refused; the imported tables read the rows
-- (and write) like tables made by hand over the same files.
SELECT current_setting('data_directory') || '/kvs_regress_import' AS idir \gset
CREATE FUNCTION imp_sh(cmd text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'cat >/dev/null; ' || cmd);
END $$;
SELECT imp_sh(format('rm -rf %1$s; mkdir %1$s', :'idir'));
SELECT :'idir' || '/plain.kvs' AS f_plain, :'idir' || '/My Table.kvs' AS f_my,
       :'idir' || '/altered.kvs' AS f_alt, :'idir' || '/retyped.kvs' AS f_retyped,
       :'idir' || '/foreign.kvs' AS f_foreign, :'idir' || '/empty.kvs' AS f_empty \gset
-- the imported tables: columns with types and options, table options
CREATE FUNCTION imp_show(sch text) RETURNS TABLE (tab text, col text, typ text, colopts text[])
LANGUAGE sql AS $$
    SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
           a.attfdwoptions
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
     WHERE c.relnamespace = sch::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum
$$;
-- run a statement: its SQLSTATE, message and detail, the data directory
-- masked (whoever runs it)
CREATE FUNCTION imp_pgdata() RETURNS text LANGUAGE sql SECURITY DEFINER AS
$$ SELECT current_setting('data_directory') $$;
CREATE FUNCTION imp_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN replace(SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' (' || d || ')', ' ()'), ''),
                   imp_pgdata(), 'PGDATA');
END $$;
CREATE FUNCTION imp_tables(sch text) RETURNS TABLE (tab text, opts text)
LANGUAGE sql AS $$
    SELECT c.relname::text,
           replace(array_to_string(ft.ftoptions, ', '), current_setting('data_directory'), 'PGDATA')
      FROM pg_class c JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
     WHERE c.relnamespace = sch::regnamespace ORDER BY c.relname
$$;

-- types of a user schema and of an extension, in schemas not on the path
CREATE SCHEMA imp_types;
CREATE TYPE imp_types.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN imp_types.posint AS int CHECK (VALUE > 0);
CREATE SCHEMA imp_ext;
CREATE EXTENSION citext SCHEMA imp_ext;

-- ---- the files ------------------------------------------------------------
-- plain: built-in types with typmods, its table dropped (the file stays)
CREATE FOREIGN TABLE src_plain (id int, name varchar(20), price numeric(10,2), tags text[])
    SERVER kvs OPTIONS (filename :'f_plain');
INSERT INTO src_plain VALUES (1, 'one', 1.50, '{a,b}'), (2, 'two', 22.25, NULL), (3, NULL, NULL, '{}');
CREATE TABLE plain_rows AS SELECT * FROM src_plain;
DROP FOREIGN TABLE src_plain;
-- "My Table": a name that needs quoting, the key not first, user and
-- extension types, a fillfactor; its table kept
CREATE FOREIGN TABLE "My Table" ("some note" text, "Key" int OPTIONS (key 'true'),
        m imp_types.mood, p imp_types.posint, ci imp_ext.citext)
    SERVER kvs OPTIONS (filename :'f_my', fillfactor '50');
INSERT INTO "My Table" VALUES ('first', 10, 'happy', 5, 'MiXeD'), ('second', 20, 'sad', 1, 'x');
-- renamed columns: the names in the header follow
ALTER FOREIGN TABLE "My Table" RENAME COLUMN "some note" TO note;
SELECT count(*) FROM "My Table";
-- altered: a dropped column and one added with a default after rows exist
CREATE FOREIGN TABLE src_alt (id int, a text, b int) SERVER kvs OPTIONS (filename :'f_alt');
INSERT INTO src_alt VALUES (1, 'a1', 10), (2, 'a2', 20);
ALTER FOREIGN TABLE src_alt DROP COLUMN a;
ALTER FOREIGN TABLE src_alt ADD COLUMN c text DEFAULT 'dflt';
INSERT INTO src_alt VALUES (3, 30, 'own');
CREATE TABLE alt_rows AS SELECT * FROM src_alt;
SELECT * FROM alt_rows ORDER BY id;
DROP FOREIGN TABLE src_alt;
-- wide: 150 columns with long names: the names do not fit in the header
-- (which then holds the layout alone, as older kvs_fdw versions wrote it)
SELECT format('CREATE FOREIGN TABLE src_wide (%s) SERVER kvs OPTIONS (filename %L)',
              string_agg(format('a_rather_long_column_name_%s int', g), ', ' ORDER BY g),
              :'idir' || '/wide.kvs') AS q FROM generate_series(1, 150) g \gset
:q;
SELECT format('INSERT INTO src_wide VALUES (%s)', string_agg(g::text, ', ' ORDER BY g)) AS q
  FROM generate_series(1, 150) g \gset
:q;
DROP FOREIGN TABLE src_wide;
-- wide_enum: as wide, one column of a user type: its OID alone says nothing
SELECT format('CREATE FOREIGN TABLE src_wide_enum (%s, m imp_types.mood) SERVER kvs OPTIONS (filename %L)',
              string_agg(format('a_rather_long_column_name_%s int', g), ', ' ORDER BY g),
              :'idir' || '/wide_enum.kvs') AS q FROM generate_series(1, 150) g \gset
:q;
INSERT INTO src_wide_enum (a_rather_long_column_name_1, m) VALUES (1, 'ok');
DROP FOREIGN TABLE src_wide_enum;
-- wide_alt: as wide, then a column dropped: a mapped layout without names
SELECT format('CREATE FOREIGN TABLE src_wide_alt (%s) SERVER kvs OPTIONS (filename %L)',
              string_agg(format('a_rather_long_column_name_%s int', g), ', ' ORDER BY g),
              :'idir' || '/wide_alt.kvs') AS q FROM generate_series(1, 150) g \gset
:q;
INSERT INTO src_wide_alt (a_rather_long_column_name_1) VALUES (1);
ALTER FOREIGN TABLE src_wide_alt DROP COLUMN a_rather_long_column_name_150;
SELECT count(*) FROM src_wide_alt;
DROP FOREIGN TABLE src_wide_alt;
-- retyped: written with a type since dropped and made again (another OID)
CREATE TYPE imp_types.color AS ENUM ('red', 'green');
CREATE FOREIGN TABLE src_color (id int, c imp_types.color) SERVER kvs OPTIONS (filename :'f_retyped');
INSERT INTO src_color VALUES (1, 'green');
DROP FOREIGN TABLE src_color;
DROP TYPE imp_types.color;
CREATE TYPE imp_types.color AS ENUM ('green', 'red');
-- not kvs files, damaged copies of a kvs file (its header page overwritten,
-- the file truncated), an empty
-- file, a file that is not named *.kvs, and a link to a live table's file
-- in the data directory
CREATE FOREIGN TABLE live_dd (id int, v text) SERVER kvs;
INSERT INTO live_dd VALUES (1, 'live');
SELECT file AS live_file FROM kvs_fdw_stats('live_dd') \gset
COPY (SELECT repeat('this is not a kvs file ', 300)) TO :'f_foreign';
COPY (SELECT 1 WHERE false) TO :'f_empty';
SELECT imp_sh(format('cd %s && printf hello > readme.txt && cp plain.kvs notes.kvs.bak && cp plain.kvs truncated.kvs && truncate -s 2000 truncated.kvs && cp plain.kvs damaged.kvs && printf XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX | dd of=damaged.kvs bs=1 seek=200 conv=notrunc status=none && ln -s %s live_link.kvs',
                     :'idir', :'live_file'));
SELECT md5(pg_read_binary_file(:'idir' || '/plain.kvs')) AS plain_md5,
       md5(pg_read_binary_file(:'idir' || '/damaged.kvs')) AS damaged_md5 \gset

-- ---- bad statements ----------------------------------------------------
SELECT imp_try('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public');
SELECT imp_try('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory ''relative/dir'')');
SELECT imp_try('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory '''')');
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory %L, recursive ''true'')', :'idir'));
SELECT imp_try('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory ''/nonexistent_kvs_import_dir'')');
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory %L)', :'idir' || '/readme.txt'));
-- the data directory's own kvs files: refused
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory %L)',
                      current_setting('data_directory') || '/kvs_fdw'));
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO public OPTIONS (directory %L)',
                      current_setting('data_directory') || '/kvs_fdw/'));
-- a user who may not choose files: 42501 before the directory is even
-- looked at (it does not exist); a member of pg_write_server_files may not
-- import from the data directory (as for filename)
CREATE ROLE imp_nobody NOLOGIN;
CREATE ROLE imp_writer NOLOGIN IN ROLE pg_write_server_files;
CREATE SCHEMA imp_user;
GRANT USAGE ON FOREIGN SERVER kvs TO imp_nobody, imp_writer;
GRANT CREATE, USAGE ON SCHEMA imp_user TO imp_nobody, imp_writer;
SET ROLE imp_nobody;
SELECT imp_try('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO imp_user OPTIONS (directory ''/nonexistent_kvs_import_dir'')');
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO imp_user OPTIONS (directory %L)', :'idir'));
RESET ROLE;
SET ROLE imp_writer;
SELECT imp_try(format('IMPORT FOREIGN SCHEMA kvs FROM SERVER kvs INTO imp_user OPTIONS (directory %L)', :'idir'));
RESET ROLE;
SELECT count(*) AS imp_user_tables FROM pg_class WHERE relnamespace = 'imp_user'::regnamespace;

-- ---- the import ----------------------------------------------------------
CREATE SCHEMA imp;
IMPORT FOREIGN SCHEMA anything EXCEPT (damaged) FROM SERVER kvs INTO imp OPTIONS (directory :'idir');
-- the damaged header (its detail shows checksums that change from run to
-- run, so terse here)
\set VERBOSITY terse
IMPORT FOREIGN SCHEMA anything LIMIT TO (damaged) FROM SERVER kvs INTO imp OPTIONS (directory :'idir');
\set VERBOSITY default
SELECT * FROM imp_tables('imp');
SELECT * FROM imp_show('imp') WHERE col NOT LIKE 'col%' OR col IN ('col1', 'col150');
SELECT count(*) AS wide_columns FROM imp_show('imp') WHERE tab = 'wide';
-- reading never wrote the files
SELECT md5(pg_read_binary_file(:'idir' || '/plain.kvs')) = :'plain_md5' AS plain_untouched,
       md5(pg_read_binary_file(:'idir' || '/damaged.kvs')) = :'damaged_md5' AS damaged_untouched;

-- the rows read back equal
SELECT * FROM imp.plain ORDER BY id;
SELECT count(*) AS differences FROM
  ((SELECT * FROM imp.plain EXCEPT SELECT * FROM plain_rows)
   UNION ALL (SELECT * FROM plain_rows EXCEPT SELECT * FROM imp.plain)) d;
SELECT * FROM imp."My Table" ORDER BY "Key";
SELECT count(*) AS differences FROM
  ((SELECT * FROM imp."My Table" EXCEPT SELECT * FROM "My Table")
   UNION ALL (SELECT * FROM "My Table" EXCEPT SELECT * FROM imp."My Table")) d;
SELECT * FROM imp."My Table" WHERE "Key" = 20;
SELECT ci OPERATOR(imp_ext.=) 'mixed' AS citext_compare FROM imp."My Table" WHERE "Key" = 10;
-- rows written before the ALTER: the dropped column skipped, the added one
-- reads its default
SELECT * FROM imp.altered ORDER BY id;
SELECT count(*) AS differences FROM
  ((SELECT * FROM imp.altered EXCEPT SELECT * FROM alt_rows)
   UNION ALL (SELECT * FROM alt_rows EXCEPT SELECT * FROM imp.altered)) d;
SELECT col1, col2, col150 FROM imp.wide;
SELECT format('SELECT ROW(%s) = ROW(%s) AS wide_equal FROM imp.wide',
              string_agg('col' || g, ', ' ORDER BY g), string_agg(g::text, ', ' ORDER BY g)) AS q
  FROM generate_series(1, 150) g \gset
:q;

-- writes through an imported table, as through one made by hand
INSERT INTO imp.plain VALUES (4, 'four', 4.00, '{d}');
UPDATE imp.plain SET name = 'uno' WHERE id = 1;
SELECT * FROM imp.plain ORDER BY id;
INSERT INTO imp.altered VALUES (4, 40, 'new');
SELECT * FROM imp.altered ORDER BY id;
UPDATE imp."My Table" SET m = 'ok' WHERE "Key" = 20;
SELECT "Key", m FROM "My Table" ORDER BY "Key";
-- a hand-made table over the same file sees the same rows
CREATE FOREIGN TABLE plain_by_hand (id int, name varchar(20), price numeric(10,2), tags text[])
    SERVER kvs OPTIONS (filename :'f_plain');
SELECT count(*) AS differences FROM
  ((SELECT * FROM imp.plain EXCEPT SELECT * FROM plain_by_hand)
   UNION ALL (SELECT * FROM plain_by_hand EXCEPT SELECT * FROM imp.plain)) d;
DROP FOREIGN TABLE plain_by_hand;
-- the live table's header follows a rename; the imported table over the
-- same file (another table's file) keeps its own names and still reads
ALTER FOREIGN TABLE "My Table" RENAME COLUMN note TO remark;
SELECT count(*) FROM "My Table";
SELECT note FROM imp."My Table" ORDER BY "Key";
CREATE SCHEMA imp2;
IMPORT FOREIGN SCHEMA kvs LIMIT TO ("My Table") FROM SERVER kvs INTO imp2 OPTIONS (directory :'idir');
SELECT * FROM imp_show('imp2');

-- the imported table does not own the file: its columns must keep matching
-- the file (an ALTER that adds one is refused), renaming is fine
ALTER FOREIGN TABLE imp.plain ADD COLUMN extra int;
ALTER FOREIGN TABLE imp.plain RENAME COLUMN name TO label;
SELECT label FROM imp.plain WHERE id = 4;
-- the owner renames and writes in one transaction: the names wait for the
-- commit, the write is not held up
BEGIN;
ALTER FOREIGN TABLE "My Table" RENAME COLUMN p TO amount;
INSERT INTO "My Table" VALUES ('third', 30, 'ok', 3, 'y');
COMMIT;
SELECT count(*) FROM "My Table";
-- a file whose header holds no names (80 long column names do not fit) is
-- imported with generated names; once its own table is renamed to short
-- names and opened, the header gets them, and the import gives them
SELECT format('CREATE FOREIGN TABLE src_old (%s) SERVER kvs OPTIONS (filename %L)',
              string_agg(format('a_rather_long_column_name_%s int', g), ', ' ORDER BY g),
              :'idir' || '/old.kvs') AS q FROM generate_series(1, 80) g \gset
:q;
INSERT INTO src_old (a_rather_long_column_name_1, a_rather_long_column_name_80) VALUES (7, 8);
CREATE SCHEMA imp6;
IMPORT FOREIGN SCHEMA kvs LIMIT TO (old) FROM SERVER kvs INTO imp6 OPTIONS (directory :'idir');
SELECT tab, col FROM imp_show('imp6') WHERE col IN ('col1', 'col80');
SELECT col1, col80 FROM imp6.old;
DROP SCHEMA imp6 CASCADE;
DO $$ BEGIN
  FOR g IN 1..80 LOOP
    EXECUTE format('ALTER FOREIGN TABLE src_old RENAME COLUMN a_rather_long_column_name_%s TO c%s', g, g);
  END LOOP;
END $$;
SELECT c1, c80 FROM src_old;
CREATE SCHEMA imp6;
IMPORT FOREIGN SCHEMA kvs LIMIT TO (old) FROM SERVER kvs INTO imp6 OPTIONS (directory :'idir');
SELECT tab, col FROM imp_show('imp6') WHERE col IN ('c1', 'c80');
SELECT c1, c80 FROM imp6.old;
DROP SCHEMA imp6 CASCADE;
DROP FOREIGN TABLE src_old;

-- ---- LIMIT TO and EXCEPT (only the named files are opened) ----------------
CREATE SCHEMA imp3;
IMPORT FOREIGN SCHEMA kvs LIMIT TO (plain, altered, nosuchfile) FROM SERVER kvs INTO imp3 OPTIONS (directory :'idir');
SELECT * FROM imp_tables('imp3');
CREATE SCHEMA imp4;
IMPORT FOREIGN SCHEMA kvs EXCEPT (plain, damaged, truncated, "foreign", empty, live_link, retyped, wide_enum, wide_alt)
    FROM SERVER kvs INTO imp4 OPTIONS (directory :'idir');
SELECT * FROM imp_tables('imp4');
-- a trailing slash is the same directory
CREATE SCHEMA imp5;
SELECT :'idir' || '/' AS idir_slash \gset
IMPORT FOREIGN SCHEMA kvs LIMIT TO (plain) FROM SERVER kvs INTO imp5 OPTIONS (directory :'idir_slash');
SELECT * FROM imp_tables('imp5');

-- ---- another database: built-in types import, a user type of the same name
-- is another type there (another OID) and is refused ---------------------
SELECT current_database() AS regdb \gset
CREATE DATABASE kvs_import_other;
\c kvs_import_other
CREATE EXTENSION kvs_fdw;
CREATE SERVER kvs FOREIGN DATA WRAPPER kvs_fdw;
CREATE SCHEMA imp_types;
CREATE TYPE imp_types.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN imp_types.posint AS int CHECK (VALUE > 0);
CREATE SCHEMA imp_ext;
CREATE EXTENSION citext SCHEMA imp_ext;
IMPORT FOREIGN SCHEMA kvs LIMIT TO (plain, "My Table") FROM SERVER kvs INTO public OPTIONS (directory :'idir');
SELECT * FROM plain ORDER BY id;
\c :regdb
DROP DATABASE kvs_import_other;

-- ---- clean up ----------------------------------------------------------
SET client_min_messages = warning;
DROP SCHEMA imp, imp2, imp3, imp4, imp5, imp_user CASCADE;
DROP FOREIGN TABLE "My Table", live_dd;
DROP TABLE plain_rows, alt_rows;
DROP SCHEMA imp_types, imp_ext CASCADE;
REVOKE ALL ON FOREIGN SERVER kvs FROM imp_nobody, imp_writer;
DROP ROLE imp_nobody, imp_writer;
SELECT imp_sh(format('rm -rf %s', :'idir'));
DROP FUNCTION imp_sh(text), imp_show(text), imp_tables(text), imp_try(text), imp_pgdata();
RESET client_min_messages;
