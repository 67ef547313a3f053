-- 090_tenants.sql - attaching the hub to a tenant's existing tables, and
-- the mapping that says where a tenant keeps its users (docs/tenants.md).
--
-- A backend already has its tenants: one schema per residential complex,
-- laid out by its own migrations (Prisma's by default: quoted PascalCase
-- tables, text ids, enum types). hub.attach_tenant() registers such a schema
-- as a tenant, checks a small mapping (which table and column plays which
-- part) against the catalog, stores it in hub.tenant_mappings and puts the
-- event triggers on the tables. The trigger functions are generic: the
-- columns reach them as trigger arguments, so one function serves every
-- tenant whatever its names. hub.audience() and hub.tenant_user_name() read
-- the stored mapping; a tenant without one (the demo tenants) is read as
-- before. hub.enable_auto_attach() attaches each new tenant schema whose
-- name matches a pattern as soon as the backend's migration has created its
-- tables.
--
-- Everything here is for administrators (EXECUTE revoked from PUBLIC at the
-- end): neither the hub's role nor producers may attach, detach or read a
-- mapping. Safe to apply twice.

-- One row per attached tenant: the mapping as the administrator gave it,
-- and as hub.attach_tenant resolved it against the catalog (every table and
-- column named, NULL where the tenant has none). hub.detach_tenant removes
-- the row. No foreign key to hub.tenants: a row is read only while its
-- tenant is registered (hub.is_tenant), and like the triggers it outlives a
-- bare hub.unregister_tenant, so registering the schema again reads it as
-- attached, as its triggers still are.
CREATE TABLE IF NOT EXISTS hub.tenant_mappings (
    tenant      text PRIMARY KEY,
    mapping     jsonb NOT NULL,
    resolved    jsonb NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT now()
);

-- The auto-attach setting: at most one row (hub.enable_auto_attach).
CREATE TABLE IF NOT EXISTS hub.auto_attach (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- A POSIX regular expression (the ~ operator) a new schema's name must match.
    pattern    text NOT NULL,
    mapping    jsonb NOT NULL,
    enabled_at timestamptz NOT NULL DEFAULT now()
);

-- The parts a mapping may rename, with their default (Prisma) column names.
-- "required" are the columns without which the table is of no use: a
-- default-named required column the table lacks is an error, a
-- default-named optional one is taken as absent (NULL in the event data, no
-- contact point). A column the mapping names explicitly must exist.
CREATE OR REPLACE FUNCTION hub.tenant_mapping_fields() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT '{
      "User":         {"columns": ["id", "name", "role", "unitId", "deviceToken", "phoneNumber", "email", "locale"],
                       "required": ["id", "role"]},
      "PanicAlert":   {"columns": ["id", "userId", "unitId", "message", "createdAt"],
                       "required": ["id"]},
      "Visitor":      {"columns": ["id", "unitId", "name", "createdAt"],
                       "required": ["id", "unitId"]},
      "Payment":      {"columns": ["id", "userId", "amount", "currency", "status"],
                       "required": ["id", "userId", "status"]},
      "Announcement": {"columns": ["id", "title", "body", "type"],
                       "required": ["id", "type"]}
    }'::jsonb
$fn$;

-- Raises 22023 naming the key unless every key of object `o` (at `path`)
-- is one of `allowed`.
CREATE OR REPLACE FUNCTION hub.tenant_mapping_keys(caller text, path text, o jsonb, allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    k text;
BEGIN
    IF jsonb_typeof(o) <> 'object' THEN
        RAISE EXCEPTION '%: % must be a JSON object, got %', caller, path, o::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(o) LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION '%: unknown key % in % (expected one of %)',
                caller, hub.quote_for_error(k), path, array_to_string(allowed, ', ')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$fn$;

-- Raises 22023 unless value v (at `path`) is a JSON string of 1-63 bytes
-- (an identifier), or JSON null when nullable.
CREATE OR REPLACE FUNCTION hub.tenant_mapping_name(caller text, path text, v jsonb, nullable boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF jsonb_typeof(v) = 'null' AND nullable THEN
        RETURN;
    END IF;
    IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR length(v #>> '{}') NOT BETWEEN 1 AND 63 THEN
        RAISE EXCEPTION '%: mapping % must be a table or column name (a string of 1-63 characters%), got %',
            caller, path, CASE WHEN nullable THEN ', or null' ELSE '' END, coalesce(v::text, 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;

-- Checks the shape of a mapping without looking at any tenant: known keys
-- only, names where names go, role lists of strings. Raises 22023 naming
-- the first bad key. NULL is taken as {}.
CREATE OR REPLACE FUNCTION hub.tenant_mapping_check(caller text, mapping jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    m      jsonb := coalesce(mapping, '{}');
    fields jsonb := hub.tenant_mapping_fields();
    k      text;
    v      jsonb;
    c      text;
    cv     jsonb;
BEGIN
    PERFORM hub.tenant_mapping_keys(caller, 'mapping', m,
                                    ARRAY['tables', 'columns', 'devices', 'units', 'roles']);
    IF m ? 'tables' THEN
        PERFORM hub.tenant_mapping_keys(caller, 'mapping tables', m->'tables',
                                        ARRAY(SELECT jsonb_object_keys(fields)));
        FOR k, v IN SELECT * FROM jsonb_each(m->'tables') LOOP
            -- Every table but "User" may be null: that kind is not attached.
            PERFORM hub.tenant_mapping_name(caller, 'tables.' || k, v, k <> 'User');
        END LOOP;
    END IF;
    IF m ? 'columns' THEN
        PERFORM hub.tenant_mapping_keys(caller, 'mapping columns', m->'columns',
                                        ARRAY(SELECT jsonb_object_keys(fields)));
        FOR k, v IN SELECT * FROM jsonb_each(m->'columns') LOOP
            PERFORM hub.tenant_mapping_keys(caller, 'mapping columns.' || k, v,
                ARRAY(SELECT jsonb_array_elements_text(fields->k->'columns')));
            FOR c, cv IN SELECT * FROM jsonb_each(v) LOOP
                PERFORM hub.tenant_mapping_name(caller, format('columns.%s.%s', k, c), cv,
                    NOT ((fields->k->'required') ? c));
            END LOOP;
        END LOOP;
    END IF;
    FOREACH k IN ARRAY ARRAY['devices', 'units'] LOOP
        v := m->k;
        CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';
        PERFORM hub.tenant_mapping_keys(caller, 'mapping ' || k, v,
            ARRAY['table', 'user', CASE k WHEN 'devices' THEN 'token' ELSE 'unit' END]);
        PERFORM hub.tenant_mapping_name(caller, k || '.table', v->'table', false);
        FOR c, cv IN SELECT * FROM jsonb_each(v) LOOP
            PERFORM hub.tenant_mapping_name(caller, k || '.' || c, cv, false);
        END LOOP;
    END LOOP;
    IF m ? 'roles' THEN
        PERFORM hub.tenant_mapping_keys(caller, 'mapping roles', m->'roles',
                                        ARRAY['guard', 'resident', 'admin']);
        FOR k, v IN SELECT * FROM jsonb_each(m->'roles') LOOP
            IF jsonb_typeof(v) <> 'array'
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e
                           WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' = '') THEN
                RAISE EXCEPTION '%: mapping roles.% must be an array of non-empty strings, got %',
                    caller, k, v::text USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
    END IF;
END
$fn$;

-- name as a double-quoted identifier, always (error messages name tables
-- and columns exactly as they must be written).
CREATE OR REPLACE FUNCTION hub.tenant_ident(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT '"' || replace(name, '"', '""') || '"'
$fn$;

-- The table s.t when it exists as a table (plain or partitioned), else NULL.
CREATE OR REPLACE FUNCTION hub.tenant_table(s text, t text) RETURNS oid
LANGUAGE sql STABLE AS $fn$
    SELECT c.oid FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = s AND c.relname = t AND c.relkind IN ('r', 'p')
$fn$;

-- True when table `rel` has a (live) column named col.
CREATE OR REPLACE FUNCTION hub.tenant_has_column(rel oid, col text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = rel AND a.attname = col
                      AND a.attnum > 0 AND NOT a.attisdropped)
$fn$;

-- The SQL expression that reads column col of table rel (aliased `alias`)
-- as text, or as text[] when the column is an array; 'NULL::text' when col
-- is NULL. hub.audience and hub.tenant_user_name run as the schema's owner
-- over tables the backend owns: a cast from a type the backend created (an
-- enum, a domain) to text may be a function of the backend's, so such a
-- column is read through its type's output function (format's %s), which
-- only PostgreSQL defines. Built-in types keep the plain cast, which an
-- index on the column can serve (text ids). Raises 42703 when the column
-- is gone since the tenant was attached.
CREATE OR REPLACE FUNCTION hub.tenant_text_expr(rel oid, col text, alias text) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    typ record;
BEGIN
    IF col IS NULL THEN
        RETURN 'NULL::text';
    END IF;
    SELECT t.typnamespace = 'pg_catalog'::regnamespace AS builtin, t.typcategory = 'A' AS arr
      INTO typ
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of table % is gone since the tenant was attached (attach it again)',
            hub.tenant_ident(col), rel::regclass::text USING ERRCODE = 'undefined_column';
    END IF;
    IF typ.builtin THEN
        RETURN format('%I.%I::%s', alias, col, CASE WHEN typ.arr THEN 'text[]' ELSE 'text' END);
    ELSIF typ.arr THEN
        RETURN format('ARRAY(SELECT format(''%%s'', e) FROM unnest(%I.%I) e)', alias, col);
    END IF;
    RETURN format('CASE WHEN %1$I.%2$I IS NULL THEN NULL ELSE format(''%%s'', %1$I.%2$I) END', alias, col);
END
$fn$;

-- Resolves a mapping against schema s: checks its shape
-- (hub.tenant_mapping_check), then that every table and column it needs
-- exists, and returns the mapping with every default filled in:
--   {"tables":  {"User": "User", "PanicAlert": "Alerta", "Visitor": null, ...},
--    "columns": {"User": {"id": "id", "email": null, ...}, ...},  (attached tables only)
--    "devices": {"table": "Device", "user": "userId", "token": "token"} or null,
--    "units":   {"table": ..., "user": ..., "unit": ...} or null,
--    "roles":   {"guard": ["GUARD", ...], "resident": [...], "admin": [...]}}
-- Role values are upper-cased (they compare case-insensitively). A missing
-- table raises 42P01, a missing column 42703, each naming the schema, the
-- table, the column and the mapping key it came from.
CREATE OR REPLACE FUNCTION hub.tenant_mapping_resolve(caller text, s text, mapping jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    m       jsonb := coalesce(mapping, '{}');
    fields  jsonb := hub.tenant_mapping_fields();
    tables  jsonb := '{}';
    columns jsonb := '{}';
    roles   jsonb := '{}';
    extra   jsonb := '{}';
    part    text;
    tname   text;
    rel     oid;
    f       text;
    given   jsonb;
    col     text;
    cols    jsonb;
    k       text;
    v       jsonb;
BEGIN
    PERFORM hub.tenant_mapping_check(caller, m);

    FOR part IN SELECT jsonb_object_keys(fields) LOOP
        given := m->'tables'->part;
        IF given IS NOT NULL AND jsonb_typeof(given) = 'null' THEN
            tables := tables || jsonb_build_object(part, NULL);
            CONTINUE;
        END IF;
        tname := coalesce(given #>> '{}', part);
        rel := hub.tenant_table(s, tname);
        IF rel IS NULL THEN
            RAISE EXCEPTION '%: table %.% does not exist (mapping tables.%)%', caller,
                hub.tenant_ident(s), hub.tenant_ident(tname), part,
                CASE WHEN given IS NULL THEN ', the default; map it to null to leave that kind out'
                     ELSE '' END
                USING ERRCODE = 'undefined_table';
        END IF;
        tables := tables || jsonb_build_object(part, tname);
        cols := '{}';
        FOR f IN SELECT jsonb_array_elements_text(fields->part->'columns') LOOP
            given := m->'columns'->part->f;
            IF given IS NOT NULL AND jsonb_typeof(given) = 'null' THEN
                col := NULL;
            ELSE
                col := coalesce(given #>> '{}', f);
                IF NOT hub.tenant_has_column(rel, col) THEN
                    IF given IS NULL AND NOT ((fields->part->'required') ? f) THEN
                        col := NULL; -- an optional column the table does not have
                    ELSE
                        RAISE EXCEPTION '%: column %.%.% does not exist (mapping columns.%.%)',
                            caller, hub.tenant_ident(s), hub.tenant_ident(tname), hub.tenant_ident(col), part, f
                            USING ERRCODE = 'undefined_column';
                    END IF;
                END IF;
            END IF;
            cols := cols || jsonb_build_object(f, col);
        END LOOP;
        columns := columns || jsonb_build_object(part, cols);
    END LOOP;

    -- A separate table of device tokens, and one of unit memberships.
    FOREACH k IN ARRAY ARRAY['devices', 'units'] LOOP
        v := m->k;
        IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
            extra := extra || jsonb_build_object(k, NULL);
            CONTINUE;
        END IF;
        v := jsonb_build_object('user', 'userId') || CASE k WHEN 'devices'
                 THEN '{"token": "token"}'::jsonb ELSE '{"unit": "unitId"}'::jsonb END || v;
        tname := v->>'table';
        rel := hub.tenant_table(s, tname);
        IF rel IS NULL THEN
            RAISE EXCEPTION '%: table %.% does not exist (mapping %.table)', caller,
                hub.tenant_ident(s), hub.tenant_ident(tname), k USING ERRCODE = 'undefined_table';
        END IF;
        FOR f IN SELECT x FROM jsonb_object_keys(v) x WHERE x <> 'table' LOOP
            IF NOT hub.tenant_has_column(rel, v->>f) THEN
                RAISE EXCEPTION '%: column %.%.% does not exist (mapping %.%)', caller,
                    hub.tenant_ident(s), hub.tenant_ident(tname), hub.tenant_ident(v->>f), k, f
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
        extra := extra || jsonb_build_object(k, v);
    END LOOP;

    FOREACH k IN ARRAY ARRAY['guard', 'resident', 'admin'] LOOP
        roles := roles || jsonb_build_object(k, (
            SELECT jsonb_agg(DISTINCT r)
              FROM (SELECT upper(k) AS r
                    UNION ALL
                    SELECT upper(e) FROM jsonb_array_elements_text(
                        coalesce(m->'roles'->k, '[]')) e) x));
    END LOOP;

    RETURN jsonb_build_object('tables', tables, 'columns', columns, 'roles', roles) || extra;
END
$fn$;

-- The event triggers' functions. Column names arrive as trigger arguments
-- (an empty string for a column the tenant does not have) and values are
-- read from to_jsonb(NEW), so any column type works: text or enum ids and
-- statuses come out as JSON strings, numerics as numbers, timestamps as
-- ISO 8601 strings. The data maps are those of the demo tenant's triggers
-- (schema/demo/demo_tenant.sql), free text cut to the same lengths so an
-- event always fits hub.emit's data limit. They run as whoever writes the
-- tenant's row (that role needs armonia_producer, 080_roles.sql), name the
-- tenant by TG_TABLE_SCHEMA, and emit nothing for a row without the column
-- its room is made of (a visitor without unit, a payment without user).

-- insert into PanicAlert -> panic to guards and admins, critical, ack.
-- Arguments: id, userId, unitId, message, createdAt columns; then the User
-- table and its id and name columns, to put the presser's name in the event.
CREATE OR REPLACE FUNCTION hub.tenant_on_panic() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r         jsonb := to_jsonb(NEW);
    user_id   text := r->>TG_ARGV[1];
    user_name text;
BEGIN
    IF user_id IS NOT NULL AND TG_ARGV[5] <> '' AND TG_ARGV[7] <> '' THEN
        -- A panic must be saved even when the name cannot be read (the
        -- User table changed since the attach): the event goes without it.
        BEGIN
            EXECUTE format('SELECT %I::text FROM %I.%I WHERE %I::text = $1',
                           TG_ARGV[7], TG_TABLE_SCHEMA, TG_ARGV[5], TG_ARGV[6])
               INTO user_name USING user_id;
        EXCEPTION WHEN undefined_table OR undefined_column OR insufficient_privilege THEN
            user_name := NULL;
        END;
    END IF;
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'panic', ARRAY['role:guard', 'role:admin'],
                     jsonb_build_object('alertId',   r->TG_ARGV[0],
                                        'userId',    r->TG_ARGV[1],
                                        'userName',  left(user_name, 200),
                                        'unitId',    r->TG_ARGV[2],
                                        'message',   left(r->>TG_ARGV[3], 1000),
                                        'createdAt', r->TG_ARGV[4]),
                     'critical', true);
    RETURN NULL;
END
$fn$;

-- insert into Visitor -> visitor to unit:<unitId>, high, ack.
-- Arguments: id, unitId, name, createdAt columns.
CREATE OR REPLACE FUNCTION hub.tenant_on_visitor() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r jsonb := to_jsonb(NEW);
BEGIN
    IF r->>TG_ARGV[1] IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'visitor', ARRAY['unit:' || (r->>TG_ARGV[1])],
                     jsonb_build_object('visitorId', r->TG_ARGV[0],
                                        'unitId',    r->TG_ARGV[1],
                                        'name',      left(r->>TG_ARGV[2], 200),
                                        'createdAt', r->TG_ARGV[3]),
                     'high', true);
    RETURN NULL;
END
$fn$;

-- Payment status changes -> payment to user:<userId>, normal. The trigger's
-- WHEN clause already skips updates that keep the status.
-- Arguments: id, userId, amount, currency, status columns.
CREATE OR REPLACE FUNCTION hub.tenant_on_payment() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r jsonb := to_jsonb(NEW);
BEGIN
    IF r->>TG_ARGV[1] IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'payment', ARRAY['user:' || (r->>TG_ARGV[1])],
                     jsonb_build_object('paymentId', r->TG_ARGV[0],
                                        'userId',    r->TG_ARGV[1],
                                        'amount',    r->TG_ARGV[2],
                                        'currency',  r->TG_ARGV[3],
                                        'status',    r->TG_ARGV[4]),
                     'normal', false);
    RETURN NULL;
END
$fn$;

-- insert into Announcement of type emergency -> announcement to all,
-- critical (the trigger's WHEN clause picks the type, in any letter case).
-- Arguments: id, title, body, type columns.
CREATE OR REPLACE FUNCTION hub.tenant_on_announcement() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r jsonb := to_jsonb(NEW);
BEGIN
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'announcement', ARRAY['all'],
                     jsonb_build_object('announcementId', r->TG_ARGV[0],
                                        'title',          left(r->>TG_ARGV[1], 200),
                                        'body',           left(r->>TG_ARGV[2], 4000),
                                        'type',           r->TG_ARGV[3]),
                     'critical', false);
    RETURN NULL;
END
$fn$;

-- Drops the triggers of schema s whose function lives in schema hub (the
-- attached ones, and the demo tenant's), except those listed in `keep` as
-- 'table/trigger'. Returns how many it dropped.
CREATE OR REPLACE FUNCTION hub.tenant_drop_triggers(s text, keep text[]) RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    t       record;
    dropped int := 0;
BEGIN
    FOR t IN
        SELECT c.relname::text AS tab, g.tgname::text AS trig
          FROM pg_catalog.pg_trigger g
          JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_catalog.pg_proc p ON p.oid = g.tgfoid
         WHERE n.nspname = s AND NOT g.tgisinternal
           AND p.pronamespace = 'hub'::regnamespace
         ORDER BY 1, 2
    LOOP
        CONTINUE WHEN t.tab || '/' || t.trig = ANY (coalesce(keep, '{}'));
        EXECUTE format('DROP TRIGGER %I ON %I.%I', t.trig, s, t.tab);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$fn$;

-- Attaches the hub to tenant schema `schema`: registers it
-- (hub.register_tenant), resolves `mapping` against its tables
-- (hub.tenant_mapping_resolve; docs/tenants.md lists every key), stores
-- both in hub.tenant_mappings and puts the event triggers on the tables:
--   hub_panic         AFTER INSERT ON PanicAlert
--   hub_visitor       AFTER INSERT ON Visitor
--   hub_payment       AFTER UPDATE OF status ON Payment, when the status changes
--   hub_announcement  AFTER INSERT ON Announcement, when type is emergency
-- A table mapped to null gets no trigger (that kind is not emitted). Returns
-- the resolved mapping. Attaching again replaces the mapping and the
-- triggers (CREATE OR REPLACE TRIGGER; a trigger of ours left on a table the
-- new mapping no longer names is dropped), so there is never more than one
-- trigger per kind. Any error (22023 for a bad mapping, 42P01 for a missing
-- table, 42703 for a missing column) leaves everything as it was.
-- Runs with its caller's rights: only administrators may call it
-- (EXECUTE revoked from PUBLIC), and the caller must be allowed to create
-- triggers on the tenant's tables (their owner, or a superuser).
CREATE OR REPLACE FUNCTION hub.attach_tenant(schema text, mapping jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    s       text := attach_tenant.schema;
    res     jsonb;
    t       jsonb;
    c       jsonb;
    u       jsonb;
    k       record;
    tab     text;
    cols    jsonb;
    args    text[];
    on_what text;
    cond    text;
    keep    text[] := '{}';
BEGIN
    IF s IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = s) THEN
        RAISE EXCEPTION 'hub.attach_tenant: no schema named % (the backend creates the tenant''s schema and tables first)',
            hub.quote_for_error(s) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    res := hub.tenant_mapping_resolve('hub.attach_tenant', s, attach_tenant.mapping);
    PERFORM hub.register_tenant(s);

    t := res->'tables';
    c := res->'columns';
    u := c->'User';
    -- One trigger per kind; its function's arguments are the kind's fields'
    -- columns, in this order ('' for a column the tenant does not have).
    FOR k IN
        SELECT * FROM (VALUES
            ('PanicAlert',   'hub_panic',        'tenant_on_panic',
             '{id,userId,unitId,message,createdAt}'::text[]),
            ('Visitor',      'hub_visitor',      'tenant_on_visitor',
             '{id,unitId,name,createdAt}'),
            ('Payment',      'hub_payment',      'tenant_on_payment',
             '{id,userId,amount,currency,status}'),
            ('Announcement', 'hub_announcement', 'tenant_on_announcement',
             '{id,title,body,type}')) AS x(part, trig, fn, fields)
    LOOP
        tab := t->>k.part;
        CONTINUE WHEN tab IS NULL;
        cols := c->k.part;
        args := ARRAY(SELECT coalesce(cols->>f, '') FROM unnest(k.fields) WITH ORDINALITY AS a(f, i)
                       ORDER BY i);
        on_what := 'INSERT';
        cond := '';
        CASE k.part
        WHEN 'PanicAlert' THEN
            -- The User table, to name who pressed it.
            args := args || ARRAY[t->>'User', u->>'id', coalesce(u->>'name', '')];
        WHEN 'Payment' THEN
            on_what := format('UPDATE OF %I', cols->>'status');
            cond := format('WHEN (OLD.%1$I IS DISTINCT FROM NEW.%1$I)', cols->>'status');
        WHEN 'Announcement' THEN
            cond := format('WHEN (lower(NEW.%I::text) = %L)', cols->>'type', 'emergency');
        ELSE
            NULL;
        END CASE;
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %I.%I FOR EACH ROW %s EXECUTE FUNCTION hub.%I(%s)',
                       k.trig, on_what, s, tab, cond, k.fn,
                       (SELECT string_agg(quote_literal(a), ', ' ORDER BY i)
                          FROM unnest(args) WITH ORDINALITY AS x(a, i)));
        keep := keep || (tab || '/' || k.trig);
    END LOOP;
    PERFORM hub.tenant_drop_triggers(s, keep);

    INSERT INTO hub.tenant_mappings AS tm (tenant, mapping, resolved)
    VALUES (s, coalesce(attach_tenant.mapping, '{}'), res)
    ON CONFLICT (tenant) DO UPDATE
       SET mapping = EXCLUDED.mapping, resolved = EXCLUDED.resolved, attached_at = now();
    RETURN res;
END
$fn$;

-- Detaches the hub from tenant `schema`: drops the triggers of ours on its
-- tables (those hub.attach_tenant or hub.create_demo_tenant put there),
-- forgets its mapping and unregisters it (hub.unregister_tenant): from then
-- on its rows emit nothing, hub.emit refuses it and hubs refuse tokens
-- naming it once their tenant cache forgets it. Events already in
-- hub.outbox stay until retention purges them; the tenant's tables are not
-- touched, and the schema need not exist any more. Returns true when it was
-- a tenant. Administrators only, like hub.attach_tenant.
CREATE OR REPLACE FUNCTION hub.detach_tenant(schema text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, hub, pg_temp AS $fn$
BEGIN
    -- Never schema hub's own triggers (nor PostgreSQL's schemas).
    IF detach_tenant.schema IS NULL OR detach_tenant.schema !~ '^[A-Za-z0-9_-]{1,63}$'
       OR detach_tenant.schema IN ('hub', 'public', 'information_schema')
       OR detach_tenant.schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'hub.detach_tenant: schema must be 1-63 characters of [A-Za-z0-9_-] and not hub, public, information_schema or pg_*, got %',
            hub.quote_for_error(detach_tenant.schema) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM hub.tenant_drop_triggers(detach_tenant.schema, '{}');
    DELETE FROM hub.tenant_mappings m WHERE m.tenant = detach_tenant.schema;
    RETURN hub.unregister_tenant(detach_tenant.schema);
END
$fn$;

-- The auto-attach event trigger's function: for each schema a CREATE TABLE
-- of this statement touched that matches the stored pattern and is not
-- attached yet, attaches it once every table the stored mapping names
-- exists (a Prisma migration creates them one statement at a time). It must
-- never break the backend's migration: an attach that fails is reported as
-- a WARNING and tried again at the schema's next CREATE TABLE. SECURITY
-- DEFINER: it runs for whoever creates the table, attaches as the schema's
-- owner.
CREATE OR REPLACE FUNCTION hub.on_tenant_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    cfg    record;
    s      text;
    needed text[];
BEGIN
    SELECT a.pattern, a.mapping INTO cfg FROM hub.auto_attach a;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The tables the mapping needs: the five of hub.tenant_mapping_fields
    -- under their mapped names (null: left out), the devices and units tables.
    SELECT array_agg(coalesce(cfg.mapping->'tables'->>f, f))
             FILTER (WHERE jsonb_typeof(cfg.mapping->'tables'->f) IS DISTINCT FROM 'null')
      INTO needed
      FROM jsonb_object_keys(hub.tenant_mapping_fields()) f;
    needed := needed || ARRAY(SELECT cfg.mapping->k->>'table' FROM unnest(ARRAY['devices', 'units']) k
                               WHERE cfg.mapping->k->>'table' IS NOT NULL);
    FOR s IN
        SELECT DISTINCT d.schema_name FROM pg_catalog.pg_event_trigger_ddl_commands() d
         WHERE d.command_tag = 'CREATE TABLE' AND d.schema_name ~ cfg.pattern
           AND NOT EXISTS (SELECT 1 FROM hub.tenant_mappings m WHERE m.tenant = d.schema_name)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM unnest(needed) t WHERE hub.tenant_table(s, t) IS NULL);
        BEGIN
            PERFORM hub.attach_tenant(s, cfg.mapping);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'hub auto-attach: schema % not attached: %', hub.tenant_ident(s), SQLERRM;
        END;
    END LOOP;
END
$fn$;

-- Turns auto-attach on (or changes its setting): from now on each new
-- schema whose name matches `pattern` (a POSIX regular expression, e.g.
-- '^conjunto_') is attached with `mapping` as soon as the tables the
-- mapping names all exist. Schemas that exist already are not touched
-- (attach those with hub.attach_tenant). Installs the event trigger
-- hub_auto_attach ON ddl_command_end for CREATE TABLE, which needs a
-- superuser. The mapping's shape is checked now (22023), its tables and
-- columns at each attach.
CREATE OR REPLACE FUNCTION hub.enable_auto_attach(pattern text, mapping jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, hub, pg_temp AS $fn$
BEGIN
    IF enable_auto_attach.pattern IS NULL OR enable_auto_attach.pattern = '' THEN
        RAISE EXCEPTION 'hub.enable_auto_attach: pattern must be a non-empty regular expression, got %',
            hub.quote_for_error(enable_auto_attach.pattern) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        PERFORM '' ~ enable_auto_attach.pattern;
    EXCEPTION WHEN invalid_regular_expression THEN
        RAISE EXCEPTION 'hub.enable_auto_attach: pattern % is no valid regular expression: %',
            hub.quote_for_error(enable_auto_attach.pattern), SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    PERFORM hub.tenant_mapping_check('hub.enable_auto_attach', enable_auto_attach.mapping);
    INSERT INTO hub.auto_attach AS a (pattern, mapping)
    VALUES (enable_auto_attach.pattern, coalesce(enable_auto_attach.mapping, '{}'))
    ON CONFLICT (singleton) DO UPDATE
       SET pattern = EXCLUDED.pattern, mapping = EXCLUDED.mapping, enabled_at = now();
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'hub_auto_attach') THEN
        CREATE EVENT TRIGGER hub_auto_attach ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE')
            EXECUTE FUNCTION hub.on_tenant_ddl();
    END IF;
END
$fn$;

-- Turns auto-attach off: drops the event trigger and the setting. Tenants
-- it attached stay attached. Returns true when it was on.
CREATE OR REPLACE FUNCTION hub.disable_auto_attach() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    was boolean;
BEGIN
    DROP EVENT TRIGGER IF EXISTS hub_auto_attach;
    DELETE FROM hub.auto_attach;
    GET DIAGNOSTICS was = ROW_COUNT;
    RETURN was;
END
$fn$;

-- hub.audience (040_audience.sql, contract signature and room semantics),
-- now reading the tenant's stored mapping when it has one:
--   all        every user of the mapped User table
--   user:X     the user whose id column is X
--   role:R     users whose role column, as text and upper-cased, is one of
--              roles.R of the mapping (by default the upper-cased R)
--   unit:U     users whose unit column is U, or who have a row (user, U) in
--              the units table
--   else       nobody
-- One row per (user, device token): the tokens are the User table's device
-- column (text, or an array of text) together with the devices table's rows
-- for the user, NULL and empty ones left out, each once; a user with none
-- appears once with device_token NULL. Ordered by user, then token. A
-- tenant without a stored mapping (a demo tenant) is read exactly as
-- before: the demo layout, one row per user.
CREATE OR REPLACE FUNCTION hub.audience(tenant text, rooms text[])
RETURNS TABLE (user_id text, device_token text, phone text, email text, locale text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    everyone boolean;
    ids      text[];
    role_rms text[];
    units    text[];
    m        jsonb;
    roles    text[];
    s        text := audience.tenant;
    ut       text;
    u        jsonb;
    dev      jsonb;
    un       jsonb;
    rel      oid;
    side     oid;
    id_expr  text;
    toks     text := 'NULL::text[]';
    unit_cnd text := '';
    dev_sql  text := '';
BEGIN
    IF NOT hub.is_tenant(s) THEN
        RAISE EXCEPTION 'hub.audience: tenant must name an existing registered tenant schema, got %',
            hub.quote_for_error(s) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT coalesce(bool_or(r = 'all'), false),
           coalesce(array_agg(substr(r, 6)) FILTER (WHERE r LIKE 'user:%'), '{}'),
           coalesce(array_agg(substr(r, 6))
                    FILTER (WHERE r IN ('role:guard', 'role:resident', 'role:admin')), '{}'),
           coalesce(array_agg(substr(r, 6)) FILTER (WHERE r LIKE 'unit:%'), '{}')
      INTO everyone, ids, role_rms, units
      FROM unnest(coalesce(audience.rooms, '{}')) AS r;

    SELECT tm.resolved INTO m FROM hub.tenant_mappings tm WHERE tm.tenant = s;
    IF m IS NULL THEN
        -- The demo layout, as 040_audience.sql reads it.
        RETURN QUERY EXECUTE format(
            'SELECT DISTINCT ON (u.id) u.id, u."deviceToken", u."phoneNumber", u.email, u.locale
               FROM %I."User" u
              WHERE $1 OR u.id = ANY ($2) OR u.role = ANY ($3) OR u."unitId" = ANY ($4)
              ORDER BY u.id', s)
        USING everyone, ids, ARRAY(SELECT upper(x) FROM unnest(role_rms) x), units;
        RETURN;
    END IF;

    SELECT coalesce(array_agg(v), '{}') INTO roles
      FROM unnest(role_rms) x, jsonb_array_elements_text(m->'roles'->x) v;
    ut  := m->'tables'->>'User';
    u   := m->'columns'->'User';
    dev := m->'devices';
    un  := m->'units';
    rel := hub.tenant_table(s, ut);
    IF rel IS NULL THEN
        RAISE EXCEPTION 'hub.audience: table %.% of tenant % is gone since it was attached (attach it again)',
            hub.tenant_ident(s), hub.tenant_ident(ut), hub.quote_for_error(s)
            USING ERRCODE = 'undefined_table';
    END IF;
    id_expr := hub.tenant_text_expr(rel, u->>'id', 'u');

    -- The device column: text, or an array of text (its type decides, now).
    IF u->>'deviceToken' IS NOT NULL THEN
        toks := hub.tenant_text_expr(rel, u->>'deviceToken', 'u');
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                     JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                    WHERE a.attrelid = rel AND a.attname = u->>'deviceToken'
                      AND t.typcategory <> 'A') THEN
            toks := format('ARRAY[%s]', toks);
        END IF;
    END IF;
    IF u->>'unitId' IS NOT NULL THEN
        unit_cnd := format(' OR %s = ANY ($4)', hub.tenant_text_expr(rel, u->>'unitId', 'u'));
    END IF;
    IF jsonb_typeof(un) = 'object' THEN
        side := hub.tenant_table(s, un->>'table');
        unit_cnd := unit_cnd || format(
            ' OR EXISTS (SELECT 1 FROM %I.%I j WHERE %s = %s AND %s = ANY ($4))',
            s, un->>'table', hub.tenant_text_expr(side, un->>'user', 'j'), id_expr,
            hub.tenant_text_expr(side, un->>'unit', 'j'));
    END IF;
    IF jsonb_typeof(dev) = 'object' THEN
        side := hub.tenant_table(s, dev->>'table');
        dev_sql := format(' UNION SELECT %s FROM %I.%I dv WHERE %s = m.id',
                          hub.tenant_text_expr(side, dev->>'token', 'dv'), s, dev->>'table',
                          hub.tenant_text_expr(side, dev->>'user', 'dv'));
    END IF;

    -- Every identifier comes from the stored mapping: quoted with %I.
    RETURN QUERY EXECUTE format(
        'SELECT m.id, d.token, m.phone, m.email, m.locale
           FROM (SELECT %s AS id, %s AS toks, %s AS phone, %s AS email, %s AS locale
                   FROM %I.%I u
                  WHERE $1 OR %s = ANY ($2) OR upper(%s) = ANY ($3)%s) m
           LEFT JOIN LATERAL (
                SELECT DISTINCT t.tok AS token
                  FROM (SELECT unnest(m.toks)%s) t(tok)
                 WHERE t.tok IS NOT NULL AND t.tok <> '''') d ON true
          ORDER BY m.id, d.token',
        id_expr, toks,
        hub.tenant_text_expr(rel, u->>'phoneNumber', 'u'),
        hub.tenant_text_expr(rel, u->>'email', 'u'),
        hub.tenant_text_expr(rel, u->>'locale', 'u'),
        s, ut, id_expr, hub.tenant_text_expr(rel, u->>'role', 'u'), unit_cnd, dev_sql)
    USING everyone, ids, roles, units;
END
$fn$;

-- hub.tenant_user_name (070_fallback.sql), now reading the mapped User
-- table and name column of an attached tenant; NULL when it has none.
CREATE OR REPLACE FUNCTION hub.tenant_user_name(p_tenant text, p_user text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    found_name text;
    m          jsonb;
    rel        oid;
BEGIN
    IF NOT hub.is_tenant(p_tenant) THEN
        RETURN NULL;
    END IF;
    SELECT tm.resolved INTO m FROM hub.tenant_mappings tm WHERE tm.tenant = p_tenant;
    IF to_regclass(format('%I.%I', p_tenant, coalesce(m->'tables'->>'User', 'User'))) IS NULL
       OR (m IS NOT NULL AND m->'columns'->'User'->>'name' IS NULL) THEN
        RETURN NULL;
    END IF;
    BEGIN
        IF m IS NULL THEN
            -- The demo layout, as 070_fallback.sql reads it.
            EXECUTE format('SELECT name::text FROM %I."User" WHERE id = $1', p_tenant)
               INTO found_name USING p_user;
        ELSE
            rel := hub.tenant_table(p_tenant, m->'tables'->>'User');
            EXECUTE format('SELECT %s FROM %I.%I u WHERE %s = $1',
                           hub.tenant_text_expr(rel, m->'columns'->'User'->>'name', 'u'),
                           p_tenant, m->'tables'->>'User',
                           hub.tenant_text_expr(rel, m->'columns'->'User'->>'id', 'u'))
               INTO found_name USING p_user;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        found_name := NULL; -- another layout, or the table changed since it was mapped: no name
    END;
    RETURN left(found_name, 200);
END
$fn$;

-- 080_roles.sql closed every function that existed then; these are new.
-- None is for the hub or producers: the triggers run their functions
-- whoever fires them (EXECUTE is checked only when a trigger is created).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA hub FROM PUBLIC;
