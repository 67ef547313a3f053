/*
 * workers.c - the table the worker processes of one hub share (see
 * workers.h for who writes what, and why no lock is needed).
 */
#include "workers.h"

#include "log.h"
#include "outbox.h"
#include "peer.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* struct hub_metrics is summed as an array of counters. */
_Static_assert(sizeof(struct hub_metrics) % sizeof(uint64_t) == 0,
               "struct hub_metrics holds only uint64_t counters");

struct workers *
workers_map(int n)
{
    void *p = mmap(NULL, sizeof(struct workers), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        log_err("workers", "cannot map the table the workers share: %s", strerror(errno));
        return NULL;
    }
    struct workers *w = p; /* anonymous pages come zeroed */
    w->n = n;
    return w;
}

void
workers_unmap(struct workers *w)
{
    if (w)
        munmap(w, sizeof(*w));
}

void
workers_add_metrics(struct hub_metrics *a, const struct hub_metrics *b)
{
    uint64_t *dst = (uint64_t *)(void *)a;
    const uint64_t *src = (const uint64_t *)(const void *)b;
    for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++)
        dst[i] += src[i];
}

void
workers_stats_of(const struct hub *hub, struct worker_stats *s)
{
    s->m = hub->m;
    s->connections = (int64_t)hub->n_conns;
    s->tenants = (int64_t)hub->reg.n_tenants;
    s->rooms = (int64_t)hub->reg.n_rooms;
    s->cursor = hub->cursor;
    s->tracked_ips = (int64_t)peer_table_size(hub->peers);
    s->db_listening = hub->listening;
    s->quiet = outbox_is_quiet(hub->outbox);
    s->accepting = hub->listener != NULL;
}

void
workers_publish(const struct hub *hub)
{
    if (!hub->workers)
        return;
    workers_stats_of(hub, &hub->workers->slot[hub->worker_id].s);
}

void
workers_retire(struct workers *w, int k)
{
    struct worker_slot *slot = &w->slot[k];
    workers_add_metrics(&w->retired, &slot->s.m);
    memset(&slot->s, 0, sizeof(slot->s));
    slot->pid = 0;
}

int
workers_snapshot(const struct hub *hub, struct worker_stats *out)
{
    const struct workers *w = hub->workers;
    if (!w) {
        workers_stats_of(hub, &out[0]);
        return 1;
    }
    for (int k = 0; k < w->n; k++) {
        if (k == hub->worker_id)
            workers_stats_of(hub, &out[k]);
        else
            out[k] = w->slot[k].s;
    }
    return w->n;
}
