/*
 * sio.c - the Socket.IO codec and its glue to the session (sio.h).
 *
 * Engine.IO v4 over WebSocket: every WebSocket text message is one Engine.IO
 * packet, its first character the type (0 open, 1 close, 2 ping, 3 pong,
 * 4 message, 6 noop). A message packet carries one Socket.IO v5 packet:
 * its type digit (0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR),
 * an optional namespace ("/x,"), an optional ack id (digits), then JSON.
 * So "42[...]" is an event and "43<id>[...]" an ack on namespace "/".
 *
 * Inbound packets become the native protocol's maps and go to
 * session_handle(). Two fields carry what Socket.IO adds: "ref" holds the
 * packet's ack id (an integer), so the answer session.c echoes it in comes
 * back as the ACK of that id; on CONNECT "ref" holds the private session id
 * (pid, a string) the client recovers with, so the welcome that echoes it
 * becomes the CONNECT answer naming the same pid. No client-sent "ref" is
 * ever kept.
 *
 * Connection state recovery: the hub keeps nothing between connections.
 * Every event carries its seq as the offset (the last argument), which
 * socket.io-client sends back with the pid on reconnection; the offset is
 * then the native resume point (since), and the pid is echoed, so the
 * client's socket.recovered is true. A pid is "<session>-<seq>", the seq
 * being the welcome's last_seq: a client that got no event at all resumes
 * from there. The client keeps the offset only from an event whose last
 * argument is a string, and the ack callback it appends for an event with
 * an ack id hides it: such an event is followed by SIO_OFFSET_EVENT
 * carrying the same offset, in the same shared buffer.
 */
#include "sio.h"
#include "ackcheck.h"
#include "conn.h"
#include "frame.h"
#include "hub.h"
#include "log.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The event that carries the offset after an event with an ack id. */
#define SIO_OFFSET_EVENT "hub:offset"
/* Prefix of an event whose kind Socket.IO reserves (socket.io-client
 * refuses an EVENT named connect, connect_error, disconnect, disconnecting). */
#define SIO_RESERVED_PREFIX "hub:"
/* Longest pid read back from a client: a session id, '-', a seq. */
#define SIO_PID_MAX 48

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

/* A text buffer holding s[0..n). */
static struct buf *
text_buf(const char *s, size_t n)
{
    struct buf *b = buf_new(n, 0);
    if (b)
        memcpy(buf_data(b), s, n);
    return b;
}

/* pre, then mid's payload, then post, in a new text buffer; mid is released. */
static struct buf *
wrap(const char *pre, struct buf *mid, const char *post)
{
    if (!mid)
        return NULL;
    size_t a = strlen(pre), z = strlen(post);
    struct buf *b = buf_new(a + mid->len + z, 0);
    if (b) {
        memcpy(buf_data(b), pre, a);
        memcpy(buf_data(b) + a, buf_data(mid), mid->len);
        memcpy(buf_data(b) + a + mid->len, post, z);
    }
    buf_unref(mid);
    return b;
}

/* x then y as two whole text frames in one framed buffer (buf.h); both are released. */
static struct buf *
two_frames(struct buf *x, struct buf *y)
{
    struct buf *b = NULL;
    if (x && y) {
        size_t total = ws_header_len(x->len) + x->len + ws_header_len(y->len) + y->len;
        if ((b = buf_new(total, 0))) {
            unsigned char *p = buf_data(b);
            p += ws_header(p, x->len, 0);
            memcpy(p, buf_data(x), x->len);
            p += x->len;
            p += ws_header(p, y->len, 0);
            memcpy(p, buf_data(y), y->len);
            b->framed = 1;
        }
    }
    buf_unref(x);
    buf_unref(y);
    return b;
}

/* "44{"message":…,"data":{"code":…}}": the client's connect_error, err.data.code set. */
static struct buf *
connect_error(const char *nsp, const char *code, const char *message)
{
    json_t *m =
        json_pack("{s:s, s:{s:s}}", "message", message ? message : "", "data", "code", code);
    char pre[80];
    snprintf(pre, sizeof(pre), "44%s%s", nsp ? nsp : "", nsp ? "," : "");
    struct buf *b = m ? wrap(pre, frame_encode(FRAME_JSON, m), "") : NULL;
    json_decref(m);
    return b;
}

/* The CONNECT answer and the welcome as an event after it. */
static struct buf *
connected(const json_t *msg, json_t *body)
{
    const char *sid = json_string_value(json_object_get(msg, "session"));
    const char *pid = json_string_value(json_object_get(msg, "ref"));
    char fresh[SIO_PID_MAX];
    if (!pid) {
        snprintf(fresh, sizeof(fresh), "%s-%lld", sid ? sid : "",
                 (long long)json_integer_value(json_object_get(msg, "last_seq")));
        pid = fresh;
    }
    json_t *c = json_pack("{s:s, s:s}", "sid", sid ? sid : "", "pid", pid);
    struct buf *open = c ? wrap("40", frame_encode(FRAME_JSON, c), "") : NULL;
    json_decref(c);
    return two_frames(open, wrap("42[\"welcome\",", frame_encode(FRAME_JSON, body), "]"));
}

struct buf *
sio_encode(const json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    const json_t *ref = json_object_get(msg, "ref");
    if (!type)
        return NULL;
    if (!strcmp(type, "error")) {
        const char *code = json_string_value(json_object_get(msg, "code"));
        if (code && !strcmp(code, "unauthorized"))
            return connect_error(NULL, code, json_string_value(json_object_get(msg, "message")));
    }
    json_t *body = json_copy((json_t *)msg);
    if (!body)
        return NULL;
    json_object_del(body, "ref");
    struct buf *b;
    char pre[64];
    if (json_is_integer(ref)) {
        snprintf(pre, sizeof(pre), "43%lld[", (long long)json_integer_value(ref));
        b = wrap(pre, frame_encode(FRAME_JSON, body), "]");
    } else if (!strcmp(type, "welcome") && !json_object_get(msg, "exp")) {
        b = connected(msg, body); /* a refresh's welcome (with exp) is no CONNECT */
    } else {
        json_t *name = json_string(type);
        char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
        json_decref(name);
        if (!quoted || strlen(quoted) > sizeof(pre) - 8) {
            free(quoted);
            json_decref(body);
            return NULL;
        }
        snprintf(pre, sizeof(pre), "42[%s,", quoted);
        free(quoted);
        b = wrap(pre, frame_encode(FRAME_JSON, body), "]");
    }
    json_decref(body);
    return b;
}

/* Whether socket.io-client refuses an event of this name. */
static int
reserved_name(const char *kind)
{
    static const char *const names[] = {"connect", "connect_error", "disconnect", "disconnecting"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(kind, names[i]))
            return 1;
    return 0;
}

struct buf *
sio_encode_event(const json_t *msg, const char *data, size_t len)
{
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    long long seq = (long long)json_integer_value(json_object_get(msg, "seq"));
    long long id = (long long)json_integer_value(json_object_get(msg, "id"));
    int ack = json_is_true(json_object_get(msg, "ack"));
    if (!kind)
        return NULL;
    /* hub.emit() keeps kinds to [a-z0-9_]; a row written around it is quoted all the same. */
    json_t *name = json_sprintf("%s%s", reserved_name(kind) ? SIO_RESERVED_PREFIX : "", kind);
    char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    json_decref(name);
    char *pre = quoted ? malloc(strlen(quoted) + 32) : NULL;
    if (!pre) {
        free(quoted);
        return NULL;
    }
    if (ack)
        sprintf(pre, "42%lld[%s,", id, quoted);
    else
        sprintf(pre, "42[%s,", quoted);
    free(quoted);
    char post[32];
    snprintf(post, sizeof(post), ",\"%lld\"]", seq);
    struct buf *b = wrap(pre, frame_encode_event(FRAME_JSON, msg, data, len), post);
    free(pre);
    if (!ack || !b)
        return b;
    char off[64];
    int n = snprintf(off, sizeof(off), "42[\"" SIO_OFFSET_EVENT "\",\"%lld\"]", seq);
    return two_frames(b, text_buf(off, (size_t)n));
}

/* Queues an Engine.IO packet of the hub's own (open, ping, pong) before any event. */
static void
send_engine(struct conn *c, const char *s, size_t n)
{
    struct buf *b = text_buf(s, n);
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
    if (c->state == CONN_CLOSING)
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

/* Parses a non-negative decimal integer of s[0..n) (at most 18 digits; s need not
 * be terminated). Returns 0 or -1. */
static int
parse_seq(const char *s, size_t n, int64_t *out)
{
    if (!n || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * The resume point a pid names: "<session>-<seq>" as connected() makes it.
 * Returns 0 with *seq set, or -1 when pid is not one of the hub's.
 */
static int
pid_seq(const char *pid, int64_t *seq)
{
    const char *dash = strrchr(pid, '-');
    size_t head = dash ? (size_t)(dash - pid) : 0;
    if (!dash || !head || strlen(pid) > SIO_PID_MAX || strspn(pid, "0123456789abcdef") != head)
        return -1;
    return parse_seq(dash + 1, strlen(dash + 1), seq);
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
    if (pid && !pid_seq(pid, &since)) {
        const char *o = json_string_value(offset);
        if (offset && (!o || parse_seq(o, strlen(o), &since))) {
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
    else if (s && parse_seq(s, strlen(s), &seq))
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

/* Whether s[0..n) is 1-63 bytes of printable ASCII without '"' or '\\': text
 * the hub can echo (a namespace in a CONNECT_ERROR, a probe's payload). */
static int
printable(const char *s, size_t n)
{
    if (!n || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int
sio_parse(const char *p, size_t n, struct sio_packet *pk, const char **why)
{
    *pk = (struct sio_packet){.nsp = "/", .nsp_len = 1, .id = -1};
    if (!n) {
        *why = "empty Engine.IO packet";
        return -1;
    }
    pk->eio = p[0];
    if (pk->eio < '1' || pk->eio > '6') {
        *why = "unknown Engine.IO packet type";
        return -1;
    }
    size_t i = 1;
    if (pk->eio == '4') {
        if (n < 2 || p[1] < '0' || p[1] > '6') {
            *why = "unknown Socket.IO packet type";
            return -1;
        }
        pk->type = p[1];
        i = 2;
        if (i < n && p[i] == '/') {
            size_t from = i;
            while (i < n && p[i] != ',')
                i++;
            pk->nsp = p + from;
            pk->nsp_len = i - from;
            if (!printable(pk->nsp, pk->nsp_len)) {
                *why = "a namespace is 1-63 bytes of printable ASCII";
                return -1;
            }
            if (i < n)
                i++; /* the comma */
        }
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i > d && parse_seq(p + d, i - d, &pk->id)) {
            *why = "ack id out of range";
            return -1;
        }
    }
    pk->data = p + i;
    pk->len = n - i;
    return 0;
}

/* A Socket.IO packet (an Engine.IO message) taken apart by sio_parse(). */
static void
on_packet(struct conn *c, const struct sio_packet *pk)
{
    if (pk->nsp_len != 1) {
        if (pk->type == '0' && c->state != CONN_CLOSING) {
            char name[64];
            memcpy(name, pk->nsp, pk->nsp_len);
            name[pk->nsp_len] = '\0';
            struct buf *b =
                connect_error(name, "bad_request", "only the namespace \"/\" is served");
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
    struct sio_packet pk;
    const char *why;
    if (c->state != CONN_CLOSING && session_charge_frames(c, 1))
        return;
    if (binary) {
        bad(c, "binary frames (Socket.IO attachments) are not supported");
        return;
    }
    if (sio_parse(data, len, &pk, &why)) {
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
            if (pk.len < sizeof(pong) - 1 && printable(pk.data, pk.len)) {
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
