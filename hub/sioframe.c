/*
 * sioframe.c - the Socket.IO codec (sioframe.h): the hub's maps as Socket.IO
 * v5 packets inside Engine.IO v4 messages, and a client's messages taken
 * apart. It knows buffers and jansson only, so that frame.c can hand it
 * the Socket.IO format; what the packets mean is sio.c's.
 *
 * Engine.IO v4 over WebSocket: every WebSocket text message is one Engine.IO
 * packet, its first character the type (0 open, 1 close, 2 ping, 3 pong,
 * 4 message, 6 noop). A message packet carries one Socket.IO v5 packet:
 * its type digit (0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR),
 * an optional namespace ("/x,"), an optional ack id (digits), then JSON.
 * So "42[...]" is an event and "43<id>[...]" an ack on namespace "/".
 *
 * Two fields of a reply map say what Socket.IO adds (sio.c puts them
 * there): "ref" holding an integer is the ack id of the packet answered,
 * so the answer is the ACK of that id; a welcome's string "ref" is the
 * private session id (pid) a client recovers with, named again in the
 * CONNECT answer.
 *
 * socket.io-client keeps an event's offset only when its last argument is a
 * string, and the ack callback it appends for an event with an ack id hides
 * it: such an event is followed by SIO_OFFSET_EVENT carrying the same
 * offset, in the same shared buffer (a framed one, buf.h).
 */
#include "sioframe.h"

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

struct buf *
sioframe_text(const char *s, size_t n)
{
    struct buf *b = buf_new(n, 0);
    if (b)
        memcpy(buf_data(b), s, n);
    return b;
}

/* v as compact JSON in a new text buffer (NULL: out of memory). */
static struct buf *
json_buf(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    struct buf *b = s ? sioframe_text(s, strlen(s)) : NULL;
    free(s);
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

struct buf *
sioframe_connect_error(const char *nsp, const char *code, const char *message)
{
    json_t *m =
        json_pack("{s:s, s:{s:s}}", "message", message ? message : "", "data", "code", code);
    char pre[80];
    snprintf(pre, sizeof(pre), "44%s%s", nsp ? nsp : "", nsp ? "," : "");
    struct buf *b = m ? wrap(pre, json_buf(m), "") : NULL;
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
    struct buf *open = c ? wrap("40", json_buf(c), "") : NULL;
    json_decref(c);
    return two_frames(open, wrap("42[\"welcome\",", json_buf(body), "]"));
}

struct buf *
sioframe_reply(const json_t *msg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    const json_t *ref = json_object_get(msg, "ref");
    if (!type)
        return NULL;
    if (!strcmp(type, "error")) {
        const char *code = json_string_value(json_object_get(msg, "code"));
        if (code && !strcmp(code, "unauthorized"))
            return sioframe_connect_error(NULL, code,
                                          json_string_value(json_object_get(msg, "message")));
    }
    json_t *body = json_copy((json_t *)msg);
    if (!body)
        return NULL;
    json_object_del(body, "ref");
    struct buf *b;
    char pre[64];
    if (json_is_integer(ref)) {
        snprintf(pre, sizeof(pre), "43%lld[", (long long)json_integer_value(ref));
        b = wrap(pre, json_buf(body), "]");
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
        b = wrap(pre, json_buf(body), "]");
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
sioframe_event(const json_t *msg, struct buf *json)
{
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    long long seq = (long long)json_integer_value(json_object_get(msg, "seq"));
    long long id = (long long)json_integer_value(json_object_get(msg, "id"));
    int ack = json_is_true(json_object_get(msg, "ack"));
    if (!kind || !json) {
        buf_unref(json);
        return NULL;
    }
    /* hub.emit() keeps kinds to [a-z0-9_]; a row written around it is quoted all the same. */
    json_t *name = json_sprintf("%s%s", reserved_name(kind) ? SIO_RESERVED_PREFIX : "", kind);
    char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    json_decref(name);
    char *pre = quoted ? malloc(strlen(quoted) + 32) : NULL;
    if (!pre) {
        free(quoted);
        buf_unref(json);
        return NULL;
    }
    if (ack)
        sprintf(pre, "42%lld[%s,", id, quoted);
    else
        sprintf(pre, "42[%s,", quoted);
    free(quoted);
    char post[32];
    snprintf(post, sizeof(post), ",\"%lld\"]", seq);
    struct buf *b = wrap(pre, json, post);
    json = NULL;
    free(pre);
    if (!ack || !b)
        return b;
    char off[64];
    int n = snprintf(off, sizeof(off), "42[\"" SIO_OFFSET_EVENT "\",\"%lld\"]", seq);
    return two_frames(b, sioframe_text(off, (size_t)n));
}

int
sioframe_seq(const char *s, size_t n, int64_t *out)
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

int
sioframe_pid_seq(const char *pid, int64_t *seq)
{
    const char *dash = strrchr(pid, '-');
    size_t head = dash ? (size_t)(dash - pid) : 0;
    if (!dash || !head || strlen(pid) > SIO_PID_MAX || strspn(pid, "0123456789abcdef") != head)
        return -1;
    return sioframe_seq(dash + 1, strlen(dash + 1), seq);
}

int
sioframe_printable(const char *s, size_t n)
{
    if (!n || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int
sioframe_parse(const char *p, size_t n, struct sioframe_packet *pk, const char **why)
{
    *pk = (struct sioframe_packet){.nsp = "/", .nsp_len = 1, .id = -1};
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
            if (!sioframe_printable(pk->nsp, pk->nsp_len)) {
                *why = "a namespace is 1-63 bytes of printable ASCII";
                return -1;
            }
            if (i < n)
                i++; /* the comma */
        }
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i > d && sioframe_seq(p + d, i - d, &pk->id)) {
            *why = "ack id out of range";
            return -1;
        }
    }
    pk->data = p + i;
    pk->len = n - i;
    return 0;
}
