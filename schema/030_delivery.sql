-- 030_delivery.sql - per-kind delivery policy and the record of every
-- delivery attempt (docs/fallback.md).
--
-- The hub reads hub.policies when an event arrives, so editing a row takes
-- effect for new events without a restart. hub.deliveries keeps one row per
-- (event, user, channel): its primary key is what makes "at most one
-- successful send" hold across restarts and across several hubs.

-- Channels a policy may name: the fallback providers of docs/fallback.md.
CREATE TABLE IF NOT EXISTS hub.policies (
    kind           text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    -- How long a recipient has to ack (ack events) or be sent the event
    -- before the fallback channels are tried; 0 = do not wait.
    ack_timeout_ms int NOT NULL CHECK (ack_timeout_ms >= 0),
    -- Channels tried in order, until one succeeds, for recipients not reached.
    fallback       text[] NOT NULL DEFAULT '{}'
                   CHECK (fallback <@ ARRAY['push', 'sms', 'email']::text[]),
    -- Channels used at once for every recipient, online or not.
    always         text[] NOT NULL DEFAULT '{}'
                   CHECK (always <@ ARRAY['push', 'sms', 'email']::text[]),
    -- An event older than this is not sent by fallback any more.
    max_age_ms     int NOT NULL CHECK (max_age_ms > 0),
    updated_at     timestamptz DEFAULT now()
);

-- The shipped defaults; a deployment's own edits are kept on re-apply.
INSERT INTO hub.policies (kind, ack_timeout_ms, fallback, always, max_age_ms) VALUES
    ('panic',        15000, '{push,sms}',   '{}',         3600000),   -- 1 h
    ('visitor',      30000, '{push,sms}',   '{}',         1800000),   -- 30 min
    ('payment',      60000, '{push,email}', '{}',         86400000),  -- 24 h
    ('announcement',     0, '{}',           '{push,sms}', 21600000)   -- 6 h
ON CONFLICT (kind) DO NOTHING;

CREATE TABLE IF NOT EXISTS hub.deliveries (
    event_id        bigint NOT NULL,
    tenant          text NOT NULL,
    user_id         text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('ws', 'push', 'sms', 'email')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'acked', 'failed', 'skipped')),
    -- Provider requests made so far for this row.
    attempts        int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Why it failed or was skipped (e.g. UNREGISTERED), for operators.
    detail          text,
    -- When a pending row is due (fallback deadline or retry backoff); kept
    -- here, not only in memory, so a restarted hub carries it out.
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id, channel)
);

-- The hub's scan for work that is due: status = 'pending' AND next_attempt_at <= now().
-- Created only when missing, so re-applying never locks out the hub's writes.
DO $do$
BEGIN
    IF to_regclass('hub.deliveries_status_due') IS NULL THEN
        CREATE INDEX deliveries_status_due ON hub.deliveries (status, next_attempt_at);
    END IF;
END
$do$;
