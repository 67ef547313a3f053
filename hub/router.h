/*
 * router.h - from one outbox row to the connections that must see it.
 */
#ifndef HUB_ROUTER_H
#define HUB_ROUTER_H

#include <stdint.h>
#include <jansson.h>

struct hub;

/* One event as read from hub.outbox. The strings are borrowed. */
struct event {
    int64_t id;
    int64_t seq;
    const char *tenant;
    const char *kind;
    json_t *rooms; /* array of strings (borrowed) */
    json_t *data;  /* object (borrowed) */
    const char *priority;
    int ack;
    int64_t ts_ms;
};

/*
 * Queues ev on every ready connection of its tenant that is in one of its
 * rooms and has not had it yet, in the connection's format. The frame is
 * encoded once per (room, format) and shared by all its recipients.
 * Returns the number of connections it was queued on.
 */
size_t router_deliver(struct hub *hub, const struct event *ev);

#endif
