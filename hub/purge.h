/*
 * purge.h - deletes outbox events past the retention window, in small
 * batches on the work connection, every HUB_PURGE_INTERVAL_MS.
 */
#ifndef HUB_PURGE_H
#define HUB_PURGE_H

struct hub;
struct purge;

/* Rows deleted per statement; the purge repeats while a batch comes back full. */
#define PURGE_BATCH 1000

/* The purge's timer (struct hub's purge); NULL when out of memory. */
struct purge *purge_new(struct hub *hub);

/* Starts the periodic purge. */
void purge_start(struct purge *p);

/* Stops it; NULL is ignored. */
void purge_stop(struct purge *p);

/* Stops and frees it; NULL is ignored. */
void purge_free(struct purge *p);

#endif
