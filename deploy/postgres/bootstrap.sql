-- Chimera on PostgreSQL: roles and database. Run once (idempotent) as a superuser:
--
--   psql -v ON_ERROR_STOP=1 -h HOST -U postgres -d postgres -f deploy/postgres/bootstrap.sql \
--        -v owner_password="$CHIMERA_OWNER_PASSWORD" -v app_password="$CHIMERA_APP_PASSWORD" \
--        -v auditor_password="$CHIMERA_AUDITOR_PASSWORD"
--
-- Passwords are optional psql variables (never written here): -v as above, or `\getenv` lines before this
-- file on psql's input, which keeps them off the command line (initdb.sh, the compose init script, does).
-- A variable left out keeps the role's current password (none with trust or peer authentication).
-- Then, as the owner (migration 0010 refuses to run while chimera_app or chimera_auditor has BYPASSRLS):
--   CHIMERA_MIGRATION_DATABASE_URL=postgresql+psycopg://chimera_owner:...@HOST/chimera chimera db upgrade
-- and run Chimera with CHIMERA_DATABASE_URL=postgresql+psycopg://chimera_app:...@HOST/chimera.
--
--   chimera_owner    runs the migrations and owns every table (and the chimera database)
--   chimera_app      the application: no superuser, no BYPASSRLS, owns nothing; row security applies
--   chimera_auditor  reads the audit chain only (audit_log, tenants' chain heads), no BYPASSRLS: a row policy
--                    of its own shows it every tenant's chain, for `chimera audit verify` (migration 0010)
\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chimera_owner') AS missing_owner,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chimera_app') AS missing_app,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chimera_auditor') AS missing_auditor,
       NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'chimera') AS missing_database
\gset

\if :missing_owner
CREATE ROLE chimera_owner;
\endif
\if :missing_app
CREATE ROLE chimera_app;
\endif
\if :missing_auditor
CREATE ROLE chimera_auditor;
\endif

-- Re-asserted on every run, so a role edited by hand is put back.
ALTER ROLE chimera_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER ROLE chimera_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER ROLE chimera_auditor LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
-- The tenant is set per transaction by the application; nothing may preset it per role.
ALTER ROLE chimera_app RESET ALL;

\if :{?owner_password}
ALTER ROLE chimera_owner PASSWORD :'owner_password';
\endif
\if :{?app_password}
ALTER ROLE chimera_app PASSWORD :'app_password';
\endif
\if :{?auditor_password}
ALTER ROLE chimera_auditor PASSWORD :'auditor_password';
\endif

\if :missing_database
CREATE DATABASE chimera OWNER chimera_owner;
\endif
ALTER DATABASE chimera OWNER TO chimera_owner;
REVOKE ALL ON DATABASE chimera FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE chimera TO chimera_app;
-- The auditor only reads: no temporary tables either.
GRANT CONNECT ON DATABASE chimera TO chimera_auditor;
REVOKE TEMPORARY ON DATABASE chimera FROM chimera_auditor;
GRANT ALL ON DATABASE chimera TO chimera_owner;

-- In the new database the public schema belongs to its owner (pg_database_owner); only the owner creates.
\connect chimera
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
