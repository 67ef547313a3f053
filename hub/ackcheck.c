/*
 * ackcheck.c - what an ack from a client is checked against (ackcheck.h).
 *
 * An ack for an event its connection was sent with ack:true is taken at
 * once: ackcheck_sent() noted the id when the router sent it. Any other id
 * is looked up in hub.outbox, batched with the other connections'
 * look-ups, so that acks for unknown events, other tenants' events and
 * events to rooms the connection could not be in are refused and recorded
 * nowhere.
 */
#include "ackcheck.h"
#include "acks.h"
#include "conn.h"
#include "db.h"
#include "hub.h"
#include "log.h"
#include "room.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The hub's look-up queue (struct hub's ackcheck). */
struct ackcheck {
    struct hub *hub;
    struct ack_lookup *wait_head, *wait_tail; /* waiting for the next query, FIFO (owned) */
    struct ack_lookup *batch; /* checked by the query in flight (owned; NULL: none in flight) */
    size_t out;               /* waiting or in flight; at most cfg->ack_lookups_max */
};

struct ackcheck *
ackcheck_new(struct hub *hub)
{
    struct ackcheck *q = calloc(1, sizeof(*q));
    if (q)
        q->hub = hub;
    return q;
}

/* c's bookkeeping, allocated on first use; NULL when memory ran out. */
static struct conn_acks *
conn_acks_of(struct conn *c)
{
    if (!c->acks)
        c->acks = calloc(1, sizeof(*c->acks));
    return c->acks;
}

void
ackcheck_sent(struct conn *c, int64_t id, int64_t seq)
{
    struct conn_acks *a = conn_acks_of(c);
    if (!a)
        return; /* out of memory: its ack is checked in the database instead */
    if (a->n_pending == a->cap_pending && a->cap_pending < CONN_MAX_PENDING_ACKS) {
        unsigned cap = a->cap_pending ? a->cap_pending * 2 : 4;
        struct conn_pending *v = realloc(a->pending, cap * sizeof(*v));
        if (v) {
            a->pending = v;
            a->cap_pending = cap;
        }
    }
    if (!a->cap_pending)
        return; /* out of memory: as above */
    if (a->n_pending == a->cap_pending) {
        memmove(a->pending, a->pending + 1, (a->cap_pending - 1) * sizeof(a->pending[0]));
        a->n_pending--;
    }
    a->pending[a->n_pending++] = (struct conn_pending){.id = id, .seq = seq};
}

int64_t
ackcheck_pending_id(const struct conn *c, int64_t seq)
{
    for (unsigned i = 0; c->acks && i < c->acks->n_pending; i++)
        if (c->acks->pending[i].seq == seq)
            return c->acks->pending[i].id;
    return 0;
}

static void
ack_accept(struct conn *c, int64_t id)
{
    c->hub->m.acks++;
    if (acks_add_role(c->hub->acks, id, c->tenant->name, c->who.sub, auth_role_name(c->who.role)))
        log_err("ackcheck", "session %s: out of memory recording an ack", c->session);
    log_debug("ackcheck", "session %s: %s acked event %lld", c->session, c->who.sub, (long long)id);
}

/*
 * One ack waiting for the database to say whose event it names. Owned by
 * the queue list that holds it (waiting, or the batch in flight); its
 * connection only points at it.
 */
struct ack_lookup {
    struct ack_lookup *next;  /* in c->acks->lookups (while c is set) */
    struct ack_lookup *qnext; /* in the queue's wait list or its batch */
    struct conn *c;           /* NULL once c closed (a batch in flight frees it) */
    int64_t id;
    json_t *ref;           /* owned */
    unsigned in_batch : 1; /* in the query in flight, not waiting */
};

/* Takes l off its connection's list (the hub's lists are the caller's). */
static void
ack_lookup_detach(struct ack_lookup *l)
{
    struct conn *c = l->c;
    if (!c)
        return;
    for (struct ack_lookup **pp = &c->acks->lookups; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            c->acks->n_lookups--;
            break;
        }
    l->c = NULL;
}

static void
ack_lookup_free(struct ackcheck *q, struct ack_lookup *l)
{
    ack_lookup_detach(l);
    q->out--;
    json_decref(l->ref);
    free(l);
}

void
ackcheck_free(struct ackcheck *q)
{
    if (!q)
        return;
    while (q->wait_head) { /* none once every connection has closed */
        struct ack_lookup *l = q->wait_head;
        q->wait_head = l->qnext;
        ack_lookup_free(q, l);
    }
    free(q);
}

/*
 * The verdict on l from the batch's rows (columns: id, tenant, room; one
 * row per room of each event found, room NULL for an event without rooms;
 * ids holds column 0 parsed): unknown, another tenant's, not for c (c is in
 * none of its rooms and could not be by its automatic rooms and its role's
 * rules, room_may_subscribe()), or accepted.
 */
static void
ack_verdict(struct ack_lookup *l, const PGresult *res, const int64_t *ids)
{
    struct conn *c = l->c;
    int found = 0, other_tenant = 0, was_for = 0;
    for (int i = 0; res && i < PQntuples(res); i++) {
        if (ids[i] != l->id)
            continue;
        found = 1;
        if (strcmp(PQgetvalue(res, i, 1), c->tenant->name)) {
            other_tenant = 1;
            break;
        }
        if (PQgetisnull(res, i, 2))
            continue;
        const char *room = PQgetvalue(res, i, 2);
        if (reg_member_of(c->rooms, room) || room_may_subscribe(&c->who, room) == 0)
            was_for = 1;
    }
    if (!res)
        conn_error(c, "internal", "cannot check that event now; ack again later", l->ref);
    else if (!found)
        conn_error(c, "bad_request", "no event has that id", l->ref);
    else if (other_tenant)
        conn_error(c, "forbidden", "that event belongs to another tenant", l->ref);
    else if (!was_for) {
        log_info("ackcheck", "session %s: %s %s acked event %lld, which was not for it", c->session,
                 auth_role_name(c->who.role), c->who.sub, (long long)l->id);
        conn_error(c, "forbidden", "that event was not for this connection's rooms", l->ref);
    } else
        ack_accept(c, l->id);
}

static void ack_lookup_send(struct ackcheck *q);

/* The database answered the batch in flight (res NULL: the connection was lost). */
static void
on_ack_batch(struct db *db, const PGresult *res, void *ud)
{
    struct ackcheck *q = ud;
    struct ack_lookup *l = q->batch;
    q->batch = NULL;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_err("ackcheck", "ack look-up: %s", PQresultErrorMessage(res));
        res = NULL;
    }
    int n = res ? PQntuples(res) : 0;
    int64_t *ids = n ? malloc((size_t)n * sizeof(*ids)) : NULL;
    if (n && !ids) {
        log_err("ackcheck", "out of memory checking acks");
        res = NULL;
    }
    for (int i = 0; res && i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    while (l) {
        struct ack_lookup *next = l->qnext;
        struct conn *c = l->c;
        if (c && c->tenant && (c->state == CONN_READY || c->state == CONN_CLOSING))
            ack_verdict(l, res, ids);
        ack_lookup_free(q, l);
        l = next;
    }
    free(ids);
    ack_lookup_send(q);
}

/*
 * Sends the acks waiting (ACK_LOOKUP_BATCH at most) in one query, unless
 * one is in flight already: its answer sends the next.
 */
static void
ack_lookup_send(struct ackcheck *q)
{
    struct hub *hub = q->hub;
    if (q->batch || !q->wait_head)
        return;
    char list[ACK_LOOKUP_BATCH * 21 + 3], *p = list;
    struct ack_lookup *first = q->wait_head, *last = NULL;
    int k = 0;
    *p++ = '{';
    for (struct ack_lookup *l = first; l && k < ACK_LOOKUP_BATCH; l = l->qnext, k++) {
        p += sprintf(p, "%s%lld", k ? "," : "", (long long)l->id);
        l->in_batch = 1;
        last = l;
    }
    *p++ = '}';
    *p = '\0';
    q->wait_head = last->qnext;
    if (!q->wait_head)
        q->wait_tail = NULL;
    last->qnext = NULL;
    const char *params[1] = {list};
    if (db_query(hub->work_db,
                 "SELECT o.id, o.tenant, r.room FROM hub.outbox o "
                 "LEFT JOIN LATERAL unnest(o.rooms) AS r(room) ON true "
                 "WHERE o.id = ANY($1::bigint[])",
                 1, params, on_ack_batch, q)) {
        q->batch = first;
        hub->m.ack_lookup_queries++;
        return;
    }
    /* The database is down: every waiting ack is told so (and the batch
     * taken now first, since nothing is in flight to answer them). */
    last->qnext = q->wait_head;
    q->wait_head = q->wait_tail = NULL;
    for (struct ack_lookup *l = first; l; l = l->qnext)
        l->in_batch = 1; /* off the queue: a close meanwhile leaves them to this loop */
    for (struct ack_lookup *l = first, *next; l; l = next) {
        next = l->qnext;
        if (l->c)
            conn_error(l->c, "internal", "cannot check that event now; ack again later", l->ref);
        ack_lookup_free(q, l);
    }
}

/*
 * Whether c may start one more look-up now: under CONN_MAX_ACK_LOOKUPS of
 * its own, its HUB_ACK_LOOKUP_RATE bucket (CONN_ACK_LOOKUP_BURST deep) not
 * empty, and the hub under HUB_ACK_LOOKUPS_MAX in all. Otherwise the ack
 * gets rate_limited, saying which, and is recorded nowhere.
 */
static int
ack_lookup_allowed(struct ackcheck *q, struct conn *c, struct conn_acks *a, const json_t *ref)
{
    struct hub *hub = c->hub;
    int64_t now = hub_now_ms();
    if (!a->tokens_at_ms)
        a->tokens = CONN_ACK_LOOKUP_BURST;
    else
        a->tokens += (double)(now - a->tokens_at_ms) * hub->cfg->ack_lookup_rate / 1000.0;
    if (a->tokens > CONN_ACK_LOOKUP_BURST)
        a->tokens = CONN_ACK_LOOKUP_BURST;
    a->tokens_at_ms = now;
    const char *why = NULL;
    if (a->n_lookups >= CONN_MAX_ACK_LOOKUPS)
        why = "too many acks for events this connection was not sent";
    else if (a->tokens < 1)
        why = "acks for events this connection was not sent come too fast; ack again later";
    else if (q->out >= (size_t)hub->cfg->ack_lookups_max)
        why = "the hub is checking too many acks now; ack again later";
    if (why) {
        hub->m.ack_lookups_refused++;
        conn_error(c, "rate_limited", why, ref);
        return 0;
    }
    a->tokens -= 1;
    return 1;
}

void
ackcheck_ack(struct conn *c, int64_t id, const json_t *ref)
{
    struct ackcheck *q = c->hub->ackcheck;
    struct conn_acks *a = conn_acks_of(c);
    if (!a) {
        conn_close(c, 1011, "out of memory");
        return;
    }
    for (unsigned i = 0; i < a->n_pending; i++) {
        if (a->pending[i].id == id) {
            a->pending[i] = a->pending[--a->n_pending];
            ack_accept(c, id);
            return;
        }
    }
    if (!ack_lookup_allowed(q, c, a, ref))
        return;
    struct ack_lookup *l = calloc(1, sizeof(*l));
    if (!l) {
        conn_close(c, 1011, "out of memory");
        return;
    }
    l->c = c;
    l->id = id;
    l->ref = ref ? json_incref((json_t *)ref) : NULL;
    l->next = a->lookups;
    a->lookups = l;
    a->n_lookups++;
    if (q->wait_tail)
        q->wait_tail->qnext = l;
    else
        q->wait_head = l;
    q->wait_tail = l;
    q->out++;
    c->hub->m.ack_lookups++;
    ack_lookup_send(q);
}

void
ackcheck_closed(struct conn *c)
{
    struct ackcheck *q = c->hub->ackcheck;
    while (c->acks && c->acks->lookups) {
        struct ack_lookup *l = c->acks->lookups;
        if (l->in_batch) {
            ack_lookup_detach(l);
            continue;
        }
        struct ack_lookup *prev = NULL;
        for (struct ack_lookup *w = q->wait_head; w; prev = w, w = w->qnext)
            if (w == l) {
                if (prev)
                    prev->qnext = l->qnext;
                else
                    q->wait_head = l->qnext;
                if (q->wait_tail == l)
                    q->wait_tail = prev;
                break;
            }
        ack_lookup_free(q, l);
    }
}
