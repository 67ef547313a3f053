/*
 * router.h - from one outbox row to the connections that must see it.
 */
#ifndef HUB_ROUTER_H
#define HUB_ROUTER_H

#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

struct hub;
struct conn;

/* The outbox columns event_from_row() reads, in its order. */
#define EVENT_COLUMNS                                                                              \
    "id, seq, tenant, kind, array_to_json(rooms)::text, data::text, priority, ack, "               \
    "(extract(epoch FROM created_at) * 1000)::int8"

/* One event as read from hub.outbox. The strings are borrowed. */
struct event {
    int64_t id;
    int64_t seq;
    const char *tenant;
    const char *kind;
    json_t *rooms; /* array of strings (borrowed) */
    /* The data object as PostgreSQL writes jsonb (borrowed): never parsed
     * into numbers, so every digit reaches the clients (frame_encode_event()). */
    const char *data;
    size_t data_len;
    const char *priority;
    int ack;
    int64_t ts_ms;
    /* Why the row cannot be delivered (static text), or NULL. Only rows
     * written around hub.emit() can have it; the router counts them. */
    const char *undeliverable;
};

/*
 * Reads row i of a result selected with EVENT_COLUMNS into ev (strings
 * point into res; rooms is a new reference released with event_clear()).
 * Returns 0. A row whose rooms are not room names or whose data is not a
 * JSON object gets ev->undeliverable, logged here at error with its id;
 * router_deliver() and router_deliver_one() then send it to nobody and
 * router_deliver() counts it (armonia_events_undeliverable_total).
 */
int event_from_row(const PGresult *res, int i, struct event *ev);

/* Releases what event_from_row() took. */
void event_clear(struct event *ev);

/*
 * Queues ev on one connection (replay), through the first of the event's
 * rooms the connection is in; nothing when it is in none or already had it.
 * Returns 1 when queued.
 */
int router_deliver_one(struct conn *c, const struct event *ev);

/*
 * Connections visited per loop turn by a fan-out in progress: a broadcast
 * to thousands is written in slices of this many, and between slices the
 * loop reads the database and the clients, so a later critical event does
 * not wait for the whole broadcast to be written.
 */
#define ROUTER_SLICE 128

/*
 * Queued fan-outs to the same rooms walked together, at most: a connection
 * with nothing else queued gets them in one write, until the run of frames
 * reaches ROUTER_BATCH_BYTES (the rest one frame each). Under a burst that turns one send()
 * per event and connection into one per batch, which is most of the cost.
 */
#define ROUTER_BATCH 32
#define ROUTER_BATCH_BYTES 65536

/* Fan-outs in progress past which the outbox is not read further (each
 * holds one event; reading resumes as they finish). */
#define ROUTER_MAX_JOBS 1000

/*
 * Sends ev to every ready, not replaying connection of its tenant that is
 * in one of its rooms and has not had it yet, in the connection's format.
 * The frame is encoded once per (room, format) and shared by all its
 * recipients.
 *
 * Critical events, and events with at most ROUTER_SLICE recipients, go out
 * at once; larger ones become a fan-out in progress, written ROUTER_SLICE
 * connections per loop turn, in seq order behind earlier ones. An event
 * sent at once first gives each recipient the in-progress events it has
 * not had yet, so every connection still sees increasing seq.
 * Returns the number of connections it was sent to at once.
 */
size_t router_deliver(struct hub *hub, const struct event *ev);

/* Whether the outbox reader should wait for fan-outs in progress. */
int router_busy(const struct hub *hub);

/* Drops the fan-outs in progress (shutdown). */
void router_free(struct hub *hub);

#endif
