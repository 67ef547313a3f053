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
 *
 * Faults. A listener query can fail while the connection stays up: a
 * cancelled statement, a lock or statement timeout, memory. Every failure
 * is retried after a delay that doubles from OUTBOX_RETRY_BASE_MS up to
 * HUB_OUTBOX_SAFETY_MS, so nothing waits for the next notification, which
 * may never come. And as a safety net the connected listener reads the
 * outbox whenever HUB_OUTBOX_SAFETY_MS passed without a read, so a lost or
 * never-sent notification (a LISTEN that failed, say) costs at most that
 * long. /healthz says ok while the outbox can be read: the cursor is known
 * and the last read did not fail.
 */
#include "outbox.h"
#include "conn.h"
#include "fallback.h"
#include "hub.h"
#include "log.h"
#include "replay.h"
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First retry delay after a failed listener query; doubles per failure in a
 * row, capped at HUB_OUTBOX_SAFETY_MS. */
#define OUTBOX_RETRY_BASE_MS 50

/* The reader's state (struct hub's outbox). The cursor it advances is the
 * hub's (hub->cursor): replay and /metrics read it. */
struct outbox {
    struct hub *hub;
    int reading;                     /* an outbox read is in flight */
    int read_again;                  /* a notification came during that read */
    int quiet;                       /* behind: UNLISTENed, reading every outbox_poll_ms */
    lws_sorted_usec_list_t poll_sul; /* the quiet mode's next read */
    /* Fault handling. */
    int up;                           /* listen_db is connected: on_up ran, on_down did not since */
    int notified;                     /* LISTEN OUTBOX_CHANNEL is in effect on listen_db */
    int listen_pending;               /* a LISTEN OUTBOX_CHANNEL is on its way */
    int cursor_pending;               /* the newest-seq query is on its way */
    int read_fails;                   /* cursor or page reads failed in a row (backoff) */
    int listen_fails;                 /* LISTENs failed in a row */
    int64_t retry_at;                 /* hub_now_ms() the retry_sul retry is due, 0: none */
    int64_t last_read_ms;             /* hub_now_ms() when the last page read was sent */
    lws_sorted_usec_list_t retry_sul; /* the next attempt after a failed listener query */
    lws_sorted_usec_list_t safety_sul; /* the safety net's read (outbox_safety_ms) */
};

struct outbox *
outbox_new(struct hub *hub)
{
    struct outbox *o = calloc(1, sizeof(*o));
    if (o)
        o->hub = hub;
    return o;
}

void
outbox_free(struct outbox *o)
{
    if (!o)
        return;
    lws_sul_cancel(&o->poll_sul);
    lws_sul_cancel(&o->retry_sul);
    lws_sul_cancel(&o->safety_sul);
    free(o);
}

static void outbox_read(struct hub *hub);
static void outbox_kick(struct hub *hub);
static void quiet_end(struct hub *hub);
static void on_listen(struct db *db, const PGresult *res, void *ud);
static void on_cursor(struct db *db, const PGresult *res, void *ud);

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

/* The backoff after a failed listener query is over: try what is missing. */
static void
on_retry(lws_sorted_usec_list_t *sul)
{
    struct outbox *o = lws_container_of(sul, struct outbox, retry_sul);
    struct hub *hub = o->hub;
    hub->outbox->retry_at = 0;
    outbox_kick(hub);
}

/* True while a failed read waits out its delay: no read is sent meanwhile. */
static int
backing_off(const struct hub *hub)
{
    return hub->outbox->read_fails && hub->outbox->retry_at && hub_now_ms() < hub->outbox->retry_at;
}

/*
 * A listener query failed with the connection up (res is its error result,
 * or NULL when it could not even be queued): counts it, logs the first
 * failure of a run as a warning and the rest at debug level (a cancel loop
 * must not flood the log), and schedules outbox_kick() after the backoff of
 * *fails, which it increments. The connection's loss is on_down's business.
 */
static void
outbox_failed(struct hub *hub, int *fails, const char *what, const PGresult *res)
{
    char why[200];
    snprintf(why, sizeof(why), "%s", res ? PQresultErrorMessage(res) : "could not be queued");
    why[strcspn(why, "\r\n")] = '\0';
    int max = hub->cfg->outbox_safety_ms;
    int delay = *fails < 16 ? OUTBOX_RETRY_BASE_MS << *fails : max;
    if (delay > max)
        delay = max;
    (*fails)++;
    hub->m.outbox_failures++;
    if (*fails == 1)
        log_warn("outbox", "%s failed: %s; retrying in %d ms", what, why, delay);
    else
        log_debug("outbox", "%s failed again (%d in a row): %s; retrying in %d ms", what, *fails,
                  why, delay);
    int64_t due = hub_now_ms() + delay;
    if (hub->outbox->retry_at && hub->outbox->retry_at <= due)
        return; /* an earlier retry is already scheduled and does it all */
    hub->outbox->retry_at = due;
    lws_sul_schedule(hub->ctx, 0, &hub->outbox->retry_sul, on_retry, (lws_usec_t)delay * 1000);
}

/* A cursor or page read succeeded: the outbox is readable again. */
static void
read_ok(struct hub *hub)
{
    if (hub->outbox->read_fails)
        log_info("outbox", "reading the outbox again after %d failed reads",
                 hub->outbox->read_fails);
    hub->outbox->read_fails = 0;
    hub->listening = 1;
}

/* A cursor or page read failed with the connection up. */
static void
read_failed(struct hub *hub, const char *what, const PGresult *res)
{
    hub->listening = 0;
    outbox_failed(hub, &hub->outbox->read_fails, what, res);
}

static void on_safety(lws_sorted_usec_list_t *sul);

/* Schedules the safety net's next look, HUB_OUTBOX_SAFETY_MS after the last read. */
static void
safety_later(struct hub *hub)
{
    int64_t wait = hub->outbox->last_read_ms + hub->cfg->outbox_safety_ms - hub_now_ms();
    if (hub->outbox->reading || wait <= 0 || wait > hub->cfg->outbox_safety_ms)
        wait = hub->cfg->outbox_safety_ms;
    lws_sul_schedule(hub->ctx, 0, &hub->outbox->safety_sul, on_safety, (lws_usec_t)wait * 1000);
}

/*
 * The safety net: reads when HUB_OUTBOX_SAFETY_MS passed without a read,
 * whatever happened to notifications. A read in flight or a failed one
 * waiting out its backoff (never longer than the same interval) covers it.
 */
static void
on_safety(lws_sorted_usec_list_t *sul)
{
    struct outbox *o = lws_container_of(sul, struct outbox, safety_sul);
    struct hub *hub = o->hub;
    if (!hub->outbox->up)
        return;
    if (hub->cursor_known && !hub->outbox->reading && !backing_off(hub) &&
        hub_now_ms() - hub->outbox->last_read_ms >= hub->cfg->outbox_safety_ms) {
        hub->m.outbox_safety_reads++;
        outbox_read(hub);
    }
    safety_later(hub);
}

/* Sends LISTEN OUTBOX_CHANNEL (on_listen takes the answer). */
static void
listen_now(struct hub *hub)
{
    if (hub->outbox->listen_pending)
        return;
    if (!db_query(hub->listen_db, "LISTEN " OUTBOX_CHANNEL, 0, NULL, on_listen, hub)) {
        outbox_failed(hub, &hub->outbox->listen_fails, "LISTEN " OUTBOX_CHANNEL, NULL);
        return;
    }
    hub->outbox->listen_pending = 1;
}

/*
 * Does whatever the connected listener still lacks: LISTEN (unless the
 * quiet mode turned it off), the cursor, then a page read. Every failure
 * path ends here again through the retry timer.
 */
static void
outbox_kick(struct hub *hub)
{
    if (!hub->outbox->up)
        return;
    if (!hub->outbox->notified && !hub->outbox->quiet)
        listen_now(hub);
    if (hub->cursor_known) {
        outbox_read(hub);
        return;
    }
    if (hub->outbox->cursor_pending || backing_off(hub))
        return;
    if (!db_query(hub->listen_db, "SELECT coalesce(max(seq), 0) FROM hub.outbox", 0, NULL,
                  on_cursor, hub)) {
        read_failed(hub, "reading the newest seq", NULL);
        return;
    }
    hub->outbox->cursor_pending = 1;
}

static void
on_rows(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    hub->outbox->reading = 0;
    if (!res)
        return; /* the connection went: on_up reads again */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        read_failed(hub, "reading hub.outbox", res);
        return;
    }
    read_ok(hub);
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
    if (hub->outbox->quiet) {
        /* Caught up with what had committed: the timer reads next, unless
         * the backlog is small again and notifications can come back. */
        hub->outbox->read_again = 0;
        if (router_jobs(hub->router) <= (size_t)hub->cfg->outbox_quiet_jobs / 2)
            quiet_end(hub);
        return;
    }
    if (hub->outbox->read_again)
        outbox_read(hub);
}

/* Reads the next page after the cursor, or marks that one more read is due. */
static void
outbox_read(struct hub *hub)
{
    if (!hub->outbox->up || !hub->cursor_known || backing_off(hub))
        return; /* the retry timer reads when the delay is over */
    if (hub->outbox->reading || router_busy(hub->router)) {
        hub->outbox->read_again = 1;
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
    hub->outbox->read_again = 0;
    if (!db_query_prepared(hub->listen_db, stmt, sql, 2, params, on_rows, hub)) {
        read_failed(hub, "reading hub.outbox", NULL);
        return;
    }
    hub->outbox->reading = 1;
    hub->outbox->last_read_ms = hub_now_ms();
    hub->m.outbox_reads++;
}

static void on_poll(lws_sorted_usec_list_t *sul);

/* The quiet mode's next read, HUB_OUTBOX_POLL_MS from now. */
static void
poll_later(struct hub *hub)
{
    lws_sul_schedule(hub->ctx, 0, &hub->outbox->poll_sul, on_poll,
                     (lws_usec_t)hub->cfg->outbox_poll_ms * 1000);
}

static void
on_poll(lws_sorted_usec_list_t *sul)
{
    struct outbox *o = lws_container_of(sul, struct outbox, poll_sul);
    struct hub *hub = o->hub;
    if (!hub->outbox->quiet)
        return;
    outbox_read(hub);
    poll_later(hub);
}

/* Behind by HUB_OUTBOX_QUIET_JOBS broadcasts: notifications off, timer on. */
static void
quiet_begin(struct hub *hub)
{
    if (hub->outbox->quiet || hub->outbox->listen_pending || !hub->cfg->outbox_quiet_jobs ||
        router_jobs(hub->router) < (size_t)hub->cfg->outbox_quiet_jobs)
        return;
    if (!db_query(hub->listen_db, "UNLISTEN " OUTBOX_CHANNEL, 0, NULL, NULL, NULL))
        return;
    hub->outbox->quiet = 1;
    hub->outbox->notified = 0;
    hub->m.outbox_quiet++;
    log_debug("outbox", "%zu broadcasts waiting: reading every %d ms instead of on notifications",
              router_jobs(hub->router), hub->cfg->outbox_poll_ms);
    poll_later(hub);
}

/* Caught up: notifications on again, then one more read. */
static void
quiet_end(struct hub *hub)
{
    lws_sul_cancel(&hub->outbox->poll_sul);
    hub->outbox->quiet = 0;
    log_debug("outbox", "caught up: reading on notifications again");
    /* on_listen reads once more, for what committed without a notification. */
    listen_now(hub);
}

void
outbox_stop(struct hub *hub)
{
    if (!hub->outbox)
        return;
    lws_sul_cancel(&hub->outbox->poll_sul);
    lws_sul_cancel(&hub->outbox->retry_sul);
    lws_sul_cancel(&hub->outbox->safety_sul);
    hub->outbox->retry_at = 0;
    hub->outbox->quiet = 0;
}

int
outbox_is_quiet(const struct outbox *o)
{
    return o && o->quiet;
}

void
outbox_resume(struct hub *hub)
{
    if (hub->outbox->read_again && !hub->outbox->reading)
        outbox_read(hub);
}

static void
on_cursor(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    hub->outbox->cursor_pending = 0;
    if (!res)
        return; /* the connection went: on_up asks again */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        read_failed(hub, "reading the newest seq", res);
        return;
    }
    hub->cursor = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    hub->cursor_known = 1;
    read_ok(hub);
    log_info("outbox", "listening on %s, starting after seq %lld", OUTBOX_CHANNEL,
             (long long)hub->cursor);
    outbox_read(hub);
    /* Replays that started before the cursor was known can now finish. */
    for (struct conn *c = hub->conns; c; c = c->next)
        replay_resume(c);
}

/*
 * LISTEN answered, after a (re)connection or at the end of the quiet mode.
 * Once it is in effect, one read picks up what committed before it without
 * a notification; the first time, the cursor query queued behind it does.
 */
static void
on_listen(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    hub->outbox->listen_pending = 0;
    if (!res)
        return; /* the connection went: on_up listens again */
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* Still read by the safety net meanwhile. */
        outbox_failed(hub, &hub->outbox->listen_fails, "LISTEN " OUTBOX_CHANNEL, res);
        return;
    }
    hub->outbox->notified = 1;
    if (hub->outbox->listen_fails)
        log_info("outbox", "listening on %s again", OUTBOX_CHANNEL);
    hub->outbox->listen_fails = 0;
    if (hub->cursor_known)
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
    hub->outbox->up = 1;
    hub->outbox->last_read_ms = hub_now_ms();
    outbox_kick(hub); /* LISTEN, then the cursor or a read */
    safety_later(hub);
}

static void
on_down(struct db *db, void *ud, const char *why)
{
    struct hub *hub = ud;
    if (hub->outbox->up)
        hub->m.db_reconnects++;
    hub->listening = 0;
    hub->outbox->reading = 0;
    hub->outbox->read_again = 0;
    hub->outbox->up = 0;
    hub->outbox->notified = 0;
    hub->outbox->listen_pending = 0;
    hub->outbox->cursor_pending = 0;
    hub->outbox->read_fails = 0;
    hub->outbox->listen_fails = 0;
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
