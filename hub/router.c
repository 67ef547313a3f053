/*
 * router.c - fan-out of one event to its rooms' members.
 *
 * A connection can be in several of the event's rooms; conn->last_seq
 * (the newest seq queued on it) makes it receive the event once, through
 * the first of its rooms that the event names. Because events are routed
 * in seq order, the same check keeps every connection's stream increasing.
 *
 * A large fan-out is written over several loop turns (struct fanout); an
 * event sent at once meanwhile first catches each recipient up on the
 * fan-outs in progress, so the stream stays increasing there too.
 *
 * Decoding outbox rows is event.c's; which acks a connection owes,
 * ackcheck.c's; writing, conn.c's.
 */
#include "router.h"
#include "ackcheck.h"
#include "acks.h"
#include "buf.h"
#include "conn.h"
#include "fallback.h"
#include "hub.h"
#include "log.h"
#include "soon.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

/*
 * Sends one encoded event frame to c: the connection's stream advances to
 * its seq, ack bookkeeping follows. Returns 1 when it went out.
 */
static int
send_event(struct hub *hub, struct conn *c, struct buf *b, int64_t id, int ack, int mark_sent)
{
    c->last_seq = b->seq;
    if (ack)
        ackcheck_sent(c, id, b->seq);
    if (conn_send(c, b, 0))
        return 0;
    if (mark_sent)
        acks_add(hub->sent, id, c->tenant->name, c->who.sub);
    return 1;
}

/*
 * An event too large to write in one loop turn, being written in slices.
 * When the oldest one starts, the queued events right behind it with the
 * same tenant and rooms join it (up to ROUTER_BATCH): they are walked
 * together, and a connection that is sent nothing else meanwhile gets
 * them as one run of frames in one write.
 */
struct fanout {
    struct fanout *next; /* in hub->router->head.., or in the leader's batch */
    struct tenant *t;
    int64_t id, seq;
    int64_t committed_us; /* the event's commit time (struct event's) */
    int ack, mark_sent;
    json_t *rooms;               /* the event's room names (reference) */
    json_t *map;                 /* the event map; "room" is set per room when encoding */
    char *data;                  /* the event's data as JSON text (owned copy) */
    size_t data_len;             /* its length */
    struct buf *enc[FRAME_FMTS]; /* the frame through room enc_room, per format */
    const char *enc_room;        /* a name in the leader's rooms, or NULL */
    size_t run_off[FRAME_FMTS];  /* where that frame starts in the leader's run */
    /* The leader's: */
    struct fanout *batch;               /* the events walked with this one, in seq order */
    int64_t last_seq;                   /* the newest seq of the batch */
    unsigned batched : 1;               /* the batch is formed */
    unsigned walking : 1;               /* hub->router->walk is the cursor in rooms[room_i] */
    size_t room_i;                      /* the room being walked */
    struct buf *run[FRAME_FMTS];        /* the batch's frames, back to back, per format */
    struct fanout *run_end[FRAME_FMTS]; /* the first event not in run (NULL: all are) */
};

/* The router's state (struct hub's router). */
struct router {
    struct hub *hub;
    struct fanout *head, *tail;      /* large fan-outs in progress, FIFO (owned) */
    size_t jobs;                     /* events in them (a batch counts each of its events) */
    struct soon soon;                /* the next slice, on the next loop turn */
    struct member *walk;             /* the next member the oldest fan-out visits (the
                                      * registry moves it on when that member leaves) */
    void (*unbusy)(struct hub *hub); /* called when router_busy() stops being true */
};

/* Encodes f's event as delivered through room name, in fmt. */
static struct buf *
fanout_encode(const struct fanout *f, const char *name, enum frame_fmt fmt)
{
    json_object_set_new(f->map, "room", json_string(name));
    struct buf *b = frame_encode_event(fmt, f->map, f->data, f->data_len);
    if (b)
        b->seq = f->seq;
    return b;
}

/* Drops f's frames in every format. */
static void
drop_encodings(struct fanout *f)
{
    for (int k = 0; k < FRAME_FMTS; k++) {
        buf_unref(f->enc[k]);
        f->enc[k] = NULL;
    }
}

/* f's frame through room name in fmt, encoded on first use. */
static struct buf *
fanout_frame(struct fanout *f, const char *name, enum frame_fmt fmt)
{
    if (f->enc_room && strcmp(f->enc_room, name))
        drop_encodings(f);
    f->enc_room = name;
    if (!f->enc[fmt])
        f->enc[fmt] = fanout_encode(f, name, fmt);
    if (!f->enc[fmt])
        log_err("router", "out of memory encoding event %lld", (long long)f->id);
    return f->enc[fmt];
}

/* Bytes b takes as a whole frame in a run. */
static size_t
framed_len(const struct buf *b)
{
    return buf_wire_len(b);
}

/* Writes b at dst as a whole frame (header, then payload); returns its length. */
static size_t
put_frame(unsigned char *dst, struct buf *b)
{
    unsigned char *start;
    size_t n = buf_wire(b, &start);
    memcpy(dst, start, n);
    return n;
}

/*
 * The leader's batch framed for fmt through room name, back to back, until
 * the run reaches ROUTER_BATCH_BYTES (at least two frames, or NULL: each is
 * sent alone).
 */
static struct buf *
fanout_run(struct fanout *lead, const char *name, enum frame_fmt fmt)
{
    if (lead->run[fmt] || !lead->batch)
        return lead->run[fmt];
    size_t total = 0, n = 0;
    struct fanout *e;
    for (e = lead; e; e = e->batch) {
        struct buf *b = fanout_frame(e, name, fmt);
        if (!b)
            return NULL;
        if (total >= ROUTER_BATCH_BYTES)
            break;
        total += framed_len(b);
        n++;
    }
    if (n < 2)
        return NULL;
    struct buf *run = buf_new(total, 0);
    if (!run)
        return NULL;
    size_t at = 0;
    for (struct fanout *g = lead; g != e; g = g->batch) {
        struct buf *b = g->enc[fmt];
        g->run_off[fmt] = at;
        at += put_frame(buf_data(run) + at, b);
    }
    run->len = at;
    lead->run[fmt] = run;
    lead->run_end[fmt] = e;
    return run;
}

/* Drops the frames of the room just walked. */
static void
fanout_drop_frames(struct fanout *lead)
{
    for (struct fanout *e = lead; e; e = e->batch) {
        drop_encodings(e);
        e->enc_room = NULL;
    }
    for (int k = 0; k < FRAME_FMTS; k++) {
        buf_unref(lead->run[k]);
        lead->run[k] = NULL;
        lead->run_end[k] = NULL;
    }
}

/*
 * Sends c, through room name, the events of lead's batch it has not had:
 * those in the run as one write when c has nothing queued, the others one
 * frame each. Returns the number of frames sent.
 */
static size_t
fanout_send(struct hub *hub, struct fanout *lead, const char *name, struct conn *c)
{
    struct fanout *e = lead;
    while (e && e->seq <= c->last_seq)
        e = e->batch;
    size_t n = 0;
    struct buf *run = fanout_run(lead, name, c->fmt);
    if (run && e && e != lead->run_end[c->fmt] && e->batch != lead->run_end[c->fmt] &&
        conn_can_write_now(c)) {
        struct fanout *end = lead->run_end[c->fmt];
        unsigned frames = 0;
        for (struct fanout *g = e; g != end; g = g->batch) {
            c->last_seq = g->seq;
            if (g->ack)
                ackcheck_sent(c, g->id, g->seq);
            frames++;
        }
        size_t from = e->run_off[c->fmt];
        size_t to = end ? end->run_off[c->fmt] : run->len;
        if (conn_send_framed(c, buf_data(run) + from, to - from, frames))
            return 0;
        for (struct fanout *g = e; g != end; g = g->batch)
            if (g->mark_sent)
                acks_add(hub->sent, g->id, c->tenant->name, c->who.sub);
        n = frames;
        e = end;
    }
    for (; e && c->state == CONN_READY && !c->replaying; e = e->batch) {
        struct buf *b = fanout_frame(e, name, c->fmt);
        if (!b)
            break;
        n += send_event(hub, c, b, e->id, e->ack, e->mark_sent);
    }
    return n;
}

/* The first of f's rooms that c is in, or NULL. */
static const char *
fanout_room_of(const struct fanout *f, const struct conn *c)
{
    size_t i;
    json_t *jr;
    json_array_foreach(f->rooms, i, jr)
    {
        const char *name = json_string_value(jr);
        for (const struct member *m = c->rooms; m && name; m = m->cnext)
            if (!strcmp(m->room->name, name))
                return name;
    }
    return NULL;
}

/* One frame owed to a connection catching up. */
struct owed {
    struct fanout *e;
    struct buf *b;
};

/*
 * Before c is sent something at once: the in-progress fan-outs it is a
 * recipient of and has not reached yet, oldest first — in one write when
 * nothing is queued for it (a guard owed a burst gets it in one send(),
 * then the alarm). Frames are encoded once and shared by every connection
 * catching up through the same room.
 */
static void
catch_up_fanouts(struct hub *hub, struct conn *c)
{
    struct owed *v = NULL;
    size_t n = 0, cap = 0, total = 0;
    for (struct fanout *f = hub->router->head; f; f = f->next) {
        if (f->t != c->tenant || c->last_seq >= f->last_seq)
            continue;
        const char *name = fanout_room_of(f, c);
        for (struct fanout *e = f; e && name; e = e->batch) {
            if (e->seq <= c->last_seq)
                continue;
            struct buf *b = fanout_frame(e, name, c->fmt);
            if (!b)
                goto out;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct owed *nv = realloc(v, ncap * sizeof(*nv));
                if (!nv)
                    goto out;
                v = nv;
                cap = ncap;
            }
            v[n++] = (struct owed){.e = e, .b = buf_ref(b)};
            total += framed_len(b);
        }
    }
    if (n > 1 && conn_can_write_now(c)) {
        unsigned char *run = malloc(total);
        if (run) {
            size_t at = 0;
            for (size_t i = 0; i < n; i++) {
                at += put_frame(run + at, v[i].b);
                c->last_seq = v[i].e->seq;
                if (v[i].e->ack)
                    ackcheck_sent(c, v[i].e->id, v[i].e->seq);
            }
            if (!conn_send_framed(c, run, at, (unsigned)n)) {
                hub->m.frames_queued += n;
                for (size_t i = 0; i < n; i++)
                    if (v[i].e->mark_sent)
                        acks_add(hub->sent, v[i].e->id, c->tenant->name, c->who.sub);
            }
            free(run);
            goto out;
        }
    }
    for (size_t i = 0; i < n && c->state == CONN_READY && !c->replaying; i++)
        hub->m.frames_queued +=
            send_event(hub, c, v[i].b, v[i].e->id, v[i].e->ack, v[i].e->mark_sent);
out:
    for (size_t i = 0; i < n; i++)
        buf_unref(v[i].b);
    free(v);
}

/*
 * One live event has been handed to every recipient's socket (written, or
 * queued behind earlier frames of a connection that is not draining): the
 * time since its commit, on the wall clocks of the database and the hub,
 * goes to armonia_delivery_latency_seconds.
 */
static void
observe_delivery(struct hub *hub, int64_t committed_us)
{
    if (committed_us > 0)
        hist_observe(&hub->m.delivery_latency, hub_wall_us() - committed_us);
}

/* Frees a fan-out and its batch; returns how many events that was.
 * done: every recipient was visited (not a shutdown). */
static size_t
fanout_free(struct hub *hub, struct fanout *f, int done)
{
    size_t n = 0;
    fanout_drop_frames(f);
    while (f) {
        if (done)
            observe_delivery(hub, f->committed_us);
        struct fanout *next = f->batch;
        json_decref(f->rooms);
        json_decref(f->map);
        free(f->data);
        free(f);
        f = next;
        n++;
    }
    return n;
}

/* Takes into f's batch the queued events right behind it that go to the same rooms. */
static void
fanout_form_batch(struct hub *hub, struct fanout *f)
{
    struct fanout *tail = f;
    size_t n = 1;
    while (n < ROUTER_BATCH && f->next && f->next->t == f->t &&
           json_equal(f->next->rooms, f->rooms)) {
        struct fanout *g = f->next;
        f->next = g->next;
        if (hub->router->tail == g)
            hub->router->tail = f;
        g->next = NULL;
        tail->batch = g;
        tail = g;
        n++;
    }
    f->last_seq = tail->seq;
    f->batched = 1;
}

static void on_fanout_turn(struct soon *s);

static void
fanout_schedule(struct hub *hub)
{
    soon_add(&hub->router->soon, on_fanout_turn);
}

/* One loop turn of the oldest fan-outs: up to ROUTER_SLICE connections. */
static void
on_fanout_turn(struct soon *s)
{
    struct router *r = lws_container_of(s, struct router, soon);
    struct hub *hub = r->hub;
    int was_busy = router_busy(r);
    size_t budget = ROUTER_SLICE, n = 0;
    while (hub->router->head && budget) {
        struct fanout *f = hub->router->head;
        if (!f->batched)
            fanout_form_batch(hub, f);
        const char *name = json_string_value(json_array_get(f->rooms, f->room_i));
        if (!f->walking) {
            struct room *room = name ? reg_room(f->t, name) : NULL;
            hub->router->walk = room ? room->members : NULL;
            f->walking = 1;
        }
        struct member *m;
        while (budget && (m = hub->router->walk)) {
            hub->router->walk = m->next;
            budget--;
            /* Members and connections are scattered on the heap: ask for
             * the ones two steps ahead while this one is written. */
            struct member *m2 = m->next ? m->next->next : NULL;
            if (m2) {
                __builtin_prefetch(m2->next);
                __builtin_prefetch(m2->conn);
                __builtin_prefetch((const char *)m2->conn + 64);
            }
            struct conn *c = m->conn;
            if (c->state != CONN_READY || c->replaying || c->last_seq >= f->last_seq)
                continue;
            n += fanout_send(hub, f, name, c);
        }
        if (hub->router->walk)
            break; /* budget spent inside this room */
        /* This room is done: on to the next one, or the next event. */
        fanout_drop_frames(f);
        f->walking = 0;
        if (++f->room_i >= json_array_size(f->rooms)) {
            hub->router->head = f->next;
            if (!hub->router->head)
                hub->router->tail = NULL;
            hub->router->jobs -= fanout_free(hub, f, 1);
        }
    }
    hub->m.frames_queued += n;
    if (hub->router->head)
        fanout_schedule(hub);
    if (was_busy && !router_busy(r) && r->unbusy)
        r->unbusy(hub);
}

struct router *
router_new(struct hub *hub, void (*unbusy)(struct hub *hub))
{
    struct router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->hub = hub;
    r->unbusy = unbusy;
    hub->reg.walk = &r->walk;
    return r;
}

int
router_busy(const struct router *r)
{
    return r->jobs >= ROUTER_MAX_JOBS;
}

size_t
router_jobs(const struct router *r)
{
    return r->jobs;
}

void
router_free(struct router *r)
{
    if (!r)
        return;
    soon_cancel(&r->soon);
    while (r->head) {
        struct fanout *f = r->head;
        r->head = f->next;
        (void)fanout_free(r->hub, f, 0);
    }
    if (r->hub->reg.walk == &r->walk)
        r->hub->reg.walk = NULL;
    free(r);
}

/* Makes ev a fan-out in progress, behind the others. */
static void
fanout_add(struct hub *hub, struct tenant *t, const struct event *ev, int mark_sent)
{
    struct fanout *f = calloc(1, sizeof(*f));
    char *data = f ? malloc(ev->data_len + 1) : NULL;
    json_t *map = data ? event_map(ev) : NULL;
    if (!map) {
        free(data);
        free(f);
        log_err("router", "out of memory queueing event %lld", (long long)ev->id);
        return;
    }
    *f = (struct fanout){.t = t,
                         .id = ev->id,
                         .seq = ev->seq,
                         .committed_us = ev->committed_us,
                         .last_seq = ev->seq,
                         .ack = ev->ack,
                         .mark_sent = mark_sent,
                         .rooms = json_incref(ev->rooms),
                         .map = map,
                         .data = memcpy(data, ev->data, ev->data_len),
                         .data_len = ev->data_len};
    data[ev->data_len] = '\0';
    if (hub->router->tail)
        hub->router->tail->next = f;
    else
        hub->router->head = f;
    hub->router->tail = f;
    if (hub->router->jobs++ == 0)
        fanout_schedule(hub);
}

size_t
router_deliver(struct hub *hub, const struct event *ev)
{
    if (ev->undeliverable) {
        hub->m.events_undeliverable++;
        return 0;
    }
    struct tenant *t = reg_tenant(&hub->reg, ev->tenant, 0);
    if (!t)
        return 0;
    if (ev->seq > t->last_seq)
        t->last_seq = ev->seq;
    if (!t->n_conns)
        return 0;
    /* Events without ack reach a user when sent; record it where fallback depends on it. */
    int mark_sent = !ev->ack && fallback_wants_sent_marks(hub->fallback, ev->kind);
    size_t i, recipients = 0;
    json_t *jr;
    json_array_foreach(ev->rooms, i, jr)
    {
        struct room *r = reg_room(t, json_string_value(jr));
        recipients += r ? r->n_members : 0;
    }
    if (!recipients)
        return 0;
    if (recipients > ROUTER_SLICE && strcmp(ev->priority, "critical")) {
        fanout_add(hub, t, ev, mark_sent);
        return 0;
    }
    json_t *map = NULL;
    size_t n = 0;
    json_array_foreach(ev->rooms, i, jr)
    {
        struct room *r = reg_room(t, json_string_value(jr));
        if (!r)
            continue;
        struct buf *enc[FRAME_FMTS] = {NULL};
        struct member *m;
        DL_FOREACH(r->members, m)
        {
            struct conn *c = m->conn;
            if (c->state != CONN_READY || c->replaying || c->last_seq >= ev->seq)
                continue;
            if (hub->router->head) {
                catch_up_fanouts(hub, c);
                if (c->state != CONN_READY || c->replaying)
                    continue; /* closed or fell behind while catching up */
            }
            if (!enc[c->fmt]) {
                if (!map && !(map = event_map(ev)))
                    goto oom;
                json_object_set_new(map, "room", json_string(r->name));
                if (!(enc[c->fmt] = frame_encode_event(c->fmt, map, ev->data, ev->data_len)))
                    goto oom;
                enc[c->fmt]->seq = ev->seq;
            }
            n += send_event(hub, c, enc[c->fmt], ev->id, ev->ack, mark_sent);
        }
        for (int k = 0; k < FRAME_FMTS; k++)
            buf_unref(enc[k]);
        continue;
    oom:
        for (int k = 0; k < FRAME_FMTS; k++)
            buf_unref(enc[k]);
        log_err("router", "out of memory encoding event %lld", (long long)ev->id);
        break;
    }
    json_decref(map);
    hub->m.frames_queued += n;
    if (n)
        observe_delivery(hub, ev->committed_us);
    return n;
}

int
router_deliver_one(struct conn *c, const struct event *ev)
{
    if (c->last_seq >= ev->seq || ev->undeliverable)
        return 0;
    size_t i;
    json_t *jr;
    json_array_foreach(ev->rooms, i, jr)
    {
        const char *name = json_string_value(jr);
        for (struct member *m = c->rooms; m; m = m->cnext) {
            if (!name || strcmp(m->room->name, name))
                continue;
            json_t *map = event_map(ev);
            if (!map)
                return 0;
            json_object_set_new(map, "room", json_string(name));
            struct buf *b = frame_encode_event(c->fmt, map, ev->data, ev->data_len);
            json_decref(map);
            if (!b)
                return 0;
            b->seq = ev->seq;
            c->last_seq = ev->seq;
            if (ev->ack)
                ackcheck_sent(c, ev->id, ev->seq);
            int rc = conn_send(c, b, 0);
            buf_unref(b);
            if (rc == 0 && !ev->ack && fallback_wants_sent_marks(c->hub->fallback, ev->kind))
                acks_add(c->hub->sent, ev->id, c->tenant->name, c->who.sub);
            return rc == 0;
        }
    }
    return 0;
}
