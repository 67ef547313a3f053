/*
 * fcm_auth.c - service-account parsing, the RS256 assertion, the token
 * endpoint's answer and the FCM HTTP v1 message body.
 */
#include "fcm_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "b64url.h"

/* Longest project id, e-mail address, token URI and access token accepted. */
#define FCM_MAX_FIELD 2048

/* Refuses every passphrase request, so an encrypted key fails at once
 * instead of OpenSSL prompting on the terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* Returns 1 when s is non-empty, short enough, and has no space or control character. */
static int
is_token_text(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > FCM_MAX_FIELD)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7F)
            return 0;
    }
    return 1;
}

static int
project_id_ok(const char *s)
{
    if (!is_token_text(s) || strlen(s) > 100)
        return 0;
    for (; *s != '\0'; s++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *s) ==
            NULL)
            return 0;
    }
    return 1;
}

/* Returns 1 when s is printable ASCII only: an access token goes into the
 * Authorization header as it is (RFC 6750's b64token is ASCII). */
static int
is_ascii_text(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x7F)
            return 0;
    return 1;
}

/* Accepts http:// and https:// URLs with a non-empty host. */
static int
token_uri_ok(const char *s)
{
    size_t skip;

    if (!is_token_text(s))
        return 0;
    if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else
        return 0;
    return s[skip] != '\0' && s[skip] != '/' && s[skip] != '?' && s[skip] != '#';
}

/* Returns the string member name of o, or NULL when it is absent or not a string. */
static const char *
member(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/*
 * Loads an unencrypted PEM private key and checks that it is RSA and long
 * enough. Returns the key, or NULL with *why set. OpenSSL's error queue
 * is cleared on failure so the reason does not surface later in an
 * unrelated TLS connection's error report.
 */
static EVP_PKEY *
load_rsa_key(const char *pem, const char **why)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = NULL;

    if (bio == NULL) {
        *why = "out of memory reading private_key";
        goto err;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (key == NULL) {
        *why = "private_key is not an unencrypted PEM private key";
        goto err;
    }
    if (!EVP_PKEY_is_a(key, "RSA")) {
        *why = "private_key is not an RSA key (RS256 needs RSA)";
        goto err;
    }
    if (EVP_PKEY_get_bits(key) < FCM_MIN_RSA_BITS) {
        *why = "private_key is an RSA key shorter than 2048 bits";
        goto err;
    }
    BIO_free(bio);
    return key;

err:
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return NULL;
}

/* Checks the cheap fields first so the reason names the first bad one,
 * then loads the key; one unwind path frees the partial result. */
int
fcm_account_parse(const char *json_text, struct fcm_account *out, const char **why)
{
    const char *reason = NULL, *type, *project_id, *email, *pem, *uri;
    json_t *root = NULL;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (json_text == NULL || *json_text == '\0') {
        reason = "service account key is empty";
        goto err;
    }
    root = json_loads(json_text, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        reason = "service account key is not valid JSON";
        goto err;
    }
    if (!json_is_object(root)) {
        reason = "service account key is not a JSON object";
        goto err;
    }
    type = member(root, "type");
    if (json_object_get(root, "type") != NULL &&
        (type == NULL || strcmp(type, "service_account") != 0)) {
        reason = "type is not \"service_account\"";
        goto err;
    }
    project_id = member(root, "project_id");
    email = member(root, "client_email");
    pem = member(root, "private_key");
    uri = member(root, "token_uri");
    if (project_id == NULL || *project_id == '\0')
        reason = "missing project_id";
    else if (!project_id_ok(project_id))
        reason = "project_id has characters a project id cannot have";
    else if (email == NULL || *email == '\0')
        reason = "missing client_email";
    else if (!is_token_text(email) || strchr(email, '@') == NULL)
        reason = "client_email is not an e-mail address";
    else if (pem == NULL || *pem == '\0')
        reason = "missing private_key";
    else if (uri == NULL || *uri == '\0')
        reason = "missing token_uri";
    else if (!token_uri_ok(uri))
        reason = "token_uri is not an http:// or https:// URL";
    if (reason != NULL)
        goto err;
    out->key = load_rsa_key(pem, &reason);
    if (out->key == NULL)
        goto err;
    out->project_id = strdup(project_id);
    out->client_email = strdup(email);
    out->token_uri = strdup(uri);
    if (out->project_id == NULL || out->client_email == NULL || out->token_uri == NULL) {
        reason = "out of memory";
        goto err;
    }
    json_decref(root);
    return 0;

err:
    json_decref(root);
    fcm_account_free(out);
    if (why != NULL)
        *why = reason;
    return -1;
}

/* Frees the strings and the key; safe on a zeroed struct. */
void
fcm_account_free(struct fcm_account *a)
{
    if (a == NULL)
        return;
    free(a->project_id);
    free(a->client_email);
    free(a->token_uri);
    EVP_PKEY_free(a->key);
    memset(a, 0, sizeof(*a));
}

/* Appends the base64url encoding of len bytes at in to out at *o; out has
 * room (the caller sized it with b64_room()). */
static void
append_b64(char *out, size_t *o, const void *in, size_t len)
{
    *o += b64url_encode(in, len, out + *o);
}

/* What b64url_encode() may write for len bytes, terminator included. */
static size_t
b64_room(size_t len)
{
    return len * 4 / 3 + 4;
}

/* Encodes header and claims, signs "header.claims" in place in the output
 * buffer, then appends the encoded signature. */
int
fcm_assertion(const struct fcm_account *a, time_t now, char **out)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    json_t *claims = NULL;
    char *claims_text = NULL, *jwt = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    size_t claims_len, signing_len, sig_len = 0, o = 0;

    if (a == NULL || a->key == NULL || out == NULL)
        return -1;
    claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", a->client_email, "scope", FCM_SCOPE, "aud",
                       a->token_uri, "iat", (json_int_t)now, "exp",
                       (json_int_t)now + FCM_ASSERTION_LIFETIME_S);
    if (claims == NULL)
        goto err;
    claims_text = json_dumps(claims, JSON_COMPACT);
    if (claims_text == NULL)
        goto err;
    claims_len = strlen(claims_text);
    sig_len = (size_t)EVP_PKEY_get_size(a->key);
    jwt = malloc(b64_room(sizeof(header) - 1) + b64_room(claims_len) + b64_room(sig_len) + 2);
    sig = malloc(sig_len);
    md = EVP_MD_CTX_new();
    if (jwt == NULL || sig == NULL || md == NULL)
        goto err;
    append_b64(jwt, &o, header, sizeof(header) - 1);
    jwt[o++] = '.';
    append_b64(jwt, &o, claims_text, claims_len);
    signing_len = o;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)jwt, signing_len) != 1)
        goto err;
    jwt[o++] = '.';
    append_b64(jwt, &o, sig, sig_len);
    EVP_MD_CTX_free(md);
    free(sig);
    free(claims_text);
    json_decref(claims);
    *out = jwt;
    return 0;

err:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    free(sig);
    free(jwt);
    free(claims_text);
    json_decref(claims);
    return -1;
}

/* Prefixes the assertion with the jwt-bearer grant type. */
char *
fcm_token_request_body(const char *assertion)
{
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    size_t n;
    char *body;

    if (assertion == NULL)
        return NULL;
    /* A JWT is base64url text and dots: nothing in it needs form encoding. */
    n = strlen(assertion);
    body = malloc(sizeof(prefix) + n);
    if (body == NULL)
        return NULL;
    memcpy(body, prefix, sizeof(prefix) - 1);
    memcpy(body + sizeof(prefix) - 1, assertion, n + 1);
    return body;
}

/* Validates everything before touching the outputs. */
int
fcm_token_response_parse(const char *body, char **access_token, int *expires_in_s)
{
    json_t *root, *exp;
    const char *token, *type;
    json_int_t ttl = FCM_DEFAULT_TOKEN_TTL_S;
    char *copy;

    if (body == NULL || access_token == NULL || expires_in_s == NULL)
        return -1;
    root = json_loads(body, 0, NULL);
    if (!json_is_object(root))
        goto err;
    token = member(root, "access_token");
    if (token == NULL || !is_token_text(token) || !is_ascii_text(token))
        goto err;
    type = member(root, "token_type");
    if (json_object_get(root, "token_type") != NULL &&
        (type == NULL || strcasecmp(type, "Bearer") != 0))
        goto err;
    exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp))
        ttl = json_integer_value(exp);
    else if (exp != NULL)
        goto err;
    if (ttl <= 0)
        goto err;
    if (ttl > FCM_MAX_TOKEN_TTL_S)
        ttl = FCM_MAX_TOKEN_TTL_S;
    copy = strdup(token);
    if (copy == NULL)
        goto err;
    json_decref(root);
    *access_token = copy;
    *expires_in_s = (int)ttl;
    return 0;

err:
    json_decref(root);
    return -1;
}

/* Joins base and project id around the messages:send path. */
char *
fcm_send_url(const char *base, const struct fcm_account *a)
{
    size_t n;
    char *url;

    if (base == NULL || a == NULL || a->project_id == NULL)
        return NULL;
    n = strlen(base);
    if (n > 0 && base[n - 1] == '/')
        n--;
    url = malloc(n + strlen(a->project_id) + sizeof("/v1/projects//messages:send"));
    if (url == NULL)
        return NULL;
    sprintf(url, "%.*s/v1/projects/%s/messages:send", (int)n, base, a->project_id);
    return url;
}

/* The reserved names and prefixes of FCM's error documentation. */
int
fcm_data_key_allowed(const char *key)
{
    static const char *const reserved[] = {"from", "notification", "message_type"};

    if (key == NULL || *key == '\0')
        return 0;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(key, reserved[i]) == 0)
            return 0;
    }
    return strncmp(key, "google.", 7) != 0 && strncmp(key, "gcm.", 4) != 0;
}

/* Returns the largest length <= max at which s (of length len) may be cut
 * without splitting a UTF-8 sequence. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Adds key: value to the data map when the key is allowed and the pair fits
 * in what is left of the budget; returns -1 only when memory runs out. */
static int
data_add(json_t *data, size_t *budget, const char *key, const char *value)
{
    size_t n;

    if (value == NULL || !fcm_data_key_allowed(key))
        return 0;
    n = strlen(key) + strlen(value);
    if (n > *budget)
        return 0;
    if (json_object_set_new(data, key, json_string(value)) < 0)
        return -1;
    *budget -= n;
    return 0;
}

/* Returns a JSON string of the first n bytes of s, followed by the
 * ellipsis when ellipsis is set, or NULL. */
static json_t *
cut_string(const char *s, size_t n, int ellipsis)
{
    char *buf = malloc(n + 4);
    json_t *j;

    if (buf == NULL)
        return NULL;
    memcpy(buf, s, n);
    strcpy(buf + n, ellipsis ? "\xE2\x80\xA6" : "");
    j = json_string(buf);
    free(buf);
    return j;
}

/* The hash input starts with this label, so the key is ours alone and
 * cannot be mistaken for a hash of the ids by themselves. */
#define FCM_COLLAPSE_LABEL "armonia-push-collapse"

int
fcm_collapse_key(const char *event_id, const char *user_id, char out[FCM_COLLAPSE_KEY_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md;
    int ok;

    out[0] = '\0';
    if (event_id == NULL || *event_id == '\0' || user_id == NULL || *user_id == '\0')
        return -1;
    md = EVP_MD_CTX_new();
    /* NUL after each part: ("1", "23") and ("12", "3") hash differently. */
    ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, FCM_COLLAPSE_LABEL, sizeof(FCM_COLLAPSE_LABEL)) == 1 &&
         EVP_DigestUpdate(md, event_id, strlen(event_id) + 1) == 1 &&
         EVP_DigestUpdate(md, user_id, strlen(user_id) + 1) == 1 &&
         EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen >= FCM_COLLAPSE_KEY_BYTES;
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;
    char enc[FCM_COLLAPSE_KEY_BYTES * 4 / 3 + 4];
    if (b64url_encode(digest, FCM_COLLAPSE_KEY_BYTES, enc) != FCM_COLLAPSE_KEY_LEN)
        return -1;
    memcpy(out, enc, FCM_COLLAPSE_KEY_LEN + 1);
    return 0;
}

/* Spends the payload budget on the data map first (it is small and the
 * app needs it), then the title, then the body. */
char *
fcm_message_json(const struct message *m)
{
    json_t *root = NULL, *data = NULL, *notification = NULL, *title = NULL, *body = NULL;
    const char *t, *b;
    size_t budget = FCM_MAX_PAYLOAD, tlen, blen, keep;
    char *text, key[FCM_COLLAPSE_KEY_LEN + 1];

    if (m == NULL || m->to == NULL || *m->to == '\0')
        return NULL;
    t = m->title != NULL ? m->title : "";
    b = m->body != NULL ? m->body : "";
    data = json_object();
    if (data == NULL)
        goto err;
    if (data_add(data, &budget, "event_id", m->event_id) < 0 ||
        data_add(data, &budget, "kind", m->kind) < 0 ||
        data_add(data, &budget, "tenant", m->tenant) < 0)
        goto err;

    tlen = strlen(t);
    keep = utf8_cut(t, tlen, FCM_MAX_TITLE_BYTES < budget ? FCM_MAX_TITLE_BYTES : budget);
    title = cut_string(t, keep, 0);
    budget -= keep;
    blen = strlen(b);
    if (blen <= budget)
        keep = blen;
    else
        keep = utf8_cut(b, blen, budget >= 3 ? budget - 3 : 0);
    body = cut_string(b, keep, keep < blen);
    notification = json_object();
    if (title == NULL || body == NULL || notification == NULL)
        goto err;
    if (json_object_set_new(notification, "title", title) < 0) {
        title = NULL;
        goto err;
    }
    title = NULL;
    if (json_object_set_new(notification, "body", body) < 0) {
        body = NULL;
        goto err;
    }
    body = NULL;

    root = json_pack("{s:{s:s,s:O,s:O,s:{s:s},s:{s:{s:s}}}}", "message", "token", m->to,
                     "notification", notification, "data", data, "android", "priority",
                     m->high_priority ? "HIGH" : "NORMAL", "apns", "headers", "apns-priority",
                     m->high_priority ? "10" : "5");
    if (root == NULL)
        goto err;
    if (fcm_collapse_key(m->event_id, m->user_id, key) == 0) {
        /* One key, three places: each platform replaces a notification
         * that carries the same one. Outside the payload budget (FCM counts
         * data and notification text only). */
        json_t *msg = json_object_get(root, "message");
        if (json_object_set_new(json_object_get(msg, "android"), "notification",
                                json_pack("{s:s}", "tag", key)) < 0 ||
            json_object_set_new(json_object_get(json_object_get(msg, "apns"), "headers"),
                                "apns-collapse-id", json_string(key)) < 0 ||
            json_object_set_new(msg, "webpush", json_pack("{s:{s:s}}", "headers", "Topic", key)) <
                0) {
            json_decref(root);
            goto err;
        }
    }
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    json_decref(notification);
    json_decref(data);
    return text;

err:
    json_decref(title);
    json_decref(body);
    json_decref(notification);
    json_decref(data);
    return NULL;
}
