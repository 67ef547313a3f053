/*
 * test_backoff.c - unit tests for channels/backoff.c: retry delays and
 * the Retry-After floor (curl reads the header: test_http.c covers both of
 * its forms as they arrive).
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
test_retry_after_seconds_to_ms(void **state)
{
    assert_int_equal(backoff_retry_after_ms(120), 120000);
    assert_int_equal(backoff_retry_after_ms(0), 0);
    assert_int_equal(backoff_retry_after_ms(3600), BACKOFF_MAX_RETRY_AFTER_MS);
    assert_int_equal(backoff_retry_after_ms(3601), BACKOFF_MAX_RETRY_AFTER_MS);
    assert_int_equal(backoff_retry_after_ms(LLONG_MAX), BACKOFF_MAX_RETRY_AFTER_MS);
    /* No header. */
    assert_int_equal(backoff_retry_after_ms(-1), -1);
    assert_int_equal(backoff_retry_after_ms(LLONG_MIN), -1);
}

/* A header's wait feeds straight into the delay; none, or 0, leaves the jitter alone. */
static void
test_retry_after_then_delay(void **state)
{
    assert_int_equal(backoff_delay_ms(0, 500, 30000, backoff_retry_after_ms(45), 123), 45000);
    assert_int_equal(backoff_delay_ms(0, 500, 30000, backoff_retry_after_ms(-1), 123), 123);
    assert_int_equal(backoff_delay_ms(0, 500, 30000, backoff_retry_after_ms(0), 123), 123);
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
        cmocka_unit_test(test_retry_after_seconds_to_ms),
        cmocka_unit_test(test_retry_after_then_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
