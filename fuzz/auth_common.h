/*
 * auth_common.h - what the two token targets (fuzz_token_raw.c,
 * fuzz_token_claims.c) check of every token auth_verify() accepts: the
 * claims keep the promises of auth.h, and the rooms a connection is put in
 * from them are valid room names it may join.
 */
#ifndef FUZZ_AUTH_COMMON_H
#define FUZZ_AUTH_COMMON_H

#include "auth.h"
#include "b64url.h"
#include "fuzz.h"
#include "room.h"

/* The secret both targets verify with, and the clock they verify at. */
#define FUZZ_SECRET "armonia-fuzz-secret-0123456789abcdef"
#define FUZZ_NOW ((int64_t)1764262800)

/* Checks that "<prefix><value>" is a valid room name that who may join. */
static void
fuzz_auto_room(const struct auth_claims *who, const char *prefix, const char *value)
{
    char room[ROOM_NAME_MAX + 2];
    int n = snprintf(room, sizeof(room), "%s%s", prefix, value);

    FUZZ_CHECK(n > 0 && (size_t)n <= ROOM_NAME_MAX);
    FUZZ_CHECK(room_name_valid(room, (size_t)n));
    FUZZ_CHECK(room_may_subscribe(who, room) == 0);
}

/* Verifies token[0..len) and checks the outcome; returns 0. */
static int
fuzz_token_one(const char *token, size_t len)
{
    struct auth_claims c;
    const char *why = NULL;
    int rc = auth_verify(token, len, FUZZ_SECRET, strlen(FUZZ_SECRET), FUZZ_NOW, &c, &why);

    if (rc != 0) {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        FUZZ_CHECK(c.sub == NULL && c.tenant == NULL && c.units == NULL && c.n_units == 0);
        return 0;
    }
    FUZZ_CHECK(c.sub != NULL && c.sub[0] != '\0' && strlen(c.sub) <= AUTH_MAX_ID_LEN);
    FUZZ_CHECK(c.tenant != NULL);
    size_t tl = strlen(c.tenant);
    FUZZ_CHECK(tl >= 1 && tl <= AUTH_MAX_TENANT_LEN);
    FUZZ_CHECK(
        strspn(c.tenant, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == tl);
    FUZZ_CHECK(c.role == AUTH_ROLE_RESIDENT || c.role == AUTH_ROLE_GUARD ||
               c.role == AUTH_ROLE_ADMIN);
    FUZZ_CHECK(c.n_units <= AUTH_MAX_UNITS);
    FUZZ_CHECK(c.exp >= FUZZ_NOW - AUTH_LEEWAY_S);
    FUZZ_CHECK(c.nbf <= FUZZ_NOW + AUTH_LEEWAY_S);
    fuzz_auto_room(&c, "", "all");
    fuzz_auto_room(&c, "user:", c.sub);
    fuzz_auto_room(&c, "role:", auth_role_name(c.role));
    for (size_t i = 0; i < c.n_units; i++) {
        FUZZ_CHECK(c.units[i] != NULL && c.units[i][0] != '\0');
        FUZZ_CHECK(strlen(c.units[i]) <= AUTH_MAX_ID_LEN);
        fuzz_auto_room(&c, "unit:", c.units[i]);
    }
    auth_claims_free(&c);
    return 0;
}

#endif
