/*
 * acks.h - marks on their way to hub.deliveries, written in batches: acks
 * (channel 'ws', status 'acked', through hub.record_acks(), which also
 * announces the claim of a panic) and "sent" marks (status 'sent', through
 * hub.record_sent(), for events without ack whose policy has fallback).
 *
 * A mark never costs a database round trip on the loop by itself: it is
 * appended in memory and a timer writes all pending ones in one statement.
 * Entries stay until the write succeeds, so a database outage delays them
 * without losing them (up to ACKS_MAX_PENDING).
 */
#ifndef HUB_ACKS_H
#define HUB_ACKS_H

#include <stddef.h>
#include <stdint.h>

struct hub;
struct acks;

/* How often pending marks are written. */
#define ACKS_FLUSH_MS 100
/* Most acks written by one statement. */
#define ACKS_MAX_BATCH 1000
/* Most acks kept while the database is away; older ones are dropped then. */
#define ACKS_MAX_PENDING 100000

/*
 * A batch writer; fn is the SQL function taking (bigint[], text[], text[])
 * of event ids, tenants and users ("hub.record_acks" or "hub.record_sent"),
 * and for marks added with acks_add_role() a fourth text[] of roles.
 */
struct acks *acks_new(struct hub *hub, const char *fn);

/* Records that user of tenant acked (or was sent) event_id. Returns 0 or -1 on OOM. */
int acks_add(struct acks *q, int64_t event_id, const char *tenant, const char *user);

/*
 * acks_add() for an ack that names the acker's role ("resident", "guard",
 * "admin": a static string, kept, not copied). A batch holding such marks
 * calls the SQL function with a fourth argument, text[] of roles, so
 * hub.record_acks() lets only a guard's or admin's ack claim a panic.
 */
int acks_add_role(struct acks *q, int64_t event_id, const char *tenant, const char *user,
                  const char *role);

/* Starts the flush timer. */
void acks_start(struct acks *q);

/* Number of marks not yet written. */
size_t acks_pending(const struct acks *q);

/* Writes what is pending now (shutdown); returns 1 while a write is in flight. */
int acks_flush(struct acks *q);

/* Frees everything; call while the lws context exists. NULL is ignored. */
void acks_free(struct acks *q);

#endif
