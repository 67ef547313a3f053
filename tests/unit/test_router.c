/*
 * test_router.c - unit tests for hub/router.c and hub/conn.c together: the
 * contract's promise that every connection sees seq only increase, and
 * never the same event twice, whatever mix of small fan-outs (sent at
 * once), large ones (written in slices over loop turns, in batches), slow
 * readers falling behind and catching up from the outbox, and critical
 * events overtaking a fan-out in progress the hub goes through.
 *
 * No socket and no database: connections are struct conn with a fake
 * write path (this file defines the few lws functions conn.c calls, which
 * take precedence over the shared library's), and the outbox is an array
 * of events read by a fake feed (struct conn_feed, what replay.c is in the
 * hub). Fan-out slices run on a real libev loop (soon.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "event.h"
#include "hub.h"
#include "log.h"
#include "registry.h"
#include "router.h"
#include "soon.h"

/* Connections: more than ROUTER_SLICE, so broadcasts become fan-outs. */
#define N_CONNS 300
/* Events in the outbox at most. */
#define MAX_EVENTS 4000
/* Rows the fake feed hands over per turn (replay.c's page). */
#define FEED_PAGE 7

/* What the fake socket of one connection has seen and does. */
struct fake_sock {
    int64_t last_seen; /* seq of the newest event frame written */
    size_t events;     /* event frames written */
    int stalled;       /* the peer does not read: lws holds a partial write */
    int want_writable; /* lws_callback_on_writable() was asked */
    int failed;        /* lws_set_timeout(): the hub gave up on the socket */
};

static struct hub_config cfg;
static struct hub hub;
static struct ev_loop *loop;
static struct tenant *tenant;
static struct conn conns[N_CONNS];
static struct fake_sock socks[N_CONNS];
static struct event outbox[MAX_EVENTS];
static size_t n_outbox;

static struct fake_sock *
sock_of(const struct lws *wsi)
{
    return &socks[(const struct conn *)wsi - conns];
}

/* --- The lws functions conn.c calls, without lws. --- */

int
lws_partial_buffered(struct lws *wsi)
{
    return sock_of(wsi)->stalled;
}

int
lws_callback_on_writable(struct lws *wsi)
{
    sock_of(wsi)->want_writable = 1;
    return 1;
}

void
lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs)
{
    sock_of(wsi)->failed = 1;
}

void
lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len)
{
}

void
lws_sul_schedule(struct lws_context *ctx, int tsi, lws_sorted_usec_list_t *sul, sul_cb_t cb,
                 lws_usec_t us)
{
}

void
lws_sul_cancel(lws_sorted_usec_list_t *sul)
{
}

/*
 * The socket: p holds whole server frames (conn.c never splits one across
 * calls when nothing is buffered). Every event frame's seq must be above
 * the last one this connection was written.
 */
int
lws_write(struct lws *wsi, unsigned char *p, size_t len, enum lws_write_protocol wp)
{
    struct fake_sock *s = sock_of(wsi);
    size_t at = 0;
    while (at < len) {
        assert_true(len - at >= 2);
        size_t n = p[at + 1] & 0x7f, hl = 2;
        if (n == 126) {
            n = (size_t)p[at + 2] << 8 | p[at + 3];
            hl = 4;
        } else if (n == 127) {
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | p[at + 2 + i];
            hl = 10;
        }
        assert_true(at + hl + n <= len);
        json_t *msg = json_loadb((const char *)p + at + hl, n, 0, NULL);
        assert_non_null(msg);
        if (!strcmp(json_string_value(json_object_get(msg, "type")), "event")) {
            int64_t seq = json_integer_value(json_object_get(msg, "seq"));
            if (seq <= s->last_seen)
                fail_msg("connection %ld: seq %lld written after seq %lld",
                         (long)((const struct conn *)wsi - conns), (long long)seq,
                         (long long)s->last_seen);
            s->last_seen = seq;
            s->events++;
        }
        json_decref(msg);
        at += hl + n;
    }
    return (int)len;
}

/* --- The feed: replay.c's part, reading the array instead of hub.outbox. --- */

/* Hands c the next page of the events after its last_seq (replay.c's on_page). */
static void
feed_resume(struct conn *c)
{
    if (!c->replaying || c->state != CONN_READY)
        return;
    if (c->queued_bytes > cfg.max_queue_bytes / 4) {
        c->replay_waiting = 1;
        return;
    }
    c->replay_waiting = 0;
    int handed = 0;
    for (size_t i = 0; i < n_outbox && handed < FEED_PAGE; i++) {
        if (outbox[i].seq <= c->last_seq)
            continue;
        if (handed && c->queued_bytes >= cfg.max_queue_bytes / 2)
            break;
        router_deliver_one(c, &outbox[i]);
        if (outbox[i].seq > c->last_seq)
            c->last_seq = outbox[i].seq;
        handed++;
    }
    if (c->last_seq >= hub.cursor) {
        c->replaying = 0; /* caught up with the live cursor: live again */
        return;
    }
    /* The next page: replay.c asks the database; here, the next turn. */
    c->replay_waiting = 1;
    lws_callback_on_writable(c->wsi);
}

static void
feed_stop(struct conn *c)
{
    c->replaying = 0;
}

static const struct conn_feed fake_feed = {.resume = feed_resume, .stop = feed_stop};

/* --- The hub around them. --- */

/* A deterministic generator, so a failure repeats. */
static uint32_t rng_state;

static uint32_t
rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static int
setup(void **state)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_queue_bytes = 6000; /* a few dozen events: slow readers fall behind */
    cfg.slow_consumer_ms = 1000000;
    cfg.close_timeout_ms = 5000;
    memset(&hub, 0, sizeof(hub));
    hub.cfg = &cfg;
    hub.feed = &fake_feed;
    hub.cursor_known = 1;
    loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    soon_init(loop);
    hub.router = router_new(&hub, NULL);
    assert_non_null(hub.router);
    tenant = reg_tenant(&hub.reg, "t1", 1);
    assert_non_null(tenant);
    memset(conns, 0, sizeof(conns));
    memset(socks, 0, sizeof(socks));
    n_outbox = 0;
    rng_state = 17;
    for (int i = 0; i < N_CONNS; i++) {
        struct conn *c = &conns[i];
        c->wsi = (struct lws *)c;
        c->hub = &hub;
        c->fd = -1; /* every write goes through lws_write() */
        c->fmt = FRAME_JSON;
        c->state = CONN_READY;
        c->tenant = tenant;
        c->progress_ms = hub_now_ms();
        snprintf(c->session, sizeof(c->session), "c%d", i);
        /* Everyone is in "all"; some also in a, b or c, several in two. */
        assert_int_equal(reg_join(&hub.reg, tenant, "all", c, &c->rooms), 1);
        if (i % 3 == 0)
            reg_join(&hub.reg, tenant, "a", c, &c->rooms);
        if (i % 4 == 0)
            reg_join(&hub.reg, tenant, "b", c, &c->rooms);
        if (i % 5 == 0)
            reg_join(&hub.reg, tenant, "c", c, &c->rooms);
        tenant->n_conns++;
    }
    return 0;
}

static int
teardown(void **state)
{
    for (int i = 0; i < N_CONNS; i++) {
        reg_leave_all(&hub.reg, &conns[i].rooms);
        conn_release(&conns[i]);
    }
    router_free(hub.router);
    reg_free(&hub.reg);
    for (size_t i = 0; i < n_outbox; i++)
        event_clear(&outbox[i]);
    soon_init(NULL);
    ev_loop_destroy(loop);
    return 0;
}

/* Commits an event to rooms (a JSON array of names) and routes it, as
 * outbox.c does with a row it read. */
static void
emit(const char *rooms, const char *priority)
{
    assert_true(n_outbox < MAX_EVENTS);
    struct event *ev = &outbox[n_outbox++];
    int64_t seq = hub.cursor + 1;
    *ev = (struct event){.id = 1000 + seq,
                         .seq = seq,
                         .tenant = "t1",
                         .kind = "notice",
                         .rooms = json_loads(rooms, 0, NULL),
                         .data = "{\"n\":1}",
                         .data_len = 7,
                         .priority = priority,
                         .ts_ms = 1};
    assert_non_null(ev->rooms);
    hub.cursor = seq;
    router_deliver(&hub, ev);
}

/* One loop turn: a fan-out slice (soon.c), then a writable callback for
 * every connection that asked for one and whose peer reads. */
static void
turn(void)
{
    ev_run(loop, EVRUN_NOWAIT);
    for (int i = 0; i < N_CONNS; i++) {
        if (socks[i].stalled || !socks[i].want_writable)
            continue;
        socks[i].want_writable = 0;
        assert_int_equal(conn_flush(&conns[i]), 0);
    }
}

/* Every peer reads again; turns until nothing is left to write or read. */
static void
settle(void)
{
    for (int i = 0; i < N_CONNS; i++)
        socks[i].stalled = 0;
    for (int k = 0; k < 10000; k++) {
        turn();
        int busy = router_jobs(hub.router) > 0;
        for (int i = 0; i < N_CONNS && !busy; i++)
            busy = socks[i].want_writable || conns[i].replaying;
        if (!busy)
            return;
    }
    fail_msg("the hub did not settle");
}

/* Whether connection c is in one of the rooms of ev. */
static int
addressed_to(const struct conn *c, const struct event *ev)
{
    size_t i;
    json_t *r;
    json_array_foreach(ev->rooms, i, r)
    {
        if (reg_member_of(c->rooms, json_string_value(r)))
            return 1;
    }
    return 0;
}

/* After settle(): every connection was written each event for it, once. */
static void
assert_complete(void)
{
    for (int i = 0; i < N_CONNS; i++) {
        size_t want = 0;
        int64_t newest = 0;
        for (size_t e = 0; e < n_outbox; e++)
            if (addressed_to(&conns[i], &outbox[e])) {
                want++;
                newest = outbox[e].seq;
            }
        assert_false(socks[i].failed);
        assert_int_equal(conns[i].state, CONN_READY);
        if (socks[i].events != want || socks[i].last_seen != newest)
            fail_msg("connection %d: %zu events up to seq %lld written, %zu up to %lld due", i,
                     socks[i].events, (long long)socks[i].last_seen, want, (long long)newest);
    }
}

/* The peers of every step-th connection stop reading (stalled) or read again. */
static void
stall_every(int step, int stalled)
{
    for (int i = 0; i < N_CONNS; i += step)
        socks[i].stalled = stalled;
}

/* Small fan-outs go out at once; readers that stall fall behind, lose
 * their queue and catch up from the outbox while events keep coming. */
static void
test_catch_up_keeps_order(void **state)
{
    for (int round = 0; round < 40; round++) {
        stall_every(7, (round / 5) % 2);
        for (int k = 0; k < 20; k++)
            emit(k % 3 ? "[\"a\"]" : "[\"b\", \"a\", \"c\"]", "normal");
        turn();
    }
    settle();
    assert_true(hub.m.catchups > 0);
    assert_complete();
}

/* Broadcasts to every connection become fan-outs in progress, batched and
 * written in slices; critical events overtake them (each recipient first
 * gets what it is owed), and stalled readers fall behind in the middle. */
static void
test_fanout_batches_and_critical(void **state)
{
    for (int round = 0; round < 30; round++) {
        stall_every(11, (round / 4) % 2);
        for (int k = 0; k < 12; k++)
            emit("[\"all\"]", "normal");
        assert_true(router_jobs(hub.router) > 0); /* a fan-out in progress */
        emit("[\"b\", \"all\"]", "normal");
        emit("[\"c\"]", "critical");
        turn();
        emit("[\"all\", \"a\"]", "critical");
        turn();
    }
    settle();
    assert_true(hub.m.catchups > 0);
    assert_true(hub.m.frame_runs > 0);
    assert_complete();
}

/* A random mix of everything, with peers stalling and reading at random. */
static void
test_random_mix(void **state)
{
    static const char *const mixes[] = {"[\"all\"]", "[\"a\"]", "[\"b\", \"c\"]",
                                        "[\"c\", \"all\"]", "[\"a\", \"b\", \"c\"]"};
    for (int step = 0; step < 1500; step++) {
        uint32_t r = rng();
        if (r % 10 < 6)
            emit(mixes[r / 16 % 5], r % 23 == 0 ? "critical" : "normal");
        else if (r % 10 < 8)
            turn();
        else
            socks[r / 16 % N_CONNS].stalled ^= 1;
    }
    settle();
    assert_true(hub.m.catchups > 0);
    assert_complete();
}

int
main(void)
{
    log_set_level(LOG_WARN); /* not a line per connection that falls behind */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catch_up_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_batches_and_critical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_mix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
