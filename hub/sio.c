/*
 * sio.c - Socket.IO connections (sio.h): the Engine.IO handshake and
 * pings, and a client's packets turned into the native protocol's maps for
 * session_handle(). The packets themselves are sioframe.c's.
 *
 * A CONNECT becomes an auth map; an event {type: name, ...its object}; an
 * ACK an ack of the event whose id it names. "ref" carries what Socket.IO
 * adds: the packet's ack id (an integer), so the answer session.c echoes it
 * in goes back as the ACK of that id, and on CONNECT the pid (a string) the
 * client recovers with, so the welcome names it again. No client-sent "ref"
 * is ever kept.
 *
 * Connection state recovery: the hub keeps nothing between connections.
 * Every event carries its seq as the offset (the last argument), which
 * socket.io-client sends back with the pid on reconnection; the offset is
 * then the native resume point (since), and the pid is echoed, so the
 * client's socket.recovered is true. A pid is "<session>-<seq>", the seq
 * being the welcome's last_seq: a client that got no event at all resumes
 * from there.
 */
#include "sio.h"
#include "sioframe.h"
#include "ackcheck.h"
#include "conn.h"
#include "frame.h"
#include "hub.h"
#include "log.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sio_is_path(const char *uri)
{
    return !strcmp(uri, SIO_PATH) || !strcmp(uri, "/socket.io");
}

const char *
sio_refusal(struct lws *wsi, int upgrade, char *body, size_t n)
{
    char eio[16], tr[32];
    const char *e = lws_get_urlarg_by_name(wsi, "EIO=", eio, sizeof(eio));
    const char *t = lws_get_urlarg_by_name(wsi, "transport=", tr, sizeof(tr));
    if (!e || strcmp(e, "4")) {
        const char *shown = e && *e && strspn(e, "0123456789") == strlen(e) ? e : NULL;
        snprintf(body, n,
                 "{\"error\":\"Engine.IO protocol %s%s is not supported: only EIO=4 "
                 "(socket.io-client 3.x and 4.x)\",\"reason\":\"eio_version\"}",
                 shown ? "EIO="
                 : e   ? "EIO (not a number)"
                       : "without EIO",
                 shown ? shown : "");
        return body;
    }
    if (!upgrade || !t || strcmp(t, "websocket")) {
        snprintf(body, n,
                 "{\"error\":\"HTTP long-polling is not supported: connect with the WebSocket "
                 "transport only, set transports: ['websocket'] in the socket.io-client "
                 "options\",\"reason\":\"transport\"}");
        return body;
    }
    return NULL;
}

/* Queues an Engine.IO packet of the hub's own (open, ping, pong) before any event. */
static void
send_engine(struct conn *c, const char *s, size_t n)
{
    struct buf *b = sioframe_text(s, n);
    if (!b) {
        conn_close(c, 1011, "out of memory");
        return;
    }
    conn_send(c, b, 1);
    buf_unref(b);
}

void
sio_open(struct conn *c)
{
    const struct hub_config *cfg = c->hub->cfg;
    char open[256];
    int n = snprintf(open, sizeof(open),
                     "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%d,\"pingTimeout\":%d,"
                     "\"maxPayload\":%zu}",
                     c->session, cfg->sio_ping_interval_ms, cfg->sio_ping_timeout_ms,
                     cfg->max_frame_bytes);
    c->sio_ping_s = (uint16_t)(hub_now_ms() / 1000);
    c->sio_pong_due = 0;
    c->hub->m.sio_connections++;
    send_engine(c, open, (size_t)n);
}

int
sio_tick(struct conn *c, int64_t now)
{
    const struct hub_config *cfg = c->hub->cfg;
    if (c->fmt != FRAME_SIO || c->state == CONN_CLOSING)
        return 0;
    /* Whole seconds since the ping, as the once-a-second sweep sees them:
     * up to a second short of the real time, so a pong gets a second more
     * than HUB_SIO_PING_TIMEOUT_MS (a ping may go out a second early, which
     * costs the client nothing). */
    int64_t since_ms = (int64_t)(uint16_t)(now / 1000 - c->sio_ping_s) * 1000;
    if (c->sio_pong_due) {
        if (since_ms < (int64_t)cfg->sio_ping_timeout_ms + 1000)
            return 0;
        log_info("sio", "session %s: no pong within %d ms, closing", c->session,
                 cfg->sio_ping_timeout_ms);
        c->hub->m.sio_ping_timeouts++;
        conn_close(c, 4008, "ping timeout");
        return 1;
    }
    if (since_ms >= cfg->sio_ping_interval_ms) {
        c->sio_ping_s = (uint16_t)(now / 1000);
        c->sio_pong_due = 1;
        send_engine(c, "2", 1);
    }
    return 0;
}

/* A packet the hub does not take: counted, answered with a bad_request event. */
static void
bad(struct conn *c, const char *why)
{
    if (c->state == CONN_CLOSING)
        return;
    c->hub->m.bad_frames++;
    conn_error(c, "bad_request", why, NULL);
}

/*
 * CONNECT to "/": its auth object {token, rooms?} and, when the client
 * recovers a session, {pid, offset?}, as an auth map: the offset (or the
 * pid's own seq) is its since, the pid its ref.
 */
static void
on_connect(struct conn *c, const char *p, size_t n)
{
    if (c->state != CONN_AUTH) {
        bad(c, "already connected to namespace /");
        return;
    }
    const char *why = NULL;
    json_t *a = n ? frame_decode(FRAME_JSON, p, n, &why) : json_object();
    json_t *msg = json_pack("{s:s}", "type", "auth");
    if (!msg) {
        json_decref(a);
        conn_close(c, 1011, "out of memory");
        return;
    }
    json_t *token = json_object_get(a, "token");
    if (json_is_string(token))
        json_object_set(msg, "token", token);
    json_t *rooms = json_object_get(a, "rooms");
    if (rooms)
        json_object_set(msg, "rooms", rooms);
    const char *pid = json_string_value(json_object_get(a, "pid"));
    json_t *offset = json_object_get(a, "offset");
    int64_t since;
    if (pid && !sioframe_pid_seq(pid, &since)) {
        const char *o = json_string_value(offset);
        if (offset && (!o || sioframe_seq(o, strlen(o), &since))) {
            bad(c, "offset must be the seq of the last event received, as a string");
        } else {
            json_object_set_new(msg, "since", json_integer((json_int_t)since));
            json_object_set_new(msg, "ref", json_string(pid));
        }
    } else if (pid) {
        log_debug("sio", "session %s: pid '%.48s' is not the hub's: a new session", c->session,
                  pid);
    }
    if (!a)
        log_debug("sio", "session %s: CONNECT payload refused: %s", c->session, why);
    json_decref(a);
    session_handle(c, msg);
    json_decref(msg);
}

/*
 * ["ack", {"seq": N}]: the seq (a number, or the offset string) names an
 * event sent on this connection awaiting its ack, whose id the native ack
 * takes. Any other event is acked by its id.
 */
static void
ack_by_seq(struct conn *c, json_t *msg, const json_t *ack_id)
{
    json_t *v = json_object_get(msg, "seq");
    const char *s = json_string_value(v);
    int64_t seq = 0;
    if (json_is_integer(v))
        seq = json_integer_value(v);
    else if (s && sioframe_seq(s, strlen(s), &seq))
        seq = 0;
    int64_t id = seq > 0 && c->tenant ? ackcheck_pending_id(c, seq) : 0;
    if (!id) {
        if (c->state != CONN_CLOSING)
            conn_error(c, "bad_request",
                       "ack by seq names an event sent on this connection and not acked yet; "
                       "ack any other event by its id",
                       ack_id);
        return;
    }
    json_object_set_new(msg, "id", json_integer((json_int_t)id));
    session_handle(c, msg);
}

/* EVENT ["name", {args}?]: the map {type: name, ...args}, ref the ack id when there is one. */
static void
on_event(struct conn *c, const char *p, size_t n, const json_t *ack_id)
{
    if (c->state == CONN_AUTH || c->state == CONN_CHECKING) {
        c->hub->m.bad_frames++;
        conn_error(c, "bad_request", "send CONNECT (with auth) before any event", ack_id);
        return;
    }
    const char *why = "an event must be [\"name\", {…}]";
    json_t *v = n ? frame_decode_value(p, n, &why) : NULL;
    const char *name = json_string_value(json_array_get(v, 0));
    json_t *arg = json_array_get(v, 1);
    if (!name || (arg && !json_is_object(arg))) {
        json_decref(v);
        if (c->state == CONN_CLOSING)
            return;
        c->hub->m.bad_frames++;
        conn_error(c, "bad_request",
                   v ? "an event must be [\"name\"] or [\"name\", {object}]" : why, ack_id);
        return;
    }
    json_t *msg = arg ? json_copy(arg) : json_object();
    if (msg) {
        json_object_del(msg, "ref");
        json_object_set_new(msg, "type", json_string(name));
        if (ack_id)
            json_object_set(msg, "ref", (json_t *)ack_id);
        if (!strcmp(name, "ack") && !json_object_get(msg, "id") && json_object_get(msg, "seq"))
            ack_by_seq(c, msg, ack_id);
        else
            session_handle(c, msg);
    }
    json_decref(msg);
    json_decref(v);
}

/* A Socket.IO packet (an Engine.IO message) taken apart by sio_parse(). */
static void
on_packet(struct conn *c, const struct sioframe_packet *pk)
{
    if (pk->nsp_len != 1) {
        if (pk->type == '0' && c->state != CONN_CLOSING) {
            char name[64];
            memcpy(name, pk->nsp, pk->nsp_len);
            name[pk->nsp_len] = '\0';
            struct buf *b =
                sioframe_connect_error(name, "bad_request", "only the namespace \"/\" is served");
            if (!b || conn_send(c, b, 1) < 0)
                log_debug("sio", "session %s: cannot refuse namespace %s", c->session, name);
            buf_unref(b);
        } else {
            bad(c, "only the namespace \"/\" is served");
        }
        return;
    }
    json_t *ack_id = pk->id >= 0 ? json_integer((json_int_t)pk->id) : NULL;
    switch (pk->type) {
    case '0':
        if (c->state != CONN_CLOSING)
            on_connect(c, pk->data, pk->len);
        break;
    case '1':
        conn_close(c, 1000, "client disconnected");
        break;
    case '2':
        on_event(c, pk->data, pk->len, ack_id);
        break;
    case '3':
        /* The client's ack callback of an event: its id is the event's. */
        if (!ack_id) {
            bad(c, "an ACK needs the id of the event it acks");
            break;
        }
        if (c->state == CONN_READY || c->state == CONN_CLOSING) {
            json_t *msg = json_pack("{s:s, s:O}", "type", "ack", "id", ack_id);
            if (msg)
                session_handle(c, msg);
            json_decref(msg);
        }
        break;
    case '5':
    case '6':
        bad(c, "binary attachments are not supported");
        break;
    default: /* '4', CONNECT_ERROR, is the server's */
        bad(c, "a client does not send CONNECT_ERROR");
    }
    json_decref(ack_id);
}

void
sio_message(struct conn *c, const void *data, size_t len, int binary)
{
    struct sioframe_packet pk;
    const char *why;
    if (c->state != CONN_CLOSING && session_charge_frames(c, 1))
        return;
    if (binary) {
        bad(c, "binary frames (Socket.IO attachments) are not supported");
        return;
    }
    if (sioframe_parse(data, len, &pk, &why)) {
        bad(c, why);
        return;
    }
    switch (pk.eio) {
    case '1':
        conn_close(c, 1000, "client closed");
        break;
    case '2': /* a ping from the client (a probe): its payload comes back when it is short text */
        if (c->state != CONN_CLOSING) {
            char pong[40] = "3";
            size_t n = 1;
            if (pk.len < sizeof(pong) - 1 && sioframe_printable(pk.data, pk.len)) {
                memcpy(pong + 1, pk.data, pk.len);
                n += pk.len;
            }
            send_engine(c, pong, n);
        }
        break;
    case '3':
        c->sio_pong_due = 0;
        break;
    case '4':
        on_packet(c, &pk);
        break;
    default: /* 5 upgrade, 6 noop: nothing to do over WebSocket alone */
        break;
    }
}
