/*
 * fuzz_wsrx.c - the bytes a WebSocket client sends once its upgrade
 * request is read: frame headers, payloads, close reasons, followed by
 * wsrx.c on their way through the recv() it defines, beside lws.
 *
 * Input: the first byte picks how lws reads: its low 7 bits the size of
 * each read (0..126 read 1..127 bytes, 127 reads 4096), its high bit a
 * MSG_PEEK read of the same size before each one. The rest is what the
 * client sends after a fixed upgrade request, which goes through first,
 * as in tests/unit/test_wsrx.c: the input is all frames, and the fuzzer
 * spends nothing on finding the end of a request. A real socket pair
 * carries the bytes; the wsi is only passed through (lws_close_reason(), the one
 * call into lws, is this file's own).
 *
 * Checks: recv() returns exactly the bytes written, in order; a peek
 * changes nothing; after each read the frames and unmasked frames
 * reported so far (wsrx_take() summed) are those whose header has been
 * read, counted as wsrx.h says by a parser written again here over the
 * whole input; wsrx_unmasked() stays set once an unmasked frame is read;
 * notify() is called when, and only when, there is news;
 * the close reasons named are those RFC 6455 asks for (a control frame
 * over 125 bytes, a close reason not UTF-8). Each run forgets the watch
 * and closes both sockets.
 */
#include <unistd.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "wsrx.h"

static char fake_wsi; /* stands for a struct lws: only lws_close_reason() uses it */
#define WSI ((struct lws *)&fake_wsi)

static struct wsrx *followed; /* the run's follower */

static const char upgrade[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

/* Close reasons wsrx named, by status. */
static unsigned reason_protocol, reason_payload;

void
lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf, size_t len)
{
    FUZZ_CHECK(wsi == WSI);
    FUZZ_CHECK(buf != NULL && len > 0 && len <= 123 && memchr(buf, '\0', len) == NULL);
    if (status == LWS_CLOSE_STATUS_PROTOCOL_ERR)
        reason_protocol++;
    else if (status == LWS_CLOSE_STATUS_INVALID_PAYLOAD)
        reason_payload++;
    else
        FUZZ_CHECK(!"an unexpected close status");
}

static unsigned notified;

static void
on_news(void *arg)
{
    FUZZ_CHECK(arg == &fake_wsi);
    notified++;
}

/* One frame header of the input, as wsrx.h counts it. */
struct seen {
    size_t at; /* offset just past the header */
    unsigned frames, unmasked;
};

/*
 * The frames of p[0..n): fills seen (one per complete header) and returns
 * how many; adds the close reasons RFC 6455 calls for to *protocol and
 * *payload.
 */
static size_t
walk(const uint8_t *p, size_t n, struct seen *seen, unsigned *protocol, unsigned *payload)
{
    size_t i = 0, k = 0;
    while (n - i >= 2) {
        unsigned fin = p[i] >> 7, op = p[i] & 0x0f, masked = p[i + 1] >> 7, len7 = p[i + 1] & 0x7f;
        size_t hs = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (n - i < hs)
            break;
        uint64_t len = len7;
        if (len7 >= 126) {
            len = 0;
            for (size_t b = 0; b < (len7 == 126 ? 2u : 8u); b++)
                len = len << 8 | p[i + 2 + b];
        }
        const uint8_t *mask = p + i + hs - 4;
        i += hs;
        seen[k].at = i;
        seen[k].frames = !(fin && op < 8);
        seen[k].unmasked = !masked;
        k++;
        if ((op & 8) && len7 > 125)
            ++*protocol;
        if (len > n - i)
            break;
        if (op == 8 && len > 2) {
            uint8_t reason[125];
            size_t m = len < sizeof reason ? (size_t)len : sizeof reason;
            for (size_t b = 0; b < m; b++)
                reason[b] = p[i + b] ^ (masked ? mask[b & 3] : 0);
            if (m > 2 && !fuzz_utf8_valid((const char *)reason + 2, m - 2))
                ++*payload;
        }
        i += (size_t)len;
    }
    return k;
}

/* Writes p[0..n) into sv[0] and reads it back through recv() on sv[1]. */
static void
pass(int sv[2], const uint8_t *p, size_t n, size_t chunk, int peek, const struct seen *seen,
     size_t n_seen)
{
    uint8_t buf[4096], look[4096];
    size_t done = 0, next = 0;
    unsigned frames = 0, unmasked = 0, want_frames = 0, want_unmasked = 0;

    while (done < n) {
        size_t w = n - done < sizeof buf ? n - done : sizeof buf;
        FUZZ_CHECK(write(sv[0], p + done, w) == (ssize_t)w);
        size_t got = 0;
        while (got < w) {
            size_t want = chunk < w - got ? chunk : w - got;
            if (peek && seen) {
                struct wsrx_news before = wsrx_take(followed);
                frames += before.frames;
                unmasked += before.unmasked;
                ssize_t r = recv(sv[1], look, want, MSG_PEEK);
                FUZZ_CHECK(r > 0 && (size_t)r <= want);
                FUZZ_CHECK(memcmp(look, p + done + got, (size_t)r) == 0);
                struct wsrx_news after = wsrx_take(followed);
                FUZZ_CHECK(after.frames == 0 && after.unmasked == 0);
            }
            ssize_t r = recv(sv[1], buf, want, 0);
            FUZZ_CHECK(r > 0 && (size_t)r <= want);
            FUZZ_CHECK(memcmp(buf, p + done + got, (size_t)r) == 0);
            got += (size_t)r;
            if (!seen)
                continue;
            struct wsrx_news news = wsrx_take(followed);
            frames += news.frames;
            unmasked += news.unmasked;
            while (next < n_seen && seen[next].at <= done + got) {
                want_frames += seen[next].frames;
                want_unmasked += seen[next].unmasked;
                next++;
            }
            FUZZ_CHECK(frames == want_frames);
            FUZZ_CHECK(unmasked == want_unmasked);
            FUZZ_CHECK(wsrx_unmasked(followed) == (unmasked > 0));
        }
        done += w;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t how = fuzz_byte(&in);
    size_t chunk = (how & 0x7f) == 0x7f ? 4096 : (size_t)(how & 0x7f) + 1;
    int peek = how >> 7, sv[2];
    unsigned protocol = 0, payload = 0;
    struct seen *seen = malloc((in.left / 2 + 1) * sizeof(*seen));

    FUZZ_CHECK(seen != NULL);
    size_t n_seen = walk(in.p, in.left, seen, &protocol, &payload);
    reason_protocol = reason_payload = notified = 0;

    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    wsrx_on_news(on_news);
    struct wsrx *x = followed = wsrx_watch(WSI, sv[1]);
    FUZZ_CHECK(x != NULL);
    pass(sv, (const uint8_t *)upgrade, strlen(upgrade), chunk, 0, NULL, 0);
    FUZZ_CHECK(wsrx_established(x, &fake_wsi) == 0);
    pass(sv, in.p, in.left, chunk, peek, seen, n_seen);
    FUZZ_CHECK(reason_protocol == protocol);
    FUZZ_CHECK(reason_payload == payload);
    unsigned news = 0;
    for (size_t i = 0; i < n_seen; i++)
        news += seen[i].frames + seen[i].unmasked;
    FUZZ_CHECK((notified > 0) == (news > 0));

    wsrx_forget(x);
    followed = NULL;
    close(sv[0]);
    close(sv[1]);
    free(seen);
    return 0;
}
