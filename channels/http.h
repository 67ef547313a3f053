/*
 * http.h - libcurl's multi interface inside the hub's lws event loop.
 *
 * curl's sockets join the loop the way the database's do: a dup() of each
 * socket is adopted into lws as a raw file (lws closes what it adopts), and
 * curl's timer becomes an lws timer. So provider requests (FCM, Twilio,
 * SMTP) run concurrently with WebSocket traffic on the one thread and never
 * block it; a provider that hangs costs one idle socket until its timeout.
 * Connections are reused between requests to the same host, and HTTP/2 is
 * used where the server offers it.
 */
#ifndef CHANNELS_HTTP_H
#define CHANNELS_HTTP_H

#include <stddef.h>
#include <curl/curl.h>
#include <libwebsockets.h>

/* Largest response body kept; the rest is read and dropped. */
#define HTTP_MAX_BODY (64 * 1024)

struct http_engine;

struct http_response {
    CURLcode code;    /* CURLE_OK when an HTTP answer arrived */
    long status;      /* HTTP status (or SMTP reply code), 0 when none */
    const char *body; /* NUL-terminated, at most HTTP_MAX_BODY bytes */
    size_t body_len;
    /*
     * What the final response's Retry-After header asked for, in seconds,
     * as curl reads it (CURLINFO_RETRY_AFTER): delta-seconds, or an
     * HTTP-date less the time it arrived; 0 for a date already past or a
     * value curl cannot read; -1 when the final response had no such header.
     */
    long long retry_after_s;
    const char *error; /* curl's error text when code != CURLE_OK */
};

/* Called once per request from the event loop; r is valid during the call. */
typedef void (*http_done_cb)(void *ud, const struct http_response *r);

/* The lws protocol carrying curl's sockets; add it to the vhost's list. */
extern const struct lws_protocols http_engine_protocol;

/* Creates the engine for a context and vhost; NULL on failure. */
struct http_engine *http_engine_new(struct lws_context *ctx, struct lws_vhost *vh);

/*
 * Starts a transfer. The engine takes ownership of easy (it sets its own
 * write, header, private and error-buffer options, so the caller sets
 * everything else: URL, method, headers, body, timeouts, credentials) and
 * frees it, with any curl_slist the caller passes in headers, after the
 * callback. Returns 0, or -1 (nothing is called, easy and headers are freed).
 */
int http_engine_add(struct http_engine *e, CURL *easy, struct curl_slist *headers, http_done_cb cb,
                    void *ud);

/*
 * Sets how many connections curl may open to one host (default 16). Set it
 * to at least the in-flight bound of the providers: a request waiting for a
 * connection inside curl would otherwise time out without being sent.
 */
void http_engine_set_max_per_host(struct http_engine *e, long n);

/* Transfers in progress. */
size_t http_engine_active(const struct http_engine *e);

/* Aborts every transfer (callbacks run with CURLE_ABORTED_BY_CALLBACK) and frees. */
void http_engine_free(struct http_engine *e);

#endif
