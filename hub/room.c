/*
 * room.c - room names and who may join them.
 *
 * A room name is 1..ROOM_NAME_MAX bytes of [A-Za-z0-9_.:-]. Every
 * connection sits in its automatic rooms ("all", "user:<sub>",
 * "role:<role>", "unit:<u>" for each unit); an explicit subscribe beyond
 * those is allowed to guards for any "unit:<x>" and to admins for any room.
 * Room names are compared byte for byte: "ALL" is not "all".
 */
#include "room.h"

#include <string.h>

bool
room_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* Returns the rest of room after prefix, or NULL when room does not start with it. */
static const char *
after_prefix(const char *room, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(room, prefix, n) == 0 ? room + n : NULL;
}

/* True when room is one of the rooms the connection of who joins by itself. */
static bool
room_is_automatic(const struct auth_claims *who, const char *room)
{
    const char *rest;

    if (strcmp(room, "all") == 0)
        return true;
    if ((rest = after_prefix(room, "role:")) != NULL)
        return strcmp(rest, auth_role_name(who->role)) == 0;
    if ((rest = after_prefix(room, "user:")) != NULL)
        return who->sub != NULL && strcmp(rest, who->sub) == 0;
    if ((rest = after_prefix(room, "unit:")) != NULL) {
        for (size_t i = 0; i < who->n_units; i++)
            if (strcmp(rest, who->units[i]) == 0)
                return true;
    }
    return false;
}

/*
 * The name is checked first, so a malformed name is a bad request (-1)
 * whatever the role. A missing who (no authenticated connection) may join
 * nothing (-2).
 */
int
room_may_subscribe(const struct auth_claims *who, const char *room)
{
    const char *rest;

    if (room == NULL || !room_name_valid(room, strnlen(room, ROOM_NAME_MAX + 1)))
        return -1;
    if (who == NULL)
        return -2;
    if (who->role == AUTH_ROLE_ADMIN || room_is_automatic(who, room))
        return 0;
    if (who->role == AUTH_ROLE_GUARD && (rest = after_prefix(room, "unit:")) != NULL &&
        *rest != '\0')
        return 0;
    return -2;
}
