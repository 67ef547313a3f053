/*
 * purge.c - periodic retention: the outbox (hub.purge_outbox()) and the
 * delivery log (hub.purge_deliveries()), each in batches of PURGE_BATCH
 * rows, one short statement at a time, the next batch asked for only when
 * the last one was full.
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

/* What one purge function deletes, and where its count goes. */
struct purge_kind {
    const char *what;  /* for the log */
    const char *query; /* $1 retention interval, $2 batch; returns the rows deleted */
    size_t counter;    /* offset of the counter in struct hub_metrics */
    int (*retention_s)(const struct hub_config *cfg); /* 0: keep forever */
    const struct purge_kind *next;                    /* purged once this one is done */
};

static int
outbox_retention(const struct hub_config *cfg)
{
    return cfg->retention_s;
}

static int
delivery_retention(const struct hub_config *cfg)
{
    return cfg->delivery_retention_s;
}

static const struct purge_kind deliveries = {
    "delivery rows", "SELECT hub.purge_deliveries($1::interval, $2::int)",
    offsetof(struct hub_metrics, deliveries_purged), delivery_retention, NULL};
static const struct purge_kind outbox = {
    "expired events", "SELECT hub.purge_outbox($1::interval, $2::int)",
    offsetof(struct hub_metrics, events_purged), outbox_retention, &deliveries};

/* A batch in flight: which kind, for which hub. */
struct purge_req {
    struct hub *hub;
    const struct purge_kind *kind;
};

static void purge_batch(struct hub *hub, const struct purge_kind *kind);

static void
on_purged(struct db *db, const PGresult *res, void *ud)
{
    struct purge_req *r = ud;
    struct hub *hub = r->hub;
    const struct purge_kind *kind = r->kind;
    free(r);
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_err("purge", "%s failed: %s", kind->query + 7, PQresultErrorMessage(res));
        if (kind->next)
            purge_batch(hub, kind->next);
        return;
    }
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    *(uint64_t *)(void *)((char *)&hub->m + kind->counter) += (uint64_t)n;
    if (n > 0)
        log_debug("purge", "deleted %ld %s", n, kind->what);
    if (n >= PURGE_BATCH)
        purge_batch(hub, kind);
    else if (kind->next)
        purge_batch(hub, kind->next);
}

static void
purge_batch(struct hub *hub, const struct purge_kind *kind)
{
    while (kind && !kind->retention_s(hub->cfg))
        kind = kind->next; /* kept forever */
    if (!kind)
        return;
    struct purge_req *r = malloc(sizeof(*r));
    if (!r)
        return;
    *r = (struct purge_req){hub, kind};
    char retention[32], batch[16];
    snprintf(retention, sizeof(retention), "%d seconds", kind->retention_s(hub->cfg));
    snprintf(batch, sizeof(batch), "%d", PURGE_BATCH);
    const char *params[2] = {retention, batch};
    if (!db_query(hub->work_db, kind->query, 2, params, on_purged, r))
        free(r);
}

static void
on_purge_timer(lws_sorted_usec_list_t *sul)
{
    struct purge *p = lws_container_of(sul, struct purge, sul);
    if (db_is_up(p->hub->work_db))
        purge_batch(p->hub, &outbox);
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
