/*
 * fuzz_classify.c - what a provider answers, which comes from the network:
 * the HTTP status, the Retry-After header and the body of an FCM or Twilio
 * answer, the SMTP reply code, curl's error text. Read by classify_fcm(),
 * classify_twilio(), classify_smtp(), classify_transport(); curl parses
 * the Retry-After header itself, and backoff_retry_after_ms() turns the
 * seconds it reports (any 64-bit value) into the wait.
 *
 * Input: bytes 0-1 the status (0..999), byte 2 picks the classifier and
 * byte 3 the curl code, then the seconds curl reported for Retry-After as
 * decimal text up to the first '\n' (an empty line: no header), then the
 * body (or curl's error text).
 *
 * Checks: Retry-After is -1 or 0..BACKOFF_MAX_RETRY_AFTER_MS; the outcome
 * is one of the four; detail and provider_id are NUL-terminated inside
 * their arrays, and, for answers of FCM and Twilio, valid UTF-8 (both go
 * into text columns of hub.deliveries); only a retry keeps a Retry-After;
 * a 2xx answer is SEND_OK.
 */
#include <stdlib.h>

#include "backoff.h"
#include "classify.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    long status = (fuzz_byte(&in) << 8 | fuzz_byte(&in)) % 1000;
    uint8_t which = fuzz_byte(&in) % 4;
    CURLcode code = (CURLcode)(fuzz_byte(&in) % CURL_LAST);
    char *retry_after = fuzz_line(&in, NULL);
    char *body = fuzz_rest(&in, NULL);
    struct send_result r;
    int ra = backoff_retry_after_ms(retry_after[0] ? strtoll(retry_after, NULL, 10) : -1);

    FUZZ_CHECK(ra == -1 || (ra >= 0 && ra <= BACKOFF_MAX_RETRY_AFTER_MS));
    memset(&r, 0x55, sizeof(r));
    switch (which) {
    case 0:
        classify_fcm(status, body, ra, &r);
        break;
    case 1:
        classify_twilio(status, body, ra, &r);
        break;
    case 2:
        classify_smtp(code, status, &r);
        break;
    default:
        classify_transport(code == CURLE_OK ? CURLE_COULDNT_CONNECT : code, body, &r);
        break;
    }
    FUZZ_CHECK(r.outcome == SEND_OK || r.outcome == SEND_RETRY || r.outcome == SEND_PERMANENT ||
               r.outcome == SEND_CONFIG);
    FUZZ_CHECK(strnlen(r.detail, sizeof(r.detail)) < sizeof(r.detail));
    FUZZ_CHECK(strnlen(r.provider_id, sizeof(r.provider_id)) < sizeof(r.provider_id));
    FUZZ_CHECK(r.outcome == SEND_RETRY || r.retry_after_ms == -1);
    FUZZ_CHECK(r.retry_after_ms == -1 || r.retry_after_ms == ra);
    FUZZ_CHECK(send_outcome_name(r.outcome) != NULL);
    if (which <= 1) {
        FUZZ_CHECK(fuzz_utf8_valid(r.detail, strlen(r.detail)));
        FUZZ_CHECK(fuzz_utf8_valid(r.provider_id, strlen(r.provider_id)));
        if (status >= 200 && status <= 299)
            FUZZ_CHECK(r.outcome == SEND_OK);
        else
            FUZZ_CHECK(r.outcome != SEND_OK && r.detail[0] != '\0');
    }
    if (which == 3)
        FUZZ_CHECK(r.outcome != SEND_OK && r.detail[0] != '\0');
    free(body);
    free(retry_after);
    return 0;
}
