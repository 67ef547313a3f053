/*
 * ackcheck.h - acks from clients, checked before they count: against the
 * events each connection was sent with ack:true (kept per connection, in
 * struct conn_acks), else against hub.outbox in batched look-ups.
 *
 * An accepted ack goes to the hub's ack writer (acks.h) with the acker's
 * role: only a guard's or admin's claims a panic (hub.record_acks).
 */
#ifndef HUB_ACKCHECK_H
#define HUB_ACKCHECK_H

#include <stdint.h>
#include <jansson.h>

struct hub;
struct conn;
struct ackcheck;

/* Ids one look-up query checks at most. Acks that arrive while a query is
 * in flight wait and go together in the next one, so a flood of acks costs
 * the work connection one query at a time, whatever its rate, and a resume
 * (db_query_urgent) waits behind one query at most. */
#define ACK_LOOKUP_BATCH 100

/* The hub's look-up queue; NULL when out of memory. */
struct ackcheck *ackcheck_new(struct hub *hub);

/* Frees the queue; after db_free() of the work connection has answered
 * the query in flight (with NULL). NULL is ignored. */
void ackcheck_free(struct ackcheck *q);

/*
 * c was sent event id (at seq) with ack:true: its ack is taken without a look-up.
 * The newest CONN_MAX_PENDING_ACKS are remembered; out of memory, the ack
 * is looked up instead.
 */
void ackcheck_sent(struct conn *c, int64_t id, int64_t seq);

/*
 * The id of the event of this seq that c was sent with ack:true and has not
 * acked, or 0 when there is none among those remembered. Lets a Socket.IO
 * client ack by seq (sio.c).
 */
int64_t ackcheck_pending_id(const struct conn *c, int64_t seq);

/*
 * c acked event id (a positive integer; ref echoed in errors, may be NULL).
 * Accepted at once when c was sent it; otherwise looked up (within
 * HUB_ACK_LOOKUP_RATE, CONN_MAX_ACK_LOOKUPS and HUB_ACK_LOOKUPS_MAX, or
 * refused with rate_limited) and answered with an error frame when it is
 * unknown, another tenant's, or was not for c's rooms.
 */
void ackcheck_ack(struct conn *c, int64_t id, const json_t *ref);

/* c is closing: its waiting look-ups are dropped, those in the query in
 * flight are left to its answer (which frees them). */
void ackcheck_closed(struct conn *c);

#endif
