/*
 * auth.c - verification of the HS256 JSON Web Tokens the backend issues.
 *
 * A token is three base64url parts joined by dots: a JSON header, a JSON
 * claims object, and an HMAC-SHA256 over the text "header.claims".
 * auth_verify() checks, in this order: the token's size and shape, the
 * header (only HS256, decided before any signature is computed), the
 * signature (compared in constant time), and only then parses the claims
 * the contract names, then the operator's policy (lifetime, audience,
 * issuer). Every rejection carries a static reason that is safe
 * to send to the client and never quotes the token.
 *
 * Nothing here logs; the caller decides what the operator sees.
 */
#include "auth.h"
#include "b64url.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

/* Longest token accepted, in bytes; longer ones are refused before decoding. */
#define AUTH_MAX_TOKEN_LEN 8192
/* An HMAC-SHA256 signature: 32 bytes, 43 base64url characters. */
#define AUTH_SIG_LEN 32
#define AUTH_SIG_B64_LEN 43
/* Longest header (base64url text) remembered as already checked. */
#define AUTH_HDR_CACHE 128

#define AUTH_STR_(x) #x
#define AUTH_STR(x) AUTH_STR_(x)
#define AUTH_ID_RULE "1.." AUTH_STR(AUTH_MAX_ID_LEN) " characters of [A-Za-z0-9_.:-]"
#define AUTH_TENANT_RULE "1.." AUTH_STR(AUTH_MAX_TENANT_LEN) " characters of [A-Za-z0-9_-]"
#define AUTH_ROLE_VALUE_RULE "1.." AUTH_STR(AUTH_ROLE_VALUE_MAX) " characters of [A-Za-z0-9_.:-]"
/* Longest piece of a bad role map entry quoted back in its error. */
#define AUTH_MAP_QUOTE_MAX 80

const char *
auth_role_name(enum auth_role role)
{
    switch (role) {
    case AUTH_ROLE_RESIDENT:
        return "resident";
    case AUTH_ROLE_GUARD:
        return "guard";
    case AUTH_ROLE_ADMIN:
        return "admin";
    }
    return "unknown";
}

/* ASCII-only case-insensitive equality, independent of the C locale. */
static bool
ascii_case_equal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == '\0' && *b == '\0';
}

int
auth_role_parse(const char *s, enum auth_role *out)
{
    static const enum auth_role roles[] = {AUTH_ROLE_RESIDENT, AUTH_ROLE_GUARD, AUTH_ROLE_ADMIN};

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (ascii_case_equal(s, auth_role_name(roles[i]))) {
            *out = roles[i];
            return 0;
        }
    }
    return -1;
}

/* A role value: the built-in names first, then names's aliases. Returns 0 or -1. */
static int
role_lookup(const struct auth_names *names, const char *s, enum auth_role *out)
{
    if (auth_role_parse(s, out) == 0)
        return 0;
    for (size_t i = 0; i < names->n_aliases; i++) {
        if (ascii_case_equal(s, names->aliases[i].value)) {
            *out = names->aliases[i].role;
            return 0;
        }
    }
    return -1;
}

void
auth_claims_free(struct auth_claims *c)
{
    if (c == NULL)
        return;
    free(c->sub);
    free(c->tenant);
    free(c->units);
    memset(c, 0, sizeof *c);
}

/* [A-Za-z0-9_.:-]: the characters of a room name. */
static bool
is_id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

/* [A-Za-z0-9_-]: the characters allowed in a tenant (schema) name. */
static bool
is_tenant_char(unsigned char c)
{
    return is_id_char(c) && c != '.' && c != ':';
}

/* True when s is 1..max bytes, each accepted by ok(). */
static bool
text_ok(const char *s, size_t len, size_t max, bool (*ok)(unsigned char))
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ok((unsigned char)s[i]))
            return false;
    return true;
}

/* [A-Za-z0-9_.:/-]: the characters of a claim name a setting may give. */
static bool
is_claim_name_char(unsigned char c)
{
    return is_id_char(c) || c == '/';
}

int
auth_claim_name_check(const char *name)
{
    return name && text_ok(name, strlen(name), AUTH_CLAIM_NAME_MAX, is_claim_name_char) ? 0 : -1;
}

/* The bytes of s[0..len) without the blanks at either end: *start and the new length. */
static size_t
trim_blanks(const char *s, size_t len, const char **start)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    *start = s;
    return len;
}

/*
 * Reads one VALUE=ROLE entry of a role map (len bytes at e) into *a.
 * Returns 0, or -1 with the reason in err.
 */
static int
role_map_entry(const char *e, size_t len, struct auth_role_alias *a, char *err, size_t err_len)
{
    const char *value, *role;
    const char *eq = memchr(e, '=', len);
    char role_text[sizeof "resident"];

    if (eq == NULL) {
        snprintf(err, err_len, "entry '%.*s' has no '=' (expected VALUE=ROLE, comma-separated)",
                 (int)(len > AUTH_MAP_QUOTE_MAX ? AUTH_MAP_QUOTE_MAX : len), e);
        return -1;
    }
    size_t value_len = trim_blanks(e, (size_t)(eq - e), &value);
    size_t role_len = trim_blanks(eq + 1, len - (size_t)(eq + 1 - e), &role);
    if (!text_ok(value, value_len, AUTH_ROLE_VALUE_MAX, is_id_char)) {
        snprintf(err, err_len, "role value '%.*s' must be " AUTH_ROLE_VALUE_RULE,
                 (int)(value_len > AUTH_MAP_QUOTE_MAX ? AUTH_MAP_QUOTE_MAX : value_len), value);
        return -1;
    }
    memcpy(a->value, value, value_len);
    a->value[value_len] = '\0';
    /* A role longer than "resident" is none of the three. */
    bool fits = role_len < sizeof role_text;
    if (fits) {
        memcpy(role_text, role, role_len);
        role_text[role_len] = '\0';
    }
    if (!fits || auth_role_parse(role_text, &a->role) < 0) {
        snprintf(err, err_len, "'%s' maps to '%.*s'; expected resident, guard or admin", a->value,
                 (int)(role_len > AUTH_MAP_QUOTE_MAX ? AUTH_MAP_QUOTE_MAX : role_len), role);
        return -1;
    }
    return 0;
}

int
auth_role_map_parse(const char *text, struct auth_role_alias *out, size_t max, size_t *n, char *err,
                    size_t err_len)
{
    const char *p = text;

    *n = 0;
    if (p == NULL)
        return 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *e;
        size_t e_len = trim_blanks(p, len, &e);
        struct auth_role_alias a;
        enum auth_role builtin;

        if (e_len == 0) {
            snprintf(err, err_len, "empty entry (expected VALUE=ROLE, comma-separated)");
            return -1;
        }
        if (role_map_entry(e, e_len, &a, err, err_len) < 0)
            return -1;
        if (auth_role_parse(a.value, &builtin) == 0 && builtin != a.role) {
            snprintf(err, err_len, "'%s' is a built-in role and cannot map to %s", a.value,
                     auth_role_name(a.role));
            return -1;
        }
        for (size_t i = 0; i < *n; i++) {
            if (ascii_case_equal(out[i].value, a.value)) {
                snprintf(err, err_len, "role value '%s' appears twice", a.value);
                return -1;
            }
        }
        if (*n == max) {
            snprintf(err, err_len, "at most %zu entries", max);
            return -1;
        }
        out[(*n)++] = a;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

void
auth_names_init(struct auth_names *names, const char *sub, const char *tenant, const char *role,
                const char *units, const struct auth_role_alias *aliases, size_t n_aliases)
{
    memset(names, 0, sizeof *names);
    snprintf(names->sub, sizeof names->sub, "%s", sub);
    snprintf(names->tenant, sizeof names->tenant, "%s", tenant);
    snprintf(names->role, sizeof names->role, "%s", role);
    snprintf(names->units, sizeof names->units, "%s", units);
    names->schema_name_alias = strcmp(tenant, "tenant") == 0;
    if (n_aliases > AUTH_MAX_ROLE_ALIASES)
        n_aliases = AUTH_MAX_ROLE_ALIASES;
    if (n_aliases > 0)
        memcpy(names->aliases, aliases, n_aliases * sizeof *aliases);
    names->n_aliases = n_aliases;

    snprintf(names->why_sub_missing, AUTH_WHY_MAX, "missing claim %s", sub);
    snprintf(names->why_sub_bad, AUTH_WHY_MAX, "claim %s must be " AUTH_ID_RULE, sub);
    snprintf(names->why_tenant_missing, AUTH_WHY_MAX, "missing claim %s%s", tenant,
             names->schema_name_alias ? " (or schemaName)" : "");
    snprintf(names->why_tenant_bad, AUTH_WHY_MAX, "claim %s must be " AUTH_TENANT_RULE, tenant);
    snprintf(names->why_role_missing, AUTH_WHY_MAX, "missing claim %s", role);
    snprintf(names->why_role_bad, AUTH_WHY_MAX, "claim %s must be %s", role,
             n_aliases ? "resident, guard, admin or a role of the hub's role map"
                       : "resident, guard or admin");
    snprintf(names->why_units_type, AUTH_WHY_MAX, "claim %s must be an array of strings", units);
    snprintf(names->why_units_item, AUTH_WHY_MAX, "claim %s: each unit must be " AUTH_ID_RULE,
             units);
    snprintf(names->why_units_count, AUTH_WHY_MAX,
             "claim %s may name at most " AUTH_STR(AUTH_MAX_UNITS) " units", units);
}

/*
 * The contract's names (sub, tenant or schemaName, role, units), built on
 * first use with auth_names_init() so their reasons read exactly like a
 * configured set's.
 */
static const struct auth_names *
default_names(void)
{
    static struct auth_names d;
    static bool ready;
    if (!ready) {
        auth_names_init(&d, "sub", "tenant", "role", "units", NULL, 0);
        ready = true;
    }
    return &d;
}

/* Returns member key of obj, or NULL when it is absent or JSON null. */
static json_t *
claim_get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/*
 * Reads a NumericDate (RFC 7519 §2): a JSON integer or real number of
 * seconds. A fraction is rounded toward the stricter side (down for exp,
 * up for nbf, as round_up says) and values beyond int64_t saturate.
 * Returns 0, or -1 when v is not a number.
 */
static int
numeric_date(const json_t *v, bool round_up, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_real(v))
        return -1;
    double d = json_real_value(v);
    if (d >= 9223372036854775807.0) {
        *out = INT64_MAX;
    } else if (d <= -9223372036854775808.0) {
        *out = INT64_MIN;
    } else {
        int64_t t = (int64_t)d;
        if (round_up && (double)t < d)
            t++;
        else if (!round_up && (double)t > d)
            t--;
        *out = t;
    }
    return 0;
}

/*
 * The text of unit u into *text and *len (num holds an integer's digits).
 * Returns 0, or -1 with *why set.
 */
static int
unit_text(const struct auth_names *names, const json_t *u, char num[24], const char **text,
          size_t *len, const char **why)
{
    if (json_is_string(u)) {
        *text = json_string_value(u);
        *len = json_string_length(u);
    } else if (json_is_integer(u)) {
        *len = (size_t)snprintf(num, 24, "%lld", (long long)json_integer_value(u));
        *text = num;
    } else {
        *why = names->why_units_type;
        return -1;
    }
    if (!text_ok(*text, *len, AUTH_MAX_ID_LEN, is_id_char)) {
        *why = names->why_units_item;
        return -1;
    }
    return 0;
}

/*
 * Reads the units claim into c. A unit is a string of AUTH_ID_RULE or, since
 * apps often keep numeric unit ids, a JSON integer, which is stored as its
 * decimal text (302 and "302" name the same room "unit:302"). Repeated
 * units are kept once. The array and its strings are one allocation (a
 * resident's connection keeps them for its whole life). Returns 0, or -1
 * with *why set.
 */
static int
read_units(const struct auth_names *names, const json_t *units, struct auth_claims *c,
           const char **why)
{
    size_t n = json_array_size(units), bytes = 0;
    char num[24];
    const char *text;
    size_t len;

    if (!json_is_array(units)) {
        *why = names->why_units_type;
        return -1;
    }
    if (n > AUTH_MAX_UNITS) {
        *why = names->why_units_count;
        return -1;
    }
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (unit_text(names, json_array_get(units, i), num, &text, &len, why) < 0)
            return -1;
        bytes += len + 1;
    }
    c->units = malloc(n * sizeof *c->units + bytes);
    if (c->units == NULL) {
        *why = "out of memory";
        return -1;
    }
    char *at = (char *)(c->units + n);
    for (size_t i = 0; i < n; i++) {
        (void)unit_text(names, json_array_get(units, i), num, &text, &len, why);
        bool seen = false;
        for (size_t j = 0; j < c->n_units && !seen; j++)
            seen = strcmp(c->units[j], text) == 0;
        if (seen)
            continue;
        memcpy(at, text, len);
        at[len] = '\0';
        c->units[c->n_units++] = at;
        at += len + 1;
    }
    return 0;
}

/*
 * Copies the string claim v into *dst after checking it is 1..max bytes of
 * characters accepted by ok(). Returns 0, or -1 with *why set to bad (or
 * to missing when v is NULL).
 */
static int
read_text_claim(const json_t *v, size_t max, bool (*ok)(unsigned char), char **dst,
                const char *missing, const char *bad, const char **why)
{
    if (v == NULL) {
        *why = missing;
        return -1;
    }
    if (!json_is_string(v) || !text_ok(json_string_value(v), json_string_length(v), max, ok)) {
        *why = bad;
        return -1;
    }
    *dst = strndup(json_string_value(v), json_string_length(v));
    if (*dst == NULL) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/*
 * Applies the lifetime rule of policy: when a longest lifetime is set, iat
 * is required, may not lie in the future (beyond the leeway: a token dated
 * ahead would stretch its own limit), and exp - iat may not exceed it.
 * Without the rule an iat is only checked to be a number. Returns 0, or -1
 * with *why set.
 */
static int
check_lifetime(json_t *claims, int64_t now, const struct auth_policy *policy, struct auth_claims *c,
               const char **why)
{
    json_t *v = claim_get(claims, "iat");
    int64_t max_ttl = policy ? policy->max_ttl_s : 0;

    if (v == NULL) {
        if (max_ttl > 0) {
            *why = "missing claim iat (required: token lifetimes are limited)";
            return -1;
        }
        return 0;
    }
    if (numeric_date(v, false, &c->iat) < 0) {
        *why = "claim iat must be a number of seconds since the epoch";
        return -1;
    }
    if (max_ttl <= 0)
        return 0;
    if (c->iat > now + AUTH_LEEWAY_S) {
        *why = "token issued in the future (iat)";
        return -1;
    }
    /* Unsigned: an iat far in the past would overflow a signed difference. */
    if (c->exp > c->iat && (uint64_t)c->exp - (uint64_t)c->iat > (uint64_t)max_ttl) {
        *why = "token lifetime (exp - iat) exceeds the limit";
        return -1;
    }
    return 0;
}

/* Whether the JSON string v is exactly want (no embedded NUL tricks). */
static bool
json_string_is(const json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           strcmp(json_string_value(v), want) == 0;
}

/*
 * Applies the audience and issuer rules of policy (RFC 7519 §4.1.1,
 * §4.1.3). With an audience configured, aud must be it or an array holding
 * it. Without one, a token that names any audience is refused: it was
 * issued for some other service that shares the secret, and RFC 7519 asks
 * a recipient not named in aud to reject it. With an issuer configured, iss
 * must equal it. Returns 0, or -1 with *why set.
 */
static int
check_audience_issuer(json_t *claims, const struct auth_policy *policy, const char **why)
{
    const char *want_aud = policy ? policy->audience : NULL;
    const char *want_iss = policy ? policy->issuer : NULL;
    json_t *v;

    v = claim_get(claims, "aud");
    if (want_aud == NULL && v != NULL) {
        *why = "token names an audience (aud) and this hub expects none";
        return -1;
    }
    if (want_aud != NULL) {
        bool found = false;
        if (v == NULL) {
            *why = "missing claim aud";
            return -1;
        }
        if (json_is_array(v)) {
            size_t i;
            json_t *a;
            json_array_foreach(v, i, a) found = found || json_string_is(a, want_aud);
        } else {
            found = json_string_is(v, want_aud);
        }
        if (!found) {
            *why = "token audience (aud) does not include this hub";
            return -1;
        }
    }
    if (want_iss != NULL) {
        v = claim_get(claims, "iss");
        if (v == NULL) {
            *why = "missing claim iss";
            return -1;
        }
        if (!json_string_is(v, want_iss)) {
            *why = "token issuer (iss) not accepted";
            return -1;
        }
    }
    return 0;
}

/*
 * Applies the contract's claim rules and the operator's policy to the
 * verified claims object and fills c, reading the identity from the
 * policy's claim names. The time claims come first because
 * an expired token is the rejection a user most often meets. Returns 0, or
 * -1 with *why set; on failure c may hold partial results that the caller
 * frees.
 */
static int
read_claims(json_t *claims, int64_t now, const struct auth_policy *policy, struct auth_claims *c,
            const char **why)
{
    json_t *v;

    v = claim_get(claims, "exp");
    if (v == NULL) {
        *why = "missing claim exp";
        return -1;
    }
    if (numeric_date(v, false, &c->exp) < 0) {
        *why = "claim exp must be a number of seconds since the epoch";
        return -1;
    }
    if (c->exp <= INT64_MAX - AUTH_LEEWAY_S && now > c->exp + AUTH_LEEWAY_S) {
        *why = "token expired";
        return -1;
    }
    if (now <= INT64_MAX - AUTH_MAX_EXP_AHEAD_S && c->exp > now + AUTH_MAX_EXP_AHEAD_S) {
        *why = "token exp too far in the future";
        return -1;
    }
    v = claim_get(claims, "nbf");
    if (v != NULL) {
        if (numeric_date(v, true, &c->nbf) < 0) {
            *why = "claim nbf must be a number of seconds since the epoch";
            return -1;
        }
        if (now <= INT64_MAX - AUTH_LEEWAY_S && now + AUTH_LEEWAY_S < c->nbf) {
            *why = "token not yet valid";
            return -1;
        }
    }
    if (check_lifetime(claims, now, policy, c, why) < 0 ||
        check_audience_issuer(claims, policy, why) < 0)
        return -1;

    const struct auth_names *names = policy && policy->names ? policy->names : default_names();
    if (read_text_claim(claim_get(claims, names->sub), AUTH_MAX_ID_LEN, is_id_char, &c->sub,
                        names->why_sub_missing, names->why_sub_bad, why) < 0)
        return -1;

    v = claim_get(claims, names->tenant);
    if (v == NULL && names->schema_name_alias)
        v = claim_get(claims, "schemaName");
    if (read_text_claim(v, AUTH_MAX_TENANT_LEN, is_tenant_char, &c->tenant,
                        names->why_tenant_missing, names->why_tenant_bad, why) < 0)
        return -1;

    v = claim_get(claims, names->role);
    if (v == NULL) {
        *why = names->why_role_missing;
        return -1;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        role_lookup(names, json_string_value(v), &c->role) < 0) {
        *why = names->why_role_bad;
        return -1;
    }

    v = claim_get(claims, names->units);
    if (v != NULL && read_units(names, v, c, why) < 0)
        return -1;
    return 0;
}

/*
 * Checks the decoded header. "alg" must be exactly "HS256". "typ" is
 * optional; when present it must be "JWT" (compared case-insensitively, as
 * RFC 7515 §4.1.9 asks), so that tokens minted for another purpose with
 * the same secret are not taken for user tokens (RFC 8725 §3.11). Any
 * "crit" header is refused, since no extension is understood here
 * (RFC 7515 §4.1.11). Returns 0, or -1 with *why set.
 */
static int
check_header(const unsigned char *buf, size_t len, const char **why)
{
    json_t *hdr = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *v;
    int rc = -1;

    if (!json_is_object(hdr)) {
        *why = "malformed token header (expected a JSON object)";
        goto out;
    }
    v = json_object_get(hdr, "alg");
    if (!json_is_string(v) || json_string_length(v) != 5 ||
        strcmp(json_string_value(v), "HS256") != 0) {
        *why = "unsupported alg (only HS256)";
        goto out;
    }
    v = json_object_get(hdr, "typ");
    if (v != NULL && (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                      !ascii_case_equal(json_string_value(v), "JWT"))) {
        *why = "unsupported typ (only JWT)";
        goto out;
    }
    if (json_object_get(hdr, "crit") != NULL) {
        *why = "unsupported header crit";
        goto out;
    }
    rc = 0;
out:
    json_decref(hdr);
    return rc;
}

/*
 * HMAC-SHA256 of msg under secret. The keyed context of the last secret is
 * kept and copied for each token: fetching the algorithm and keying it
 * costs more than the MAC of a token. Returns 0 or -1.
 */
static int
hmac_sha256(const void *secret, size_t secret_len, const void *msg, size_t msg_len,
            unsigned char mac[AUTH_SIG_LEN])
{
    static EVP_MAC_CTX *keyed;
    static unsigned char *key;
    static size_t key_len;
    if (!keyed || secret_len != key_len || CRYPTO_memcmp(secret, key, secret_len)) {
        EVP_MAC_CTX_free(keyed);
        OPENSSL_clear_free(key, key_len);
        keyed = NULL;
        key = NULL;
        key_len = 0;
        EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
        EVP_MAC_free(alg); /* ctx holds its own reference */
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        unsigned char *copy = OPENSSL_memdup(secret, secret_len);
        if (!ctx || !copy || !EVP_MAC_init(ctx, secret, secret_len, params)) {
            EVP_MAC_CTX_free(ctx);
            OPENSSL_clear_free(copy, secret_len);
            return -1;
        }
        keyed = ctx;
        key = copy;
        key_len = secret_len;
    }
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
    size_t out_len = 0;
    int ok = ctx && EVP_MAC_update(ctx, msg, msg_len) &&
             EVP_MAC_final(ctx, mac, &out_len, AUTH_SIG_LEN) && out_len == AUTH_SIG_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/*
 * Checks that sig64 is the base64url HMAC-SHA256 of signed_part under
 * secret, comparing in constant time. The expected MAC is wiped afterwards:
 * for a forged claims part it would be a valid signature. Returns 0, or -1
 * with *why set.
 */
static int
check_signature(const char *signed_part, size_t signed_len, const char *sig64, size_t sig64_len,
                const void *secret, size_t secret_len, const char **why)
{
    unsigned char sig[AUTH_SIG_LEN + 1];
    unsigned char mac[AUTH_SIG_LEN];
    int rc = -1;

    if (sig64_len == 0) {
        *why = "missing signature";
        return -1;
    }
    if (sig64_len != AUTH_SIG_B64_LEN) {
        *why = "bad signature";
        return -1;
    }
    if (b64url_decode(sig64, sig64_len, sig) != AUTH_SIG_LEN) {
        *why = "malformed token (signature is not base64url)";
        return -1;
    }
    if (hmac_sha256(secret, secret_len, signed_part, signed_len, mac)) {
        *why = "internal error computing the signature";
        goto out;
    }
    if (CRYPTO_memcmp(mac, sig, AUTH_SIG_LEN) != 0) {
        *why = "bad signature";
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

int
auth_verify(const char *token, size_t len, const void *secret, size_t secret_len, int64_t now,
            struct auth_claims *out, const char **why)
{
    return auth_verify_policy(token, len, secret, secret_len, now, NULL, out, why);
}

int
auth_verify_policy(const char *token, size_t len, const void *secret, size_t secret_len,
                   int64_t now, const struct auth_policy *policy, struct auth_claims *out,
                   const char **why)
{
    struct auth_claims c;
    unsigned char *buf = NULL;
    json_t *claims = NULL;
    const char *ignored;
    const char *dot1, *dot2;
    long n;

    memset(&c, 0, sizeof c);
    if (why == NULL)
        why = &ignored;
    *why = NULL;
    if (out == NULL) {
        *why = "internal error (no claims buffer)";
        return -1;
    }
    memset(out, 0, sizeof *out);

    if (secret == NULL || secret_len == 0 || secret_len > INT_MAX) {
        *why = "server cannot verify tokens (no secret configured)";
        goto err;
    }
    if (token == NULL || len == 0) {
        *why = "missing token";
        goto err;
    }
    if (len > AUTH_MAX_TOKEN_LEN) {
        *why = "token too long";
        goto err;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        dot1 == token || dot2 == dot1 + 1) {
        *why = "malformed token (expected header.claims.signature)";
        goto err;
    }

    /* One buffer large enough for the decoded header, then the claims. */
    buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL) {
        *why = "out of memory";
        goto err;
    }

    /* Tokens from one issuer share their header: the last one that passed
     * is remembered as text, and an identical one is not parsed again. */
    static char hdr_ok[AUTH_HDR_CACHE];
    static size_t hdr_ok_len;
    size_t hdr_len = (size_t)(dot1 - token);
    if (hdr_len != hdr_ok_len || memcmp(token, hdr_ok, hdr_len)) {
        n = b64url_decode(token, hdr_len, buf);
        if (n < 0) {
            *why = "malformed token (header is not base64url)";
            goto err;
        }
        if (check_header(buf, (size_t)n, why) < 0)
            goto err;
        if (hdr_len <= sizeof(hdr_ok)) {
            memcpy(hdr_ok, token, hdr_len);
            hdr_ok_len = hdr_len;
        }
    }

    if (check_signature(token, (size_t)(dot2 - token), dot2 + 1, len - (size_t)(dot2 + 1 - token),
                        secret, secret_len, why) < 0)
        goto err;

    n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf);
    if (n < 0) {
        *why = "malformed token (claims are not base64url)";
        goto err;
    }
    claims = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        *why = "malformed token claims (expected a JSON object)";
        goto err;
    }
    if (read_claims(claims, now, policy, &c, why) < 0)
        goto err;

    json_decref(claims);
    free(buf);
    *out = c;
    return 0;

err:
    auth_claims_free(&c);
    json_decref(claims);
    free(buf);
    return -1;
}
