/*
 * sioframe.h - the Socket.IO codec: Socket.IO v5 packets inside Engine.IO v4
 * messages, out of the hub's maps and into their parts (docs/protocol.md,
 * "Socket.IO compatibility"). Below frame.c, which hands it the FRAME_SIO
 * format; sio.c gives the packets their meaning.
 */
#ifndef HUB_SIOFRAME_H
#define HUB_SIOFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"

/* One inbound Engine.IO packet taken apart by sioframe_parse(); the
 * pointers point into the message. */
struct sioframe_packet {
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
int sioframe_parse(const char *p, size_t n, struct sioframe_packet *pk, const char **why);

/*
 * A reply map (welcome, error, subscribed, ...) as its packet: an
 * unauthorized error is a CONNECT_ERROR; a map whose "ref" is an integer
 * is the ACK of that id; a welcome (not a refresh's, which has "exp") is
 * the CONNECT answer {sid, pid} followed by the event "welcome"; anything
 * else is the event named after its type. "ref" is never sent. Returns a
 * new buffer, or NULL on OOM.
 */
struct buf *sioframe_reply(const json_t *msg);

/*
 * An event as the EVENT named after its kind ("hub:<kind>" for a name
 * Socket.IO reserves), its arguments json (the native event frame, as
 * frame.c encoded it; taken over) and the seq as a string, the offset.
 * With ack:true it carries the event's id as ack id and is followed by the
 * offset event, in one framed buffer. Returns a new buffer, or NULL.
 */
struct buf *sioframe_event(const json_t *msg, struct buf *json);

/* "44[nsp,]{"message":…,"data":{"code":…}}": a connect_error for the
 * client, err.data.code set; nsp NULL for "/". A new buffer, or NULL. */
struct buf *sioframe_connect_error(const char *nsp, const char *code, const char *message);

/* A text buffer holding s[0..n) (an Engine.IO packet of the hub's own); NULL on OOM. */
struct buf *sioframe_text(const char *s, size_t n);

/* Parses s[0..n) (s need not be terminated) as a non-negative decimal
 * integer of at most 18 digits. Returns 0, or -1. */
int sioframe_seq(const char *s, size_t n, int64_t *out);

/* The resume point a pid of the hub names ("<session>-<seq>", as the
 * CONNECT answer makes it). Returns 0 with *seq set, or -1 when pid is not
 * of that form. */
int sioframe_pid_seq(const char *pid, int64_t *seq);

/* Whether s[0..n) is 1-63 bytes of printable ASCII without '"' or '\\':
 * text the hub can echo (a namespace in a CONNECT_ERROR, a probe's payload). */
int sioframe_printable(const char *s, size_t n);

#endif
