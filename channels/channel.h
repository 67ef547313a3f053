/*
 * channel.h - what every fallback channel (push, SMS, e-mail) shares: the
 * outcome of one provider request, and the message handed to a provider.
 *
 * A provider call never blocks: it starts a request and reports through a
 * callback from the event loop. A request that could not be started reports
 * nothing and returns -1 (libuv's rule: a function that fails never calls
 * its callback).
 */
#ifndef CHANNEL_H
#define CHANNEL_H

#include <stddef.h>

enum channel { CHANNEL_PUSH = 0, CHANNEL_SMS = 1, CHANNEL_EMAIL = 2 };
#define CHANNEL_COUNT 3

/* "push", "sms", "email". */
const char *channel_name(enum channel c);
/* Parses a channel name; returns 0 and sets *out, or -1. */
int channel_parse(const char *name, enum channel *out);

enum send_outcome {
    SEND_OK,        /* the provider accepted the message */
    SEND_RETRY,     /* transient: 429, 5xx, timeout, refused connection */
    SEND_PERMANENT, /* this recipient cannot be reached this way (bad number, unregistered) */
    SEND_CONFIG,    /* our own credentials or configuration are wrong; an operator must act */
};

struct send_result {
    enum send_outcome outcome;
    int retry_after_ms;    /* from Retry-After, or -1 */
    char detail[200];      /* e.g. "UNREGISTERED", "twilio 21211", "http 503", "timeout" */
    char provider_id[100]; /* message id the provider returned, when it did */
};

/* The content of one notification, already rendered for its recipient. */
struct message {
    const char *to;       /* device token, E.164 phone number or e-mail address */
    const char *title;    /* push title / e-mail subject */
    const char *body;     /* push body / SMS text / e-mail plain text */
    const char *html;     /* e-mail HTML part, or NULL */
    int high_priority;    /* critical or high events */
    const char *event_id; /* decimal text */
    const char *user_id;  /* the recipient, for the push collapse key; may be NULL */
    const char *kind;
    const char *tenant;
};

typedef void (*send_cb)(void *ud, const struct send_result *r);

#endif
