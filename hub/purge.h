/*
 * purge.h - deletes outbox events past the retention window, in small
 * batches on the work connection, every HUB_PURGE_INTERVAL_MS.
 */
#ifndef HUB_PURGE_H
#define HUB_PURGE_H

struct hub;

/* Rows deleted per statement; the purge repeats while a batch comes back full. */
#define PURGE_BATCH 1000

/* Starts the periodic purge. */
void purge_start(struct hub *hub);

/* Stops it. */
void purge_stop(struct hub *hub);

#endif
