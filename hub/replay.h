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

/* Outbox rows read per replay query. */
#define REPLAY_PAGE 500
/* Most seq numbers one replay query looks through. */
#define REPLAY_WINDOW 20000

/* Starts replaying c from c->since (c is READY and in its rooms). */
void replay_start(struct conn *c);

/*
 * The connection fell behind a burst: its queued events were dropped and it
 * continues from the outbox after seq `after`, paced by its socket. Safe to
 * call while a replay page is being processed or is in flight.
 */
void replay_catch_up(struct conn *c, int64_t after);

/* The connection's queue drained: continue a replay that was waiting. */
void replay_resume(struct conn *c);

/* The connection is closing: forget its replay. */
void replay_stop(struct conn *c);

#endif
