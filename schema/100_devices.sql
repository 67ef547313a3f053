-- 100_devices.sql - several devices per user (contract v1.1 "Several
-- devices"; docs/fallback.md, "Several devices"): one push per device token,
-- so a delivery row is unique per (event, user, channel, address), and the
-- tokens FCM rejects as UNREGISTERED are kept for the backend to clean.
--
-- hub.audience() may return several rows for one user, one per device
-- token (device_token NULL when the user has none), the same phone, e-mail
-- and locale on each. Planning makes one push row per distinct token and one
-- SMS row and one e-mail row per user, as before. Whether a user was
-- reached over the WebSocket is still decided per user.
--
-- This step replaces what 070_fallback.sql defined on the old key, function
-- by function; the signatures the hub calls stay callable as they were
-- (hub.delivery_results takes the addresses as a seventh, optional array).
-- Safe to apply twice, and after 070 and 080 are applied again (scripts/pg.sh
-- applies every step in one transaction): table changes are made only when
-- missing, functions are CREATE OR REPLACE, and the two functions whose
-- argument list changed are dropped in their old form (which 070 re-creates
-- on every application) before the new one is created.

------------------------------------------------------------------------------
-- The key: (event_id, user_id, channel, address_key).
------------------------------------------------------------------------------

DO $do$
DECLARE
    pk text;
BEGIN
    -- The part of the address that tells a user's rows of one channel apart:
    -- for push the device token the row goes to ('' on a row skipped for
    -- want of one), for every other channel '' (sms and email: one row per
    -- user, whatever the number or address, so a phone number edited between
    -- two phases never earns a second text). Derived from address, so it can
    -- never disagree with it; existing rows get the token they were planned
    -- with.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'hub.deliveries'::regclass
                      AND attname = 'address_key' AND NOT attisdropped) THEN
        ALTER TABLE hub.deliveries ADD COLUMN address_key text NOT NULL
            GENERATED ALWAYS AS (CASE WHEN channel = 'push' THEN coalesce(address, '') ELSE '' END)
            STORED;
    END IF;

    -- The old key (event_id, user_id, channel) is coarser than the new one,
    -- so no existing row can violate it.
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                    WHERE c.conrelid = 'hub.deliveries'::regclass AND c.contype = 'p'
                      AND a.attname = 'address_key') THEN
        SELECT c.conname INTO pk FROM pg_constraint c
         WHERE c.conrelid = 'hub.deliveries'::regclass AND c.contype = 'p';
        IF pk IS NOT NULL THEN
            EXECUTE format('ALTER TABLE hub.deliveries DROP CONSTRAINT %I', pk);
        END IF;
        ALTER TABLE hub.deliveries
            ADD CONSTRAINT deliveries_pkey PRIMARY KEY (event_id, user_id, channel, address_key);
    END IF;
END
$do$;

------------------------------------------------------------------------------
-- Tokens FCM no longer knows.
------------------------------------------------------------------------------

-- One row per (tenant, device token) that FCM answered UNREGISTERED (the app
-- was uninstalled, or the token was rotated). The hub only adds and
-- refreshes rows; the backend clears the token in its tenant's table and
-- deletes the row (docs/fallback.md, "Unregistered tokens"). Nothing here
-- touches the tenant: until the backend acts, the token gets one request
-- per event, each answered UNREGISTERED again.
CREATE TABLE IF NOT EXISTS hub.unregistered_tokens (
    tenant       text NOT NULL,
    device_token text NOT NULL,
    -- The user whose delivery row carried the token at the latest rejection.
    user_id      text NOT NULL,
    -- The event of the latest rejection.
    event_id     bigint NOT NULL,
    -- Rejections counted since the row was made.
    rejections   int NOT NULL DEFAULT 1 CHECK (rejections > 0),
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, device_token)
);

-- Records the rejected tokens tokens[i] of tenants[i] (user users[i], event
-- events[i]), in key order so that two hubs recording at once take their
-- row locks in the same order. Returns nothing.
CREATE OR REPLACE FUNCTION hub.unregistered_record(p_tenants text[], p_tokens text[],
                                                   p_users text[], p_events bigint[])
RETURNS void
LANGUAGE sql AS $fn$
    INSERT INTO hub.unregistered_tokens AS t (tenant, device_token, user_id, event_id)
    SELECT DISTINCT ON (u.tenant, u.token) u.tenant, u.token, u.usr, u.ev
      FROM unnest(p_tenants, p_tokens, p_users, p_events) AS u(tenant, token, usr, ev)
     WHERE u.tenant IS NOT NULL AND u.token IS NOT NULL AND u.usr IS NOT NULL AND u.ev IS NOT NULL
     ORDER BY u.tenant, u.token, u.ev DESC
    ON CONFLICT (tenant, device_token) DO UPDATE
       SET user_id = EXCLUDED.user_id,
           event_id = EXCLUDED.event_id,
           rejections = t.rejections + 1,
           last_seen = now()
$fn$;

------------------------------------------------------------------------------
-- Addresses: every device of a user.
------------------------------------------------------------------------------

-- The addresses channel uses for one user, given the contact points of all
-- of the user's hub.audience() rows (element i of each array from row i),
-- each made usable by hub.fallback_address(): for push every distinct
-- token, sorted; for sms and email the lowest number or address in sort
-- order (the contract puts the same one on every row). A user with none for the
-- channel gets ARRAY[NULL]: one row, skipped for want of an address.
CREATE OR REPLACE FUNCTION hub.fallback_addresses(channel text, device_tokens text[],
                                                  phones text[], emails text[])
RETURNS text[]
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT coalesce(
        (SELECT CASE WHEN fallback_addresses.channel = 'push'
                     THEN array_agg(DISTINCT a.address ORDER BY a.address)
                     ELSE ARRAY[min(a.address)] END
           FROM (SELECT hub.fallback_address(fallback_addresses.channel,
                                             c.token, c.phone, c.email) AS address
                   FROM unnest(fallback_addresses.device_tokens, fallback_addresses.phones,
                               fallback_addresses.emails) AS c(token, phone, email)) a
          WHERE a.address IS NOT NULL),
        ARRAY[NULL::text])
$fn$;

------------------------------------------------------------------------------
-- Planning (replaces 070's): a push row per device.
------------------------------------------------------------------------------

-- As in 070_fallback.sql, with the audience's rows folded per user: one
-- pending push row per distinct device token, one sms and one email row per
-- user. "Has an address for the channel" (ordered policies stop at the first
-- such channel) means at least one usable token for push. Returns the number
-- of 'pending' rows created.
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
    -- A claimed panic escalates no further (hub.record_acks).
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
    ), who AS (
        SELECT aud.user_id, min(aud.locale) AS locale, array_agg(aud.device_token) AS tokens,
               array_agg(aud.phone) AS phones, array_agg(aud.email) AS emails
          FROM aud GROUP BY aud.user_id
    ), cand AS (
        SELECT who.user_id, who.locale, c.ch, c.ord, a.address
          FROM who CROSS JOIN unnest(chans) WITH ORDINALITY AS c(ch, ord)
               CROSS JOIN LATERAL unnest(hub.fallback_addresses(c.ch, who.tokens, who.phones,
                                                                who.emails)) AS a(address)
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
         ORDER BY cand.user_id, cand.ord, cand.address
        ON CONFLICT (event_id, user_id, channel, address_key) DO NOTHING
        RETURNING d.status
    )
    SELECT count(*) FILTER (WHERE ins.status = 'pending') INTO n FROM ins;
    RETURN n;
END
$fn$;

-- As in 070_fallback.sql, for the next channel after p_after: a channel the
-- user already has rows on (the 'always' phase made them) is decided by
-- them: one of them pending or sent, and the chain ends there; all failed
-- or skipped, and it is passed over. Any other channel gets the user's rows
-- for it now (a pending row per device for push, addresses read again from
-- hub.audience(tenant, user:<p_user>)) and is returned when one of them is
-- pending; a channel without an address gets a 'skipped' row and the chain
-- goes on. Returns NULL when no channel got a pending row.
CREATE OR REPLACE FUNCTION hub.fallback_next(p_event bigint, p_user text, p_after text)
RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    ev      hub.outbox;
    pol     hub.policies;
    pos     int;
    ch      text;
    loc     text;
    tokens  text[];
    phones  text[];
    emails  text[];
    addrs   text[];
    held    int;
    busy    boolean;
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

    -- A user no longer in the tenant has no rows: no address for anything.
    SELECT min(a.locale), array_agg(a.device_token), array_agg(a.phone), array_agg(a.email)
      INTO loc, tokens, phones, emails
      FROM hub.audience(ev.tenant, ARRAY['user:' || p_user]) a
     WHERE a.user_id = p_user;

    FOR i IN pos + 1 .. coalesce(cardinality(pol.fallback), 0) LOOP
        ch := pol.fallback[i];
        SELECT count(*), coalesce(bool_or(d.status NOT IN ('failed', 'skipped')), false)
          INTO held, busy
          FROM hub.deliveries d
         WHERE d.event_id = ev.id AND d.user_id = p_user AND d.channel = ch;
        IF held > 0 THEN
            IF busy THEN
                RETURN NULL;
            END IF;
            CONTINUE;
        END IF;
        addrs := hub.fallback_addresses(ch, tokens, phones, emails);
        INSERT INTO hub.deliveries AS d
               (event_id, tenant, user_id, channel, status, detail, origin,
                address, locale, next_attempt_at)
        SELECT ev.id, ev.tenant, p_user, ch,
               CASE WHEN a.address IS NULL THEN 'skipped' ELSE 'pending' END,
               CASE WHEN a.address IS NULL THEN hub.fallback_missing(ch) END,
               'fallback', a.address, loc, now()
          FROM unnest(addrs) AS a(address)
         ORDER BY a.address
        ON CONFLICT (event_id, user_id, channel, address_key) DO NOTHING;
        IF addrs[1] IS NOT NULL THEN
            RETURN ch;
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

------------------------------------------------------------------------------
-- Sending (replaces 070's): claim and results name the address.
------------------------------------------------------------------------------

-- As in 070_fallback.sql (same arguments, same columns: address is the
-- device token, phone number or e-mail address the row goes to), with rows
-- identified by the whole key.
CREATE OR REPLACE FUNCTION hub.delivery_claim(p_channel text, p_limit int, p_lease_ms int, p_hub text)
RETURNS TABLE (event_id bigint, user_id text, channel text, tenant text, address text,
               locale text, kind text, priority text, data jsonb, attempts int,
               created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
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
        SELECT d.event_id, d.user_id, d.address_key
          FROM hub.deliveries d
         WHERE d.channel = p_channel AND d.status = 'pending'
           AND d.next_attempt_at <= now()
           AND (d.lease_until IS NULL OR d.lease_until < now())
         ORDER BY d.next_attempt_at
         LIMIT sweep_rows
    ), stale AS (
        SELECT d.event_id, d.user_id, d.address_key, o.id IS NULL AS purged
          FROM head h
          JOIN hub.deliveries d
            ON d.event_id = h.event_id AND d.user_id = h.user_id AND d.channel = p_channel
           AND d.address_key = h.address_key
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
     WHERE d.event_id = s.event_id AND d.user_id = s.user_id AND d.channel = p_channel
       AND d.address_key = s.address_key;

    RETURN QUERY
    WITH c AS (
        SELECT d.event_id, d.user_id, d.address_key, o.kind, o.priority, o.data, o.created_at
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
           AND d.address_key = c.address_key
        RETURNING d.event_id, d.user_id, d.channel, d.tenant, d.address, d.locale,
                  c.kind, c.priority, c.data, d.attempts, c.created_at, d.next_attempt_at
    )
    SELECT l.event_id, l.user_id, l.channel, l.tenant, l.address, l.locale,
           l.kind, l.priority, l.data, l.attempts, l.created_at
      FROM leased l
     ORDER BY l.next_attempt_at;
END
$fn$;

-- The argument lists below changed (the address): their 070 forms go.
-- Applying twice drops only what 070 has just created again.
DROP FUNCTION IF EXISTS hub.delivery_results(bigint[], text[], text[], text[], text[], int[]);
DROP FUNCTION IF EXISTS hub.delivery_result(bigint, text, text, text, text, int);

-- Records the outcome of the claimed row (p_event, p_user, p_channel) whose
-- address is p_address, with the outcomes of 070's hub.delivery_result, and
-- returns (next_channel, tenant, unregistered): the channel that got a
-- pending row for the user, or NULL; and, when FCM refused the row's token
-- as UNREGISTERED (a failed push with that detail), the tenant and the token,
-- for the caller to record (hub.unregistered_record). Acts only on a row still
-- 'pending'; a repeated or late report returns NULLs and changes nothing.
--
-- p_address NULL takes the user's first pending row of the channel in
-- address order: exact for a user with one address, and what a caller that
-- predates the address (a hub of an earlier version, during an upgrade)
-- means.
--
-- Several devices: a failed, skipped or deferred 'fallback' row of an
-- ordered policy queues the user's next channel only when none of the
-- user's other rows of this channel was sent, and (failed, skipped) none is
-- still pending: the user is reached by push when one device got it, and
-- SMS follows when every device's push failed. A deferred row (the
-- provider's circuit is open, which holds for every device alike) queues
-- the next channel at once, as with one device. Every row of the user on
-- the channel is locked first, in key order, so that two hubs settling two
-- devices of one user at once see each other's outcome.
CREATE OR REPLACE FUNCTION hub.delivery_settle(p_event bigint, p_user text, p_channel text,
                                               p_address text, p_outcome text, p_detail text,
                                               p_retry_ms int, OUT next_channel text,
                                               OUT tenant text, OUT unregistered text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    r           record;
    k           text;
    others_sent boolean := false;
    others_busy boolean := false;
    row_origin  text;
    row_tenant  text;
    row_address text;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('sent', 'retry', 'failed', 'skipped', 'deferred') THEN
        RAISE EXCEPTION 'hub.delivery_result: outcome must be sent, retry, failed, skipped or deferred, got %',
            hub.quote_for_error(p_outcome) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR r IN
        SELECT d.address_key, d.address, d.status
          FROM hub.deliveries d
         WHERE d.event_id = p_event AND d.user_id = p_user AND d.channel = p_channel
         ORDER BY d.address_key
           FOR UPDATE
    LOOP
        IF k IS NULL AND r.status = 'pending' AND (p_address IS NULL OR r.address = p_address) THEN
            k := r.address_key;
        ELSE
            others_sent := others_sent OR r.status = 'sent';
            others_busy := others_busy OR r.status = 'pending';
        END IF;
    END LOOP;
    IF k IS NULL THEN
        RETURN;
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
       AND d.address_key = k
    RETURNING d.origin, d.tenant, d.address INTO row_origin, row_tenant, row_address;

    IF p_channel = 'push' AND p_outcome = 'failed' AND p_detail = 'UNREGISTERED' THEN
        tenant := row_tenant;
        unregistered := row_address;
    END IF;

    IF p_outcome IN ('failed', 'skipped', 'deferred') AND row_origin = 'fallback'
       AND NOT others_sent AND (p_outcome = 'deferred' OR NOT others_busy) THEN
        -- The outcome above stands even if queueing the next channel fails
        -- (e.g. the tenant's layout is broken): otherwise the row would stay
        -- pending, its lease would run out and it would be sent again.
        BEGIN
            next_channel := hub.fallback_next(p_event, p_user, p_channel);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'hub.delivery_result: no next channel after % for user % of event %: % (%)',
                p_channel, p_user, p_event, SQLERRM, SQLSTATE;
            next_channel := NULL;
        END;
        IF next_channel IS NOT NULL THEN
            PERFORM pg_notify('hub_deliveries', '');
        END IF;
    END IF;
END
$fn$;

-- One outcome (hub.delivery_settle says what each does), for administrators
-- and tests: records an UNREGISTERED token itself. Returns the channel that
-- got a pending row, or NULL.
CREATE OR REPLACE FUNCTION hub.delivery_result(p_event bigint, p_user text, p_channel text,
                                               p_outcome text, p_detail text, p_retry_ms int,
                                               p_address text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    s record;
BEGIN
    SELECT * INTO s
      FROM hub.delivery_settle(p_event, p_user, p_channel, p_address, p_outcome, p_detail, p_retry_ms);
    IF s.unregistered IS NOT NULL THEN
        PERFORM hub.unregistered_record(ARRAY[s.tenant], ARRAY[s.unregistered], ARRAY[p_user],
                                        ARRAY[p_event]);
    END IF;
    RETURN s.next_channel;
END
$fn$;

-- Many outcomes in one statement (the hub batches them); element i names
-- the row (p_events[i], p_users[i], p_channels[i], p_addresses[i]) and its
-- outcome. Without p_addresses (a hub of an earlier version) each names the
-- user's first pending row of the channel. The elements are settled in key
-- order, the order every caller locks rows in, so two hubs writing batches
-- that touch one user's devices never wait on each other in a cycle; then
-- the UNREGISTERED tokens are recorded, also in key order. Returns the
-- channels that got a pending row (one row per such outcome).
CREATE OR REPLACE FUNCTION hub.delivery_results(p_events bigint[], p_users text[],
                                                p_channels text[], p_outcomes text[],
                                                p_details text[], p_retry_ms int[],
                                                p_addresses text[] DEFAULT NULL)
RETURNS TABLE (next_channel text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    e        record;
    s        record;
    tenants  text[] := '{}';
    tokens   text[] := '{}';
    users    text[] := '{}';
    events   bigint[] := '{}';
BEGIN
    FOR e IN
        SELECT u.ev, u.usr, u.ch, u.addr, u.outcome, u.detail, u.retry
          FROM unnest(p_events, p_users, p_channels, p_addresses, p_outcomes, p_details, p_retry_ms)
               WITH ORDINALITY AS u(ev, usr, ch, addr, outcome, detail, retry, pos)
         WHERE u.pos <= coalesce(cardinality(p_events), 0)
         ORDER BY u.ev, u.usr, u.ch, u.addr, u.pos
    LOOP
        SELECT * INTO s
          FROM hub.delivery_settle(e.ev, e.usr, e.ch, e.addr, e.outcome, e.detail, e.retry);
        IF s.unregistered IS NOT NULL THEN
            tenants := tenants || s.tenant;
            tokens := tokens || s.unregistered;
            users := users || e.usr;
            events := events || e.ev;
        END IF;
        IF s.next_channel IS NOT NULL THEN
            next_channel := s.next_channel;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF cardinality(tokens) > 0 THEN
        PERFORM hub.unregistered_record(tenants, tokens, users, events);
    END IF;
END
$fn$;

------------------------------------------------------------------------------
-- WebSocket marks (replace 070's): the same rows, on the new key ('ws'
-- rows have address_key '').
------------------------------------------------------------------------------

-- Writes the 'ws' row of each (id, tenant, user) whose event id exists in
-- that tenant, with status p_status: 'acked' (an existing row becomes
-- 'acked') or 'sent' (an existing row is left alone, so an 'acked' row is
-- never downgraded). Duplicates count once; rows in key order, so two hubs
-- writing overlapping batches take their row locks in the same order.
-- Returns the number of rows written.
CREATE OR REPLACE FUNCTION hub.record_ws_marks(p_ids bigint[], p_tenants text[], p_users text[],
                                               p_status text)
RETURNS int
LANGUAGE sql AS $fn$
    WITH a AS (
        SELECT DISTINCT u.e, u.usr, o.tenant
          FROM unnest(p_ids, p_tenants, p_users) AS u(e, t, usr)
          JOIN hub.outbox o ON o.id = u.e AND o.tenant = u.t
         WHERE u.usr IS NOT NULL
    ), up AS (
        INSERT INTO hub.deliveries AS d (event_id, tenant, user_id, channel, status, updated_at)
        SELECT a.e, a.tenant, a.usr, 'ws', p_status, now()
          FROM a ORDER BY a.e, a.usr
        ON CONFLICT (event_id, user_id, channel, address_key)
        DO UPDATE SET status = 'acked', updated_at = now() WHERE EXCLUDED.status = 'acked'
        RETURNING 1
    )
    SELECT count(*)::int FROM up
$fn$;

-- As in 070_fallback.sql: the acks, then the claim of a panic.
CREATE OR REPLACE FUNCTION hub.record_acks(p_ids bigint[], p_tenants text[], p_users text[],
                                           p_roles text[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
DECLARE
    written int;
    won     record;
BEGIN
    written := hub.record_ws_marks(p_ids, p_tenants, p_users, 'acked');

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

-- As in 070_fallback.sql.
CREATE OR REPLACE FUNCTION hub.record_sent(p_ids bigint[], p_tenants text[], p_users text[])
RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, hub, pg_temp AS $fn$
    SELECT hub.record_ws_marks(p_ids, p_tenants, p_users, 'sent')
$fn$;

------------------------------------------------------------------------------
-- Rights (as 080_roles.sql grants them).
------------------------------------------------------------------------------

-- The functions created above are nobody's by default; 080 closed the ones
-- that existed when it ran.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA hub FROM PUBLIC;

-- The hub calls hub.delivery_results (hub/fallback.c), which records the
-- tokens as the schema's owner: the hub itself can neither read nor write
-- hub.unregistered_tokens (device tokens are contact data).
GRANT EXECUTE ON FUNCTION
    hub.delivery_results(bigint[], text[], text[], text[], text[], int[], text[])
    TO armonia_hub;
