-- 080_roles.sql - who may do what in schema hub: the hub's role, the
-- producers' role, and the functions that run with the schema owner's
-- rights (docs/security.md, "Database roles").
--
--   armonia_hub       what armonia-hub needs, nothing more: read hub.outbox,
--                     hub.outbox_horizon, hub.policies and the tenant registry
--                     hub.tenants; execute the functions it calls (below).
--                     Every write it makes (acks, sent marks, delivery rows,
--                     plans, retention) goes through one of those functions;
--                     it cannot write any table itself, read a tenant's
--                     tables, emit events, create or register tenants.
--   armonia_producer  the backend and whatever else produces events: execute
--                     hub.emit() and nothing else in schema hub. The demo
--                     triggers run as whoever writes the tenant's rows, so
--                     that role needs armonia_producer (and its own rights on
--                     the tenant's tables, which it owns anyway).
--
-- Both are NOLOGIN group roles: a deployment creates a LOGIN role of its own
-- (with a password) and grants the group to it, for example
--     CREATE ROLE armonia_hub_app LOGIN PASSWORD '...' IN ROLE armonia_hub;
-- scripts/pg.sh does that for the dev/test cluster (armonia_hub_login).
--
-- Everything else (creating and registering tenants, editing policies,
-- reading deliveries) is for the schema's owner: the role that applies
-- schema/*.sql. The SECURITY DEFINER functions run as that owner, so it must
-- be able to read every tenant's "User" table (a superuser, or the owner of
-- the tenant schemas). Each of them has search_path fixed to
-- pg_catalog, hub, pg_temp and quotes tenant names with format('%I').
--
-- Roles are cluster-wide: they are created only when missing (applying the
-- schema to a second database of the same cluster reuses them); creating
-- them needs CREATEROLE the first time. Privileges are only ever added here,
-- never revoked and re-granted, so re-applying the schema to a live database
-- never leaves the hub without a right it is using. Apply all of schema/*.sql
-- in one transaction (psql -1, as scripts/pg.sh does): a CREATE OR REPLACE
-- FUNCTION in 070_fallback.sql drops the SECURITY DEFINER that this file
-- gives back, and in between the hub's calls of those functions would fail.
--
-- Safe to apply twice.

DO $do$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['armonia_hub', 'armonia_producer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database of this cluster created it just now
            END;
        END IF;
    END LOOP;
END
$do$;

-- The functions of 070_fallback.sql that the hub calls, or that read tenant
-- tables: they run as the schema's owner. (hub.emit, hub.outbox_assign_seq,
-- hub.audience, hub.purge_outbox, hub.register_tenant and
-- hub.unregister_tenant say so where they are defined.) The functions these
-- call in turn (hub.delivery_result, hub.fallback_next,
-- hub.fallback_plan_rows) run inside them and need no attribute.
ALTER FUNCTION hub.fallback_plan(int)
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;
ALTER FUNCTION hub.delivery_claim(text, int, int, text)
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;
ALTER FUNCTION hub.delivery_results(bigint[], text[], text[], text[], text[], int[])
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;
ALTER FUNCTION hub.record_acks(bigint[], text[], text[], text[])
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;
ALTER FUNCTION hub.record_sent(bigint[], text[], text[])
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;
ALTER FUNCTION hub.tenant_user_name(text, text)
    SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp;

-- No function of schema hub is anybody's by default (PostgreSQL grants
-- EXECUTE to PUBLIC on every new function): what a role may call is granted
-- below by name. This runs on every application, so a function added to the
-- schema later is closed too (and a hub call of it fails a test until it is
-- granted here). (A per-schema ALTER DEFAULT PRIVILEGES cannot take away
-- PUBLIC's global default, hence this.)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA hub FROM PUBLIC;

GRANT USAGE ON SCHEMA hub TO armonia_hub, armonia_producer;

-- The hub: hub/outbox.c, hub/replay.c, hub/session.c and (the check at
-- start) hub/schema.c read these.
GRANT SELECT ON hub.outbox, hub.outbox_horizon, hub.policies, hub.tenants,
    hub.schema_migrations TO armonia_hub;
-- hub/session.c (a token's tenant), hub/acks.c, hub/fallback.c, hub/purge.c.
GRANT EXECUTE ON FUNCTION
    hub.is_tenant(text),
    hub.record_acks(bigint[], text[], text[], text[]),
    hub.record_sent(bigint[], text[], text[]),
    hub.fallback_plan(int),
    hub.delivery_claim(text, int, int, text),
    hub.delivery_results(bigint[], text[], text[], text[], text[], int[]),
    hub.purge_outbox(interval, integer),
    hub.purge_deliveries(interval, integer)
    TO armonia_hub;

-- Producers.
GRANT EXECUTE ON FUNCTION hub.emit(text, text, text[], jsonb, text, boolean) TO armonia_producer;
