/*
 * acks.h - acks on their way to hub.deliveries, written in batches.
 *
 * An ack never costs a database round trip on the loop by itself: it is
 * appended in memory and a timer writes all pending ones in one statement
 * (channel 'ws', status 'acked'). Entries stay until the write succeeds, so
 * a database outage delays them without losing them (up to ACKS_MAX_PENDING).
 */
#ifndef HUB_ACKS_H
#define HUB_ACKS_H

#include <stddef.h>
#include <stdint.h>

struct hub;

/* How often pending acks are written. */
#define ACKS_FLUSH_MS 100
/* Most acks written by one statement. */
#define ACKS_MAX_BATCH 1000
/* Most acks kept while the database is away; older ones are dropped then. */
#define ACKS_MAX_PENDING 100000

/* Records that user of tenant acked event_id. Returns 0 or -1 on OOM. */
int acks_add(struct hub *hub, int64_t event_id, const char *tenant, const char *user);

/* Starts the flush timer. */
void acks_start(struct hub *hub);

/* Number of acks not yet written. */
size_t acks_pending(const struct hub *hub);

/* Writes what is pending now (shutdown); returns 1 while a write is in flight. */
int acks_flush(struct hub *hub);

/* Frees everything (after the loop has stopped). */
void acks_free(struct hub *hub);

#endif
