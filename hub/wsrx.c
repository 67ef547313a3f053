/*
 * wsrx.c - follows the frame headers of WebSocket clients on the bytes lws
 * reads (see wsrx.h for why).
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "wsrx.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uthash.h>

/* Bytes of a frame header at most: 2, 8 of extended length, 4 of mask. */
#define WSRX_HEADER_MAX 14
/* The close opcode (RFC 6455 §5.5.1). */
#define WSRX_OP_CLOSE 0x8
/* Payload of a control frame at most (RFC 6455 §5.5). */
#define WSRX_CONTROL_MAX 125

enum wsrx_phase {
    WSRX_HANDSHAKE, /* reading the upgrade request */
    WSRX_UPGRADED,  /* request read, 101 not yet decided */
    WSRX_FRAMES,    /* frames */
};

struct wsrx {
    struct lws *wsi; /* not owned: the connection followed (the key of wsrx_by_wsi) */
    int fd;
    enum wsrx_phase phase;
    unsigned line_len; /* handshake: bytes in the current header line */
    unsigned early;    /* 1: bytes came after the upgrade request, before the 101 */
    unsigned char hdr[WSRX_HEADER_MAX];
    unsigned hdr_len;                    /* bytes of the current frame header read */
    uint64_t remain;                     /* payload bytes of the current frame still to come */
    unsigned char ctl[WSRX_CONTROL_MAX]; /* a close frame's payload, unmasked */
    unsigned ctl_len;
    unsigned char opcode, masked, mask_at;
    struct wsrx_news news; /* since the last wsrx_take() */
    unsigned unmasked_ever;
    void (*notify)(void *arg);
    void *arg;
    UT_hash_handle hh; /* in wsrx_by_wsi */
};

/*
 * The followed sockets, indexed by descriptor (owned; grown on demand), and
 * the same entries by connection: lws names a connection's end
 * (LWS_CALLBACK_WSI_DESTROY) only once its descriptor is closed, and other
 * connections' ends (the database's, curl's) reach ws.c's callback too.
 */
static struct wsrx **wsrx_tab;
static size_t wsrx_cap;
static struct wsrx *wsrx_by_wsi;

static ssize_t (*real_recv)(int, void *, size_t, int);

/* Bytes of a frame header once its first two are known. */
static unsigned
header_size(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* Whether p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates). */
static int
utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], need, min;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/*
 * A close frame's payload is complete. lws 4.1 drops a connection whose
 * close reason is not UTF-8 without a close frame of its own; naming the
 * reason first makes it send 1007 (RFC 6455 §8.1) as it drops.
 */
static void
close_frame_read(struct wsrx *x)
{
    if (x->ctl_len > 2 && !utf8_valid(x->ctl + 2, x->ctl_len - 2))
        lws_close_reason(x->wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD,
                         (unsigned char *)"close reason not UTF-8", 22);
}

/* A frame header is complete. */
static void
header_read(struct wsrx *x)
{
    const unsigned char *h = x->hdr;
    unsigned len7 = h[1] & 0x7f, at = 2;
    int fin = !!(h[0] & 0x80);
    x->opcode = h[0] & 0x0f;
    x->masked = !!(h[1] & 0x80);
    if (len7 == 126) {
        x->remain = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
    } else if (len7 == 127) {
        x->remain = 0;
        for (unsigned k = 0; k < 8; k++)
            x->remain = (x->remain << 8) | h[2 + k];
        at = 10;
    } else {
        x->remain = len7;
    }
    x->mask_at = (unsigned char)at;
    x->ctl_len = 0;
    if (!x->masked) {
        x->news.unmasked++;
        x->unmasked_ever++;
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
                    if (!x->line_len)
                        x->phase = WSRX_UPGRADED;
                    x->line_len = 0;
                } else if (p[i] != '\r') {
                    x->line_len++;
                }
            }
            return;
        }
        if (!x->remain || x->hdr_len) {
            /* (Re)reading a header: 2 bytes, then as many as they announce. */
            while (i < n && (x->hdr_len < 2 || x->hdr_len < header_size(x->hdr)))
                x->hdr[x->hdr_len++] = p[i++];
            if (x->hdr_len < 2 || x->hdr_len < header_size(x->hdr))
                return;
            x->hdr_len = 0;
            header_read(x);
            continue;
        }
        size_t take = n - i < x->remain ? n - i : (size_t)x->remain;
        if (x->opcode == WSRX_OP_CLOSE) {
            for (size_t k = 0; k < take && x->ctl_len < WSRX_CONTROL_MAX; k++) {
                unsigned char m = x->masked ? x->hdr[x->mask_at + ((x->ctl_len) & 3)] : 0;
                x->ctl[x->ctl_len++] = p[i + k] ^ m;
            }
        }
        i += take;
        x->remain -= take;
        if (!x->remain && x->opcode == WSRX_OP_CLOSE)
            close_frame_read(x);
    }
}

static struct wsrx *
find(struct lws *wsi)
{
    struct wsrx *x = NULL;
    HASH_FIND_PTR(wsrx_by_wsi, &wsi, x);
    return x;
}

/* Stops following x's socket and frees x. */
static void
drop(struct wsrx *x)
{
    if ((size_t)x->fd < wsrx_cap && wsrx_tab[x->fd] == x)
        wsrx_tab[x->fd] = NULL;
    HASH_DEL(wsrx_by_wsi, x);
    free(x);
}

/*
 * The recv() lws calls: the C library's, and for a followed socket the
 * bytes it returned go through feed() first. MSG_PEEK reads are not
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
    if (n > 0 && fd >= 0 && (size_t)fd < wsrx_cap && wsrx_tab[fd] && !(flags & MSG_PEEK)) {
        struct wsrx *x = wsrx_tab[fd];
        unsigned before = x->news.frames + x->news.unmasked;
        feed(x, buf, (size_t)n);
        if (x->notify && x->news.frames + x->news.unmasked != before)
            x->notify(x->arg);
    }
    return n;
}

int
wsrx_watch(struct lws *wsi, int fd)
{
    if (fd < 0)
        return -1;
    if ((size_t)fd >= wsrx_cap) {
        size_t cap = wsrx_cap ? wsrx_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct wsrx **t = realloc(wsrx_tab, cap * sizeof(*t));
        if (!t)
            return -1;
        memset(t + wsrx_cap, 0, (cap - wsrx_cap) * sizeof(*t));
        wsrx_tab = t;
        wsrx_cap = cap;
    }
    struct wsrx *x = find(wsi);
    if (x)
        drop(x); /* watched twice (never expected) */
    if (wsrx_tab[fd])
        drop(wsrx_tab[fd]); /* a socket lws closed without telling (never expected) */
    x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->wsi = wsi;
    x->fd = fd;
    wsrx_tab[fd] = x;
    HASH_ADD_PTR(wsrx_by_wsi, wsi, x);
    return 0;
}

void
wsrx_forget(struct lws *wsi)
{
    struct wsrx *x = find(wsi);
    if (x)
        drop(x);
}

int
wsrx_established(struct lws *wsi, void (*notify)(void *arg), void *arg)
{
    struct wsrx *x = find(wsi);
    if (!x)
        return 0;
    x->notify = notify;
    x->arg = arg;
    if (x->phase != WSRX_UPGRADED || x->early)
        return -1;
    x->phase = WSRX_FRAMES;
    return 0;
}

struct wsrx_news
wsrx_take(struct lws *wsi)
{
    struct wsrx *x = find(wsi);
    struct wsrx_news none = {0};
    if (!x)
        return none;
    struct wsrx_news n = x->news;
    x->news = none;
    return n;
}

int
wsrx_unmasked(struct lws *wsi)
{
    struct wsrx *x = find(wsi);
    return x && x->unmasked_ever;
}
