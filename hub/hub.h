/*
 * hub.h - the one hub object every module reaches through its connections.
 *
 * main.c creates it, wires the lws context, the two database connections
 * and the registry, and runs the loop. Process-wide besides it: soon.c's queue,
 * the logger's level (common/log.c) and session.c's pool of session-id bytes.
 */
#ifndef HUB_HUB_H
#define HUB_HUB_H

#include <stdint.h>
#include <libwebsockets.h>
#include "config.h"
#include "hist.h"
#include "registry.h"

struct db;
struct acks;
struct ackcheck;
struct conn;
struct conn_feed;
struct fallback;
struct listener;
struct outbox;
struct peer_table;
struct purge;
struct router;
struct sessions;
struct tenant_checks;
struct workers;

/* Counters exported on /metrics. */
/* The labels of the metrics that come in families (web.c names them). */
#define METRIC_ERRORS                                                                              \
    7 /* unauthorized, bad_request, forbidden, rate_limited, too_large, internal, other */
#define METRIC_CLOSE_CODES 16      /* the codes of metric_close_codes[], "other", "none" */
#define METRIC_CHANNELS 3          /* push, sms, email (enum channel) */
#define METRIC_FALLBACK_OUTCOMES 5 /* sent, failed, retry, skipped, deferred */

extern const uint16_t metric_close_codes[METRIC_CLOSE_CODES - 2];
extern const char *const metric_error_codes[METRIC_ERRORS];
extern const char *const metric_fallback_outcomes[METRIC_FALLBACK_OUTCOMES];

/* The slot of a close code (0: the connection ended without a close
 * frame), of an error code and of a fallback outcome name. */
unsigned metric_close_slot(unsigned code);
unsigned metric_error_slot(const char *code);
unsigned metric_fallback_slot(const char *outcome);

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
    uint64_t deliveries_purged;     /* hub.deliveries rows past HUB_DELIVERY_RETENTION_S */
    uint64_t unregistered_tokens;   /* pushes FCM refused as UNREGISTERED (fallback.c) */
    uint64_t catchups;              /* connections that fell behind and caught up from the outbox */
    uint64_t events_undeliverable;  /* outbox rows with malformed rooms or data (router.c) */
    uint64_t outbox_failures;       /* listener queries (LISTEN, cursor, page) that failed */
    uint64_t outbox_safety_reads;   /* reads the safety net made (outbox_safety_ms) */
    uint64_t ack_lookups;           /* acks checked against the database (ackcheck.c) */
    uint64_t ack_lookup_queries;    /* queries those checks took (several acks each) */
    uint64_t ack_lookups_refused;   /* acks refused with rate_limited instead of a check */
    uint64_t refused_origin;        /* upgrades refused with 403: Origin not allowed (ws.c) */
    uint64_t refused_conns_per_ip;  /* upgrades refused with 429: HUB_MAX_CONNS_PER_IP */
    uint64_t refused_handshakes;    /* upgrades refused with 429: HUB_MAX_HANDSHAKES_PER_IP_S */
    uint64_t ip_table_full;         /* upgrades let in uncounted: HUB_MAX_TRACKED_IPS reached */
    uint64_t errors[METRIC_ERRORS]; /* error frames sent, by code (metric_error_slot()) */
    uint64_t replays;               /* resumes served from the outbox (replay.c) */
    uint64_t replayed_events;       /* events sent by those replays */
    uint64_t gaps_retention;        /* resume_gap: the client's since was past retention */
    uint64_t gaps_ahead;            /* resume_gap: the client's since was beyond the newest seq */
    uint64_t sio_connections;       /* Socket.IO connections accepted (sio.c), among the above */
    uint64_t sio_ping_timeouts;     /* Socket.IO connections closed for a missing pong */
    /* Connections ended, by who closed (0: the hub, 1: the client) and code
     * (metric_close_slot()). */
    uint64_t closes[2][METRIC_CLOSE_CODES];
    /* Fallback rows settled, by channel (enum channel) and outcome
     * (metric_fallback_slot()). */
    uint64_t fallback[METRIC_CHANNELS][METRIC_FALLBACK_OUTCOMES];
    struct hist provider_latency[METRIC_CHANNELS]; /* request start to answer, per provider */
    struct hist delivery_latency; /* commit of a live event to its frames reaching every socket */
};

/*
 * The wiring: each module's own state is behind its pointer, allocated by
 * its *_new() or *_init() and known only to its file; what is left here is
 * what several modules share.
 */
struct hub {
    const struct hub_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct listener *listener; /* the listening socket (listener.c); NULL while draining */
    /* HUB_INTERNAL_PORT: the listening socket of /healthz and /metrics
     * (plain HTTP, no WebSocket); NULL when those are on the public port. */
    struct listener *internal;
    struct registry reg;  /* tenants, rooms, members (registry.c) */
    struct db *listen_db; /* LISTEN and outbox reading */
    struct db *work_db;   /* tenant checks and other requests */

    /* The live cursor, advanced by the outbox reader, read by replay.c (the
     * hand-over to live) and web.c (/healthz, /metrics). */
    int listening;    /* the outbox can be read (cursor known, last read ok): /healthz ok */
    int64_t cursor;   /* newest outbox seq routed */
    int cursor_known; /* cursor has been read from the database */

    size_t n_conns;     /* open WebSocket connections */
    struct conn *conns; /* all of them (utlist DL list through conn->prev/next) */
    int draining;       /* stopping: no new connections, the open ones closed with 1001 */
    /* Connections closing, in the order of their HUB_CLOSE_TIMEOUT_MS
     * deadlines (all the same length: a FIFO through conn->sul.list, one
     * timer for its head), conn.c's: closing n connections at once (a
     * drain) costs O(n), where a timer each would walk lws's sorted list. */
    lws_dll2_owner_t closing;
    lws_sorted_usec_list_t closing_sul;
    const struct conn_feed *feed; /* what conn.c calls upward (replay.c's replay_feed) */

    struct outbox *outbox;         /* the outbox reader (outbox.c) */
    struct router *router;         /* fan-outs in progress (router.c) */
    struct sessions *sessions;     /* authentication deadlines, the sweep (session.c) */
    struct tenant_checks *tenants; /* tenant verification (tenant.c) */
    struct ackcheck *ackcheck;     /* acks being looked up (ackcheck.c) */
    struct purge *purge;           /* outbox retention (purge.c) */
    struct acks *acks;             /* acks waiting to be written (acks.c) */
    struct acks *sent;             /* "sent" marks waiting to be written */
    struct fallback *fallback;     /* delivery by other channels (fallback.c) */
    struct peer_table *peers;      /* the per-address caps (peer.c); NULL when both are off */
    struct ssl_ctx_st *tls;        /* the vhost's server SSL_CTX (lws's) under HUB_TLS_*, or NULL:
                                    * a certificate reload goes into it (tls.c) */
    struct hub_metrics m;

    /* Several worker processes (HUB_WORKERS > 1): the table they share,
     * mapped by the supervisor before it forked this one (workers.c); NULL
     * when the hub runs as one process. worker_id is this one's slot. */
    struct workers *workers;
    int worker_id;
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t hub_now_ms(void);

/* Microseconds of CLOCK_MONOTONIC. */
int64_t hub_now_us(void);

/* Microseconds since the epoch (CLOCK_REALTIME). */
int64_t hub_wall_us(void);

/* Seconds since the epoch (CLOCK_REALTIME). */
int64_t hub_wall_s(void);

#endif
