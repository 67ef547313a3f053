/*
 * auth.h - verification of the HS256 JSON Web Tokens the backend issues.
 *
 * Only HS256 is accepted: any other "alg" (none, HS512, RS256, ...) is
 * rejected before the signature is looked at. The signature is compared in
 * constant time. Base64url is decoded strictly (no padding, no foreign
 * characters, no non-zero trailing bits). Claims follow the contract:
 * sub, tenant (alias schemaName), role, optional units, exp, optional nbf.
 * A policy (struct auth_policy) adds the operator's token rules: the
 * longest lifetime (exp - iat), the audience and the issuer.
 */
#ifndef HUB_AUTH_H
#define HUB_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Clock skew tolerated on exp and nbf, in seconds. */
#define AUTH_LEEWAY_S 30
/* Longest user id, unit id and tenant name accepted (they become room names). */
#define AUTH_MAX_ID_LEN 90
#define AUTH_MAX_TENANT_LEN 63
/* Most units one token may name. */
#define AUTH_MAX_UNITS 32
/*
 * Furthest exp accepted, in seconds from now, whatever the policy: 400
 * days, so a token issued for a year still works while exp = 1e300 (a
 * token that never ends) is refused. HUB_JWT_MAX_TTL_S bounds it further.
 */
#define AUTH_MAX_EXP_AHEAD_S (400 * 86400)

enum auth_role { AUTH_ROLE_RESIDENT = 0, AUTH_ROLE_GUARD = 1, AUTH_ROLE_ADMIN = 2 };

struct auth_claims {
    char *sub;    /* owned; non-empty, room-name characters only */
    char *tenant; /* owned; [A-Za-z0-9_-], 1..AUTH_MAX_TENANT_LEN */
    enum auth_role role;
    char **units; /* owned: n_units pointers, then the strings they point to (one block) */
    size_t n_units;
    int64_t exp; /* seconds since the epoch */
    int64_t nbf; /* seconds since the epoch, 0 when absent */
    int64_t iat; /* seconds since the epoch, 0 when absent */
};

/*
 * The operator's rules on top of the contract's (HUB_JWT_* settings). The
 * strings are borrowed from the configuration.
 */
struct auth_policy {
    int64_t max_ttl_s;    /* longest exp - iat, iat then required and not in the future; 0: off */
    const char *audience; /* aud (string or array) must contain it; NULL: a token with aud is
                             refused, since it was issued for some other service */
    const char *issuer;   /* iss must equal it; NULL: iss is not looked at */
};

/*
 * Verifies token (len bytes, not necessarily NUL-terminated) against secret
 * at time now (seconds since the epoch). On success returns 0 and fills
 * *out, which the caller releases with auth_claims_free(). On failure
 * returns -1, leaves *out empty, and points *why at a static, user-facing
 * reason that never repeats the token ("token expired", "unsupported alg",
 * "bad signature", "missing claim sub", ...).
 */
int auth_verify(const char *token, size_t len, const void *secret, size_t secret_len, int64_t now,
                struct auth_claims *out, const char **why);

/*
 * auth_verify() under policy (NULL: the defaults, as auth_verify()). The
 * extra reasons are "token lifetime (exp - iat) exceeds the limit",
 * "missing claim iat", "token issued in the future", "token audience does
 * not include this hub", "token issuer not accepted", ...
 */
int auth_verify_policy(const char *token, size_t len, const void *secret, size_t secret_len,
                       int64_t now, const struct auth_policy *policy, struct auth_claims *out,
                       const char **why);

void auth_claims_free(struct auth_claims *c);

/* "resident", "guard" or "admin". */
const char *auth_role_name(enum auth_role role);

/* Parses a role case-insensitively; returns 0 and sets *out, or -1. */
int auth_role_parse(const char *s, enum auth_role *out);

#endif
