/*
 * web.c - /healthz (200 while the outbox listener is up, else 503),
 * /metrics (Prometheus text format), and 404 for everything else.
 */
#include "web.h"
#include "conn.h"
#include "db.h"
#include "hub.h"
#include "outbox.h"
#include "peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders the metrics page into a new string (caller frees). */
static char *
metrics_text(struct hub *hub, size_t *len)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    const struct hub_metrics *m = &hub->m;
#define COUNTER(name, help, v)                                                                     \
    fprintf(f,                                                                                     \
            "# HELP armonia_" name " " help "\n# TYPE armonia_" name " counter\narmonia_" name     \
            " %llu\n",                                                                             \
            (unsigned long long)(v))
#define GAUGE(name, help, v)                                                                       \
    fprintf(f,                                                                                     \
            "# HELP armonia_" name " " help "\n# TYPE armonia_" name " gauge\narmonia_" name       \
            " %lld\n",                                                                             \
            (long long)(v))
    GAUGE("connections", "Open WebSocket connections.", hub->n_conns);
    GAUGE("tenants", "Tenants the hub has seen.", hub->reg.n_tenants);
    GAUGE("rooms", "Rooms with at least one member.", hub->reg.n_rooms);
    GAUGE("db_listener_up", "1 while the outbox listener is connected and listening.",
          hub->listening);
    GAUGE("outbox_cursor", "Newest outbox seq routed.", hub->cursor);
    GAUGE("outbox_quiet",
          "1 while the hub reads the outbox on a timer instead of on notifications.",
          outbox_is_quiet(hub->outbox));
    COUNTER("connections_total", "WebSocket connections accepted.", m->connections_total);
    COUNTER("auth_failures_total", "Authentication failures.", m->auth_failures);
    COUNTER("events_total", "Outbox events routed.", m->events_read);
    COUNTER("outbox_reads_total", "Page reads of the outbox (one query each).", m->outbox_reads);
    COUNTER("outbox_wakeups_total", "Notifications received on the outbox channel.",
            m->outbox_wakeups);
    COUNTER("outbox_quiet_total",
            "Times the hub fell behind and stopped taking notifications (HUB_OUTBOX_QUIET_JOBS).",
            m->outbox_quiet);
    COUNTER("frames_queued_total", "Event frames queued on connections.", m->frames_queued);
    COUNTER("frames_sent_total", "Frames written to connections.", m->frames_sent);
    COUNTER("socket_writes_total", "Socket writes (system calls) that carried frames.",
            m->socket_writes);
    COUNTER("frame_runs_total",
            "Writes that carried several queued events to a connection at once.", m->frame_runs);
    COUNTER("bytes_sent_total", "Payload bytes written to connections.", m->bytes_sent);
    COUNTER("acks_total", "Acks received.", m->acks);
    COUNTER("slow_consumers_total", "Connections closed with 4008.", m->slow_consumers);
    COUNTER("close_timeouts_total",
            "Closing connections dropped because their close had not gone out in time.",
            m->close_timeouts);
    COUNTER("rate_limited_total", "Connections closed with 4029.", m->rate_limited);
    COUNTER("bad_frames_total", "Malformed or unknown inbound frames.", m->bad_frames);
    COUNTER("db_reconnects_total", "Times the outbox listener was lost.", m->db_reconnects);
    COUNTER("catchups_total", "Connections that fell behind a burst and caught up from the outbox.",
            m->catchups);
    COUNTER("events_purged_total", "Outbox events deleted past retention.", m->events_purged);
    COUNTER("events_undeliverable_total",
            "Outbox rows delivered to nobody: rooms or data malformed (written around hub.emit()).",
            m->events_undeliverable);
    COUNTER("outbox_read_failures_total",
            "Listener queries (LISTEN, newest seq, page read) that failed and were retried.",
            m->outbox_failures);
    COUNTER("outbox_safety_reads_total",
            "Outbox reads made because HUB_OUTBOX_SAFETY_MS passed without one.",
            m->outbox_safety_reads);
    COUNTER("ack_lookups_total",
            "Acks for events not sent on their connection, checked in the database.",
            m->ack_lookups);
    COUNTER("ack_lookup_queries_total", "Queries those checks took (a batch of acks each).",
            m->ack_lookup_queries);
    COUNTER("ack_lookups_refused_total",
            "Acks refused with rate_limited (HUB_ACK_LOOKUP_RATE, HUB_ACK_LOOKUPS_MAX) instead of "
            "a check.",
            m->ack_lookups_refused);
    fprintf(f,
            "# HELP armonia_upgrades_refused_total WebSocket upgrades refused before the "
            "handshake, by reason (HUB_ALLOWED_ORIGINS, HUB_MAX_CONNS_PER_IP, "
            "HUB_MAX_HANDSHAKES_PER_IP_S).\n# TYPE armonia_upgrades_refused_total counter\n"
            "armonia_upgrades_refused_total{reason=\"origin\"} %llu\n"
            "armonia_upgrades_refused_total{reason=\"conns_per_ip\"} %llu\n"
            "armonia_upgrades_refused_total{reason=\"handshake_rate\"} %llu\n",
            (unsigned long long)m->refused_origin, (unsigned long long)m->refused_conns_per_ip,
            (unsigned long long)m->refused_handshakes);
    COUNTER("ip_table_full_total",
            "Upgrades let in uncounted because HUB_MAX_TRACKED_IPS addresses were tracked.",
            m->ip_table_full);
    GAUGE("tracked_ips", "Client addresses the per-address caps track now.",
          peer_table_size(hub->peers));
#undef COUNTER
#undef GAUGE
    if (fclose(f)) {
        free(out);
        return NULL;
    }
    *len = size;
    return out;
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
    if (!strcmp(uri, "/healthz")) {
        const char *body =
            hub->listening ? "{\"status\":\"ok\"}"
                           : "{\"status\":\"unavailable\",\"reason\":\"database listener down\"}";
        return respond(c, hub->listening ? 200 : 503, "application/json", strdup(body),
                       strlen(body));
    }
    if (!strcmp(uri, "/metrics")) {
        size_t len = 0;
        char *body = metrics_text(hub, &len);
        if (!body)
            return lws_return_http_status(c->wsi, 500, NULL) || 1;
        return respond(c, 200, "text/plain; version=0.0.4", body, len);
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
