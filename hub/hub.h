/*
 * hub.h - the one hub object every module reaches through its connections.
 *
 * main.c creates it, wires the lws context, the two database connections
 * and the registry, and runs the loop. Nothing else is global.
 */
#ifndef HUB_HUB_H
#define HUB_HUB_H

#include <stdint.h>
#include <libwebsockets.h>
#include "config.h"
#include "registry.h"
#include "soon.h"

struct db;
struct acks;
struct fallback;
struct fanout;
struct listener;
struct ack_lookup;
struct peer_table;

/* Counters exported on /metrics. */
struct hub_metrics {
    uint64_t connections_total;
    uint64_t auth_failures;
    uint64_t events_read;    /* outbox rows routed */
    uint64_t outbox_reads;   /* page reads of the outbox (queries) */
    uint64_t outbox_wakeups; /* notifications on the outbox channel */
    uint64_t outbox_quiet;   /* times the listener stopped taking notifications */
    uint64_t frames_queued;  /* event frames put on connection queues */
    uint64_t frames_sent;
    uint64_t socket_writes; /* sendmsg() calls that carried frames */
    uint64_t frame_runs;    /* writes that carried several queued events at once */
    uint64_t bytes_sent;
    uint64_t acks;
    uint64_t slow_consumers; /* connections closed with 4008 */
    uint64_t close_timeouts; /* closing connections dropped at HUB_CLOSE_TIMEOUT_MS */
    uint64_t rate_limited;   /* connections closed with 4029 */
    uint64_t bad_frames;
    uint64_t db_reconnects;
    uint64_t events_purged;
    uint64_t catchups;             /* connections that fell behind and caught up from the outbox */
    uint64_t events_undeliverable; /* outbox rows with malformed rooms or data (router.c) */
    uint64_t outbox_failures;      /* listener queries (LISTEN, cursor, page) that failed */
    uint64_t outbox_safety_reads;  /* reads the safety net made (outbox_safety_ms) */
    uint64_t ack_lookups;          /* acks checked against the database (session.c) */
    uint64_t ack_lookup_queries;   /* queries those checks took (several acks each) */
    uint64_t ack_lookups_refused;  /* acks refused with rate_limited instead of a check */
    uint64_t refused_origin;       /* upgrades refused with 403: Origin not allowed (ws.c) */
    uint64_t refused_conns_per_ip; /* upgrades refused with 429: HUB_MAX_CONNS_PER_IP */
    uint64_t refused_handshakes;   /* upgrades refused with 429: HUB_MAX_HANDSHAKES_PER_IP_S */
    uint64_t ip_table_full;        /* upgrades let in uncounted: HUB_MAX_TRACKED_IPS reached */
};

struct hub {
    const struct hub_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct listener *listener; /* the listening socket (listener.c); NULL while draining */
    struct registry reg;
    struct db *listen_db; /* LISTEN and outbox reading */
    struct db *work_db;   /* tenant checks and other requests */
    int listening;        /* the outbox can be read (cursor known, last read ok): /healthz ok */
    int64_t cursor;       /* newest outbox seq routed */
    int cursor_known;     /* cursor has been read from the database */
    int reading;          /* an outbox read is in flight */
    int read_again;       /* a notification came during that read */
    int quiet;            /* behind: UNLISTENed, reading every outbox_poll_ms (outbox.c) */
    lws_sorted_usec_list_t poll_sul;

    /* The listener's fault handling (outbox.c). */
    int outbox_up;                    /* listen_db is connected: on_up ran, on_down did not since */
    int notified;                     /* LISTEN OUTBOX_CHANNEL is in effect on listen_db */
    int listen_pending;               /* a LISTEN OUTBOX_CHANNEL is on its way */
    int cursor_pending;               /* the newest-seq query is on its way */
    int read_fails;                   /* cursor or page reads failed in a row (backoff) */
    int listen_fails;                 /* LISTENs failed in a row */
    int64_t retry_at;                 /* hub_now_ms() the retry_sul retry is due, 0: none */
    int64_t last_read_ms;             /* hub_now_ms() when the last page read was sent */
    lws_sorted_usec_list_t retry_sul; /* the next attempt after a failed listener query */
    lws_sorted_usec_list_t safety_sul; /* the safety net's read (outbox_safety_ms) */

    size_t n_conns;     /* open WebSocket connections */
    struct conn *conns; /* all of them (utlist DL list through conn->prev/next) */
    int draining;       /* stopping: no new connections, the open ones closed with 1001 */
    struct acks *acks;  /* acks waiting to be written (acks.c) */
    struct acks *sent;  /* "sent" marks waiting to be written */
    struct fallback *fallback;
    struct fanout *fan_head, *fan_tail; /* large fan-outs in progress (router.c), FIFO */
    size_t fan_jobs;
    struct soon fan_soon;
    lws_dll2_owner_t auth_fifo; /* connections not yet authenticated, oldest first (session.c) */
    lws_sorted_usec_list_t auth_sul;
    lws_sorted_usec_list_t purge_sul;
    lws_sorted_usec_list_t stall_sul;
    /* Acks for events not sent on their connection, checked in batches (session.c). */
    struct ack_lookup *ack_wait_head, *ack_wait_tail; /* waiting for the next query, FIFO */
    struct ack_lookup *ack_batch; /* checked by the query in flight (NULL: none in flight) */
    size_t ack_lookups_out;       /* waiting or in flight; at most cfg->ack_lookups_max */
    /* The per-address caps (peer.c; owned), NULL when both are off. */
    struct peer_table *peers;
    struct hub_metrics m;
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t hub_now_ms(void);

/* Seconds since the epoch (CLOCK_REALTIME). */
int64_t hub_wall_s(void);

#endif
