/*
 * http.c - libcurl's multi *socket* interface driven by the hub's lws loop.
 *
 * curl tells us, through its socket callback, which of its sockets it wants
 * watched and in which direction; each such socket gets a struct http_sock
 * and a dup() of the descriptor adopted into lws as a raw file (lws closes
 * what it adopts, so curl keeps its own descriptor). curl's single timeout
 * becomes an lws timer. Readiness and timer events go back to curl with
 * curl_multi_socket_action(), after which finished transfers are collected
 * from curl_multi_info_read() and reported to their callbacks.
 *
 * Two lws quirks shape the code. A raw file always polls POLLIN, whatever
 * curl asked for. And lws drops a POLLOUT request made for a raw file from
 * inside that raw file's writable callback (it clears POLLOUT after the
 * callback returns), so every POLLOUT request is made from a timer that
 * fires at once: the "kick".
 */
#include "http.h"
#include "adopt.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Connections kept open to one host; further requests wait for a free one. */
#define HTTP_MAX_HOST_CONNECTIONS 16L
/* First allocation for a response body; it doubles up to HTTP_MAX_BODY. */
#define HTTP_BODY_CHUNK 4096

struct http_engine {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    CURLM *multi;                 /* owned */
    lws_dll2_owner_t xfers;       /* struct http_xfer, in start order */
    lws_dll2_owner_t socks;       /* struct http_sock, one per socket curl watches */
    lws_sorted_usec_list_t timer; /* curl's timeout */
    lws_sorted_usec_list_t kick;  /* asks lws for POLLOUT from outside raw-file callbacks */
    int closing;                  /* http_engine_free() is running: no new transfers */
};

/* One transfer; owned by its engine from http_engine_add() until its callback returned. */
struct http_xfer {
    lws_dll2_t list;
    CURL *easy;                 /* owned */
    struct curl_slist *headers; /* owned; freed with easy */
    http_done_cb cb;
    void *ud;
    char *body; /* owned; body_len bytes, NUL-terminated, NULL when empty */
    size_t body_len;
    size_t body_cap;              /* bytes allocated for body, not counting the NUL */
    int has_retry_after;          /* the final response has a Retry-After; curl keeps its value */
    char errbuf[CURL_ERROR_SIZE]; /* curl writes its error text here */
};

/* One socket curl asked to be watched; owned by its engine until CURL_POLL_REMOVE. */
struct http_sock {
    lws_dll2_t list;
    struct http_engine *e;
    curl_socket_t fd; /* curl's descriptor; curl closes it */
    int want;         /* CURL_POLL_IN, CURL_POLL_OUT or CURL_POLL_INOUT */
    struct lws *wsi;  /* the adopted dup() of fd, closed by lws; NULL while unwatched */
};

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc;

static void
http_global_init(void)
{
    http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The kick: asks lws for POLLOUT on every watched socket curl wants to write to. */
static void
on_http_kick(lws_sorted_usec_list_t *sul)
{
    struct http_engine *e = lws_container_of(sul, struct http_engine, kick);

    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->socks))
    {
        struct http_sock *s = lws_container_of(d, struct http_sock, list);
        if (s->wsi && (s->want & CURL_POLL_OUT))
            lws_callback_on_writable(s->wsi);
    }
    lws_end_foreach_dll(d);
}

/*
 * Arranges for every socket on which curl wants to write to get a writable
 * callback. Callable anywhere, including from curl's and lws's callbacks.
 */
static void
http_want_write(struct http_engine *e)
{
    lws_sul_schedule(e->ctx, 0, &e->kick, on_http_kick, 1);
}

static struct http_sock *
http_sock_find(struct http_engine *e, curl_socket_t fd)
{
    lws_start_foreach_dll(struct lws_dll2 *, d, lws_dll2_get_head(&e->socks))
    {
        struct http_sock *s = lws_container_of(d, struct http_sock, list);
        if (s->fd == fd)
            return s;
    }
    lws_end_foreach_dll(d);
    return NULL;
}

/* Stops watching s; lws closes the dup() on its next pass (see adopt.h). */
static void
http_sock_unwatch(struct http_sock *s)
{
    adopt_release(s->wsi);
    s->wsi = NULL;
}

/*
 * Adopts a dup() of s->fd into lws. Returns 0, or -1 when the socket stays
 * unwatched; its transfer then ends by its own timeout.
 */
static int
http_sock_watch(struct http_sock *s)
{
    int rc = adopt_dup(s->e->vh, s->fd, http_engine_protocol.name, s, &s->wsi);
    if (rc == -EIO) {
        log_err("http", "cannot watch curl socket %d", (int)s->fd);
        return -1;
    }
    if (rc) {
        log_err("http", "cannot duplicate curl socket %d: %s", (int)s->fd, strerror(-rc));
        return -1;
    }
    return 0;
}

static void
http_sock_free(struct http_sock *s)
{
    http_sock_unwatch(s);
    lws_dll2_remove(&s->list);
    free(s);
}

/*
 * curl's socket callback: what curl wants from socket fd changed. Runs
 * inside curl, so it must not call back into the multi handle beyond
 * curl_multi_assign(). Always returns 0: -1 would make curl give up the
 * whole multi handle, every transfer with it, which is worse than one
 * socket left unwatched until its transfer's timeout.
 */
static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_engine *e = userp;
    struct http_sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (!s)
            s = http_sock_find(e, fd);
        if (s)
            http_sock_free(s);
        return 0;
    }
    if (!s) {
        /*
         * New to curl. A socket we still track under the same number was
         * closed without a REMOVE, and its number reused: that one is gone.
         */
        struct http_sock *old = http_sock_find(e, fd);
        if (old)
            http_sock_free(old);
        s = calloc(1, sizeof(*s));
        if (!s) {
            log_err("http", "out of memory watching curl socket %d", (int)fd);
            return 0;
        }
        s->e = e;
        s->fd = fd;
        lws_dll2_add_tail(&s->list, &e->socks);
        curl_multi_assign(e->multi, fd, s);
    }
    s->want = what;
    if (!s->wsi)
        http_sock_watch(s);
    if (what & CURL_POLL_OUT)
        http_want_write(e);
    return 0;
}

/*
 * Fills r for x and hands it to x's callback, then frees x with its easy
 * handle and header list. x must already be out of the engine's list and
 * its easy handle out of the multi handle.
 */
static void
http_xfer_report(struct http_xfer *x, CURLcode code, long status)
{
    struct http_response r = {
        .code = code,
        .status = status,
        .body = x->body ? x->body : "",
        .body_len = x->body_len,
        .retry_after_s = -1,
    };
    /* curl keeps the last Retry-After it saw, an interim response's or a
     * followed redirect's too: it is read only when the final one had one. */
    curl_off_t ra = 0;
    if (x->has_retry_after && curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK)
        r.retry_after_s = ra > 0 ? (long long)ra : 0;
    if (code != CURLE_OK)
        r.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
    x->cb(x->ud, &r);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

/*
 * Reports every transfer curl has finished. Each one leaves the engine's
 * list before its callback runs and nothing is held across the call, so a
 * callback may start new transfers.
 */
static void
http_drain(struct http_engine *e)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result; /* m dies with the easy's removal */
        char *priv = NULL;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        struct http_xfer *x = (struct http_xfer *)priv;
        lws_dll2_remove(&x->list);
        curl_multi_remove_handle(e->multi, easy);
        http_xfer_report(x, code, status);
    }
}

/* Tells curl about an event on fd (or its timeout), then reports what finished. */
static void
http_act(struct http_engine *e, curl_socket_t fd, int ev)
{
    int running;
    CURLMcode rc = curl_multi_socket_action(e->multi, fd, ev, &running);
    if (rc != CURLM_OK)
        log_err("http", "curl_multi_socket_action: %s", curl_multi_strerror(rc));
    http_drain(e);
}

static void
on_http_timeout(lws_sorted_usec_list_t *sul)
{
    struct http_engine *e = lws_container_of(sul, struct http_engine, timer);
    http_act(e, CURL_SOCKET_TIMEOUT, 0);
}

/*
 * curl's timer callback: run curl's timeout in timeout_ms (0: as soon as
 * possible, -1: never). curl forbids calling it back from here, so even a
 * zero timeout goes through the lws timer.
 */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_engine *e = userp;

    if (timeout_ms < 0)
        lws_sul_cancel(&e->timer);
    else
        lws_sul_schedule(e->ctx, 0, &e->timer, on_http_timeout,
                         timeout_ms ? (lws_usec_t)timeout_ms * LWS_US_PER_MS : 1);
    return 0;
}

/* Grows x's body buffer to hold need bytes plus a NUL; need <= HTTP_MAX_BODY. */
static int
http_body_reserve(struct http_xfer *x, size_t need)
{
    if (need <= x->body_cap)
        return 0;
    size_t cap = x->body_cap ? x->body_cap : HTTP_BODY_CHUNK;
    while (cap < need)
        cap *= 2;
    if (cap > HTTP_MAX_BODY)
        cap = HTTP_MAX_BODY;
    char *p = realloc(x->body, cap + 1);
    if (!p)
        return -1;
    x->body = p;
    x->body_cap = cap;
    return 0;
}

/*
 * curl's write callback: keeps the first HTTP_MAX_BODY bytes of the body
 * and drops the rest. Returns n, or 0 (curl then fails the transfer with
 * CURLE_WRITE_ERROR) when memory runs out.
 */
static size_t
on_curl_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_xfer *x = userp;
    size_t n = size * nmemb;
    size_t keep = HTTP_MAX_BODY - x->body_len;

    if (keep > n)
        keep = n;
    if (!keep)
        return n;
    if (http_body_reserve(x, x->body_len + keep))
        return 0;
    memcpy(x->body + x->body_len, data, keep);
    x->body_len += keep;
    x->body[x->body_len] = '\0';
    return n;
}

/*
 * curl's header callback, once per header line. A status line starts a new
 * response (after a 100 Continue or a followed redirect), so what was kept
 * from the previous one is forgotten. Of Retry-After only its presence is
 * noted: curl parses the value (both forms) and http_xfer_report() asks it.
 */
static size_t
on_curl_header(char *line, size_t size, size_t nmemb, void *userp)
{
    static const char name[] = "Retry-After:";
    struct http_xfer *x = userp;
    size_t n = size * nmemb;

    if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
        x->has_retry_after = 0;
        x->body_len = 0;
        if (x->body)
            x->body[0] = '\0';
    } else if (n >= sizeof(name) - 1 && !strncasecmp(line, name, sizeof(name) - 1)) {
        x->has_retry_after = 1;
    }
    return n;
}

/*
 * lws events on an adopted dup(): readiness goes to curl for the socket it
 * duplicates. A wsi we stopped watching has no opaque pointer and is
 * ignored until lws has closed it. Always returns 0: lws closes a watcher
 * only when asked to.
 */
static int
on_http_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct http_sock *s = lws_get_opaque_user_data(wsi);
    if (!s || s->wsi != wsi)
        return 0;
    struct http_engine *e = s->e;
    curl_socket_t fd = s->fd;

    /* s may be freed inside http_act(): only e and fd are used after it. */
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        /*
         * lws polls a raw file for POLLIN whatever curl asked for. While
         * curl only wants to write (connecting, sending a request body) a
         * readable socket is ignored rather than reported: curl reads
         * nothing in that state, and the error or hang-up that makes a
         * connecting socket readable makes it writable too, which curl
         * hears about through the POLLOUT it asked for. The price: a peer
         * that answers early and then stops reading keeps POLLIN firing,
         * so the loop turns without sleeping until curl's timeout ends the
         * transfer. Provider requests fit in the socket buffer, so they
         * leave the writing state at once.
         */
        if (s->want & CURL_POLL_IN)
            http_act(e, fd, CURL_CSELECT_IN);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!(s->want & CURL_POLL_OUT))
            break;
        http_act(e, fd, CURL_CSELECT_OUT);
        s = http_sock_find(e, fd);
        if (s && (s->want & CURL_POLL_OUT))
            http_want_write(e);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        s->wsi = NULL;
        http_act(e, fd, CURL_CSELECT_ERR);
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols http_engine_protocol = {
    .name = "armonia-curl",
    .callback = on_http_event,
};

struct http_engine *
http_engine_new(struct lws_context *ctx, struct lws_vhost *vh)
{
    struct http_engine *e = NULL;

    if (pthread_once(&http_global_once, http_global_init) || http_global_rc != CURLE_OK) {
        log_err("http", "curl_global_init: %s", curl_easy_strerror(http_global_rc));
        return NULL;
    }
    if (!lws_vhost_name_to_protocol(vh, http_engine_protocol.name)) {
        log_err("http", "protocol %s is not in the vhost's protocol list",
                http_engine_protocol.name);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        goto err;
    e->ctx = ctx;
    e->vh = vh;
    e->multi = curl_multi_init();
    if (!e->multi)
        goto err;
    if (curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) ||
        curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e) ||
        curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) ||
        curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e) ||
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, HTTP_MAX_HOST_CONNECTIONS) ||
        curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX))
        goto err;
    return e;
err:
    log_err("http", "cannot create the HTTP engine");
    if (e && e->multi)
        curl_multi_cleanup(e->multi);
    free(e);
    return NULL;
}

int
http_engine_add(struct http_engine *e, CURL *easy, struct curl_slist *headers, http_done_cb cb,
                void *ud)
{
    struct http_xfer *x = NULL;

    if (!easy || e->closing)
        goto err;
    x = calloc(1, sizeof(*x));
    if (!x)
        goto err;
    x->easy = easy;
    x->headers = headers;
    x->cb = cb;
    x->ud = ud;
    if (curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) ||
        curl_easy_setopt(easy, CURLOPT_PRIVATE, x) ||
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf) ||
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_body) ||
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, x) ||
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_curl_header) ||
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, x))
        goto err;
    /* curl only sets a timer here; the transfer starts from the loop. */
    if (curl_multi_add_handle(e->multi, easy) != CURLM_OK)
        goto err;
    lws_dll2_add_tail(&x->list, &e->xfers);
    return 0;
err:
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    free(x);
    return -1;
}

size_t
http_engine_active(const struct http_engine *e)
{
    return (size_t)e->xfers.count;
}

/*
 * Aborts every transfer, each callback running once with
 * CURLE_ABORTED_BY_CALLBACK and status 0 (a callback that starts a new
 * transfer now gets -1), then frees the engine. Call it while the lws
 * context still exists, and not from a callback of this engine: lws must
 * be there to close the adopted sockets, and a watched socket that lws
 * closes while the engine lives is reported to curl as an error.
 */
void
http_engine_free(struct http_engine *e)
{
    struct lws_dll2 *d;

    if (!e)
        return;
    e->closing = 1;
    while ((d = lws_dll2_get_head(&e->xfers))) {
        struct http_xfer *x = lws_container_of(d, struct http_xfer, list);
        lws_dll2_remove(&x->list);
        curl_multi_remove_handle(e->multi, x->easy);
        snprintf(x->errbuf, sizeof(x->errbuf), "aborted: the HTTP engine is shutting down");
        x->body_len = 0;
        x->has_retry_after = 0;
        if (x->body)
            x->body[0] = '\0';
        http_xfer_report(x, CURLE_ABORTED_BY_CALLBACK, 0);
    }
    curl_multi_cleanup(e->multi);
    lws_sul_cancel(&e->timer);
    lws_sul_cancel(&e->kick);
    while ((d = lws_dll2_get_head(&e->socks)))
        http_sock_free(lws_container_of(d, struct http_sock, list));
    free(e);
}

void
http_engine_set_max_per_host(struct http_engine *e, long n)
{
    if (e && n > 0)
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
}
