/*
 * test_http.c - unit tests for channels/http.c, curl inside the lws loop.
 *
 * Each test runs a real lws context (no listening port) carrying only the
 * engine's protocol, and turns it with lws_service() until the callbacks it
 * waits for have arrived or a deadline passes. The peer is a small HTTP/1.1
 * server on 127.0.0.1 running in its own threads, one per connection, with
 * keep-alive; its paths each provoke one behaviour a provider client meets:
 * a JSON answer, a 503 with Retry-After, an oversized body, an answer that
 * never comes, an echo of the request body, an interim 100 response, a
 * redirect and a large upload. Frees are checked by running this under AddressSanitizer or
 * valgrind.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * hub/http.h (the /healthz and /metrics server) has the same name and comes
 * first on the include path, so this header is named by its place.
 */
#include "../../channels/http.h"

/* Most peer connections over the whole run; more are refused. */
#define PEER_MAX_CONNS 256
/* Largest request (head and body) the peer reads. */
#define PEER_MAX_REQUEST 16384
/* Size of the /big body, well past HTTP_MAX_BODY. */
#define PEER_BIG_BODY (200 * 1024)
/* Size of the /upload request body: many times curl's upload buffer. */
#define TEST_UPLOAD (8 * 1024 * 1024)
/* Default CURLOPT_TIMEOUT_MS and loop deadline of a test. */
#define TEST_TIMEOUT_MS 5000

static const char ok_json[] = "{\"ok\":true,\"id\":\"m-1\"}";
static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* The peer server: an accepting thread and one thread per connection. */
static struct {
    int lfd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_t conns[PEER_MAX_CONNS];
    int nconns;
    int requests; /* requests read; read and written with __atomic builtins */
} peer;

/* One test's loop: an lws context with the engine's protocol, and the engine. */
struct rig {
    struct lws_context *ctx;
    struct http_engine *e;
    lws_sorted_usec_list_t deadline;
    lws_sorted_usec_list_t tick;
    int expired;
};

/* What one callback saw; body is a copy owned by the struct. */
struct got {
    int calls;
    CURLcode code;
    long status;
    char *body;
    size_t body_len;
    int terminated; /* body[body_len] was NUL and no NUL came earlier */
    long long retry_after_s;
    int has_error;
};

static int
send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
send_response(int fd, const char *status, const char *extra, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n"
                     "%s\r\n",
                     status, len, extra);
    if (send_all(fd, head, (size_t)n))
        return -1;
    return send_all(fd, body, len);
}

/*
 * A 503 whose Retry-After is of the form named: an HTTP-date 30 s ahead in
 * each of the three forms RFC 9110 names ("imf", "rfc850", "asctime"), one
 * in the past ("past"), or a value no reader understands ("junk").
 */
static int
answer_retry_after(int fd, const char *form)
{
    static const struct {
        const char *form, *fmt;
        int ahead;
    } forms[] = {
        {"imf", "%a, %d %b %Y %H:%M:%S GMT", 30},
        {"rfc850", "%A, %d-%b-%y %H:%M:%S GMT", 30},
        {"asctime", "%a %b %e %H:%M:%S %Y", 30},
        {"past", "%a, %d %b %Y %H:%M:%S GMT", -30},
    };
    char value[64] = "soon";
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        if (!strcmp(form, forms[i].form)) {
            time_t at = time(NULL) + forms[i].ahead;
            struct tm tm;
            gmtime_r(&at, &tm);
            strftime(value, sizeof(value), forms[i].fmt, &tm);
        }
    char extra[96];
    snprintf(extra, sizeof(extra), "Retry-After: %s\r\n", value);
    return send_response(fd, "503 Service Unavailable", extra, "busy", 4);
}

/* Answers one request; returns -1 when the connection must end. */
static int
peer_answer(int fd, const char *path, const char *head, const char *body, size_t len)
{
    if (!strcmp(path, "/ok"))
        return send_response(fd, "200 OK", "", ok_json, strlen(ok_json));
    if (!strcmp(path, "/retry"))
        return send_response(fd, "503 Service Unavailable", "Retry-After: 7\r\n", "busy", 4);
    if (!strncmp(path, "/retry-", 7))
        return answer_retry_after(fd, path + 7);
    if (!strcmp(path, "/echo")) {
        if (!strcasestr(head, "\r\nX-Armonia: yes\r\n"))
            return send_response(fd, "400 Bad Request", "", "no header", 9);
        return send_response(fd, "200 OK", "", body, len);
    }
    if (!strcmp(path, "/continue")) {
        static const char interim[] = "HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\n";
        if (send_all(fd, interim, sizeof(interim) - 1))
            return -1;
        return send_response(fd, "200 OK", "", ok_json, strlen(ok_json));
    }
    if (!strcmp(path, "/moved"))
        return send_response(fd, "302 Found", "Location: /ok\r\nRetry-After: 99\r\n", "", 0);
    if (!strcmp(path, "/big")) {
        char *big = malloc(PEER_BIG_BODY);
        if (!big)
            return -1;
        for (size_t i = 0; i < PEER_BIG_BODY; i++)
            big[i] = (char)('a' + i % 26);
        int rc = send_response(fd, "200 OK", "", big, PEER_BIG_BODY);
        free(big);
        return rc;
    }
    if (!strcmp(path, "/hang")) {
        char sink[256];
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
        return -1;
    }
    return send_response(fd, "404 Not Found", "", "", 0);
}

/*
 * Reads an upload of clen bytes, of which the first n already arrived at
 * head, without keeping it, and answers with its length and byte sum.
 */
static int
peer_upload(int fd, const char *head, size_t n, size_t clen)
{
    char chunk[65536], answer[64];
    size_t got = 0;
    uint32_t sum = 0;

    for (;;) {
        for (size_t i = 0; i < n && got < clen; i++, got++)
            sum += (unsigned char)head[i];
        if (got == clen)
            break;
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r <= 0)
            return -1;
        head = chunk;
        n = (size_t)r;
    }
    int len = snprintf(answer, sizeof(answer), "{\"bytes\":%zu,\"sum\":%u}", got, sum);
    return send_response(fd, "200 OK", "", answer, (size_t)len);
}

/* Serves requests on one keep-alive connection until the client closes it. */
static void *
peer_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(PEER_MAX_REQUEST + 1);
    size_t have = 0;

    while (buf) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = have < PEER_MAX_REQUEST ? read(fd, buf + have, PEER_MAX_REQUEST - have) : 0;
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        size_t hlen = (size_t)(end + 4 - buf);
        char method[16], path[128];
        buf[have] = '\0';
        if (sscanf(buf, "%15s %127s", method, path) != 2)
            goto out;
        size_t clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        const char *expect = strcasestr(buf, "\r\nExpect: 100-continue\r\n");
        if (expect && expect < end && send_all(fd, continue_100, sizeof(continue_100) - 1))
            goto out;
        if (!strcmp(path, "/upload")) {
            /* curl does not pipeline, so nothing follows the body yet. */
            __atomic_add_fetch(&peer.requests, 1, __ATOMIC_SEQ_CST);
            if (peer_upload(fd, buf + hlen, have - hlen, clen))
                goto out;
            have = 0;
            continue;
        }
        if (hlen + clen > PEER_MAX_REQUEST)
            goto out;
        while (have < hlen + clen) {
            ssize_t n = read(fd, buf + have, PEER_MAX_REQUEST - have);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        buf[hlen - 2] = '\0'; /* the head ends with its last header's CRLF */
        __atomic_add_fetch(&peer.requests, 1, __ATOMIC_SEQ_CST);
        if (peer_answer(fd, path, buf, buf + hlen, clen))
            goto out;
        memmove(buf, buf + hlen + clen, have - hlen - clen);
        have -= hlen + clen;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *
peer_accept(void *arg)
{
    for (;;) {
        int c = accept(peer.lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        pthread_mutex_lock(&peer.mu);
        if (peer.nconns == PEER_MAX_CONNS ||
            pthread_create(&peer.conns[peer.nconns], NULL, peer_conn, (void *)(intptr_t)c))
            close(c);
        else
            peer.nconns++;
        pthread_mutex_unlock(&peer.mu);
    }
}

/* Binds a loopback TCP socket to an ephemeral port; returns it and sets *port (0 on failure). */
static int
bind_loopback(int *port)
{
    *port = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len)) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int
peer_start(void **state)
{
    pthread_mutex_init(&peer.mu, NULL);
    peer.lfd = bind_loopback(&peer.port);
    if (peer.lfd < 0 || listen(peer.lfd, 64))
        return -1;
    return pthread_create(&peer.acceptor, NULL, peer_accept, NULL) ? -1 : 0;
}

/* Stops accepting, then waits for every connection (all closed by now by the tests). */
static int
peer_stop(void **state)
{
    shutdown(peer.lfd, SHUT_RDWR);
    pthread_join(peer.acceptor, NULL);
    close(peer.lfd);
    for (int i = 0; i < peer.nconns; i++)
        pthread_join(peer.conns[i], NULL);
    pthread_mutex_destroy(&peer.mu);
    return 0;
}

static int
rig_setup(void **state)
{
    static struct lws_protocols protocols[2];
    struct rig *rig = calloc(1, sizeof(*rig));
    struct lws_context_creation_info info;

    if (!rig)
        return -1;
    protocols[0] = http_engine_protocol;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    rig->ctx = lws_create_context(&info);
    if (!rig->ctx)
        goto err;
    rig->e = http_engine_new(rig->ctx, lws_get_vhost_by_name(rig->ctx, "default"));
    if (!rig->e)
        goto err;
    *state = rig;
    return 0;
err:
    if (rig->ctx)
        lws_context_destroy(rig->ctx);
    free(rig);
    return -1;
}

static int
rig_teardown(void **state)
{
    struct rig *rig = *state;

    http_engine_free(rig->e);
    lws_context_destroy(rig->ctx);
    free(rig);
    return 0;
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
    struct rig *rig = lws_container_of(sul, struct rig, deadline);
    rig->expired = 1;
}

/* Wakes the loop now and then so run_until() sees counters other threads move. */
static void
on_tick(lws_sorted_usec_list_t *sul)
{
    struct rig *rig = lws_container_of(sul, struct rig, tick);
    lws_sul_schedule(rig->ctx, 0, &rig->tick, on_tick, 5 * LWS_US_PER_MS);
}

/* Turns the loop until *count reaches want or ms pass; returns 0 when it did. */
static int
run_until(struct rig *rig, int *count, int want, int ms)
{
    rig->expired = 0;
    lws_sul_schedule(rig->ctx, 0, &rig->deadline, on_deadline, (lws_usec_t)ms * LWS_US_PER_MS);
    lws_sul_schedule(rig->ctx, 0, &rig->tick, on_tick, 5 * LWS_US_PER_MS);
    while (__atomic_load_n(count, __ATOMIC_SEQ_CST) < want && !rig->expired)
        if (lws_service(rig->ctx, 0) < 0)
            break;
    lws_sul_cancel(&rig->deadline);
    lws_sul_cancel(&rig->tick);
    return __atomic_load_n(count, __ATOMIC_SEQ_CST) >= want ? 0 : -1;
}

static void
on_done(void *ud, const struct http_response *r)
{
    struct got *g = ud;

    g->calls++;
    g->code = r->code;
    g->status = r->status;
    g->body_len = r->body_len;
    g->terminated = r->body[r->body_len] == '\0' && strlen(r->body) == r->body_len;
    free(g->body);
    g->body = malloc(r->body_len + 1);
    if (g->body)
        memcpy(g->body, r->body, r->body_len + 1);
    g->retry_after_s = r->retry_after_s;
    g->has_error = r->error != NULL && r->error[0] != '\0';
}

/* A GET of path on the peer (or on port when it is not 0), with a timeout. */
static CURL *
easy_get(const char *path, int port, long timeout_ms)
{
    char url[128];
    CURL *c = curl_easy_init();

    if (!c)
        return NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port ? port : peer.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    return c;
}

static void
test_get_ok(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};

    assert_int_equal(
        http_engine_add(rig->e, easy_get("/ok", 0, TEST_TIMEOUT_MS), NULL, on_done, &g), 0);
    assert_int_equal(http_engine_active(rig->e), 1);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, strlen(ok_json));
    assert_string_equal(g.body, ok_json);
    assert_true(g.terminated);
    assert_int_equal(g.retry_after_s, -1);
    assert_false(g.has_error);
    assert_int_equal(http_engine_active(rig->e), 0);
    free(g.body);
}

/* The engine keeps the caller's header list alive for the transfer, then frees it. */
static void
test_post_echo_with_headers(void **state)
{
    static const char payload[] = "{\"to\":\"+34600000000\",\"text\":\"hola\"}";
    struct rig *rig = *state;
    struct got g = {0};
    CURL *c = easy_get("/echo", 0, TEST_TIMEOUT_MS);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    h = curl_slist_append(h, "X-Armonia: yes");
    assert_non_null(c);
    assert_non_null(h);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, payload);
    assert_int_equal(http_engine_add(rig->e, c, h, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, payload);
    free(g.body);
}

static void
test_retry_after_captured(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};

    assert_int_equal(
        http_engine_add(rig->e, easy_get("/retry", 0, TEST_TIMEOUT_MS), NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 503);
    assert_int_equal(g.retry_after_s, 7);
    assert_string_equal(g.body, "busy");
    free(g.body);
}

/* Gets /retry-<form> and returns the seconds the engine reported. */
static long long
retry_after_of(struct rig *rig, const char *form)
{
    struct got g = {0};
    char path[32];
    snprintf(path, sizeof(path), "/retry-%s", form);
    assert_int_equal(http_engine_add(rig->e, easy_get(path, 0, TEST_TIMEOUT_MS), NULL, on_done, &g),
                     0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.status, 503);
    free(g.body);
    return g.retry_after_s;
}

/*
 * curl reads every HTTP-date form as the seconds left until it (a second
 * may pass between the peer's clock and curl's); a date past, or a value
 * nobody can read, asks for no wait.
 */
static void
test_retry_after_http_dates(void **state)
{
    struct rig *rig = *state;
    static const char *const ahead[] = {"imf", "rfc850", "asctime"};
    for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
        long long s = retry_after_of(rig, ahead[i]);
        if (s < 28 || s > 30)
            fail_msg("Retry-After as %s date 30 s ahead gave %lld s", ahead[i], s);
    }
    assert_int_equal(retry_after_of(rig, "past"), 0);
    assert_int_equal(retry_after_of(rig, "junk"), 0);
}

/* A Retry-After on an interim 100 response does not stick to the final one. */
static void
test_retry_after_reset_after_interim_response(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};

    assert_int_equal(
        http_engine_add(rig->e, easy_get("/continue", 0, TEST_TIMEOUT_MS), NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.retry_after_s, -1);
    assert_string_equal(g.body, ok_json);
    free(g.body);
}

/* Nor does one on a redirect that curl follows. */
static void
test_retry_after_reset_after_redirect(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};
    CURL *c = easy_get("/moved", 0, TEST_TIMEOUT_MS);

    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    assert_int_equal(http_engine_add(rig->e, c, NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.retry_after_s, -1);
    assert_string_equal(g.body, ok_json);
    free(g.body);
}

static void
test_body_capped_and_terminated(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};

    assert_int_equal(
        http_engine_add(rig->e, easy_get("/big", 0, TEST_TIMEOUT_MS), NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, HTTP_MAX_BODY);
    assert_true(g.terminated);
    assert_non_null(g.body);
    for (size_t i = 0; i < g.body_len; i++)
        if (g.body[i] != (char)('a' + i % 26))
            fail_msg("body byte %zu is %d", i, g.body[i]);
    free(g.body);
}

/*
 * An upload much larger than one curl buffer needs many writable events in
 * a row, each asked for again after the last (curl sends Expect:
 * 100-continue first, so the socket also turns from reading to writing).
 */
static void
test_large_upload(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};
    CURL *c = easy_get("/upload", 0, TEST_TIMEOUT_MS);
    char *data = malloc(TEST_UPLOAD);
    uint32_t sum = 0;
    char want[64];

    assert_non_null(c);
    assert_non_null(data);
    for (size_t i = 0; i < TEST_UPLOAD; i++) {
        data[i] = (char)(i * 7 % 251);
        sum += (unsigned char)data[i];
    }
    snprintf(want, sizeof(want), "{\"bytes\":%d,\"sum\":%u}", TEST_UPLOAD, sum);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)TEST_UPLOAD);
    assert_int_equal(http_engine_add(rig->e, c, NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_OK);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, want);
    free(g.body);
    free(data);
}

static void
test_twenty_concurrent(void **state)
{
    struct rig *rig = *state;
    struct got g[20];
    int done = 0;

    memset(g, 0, sizeof(g));
    for (int i = 0; i < 20; i++)
        assert_int_equal(
            http_engine_add(rig->e, easy_get("/ok", 0, TEST_TIMEOUT_MS), NULL, on_done, &g[i]), 0);
    assert_int_equal(http_engine_active(rig->e), 20);
    while (done < 20 && !run_until(rig, &g[done].calls, 1, TEST_TIMEOUT_MS))
        done++;
    assert_int_equal(done, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].code, CURLE_OK);
        assert_int_equal(g[i].status, 200);
        assert_string_equal(g[i].body, ok_json);
        free(g[i].body);
    }
    assert_int_equal(http_engine_active(rig->e), 0);
}

struct probe {
    lws_sorted_usec_list_t sul;
    lws_usec_t due;
    lws_usec_t fired;
    int calls;
};

static void
on_probe(lws_sorted_usec_list_t *sul)
{
    struct probe *p = lws_container_of(sul, struct probe, sul);
    p->fired = lws_now_usecs();
    p->calls++;
}

/*
 * A peer that never answers costs its transfer a timeout, and nothing else:
 * a timer and another request run on time meanwhile.
 */
static void
test_hang_times_out_without_blocking(void **state)
{
    struct rig *rig = *state;
    struct got hang = {0}, ok = {0};
    struct probe p = {0};
    lws_usec_t start = lws_now_usecs();

    assert_int_equal(http_engine_add(rig->e, easy_get("/hang", 0, 300), NULL, on_done, &hang), 0);
    assert_int_equal(
        http_engine_add(rig->e, easy_get("/ok", 0, TEST_TIMEOUT_MS), NULL, on_done, &ok), 0);
    p.due = lws_now_usecs() + 50 * LWS_US_PER_MS;
    lws_sul_schedule(rig->ctx, 0, &p.sul, on_probe, 50 * LWS_US_PER_MS);
    assert_int_equal(run_until(rig, &hang.calls, 1, TEST_TIMEOUT_MS), 0);
    lws_usec_t took = lws_now_usecs() - start;

    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.status, 200);
    assert_int_equal(p.calls, 1);
    assert_true(p.fired - p.due < 40 * LWS_US_PER_MS);
    assert_int_equal(hang.code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(hang.status, 0);
    assert_true(hang.has_error);
    assert_true(took >= 290 * LWS_US_PER_MS);
    assert_true(took < 2000 * LWS_US_PER_MS);
    free(hang.body);
    free(ok.body);
}

static void
test_closed_port_cannot_connect(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};
    int port;
    int fd = bind_loopback(&port);

    assert_true(fd >= 0);
    close(fd); /* bound, never listening: connections to it are refused */
    assert_int_equal(
        http_engine_add(rig->e, easy_get("/ok", port, TEST_TIMEOUT_MS), NULL, on_done, &g), 0);
    assert_int_equal(run_until(rig, &g.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(g.code, CURLE_COULDNT_CONNECT);
    assert_int_equal(g.status, 0);
    assert_true(g.has_error);
    assert_int_equal(g.body_len, 0);
    assert_true(g.terminated);
    free(g.body);
}

struct aborted {
    struct http_engine *e;
    int calls;
    int wrong; /* callbacks with anything but CURLE_ABORTED_BY_CALLBACK and status 0 */
    int readd_rc;
};

/* During shutdown a callback that tries to start a new transfer is refused. */
static void
on_aborted(void *ud, const struct http_response *r)
{
    struct aborted *a = ud;

    a->calls++;
    if (r->code != CURLE_ABORTED_BY_CALLBACK || r->status != 0 || !r->error || r->body_len)
        a->wrong++;
    a->readd_rc = http_engine_add(a->e, easy_get("/ok", 0, TEST_TIMEOUT_MS), NULL, on_done, NULL);
}

static void
test_free_aborts_in_flight(void **state)
{
    struct rig *rig = *state;
    struct aborted a[3];
    int seen = __atomic_load_n(&peer.requests, __ATOMIC_SEQ_CST);

    memset(a, 0, sizeof(a));
    for (int i = 0; i < 3; i++) {
        a[i].e = rig->e;
        assert_int_equal(
            http_engine_add(rig->e, easy_get("/hang", 0, TEST_TIMEOUT_MS), NULL, on_aborted, &a[i]),
            0);
    }
    /* Wait until the peer holds all three requests: they are truly in flight. */
    int want = seen + 3;
    assert_int_equal(run_until(rig, &peer.requests, want, TEST_TIMEOUT_MS), 0);
    assert_int_equal(http_engine_active(rig->e), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(a[i].calls, 0);

    http_engine_free(rig->e);
    rig->e = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].wrong, 0);
        assert_int_equal(a[i].readd_rc, -1);
    }
}

struct chain {
    struct http_engine *e;
    struct got first, second;
    int add_rc;
};

/* Starts a second request from inside the first one's callback. */
static void
on_first(void *ud, const struct http_response *r)
{
    struct chain *c = ud;

    on_done(&c->first, r);
    c->add_rc =
        http_engine_add(c->e, easy_get("/retry", 0, TEST_TIMEOUT_MS), NULL, on_done, &c->second);
}

static void
test_callback_adds_request(void **state)
{
    struct rig *rig = *state;
    struct chain c = {.e = rig->e};

    assert_int_equal(
        http_engine_add(rig->e, easy_get("/ok", 0, TEST_TIMEOUT_MS), NULL, on_first, &c), 0);
    assert_int_equal(run_until(rig, &c.second.calls, 1, TEST_TIMEOUT_MS), 0);
    assert_int_equal(c.add_rc, 0);
    assert_int_equal(c.first.calls, 1);
    assert_int_equal(c.first.status, 200);
    assert_int_equal(c.second.calls, 1);
    assert_int_equal(c.second.status, 503);
    assert_int_equal(c.second.retry_after_s, 7);
    assert_int_equal(http_engine_active(rig->e), 0);
    free(c.first.body);
    free(c.second.body);
}

/* A request that cannot start reports nothing, and the engine frees what it was given. */
static void
test_add_without_easy_fails(void **state)
{
    struct rig *rig = *state;
    struct got g = {0};

    assert_int_equal(http_engine_add(rig->e, NULL, curl_slist_append(NULL, "X-A: b"), on_done, &g),
                     -1);
    assert_int_equal(g.calls, 0);
    assert_int_equal(http_engine_active(rig->e), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_ok, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_post_echo_with_headers, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_captured, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_http_dates, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_reset_after_interim_response, rig_setup,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_reset_after_redirect, rig_setup,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_body_capped_and_terminated, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_large_upload, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_twenty_concurrent, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_hang_times_out_without_blocking, rig_setup,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_closed_port_cannot_connect, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_free_aborts_in_flight, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_callback_adds_request, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_add_without_easy_fails, rig_setup, rig_teardown),
    };

    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    return cmocka_run_group_tests(tests, peer_start, peer_stop);
}
