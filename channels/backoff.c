/*
 * backoff.c - retry delays: capped exponential backoff with full jitter,
 * with a provider's Retry-After (read by curl) as a floor.
 */
#include "backoff.h"

#include <stdint.h>

/* Full jitter: a uniform draw from [0, ceiling], then the Retry-After floor. */
int
backoff_delay_ms(int attempt, int base_ms, int cap_ms, int retry_after_ms, uint32_t rnd)
{
    int64_t ceiling = base_ms > 0 ? base_ms : 0;
    int64_t cap = cap_ms > 0 ? cap_ms : 0;
    int64_t delay;

    /* Doubling stops at the cap, so the loop runs at most about 31 times
     * and the product never overflows, however large attempt is. */
    for (int i = 0; i < attempt && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;
    delay = (int64_t)(rnd % (uint64_t)(ceiling + 1));
    if (retry_after_ms >= 0) {
        int64_t floor_ms = retry_after_ms;
        if (floor_ms > BACKOFF_MAX_RETRY_AFTER_MS)
            floor_ms = BACKOFF_MAX_RETRY_AFTER_MS;
        if (delay < floor_ms)
            delay = floor_ms;
    }
    return (int)delay;
}

int
backoff_retry_after_ms(long long seconds)
{
    if (seconds < 0)
        return -1;
    if (seconds > BACKOFF_MAX_RETRY_AFTER_MS / 1000)
        return BACKOFF_MAX_RETRY_AFTER_MS;
    return (int)(seconds * 1000);
}
