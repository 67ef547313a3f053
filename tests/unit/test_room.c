/*
 * test_room.c - unit tests for hub/room.c: which room names are well formed
 * and which rooms each role may subscribe to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "room.h"

/* Claims of a connection as auth_verify() would produce them. */
static char sub_buf[] = "u-17";
static char tenant_buf[] = "torres";
static char unit_a[] = "101";
static char unit_b[] = "T2:302";
static char *units[] = {unit_a, unit_b};

static struct auth_claims
claims_for(enum auth_role role)
{
    struct auth_claims c = {
        .sub = sub_buf,
        .tenant = tenant_buf,
        .role = role,
        .units = units,
        .n_units = 2,
        .exp = 1764266400,
    };
    return c;
}

static bool
name_valid(const char *s)
{
    return room_name_valid(s, strlen(s));
}

static void
test_name_empty_invalid(void **state)
{
    assert_false(room_name_valid("", 0));
    assert_false(room_name_valid("all", 0));
    assert_false(room_name_valid(NULL, 0));
}

static void
test_name_one_byte_valid(void **state)
{
    assert_true(name_valid("a"));
    assert_true(name_valid(":"));
}

static void
test_name_100_bytes_valid(void **state)
{
    char name[ROOM_NAME_MAX + 1];
    memset(name, 'r', ROOM_NAME_MAX);
    name[ROOM_NAME_MAX] = '\0';
    assert_int_equal(strlen(name), 100);
    assert_true(name_valid(name));
}

static void
test_name_101_bytes_invalid(void **state)
{
    char name[ROOM_NAME_MAX + 2];
    memset(name, 'r', ROOM_NAME_MAX + 1);
    name[ROOM_NAME_MAX + 1] = '\0';
    assert_false(name_valid(name));
}

static void
test_name_all_allowed_characters(void **state)
{
    assert_true(name_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"));
}

static void
test_name_bad_characters(void **state)
{
    assert_false(name_valid("unit 302"));
    assert_false(name_valid("unit/302"));
    assert_false(name_valid("unit:*"));
    assert_false(name_valid("unit:3\xc3\xa9"));
    assert_false(name_valid("unit:302\n"));
    assert_false(name_valid("unit:302;"));
    assert_false(name_valid("#all"));
}

static void
test_name_embedded_nul_invalid(void **state)
{
    assert_false(room_name_valid("all\0x", 5));
}

static void
test_subscribe_invalid_name_is_bad_request(void **state)
{
    char long_name[ROOM_NAME_MAX + 2];
    memset(long_name, 'a', ROOM_NAME_MAX + 1);
    long_name[ROOM_NAME_MAX + 1] = '\0';

    for (int r = AUTH_ROLE_RESIDENT; r <= AUTH_ROLE_ADMIN; r++) {
        struct auth_claims c = claims_for((enum auth_role)r);
        assert_int_equal(room_may_subscribe(&c, ""), -1);
        assert_int_equal(room_may_subscribe(&c, "unit:*"), -1);
        assert_int_equal(room_may_subscribe(&c, "unit 101"), -1);
        assert_int_equal(room_may_subscribe(&c, "user/u-17"), -1);
        assert_int_equal(room_may_subscribe(&c, long_name), -1);
        assert_int_equal(room_may_subscribe(&c, NULL), -1);
    }
}

static void
test_resident_automatic_rooms_allowed(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_RESIDENT);
    assert_int_equal(room_may_subscribe(&c, "all"), 0);
    assert_int_equal(room_may_subscribe(&c, "user:u-17"), 0);
    assert_int_equal(room_may_subscribe(&c, "role:resident"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:101"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:T2:302"), 0);
}

static void
test_resident_other_rooms_forbidden(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_RESIDENT);
    assert_int_equal(room_may_subscribe(&c, "user:u-18"), -2);
    assert_int_equal(room_may_subscribe(&c, "user:u-1"), -2);
    assert_int_equal(room_may_subscribe(&c, "user:u-170"), -2);
    assert_int_equal(room_may_subscribe(&c, "role:guard"), -2);
    assert_int_equal(room_may_subscribe(&c, "role:admin"), -2);
    assert_int_equal(room_may_subscribe(&c, "unit:102"), -2);
    assert_int_equal(room_may_subscribe(&c, "unit:10"), -2);
    assert_int_equal(room_may_subscribe(&c, "unit:"), -2);
    assert_int_equal(room_may_subscribe(&c, "ALL"), -2);
    assert_int_equal(room_may_subscribe(&c, "role:RESIDENT"), -2);
    assert_int_equal(room_may_subscribe(&c, "lobby"), -2);
}

static void
test_resident_without_units(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_RESIDENT);
    c.units = NULL;
    c.n_units = 0;
    assert_int_equal(room_may_subscribe(&c, "unit:101"), -2);
    assert_int_equal(room_may_subscribe(&c, "all"), 0);
}

static void
test_guard_automatic_rooms_allowed(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_GUARD);
    assert_int_equal(room_may_subscribe(&c, "all"), 0);
    assert_int_equal(room_may_subscribe(&c, "user:u-17"), 0);
    assert_int_equal(room_may_subscribe(&c, "role:guard"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:101"), 0);
}

static void
test_guard_any_unit_allowed(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_GUARD);
    assert_int_equal(room_may_subscribe(&c, "unit:302"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:T9:1204"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:x"), 0);
}

static void
test_guard_empty_unit_forbidden(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_GUARD);
    assert_int_equal(room_may_subscribe(&c, "unit:"), -2);
}

static void
test_guard_other_rooms_forbidden(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_GUARD);
    assert_int_equal(room_may_subscribe(&c, "role:resident"), -2);
    assert_int_equal(room_may_subscribe(&c, "role:admin"), -2);
    assert_int_equal(room_may_subscribe(&c, "user:u-18"), -2);
    assert_int_equal(room_may_subscribe(&c, "units:302"), -2);
    assert_int_equal(room_may_subscribe(&c, "UNIT:302"), -2);
    assert_int_equal(room_may_subscribe(&c, "lobby"), -2);
}

static void
test_admin_any_valid_room_allowed(void **state)
{
    struct auth_claims c = claims_for(AUTH_ROLE_ADMIN);
    assert_int_equal(room_may_subscribe(&c, "all"), 0);
    assert_int_equal(room_may_subscribe(&c, "role:admin"), 0);
    assert_int_equal(room_may_subscribe(&c, "role:guard"), 0);
    assert_int_equal(room_may_subscribe(&c, "role:resident"), 0);
    assert_int_equal(room_may_subscribe(&c, "user:someone-else"), 0);
    assert_int_equal(room_may_subscribe(&c, "unit:"), 0);
    assert_int_equal(room_may_subscribe(&c, "lobby"), 0);
}

static void
test_no_claims_forbidden(void **state)
{
    assert_int_equal(room_may_subscribe(NULL, "all"), -2);
    assert_int_equal(room_may_subscribe(NULL, "bad name"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_empty_invalid),
        cmocka_unit_test(test_name_one_byte_valid),
        cmocka_unit_test(test_name_100_bytes_valid),
        cmocka_unit_test(test_name_101_bytes_invalid),
        cmocka_unit_test(test_name_all_allowed_characters),
        cmocka_unit_test(test_name_bad_characters),
        cmocka_unit_test(test_name_embedded_nul_invalid),
        cmocka_unit_test(test_subscribe_invalid_name_is_bad_request),
        cmocka_unit_test(test_resident_automatic_rooms_allowed),
        cmocka_unit_test(test_resident_other_rooms_forbidden),
        cmocka_unit_test(test_resident_without_units),
        cmocka_unit_test(test_guard_automatic_rooms_allowed),
        cmocka_unit_test(test_guard_any_unit_allowed),
        cmocka_unit_test(test_guard_empty_unit_forbidden),
        cmocka_unit_test(test_guard_other_rooms_forbidden),
        cmocka_unit_test(test_admin_any_valid_room_allowed),
        cmocka_unit_test(test_no_claims_forbidden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
