/*
 * test_fcm_auth.c - unit tests for channels/fcm_auth.c.
 *
 * What an operator and Google notice: a bad service-account key is refused
 * at start-up with the field named; the assertion is a JWT Google's token
 * endpoint accepts (RS256 over the exact claims, verifiable with the
 * account's public key); the message body has the HTTP v1 shape with the
 * right priorities and stays within FCM's payload limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "fcm_auth.h"

#define TOKEN_URI "https://oauth2.googleapis.com/token"
#define EMAIL "firebase-adminsdk-x1y2z@armonia-demo.iam.gserviceaccount.com"

/* Keys generated once for the whole group: generating RSA keys is slow. */
static EVP_PKEY *rsa_key;
static char *rsa_pem;       /* PKCS#8 "BEGIN PRIVATE KEY", as Google issues */
static char *rsa_pem_pkcs1; /* the older "BEGIN RSA PRIVATE KEY" form */
static char *rsa_pub_pem;

/* Returns the PEM text a write function produced into a memory BIO. */
static char *
bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);

    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static char *
pem_of(EVP_PKEY *key, int traditional, const EVP_CIPHER *cipher)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s;
    int ok;

    assert_non_null(bio);
    if (traditional)
        ok = PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_bio_PrivateKey(bio, key, cipher, (unsigned char *)"secreto", cipher ? 7 : 0,
                                      NULL, NULL);
    assert_int_equal(ok, 1);
    s = bio_text(bio);
    BIO_free(bio);
    return s;
}

static int
group_setup(void **state)
{
    BIO *bio;

    rsa_key = EVP_RSA_gen(2048);
    if (rsa_key == NULL)
        return -1;
    rsa_pem = pem_of(rsa_key, 0, NULL);
    rsa_pem_pkcs1 = pem_of(rsa_key, 1, NULL);
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, rsa_key) != 1)
        return -1;
    rsa_pub_pem = bio_text(bio);
    BIO_free(bio);
    return 0;
}

static int
group_teardown(void **state)
{
    EVP_PKEY_free(rsa_key);
    free(rsa_pem);
    free(rsa_pem_pkcs1);
    free(rsa_pub_pem);
    return 0;
}

/* A service-account JSON like the one the Firebase console downloads. */
static json_t *
account_json(const char *pem)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "project_id",
                     "armonia-demo", "private_key_id", "4f1c0e2d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
                     "private_key", pem, "client_email", EMAIL, "client_id",
                     "104729384756102938475", "auth_uri",
                     "https://accounts.google.com/o/oauth2/auth", "token_uri", TOKEN_URI);
}

/* Parses j (consumed) and returns the result; *why receives the reason. */
static int
parse_json(json_t *j, struct fcm_account *a, const char **why)
{
    char *text = json_dumps(j, 0);
    int rc;

    assert_non_null(text);
    rc = fcm_account_parse(text, a, why);
    free(text);
    json_decref(j);
    return rc;
}

/* Expects j (consumed) to be refused with a reason containing field. */
static void
assert_refused(json_t *j, const char *field)
{
    struct fcm_account a;
    const char *why = NULL;

    assert_int_equal(parse_json(j, &a, &why), -1);
    assert_non_null(why);
    if (strstr(why, field) == NULL)
        fail_msg("reason \"%s\" does not name %s", why, field);
    assert_null(a.key);
    assert_null(a.project_id);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_parse_good_account(void **state)
{
    struct fcm_account a;
    const char *why = "untouched";

    assert_int_equal(parse_json(account_json(rsa_pem), &a, &why), 0);
    assert_string_equal(why, "untouched");
    assert_string_equal(a.project_id, "armonia-demo");
    assert_string_equal(a.client_email, EMAIL);
    assert_string_equal(a.token_uri, TOKEN_URI);
    assert_non_null(a.key);
    assert_int_equal(EVP_PKEY_eq(a.key, rsa_key), 1);
    fcm_account_free(&a);
    assert_null(a.key);
    fcm_account_free(&a);
    fcm_account_free(NULL);
}

static void
test_parse_pkcs1_key_and_missing_type(void **state)
{
    struct fcm_account a;
    json_t *j = account_json(rsa_pem_pkcs1);

    json_object_del(j, "type");
    assert_int_equal(parse_json(j, &a, NULL), 0);
    assert_int_equal(EVP_PKEY_eq(a.key, rsa_key), 1);
    fcm_account_free(&a);
}

/* A local fake token endpoint for tests. */
static void
test_parse_http_token_uri(void **state)
{
    struct fcm_account a;
    json_t *j = account_json(rsa_pem);

    json_object_set_new(j, "token_uri", json_string("http://127.0.0.1:8089/token"));
    assert_int_equal(parse_json(j, &a, NULL), 0);
    assert_string_equal(a.token_uri, "http://127.0.0.1:8089/token");
    fcm_account_free(&a);
}

static void
test_parse_missing_fields(void **state)
{
    static const char *const fields[] = {"project_id", "client_email", "private_key", "token_uri"};

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *j = account_json(rsa_pem);
        json_object_del(j, fields[i]);
        assert_refused(j, fields[i]);
        j = account_json(rsa_pem);
        json_object_set_new(j, fields[i], json_string(""));
        assert_refused(j, fields[i]);
        j = account_json(rsa_pem);
        json_object_set_new(j, fields[i], json_integer(7));
        assert_refused(j, fields[i]);
    }
}

static void
test_parse_bad_fields(void **state)
{
    json_t *j;

    j = account_json(rsa_pem);
    json_object_set_new(j, "type", json_string("authorized_user"));
    assert_refused(j, "type");
    j = account_json(rsa_pem);
    json_object_set_new(j, "type", json_null());
    assert_refused(j, "type");
    j = account_json(rsa_pem);
    json_object_set_new(j, "token_uri", json_string("ftp://oauth2.googleapis.com/token"));
    assert_refused(j, "token_uri");
    j = account_json(rsa_pem);
    json_object_set_new(j, "token_uri", json_string("https://"));
    assert_refused(j, "token_uri");
    j = account_json(rsa_pem);
    json_object_set_new(j, "token_uri", json_string("oauth2.googleapis.com/token"));
    assert_refused(j, "token_uri");
    j = account_json(rsa_pem);
    json_object_set_new(j, "token_uri", json_string("https://evil.example/\r\nHost: x"));
    assert_refused(j, "token_uri");
    j = account_json(rsa_pem);
    json_object_set_new(j, "project_id", json_string("../../other"));
    assert_refused(j, "project_id");
    j = account_json(rsa_pem);
    json_object_set_new(j, "client_email", json_string("not an address"));
    assert_refused(j, "client_email");
    j = account_json(rsa_pem);
    json_object_set_new(
        j, "private_key",
        json_string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"));
    assert_refused(j, "private_key");
    j = account_json(rsa_pem);
    json_object_set_new(j, "private_key", json_string("hola"));
    assert_refused(j, "private_key");
}

static void
test_parse_not_json(void **state)
{
    struct fcm_account a;
    const char *why = NULL;

    assert_int_equal(fcm_account_parse("{\"type\": ", &a, &why), -1);
    assert_non_null(strstr(why, "JSON"));
    assert_int_equal(fcm_account_parse("[1,2]", &a, &why), -1);
    assert_non_null(strstr(why, "object"));
    assert_int_equal(fcm_account_parse("", &a, &why), -1);
    assert_int_equal(fcm_account_parse(NULL, &a, &why), -1);
    assert_int_equal(fcm_account_parse("{}", NULL, &why), -1);
}

static void
test_parse_refuses_ec_key(void **state)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *pem;

    assert_non_null(ec);
    pem = pem_of(ec, 0, NULL);
    assert_refused(account_json(pem), "RSA");
    free(pem);
    EVP_PKEY_free(ec);
}

static void
test_parse_refuses_short_rsa_key(void **state)
{
    EVP_PKEY *small = EVP_RSA_gen(1024);
    char *pem;

    assert_non_null(small);
    pem = pem_of(small, 0, NULL);
    assert_refused(account_json(pem), "2048");
    free(pem);
    EVP_PKEY_free(small);
}

/* An encrypted key fails at once instead of prompting on the terminal. */
static void
test_parse_refuses_encrypted_key(void **state)
{
    char *pem = pem_of(rsa_key, 0, EVP_aes_256_cbc());

    assert_non_null(strstr(pem, "ENCRYPTED"));
    assert_refused(account_json(pem), "private_key");
    free(pem);
}

/* Decodes one base64url part of a JWT into a NUL-terminated buffer. */
static unsigned char *
b64_part(const char *start, size_t len, long *out_len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 2);
    long n;

    assert_non_null(buf);
    n = b64url_decode(start, len, buf);
    assert_true(n >= 0);
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static void
test_assertion_verifies_and_has_the_claims(void **state)
{
    struct fcm_account a;
    const time_t now = 1714564800;
    char *jwt = NULL;
    const char *dot1, *dot2;
    unsigned char *header, *claims, *sig;
    long header_len, claims_len, sig_len;
    json_t *h, *c;
    BIO *bio;
    EVP_PKEY *pub;
    EVP_MD_CTX *md;

    assert_int_equal(parse_json(account_json(rsa_pem), &a, NULL), 0);
    assert_int_equal(fcm_assertion(&a, now, &jwt), 0);
    assert_non_null(jwt);
    assert_null(strchr(jwt, '='));
    assert_null(strchr(jwt, '+'));
    assert_null(strchr(jwt, '/'));
    dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));

    header = b64_part(jwt, (size_t)(dot1 - jwt), &header_len);
    claims = b64_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims_len);
    sig = b64_part(dot2 + 1, strlen(dot2 + 1), &sig_len);
    assert_int_equal(sig_len, 256);

    h = json_loads((const char *)header, 0, NULL);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    assert_int_equal(json_object_size(h), 2);
    c = json_loads((const char *)claims, 0, NULL);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "iss")), EMAIL);
    assert_string_equal(json_string_value(json_object_get(c, "scope")),
                        "https://www.googleapis.com/auth/firebase.messaging");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), TOKEN_URI);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
                         json_integer_value(json_object_get(c, "iat")),
                     3600);
    assert_int_equal(json_object_size(c), 5);

    /* Verify with the public key alone, as Google does. */
    bio = BIO_new_mem_buf(rsa_pub_pem, -1);
    pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pub);
    md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, (size_t)sig_len, (const unsigned char *)jwt,
                                      (size_t)(dot2 - jwt)),
                     1);
    EVP_MD_CTX_free(md);

    /* A changed claim no longer verifies. */
    jwt[(dot1 - jwt) + 5] ^= 1;
    md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, (size_t)sig_len, (const unsigned char *)jwt,
                                          (size_t)(dot2 - jwt)),
                         1);
    EVP_MD_CTX_free(md);
    ERR_clear_error();

    EVP_PKEY_free(pub);
    BIO_free(bio);
    json_decref(h);
    json_decref(c);
    free(header);
    free(claims);
    free(sig);
    free(jwt);
    fcm_account_free(&a);
}

static void
test_assertion_bad_arguments(void **state)
{
    struct fcm_account empty = {0};
    char *jwt = NULL;

    assert_int_equal(fcm_assertion(NULL, 0, &jwt), -1);
    assert_int_equal(fcm_assertion(&empty, 0, &jwt), -1);
    assert_null(jwt);
}

static void
test_token_request_body(void **state)
{
    char *body = fcm_token_request_body("aaa.bbb.ccc");

    assert_string_equal(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                              "&assertion=aaa.bbb.ccc");
    free(body);
    assert_null(fcm_token_request_body(NULL));
}

static void
test_token_response_good(void **state)
{
    char *token = NULL;
    int ttl = 0;

    assert_int_equal(fcm_token_response_parse("{\"access_token\":\"ya29.c.b0AXv0zTN-x_y\","
                                              "\"expires_in\":3599,\"token_type\":\"Bearer\"}",
                                              &token, &ttl),
                     0);
    assert_string_equal(token, "ya29.c.b0AXv0zTN-x_y");
    assert_int_equal(ttl, 3599);
    free(token);
    assert_int_equal(fcm_token_response_parse("{\"access_token\":\"t\"}", &token, &ttl), 0);
    assert_int_equal(ttl, FCM_DEFAULT_TOKEN_TTL_S);
    free(token);
    assert_int_equal(fcm_token_response_parse("{\"access_token\":\"t\",\"expires_in\":99999999,"
                                              "\"token_type\":\"bearer\"}",
                                              &token, &ttl),
                     0);
    assert_int_equal(ttl, FCM_MAX_TOKEN_TTL_S);
    free(token);
}

/* Asserts that every answer in bad[0..n) is refused and leaves the outputs untouched. */
static void
assert_token_responses_refused(const char *const *bad, size_t n)
{
    char *token = (char *)"untouched";
    int ttl = -7;

    for (size_t i = 0; i < n; i++) {
        if (fcm_token_response_parse(bad[i], &token, &ttl) != -1)
            fail_msg("accepted %s", bad[i]);
    }
    assert_string_equal(token, "untouched");
    assert_int_equal(ttl, -7);
}

static void
test_token_response_bad(void **state)
{
    static const char *const bad[] = {
        "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}",
        ("{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT: Token must be a "
         "short-lived token (60 minutes) and in a reasonable timeframe.\"}"),
        "{\"access_token\":\"\",\"expires_in\":3599}",
        "{\"access_token\":\"two words\",\"expires_in\":3599}",
        "{\"access_token\":\"x\\r\\nX-Evil: 1\",\"expires_in\":3599}",
        "{\"access_token\":42,\"expires_in\":3599}",
        "{\"access_token\":\"t\",\"expires_in\":0}",
        "{\"access_token\":\"t\",\"expires_in\":-5}",
        "{\"access_token\":\"t\",\"expires_in\":\"3600\"}",
        "{\"access_token\":\"t\",\"token_type\":\"mac\"}",
        "<html>502 Bad Gateway</html>",
        "[]",
        "",
    };
    assert_token_responses_refused(bad, sizeof(bad) / sizeof(bad[0]));
    char *token = (char *)"untouched";
    int ttl = -7;
    assert_int_equal(fcm_token_response_parse(NULL, &token, &ttl), -1);
}

/* Found by fuzz/fuzz_fcm_token.c: a token with bytes beyond ASCII (here
 * "ya29.Țx" in UTF-8, and a lone Latin-1 byte escaped by jansson's \u)
 * was accepted and would have gone into the Authorization header as it is. */
static void
test_token_response_not_ascii(void **state)
{
    static const char *const bad[] = {
        "{\"access_token\":\"ya29.\xc8\x9ax\",\"expires_in\":3599}",
        "{\"access_token\":\"ya29.\\u00ff\"}",
        "{\"access_token\":\"ya29.\\u0080\"}",
    };
    assert_token_responses_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

static void
test_send_url(void **state)
{
    struct fcm_account a = {.project_id = (char *)"armonia-demo"};
    char *url = fcm_send_url("https://fcm.googleapis.com", &a);

    assert_string_equal(url, "https://fcm.googleapis.com/v1/projects/armonia-demo/messages:send");
    free(url);
    url = fcm_send_url("http://127.0.0.1:9099/", &a);
    assert_string_equal(url, "http://127.0.0.1:9099/v1/projects/armonia-demo/messages:send");
    free(url);
    assert_null(fcm_send_url(NULL, &a));
}

static void
test_data_keys(void **state)
{
    static const char *const refused[] = {
        "from", "notification", "message_type", "google.c.a.e", "gcm.n.e", "google.", ""};
    static const char *const allowed[] = {"event_id", "kind", "tenant", "googleish", "fromage"};

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(fcm_data_key_allowed(refused[i]), 0);
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        assert_int_equal(fcm_data_key_allowed(allowed[i]), 1);
    assert_int_equal(fcm_data_key_allowed(NULL), 0);
}

/* Parses a message body and returns its "message" object (owned by *root). */
static json_t *
message_of(const char *text, json_t **root)
{
    json_t *msg;

    assert_non_null(text);
    *root = json_loads(text, 0, NULL);
    assert_non_null(*root);
    assert_int_equal(json_object_size(*root), 1);
    msg = json_object_get(*root, "message");
    assert_true(json_is_object(msg));
    return msg;
}

static void
test_message_shape_high_priority(void **state)
{
    struct message m = {
        .to = "fKx3Gq0hQ2aB:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx",
        .title = "Alerta de pánico - Unidad 101",
        .body = "Unidad 101 (Ana Gómez): Ayuda. Atienda en la portería.",
        .high_priority = 1,
        .event_id = "48213",
        .kind = "panic",
        .tenant = "conjunto_los_pinos",
    };
    char *text = fcm_message_json(&m);
    json_t *root, *msg = message_of(text, &root), *data, *v;
    const char *key;

    assert_int_equal(json_object_size(msg), 5);
    assert_string_equal(json_string_value(json_object_get(msg, "token")), m.to);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(msg, "notification"), "title")), m.title);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(msg, "notification"), "body")), m.body);
    data = json_object_get(msg, "data");
    assert_int_equal(json_object_size(data), 3);
    json_object_foreach(data, key, v)
    {
        assert_true(json_is_string(v));
    }
    assert_string_equal(json_string_value(json_object_get(data, "event_id")), "48213");
    assert_string_equal(json_string_value(json_object_get(data, "kind")), "panic");
    assert_string_equal(json_string_value(json_object_get(data, "tenant")), "conjunto_los_pinos");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(msg, "android"), "priority")), "HIGH");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(msg, "apns"), "headers"),
                                          "apns-priority")),
        "10");
    json_decref(root);
    free(text);
}

static void
test_message_normal_priority_and_missing_data(void **state)
{
    struct message m = {.to = "tok", .title = "Pago aprobado", .body = "Su pago fue aprobado."};
    char *text = fcm_message_json(&m);
    json_t *root, *msg = message_of(text, &root);

    assert_int_equal(json_object_size(json_object_get(msg, "data")), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(msg, "android"), "priority")), "NORMAL");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(msg, "apns"), "headers"),
                                          "apns-priority")),
        "5");
    json_decref(root);
    free(text);
}

static void
test_message_stays_within_payload_limit(void **state)
{
    size_t n = 5000;
    char *body = malloc(n * 2 + 1), *title = malloc(1001), *text;
    struct message m = {.to = "tok", .event_id = "1", .kind = "announcement", .tenant = "t"};
    json_t *root, *msg, *data, *v;
    const char *key, *b, *t;
    size_t total = 0;

    assert_non_null(body);
    assert_non_null(title);
    for (size_t i = 0; i < n; i++)
        memcpy(body + i * 2, "ñ", 2);
    body[n * 2] = '\0';
    memset(title, 'T', 1000);
    title[1000] = '\0';
    m.title = title;
    m.body = body;
    text = fcm_message_json(&m);
    msg = message_of(text, &root); /* json_loads proves the UTF-8 is still valid */
    t = json_string_value(json_object_get(json_object_get(msg, "notification"), "title"));
    b = json_string_value(json_object_get(json_object_get(msg, "notification"), "body"));
    assert_int_equal(strlen(t), FCM_MAX_TITLE_BYTES);
    assert_string_equal(b + strlen(b) - 3, "…");
    data = json_object_get(msg, "data");
    json_object_foreach(data, key, v)
    {
        total += strlen(key) + json_string_length(v);
    }
    total += strlen(t) + strlen(b);
    assert_true(total <= FCM_MAX_PAYLOAD);
    assert_true(total >= FCM_MAX_PAYLOAD - 4);
    json_decref(root);
    free(text);
    free(body);
    free(title);
}

static void
test_message_refused(void **state)
{
    struct message m = {.to = "", .title = "t", .body = "b"};

    assert_null(fcm_message_json(NULL));
    assert_null(fcm_message_json(&m));
    m.to = NULL;
    assert_null(fcm_message_json(&m));
    m.to = "tok";
    m.body = "bad \xC3 utf-8";
    assert_null(fcm_message_json(&m));
}

/* The three collapse fields of a built message; asserts they are one key. */
static const char *
collapse_fields(json_t *msg)
{
    const char *tag, *apns, *topic;

    tag = json_string_value(
        json_object_get(json_object_get(json_object_get(msg, "android"), "notification"), "tag"));
    apns = json_string_value(json_object_get(
        json_object_get(json_object_get(msg, "apns"), "headers"), "apns-collapse-id"));
    topic = json_string_value(
        json_object_get(json_object_get(json_object_get(msg, "webpush"), "headers"), "Topic"));
    assert_non_null(tag);
    assert_non_null(apns);
    assert_non_null(topic);
    assert_string_equal(tag, apns);
    assert_string_equal(tag, topic);
    return tag;
}

static void
test_collapse_key_per_event_and_user(void **state)
{
    struct message m = {.to = "tok-a",
                        .title = "Alerta",
                        .body = "Ayuda",
                        .high_priority = 1,
                        .event_id = "48213",
                        .user_id = "guard-7",
                        .kind = "panic"};
    char *first_text, *again_text, *other_user_text, *other_event_text, *swap_text;
    json_t *r1, *r2, *r3, *r4, *r5;
    const char *first, *again, *other_user, *other_event, *swapped;
    char key[FCM_COLLAPSE_KEY_LEN + 1];

    first_text = fcm_message_json(&m);
    m.to = "tok-b"; /* a second send (another attempt, another device): same key */
    again_text = fcm_message_json(&m);
    m.user_id = "guard-8";
    other_user_text = fcm_message_json(&m);
    m.user_id = "guard-7";
    m.event_id = "48214";
    other_event_text = fcm_message_json(&m);
    m.event_id = "4821"; /* ("4821", "3guard-7") must not meet ("48213", "guard-7") */
    m.user_id = "3guard-7";
    swap_text = fcm_message_json(&m);

    first = collapse_fields(message_of(first_text, &r1));
    again = collapse_fields(message_of(again_text, &r2));
    other_user = collapse_fields(message_of(other_user_text, &r3));
    other_event = collapse_fields(message_of(other_event_text, &r4));
    swapped = collapse_fields(message_of(swap_text, &r5));
    assert_string_equal(first, again);
    assert_string_not_equal(first, other_user);
    assert_string_not_equal(first, other_event);
    assert_string_not_equal(first, swapped);

    /* Within APNs' and Web Push's limits, URL-safe base64, no user id in clear. */
    assert_int_equal(strlen(first), FCM_COLLAPSE_KEY_LEN);
    assert_true(strlen(first) <= FCM_MAX_WEBPUSH_TOPIC);
    assert_true(strlen(first) <= FCM_MAX_APNS_COLLAPSE_ID);
    assert_int_equal(strspn(first, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_"),
                     strlen(first));
    assert_null(strstr(first_text, "guard-7"));
    assert_int_equal(fcm_collapse_key("48213", "guard-7", key), 0);
    assert_string_equal(key, first);
    /* The value itself is fixed: devices compare keys across hub versions. */
    assert_string_equal(key, "sreVd-wHQtPDB3NDjkdZkg");

    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    json_decref(r4);
    json_decref(r5);
    free(first_text);
    free(again_text);
    free(other_user_text);
    free(other_event_text);
    free(swap_text);
}

static void
test_collapse_key_needs_both_ids(void **state)
{
    struct message m = {.to = "tok", .title = "t", .body = "b", .event_id = "1"};
    char key[FCM_COLLAPSE_KEY_LEN + 1] = "x";
    char *text = fcm_message_json(&m);
    json_t *root, *msg = message_of(text, &root);

    /* Without a user there is no key, and no empty fields either. */
    assert_null(json_object_get(msg, "webpush"));
    assert_null(json_object_get(json_object_get(msg, "android"), "notification"));
    assert_null(json_object_get(json_object_get(json_object_get(msg, "apns"), "headers"),
                                "apns-collapse-id"));
    assert_int_equal(fcm_collapse_key("1", NULL, key), -1);
    assert_string_equal(key, "");
    assert_int_equal(fcm_collapse_key("", "u", key), -1);
    assert_int_equal(fcm_collapse_key(NULL, "u", key), -1);
    json_decref(root);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_account),
        cmocka_unit_test(test_collapse_key_per_event_and_user),
        cmocka_unit_test(test_collapse_key_needs_both_ids),
        cmocka_unit_test(test_parse_pkcs1_key_and_missing_type),
        cmocka_unit_test(test_parse_http_token_uri),
        cmocka_unit_test(test_parse_missing_fields),
        cmocka_unit_test(test_parse_bad_fields),
        cmocka_unit_test(test_parse_not_json),
        cmocka_unit_test(test_parse_refuses_ec_key),
        cmocka_unit_test(test_parse_refuses_short_rsa_key),
        cmocka_unit_test(test_parse_refuses_encrypted_key),
        cmocka_unit_test(test_assertion_verifies_and_has_the_claims),
        cmocka_unit_test(test_assertion_bad_arguments),
        cmocka_unit_test(test_token_request_body),
        cmocka_unit_test(test_token_response_good),
        cmocka_unit_test(test_token_response_bad),
        cmocka_unit_test(test_token_response_not_ascii),
        cmocka_unit_test(test_send_url),
        cmocka_unit_test(test_data_keys),
        cmocka_unit_test(test_message_shape_high_priority),
        cmocka_unit_test(test_message_normal_priority_and_missing_data),
        cmocka_unit_test(test_message_stays_within_payload_limit),
        cmocka_unit_test(test_message_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
