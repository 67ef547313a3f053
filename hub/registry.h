/*
 * registry.h - who is connected where: tenant -> room -> connections.
 *
 * Tenants and rooms are found by name in hash tables (uthash); a room's
 * members form a doubly linked list, and each connection keeps its own
 * memberships, so join and leave are O(1) and a connection that closes
 * leaves all its rooms in time proportional to their number. An empty room
 * is freed at once; a tenant stays (it carries the tenant's verification
 * and newest seq) until the registry is freed.
 */
#ifndef HUB_REGISTRY_H
#define HUB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

struct conn;
struct room;
struct buf;

/* One connection's presence in one room; owned by the connection. */
struct member {
    struct room *room;
    struct conn *conn;
    struct member *prev, *next; /* in room->members */
    struct member *cnext;       /* in conn's own list */
};

struct room {
    char *name; /* owned */
    struct tenant *tenant;
    struct member *members; /* utlist DL list */
    size_t n_members;
    UT_hash_handle hh; /* in tenant->rooms */
};

/* What the database last said of a tenant name (does the schema exist?). */
enum tenant_check { TENANT_UNCHECKED, TENANT_KNOWN, TENANT_UNKNOWN };

struct tenant {
    char *name; /* owned */
    struct room *rooms;
    size_t n_conns;   /* authenticated connections */
    int64_t last_seq; /* newest seq of this tenant the hub knows */
    enum tenant_check check;
    int checking;          /* a lookup is in flight */
    int64_t checked_at_ms; /* monotonic time of the last answer */
    struct conn *waiters;  /* connections waiting for the check (conn->wnext) */
    UT_hash_handle hh;
};

struct registry {
    struct tenant *tenants;
    size_t n_tenants;
    size_t n_rooms;
    size_t n_members;
    /* The router's cursor (router.c owns it): the next member its fan-out in
     * progress will visit, moved on here when that member leaves, so a walk
     * spread over loop turns stays valid. NULL: no router. */
    struct member **walk;
};

/* Finds a tenant by name; with create, makes an empty one when missing.
 * Returns NULL when absent (or on OOM with create). */
struct tenant *reg_tenant(struct registry *reg, const char *name, int create);

/* Finds a room of tenant t by name, or NULL. */
struct room *reg_room(struct tenant *t, const char *name);

/*
 * Puts conn into room name of tenant t, creating the room when needed.
 * *list is the connection's own membership list. Returns 1 when it joined,
 * 0 when it was already a member, -1 on OOM.
 */
int reg_join(struct registry *reg, struct tenant *t, const char *name, struct conn *conn,
             struct member **list);

/* Takes conn out of room name; returns 1 when it left, 0 when it was not in it. */
int reg_leave(struct registry *reg, const char *name, struct member **list);

/* The membership on a connection's own list for room name, or NULL. */
const struct member *reg_member_of(const struct member *list, const char *name);

/* Takes conn out of every room on its list. */
void reg_leave_all(struct registry *reg, struct member **list);

/* Frees every tenant and room; memberships must be gone already. */
void reg_free(struct registry *reg);

#endif
