/*
 * soon.c - deferred work for the next loop turn (see soon.h).
 */
#include "soon.h"

#include <ev.h>
#include <stddef.h>

static struct ev_loop *soon_loop;
static ev_idle soon_idle;
static struct soon *head, *tail;
static size_t queued; /* entries on the list */

static void
on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)w;
    (void)revents;
    /* Runs what was queued when the turn began; what callbacks queue
     * (one may queue itself again) waits for the next turn. */
    size_t n = queued;
    while (head && n--) {
        struct soon *s = head;
        head = s->next;
        if (!head)
            tail = NULL;
        queued--;
        s->queued = 0;
        s->next = NULL;
        s->cb(s);
    }
    if (!head)
        ev_idle_stop(loop, &soon_idle);
}

void
soon_init(struct ev_loop *loop)
{
    if (soon_loop)
        ev_idle_stop(soon_loop, &soon_idle);
    for (struct soon *s = head; s; s = s->next)
        s->queued = 0;
    head = tail = NULL;
    queued = 0;
    soon_loop = loop;
    if (loop) {
        ev_idle_init(&soon_idle, on_idle);
        ev_set_priority(&soon_idle, EV_MAXPRI);
    }
}

void
soon_add(struct soon *s, void (*cb)(struct soon *s))
{
    s->cb = cb;
    if (s->queued || !soon_loop)
        return;
    s->queued = 1;
    s->next = NULL;
    if (tail)
        tail->next = s;
    else
        head = s;
    tail = s;
    queued++;
    ev_idle_start(soon_loop, &soon_idle);
}

void
soon_cancel(struct soon *s)
{
    if (!s->queued)
        return;
    struct soon *prev = NULL;
    for (struct soon *p = head; p; prev = p, p = p->next) {
        if (p != s)
            continue;
        if (prev)
            prev->next = p->next;
        else
            head = p->next;
        if (tail == p)
            tail = prev;
        queued--;
        break;
    }
    s->queued = 0;
    s->next = NULL;
}
