/*
 * log.h - the hub's one logger.
 *
 * Every line goes to stderr as "LEVEL module: message". libwebsockets' own
 * lines are routed here too (see log_route_lws()). Secrets never reach this
 * module in full: callers mask them first with log_mask().
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the most verbose level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int log_level_parse(const char *name);

/* The name log_level_parse() reads for level ("?" for none). */
const char *log_level_name(int level);

/* Puts tag (at most 15 bytes, e.g. "[w1]") before the module of every line
 * this process logs from now on, so the lines of several processes sharing
 * one stderr can be told apart; NULL or "" for none. */
void log_set_origin(const char *tag);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
