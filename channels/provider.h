/*
 * provider.h - one fallback provider (FCM, Twilio, SMTP) as the fallback
 * engine sees it: a send function, a circuit breaker, and a bound on the
 * requests it has in flight.
 */
#ifndef CHANNELS_PROVIDER_H
#define CHANNELS_PROVIDER_H

#include "breaker.h"
#include "channel.h"

struct http_engine;

struct provider {
    enum channel channel;
    const char *name; /* "fcm", "twilio", "smtp" */
    /*
     * Starts sending m (strings are copied as needed before returning).
     * Returns 0 and later calls cb exactly once, or -1 without calling it.
     */
    int (*send)(struct provider *p, const struct message *m, send_cb cb, void *ud);
    void (*free)(struct provider *p);
    struct http_engine *http;
    struct breaker breaker;
    unsigned inflight;     /* requests started, callback not yet run */
    unsigned max_inflight; /* HUB_PROVIDER_MAX_INFLIGHT */
    long timeout_ms;       /* HUB_PROVIDER_TIMEOUT_MS */
};

/* True when url parses and has a host and one of the schemes (NULL-terminated). */
int url_has_scheme(const char *url, const char *const *schemes);

/* True for a well-formed http:// or https:// URL. */
int url_is_http(const char *url);

/*
 * What each provider needs to start, filled by the hub from its
 * configuration (the environment variable each field comes from is named
 * beside it). The strings are borrowed for the constructor's call only;
 * a provider copies what it keeps.
 */
struct fcm_settings {
    const char *key;      /* FIREBASE_SERVICE_ACCOUNT_KEY: the JSON text, or NULL */
    const char *key_file; /* FIREBASE_SERVICE_ACCOUNT_FILE: a path, or NULL */
    const char *base_url; /* HUB_FCM_BASE_URL */
};

struct twilio_settings {
    const char *sid;      /* TWILIO_ACCOUNT_SID, or NULL */
    const char *token;    /* TWILIO_AUTH_TOKEN, or NULL */
    const char *from;     /* TWILIO_PHONE_NUMBER, or NULL */
    const char *base_url; /* HUB_TWILIO_BASE_URL */
};

struct smtp_settings {
    const char *url;      /* HUB_SMTP_URL, or NULL */
    const char *from;     /* HUB_SMTP_FROM */
    const char *user;     /* HUB_SMTP_USER, or NULL */
    const char *password; /* HUB_SMTP_PASSWORD, or NULL */
    int plain_auth;       /* HUB_SMTP_ALLOW_PLAINTEXT_AUTH: login in clear, loopback only */
};

/*
 * Constructors. Each returns the provider, or NULL with *why NULL when the
 * channel is simply not configured, or NULL with *why naming the variable
 * and the problem when the configuration is present but bad (the hub then
 * refuses to start).
 */
struct provider *fcm_provider_new(const struct fcm_settings *set, struct http_engine *http,
                                  const char **why);
struct provider *twilio_provider_new(const struct twilio_settings *set, struct http_engine *http,
                                     const char **why);
struct provider *smtp_provider_new(const struct smtp_settings *set, struct http_engine *http,
                                   const char **why);

#endif
