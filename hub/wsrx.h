/*
 * wsrx.h - the frame headers a WebSocket client really sent, followed on
 * the bytes lws reads from its socket.
 *
 * lws 4.1 parses client frames itself and does not tell its user whether a
 * frame was masked, nor that a ping or a pong arrived (it answers pings on
 * its own), nor why it drops a connection whose close frame is malformed.
 * RFC 6455 requires a server to fail a connection that sends an unmasked
 * frame (§5.1) and the hub's rate limit must count control frames too. So
 * the hub reads the same byte stream beside lws: wsrx.c defines recv(),
 * which lws calls for plain sockets, and SSL_read(), which it calls for TLS
 * ones (HUB_TLS_CERT_FILE), and feeds the plaintext a watched socket
 * returned to a small frame-header parser before handing the bytes on
 * unchanged. lws still parses and acts on every byte; wsrx only notes what
 * lws does not expose. Both definitions pass the call to the library's
 * own function (dlsym(RTLD_NEXT)); the program exports them because lws
 * calls them.
 */
#ifndef HUB_WSRX_H
#define HUB_WSRX_H

#include <libwebsockets.h>
#include <stdint.h>

/* What the parser found since the last wsrx_take(). */
struct wsrx_news {
    unsigned frames;   /* frames that are not the last of a data message */
    unsigned unmasked; /* frames without a mask: the client breaks §5.1 */
};

/* One followed socket (owned by wsrx.c from wsrx_watch() to wsrx_forget()). */
struct wsrx;

/*
 * Starts following fd (a socket lws just took on as wsi), before lws reads
 * from it. Returns the handle the other calls take, or NULL out of memory
 * (the socket is then not followed). Every call below accepts NULL and then
 * does nothing (nothing seen, nothing refused).
 */
struct wsrx *wsrx_watch(struct lws *wsi, int fd);

/*
 * x's connection speaks TLS: its plaintext is followed on SSL_read() (the
 * socket's recv() would return ciphertext). Call before lws reads from it.
 */
void wsrx_over_tls(struct wsrx *x);

/* Stops following x's socket and frees x (at LWS_CALLBACK_WSI_DESTROY). */
void wsrx_forget(struct wsrx *x);

/*
 * Names the function told when a followed connection has news: it is
 * called as notify(arg) from inside lws's read (it must only schedule work,
 * never act there: lws is in the middle of a read). One for every follower,
 * so that each stays small.
 */
void wsrx_on_news(void (*notify)(void *arg));

/*
 * The WebSocket handshake of x's connection is complete: frames start with
 * the next byte read, and news is told with arg (not NULL). Returns -1 when
 * the client sent bytes after its upgrade request before it had the 101
 * (RFC 6455 §4.1): they were read as part of the handshake, so the frames
 * that follow cannot be told apart.
 */
int wsrx_established(struct wsrx *x, void *arg);

/* Returns and clears what was seen on x's socket since the last call. */
struct wsrx_news wsrx_take(struct wsrx *x);

/* Whether any byte of a request has been read from x's client (for TLS:
 * the handshake completed and the client spoke). */
int wsrx_heard(const struct wsrx *x);

/* Whether x's client has sent an unmasked frame (not cleared by wsrx_take). */
int wsrx_unmasked(const struct wsrx *x);

#endif
