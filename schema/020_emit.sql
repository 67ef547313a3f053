-- 020_emit.sql - what a tenant is, and hub.emit(), the one way to produce
-- an event (CONTRACT §3).
--
-- A tenant is a residential complex: one PostgreSQL schema. hub.emit()
-- checks every argument before writing anything, so a bad call raises
-- invalid_parameter_value (22023) with a message naming the argument and
-- what was expected, and leaves no row behind.

-- True when name is a tenant: 1-63 bytes of [A-Za-z0-9_-] (the claim syntax of
-- docs/protocol.md), an existing schema, and none of PostgreSQL's or ours.
-- NULL gives false. The hub asks this to accept a token's tenant.
-- PL/pgSQL, not SQL: hub.emit() calls it once per event, and a SQL function
-- that cannot be inlined (this one has a sub-select) is parsed and planned
-- again on every call, a PL/pgSQL one once per session.
CREATE OR REPLACE FUNCTION hub.is_tenant(name text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN coalesce(
               is_tenant.name ~ '^[A-Za-z0-9_-]{1,63}$'
           AND is_tenant.name NOT IN ('hub', 'public', 'information_schema')
           AND is_tenant.name NOT LIKE 'pg\_%'
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                        WHERE n.nspname = is_tenant.name),
           false);
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
CREATE OR REPLACE FUNCTION hub.emit(tenant text, kind text, rooms text[], data jsonb,
                                    priority text DEFAULT 'normal', ack boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
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
        RAISE EXCEPTION 'hub.emit: tenant must name an existing tenant schema (1-63 characters of [A-Za-z0-9_-], not hub, public, information_schema or pg_*), got %',
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
