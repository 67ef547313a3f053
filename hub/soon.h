/*
 * soon.h - "run this on the next loop turn", without a timer.
 *
 * A zero-delay lws timer on the libev loop is not zero: libev never sleeps
 * in epoll for less than a millisecond, so each one costs up to 1 ms. Work
 * deferred here runs from a libev idle watcher of the highest priority,
 * once per loop turn, after the I/O that was ready has been looked at;
 * while anything is queued the loop polls without sleeping.
 */
#ifndef HUB_SOON_H
#define HUB_SOON_H

struct ev_loop;

struct soon {
    struct soon *next;
    void (*cb)(struct soon *s);
    int queued;
};

/* Attaches to the loop main() runs (NULL detaches and drops the queue). */
void soon_init(struct ev_loop *loop);

/* Queues s to run cb on the next turn; nothing if it is queued already. */
void soon_add(struct soon *s, void (*cb)(struct soon *s));

/* Takes s off the queue if it is on it. */
void soon_cancel(struct soon *s);

#endif
