/*
 * log.c - the hub's one logger: stderr lines, text ("TIME LEVEL module:
 * message", with several worker processes "TIME LEVEL [wK] module:
 * message") or one JSON object per line (log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <libwebsockets.h>

/* Longest message kept (longer ones are cut), and longest line written. */
#define LOG_MESSAGE_MAX 1024
#define LOG_LINE_MAX 4096

static enum log_level max_level = LOG_INFO;
static enum log_format format = LOG_FORMAT_TEXT;
static int worker = -1; /* log_set_worker(); -1 for a lone process */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_set_level(enum log_level level)
{
    max_level = level;
}

void
log_set_format(enum log_format f)
{
    format = f;
}

void
log_set_worker(int k)
{
    worker = k;
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

int
log_format_parse(const char *name)
{
    if (!strcasecmp(name, "text"))
        return LOG_FORMAT_TEXT;
    if (!strcasecmp(name, "json"))
        return LOG_FORMAT_JSON;
    return -1;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there
 * are not one (overlong forms, surrogates and code points past U+10FFFF
 * included). */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff)
        return 0;
    return n;
}

int
log_json_escape(char *out, size_t cap, size_t *at, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = *at;
    int rc = 0;
    while (*p) {
        char esc[8];
        const char *piece = esc;
        size_t len, step = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            len = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", len = 2);
        } else if (*p == '\t') {
            memcpy(esc, "\\t", len = 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
        } else if (!(step = utf8_len(p))) {
            piece = "\xef\xbf\xbd"; /* U+FFFD */
            len = 3;
            step = 1;
        } else {
            piece = (const char *)p;
            len = step;
        }
        if (o + len >= cap) {
            rc = -1;
            break;
        }
        memcpy(out + o, piece, len);
        o += len;
        p += step;
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
    *at = o;
    return rc;
}

/* Appends formatted text to line (capacity LOG_LINE_MAX, *at used). */
static void put(char *line, size_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
put(char *line, size_t *at, const char *fmt, ...)
{
    if (*at >= LOG_LINE_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + *at, LOG_LINE_MAX - *at, fmt, ap);
    va_end(ap);
    if (n > 0)
        *at += (size_t)n < LOG_LINE_MAX - *at ? (size_t)n : LOG_LINE_MAX - *at - 1;
}

/* One JSON line: the fixed members, then the fields that fit whole (a
 * field cut short would be a lie, so one that does not fit is left out and
 * "truncated":true says so). */
static size_t
json_line(char *line, const char *stamp, enum log_level level, const char *module,
          const char *message, const struct log_field *fields, size_t n)
{
    size_t at = 0;
    put(line, &at, "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", stamp, level_names[level]);
    log_json_escape(line, LOG_LINE_MAX - 512, &at, module);
    put(line, &at, "\",\"message\":\"");
    log_json_escape(line, LOG_LINE_MAX - 256, &at, message);
    put(line, &at, "\"");
    if (worker >= 0)
        put(line, &at, ",\"worker\":%d", worker);
    int cut = 0;
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        size_t mark = at;
        put(line, &at, "%s\"%s\":", written ? "," : ",\"fields\":{", fields[i].key);
        if (fields[i].str) {
            put(line, &at, "\"");
            if (log_json_escape(line, LOG_LINE_MAX - 16, &at, fields[i].str))
                at = LOG_LINE_MAX; /* did not fit */
            else
                put(line, &at, "\"");
        } else {
            put(line, &at, "%lld", fields[i].num);
        }
        if (at >= LOG_LINE_MAX - 16) {
            at = mark;
            cut = 1;
            break;
        }
        written++;
    }
    if (written)
        put(line, &at, "}");
    if (cut)
        put(line, &at, ",\"truncated\":true");
    put(line, &at, "}");
    return at;
}

static void
log_emit(enum log_level level, const char *module, const struct log_field *fields, size_t n,
         const char *fmt, va_list ap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    char message[LOG_MESSAGE_MAX];
    vsnprintf(message, sizeof(message), fmt, ap);
    size_t mlen = strlen(message);
    while (mlen && (message[mlen - 1] == '\n' || message[mlen - 1] == '\r'))
        message[--mlen] = '\0';

    char line[LOG_LINE_MAX + 1];
    size_t len;
    if (format == LOG_FORMAT_JSON) {
        len = json_line(line, stamp, level, module, message, fields, n);
    } else {
        char tag[16] = "";
        if (worker >= 0)
            snprintf(tag, sizeof(tag), "[w%d] ", worker);
        len = (size_t)snprintf(line, LOG_LINE_MAX, "%s %-5s %s%s: %s", stamp, level_names[level],
                               tag, module, message);
        if (len >= LOG_LINE_MAX)
            len = LOG_LINE_MAX - 1;
    }
    /* One write per line, so lines of concurrent processes do not interleave. */
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void
log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if (level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, module, NULL, 0, fmt, ap);
    va_end(ap);
}

void
log_fields(enum log_level level, const char *module, const struct log_field *fields, size_t n,
           const char *fmt, ...)
{
    if (level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(level, module, fields, n, fmt, ap);
    va_end(ap);
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
