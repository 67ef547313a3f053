/*
 * listener.h - the listening socket, accepted by the hub and adopted by lws.
 *
 * lws's own listener accepts every pending connection at once and makes
 * five system calls per connection on top of accept(); each connection it
 * has accepted but not yet upgraded also sits in lws's one sorted timer
 * list, which every new handshake walks. Here accept4() hands out sockets
 * already non-blocking, TCP_NODELAY and keepalive come from the listening
 * socket, and at most LISTENER_ACCEPT_BATCH connections are taken per loop
 * turn, so handshakes in progress stay few while the rest wait in the
 * kernel's accept queue. Under HUB_TLS_* lws starts each adopted
 * connection with the TLS handshake (LWS_ADOPT_ALLOW_SSL).
 */
#ifndef HUB_LISTENER_H
#define HUB_LISTENER_H

struct hub;
struct ev_loop;
struct lws;
struct listener;

/* Connections accepted per loop turn. */
#define LISTENER_ACCEPT_BATCH 16
/* Pause after running out of descriptors or memory before accepting again. */
#define LISTENER_PAUSE_MS 100

/*
 * Listens on addr:port (a numeric address or a host name) and adopts the
 * connections into hub->vh. keepalive_s > 0 sets TCP keepalive (idle time
 * in seconds) for all of them. shared: the port is shared with the hub's
 * other workers (SO_REUSEPORT: the kernel spreads new connections over
 * them); a program that holds the port without SO_REUSEPORT, or runs as
 * another user, still makes this fail with EADDRINUSE. NULL (with the
 * reason logged) on failure. internal: the port of /healthz and /metrics
 * only (HUB_INTERNAL_PORT): connections go to hub->vh_internal, plain
 * HTTP whatever HUB_TLS_* says.
 */
struct listener *listener_open(struct hub *hub, struct ev_loop *loop, const char *addr, int port,
                               int keepalive_s, int shared, int internal);

/* Whether wsi came in on HUB_INTERNAL_PORT (its socket's local port; 0
 * when that port is not configured). */
int listener_is_internal(const struct hub *hub, struct lws *wsi);

/* Stops accepting and closes the socket: new connections are refused. */
void listener_close(struct listener *l);

#endif
