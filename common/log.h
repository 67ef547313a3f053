/*
 * log.h - the hub's one logger.
 *
 * Every line goes to stderr, as text ("TIME LEVEL module: message", the
 * default, what journald and a terminal read best) or, with
 * log_set_format(LOG_FORMAT_JSON), as one JSON object per line:
 *
 *   {"time":"2026-12-07T01:02:03.456Z","level":"info","module":"conn",
 *    "message":"...","worker":1,"fields":{"session":"...","code":4008}}
 *
 * "worker" is there only when the hub runs several worker processes;
 * "fields" only when the call gave some (log_fields()). libwebsockets' own
 * lines are routed here too (see log_route_lws()). Secrets never reach this
 * module in full: callers mask them first with log_mask().
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* One named value a line carries beside its message: a string (str not
 * NULL) or an integer. In JSON it goes in the line's "fields" object; text
 * lines show only the message, which says the same in words. */
struct log_field {
    const char *key; /* a JSON-safe name (letters, digits, '_'), not escaped */
    const char *str; /* the value, or NULL for num */
    long long num;
};

#define LOG_STR(k, v) ((struct log_field){.key = (k), .str = (v)})
#define LOG_NUM(k, v) ((struct log_field){.key = (k), .num = (long long)(v)})

/* Sets the most verbose level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int log_level_parse(const char *name);

/* Sets how lines are written (default LOG_FORMAT_TEXT). */
void log_set_format(enum log_format format);

/* Parses "text" or "json"; returns the format or -1. */
int log_format_parse(const char *name);

/* Marks every line this process logs from now on as worker k's ("[wK]"
 * before the module in text, "worker":K in JSON), so the lines of several
 * processes sharing one stderr can be told apart; k < 0 for none. */
void log_set_worker(int k);

/* The name log_level_parse() reads for level ("?" for none). */
const char *log_level_name(int level);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_msg() with n named values (see struct log_field). */
void log_fields(enum log_level level, const char *module, const struct log_field *fields, size_t n,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Appends s to out (capacity cap, used so far *at) as the inside of a JSON
 * string: quote, backslash and control characters escaped, a byte that is
 * not part of valid UTF-8 written as U+FFFD. Stops before overflowing
 * (out is always NUL-terminated); returns 0, or -1 if it had to stop.
 */
int log_json_escape(char *out, size_t cap, size_t *at, const char *s);

/*
 * Writes a masked copy of a secret (token, phone number, e-mail address)
 * into out: at most the last four characters stay readable, e.g. "…4567".
 * Always NUL-terminates; returns out.
 */
char *log_mask(const char *secret, char *out, size_t outlen);

/* Routes libwebsockets' log lines into this logger at the matching level. */
void log_route_lws(void);

#define log_err(mod, ...) log_msg(LOG_ERR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)

#endif
