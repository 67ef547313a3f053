/*
 * test_supervisor.c - unit tests for hub/supervisor.c's restart policy.
 *
 * What an operator notices: a worker that crashes now and then is back at
 * once; one that cannot start is retried a few times, each wait longer,
 * and then the whole hub stops with an error instead of looping forever.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "supervisor.h"

static void
test_a_worker_that_ran_a_while_is_back_at_once(void **state)
{
    int early = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sup_restart_delay(&early, SUP_EARLY_DEATH_MS), SUP_BACKOFF_MIN_MS);
        assert_int_equal(early, 0);
    }
    assert_int_equal(sup_restart_delay(&early, 3600 * 1000), SUP_BACKOFF_MIN_MS);
}

static void
test_deaths_at_start_double_the_wait_then_give_up(void **state)
{
    int early = 0;
    assert_int_equal(sup_restart_delay(&early, 10), 100);
    assert_int_equal(sup_restart_delay(&early, 10), 200);
    assert_int_equal(sup_restart_delay(&early, SUP_EARLY_DEATH_MS - 1), 400);
    assert_int_equal(sup_restart_delay(&early, 0), 800);
    assert_int_equal(early, SUP_EARLY_DEATHS_MAX - 1);
    assert_int_equal(sup_restart_delay(&early, 10), -1);
}

static void
test_a_good_run_forgives_earlier_deaths(void **state)
{
    int early = 0;
    for (int i = 0; i < SUP_EARLY_DEATHS_MAX - 1; i++)
        assert_true(sup_restart_delay(&early, 5) > 0);
    assert_int_equal(sup_restart_delay(&early, 60 * 1000), SUP_BACKOFF_MIN_MS);
    assert_int_equal(early, 0);
    assert_int_equal(sup_restart_delay(&early, 5), SUP_BACKOFF_MIN_MS);
}

static void
test_the_wait_never_exceeds_the_cap(void **state)
{
    /* Were the limit of deaths raised, the doubling stops at the cap. */
    for (int deaths = 0; deaths < 40; deaths++) {
        int early = deaths;
        int d = sup_restart_delay(&early, 0);
        if (d < 0)
            continue;
        assert_true(d >= SUP_BACKOFF_MIN_MS);
        assert_true(d <= SUP_BACKOFF_MAX_MS);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_worker_that_ran_a_while_is_back_at_once),
        cmocka_unit_test(test_deaths_at_start_double_the_wait_then_give_up),
        cmocka_unit_test(test_a_good_run_forgives_earlier_deaths),
        cmocka_unit_test(test_the_wait_never_exceeds_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
