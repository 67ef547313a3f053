/*
 * conn.h - one WebSocket connection: its identity, rooms and outbound queue.
 *
 * struct conn is the lws per-session storage of the WebSocket protocols (a
 * Socket.IO connection on /socket.io/ is one in format FRAME_SIO):
 * lws allocates and frees it, zeroed, with the connection. Outbound frames
 * are shared buffers (struct buf) held in two rings drained one burst per
 * writable callback: replies (welcome, pong, errors, ...) go before events,
 * and events keep their seq order among themselves, whatever their
 * priority, because the contract promises increasing seq on a connection.
 * The queue is bounded in bytes; a connection that does not read is closed
 * with 4008.
 */
#ifndef HUB_CONN_H
#define HUB_CONN_H

#include <stdint.h>
#include <libwebsockets.h>
#include "auth.h"
#include "frame.h"
#include "registry.h"
#include "soon.h"

struct hub;
struct buf;
struct db_req;
struct ack_lookup;
struct conn;
struct peer_slot;

/*
 * What feeds a connection from the outbox, seen from below: conn.c is the
 * bottom of the event path and calls upward only through this table (the
 * hub's feed, set by main.c; replay.c's replay_feed), never by name. A
 * member may be NULL.
 */
struct conn_feed {
    /* c replays (replaying) and was waiting for its queue (replay_waiting),
     * which is now down to a quarter of its bound: read on. Called from the
     * writable callback, never from inside conn_send(). */
    void (*resume)(struct conn *c);
    /* c is closing or gone: forget what was being read for it. */
    void (*stop)(struct conn *c);
};

enum conn_state {
    CONN_AUTH,     /* waiting for credentials */
    CONN_CHECKING, /* token valid, tenant being verified */
    CONN_READY,    /* authenticated, in its rooms */
    CONN_CLOSING,  /* a close is queued behind the last frames */
};

/* A ring of buffer references. */
struct ring {
    struct buf **v;
    uint32_t cap, head, len;
};

/* Events with ack:true this connection was sent and has not acked (bounded). */
#define CONN_MAX_PENDING_ACKS 64
/* Acks for events not sent on this connection checked at once. */
#define CONN_MAX_ACK_LOOKUPS 32
/* Look-ups a connection may start at once before HUB_ACK_LOOKUP_RATE paces it. */
#define CONN_ACK_LOOKUP_BURST CONN_MAX_ACK_LOOKUPS

/* An event with ack:true sent on a connection: its id, and its seq (an ack
 * may name either, the seq through Socket.IO's ack event). */
struct conn_pending {
    int64_t id, seq;
};

/*
 * A connection's ack bookkeeping, apart from struct conn because most
 * connections never receive an event with ack:true nor send an ack: it is
 * allocated on the first use (ackcheck.c) and freed by conn_release().
 */
struct conn_acks {
    struct conn_pending *pending; /* ack:true events sent and not acked (owned, grown) */
    unsigned n_pending, cap_pending;
    struct ack_lookup *lookups; /* acks for events not sent here, being checked (the
                                 * hub's look-up queue owns them) */
    unsigned n_lookups;
    double tokens;        /* look-ups it may still start now (HUB_ACK_LOOKUP_RATE bucket) */
    int64_t tokens_at_ms; /* when tokens was last refilled; 0: never (bucket full) */
};

struct conn {
    struct lws *wsi;
    struct hub *hub;
    int fd;                   /* the socket, written directly when lws holds nothing; -1: TLS */
    struct auth_claims who;   /* owned once authenticated (or checking) */
    int64_t auth_at_s;        /* wall time of the first authentication: the session's age */
    char *forwarded;          /* client address a trusted proxy forwarded (owned), or NULL */
    struct peer_slot *slot;   /* its count in hub->peers (the table's), or NULL: uncounted */
    struct tenant *tenant;    /* set when READY */
    struct member *rooms;     /* own memberships */
    struct conn *wnext;       /* in tenant->waiters while CHECKING */
    struct conn *prev, *next; /* in hub->conns (every open WebSocket) */
    struct ring urgent, normal;
    size_t queued_bytes;
    int64_t progress_ms;        /* last time a frame was written (or the connection opened) */
    int64_t last_seq;           /* newest event seq queued here: no duplicates */
    int64_t since;              /* resume point asked for, -1 when none */
    int64_t replay_hi;          /* upper end of the window the page in flight reads */
    int64_t replay_upto;        /* live cursor the current replay page reads up to */
    int64_t welcome_seq;        /* welcome.last_seq: a since past the newest seq resumes here */
    struct db_req *replay_req;  /* replay query in flight */
    lws_sorted_usec_list_t sul; /* auth deadline, then close linger and deadline */
    unsigned char *rx;          /* partial inbound message (owned) */
    size_t rx_len;
    /* Acts on what wsrx.c saw the client send (control frames, unmasked frames). */
    struct soon rx_soon;
    double tokens; /* inbound rate-limit bucket */
    int64_t tokens_at_ms;
    int64_t close_at_ms;      /* lingering until then before closing (0: not lingering) */
    const char *close_reason; /* a string literal */
    json_t *auth_ref;         /* "ref" of the auth frame, echoed in welcome (owned) */
    json_t *auth_rooms;       /* rooms asked for with the credentials, joined by welcome (owned) */
    struct conn_acks *acks;   /* ack bookkeeping (owned), allocated on first use by ackcheck.c */
    unsigned n_rooms;
    unsigned replaying : 1;      /* fed from the outbox (its feed) until it catches up; the
                                  * router skips it */
    unsigned replay_waiting : 1; /* the feed waits for the queue to drain (conn_flush resumes) */
    unsigned peer_closed : 1;    /* the client sent a close frame: no more direct writes */
    unsigned sio_pong_due : 1;   /* Socket.IO: that ping awaits its pong */
    enum frame_fmt fmt : 8;
    enum conn_state state : 8;
    uint16_t close_code; /* set when CLOSING */
    /* Socket.IO: when the last Engine.IO ping went out, in seconds of
     * hub_now_ms() modulo 2^16 (sio.c): intervals are at most 600 s, and 16
     * bits fit where 64 would grow every connection. */
    uint16_t sio_ping_s;
    char session[17];
};

/*
 * Queues b (taking a new reference) for sending. urgent (replies) go
 * before events. Returns 0, or -1 when the queue would exceed its bound, in
 * which case the connection is being closed with 4008 or, for an event to a
 * connection that reads, falls behind and catches up from the outbox. An
 * event is never refused when no other event is queued, nor while the
 * connection replays (replay.c paces itself): the queue may pass its bound
 * by one event, so a single event bigger than the bound still goes out.
 */
int conn_send(struct conn *c, struct buf *b, int urgent);

/* Whether a frame given to conn_send() now would be written at once (nothing queued). */
int conn_can_write_now(const struct conn *c);

/*
 * Writes len bytes that already are whole WebSocket frames (frames of
 * them, for the counters) to c at once; only when conn_can_write_now().
 * What the kernel does not take, lws keeps. Returns 0, or -1 when the
 * socket failed (the connection is then closing).
 */
int conn_send_framed(struct conn *c, const unsigned char *p, size_t len, unsigned frames);

/* Encodes msg in the connection's format and queues it as urgent. */
int conn_reply(struct conn *c, const json_t *msg);

/* Queues an error frame (ref echoed when not NULL). */
int conn_error(struct conn *c, const char *code, const char *message, const json_t *ref);

/*
 * Closes the connection with code and reason once the frames already
 * queued (such as an error explaining why) have been written. Later frames
 * are dropped. Whatever the path (lingering or not), the connection is gone
 * HUB_CLOSE_TIMEOUT_MS after the call at most: if its frames and the close
 * have not gone out by then (the client does not read), its socket is reset.
 * reason is kept, not copied: pass a string literal.
 */
void conn_close(struct conn *c, uint16_t code, const char *reason);

/*
 * How long a connection closed for flooding (4029) or an oversized message
 * (1009) keeps reading and discarding before the close: closing a socket
 * with unread input makes the kernel reset it, and the client would lose
 * the error frame that says why.
 */
#define CONN_LINGER_MS 250

/* conn_close(), but the close frame goes out CONN_LINGER_MS later. */
void conn_close_lingering(struct conn *c, uint16_t code, const char *reason);

/* Writes queued frames (a bounded number) from the writable callback.
 * Returns non-zero when lws must close the connection. */
int conn_flush(struct conn *c);

/*
 * Closes c with 4008 when frames (or a replay waiting for them) have waited
 * unwritten for HUB_SLOW_CONSUMER_MS at now (hub_now_ms()). Returns 1 when
 * it did. The session's once-a-second sweep calls it for every connection.
 */
int conn_check_stall(struct conn *c, int64_t now);

/* Releases everything the connection owns (its queue, rx buffer, claims,
 * ack bookkeeping). Its feed is stopped first. */
void conn_release(struct conn *c);

#endif
