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

/* The work connection is (again) up: tenant checks that were waiting go. */
void session_db_up(struct hub *hub);

/* Stops the authentication-deadline timer (shutdown). */
void session_stop(struct hub *hub);

/* The database answered (or failed to answer) whether tenant t exists. */
struct tenant;
void session_tenant_checked(struct tenant *t);

#endif
