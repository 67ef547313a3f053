/*
 * router.h - from one outbox row to the connections that must see it.
 */
#ifndef HUB_ROUTER_H
#define HUB_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include "event.h"

struct hub;
struct conn;
struct router;

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

/*
 * The router of hub (struct hub's router); unbusy, when not NULL, is
 * called when router_busy() stops being true (the outbox reader reads on).
 * NULL when out of memory.
 */
struct router *router_new(struct hub *hub, void (*unbusy)(struct hub *hub));

/* Whether the outbox reader should wait for fan-outs in progress. */
int router_busy(const struct router *r);

/* Events in fan-outs in progress. */
size_t router_jobs(const struct router *r);

/* Drops the fan-outs in progress and frees the router (shutdown). NULL is ignored. */
void router_free(struct router *r);

#endif
