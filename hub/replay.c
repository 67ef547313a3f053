/*
 * replay.c - paged, asynchronous resume from hub.outbox (see replay.h).
 *
 * Each step reads at most REPLAY_PAGE rows of the connection's tenant with
 * seq in (last_seq, upto] that name one of its rooms, where upto is the
 * live cursor when the page is asked for, and of those only as many as fit
 * in the page's byte budget (a share of HUB_MAX_QUEUE_BYTES, the first row
 * always). Rows up to the cursor are committed and visible (the live reader
 * saw them), and the live router skips a replaying connection, so when a
 * page ends its window and the cursor has not moved, every event up to it
 * has been queued and the connection can go live.
 *
 * Progress is guaranteed: the first row of a page is always handed over
 * (conn_send() never refuses an event to a replaying connection), later
 * rows only while the queue is under half its bound, and last_seq moves
 * past every row handed over, so the next page starts after it. Pages are
 * only asked for while the queue is under a quarter of its bound, so a long
 * replay never holds more than about half of it in memory, and a replaying
 * connection never falls behind (which would drop its queue and read the
 * same rows again).
 *
 * A connection that falls behind a burst is marked by conn.c (replaying
 * from the first event it was not sent, waiting for its queue); its
 * writable callback then calls replay_feed's resume, and it catches up
 * here like any other replay.
 */
#include "replay.h"
#include "conn.h"
#include "db.h"
#include "hub.h"
#include "event.h"
#include "log.h"
#include "pgarray.h"
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void replay_page(struct conn *c);

/* The database is unreachable: the client is told to come back. */
static void
replay_fail(struct conn *c)
{
    c->replaying = 0;
    conn_error(c, "internal", "cannot read missed events now; reconnect and resume", NULL);
    conn_close(c, 1013, "try again later");
}

/* True when res holds rows; otherwise the replay is abandoned (logged). */
static int
replay_answered(struct conn *c, const PGresult *res)
{
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        return 1;
    if (res)
        log_err("replay", "session %s: %s", c->session, PQresultErrorMessage(res));
    replay_fail(c);
    return 0;
}

/*
 * A page: hands its rows over in order while the queue has room, then asks
 * for the next one (or, when the page ended its window at the live cursor,
 * hands the connection over to the live router).
 */
static void
on_page(struct db *db, const PGresult *res, void *ud)
{
    struct conn *c = ud;
    c->replay_req = NULL;
    if (!replay_answered(c, res))
        return;
    int n = PQntuples(res);
    /* The last column: how many rows the query found before the byte budget cut the page. */
    int found = n ? atoi(PQgetvalue(res, 0, PQnfields(res) - 1)) : 0;
    size_t room = c->hub->cfg->max_queue_bytes / REPLAY_HANDOFF_SHARE;
    int i;
    for (i = 0; i < n; i++) {
        if (i > 0 && c->queued_bytes >= room)
            break; /* the rest is read again once the queue has drained */
        struct event ev;
        if (event_from_row(res, i, &ev) == 0 && router_deliver_one(c, &ev) > 0)
            c->hub->m.replayed_events++;
        event_clear(&ev);
        if (ev.seq > c->last_seq)
            c->last_seq = ev.seq; /* rows this connection skipped still move it on */
        if (c->state == CONN_CLOSING)
            return;
    }
    if (i == n && n == found && found < REPLAY_PAGE) {
        /* The window (after, replay_hi] is done; so is everything up to replay_hi. */
        if (c->replay_hi > c->last_seq)
            c->last_seq = c->replay_hi;
        if (c->replay_hi >= c->replay_upto && c->hub->cursor <= c->replay_upto) {
            c->replaying = 0;
            log_debug("replay", "session %s: caught up at seq %lld", c->session,
                      (long long)c->last_seq);
            return;
        }
    }
    replay_resume(c);
}

/*
 * The connection's rooms as a text[] literal for the page query (built by
 * pgarray_text(), which sizes and escapes it whatever the names hold).
 * Returns a string the caller frees, or NULL when memory ran out.
 */
static char *
replay_rooms_literal(const struct conn *c)
{
    size_t n = 0;
    for (struct member *m = c->rooms; m; m = m->cnext)
        n++;
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    if (!names)
        return NULL;
    n = 0;
    for (struct member *m = c->rooms; m; m = m->cnext)
        names[n++] = m->room->name;
    char *lit = pgarray_text(names, n);
    free(names);
    return lit;
}

/*
 * Asks for the next page (the caller checked the queue has room). A
 * connection in no room (it left even its automatic ones) has nothing in
 * the outbox to replay: it is caught up at once, without a query.
 */
static void
replay_page(struct conn *c)
{
    struct hub *hub = c->hub;
    if (!c->rooms) {
        if (hub->cursor > c->last_seq)
            c->last_seq = hub->cursor;
        c->replaying = 0;
        log_debug("replay", "session %s: in no room, caught up at seq %lld", c->session,
                  (long long)c->last_seq);
        return;
    }
    char *rooms = replay_rooms_literal(c);
    if (!rooms) {
        conn_close(c, 1011, "out of memory");
        return;
    }

    /* A page reads one window of seq numbers at most, so its cost stays
     * bounded whatever the planner knows about the table. */
    if (c->last_seq >= c->replay_upto)
        c->replay_upto = hub->cursor;
    c->replay_hi = c->replay_upto;
    if (c->replay_hi - c->last_seq > REPLAY_WINDOW)
        c->replay_hi = c->last_seq + REPLAY_WINDOW;
    char after[24], upto[24], limit[16], budget[24];
    snprintf(after, sizeof(after), "%lld", (long long)c->last_seq);
    snprintf(upto, sizeof(upto), "%lld", (long long)c->replay_hi);
    snprintf(limit, sizeof(limit), "%d", REPLAY_PAGE);
    snprintf(budget, sizeof(budget), "%zu", hub->cfg->max_queue_bytes / REPLAY_BUDGET_SHARE);
    const char *params[6] = {c->tenant->name, after, upto, rooms, limit, budget};
    /* The inner query is the page by rows (its plan: the (tenant, seq)
     * index); the outer one keeps the rows whose data before them in the
     * page stays under the budget, so the first row always, and says how
     * many rows the page had before that cut. */
    static const char sql[] =
        "SELECT " EVENT_COLUMNS ", replay_found FROM ("
        "SELECT o.*, count(*) OVER () AS replay_found, "
        "sum(octet_length(o.data::text)) OVER (ORDER BY o.seq ROWS UNBOUNDED PRECEDING) "
        "- octet_length(o.data::text) AS replay_before FROM ("
        "SELECT * FROM hub.outbox "
        "WHERE tenant = $1 AND seq > $2 AND seq <= $3 AND rooms && $4::text[] "
        "ORDER BY tenant, seq LIMIT $5) o) p "
        "WHERE replay_before < $6 ORDER BY seq";
    c->replay_req = db_query_urgent(hub->work_db, sql, 6, params, on_page, c);
    free(rooms);
    if (!c->replay_req)
        replay_fail(c);
}

/*
 * Where the resume starts. The tenant's newest seq is read from hub.outbox
 * now, not taken from the tenant cache or this hub's live cursor: a client
 * may come from another hub on the same database that is a few ms ahead of
 * this one, and the seq it holds is then committed, so the database knows
 * it even when this hub has not read it yet. Such a since is not "beyond
 * the newest": the replay starts there, the live router skips this
 * connection until the replay has caught up with the live cursor, and every
 * later delivery checks last_seq, so nothing it already holds comes again
 * and nothing after it is lost. Only a since above every committed seq of
 * the tenant (a backup restored, another database) is answered with
 * resume_gap naming the newest seq, and the connection continues after
 * welcome.last_seq, as a client without since would: what committed since
 * the welcome comes through the replay, then live.
 */
static void
on_horizon(struct db *db, const PGresult *res, void *ud)
{
    struct conn *c = ud;
    c->replay_req = NULL;
    if (!replay_answered(c, res))
        return;
    int64_t purged = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t newest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (newest < c->welcome_seq)
        newest = c->welcome_seq;
    if (c->last_seq > newest && c->last_seq > purged) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "since %lld is beyond the newest event (seq %lld); continuing after seq %lld",
                 (long long)c->last_seq, (long long)newest, (long long)c->welcome_seq);
        json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "type", "error", "code", "resume_gap",
                              "message", msg, "newest_seq", (json_int_t)newest);
        if (e && purged > 0)
            json_object_set_new(e, "oldest_seq", json_integer((json_int_t)purged + 1));
        if (e)
            conn_reply(c, e);
        json_decref(e);
        c->hub->m.gaps_ahead++;
        log_info("replay", "session %s: since %lld beyond the newest seq %lld", c->session,
                 (long long)c->last_seq, (long long)newest);
        c->last_seq = c->welcome_seq > purged ? c->welcome_seq : purged;
    } else if (c->last_seq < purged) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "events up to seq %lld are past retention; oldest available is %lld",
                 (long long)purged, (long long)purged + 1);
        c->hub->m.gaps_retention++;
        json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "type", "error", "code", "resume_gap",
                              "message", msg, "oldest_seq", (json_int_t)purged + 1);
        if (e)
            conn_reply(c, e);
        json_decref(e);
        c->last_seq = purged;
    }
    replay_resume(c);
}

void
replay_start(struct conn *c)
{
    c->hub->m.replays++;
    c->replaying = 1;
    c->last_seq = c->since;
    c->welcome_seq = c->tenant->last_seq; /* what the welcome just said */
    c->replay_upto = c->hub->cursor;
    const char *params[1] = {c->tenant->name};
    c->replay_req =
        db_query_urgent(c->hub->work_db,
                        "SELECT coalesce((SELECT purged_through FROM hub.outbox_horizon), 0), "
                        "(SELECT coalesce(max(seq), 0) FROM hub.outbox WHERE tenant = $1)",
                        1, params, on_horizon, c);
    if (!c->replay_req)
        replay_fail(c);
}

void
replay_resume(struct conn *c)
{
    /* Until the live reader knows where it starts, a replay cannot know
     * where to hand over: it waits (outbox.c resumes it). */
    if (!c->replaying || c->replay_req || c->state != CONN_READY || !c->hub->cursor_known)
        return;
    if (c->queued_bytes > c->hub->cfg->max_queue_bytes / 4) {
        c->replay_waiting = 1;
        return;
    }
    c->replay_waiting = 0;
    replay_page(c);
}

void
replay_stop(struct conn *c)
{
    db_cancel(c->replay_req);
    c->replay_req = NULL;
    c->replaying = 0;
}

const struct conn_feed replay_feed = {
    .resume = replay_resume,
    .stop = replay_stop,
};
