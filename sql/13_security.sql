-- 13_security: who may point a table at which file.  A member of
-- pg_write_server_files who is not a superuser may not use a file inside the
-- data directory (another table's kvs file, of any database), whether named
-- directly, through "..", or through a symbolic link made before or after
-- CREATE; the check follows the table's owner (ALTER ... OWNER TO).  Table
-- privileges are never bypassed.  Also: a filename that is a directory.

-- errors with the server's paths masked (the role under test may not read
-- data_directory: the masking runs as the superuser), with detail and hint
CREATE FUNCTION sec_mask(msg text) RETURNS text LANGUAGE sql SECURITY DEFINER AS $$
SELECT regexp_replace(replace(replace(msg, current_setting('data_directory'), 'DATADIR'),
                              regexp_replace(current_setting('data_directory'), '/[^/]*$', ''), 'OUTSIDE'),
                      '/kvs_fdw/[0-9]+_[0-9]+\.kvs', '/kvs_fdw/DB_REL.kvs', 'g')
$$;
CREATE FUNCTION sec_error(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text; det text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN sec_mask(SQLSTATE || ': ' || msg || coalesce(E'\nDETAIL: ' || nullif(det, ''), '')
                    || coalesce(E'\nHINT: ' || nullif(hint, ''), ''));
END $$;
CREATE FUNCTION sh(cmd text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'cat >/dev/null; ' || cmd);
END $$;

CREATE ROLE kvs_sec NOLOGIN IN ROLE pg_write_server_files;
GRANT USAGE ON FOREIGN SERVER kvs TO kvs_sec;
GRANT CREATE ON SCHEMA public TO kvs_sec;
-- the data directory, the directory it is in (outside it), a victim's file
SELECT current_setting('data_directory') AS dd,
       regexp_replace(current_setting('data_directory'), '/[^/]*$', '') AS outside,
       regexp_replace(current_setting('data_directory'), '^.*/', '') AS ddname \gset
SELECT :'outside' || '/kvs_sec_mine.kvs' AS minefile, :'outside' || '/kvs_sec_link.kvs' AS linkfile,
       :'dd' || '/kvs_sec_super.kvs' AS superfile, :'outside' || '/kvs_sec_dir.kvs' AS dirfile,
       :'outside' || '/kvs_sec_real.kvs' AS realfile \gset
CREATE FOREIGN TABLE victim (id int, secret text) SERVER kvs;
INSERT INTO victim VALUES (1, 'the secret');
SELECT file AS victimfile FROM kvs_fdw_stats('victim') \gset
SELECT sh(format('rm -rf %1$s/kvs_sec_*', :'outside'));

SET ROLE kvs_sec;
-- table privileges hold: no SELECT on victim, none through the functions
SELECT sec_error('SELECT * FROM victim');
SELECT sec_error('SELECT * FROM kvs_fdw_stats(''victim'')');
SELECT sec_error('SELECT * FROM kvs_fdw_check(''victim'')');
-- another table's file, directly, through "..", or a file not there yet
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int, secret text) SERVER kvs OPTIONS (filename %L)', :'victimfile'));
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int, secret text) SERVER kvs OPTIONS (filename %L)',
                        :'outside' || '/' || :'ddname' || '/./kvs_fdw/../kvs_fdw/' || regexp_replace(:'victimfile', '^.*/', '')));
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int) SERVER kvs OPTIONS (filename %L)', :'dd' || '/kvs_sec_new.kvs'));
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int) SERVER kvs OPTIONS (filename %L)', :'dd' || '/no_such_dir/x.kvs'));
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int) SERVER kvs OPTIONS (filename %L)', :'dd' || '/global/pg_control'));
-- a file outside the data directory is fine; moving it inside is not
CREATE FOREIGN TABLE mine (id int, secret text) SERVER kvs OPTIONS (filename :'minefile');
INSERT INTO mine VALUES (2, 'mine');
SELECT * FROM mine;
SELECT sec_error(format('ALTER FOREIGN TABLE mine OPTIONS (SET filename %L)', :'victimfile'));
SELECT * FROM mine;
RESET ROLE;
-- a path through a symbolic link into the data directory, made before CREATE
SELECT sh(format('ln -s %s %s/kvs_sec_dd', :'dd', :'outside'));
SET ROLE kvs_sec;
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int, secret text) SERVER kvs OPTIONS (filename %L)',
                        :'outside' || '/kvs_sec_dd/kvs_fdw/' || regexp_replace(:'victimfile', '^.*/', '')));
-- ... or dangling, to a file not there yet
RESET ROLE;
SELECT sh(format('ln -s %s/kvs_sec_not_yet.kvs %s/kvs_sec_dangling.kvs', :'dd', :'outside'));
SET ROLE kvs_sec;
SELECT sec_error(format('CREATE FOREIGN TABLE steal (id int) SERVER kvs OPTIONS (filename %L)',
                        :'outside' || '/kvs_sec_dangling.kvs'));
-- ... or swapped in after CREATE: refused at the next open
CREATE FOREIGN TABLE real_t (id int, secret text) SERVER kvs OPTIONS (filename :'realfile');
INSERT INTO real_t VALUES (3, 'through a link');
CREATE FOREIGN TABLE swapped (id int, secret text) SERVER kvs OPTIONS (filename :'linkfile');
RESET ROLE;
SELECT sh(format('ln -s %1$s/kvs_sec_real.kvs %1$s/kvs_sec_link.kvs', :'outside'));
SET ROLE kvs_sec;
SELECT * FROM swapped;
RESET ROLE;
SELECT sh(format('ln -sfn %s %s/kvs_sec_link.kvs', :'victimfile', :'outside'));
\c
SET ROLE kvs_sec;
SELECT sec_error('SELECT * FROM swapped');
SELECT sec_error('INSERT INTO swapped VALUES (4, ''overwrite'')');
-- TRUNCATE refuses to run inside a block (25001): alone it meets the check
\set VERBOSITY sqlstate
TRUNCATE swapped;
\set VERBOSITY default
SELECT sec_error('SELECT * FROM kvs_fdw_stats(''swapped'')');
SELECT sec_error('SELECT * FROM kvs_fdw_check(''swapped'')');
RESET ROLE;
-- ... even for a superuser reading it: what counts is the owner
SELECT sec_error('SELECT * FROM swapped');
SELECT * FROM victim;

-- a superuser's table may use the data directory, also for its grantees ...
CREATE FOREIGN TABLE super_t (id int, v text) SERVER kvs OPTIONS (filename :'superfile');
INSERT INTO super_t VALUES (1, 'super');
GRANT SELECT, INSERT ON super_t TO kvs_sec;
SET ROLE kvs_sec;
INSERT INTO super_t VALUES (2, 'grantee');
SELECT * FROM super_t ORDER BY id;
SELECT sec_error('DELETE FROM super_t');      -- no DELETE privilege
RESET ROLE;
-- ... but not once it belongs to a non-superuser (the handle is open here)
ALTER FOREIGN TABLE super_t OWNER TO kvs_sec;
SELECT sec_error('SELECT * FROM super_t');
SET ROLE kvs_sec;
SELECT sec_error('SELECT * FROM super_t');
RESET ROLE;
ALTER FOREIGN TABLE super_t OWNER TO CURRENT_USER;
SELECT * FROM super_t ORDER BY id;
-- a superuser setting a data-directory path on a non-superuser's table
ALTER FOREIGN TABLE mine OPTIONS (SET filename :'superfile');
SELECT sec_error('SELECT * FROM mine');
ALTER FOREIGN TABLE mine OPTIONS (SET filename :'minefile');
SELECT * FROM mine;

-- filename that is a directory: 42809 saying so, at CREATE or when opened
SELECT sec_error(format('CREATE FOREIGN TABLE dir_t (id int) SERVER kvs OPTIONS (filename %L)', :'outside'));
CREATE FOREIGN TABLE dir_t (id int) SERVER kvs OPTIONS (filename :'dirfile');
SELECT sh(format('mkdir %s/kvs_sec_dir.kvs', :'outside'));
SELECT sec_error('SELECT * FROM dir_t');
SELECT sec_error('INSERT INTO dir_t VALUES (1)');
SELECT sec_error(format('ALTER FOREIGN TABLE dir_t OPTIONS (SET filename %L)', :'outside' || '/kvs_sec_dir.kvs/'));

DROP FOREIGN TABLE mine, real_t, swapped, super_t, dir_t, victim;
SELECT sh(format('rm -rf %1$s/kvs_sec_* %2$s/kvs_sec_super.kvs', :'outside', :'dd'));
REVOKE ALL ON SCHEMA public FROM kvs_sec;
REVOKE ALL ON FOREIGN SERVER kvs FROM kvs_sec;
DROP ROLE kvs_sec;
DROP FUNCTION sec_error(text), sec_mask(text), sh(text);
