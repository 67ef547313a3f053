/*
 * test_registry.c - tenants, rooms and memberships (hub/registry.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry.h"

/* Connections are opaque to the registry: any distinct addresses do. */
static char conn_a, conn_b;
#define A ((struct conn *)&conn_a)
#define B ((struct conn *)&conn_b)

static size_t
members_of(struct tenant *t, const char *room)
{
    struct room *r = reg_room(t, room);
    return r ? r->n_members : 0;
}

static void
test_tenants_are_found_by_name(void **state)
{
    struct registry reg = {0};
    assert_null(reg_tenant(&reg, "conjunto_a", 0));
    struct tenant *t = reg_tenant(&reg, "conjunto_a", 1);
    assert_non_null(t);
    assert_ptr_equal(reg_tenant(&reg, "conjunto_a", 0), t);
    assert_null(reg_tenant(&reg, "conjunto_b", 0));
    assert_int_equal(reg.n_tenants, 1);
    reg_free(&reg);
}

static void
test_join_is_idempotent_and_leave_frees_empty_rooms(void **state)
{
    struct registry reg = {0};
    struct tenant *t = reg_tenant(&reg, "demo", 1);
    struct member *la = NULL, *lb = NULL;
    assert_int_equal(reg_join(&reg, t, "all", A, &la), 1);
    assert_int_equal(reg_join(&reg, t, "all", A, &la), 0);
    assert_int_equal(reg_join(&reg, t, "all", B, &lb), 1);
    assert_int_equal(reg_join(&reg, t, "unit:101", A, &la), 1);
    assert_int_equal(members_of(t, "all"), 2);
    assert_int_equal(members_of(t, "unit:101"), 1);
    assert_int_equal(reg.n_rooms, 2);
    assert_int_equal(reg.n_members, 3);

    assert_int_equal(reg_leave(&reg, "unit:101", &la), 1);
    assert_int_equal(reg_leave(&reg, "unit:101", &la), 0);
    assert_null(reg_room(t, "unit:101"));
    assert_int_equal(reg.n_rooms, 1);

    reg_leave_all(&reg, &la);
    assert_null(la);
    assert_int_equal(members_of(t, "all"), 1);
    reg_leave_all(&reg, &lb);
    assert_null(reg_room(t, "all"));
    assert_int_equal(reg.n_rooms, 0);
    assert_int_equal(reg.n_members, 0);
    reg_free(&reg);
}

static void
test_rooms_of_tenants_are_separate(void **state)
{
    struct registry reg = {0};
    struct tenant *t1 = reg_tenant(&reg, "torre_norte", 1);
    struct tenant *t2 = reg_tenant(&reg, "torre_sur", 1);
    struct member *la = NULL, *lb = NULL;
    assert_int_equal(reg_join(&reg, t1, "role:guard", A, &la), 1);
    assert_int_equal(reg_join(&reg, t2, "role:guard", B, &lb), 1);
    struct room *r1 = reg_room(t1, "role:guard");
    struct room *r2 = reg_room(t2, "role:guard");
    assert_ptr_not_equal(r1, r2);
    assert_ptr_equal(r1->members->conn, A);
    assert_ptr_equal(r2->members->conn, B);
    assert_int_equal(r1->n_members, 1);
    reg_leave_all(&reg, &la);
    reg_leave_all(&reg, &lb);
    reg_free(&reg);
}

static void
test_many_members_leave_in_any_order(void **state)
{
    struct registry reg = {0};
    struct tenant *t = reg_tenant(&reg, "grande", 1);
    enum { N = 2000 };
    static char conns[N];
    static struct member *lists[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(reg_join(&reg, t, "all", (struct conn *)&conns[i], &lists[i]), 1);
        assert_int_equal(
            reg_join(&reg, t, i % 2 ? "unit:1" : "unit:2", (struct conn *)&conns[i], &lists[i]), 1);
    }
    assert_int_equal(members_of(t, "all"), N);
    assert_int_equal(members_of(t, "unit:1"), N / 2);
    for (int i = 0; i < N; i += 3)
        reg_leave_all(&reg, &lists[i]);
    size_t left = 0, seen = 0;
    for (int i = 0; i < N; i++)
        left += lists[i] != NULL;
    struct member *m;
    for (m = reg_room(t, "all")->members; m; m = m->next)
        seen++;
    assert_int_equal(seen, left);
    assert_int_equal(members_of(t, "all"), left);
    for (int i = 0; i < N; i++)
        reg_leave_all(&reg, &lists[i]);
    assert_int_equal(reg.n_members, 0);
    assert_int_equal(reg.n_rooms, 0);
    reg_free(&reg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenants_are_found_by_name),
        cmocka_unit_test(test_join_is_idempotent_and_leave_frees_empty_rooms),
        cmocka_unit_test(test_rooms_of_tenants_are_separate),
        cmocka_unit_test(test_many_members_leave_in_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
