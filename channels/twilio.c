/*
 * twilio.c - SMS through Twilio's Messages API:
 * POST {HUB_TWILIO_BASE_URL}/2010-04-01/Accounts/{sid}/Messages.json with
 * HTTP Basic (account SID, auth token) and form fields To, From, Body.
 */
#include "classify.h"
#include "http.h"
#include "log.h"
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct twilio {
    struct provider base; /* first: a provider pointer is a twilio pointer */
    char *url;            /* the Messages.json endpoint */
    char *sid, *token, *from;
};

/* One SMS in flight. */
struct twilio_req {
    send_cb cb;
    void *ud;
};

static void
on_done(void *ud, const struct http_response *r)
{
    struct twilio_req *q = ud;
    struct send_result res;
    memset(&res, 0, sizeof(res));
    if (r->code != CURLE_OK)
        classify_transport(r->code, r->error, &res);
    else
        classify_twilio(r->status, r->body, backoff_retry_after_ms(r->retry_after_s), &res);
    q->cb(q->ud, &res);
    free(q);
}

/* Appends "name=value" (value form-encoded) to the body being built. */
static int
form_add(CURL *easy, char **body, size_t *len, const char *name, const char *value)
{
    char *enc = curl_easy_escape(easy, value, 0);
    if (!enc)
        return -1;
    size_t need = *len + strlen(name) + strlen(enc) + 3;
    char *grown = realloc(*body, need);
    if (!grown) {
        curl_free(enc);
        return -1;
    }
    *body = grown;
    *len += (size_t)sprintf(grown + *len, "%s%s=%s", *len ? "&" : "", name, enc);
    curl_free(enc);
    return 0;
}

static int
twilio_send(struct provider *p, const struct message *m, send_cb cb, void *ud)
{
    struct twilio *t = (struct twilio *)p;
    CURL *easy = curl_easy_init();
    struct twilio_req *q = calloc(1, sizeof(*q));
    char *body = NULL;
    size_t len = 0;
    if (!easy || !q)
        goto err;
    if (form_add(easy, &body, &len, "To", m->to) || form_add(easy, &body, &len, "From", t->from) ||
        form_add(easy, &body, &len, "Body", m->body))
        goto err;
    q->cb = cb;
    q->ud = ud;
    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    curl_easy_setopt(easy, CURLOPT_USERNAME, t->sid);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, t->token);
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    free(body);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    if (http_engine_add(p->http, easy, h, on_done, q)) {
        free(q);
        return -1;
    }
    return 0;
err:
    free(body);
    free(q);
    if (easy)
        curl_easy_cleanup(easy);
    return -1;
}

static void
twilio_free(struct provider *p)
{
    struct twilio *t = (struct twilio *)p;
    free(t->url);
    free(t->sid);
    free(t->token);
    free(t->from);
    free(t);
}

struct provider *
twilio_provider_new(const struct twilio_settings *set, struct http_engine *http, const char **why)
{
    static char msg[160];
    *why = NULL;
    if (!set->sid && !set->token && !set->from)
        return NULL;
    const char *missing = !set->sid     ? "TWILIO_ACCOUNT_SID"
                          : !set->token ? "TWILIO_AUTH_TOKEN"
                          : !set->from  ? "TWILIO_PHONE_NUMBER"
                                        : NULL;
    if (missing) {
        snprintf(msg, sizeof(msg), "%s: required when the other TWILIO_* settings are given",
                 missing);
        *why = msg;
        return NULL;
    }
    if (!url_is_http(set->base_url)) {
        *why = "HUB_TWILIO_BASE_URL: expected an http:// or https:// URL";
        return NULL;
    }
    struct twilio *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    size_t n = strlen(set->base_url) + strlen(set->sid) + 64;
    t->url = malloc(n);
    t->sid = strdup(set->sid);
    t->token = strdup(set->token);
    t->from = strdup(set->from);
    if (!t->url || !t->sid || !t->token || !t->from) {
        twilio_free(&t->base);
        return NULL;
    }
    const char *base = set->base_url;
    size_t bl = strlen(base);
    snprintf(t->url, n, "%.*s/2010-04-01/Accounts/%s/Messages.json",
             (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, t->sid);
    t->base.channel = CHANNEL_SMS;
    t->base.name = "twilio";
    t->base.send = twilio_send;
    t->base.free = twilio_free;
    t->base.http = http;
    char masked[16];
    log_info("twilio", "SMS through %s as %s", base, log_mask(t->from, masked, sizeof(masked)));
    return &t->base;
}
