/*
 * test_db.c - unit tests for hub/db.c's text[] literal builder.
 *
 * db_text_array() builds the rooms parameter of the replay query. What the
 * replay relies on: no rooms give "{}", every element is quoted and its
 * quotes and backslashes escaped, and the string is sized exactly enough
 * for the worst case (run under AddressSanitizer, a byte written past the
 * allocation aborts the test).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db.h"

static void
test_no_items(void **state)
{
    char *lit = db_text_array(NULL, 0);

    assert_non_null(lit);
    assert_string_equal(lit, "{}");
    free(lit);
}

static void
test_items_quoted(void **state)
{
    const char *rooms[] = {"all", "user:guard-1", "role:guard"};
    char *lit = db_text_array(rooms, 3);

    assert_non_null(lit);
    assert_string_equal(lit, "{\"all\",\"user:guard-1\",\"role:guard\"}");
    free(lit);
}

static void
test_quotes_and_backslashes_escaped(void **state)
{
    const char *odd[] = {"a\"b", "c\\d", "", "{x,y}", "\"\"\\\\"};
    char *lit = db_text_array(odd, 5);

    assert_non_null(lit);
    assert_string_equal(lit, "{\"a\\\"b\",\"c\\\\d\",\"\",\"{x,y}\",\"\\\"\\\"\\\\\\\\\"}");
    free(lit);
}

static void
test_one_empty_item(void **state)
{
    const char *one[] = {""};
    char *lit = db_text_array(one, 1);

    assert_non_null(lit);
    assert_string_equal(lit, "{\"\"}");
    free(lit);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_items),
        cmocka_unit_test(test_items_quoted),
        cmocka_unit_test(test_quotes_and_backslashes_escaped),
        cmocka_unit_test(test_one_empty_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
