/*
 * breaker.h - a circuit breaker per provider (FCM, Twilio, SMTP).
 *
 * When a provider keeps failing, the breaker opens: requests to it are
 * refused at once for a cool-down, and the deliveries go to the next
 * fallback channel instead of queueing behind an outage (a critical
 * event's delivery also waits to be tried again when the breaker
 * half-opens: breaker_retry_in_ms(), docs/fallback.md §3). After the
 * cool-down one probe request is let through (half-open); its success
 * closes the breaker, its failure opens it for another cool-down.
 *
 * What counts as a failure: callers report only failures that say the
 * provider itself is unwell, that is SEND_RETRY outcomes (timeouts,
 * refused connections, HTTP 429 and 5xx). A SEND_PERMANENT answer (bad
 * number, unregistered token) means the provider answered, so it is
 * reported as a success: one resident's bad phone number must never cut
 * SMS off for the whole deployment. SEND_CONFIG is not a provider failure
 * either, and some configuration answers concern only part of the
 * recipients (FCM's THIRD_PARTY_AUTH_ERROR is about APNs credentials and
 * hits iPhones only), so counting them would cut Android pushes off too.
 *
 * Every breaker_allow() that returns 1 must be followed by exactly one of
 * breaker_success(), breaker_failure() or breaker_release() (the last when
 * the request was never sent), or a half-open breaker waits for its probe
 * forever. The breaker is plain data for the one event-loop thread: no
 * allocation, no locking; times are milliseconds of a monotonic clock.
 */
#ifndef CHANNELS_BREAKER_H
#define CHANNELS_BREAKER_H

#include <stdint.h>

enum breaker_state {
    BREAKER_CLOSED,    /* requests flow; consecutive failures are counted */
    BREAKER_OPEN,      /* requests are refused until cooldown_ms after opened_at_ms */
    BREAKER_HALF_OPEN, /* one probe request is allowed; its outcome decides */
};

struct breaker {
    enum breaker_state state;
    int failures;         /* consecutive failures while closed */
    int threshold;        /* failures that open the breaker, at least 1 */
    int64_t cooldown_ms;  /* how long an open breaker refuses requests */
    int64_t opened_at_ms; /* when it last opened */
    int probe_in_flight;  /* half-open: the one probe has been let through */
};

/* Sets b up closed, with the given threshold (values below 1 mean 1) and
 * cool-down (negative values mean 0). */
void breaker_init(struct breaker *b, int threshold, int64_t cooldown_ms);

/*
 * Asks whether a request may be sent at now_ms. Returns 1 when closed;
 * when open and the cool-down has passed, turns half-open and returns 1
 * for exactly one probe; returns 0 when open within the cool-down or
 * half-open with the probe still in flight.
 */
int breaker_allow(struct breaker *b, int64_t now_ms);

/* Reports that an allowed request was answered by the provider: closes the
 * breaker from any state and clears the failure count. */
void breaker_success(struct breaker *b, int64_t now_ms);

/*
 * Reports a provider failure (see the file comment for which ones). While
 * closed, counts it and opens the breaker at now_ms when the count reaches
 * the threshold; while half-open, reopens at once. While already open it
 * changes nothing, so the late failures of requests sent before the
 * breaker opened do not stretch the cool-down.
 */
void breaker_failure(struct breaker *b, int64_t now_ms);

/*
 * How long, from now_ms, until an open breaker half-opens and lets a probe
 * through: the rest of the cool-down (at least 1 while it refuses), 0 when
 * it is closed or half-open. A caller that must wait for the provider
 * rather than give up (a critical event) retries then; while a half-open
 * probe is in flight nobody knows when it ends, so the caller picks its own
 * short delay.
 */
int64_t breaker_retry_in_ms(const struct breaker *b, int64_t now_ms);

/* Gives back a permission from breaker_allow() that was not used (the
 * request could not be started): a half-open breaker may probe again. */
void breaker_release(struct breaker *b);

/* "closed", "open" or "half_open", for logs and metrics. */
const char *breaker_state_name(enum breaker_state s);

#endif
