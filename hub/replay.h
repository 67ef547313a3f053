/*
 * replay.h - resume: the events a returning client missed, from the outbox.
 *
 * A connection that names `since` S gets, right after welcome, every
 * event with seq > S that its rooms would have received, read from
 * hub.outbox in pages, in seq order, then continues live. While it
 * replays, the live router skips it; replay keeps reading until it has
 * caught up with the live cursor, then hands over, so nothing is missed or
 * repeated even when events commit during the replay.
 */
#ifndef HUB_REPLAY_H
#define HUB_REPLAY_H

#include <stdint.h>

struct conn;
struct conn_feed;

/* Outbox rows read per replay query. */
#define REPLAY_PAGE 500
/* Most seq numbers one replay query looks through. */
#define REPLAY_WINDOW 20000
/*
 * Event data (bytes of its JSON text) one replay page carries, as a share
 * of HUB_MAX_QUEUE_BYTES: a page of big events holds max_queue_bytes /
 * REPLAY_BUDGET_SHARE of data, plus its first row whatever its size.
 */
#define REPLAY_BUDGET_SHARE 4
/*
 * A page hands its rows over while the connection's queue holds less than
 * max_queue_bytes / REPLAY_HANDOFF_SHARE (its first row always); the rest is
 * read again once the queue has drained.
 */
#define REPLAY_HANDOFF_SHARE 2

/*
 * Starts replaying c from c->since (c is READY and in its rooms, its welcome
 * just queued). A since beyond the tenant's newest seq gets error
 * resume_gap with newest_seq, and the connection continues after the
 * welcome's last_seq.
 */
void replay_start(struct conn *c);

/*
 * Continues c's replay: reads its next page unless one is in flight, the
 * connection is not replaying or not ready, the live cursor is not known
 * yet, or its queue is over a quarter of its bound (then it waits:
 * replay_waiting). A connection that fell behind a burst (conn.c marked it)
 * starts catching up here.
 */
void replay_resume(struct conn *c);

/* The connection is closing: forget its replay. */
void replay_stop(struct conn *c);

/* conn.c's upward calls (resume, stop), for struct hub's feed. */
extern const struct conn_feed replay_feed;

#endif
