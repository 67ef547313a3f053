/*
 * test_workers.c - unit tests for hub/workers.c, the table the worker
 * processes share.
 *
 * What a scrape shows: a worker's counters stay in the hub's totals after
 * it died (the sums never go backwards), and its slot stops claiming it
 * listens until the next one is up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "workers.h"

static void
test_retired_counters_stay_in_the_totals(void **state)
{
    struct workers *w = workers_map(2);
    assert_non_null(w);
    assert_int_equal(w->n, 2);
    w->slot[1].pid = 1234;
    w->slot[1].s.m.connections_total = 7;
    w->slot[1].s.m.ip_table_full = 3; /* the last field counts too */
    w->slot[1].s.accepting = 1;
    w->slot[1].s.db_listening = 1;
    w->slot[1].s.connections = 5;
    workers_retire(w, 1);
    assert_int_equal(w->retired.connections_total, 7);
    assert_int_equal(w->retired.ip_table_full, 3);
    assert_int_equal(w->slot[1].pid, 0);
    assert_int_equal(w->slot[1].s.accepting, 0);
    assert_int_equal(w->slot[1].s.db_listening, 0);
    assert_int_equal(w->slot[1].s.connections, 0);
    assert_int_equal(w->slot[1].s.m.connections_total, 0);

    w->slot[1].s.m.connections_total = 2;
    workers_retire(w, 1);
    assert_int_equal(w->retired.connections_total, 9);
    workers_unmap(w);
}

static void
test_add_metrics_adds_every_field(void **state)
{
    struct hub_metrics a = {.acks = 1, .bytes_sent = 10}, b = {.acks = 2, .refused_origin = 4};
    workers_add_metrics(&a, &b);
    assert_int_equal(a.acks, 3);
    assert_int_equal(a.bytes_sent, 10);
    assert_int_equal(a.refused_origin, 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retired_counters_stay_in_the_totals),
        cmocka_unit_test(test_add_metrics_adds_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
