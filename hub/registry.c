/*
 * registry.c - tenants, rooms and memberships (see registry.h).
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

struct tenant *
reg_tenant(struct registry *reg, const char *name, int create)
{
    struct tenant *t = NULL;
    HASH_FIND_STR(reg->tenants, name, t);
    if (t || !create)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = strdup(name);
    if (!t->name) {
        free(t);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, reg->tenants, t->name, strlen(t->name), t);
    reg->n_tenants++;
    return t;
}

struct room *
reg_room(struct tenant *t, const char *name)
{
    struct room *r = NULL;
    HASH_FIND_STR(t->rooms, name, r);
    return r;
}

int
reg_join(struct registry *reg, struct tenant *t, const char *name, struct conn *conn,
         struct member **list)
{
    for (struct member *m = *list; m; m = m->cnext)
        if (!strcmp(m->room->name, name))
            return 0;
    struct room *r = reg_room(t, name);
    int fresh = 0;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return -1;
        r->name = strdup(name);
        if (!r->name) {
            free(r);
            return -1;
        }
        r->tenant = t;
        HASH_ADD_KEYPTR(hh, t->rooms, r->name, strlen(r->name), r);
        reg->n_rooms++;
        fresh = 1;
    }
    struct member *m = calloc(1, sizeof(*m));
    if (!m) {
        if (fresh) {
            HASH_DEL(t->rooms, r);
            reg->n_rooms--;
            free(r->name);
            free(r);
        }
        return -1;
    }
    m->room = r;
    m->conn = conn;
    DL_APPEND(r->members, m);
    r->n_members++;
    m->cnext = *list;
    *list = m;
    reg->n_members++;
    return 1;
}

/* Unlinks m from its room, frees the room when it empties, and frees m. */
static void
member_drop(struct registry *reg, struct member *m)
{
    struct room *r = m->room;
    if (reg->walk && *reg->walk == m)
        *reg->walk = m->next;
    DL_DELETE(r->members, m);
    r->n_members--;
    reg->n_members--;
    if (!r->n_members) {
        HASH_DEL(r->tenant->rooms, r);
        reg->n_rooms--;
        free(r->name);
        free(r);
    }
    free(m);
}

const struct member *
reg_member_of(const struct member *list, const char *name)
{
    for (const struct member *m = list; m; m = m->cnext)
        if (!strcmp(m->room->name, name))
            return m;
    return NULL;
}

int
reg_leave(struct registry *reg, const char *name, struct member **list)
{
    for (struct member **pp = list; *pp; pp = &(*pp)->cnext) {
        struct member *m = *pp;
        if (!strcmp(m->room->name, name)) {
            *pp = m->cnext;
            member_drop(reg, m);
            return 1;
        }
    }
    return 0;
}

void
reg_leave_all(struct registry *reg, struct member **list)
{
    while (*list) {
        struct member *m = *list;
        *list = m->cnext;
        member_drop(reg, m);
    }
}

void
reg_free(struct registry *reg)
{
    struct tenant *t, *tt;
    HASH_ITER(hh, reg->tenants, t, tt)
    {
        struct room *r, *rt;
        HASH_ITER(hh, t->rooms, r, rt)
        {
            struct member *m, *mt;
            DL_FOREACH_SAFE(r->members, m, mt)
            free(m);
            HASH_DEL(t->rooms, r);
            free(r->name);
            free(r);
        }
        HASH_DEL(reg->tenants, t);
        free(t->name);
        free(t);
    }
    memset(reg, 0, sizeof(*reg));
}
