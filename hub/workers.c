/*
 * workers.c - the table the worker processes of one hub share (see
 * workers.h for who writes what, and why no lock is needed).
 */
#include "workers.h"

#include "fallback.h"
#include "log.h"
#include "outbox.h"
#include "peer.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Both are summed and copied as arrays of 64-bit words. */
_Static_assert(sizeof(struct hub_metrics) % sizeof(uint64_t) == 0,
               "struct hub_metrics holds only uint64_t counters");
_Static_assert(sizeof(struct worker_stats) % sizeof(uint64_t) == 0,
               "struct worker_stats holds only 64-bit fields");

/*
 * Copies size bytes (whole 64-bit words) between private and shared
 * memory one word at a time: a plain struct copy may be done with wider
 * or narrower moves, and another process could then see a number half
 * old, half new. Relaxed atomics compile to plain loads and stores here.
 */
static void
copy_words(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *s = src;
    for (size_t i = 0; i < size / sizeof(uint64_t); i++)
        __atomic_store_n(&d[i], __atomic_load_n(&s[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

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
    for (int ch = 0; ch < METRIC_CHANNELS; ch++)
        s->circuit[ch] = fallback_circuit(hub->fallback, ch);
}

void
workers_publish(const struct hub *hub, int ready)
{
    if (!hub->workers)
        return;
    struct worker_stats s;
    workers_stats_of(hub, &s);
    struct worker_slot *slot = &hub->workers->slot[hub->worker_id];
    copy_words(&slot->s, &s, sizeof(s));
    if (ready)
        __atomic_store_n(&slot->ready, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->beat_ms, hub_now_ms(), __ATOMIC_RELAXED);
}

void
workers_retire(struct workers *w, int k)
{
    struct worker_slot *slot = &w->slot[k];
    struct hub_metrics sum;
    static const struct worker_stats none;
    copy_words(&sum, &w->retired, sizeof(sum));
    workers_add_metrics(&sum, &slot->s.m);
    copy_words(&w->retired, &sum, sizeof(sum));
    copy_words(&slot->s, &none, sizeof(none));
    __atomic_store_n(&slot->pid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->ready, 0, __ATOMIC_RELAXED);
}

int
workers_snapshot(const struct hub *hub, struct worker_stats *out, struct hub_metrics *retired)
{
    const struct workers *w = hub->workers;
    if (!w) {
        workers_stats_of(hub, &out[0]);
        memset(retired, 0, sizeof(*retired));
        return 1;
    }
    for (int k = 0; k < w->n; k++) {
        if (k == hub->worker_id)
            workers_stats_of(hub, &out[k]);
        else
            copy_words(&out[k], &w->slot[k].s, sizeof(out[k]));
    }
    copy_words(retired, &w->retired, sizeof(*retired));
    return w->n;
}
