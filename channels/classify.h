/*
 * classify.h - what a provider's answer means for a delivery.
 *
 * Each function turns one finished request (an HTTP status and body, an
 * SMTP reply, or a transport error from curl) into a struct send_result:
 * SEND_OK; SEND_RETRY for transient trouble (429, 5xx, timeouts, refused
 * connections), to be retried with backoff; SEND_PERMANENT when this
 * recipient cannot be reached this way (bad number, unregistered token),
 * so the next fallback channel is tried; SEND_CONFIG when our own
 * credentials or settings are wrong and an operator must act. detail
 * names the reason in a few words for hub.deliveries.detail:
 * "UNREGISTERED", "twilio 21211", "smtp 550", "http 503", "timeout: ...".
 *
 * Only SEND_RETRY outcomes should be reported to the provider's circuit
 * breaker as failures (see breaker.h). None of these functions allocates;
 * all may be called from any callback.
 */
#ifndef CHANNELS_CLASSIFY_H
#define CHANNELS_CLASSIFY_H

#include <curl/curl.h>

/* The retry_after_ms these functions take comes from backoff_retry_after_ms(). */
#include "backoff.h"
#include "channel.h"

/*
 * Classifies an answer of FCM HTTP v1 messages:send. 2xx is SEND_OK with
 * provider_id the message name ("projects/p/messages/0:15..."). Errors are
 * read from error.details[] entries of type
 * "type.googleapis.com/google.firebase.fcm.v1.FcmError" (errorCode), then
 * error.status, then the HTTP status: UNREGISTERED, SENDER_ID_MISMATCH and
 * INVALID_ARGUMENT are permanent; QUOTA_EXCEEDED (429), UNAVAILABLE (503),
 * INTERNAL (500) and any other 5xx are retried; THIRD_PARTY_AUTH_ERROR
 * (APNs or web-push credentials) and PERMISSION_DENIED (403) are
 * configuration; UNAUTHENTICATED (401, our access token expired or was
 * revoked) is SEND_RETRY with detail "UNAUTHENTICATED" so the caller
 * fetches a new token first; a 404 without an FCM error code means the
 * project or URL is wrong (configuration); other 4xx are permanent.
 * retry_after_ms (from the Retry-After header, or -1) is kept for retries.
 * body may be NULL or not JSON.
 */
void classify_fcm(long status, const char *body, int retry_after_ms, struct send_result *r);

/*
 * The detail of an FCM answer saying the device token is gone for good
 * (the app was uninstalled, or the token rotated). A push row failed with
 * exactly this detail also records its token in hub.unregistered_tokens
 * (schema/100_devices.sql), for the backend to clean.
 */
#define CLASSIFY_FCM_UNREGISTERED "UNREGISTERED"

/*
 * Classifies an answer of Twilio's Messages.json. 2xx is SEND_OK with
 * provider_id the message sid. Errors carry {"code": N, "message": ...,
 * "more_info": ..., "status": S}; detail is "twilio N". Recipient errors
 * are permanent: 21211 invalid To, 21214 and 21612 To not reachable,
 * 21217 and 21401 and 21421 invalid number, 21219 and 21608 number not
 * verified (trial account), 21265 To is a short code, 21407 number type
 * without SMS, 21408 region not enabled, 21604 To missing, 21610
 * recipient unsubscribed (STOP), 21614 not a mobile number, and the
 * message errors 21602 (empty body) and 21617 (body too long). 20429,
 * 20500, 20503, 21611 (sender queue full), 14107 (rate limit), HTTP 408,
 * 429 and 5xx are retried. 20003 and HTTP 401 (credentials), 20404 and
 * HTTP 404 (wrong account sid or base URL), HTTP 403, 10001 and 10002
 * (account inactive or trial-limited), 20008, and sender errors 21212,
 * 21603, 21606, 21659, 21660 are configuration. Other 4xx are permanent.
 */
void classify_twilio(long status, const char *body, int retry_after_ms, struct send_result *r);

/*
 * Classifies a request that ended without an answer (c != CURLE_OK).
 * Timeouts, failed name resolution, refused connections, send and receive
 * errors, partial or empty replies, HTTP/2 and HTTP/3 stream errors, TLS
 * handshake failures and aborted transfers are SEND_RETRY; errors only an
 * operator can fix (malformed URL, unsupported protocol, certificate
 * verification failure, refused login, TLS required but unavailable) are
 * SEND_CONFIG. Anything else is retried. detail is a short name, then
 * error (curl's error buffer) or curl's generic text for c.
 */
void classify_transport(CURLcode c, const char *error, struct send_result *r);

/*
 * Classifies an SMTP transfer from curl's result and the last reply code
 * (CURLINFO_RESPONSE_CODE, 0 when none): CURLE_OK is SEND_OK; an
 * authentication reply (530, 534, 535, 538) or a refused login
 * (CURLE_LOGIN_DENIED), or a relay that offers no STARTTLS where TLS is
 * required (CURLE_USE_SSL_FAILED), is SEND_CONFIG; 4xx replies (greylisting, mailbox
 * busy, 454 temporary authentication failure) are retried; other 5xx replies (550 no such mailbox,
 * 552, 553 bad address, 554) are permanent; without a reply the transport error decides.
 */
void classify_smtp(CURLcode c, long reply, struct send_result *r);

/* "ok", "retry", "permanent" or "config". */
const char *send_outcome_name(enum send_outcome o);

#endif
