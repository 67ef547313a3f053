/*
 * room.h - room names and who may join them.
 *
 * Rooms live inside a tenant. Every connection is placed in "all",
 * "user:<sub>", "role:<role>" and "unit:<u>" for each of its units.
 * Beyond those: residents may subscribe to nothing else, guards to any
 * "unit:*", admins to any room of their tenant.
 */
#ifndef HUB_ROOM_H
#define HUB_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include "auth.h"

#define ROOM_NAME_MAX 100

/* True when name is 1..ROOM_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
bool room_name_valid(const char *name, size_t len);

/*
 * Decides an explicit subscribe request. Returns 0 when allowed, -1 when
 * the name is malformed (bad_request), -2 when the role may not join it
 * (forbidden). The connection's automatic rooms are always allowed.
 */
int room_may_subscribe(const struct auth_claims *who, const char *room);

#endif
