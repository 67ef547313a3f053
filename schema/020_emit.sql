-- 020_emit.sql - what a tenant is, and hub.emit(), the one way to produce
-- an event (docs/protocol.md "Events"; README "How an event travels").
--
-- A tenant is a residential complex: one PostgreSQL schema, listed in the
-- registry hub.tenants (README, "Tenants and database roles"). hub.emit() checks every argument
-- before writing anything, so a bad call raises invalid_parameter_value
-- (22023) with a message naming the argument and what was expected, and
-- leaves no row behind.

-- The tenant registry: the schemas that are tenants, and nothing else is one
-- (the backend's own schemas, an audit or auth schema, are not). Rows are
-- written by hub.register_tenant() / hub.unregister_tenant(), which only the
-- schema's owner (an administrator) may call; hub.create_demo_tenant()
-- registers the tenant it creates. A registered schema that is later dropped
-- stops being a tenant at once (hub.is_tenant checks that it exists).
--
-- Upgrade: a deployment that had no registry gets it filled once, when the
-- table is created, with the schemas that were evidently tenants already:
-- those named by events in hub.outbox and those with the demo triggers
-- (hub.on_panic_alert and friends). Any other tenant must be registered by
-- hand; re-applying the schema never registers anything again, so a tenant
-- unregistered on purpose stays out.
DO $do$
BEGIN
    IF to_regclass('hub.tenants') IS NULL THEN
        CREATE TABLE hub.tenants (
            -- The schema's name, exactly (case-sensitive), in the claim
            -- syntax of docs/protocol.md, and none of PostgreSQL's or ours.
            name          text PRIMARY KEY
                          CHECK (name ~ '^[A-Za-z0-9_-]{1,63}$'
                                 AND name NOT IN ('hub', 'public', 'information_schema')
                                 AND name NOT LIKE 'pg\_%'),
            registered_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO hub.tenants (name)
        SELECT n.nspname::text
          FROM pg_catalog.pg_namespace n
         WHERE n.nspname ~ '^[A-Za-z0-9_-]{1,63}$'
           AND n.nspname NOT IN ('hub', 'public', 'information_schema')
           AND n.nspname NOT LIKE 'pg\_%'
           AND (EXISTS (SELECT 1 FROM hub.outbox o WHERE o.tenant = n.nspname::text)
                OR EXISTS (SELECT 1
                             FROM pg_catalog.pg_trigger t
                             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
                             JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                            WHERE c.relnamespace = n.oid
                              AND p.pronamespace = 'hub'::regnamespace
                              AND p.proname IN ('on_panic_alert', 'on_visitor',
                                                'on_payment_status',
                                                'on_emergency_announcement')))
        ON CONFLICT DO NOTHING;
    END IF;
END
$do$;

-- True when name is a tenant: registered in hub.tenants (which admits only
-- 1-63 bytes of [A-Za-z0-9_-], the claim syntax of docs/protocol.md, and
-- none of PostgreSQL's schemas or ours) and an existing schema. NULL gives
-- false. The hub asks this to accept a token's tenant; it runs with the
-- caller's rights, so the hub's role reads hub.tenants (080_roles.sql).
-- PL/pgSQL, not SQL: hub.emit() calls it once per event, and a SQL function
-- that cannot be inlined (this one has a sub-select) is parsed and planned
-- again on every call, a PL/pgSQL one once per session.
CREATE OR REPLACE FUNCTION hub.is_tenant(name text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN coalesce(
               EXISTS (SELECT 1 FROM hub.tenants t WHERE t.name = is_tenant.name)
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                        WHERE n.nspname = is_tenant.name),
           false);
END
$fn$;

-- Makes schema `name` a tenant. Refuses (22023) a name outside the claim
-- syntax, one of PostgreSQL's schemas or ours, and a schema that does not
-- exist. Returns true when it registered the tenant now, false when it
-- already was one (calling it again changes nothing). Only administrators
-- may call it (080_roles.sql): being a tenant lets tokens name the schema
-- and hub.audience() read its "User" table.
CREATE OR REPLACE FUNCTION hub.register_tenant(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    s     text := register_tenant.name;
    added text;
BEGIN
    IF s IS NULL OR s !~ '^[A-Za-z0-9_-]{1,63}$'
       OR s IN ('hub', 'public', 'information_schema') OR s LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'hub.register_tenant: name must be 1-63 characters of [A-Za-z0-9_-] and not hub, public, information_schema or pg_*, got %',
            hub.quote_for_error(s) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = s) THEN
        RAISE EXCEPTION 'hub.register_tenant: no schema named % (create the tenant''s schema first)',
            hub.quote_for_error(s) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO hub.tenants AS t (name) VALUES (s)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING
    RETURNING t.name INTO added;
    RETURN added IS NOT NULL;
END
$fn$;

-- Makes schema `name` no tenant any more: hub.emit() refuses it from now on,
-- and hubs refuse tokens naming it once their tenant cache forgets it
-- (HUB_TENANT_CACHE_MS). Its events stay in hub.outbox until retention
-- purges them. The schema itself is not touched and need not exist.
-- Returns true when it was registered, false otherwise (a second call).
CREATE OR REPLACE FUNCTION hub.unregister_tenant(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    gone text;
BEGIN
    IF unregister_tenant.name IS NULL THEN
        RAISE EXCEPTION 'hub.unregister_tenant: name must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM hub.tenants t WHERE t.name = unregister_tenant.name
    RETURNING t.name INTO gone;
    RETURN gone IS NOT NULL;
END
$fn$;

-- Quotes a caller's value for an error message, cut to a readable length.
CREATE OR REPLACE FUNCTION hub.quote_for_error(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN value IS NULL THEN 'NULL'
                WHEN length(value) > 60 THEN quote_literal(left(value, 60)) || '...'
                ELSE quote_literal(value) END
$fn$;

-- Writes one event to hub.outbox and wakes the hubs; returns its id.
--   tenant    a tenant (hub.is_tenant)
--   kind      ^[a-z][a-z0-9_]{0,31}$, e.g. panic, visitor, payment
--   rooms     1-32 room names of ^[A-Za-z0-9_.:-]{1,100}$; duplicates are
--             dropped, the first occurrence keeps its place (the hub reports
--             the first room of the list a connection is in)
--   data      a JSON object (NULL means {}), at most 32768 bytes as text
--   priority  normal, high or critical
--   ack       whether recipients must acknowledge it
-- Delivery starts when the caller's transaction commits: seq is assigned then
-- (010_outbox.sql) and the NOTIFY is delivered then. The NOTIFY payload is
-- empty on purpose: the row is the truth, and PostgreSQL folds identical
-- notifications of one transaction into one, so a burst wakes a hub once.
-- SECURITY DEFINER with a fixed search_path: producers (armonia_producer,
-- 080_roles.sql) may call it but not write hub.outbox themselves.
CREATE OR REPLACE FUNCTION hub.emit(tenant text, kind text, rooms text[], data jsonb,
                                    priority text DEFAULT 'normal', ack boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    -- Largest data accepted, in bytes of its text form: an event travels to
    -- every recipient and through every queue, and the WebSocket frame that
    -- carries it must stay well under the hub's inbound/outbound bounds.
    max_data_bytes constant int := 32768;
    max_rooms      constant int := 32;
    room           text;
    clean_rooms    text[] := '{}';
    body           jsonb := coalesce(emit.data, '{}'::jsonb);
    new_id         bigint;
BEGIN
    IF NOT hub.is_tenant(emit.tenant) THEN
        RAISE EXCEPTION 'hub.emit: tenant must name an existing tenant schema registered with hub.register_tenant (1-63 characters of [A-Za-z0-9_-], not hub, public, information_schema or pg_*), got %',
            hub.quote_for_error(emit.tenant) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF emit.kind IS NULL OR emit.kind !~ '^[a-z][a-z0-9_]{0,31}$' THEN
        RAISE EXCEPTION 'hub.emit: kind must match ^[a-z][a-z0-9_]{0,31}$ (a lower-case word such as panic), got %',
            hub.quote_for_error(emit.kind) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF emit.priority IS NULL OR emit.priority NOT IN ('normal', 'high', 'critical') THEN
        RAISE EXCEPTION 'hub.emit: priority must be normal, high or critical, got %',
            hub.quote_for_error(emit.priority) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF emit.ack IS NULL THEN
        RAISE EXCEPTION 'hub.emit: ack must be true or false, got NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF emit.rooms IS NULL OR cardinality(emit.rooms) = 0 THEN
        RAISE EXCEPTION 'hub.emit: rooms must list at least one room, got %',
            coalesce(emit.rooms::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_ndims(emit.rooms) <> 1 THEN
        RAISE EXCEPTION 'hub.emit: rooms must be a one-dimensional array of room names, got % dimensions',
            array_ndims(emit.rooms) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(emit.rooms) > max_rooms THEN
        RAISE EXCEPTION 'hub.emit: rooms must list at most % rooms, got %',
            max_rooms, cardinality(emit.rooms) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A loop of simple expressions, not queries: no executor start per event.
    FOREACH room IN ARRAY emit.rooms LOOP
        IF room IS NULL OR room !~ '^[A-Za-z0-9_.:-]{1,100}$' THEN
            RAISE EXCEPTION 'hub.emit: every room must be 1-100 characters of [A-Za-z0-9_.:-] (e.g. role:guard, unit:302), got %',
                hub.quote_for_error(room) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT room = ANY (clean_rooms) THEN
            clean_rooms := clean_rooms || room;
        END IF;
    END LOOP;

    IF jsonb_typeof(body) <> 'object' THEN
        RAISE EXCEPTION 'hub.emit: data must be a JSON object, got a JSON %',
            jsonb_typeof(body) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(body::text) > max_data_bytes THEN
        RAISE EXCEPTION 'hub.emit: data must be at most % bytes as JSON text, got % bytes',
            max_data_bytes, octet_length(body::text) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO hub.outbox (tenant, kind, rooms, data, priority, ack)
    VALUES (emit.tenant, emit.kind, clean_rooms, body, emit.priority, emit.ack)
    RETURNING id INTO new_id;

    PERFORM pg_notify('hub_outbox', '');
    RETURN new_id;
END
$fn$;
