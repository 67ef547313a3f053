/*
 * test_soon.c - unit tests for hub/soon.c: work deferred to the next turn
 * of a real libev loop runs once, in order, and what a callback queues
 * (itself included) waits for the following turn.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <string.h>

#include "soon.h"

/* The order callbacks ran in: the index of each entry, as characters. */
static char ran[64];
static size_t n_ran;
static struct soon items[4];
static int requeue_left;            /* how many more times item 0 queues itself again */
static struct soon *cancel_from_cb; /* an entry the first callback cancels */

static void
record(struct soon *s)
{
    if (n_ran < sizeof(ran) - 1)
        ran[n_ran++] = (char)('0' + (s - items));
    if (cancel_from_cb) {
        soon_cancel(cancel_from_cb);
        cancel_from_cb = NULL;
    }
}

static void
requeue(struct soon *s)
{
    record(s);
    if (requeue_left-- > 0)
        soon_add(s, requeue);
}

static struct ev_loop *loop;

static int
setup(void **state)
{
    (void)state;
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        return -1;
    soon_init(loop);
    memset(items, 0, sizeof(items));
    memset(ran, 0, sizeof(ran));
    n_ran = 0;
    requeue_left = 0;
    cancel_from_cb = NULL;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    soon_init(NULL);
    ev_loop_destroy(loop);
    return 0;
}

/* One loop turn that does not block. */
static void
turn(void)
{
    ev_run(loop, EVRUN_NOWAIT);
}

static void
runs_once_in_order(void **state)
{
    (void)state;
    soon_add(&items[2], record);
    soon_add(&items[0], record);
    soon_add(&items[1], record);
    soon_add(&items[0], record); /* already queued: nothing more */
    turn();
    assert_string_equal(ran, "201");
    turn();
    assert_string_equal(ran, "201"); /* nothing left: nothing runs again */
}

static void
cancelled_entries_do_not_run(void **state)
{
    (void)state;
    soon_add(&items[0], record);
    soon_add(&items[1], record);
    soon_add(&items[2], record);
    soon_cancel(&items[1]);
    soon_cancel(&items[3]); /* never queued: harmless */
    turn();
    assert_string_equal(ran, "02");
    /* A cancelled entry can be queued again. */
    soon_add(&items[1], record);
    turn();
    assert_string_equal(ran, "021");
}

static void
callback_can_cancel_a_later_entry(void **state)
{
    (void)state;
    soon_add(&items[0], record);
    soon_add(&items[1], record);
    soon_add(&items[2], record);
    cancel_from_cb = &items[1];
    turn();
    assert_string_equal(ran, "02");
}

static void
requeued_entry_waits_for_the_next_turn(void **state)
{
    (void)state;
    requeue_left = 2;
    soon_add(&items[0], requeue);
    soon_add(&items[1], record);
    turn();
    assert_string_equal(ran, "01");
    turn();
    assert_string_equal(ran, "010");
    turn();
    assert_string_equal(ran, "0100");
    turn();
    assert_string_equal(ran, "0100");
}

static void
nothing_runs_without_a_loop(void **state)
{
    (void)state;
    soon_init(NULL);
    soon_add(&items[0], record);
    assert_int_equal(items[0].queued, 0);
    soon_init(loop);
    turn();
    assert_string_equal(ran, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(runs_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_entries_do_not_run, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_can_cancel_a_later_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(requeued_entry_waits_for_the_next_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_runs_without_a_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
