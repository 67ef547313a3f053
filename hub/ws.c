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
#include "listener.h"
#include "web.h"
#include "log.h"
#include "peer.h"
#include "session.h"
#include "sio.h"
#include "soon.h"
#include "tls.h"
#include "wsrx.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <utlist.h>

/* The one version of the WebSocket protocol the hub speaks (RFC 6455 §4.4). */
#define WS_VERSION "13"

/* A complete message, to the protocol of its connection. */
static void
deliver(struct conn *c, const void *data, size_t len)
{
    if (c->fmt == FRAME_SIO)
        sio_message(c, data, len, lws_frame_is_binary(c->wsi));
    else
        session_message(c, data, len);
}

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
        deliver(c, in, len); /* the usual case: one frame, no copy */
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
        deliver(c, c->rx, c->rx_len);
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

/* Longest Origin compared; a longer one matches no allowed origin. */
#define WS_ORIGIN_MAX 256
/* Retry-After of an upgrade refused for HUB_MAX_CONNS_PER_IP: a place frees
 * only when one of the address's connections ends, which may take a while. */
#define WS_CONNS_RETRY_S 30

/*
 * Refuses an upgrade with an HTTP status (status line text, extra header
 * lines each ending in CRLF, JSON body), written at once since lws is in
 * the middle of the handshake: on the socket, or over TLS through the
 * connection's SSL (a handful of bytes on a socket nothing else has
 * written to since the handshake). The caller closes the connection.
 */
static void
refuse_http(struct lws *wsi, const char *status, const char *headers, const char *body)
{
    char resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, headers, strlen(body), body);
    if (n <= 0 || (size_t)n >= sizeof(resp))
        return;
    if (lws_is_ssl(wsi))
        (void)SSL_write(lws_get_ssl(wsi), resp, n);
    else
        (void)send((int)lws_get_socket_fd(wsi), resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Who asked for an upgrade, as session.c logs it: the socket's peer and,
 * behind a trusted proxy, the client it forwarded ("" when none). */
struct ws_client {
    char peer[PEER_ADDR_LEN + 8];
    char fwd[PEER_ADDR_LEN];
};

/*
 * Fills cl for wsi and returns the address the per-address caps count: the
 * forwarded client behind a trusted proxy (X-Forwarded-For, by peer.c's
 * rule; X-Real-IP is not read), else the peer. Returns NULL when nothing is
 * counted: the address is in HUB_EXEMPT_ADDRESSES or is a trusted proxy
 * (one that forwards no client included), or the peer is unknown.
 */
static const char *
client_of(struct lws *wsi, const struct hub_config *cfg, struct ws_client *cl)
{
    char xff[PEER_FWD_HDR_MAX];
    const char *counted = cl->peer;

    cl->fwd[0] = '\0';
    if (!lws_get_peer_simple(wsi, cl->peer, sizeof(cl->peer)) || !cl->peer[0]) {
        snprintf(cl->peer, sizeof(cl->peer), "unknown");
        return NULL;
    }
    if (cfg->n_proxies && peer_in_nets(cl->peer, cfg->proxies, cfg->n_proxies)) {
        if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) < 0 ||
            peer_forwarded(xff, cfg->proxies, cfg->n_proxies, cl->fwd) < 0) {
            cl->fwd[0] = '\0';
            return NULL;
        }
        counted = cl->fwd;
    }
    if (peer_in_nets(counted, cfg->exempt, cfg->n_exempt) ||
        peer_in_nets(counted, cfg->proxies, cfg->n_proxies))
        return NULL;
    return counted;
}

/*
 * Whether wsi's Origin is one of HUB_ALLOWED_ORIGINS (compared without
 * regard to case). Browsers send Origin with every WebSocket upgrade, and
 * checking it keeps a page on another site from opening a connection with
 * the user's credentials (cross-site WebSocket hijacking). Native apps and
 * other non-browser clients send none and are let in: they are not that
 * attack's victims, and a client that forges Origin can forge anything.
 * origin gets the header for the log, unprintable bytes replaced.
 */
static bool
origin_allowed(struct lws *wsi, const struct hub_config *cfg, char origin[WS_ORIGIN_MAX])
{
    origin[0] = '\0';
    if (!cfg->n_origins || lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
        return true;
    if (lws_hdr_copy(wsi, origin, WS_ORIGIN_MAX, WSI_TOKEN_ORIGIN) < 0) {
        snprintf(origin, WS_ORIGIN_MAX, "(longer than %d bytes)", WS_ORIGIN_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < cfg->n_origins; i++)
        if (!strcasecmp(origin, cfg->origins[i]))
            return true;
    for (char *p = origin; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return false;
}

/* Logs a refused upgrade as "upgrade refused with STATUS from PEER
 * [(forwarded ADDR)]: why", the address as authentication failures give it. */
static void
log_refusal(const struct ws_client *cl, int status, const char *why)
{
    log_info("ws", "upgrade refused with %d from %s%s%s%s: %s", status, cl->peer,
             cl->fwd[0] ? " (forwarded " : "", cl->fwd, cl->fwd[0] ? ")" : "", why);
}

/*
 * The checks an upgrade passes before lws answers it: Origin, then the
 * per-address caps (hub->peers). A refusal is answered (403 or 429),
 * counted in /metrics and logged; returns 1 then, 0 to go on.
 */
static int
admit_upgrade(struct lws *wsi, struct hub *hub)
{
    const struct hub_config *cfg = hub->cfg;
    struct ws_client cl;
    char origin[WS_ORIGIN_MAX], why[128], hdr[32];
    int retry_s = 1;
    bool log = false;

    if (!origin_allowed(wsi, cfg, origin)) {
        hub->m.refused_origin++;
        (void)client_of(wsi, cfg, &cl);
        snprintf(why, sizeof(why), "Origin '%.64s' not in HUB_ALLOWED_ORIGINS", origin);
        log_refusal(&cl, 403, why);
        refuse_http(wsi, "403 Forbidden", "",
                    "{\"error\":\"origin not allowed\",\"reason\":\"origin\"}");
        return 1;
    }
    const char *addr = hub->peers ? client_of(wsi, cfg, &cl) : NULL;
    if (!addr)
        return 0;
    enum peer_verdict v = peer_admit(hub->peers, addr, hub_now_ms(), &retry_s, &log);
    if (v == PEER_TABLE_FULL)
        hub->m.ip_table_full++;
    if (v == PEER_ADMIT || v == PEER_TABLE_FULL)
        return 0;
    bool conns = v == PEER_TOO_MANY;
    if (conns) {
        hub->m.refused_conns_per_ip++;
        retry_s = WS_CONNS_RETRY_S;
        snprintf(why, sizeof(why), "HUB_MAX_CONNS_PER_IP (%d) reached", cfg->max_conns_per_ip);
    } else {
        hub->m.refused_handshakes++;
        snprintf(why, sizeof(why), "HUB_MAX_HANDSHAKES_PER_IP_S (%d) exceeded",
                 cfg->handshakes_per_ip_s);
    }
    if (log)
        log_refusal(&cl, 429, why);
    snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", retry_s);
    refuse_http(wsi, "429 Too Many Requests", hdr,
                conns ? "{\"error\":\"too many connections from this address\","
                        "\"reason\":\"conns_per_ip\"}"
                      : "{\"error\":\"too many handshakes from this address\","
                        "\"reason\":\"handshake_rate\"}");
    return 1;
}

/*
 * Counts an established connection against its address's cap. With the
 * handshake cap on, a full table was counted already when the upgrade was
 * admitted (the same address finds the same room), so only counted here
 * when that cap is off.
 */
static void
hold_slot(struct conn *c)
{
    struct hub *hub = c->hub;
    struct ws_client cl;
    bool full = false;

    if (!hub->peers)
        return;
    const char *addr = client_of(c->wsi, hub->cfg, &cl);
    if (!addr)
        return;
    c->slot = peer_hold(hub->peers, addr, hub_now_ms(), &full);
    if (full && !hub->cfg->handshakes_per_ip_s)
        hub->m.ip_table_full++;
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
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* The vhost's server context, made from HUB_TLS_*: user is the
         * SSL_CTX (lws's), kept for reloads. Non-zero fails the start. */
        hub->tls = user;
        return tls_setup(user) ? 1 : 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
            (strcmp(uri, WS_PATH) && !sio_is_path(uri)) || listener_is_internal(hub, wsi))
            return 1; /* refuse the upgrade (the internal port serves no WebSocket) */
        char body[320];
        if (sio_is_path(uri) && sio_refusal(wsi, 1, body, sizeof(body))) {
            log_info("ws", "Socket.IO upgrade refused with 400: %s", body);
            refuse_http(wsi, "400 Bad Request", "", body);
            return 1;
        }
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_VERSION) < 0)
            uri[0] = '\0'; /* longer than any version: refused below */
        if (strcmp(uri, WS_VERSION)) {
            log_info("ws",
                     "upgrade refused with 426: Sec-WebSocket-Version '%.16s', not " WS_VERSION,
                     uri);
            /* RFC 6455 §4.4: name the version the hub speaks. */
            refuse_http(wsi, "426 Upgrade Required", "Sec-WebSocket-Version: " WS_VERSION "\r\n",
                        "{\"error\":\"only WebSocket version 13 (RFC 6455) is spoken\"}");
            return 1;
        }
        return admit_upgrade(wsi, hub);
    }

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        /* The follower rides on the wsi itself: lws names a connection's
         * end (WSI_DESTROY) only once its descriptor is closed. */
        struct wsrx *x = wsrx_watch(wsi, (int)lws_get_socket_fd(wsi));
        if (!x)
            return 1; /* out of memory */
        if (lws_is_ssl(wsi))
            wsrx_over_tls(x);
        lws_set_opaque_user_data(wsi, x);
        return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        /* Every wsi's end comes here, the database's and curl's included:
         * only a client's opaque pointer is a follower. */
        if (lws_get_protocol(wsi) && lws_get_protocol(wsi)->callback == on_ws_event) {
            /* A client that does not speak TLS (ws:// or http:// on the TLS
             * port) fails the handshake and is dropped by lws: one line. */
            if (lws_is_ssl(wsi) && !wsrx_heard(lws_get_opaque_user_data(wsi)))
                log_debug("ws", "a connection ended without a request over TLS (a client not "
                                "speaking TLS, a failed handshake, or nothing sent)");
            wsrx_forget(lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        c->wsi = wsi;
        c->hub = hub;
        c->fd = lws_is_ssl(wsi) ? -1 : (int)lws_get_socket_fd(wsi);
        c->fmt = (enum frame_fmt)lws_get_protocol(wsi)->id;
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) >= 0 && sio_is_path(uri))
            c->fmt = FRAME_SIO; /* the filter let it in: EIO=4 over WebSocket */
        hub->n_conns++;
        hub->m.connections_total++;
        DL_APPEND(hub->conns, c);
        hold_slot(c);
        session_open(c);
        if (c->fmt == FRAME_SIO && c->state != CONN_CLOSING)
            sio_open(c);
        if (wsrx_established(lws_get_opaque_user_data(wsi), c)) {
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
        if (c && c->hub) {
            c->peer_closed = 1;           /* lws answers the close; write nothing more */
            if (c->state != CONN_CLOSING) /* the client's code, for /metrics */
                c->close_code = len >= 2 ? (uint16_t)(((const unsigned char *)in)[0] << 8 |
                                                      ((const unsigned char *)in)[1])
                                         : 1005;
        }
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
        /* The hub closed it (conn_close() set CLOSING and a code), or the
         * client did, with its code or with none (the socket failed or
         * ended without a close frame: code 0). */
        hub->m.closes[!(c->state == CONN_CLOSING && c->close_code)]
                     [metric_close_slot(c->close_code)]++;
        peer_release(hub->peers, c->slot, hub_now_ms());
        c->slot = NULL;
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
