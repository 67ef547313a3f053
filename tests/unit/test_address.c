/*
 * test_address.c - unit tests for channels/address.c: which e-mail
 * addresses, phone numbers and device tokens may reach a provider.
 *
 * The values refused here are the ones that would put text of their own
 * into a provider request: a CR/LF and a second "RCPT TO:" in an e-mail
 * address, a display name or a comment, a number with letters in it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "address.h"

/* Returns a malloc'd string of n copies of c. */
static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void
test_email_plain_addresses_pass(void **state)
{
    (void)state;
    assert_true(address_email_ok("ana@armonia.test"));
    assert_true(address_email_ok("ana.gomez+portal@demo.co"));
    assert_true(address_email_ok("o'neil_x-1@mail.example.com"));
    assert_true(address_email_ok("a@b.co"));
    assert_true(address_email_ok("user@xn--espaa-rta.co")); /* IDN as punycode */
    assert_true(address_email_ok("UPPER@EXAMPLE.ORG"));
}

static void
test_email_injection_refused(void **state)
{
    (void)state;
    assert_false(address_email_ok("victim@demo.co>\r\nRCPT TO:<attacker@evil.test"));
    assert_false(address_email_ok("victim@demo.co\r\n"));
    assert_false(address_email_ok("victim@demo.co\n"));
    assert_false(address_email_ok("victim@demo.co\rX"));
    assert_false(address_email_ok("victim@demo.co> SIZE=1"));
    assert_false(address_email_ok("Ana <ana@demo.co>"));
    assert_false(address_email_ok("ana@demo.co, eve@evil.test"));
    assert_false(address_email_ok("ana@demo.co;eve@evil.test"));
    assert_false(address_email_ok("\"ana\"@demo.co"));
    assert_false(address_email_ok("ana(comment)@demo.co"));
    assert_false(address_email_ok("ana@[127.0.0.1]"));
    assert_false(address_email_ok("ana @demo.co"));
    assert_false(address_email_ok("ana@demo.co\t"));
    assert_false(address_email_ok("ana\\@demo.co"));
}

static void
test_email_shape_refused(void **state)
{
    (void)state;
    assert_false(address_email_ok(NULL));
    assert_false(address_email_ok(""));
    assert_false(address_email_ok("ana"));
    assert_false(address_email_ok("@demo.co"));
    assert_false(address_email_ok("ana@"));
    assert_false(address_email_ok("ana@@demo.co"));
    assert_false(address_email_ok("ana@b@demo.co"));
    assert_false(address_email_ok("ana@localhost")); /* one label */
    assert_false(address_email_ok(".ana@demo.co"));
    assert_false(address_email_ok("ana.@demo.co"));
    assert_false(address_email_ok("an..a@demo.co"));
    assert_false(address_email_ok("ana@demo..co"));
    assert_false(address_email_ok("ana@.demo.co"));
    assert_false(address_email_ok("ana@demo.co."));
    assert_false(address_email_ok("ana@-demo.co"));
    assert_false(address_email_ok("ana@demo-.co"));
    assert_false(address_email_ok("ana@dem_o.co"));
    assert_false(address_email_ok("josé@demo.co"));    /* 8-bit local part */
    assert_false(address_email_ok("ana@españa.co"));   /* IDN not as punycode */
    assert_false(address_email_ok("ana@demo.co\x7f")); /* DEL */
}

static void
test_email_lengths(void **state)
{
    (void)state;
    char buf[400];
    /* local part: 64 passes, 65 does not */
    char *l64 = repeat('a', ADDRESS_EMAIL_LOCAL_MAX), *l65 = repeat('a', 65);
    snprintf(buf, sizeof(buf), "%s@demo.co", l64);
    assert_true(address_email_ok(buf));
    snprintf(buf, sizeof(buf), "%s@demo.co", l65);
    assert_false(address_email_ok(buf));
    /* a label: 63 passes, 64 does not */
    char *d63 = repeat('d', ADDRESS_DOMAIN_LABEL_MAX), *d64 = repeat('d', 64);
    snprintf(buf, sizeof(buf), "a@%s.co", d63);
    assert_true(address_email_ok(buf));
    snprintf(buf, sizeof(buf), "a@%s.co", d64);
    assert_false(address_email_ok(buf));
    /* the whole address: 254 passes, 255 does not */
    snprintf(buf, sizeof(buf), "%s@%s.%s.%s.co", l64, d63, d63, d63);
    size_t n = strlen(buf); /* 64 + 1 + 3 * 64 + 2 = 259 */
    memmove(buf + 64 - (n - ADDRESS_EMAIL_MAX), buf + 64, n - 64 + 1);
    assert_int_equal(strlen(buf), ADDRESS_EMAIL_MAX);
    assert_true(address_email_ok(buf));
    memmove(buf + 1, buf, strlen(buf) + 1);
    assert_int_equal(strlen(buf), ADDRESS_EMAIL_MAX + 1);
    assert_false(address_email_ok(buf));
    free(l64);
    free(l65);
    free(d63);
    free(d64);
}

static void
test_phone_e164_only(void **state)
{
    (void)state;
    assert_true(address_phone_ok("+573001234567"));
    assert_true(address_phone_ok("+15005550006"));
    assert_true(address_phone_ok("+12345678"));        /* 8 digits */
    assert_true(address_phone_ok("+123456789012345")); /* 15 digits */
    assert_false(address_phone_ok("+1234567"));        /* 7 */
    assert_false(address_phone_ok("+1234567890123456"));
    assert_false(address_phone_ok("573001234567")); /* no + */
    assert_false(address_phone_ok("+0573001234567"));
    assert_false(address_phone_ok("+57 300 123 4567")); /* hub.fallback_address strips these */
    assert_false(address_phone_ok("+57300123456\n7"));
    assert_false(address_phone_ok("+573001234567&To=+15550000000"));
    assert_false(address_phone_ok("+"));
    assert_false(address_phone_ok(""));
    assert_false(address_phone_ok(NULL));
}

static void
test_token_charset_and_length(void **state)
{
    (void)state;
    assert_true(address_token_ok("tok-1"));
    assert_true(address_token_ok("dGVzdA:APA91bH-x_y.z0"));
    char *max = repeat('A', ADDRESS_TOKEN_MAX), *over = repeat('A', ADDRESS_TOKEN_MAX + 1);
    assert_true(address_token_ok(max));
    assert_false(address_token_ok(over));
    assert_false(address_token_ok(""));
    assert_false(address_token_ok(NULL));
    assert_false(address_token_ok("tok 1"));
    assert_false(address_token_ok("tok\r\n1"));
    assert_false(address_token_ok("../../projects/x/messages:send"));
    assert_false(address_token_ok("tok\"}"));
    assert_false(address_token_ok("tok/1"));
    free(max);
    free(over);
}

static void
test_check_names_the_problem_not_the_address(void **state)
{
    (void)state;
    assert_null(address_check(CHANNEL_EMAIL, "ana@demo.co"));
    assert_null(address_check(CHANNEL_SMS, "+573001234567"));
    assert_null(address_check(CHANNEL_PUSH, "tok-1"));
    assert_string_equal(address_check(CHANNEL_EMAIL, "a@b.co>\r\nRCPT TO:<c@d.co"),
                        "invalid e-mail address");
    const char *why = address_check(CHANNEL_SMS, "5550001");
    assert_non_null(why);
    assert_non_null(strstr(why, "invalid phone number"));
    assert_null(strstr(why, "5550001"));
    assert_string_equal(address_check(CHANNEL_PUSH, "a b"), "invalid device token");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email_plain_addresses_pass),
        cmocka_unit_test(test_email_injection_refused),
        cmocka_unit_test(test_email_shape_refused),
        cmocka_unit_test(test_email_lengths),
        cmocka_unit_test(test_phone_e164_only),
        cmocka_unit_test(test_token_charset_and_length),
        cmocka_unit_test(test_check_names_the_problem_not_the_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
