/* kvs_fdw--0.1.0--0.2.0.sql - upgrade of the kvs_fdw extension from 0.1.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kvs_fdw UPDATE TO '0.2.0'" to load this file. \quit

-- the DROP clean-up fires under session_replication_role = replica too
ALTER EVENT TRIGGER kvs_fdw_sql_drop ENABLE ALWAYS;
