/*
 * auth.h - verification of the HS256 JSON Web Tokens the backend issues.
 *
 * Only HS256 is accepted: any other "alg" (none, HS512, RS256, ...) is
 * rejected before the signature is looked at. The signature is compared in
 * constant time. Base64url is decoded strictly (no padding, no foreign
 * characters, no non-zero trailing bits). Claims follow the contract:
 * sub, tenant (alias schemaName), role, optional units, exp, optional nbf.
 * A policy (struct auth_policy) adds the operator's token rules: the
 * longest lifetime (exp - iat), the audience and the issuer, and the names
 * of the identity claims with extra role values (struct auth_names), so the
 * tokens an existing backend already issues are read as they are.
 */
#ifndef HUB_AUTH_H
#define HUB_AUTH_H

#include <stdbool.h>
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

/* Longest claim name (a namespaced claim such as https://x.example/role fits). */
#define AUTH_CLAIM_NAME_MAX 100
/* Longest role value a role map names, and how many values it may name. */
#define AUTH_ROLE_VALUE_MAX 64
#define AUTH_MAX_ROLE_ALIASES 32
/* Room for a reason that names a claim (the longest text plus the name). */
#define AUTH_WHY_MAX (AUTH_CLAIM_NAME_MAX + 96)

/* One extra role value and the role it stands for. */
struct auth_role_alias {
    char value[AUTH_ROLE_VALUE_MAX + 1]; /* compared ASCII case-insensitively */
    enum auth_role role;
};

/*
 * Which claims hold the identity, the extra role values, and the reasons
 * that name those claims. Built by auth_names_init(); everything is held
 * inline, so the struct owns nothing and a copy is a complete one. A reason
 * auth_verify_policy() returns may point into this struct: it lives as long
 * as the struct does.
 */
struct auth_names {
    char sub[AUTH_CLAIM_NAME_MAX + 1];    /* the user id */
    char tenant[AUTH_CLAIM_NAME_MAX + 1]; /* the tenant schema */
    char role[AUTH_CLAIM_NAME_MAX + 1];   /* the role */
    char units[AUTH_CLAIM_NAME_MAX + 1];  /* the unit ids */
    bool schema_name_alias;               /* schemaName read when the tenant claim is absent:
                                             only under the default name "tenant" */
    struct auth_role_alias aliases[AUTH_MAX_ROLE_ALIASES]; /* n_aliases used */
    size_t n_aliases;
    /* The reasons naming the claims above ("missing claim userId", ...). */
    char why_sub_missing[AUTH_WHY_MAX], why_sub_bad[AUTH_WHY_MAX];
    char why_tenant_missing[AUTH_WHY_MAX], why_tenant_bad[AUTH_WHY_MAX];
    char why_role_missing[AUTH_WHY_MAX], why_role_bad[AUTH_WHY_MAX];
    char why_units_type[AUTH_WHY_MAX], why_units_item[AUTH_WHY_MAX];
    char why_units_count[AUTH_WHY_MAX];
};

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
    const struct auth_names *names; /* claim names and role map; NULL: the contract's */
};

/*
 * Verifies token (len bytes, not necessarily NUL-terminated) against secret
 * at time now (seconds since the epoch). On success returns 0 and fills
 * *out, which the caller releases with auth_claims_free(). On failure
 * returns -1, leaves *out empty, and points *why at a static, user-facing
 * reason that never repeats the token ("token expired", "unsupported alg",
 * "bad signature", "missing claim sub", ...). The reason is static, or
 * (for auth_verify_policy()) held by the policy's names.
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

/*
 * Whether name may name a claim: 1..AUTH_CLAIM_NAME_MAX characters of
 * [A-Za-z0-9_.:/-] (JSON keys may hold anything, but a name an operator
 * types into a setting is one of these). Returns 0 or -1.
 */
int auth_claim_name_check(const char *name);

/*
 * Parses a role map: comma-separated VALUE=ROLE entries, for example
 * "COMPLEX_ADMIN=admin, SECURITY=guard". VALUE is 1..AUTH_ROLE_VALUE_MAX
 * characters of [A-Za-z0-9_.:-], ROLE is resident, guard or admin (both
 * compared case-insensitively); blanks around either are ignored. A value
 * may appear once, and may not remap resident, guard or admin to another
 * role. Fills out (room for max entries) and *n. Returns 0, or -1 with a
 * reason that names the bad entry written into err (err_len bytes).
 */
int auth_role_map_parse(const char *text, struct auth_role_alias *out, size_t max, size_t *n,
                        char *err, size_t err_len);

/*
 * Fills names from the four claim names (each checked with
 * auth_claim_name_check() first) and n_aliases role values. The
 * contract's defaults are sub, tenant (schemaName accepted too), role
 * and units with no aliases.
 */
void auth_names_init(struct auth_names *names, const char *sub, const char *tenant,
                     const char *role, const char *units, const struct auth_role_alias *aliases,
                     size_t n_aliases);

#endif
