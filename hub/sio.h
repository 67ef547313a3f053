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
#include <jansson.h>
#include <libwebsockets.h>
#include "buf.h"

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

/* One inbound Engine.IO packet taken apart by sio_parse(); the pointers
 * point into the message. */
struct sio_packet {
    char eio;         /* Engine.IO type: '1' close, '2' ping, '3' pong, '4' message,
                       * '5' upgrade, '6' noop */
    char type;        /* for a message: the Socket.IO type, '0' CONNECT to '6' */
    const char *nsp;  /* the namespace ("/" when the packet names none), not terminated */
    size_t nsp_len;   /* its length: 1 for "/", at most 63 */
    int64_t id;       /* the ack id, or -1 when there is none */
    const char *data; /* what follows: the JSON payload (or a ping's), maybe empty */
    size_t len;
};

/*
 * Takes one WebSocket text message of a Socket.IO connection apart: the
 * Engine.IO type and, for a message, the Socket.IO type, namespace and ack
 * id. Reads only p[0..n), allocates nothing, checks no JSON (the payload is
 * frame_decode()'s). Returns 0, or -1 with *why set to a static reason.
 */
int sio_parse(const char *p, size_t n, struct sio_packet *pk, const char **why);

/*
 * The once-a-second look at a Socket.IO connection at now (hub_now_ms()):
 * sends the Engine.IO ping every HUB_SIO_PING_INTERVAL_MS and closes the
 * connection (4008, "ping timeout") when its pong has not come within
 * HUB_SIO_PING_TIMEOUT_MS. Returns 1 when it closed c.
 */
int sio_tick(struct conn *c, int64_t now);

/*
 * Encoders behind frame_encode() and frame_encode_event() for FRAME_SIO.
 * sio_encode() maps a reply (welcome, error, subscribed, ...) to its
 * Socket.IO packet; sio_encode_event() an event map and its data to an
 * EVENT named after its kind, carrying the native event map and its seq
 * as the offset, with an ack id (the event's id) when it asks for an ack.
 * Return a new buffer, or NULL on OOM.
 */
struct buf *sio_encode(const json_t *msg);
struct buf *sio_encode_event(const json_t *msg, const char *data, size_t len);

#endif
