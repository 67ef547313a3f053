-- Outbox retention: events older than the hub's retention window are
-- deleted in small batches, always a prefix in seq order, and the highest
-- seq ever deleted is kept so that a client resuming from before it is
-- told (resume_gap) instead of silently missing events.

CREATE TABLE IF NOT EXISTS hub.outbox_horizon (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    purged_through bigint NOT NULL DEFAULT 0
);
INSERT INTO hub.outbox_horizon (only_row) VALUES (true) ON CONFLICT DO NOTHING;

-- Deletes at most batch outbox rows committed before now() - retention,
-- lowest seq first, and advances the horizon. The events' bookkeeping goes
-- with them: their finished fallback jobs and the claim of a panic
-- (hub.fallback_jobs, hub.claims, schema/070_fallback.sql; a job still open
-- is deleted by hub.fallback_plan() when it comes due and finds its event
-- gone). hub.deliveries, the delivery log, is not touched. committed_at
-- grows with seq (both are set at commit under the same lock), so the
-- rows deleted are always a prefix of the seq order. Returns how many rows
-- it deleted; the caller repeats while that equals batch. Each call is its
-- own short statement: no long locks, and concurrent callers (several
-- hubs) skip each other's rows.
-- SECURITY DEFINER with a fixed search_path: the hub's role may call it
-- without being able to delete from hub.outbox itself (080_roles.sql).
-- The arguments every purge takes: a retention (non-negative interval) and
-- a batch size (1 to 100000); anything else is refused with 22023.
CREATE OR REPLACE FUNCTION hub.purge_check_args(retention interval, batch integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, hub, pg_temp AS $$
BEGIN
    IF retention IS NULL OR retention < interval '0' THEN
        RAISE EXCEPTION 'retention must be a non-negative interval, got %', retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch IS NULL OR batch < 1 OR batch > 100000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 100000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION hub.purge_outbox(retention interval, batch integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $$
DECLARE
    n integer;
    top bigint;
BEGIN
    PERFORM hub.purge_check_args(retention, batch);
    WITH victims AS (
        SELECT id FROM hub.outbox
        WHERE seq IS NOT NULL AND committed_at < now() - retention
        ORDER BY seq
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM hub.outbox o USING victims v WHERE o.id = v.id RETURNING o.id, o.seq
    ), jobs AS (
        DELETE FROM hub.fallback_jobs j USING gone g
         WHERE j.event_id = g.id AND j.done_at IS NOT NULL
    ), claimed AS (
        DELETE FROM hub.claims c USING gone g WHERE c.event_id = g.id
    )
    SELECT count(*), max(seq) INTO n, top FROM gone;
    IF n > 0 THEN
        UPDATE hub.outbox_horizon SET purged_through = greatest(purged_through, top);
    END IF;
    RETURN n;
END;
$$;

-- Delivery-log retention: hub.deliveries keeps a row per recipient and
-- channel of every event that needed one (acks, sent marks, fallback), so
-- it grows with traffic and is trimmed here, oldest first, in batches like
-- the outbox. Only settled rows go (a pending one is work still to do), and
-- never one younger than the longest policy's max_age_ms (fallback may
-- still act on an event that young, and its row is the record that a send
-- already happened), nor one of an event whose fallback job is still open.
-- The hub calls it with HUB_DELIVERY_RETENTION_S; returns how many rows it
-- deleted, and the caller repeats while that equals batch.
DO $do$
BEGIN
    IF to_regclass('hub.deliveries_created') IS NULL THEN
        CREATE INDEX deliveries_created ON hub.deliveries (created_at);
    END IF;
END
$do$;

CREATE OR REPLACE FUNCTION hub.purge_deliveries(retention interval, batch integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $$
DECLARE
    n integer;
    keep interval;
BEGIN
    PERFORM hub.purge_check_args(retention, batch);
    SELECT greatest(retention, coalesce(max(p.max_age_ms), 0) * interval '1 millisecond')
      INTO keep FROM hub.policies p;
    WITH victims AS (
        SELECT d.ctid AS row_id FROM hub.deliveries d
        WHERE d.created_at < now() - keep
          AND d.status <> 'pending'
          AND NOT EXISTS (SELECT 1 FROM hub.fallback_jobs j
                          WHERE j.event_id = d.event_id AND j.done_at IS NULL)
        ORDER BY d.created_at
        LIMIT batch
        FOR UPDATE OF d SKIP LOCKED
    )
    DELETE FROM hub.deliveries d USING victims v WHERE d.ctid = v.row_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
