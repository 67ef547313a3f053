/*
 * limit.c - armonia-limit, the machine's floor for WebSocket fan-out.
 *
 * A minimal epoll WebSocket server that accepts the same connections as the
 * hub (HTTP upgrade on any path, subprotocol armonia.v1.json echoed when
 * offered), reads and ignores the first frame (the client's auth), answers
 * with one pre-encoded welcome frame, and then does only this: every UDP
 * datagram that arrives on --ctl-port is one event's JSON text; it is framed
 * once (one unmasked text frame) and the same bytes are written to every
 * welcomed socket, in connection order; events that arrived meanwhile go
 * together, as a run of frames in one send() (see on_ctl). The 16 digits
 * after "t_us": are first overwritten with the time the datagram reached
 * the kernel, so latency is measured from the moment the server has the
 * event, as commit time is for the hub. No authentication, no rooms, no database: whatever the hub
 * costs above this is the hub's own work.
 *
 * Writes that the kernel does not take at once are kept per connection
 * (bounded by --max-queue, like the hub's HUB_MAX_QUEUE_BYTES; a connection
 * over it is closed) and flushed on EPOLLOUT, so slow readers cost what they
 * cost any server.
 *
 * The listening socket has SO_REUSEPORT, so several armonia-limit processes
 * (each with its own --ctl-port, each sent every event) can share one port
 * the way the hub's workers do: the kernel spreads new connections over them.
 *
 * Usage: armonia-limit --port P --ctl-port U [--bind 127.0.0.1] [--max-queue BYTES]
 *        [--batch N (default 32)]
 * Prints "limit: listening on …" once ready. SIGTERM/SIGINT stop it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 8192
#define MAX_EVENT 65536
#define TAG_LISTEN UINT64_MAX
#define TAG_CTL (UINT64_MAX - 1)

enum lstate { L_HTTP, L_AUTH, L_OPEN, L_DEAD };

/* One client. head holds the request head (then the partial first frame);
 * out holds bytes the kernel has not taken yet. Both owned, malloc'd. */
struct lconn {
    int fd;
    uint8_t state;
    uint32_t head_len;
    char *head;
    char *out;
    size_t out_len, out_off, out_cap;
    struct lconn *next, *prev; /* list of open (welcomed) connections */
};

static struct {
    int ep;
    size_t max_queue;
    unsigned batch; /* events written together at most */
    struct lconn *open_head, *open_tail;
    struct lconn *graveyard; /* closed, freed after the current epoll batch */
    size_t nopen;
    unsigned long long events, writes, eagain, dropped;
    char welcome[128];
    size_t welcome_len;
} S;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void
open_link(struct lconn *c)
{
    c->prev = S.open_tail;
    c->next = NULL;
    if (S.open_tail)
        S.open_tail->next = c;
    else
        S.open_head = c;
    S.open_tail = c;
    S.nopen++;
}

/* Closes c; the memory is freed by reap() once no pending epoll event of
 * this batch can name it any more. Safe to call twice. */
static void
conn_close(struct lconn *c)
{
    if (c->state == L_DEAD)
        return;
    if (c->state == L_OPEN) {
        if (c->prev)
            c->prev->next = c->next;
        else
            S.open_head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        else
            S.open_tail = c->prev;
        S.nopen--;
    }
    close(c->fd);
    c->fd = -1;
    c->state = L_DEAD;
    free(c->head);
    free(c->out);
    c->head = c->out = NULL;
    c->next = S.graveyard;
    S.graveyard = c;
}

static void
reap(void)
{
    while (S.graveyard) {
        struct lconn *c = S.graveyard;
        S.graveyard = c->next;
        free(c);
    }
}

/* Queues n bytes behind what is pending; -1 when over the bound. */
static int
queue_out(struct lconn *c, const char *p, size_t n)
{
    if (c->out_len - c->out_off + n > S.max_queue)
        return -1;
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (!q)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void
want_out(struct lconn *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(S.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes p[0..n) now if nothing is pending, keeps the rest; -1: closed. */
static int
conn_write(struct lconn *c, const char *p, size_t n)
{
    if (c->out_len > c->out_off) {
        S.eagain++;
        if (queue_out(c, p, n) < 0) {
            S.dropped++;
            conn_close(c);
            return -1;
        }
        return 0;
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    S.writes++;
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(c);
            return -1;
        }
        w = 0;
    }
    if ((size_t)w < n) {
        S.eagain++;
        if (queue_out(c, p + w, n - (size_t)w) < 0) {
            S.dropped++;
            conn_close(c);
            return -1;
        }
        want_out(c, 1);
    }
    return 0;
}

static void
flush_out(struct lconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    want_out(c, 0);
}

static size_t
frame_header(char *h, size_t n)
{
    h[0] = (char)0x81;
    if (n < 126) {
        h[1] = (char)n;
        return 2;
    }
    if (n < 65536) {
        h[1] = 126;
        h[2] = (char)(n >> 8);
        h[3] = (char)n;
        return 4;
    }
    h[1] = 127;
    for (int k = 0; k < 8; k++)
        h[2 + k] = (char)((uint64_t)n >> (56 - 8 * k));
    return 10;
}

/* Answers the complete upgrade request head[0..head_end); -1 when it is
 * not one (or the connection was closed writing the answer). */
static int
answer_upgrade(struct lconn *c, char *head, size_t head_end)
{
    head[head_end] = 0;
    const char *k = strcasestr(head, "\r\nSec-WebSocket-Key:");
    if (!k)
        return -1;
    k += 20;
    while (*k == ' ')
        k++;
    size_t kl = strcspn(k, "\r\n ");
    char buf[128];
    if (kl > 64)
        return -1;
    memcpy(buf, k, kl);
    memcpy(buf + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)buf, kl + 36, sha);
    char acc[64];
    EVP_EncodeBlock((unsigned char *)acc, sha, SHA_DIGEST_LENGTH);
    int proto = strcasestr(head, "armonia.v1.json") != NULL;
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     acc, proto ? "Sec-WebSocket-Protocol: armonia.v1.json\r\n" : "");
    return conn_write(c, resp, (size_t)n);
}

/* Reads from a client: the request head, then the first frame (ignored,
 * answered with welcome), then anything (read and dropped; a close frame or
 * EOF closes). */
static void
on_client(struct lconn *c)
{
    char buf[16384];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_close(c);
            return;
        }
        if (c->state == L_OPEN) {
            /* A close frame from the client (opcode 8, masked) ends it. */
            if ((buf[0] & 0x0f) == 8) {
                conn_close(c);
                return;
            }
            continue;
        }
        /* Handshake bytes are parsed straight from buf; only an incomplete
         * head or first frame is kept (in c->head), so an idle connection
         * holds nothing but its struct. */
        char *p = buf;
        size_t n = (size_t)r;
        if (c->head_len) {
            if (c->head_len + n > MAX_HEAD) {
                conn_close(c);
                return;
            }
            char *q = realloc(c->head, c->head_len + n + 1);
            if (!q) {
                conn_close(c);
                return;
            }
            c->head = q;
            memcpy(c->head + c->head_len, buf, n);
            c->head_len += (uint32_t)n;
            p = c->head;
            n = c->head_len;
        }
        if (c->state == L_HTTP) {
            char *e = memmem(p, n, "\r\n\r\n", 4);
            if (e) {
                size_t end = (size_t)(e - p) + 4;
                char save = p[end - 1];
                if (answer_upgrade(c, p, end - 1) < 0 || c->state == L_DEAD) {
                    conn_close(c);
                    return;
                }
                p[end - 1] = save;
                p += end;
                n -= end;
                c->state = L_AUTH;
            }
        }
        if (c->state == L_AUTH && n >= 2) {
            const unsigned char *h = (const unsigned char *)p;
            size_t len = h[1] & 0x7f, hl = 2 + ((h[1] & 0x80) ? 4 : 0);
            int complete = 1;
            if (len == 126) {
                if (n < 4)
                    complete = 0;
                else
                    len = (size_t)h[2] << 8 | h[3];
                hl += 2;
            } else if (len == 127) {
                conn_close(c);
                return;
            }
            if (complete && n >= hl + len) {
                free(c->head);
                c->head = NULL;
                c->head_len = 0;
                c->state = L_OPEN;
                open_link(c);
                if (conn_write(c, S.welcome, S.welcome_len) < 0)
                    return;
                continue;
            }
        }
        /* Keep what is left for the next read. */
        if (n > MAX_HEAD) {
            conn_close(c);
            return;
        }
        if (!n) {
            free(c->head);
            c->head = NULL;
            c->head_len = 0;
        } else if (p != c->head || n != c->head_len) {
            char *q = malloc(n + 1);
            if (!q) {
                conn_close(c);
                return;
            }
            memcpy(q, p, n);
            free(c->head);
            c->head = q;
            c->head_len = (uint32_t)n;
        }
    }
}

/* Writes t (µs since the epoch, CLOCK_REALTIME) over the 16 digits that
 * follow "t_us": in the event, if there are 16. */
static void
stamp(char *p, size_t n, const struct timespec *t)
{
    char *v = memmem(p, n, "\"t_us\":", 7);
    if (!v || (size_t)(v - p) + 7 + 16 > n)
        return;
    v += 7;
    char d[24];
    snprintf(d, sizeof d, "%016llu",
             (unsigned long long)t->tv_sec * 1000000ull + (unsigned long long)t->tv_nsec / 1000);
    memcpy(v, d, 16);
}

/*
 * Every pending datagram is one event: up to --batch of them (until the run
 * reaches 64 KiB) are framed once, back to back, and that run is written to
 * every open socket in one send() each; then the next datagrams. With
 * --batch 1 each event is written on its own. The hub walks queued
 * fan-outs to the same rooms together in the same way (ROUTER_BATCH,
 * ROUTER_BATCH_BYTES), so this stays the floor under a burst too.
 *
 * An event's time is when its datagram reached the kernel (SO_TIMESTAMPNS),
 * not when it is read here: one that arrives while a run is being written
 * waits for the next run, as an event committed meanwhile waits in the hub.
 */
#define RUN_BYTES 65536

static void
on_ctl(int fd)
{
    static char run[RUN_BYTES + MAX_EVENT + 16];
    for (;;) {
        size_t n = 0;
        unsigned events = 0;
        while (events < S.batch && n < RUN_BYTES) {
            char *payload = run + n + 10;
            struct iovec iov = {.iov_base = payload, .iov_len = MAX_EVENT};
            union {
                char buf[CMSG_SPACE(sizeof(struct timespec))];
                struct cmsghdr align;
            } ctl;
            struct msghdr mh = {.msg_iov = &iov,
                                .msg_iovlen = 1,
                                .msg_control = ctl.buf,
                                .msg_controllen = sizeof ctl.buf};
            ssize_t r = recvmsg(fd, &mh, 0);
            if (r <= 0)
                break;
            struct timespec at = {0, 0};
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS)
                    memcpy(&at, CMSG_DATA(cm), sizeof at);
            if (!at.tv_sec)
                clock_gettime(CLOCK_REALTIME, &at);
            stamp(payload, (size_t)r, &at);
            char h[10];
            size_t hl = frame_header(h, (size_t)r);
            memmove(run + n + hl, payload, (size_t)r);
            memcpy(run + n, h, hl);
            n += hl + (size_t)r;
            events++;
        }
        if (!events)
            return;
        S.events += events;
        struct lconn *c = S.open_head, *next;
        for (; c; c = next) {
            next = c->next;
            conn_write(c, run, n);
        }
    }
}

static int
listen_on(const char *bind_addr, int port, int type)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, bind_addr, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "limit: cannot bind %s:%d: %s\n", bind_addr, port, strerror(errno));
        exit(2);
    }
    if (type == SOCK_STREAM && listen(fd, 4096) < 0) {
        fprintf(stderr, "limit: listen: %s\n", strerror(errno));
        exit(2);
    }
    if (type == SOCK_DGRAM) {
        int sz = 8 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    }
    return fd;
}

int
main(int argc, char **argv)
{
    const char *bind_addr = "127.0.0.1";
    int port = 0, ctl_port = 0;
    S.max_queue = 1u << 20;
    S.batch = 32;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--port"))
            port = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--ctl-port"))
            ctl_port = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--bind"))
            bind_addr = argv[a + 1];
        else if (!strcmp(argv[a], "--batch"))
            S.batch = (unsigned)atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--max-queue"))
            S.max_queue = strtoull(argv[a + 1], NULL, 10);
    }
    if (!port || !ctl_port || !S.batch) {
        fputs("usage: armonia-limit --port P --ctl-port U [--bind A] [--max-queue BYTES] "
              "[--batch N]\n",
              stderr);
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static const char welcome[] = "{\"type\":\"welcome\",\"session\":\"limit\",\"rooms\":[\"all\"],"
                                  "\"last_seq\":0}";
    S.welcome_len = frame_header(S.welcome, sizeof welcome - 1);
    memcpy(S.welcome + S.welcome_len, welcome, sizeof welcome - 1);
    S.welcome_len += sizeof welcome - 1;

    int lfd = listen_on(bind_addr, port, SOCK_STREAM);
    int cfd = listen_on(bind_addr, ctl_port, SOCK_DGRAM);
    S.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    epoll_ctl(S.ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.u64 = TAG_CTL;
    epoll_ctl(S.ep, EPOLL_CTL_ADD, cfd, &ev);
    printf("limit: listening on %s:%d, events on udp %d\n", bind_addr, port, ctl_port);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(S.ep, evs, 256, 200);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u64 == TAG_LISTEN) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct lconn *c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(S.ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else if (evs[k].data.u64 == TAG_CTL) {
                on_ctl(cfd);
            } else {
                struct lconn *c = evs[k].data.ptr;
                if (c->state == L_DEAD)
                    continue;
                if (evs[k].events & EPOLLOUT) {
                    flush_out(c);
                    continue; /* c may be gone; EPOLLIN comes again if pending */
                }
                on_client(c);
            }
        }
        reap();
    }
    fprintf(stderr, "limit: %zu open, %llu events, %llu writes, %llu partial, %llu dropped\n",
            S.nopen, S.events, S.writes, S.eagain, S.dropped);
    return 0;
}
