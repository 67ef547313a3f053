/*
 * session.h - what a WebSocket connection says and what the hub answers:
 * authentication (header or first frame, refresh, expiry), rooms, ping,
 * ack, and the errors of the contract.
 */
#ifndef HUB_SESSION_H
#define HUB_SESSION_H

#include <stddef.h>
#include "conn.h"

/* The upgrade completed: reads the Authorization header and ?since=, or
 * starts the first-frame deadline. */
void session_open(struct conn *c);

/* One complete inbound message (already bounded in size). */
void session_message(struct conn *c, const void *data, size_t len);

/*
 * One decoded client map (a frame of the native protocol, or what sio.c
 * made of a Socket.IO packet), already charged to the rate limit. Its
 * "ref" is echoed in the answer. While c closes only acks are taken.
 */
void session_handle(struct conn *c, json_t *msg);

/*
 * Charges n inbound frames that are not messages (pings, pongs, close
 * frames, all but the last fragment of a message: ws.c counts them) to the
 * connection's rate limit, which closes it with 4029 like too many
 * messages do. Returns 0, or -1 when the connection is closing.
 */
int session_charge_frames(struct conn *c, unsigned n);

/* The connection is gone: leaves rooms and waiting lists. */
void session_closed(struct conn *c);

/* Closes c (4001, "token expired") once its token's exp plus leeway is past
 * wall_s; returns 1 if it did. */
int session_check_expiry(struct conn *c, int64_t wall_s);

/* How often every connection is looked at for an expired token, a
 * session too old, or frames waiting unwritten too long. */
#define SESSION_SWEEP_MS 1000

struct sessions;

/*
 * What the once-a-second sweep also does with each connection, given by
 * main.c (sio.c's Engine.IO pings, sio_tick()): returns 1 when it closed
 * the connection. A module above this one is reached only through it.
 */
typedef int (*session_tick_fn)(struct conn *c, int64_t now);

/* The sessions' timers (authentication deadlines, the sweep, which calls
 * tick when not NULL); NULL on OOM. */
struct sessions *session_init(struct hub *hub, session_tick_fn tick);

/* Starts the once-a-second sweep. */
void session_start(struct sessions *ss);

/* Stops the timers (shutdown); before the context goes. NULL is ignored. */
void session_stop(struct sessions *ss);

/* session_stop(), then frees them. NULL is ignored. */
void session_free(struct sessions *ss);

/* The tenant check's verdict on a connection waiting for it (tenant.h). */
struct tenant;
void session_tenant_verdict(struct conn *c, struct tenant *t);

#endif
