/*
 * main.c - wires the hub together and runs the one event loop; with
 * HUB_WORKERS > 1 the supervisor (supervisor.c) runs it in each worker.
 */
#include "ackcheck.h"
#include "acks.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "fallback.h"
#include "http.h"
#include "hub.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "outbox.h"
#include "peer.h"
#include "purge.h"
#include "replay.h"
#include "router.h"
#include "schema.h"
#include "session.h"
#include "sio.h"
#include "soon.h"
#include "supervisor.h"
#include "tenant.h"
#include "tls.h"
#include "workers.h"
#include "ws.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
/* The database's schema hub is not this binary's (schema.c): stop, exit 2. */
static int schema_refused;
/* The database's schema hub has been found to be this binary's. */
static int schema_ok;
/* SIGHUP came: reload the TLS certificate at the next loop turn. */
static volatile sig_atomic_t reload_asked;
static struct lws_context *loop_ctx;
/* The libev loop lws runs on (epoll); main drives it one iteration at a time. */
static struct ev_loop *ev_loop_main;
/* The service manager has been told READY=1 (a lone hub; notify.h). */
static int announced;
/* Turns the loop at half the watchdog interval (notify.h), so a loop that
 * is alive pings even when nothing else happens; runs only with a watchdog. */
static ev_timer watchdog_tick;

/*
 * One pass of the loop: waits for readiness or a timer, runs the
 * callbacks. Then the hub is ready once it listens and knows its outbox
 * cursor: a lone hub says so to the service manager, a worker in its slot
 * (with the heartbeat the supervisor watches).
 */
static void
run_once(struct hub *hub)
{
    ev_run(ev_loop_main, EVRUN_ONCE);
    int ready = hub->listener && hub->cursor_known;
    if (ready && !announced && !hub->workers) {
        notify_send("READY=1\nSTATUS=listening, outbox cursor known");
        announced = 1;
    }
    workers_publish(hub, ready);
}

/* A lone hub pings the watchdog from its loop; a worker's pass has already
 * left its heartbeat in its slot by then (run_once). */
static void
on_watchdog_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    const struct hub *hub = t->data;
    if (!hub->workers)
        notify_send("WATCHDOG=1");
}

static void
on_signal(int sig)
{
    interrupted = sig;
    if (loop_ctx)
        lws_cancel_service(loop_ctx);
}

static void
on_sighup(int sig)
{
    reload_asked = 1;
    if (loop_ctx)
        lws_cancel_service(loop_ctx);
}

/* SIGHUP: the certificate and key files are read again (tls.c); without
 * TLS there is nothing to reload. Connections stay open either way. */
static void
reload(struct hub *hub)
{
    reload_asked = 0;
    if (!hub->tls) {
        log_info("main", "SIGHUP: nothing to reload (no HUB_TLS_CERT_FILE)");
        return;
    }
    tls_reload(hub->tls, hub->cfg->tls_cert_file, hub->cfg->tls_key_file);
}

static void
on_drain_tick(lws_sorted_usec_list_t *sul)
{
    /* Only wakes the loop so the deadline is looked at. */
}

/*
 * Connections a drain closes per loop turn. lws 4.1 gives every WebSocket
 * it closes a close-handshake timer, inserted into one list sorted by
 * time: closing 16,000 at once walks that list 16,000 times over (seconds
 * of CPU, the loop stuck meanwhile). In batches, the clients' answers come
 * back between turns and the list stays short.
 */
#define DRAIN_BATCH 256

/* Closes with 1001 up to DRAIN_BATCH connections not yet closing; returns
 * how many it closed. */
static size_t
drain_some(struct hub *hub)
{
    size_t n = 0;
    for (struct conn *c = hub->conns; c && n < DRAIN_BATCH; c = c->next) {
        if (c->state == CONN_CLOSING)
            continue;
        conn_close(c, 1001, "server shutting down");
        n++;
    }
    return n;
}

/*
 * Graceful stop: refuse new connections, close every open one with 1001
 * once its queued frames are written, and keep serving until all are gone
 * or HUB_SHUTDOWN_TIMEOUT_MS has passed.
 */
static void
drain(struct hub *hub)
{
    if (interrupted)
        log_info("main", "stopping (signal %d): closing %zu connections with 1001",
                 (int)interrupted, hub->n_conns);
    else
        log_info("main", "stopping: closing %zu connections with 1001", hub->n_conns);
    hub->draining = 1;
    if (!hub->workers)
        notify_send("STOPPING=1");
    listener_close(hub->listener); /* new connections are refused from here */
    hub->listener = NULL;
    int64_t deadline = hub_now_ms() + hub->cfg->shutdown_timeout_ms;
    lws_sorted_usec_list_t tick;
    memset(&tick, 0, sizeof(tick));
    int all_closing = 0;
    while (hub->n_conns && hub_now_ms() < deadline) {
        if (!all_closing)
            all_closing = drain_some(hub) < DRAIN_BATCH;
        lws_sul_schedule(hub->ctx, 0, &tick, on_drain_tick, all_closing ? 50 * 1000 : 1000);
        run_once(hub);
    }
    /* Acks received up to now are written before the process ends. */
    while ((acks_flush(hub->acks) | acks_flush(hub->sent) || acks_pending(hub->acks) ||
            acks_pending(hub->sent)) &&
           db_is_up(hub->work_db) && hub_now_ms() < deadline) {
        lws_sul_schedule(hub->ctx, 0, &tick, on_drain_tick, 50 * 1000);
        run_once(hub);
    }
    lws_sul_cancel(&tick);
    if (hub->n_conns)
        log_warn("main", "%zu connections still open at the shutdown deadline", hub->n_conns);
    if (acks_pending(hub->acks))
        log_warn("main", "%zu acks could not be written before the deadline",
                 acks_pending(hub->acks));
}

/*
 * The schema is this binary's: what reads or writes schema hub on its own
 * starts now (the outbox listener, fallback, retention), so a database
 * without it gets one line from schema.c instead of an error per query.
 */
static void
on_schema_ok(struct hub *hub)
{
    schema_ok = 1;
    db_start(hub->listen_db);
    purge_start(hub->purge);
    fallback_start(hub->fallback);
    tenant_db_up(hub->tenants);
}

static void
on_schema_refused(struct hub *hub)
{
    schema_refused = 1;
    lws_cancel_service(hub->ctx);
}

static void
on_work_db_up(struct db *db, void *ud)
{
    struct hub *hub = ud;
    if (!schema_ok) {
        schema_check(hub, on_schema_ok, on_schema_refused);
        return;
    }
    tenant_db_up(hub->tenants);
}

/* The work connection: tenant checks, replays, acks, purges. */
static const struct db_ops work_db_ops = {.on_up = on_work_db_up};

/*
 * Runs the hub until SIGTERM or SIGINT and returns the exit status: the
 * whole process with HUB_WORKERS=1, else worker k of the table w (in a
 * process the supervisor forked, before any library below was set up).
 */
static int
hub_run(const struct hub_config *cfg, struct workers *w, int k)
{
    int rc = 0;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    if (w)
        log_set_worker(k);

    struct hub hub;
    memset(&hub, 0, sizeof(hub));
    hub.cfg = cfg;
    hub.workers = w;
    hub.worker_id = k;

    struct lws_protocols protos[5];
    ws_protocols(protos);
    protos[2] = db_protocol;
    protos[3] = http_engine_protocol;
    memset(&protos[4], 0, sizeof(protos[4]));

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    /* The hub accepts connections itself (listener.c) and lws adopts them. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protos;
    info.user = &hub;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    /* The guard console and the client library, as static files (optional). */
    char console_path[4096], js_path[4096];
    struct lws_http_mount mounts[2];
    memset(mounts, 0, sizeof(mounts));
    if (cfg->console_dir) {
        snprintf(console_path, sizeof(console_path), "%s/console", cfg->console_dir);
        snprintf(js_path, sizeof(js_path), "%s/src", cfg->console_dir);
        mounts[0] = (struct lws_http_mount){.mount_next = &mounts[1],
                                            .mountpoint = "/console",
                                            .mountpoint_len = 8,
                                            .origin = console_path,
                                            .def = "index.html",
                                            .origin_protocol = LWSMPRO_FILE};
        mounts[1] = (struct lws_http_mount){.mountpoint = "/js",
                                            .mountpoint_len = 3,
                                            .origin = js_path,
                                            .origin_protocol = LWSMPRO_FILE};
        info.mounts = mounts;
    }
    /*
     * lws on a libev loop we own: readiness through epoll (lws's built-in
     * loop poll()s every descriptor on each wake-up, which costs O(open
     * connections) per event), and main keeps control of each iteration.
     */
    ev_loop_main = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!ev_loop_main) {
        log_err("main", "cannot create the event loop (epoll)");
        return 1;
    }
    soon_init(ev_loop_main);
    void *foreign_loops[1] = {ev_loop_main};
    info.foreign_loops = foreign_loops;
    info.options |= LWS_SERVER_OPTION_LIBEV;
    /*
     * No lws "validity" timer per connection: lws keeps all timers in one
     * sorted list, and arming one per WebSocket at +300 s makes every
     * handshake walk the whole list (O(n^2) to connect n clients). Clients
     * send their own pings; vanished peers are found by TCP keepalive.
     */
    static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                               .secs_since_valid_hangup = 0};
    info.retry_and_idle_policy = &no_validity;
    info.fd_limit_per_thread = 0;
    info.timeout_secs = 30;
    if (cfg->tls_cert_file) {
        /* wss:// and https:// on the one port: lws makes the vhost's
         * SSL_CTX from these files (the chain included) and hands it to
         * ws.c, which sets its options and keeps it for reloads. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert_file;
        info.ssl_private_key_filepath = cfg->tls_key_file;
        /* HTTP/1.1 only: lws would offer h2 too, and a WebSocket carried in
         * an HTTP/2 stream (RFC 8441) is framed differently from what
         * conn.c writes and wsrx.c follows. */
        info.alpn = "http/1.1";
    }
    hub.ctx = lws_create_context(&info);
    if (!hub.ctx) {
        log_err("main", "cannot start libwebsockets (is its libev plugin installed?)");
        soon_init(NULL);
        ev_loop_destroy(ev_loop_main);
        return 1;
    }
    hub.vh = lws_get_vhost_by_name(hub.ctx, "default");
    loop_ctx = hub.ctx;
    if (cfg->tls_cert_file && !hub.tls) {
        log_err("main", "TLS was asked for (HUB_TLS_CERT_FILE) but the server context is missing");
        rc = 1;
        goto out;
    }
    if (cfg->max_conns_per_ip || cfg->handshakes_per_ip_s) {
        struct peer_limits lim = {cfg->max_conns_per_ip, cfg->handshakes_per_ip_s,
                                  cfg->handshake_burst, (size_t)cfg->max_tracked_ips};
        hub.peers = peer_table_new(&lim);
        if (!hub.peers) {
            log_err("main", "out of memory");
            rc = 1;
            goto out;
        }
    }
    hub.listener =
        listener_open(&hub, ev_loop_main, cfg->bind, cfg->port, cfg->tcp_keepalive_s, w != NULL, 0);
    if (!hub.listener) {
        rc = 1;
        goto out;
    }
    if (cfg->internal_port) {
        /* /healthz and /metrics on a port of their own, plain HTTP
         * whatever the public one speaks; ws.c never upgrades its
         * connections and web.c serves only those two pages on it. */
        hub.internal = listener_open(&hub, ev_loop_main, cfg->internal_bind, cfg->internal_port, 0,
                                     w != NULL, 1);
        if (!hub.internal) {
            log_err("main", "cannot serve /healthz and /metrics on %s:%d", cfg->internal_bind,
                    cfg->internal_port);
            rc = 1;
            goto out;
        }
    }

    rc = fallback_new(&hub, &hub.fallback);
    if (rc) {
        if (rc < 0)
            log_err("main", "out of memory");
        rc = rc < 0 ? 1 : 2;
        goto out;
    }
    hub.listen_db = db_new(hub.ctx, hub.vh, cfg->database_url, "listener", &outbox_db_ops, &hub,
                           cfg->db_retry_max_ms);
    hub.work_db = db_new(hub.ctx, hub.vh, cfg->database_url, "worker", &work_db_ops, &hub,
                         cfg->db_retry_max_ms);
    hub.acks = acks_new(&hub, "hub.record_acks");
    hub.sent = acks_new(&hub, "hub.record_sent");
    /* The event path, top down: the outbox reader hands rows to the router,
     * which writes to connections (conn.c); a connection calls back up only
     * through its feed (replay.c), and the router through unbusy. */
    hub.outbox = outbox_new(&hub);
    hub.router = router_new(&hub, outbox_resume);
    hub.feed = &replay_feed;
    hub.sessions = session_init(&hub, sio_tick); /* Socket.IO's pings ride on the sweep */
    hub.tenants = tenant_checks_new(&hub, session_tenant_verdict);
    hub.ackcheck = ackcheck_new(&hub);
    hub.purge = purge_new(&hub);
    if (!hub.listen_db || !hub.work_db || !hub.acks || !hub.sent || !hub.outbox || !hub.router ||
        !hub.sessions || !hub.tenants || !hub.ackcheck || !hub.purge) {
        log_err("main", "out of memory");
        rc = 1;
        goto out;
    }
    /* The listener, purge and fallback start once the work connection
     * has found the schema to be this binary's (on_schema_ok). */
    db_start(hub.work_db);
    acks_start(hub.acks);
    acks_start(hub.sent);
    session_start(hub.sessions);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_sighup);
    if (w)
        log_info("main", "armonia-hub worker %d listening on %s:%d%s", k, cfg->bind, cfg->port,
                 hub.tls ? " (TLS)" : "");
    else
        log_info("main", "armonia-hub listening on %s:%d%s", cfg->bind, cfg->port,
                 hub.tls ? " (TLS)" : "");

    if (notify_watchdog_ms() > 0) {
        double every = (double)notify_watchdog_ms() / 2000.0;
        ev_timer_init(&watchdog_tick, on_watchdog_tick, every, every);
        watchdog_tick.data = &hub;
        ev_timer_start(ev_loop_main, &watchdog_tick);
    }

    while (!interrupted && !schema_refused) {
        run_once(&hub);
        if (reload_asked)
            reload(&hub);
    }
    drain(&hub);
    if (schema_refused)
        rc = 2;

out:
    /* Timers and database handles go while the context (which owns their
     * sockets and timer lists) still exists; pending callbacks get NULL. */
    listener_close(hub.listener);
    hub.listener = NULL;
    listener_close(hub.internal);
    hub.internal = NULL;
    purge_stop(hub.purge);
    outbox_stop(&hub);
    session_stop(hub.sessions);
    fallback_free(hub.fallback);
    hub.fallback = NULL;
    db_free(hub.listen_db);
    db_free(hub.work_db);
    hub.listen_db = hub.work_db = NULL;
    router_free(hub.router);
    hub.router = NULL;
    outbox_free(hub.outbox);
    tenant_checks_free(hub.tenants);
    ackcheck_free(hub.ackcheck);
    purge_free(hub.purge);
    session_free(hub.sessions);
    acks_free(hub.acks);
    acks_free(hub.sent);
    lws_sul_cancel(&hub.closing_sul);
    lws_context_destroy(hub.ctx);
    loop_ctx = NULL;
    ev_timer_stop(ev_loop_main, &watchdog_tick);
    soon_init(NULL);
    ev_loop_destroy(ev_loop_main);
    reg_free(&hub.reg);
    peer_table_free(hub.peers); /* after the context: its connections' ends release slots */
    return rc;
}

static int
run_worker(int k, struct workers *w, void *cfg)
{
    return hub_run(cfg, w, k);
}

/*
 * armonia-hub migrate [--status] [--database-url URL]: applies the steps of
 * schema hub the database lacks (schema.h), connecting to --database-url or
 * else DATABASE_URL, as whatever role that names (the schema's owner, not
 * the hub's restricted role). Nothing else of the configuration is read.
 */
static int
migrate_main(int argc, char **argv)
{
    const char *url = getenv("DATABASE_URL");
    int status_only = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--status")) {
            status_only = 1;
        } else if (!strcmp(argv[i], "--database-url") && i + 1 < argc) {
            url = argv[++i];
        } else if (!strncmp(argv[i], "--database-url=", 15)) {
            url = argv[i] + 15;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: armonia-hub migrate [--status] [--database-url URL]\n"
                   "Applies the steps of schema hub that the database (DATABASE_URL, or\n"
                   "--database-url) lacks, each in its own transaction, and records them in\n"
                   "hub.schema_migrations. Run it as the schema's owner. --status prints each\n"
                   "step as applied or pending and changes nothing.\n"
                   "Exit status: 0 done or up to date, 1 the database failed, 2 refused (the\n"
                   "database is ahead of this binary or a step's text differs), 3 --status\n"
                   "found steps pending.\n");
            return 0;
        } else {
            fprintf(stderr, "armonia-hub migrate: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!url || !*url) {
        fprintf(stderr, "armonia-hub migrate: DATABASE_URL is not set (or pass --database-url)\n");
        return 2;
    }
    return schema_migrate(url, status_only);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "migrate"))
        return migrate_main(argc, argv);
    struct hub_config cfg;
    int rc = config_load(&cfg, argc, argv);
    if (rc) {
        config_free(&cfg);
        return rc == 1 ? 0 : 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    log_set_format((enum log_format)cfg.log_format);
    log_route_lws();
    notify_init();
    if (cfg.workers > 1)
        rc = supervisor_run(cfg.workers, cfg.shutdown_timeout_ms, run_worker, &cfg);
    else
        rc = hub_run(&cfg, NULL, 0);
    config_free(&cfg);
    return rc;
}
