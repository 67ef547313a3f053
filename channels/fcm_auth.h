/*
 * fcm_auth.h - what the push channel needs to talk to FCM HTTP v1 that
 * does not touch the network: the service account, the signed assertion
 * exchanged for an OAuth2 access token, the token endpoint's answer, and
 * the request body of one message.
 *
 * The flow (RFC 7523, Google's "OAuth 2.0 for server to server
 * applications"): fcm_assertion() signs a JWT with the account's RSA key;
 * fcm_token_request_body() wraps it for a POST to the account's token_uri;
 * fcm_token_response_parse() reads the access token and its lifetime; the
 * token is sent as "Authorization: Bearer" with each fcm_message_json()
 * body to fcm_send_url(). No secret ever appears in a returned error text.
 */
#ifndef CHANNELS_FCM_AUTH_H
#define CHANNELS_FCM_AUTH_H

#include <time.h>

#include <openssl/evp.h>

#include "channel.h"

/* The OAuth2 scope that allows sending FCM messages. */
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
/* Lifetime of a signed assertion (Google's maximum), in seconds. */
#define FCM_ASSERTION_LIFETIME_S 3600
/* Smallest RSA key accepted, in bits; Google issues 2048-bit keys. */
#define FCM_MIN_RSA_BITS 2048
/* FCM's limit on a message's payload, keys and values of the data map
 * included; the notification body is shortened to keep within it. */
#define FCM_MAX_PAYLOAD 4096
/* Longest notification title kept, in bytes. */
#define FCM_MAX_TITLE_BYTES 512
/* Lifetime assumed when the token endpoint gives none, and the longest believed. */
#define FCM_DEFAULT_TOKEN_TTL_S 3600
#define FCM_MAX_TOKEN_TTL_S 86400

/* A parsed service-account key. Every member is owned; release with
 * fcm_account_free(). */
struct fcm_account {
    char *project_id;   /* goes into the send URL */
    char *client_email; /* the assertion's issuer */
    char *token_uri;    /* the assertion's audience and the token endpoint */
    EVP_PKEY *key;      /* RSA private key, at least FCM_MIN_RSA_BITS */
};

/*
 * Parses the service-account JSON (the text of
 * FIREBASE_SERVICE_ACCOUNT_KEY or of the file it names). Requires
 * project_id (letters, digits and . _ : -), client_email, private_key (an
 * unencrypted PEM RSA key of at least FCM_MIN_RSA_BITS bits) and token_uri
 * (an http:// or https:// URL, so a test key may point at a local fake).
 * "type" may be absent, as in some emulator keys, but when present must be
 * "service_account". Other members are ignored. Returns 0 and fills *out;
 * or returns -1, leaves *out zeroed and, when why is not NULL, points
 * *why at a static sentence naming the missing or bad field (never
 * quoting the key). May be called at start-up only: it never prompts for
 * a passphrase, so it cannot block.
 */
int fcm_account_parse(const char *json_text, struct fcm_account *out, const char **why);

/* Frees what a holds and zeroes it; a may be zeroed already or NULL. */
void fcm_account_free(struct fcm_account *a);

/*
 * Signs the JWT assertion for the token endpoint: header
 * {"alg":"RS256","typ":"JWT"}, claims iss = client_email, scope =
 * FCM_SCOPE, aud = token_uri, iat = now, exp = now +
 * FCM_ASSERTION_LIFETIME_S, each part base64url-encoded without padding,
 * signed RSASSA-PKCS1-v1_5 with SHA-256. Returns 0 and stores a new
 * string in *out (the caller frees it), or -1 on a signing or memory
 * failure.
 */
int fcm_assertion(const struct fcm_account *a, time_t now, char **out);

/* Returns the form body that exchanges assertion for an access token
 * (grant_type jwt-bearer), owned by the caller, or NULL. */
char *fcm_token_request_body(const char *assertion);

/*
 * Reads the token endpoint's JSON answer ({"access_token": "...",
 * "expires_in": 3599, "token_type": "Bearer"}). The token must be
 * printable ASCII without spaces (it goes into a header); token_type, when
 * present, must be Bearer. expires_in defaults to FCM_DEFAULT_TOKEN_TTL_S
 * and is capped at FCM_MAX_TOKEN_TTL_S. Returns 0, a new string in
 * *access_token (the caller frees it) and the lifetime in *expires_in_s;
 * or -1 for an error answer ({"error": "invalid_grant", ...}) or anything
 * malformed, touching neither output.
 */
int fcm_token_response_parse(const char *body, char **access_token, int *expires_in_s);

/* Returns the send URL, base + "/v1/projects/" + project_id +
 * "/messages:send" (a trailing slash on base is dropped), owned by the
 * caller, or NULL. */
char *fcm_send_url(const char *base, const struct fcm_account *a);

/*
 * Returns 1 when key may be used in a message's data map: not empty, not
 * one FCM reserves ("from", "notification", "message_type"), and not
 * starting with "google." or "gcm.". Returns 0 otherwise.
 */
int fcm_data_key_allowed(const char *key);

/* Raw bytes of SHA-256 kept in a collapse key, and the key's length once
 * base64url-encoded without padding: 16 bytes, 22 characters, within both
 * FCM_MAX_APNS_COLLAPSE_ID and FCM_MAX_WEBPUSH_TOPIC. */
#define FCM_COLLAPSE_KEY_BYTES 16
#define FCM_COLLAPSE_KEY_LEN 22
/* APNs' limit on apns-collapse-id, in bytes. */
#define FCM_MAX_APNS_COLLAPSE_ID 64
/* Web Push's limit on the Topic header (RFC 8030 §5.4), in characters of
 * the URL-safe base64 alphabet. */
#define FCM_MAX_WEBPUSH_TOPIC 32

/*
 * Writes the collapse key of the push of event event_id to user user_id
 * into out (FCM_COLLAPSE_KEY_LEN characters and a NUL): the first
 * FCM_COLLAPSE_KEY_BYTES of SHA-256 over a fixed label, the event id and
 * the user id, base64url without padding. The same (event, user) always
 * gives the same key, so a second copy of one push (docs/fallback.md §5)
 * replaces the first on the device; the user id never leaves in clear.
 * Returns 0, or -1 (out emptied) when an id is NULL or empty or hashing
 * fails.
 */
int fcm_collapse_key(const char *event_id, const char *user_id, char out[FCM_COLLAPSE_KEY_LEN + 1]);

/*
 * Builds the HTTP v1 request body for m: {"message": {"token": to,
 * "notification": {"title", "body"}, "data": {"event_id", "kind",
 * "tenant"}, "android": {"priority": "HIGH"|"NORMAL"}, "apns": {"headers":
 * {"apns-priority": "10"|"5"}}}}, high values when m->high_priority. When
 * m has both event_id and user_id, the collapse key of the pair
 * (fcm_collapse_key()) goes into android.notification.tag, the
 * apns-collapse-id header and webpush.headers.Topic. Data
 * values are strings; NULL ones are left out. The title is cut to
 * FCM_MAX_TITLE_BYTES and the body shortened (ending in "…") so title,
 * body and data keys and values stay within FCM_MAX_PAYLOAD bytes; a data
 * pair that would not fit is left out. Returns compact JSON owned by the
 * caller (free()), or NULL when m or m->to is missing or empty, a text is
 * not valid UTF-8, or memory runs out.
 */
char *fcm_message_json(const struct message *m);

#endif
