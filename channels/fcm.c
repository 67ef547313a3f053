/*
 * fcm.c - push through FCM HTTP v1.
 *
 * POST {HUB_FCM_BASE_URL}/v1/projects/{project_id}/messages:send with an
 * OAuth2 bearer token obtained from the service account's own token_uri
 * (an RS256 JWT assertion, fcm_auth.c). The token is cached until shortly
 * before it expires; a refresh starts FCM_REFRESH_AHEAD_S before that while
 * sends keep using the current token, so sends never wait for a refresh
 * unless there is no valid token at all. Sends that arrive without a token
 * wait in a queue (bounded by the provider's in-flight limit, which the
 * fallback engine enforces) and go as soon as one arrives.
 */
#include "classify.h"
#include "fcm_auth.h"
#include "http.h"
#include "log.h"
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A token is refreshed this long before it expires. */
#define FCM_REFRESH_AHEAD_S 300
/* After a failed token request, the next one waits this long. */
#define FCM_TOKEN_RETRY_S 5

/* One push waiting for a token or in flight. */
struct fcm_req {
    struct fcm_req *next; /* in fcm->waiting */
    struct fcm *f;
    char *body; /* the JSON request body */
    send_cb cb;
    void *ud;
};

struct fcm {
    struct provider base; /* first: a provider pointer is an fcm pointer */
    struct fcm_account acct;
    char *send_url;
    char *token;          /* current access token, or NULL */
    time_t token_expires; /* wall time it stops being valid */
    time_t token_retry_at;
    int fetching;
    struct fcm_req *waiting, **waiting_tail;
};

static void post(struct fcm_req *q);

static void
req_done(struct fcm_req *q, const struct send_result *r)
{
    q->cb(q->ud, r);
    free(q->body);
    free(q);
}

/* Answers every waiting send with outcome and detail. */
static void
fail_waiting(struct fcm *f, const char *detail, enum send_outcome outcome)
{
    struct send_result r;
    memset(&r, 0, sizeof(r));
    r.outcome = outcome;
    r.retry_after_ms = -1;
    snprintf(r.detail, sizeof(r.detail), "%s", detail);
    while (f->waiting) {
        struct fcm_req *q = f->waiting;
        f->waiting = q->next;
        req_done(q, &r);
    }
    f->waiting_tail = &f->waiting;
}

static void
on_token(void *ud, const struct http_response *r)
{
    struct fcm *f = ud;
    f->fetching = 0;
    char *token = NULL;
    int expires_in = 0;
    if (r->code == CURLE_OK && r->status == 200 &&
        fcm_token_response_parse(r->body, &token, &expires_in) == 0) {
        free(f->token);
        f->token = token;
        f->token_expires = time(NULL) + expires_in;
        log_info("fcm", "access token obtained, valid %d s", expires_in);
        struct fcm_req *q = f->waiting;
        f->waiting = NULL;
        f->waiting_tail = &f->waiting;
        while (q) {
            struct fcm_req *next = q->next;
            post(q);
            q = next;
        }
        return;
    }
    f->token_retry_at = time(NULL) + FCM_TOKEN_RETRY_S;
    char detail[160];
    if (r->code != CURLE_OK)
        snprintf(detail, sizeof(detail), "oauth token request failed: %s", r->error);
    else
        snprintf(detail, sizeof(detail), "oauth token endpoint answered %ld", r->status);
    log_err("fcm", "%s (check FIREBASE_SERVICE_ACCOUNT_KEY)", detail);
    /* Without a token nothing can go: the deliveries are retried later. */
    if (!f->token || time(NULL) >= f->token_expires)
        fail_waiting(f, detail, SEND_RETRY);
}

/* Starts a token request unless one is running or failed a moment ago. */
static void
fetch_token(struct fcm *f)
{
    time_t now = time(NULL);
    if (f->fetching || now < f->token_retry_at)
        return;
    char *assertion = NULL;
    if (fcm_assertion(&f->acct, now, &assertion)) {
        log_err("fcm", "cannot sign the OAuth2 assertion");
        return;
    }
    char *form = fcm_token_request_body(assertion);
    free(assertion);
    CURL *easy = form ? curl_easy_init() : NULL;
    if (!easy) {
        free(form);
        return;
    }
    curl_easy_setopt(easy, CURLOPT_URL, f->acct.token_uri);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, form);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, f->base.timeout_ms);
    free(form);
    if (http_engine_add(f->base.http, easy, NULL, on_token, f) == 0)
        f->fetching = 1;
}

static void
on_sent(void *ud, const struct http_response *r)
{
    struct fcm_req *q = ud;
    struct fcm *f = q->f;
    struct send_result res;
    memset(&res, 0, sizeof(res));
    if (r->code != CURLE_OK)
        classify_transport(r->code, r->error, &res);
    else
        classify_fcm(r->status, r->body, backoff_retry_after_ms(r->retry_after_s), &res);
    if (!strcmp(res.detail, "UNAUTHENTICATED")) {
        /* Our token was refused: drop it so the next send fetches another. */
        free(f->token);
        f->token = NULL;
    }
    req_done(q, &res);
}

/* Sends q with the current token (the caller checked there is one). */
static void
post(struct fcm_req *q)
{
    struct fcm *f = q->f;
    CURL *easy = curl_easy_init();
    struct curl_slist *h = NULL;
    size_t n = strlen(f->token) + 32;
    char *auth = malloc(n);
    if (!easy || !auth)
        goto err;
    snprintf(auth, n, "Authorization: Bearer %s", f->token);
    struct curl_slist *h1 = curl_slist_append(NULL, auth);
    struct curl_slist *h2 = h1 ? curl_slist_append(h1, "Content-Type: application/json") : NULL;
    h = h2 ? h2 : h1;
    if (!h2)
        goto err;
    free(auth);
    auth = NULL;
    curl_easy_setopt(easy, CURLOPT_URL, f->send_url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, q->body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, f->base.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, f->base.timeout_ms);
    if (http_engine_add(f->base.http, easy, h, on_sent, q) == 0)
        return;
    easy = NULL; /* the engine freed it, and h, on failure */
    h = NULL;
err:
    free(auth);
    curl_slist_free_all(h);
    if (easy)
        curl_easy_cleanup(easy);
    struct send_result r = {.outcome = SEND_RETRY, .retry_after_ms = -1};
    snprintf(r.detail, sizeof(r.detail), "could not start the request");
    req_done(q, &r);
}

static int
fcm_send(struct provider *p, const struct message *m, send_cb cb, void *ud)
{
    struct fcm *f = (struct fcm *)p;
    struct fcm_req *q = calloc(1, sizeof(*q));
    if (!q)
        return -1;
    q->f = f;
    q->cb = cb;
    q->ud = ud;
    q->body = fcm_message_json(m);
    if (!q->body) {
        free(q);
        return -1;
    }
    time_t now = time(NULL);
    if (f->token && now + FCM_REFRESH_AHEAD_S >= f->token_expires)
        fetch_token(f); /* refresh early; this send still uses the current token */
    if (f->token && now + 10 < f->token_expires) {
        post(q);
        return 0;
    }
    *f->waiting_tail = q;
    f->waiting_tail = &q->next;
    fetch_token(f);
    return 0;
}

static void
fcm_free(struct provider *p)
{
    struct fcm *f = (struct fcm *)p;
    fail_waiting(f, "hub stopping", SEND_RETRY);
    fcm_account_free(&f->acct);
    free(f->send_url);
    free(f->token);
    free(f);
}

/* Reads the service-account JSON from the variable or the file (caller frees). */
static char *
read_key(const struct fcm_settings *set, const char **why)
{
    if (set->key)
        return strdup(set->key);
    FILE *fp = fopen(set->key_file, "rb");
    if (!fp) {
        *why = "FIREBASE_SERVICE_ACCOUNT_FILE: cannot open the file";
        return NULL;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    char chunk[4096];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(fp);
    if (!mem || fclose(mem)) {
        free(text);
        return NULL;
    }
    return text;
}

struct provider *
fcm_provider_new(const struct fcm_settings *set, struct http_engine *http, const char **why)
{
    static char msg[200];
    *why = NULL;
    if (!set->key && !set->key_file)
        return NULL;
    const char *var = set->key ? "FIREBASE_SERVICE_ACCOUNT_KEY" : "FIREBASE_SERVICE_ACCOUNT_FILE";
    if (!url_is_http(set->base_url)) {
        *why = "HUB_FCM_BASE_URL: expected an http:// or https:// URL";
        return NULL;
    }
    char *text = read_key(set, why);
    if (!text)
        return NULL;
    struct fcm *f = calloc(1, sizeof(*f));
    if (!f) {
        free(text);
        return NULL;
    }
    const char *bad = NULL;
    int rc = fcm_account_parse(text, &f->acct, &bad);
    free(text);
    if (rc) {
        snprintf(msg, sizeof(msg), "%s: not a usable service-account key (%s)", var,
                 bad ? bad : "unreadable");
        *why = msg;
        free(f);
        return NULL;
    }
    f->send_url = fcm_send_url(set->base_url, &f->acct);
    if (!f->send_url) {
        fcm_account_free(&f->acct);
        free(f);
        return NULL;
    }
    f->waiting_tail = &f->waiting;
    f->base.channel = CHANNEL_PUSH;
    f->base.name = "fcm";
    f->base.send = fcm_send;
    f->base.free = fcm_free;
    f->base.http = http;
    log_info("fcm", "push through %s for project %s", set->base_url, f->acct.project_id);
    return &f->base;
}
