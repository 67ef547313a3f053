/*
 * classify.c - provider answers (FCM, Twilio, SMTP, curl transport errors)
 * turned into delivery outcomes.
 */
#include "classify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define FCM_ERROR_TYPE "type.googleapis.com/google.firebase.fcm.v1.FcmError"

/* Starts r over: no detail, no provider id, no Retry-After. */
static void
result_init(struct send_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = SEND_OK;
    r->retry_after_ms = -1;
}

/* Sets the outcome and a printf-style detail, cut to fit. Retries keep the
 * provider's Retry-After; other outcomes have none. */
static void __attribute__((format(printf, 4, 5)))
result_set(struct send_result *r, enum send_outcome outcome, int retry_after_ms, const char *fmt,
           ...)
{
    va_list ap;

    r->outcome = outcome;
    r->retry_after_ms = outcome == SEND_RETRY && retry_after_ms >= 0 ? retry_after_ms : -1;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

/* Copies id into r->provider_id when it is a string that fits. */
static void
result_provider_id(struct send_result *r, json_t *id)
{
    const char *s = json_string_value(id);

    if (s != NULL && strlen(s) < sizeof(r->provider_id))
        memcpy(r->provider_id, s, strlen(s) + 1);
}

/* Classifies a bare HTTP status, for answers whose body says nothing more.
 * Shared by both providers except for 401 and 404, which each decides. */
static void
by_status(struct send_result *r, long status, int retry_after_ms)
{
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        result_set(r, SEND_RETRY, retry_after_ms, "http %ld", status);
    else if (status == 403 || (status >= 300 && status <= 399))
        result_set(r, SEND_CONFIG, -1, "http %ld", status);
    else if (status >= 400 && status <= 499)
        result_set(r, SEND_PERMANENT, -1, "http %ld", status);
    else
        result_set(r, SEND_RETRY, retry_after_ms, "http %ld", status);
}

/* Returns the errorCode of the first FcmError entry of error.details[], or NULL. */
static const char *
fcm_error_code(json_t *error)
{
    json_t *details = json_object_get(error, "details"), *d;
    size_t i;

    json_array_foreach(details, i, d)
    {
        const char *type = json_string_value(json_object_get(d, "@type"));
        const char *code = json_string_value(json_object_get(d, "errorCode"));
        if (type != NULL && strcmp(type, FCM_ERROR_TYPE) == 0 && code != NULL)
            return code;
    }
    return NULL;
}

/* A name FCM uses in errorCode or error.status, and what it means. */
struct fcm_rule {
    const char *name;
    enum send_outcome outcome;
};

static const struct fcm_rule fcm_rules[] = {
    {CLASSIFY_FCM_UNREGISTERED, SEND_PERMANENT},
    {"SENDER_ID_MISMATCH", SEND_PERMANENT},
    {"INVALID_ARGUMENT", SEND_PERMANENT},
    {"QUOTA_EXCEEDED", SEND_RETRY},
    {"RESOURCE_EXHAUSTED", SEND_RETRY},
    {"UNAVAILABLE", SEND_RETRY},
    {"INTERNAL", SEND_RETRY},
    {"DEADLINE_EXCEEDED", SEND_RETRY},
    {"UNAUTHENTICATED", SEND_RETRY},
    {"THIRD_PARTY_AUTH_ERROR", SEND_CONFIG},
    {"PERMISSION_DENIED", SEND_CONFIG},
};

/* Applies the rule for name, if there is one; returns 1 when it did. */
static int
fcm_apply(struct send_result *r, const char *name, int retry_after_ms)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(fcm_rules) / sizeof(fcm_rules[0]); i++) {
        if (strcmp(name, fcm_rules[i].name) == 0) {
            result_set(r, fcm_rules[i].outcome, retry_after_ms, "%s", name);
            return 1;
        }
    }
    return 0;
}

/* 2xx first, then the FCM error code, the RPC status, the HTTP status. */
void
classify_fcm(long status, const char *body, int retry_after_ms, struct send_result *r)
{
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    json_t *error = json_object_get(root, "error");

    result_init(r);
    if (status >= 200 && status <= 299) {
        result_provider_id(r, json_object_get(root, "name"));
        json_decref(root);
        return;
    }
    /* The FCM error code decides first, then the RPC status, then HTTP's. */
    if (!fcm_apply(r, fcm_error_code(error), retry_after_ms) &&
        !fcm_apply(r, json_string_value(json_object_get(error, "status")), retry_after_ms)) {
        if (status == 401)
            result_set(r, SEND_RETRY, retry_after_ms, "UNAUTHENTICATED");
        else if (status == 404)
            result_set(r, SEND_CONFIG, -1, "http 404");
        else
            by_status(r, status, retry_after_ms);
    }
    json_decref(root);
}

/* A Twilio error code and what it means. */
struct twilio_rule {
    int code;
    enum send_outcome outcome;
};

static const struct twilio_rule twilio_rules[] = {
    {10001, SEND_CONFIG},    /* account is not active */
    {10002, SEND_CONFIG},    /* trial account does not support this feature */
    {14107, SEND_RETRY},     /* SMS send rate limit exceeded */
    {20003, SEND_CONFIG},    /* authentication error */
    {20008, SEND_CONFIG},    /* test credentials cannot reach this resource */
    {20404, SEND_CONFIG},    /* resource not found: wrong account sid or base URL */
    {20429, SEND_RETRY},     /* too many requests */
    {20500, SEND_RETRY},     /* internal server error */
    {20503, SEND_RETRY},     /* service unavailable */
    {21211, SEND_PERMANENT}, /* invalid 'To' phone number */
    {21212, SEND_CONFIG},    /* invalid 'From' phone number */
    {21214, SEND_PERMANENT}, /* 'To' phone number cannot be reached */
    {21217, SEND_PERMANENT}, /* phone number does not appear to be valid */
    {21219, SEND_PERMANENT}, /* 'To' phone number not verified */
    {21265, SEND_PERMANENT}, /* 'To' number cannot be a short code */
    {21401, SEND_PERMANENT}, /* invalid phone number */
    {21407, SEND_PERMANENT}, /* this phone number type does not support SMS */
    {21408, SEND_PERMANENT}, /* permission to send to this region is not enabled */
    {21421, SEND_PERMANENT}, /* phone number is invalid */
    {21602, SEND_PERMANENT}, /* message body is required */
    {21603, SEND_CONFIG},    /* 'From' phone number is required */
    {21604, SEND_PERMANENT}, /* 'To' phone number is required */
    {21606, SEND_CONFIG},    /* 'From' number is not a valid message-capable number */
    {21608, SEND_PERMANENT}, /* unverified number on a trial account */
    {21610, SEND_PERMANENT}, /* recipient unsubscribed (replied STOP) */
    {21611, SEND_RETRY},     /* 'From' number has too many queued messages */
    {21612, SEND_PERMANENT}, /* 'To' number is not reachable via SMS */
    {21614, SEND_PERMANENT}, /* 'To' number is not a valid mobile number */
    {21617, SEND_PERMANENT}, /* concatenated body exceeds 1600 characters */
    {21659, SEND_CONFIG},    /* 'From' is not a Twilio phone number or short code */
    {21660, SEND_CONFIG},    /* 'From' does not belong to this account */
};

/* 2xx first, then the Twilio code, then the HTTP status. */
void
classify_twilio(long status, const char *body, int retry_after_ms, struct send_result *r)
{
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    json_t *code = json_object_get(root, "code");

    result_init(r);
    if (status >= 200 && status <= 299) {
        result_provider_id(r, json_object_get(root, "sid"));
        json_decref(root);
        return;
    }
    if (json_is_integer(code)) {
        json_int_t n = json_integer_value(code);
        for (size_t i = 0; i < sizeof(twilio_rules) / sizeof(twilio_rules[0]); i++) {
            if (twilio_rules[i].code == n) {
                result_set(r, twilio_rules[i].outcome, retry_after_ms,
                           "twilio %" JSON_INTEGER_FORMAT, n);
                json_decref(root);
                return;
            }
        }
    }
    if (status == 401 || status == 404)
        result_set(r, SEND_CONFIG, -1, "http %ld", status);
    else
        by_status(r, status, retry_after_ms);
    /* An unknown code is still worth recording: it names the cause. */
    if (json_is_integer(code))
        snprintf(r->detail, sizeof(r->detail), "twilio %" JSON_INTEGER_FORMAT,
                 json_integer_value(code));
    json_decref(root);
}

/* A curl result, the short name it is recorded under, and what it means. */
struct transport_rule {
    CURLcode code;
    const char *name;
    enum send_outcome outcome;
};

static const struct transport_rule transport_rules[] = {
    {CURLE_OPERATION_TIMEDOUT, "timeout", SEND_RETRY},
    {CURLE_COULDNT_RESOLVE_HOST, "resolve", SEND_RETRY},
    {CURLE_COULDNT_RESOLVE_PROXY, "resolve proxy", SEND_RETRY},
    {CURLE_COULDNT_CONNECT, "connect", SEND_RETRY},
    {CURLE_SEND_ERROR, "send", SEND_RETRY},
    {CURLE_RECV_ERROR, "recv", SEND_RETRY},
    {CURLE_PARTIAL_FILE, "partial reply", SEND_RETRY},
    {CURLE_GOT_NOTHING, "empty reply", SEND_RETRY},
    {CURLE_HTTP2, "http2", SEND_RETRY},
    {CURLE_HTTP2_STREAM, "http2 stream", SEND_RETRY},
    {CURLE_HTTP3, "http3", SEND_RETRY},
    {CURLE_QUIC_CONNECT_ERROR, "quic connect", SEND_RETRY},
    {CURLE_SSL_CONNECT_ERROR, "tls handshake", SEND_RETRY},
    {CURLE_WEIRD_SERVER_REPLY, "bad reply", SEND_RETRY},
    {CURLE_PROXY, "proxy", SEND_RETRY},
    {CURLE_AGAIN, "again", SEND_RETRY},
    {CURLE_ABORTED_BY_CALLBACK, "aborted", SEND_RETRY},
    {CURLE_OUT_OF_MEMORY, "out of memory", SEND_RETRY},
    {CURLE_URL_MALFORMAT, "bad url", SEND_CONFIG},
    {CURLE_UNSUPPORTED_PROTOCOL, "unsupported protocol", SEND_CONFIG},
    {CURLE_NOT_BUILT_IN, "not built in", SEND_CONFIG},
    {CURLE_PEER_FAILED_VERIFICATION, "tls verification", SEND_CONFIG},
    {CURLE_SSL_CACERT_BADFILE, "tls ca file", SEND_CONFIG},
    {CURLE_SSL_CERTPROBLEM, "tls client certificate", SEND_CONFIG},
    {CURLE_SSL_CLIENTCERT, "tls client certificate", SEND_CONFIG},
    {CURLE_SSL_CIPHER, "tls cipher", SEND_CONFIG},
    {CURLE_SSL_PINNEDPUBKEYNOTMATCH, "tls pinned key", SEND_CONFIG},
    {CURLE_USE_SSL_FAILED, "tls unavailable", SEND_CONFIG},
    {CURLE_LOGIN_DENIED, "login denied", SEND_CONFIG},
    {CURLE_REMOTE_ACCESS_DENIED, "access denied", SEND_CONFIG},
    {CURLE_AUTH_ERROR, "auth", SEND_CONFIG},
    {CURLE_UNKNOWN_OPTION, "unknown option", SEND_CONFIG},
    {CURLE_BAD_FUNCTION_ARGUMENT, "bad argument", SEND_CONFIG},
};

/* Looks the code up in the table; anything unknown is retried. */
void
classify_transport(CURLcode c, const char *error, struct send_result *r)
{
    const char *name = "transport";
    enum send_outcome outcome = SEND_RETRY;

    result_init(r);
    if (c == CURLE_OK) {
        result_set(r, SEND_RETRY, -1, "no answer");
        return;
    }
    for (size_t i = 0; i < sizeof(transport_rules) / sizeof(transport_rules[0]); i++) {
        if (transport_rules[i].code == c) {
            name = transport_rules[i].name;
            outcome = transport_rules[i].outcome;
            break;
        }
    }
    if (error == NULL || *error == '\0')
        error = curl_easy_strerror(c);
    result_set(r, outcome, -1, "%s: %s", name, error);
}

/* The reply code is more precise than curl's result, so it decides first. */
void
classify_smtp(CURLcode c, long reply, struct send_result *r)
{
    result_init(r);
    if (c == CURLE_OK)
        return;
    /* A 4xx reply is temporary by definition, even to a login (454). */
    if (reply == 530 || reply == 534 || reply == 535 || reply == 538)
        result_set(r, SEND_CONFIG, -1, "smtp %ld login denied", reply);
    else if (reply >= 400 && reply <= 499)
        result_set(r, SEND_RETRY, -1, "smtp %ld", reply);
    else if (c == CURLE_LOGIN_DENIED)
        result_set(r, SEND_CONFIG, -1, "smtp login denied");
    else if (c == CURLE_USE_SSL_FAILED)
        result_set(r, SEND_CONFIG, -1,
                   "smtp relay offers no STARTTLS: login not sent in clear text");
    else if (reply >= 500 && reply <= 599)
        result_set(r, SEND_PERMANENT, -1, "smtp %ld", reply);
    else
        classify_transport(c, NULL, r);
}

/* Names for logs and metrics; "?" for a value outside the enum. */
const char *
send_outcome_name(enum send_outcome o)
{
    switch (o) {
    case SEND_OK:
        return "ok";
    case SEND_RETRY:
        return "retry";
    case SEND_PERMANENT:
        return "permanent";
    case SEND_CONFIG:
        return "config";
    }
    return "?";
}
