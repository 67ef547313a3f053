/*
 * ws.h - the lws protocols of the hub's port: armonia.v1.json (also the
 * default when a client offers no subprotocol, and the HTTP handler) and
 * armonia.v1.msgpack.
 */
#ifndef HUB_WS_H
#define HUB_WS_H

#include <libwebsockets.h>

/* Bytes lws reads per connection at a time (it keeps one such buffer per
 * connection): client frames are small (ack, subscribe), so a small buffer
 * saves memory on idle connections; larger messages (auth, with its token)
 * are assembled. lws needs a control frame's payload (125 bytes at most,
 * RFC 6455 §5.5) to fit whole. */
#define WS_RX_CHUNK 128

/* Bytes lws hands to one send() at most (it keeps the rest for later). */
#define WS_TX_MAX (256 * 1024)

/* The WebSocket path; upgrades elsewhere are refused. */
#define WS_PATH "/ws"

/* Fills protos[0..1] with the two WebSocket protocols. */
void ws_protocols(struct lws_protocols protos[2]);

#endif
