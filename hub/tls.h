/*
 * tls.h - the hub's own TLS (HUB_TLS_CERT_FILE, HUB_TLS_KEY_FILE): the
 * checks of the certificate and key, the floor of the protocol version,
 * and the reload on SIGHUP.
 *
 * lws creates the server's SSL_CTX for the vhost and owns it; the hub only
 * sets its options once (tls_setup()) and, on a reload, puts the new
 * certificate and key into that same SSL_CTX. OpenSSL copies a context's
 * certificate into each connection when the connection is created, so
 * established connections keep the certificate they were made with and
 * every handshake after the reload gets the new one.
 */
#ifndef HUB_TLS_H
#define HUB_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* The oldest TLS version a client may speak (TLS 1.2: RFC 8996 retires 1.0 and 1.1). */
#define TLS_MIN_VERSION_NAME "TLS 1.2"

/*
 * Loads cert (PEM: the server's certificate, then any intermediates) and
 * key (PEM) into a scratch context and checks that they belong together.
 * Returns 0, or -1 with why (OpenSSL's reason, naming which file) in
 * err[0..errlen). Touches no live context.
 */
int tls_check(const char *cert, const char *key, char *err, size_t errlen);

/*
 * Sets what the hub asks of every TLS connection on ctx (lws's vhost
 * context, just created): TLS 1.2 at least, no renegotiation. Returns 0 or
 * -1 (logged).
 */
int tls_setup(SSL_CTX *ctx);

/*
 * Reads cert and key again and, when they are good (tls_check()), makes
 * them ctx's: handshakes from now on present them. A bad file is logged
 * and ctx keeps what it had. Returns 0 or -1.
 */
int tls_reload(SSL_CTX *ctx, const char *cert, const char *key);

#endif
