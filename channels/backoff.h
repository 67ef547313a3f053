/*
 * backoff.h - how long to wait before retrying a provider request.
 *
 * Retries use capped exponential backoff with full jitter: the n-th retry
 * waits a uniformly random time between 0 and min(cap, base * 2^n), which
 * spreads a burst of failures (an emergency announcement to thousands of
 * residents hitting a Twilio 429) instead of retrying it in lockstep. A
 * provider's Retry-After header is honoured as a floor, itself capped at
 * BACKOFF_MAX_RETRY_AFTER_MS so a hostile or broken header cannot park a
 * delivery for days.
 */
#ifndef CHANNELS_BACKOFF_H
#define CHANNELS_BACKOFF_H

#include <stdint.h>

/* The longest Retry-After honoured, in milliseconds (one hour). */
#define BACKOFF_MAX_RETRY_AFTER_MS (3600 * 1000)

/*
 * Returns the delay in milliseconds before retry number attempt (0 for
 * the first retry): rnd modulo (min(cap_ms, base_ms * 2^attempt) + 1),
 * with the doubling computed without overflow for any attempt, then
 * raised to retry_after_ms when that is given (>= 0; -1 means none) and
 * larger, retry_after_ms being first capped at BACKOFF_MAX_RETRY_AFTER_MS.
 * rnd is a uniformly random 32-bit value from the caller, so tests can fix
 * it. Negative base_ms, cap_ms or attempt count as 0. Never negative.
 */
int backoff_delay_ms(int attempt, int base_ms, int cap_ms, int retry_after_ms, uint32_t rnd);

/*
 * The wait a Retry-After of seconds asks for (http_response.retry_after_s,
 * which curl read from either form of the header), in milliseconds and at
 * most BACKOFF_MAX_RETRY_AFTER_MS; -1 when seconds is negative (no header).
 */
int backoff_retry_after_ms(long long seconds);

#endif
