/*
 * outbox.c - LISTEN hub_outbox and read committed events in seq order.
 *
 * seq is assigned at commit under a lock (schema/), so "rows with seq >
 * cursor" never skips a transaction that commits late. The cursor starts
 * at the newest seq when the hub starts (clients resume from the database
 * themselves) and is kept across reconnections, so events committed during
 * an outage are delivered once the database is back.
 *
 * Quiet mode. PostgreSQL signals every listening session at each notifying
 * commit, and that session then wakes the hub: a few context switches per
 * event, which on a loaded machine cost more than reading the event. Once
 * HUB_OUTBOX_QUIET_JOBS broadcasts wait to be written, events read now would
 * only queue behind them, so the hub UNLISTENs and reads the outbox every
 * HUB_OUTBOX_POLL_MS instead (a page at once when there is more). When a read
 * finds nothing more and the backlog is down to half, it LISTENs again and
 * reads once more, for what committed in between. A critical event waits at
 * most one interval longer to be read meanwhile; it is then sent at once, as
 * always (router.h).
 */
#include "outbox.h"
#include "conn.h"
#include "fallback.h"
#include "hub.h"
#include "log.h"
#include "replay.h"
#include "router.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void outbox_read(struct hub *hub);
static void quiet_end(struct hub *hub);

/* True when res has status want; otherwise logs what failed (res NULL: the
 * connection was lost, which db.c reports). */
static int
result_is(const PGresult *res, ExecStatusType want, const char *what)
{
    if (!res)
        return 0;
    if (PQresultStatus(res) != want) {
        log_err("outbox", "%s failed: %s", what, PQresultErrorMessage(res));
        return 0;
    }
    return 1;
}

static void
on_rows(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    hub->reading = 0;
    if (!result_is(res, PGRES_TUPLES_OK, "reading hub.outbox"))
        return;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct event ev;
        if (event_from_row(res, i, &ev) == 0)
            router_deliver(hub, &ev);
        event_clear(&ev);
        hub->cursor = ev.seq;
        hub->m.events_read++;
    }
    if (n >= hub->cfg->outbox_batch) {
        outbox_read(hub);
        return;
    }
    if (hub->quiet) {
        /* Caught up with what had committed: the timer reads next, unless
         * the backlog is small again and notifications can come back. */
        hub->read_again = 0;
        if (hub->fan_jobs <= (size_t)hub->cfg->outbox_quiet_jobs / 2)
            quiet_end(hub);
        return;
    }
    if (hub->read_again)
        outbox_read(hub);
}

/* Reads the next page after the cursor, or marks that one more read is due. */
static void
outbox_read(struct hub *hub)
{
    if (!hub->listening || !hub->cursor_known)
        return;
    if (hub->reading || router_busy(hub)) {
        hub->read_again = 1;
        return;
    }
    /* Prepared: it runs once per notification when events are sparse. */
    static const char stmt[] = "outbox_page";
    static const char sql[] =
        "SELECT " EVENT_COLUMNS " FROM hub.outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
    char cursor[24], limit[16];
    snprintf(cursor, sizeof(cursor), "%lld", (long long)hub->cursor);
    snprintf(limit, sizeof(limit), "%d", hub->cfg->outbox_batch);
    const char *params[2] = {cursor, limit};
    hub->read_again = 0;
    if (db_query_prepared(hub->listen_db, stmt, sql, 2, params, on_rows, hub)) {
        hub->reading = 1;
        hub->m.outbox_reads++;
    }
}

static void on_poll(lws_sorted_usec_list_t *sul);

/* The quiet mode's next read, HUB_OUTBOX_POLL_MS from now. */
static void
poll_later(struct hub *hub)
{
    lws_sul_schedule(hub->ctx, 0, &hub->poll_sul, on_poll,
                     (lws_usec_t)hub->cfg->outbox_poll_ms * 1000);
}

static void
on_poll(lws_sorted_usec_list_t *sul)
{
    struct hub *hub = lws_container_of(sul, struct hub, poll_sul);
    if (!hub->quiet)
        return;
    outbox_read(hub);
    poll_later(hub);
}

/* Behind by HUB_OUTBOX_QUIET_JOBS broadcasts: notifications off, timer on. */
static void
quiet_begin(struct hub *hub)
{
    if (hub->quiet || !hub->cfg->outbox_quiet_jobs ||
        hub->fan_jobs < (size_t)hub->cfg->outbox_quiet_jobs)
        return;
    if (!db_query(hub->listen_db, "UNLISTEN " OUTBOX_CHANNEL, 0, NULL, NULL, NULL))
        return;
    hub->quiet = 1;
    hub->m.outbox_quiet++;
    log_debug("outbox", "%zu broadcasts waiting: reading every %d ms instead of on notifications",
              hub->fan_jobs, hub->cfg->outbox_poll_ms);
    poll_later(hub);
}

static void
on_relisten(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    if (!res)
        return; /* the connection went: on_up listens again */
    if (!result_is(res, PGRES_COMMAND_OK, "LISTEN " OUTBOX_CHANNEL)) {
        /* Still deaf: keep reading on the timer; the next catch-up retries. */
        hub->quiet = 1;
        poll_later(hub);
        return;
    }
    /* What committed between the last read and now had no notification. */
    outbox_read(hub);
}

/* Caught up: notifications on again, then one more read. */
static void
quiet_end(struct hub *hub)
{
    lws_sul_cancel(&hub->poll_sul);
    hub->quiet = 0;
    log_debug("outbox", "caught up: reading on notifications again");
    db_query(hub->listen_db, "LISTEN " OUTBOX_CHANNEL, 0, NULL, on_relisten, hub);
}

void
outbox_stop(struct hub *hub)
{
    lws_sul_cancel(&hub->poll_sul);
    hub->quiet = 0;
}

void
outbox_resume(struct hub *hub)
{
    if (hub->read_again && !hub->reading)
        outbox_read(hub);
}

static void
on_cursor(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    if (!result_is(res, PGRES_TUPLES_OK, "reading the newest seq"))
        return;
    hub->cursor = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    hub->cursor_known = 1;
    hub->listening = 1;
    log_info("outbox", "listening on %s, starting after seq %lld", OUTBOX_CHANNEL,
             (long long)hub->cursor);
    outbox_read(hub);
    /* Replays that started before the cursor was known can now finish. */
    for (struct conn *c = hub->conns; c; c = c->next)
        replay_resume(c);
}

static void
on_listen(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    if (!result_is(res, PGRES_COMMAND_OK, "LISTEN " OUTBOX_CHANNEL))
        return;
    /* /healthz says ok only once the cursor is known too (on_cursor). */
    if (!hub->cursor_known) {
        db_query(db, "SELECT coalesce(max(seq), 0) FROM hub.outbox", 0, NULL, on_cursor, hub);
        return;
    }
    hub->listening = 1;
    log_info("outbox", "listening on %s", OUTBOX_CHANNEL);
    outbox_read(hub);
}

/* The fallback's channels are listened to here too (fallback.h says why). */
static void
on_fallback_listen(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    if (result_is(res, PGRES_COMMAND_OK, "LISTEN " FALLBACK_CHANNEL_POLICIES))
        fallback_listening(hub->fallback);
}

static void
on_up(struct db *db, void *ud)
{
    struct hub *hub = ud;
    /* The page read's one plan, an index scan on seq, suits every cursor;
     * without this PostgreSQL plans it again at each call (its estimate
     * for "seq > the newest" is so small that a custom plan looks cheaper).
     * Only prepared statements are affected, and this session has one. */
    db_query(db, "SET plan_cache_mode = force_generic_plan", 0, NULL, NULL, NULL);
    db_query(db, "LISTEN " FALLBACK_CHANNEL_DELIVERIES, 0, NULL, NULL, NULL);
    db_query(db, "LISTEN " FALLBACK_CHANNEL_POLICIES, 0, NULL, on_fallback_listen, hub);
    db_query(db, "LISTEN " OUTBOX_CHANNEL, 0, NULL, on_listen, hub);
}

static void
on_down(struct db *db, void *ud, const char *why)
{
    struct hub *hub = ud;
    if (hub->listening)
        hub->m.db_reconnects++;
    hub->listening = 0;
    hub->reading = 0;
    hub->read_again = 0;
    outbox_stop(hub); /* the next session LISTENs in on_up */
}

static void
on_notify(struct db *db, void *ud, const char *channel, const char *payload)
{
    struct hub *hub = ud;
    if (!strcmp(channel, OUTBOX_CHANNEL)) {
        hub->m.outbox_wakeups++;
        quiet_begin(hub);
        outbox_read(hub);
    } else
        fallback_notify(hub->fallback, channel);
}

const struct db_ops outbox_db_ops = {
    .on_up = on_up,
    .on_down = on_down,
    .on_notify = on_notify,
};
