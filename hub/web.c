/*
 * web.c - /healthz (200 while the outbox listener is up, else 503),
 * /metrics (Prometheus text format), and 404 for everything else; with
 * HUB_INTERNAL_PORT both only on that port (404 on the public one).
 * With several workers (workers.h) either page speaks for the whole hub,
 * whichever worker the kernel handed the request to.
 */
#include "web.h"
#include "conn.h"
#include "db.h"
#include "hub.h"
#include "listener.h"
#include "outbox.h"
#include "peer.h"
#include "sio.h"
#include "workers.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every worker's stats while one page is rendered (the loop is one thread;
 * about 20 KiB, too much for the stack of a callback). */
static struct worker_stats snapshot[WORKERS_MAX];

/* How the unlabelled value of a gauge sums up several workers. */
enum agg { AGG_SUM, AGG_MIN, AGG_MAX };

/* A page being rendered: every worker's stats (n of them; one when the hub
 * runs alone) and the counters of workers that have exited. */
struct page {
    FILE *f;
    const struct worker_stats *w;
    int n;
    const struct hub_metrics *retired; /* zero when the hub runs alone */
};

/* A counter's offset in struct worker_stats is also its offset in the
 * retired workers' struct hub_metrics. */
_Static_assert(offsetof(struct worker_stats, m) == 0, "the counters come first");

/* The 64-bit field at off in one worker's stats or in the retired counters. */
static uint64_t
field_at(const void *base, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

/*
 * The value lines of one series: the hub's total (counters: the sum, with
 * the retired workers' share; gauges: as agg says), then, with several
 * workers, one line per worker labelled worker="k". labels: the series'
 * other labels ("reason=\"origin\"") or "".
 */
static void
put_values(struct page *p, const char *name, const char *labels, size_t off, int counter,
           enum agg agg)
{
    uint64_t total = 0;
    int64_t g = 0;
    if (counter)
        total = field_at(p->retired, off);
    for (int k = 0; k < p->n; k++) {
        uint64_t v = field_at(&p->w[k], off);
        total += v;
        if (k == 0 || (agg == AGG_MIN && (int64_t)v < g) || (agg == AGG_MAX && (int64_t)v > g))
            g = (int64_t)v;
    }
    if (!counter && agg != AGG_SUM)
        total = (uint64_t)g;
    const char *sep = *labels ? "," : "";
    if (counter)
        fprintf(p->f, "armonia_%s%s%s%s %llu\n", name, *labels ? "{" : "", labels,
                *labels ? "}" : "", (unsigned long long)total);
    else
        fprintf(p->f, "armonia_%s%s%s%s %lld\n", name, *labels ? "{" : "", labels,
                *labels ? "}" : "", (long long)total);
    if (p->n < 2)
        return;
    for (int k = 0; k < p->n; k++) {
        uint64_t v = field_at(&p->w[k], off);
        if (counter)
            fprintf(p->f, "armonia_%s{%s%sworker=\"%d\"} %llu\n", name, labels, sep, k,
                    (unsigned long long)v);
        else
            fprintf(p->f, "armonia_%s{%s%sworker=\"%d\"} %lld\n", name, labels, sep, k,
                    (long long)(int64_t)v);
    }
}

/* One unlabelled series with its HELP and TYPE lines. */
static void
put_series(struct page *p, const char *name, const char *help, size_t off, int counter,
           enum agg agg)
{
    fprintf(p->f, "# HELP armonia_%s %s\n# TYPE armonia_%s %s\n", name, help, name,
            counter ? "counter" : "gauge");
    put_values(p, name, "", off, counter, agg);
}

/* The HELP and TYPE lines of a family whose series put_values() writes. */
static void
put_family(struct page *p, const char *name, const char *type, const char *help)
{
    fprintf(p->f, "# HELP armonia_%s %s\n# TYPE armonia_%s %s\n", name, help, name, type);
}

/*
 * A histogram (struct hist at off in struct hub_metrics) summed over every
 * worker, the exited ones included; labels as for put_values(). No
 * per-worker series: a worker's share of a latency says little, and
 * fifteen lines per worker would outweigh the rest of the page.
 */
static void
put_hist(struct page *p, const char *name, const char *labels, size_t off)
{
    /* off is also the offset in struct worker_stats: its counters come first. */
    uint64_t b[HIST_BOUNDS + 2 + 1];
    for (int i = 0; i < HIST_BOUNDS + 3; i++) { /* the buckets, then sum_us and count */
        size_t o = off + (size_t)i * sizeof(uint64_t);
        b[i] = field_at(p->retired, o);
        for (int k = 0; k < p->n; k++)
            b[i] += field_at(&p->w[k], o);
    }
    _Static_assert(offsetof(struct hist, sum_us) == (HIST_BOUNDS + 1) * sizeof(uint64_t) &&
                       offsetof(struct hist, count) == (HIST_BOUNDS + 2) * sizeof(uint64_t),
                   "struct hist is its buckets, sum_us and count, in that order");
    uint64_t sum_us = b[HIST_BOUNDS + 1], count = b[HIST_BOUNDS + 2];
    const char *sep = *labels ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i < HIST_BOUNDS; i++) {
        cum += b[i];
        fprintf(p->f, "armonia_%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                hist_bounds_s[i], (unsigned long long)cum);
    }
    fprintf(p->f, "armonia_%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
            (unsigned long long)(cum + b[HIST_BOUNDS]));
    fprintf(p->f, "armonia_%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels,
            *labels ? "}" : "", (double)sum_us / 1e6);
    fprintf(p->f, "armonia_%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
            *labels ? "}" : "", (unsigned long long)count);
}

/* The provider behind each fallback channel (enum channel order). */
static const char *const channel_names[METRIC_CHANNELS] = {"push", "sms", "email"};
static const char *const provider_names[METRIC_CHANNELS] = {"fcm", "twilio", "smtp"};

/* The families of issue-level operations: refusals, closes, replays,
 * fallback and latency. */
static void
put_operations(struct page *p)
{
    char labels[96];
#define M(field) (offsetof(struct worker_stats, m) + offsetof(struct hub_metrics, field))
    put_family(p, "refusals_total", "counter",
               "Requests the hub refused, by cause: upgrades refused before the handshake "
               "(origin, conns_per_ip, handshake_rate) and frames answered with an error (its "
               "code).");
    put_values(p, "refusals_total", "cause=\"origin\"", M(refused_origin), 1, AGG_SUM);
    put_values(p, "refusals_total", "cause=\"conns_per_ip\"", M(refused_conns_per_ip), 1, AGG_SUM);
    put_values(p, "refusals_total", "cause=\"handshake_rate\"", M(refused_handshakes), 1, AGG_SUM);
    for (int i = 0; i < METRIC_ERRORS; i++) {
        snprintf(labels, sizeof(labels), "cause=\"%s\"", metric_error_codes[i]);
        put_values(p, "refusals_total", labels, M(errors) + (size_t)i * sizeof(uint64_t), 1,
                   AGG_SUM);
    }

    put_family(p, "closes_total", "counter",
               "WebSocket connections ended, by who closed (hub or client) and close code (none: "
               "no close frame, the socket failed or ended; other: a code not listed).");
    for (int by = 0; by < 2; by++)
        for (int i = 0; i < METRIC_CLOSE_CODES; i++) {
            char code[16];
            if (i < METRIC_CLOSE_CODES - 2)
                snprintf(code, sizeof(code), "%u", (unsigned)metric_close_codes[i]);
            else
                snprintf(code, sizeof(code), "%s", i == METRIC_CLOSE_CODES - 2 ? "other" : "none");
            snprintf(labels, sizeof(labels), "by=\"%s\",code=\"%s\"", by ? "client" : "hub", code);
            put_values(p, "closes_total", labels,
                       M(closes) + ((size_t)by * METRIC_CLOSE_CODES + (size_t)i) * sizeof(uint64_t),
                       1, AGG_SUM);
        }

    put_series(p, "replays_total", "Resumes (since=) served from the outbox.", M(replays), 1,
               AGG_SUM);
    put_series(p, "replayed_events_total", "Events sent by those replays.", M(replayed_events), 1,
               AGG_SUM);
    put_family(p, "resume_gaps_total", "counter",
               "resume_gap errors sent: the client's since was past retention (events lost to it) "
               "or beyond the newest seq (another database, a restored backup).");
    put_values(p, "resume_gaps_total", "why=\"retention\"", M(gaps_retention), 1, AGG_SUM);
    put_values(p, "resume_gaps_total", "why=\"ahead\"", M(gaps_ahead), 1, AGG_SUM);

    put_family(p, "fallback_deliveries_total", "counter",
               "Fallback deliveries settled, by channel and outcome (sent; failed for good; retry "
               "scheduled; skipped: no provider, unusable address or circuit open; deferred: a "
               "critical row waiting for an open circuit).");
    for (int ch = 0; ch < METRIC_CHANNELS; ch++)
        for (int o = 0; o < METRIC_FALLBACK_OUTCOMES; o++) {
            snprintf(labels, sizeof(labels), "channel=\"%s\",outcome=\"%s\"", channel_names[ch],
                     metric_fallback_outcomes[o]);
            put_values(p, "fallback_deliveries_total", labels,
                       M(fallback) +
                           ((size_t)ch * METRIC_FALLBACK_OUTCOMES + (size_t)o) * sizeof(uint64_t),
                       1, AGG_SUM);
        }

    put_family(p, "provider_circuit_state", "gauge",
               "Circuit breaker of each configured provider: 0 closed, 1 open (requests refused), "
               "2 half-open (one probe let through); with several workers the hub's line is the "
               "worst of theirs.");
    for (int ch = 0; ch < METRIC_CHANNELS; ch++) {
        if (p->w[0].circuit[ch] < 0)
            continue; /* not configured (the same in every worker) */
        snprintf(labels, sizeof(labels), "provider=\"%s\",channel=\"%s\"", provider_names[ch],
                 channel_names[ch]);
        put_values(p, "provider_circuit_state", labels,
                   offsetof(struct worker_stats, circuit) + (size_t)ch * sizeof(int64_t), 0,
                   AGG_MAX);
    }

    put_family(p, "provider_request_duration_seconds", "histogram",
               "Time from starting a provider request (FCM, Twilio, SMTP) to its answer, "
               "timeouts and failures included.");
    for (int ch = 0; ch < METRIC_CHANNELS; ch++) {
        snprintf(labels, sizeof(labels), "provider=\"%s\"", provider_names[ch]);
        put_hist(p, "provider_request_duration_seconds", labels,
                 offsetof(struct hub_metrics, provider_latency) + (size_t)ch * sizeof(struct hist));
    }
    put_family(p, "delivery_latency_seconds", "histogram",
               "Time from an event's commit (hub.outbox.committed_at, the database's clock) until "
               "the hub had handed its frames to every recipient's socket (the hub's clock), for "
               "live events with at least one recipient.");
    put_hist(p, "delivery_latency_seconds", "", offsetof(struct hub_metrics, delivery_latency));
#undef M
}

/* The series only a hub of several workers has: each worker's state as
 * the supervisor sees it. */
static void
put_worker_series(struct page *p, const struct workers *w)
{
    FILE *f = p->f;
    fprintf(f,
            "# HELP armonia_workers Worker processes configured (HUB_WORKERS).\n"
            "# TYPE armonia_workers gauge\narmonia_workers %d\n",
            w->n);
    fprintf(f, "# HELP armonia_worker_up 1 while the worker runs, accepts connections and reads "
               "the outbox.\n# TYPE armonia_worker_up gauge\n");
    for (int k = 0; k < p->n; k++)
        fprintf(f, "armonia_worker_up{worker=\"%d\"} %d\n", k,
                w->slot[k].pid && p->w[k].accepting && p->w[k].db_listening);
    fprintf(f, "# HELP armonia_worker_restarts_total Times the supervisor restarted the worker "
               "after it died.\n# TYPE armonia_worker_restarts_total counter\n");
    for (int k = 0; k < p->n; k++)
        fprintf(f, "armonia_worker_restarts_total{worker=\"%d\"} %lld\n", k,
                (long long)w->slot[k].restarts);
    fprintf(f, "# HELP armonia_worker_pid Process id of the worker (0 while none runs).\n"
               "# TYPE armonia_worker_pid gauge\n");
    for (int k = 0; k < p->n; k++)
        fprintf(f, "armonia_worker_pid{worker=\"%d\"} %lld\n", k, (long long)w->slot[k].pid);
}

/*
 * Renders the metrics page into a new string (caller frees). With several
 * workers every series has the hub's total first (the same name and meaning
 * as for one process) and then a line per worker labelled worker="k".
 */
static char *
metrics_text(struct hub *hub, size_t *len)
{
    struct worker_stats *stats = snapshot;
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    struct hub_metrics retired;
    int n = workers_snapshot(hub, stats, &retired);
    struct page pg = {f, stats, n, &retired};
    struct page *p = &pg;
#define M(field) (offsetof(struct worker_stats, m) + offsetof(struct hub_metrics, field))
#define G(field) offsetof(struct worker_stats, field)
#define COUNTER(name, help, field) put_series(p, name, help, M(field), 1, AGG_SUM)
#define GAUGE(name, help, field, agg) put_series(p, name, help, G(field), 0, agg)
    GAUGE("connections", "Open WebSocket connections.", connections, AGG_SUM);
    GAUGE("tenants", "Tenants the hub has seen.", tenants, AGG_SUM);
    GAUGE("rooms", "Rooms with at least one member.", rooms, AGG_SUM);
    GAUGE("db_listener_up", "1 while the outbox listener is connected and listening.", db_listening,
          AGG_MIN);
    GAUGE("outbox_cursor", "Newest outbox seq routed.", cursor, AGG_MIN);
    GAUGE("outbox_quiet",
          "1 while the hub reads the outbox on a timer instead of on notifications.", quiet,
          AGG_MAX);
    COUNTER("connections_total", "WebSocket connections accepted.", connections_total);
    COUNTER("auth_failures_total", "Authentication failures.", auth_failures);
    COUNTER("events_total", "Outbox events routed.", events_read);
    COUNTER("outbox_reads_total", "Page reads of the outbox (one query each).", outbox_reads);
    COUNTER("outbox_wakeups_total", "Notifications received on the outbox channel.",
            outbox_wakeups);
    COUNTER("outbox_quiet_total",
            "Times the hub fell behind and stopped taking notifications (HUB_OUTBOX_QUIET_JOBS).",
            outbox_quiet);
    COUNTER("frames_queued_total", "Event frames queued on connections.", frames_queued);
    COUNTER("frames_sent_total", "Frames written to connections.", frames_sent);
    COUNTER("socket_writes_total", "Socket writes (system calls) that carried frames.",
            socket_writes);
    COUNTER("frame_runs_total",
            "Writes that carried several queued events to a connection at once.", frame_runs);
    COUNTER("bytes_sent_total", "Payload bytes written to connections.", bytes_sent);
    COUNTER("acks_total", "Acks received.", acks);
    COUNTER("slow_consumers_total", "Connections closed with 4008.", slow_consumers);
    COUNTER("close_timeouts_total",
            "Closing connections dropped because their close had not gone out in time.",
            close_timeouts);
    COUNTER("rate_limited_total", "Connections closed with 4029.", rate_limited);
    COUNTER("bad_frames_total", "Malformed or unknown inbound frames.", bad_frames);
    COUNTER("db_reconnects_total", "Times the outbox listener was lost.", db_reconnects);
    COUNTER("catchups_total", "Connections that fell behind a burst and caught up from the outbox.",
            catchups);
    COUNTER("events_purged_total", "Outbox events deleted past retention.", events_purged);
    COUNTER("deliveries_purged_total",
            "Delivery log rows (hub.deliveries) deleted past HUB_DELIVERY_RETENTION_S.",
            deliveries_purged);
    COUNTER("unregistered_tokens_total",
            "Pushes FCM refused because the device token is no longer registered (each token is "
            "kept in hub.unregistered_tokens for the backend to clean).",
            unregistered_tokens);
    COUNTER("events_undeliverable_total",
            "Outbox rows delivered to nobody: rooms or data malformed (written around hub.emit()).",
            events_undeliverable);
    COUNTER("outbox_read_failures_total",
            "Listener queries (LISTEN, newest seq, page read) that failed and were retried.",
            outbox_failures);
    COUNTER("outbox_safety_reads_total",
            "Outbox reads made because HUB_OUTBOX_SAFETY_MS passed without one.",
            outbox_safety_reads);
    COUNTER("ack_lookups_total",
            "Acks for events not sent on their connection, checked in the database.", ack_lookups);
    COUNTER("ack_lookup_queries_total", "Queries those checks took (a batch of acks each).",
            ack_lookup_queries);
    COUNTER("ack_lookups_refused_total",
            "Acks refused with rate_limited (HUB_ACK_LOOKUP_RATE, HUB_ACK_LOOKUPS_MAX) instead of "
            "a check.",
            ack_lookups_refused);
    COUNTER("socketio_connections_total",
            "Socket.IO connections accepted on /socket.io/ (counted in connections_total too).",
            sio_connections);
    COUNTER("socketio_ping_timeouts_total",
            "Socket.IO connections closed because a ping got no pong in HUB_SIO_PING_TIMEOUT_MS.",
            sio_ping_timeouts);
    fprintf(f, "# HELP armonia_upgrades_refused_total WebSocket upgrades refused before the "
               "handshake, by reason (HUB_ALLOWED_ORIGINS, HUB_MAX_CONNS_PER_IP, "
               "HUB_MAX_HANDSHAKES_PER_IP_S).\n# TYPE armonia_upgrades_refused_total counter\n");
    put_values(p, "upgrades_refused_total", "reason=\"origin\"", M(refused_origin), 1, AGG_SUM);
    put_values(p, "upgrades_refused_total", "reason=\"conns_per_ip\"", M(refused_conns_per_ip), 1,
               AGG_SUM);
    put_values(p, "upgrades_refused_total", "reason=\"handshake_rate\"", M(refused_handshakes), 1,
               AGG_SUM);
    COUNTER("ip_table_full_total",
            "Upgrades let in uncounted because HUB_MAX_TRACKED_IPS addresses were tracked.",
            ip_table_full);
    GAUGE("tracked_ips", "Client addresses the per-address caps track now.", tracked_ips, AGG_SUM);
    put_operations(p);
#undef COUNTER
#undef GAUGE
#undef M
#undef G
    if (hub->workers)
        put_worker_series(p, hub->workers);
    if (fclose(f)) {
        free(out);
        return NULL;
    }
    *len = size;
    return out;
}

/* Whether /healthz says 200: the outbox listener is up, and with several
 * workers every one of them accepts and reads the outbox. */
static int
healthy(struct hub *hub)
{
    if (!hub->workers)
        return hub->listening;
    struct worker_stats *stats = snapshot;
    struct hub_metrics retired;
    int n = workers_snapshot(hub, stats, &retired);
    for (int k = 0; k < n; k++)
        if (!hub->workers->slot[k].pid || !stats[k].accepting || !stats[k].db_listening)
            return 0;
    return 1;
}

/* Sends the status line and headers, and keeps body for web_writable(). */
static int
respond(struct conn *c, unsigned status, const char *type, char *body, size_t len)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr);
    if (lws_add_http_common_headers(c->wsi, status, type, len, &p, end) ||
        lws_add_http_header_by_token(c->wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(c->wsi, start, &p, end)) {
        free(body);
        return 1;
    }
    free(c->rx);
    c->rx = (unsigned char *)body;
    c->rx_len = len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int
web_request(struct conn *c, const char *uri)
{
    struct hub *hub = c->hub;
    /* With HUB_INTERNAL_PORT both pages live on the internal vhost only. */
    int here = !hub->cfg->internal_port || listener_is_internal(hub, c->wsi);
    if (here && !strcmp(uri, "/healthz")) {
        int ok = healthy(hub);
        const char *body =
            ok             ? "{\"status\":\"ok\"}"
            : hub->workers ? "{\"status\":\"unavailable\",\"reason\":\"a worker is not listening\"}"
                           : "{\"status\":\"unavailable\",\"reason\":\"database listener down\"}";
        return respond(c, ok ? 200 : 503, "application/json", strdup(body), strlen(body));
    }
    if (here && !strcmp(uri, "/metrics")) {
        size_t len = 0;
        char *body = metrics_text(hub, &len);
        if (!body)
            return lws_return_http_status(c->wsi, 500, NULL) || 1;
        return respond(c, 200, "text/plain; version=0.0.4", body, len);
    }
    char refusal[320];
    if (sio_is_path(uri)) {
        /* Engine.IO's HTTP long-polling (or a version the hub does not speak). */
        const char *why = sio_refusal(c->wsi, 0, refusal, sizeof(refusal));
        return respond(c, 400, "application/json", strdup(why), strlen(why));
    }
    const char *body = "{\"error\":\"not found\"}";
    return respond(c, 404, "application/json", strdup(body), strlen(body));
}

/*
 * lws closes an HTTP connection only when its writable callback returns a
 * negative value (a positive one is ignored): so -1 both on failure and
 * when lws_http_transaction_completed() says the connection must end
 * (Connection: close, HTTP/1.0). Otherwise such a connection stayed open,
 * holding what it had read, and from then on pipelined requests on other
 * connections got only their first response (seen with lws 4.1.6).
 */
int
web_writable(struct conn *c)
{
    if (!c->rx)
        return 0;
    /* The body goes out in one write; lws buffers whatever the socket cannot take. */
    unsigned char *tmp = malloc(LWS_PRE + c->rx_len + 1);
    if (!tmp)
        return -1;
    memcpy(tmp + LWS_PRE, c->rx, c->rx_len);
    int n = lws_write(c->wsi, tmp + LWS_PRE, c->rx_len, LWS_WRITE_HTTP_FINAL);
    size_t len = c->rx_len;
    free(tmp);
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
    if (n < (int)len)
        return -1;
    return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}
