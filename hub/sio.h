/*
 * sio.h - Socket.IO v5 over Engine.IO v4 on /socket.io/ (WebSocket
 * transport only), so apps built on socket.io-client 4.x talk to the hub
 * without a new client library.
 *
 * A Socket.IO connection is an ordinary struct conn in format FRAME_SIO:
 * sio.c turns its packets into the maps session.c handles for the native
 * protocol (CONNECT into auth, events into subscribe, unsubscribe, ack,
 * auth) and the maps the hub sends back into Socket.IO packets (welcome
 * into CONNECT, an unauthorized error into CONNECT_ERROR, answers to an
 * event with an ack id into ACK, events into EVENT). Rooms, tenants,
 * acks, limits, resume and fallback are the native protocol's, unchanged.
 * docs/protocol.md, "Socket.IO compatibility", is the contract.
 */
#ifndef HUB_SIO_H
#define HUB_SIO_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>

struct conn;

/* The Engine.IO path socket.io-client connects to by default. */
#define SIO_PATH "/socket.io/"

/* Whether uri (without its query) is the Socket.IO path (with or without
 * the trailing slash). */
int sio_is_path(const char *uri);

/*
 * Whether a request for the Socket.IO path may become a Socket.IO
 * connection: EIO=4 and transport=websocket in its query, and an upgrade
 * (upgrade: 1). Returns NULL when it may, else the JSON body of the 400
 * that refuses it, written into body (n bytes): it names what was wrong
 * (the Engine.IO version, or polling and how to turn it off).
 */
const char *sio_refusal(struct lws *wsi, int upgrade, char *body, size_t n);

/*
 * The connection c (format FRAME_SIO, just opened by session_open()) gets
 * the Engine.IO open packet; its ping clock starts.
 */
void sio_open(struct conn *c);

/* One complete inbound WebSocket message of a Socket.IO connection
 * (binary: it came as a binary frame, which Socket.IO attachments need and
 * the hub refuses). */
void sio_message(struct conn *c, const void *data, size_t len, int binary);

/*
 * The once-a-second look at a connection at now (hub_now_ms()), through
 * session.c's sweep (session_tick_fn); only a Socket.IO one has anything to do:
 * sends the Engine.IO ping every HUB_SIO_PING_INTERVAL_MS and closes the
 * connection (4008, "ping timeout") when its pong has not come within
 * HUB_SIO_PING_TIMEOUT_MS. Returns 1 when it closed c.
 */
int sio_tick(struct conn *c, int64_t now);

#endif
