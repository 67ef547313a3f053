/*
 * listener.c - accepts connections and hands them to lws (see listener.h).
 */
#define _GNU_SOURCE /* accept4() */
#include "listener.h"

#include "hub.h"
#include "log.h"

#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Keepalive probes after the idle time, and the time between them. */
#define KEEPALIVE_PROBES 5
#define KEEPALIVE_INTERVAL_S 10

struct listener {
    struct hub *hub;
    struct ev_loop *loop;
    int fd;
    int adopt; /* lws's adoption flags: HTTP, and under TLS its handshake first */
    ev_io io;
    ev_timer pause;
    int64_t warned_ms; /* last "out of descriptors" warning */
};

/*
 * Options accepted sockets inherit from the listening one on Linux: no
 * Nagle delay for small frames, and keepalive so a vanished peer is found
 * (TCP_USER_TIMEOUT also bounds how long unacknowledged data may wait).
 */
static int
set_inherited_options(int fd, int idle_s)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
        return -1;
    if (idle_s <= 0)
        return 0;
    int probes = KEEPALIVE_PROBES, intvl = KEEPALIVE_INTERVAL_S;
    unsigned user_ms = (unsigned)(idle_s + KEEPALIVE_PROBES * KEEPALIVE_INTERVAL_S) * 1000u;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)))
        return -1;
    return 0;
}

static void
on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct listener *l = w->data;
    (void)revents;
    ev_io_start(loop, &l->io);
}

/* Out of descriptors or memory (or any error but a vanished peer): accept()
 * would fail at once again and the loop would spin, so the listener rests
 * and the queue waits in the kernel. A draining hub has closed it already. */
static void
pause_accepting(struct listener *l, int err)
{
    int64_t now = hub_now_ms();
    if (now - l->warned_ms >= 10000) {
        log_warn("listener", "cannot accept connections (%s); pausing %d ms", strerror(err),
                 LISTENER_PAUSE_MS);
        l->warned_ms = now;
    }
    ev_io_stop(l->loop, &l->io);
    ev_timer_set(&l->pause, LISTENER_PAUSE_MS / 1000.0, 0.);
    ev_timer_start(l->loop, &l->pause);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *l = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < LISTENER_ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue; /* that one is gone; the next may be there */
            default:
                /* EMFILE, ENFILE, ENOBUFS, ENOMEM or worse: the listening
                 * socket would report ready again at once. */
                pause_accepting(l, errno);
                return;
            }
        }
        lws_sock_file_fd_type desc = {.sockfd = fd};
        /* On failure lws has closed the socket already. */
        if (!lws_adopt_descriptor_vhost(l->hub->vh, l->adopt, desc, NULL, NULL))
            log_warn("listener", "a connection could not be taken on (out of memory?)");
    }
}

int
listener_is_internal(const struct hub *hub, struct lws *wsi)
{
    if (!hub->cfg->internal_port)
        return 0;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = (int)lws_get_socket_fd(wsi);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len))
        return 0;
    int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return port == hub->cfg->internal_port;
}

struct listener *
listener_open(struct hub *hub, struct ev_loop *loop, const char *addr, int port, int keepalive_s,
              int shared, int internal)
{
    char serv[16];
    snprintf(serv, sizeof(serv), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(addr, serv, &hints, &res);
    if (rc) {
        log_err("listener", "cannot resolve %s: %s", addr, gai_strerror(rc));
        return NULL;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
            bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, SOMAXCONN)) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        log_err("listener", "cannot listen on %s:%d: %s", addr, port, strerror(err));
        return NULL;
    }
    if (set_inherited_options(fd, keepalive_s))
        log_warn("listener", "could not set TCP_NODELAY or keepalive on the listening socket: %s",
                 strerror(errno));
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        log_err("listener", "out of memory");
        return NULL;
    }
    l->hub = hub;
    l->loop = loop;
    l->fd = fd;
    l->adopt =
        LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | (hub->tls && !internal ? LWS_ADOPT_ALLOW_SSL : 0);
    l->warned_ms = INT64_MIN / 2;
    ev_io_init(&l->io, on_accept, fd, EV_READ);
    l->io.data = l;
    ev_timer_init(&l->pause, on_resume, 0., 0.);
    l->pause.data = l;
    ev_io_start(loop, &l->io);
    return l;
}

void
listener_close(struct listener *l)
{
    if (!l)
        return;
    ev_io_stop(l->loop, &l->io);
    ev_timer_stop(l->loop, &l->pause);
    close(l->fd);
    free(l);
}
