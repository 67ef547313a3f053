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

/* The callbacks for the listening connection (ud is the hub). */
extern const struct db_ops outbox_db_ops;

/* NOTIFY channel hub.emit() signals. */
#define OUTBOX_CHANNEL "hub_outbox"

/* Reads on if a read was held back while the router was busy (router.h). */
void outbox_resume(struct hub *hub);

/* Cancels the quiet mode's timer (outbox.c); before the context goes. */
void outbox_stop(struct hub *hub);

#endif
