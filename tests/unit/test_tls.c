/*
 * test_tls.c - unit tests for hub/tls.c: the certificate and key checks,
 * the protocol floor, and the reload that keeps the current pair when the
 * new one is bad.
 *
 * Two certificates are made with the openssl command in a temporary
 * directory (as the integration test does), so nothing secret or expiring
 * lives in the tree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

static char dir[] = "/tmp/test_tls_XXXXXX";
static char path[6][600]; /* a.crt a.key b.crt b.key junk.crt missing.crt */
enum { A_CRT, A_KEY, B_CRT, B_KEY, JUNK, MISSING };

/* Makes a self-signed P-256 certificate name.crt with its key name.key in dir. */
static int
make_cert(const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
             "%s/%s.key -out %s/%s.crt -days 2 -subj /CN=%s >/dev/null 2>&1",
             dir, name, dir, name, name);
    return system(cmd);
}

static int
setup(void **state)
{
    if (!mkdtemp(dir) || make_cert("a") || make_cert("b"))
        return -1;
    const char *names[] = {"a.crt", "a.key", "b.crt", "b.key", "junk.crt", "missing.crt"};
    for (int i = 0; i < 6; i++)
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
    FILE *f = fopen(path[JUNK], "w");
    if (!f)
        return -1;
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void
check_accepts_a_matching_pair(void **state)
{
    char err[512] = "";
    assert_int_equal(tls_check(path[A_CRT], path[A_KEY], err, sizeof(err)), 0);
}

static void
check_names_the_file_at_fault(void **state)
{
    char err[512];
    assert_int_equal(tls_check(path[MISSING], path[A_KEY], err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HUB_TLS_CERT_FILE"));
    assert_non_null(strstr(err, "missing.crt"));
    assert_int_equal(tls_check(path[JUNK], path[A_KEY], err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HUB_TLS_CERT_FILE"));
    assert_int_equal(tls_check(path[A_CRT], path[B_KEY], err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HUB_TLS_KEY_FILE"));
    assert_int_equal(tls_check(path[A_CRT], path[MISSING], err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HUB_TLS_KEY_FILE"));
}

static void
setup_requires_tls_1_2(void **state)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(tls_setup(ctx), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_free(ctx);
}

/* The common name of ctx's certificate, into cn. */
static const char *
served_cn(SSL_CTX *ctx, char *cn, size_t len)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    cn[0] = '\0';
    if (x)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, (int)len);
    return cn;
}

static void
reload_switches_pairs_and_keeps_the_current_one_when_bad(void **state)
{
    char cn[64];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, path[A_CRT]), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path[A_KEY], SSL_FILETYPE_PEM), 1);
    /* A connection made before the reload keeps what it was made with. */
    SSL *before = SSL_new(ctx);
    assert_non_null(before);

    assert_int_equal(tls_reload(ctx, path[B_CRT], path[B_KEY]), 0);
    assert_string_equal(served_cn(ctx, cn, sizeof(cn)), "b");
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);

    assert_int_equal(tls_reload(ctx, path[JUNK], path[A_KEY]), -1);
    assert_int_equal(tls_reload(ctx, path[A_CRT], path[B_KEY]), -1);
    assert_string_equal(served_cn(ctx, cn, sizeof(cn)), "b");
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);

    X509 *old = SSL_get_certificate(before);
    assert_non_null(old);
    X509_NAME_get_text_by_NID(X509_get_subject_name(old), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "a");
    SSL_free(before);
    SSL_CTX_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_accepts_a_matching_pair),
        cmocka_unit_test(check_names_the_file_at_fault),
        cmocka_unit_test(setup_requires_tls_1_2),
        cmocka_unit_test(reload_switches_pairs_and_keeps_the_current_one_when_bad),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
