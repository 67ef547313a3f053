/*
 * log.c - the hub's one logger: stderr lines "LEVEL module: message"
 * (with several worker processes, "LEVEL [wK] module: message").
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <libwebsockets.h>

static enum log_level max_level = LOG_INFO;
static char origin[16]; /* log_set_origin(); "" for a lone process */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_set_level(enum log_level level)
{
    max_level = level;
}

void
log_set_origin(const char *tag)
{
    snprintf(origin, sizeof(origin), "%s", tag ? tag : "");
}

int
log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(name, level_names[i]))
            return i;
    return -1;
}

const char *
log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "?";
}

void
log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if (level > max_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s%s%s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], origin, *origin ? " " : "", module);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line, so lines of concurrent processes do not interleave. */
    size_t len = strnlen(line, sizeof(line) - 2);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

char *
log_mask(const char *secret, char *out, size_t outlen)
{
    if (!outlen)
        return out;
    size_t n = secret ? strlen(secret) : 0;
    if (n <= 4)
        snprintf(out, outlen, "***");
    else
        snprintf(out, outlen, "***%s", secret + n - 4);
    return out;
}

/* lws passes its own level bits; fold them onto ours. */
static void
on_lws_log(int level, const char *line)
{
    enum log_level l = LOG_DEBUG;
    if (level & LLL_ERR)
        l = LOG_ERR;
    else if (level & LLL_WARN)
        l = LOG_WARN;
    else if (level & (LLL_NOTICE | LLL_USER))
        l = LOG_INFO;
    log_msg(l, "lws", "%s", line);
}

void
log_route_lws(void)
{
    int mask = LLL_ERR | LLL_WARN;
    if (max_level >= LOG_DEBUG)
        mask |= LLL_NOTICE | LLL_INFO | LLL_USER;
    lws_set_log_level(mask, on_lws_log);
}
