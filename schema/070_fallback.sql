-- 070_fallback.sql - fallback delivery kept in the database (docs/fallback.md):
-- jobs due at an event's ack timeout, delivery rows per (event, user,
-- channel) claimed by hubs under a lease, outcomes, the next channel, acks
-- and "sent" marks, and the claim of a panic. docs/fallback.md tells the
-- whole story; the hub's side is hub/fallback.c.
--
-- Everything that must survive a hub (deadlines, what is pending, who holds
-- it) is a row, so a restarted hub, or another one, carries on. Several hubs
-- may call every function here at once: work is taken with FOR UPDATE SKIP
-- LOCKED, and a delivery row only leaves 'pending' once, so the primary key
-- of hub.deliveries keeps "at most one successful send per (event, user,
-- channel)".
--
-- Safe to apply twice: every statement is IF NOT EXISTS, OR REPLACE or
-- guarded. Columns, indexes and triggers of existing tables are added inside
-- DO blocks only when missing, because even ALTER TABLE ... ADD COLUMN IF NOT
-- EXISTS, CREATE INDEX IF NOT EXISTS and CREATE OR REPLACE TRIGGER lock the
-- table first: re-applying the schema to a live database would stall the
-- producers (hub.outbox) and the hubs (hub.deliveries) each time.

------------------------------------------------------------------------------
-- Policies: fallback_all, and a NOTIFY when they change.
------------------------------------------------------------------------------

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'hub.policies'::regclass
                      AND attname = 'fallback_all' AND NOT attisdropped) THEN
        -- true: every fallback channel at once for each unreached user
        -- (escalation); false: the channels in order until one succeeds.
        ALTER TABLE hub.policies ADD COLUMN fallback_all boolean NOT NULL DEFAULT false;
        -- The shipped panic policy escalates: every guard and admin not yet
        -- reached gets push and SMS. Set only here, when the column is born,
        -- so an operator's later edit survives every re-apply.
        UPDATE hub.policies SET fallback_all = true WHERE kind = 'panic';
    END IF;
END
$do$;

-- Hubs cache the policies (which kinds need "sent" marks); this tells them
-- to read the table again. Statement level: one NOTIFY per statement, and
-- identical notifications of one transaction are folded into one anyway.
CREATE OR REPLACE FUNCTION hub.policies_notify() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('hub_policies', '');
    RETURN NULL;
END
$fn$;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'hub.policies'::regclass
                      AND tgname = 'policies_notify') THEN
        CREATE TRIGGER policies_notify
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hub.policies
            FOR EACH STATEMENT EXECUTE FUNCTION hub.policies_notify();
    END IF;
END
$do$;

------------------------------------------------------------------------------
-- Deliveries: where a row came from, where it goes, and who holds it.
------------------------------------------------------------------------------

DO $do$
DECLARE
    col  text;
    defs text[] := ARRAY[
        -- 'always' or 'fallback': the phase that planned the row ('ws' rows: NULL).
        -- Only 'fallback' rows of an ordered policy chain to the next channel.
        'origin text CHECK (origin IN (''always'', ''fallback''))',
        -- The device token, E.164 phone or e-mail address the row is sent to,
        -- read from hub.audience() when it was planned.
        'address text',
        -- The recipient's locale, for the message template.
        'locale text',
        -- While a hub sends the row: until when it is that hub's. A lease that
        -- ran out (the hub died) lets another hub take the row.
        'lease_until timestamptz',
        -- Which hub holds (or last held) the lease, for operators.
        'leased_by text'];
BEGIN
    FOREACH col IN ARRAY defs LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute
                        WHERE attrelid = 'hub.deliveries'::regclass
                          AND attname = split_part(col, ' ', 1) AND NOT attisdropped) THEN
            EXECUTE 'ALTER TABLE hub.deliveries ADD COLUMN ' || col;
        END IF;
    END LOOP;

    -- hub.delivery_claim(): pending rows of one channel, in due order. Partial,
    -- so it holds only the work still to do, however long the history grows.
    IF to_regclass('hub.deliveries_pending_due') IS NULL THEN
        CREATE INDEX deliveries_pending_due ON hub.deliveries (channel, next_attempt_at)
            WHERE status = 'pending';
    END IF;
END
$do$;

-- Which contact point a channel uses; blank counts as missing. A phone
-- number loses the separators people type in it (spaces, dashes, dots,
-- parentheses: "+57 300 123-4567" is +573001234567). Whether the result is
-- usable is the hub's decision (channels/address.c): a row whose address
-- is not a plain e-mail address, E.164 number or device token is skipped
-- there with the reason, never sent.
CREATE OR REPLACE FUNCTION hub.fallback_address(channel text, device_token text,
                                                phone text, email text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT nullif(btrim(CASE fallback_address.channel
                            WHEN 'push'  THEN fallback_address.device_token
                            WHEN 'sms'   THEN regexp_replace(fallback_address.phone,
                                                             '[[:space:]().-]', '', 'g')
                            WHEN 'email' THEN fallback_address.email END), '')
$fn$;

-- The detail of a row skipped because the user has no address for channel.
CREATE OR REPLACE FUNCTION hub.fallback_missing(channel text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE fallback_missing.channel
               WHEN 'push'  THEN 'no device token'
               WHEN 'sms'   THEN 'no phone number'
               WHEN 'email' THEN 'no e-mail address'
               ELSE 'no address' END
$fn$;

------------------------------------------------------------------------------
-- Jobs: the deadlines, written with the event itself.
------------------------------------------------------------------------------

-- One row per event and phase that has channels to plan:
--   always    due at once (created_at): the policy's always channels for everyone
--   fallback  due at created_at + ack_timeout_ms: fallback for the unreached
-- Written in the producer's transaction, so a deadline exists exactly when
-- the event does, and outlives every hub. No foreign key to hub.outbox: it
-- would slow every emit and every retention purge; a job whose event is gone
-- is simply closed when it comes due.
CREATE TABLE IF NOT EXISTS hub.fallback_jobs (
    event_id bigint NOT NULL,
    phase    text NOT NULL CHECK (phase IN ('always', 'fallback')),
    tenant   text NOT NULL,
    due_at   timestamptz NOT NULL,
    -- When hub.fallback_plan() handled it; NULL while still to do.
    done_at  timestamptz,
    PRIMARY KEY (event_id, phase)
);

DO $do$
BEGIN
    -- hub.fallback_plan()'s scan: open jobs in due order. Partial: only open
    -- jobs, a few per event in flight, whatever the size of the history.
    IF to_regclass('hub.fallback_jobs_due') IS NULL THEN
        CREATE INDEX fallback_jobs_due ON hub.fallback_jobs (due_at) WHERE done_at IS NULL;
    END IF;
END
$do$;

-- AFTER INSERT on hub.outbox, per row, not deferred (created_at is already
-- known). Kept cheap because it runs inside every producer's transaction:
-- one primary-key lookup of the kind's policy and at most two inserts. A
-- kind without policy (or with no channels) costs the lookup only.
-- Ids come from the identity and are not reused, so a job row never exists
-- already, unless someone reset the identity after a purge. Then the stale
-- row is taken over (ON CONFLICT DO UPDATE): failing the producer's
-- transaction would lose the row that caused it (a panic must always save).
-- The policy is read again when the job is planned; only whether a job
-- exists, and when it is due, is fixed here.
CREATE OR REPLACE FUNCTION hub.outbox_fallback_jobs() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    timeout_ms int;
    fb         text[];
    alw        text[];
BEGIN
    SELECT p.ack_timeout_ms, p.fallback, p.always INTO timeout_ms, fb, alw
      FROM hub.policies p WHERE p.kind = NEW.kind;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF cardinality(alw) > 0 THEN
        INSERT INTO hub.fallback_jobs (event_id, phase, tenant, due_at)
        VALUES (NEW.id, 'always', NEW.tenant, NEW.created_at)
        ON CONFLICT (event_id, phase) DO UPDATE
            SET tenant = EXCLUDED.tenant, due_at = EXCLUDED.due_at, done_at = NULL;
    END IF;
    IF cardinality(fb) > 0 THEN
        INSERT INTO hub.fallback_jobs (event_id, phase, tenant, due_at)
        VALUES (NEW.id, 'fallback', NEW.tenant,
                NEW.created_at + timeout_ms * interval '1 millisecond')
        ON CONFLICT (event_id, phase) DO UPDATE
            SET tenant = EXCLUDED.tenant, due_at = EXCLUDED.due_at, done_at = NULL;
    END IF;
    RETURN NULL;
END
$fn$;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'hub.outbox'::regclass
                      AND tgname = 'outbox_fallback_jobs') THEN
        CREATE TRIGGER outbox_fallback_jobs
            AFTER INSERT ON hub.outbox
            FOR EACH ROW EXECUTE FUNCTION hub.outbox_fallback_jobs();
    END IF;
END
$do$;

------------------------------------------------------------------------------
-- Planning: due jobs -> delivery rows.
------------------------------------------------------------------------------

-- Plans one job's delivery rows for event ev under policy pol (both read by
-- the caller just now). Returns the number of 'pending' rows created.
--   always    every audience user x every always channel
--   fallback  audience users not reached over the WebSocket (ack events: a
--             'ws' row 'acked'; others: 'sent' or 'acked'); with fallback_all
--             a row per fallback channel, otherwise the channels in order up
--             to the first the user has an address for.
-- A channel without an address gets a 'skipped' row saying which contact
-- point is missing. ON CONFLICT DO NOTHING: a row that exists (the other
-- phase made it, or a crashed earlier attempt) is never planned twice.
CREATE OR REPLACE FUNCTION hub.fallback_plan_rows(p_phase text, ev hub.outbox, pol hub.policies)
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    chans   text[] := CASE p_phase WHEN 'always' THEN pol.always ELSE pol.fallback END;
    every   boolean := p_phase = 'always' OR pol.fallback_all;
    reached text[] := CASE WHEN ev.ack THEN ARRAY['acked'] ELSE ARRAY['sent', 'acked'] END;
    n       int;
BEGIN
    IF cardinality(chans) IS NULL OR cardinality(chans) = 0 THEN
        RETURN 0;
    END IF;
    -- A claimed panic escalates no further: a guard is on it ("escalate by
    -- SMS if nobody claims"). The claim is the first guard's or admin's ack
    -- (hub.record_acks).
    IF p_phase = 'fallback' AND EXISTS (SELECT 1 FROM hub.claims c WHERE c.event_id = ev.id) THEN
        RETURN 0;
    END IF;
    WITH aud AS MATERIALIZED (
        SELECT a.user_id, a.device_token, a.phone, a.email, a.locale
          FROM hub.audience(ev.tenant, ev.rooms) a
         WHERE a.user_id IS NOT NULL
           AND (p_phase = 'always'
                OR NOT EXISTS (SELECT 1 FROM hub.deliveries w
                                WHERE w.event_id = ev.id AND w.user_id = a.user_id
                                  AND w.channel = 'ws' AND w.status = ANY (reached)))
    ), cand AS (
        SELECT aud.user_id, aud.locale, c.ch, c.ord,
               hub.fallback_address(c.ch, aud.device_token, aud.phone, aud.email) AS address
          FROM aud CROSS JOIN unnest(chans) WITH ORDINALITY AS c(ch, ord)
    ), firsts AS (
        SELECT cand.user_id, min(cand.ord) FILTER (WHERE cand.address IS NOT NULL) AS first
          FROM cand GROUP BY cand.user_id
    ), ins AS (
        INSERT INTO hub.deliveries AS d
               (event_id, tenant, user_id, channel, status, detail, origin,
                address, locale, next_attempt_at, created_at, updated_at)
        SELECT ev.id, ev.tenant, cand.user_id, cand.ch,
               CASE WHEN cand.address IS NULL THEN 'skipped' ELSE 'pending' END,
               CASE WHEN cand.address IS NULL THEN hub.fallback_missing(cand.ch) END,
               p_phase, cand.address, cand.locale, now(), now(), now()
          FROM cand JOIN firsts USING (user_id)
         -- ordered mode: the channels up to the first with an address (all
         -- of them, skipped, when there is none)
         WHERE every OR firsts.first IS NULL OR cand.ord <= firsts.first
         ORDER BY cand.user_id, cand.ord
        ON CONFLICT (event_id, user_id, channel) DO NOTHING
        RETURNING d.status
    )
    SELECT count(*) FILTER (WHERE ins.status = 'pending') INTO n FROM ins;
    RETURN n;
END
$fn$;

-- Claims up to p_limit due jobs and plans them; returns one row per job
-- handled: (event_id, phase, planned = 'pending' delivery rows created).
-- Several hubs call it at once: FOR UPDATE SKIP LOCKED gives each job to one
-- caller, and done_at keeps it from being planned again (a caller that reads
-- the row after the first committed re-checks done_at IS NULL on the new
-- version and drops it).
--
-- The event and its policy are read now, so a policy edit applies to every
-- event not yet planned. A job is closed without rows when its tenant is
-- gone, it has no policy any more, or it is older than max_age_ms (its row
-- then goes when retention purges the event: hub.purge_outbox()); a job
-- whose event is already gone (retention) is deleted. A 'fallback' job
-- whose producer committed late (a long transaction) is moved to
-- committed_at + ack_timeout_ms: the recipients get
-- their full ack time from the moment the hub could deliver the event at all.
-- An error while planning one job (say a replaced hub.audience() failing for
-- one tenant) is reported as a WARNING and the job retried a minute later; it
-- never blocks the jobs behind it.
CREATE OR REPLACE FUNCTION hub.fallback_plan(p_limit int DEFAULT 100)
RETURNS TABLE (event_id bigint, phase text, planned int)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    retry_after constant interval := interval '1 minute';
    job   record;
    ev    hub.outbox;
    gone  boolean;
    pol   hub.policies;
    n     int;
    total int := 0;
    later timestamptz;
BEGIN
    IF p_limit IS NULL OR p_limit < 0 THEN
        RAISE EXCEPTION 'hub.fallback_plan: p_limit must be a non-negative integer, got %',
            coalesce(p_limit::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR job IN
        SELECT j.event_id AS id, j.phase AS ph
          FROM hub.fallback_jobs j
         WHERE j.done_at IS NULL AND j.due_at <= now()
         -- Ties in a fixed order: an event's 'always' job before its
         -- 'fallback' job, so a channel both phases name is the always row.
         ORDER BY j.due_at, j.event_id, j.phase
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    LOOP
        n := 0;
        later := NULL;
        SELECT o.* INTO ev FROM hub.outbox o WHERE o.id = job.id;
        gone := NOT FOUND;
        IF NOT gone AND hub.is_tenant(ev.tenant) THEN
            SELECT p.* INTO pol FROM hub.policies p WHERE p.kind = ev.kind;
            IF FOUND AND now() <= ev.created_at + pol.max_age_ms * interval '1 millisecond' THEN
                IF job.ph = 'fallback' AND ev.committed_at IS NOT NULL
                   AND ev.committed_at + pol.ack_timeout_ms * interval '1 millisecond' > now() THEN
                    later := ev.committed_at + pol.ack_timeout_ms * interval '1 millisecond';
                ELSE
                    BEGIN
                        n := hub.fallback_plan_rows(job.ph, ev, pol);
                    EXCEPTION WHEN OTHERS THEN
                        RAISE WARNING 'hub.fallback_plan: planning % of event % failed, retried in %: % (%)',
                            job.ph, job.id, retry_after, SQLERRM, SQLSTATE;
                        later := now() + retry_after;
                    END;
                END IF;
            END IF;
        END IF;

        IF gone THEN
            DELETE FROM hub.fallback_jobs j WHERE j.event_id = job.id AND j.phase = job.ph;
        ELSIF later IS NULL THEN
            UPDATE hub.fallback_jobs j SET done_at = now()
             WHERE j.event_id = job.id AND j.phase = job.ph;
        ELSE
            UPDATE hub.fallback_jobs j SET due_at = later
             WHERE j.event_id = job.id AND j.phase = job.ph;
        END IF;

        event_id := job.id;
        phase := job.ph;
        planned := n;
        total := total + n;
        RETURN NEXT;
    END LOOP;

    IF total > 0 THEN
        -- Delivered at commit: the hubs claim the new rows at once.
        PERFORM pg_notify('hub_deliveries', '');
    END IF;
END
$fn$;

------------------------------------------------------------------------------
-- Sending: claim under a lease, report the outcome.
------------------------------------------------------------------------------

-- Leases up to p_limit due pending rows of p_channel to hub p_hub for
-- p_lease_ms and returns them with their event. A row is due when
-- next_attempt_at <= now() and nobody holds a live lease on it; FOR UPDATE
-- SKIP LOCKED plus the lease give each row to one hub at a time (a second
-- caller that reads a row after the first committed re-checks the lease on
-- the new version and drops it). A lease that runs out without a result (the
-- hub died) makes the row due again: that is the one way a message can go
-- out twice (docs/fallback.md).
--
-- First, bounded work: among the first rows of the due queue, those whose
-- event was purged, or is older than its policy's max_age_ms, are closed as
-- 'skipped' ('event purged', 'older than max age'). The claim itself never
-- returns such a row either, so a long tail of stale rows is closed a slice
-- per call without ever being sent.
CREATE OR REPLACE FUNCTION hub.delivery_claim(p_channel text, p_limit int, p_lease_ms int, p_hub text)
RETURNS TABLE (event_id bigint, user_id text, channel text, tenant text, address text,
               locale text, kind text, priority text, data jsonb, attempts int,
               created_at timestamptz)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    -- Rows looked at by the stale sweep per call.
    sweep_rows constant int := 500;
BEGIN
    IF p_channel IS NULL OR p_channel NOT IN ('push', 'sms', 'email') THEN
        RAISE EXCEPTION 'hub.delivery_claim: channel must be push, sms or email, got %',
            hub.quote_for_error(p_channel) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_limit IS NULL OR p_limit < 0 THEN
        RAISE EXCEPTION 'hub.delivery_claim: limit must be a non-negative integer, got %',
            coalesce(p_limit::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lease_ms IS NULL OR p_lease_ms <= 0 THEN
        RAISE EXCEPTION 'hub.delivery_claim: lease must be a positive number of milliseconds, got %',
            coalesce(p_lease_ms::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH head AS (
        SELECT d.event_id, d.user_id
          FROM hub.deliveries d
         WHERE d.channel = p_channel AND d.status = 'pending'
           AND d.next_attempt_at <= now()
           AND (d.lease_until IS NULL OR d.lease_until < now())
         ORDER BY d.next_attempt_at
         LIMIT sweep_rows
    ), stale AS (
        SELECT d.event_id, d.user_id, o.id IS NULL AS purged
          FROM head h
          JOIN hub.deliveries d
            ON d.event_id = h.event_id AND d.user_id = h.user_id AND d.channel = p_channel
          LEFT JOIN hub.outbox o ON o.id = d.event_id
          LEFT JOIN hub.policies p ON p.kind = o.kind
         -- Repeated here: a row locked after another hub changed it is
         -- re-checked against these, on its newest version.
         WHERE d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
           AND (o.id IS NULL
                OR now() > o.created_at + p.max_age_ms * interval '1 millisecond')
           FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE hub.deliveries d
       SET status = 'skipped',
           detail = CASE WHEN s.purged THEN 'event purged' ELSE 'older than max age' END,
           lease_until = NULL,
           updated_at = now()
      FROM stale s
     WHERE d.event_id = s.event_id AND d.user_id = s.user_id AND d.channel = p_channel;

    RETURN QUERY
    WITH c AS (
        SELECT d.event_id, d.user_id, o.kind, o.priority, o.data, o.created_at
          FROM hub.deliveries d
          JOIN hub.outbox o ON o.id = d.event_id
          LEFT JOIN hub.policies p ON p.kind = o.kind
         WHERE d.channel = p_channel AND d.status = 'pending'
           AND d.next_attempt_at <= now()
           AND (d.lease_until IS NULL OR d.lease_until < now())
           AND (p.kind IS NULL
                OR now() <= o.created_at + p.max_age_ms * interval '1 millisecond')
         ORDER BY d.next_attempt_at
         LIMIT p_limit
           FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE hub.deliveries d
           SET lease_until = now() + p_lease_ms * interval '1 millisecond',
               leased_by = p_hub,
               updated_at = now()
          FROM c
         WHERE d.event_id = c.event_id AND d.user_id = c.user_id AND d.channel = p_channel
        RETURNING d.event_id, d.user_id, d.channel, d.tenant, d.address, d.locale,
                  c.kind, c.priority, c.data, d.attempts, c.created_at, d.next_attempt_at
    )
    SELECT l.event_id, l.user_id, l.channel, l.tenant, l.address, l.locale,
           l.kind, l.priority, l.data, l.attempts, l.created_at
      FROM leased l
     ORDER BY l.next_attempt_at;
END
$fn$;

-- Inserts, for user p_user of event p_event, the first channel after
-- p_after in the kind's fallback list that the user has an address for (as
-- 'pending'), recording the ones before it without an address as 'skipped'.
-- Addresses come from hub.audience(tenant, user:<p_user>) now, so a phone
-- number added since the event was planned is used. Returns the channel that
-- got a pending row, or NULL: no channel left, or the next one already has a
-- pending or sent row (the 'always' phase is handling that channel; the
-- chain stops there). An existing failed or skipped row is passed over.
CREATE OR REPLACE FUNCTION hub.fallback_next(p_event bigint, p_user text, p_after text)
RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    ev   hub.outbox;
    pol  hub.policies;
    who  record;
    pos  int;
    ch   text;
    addr text;
    made text;
    seen text;
BEGIN
    SELECT o.* INTO ev FROM hub.outbox o WHERE o.id = p_event;
    IF NOT FOUND OR NOT hub.is_tenant(ev.tenant) THEN
        RETURN NULL;
    END IF;
    SELECT p.* INTO pol FROM hub.policies p WHERE p.kind = ev.kind;
    IF NOT FOUND OR pol.fallback_all THEN
        RETURN NULL;
    END IF;
    pos := array_position(pol.fallback, p_after);
    IF pos IS NULL THEN
        RETURN NULL; -- the channel left the policy since: nothing comes "after" it
    END IF;

    SELECT a.device_token, a.phone, a.email, a.locale INTO who
      FROM hub.audience(ev.tenant, ARRAY['user:' || p_user]) a
     LIMIT 1;
    -- A user no longer in the tenant has no address for anything (who stays NULL).

    FOR i IN pos + 1 .. coalesce(cardinality(pol.fallback), 0) LOOP
        ch := pol.fallback[i];
        addr := hub.fallback_address(ch, who.device_token, who.phone, who.email);
        INSERT INTO hub.deliveries AS d
               (event_id, tenant, user_id, channel, status, detail, origin,
                address, locale, next_attempt_at)
        VALUES (ev.id, ev.tenant, p_user, ch,
                CASE WHEN addr IS NULL THEN 'skipped' ELSE 'pending' END,
                CASE WHEN addr IS NULL THEN hub.fallback_missing(ch) END,
                'fallback', addr, who.locale, now())
        ON CONFLICT (event_id, user_id, channel) DO NOTHING
        RETURNING d.channel INTO made;
        IF made IS NOT NULL THEN
            IF addr IS NOT NULL THEN
                RETURN ch;
            END IF;
        ELSE
            -- That channel has a row already (the 'always' phase made one).
            -- Pending or sent: it is being handled or it worked, the chain
            -- ends here. Failed or skipped: it is no help, go on.
            SELECT d.status INTO seen FROM hub.deliveries d
             WHERE d.event_id = ev.id AND d.user_id = p_user AND d.channel = ch;
            IF seen NOT IN ('failed', 'skipped') THEN
                RETURN NULL;
            END IF;
        END IF;
        made := NULL;
    END LOOP;
    RETURN NULL;
END
$fn$;

-- Records the outcome of one claimed row; acts only on a row still
-- 'pending', so a repeated or late report changes nothing and returns NULL
-- (the row left 'pending' once, and that was the one transition).
--   sent     status 'sent', attempts + 1
--   retry    attempts + 1, due again after p_retry_ms, stays 'pending'
--   failed   status 'failed', attempts + 1
--   skipped  status 'skipped', attempts unchanged (no provider request made)
--   deferred stays 'pending', due again after p_retry_ms, attempts unchanged
--            (no provider request made: the provider's circuit is open and
--            the event is critical, so the row waits for the circuit to
--            half-open instead of being skipped for good)
-- Every outcome stores p_detail and frees the lease. A failed, skipped or
-- deferred 'fallback' row of an ordered policy (fallback_all false) queues
-- the next channel for that user (hub.fallback_next): a deferred row goes on
-- waiting while the next channel goes at once. The function returns the name
-- of the channel that got a pending row, NULL otherwise, and wakes the hubs.
CREATE OR REPLACE FUNCTION hub.delivery_result(p_event bigint, p_user text, p_channel text,
                                               p_outcome text, p_detail text, p_retry_ms int)
RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    row_origin text;
    nxt        text;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('sent', 'retry', 'failed', 'skipped', 'deferred') THEN
        RAISE EXCEPTION 'hub.delivery_result: outcome must be sent, retry, failed, skipped or deferred, got %',
            hub.quote_for_error(p_outcome) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE hub.deliveries d
       SET status = CASE WHEN p_outcome IN ('retry', 'deferred') THEN 'pending' ELSE p_outcome END,
           attempts = d.attempts + CASE WHEN p_outcome IN ('skipped', 'deferred') THEN 0 ELSE 1 END,
           detail = p_detail,
           next_attempt_at = CASE WHEN p_outcome IN ('retry', 'deferred')
                                  THEN now() + greatest(coalesce(p_retry_ms, 0), 0)
                                               * interval '1 millisecond'
                                  ELSE d.next_attempt_at END,
           lease_until = NULL,
           updated_at = now()
     WHERE d.event_id = p_event AND d.user_id = p_user AND d.channel = p_channel
       AND d.status = 'pending'
    RETURNING d.origin INTO row_origin;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p_outcome IN ('failed', 'skipped', 'deferred') AND row_origin = 'fallback' THEN
        -- The outcome above stands even if queueing the next channel fails
        -- (e.g. the tenant's layout is broken): otherwise the row would stay
        -- pending, its lease would run out and it would be sent again.
        BEGIN
            nxt := hub.fallback_next(p_event, p_user, p_channel);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'hub.delivery_result: no next channel after % for user % of event %: % (%)',
                p_channel, p_user, p_event, SQLERRM, SQLSTATE;
            nxt := NULL;
        END;
        IF nxt IS NOT NULL THEN
            PERFORM pg_notify('hub_deliveries', '');
        END IF;
    END IF;
    RETURN nxt;
END
$fn$;

------------------------------------------------------------------------------
-- WebSocket marks: acks (and the claim of a panic), "sent".
------------------------------------------------------------------------------

-- Who claimed ("Atender") each panic: the first guard or admin whose ack
-- was recorded. The primary key is what lets only one claim win across hubs.
CREATE TABLE IF NOT EXISTS hub.claims (
    event_id   bigint PRIMARY KEY,
    tenant     text NOT NULL,
    user_id    text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Records acks: for each (id, tenant, user), when event id exists and
-- belongs to that tenant, the ('ws', 'acked') row of that user. Duplicates
-- in the arrays count once; an unknown id or another tenant's event writes
-- nothing. Returns the number of ack rows written.
--
-- p_roles names each acker's role ('resident', 'guard', 'admin'). An ack of
-- a 'panic' event by a guard or admin claims it if nobody has: the first
-- insert into hub.claims wins (a second hub's concurrent insert waits on the
-- primary key and then does nothing), and only the winner emits
-- 'panic_claimed' to the tenant's guards and admins, naming the guard.
-- Within one batch the first such ack in array order wins. Any other ack
-- (a resident's, or one without a role: p_roles omitted or NULL there) only
-- counts as reached, and the panic keeps escalating to the staff not
-- reached. The hub checks that the acker may ack the event at all (its
-- rooms); this function trusts what it is given.
-- The tenant's name for user_id: its "User".name when the tenant has that
-- table (the demo layout), NULL otherwise or when the lookup fails (a
-- deployment's own layout). The tenant is an identifier: %I, never concatenated.
CREATE OR REPLACE FUNCTION hub.tenant_user_name(p_tenant text, p_user text) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    found_name text;
BEGIN
    IF NOT hub.is_tenant(p_tenant) OR to_regclass(format('%I."User"', p_tenant)) IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        EXECUTE format('SELECT name::text FROM %I."User" WHERE id = $1', p_tenant)
           INTO found_name USING p_user;
    EXCEPTION WHEN OTHERS THEN
        found_name := NULL; -- another layout (no name column, ids not text): no name
    END;
    RETURN left(found_name, 200);
END
$fn$;

-- Until v1.1 the function took no roles (and let any ack claim): that
-- signature goes, so no caller keeps the old rule. Applying twice drops
-- nothing more (IF EXISTS).
DROP FUNCTION IF EXISTS hub.record_acks(bigint[], text[], text[]);

CREATE OR REPLACE FUNCTION hub.record_acks(p_ids bigint[], p_tenants text[], p_users text[],
                                           p_roles text[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    written int;
    won     record;
BEGIN
    -- One row per (event, user); in key order, so two hubs writing
    -- overlapping batches take their row locks in the same order.
    WITH a AS (
        SELECT DISTINCT u.e, u.usr, o.tenant
          FROM unnest(p_ids, p_tenants, p_users) AS u(e, t, usr)
          JOIN hub.outbox o ON o.id = u.e AND o.tenant = u.t
         WHERE u.usr IS NOT NULL
    ), up AS (
        INSERT INTO hub.deliveries AS d (event_id, tenant, user_id, channel, status, updated_at)
        SELECT a.e, a.tenant, a.usr, 'ws', 'acked', now()
          FROM a ORDER BY a.e, a.usr
        ON CONFLICT (event_id, user_id, channel)
        DO UPDATE SET status = 'acked', updated_at = now()
        RETURNING 1
    )
    SELECT count(*) INTO written FROM up;

    FOR won IN
        WITH firsts AS (
            SELECT DISTINCT ON (u.e) u.e, u.usr, o.tenant, o.data
              FROM unnest(p_ids, p_tenants, p_users, coalesce(p_roles, '{}'::text[]))
                   WITH ORDINALITY AS u(e, t, usr, role, pos)
              JOIN hub.outbox o ON o.id = u.e AND o.tenant = u.t
             WHERE u.usr IS NOT NULL AND o.kind = 'panic'
               AND u.role IN ('guard', 'admin')
             ORDER BY u.e, u.pos
        ), ins AS (
            INSERT INTO hub.claims AS c (event_id, tenant, user_id, claimed_at)
            SELECT f.e, f.tenant, f.usr, now() FROM firsts f ORDER BY f.e
            ON CONFLICT (event_id) DO NOTHING
            RETURNING c.event_id, c.tenant, c.user_id, c.claimed_at
        )
        SELECT ins.event_id, ins.tenant, ins.user_id, ins.claimed_at, f.data
          FROM ins JOIN firsts f ON f.e = ins.event_id
         ORDER BY ins.event_id
    LOOP
        PERFORM hub.emit(won.tenant, 'panic_claimed', ARRAY['role:guard', 'role:admin'],
                         jsonb_build_object('eventId',   won.event_id,
                                            'alertId',   won.data->>'alertId',
                                            'unitId',    won.data->>'unitId',
                                            'guardId',   won.user_id,
                                            'guardName', hub.tenant_user_name(won.tenant, won.user_id),
                                            'claimedAt', won.claimed_at),
                         'high', false);
    END LOOP;
    RETURN written;
END
$fn$;

-- Records that users were sent events over the WebSocket (for events without
-- ack whose policy has fallback channels: those users count as reached).
-- Inserts ('ws', 'sent') rows for events that exist in the tenant named;
-- an existing row is left alone, so an 'acked' row is never downgraded.
-- Returns the number of rows inserted.
CREATE OR REPLACE FUNCTION hub.record_sent(p_ids bigint[], p_tenants text[], p_users text[])
RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    written int;
BEGIN
    WITH a AS (
        SELECT DISTINCT u.e, u.usr, o.tenant
          FROM unnest(p_ids, p_tenants, p_users) AS u(e, t, usr)
          JOIN hub.outbox o ON o.id = u.e AND o.tenant = u.t
         WHERE u.usr IS NOT NULL
    ), ins AS (
        INSERT INTO hub.deliveries AS d (event_id, tenant, user_id, channel, status, updated_at)
        SELECT a.e, a.tenant, a.usr, 'ws', 'sent', now()
          FROM a ORDER BY a.e, a.usr
        ON CONFLICT (event_id, user_id, channel) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO written FROM ins;
    RETURN written;
END
$fn$;

-- Many outcomes in one statement (the hub batches them, so a burst of
-- thousands of sends is not one round trip each). Same semantics as
-- hub.delivery_result() for each element, in order; returns the channels
-- that got a pending row (one row per such outcome).
CREATE OR REPLACE FUNCTION hub.delivery_results(p_events bigint[], p_users text[],
                                                p_channels text[], p_outcomes text[],
                                                p_details text[], p_retry_ms int[])
RETURNS TABLE (next_channel text)
LANGUAGE plpgsql AS $fn$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_events), 0) LOOP
        next_channel := hub.delivery_result(p_events[i], p_users[i], p_channels[i],
                                            p_outcomes[i], p_details[i], p_retry_ms[i]);
        IF next_channel IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END LOOP;
END
$fn$;
