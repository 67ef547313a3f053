/*
 * workers.h - what the worker processes of one hub share: a table in
 * anonymous shared memory, one slot per worker, so any worker can answer
 * /metrics and /healthz for the whole hub.
 *
 * With HUB_WORKERS=N > 1 the supervisor (supervisor.c) maps the table
 * before it forks, so every worker inherits the same pages. Worker k is
 * the only writer of slot k while it runs: after each pass of its loop it
 * copies its counters and gauges there with plain stores (workers_publish).
 * Readers copy slots without a lock, word by word: each 64-bit field is
 * read whole (relaxed atomic loads and stores, plain instructions on the
 * x86-64 and arm64 machines the hub runs on), but two fields of one slot
 * may come from different passes, which a scrape cannot tell apart from a
 * scrape a moment earlier or later. The supervisor writes a slot only
 * while no worker owns it: when it has reaped the worker (the slot then
 * says "not listening" until the next one is up) and when it starts the
 * next one.
 *
 * A worker that dies takes its counters with it in Prometheus's eyes (its
 * labelled series restart from zero, a counter reset); the supervisor adds
 * them to the table's "retired" totals first, so the unlabelled sums never
 * go backwards.
 */
#ifndef HUB_WORKERS_H
#define HUB_WORKERS_H

#include "hub.h"

#include <stddef.h>
#include <stdint.h>

/* Most worker processes one hub may run (HUB_WORKERS). */
#define WORKERS_MAX 64

/* One worker's view of itself, as /metrics shows it. */
struct worker_stats {
    struct hub_metrics m; /* its counters (struct hub's m) */
    int64_t connections;  /* open WebSocket connections */
    int64_t tenants;      /* tenants its registry has seen */
    int64_t rooms;        /* rooms with at least one member */
    int64_t cursor;       /* newest outbox seq it routed */
    int64_t tracked_ips;  /* addresses its per-address caps track */
    int64_t db_listening; /* 1 while its outbox listener is up (struct hub's listening) */
    int64_t quiet;        /* 1 while it reads the outbox on a timer */
    int64_t accepting;    /* 1 while its listening socket is open */
    int64_t circuit[METRIC_CHANNELS]; /* per provider: fallback_circuit() */
};

/* One slot of the table. */
struct worker_slot {
    struct worker_stats s; /* written by the worker after each loop pass */
    int64_t pid;           /* the worker's process id; 0 while none runs (supervisor) */
    int64_t started_s;     /* wall-clock second it was started (supervisor) */
    int64_t restarts;      /* times the supervisor restarted this slot (supervisor) */
    int64_t ready;         /* 1 once the worker listens and knows its outbox cursor (worker) */
    int64_t beat_ms;       /* CLOCK_MONOTONIC ms of its loop's latest pass (worker; set by
                              the supervisor before the fork, so a starting worker is fresh) */
};

/* The table, in memory every process of the hub maps at the same place. */
struct workers {
    int n;                                /* workers configured (HUB_WORKERS) */
    struct hub_metrics retired;           /* counters of workers that have exited */
    struct worker_slot slot[WORKERS_MAX]; /* n of them in use */
};

/* Maps a zeroed table for n workers (shared with children forked later);
 * NULL (logged) if the system refuses. */
struct workers *workers_map(int n);

/* Unmaps the table (NULL is ignored). */
void workers_unmap(struct workers *w);

/* Fills s from hub's live state. */
void workers_stats_of(const struct hub *hub, struct worker_stats *s);

/* Copies hub's state into its own slot (hub->workers, hub->worker_id),
 * with the loop's heartbeat and, once ready is non-zero (it listens and
 * knows its outbox cursor), that it is ready (see notify.h); nothing when
 * the hub runs alone. Called after every pass of the loop. */
void workers_publish(const struct hub *hub, int ready);

/* Called by the supervisor once worker k has been reaped: its counters go
 * to the retired totals and the slot says it is neither listening nor
 * running. */
void workers_retire(struct workers *w, int k);

/*
 * Copies every configured worker's stats into out (room for WORKERS_MAX)
 * and the counters of the workers that have exited into retired (zero when
 * the hub runs alone), and returns how many workers there are; hub's own
 * entry comes from its live state, the others from their slots. A worker
 * that is not running shows zero gauges.
 */
int workers_snapshot(const struct hub *hub, struct worker_stats *out, struct hub_metrics *retired);

/* Adds b's counters into a, field by field. */
void workers_add_metrics(struct hub_metrics *a, const struct hub_metrics *b);

#endif
