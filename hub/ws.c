/*
 * ws.c - libwebsockets callbacks for the WebSocket and HTTP side.
 *
 * This file only translates lws events: message assembly (bounded by
 * HUB_MAX_FRAME_BYTES), writable callbacks (one frame each), and the
 * connection's end. What messages mean is session.c's business.
 */
#include "ws.h"
#include "conn.h"
#include "hub.h"
#include "web.h"
#include "log.h"
#include "session.h"
#include "soon.h"
#include "wsrx.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <utlist.h>

/* The one version of the WebSocket protocol the hub speaks (RFC 6455 §4.4). */
#define WS_VERSION "13"

/* Appends one fragment; hands over the message once it is complete. */
static int
on_receive(struct conn *c, const void *in, size_t len)
{
    struct hub *hub = c->hub;
    if (c->state == CONN_CLOSING)
        return 0;
    if (wsrx_unmasked(
            lws_get_opaque_user_data(c->wsi))) { /* RFC 6455 §5.1: not read, the connection fails */
        c->hub->m.bad_frames++;
        conn_close(c, 1002, "client frames must be masked");
        return 0;
    }
    int first = lws_is_first_fragment(c->wsi);
    int final = lws_is_final_fragment(c->wsi) && !lws_remaining_packet_payload(c->wsi);
    if (first && c->rx_len == 0 && final) {
        session_message(c, in, len); /* the usual case: one frame, no copy */
        return 0;
    }
    if (c->rx_len + len > hub->cfg->max_frame_bytes) {
        free(c->rx);
        c->rx = NULL;
        c->rx_len = 0;
        conn_error(c, "too_large", "message larger than HUB_MAX_FRAME_BYTES", NULL);
        conn_close_lingering(c, 1009, "message too large");
        return 0;
    }
    unsigned char *grown = realloc(c->rx, c->rx_len + len);
    if (!grown && c->rx_len + len)
        return -1;
    c->rx = grown;
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (final) {
        session_message(c, c->rx, c->rx_len);
        free(c->rx);
        c->rx = NULL;
        c->rx_len = 0;
    }
    return 0;
}

/* What wsrx.c saw (from inside lws's read): acted on at the next turn. */
static void
on_rx_news(struct soon *s)
{
    struct conn *c = lws_container_of(s, struct conn, rx_soon);
    struct wsrx_news news = wsrx_take(lws_get_opaque_user_data(c->wsi));
    if (c->state == CONN_CLOSING)
        return;
    if (news.unmasked) {
        c->hub->m.bad_frames++;
        conn_close(c, 1002, "client frames must be masked");
        return;
    }
    if (news.frames)
        session_charge_frames(c, news.frames);
}

static void
rx_news(void *arg)
{
    struct conn *c = arg;
    soon_add(&c->rx_soon, on_rx_news);
}

/*
 * An upgrade asking for another version than 13 (or none): 426 naming the
 * version the hub speaks (RFC 6455 §4.4), written on the socket directly
 * since lws is in the middle of the handshake. Over TLS the upgrade is only
 * refused. The caller closes the connection.
 */
static void
refuse_version(struct lws *wsi)
{
    static const char resp[] = "HTTP/1.1 426 Upgrade Required\r\n"
                               "Sec-WebSocket-Version: " WS_VERSION "\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 58\r\n"
                               "Connection: close\r\n\r\n"
                               "{\"error\":\"only WebSocket version 13 (RFC 6455) is spoken\"}";
    if (!lws_is_ssl(wsi))
        (void)send((int)lws_get_socket_fd(wsi), resp, sizeof(resp) - 1,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * A close frame from the client with a code RFC 6455 §7.4 does not allow
 * (or a one-byte payload): lws would echo it; the hub answers 1002 instead.
 * Returns 0 when the close is valid.
 */
static int
close_invalid(const unsigned char *p, size_t len)
{
    if (len == 0)
        return 0;
    if (len == 1)
        return 1;
    unsigned code = (unsigned)p[0] << 8 | p[1];
    return code < 1000 || code >= 5000 || code == 1004 || code == 1005 || code == 1006 ||
           (code >= 1015 && code < 3000);
}

static int
on_ws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct conn *c = user;
    struct hub *hub = lws_context_user(lws_get_context(wsi));
    char uri[64];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, WS_PATH))
            return 1; /* refuse the upgrade */
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_VERSION) < 0)
            uri[0] = '\0'; /* longer than any version: refused below */
        if (strcmp(uri, WS_VERSION)) {
            log_info("ws",
                     "upgrade refused with 426: Sec-WebSocket-Version '%.16s', not " WS_VERSION,
                     uri);
            refuse_version(wsi);
            return 1;
        }
        return 0;

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        /* The follower rides on the wsi itself: lws names a connection's
         * end (WSI_DESTROY) only once its descriptor is closed. */
        struct wsrx *x = wsrx_watch(wsi, (int)lws_get_socket_fd(wsi));
        if (!x)
            return 1; /* out of memory */
        lws_set_opaque_user_data(wsi, x);
        return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        /* Every wsi's end comes here, the database's and curl's included:
         * only a client's opaque pointer is a follower. */
        if (lws_get_protocol(wsi) && lws_get_protocol(wsi)->callback == on_ws_event) {
            wsrx_forget(lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        c->wsi = wsi;
        c->hub = hub;
        c->fd = lws_is_ssl(wsi) ? -1 : (int)lws_get_socket_fd(wsi);
        c->fmt = (enum frame_fmt)lws_get_protocol(wsi)->id;
        hub->n_conns++;
        hub->m.connections_total++;
        DL_APPEND(hub->conns, c);
        session_open(c);
        if (lws_is_ssl(wsi)) { /* lws reads through OpenSSL: nothing to follow */
            wsrx_forget(lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        } else if (wsrx_established(lws_get_opaque_user_data(wsi), c)) {
            hub->m.bad_frames++;
            conn_close(c, 1002, "data sent before the handshake completed");
        }
        if (hub->draining)
            conn_close(c, 1001, "server shutting down");
        return 0;

    case LWS_CALLBACK_RECEIVE:
        return on_receive(c, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_flush(c);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && c->hub)
            c->peer_closed = 1; /* lws answers the close; write nothing more */
        if (close_invalid(in, len)) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR,
                             (unsigned char *)"invalid close code", 18);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (!c || !c->hub)
            return 0; /* refused before it was established */
        hub->n_conns--;
        soon_cancel(&c->rx_soon);
        DL_DELETE(hub->conns, c);
        session_closed(c);
        return 0;

    case LWS_CALLBACK_HTTP:
        c->wsi = wsi;
        c->hub = hub;
        return web_request(c, (const char *)in);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return web_writable(c);

    case LWS_CALLBACK_CLOSED_HTTP:
        if (c) {
            free(c->rx);
            c->rx = NULL;
        }
        return 0;

    default:
        /* lws's own handling of what is left, e.g. ending the transaction
         * after a static file (so keep-alive connections go on). */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

void
ws_protocols(struct lws_protocols protos[2])
{
    memset(protos, 0, 2 * sizeof(*protos));
    wsrx_on_news(rx_news);
    protos[0].name = "armonia.v1.json";
    protos[0].callback = on_ws_event;
    protos[0].per_session_data_size = sizeof(struct conn);
    /* lws allocates this per connection; longer messages arrive in parts. */
    protos[0].rx_buffer_size = WS_RX_CHUNK;
    /* lws sends at most this much per send() (default: rx_buffer_size);
     * an event frame must go out whole. */
    protos[0].tx_packet_size = WS_TX_MAX;
    protos[0].id = FRAME_JSON;
    protos[1] = protos[0];
    protos[1].name = "armonia.v1.msgpack";
    protos[1].id = FRAME_MSGPACK;
}
