/*
 * test_config.c - unit tests for hub/config.c: the "did you mean" that
 * names the nearest setting when a variable or a flag is misspelt.
 *
 * What an operator sees: a typo (a missing, extra, wrong or swapped
 * letter) finds the setting meant; a name that is no misspelling of any
 * setting finds nothing, rather than a setting that only looks alike.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static void
test_distance_counts_each_kind_of_edit_once(void **state)
{
    assert_int_equal(config_distance("HUB_RETENTION_S", "HUB_RETENTION_S"), 0);
    assert_int_equal(config_distance("HUB_RETENTON_S", "HUB_RETENTION_S"), 1);   /* missing */
    assert_int_equal(config_distance("HUB_RETENTIONN_S", "HUB_RETENTION_S"), 1); /* extra */
    assert_int_equal(config_distance("HUB_RETENTIAN_S", "HUB_RETENTION_S"), 1);  /* wrong */
    assert_int_equal(config_distance("HUB_RETENTINO_S", "HUB_RETENTION_S"), 1);  /* swapped */
    assert_int_equal(config_distance("", "PORT"), 4);
    assert_int_equal(config_distance("PORT", ""), 4);
    assert_int_equal(config_distance("kitten", "sitting"), 3);
}

static void
test_distance_refuses_overlong_names(void **state)
{
    char long_name[CONFIG_NAME_MAX + 2];
    memset(long_name, 'A', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_true(config_distance(long_name, "PORT") == SIZE_MAX);
    assert_null(config_suggest(long_name, 0));
}

static void
test_misspelt_variables_find_their_setting(void **state)
{
    assert_string_equal(config_suggest("HUB_RETENTON_S", 0), "HUB_RETENTION_S");
    assert_string_equal(config_suggest("HUB_WORKER", 0), "HUB_WORKERS");
    assert_string_equal(config_suggest("HUB_LOGLEVEL", 0), "HUB_LOG_LEVEL");
    assert_string_equal(config_suggest("HUB_MAX_CONN_PER_IP", 0), "HUB_MAX_CONNS_PER_IP");
    assert_string_equal(config_suggest("HUB_SHUTDOWN_TIMEOUT", 0), "HUB_SHUTDOWN_TIMEOUT_MS");
    /* The prefix counts for nothing: the settings without one are found. */
    assert_string_equal(config_suggest("HUB_PORT", 0), "PORT");
    assert_string_equal(config_suggest("HUB_DATABASE_URL", 0), "DATABASE_URL");
}

static void
test_other_words_find_nothing(void **state)
{
    assert_null(config_suggest("HUB_FOO", 0));
    assert_null(config_suggest("HUB_PGDIR", 0));
    assert_null(config_suggest("HUB_SOURCE_DIR", 0));
}

static void
test_misspelt_flags_find_their_flag(void **state)
{
    assert_string_equal(config_suggest("--retenton-s", 1), "retention-s");
    assert_string_equal(config_suggest("--prot", 1), "port");
    assert_string_equal(config_suggest("--check-confg", 1), "check-config");
    assert_string_equal(config_suggest("--verison", 1), "version");
    assert_null(config_suggest("--frobnicate", 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance_counts_each_kind_of_edit_once),
        cmocka_unit_test(test_distance_refuses_overlong_names),
        cmocka_unit_test(test_misspelt_variables_find_their_setting),
        cmocka_unit_test(test_other_words_find_nothing),
        cmocka_unit_test(test_misspelt_flags_find_their_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
