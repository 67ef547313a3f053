-- roles/hub_login.sql - the LOGIN role a deployment's hubs connect as: a
-- member of armonia_hub (the rights schema/080_roles.sql grants it, which
-- `armonia-hub migrate` applies) and nothing else. Run once per cluster, by
-- a role with CREATEROLE, with psql variables for its name and password:
--
--   psql -v ON_ERROR_STOP=1 -v role=armonia_hub_app -v password='…' \
--        -d armonia -f /usr/share/armonia-hub/roles/hub_login.sql
--
-- Safe to run again: an existing role keeps its attributes and gets its
-- password set. Put the same name and password in DATABASE_URL.

SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'role') AS hub_role_missing
\gset
\if :hub_role_missing
CREATE ROLE :"role" LOGIN PASSWORD :'password' IN ROLE armonia_hub;
\else
ALTER ROLE :"role" LOGIN PASSWORD :'password';
GRANT armonia_hub TO :"role";
\endif
