/*
 * purge.c - periodic outbox retention (schema: hub.purge_outbox()).
 */
#include "purge.h"
#include "db.h"
#include "hub.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* The purge's timer (struct hub's purge). */
struct purge {
    struct hub *hub;
    lws_sorted_usec_list_t sul; /* the next purge, HUB_PURGE_INTERVAL_MS after the last */
};

static void purge_batch(struct hub *hub);

static void
on_purged(struct db *db, const PGresult *res, void *ud)
{
    struct hub *hub = ud;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_err("purge", "hub.purge_outbox failed: %s", PQresultErrorMessage(res));
        return;
    }
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    hub->m.events_purged += (uint64_t)n;
    if (n > 0)
        log_debug("purge", "deleted %ld expired events", n);
    if (n >= PURGE_BATCH)
        purge_batch(hub);
}

static void
purge_batch(struct hub *hub)
{
    char retention[32], batch[16];
    snprintf(retention, sizeof(retention), "%d seconds", hub->cfg->retention_s);
    snprintf(batch, sizeof(batch), "%d", PURGE_BATCH);
    const char *params[2] = {retention, batch};
    db_query(hub->work_db, "SELECT hub.purge_outbox($1::interval, $2::int)", 2, params, on_purged,
             hub);
}

static void
on_purge_timer(lws_sorted_usec_list_t *sul)
{
    struct purge *p = lws_container_of(sul, struct purge, sul);
    if (db_is_up(p->hub->work_db))
        purge_batch(p->hub);
    purge_start(p);
}

struct purge *
purge_new(struct hub *hub)
{
    struct purge *p = calloc(1, sizeof(*p));
    if (p)
        p->hub = hub;
    return p;
}

void
purge_start(struct purge *p)
{
    lws_sul_schedule(p->hub->ctx, 0, &p->sul, on_purge_timer,
                     (lws_usec_t)p->hub->cfg->purge_interval_ms * 1000);
}

void
purge_stop(struct purge *p)
{
    if (p)
        lws_sul_cancel(&p->sul);
}

void
purge_free(struct purge *p)
{
    purge_stop(p);
    free(p);
}
