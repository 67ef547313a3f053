/*
 * test_breaker.c - unit tests for channels/breaker.c.
 *
 * What an operator notices: a provider that keeps failing is skipped for
 * a cool-down (deliveries move to the next channel at once), exactly one
 * probe tests it afterwards, and one success brings it back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "breaker.h"

static void
test_init(void **state)
{
    struct breaker b;

    memset(&b, 0xff, sizeof(b));
    breaker_init(&b, 5, 30000);
    assert_int_equal(b.state, BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_int_equal(b.threshold, 5);
    assert_int_equal(b.cooldown_ms, 30000);
    assert_int_equal(b.probe_in_flight, 0);
    breaker_init(&b, 0, -5);
    assert_int_equal(b.threshold, 1);
    assert_int_equal(b.cooldown_ms, 0);
}

static void
test_closed_allows_everything(void **state)
{
    struct breaker b;

    breaker_init(&b, 3, 1000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(breaker_allow(&b, i), 1);
    assert_int_equal(b.state, BREAKER_CLOSED);
}

static void
test_opens_at_threshold(void **state)
{
    struct breaker b;

    breaker_init(&b, 3, 1000);
    breaker_failure(&b, 10);
    breaker_failure(&b, 20);
    assert_int_equal(b.state, BREAKER_CLOSED);
    assert_int_equal(b.failures, 2);
    assert_int_equal(breaker_allow(&b, 25), 1);
    breaker_failure(&b, 30);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(b.opened_at_ms, 30);
    assert_int_equal(breaker_allow(&b, 31), 0);
    assert_int_equal(breaker_allow(&b, 1029), 0);
}

/* Failures must be consecutive: a success in between starts over. */
static void
test_success_resets_the_count(void **state)
{
    struct breaker b;

    breaker_init(&b, 3, 1000);
    breaker_failure(&b, 1);
    breaker_failure(&b, 2);
    breaker_success(&b, 3);
    assert_int_equal(b.failures, 0);
    breaker_failure(&b, 4);
    breaker_failure(&b, 5);
    assert_int_equal(b.state, BREAKER_CLOSED);
}

static void
test_one_probe_after_cooldown(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 1000);
    breaker_failure(&b, 100);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(breaker_allow(&b, 1099), 0);
    assert_int_equal(breaker_allow(&b, 1100), 1);
    assert_int_equal(b.state, BREAKER_HALF_OPEN);
    assert_int_equal(b.probe_in_flight, 1);
    /* Everyone else waits for the probe. */
    assert_int_equal(breaker_allow(&b, 1101), 0);
    assert_int_equal(breaker_allow(&b, 99999), 0);
}

static void
test_probe_success_closes(void **state)
{
    struct breaker b;

    breaker_init(&b, 2, 1000);
    breaker_failure(&b, 0);
    breaker_failure(&b, 0);
    assert_int_equal(breaker_allow(&b, 1000), 1);
    breaker_success(&b, 1200);
    assert_int_equal(b.state, BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_int_equal(b.probe_in_flight, 0);
    assert_int_equal(breaker_allow(&b, 1201), 1);
    assert_int_equal(breaker_allow(&b, 1202), 1);
    /* The threshold applies afresh. */
    breaker_failure(&b, 1300);
    assert_int_equal(b.state, BREAKER_CLOSED);
}

static void
test_probe_failure_reopens_for_a_new_cooldown(void **state)
{
    struct breaker b;

    breaker_init(&b, 5, 1000);
    for (int i = 0; i < 5; i++)
        breaker_failure(&b, 0);
    assert_int_equal(breaker_allow(&b, 1000), 1);
    breaker_failure(&b, 1500);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(b.opened_at_ms, 1500);
    assert_int_equal(b.probe_in_flight, 0);
    assert_int_equal(breaker_allow(&b, 2000), 0);
    assert_int_equal(breaker_allow(&b, 2499), 0);
    assert_int_equal(breaker_allow(&b, 2500), 1);
}

/* Requests sent before the breaker opened may fail later: the cool-down
 * still counts from the moment it opened. */
static void
test_late_failures_do_not_extend_cooldown(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 1000);
    breaker_failure(&b, 0);
    breaker_failure(&b, 900);
    breaker_failure(&b, 999);
    assert_int_equal(b.opened_at_ms, 0);
    assert_int_equal(breaker_allow(&b, 1000), 1);
}

static void
test_release_lets_another_probe_through(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 10);
    breaker_failure(&b, 0);
    assert_int_equal(breaker_allow(&b, 10), 1);
    assert_int_equal(breaker_allow(&b, 11), 0);
    breaker_release(&b);
    assert_int_equal(b.state, BREAKER_HALF_OPEN);
    assert_int_equal(breaker_allow(&b, 12), 1);
    assert_int_equal(breaker_allow(&b, 13), 0);
    /* Releasing while closed or open changes nothing. */
    breaker_init(&b, 1, 10);
    breaker_release(&b);
    assert_int_equal(b.state, BREAKER_CLOSED);
    breaker_failure(&b, 0);
    breaker_release(&b);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(breaker_allow(&b, 5), 0);
}

static void
test_clock_going_backwards_keeps_it_open(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 1000);
    breaker_failure(&b, 5000);
    assert_int_equal(breaker_allow(&b, 100), 0);
    assert_int_equal(breaker_allow(&b, INT64_MIN), 0);
    assert_int_equal(breaker_allow(&b, INT64_MAX), 1);
}

static void
test_zero_cooldown_probes_at_once(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 0);
    breaker_failure(&b, 50);
    assert_int_equal(breaker_allow(&b, 50), 1);
    assert_int_equal(b.state, BREAKER_HALF_OPEN);
    assert_int_equal(breaker_allow(&b, 50), 0);
}

/* A critical delivery refused by an open breaker is told when to come back:
 * the moment the breaker will let its probe through. */
static void
test_retry_in_is_the_rest_of_the_cooldown(void **state)
{
    struct breaker b;

    breaker_init(&b, 1, 1000);
    assert_int_equal(breaker_retry_in_ms(&b, 0), 0);
    breaker_failure(&b, 5000);
    assert_int_equal(breaker_retry_in_ms(&b, 5000), 1000);
    assert_int_equal(breaker_retry_in_ms(&b, 5400), 600);
    assert_false(breaker_allow(&b, 5999));
    assert_int_equal(breaker_retry_in_ms(&b, 5999), 1);
    assert_int_equal(breaker_retry_in_ms(&b, 4000), 1000); /* clock went backwards */
    assert_int_equal(breaker_retry_in_ms(&b, 6000), 0);
    assert_true(breaker_allow(&b, 6000));               /* the probe */
    assert_int_equal(breaker_retry_in_ms(&b, 6000), 0); /* half-open: unknown */
    breaker_success(&b, 6100);
    assert_int_equal(breaker_retry_in_ms(&b, 6100), 0);
}

static void
test_state_names(void **state)
{
    assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
    assert_string_equal(breaker_state_name((enum breaker_state)42), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_retry_in_is_the_rest_of_the_cooldown),
        cmocka_unit_test(test_closed_allows_everything),
        cmocka_unit_test(test_opens_at_threshold),
        cmocka_unit_test(test_success_resets_the_count),
        cmocka_unit_test(test_one_probe_after_cooldown),
        cmocka_unit_test(test_probe_success_closes),
        cmocka_unit_test(test_probe_failure_reopens_for_a_new_cooldown),
        cmocka_unit_test(test_late_failures_do_not_extend_cooldown),
        cmocka_unit_test(test_release_lets_another_probe_through),
        cmocka_unit_test(test_clock_going_backwards_keeps_it_open),
        cmocka_unit_test(test_zero_cooldown_probes_at_once),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
