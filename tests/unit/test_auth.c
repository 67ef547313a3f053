/*
 * test_auth.c - unit tests for hub/auth.c: what a client sees when it
 * presents a good, forged, expired or malformed JWT.
 *
 * Tokens are minted here with b64url_encode() and OpenSSL's HMAC, so
 * every case controls the exact bytes of header, claims and signature.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "b64url.h"

#define SECRET "armonia-test-secret-0123456789"
#define NOW ((int64_t)1764262800)
#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* Claims valid at NOW for a guard of tenant "torres_del_parque". */
#define GOOD_CLAIMS                                                                                \
    "{\"sub\":\"u-17\",\"tenant\":\"torres_del_parque\",\"role\":\"guard\","                       \
    "\"units\":[\"101\",\"T2:302\"],\"exp\":1764266400,\"nbf\":1764262700,\"iat\":1764262700}"

/* Returns a malloc'd base64url encoding of len bytes. */
static char *
b64(const void *data, size_t len)
{
    char *out = malloc(len * 4 / 3 + 4);
    assert_non_null(out);
    b64url_encode(data, len, out);
    return out;
}

/*
 * Joins already-encoded parts into "h64.p64.<sig>", where sig is the HMAC
 * of "h64.p64" under secret with md, or empty when md is NULL.
 */
static char *
sign_parts(const char *h64, const char *p64, const EVP_MD *md, const char *secret)
{
    size_t signed_len = strlen(h64) + 1 + strlen(p64);
    char *tok = malloc(signed_len + 1 + 2 * EVP_MAX_MD_SIZE + 1);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    assert_non_null(tok);
    sprintf(tok, "%s.%s.", h64, p64);
    if (md != NULL) {
        assert_non_null(HMAC(md, secret, (int)strlen(secret), (const unsigned char *)tok,
                             signed_len, mac, &mac_len));
        b64url_encode(mac, mac_len, tok + signed_len + 1);
    }
    return tok;
}

/* Mints header.claims signed with md under secret (no signature when md is NULL). */
static char *
mint_with(const char *header, const char *claims, const EVP_MD *md, const char *secret)
{
    char *h64 = b64(header, strlen(header));
    char *p64 = b64(claims, strlen(claims));
    char *tok = sign_parts(h64, p64, md, secret);
    free(h64);
    free(p64);
    return tok;
}

/* Mints a correctly signed HS256 token for the given claims. */
static char *
mint(const char *claims)
{
    return mint_with(HDR, claims, EVP_sha256(), SECRET);
}

/* Mints a token whose claims say exp (and nbf unless it is 0) around NOW. */
static char *
mint_times(int64_t exp, int64_t nbf)
{
    char claims[256];
    if (nbf != 0)
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"exp\":%lld,\"nbf\":%lld}",
                 (long long)exp, (long long)nbf);
    else
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"exp\":%lld}",
                 (long long)exp);
    return mint(claims);
}

static int
verify(const char *tok, struct auth_claims *c, const char **why)
{
    return auth_verify(tok, strlen(tok), SECRET, strlen(SECRET), NOW, c, why);
}

static void
assert_claims_empty(const struct auth_claims *c)
{
    assert_null(c->sub);
    assert_null(c->tenant);
    assert_null(c->units);
    assert_int_equal(c->n_units, 0);
    assert_int_equal(c->role, 0);
    assert_int_equal(c->exp, 0);
    assert_int_equal(c->nbf, 0);
    assert_int_equal(c->iat, 0);
}

/* Verifies tok, expects rejection with exactly reason, and an empty result. */
static void
expect_reject(const char *tok, const char *reason)
{
    struct auth_claims c;
    const char *why = NULL;

    memset(&c, 0x5a, sizeof c);
    assert_int_equal(verify(tok, &c, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
    assert_claims_empty(&c);
    if (strlen(tok) > 8)
        assert_null(strstr(why, tok + strlen(tok) - 8));
}

/* Mints claims and expects them rejected with reason. */
static void
expect_claims_reject(const char *claims, const char *reason)
{
    char *tok = mint(claims);
    expect_reject(tok, reason);
    free(tok);
}

/* Mints claims and expects them accepted; the caller frees *c. */
static void
expect_claims_accept(const char *claims, struct auth_claims *c)
{
    char *tok = mint(claims);
    const char *why = NULL;
    assert_int_equal(verify(tok, c, &why), 0);
    assert_null(why);
    free(tok);
}

static void
test_valid_token_all_claims(void **state)
{
    struct auth_claims c;
    expect_claims_accept(GOOD_CLAIMS, &c);
    assert_string_equal(c.sub, "u-17");
    assert_string_equal(c.tenant, "torres_del_parque");
    assert_int_equal(c.role, AUTH_ROLE_GUARD);
    assert_int_equal(c.n_units, 2);
    assert_string_equal(c.units[0], "101");
    assert_string_equal(c.units[1], "T2:302");
    assert_int_equal(c.exp, 1764266400);
    assert_int_equal(c.nbf, 1764262700);
    auth_claims_free(&c);
    assert_claims_empty(&c);
}

static void
test_valid_token_without_typ_nbf_units(void **state)
{
    char *tok = mint_with("{\"alg\":\"HS256\"}",
                          "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"admin\",\"exp\":1764266400}",
                          EVP_sha256(), SECRET);
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(verify(tok, &c, &why), 0);
    assert_int_equal(c.role, AUTH_ROLE_ADMIN);
    assert_int_equal(c.n_units, 0);
    assert_null(c.units);
    assert_int_equal(c.nbf, 0);
    auth_claims_free(&c);
    free(tok);
}

static void
test_role_uppercase(void **state)
{
    struct auth_claims c;
    expect_claims_accept(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"RESIDENT\",\"exp\":1764266400}", &c);
    assert_int_equal(c.role, AUTH_ROLE_RESIDENT);
    auth_claims_free(&c);
    expect_claims_accept("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"GUARD\",\"exp\":1764266400}",
                         &c);
    assert_int_equal(c.role, AUTH_ROLE_GUARD);
    auth_claims_free(&c);
}

static void
test_role_mixed_case(void **state)
{
    struct auth_claims c;
    expect_claims_accept("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"AdMiN\",\"exp\":1764266400}",
                         &c);
    assert_int_equal(c.role, AUTH_ROLE_ADMIN);
    auth_claims_free(&c);
}

static void
test_schema_name_alias(void **state)
{
    struct auth_claims c;
    expect_claims_accept("{\"sub\":\"u\",\"schemaName\":\"conjunto_norte\",\"role\":\"resident\","
                         "\"exp\":1764266400}",
                         &c);
    assert_string_equal(c.tenant, "conjunto_norte");
    auth_claims_free(&c);
}

static void
test_tenant_wins_over_schema_name(void **state)
{
    struct auth_claims c;
    expect_claims_accept("{\"sub\":\"u\",\"tenant\":\"a\",\"schemaName\":\"b\",\"role\":"
                         "\"resident\",\"exp\":1764266400}",
                         &c);
    assert_string_equal(c.tenant, "a");
    auth_claims_free(&c);
}

static void
test_units_integer_becomes_decimal_text(void **state)
{
    struct auth_claims c;
    expect_claims_accept("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[302,"
                         "\"A-1\",0],\"exp\":1764266400}",
                         &c);
    assert_int_equal(c.n_units, 3);
    assert_string_equal(c.units[0], "302");
    assert_string_equal(c.units[1], "A-1");
    assert_string_equal(c.units[2], "0");
    auth_claims_free(&c);
}

static void
test_units_repeated_kept_once(void **state)
{
    struct auth_claims c;
    expect_claims_accept("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[302,"
                         "\"302\",\"7\",\"7\"],\"exp\":1764266400}",
                         &c);
    assert_int_equal(c.n_units, 2);
    assert_string_equal(c.units[0], "302");
    assert_string_equal(c.units[1], "7");
    auth_claims_free(&c);
}

static void
test_units_empty_array(void **state)
{
    struct auth_claims c;
    expect_claims_accept(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[],\"exp\":1764266400}",
        &c);
    assert_int_equal(c.n_units, 0);
    assert_null(c.units);
    auth_claims_free(&c);
}

static void
test_tampered_payload(void **state)
{
    char *good = mint(GOOD_CLAIMS);
    const char *forged_claims =
        "{\"sub\":\"u-17\",\"tenant\":\"torres_del_parque\",\"role\":\"admin\",\"exp\":1764266400}";
    char *forged64 = b64(forged_claims, strlen(forged_claims));
    char *dot1 = strchr(good, '.');
    char *dot2 = strchr(dot1 + 1, '.');
    char *tok = malloc(strlen(good) + strlen(forged64) + 1);

    assert_non_null(tok);
    sprintf(tok, "%.*s.%s%s", (int)(dot1 - good), good, forged64, dot2);
    expect_reject(tok, "bad signature");
    free(tok);
    free(forged64);
    free(good);
}

static void
test_tampered_signature(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    char *sig = strrchr(tok, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    expect_reject(tok, "bad signature");
    free(tok);
}

static void
test_wrong_secret(void **state)
{
    char *tok = mint_with(HDR, GOOD_CLAIMS, EVP_sha256(), "another-secret");
    expect_reject(tok, "bad signature");
    free(tok);
}

static void
test_truncated_signature(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    tok[strlen(tok) - 4] = '\0';
    expect_reject(tok, "bad signature");
    free(tok);
}

static void
test_empty_signature(void **state)
{
    char *tok = mint_with(HDR, GOOD_CLAIMS, NULL, SECRET);
    expect_reject(tok, "missing signature");
    free(tok);
}

static void
test_alg_none_empty_signature(void **state)
{
    char *tok = mint_with("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_CLAIMS, NULL, SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_none_with_signature(void **state)
{
    char *tok = mint_with("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_hs512(void **state)
{
    char *tok = mint_with("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha512(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_rs256_signed_with_hs_secret(void **state)
{
    char *tok = mint_with("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_missing(void **state)
{
    char *tok = mint_with("{\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_lowercase(void **state)
{
    char *tok = mint_with("{\"alg\":\"hs256\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_not_a_string(void **state)
{
    char *tok = mint_with("{\"alg\":[\"HS256\"]}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported alg (only HS256)");
    free(tok);
}

static void
test_alg_duplicated_in_header(void **state)
{
    char *tok =
        mint_with("{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "malformed token header (expected a JSON object)");
    free(tok);
}

static void
test_typ_jwt_any_case_accepted(void **state)
{
    char *tok = mint_with("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(verify(tok, &c, &why), 0);
    auth_claims_free(&c);
    free(tok);
}

static void
test_typ_other_rejected(void **state)
{
    char *tok =
        mint_with("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported typ (only JWT)");
    free(tok);
}

static void
test_crit_header_rejected(void **state)
{
    char *tok = mint_with("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", GOOD_CLAIMS,
                          EVP_sha256(), SECRET);
    expect_reject(tok, "unsupported header crit");
    free(tok);
}

static void
test_expired_beyond_leeway(void **state)
{
    char *tok = mint_times(NOW - AUTH_LEEWAY_S - 1, 0);
    expect_reject(tok, "token expired");
    free(tok);
}

static void
test_expired_long_ago(void **state)
{
    char *tok = mint_times(NOW - 86400, 0);
    expect_reject(tok, "token expired");
    free(tok);
}

static void
test_expired_within_leeway_accepted(void **state)
{
    struct auth_claims c;
    const char *why = NULL;
    char *tok = mint_times(NOW - 20, 0);
    assert_int_equal(verify(tok, &c, &why), 0);
    assert_int_equal(c.exp, NOW - 20);
    auth_claims_free(&c);
    free(tok);
}

static void
test_expired_exactly_at_leeway_accepted(void **state)
{
    struct auth_claims c;
    const char *why = NULL;
    char *tok = mint_times(NOW - AUTH_LEEWAY_S, 0);
    assert_int_equal(verify(tok, &c, &why), 0);
    auth_claims_free(&c);
    free(tok);
}

static void
test_exp_real_number_accepted(void **state)
{
    struct auth_claims c;
    expect_claims_accept(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400.75}", &c);
    assert_int_equal(c.exp, 1764266400);
    auth_claims_free(&c);
}

static void
test_exp_real_number_expired(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764262700.5}",
                         "token expired");
}

static void
test_exp_too_far_refused(void **state)
{
    char claims[160];
    struct auth_claims c;

    expect_claims_reject(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":9223372036854775807}",
        "token exp too far in the future");
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1e300}",
                         "token exp too far in the future");
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":%lld}",
             (long long)(NOW + AUTH_MAX_EXP_AHEAD_S + 1));
    expect_claims_reject(claims, "token exp too far in the future");
    /* A token issued for a year (and up to the 400-day horizon) still works. */
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":%lld}",
             (long long)(NOW + AUTH_MAX_EXP_AHEAD_S));
    expect_claims_accept(claims, &c);
    assert_int_equal(c.exp, NOW + AUTH_MAX_EXP_AHEAD_S);
    auth_claims_free(&c);
}

/* Verifies claims under policy; returns auth_verify_policy()'s result. */
static int
verify_policy_claims(const char *claims, const struct auth_policy *policy, const char **why)
{
    struct auth_claims c;
    char *tok = mint(claims);
    int rc = auth_verify_policy(tok, strlen(tok), SECRET, strlen(SECRET), NOW, policy, &c, why);
    if (rc == 0)
        auth_claims_free(&c);
    else
        assert_claims_empty(&c);
    free(tok);
    return rc;
}

/* Mints claims with exp and iat (omitted when has_iat is false) plus extra JSON members. */
static char *
claims_iat(int64_t exp, bool has_iat, int64_t iat, const char *extra)
{
    char *claims = malloc(512);
    assert_non_null(claims);
    if (has_iat)
        snprintf(claims, 512,
                 "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":%lld,\"iat\":%lld%s}",
                 (long long)exp, (long long)iat, extra);
    else
        snprintf(claims, 512, "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":%lld%s}",
                 (long long)exp, extra);
    return claims;
}

/* Expects claims refused under policy with exactly reason. */
static void
expect_policy_reject(char *claims, const struct auth_policy *policy, const char *reason)
{
    const char *why = NULL;
    assert_int_equal(verify_policy_claims(claims, policy, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
    free(claims);
}

/* Expects claims accepted under policy. */
static void
expect_policy_accept(char *claims, const struct auth_policy *policy)
{
    const char *why = NULL;
    assert_int_equal(verify_policy_claims(claims, policy, &why), 0);
    assert_null(why);
    free(claims);
}

static void
test_iat_without_ttl(void **state)
{
    struct auth_policy none = {0};

    /* No lifetime limit: iat may be absent, old or (clock skew) ahead, but must be a number. */
    expect_policy_accept(claims_iat(NOW + 3600, false, 0, ""), &none);
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW + 3000, ""), &none);
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW - 30 * 86400, ""), NULL);
    expect_policy_reject(
        strdup(
            "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400,\"iat\":\"x\"}"),
        NULL, "claim iat must be a number of seconds since the epoch");
}

static void
test_ttl_limit(void **state)
{
    struct auth_policy week = {.max_ttl_s = 7 * 86400};

    expect_policy_accept(claims_iat(NOW + 3600, true, NOW - 60, ""), &week);
    expect_policy_accept(claims_iat(NOW + 7 * 86400 - 60, true, NOW - 60, ""), &week);
    expect_policy_reject(claims_iat(NOW + 7 * 86400, true, NOW - 60, ""), &week,
                         "token lifetime (exp - iat) exceeds the limit");
    expect_policy_reject(claims_iat(NOW + 3600, false, 0, ""), &week,
                         "missing claim iat (required: token lifetimes are limited)");
    /* Dated ahead to stretch the limit: refused, beyond the leeway. */
    expect_policy_reject(claims_iat(NOW + 8 * 86400, true, NOW + 2 * 86400, ""), &week,
                         "token issued in the future (iat)");
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW + AUTH_LEEWAY_S, ""), &week);
    /* An iat far in the past does not overflow the difference into a pass. */
    expect_policy_reject(claims_iat(NOW + 3600, true, INT64_MIN + 1, ""), &week,
                         "token lifetime (exp - iat) exceeds the limit");
    expect_policy_reject(strdup("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":"
                                "1764266400,\"iat\":-1e300}"),
                         &week, "token lifetime (exp - iat) exceeds the limit");
    /* The fixed horizon applies under any policy. */
    expect_policy_reject(claims_iat(NOW + AUTH_MAX_EXP_AHEAD_S + 10, true, NOW, ""), &week,
                         "token exp too far in the future");
}

static void
test_audience(void **state)
{
    struct auth_policy none = {0};
    struct auth_policy hub = {.audience = "armonia-hub"};

    /* No audience configured: a token meant for another service is refused. */
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW, ""), &none);
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":\"payments\""), &none,
                         "token names an audience (aud) and this hub expects none");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":[]"), NULL,
                         "token names an audience (aud) and this hub expects none");
    /* Configured: a string equal to it, or an array holding it. */
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW, ",\"aud\":\"armonia-hub\""), &hub);
    expect_policy_accept(claims_iat(NOW + 3600, true, NOW, ",\"aud\":[\"web\",\"armonia-hub\"]"),
                         &hub);
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ""), &hub, "missing claim aud");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":\"payments\""), &hub,
                         "token audience (aud) does not include this hub");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":[\"web\",7]"), &hub,
                         "token audience (aud) does not include this hub");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":\"ARMONIA-HUB\""), &hub,
                         "token audience (aud) does not include this hub");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"aud\":{\"armonia-hub\":1}"), &hub,
                         "token audience (aud) does not include this hub");
}

static void
test_issuer(void **state)
{
    struct auth_policy none = {0};
    struct auth_policy iss = {.issuer = "https://api.armonia.example"};

    expect_policy_accept(claims_iat(NOW + 3600, true, NOW, ",\"iss\":\"anyone\""), &none);
    expect_policy_accept(
        claims_iat(NOW + 3600, true, NOW, ",\"iss\":\"https://api.armonia.example\""), &iss);
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ""), &iss, "missing claim iss");
    expect_policy_reject(claims_iat(NOW + 3600, true, NOW, ",\"iss\":\"https://evil.example\""),
                         &iss, "token issuer (iss) not accepted");
    expect_policy_reject(
        claims_iat(NOW + 3600, true, NOW, ",\"iss\":[\"https://api.armonia.example\"]"), &iss,
        "token issuer (iss) not accepted");
}

static void
test_exp_missing(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\"}",
                         "missing claim exp");
}

static void
test_exp_not_a_number(void **state)
{
    expect_claims_reject(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":\"1764266400\"}",
        "claim exp must be a number of seconds since the epoch");
}

static void
test_nbf_in_future(void **state)
{
    char *tok = mint_times(NOW + 3600, NOW + AUTH_LEEWAY_S + 1);
    expect_reject(tok, "token not yet valid");
    free(tok);
}

static void
test_nbf_within_leeway_accepted(void **state)
{
    struct auth_claims c;
    const char *why = NULL;
    char *tok = mint_times(NOW + 3600, NOW + AUTH_LEEWAY_S);
    assert_int_equal(verify(tok, &c, &why), 0);
    assert_int_equal(c.nbf, NOW + AUTH_LEEWAY_S);
    auth_claims_free(&c);
    free(tok);
}

static void
test_nbf_not_a_number(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400,"
                         "\"nbf\":true}",
                         "claim nbf must be a number of seconds since the epoch");
}

static void
test_sub_missing(void **state)
{
    expect_claims_reject("{\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
                         "missing claim sub");
}

static void
test_sub_null(void **state)
{
    expect_claims_reject("{\"sub\":null,\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
                         "missing claim sub");
}

static void
test_sub_empty(void **state)
{
    expect_claims_reject("{\"sub\":\"\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
                         "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_sub_not_a_string(void **state)
{
    expect_claims_reject("{\"sub\":17,\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
                         "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_sub_bad_characters(void **state)
{
    expect_claims_reject(
        "{\"sub\":\"u 17\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
        "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
    expect_claims_reject(
        "{\"sub\":\"u/17\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
        "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
    expect_claims_reject(
        "{\"sub\":\"jos\\u00e9\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}",
        "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_sub_length_limit(void **state)
{
    char claims[512];
    struct auth_claims c;
    char id[AUTH_MAX_ID_LEN + 2];

    memset(id, 'x', AUTH_MAX_ID_LEN);
    id[AUTH_MAX_ID_LEN] = '\0';
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}", id);
    expect_claims_accept(claims, &c);
    assert_int_equal(strlen(c.sub), AUTH_MAX_ID_LEN);
    auth_claims_free(&c);

    strcat(id, "x");
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}", id);
    expect_claims_reject(claims, "claim sub must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_tenant_missing(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"role\":\"guard\",\"exp\":1764266400}",
                         "missing claim tenant (or schemaName)");
}

static void
test_tenant_empty(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"\",\"role\":\"guard\",\"exp\":1764266400}",
                         "claim tenant must be 1..63 characters of [A-Za-z0-9_-]");
}

static void
test_tenant_bad_characters(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"a.b\",\"role\":\"guard\",\"exp\":1764266400}",
                         "claim tenant must be 1..63 characters of [A-Za-z0-9_-]");
    expect_claims_reject(
        "{\"sub\":\"u\",\"schemaName\":\"x;drop\",\"role\":\"guard\",\"exp\":1764266400}",
        "claim tenant must be 1..63 characters of [A-Za-z0-9_-]");
}

static void
test_tenant_too_long(void **state)
{
    char claims[256];
    char name[AUTH_MAX_TENANT_LEN + 2];
    memset(name, 't', AUTH_MAX_TENANT_LEN + 1);
    name[AUTH_MAX_TENANT_LEN + 1] = '\0';
    snprintf(claims, sizeof claims,
             "{\"sub\":\"u\",\"tenant\":\"%s\",\"role\":\"guard\",\"exp\":1764266400}", name);
    expect_claims_reject(claims, "claim tenant must be 1..63 characters of [A-Za-z0-9_-]");
}

static void
test_role_missing(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"exp\":1764266400}",
                         "missing claim role");
}

static void
test_role_empty(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"\",\"exp\":1764266400}",
                         "claim role must be resident, guard or admin");
}

static void
test_role_unknown(void **state)
{
    expect_claims_reject(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"superuser\",\"exp\":1764266400}",
        "claim role must be resident, guard or admin");
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"admins\",\"exp\":1764266400}",
                         "claim role must be resident, guard or admin");
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":2,\"exp\":1764266400}",
                         "claim role must be resident, guard or admin");
}

static void
test_units_not_an_array(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":\"302\","
                         "\"exp\":1764266400}",
                         "claim units must be an array of strings");
}

static void
test_units_element_wrong_type(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[\"1\","
                         "true],\"exp\":1764266400}",
                         "claim units must be an array of strings");
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[3.5],"
                         "\"exp\":1764266400}",
                         "claim units must be an array of strings");
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[[\"1\"]"
                         "],\"exp\":1764266400}",
                         "claim units must be an array of strings");
}

static void
test_units_element_bad_text(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[\"\"],"
                         "\"exp\":1764266400}",
                         "claim units: each unit must be 1..90 characters of [A-Za-z0-9_.:-]");
    expect_claims_reject(
        "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[\"3 02\"]"
        ",\"exp\":1764266400}",
        "claim units: each unit must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_units_too_many(void **state)
{
    char claims[1024];
    size_t off = (size_t)snprintf(
        claims, sizeof claims, "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"resident\",\"units\":[");
    for (int i = 0; i <= AUTH_MAX_UNITS; i++)
        off += (size_t)snprintf(claims + off, sizeof claims - off, "%s\"u%d\"", i ? "," : "", i);
    snprintf(claims + off, sizeof claims - off, "],\"exp\":1764266400}");
    expect_claims_reject(claims, "claim units may name at most 32 units");
}

/* Signs raw (already encoded, possibly malformed) parts so decoding is what fails. */
static void
expect_parts_reject(const char *h64, const char *p64, const char *reason)
{
    char *tok = sign_parts(h64, p64, EVP_sha256(), SECRET);
    expect_reject(tok, reason);
    free(tok);
}

static void
test_b64_padding_rejected(void **state)
{
    /* A 16-byte header encodes to 22 characters, which standard base64 pads with "==". */
    const char *hdr = "{\"alg\":\"HS256\" }";
    char *h64 = b64(hdr, strlen(hdr));
    char *p64 = b64(GOOD_CLAIMS, strlen(GOOD_CLAIMS));
    char padded[64];

    assert_int_equal(strlen(h64), 22);
    snprintf(padded, sizeof padded, "%s==", h64);
    expect_parts_reject(padded, p64, "malformed token (header is not base64url)");
    snprintf(padded, sizeof padded, "%s=", h64);
    expect_parts_reject(padded, p64, "malformed token (header is not base64url)");
    free(h64);
    free(p64);
}

static void
test_b64_plus_rejected(void **state)
{
    char *h64 = b64(HDR, strlen(HDR));
    char *p64 = b64(GOOD_CLAIMS, strlen(GOOD_CLAIMS));
    p64[4] = '+';
    expect_parts_reject(h64, p64, "malformed token (claims are not base64url)");
    p64[4] = '/';
    expect_parts_reject(h64, p64, "malformed token (claims are not base64url)");
    free(h64);
    free(p64);
}

static void
test_b64_bad_trailing_bits_rejected(void **state)
{
    /* "{}" encodes as "e30"; "e31" decodes to the same bytes with a stray bit. */
    char *h64 = b64(HDR, strlen(HDR));
    expect_parts_reject(h64, "e31", "malformed token (claims are not base64url)");
    free(h64);
}

static void
test_b64_length_mod4_is_1_rejected(void **state)
{
    char *h64 = b64(HDR, strlen(HDR));
    char *p64 = b64(GOOD_CLAIMS, strlen(GOOD_CLAIMS));
    char *longer = malloc(strlen(p64) + 5);
    assert_non_null(longer);
    strcpy(longer, p64);
    while (strlen(longer) % 4 != 1)
        strcat(longer, "A");
    expect_parts_reject(h64, longer, "malformed token (claims are not base64url)");
    free(longer);
    free(h64);
    free(p64);
}

static void
test_b64_whitespace_rejected(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    char *spaced = malloc(strlen(tok) + 2);
    assert_non_null(spaced);
    sprintf(spaced, " %s", tok);
    expect_reject(spaced, "malformed token (header is not base64url)");
    free(spaced);
    free(tok);
}

static void
test_signature_bad_trailing_bits(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    char *last = tok + strlen(tok) - 1;
    /* 43 characters carry 258 bits; the last character's low 2 bits are spare. */
    *last = *last == 'B' ? 'C' : 'B';
    expect_reject(tok, "malformed token (signature is not base64url)");
    free(tok);
}

static void
test_header_not_json(void **state)
{
    char *tok = mint_with("{alg:HS256}", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "malformed token header (expected a JSON object)");
    free(tok);
}

static void
test_header_json_array(void **state)
{
    char *tok = mint_with("[\"HS256\"]", GOOD_CLAIMS, EVP_sha256(), SECRET);
    expect_reject(tok, "malformed token header (expected a JSON object)");
    free(tok);
}

static void
test_claims_not_json(void **state)
{
    expect_claims_reject("{\"sub\":\"u\",", "malformed token claims (expected a JSON object)");
}

static void
test_claims_json_not_object(void **state)
{
    expect_claims_reject("[\"sub\",\"u\"]", "malformed token claims (expected a JSON object)");
    expect_claims_reject("\"sub\"", "malformed token claims (expected a JSON object)");
}

static void
test_claims_trailing_garbage(void **state)
{
    expect_claims_reject(GOOD_CLAIMS "x", "malformed token claims (expected a JSON object)");
}

static void
test_two_part_token(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    *strrchr(tok, '.') = '\0';
    expect_reject(tok, "malformed token (expected header.claims.signature)");
    free(tok);
}

static void
test_four_part_token(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    char *four = malloc(strlen(tok) + 8);
    assert_non_null(four);
    sprintf(four, "%s.e30", tok);
    expect_reject(four, "malformed token (expected header.claims.signature)");
    free(four);
    free(tok);
}

static void
test_empty_parts(void **state)
{
    expect_reject("..", "malformed token (expected header.claims.signature)");
    expect_reject(".e30.AAAA", "malformed token (expected header.claims.signature)");
    expect_reject("e30..AAAA", "malformed token (expected header.claims.signature)");
    expect_reject("no-dots-at-all", "malformed token (expected header.claims.signature)");
}

static void
test_empty_token(void **state)
{
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(auth_verify("", 0, SECRET, strlen(SECRET), NOW, &c, &why), -1);
    assert_string_equal(why, "missing token");
    assert_claims_empty(&c);
}

static void
test_token_too_long(void **state)
{
    char *tok = malloc(8194);
    assert_non_null(tok);
    memset(tok, 'A', 8193);
    tok[10] = '.';
    tok[20] = '.';
    tok[8193] = '\0';
    expect_reject(tok, "token too long");
    free(tok);
}

static void
test_token_at_length_limit_accepted(void **state)
{
    char *claims = malloc(8192);
    char *tok = NULL;
    assert_non_null(claims);
    /* Grow an ignored claim until the token is exactly 8192 bytes long. */
    for (int pad = 0; pad < 7000 && tok == NULL; pad++) {
        int n = snprintf(claims, 8192,
                         "{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400,"
                         "\"pad\":\"%0*d\"}",
                         pad, 0);
        assert_true(n > 0 && n < 8192);
        tok = mint(claims);
        if (strlen(tok) != 8192) {
            free(tok);
            tok = NULL;
        }
    }
    assert_non_null(tok);
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(verify(tok, &c, &why), 0);
    auth_claims_free(&c);
    free(tok);
    free(claims);
}

static void
test_not_nul_terminated(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    size_t len = strlen(tok);
    char *copy = malloc(len + 16);
    struct auth_claims c;
    const char *why = NULL;

    assert_non_null(copy);
    memcpy(copy, tok, len);
    memcpy(copy + len, "garbage.garbage", 15);
    assert_int_equal(auth_verify(copy, len, SECRET, strlen(SECRET), NOW, &c, &why), 0);
    assert_string_equal(c.sub, "u-17");
    auth_claims_free(&c);
    free(copy);
    free(tok);
}

static void
test_no_secret_rejects(void **state)
{
    char *tok = mint(GOOD_CLAIMS);
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(auth_verify(tok, strlen(tok), "", 0, NOW, &c, &why), -1);
    assert_string_equal(why, "server cannot verify tokens (no secret configured)");
    assert_claims_empty(&c);
    free(tok);
}

static void
test_claims_free_on_zeroed_struct(void **state)
{
    struct auth_claims c;
    memset(&c, 0, sizeof c);
    auth_claims_free(&c);
    auth_claims_free(&c);
    assert_claims_empty(&c);
    auth_claims_free(NULL);
}

static void
test_role_name_and_parse(void **state)
{
    enum auth_role r = AUTH_ROLE_ADMIN;
    assert_string_equal(auth_role_name(AUTH_ROLE_RESIDENT), "resident");
    assert_string_equal(auth_role_name(AUTH_ROLE_GUARD), "guard");
    assert_string_equal(auth_role_name(AUTH_ROLE_ADMIN), "admin");
    assert_int_equal(auth_role_parse("Resident", &r), 0);
    assert_int_equal(r, AUTH_ROLE_RESIDENT);
    assert_int_equal(auth_role_parse("GUARD", &r), 0);
    assert_int_equal(r, AUTH_ROLE_GUARD);
    assert_int_equal(auth_role_parse("guar", &r), -1);
    assert_int_equal(auth_role_parse("", &r), -1);
    assert_int_equal(auth_role_parse(NULL, &r), -1);
}

/* The Armonía backend's claim names, with a role map of two extra values. */
static void
backend_names(struct auth_names *names)
{
    struct auth_role_alias aliases[AUTH_MAX_ROLE_ALIASES];
    size_t n = 0;
    char err[256];
    assert_int_equal(auth_role_map_parse("COMPLEX_ADMIN=admin, security = GUARD", aliases,
                                         AUTH_MAX_ROLE_ALIASES, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    auth_names_init(names, "userId", "schemaName", "role", "apartments", aliases, n);
}

/* Verifies claims under names; returns the result, *c filled on success. */
static int
verify_named(const char *claims, const struct auth_names *names, struct auth_claims *c,
             const char **why)
{
    struct auth_policy policy = {.names = names};
    char *tok = mint(claims);
    int rc = auth_verify_policy(tok, strlen(tok), SECRET, strlen(SECRET), NOW, &policy, c, why);
    if (rc != 0) {
        assert_claims_empty(c);
        assert_null(strstr(*why, tok + strlen(tok) - 8));
    }
    free(tok);
    return rc;
}

/* Expects claims refused under names with exactly reason. */
static void
expect_named_reject(const char *claims, const struct auth_names *names, const char *reason)
{
    struct auth_claims c;
    const char *why = NULL;
    assert_int_equal(verify_named(claims, names, &c, &why), -1);
    assert_string_equal(why, reason);
}

static void
test_backend_token_accepted(void **state)
{
    struct auth_names names;
    struct auth_claims c;
    const char *why = NULL;

    backend_names(&names);
    assert_int_equal(verify_named("{\"userId\":\"clx9k2b0000a1b2c3\",\"schemaName\":\"tenant_x\","
                                  "\"role\":\"ADMIN\",\"apartments\":[\"302\"],\"exp\":1764266400}",
                                  &names, &c, &why),
                     0);
    assert_string_equal(c.sub, "clx9k2b0000a1b2c3");
    assert_string_equal(c.tenant, "tenant_x");
    assert_int_equal(c.role, AUTH_ROLE_ADMIN);
    assert_int_equal(c.n_units, 1);
    assert_string_equal(c.units[0], "302");
    auth_claims_free(&c);
    /* Mapped values, in any case. */
    assert_int_equal(
        verify_named("{\"userId\":\"u\",\"schemaName\":\"t\",\"role\":\"complex_admin\","
                     "\"exp\":1764266400}",
                     &names, &c, &why),
        0);
    assert_int_equal(c.role, AUTH_ROLE_ADMIN);
    auth_claims_free(&c);
    assert_int_equal(verify_named("{\"userId\":\"u\",\"schemaName\":\"t\",\"role\":\"Security\","
                                  "\"exp\":1764266400}",
                                  &names, &c, &why),
                     0);
    assert_int_equal(c.role, AUTH_ROLE_GUARD);
    auth_claims_free(&c);
}

static void
test_backend_token_refusals_name_the_claim(void **state)
{
    struct auth_names names;
    backend_names(&names);

    /* The default names are not read any more. */
    expect_named_reject(
        "{\"sub\":\"u\",\"schemaName\":\"t\",\"role\":\"admin\",\"exp\":1764266400}", &names,
        "missing claim userId");
    expect_named_reject("{\"userId\":\"u\",\"tenant\":\"t\",\"role\":\"admin\",\"exp\":1764266400}",
                        &names, "missing claim schemaName");
    expect_named_reject(
        "{\"userId\":\"a b\",\"schemaName\":\"t\",\"role\":\"admin\",\"exp\":1764266400}", &names,
        "claim userId must be 1..90 characters of [A-Za-z0-9_.:-]");
    expect_named_reject(
        "{\"userId\":\"u\",\"schemaName\":\"t;x\",\"role\":\"admin\",\"exp\":1764266400}", &names,
        "claim schemaName must be 1..63 characters of [A-Za-z0-9_-]");
    expect_named_reject("{\"userId\":\"u\",\"schemaName\":\"t\",\"exp\":1764266400}", &names,
                        "missing claim role");
    expect_named_reject(
        "{\"userId\":\"u\",\"schemaName\":\"t\",\"role\":\"OWNER\",\"exp\":1764266400}", &names,
        "claim role must be resident, guard, admin or a role of the hub's role map");
    expect_named_reject("{\"userId\":\"u\",\"schemaName\":\"t\",\"role\":\"admin\","
                        "\"apartments\":\"302\",\"exp\":1764266400}",
                        &names, "claim apartments must be an array of strings");
    expect_named_reject("{\"userId\":\"u\",\"schemaName\":\"t\",\"role\":\"admin\","
                        "\"apartments\":[\"3 02\"],\"exp\":1764266400}",
                        &names,
                        "claim apartments: each unit must be 1..90 characters of [A-Za-z0-9_.:-]");
}

static void
test_default_names_match_contract(void **state)
{
    struct auth_names names;
    struct auth_claims c;
    const char *why = NULL;

    /* Built like a configured set, the defaults refuse and accept as auth_verify() does. */
    auth_names_init(&names, "sub", "tenant", "role", "units", NULL, 0);
    assert_true(names.schema_name_alias);
    assert_string_equal(names.why_tenant_missing, "missing claim tenant (or schemaName)");
    assert_string_equal(names.why_role_bad, "claim role must be resident, guard or admin");
    assert_int_equal(verify_named("{\"sub\":\"u\",\"schemaName\":\"t\",\"role\":\"guard\","
                                  "\"exp\":1764266400}",
                                  &names, &c, &why),
                     0);
    assert_string_equal(c.tenant, "t");
    auth_claims_free(&c);
    expect_named_reject("{\"tenant\":\"t\",\"role\":\"guard\",\"exp\":1764266400}", &names,
                        "missing claim sub");
    /* Without a map, an extra value is refused as before. */
    expect_claims_reject("{\"sub\":\"u\",\"tenant\":\"t\",\"role\":\"COMPLEX_ADMIN\","
                         "\"exp\":1764266400}",
                         "claim role must be resident, guard or admin");
    /* A tenant claim renamed to something else drops the schemaName alias. */
    auth_names_init(&names, "sub", "complex", "role", "units", NULL, 0);
    assert_false(names.schema_name_alias);
    expect_named_reject(
        "{\"sub\":\"u\",\"schemaName\":\"t\",\"role\":\"guard\",\"exp\":1764266400}", &names,
        "missing claim complex");
}

/* Expects text refused as a role map with exactly reason. */
static void
expect_map_reject(const char *text, const char *reason)
{
    struct auth_role_alias aliases[4];
    size_t n = 99;
    char err[256] = "";
    assert_int_equal(auth_role_map_parse(text, aliases, 4, &n, err, sizeof err), -1);
    assert_string_equal(err, reason);
}

static void
test_role_map_parse(void **state)
{
    struct auth_role_alias aliases[4];
    size_t n = 99;
    char err[256];

    assert_int_equal(auth_role_map_parse("COMPLEX_ADMIN=admin,SECURITY=guard,OWNER=resident",
                                         aliases, 4, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(aliases[0].value, "COMPLEX_ADMIN");
    assert_int_equal(aliases[0].role, AUTH_ROLE_ADMIN);
    assert_int_equal(aliases[1].role, AUTH_ROLE_GUARD);
    assert_int_equal(aliases[2].role, AUTH_ROLE_RESIDENT);
    assert_int_equal(auth_role_map_parse(NULL, aliases, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    /* A built-in role mapped to itself is allowed (and changes nothing). */
    assert_int_equal(auth_role_map_parse("Admin=ADMIN", aliases, 4, &n, err, sizeof err), 0);

    expect_map_reject("COMPLEX_ADMIN", "entry 'COMPLEX_ADMIN' has no '=' (expected VALUE=ROLE, "
                                       "comma-separated)");
    expect_map_reject("A=admin,,B=guard", "empty entry (expected VALUE=ROLE, comma-separated)");
    expect_map_reject("A=admin,", "empty entry (expected VALUE=ROLE, comma-separated)");
    expect_map_reject("A=superuser", "'A' maps to 'superuser'; expected resident, guard or admin");
    expect_map_reject("A=", "'A' maps to ''; expected resident, guard or admin");
    expect_map_reject("=admin", "role value '' must be 1..64 characters of [A-Za-z0-9_.:-]");
    expect_map_reject("BAD VALUE=admin",
                      "role value 'BAD VALUE' must be 1..64 characters of [A-Za-z0-9_.:-]");
    expect_map_reject("admin=guard", "'admin' is a built-in role and cannot map to guard");
    expect_map_reject("OWNER=resident,owner=guard", "role value 'owner' appears twice");
    expect_map_reject("A=admin,B=admin,C=admin,D=admin,E=admin", "at most 4 entries");
    expect_map_reject("A=adminguardresidentxyz",
                      "'A' maps to 'adminguardresidentxyz'; expected resident, guard or admin");
    expect_map_reject("A = resident x",
                      "'A' maps to 'resident x'; expected resident, guard or admin");
}

static void
test_claim_name_check(void **state)
{
    char long_name[AUTH_CLAIM_NAME_MAX + 2];

    assert_int_equal(auth_claim_name_check("userId"), 0);
    assert_int_equal(auth_claim_name_check("https://armonia.example/role"), 0);
    assert_int_equal(auth_claim_name_check(""), -1);
    assert_int_equal(auth_claim_name_check("user id"), -1);
    assert_int_equal(auth_claim_name_check("user\"id"), -1);
    assert_int_equal(auth_claim_name_check(NULL), -1);
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[AUTH_CLAIM_NAME_MAX] = '\0';
    assert_int_equal(auth_claim_name_check(long_name), 0);
    long_name[AUTH_CLAIM_NAME_MAX] = 'a';
    long_name[AUTH_CLAIM_NAME_MAX + 1] = '\0';
    assert_int_equal(auth_claim_name_check(long_name), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token_all_claims),
        cmocka_unit_test(test_valid_token_without_typ_nbf_units),
        cmocka_unit_test(test_role_uppercase),
        cmocka_unit_test(test_role_mixed_case),
        cmocka_unit_test(test_schema_name_alias),
        cmocka_unit_test(test_tenant_wins_over_schema_name),
        cmocka_unit_test(test_units_integer_becomes_decimal_text),
        cmocka_unit_test(test_units_repeated_kept_once),
        cmocka_unit_test(test_units_empty_array),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_tampered_signature),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_truncated_signature),
        cmocka_unit_test(test_empty_signature),
        cmocka_unit_test(test_alg_none_empty_signature),
        cmocka_unit_test(test_alg_none_with_signature),
        cmocka_unit_test(test_alg_hs512),
        cmocka_unit_test(test_alg_rs256_signed_with_hs_secret),
        cmocka_unit_test(test_alg_missing),
        cmocka_unit_test(test_alg_lowercase),
        cmocka_unit_test(test_alg_not_a_string),
        cmocka_unit_test(test_alg_duplicated_in_header),
        cmocka_unit_test(test_typ_jwt_any_case_accepted),
        cmocka_unit_test(test_typ_other_rejected),
        cmocka_unit_test(test_crit_header_rejected),
        cmocka_unit_test(test_expired_beyond_leeway),
        cmocka_unit_test(test_expired_long_ago),
        cmocka_unit_test(test_expired_within_leeway_accepted),
        cmocka_unit_test(test_expired_exactly_at_leeway_accepted),
        cmocka_unit_test(test_exp_real_number_accepted),
        cmocka_unit_test(test_exp_real_number_expired),
        cmocka_unit_test(test_exp_too_far_refused),
        cmocka_unit_test(test_iat_without_ttl),
        cmocka_unit_test(test_ttl_limit),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_exp_missing),
        cmocka_unit_test(test_exp_not_a_number),
        cmocka_unit_test(test_nbf_in_future),
        cmocka_unit_test(test_nbf_within_leeway_accepted),
        cmocka_unit_test(test_nbf_not_a_number),
        cmocka_unit_test(test_sub_missing),
        cmocka_unit_test(test_sub_null),
        cmocka_unit_test(test_sub_empty),
        cmocka_unit_test(test_sub_not_a_string),
        cmocka_unit_test(test_sub_bad_characters),
        cmocka_unit_test(test_sub_length_limit),
        cmocka_unit_test(test_tenant_missing),
        cmocka_unit_test(test_tenant_empty),
        cmocka_unit_test(test_tenant_bad_characters),
        cmocka_unit_test(test_tenant_too_long),
        cmocka_unit_test(test_role_missing),
        cmocka_unit_test(test_role_empty),
        cmocka_unit_test(test_role_unknown),
        cmocka_unit_test(test_units_not_an_array),
        cmocka_unit_test(test_units_element_wrong_type),
        cmocka_unit_test(test_units_element_bad_text),
        cmocka_unit_test(test_units_too_many),
        cmocka_unit_test(test_b64_padding_rejected),
        cmocka_unit_test(test_b64_plus_rejected),
        cmocka_unit_test(test_b64_bad_trailing_bits_rejected),
        cmocka_unit_test(test_b64_length_mod4_is_1_rejected),
        cmocka_unit_test(test_b64_whitespace_rejected),
        cmocka_unit_test(test_signature_bad_trailing_bits),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_header_json_array),
        cmocka_unit_test(test_claims_not_json),
        cmocka_unit_test(test_claims_json_not_object),
        cmocka_unit_test(test_claims_trailing_garbage),
        cmocka_unit_test(test_two_part_token),
        cmocka_unit_test(test_four_part_token),
        cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_empty_token),
        cmocka_unit_test(test_token_too_long),
        cmocka_unit_test(test_token_at_length_limit_accepted),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_no_secret_rejects),
        cmocka_unit_test(test_claims_free_on_zeroed_struct),
        cmocka_unit_test(test_role_name_and_parse),
        cmocka_unit_test(test_backend_token_accepted),
        cmocka_unit_test(test_backend_token_refusals_name_the_claim),
        cmocka_unit_test(test_default_names_match_contract),
        cmocka_unit_test(test_role_map_parse),
        cmocka_unit_test(test_claim_name_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
