/*
 * breaker.c - the per-provider circuit breaker: closed, open, half-open.
 */
#include "breaker.h"

#include <string.h>

/* Starts closed with no failures counted. */
void
breaker_init(struct breaker *b, int threshold, int64_t cooldown_ms)
{
    memset(b, 0, sizeof(*b));
    b->state = BREAKER_CLOSED;
    b->threshold = threshold > 0 ? threshold : 1;
    b->cooldown_ms = cooldown_ms > 0 ? cooldown_ms : 0;
}

/* Decides by state; the open-to-half-open move happens here, lazily, so
 * the breaker needs no timer of its own. */
int
breaker_allow(struct breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 1;
    case BREAKER_OPEN:
        /* A clock that went backwards keeps the breaker open; the
         * comparison is written so it cannot overflow. */
        if (now_ms < b->opened_at_ms || now_ms - b->opened_at_ms < b->cooldown_ms)
            return 0;
        b->state = BREAKER_HALF_OPEN;
        b->probe_in_flight = 1;
        return 1;
    case BREAKER_HALF_OPEN:
        if (b->probe_in_flight)
            return 0;
        b->probe_in_flight = 1;
        return 1;
    }
    return 0;
}

/* Any answer from the provider proves it works: back to closed. */
void
breaker_success(struct breaker *b, int64_t now_ms)
{
    b->state = BREAKER_CLOSED;
    b->failures = 0;
    b->probe_in_flight = 0;
}

/* Opens the breaker at now_ms; the failure count restarts when it closes. */
static void
breaker_open(struct breaker *b, int64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->probe_in_flight = 0;
    b->failures = 0;
}

/* Counts while closed, reopens a half-open breaker, ignores stragglers. */
void
breaker_failure(struct breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        if (++b->failures >= b->threshold)
            breaker_open(b, now_ms);
        break;
    case BREAKER_HALF_OPEN:
        breaker_open(b, now_ms);
        break;
    case BREAKER_OPEN:
        break;
    }
}

/* The rest of the cool-down; a clock that went backwards counts as its start. */
int64_t
breaker_retry_in_ms(const struct breaker *b, int64_t now_ms)
{
    if (b->state != BREAKER_OPEN)
        return 0;
    if (now_ms < b->opened_at_ms)
        return b->cooldown_ms > 0 ? b->cooldown_ms : 1;
    int64_t passed = now_ms - b->opened_at_ms;
    if (passed >= b->cooldown_ms)
        return 0;
    return b->cooldown_ms - passed;
}

/* Only a half-open breaker holds a permission worth giving back. */
void
breaker_release(struct breaker *b)
{
    if (b->state == BREAKER_HALF_OPEN)
        b->probe_in_flight = 0;
}

/* Names for logs and metrics; "?" for a value outside the enum. */
const char *
breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "?";
}
