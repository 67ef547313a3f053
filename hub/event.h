/*
 * event.h - one event as read from hub.outbox, shared by the live reader
 * (outbox.c, through the router) and the resume (replay.c).
 */
#ifndef HUB_EVENT_H
#define HUB_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

/* The outbox columns event_from_row() reads, in its order. */
#define EVENT_COLUMNS                                                                              \
    "id, seq, tenant, kind, array_to_json(rooms)::text, data::text, priority, ack, "               \
    "(extract(epoch FROM created_at) * 1000)::int8, "                                              \
    "(extract(epoch FROM committed_at) * 1000000)::int8"

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
    int64_t committed_us; /* commit time, microseconds since the epoch (0: unknown) */
    /* Why the row cannot be delivered (static text), or NULL. Only rows
     * written around hub.emit() can have it; the router counts them. */
    const char *undeliverable;
};

/*
 * Reads row i of a result selected with EVENT_COLUMNS into ev (strings
 * point into res; rooms is a new reference released with event_clear()).
 * Returns 0. A row whose rooms are not room names or whose data is not a
 * JSON object gets ev->undeliverable, logged here at error with its id;
 * the router then sends it to nobody and counts it (armonia_events_undeliverable_total).
 */
int event_from_row(const PGresult *res, int i, struct event *ev);

/* Releases what event_from_row() took. */
void event_clear(struct event *ev);

/*
 * The event map shared by every room, without "data", which
 * frame_encode_event() appends from the row's text; "room" is set per room.
 * A new reference, or NULL when memory ran out.
 */
json_t *event_map(const struct event *ev);

#endif
