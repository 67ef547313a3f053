/*
 * test_pgarray.c - unit tests for common/pgarray.c, the one builder of
 * PostgreSQL array literals.
 *
 * The replay's rooms, the batched acks and the fallback's delivery results
 * all reach the database through it, and each element is text a client or
 * an operator chose. What callers rely on: no elements give "{}", every
 * element is quoted with its quotes and backslashes escaped so that commas,
 * braces, whitespace and the word NULL stay text, a NULL pointer is an SQL
 * NULL, and the buffer is sized for the worst case (under AddressSanitizer
 * a byte written past the allocation aborts the test).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pgarray.h"

/* Builds the literal of n elements (NULL pointers allowed) and checks it. */
static void
expect_literal(const char *const *items, size_t n, const char *want)
{
    struct pgarray a;
    pgarray_init(&a);
    for (size_t i = 0; i < n; i++)
        pgarray_add(&a, items[i]);
    char *lit = pgarray_finish(&a);
    assert_non_null(lit);
    assert_string_equal(lit, want);
    free(lit);
    assert_null(a.buf);
    assert_int_equal(a.n, 0);
}

static void
test_no_items(void **state)
{
    char *lit = pgarray_text(NULL, 0);

    assert_non_null(lit);
    assert_string_equal(lit, "{}");
    free(lit);
    expect_literal(NULL, 0, "{}");
}

static void
test_items_quoted(void **state)
{
    const char *rooms[] = {"all", "user:guard-1", "role:guard"};
    char *lit = pgarray_text(rooms, 3);

    assert_non_null(lit);
    assert_string_equal(lit, "{\"all\",\"user:guard-1\",\"role:guard\"}");
    free(lit);
}

static void
test_quotes_and_backslashes_escaped(void **state)
{
    const char *odd[] = {"a\"b", "c\\d", "", "{x,y}", "\"\"\\\\"};
    char *lit = pgarray_text(odd, 5);

    assert_non_null(lit);
    assert_string_equal(lit, "{\"a\\\"b\",\"c\\\\d\",\"\",\"{x,y}\",\"\\\"\\\"\\\\\\\\\"}");
    free(lit);
}

static void
test_one_empty_item(void **state)
{
    const char *one[] = {""};
    expect_literal(one, 1, "{\"\"}");
    const char *two[] = {"", ""};
    expect_literal(two, 2, "{\"\",\"\"}");
}

static void
test_null_is_sql_null(void **state)
{
    /* A NULL pointer is the bare word; the text "NULL" stays quoted. */
    const char *items[] = {NULL, "NULL", "null", NULL};
    expect_literal(items, 4, "{NULL,\"NULL\",\"null\",NULL}");
    const char *only[] = {NULL};
    expect_literal(only, 1, "{NULL}");
}

static void
test_commas_braces_whitespace_kept(void **state)
{
    const char *items[] = {"a,b", "}", "{", " lead", "trail ", "tab\there", "line\nbreak", " "};
    expect_literal(
        items, 8, "{\"a,b\",\"}\",\"{\",\" lead\",\"trail \",\"tab\there\",\"line\nbreak\",\" \"}");
}

static void
test_numbers_and_utf8(void **state)
{
    /* bigint[] and int[] parameters take quoted elements as well. */
    const char *items[] = {"9223372036854775807", "-1", "0", "Armonía ✓"};
    expect_literal(items, 4, "{\"9223372036854775807\",\"-1\",\"0\",\"Armonía ✓\"}");
}

static void
test_long_elements_grow(void **state)
{
    /* Elements past the first allocation, each the worst case of escaping. */
    enum { LEN = 1000, COUNT = 40 };
    char *item = malloc(LEN + 1);
    assert_non_null(item);
    for (size_t i = 0; i < LEN; i++)
        item[i] = i % 2 ? '"' : '\\';
    item[LEN] = '\0';
    struct pgarray a;
    pgarray_init(&a);
    for (int i = 0; i < COUNT; i++)
        pgarray_add(&a, item);
    char *lit = pgarray_finish(&a);
    assert_non_null(lit);
    assert_int_equal(strlen(lit), 2 + COUNT * (2 * LEN + 2) + (COUNT - 1));
    assert_int_equal(lit[0], '{');
    assert_memory_equal(lit + 1, "\"\\\\\\\"", 5);
    /* The last element's last byte, escaped, then its closing quote and the brace. */
    assert_string_equal(lit + strlen(lit) - 4, "\\\"\"}");
    free(lit);
    free(item);
}

static void
test_discard_and_reuse(void **state)
{
    struct pgarray a;
    pgarray_init(&a);
    pgarray_add(&a, "x");
    pgarray_discard(&a);
    assert_null(a.buf);
    pgarray_add(&a, "y");
    char *lit = pgarray_finish(&a);
    assert_string_equal(lit, "{\"y\"}");
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
        cmocka_unit_test(test_null_is_sql_null),
        cmocka_unit_test(test_commas_braces_whitespace_kept),
        cmocka_unit_test(test_numbers_and_utf8),
        cmocka_unit_test(test_long_elements_grow),
        cmocka_unit_test(test_discard_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
