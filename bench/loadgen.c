/*
 * loadgen.c - armonia-loadgen, the benchmark's WebSocket client swarm.
 *
 * One process holds thousands of client connections on one epoll loop
 * (several processes, each with its own --base, share a larger swarm: a
 * process may hold at most 20,000 descriptors here). Every connection gets a
 * locally minted HS256 token and authenticates the way the system under test
 * expects (--proto):
 *
 *   armonia  ws://HOST:PORT/ws, subprotocol armonia.v1.json, first frame
 *            {"type":"auth","token":…} (or --auth header: Authorization:
 *            Bearer) and waits for {"type":"welcome",…}. Used for the hub,
 *            the ws peer and the limit server.
 *   sio      Engine.IO v4 / Socket.IO v4 over WebSocket:
 *            /socket.io/?EIO=4&transport=websocket, waits for the "0{…}"
 *            open packet, sends "40{"token":…}" (namespace connect with the
 *            auth payload), answers pings "2" with "3", and takes the
 *            server's 42["welcome",…] as the welcome; events are
 *            42["event",{…}] (the Socket.IO peer) or 42["<kind>",{…},"<seq>"]
 *            (the hub's /socket.io/, 42<id>[…] when the event asks for an
 *            ack); the hub's 42["hub:offset",…] after such an event is not
 *            one.
 *
 * Every event's latency is receipt time (CLOCK_REALTIME, µs) minus the
 * producer's timestamp carried in the event's data as "t_us" (µs since the
 * epoch; bench/run.mjs sets it with clock_timestamp() inside the producing
 * statement, which commits at once). Latencies go into one log-linear
 * histogram per event kind, beside the largest one exactly: for a single
 * event sent to everyone, that is the time from its commit to its last
 * receipt.
 *
 * The driver talks to the process over stdin/stdout, one line each way:
 *   reset          zero the event counters and histograms (start a window)
 *   report         print one JSON line with everything since the last reset
 *   pause PCT      stop reading on PCT % of the connections (slow consumers)
 *   resume         read on every connection again
 *   quit           print the report (also to --out FILE) and exit
 * When every connection has been welcomed or has failed, the process prints
 * one {"phase":"connected",…} line by itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Histogram: exact below 64 µs, then 32 sub-buckets per power of two (~3 %). */
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_SUB * 42)
/* Event kinds tracked separately (panic, broadcast, visitor, …). */
#define MAX_KINDS 8
#define KIND_LEN 24
/* Bytes of a partial frame kept per connection between reads. */
#define MAX_PARTIAL (1u << 20)
#define READ_CHUNK (256 * 1024)
#define MAX_SRC 16
#define TOKEN_MAX 1024

enum proto { PROTO_ARMONIA, PROTO_SIO };
enum state { ST_IDLE, ST_CONNECTING, ST_HTTP, ST_AUTH, ST_READY, ST_DEAD };

/* One client connection. in holds a partial frame (owned, malloc'd). */
struct conn {
    int fd;
    uint8_t state;
    uint8_t paused;
    uint32_t in_len, in_cap;
    char *in;
    uint64_t t_start;
};

struct hist {
    uint64_t n[HIST_BUCKETS];
};

struct kind_stats {
    char name[KIND_LEN];
    uint64_t count;
    uint64_t bytes;
    uint64_t no_stamp;
    uint64_t lat_max; /* the largest latency seen, exact (the histogram rounds) */
    struct hist lat;
};

static struct {
    /* options */
    const char *host;
    int port;
    enum proto proto;
    int header_auth;
    int nconns;
    int base;
    int inflight_max;
    const char *secret;
    const char *tenant_fmt;
    int per_tenant;
    int guards;
    int units;
    const char *out_path;
    struct in_addr src[MAX_SRC];
    int nsrc;
    /* state */
    int ep;
    struct conn *conns;
    char **tokens; /* minted before the first connection: the timed part does not sign */
    int next_to_start;
    int inflight;
    int ready, failed, closed_after_ready;
    uint64_t t_first, t_last_ready;
    struct hist connect_hist;
    uint64_t close_codes[16];
    int close_code_val[16];
    int n_close_codes;
    uint64_t connect_errors, http_errors, auth_errors;
    /* event window */
    struct kind_stats kinds[MAX_KINDS];
    int nkinds;
    uint64_t frames, other_frames;
    uint64_t reads; /* recv() calls that returned bytes, this window */
    uint64_t window_start, t_first_ev, t_last_ev;
    struct rusage ru_start;
    int announced;
    uint8_t mask[4];
    char rbuf[READ_CHUNK];
} G;

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("armonia-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- histogram ---------------------------------------------------------- */

static int
hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int e = msb - 5;
    int idx = HIST_SUB * e + (int)(v >> e);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t
hist_lo(int idx)
{
    if (idx < 2 * HIST_SUB)
        return (uint64_t)idx;
    int e = idx / HIST_SUB - 1;
    return (uint64_t)(idx - HIST_SUB * e) << e;
}

static void
hist_print(FILE *f, const struct hist *h)
{
    int first = 1;
    fputc('[', f);
    for (int i = 0; i < HIST_BUCKETS; i++) {
        if (!h->n[i])
            continue;
        uint64_t lo = hist_lo(i), hi = i + 1 < HIST_BUCKETS ? hist_lo(i + 1) : lo + 1;
        fprintf(f, "%s[%llu,%llu,%llu]", first ? "" : ",", (unsigned long long)lo,
                (unsigned long long)hi, (unsigned long long)h->n[i]);
        first = 0;
    }
    fputc(']', f);
}

/* ---- tokens ------------------------------------------------------------- */

static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = 0;
    return o;
}

/* The tenant, role and unit of global connection number g (see usage()). */
static void
identity(int g, char *tenant, size_t tn, const char **role, char *unit, size_t un)
{
    int t = g / G.per_tenant, k = g % G.per_tenant;
    if (strchr(G.tenant_fmt, '%'))
        snprintf(tenant, tn, G.tenant_fmt, t);
    else
        snprintf(tenant, tn, "%s", G.tenant_fmt);
    *role = k < G.guards ? "guard" : "resident";
    snprintf(unit, un, "u%d", G.units > 0 ? k % G.units : k);
}

/* Writes an HS256 JWT for connection g into out (TOKEN_MAX bytes). */
static void
mint_token(int g, char *out)
{
    char tenant[64], unit[32], claims[512], seg[TOKEN_MAX];
    const char *role;
    identity(g, tenant, sizeof tenant, &role, unit, sizeof unit);
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    int n = snprintf(claims, sizeof claims,
                     "{\"sub\":\"u%d\",\"tenant\":\"%s\",\"role\":\"%s\",\"units\":[\"%s\"],"
                     "\"exp\":%llu}",
                     g, tenant, role, unit, (unsigned long long)(now_us() / 1000000u + 86400));
    size_t o = b64url((const unsigned char *)header, sizeof header - 1, seg);
    seg[o++] = '.';
    o += b64url((const unsigned char *)claims, (size_t)n, seg + o);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), G.secret, (int)strlen(G.secret), (const unsigned char *)seg, o, mac,
         &maclen);
    memcpy(out, seg, o);
    out[o++] = '.';
    b64url(mac, maclen, out + o);
}

/* ---- output --------------------------------------------------------------- */

static void
report(FILE *f, const char *phase)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cpu = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                   (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    uint64_t cpu0 = (uint64_t)(G.ru_start.ru_utime.tv_sec + G.ru_start.ru_stime.tv_sec) * 1000000u +
                    (uint64_t)(G.ru_start.ru_utime.tv_usec + G.ru_start.ru_stime.tv_usec);
    int open = 0, paused = 0;
    for (int i = 0; i < G.nconns; i++) {
        open += G.conns[i].state == ST_READY;
        paused += G.conns[i].state == ST_READY && G.conns[i].paused;
    }
    uint64_t t = now_us();
    fprintf(
        f,
        "{\"phase\":\"%s\",\"pid\":%d,\"base\":%d,\"conns\":%d,\"ready\":%d,\"failed\":%d,"
        "\"open\":%d,\"paused\":%d,\"closed_after_ready\":%d,\"connect_errors\":%llu,"
        "\"http_errors\":%llu,\"auth_errors\":%llu,\"t_first_us\":%llu,\"t_last_ready_us\":%llu,"
        "\"connect_hist\":",
        phase, (int)getpid(), G.base, G.nconns, G.ready, G.failed, open, paused,
        G.closed_after_ready, (unsigned long long)G.connect_errors,
        (unsigned long long)G.http_errors, (unsigned long long)G.auth_errors,
        (unsigned long long)G.t_first, (unsigned long long)G.t_last_ready);
    hist_print(f, &G.connect_hist);
    fputs(",\"close_codes\":{", f);
    for (int i = 0; i < G.n_close_codes; i++)
        fprintf(f, "%s\"%d\":%llu", i ? "," : "", G.close_code_val[i],
                (unsigned long long)G.close_codes[i]);
    fprintf(f,
            "},\"window_us\":%llu,\"window_start_us\":%llu,\"t_first_ev_us\":%llu,"
            "\"t_last_ev_us\":%llu,\"cpu_us\":%llu,\"maxrss_kb\":%ld,"
            "\"frames\":%llu,\"other_frames\":%llu,\"reads\":%llu,\"kinds\":{",
            (unsigned long long)(t - G.window_start), (unsigned long long)G.window_start,
            (unsigned long long)G.t_first_ev, (unsigned long long)G.t_last_ev,
            (unsigned long long)(cpu - cpu0), ru.ru_maxrss, (unsigned long long)G.frames,
            (unsigned long long)G.other_frames, (unsigned long long)G.reads);
    for (int k = 0; k < G.nkinds; k++) {
        struct kind_stats *ks = &G.kinds[k];
        fprintf(f,
                "%s\"%s\":{\"count\":%llu,\"bytes\":%llu,\"no_stamp\":%llu,\"lat_max_us\":%llu,"
                "\"lat\":",
                k ? "," : "", ks->name, (unsigned long long)ks->count,
                (unsigned long long)ks->bytes, (unsigned long long)ks->no_stamp,
                (unsigned long long)ks->lat_max);
        hist_print(f, &ks->lat);
        fputc('}', f);
    }
    fputs("}}\n", f);
    fflush(f);
}

static void
window_reset(void)
{
    memset(G.kinds, 0, sizeof G.kinds);
    G.nkinds = 0;
    G.frames = G.other_frames = G.reads = 0;
    G.t_first_ev = G.t_last_ev = 0;
    G.window_start = now_us();
    getrusage(RUSAGE_SELF, &G.ru_start);
}

static void
maybe_announce(void)
{
    if (!G.announced && G.ready + G.failed >= G.nconns) {
        G.announced = 1;
        report(stdout, "connected");
    }
}

/* ---- connections ---------------------------------------------------------- */

static void
note_close_code(int code)
{
    for (int i = 0; i < G.n_close_codes; i++)
        if (G.close_code_val[i] == code) {
            G.close_codes[i]++;
            return;
        }
    if (G.n_close_codes < 16) {
        G.close_code_val[G.n_close_codes] = code;
        G.close_codes[G.n_close_codes++] = 1;
    }
}

static void
conn_kill(struct conn *c, int code)
{
    if (c->state == ST_DEAD)
        return;
    if (c->state == ST_READY) {
        G.closed_after_ready++;
    } else {
        G.failed++;
        if (c->state != ST_IDLE)
            G.inflight--;
    }
    note_close_code(code);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = ST_DEAD;
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    maybe_announce();
}

/* Sends all of buf or kills the connection: client writes are tiny, so a
 * full socket buffer here means the server stopped reading. */
static int
send_all(struct conn *c, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            conn_kill(c, -2);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one masked client frame. */
static int
send_frame(struct conn *c, int opcode, const char *payload, size_t n)
{
    char fr[TOKEN_MAX + 256];
    size_t h = 0;
    if (n + 14 > sizeof fr)
        return -1;
    fr[h++] = (char)(0x80 | opcode);
    if (n < 126) {
        fr[h++] = (char)(0x80 | n);
    } else {
        fr[h++] = (char)(0x80 | 126);
        fr[h++] = (char)(n >> 8);
        fr[h++] = (char)(n & 0xff);
    }
    memcpy(fr + h, G.mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        fr[h + i] = (char)(payload[i] ^ G.mask[i & 3]);
    return send_all(c, fr, h + n);
}

static void
conn_ready(struct conn *c)
{
    uint64_t t = now_us();
    c->state = ST_READY;
    G.ready++;
    G.inflight--;
    G.t_last_ready = t;
    G.connect_hist.n[hist_index(t - c->t_start)]++;
    maybe_announce();
}

static int upgrade_request(int i, char *req);

static void
conn_start(int i)
{
    struct conn *c = &G.conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        G.connect_errors++;
        c->fd = -1;
        c->state = ST_CONNECTING;
        G.inflight++;
        conn_kill(c, -1);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (G.nsrc) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = G.src[(G.base + i) % G.nsrc]};
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            G.connect_errors++;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)G.port)};
    inet_pton(AF_INET, G.host, &dst.sin_addr);
    c->fd = fd;
    c->t_start = now_us();
    if (!G.t_first)
        G.t_first = c->t_start;
    c->state = ST_CONNECTING;
    G.inflight++;
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        G.connect_errors++;
        conn_kill(c, -1);
        return;
    }
    /* On loopback the TCP handshake is usually over when connect() returns:
     * the upgrade goes out at once, which spares a wake-up, SO_ERROR and an
     * epoll_ctl per connection. Not connected yet: wait for writability. */
    char req[2048];
    int n = upgrade_request(i, req);
    ssize_t w = send(fd, req, (size_t)n, MSG_NOSIGNAL);
    if (w == n) {
        c->state = ST_HTTP;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev);
        return;
    }
    if (w >= 0 || (errno != EAGAIN && errno != ENOTCONN)) {
        G.connect_errors++;
        conn_kill(c, -1);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Writes connection i's upgrade request into req (2048 bytes); returns its length. */
static int
upgrade_request(int i, char *req)
{
    int n;
    if (G.proto == PROTO_SIO) {
        n = snprintf(
            req, 2048,
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s:%d\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: YXJtb25pYWJlbmNoa2V5IQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            G.host, G.port);
    } else if (G.header_auth) {
        n = snprintf(
            req, 2048,
            "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: YXJtb25pYWJlbmNoa2V5IQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: armonia.v1.json\r\nAuthorization: Bearer %s\r\n\r\n",
            G.host, G.port, G.tokens[i]);
    } else {
        n = snprintf(
            req, 2048,
            "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: YXJtb25pYWJlbmNoa2V5IQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: armonia.v1.json\r\n\r\n",
            G.host, G.port);
    }
    return n;
}

static void
send_upgrade(struct conn *c, int i)
{
    char req[2048];
    int n = upgrade_request(i, req);
    if (send_all(c, req, (size_t)n) < 0)
        return;
    c->state = ST_HTTP;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
send_auth(struct conn *c, int i)
{
    char msg[TOKEN_MAX + 64];
    const char *tok = G.tokens[i];
    int n = G.proto == PROTO_SIO
                ? snprintf(msg, sizeof msg, "40{\"token\":\"%s\"}", tok)
                : snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    send_frame(c, 1, msg, (size_t)n);
}

/* Finds "key" in p[0..n) and returns the start of its value (after the colon
 * and any blanks), or NULL. */
static const char *
json_value(const char *p, size_t n, const char *key, size_t klen)
{
    const char *v = memmem(p, n, key, klen);
    if (!v)
        return NULL;
    v += klen;
    const char *end = p + n;
    while (v < end && (*v == ':' || *v == ' '))
        v++;
    return v < end ? v : NULL;
}

static struct kind_stats *
kind_of(const char *p, size_t n)
{
    char name[KIND_LEN] = "?";
    const char *v = json_value(p, n, "\"kind\"", 6);
    if (v && *v == '"') {
        size_t k = 0;
        v++;
        while (v + k < p + n && v[k] != '"' && k + 1 < KIND_LEN)
            k++;
        memcpy(name, v, k);
        name[k] = 0;
    }
    for (int i = 0; i < G.nkinds; i++)
        if (!strcmp(G.kinds[i].name, name))
            return &G.kinds[i];
    if (G.nkinds == MAX_KINDS)
        return &G.kinds[MAX_KINDS - 1];
    struct kind_stats *ks = &G.kinds[G.nkinds++];
    snprintf(ks->name, KIND_LEN, "%s", name);
    return ks;
}

static void
on_event(const char *p, size_t n, uint64_t t)
{
    struct kind_stats *ks = kind_of(p, n);
    if (!G.t_first_ev)
        G.t_first_ev = t;
    G.t_last_ev = t;
    ks->count++;
    ks->bytes += n;
    const char *v = json_value(p, n, "\"t_us\"", 6);
    if (!v) {
        ks->no_stamp++;
        return;
    }
    uint64_t stamp = strtoull(v, NULL, 10);
    uint64_t lat = t > stamp ? t - stamp : 0;
    ks->lat.n[hist_index(lat)]++;
    if (lat > ks->lat_max)
        ks->lat_max = lat;
}

/* Handles one complete text message. */
static void
on_message(struct conn *c, int i, const char *p, size_t n, uint64_t t)
{
    G.frames++;
    if (G.proto == PROTO_SIO) {
        if (n >= 1 && p[0] == '2' && n == 1) {
            send_frame(c, 1, "3", 1);
        } else if (n >= 2 && p[0] == '4' && p[1] == '2') {
            if (n >= 12 && !memcmp(p + 2, "[\"welcome\"", 10)) {
                if (c->state == ST_AUTH)
                    conn_ready(c);
            } else if (n >= 15 && !memcmp(p + 2, "[\"hub:offset\"", 13)) {
                G.other_frames++;
            } else if (n >= 3 && (p[2] == '[' || (p[2] >= '0' && p[2] <= '9'))) {
                on_event(p, n, t);
            } else {
                G.other_frames++;
            }
        } else if (n >= 1 && p[0] == '0' && c->state == ST_AUTH) {
            send_auth(c, i);
        } else if (n >= 2 && p[0] == '4' && p[1] == '4') {
            G.auth_errors++;
            conn_kill(c, 4001);
        } else {
            G.other_frames++;
        }
        return;
    }
    const char *ty = json_value(p, n, "\"type\"", 6);
    if (ty && n - (size_t)(ty - p) >= 7 && !memcmp(ty, "\"event\"", 7)) {
        on_event(p, n, t);
    } else if (ty && n - (size_t)(ty - p) >= 9 && !memcmp(ty, "\"welcome\"", 9)) {
        if (c->state == ST_AUTH)
            conn_ready(c);
    } else if (ty && n - (size_t)(ty - p) >= 7 && !memcmp(ty, "\"error\"", 7) &&
               c->state == ST_AUTH) {
        G.auth_errors++;
    } else {
        G.other_frames++;
    }
}

/* Parses as many complete frames of p[0..n) as there are; returns bytes used,
 * or -1 when the connection was closed. */
static ssize_t
parse_frames(struct conn *c, int i, const char *p, size_t n, uint64_t t)
{
    size_t off = 0;
    while (n - off >= 2) {
        const unsigned char *h = (const unsigned char *)p + off;
        int op = h[0] & 0x0f;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (h[1] & 0x80)
            hl += 4; /* servers do not mask, but tolerate it */
        if (len == 126) {
            if (n - off < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl += 2;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | h[2 + k];
            hl += 8;
        }
        if (len > MAX_PARTIAL) {
            conn_kill(c, -3);
            return -1;
        }
        if (n - off < hl + len)
            break;
        const char *pl = p + off + hl;
        if (op == 1 || op == 2 || op == 0) {
            on_message(c, i, pl, (size_t)len, t);
        } else if (op == 9) {
            send_frame(c, 0xA, pl, (size_t)len);
        } else if (op == 8) {
            int code = len >= 2 ? ((unsigned char)pl[0] << 8 | (unsigned char)pl[1]) : 1005;
            conn_kill(c, code);
            return -1;
        }
        if (c->state == ST_DEAD)
            return -1;
        off += hl + (size_t)len;
    }
    return (ssize_t)off;
}

/* Consumes the HTTP response head in c->in; returns 0 when done (and leaves
 * any frame bytes after it in c->in), 1 when more is needed, -1 on failure. */
static int
parse_http(struct conn *c, int i)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return c->in_len > 8192 ? -1 : 1;
    if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) {
        G.http_errors++;
        return -1;
    }
    size_t used = (size_t)(end + 4 - c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= (uint32_t)used;
    c->state = ST_AUTH;
    if (G.proto == PROTO_ARMONIA && !G.header_auth)
        send_auth(c, i);
    return 0;
}

static int
in_append(struct conn *c, const char *p, size_t n)
{
    if (c->in_len + n > c->in_cap) {
        uint32_t cap = c->in_cap ? c->in_cap : 512;
        while (cap < c->in_len + n)
            cap *= 2;
        if (cap > MAX_PARTIAL + 16)
            return -1;
        char *q = realloc(c->in, cap);
        if (!q)
            return -1;
        c->in = q;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += (uint32_t)n;
    return 0;
}

static void
on_readable(int i)
{
    struct conn *c = &G.conns[i];
    for (int rounds = 0; rounds < 4 && c->state != ST_DEAD; rounds++) {
        ssize_t r = recv(c->fd, G.rbuf, sizeof G.rbuf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_kill(c, r == 0 ? -4 : -5);
            return;
        }
        G.reads++;
        uint64_t t = now_us();
        if (c->state == ST_HTTP) {
            if (in_append(c, G.rbuf, (size_t)r) < 0) {
                conn_kill(c, -6);
                return;
            }
            int h = parse_http(c, i);
            if (h < 0) {
                conn_kill(c, -7);
                return;
            }
            if (h > 0 || c->state == ST_DEAD)
                continue;
            if (c->in_len) {
                ssize_t used = parse_frames(c, i, c->in, c->in_len, t);
                if (used < 0)
                    return;
                memmove(c->in, c->in + used, c->in_len - (size_t)used);
                c->in_len -= (uint32_t)used;
            }
        } else if (c->in_len) {
            if (in_append(c, G.rbuf, (size_t)r) < 0) {
                conn_kill(c, -6);
                return;
            }
            ssize_t used = parse_frames(c, i, c->in, c->in_len, t);
            if (used < 0)
                return;
            memmove(c->in, c->in + used, c->in_len - (size_t)used);
            c->in_len -= (uint32_t)used;
            if (!c->in_len && c->in_cap > 4096) {
                free(c->in);
                c->in = NULL;
                c->in_cap = 0;
            }
        } else {
            ssize_t used = parse_frames(c, i, G.rbuf, (size_t)r, t);
            if (used < 0)
                return;
            if ((size_t)used < (size_t)r &&
                in_append(c, G.rbuf + used, (size_t)r - (size_t)used) < 0) {
                conn_kill(c, -6);
                return;
            }
        }
        if ((size_t)r < sizeof G.rbuf)
            return;
    }
}

static void
set_paused(int pct)
{
    for (int i = 0; i < G.nconns; i++) {
        struct conn *c = &G.conns[i];
        int want = pct > 0 && (i * 7919) % 100 < pct;
        if (c->state != ST_READY || c->paused == want)
            continue;
        c->paused = (uint8_t)want;
        struct epoll_event ev = {.events = want ? 0 : EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

/* Returns 1 when the driver asked to quit. */
static int
on_command(void)
{
    static char line[256];
    static size_t have;
    ssize_t r = read(0, line + have, sizeof line - 1 - have);
    if (r <= 0)
        return 1;
    have += (size_t)r;
    line[have] = 0;
    char *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = 0;
        if (!strcmp(line, "reset"))
            window_reset();
        else if (!strcmp(line, "report"))
            report(stdout, "report");
        else if (!strncmp(line, "pause ", 6))
            set_paused(atoi(line + 6));
        else if (!strcmp(line, "resume"))
            set_paused(0);
        else if (!strcmp(line, "quit"))
            return 1;
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have - used + 1);
        have -= used;
    }
    if (have == sizeof line - 1)
        have = 0;
    return 0;
}

static void
usage(void)
{
    fputs("usage: armonia-loadgen --port P --secret S [options]\n"
          "  --host A          server address (127.0.0.1)\n"
          "  --proto armonia|sio  wire protocol (armonia)\n"
          "  --auth frame|header  first-frame auth or Authorization header (frame)\n"
          "  --conns N         connections of this process (1000)\n"
          "  --base B          global number of this process's first connection (0)\n"
          "  --inflight K      handshakes in progress at once (256)\n"
          "  --src A,B,...     local source addresses, round robin (127.0.0.2..9)\n"
          "  --tenant FMT      tenant name, printf format of the tenant number (bench)\n"
          "  --per-tenant K    connections per tenant: connection g is in tenant g/K (1000000)\n"
          "  --guards G        the first G connections of each tenant are guards (0)\n"
          "  --units U         connection g lives in unit u<(g%K)%U> (0: u<g%K>)\n"
          "  --out FILE        also write the final report there\n",
          stderr);
    exit(2);
}

int
main(int argc, char **argv)
{
    G.host = "127.0.0.1";
    G.nconns = 1000;
    G.inflight_max = 256;
    G.tenant_fmt = "bench";
    G.per_tenant = 1000000;
    const char *src =
        "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9";
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!v)
            usage();
        a++;
        if (!strcmp(o, "--host"))
            G.host = v;
        else if (!strcmp(o, "--port"))
            G.port = atoi(v);
        else if (!strcmp(o, "--proto"))
            G.proto = !strcmp(v, "sio") ? PROTO_SIO : PROTO_ARMONIA;
        else if (!strcmp(o, "--auth"))
            G.header_auth = !strcmp(v, "header");
        else if (!strcmp(o, "--conns"))
            G.nconns = atoi(v);
        else if (!strcmp(o, "--base"))
            G.base = atoi(v);
        else if (!strcmp(o, "--inflight"))
            G.inflight_max = atoi(v);
        else if (!strcmp(o, "--secret"))
            G.secret = v;
        else if (!strcmp(o, "--tenant"))
            G.tenant_fmt = v;
        else if (!strcmp(o, "--per-tenant"))
            G.per_tenant = atoi(v);
        else if (!strcmp(o, "--guards"))
            G.guards = atoi(v);
        else if (!strcmp(o, "--units"))
            G.units = atoi(v);
        else if (!strcmp(o, "--src"))
            src = v;
        else if (!strcmp(o, "--out"))
            G.out_path = v;
        else
            usage();
    }
    if (!G.port || !G.secret || G.nconns <= 0 || G.per_tenant <= 0 || G.inflight_max <= 0)
        usage();
    if (*src) {
        char *s = strdup(src), *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t && G.nsrc < MAX_SRC;
             t = strtok_r(NULL, ",", &save))
            if (inet_pton(AF_INET, t, &G.src[G.nsrc]) == 1)
                G.nsrc++;
        free(s);
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)G.nconns + 16 > rl.rlim_cur)
        die("--conns %d needs %d descriptors, the limit is %llu: run more processes", G.nconns,
            G.nconns + 16, (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(getpid() ^ now_us()));
    for (int k = 0; k < 4; k++)
        G.mask[k] = (uint8_t)(rand() & 0xff);
    G.conns = calloc((size_t)G.nconns, sizeof *G.conns);
    G.tokens = calloc((size_t)G.nconns, sizeof *G.tokens);
    if (!G.conns || !G.tokens)
        die("out of memory");
    for (int i = 0; i < G.nconns; i++) {
        char tok[TOKEN_MAX];
        mint_token(G.base + i, tok);
        if (!(G.tokens[i] = strdup(tok)))
            die("out of memory");
    }
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, 0, &sev);
    window_reset();

    struct epoll_event evs[512];
    int quit = 0;
    while (!quit) {
        while (G.next_to_start < G.nconns && G.inflight < G.inflight_max)
            conn_start(G.next_to_start++);
        int n = epoll_wait(G.ep, evs, 512, 50);
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            if (i == UINT32_MAX) {
                quit |= on_command();
                continue;
            }
            struct conn *c = &G.conns[i];
            if (c->state == ST_DEAD)
                continue;
            if (c->state == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
                    G.connect_errors++;
                    conn_kill(c, -1);
                    continue;
                }
                send_upgrade(c, (int)i);
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable((int)i);
        }
    }
    report(stdout, "final");
    if (G.out_path) {
        FILE *f = fopen(G.out_path, "w");
        if (f) {
            report(f, "final");
            fclose(f);
        }
    }
    return 0;
}
