/*
 * wsrx.c - follows the frame headers of WebSocket clients on the bytes lws
 * reads (see wsrx.h for why).
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "wsrx.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The close opcode (RFC 6455 §5.5.1). */
#define WSRX_OP_CLOSE 0x8
/* Payload of a control frame at most (RFC 6455 §5.5). */
#define WSRX_CONTROL_MAX 125

enum wsrx_phase {
    WSRX_HANDSHAKE, /* reading the upgrade request */
    WSRX_UPGRADED,  /* request read, 101 not yet decided */
    WSRX_FRAMES,    /* frames */
};

/*
 * One followed socket. Every WebSocket connection has one for its whole
 * life, so it is kept small: a close frame's reason is checked for UTF-8 as
 * its bytes pass, not buffered.
 */
struct wsrx {
    struct lws *wsi;       /* not owned: the connection followed */
    void *arg;             /* for wsrx_notify; NULL until the handshake is complete */
    uint64_t remain;       /* payload bytes of the current frame still to come */
    struct wsrx_news news; /* since the last wsrx_take() */
    int fd;
    uint32_t utf8_cp;              /* close reason: the code point being read */
    unsigned char h[2];            /* the current frame header's first two bytes */
    unsigned char mask[4];         /* and its masking key */
    uint8_t hdr_len;               /* bytes of the header read */
    uint8_t opcode;                /* of the current frame */
    uint8_t ctl_pos;               /* close frame: payload bytes read (up to 125) */
    uint8_t utf8_need, utf8_total; /* close reason: continuation bytes to come, of how many */
    unsigned phase : 2;            /* enum wsrx_phase */
    unsigned line_started : 1;     /* handshake: the current header line has bytes */
    unsigned early : 1;            /* bytes came after the upgrade request, before the 101 */
    unsigned masked : 1;           /* the current frame */
    unsigned unmasked_ever : 1;
    unsigned utf8_bad : 1; /* the close reason read so far is not UTF-8 */
    unsigned tls : 1;      /* read through SSL_read(): recv() returns ciphertext, not followed */
    unsigned heard : 1;    /* a byte of the request has been read */
};

/* The followed sockets, indexed by descriptor (not owned; grown on demand). */
static struct wsrx **wsrx_tab;
static size_t wsrx_cap;
static void (*wsrx_notify)(void *arg); /* the same for every follower */

static ssize_t (*real_recv)(int, void *, size_t, int);
static int (*real_ssl_read)(SSL *, void *, int);

/*
 * Follows one byte of a close reason (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF); utf8_bad is set for good once it is
 * not UTF-8.
 */
static void
utf8_step(struct wsrx *x, unsigned char c)
{
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (!x->utf8_need) {
        if (c < 0x80)
            return;
        if ((c & 0xe0) == 0xc0)
            x->utf8_total = 1, x->utf8_cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            x->utf8_total = 2, x->utf8_cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            x->utf8_total = 3, x->utf8_cp = c & 0x07;
        else
            x->utf8_bad = 1;
        x->utf8_need = x->utf8_bad ? 0 : x->utf8_total;
        return;
    }
    if ((c & 0xc0) != 0x80) {
        x->utf8_bad = 1;
        x->utf8_need = 0;
        return;
    }
    x->utf8_cp = (x->utf8_cp << 6) | (c & 0x3f);
    if (--x->utf8_need)
        return;
    uint32_t cp = x->utf8_cp;
    if (cp < min_cp[x->utf8_total] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        x->utf8_bad = 1;
}

/*
 * A close frame's payload is complete. lws 4.1 drops a connection whose
 * close reason is not UTF-8 without a close frame of its own; naming the
 * reason first makes it send 1007 (RFC 6455 §8.1) as it drops.
 */
static void
close_frame_read(struct wsrx *x)
{
    if (x->ctl_pos > 2 && (x->utf8_bad || x->utf8_need))
        lws_close_reason(x->wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD,
                         (unsigned char *)"close reason not UTF-8", 22);
}

/* Bytes of extended payload length a header with second byte h1 has. */
static unsigned
ext_size(unsigned char h1)
{
    unsigned len7 = h1 & 0x7f;
    return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

/*
 * Follows one byte of a frame header: the first two are kept, an extended
 * length goes straight into remain, the masking key into mask. Returns 1
 * when it was the header's last byte.
 */
static int
header_byte(struct wsrx *x, unsigned char b)
{
    unsigned k = x->hdr_len++;
    if (k < 2) {
        x->h[k] = b;
        if (k == 0)
            return 0;
    } else if (k < 2 + ext_size(x->h[1])) {
        x->remain = (x->remain << 8) | b;
    } else {
        x->mask[(k - 2 - ext_size(x->h[1])) & 3] = b;
    }
    return x->hdr_len == 2 + ext_size(x->h[1]) + ((x->h[1] & 0x80) ? 4 : 0);
}

/* A frame header is complete (an extended length is in remain already). */
static void
header_read(struct wsrx *x)
{
    unsigned len7 = x->h[1] & 0x7f;
    int fin = !!(x->h[0] & 0x80);
    x->opcode = x->h[0] & 0x0f;
    x->masked = !!(x->h[1] & 0x80);
    if (len7 < 126)
        x->remain = len7;
    x->ctl_pos = 0;
    x->utf8_need = 0;
    x->utf8_bad = 0;
    if (!x->masked) {
        x->news.unmasked++;
        x->unmasked_ever = 1;
    }
    /* The last frame of a data message is counted as the message itself. */
    if (!(fin && x->opcode < 8))
        x->news.frames++;
    if ((x->opcode & 8) && len7 > WSRX_CONTROL_MAX)
        /* lws drops it without a close frame: name the reason first. */
        lws_close_reason(x->wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR,
                         (unsigned char *)"control frame over 125 bytes", 28);
    if (x->opcode == WSRX_OP_CLOSE && !x->remain)
        close_frame_read(x);
}

/* Follows p[0..n), read from x's socket, one frame part at a time. */
static void
feed(struct wsrx *x, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (x->phase != WSRX_FRAMES) {
            for (; i < n; i++) {
                if (x->phase == WSRX_UPGRADED) {
                    x->early = 1;
                    return;
                }
                if (p[i] == '\n') {
                    if (!x->line_started)
                        x->phase = WSRX_UPGRADED;
                    x->line_started = 0;
                } else if (p[i] != '\r') {
                    x->line_started = 1;
                }
            }
            return;
        }
        if (!x->remain || x->hdr_len) {
            /* (Re)reading a header: 2 bytes, then as many as they announce. */
            int whole = 0;
            while (i < n && !whole)
                whole = header_byte(x, p[i++]);
            if (!whole)
                return;
            x->hdr_len = 0;
            header_read(x);
            continue;
        }
        size_t take = n - i < x->remain ? n - i : (size_t)x->remain;
        if (x->opcode == WSRX_OP_CLOSE) {
            /* The first two bytes are the status code, the rest the reason. */
            for (size_t k = 0; k < take && x->ctl_pos < WSRX_CONTROL_MAX; k++) {
                unsigned char m = x->masked ? x->mask[x->ctl_pos & 3] : 0;
                if (x->ctl_pos++ >= 2)
                    utf8_step(x, p[i + k] ^ m);
            }
        }
        i += take;
        x->remain -= take;
        if (!x->remain && x->opcode == WSRX_OP_CLOSE)
            close_frame_read(x);
    }
}

/* Stops following x's socket and frees x. */
static void
drop(struct wsrx *x)
{
    if ((size_t)x->fd < wsrx_cap && wsrx_tab[x->fd] == x)
        wsrx_tab[x->fd] = NULL;
    free(x);
}

/* Follows n bytes a read returned for x, and tells of news once the
 * handshake is complete. */
static void
follow(struct wsrx *x, const void *buf, size_t n)
{
    unsigned before = x->news.frames + x->news.unmasked;
    x->heard = 1;
    feed(x, buf, n);
    if (x->arg && wsrx_notify && x->news.frames + x->news.unmasked != before)
        wsrx_notify(x->arg);
}

/* The follower of fd, or NULL. */
static struct wsrx *
watched(int fd)
{
    return fd >= 0 && (size_t)fd < wsrx_cap ? wsrx_tab[fd] : NULL;
}

/*
 * The recv() lws calls: the C library's, and for a followed plain socket
 * the bytes it returned go through feed() first. MSG_PEEK reads are not
 * consumed, so they are not followed.
 */
ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
    if (!real_recv) {
        real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
        if (!real_recv) {
            errno = ENOSYS;
            return -1;
        }
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    struct wsrx *x = n > 0 && !(flags & MSG_PEEK) ? watched(fd) : NULL;
    if (x && !x->tls)
        follow(x, buf, (size_t)n);
    return n;
}

/*
 * The SSL_read() lws calls for a TLS connection: OpenSSL's, and for a
 * followed socket the plaintext it returned goes through feed() first, as
 * recv() does for a plain one. The socket is the one lws gave SSL_set_fd().
 */
int
SSL_read(SSL *ssl, void *buf, int num)
{
    if (!real_ssl_read) {
        real_ssl_read = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
        if (!real_ssl_read)
            return -1;
    }
    int n = real_ssl_read(ssl, buf, num);
    struct wsrx *x = n > 0 ? watched(SSL_get_fd(ssl)) : NULL;
    if (x && x->tls)
        follow(x, buf, (size_t)n);
    return n;
}

struct wsrx *
wsrx_watch(struct lws *wsi, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= wsrx_cap) {
        size_t cap = wsrx_cap ? wsrx_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct wsrx **t = realloc(wsrx_tab, cap * sizeof(*t));
        if (!t)
            return NULL;
        memset(t + wsrx_cap, 0, (cap - wsrx_cap) * sizeof(*t));
        wsrx_tab = t;
        wsrx_cap = cap;
    }
    if (wsrx_tab[fd])
        drop(wsrx_tab[fd]); /* a socket lws closed without telling (never expected) */
    struct wsrx *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->wsi = wsi;
    x->fd = fd;
    wsrx_tab[fd] = x;
    return x;
}

void
wsrx_over_tls(struct wsrx *x)
{
    if (x)
        x->tls = 1;
}

void
wsrx_forget(struct wsrx *x)
{
    if (x)
        drop(x);
}

void
wsrx_on_news(void (*notify)(void *arg))
{
    wsrx_notify = notify;
}

int
wsrx_established(struct wsrx *x, void *arg)
{
    if (!x)
        return 0;
    x->arg = arg;
    if (x->phase != WSRX_UPGRADED || x->early)
        return -1;
    x->phase = WSRX_FRAMES;
    return 0;
}

struct wsrx_news
wsrx_take(struct wsrx *x)
{
    struct wsrx_news none = {0};
    if (!x)
        return none;
    struct wsrx_news n = x->news;
    x->news = none;
    return n;
}

int
wsrx_heard(const struct wsrx *x)
{
    return x && x->heard;
}

int
wsrx_unmasked(const struct wsrx *x)
{
    return x && x->unmasked_ever;
}
