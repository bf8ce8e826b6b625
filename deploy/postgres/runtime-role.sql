-- The runtime role of the order service: reads and writes every table, cannot change the schema.
--
-- Two roles per database: the schema owner, which only `api migrate` uses (DATABASE_MIGRATE_URL),
-- and the runtime role the api and the workers log in as (DATABASE_URL, with MIGRATE_ON_START=false).
-- Create both once, as whoever manages roles (neither a superuser, nor allowed to create roles or
-- databases), e.g.:
--
--   CREATE ROLE orders_owner LOGIN PASSWORD '…';
--   CREATE ROLE orders_app   LOGIN PASSWORD '…';
--   CREATE DATABASE orders OWNER orders_owner;
--
-- then, after the first `api migrate`, run this file as the schema owner:
--
--   psql "$DATABASE_MIGRATE_URL" -v ON_ERROR_STOP=1 -v app_role=orders_app -f deploy/postgres/runtime-role.sql
--
-- Running it again is harmless. The default privileges below cover the tables and sequences that
-- later migrations create (they are created by the owner), so it is run once per database.

-- Nobody but the owner creates objects in the schema (the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";

-- Data: read and written, never truncated, altered or dropped (those need the owner).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app_role";

-- The migration history: read at start-up to check the schema is current, written by no one but
-- `api migrate`.
REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM :"app_role";
