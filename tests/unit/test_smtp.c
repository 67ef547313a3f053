/*
 * test_smtp.c - unit tests for channels/smtp.c (included, to reach its
 * static functions): the message the hub hands to libcurl, and when the
 * login may go without TLS.
 *
 * libcurl dot-stuffs an SMTP upload itself, so the message built here must
 * keep a body line's leading dot as written; a second stuffing is what made
 * ".x" arrive as "..x".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../channels/smtp.c"

static struct smtp *
test_smtp(void)
{
    static struct smtp s;
    s.from = "notificaciones@armonia.test";
    s.from_hdr = "notificaciones@armonia.test";
    return &s;
}

static void
test_body_dots_left_to_libcurl(void **state)
{
    (void)state;
    struct message m = {
        .to = "ana@demo.co", .title = "Puntos", .body = ".x\n.\n..x\nfin", .event_id = "7"};
    size_t len = 0;
    char *msg = build_message(test_smtp(), &m, &len);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), len);
    assert_non_null(strstr(msg, "\r\n\r\n.x\r\n.\r\n..x\r\nfin\r\n"));
    assert_null(strstr(msg, "\r\n..x\r\n..\r\n"));
    assert_non_null(strstr(msg, "\r\nTo: ana@demo.co\r\n"));
    free(msg);
}

static void
test_from_must_be_a_plain_address(void **state)
{
    (void)state;
    char *addr, *hdr;
    assert_int_equal(parse_from("Armonía <hub@armonia.test>", &addr, &hdr), 0);
    assert_string_equal(addr, "hub@armonia.test");
    free(addr);
    free(hdr);
    assert_int_equal(parse_from("hub@armonia.test>\r\nRCPT TO:<x@evil.test", &addr, &hdr), -1);
    assert_int_equal(parse_from("<hub@armonia.test\r\nX: y>", &addr, &hdr), -1);
    assert_int_equal(parse_from("hub@localhost", &addr, &hdr), -1);
}

/* Builds the provider for url with a login; returns it or NULL with *why. */
static struct provider *
provider_for(const char *url, int plain, const char **why)
{
    struct smtp_settings set = {
        .url = url,
        .from = "hub@armonia.test",
        .user = "hub",
        .password = "secret",
        .plain_auth = plain,
    };
    return smtp_provider_new(&set, NULL, why);
}

static void
test_login_requires_tls(void **state)
{
    (void)state;
    const char *why;
    struct provider *p = provider_for("smtp://smtp.example.com:587", 0, &why);
    assert_non_null(p);
    assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_ALL);
    p->free(p);
    p = provider_for("smtp://127.0.0.1:2525", 0, &why);
    assert_non_null(p);
    assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_ALL);
    p->free(p);
}

static void
test_plaintext_login_only_on_loopback(void **state)
{
    (void)state;
    const char *why = NULL;
    const char *loopback[] = {"smtp://127.0.0.1:2525", "smtp://localhost:25", "smtp://[::1]:2525",
                              "smtp://127.8.9.10"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        struct provider *p = provider_for(loopback[i], 1, &why);
        assert_non_null(p);
        assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_TRY);
        p->free(p);
    }
    const char *remote[] = {"smtp://smtp.example.com:587", "smtp://10.0.0.5",
                            "smtp://127.0.0.1.evil.test", "smtp://localhost.evil.test"};
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        why = NULL;
        assert_null(provider_for(remote[i], 1, &why));
        assert_non_null(why);
        assert_non_null(strstr(why, "HUB_SMTP_ALLOW_PLAINTEXT_AUTH"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_dots_left_to_libcurl),
        cmocka_unit_test(test_from_must_be_a_plain_address),
        cmocka_unit_test(test_login_requires_tls),
        cmocka_unit_test(test_plaintext_login_only_on_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
