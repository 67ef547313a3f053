/*
 * test_wsrx.c - unit tests for hub/wsrx.c, the frame headers followed on
 * the bytes read from a WebSocket client's socket.
 *
 * The bytes go through a real socket pair and the recv() wsrx.c defines,
 * as lws reads them, in reads of every size down to one byte: a header
 * split across reads must be followed the same as a whole one. The wsi is
 * only a key here (the cases never reach lws itself).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "wsrx.h"

static char fake_wsi; /* stands for a struct lws: only lws_close_reason() would use it */
#define WSI ((struct lws *)&fake_wsi)

static struct wsrx *x; /* the follower of the open pair */

static const char upgrade[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

/* Appends a client frame (masked unless mask is 0) to out; returns its length. */
static size_t
frame(unsigned char *out, int fin, int opcode, const unsigned char *payload, size_t len, int mask)
{
    size_t h = 0;
    out[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        out[h++] = (unsigned char)(m | len);
    } else if (len < 65536) {
        out[h++] = m | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = m | 127;
        for (int k = 7; k >= 0; k--)
            out[h++] = (unsigned char)((uint64_t)len >> (8 * k));
    }
    static const unsigned char key[4] = {0x11, 0x22, 0x33, 0x44};
    if (mask) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[h + i] = payload[i] ^ (mask ? key[i & 3] : 0);
    return h + len;
}

/* Writes p[0..n) into the pair and reads it back through recv() in reads of chunk bytes. */
static void
pass(int sv[2], const unsigned char *p, size_t n, size_t chunk)
{
    unsigned char buf[4096];
    while (n) {
        size_t w = n < sizeof(buf) ? n : sizeof(buf);
        assert_int_equal(write(sv[0], p, w), (ssize_t)w);
        size_t got = 0;
        while (got < w) {
            size_t want = chunk < w - got ? chunk : w - got;
            ssize_t r = recv(sv[1], buf, want, 0);
            assert_true(r > 0);
            got += (size_t)r;
        }
        p += w;
        n -= w;
    }
}

static int notified;

static void
on_news(void *arg)
{
    (void)arg;
    notified++;
}

/* Opens a watched pair and passes the upgrade request through it. */
static void
open_upgraded(int sv[2], size_t chunk)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wsrx_on_news(on_news);
    x = wsrx_watch(WSI, sv[1]);
    assert_non_null(x);
    pass(sv, (const unsigned char *)upgrade, strlen(upgrade), chunk);
    assert_int_equal(wsrx_established(x, &notified), 0);
}

static void
close_pair(int sv[2])
{
    wsrx_forget(x);
    x = NULL;
    close(sv[0]);
    close(sv[1]);
}

static void
test_counts_every_frame_but_a_message_end(void **state)
{
    (void)state;
    static unsigned char big[70000];
    memset(big, 'a', sizeof(big));
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
        int sv[2];
        unsigned char out[200000];
        size_t n = 0;
        open_upgraded(sv, chunk);
        notified = 0;
        n += frame(out + n, 1, 0x9, (const unsigned char *)"p1", 2, 1); /* ping: 1 */
        n += frame(out + n, 0, 0x1, big, 10, 1);                        /* first fragment: 1 */
        n += frame(out + n, 1, 0xa, NULL, 0, 1);                        /* pong: 1 */
        n += frame(out + n, 0, 0x0, big, 300, 1);                       /* 16-bit length: 1 */
        n += frame(out + n, 1, 0x0, big, sizeof(big), 1);               /* 64-bit, the end: 0 */
        n += frame(out + n, 1, 0x2, big, 5, 1);                         /* a whole message: 0 */
        n += frame(out + n, 1, 0x9, (const unsigned char *)"p2", 2, 1); /* ping: 1 */
        pass(sv, out, n, chunk);
        struct wsrx_news news = wsrx_take(x);
        assert_int_equal(news.frames, 4 + 1);
        assert_int_equal(news.unmasked, 0);
        assert_true(notified > 0);
        assert_int_equal(wsrx_unmasked(x), 0);
        news = wsrx_take(x);
        assert_int_equal(news.frames, 0); /* taken */
        close_pair(sv);
    }
}

static void
test_unmasked_frame_is_seen_across_reads(void **state)
{
    (void)state;
    for (size_t chunk = 1; chunk <= 64; chunk *= 2) {
        int sv[2];
        unsigned char out[512];
        size_t n = 0;
        open_upgraded(sv, chunk);
        n += frame(out + n, 1, 0x1, (const unsigned char *)"{\"type\":\"ping\"}", 15, 1);
        n += frame(out + n, 1, 0x1, (const unsigned char *)"{\"type\":\"ping\"}", 15, 0);
        pass(sv, out, n, chunk);
        struct wsrx_news news = wsrx_take(x);
        assert_int_equal(news.unmasked, 1);
        assert_int_equal(news.frames, 0);
        assert_int_equal(wsrx_unmasked(x), 1);
        close_pair(sv);
    }
}

static void
test_bytes_before_the_101_are_refused(void **state)
{
    (void)state;
    int sv[2];
    unsigned char out[64];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wsrx_on_news(on_news);
    x = wsrx_watch(WSI, sv[1]);
    assert_non_null(x);
    size_t n = strlen(upgrade);
    memcpy(out, upgrade, n);
    n += frame(out + n, 1, 0x9, NULL, 0, 1);
    pass(sv, out, n, sizeof(out));
    assert_int_equal(wsrx_established(x, &notified), -1);
    close_pair(sv);
}

static void
test_unwatched_socket_is_left_alone(void **state)
{
    (void)state;
    int sv[2];
    unsigned char out[64];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t n = frame(out, 1, 0x9, NULL, 0, 0);
    pass(sv, out, n, sizeof(out));
    struct wsrx_news news = wsrx_take(x);
    assert_int_equal(news.frames + news.unmasked, 0);
    close(sv[0]);
    close(sv[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_every_frame_but_a_message_end),
        cmocka_unit_test(test_unmasked_frame_is_seen_across_reads),
        cmocka_unit_test(test_bytes_before_the_101_are_refused),
        cmocka_unit_test(test_unwatched_socket_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
