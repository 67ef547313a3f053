-- demo/demo_tenant.sql - a tenant laid out like the Armonía backend's Prisma
-- schema, and the triggers that turn its rows into events (README "How an event travels").
--
-- For the demo and the tests only (scripts/pg.sh applies it after the steps
-- of schema hub): it is not a step, `armonia-hub migrate` never applies it,
-- and the package installs it apart. Safe to apply twice.
--
-- The trigger functions live once, here in schema hub, and name the tenant by
-- TG_TABLE_SCHEMA: every tenant's triggers share them, and replacing one here
-- changes every tenant at once.
--
-- Free text (messages, titles, bodies, names) is cut before it goes into an
-- event so that the event always fits hub.emit's 32768-byte data limit, even
-- when every character needs a 6-byte JSON escape: a resident's panic or the
-- administration's emergency notice must never fail to save because of its
-- length. The full text stays in the tenant's row.

-- insert into "PanicAlert" -> panic to the complex's guards and admins,
-- critical, to be acked (claimed). Carries the name of whoever pressed it.
CREATE OR REPLACE FUNCTION hub.on_panic_alert() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    user_name text;
BEGIN
    IF NEW."userId" IS NOT NULL THEN
        EXECUTE format('SELECT name FROM %I."User" WHERE id = $1', TG_TABLE_SCHEMA)
           INTO user_name USING NEW."userId";
    END IF;
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'panic', ARRAY['role:guard', 'role:admin'],
                     jsonb_build_object('alertId',   NEW.id,
                                        'userId',    NEW."userId",
                                        'userName',  left(user_name, 200),
                                        'unitId',    NEW."unitId",
                                        'message',   left(NEW.message, 1000),
                                        'createdAt', NEW."createdAt"),
                     'critical', true);
    RETURN NULL;
END
$fn$;

-- insert into "Visitor" -> visitor to the unit's residents, high, to be acked.
CREATE OR REPLACE FUNCTION hub.on_visitor() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'visitor', ARRAY['unit:' || NEW."unitId"],
                     jsonb_build_object('visitorId', NEW.id,
                                        'unitId',    NEW."unitId",
                                        'name',      left(NEW.name, 200),
                                        'createdAt', NEW."createdAt"),
                     'high', true);
    RETURN NULL;
END
$fn$;

-- "Payment".status changes -> payment to the paying user, normal priority.
-- The trigger's WHEN clause already skips updates that keep the status.
CREATE OR REPLACE FUNCTION hub.on_payment_status() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'payment', ARRAY['user:' || NEW."userId"],
                     jsonb_build_object('paymentId', NEW.id,
                                        'userId',    NEW."userId",
                                        'amount',    NEW.amount,
                                        'currency',  NEW.currency,
                                        'status',    NEW.status),
                     'normal', false);
    RETURN NULL;
END
$fn$;

-- insert into "Announcement" with type 'emergency' -> announcement to
-- everyone, critical (hub.policies sends it by push and SMS at once).
CREATE OR REPLACE FUNCTION hub.on_emergency_announcement() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM hub.emit(TG_TABLE_SCHEMA, 'announcement', ARRAY['all'],
                     jsonb_build_object('announcementId', NEW.id,
                                        'title',          left(NEW.title, 200),
                                        'body',           left(NEW.body, 4000),
                                        'type',           NEW.type),
                     'critical', false);
    RETURN NULL;
END
$fn$;

-- Creates tenant schema `name` with the demo layout and its triggers:
--   "User"(id, name, role, "unitId", "deviceToken", "phoneNumber", email, locale)
--   "PanicAlert"(id, "userId", "unitId", message, "createdAt")
--   "Visitor"(id, "unitId", name, "createdAt")
--   "Payment"(id, "userId", amount, currency, status)
--   "Announcement"(id, title, body, type, "createdAt")
-- Ids are text defaulting to a random UUID, timestamps default to now(), so
-- an insert names only the other columns. No foreign keys: a test or demo may
-- record a panic for a user it never created. Calling it again for the same
-- name changes nothing (tables are kept, triggers re-pointed). The schema is
-- registered as a tenant (hub.register_tenant). For administrators only
-- (080_roles.sql): neither the hub nor producers may create tenants.
CREATE OR REPLACE FUNCTION hub.create_demo_tenant(name text) RETURNS void
LANGUAGE plpgsql
-- Quiet on a second call: no "already exists, skipping" notices.
SET client_min_messages = warning
AS $fn$
DECLARE
    s text := create_demo_tenant.name;
BEGIN
    IF s IS NULL OR s !~ '^[A-Za-z0-9_-]{1,63}$'
       OR s IN ('hub', 'public', 'information_schema') OR s LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'hub.create_demo_tenant: name must be 1-63 characters of [A-Za-z0-9_-] and not hub, public, information_schema or pg_*, got %',
            hub.quote_for_error(s) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);

    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %I."User" (
            id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            name          text NOT NULL,
            role          text NOT NULL CHECK (role IN ('RESIDENT', 'GUARD', 'ADMIN')),
            "unitId"      text,
            "deviceToken" text,
            "phoneNumber" text,
            email         text,
            locale        text NOT NULL DEFAULT 'es-CO'
        )$ddl$, s);
    -- The audience lookups: by role and by unit.
    EXECUTE format('CREATE INDEX IF NOT EXISTS "User_role_idx" ON %I."User" (role)', s);
    EXECUTE format('CREATE INDEX IF NOT EXISTS "User_unitId_idx" ON %I."User" ("unitId")', s);

    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %I."PanicAlert" (
            id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            "userId"    text,
            "unitId"    text,
            message     text,
            "createdAt" timestamptz(3) NOT NULL DEFAULT now()
        )$ddl$, s);

    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %I."Visitor" (
            id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            "unitId"    text NOT NULL,
            name        text NOT NULL,
            "createdAt" timestamptz(3) NOT NULL DEFAULT now()
        )$ddl$, s);

    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %I."Payment" (
            id       text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            "userId" text NOT NULL,
            amount   numeric NOT NULL,
            currency text NOT NULL DEFAULT 'COP',
            status   text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'CANCELLED', 'REFUNDED'))
        )$ddl$, s);

    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %I."Announcement" (
            id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            title       text NOT NULL,
            body        text NOT NULL,
            type        text NOT NULL DEFAULT 'general' CHECK (type IN ('general', 'emergency')),
            "createdAt" timestamptz(3) NOT NULL DEFAULT now()
        )$ddl$, s);

    EXECUTE format($ddl$
        CREATE OR REPLACE TRIGGER hub_panic AFTER INSERT ON %I."PanicAlert"
            FOR EACH ROW EXECUTE FUNCTION hub.on_panic_alert()$ddl$, s);
    EXECUTE format($ddl$
        CREATE OR REPLACE TRIGGER hub_visitor AFTER INSERT ON %I."Visitor"
            FOR EACH ROW EXECUTE FUNCTION hub.on_visitor()$ddl$, s);
    EXECUTE format($ddl$
        CREATE OR REPLACE TRIGGER hub_payment AFTER UPDATE OF status ON %I."Payment"
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
            EXECUTE FUNCTION hub.on_payment_status()$ddl$, s);
    EXECUTE format($ddl$
        CREATE OR REPLACE TRIGGER hub_announcement AFTER INSERT ON %I."Announcement"
            FOR EACH ROW WHEN (NEW.type = 'emergency')
            EXECUTE FUNCTION hub.on_emergency_announcement()$ddl$, s);

    PERFORM hub.register_tenant(s);
END
$fn$;

-- Applied after 080_roles.sql, whose REVOKE does not see these: nobody but
-- the schema's owner may call them (a trigger runs its function whoever
-- fires it; EXECUTE is checked only when the trigger is created).
REVOKE EXECUTE ON FUNCTION
    hub.on_panic_alert(),
    hub.on_visitor(),
    hub.on_payment_status(),
    hub.on_emergency_announcement(),
    hub.create_demo_tenant(text)
    FROM PUBLIC;
