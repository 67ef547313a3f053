/*
 * main.c - wires the hub together and runs the one event loop.
 */
#include "config.h"
#include "db.h"
#include "hub.h"
#include "log.h"
#include "outbox.h"
#include "ws.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static struct lws_context *loop_ctx;

static void
on_signal(int sig)
{
    interrupted = sig;
    if (loop_ctx)
        lws_cancel_service(loop_ctx);
}

/* The work connection needs nothing at connect time. */
static const struct db_ops work_db_ops = {0};

int
main(int argc, char **argv)
{
    struct hub_config cfg;
    int rc = config_load(&cfg, argc, argv);
    if (rc) {
        config_free(&cfg);
        return rc == 1 ? 0 : 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    log_route_lws();
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());

    struct hub hub;
    memset(&hub, 0, sizeof(hub));
    hub.cfg = &cfg;

    struct lws_protocols protos[4];
    ws_protocols(protos);
    protos[2] = db_protocol;
    memset(&protos[3], 0, sizeof(protos[3]));

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg.port;
    info.iface = cfg.bind;
    info.protocols = protos;
    info.user = &hub;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * (strchr(cfg.bind, ':') == NULL) |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.fd_limit_per_thread = 0;
    info.timeout_secs = 30;
    hub.ctx = lws_create_context(&info);
    if (!hub.ctx) {
        log_err("main", "cannot listen on %s:%d", cfg.bind, cfg.port);
        config_free(&cfg);
        return 1;
    }
    hub.vh = lws_get_vhost_by_name(hub.ctx, "default");
    loop_ctx = hub.ctx;

    hub.listen_db = db_new(hub.ctx, hub.vh, cfg.database_url, "listener", &outbox_db_ops, &hub,
                           cfg.db_retry_max_ms);
    hub.work_db = db_new(hub.ctx, hub.vh, cfg.database_url, "worker", &work_db_ops, &hub,
                         cfg.db_retry_max_ms);
    if (!hub.listen_db || !hub.work_db) {
        log_err("main", "out of memory");
        rc = 1;
        goto out;
    }
    db_start(hub.listen_db);
    db_start(hub.work_db);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    log_info("main", "armonia-hub listening on %s:%d", cfg.bind, cfg.port);

    while (!interrupted)
        if (lws_service(hub.ctx, 0) < 0)
            break;
    log_info("main", "stopping (signal %d)", (int)interrupted);

out:
    lws_context_destroy(hub.ctx);
    loop_ctx = NULL;
    db_free(hub.listen_db);
    db_free(hub.work_db);
    reg_free(&hub.reg);
    config_free(&cfg);
    return rc;
}
