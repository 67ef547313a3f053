/*
 * backoff.c - retry delays: capped exponential backoff with full jitter,
 * and the parsing of Retry-After headers.
 */
#define _GNU_SOURCE /* strptime() */
#include "backoff.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

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

/* The HTTP-date forms of RFC 9110 §5.6.7, preferred one first. */
static const char *const http_date_formats[] = {
    "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    "%a %b %e %H:%M:%S %Y",      /* asctime: Sun Nov  6 08:49:37 1994 */
};

/*
 * Parses s (already trimmed, exactly len bytes) as an HTTP-date and stores
 * the time in *t. strptime() reads the English day and month names
 * because the hub never leaves the C locale (it calls no setlocale()); the result is then converted
 * back with gmtime_r() and compared, which rejects dates strptime lets through, such as 31 Feb.
 * Returns 0, or -1.
 */
static int
parse_http_date(const char *s, size_t len, time_t *t)
{
    char buf[64];

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < sizeof(http_date_formats) / sizeof(http_date_formats[0]); i++) {
        struct tm tm, want, back;
        const char *end;
        memset(&tm, 0, sizeof(tm));
        end = strptime(buf, http_date_formats[i], &tm);
        if (end == NULL || *end != '\0')
            continue;
        want = tm; /* timegm() normalises its argument in place */
        *t = timegm(&tm);
        if (*t == (time_t)-1 || gmtime_r(t, &back) == NULL)
            return -1;
        if (back.tm_mday != want.tm_mday || back.tm_mon != want.tm_mon ||
            back.tm_year != want.tm_year || back.tm_hour != want.tm_hour ||
            back.tm_min != want.tm_min || back.tm_sec != want.tm_sec)
            return -1;
        return 0;
    }
    return -1;
}

/* Delta-seconds when the value starts with a digit, an HTTP-date otherwise. */
int
retry_after_parse(const char *value, time_t now)
{
    const char *s = value, *e;
    size_t len;
    time_t when;

    if (value == NULL)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    len = (size_t)(e - s);
    if (len == 0)
        return -1;
    if (isdigit((unsigned char)s[0])) {
        int64_t seconds = 0;
        for (const char *p = s; p < e; p++) {
            if (!isdigit((unsigned char)*p))
                return -1; /* no HTTP-date starts with a digit */
            if (seconds <= BACKOFF_MAX_RETRY_AFTER_MS / 1000)
                seconds = seconds * 10 + (*p - '0');
        }
        if (seconds > BACKOFF_MAX_RETRY_AFTER_MS / 1000)
            return BACKOFF_MAX_RETRY_AFTER_MS;
        return (int)(seconds * 1000);
    }
    if (parse_http_date(s, len, &when) < 0)
        return -1;
    if (when <= now)
        return 0;
    if (when - now > BACKOFF_MAX_RETRY_AFTER_MS / 1000)
        return BACKOFF_MAX_RETRY_AFTER_MS;
    return (int)((when - now) * 1000);
}
