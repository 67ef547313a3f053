/*
 * fuzz_room.c - room names a client asks for (a subscribe frame's room,
 * the ?rooms= list of the URL): room_name_valid() on the raw bytes and
 * room_may_subscribe() for a resident, a guard and an admin, each checked
 * against the rule room.h states, written out again here.
 *
 * Input: the first byte picks the role (modulo 3), the rest is the name.
 */
#include "fuzz.h"
#include "room.h"

/* The rule of room.h: 1..ROOM_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
static int
name_ok(const char *s, size_t len)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-";

    if (len < 1 || len > ROOM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return 0;
    return 1;
}

/* True when s starts with prefix and has something after it. */
static int
prefixed(const char *s, const char *prefix, const char *rest)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 && (rest == NULL ? s[n] != '\0' : strcmp(s + n, rest) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    static char sub[] = "res-101", u1[] = "101", u2[] = "T2:302";
    static char tenant[] = "torres_del_parque";
    char *units[] = {u1, u2};
    struct auth_claims who = {.sub = sub, .tenant = tenant, .units = units, .n_units = 2};
    size_t len;
    int expect;

    who.role = (enum auth_role)(fuzz_byte(&in) % 3);
    char *room = fuzz_rest(&in, &len);

    FUZZ_CHECK(room_name_valid(room, len) == (name_ok(room, len) != 0));

    /* room_may_subscribe() reads a C string: the name up to its first NUL. */
    size_t clen = strlen(room);
    if (!name_ok(room, clen))
        expect = -1;
    else if (who.role == AUTH_ROLE_ADMIN)
        expect = 0;
    else if (strcmp(room, "all") == 0 || prefixed(room, "user:", sub) ||
             prefixed(room, "role:", auth_role_name(who.role)) || prefixed(room, "unit:", u1) ||
             prefixed(room, "unit:", u2))
        expect = 0;
    else if (who.role == AUTH_ROLE_GUARD && prefixed(room, "unit:", NULL))
        expect = 0;
    else
        expect = -2;
    FUZZ_CHECK(room_may_subscribe(&who, room) == expect);
    /* No connection, no room beyond the name check. */
    FUZZ_CHECK(room_may_subscribe(NULL, room) == (expect == -1 ? -1 : -2));
    free(room);
    return 0;
}
