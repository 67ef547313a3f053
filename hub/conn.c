/*
 * conn.c - a connection's outbound queue and its orderly close.
 */
#include "conn.h"
#include "buf.h"
#include "hub.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Appends b to r, growing it by doubling. Returns 0 or -1 on OOM. */
static int
ring_push(struct ring *r, struct buf *b)
{
    if (r->len == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 4;
        struct buf **v = malloc(cap * sizeof(*v));
        if (!v)
            return -1;
        for (uint32_t i = 0; i < r->len; i++)
            v[i] = r->v[(r->head + i) % r->cap];
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    r->v[(r->head + r->len) % r->cap] = b;
    r->len++;
    return 0;
}

static struct buf *
ring_pop(struct ring *r)
{
    if (!r->len)
        return NULL;
    struct buf *b = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return b;
}

static void
ring_clear(struct ring *r)
{
    struct buf *b;
    while ((b = ring_pop(r)))
        buf_unref(b);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/*
 * A reading client that cannot keep up with a burst: instead of holding the
 * burst in memory, its queued events are dropped and it catches up from
 * the outbox starting at the first event it has not been sent, at the pace
 * its socket drains. seq is the event that did not fit.
 *
 * Nothing above is called from here: the connection is only marked (it
 * replays from last_seq, waiting for its queue), so the live router skips
 * it from now on, and the writable callback this asks for, on a later loop
 * turn, hands it to its feed (conn_flush), outside whatever walk of
 * connections or rows this send came from.
 */
static void
fall_behind(struct conn *c, int64_t seq)
{
    int64_t first = seq;
    for (uint32_t i = 0; i < c->normal.len; i++) {
        struct buf *q = c->normal.v[(c->normal.head + i) % c->normal.cap];
        if (q->seq && q->seq < first)
            first = q->seq;
    }
    struct buf *q;
    while ((q = ring_pop(&c->normal))) {
        c->queued_bytes -= q->len;
        buf_unref(q);
    }
    c->hub->m.catchups++;
    log_info("conn", "session %s: falls behind at seq %lld; catching up from the outbox",
             c->session, (long long)first);
    c->last_seq = first - 1;
    c->replaying = 1;
    c->replay_waiting = 1;
    lws_callback_on_writable(c->wsi);
}

/* Tells the feed, if any, that c is closing or gone. */
static void
feed_stop(struct conn *c)
{
    if (c->hub->feed && c->hub->feed->stop)
        c->hub->feed->stop(c);
}

/*
 * Writes the bytes of iov[0..n) (whole frames, lws holding nothing for the
 * connection) straight to the socket with one sendmsg() (none of lws's
 * bookkeeping per frame); what the kernel does not take is handed to lws in
 * one piece, which keeps it and writes it when the socket drains (later
 * frames queue behind it: lws_partial_buffered()). -1: the socket failed.
 *
 * Over TLS (c->fd < 0) every byte must go through the connection's SSL, so
 * the whole run is that one piece: one lws_write(), called only from the
 * writable callback (conn_flush()), never straight from conn_send().
 */
static int
write_iov(struct conn *c, struct iovec *iov, unsigned n, unsigned frames)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    c->progress_ms = hub_now_ms();
    if (c->fd >= 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        c->hub->m.socket_writes++;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        done = w > 0 ? (size_t)w : 0;
    }
    if (done < total) {
        size_t rest = total - done;
        unsigned k = 0;
        while (done >= iov[k].iov_len)
            done -= iov[k++].iov_len;
        unsigned char *tmp = NULL, *p = (unsigned char *)iov[k].iov_base + done;
        if (k + 1 < n) { /* the rest spans several frames: one piece for lws */
            tmp = malloc(LWS_PRE + rest);
            if (!tmp)
                return -1;
            size_t at = iov[k].iov_len - done;
            memcpy(tmp + LWS_PRE, p, at);
            for (unsigned i = k + 1; i < n; i++) {
                memcpy(tmp + LWS_PRE + at, iov[i].iov_base, iov[i].iov_len);
                at += iov[i].iov_len;
            }
            p = tmp + LWS_PRE;
        }
        int w = lws_write(c->wsi, p, rest, LWS_WRITE_RAW);
        free(tmp);
        if (w < (int)rest)
            return -1;
    }
    c->hub->m.frames_sent += frames;
    c->hub->m.bytes_sent += total;
    return 0;
}

static int
write_raw(struct conn *c, const unsigned char *p, size_t n, unsigned frames)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    return write_iov(c, &iov, 1, frames);
}

/* Writes one frame; its header goes in the buffer's headroom (the same
 * bytes for every connection the buffer is shared by). -1: the socket failed. */
static int
write_frame(struct conn *c, struct buf *b)
{
    unsigned char *start;
    size_t n = buf_wire(b, &start);
    return write_raw(c, start, n, 1);
}

/*
 * Nothing queued and nothing held back by lws: a frame can be written now
 * instead of queueing it and waiting for a writable callback. That saves
 * two epoll changes and a wake-up per frame, and a frame for a guard is on
 * the wire the moment its event is routed, not after every other socket of
 * a broadcast has had its turn. When the kernel takes only part of it, lws
 * keeps the rest and later frames queue behind it.
 * A replay queues instead: its next page is read from the database while
 * the frames of this one are being written. Over TLS every frame queues:
 * lws allows one write per writable callback there.
 */
int
conn_can_write_now(const struct conn *c)
{
    return c->fd >= 0 && c->state != CONN_CLOSING && !c->urgent.len && !c->normal.len &&
           !c->replaying && !c->peer_closed && !lws_partial_buffered(c->wsi);
}

/* A direct write failed: the socket is gone, and lws closes it on its next
 * turn (no close frame: close_reason stays NULL). */
static void
write_failed(struct conn *c)
{
    c->state = CONN_CLOSING;
    c->close_reason = NULL;
    feed_stop(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

int
conn_send_framed(struct conn *c, const unsigned char *p, size_t len, unsigned frames)
{
    if (write_raw(c, p, len, frames)) {
        write_failed(c);
        return -1;
    }
    c->hub->m.frame_runs++;
    return 0;
}

int
conn_send(struct conn *c, struct buf *b, int urgent)
{
    if (c->state == CONN_CLOSING)
        return 0;
    if (c->queued_bytes + b->len > c->hub->cfg->max_queue_bytes &&
        !(b->seq && (c->replaying || !c->normal.len))) {
        /* An event always goes when no other event is queued (one bigger
         * than the bound, alone), and so does one a replay hands over:
         * replay.c hands rows only while the queue is under half its bound,
         * so it overshoots by one event at most. Dropping either and reading
         * it again from the outbox would only bring it back here. */
        if (b->seq && c->state == CONN_READY &&
            hub_now_ms() - c->progress_ms < c->hub->cfg->slow_consumer_ms) {
            fall_behind(c, b->seq);
            return -1;
        }
        c->hub->m.slow_consumers++;
        log_info("conn", "session %s: outbound queue over %zu bytes, closing (slow consumer)",
                 c->session, c->hub->cfg->max_queue_bytes);
        /* Drop what is queued: the client resumes from its last seq. */
        ring_clear(&c->urgent);
        ring_clear(&c->normal);
        c->queued_bytes = 0;
        conn_close(c, 4008, "slow consumer");
        return -1;
    }
    if (conn_can_write_now(c)) {
        if (write_frame(c, b)) {
            write_failed(c);
            return -1;
        }
        return 0;
    }
    if (ring_push(urgent ? &c->urgent : &c->normal, b)) {
        conn_close(c, 1011, "out of memory");
        return -1;
    }
    buf_ref(b);
    c->queued_bytes += b->len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

/* Queues a freshly encoded reply (NULL means encoding ran out of memory). */
static int
send_reply(struct conn *c, struct buf *b)
{
    if (!b) {
        conn_close(c, 1011, "out of memory");
        return -1;
    }
    int rc = conn_send(c, b, 1);
    buf_unref(b);
    return rc;
}

int
conn_reply(struct conn *c, const json_t *msg)
{
    return send_reply(c, frame_encode(c->fmt, msg));
}

int
conn_error(struct conn *c, const char *code, const char *message, const json_t *ref)
{
    c->hub->m.errors[metric_error_slot(code)]++;
    return send_reply(c, frame_error(c->fmt, code, message, ref));
}

/*
 * HUB_CLOSE_TIMEOUT_MS after conn_close() the connection is still there:
 * its client does not read, so its last frames and the close frame wait
 * behind a full socket (neither keepalive nor the auth deadline ends that).
 * The socket is reset: shutdown() makes lws's pending write fail at once
 * instead of waiting to flush, and SO_LINGER 0 makes the kernel drop what
 * it still holds for the peer instead of keeping it for an orphaned socket.
 */
static void
close_deadline_reached(struct conn *c)
{
    c->hub->m.close_timeouts++;
    log_info("conn", "session %s: close %u not done within %d ms (client not reading): dropped",
             c->session, (unsigned)c->close_code, c->hub->cfg->close_timeout_ms);
    int fd = (int)lws_get_socket_fd(c->wsi); /* the TCP socket, under TLS too */
    if (fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
    }
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* The deadline of a lingering close (conn_close_lingering(), rare): its own timer. */
static void
on_close_deadline(lws_sorted_usec_list_t *sul)
{
    close_deadline_reached(lws_container_of(sul, struct conn, sul));
}

/* The head of hub->closing is due: every connection whose deadline has
 * passed is dropped, and the timer follows the next one. */
static void
on_closing_due(lws_sorted_usec_list_t *sul)
{
    struct hub *hub = lws_container_of(sul, struct hub, closing_sul);
    lws_usec_t now = lws_now_usecs();
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&hub->closing))) {
        struct conn *c = lws_container_of(d, struct conn, sul.list);
        if (c->sul.us > now) {
            lws_sul_schedule(hub->ctx, 0, &hub->closing_sul, on_closing_due, c->sul.us - now);
            return;
        }
        lws_dll2_remove(d);
        c->sul.us = 0;
        close_deadline_reached(c);
    }
}

/* Puts c at the tail of hub->closing, due HUB_CLOSE_TIMEOUT_MS from now
 * (c->sul is free: conn_close() cancelled the auth deadline). */
static void
closing_add(struct conn *c)
{
    struct hub *hub = c->hub;
    lws_usec_t wait = (lws_usec_t)hub->cfg->close_timeout_ms * 1000;
    c->sul.us = lws_now_usecs() + wait;
    lws_dll2_add_tail(&c->sul.list, &hub->closing);
    if (hub->closing.count == 1)
        lws_sul_schedule(hub->ctx, 0, &hub->closing_sul, on_closing_due, wait);
}

/* Schedules on_close_deadline() ms from now (on c->sul, free once closing). */
static void
close_deadline_in(struct conn *c, int64_t ms)
{
    lws_sul_schedule(c->hub->ctx, 0, &c->sul, on_close_deadline,
                     (lws_usec_t)(ms > 0 ? ms : 1) * 1000);
}

static void
on_linger_done(lws_sorted_usec_list_t *sul)
{
    struct conn *c = lws_container_of(sul, struct conn, sul);
    c->close_at_ms = 0;
    close_deadline_in(c, c->hub->cfg->close_timeout_ms - CONN_LINGER_MS);
    lws_callback_on_writable(c->wsi);
}

void
conn_close_lingering(struct conn *c, uint16_t code, const char *reason)
{
    if (c->state == CONN_CLOSING)
        return;
    conn_close(c, code, reason);
    c->close_at_ms = hub_now_ms() + CONN_LINGER_MS;
    lws_sul_cancel(&c->sul); /* out of hub->closing: the linger's timer, then its own */
    lws_sul_schedule(c->hub->ctx, 0, &c->sul, on_linger_done, (lws_usec_t)CONN_LINGER_MS * 1000);
}

void
conn_close(struct conn *c, uint16_t code, const char *reason)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    feed_stop(c);
    c->close_code = code;
    c->close_reason = reason;
    lws_sul_cancel(&c->sul); /* the auth deadline: the close deadline replaces it */
    closing_add(c);
    lws_callback_on_writable(c->wsi);
}

/*
 * Writes per writable callback at most: enough to keep up with a burst,
 * few enough that one busy connection does not starve the others. Over
 * TLS one (a run of up to CONN_FLUSH_FRAMES frames), as lws requires.
 */
#define CONN_WRITES_PER_CALLBACK 16

/*
 * Queued frames gathered into one sendmsg() when a queue drains, at most
 * (and about this many bytes): one system call and one wake-up of the
 * reader for a run of events, instead of one each, as when a broadcast
 * writes a run to a connection with nothing queued (router.c).
 */
#define CONN_FLUSH_FRAMES 64
#define CONN_FLUSH_BYTES 65536

/* Writes v[0..n) as one run (write_iov). -1: the socket failed. */
static int
write_frames(struct conn *c, struct buf *const *v, unsigned n)
{
    struct iovec iov[CONN_FLUSH_FRAMES];
    for (unsigned i = 0; i < n; i++) {
        unsigned char *start;
        size_t len = buf_wire(v[i], &start);
        iov[i] = (struct iovec){.iov_base = start, .iov_len = len};
    }
    if (write_iov(c, iov, n, n))
        return -1;
    if (n > 1)
        c->hub->m.frame_runs++;
    return 0;
}

int
conn_flush(struct conn *c)
{
    for (int i = 0; i < CONN_WRITES_PER_CALLBACK; i++) {
        if (c->fd < 0 && lws_partial_buffered(c->wsi))
            break; /* TLS: lws still holds the last run; it goes first */
        struct buf *v[CONN_FLUSH_FRAMES];
        unsigned n = 0;
        size_t bytes = 0;
        while (n < CONN_FLUSH_FRAMES && bytes < CONN_FLUSH_BYTES) {
            struct buf *b = ring_pop(&c->urgent);
            if (!b)
                b = ring_pop(&c->normal);
            if (!b)
                break;
            c->queued_bytes -= b->len;
            bytes += b->len;
            v[n++] = b;
        }
        if (!n)
            break;
        int failed = write_frames(c, v, n);
        for (unsigned k = 0; k < n; k++)
            buf_unref(v[k]);
        if (failed)
            return -1;
        /* The socket took only part of it: lws holds the rest; wait for
         * writable. Over TLS, the one lws_write() of this callback is done. */
        if (c->fd < 0 || lws_partial_buffered(c->wsi))
            break;
    }
    if (c->replay_waiting && c->queued_bytes <= c->hub->cfg->max_queue_bytes / 4 && c->hub->feed &&
        c->hub->feed->resume)
        c->hub->feed->resume(c);
    if (c->urgent.len || c->normal.len) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->state == CONN_CLOSING) {
        if (c->close_at_ms)
            return 0; /* lingering: on_linger_done asks for writable again */
        if (!c->close_reason)
            return -1; /* the socket failed (conn_send): nothing more to write */
        if (lws_partial_buffered(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

void
conn_release(struct conn *c)
{
    lws_sul_cancel(&c->sul);
    soon_cancel(&c->rx_soon);
    feed_stop(c);
    ring_clear(&c->urgent);
    ring_clear(&c->normal);
    c->queued_bytes = 0;
    free(c->rx);
    c->rx = NULL;
    json_decref(c->auth_ref);
    c->auth_ref = NULL;
    auth_claims_free(&c->who);
    if (c->acks) {
        free(c->acks->pending);
        free(c->acks);
        c->acks = NULL;
    }
}

int
conn_check_stall(struct conn *c, int64_t now)
{
    struct hub *hub = c->hub;
    if (c->state != CONN_READY || (!c->queued_bytes && !c->replay_waiting))
        return 0;
    if (now - c->progress_ms < hub->cfg->slow_consumer_ms)
        return 0;
    hub->m.slow_consumers++;
    log_info("conn", "session %s: nothing written for %d ms, closing (slow consumer)", c->session,
             hub->cfg->slow_consumer_ms);
    ring_clear(&c->normal);
    c->queued_bytes = 0;
    for (uint32_t i = 0; i < c->urgent.len; i++)
        c->queued_bytes += c->urgent.v[(c->urgent.head + i) % c->urgent.cap]->len;
    conn_error(c, "rate_limited", "not reading: closing as a slow consumer", NULL);
    conn_close(c, 4008, "slow consumer");
    return 1;
}
