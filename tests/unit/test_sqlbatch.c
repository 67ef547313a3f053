/*
 * test_sqlbatch.c - unit tests for common/sqlbatch.c, the queue behind the
 * batched acks and delivery results.
 *
 * What its owners rely on: a statement takes the oldest rows, at most a
 * batch of them, one array literal per column; only one statement is in
 * flight; rows stay until the owner says the statement was written (or
 * refused), and come first again when it never reached the database; a
 * full queue drops its oldest row not being written, and says so; and a
 * column NULL in every row of a batch is reported, so the caller can call
 * the shorter form of its SQL function.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sqlbatch.h"

/* Queues the row (id, name, NULL or role) into b; asserts on the return. */
static void
add(struct sqlbatch *b, int id, const char *name, const char *role, int want)
{
    char text[16];
    snprintf(text, sizeof(text), "%d", id);
    const char *row[3] = {text, name, role};
    assert_int_equal(sqlbatch_add(b, row), want);
}

/* Takes a batch and checks its row count and its three literals. */
static void
take(struct sqlbatch *b, long rows, const char *ids, const char *names, const char *roles,
     unsigned nulls)
{
    char *lit[3];
    unsigned got_nulls = 99;
    assert_int_equal(sqlbatch_take(b, lit, &got_nulls), rows);
    if (!rows) {
        for (int k = 0; k < 3; k++)
            assert_null(lit[k]);
        return;
    }
    assert_string_equal(lit[0], ids);
    assert_string_equal(lit[1], names);
    assert_string_equal(lit[2], roles);
    assert_int_equal(got_nulls, nulls);
    for (int k = 0; k < 3; k++)
        free(lit[k]);
}

static void
test_rows_become_one_literal_per_column(void **state)
{
    struct sqlbatch *b = sqlbatch_new(3, 10, 100);
    assert_non_null(b);
    add(b, 1, "ana", NULL, 0);
    add(b, 2, "o\"brien", "guard", 0);
    assert_int_equal(sqlbatch_pending(b), 2);
    take(b, 2, "{\"1\",\"2\"}", "{\"ana\",\"o\\\"brien\"}", "{NULL,\"guard\"}", 0);
    assert_int_equal(sqlbatch_inflight(b), 2);
    sqlbatch_done(b);
    assert_int_equal(sqlbatch_pending(b), 0);
    assert_int_equal(sqlbatch_inflight(b), 0);
    sqlbatch_free(b);
}

static void
test_all_null_column_reported(void **state)
{
    struct sqlbatch *b = sqlbatch_new(3, 10, 100);
    add(b, 1, "ana", NULL, 0);
    add(b, 2, "", NULL, 0);
    /* An empty string is a value, not a NULL. */
    take(b, 2, "{\"1\",\"2\"}", "{\"ana\",\"\"}", "{NULL,NULL}", 1u << 2);
    sqlbatch_done(b);
    sqlbatch_free(b);
}

static void
test_batches_oldest_first_and_bounded(void **state)
{
    struct sqlbatch *b = sqlbatch_new(3, 2, 100);
    for (int i = 1; i <= 5; i++)
        add(b, i, "u", "r", 0);
    take(b, 2, "{\"1\",\"2\"}", "{\"u\",\"u\"}", "{\"r\",\"r\"}", 0);
    /* One statement at a time. */
    take(b, 0, NULL, NULL, NULL, 0);
    sqlbatch_done(b);
    take(b, 2, "{\"3\",\"4\"}", "{\"u\",\"u\"}", "{\"r\",\"r\"}", 0);
    sqlbatch_done(b);
    take(b, 1, "{\"5\"}", "{\"u\"}", "{\"r\"}", 0);
    sqlbatch_done(b);
    take(b, 0, NULL, NULL, NULL, 0);
    sqlbatch_free(b);
}

static void
test_retry_keeps_rows_first(void **state)
{
    struct sqlbatch *b = sqlbatch_new(3, 2, 100);
    add(b, 1, "a", NULL, 0);
    add(b, 2, "b", NULL, 0);
    take(b, 2, "{\"1\",\"2\"}", "{\"a\",\"b\"}", "{NULL,NULL}", 4);
    /* A row added while a statement is in flight waits behind it. */
    add(b, 3, "c", NULL, 0);
    sqlbatch_retry(b);
    assert_int_equal(sqlbatch_inflight(b), 0);
    assert_int_equal(sqlbatch_pending(b), 3);
    take(b, 2, "{\"1\",\"2\"}", "{\"a\",\"b\"}", "{NULL,NULL}", 4);
    sqlbatch_done(b);
    take(b, 1, "{\"3\"}", "{\"c\"}", "{NULL}", 4);
    sqlbatch_free(b); /* frees rows still in flight */
}

static void
test_full_queue_drops_oldest_waiting(void **state)
{
    struct sqlbatch *b = sqlbatch_new(3, 1, 2);
    add(b, 1, "a", NULL, 0);
    take(b, 1, "{\"1\"}", "{\"a\"}", "{NULL}", 4);
    /* Row 1 is in flight and never dropped; two may wait besides it. */
    add(b, 2, "b", NULL, 0);
    add(b, 3, "c", NULL, 0);
    add(b, 4, "d", NULL, 1);
    assert_int_equal(sqlbatch_pending(b), 3);
    sqlbatch_done(b);
    take(b, 1, "{\"3\"}", "{\"c\"}", "{NULL}", 4);
    sqlbatch_done(b);
    take(b, 1, "{\"4\"}", "{\"d\"}", "{NULL}", 4);
    sqlbatch_done(b);
    sqlbatch_free(b);
}

static void
test_column_count_checked(void **state)
{
    assert_null(sqlbatch_new(0, 1, 1));
    assert_null(sqlbatch_new(SQLBATCH_MAX_COLUMNS + 1, 1, 1));
    assert_null(sqlbatch_new(2, 0, 1));
    struct sqlbatch *b = sqlbatch_new(SQLBATCH_MAX_COLUMNS, 1, SIZE_MAX);
    assert_non_null(b);
    sqlbatch_free(b);
    sqlbatch_free(NULL);
    assert_int_equal(sqlbatch_pending(NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_become_one_literal_per_column),
        cmocka_unit_test(test_all_null_column_reported),
        cmocka_unit_test(test_batches_oldest_first_and_bounded),
        cmocka_unit_test(test_retry_keeps_rows_first),
        cmocka_unit_test(test_full_queue_drops_oldest_waiting),
        cmocka_unit_test(test_column_count_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
