/*
 * outbox.h - the reader of hub.outbox on the listening connection.
 *
 * On every (re)connection: LISTEN, then read every row after the cursor,
 * so nothing committed while the hub was away falls between. On every
 * notification: read the rows after the cursor again, a page at a time.
 */
#ifndef HUB_OUTBOX_H
#define HUB_OUTBOX_H

#include "db.h"

struct hub;
struct outbox;

/* The reader's state (struct hub's outbox); NULL when out of memory. */
struct outbox *outbox_new(struct hub *hub);

/* Cancels its timers and frees it, after db_free() of the listening
 * connection (whose callbacks it is) and before the context goes. */
void outbox_free(struct outbox *o);

/* The callbacks for the listening connection (ud is the hub). */
extern const struct db_ops outbox_db_ops;

/* NOTIFY channel hub.emit() signals. */
#define OUTBOX_CHANNEL "hub_outbox"

/* Reads on if a read was held back while the router was busy (router.h):
 * the router's unbusy callback, wired by main.c. */
void outbox_resume(struct hub *hub);

/* Whether the reader is in quiet mode (reading on a timer, not on notifications). */
int outbox_is_quiet(const struct outbox *o);

/* Cancels the quiet mode's timer (outbox.c); before the context goes. */
void outbox_stop(struct hub *hub);

#endif
