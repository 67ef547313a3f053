/*
 * tls.c - certificate checks, protocol floor and reload for the hub's own
 * TLS (see tls.h).
 */
#include "tls.h"
#include "log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* Writes "what 'path': OpenSSL's reason" to err and clears OpenSSL's error queue. */
static void
tls_reason(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    char why[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, why, sizeof(why));
    snprintf(err, errlen, "%s '%s': %s", what, path, why);
    ERR_clear_error();
}

/*
 * Loads cert and key into ctx and checks they match. On failure writes the
 * reason to err; ctx may then hold the new certificate without its key, so
 * only a scratch context is handed here.
 */
static int
tls_load(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_reason(err, errlen, "HUB_TLS_CERT_FILE: cannot use", cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_reason(err, errlen, "HUB_TLS_KEY_FILE: cannot use", key);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_reason(err, errlen, "HUB_TLS_KEY_FILE: not the key of HUB_TLS_CERT_FILE's certificate",
                   key);
        return -1;
    }
    return 0;
}

/* A scratch context holding cert and key, checked; NULL with the reason in err. */
static SSL_CTX *
tls_scratch(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *scratch = SSL_CTX_new(TLS_server_method());
    if (!scratch) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (tls_load(scratch, cert, key, err, errlen)) {
        SSL_CTX_free(scratch);
        return NULL;
    }
    return scratch;
}

int
tls_check(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *scratch = tls_scratch(cert, key, err, errlen);
    SSL_CTX_free(scratch);
    return scratch ? 0 : -1;
}

int
tls_setup(SSL_CTX *ctx)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        log_err("tls", "cannot require " TLS_MIN_VERSION_NAME " at least");
        return -1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return 0;
}

int
tls_reload(SSL_CTX *ctx, const char *cert, const char *key)
{
    char err[512];
    /* The files are read and checked once, into a scratch context; ctx
     * then takes that context's objects, which cannot fail half-way on a
     * file replaced in between. */
    SSL_CTX *scratch = tls_scratch(cert, key, err, sizeof(err));
    if (!scratch) {
        log_err("tls", "certificate not reloaded, the current one stays: %s", err);
        return -1;
    }
    STACK_OF(X509) *chain = NULL;
    int ok = SSL_CTX_get0_chain_certs(scratch, &chain) == 1 &&
             SSL_CTX_use_certificate(ctx, SSL_CTX_get0_certificate(scratch)) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, SSL_CTX_get0_privatekey(scratch)) == 1 &&
             SSL_CTX_set1_chain(ctx, chain) == 1;
    SSL_CTX_free(scratch);
    if (!ok) {
        tls_reason(err, sizeof(err), "cannot install", cert);
        log_err("tls", "certificate reload failed (out of memory?): %s", err);
        return -1;
    }
    log_info("tls", "certificate reloaded from %s: new handshakes present it", cert);
    return 0;
}
