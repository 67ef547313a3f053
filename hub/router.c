/*
 * router.c - fan-out of one event to its rooms' members.
 *
 * A connection can be in several of the event's rooms; conn->last_seq
 * (the newest seq queued on it) makes it receive the event once, through
 * the first of its rooms that the event names. Because events are routed
 * in seq order, the same check keeps every connection's stream increasing.
 */
#include "router.h"
#include "buf.h"
#include "acks.h"
#include "conn.h"
#include "fallback.h"
#include "hub.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

/* Builds the event map shared by every room; "room" is set per room. */
static json_t *
event_map(const struct event *ev)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s, s:b, s:I, s:s, s:O}", "type", "event", "id",
                     (json_int_t)ev->id, "seq", (json_int_t)ev->seq, "kind", ev->kind, "priority",
                     ev->priority, "ack", ev->ack, "ts", (json_int_t)ev->ts_ms, "room", "", "data",
                     ev->data);
}

static void
note_pending_ack(struct conn *c, int64_t id)
{
    if (c->n_pending_acks == CONN_MAX_PENDING_ACKS) {
        memmove(c->pending_acks, c->pending_acks + 1,
                (CONN_MAX_PENDING_ACKS - 1) * sizeof(c->pending_acks[0]));
        c->n_pending_acks--;
    }
    c->pending_acks[c->n_pending_acks++] = id;
}

size_t
router_deliver(struct hub *hub, const struct event *ev)
{
    struct tenant *t = reg_tenant(&hub->reg, ev->tenant, 0);
    if (!t)
        return 0;
    if (ev->seq > t->last_seq)
        t->last_seq = ev->seq;
    if (!t->n_conns)
        return 0;
    json_t *map = NULL;
    size_t n = 0;
    /* Events without ack reach a user when sent; record it where fallback depends on it. */
    int mark_sent = !ev->ack && fallback_wants_sent_marks(hub->fallback, ev->kind);
    size_t i;
    json_t *jr;
    json_array_foreach(ev->rooms, i, jr)
    {
        struct room *r = reg_room(t, json_string_value(jr));
        if (!r)
            continue;
        struct buf *enc[2] = {NULL, NULL};
        struct member *m;
        DL_FOREACH(r->members, m)
        {
            struct conn *c = m->conn;
            if (c->state != CONN_READY || c->replaying || c->last_seq >= ev->seq)
                continue;
            if (!enc[c->fmt]) {
                if (!map && !(map = event_map(ev)))
                    goto oom;
                json_object_set_new(map, "room", json_string(r->name));
                if (!(enc[c->fmt] = frame_encode(c->fmt, map)))
                    goto oom;
                enc[c->fmt]->seq = ev->seq;
            }
            c->last_seq = ev->seq;
            if (ev->ack)
                note_pending_ack(c, ev->id);
            if (conn_send(c, enc[c->fmt], 0) == 0) {
                n++;
                if (mark_sent)
                    acks_add(hub->sent, ev->id, t->name, c->who.sub);
            }
        }
        buf_unref(enc[0]);
        buf_unref(enc[1]);
        continue;
    oom:
        buf_unref(enc[0]);
        buf_unref(enc[1]);
        log_err("router", "out of memory encoding event %lld", (long long)ev->id);
        break;
    }
    json_decref(map);
    hub->m.frames_queued += n;
    return n;
}

int
event_from_row(const PGresult *res, int i, struct event *ev)
{
    *ev = (struct event){
        .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
        .seq = strtoll(PQgetvalue(res, i, 1), NULL, 10),
        .tenant = PQgetvalue(res, i, 2),
        .kind = PQgetvalue(res, i, 3),
        .rooms = json_loads(PQgetvalue(res, i, 4), 0, NULL),
        .data = json_loads(PQgetvalue(res, i, 5), 0, NULL),
        .priority = PQgetvalue(res, i, 6),
        .ack = PQgetvalue(res, i, 7)[0] == 't',
        .ts_ms = strtoll(PQgetvalue(res, i, 8), NULL, 10),
    };
    if (json_is_array(ev->rooms) && json_is_object(ev->data))
        return 0;
    log_err("router", "event %lld has malformed rooms or data; skipped", (long long)ev->id);
    return -1;
}

void
event_clear(struct event *ev)
{
    json_decref(ev->rooms);
    json_decref(ev->data);
    ev->rooms = ev->data = NULL;
}

int
router_deliver_one(struct conn *c, const struct event *ev)
{
    if (c->last_seq >= ev->seq)
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
            struct buf *b = frame_encode(c->fmt, map);
            json_decref(map);
            if (!b)
                return 0;
            b->seq = ev->seq;
            c->last_seq = ev->seq;
            if (ev->ack)
                note_pending_ack(c, ev->id);
            int rc = conn_send(c, b, 0);
            buf_unref(b);
            if (rc == 0 && !ev->ack && fallback_wants_sent_marks(c->hub->fallback, ev->kind))
                acks_add(c->hub->sent, ev->id, c->tenant->name, c->who.sub);
            return rc == 0;
        }
    }
    return 0;
}
