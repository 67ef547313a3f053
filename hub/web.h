/*
 * web.h - plain HTTP on the WebSocket port: /healthz and /metrics.
 */
#ifndef HUB_WEB_H
#define HUB_WEB_H

#include <libwebsockets.h>

struct conn;

/* Answers one request for uri; returns non-zero when lws must close. */
int web_request(struct conn *c, const char *uri);

/* Writes the pending body; returns non-zero when lws must close. */
int web_writable(struct conn *c);

#endif
