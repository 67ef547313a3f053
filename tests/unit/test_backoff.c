/*
 * test_backoff.c - unit tests for channels/backoff.c: retry delays and
 * Retry-After parsing.
 *
 * What the providers and residents notice: retries spread out instead of
 * hammering a provider in lockstep, never wait longer than the cap unless
 * the provider asked for it, honour Retry-After, and a garbage header does
 * not stall a delivery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <limits.h>
#include <cmocka.h>

#include "backoff.h"

/* 2024-05-01 12:00:00 UTC, a Wednesday. */
#define NOW ((time_t)1714564800)

static void
test_ceiling_doubles_up_to_the_cap(void **state)
{
    /* With rnd = UINT32_MAX the result is close to the ceiling; with
     * rnd = ceiling it is exactly the ceiling. */
    assert_int_equal(backoff_delay_ms(0, 500, 30000, -1, 500), 500);
    assert_int_equal(backoff_delay_ms(1, 500, 30000, -1, 1000), 1000);
    assert_int_equal(backoff_delay_ms(2, 500, 30000, -1, 2000), 2000);
    assert_int_equal(backoff_delay_ms(5, 500, 30000, -1, 16000), 16000);
    assert_int_equal(backoff_delay_ms(6, 500, 30000, -1, 30000), 30000);
    /* One past the ceiling wraps to 0: the range is [0, ceiling]. */
    assert_int_equal(backoff_delay_ms(0, 500, 30000, -1, 501), 0);
    assert_int_equal(backoff_delay_ms(6, 500, 30000, -1, 30001), 0);
}

static void
test_full_jitter_stays_in_range(void **state)
{
    uint32_t x = 0x12345678;

    for (int attempt = 0; attempt < 40; attempt++) {
        int ceiling = attempt >= 6 ? 30000 : 500 << attempt;
        for (int i = 0; i < 1000; i++) {
            int d;
            x = x * 1664525u + 1013904223u;
            d = backoff_delay_ms(attempt, 500, 30000, -1, x);
            assert_true(d >= 0);
            assert_true(d <= ceiling);
        }
    }
}

/* Jitter actually spreads: many different delays for one attempt. */
static void
test_full_jitter_spreads(void **state)
{
    int low = 0, high = 0;
    uint32_t x = 1;

    for (int i = 0; i < 1000; i++) {
        int d;
        x = x * 1664525u + 1013904223u;
        d = backoff_delay_ms(3, 1000, 60000, -1, x);
        if (d < 4000)
            low++;
        else
            high++;
    }
    assert_true(low > 300);
    assert_true(high > 300);
}

static void
test_large_attempts_do_not_overflow(void **state)
{
    assert_int_equal(backoff_delay_ms(31, 1000, 60000, -1, 60000), 60000);
    assert_int_equal(backoff_delay_ms(64, 1000, 60000, -1, 60000), 60000);
    assert_int_equal(backoff_delay_ms(INT_MAX, 1000, 60000, -1, 60000), 60000);
    assert_int_equal(backoff_delay_ms(INT_MAX, INT_MAX, INT_MAX, -1, UINT32_MAX),
                     (int)(UINT32_MAX % ((uint64_t)INT_MAX + 1)));
    assert_true(backoff_delay_ms(100, 1, INT_MAX, -1, UINT32_MAX) >= 0);
}

static void
test_degenerate_arguments(void **state)
{
    assert_int_equal(backoff_delay_ms(-3, 500, 30000, -1, 500), 500);
    assert_int_equal(backoff_delay_ms(4, 0, 30000, -1, 12345), 0);
    assert_int_equal(backoff_delay_ms(4, -10, 30000, -1, 12345), 0);
    assert_int_equal(backoff_delay_ms(4, 500, -1, -1, 12345), 0);
    assert_int_equal(backoff_delay_ms(0, 500, 100, -1, 100), 100);
}

static void
test_retry_after_is_a_floor(void **state)
{
    /* The random part is small; Retry-After wins. */
    assert_int_equal(backoff_delay_ms(0, 500, 30000, 5000, 7), 5000);
    /* Retry-After beyond the cap is still honoured. */
    assert_int_equal(backoff_delay_ms(0, 500, 30000, 120000, 7), 120000);
    /* A longer random delay is kept. */
    assert_int_equal(backoff_delay_ms(6, 500, 30000, 1000, 25000), 25000);
    assert_int_equal(backoff_delay_ms(0, 500, 30000, 0, 300), 300);
}

static void
test_retry_after_is_capped(void **state)
{
    assert_int_equal(backoff_delay_ms(0, 500, 30000, INT_MAX, 0), BACKOFF_MAX_RETRY_AFTER_MS);
    assert_int_equal(backoff_delay_ms(0, 500, 30000, BACKOFF_MAX_RETRY_AFTER_MS + 1, 0),
                     BACKOFF_MAX_RETRY_AFTER_MS);
}

static void
test_parse_delta_seconds(void **state)
{
    assert_int_equal(retry_after_parse("120", NOW), 120000);
    assert_int_equal(retry_after_parse("0", NOW), 0);
    assert_int_equal(retry_after_parse("  30\t", NOW), 30000);
    assert_int_equal(retry_after_parse("3600", NOW), BACKOFF_MAX_RETRY_AFTER_MS);
    assert_int_equal(retry_after_parse("3601", NOW), BACKOFF_MAX_RETRY_AFTER_MS);
    assert_int_equal(retry_after_parse("99999999999999999999999999", NOW),
                     BACKOFF_MAX_RETRY_AFTER_MS);
}

static void
test_parse_imf_fixdate(void **state)
{
    assert_int_equal(retry_after_parse("Wed, 01 May 2024 12:00:30 GMT", NOW), 30000);
    assert_int_equal(retry_after_parse("Wed, 01 May 2024 12:10:00 GMT", NOW), 600000);
    assert_int_equal(retry_after_parse(" Wed, 01 May 2024 12:00:01 GMT ", NOW), 1000);
    assert_int_equal(retry_after_parse("Thu, 02 May 2024 12:00:00 GMT", NOW),
                     BACKOFF_MAX_RETRY_AFTER_MS);
}

static void
test_parse_obsolete_date_forms(void **state)
{
    assert_int_equal(retry_after_parse("Wednesday, 01-May-24 12:00:05 GMT", NOW), 5000);
    assert_int_equal(retry_after_parse("Wed May  1 12:00:07 2024", NOW), 7000);
}

static void
test_parse_past_dates_are_zero(void **state)
{
    assert_int_equal(retry_after_parse("Wed, 01 May 2024 12:00:00 GMT", NOW), 0);
    assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW), 0);
}

static void
test_parse_garbage(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "-5",
        "+5",
        "5s",
        "1.5",
        "soon",
        "12 0",
        "Wed, 01 May 2024 12:00:30",
        "Wed, 01 May 2024 12:00:30 UTC",
        "Wed, 01 May 2024 12:00:30 GMT trailing",
        "Fri, 31 Feb 2024 12:00:00 GMT",
        "Wed, 01 Foo 2024 12:00:30 GMT",
        "Wed, 01 May 2024 25:00:00 GMT",
        "Wed, 01 May 2024 12:00:30 GMT Wed, 01 May 2024 12:00:30 GMT Wed, 01 May 2024",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (retry_after_parse(bad[i], NOW) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(retry_after_parse(NULL, NOW), -1);
}

/* A parsed header feeds straight into the delay. */
static void
test_parse_then_delay(void **state)
{
    int ra = retry_after_parse("Wed, 01 May 2024 12:00:45 GMT", NOW);

    assert_int_equal(backoff_delay_ms(0, 500, 30000, ra, 123), 45000);
    assert_int_equal(backoff_delay_ms(0, 500, 30000, retry_after_parse("junk", NOW), 123), 123);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_up_to_the_cap),
        cmocka_unit_test(test_full_jitter_stays_in_range),
        cmocka_unit_test(test_full_jitter_spreads),
        cmocka_unit_test(test_large_attempts_do_not_overflow),
        cmocka_unit_test(test_degenerate_arguments),
        cmocka_unit_test(test_retry_after_is_a_floor),
        cmocka_unit_test(test_retry_after_is_capped),
        cmocka_unit_test(test_parse_delta_seconds),
        cmocka_unit_test(test_parse_imf_fixdate),
        cmocka_unit_test(test_parse_obsolete_date_forms),
        cmocka_unit_test(test_parse_past_dates_are_zero),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_parse_then_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
