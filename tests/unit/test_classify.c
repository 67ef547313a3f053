/*
 * test_classify.c - unit tests for channels/classify.c, with answers
 * shaped like the ones FCM HTTP v1, Twilio and SMTP servers really send.
 *
 * What a resident and an operator notice: an unregistered phone is not
 * retried forever, a provider outage is retried (after Retry-After), and
 * wrong credentials are reported as configuration, not blamed on users.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "classify.h"

static void
assert_result(const struct send_result *r, enum send_outcome outcome, const char *detail,
              int retry_after_ms)
{
    if (r->outcome != outcome)
        fail_msg("outcome %s, expected %s (detail \"%s\")", send_outcome_name(r->outcome),
                 send_outcome_name(outcome), r->detail);
    assert_string_equal(r->detail, detail);
    assert_int_equal(r->retry_after_ms, retry_after_ms);
}

/* Answers of FCM HTTP v1 messages:send. */

static const char fcm_ok[] =
    "{\n  \"name\": \"projects/armonia-demo/messages/0:1714564800123456%31bd1c9631bd1c96\"\n}\n";

static const char fcm_unregistered[] =
    "{\n  \"error\": {\n    \"code\": 404,\n    \"message\": \"Requested entity was not found.\",\n"
    "    \"status\": \"NOT_FOUND\",\n    \"details\": [\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\n"
    "        \"errorCode\": \"UNREGISTERED\"\n      }\n    ]\n  }\n}\n";

static const char fcm_invalid_token[] =
    "{\"error\":{\"code\":400,\"message\":\"The registration token is not a valid FCM "
    "registration token\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":"
    "\"type.googleapis.com/"
    "google.firebase.fcm.v1.FcmError\",\"errorCode\":\"INVALID_ARGUMENT\"}]}}";

/* A bad request field: only a google.rpc.BadRequest detail, no FcmError. */
static const char fcm_bad_field[] =
    "{\"error\":{\"code\":400,\"message\":\"Invalid value at 'message.data[0].value' "
    "(TYPE_STRING), 12\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":"
    "\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":[{\"field\":"
    "\"message.data[0].value\",\"description\":\"Invalid value at 'message.data[0].value' "
    "(TYPE_STRING), 12\"}]}]}}";

static const char fcm_sender_mismatch[] =
    "{\"error\":{\"code\":403,\"message\":\"SenderId mismatch\",\"status\":\"PERMISSION_DENIED\","
    "\"details\":[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\","
    "\"errorCode\":\"SENDER_ID_MISMATCH\"}]}}";

static const char fcm_quota[] =
    "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for quota metric 'Send requests' and "
    "limit 'Send requests per minute' of service 'fcm.googleapis.com'.\",\"status\":"
    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
    "google.rpc.QuotaFailure\","
    "\"violations\":[{\"subject\":\"project_number:123456789012\"}]},{\"@type\":"
    "\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"QUOTA_EXCEEDED\"}]}}";

static const char fcm_unavailable[] =
    "{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\",\"status\":"
    "\"UNAVAILABLE\",\"details\":[{\"@type\":\"type.googleapis.com/"
    "google.firebase.fcm.v1.FcmError\","
    "\"errorCode\":\"UNAVAILABLE\"}]}}";

static const char fcm_internal[] =
    "{\"error\":{\"code\":500,\"message\":\"Internal error encountered.\",\"status\":\"INTERNAL\","
    "\"details\":[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\","
    "\"errorCode\":\"INTERNAL\"}]}}";

static const char fcm_third_party[] =
    "{\"error\":{\"code\":401,\"message\":\"Auth error from APNS or Web Push Service\",\"status\":"
    "\"UNAUTHENTICATED\",\"details\":[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1."
    "FcmError\",\"errorCode\":\"THIRD_PARTY_AUTH_ERROR\"}]}}";

static const char fcm_token_expired[] =
    "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials. "
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.\",\"status\":"
    "\"UNAUTHENTICATED\"}}";

static const char fcm_permission_denied[] =
    "{\"error\":{\"code\":403,\"message\":\"Permission 'cloudmessaging.messages.create' denied on "
    "resource '//cloudresourcemanager.googleapis.com/projects/armonia-demo' (or it may not "
    "exist).\",\"status\":\"PERMISSION_DENIED\",\"details\":[{\"@type\":\"type.googleapis.com/"
    "google.rpc.ErrorInfo\",\"reason\":\"IAM_PERMISSION_DENIED\",\"domain\":\"iam.googleapis.com\"}"
    "]}}";

static const char fcm_project_not_found[] =
    "{\"error\":{\"code\":404,\"message\":\"Requested entity was not found.\",\"status\":"
    "\"NOT_FOUND\"}}";

static const char fcm_unspecified[] =
    "{\"error\":{\"code\":500,\"message\":\"Internal error.\",\"status\":\"INTERNAL\",\"details\":"
    "[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":"
    "\"UNSPECIFIED_ERROR\"}]}}";

static void
test_fcm_ok(void **state)
{
    struct send_result r;

    memset(&r, 0x5a, sizeof(r));
    classify_fcm(200, fcm_ok, -1, &r);
    assert_result(&r, SEND_OK, "", -1);
    assert_string_equal(r.provider_id,
                        "projects/armonia-demo/messages/0:1714564800123456%31bd1c9631bd1c96");
}

/* The provider accepted the message even if its answer is odd: no resend. */
static void
test_fcm_ok_without_name(void **state)
{
    struct send_result r;
    char long_name[300];

    classify_fcm(200, "not json", 3000, &r);
    assert_result(&r, SEND_OK, "", -1);
    assert_string_equal(r.provider_id, "");
    snprintf(long_name, sizeof(long_name), "{\"name\":\"projects/p/messages/%0200d\"}", 7);
    classify_fcm(200, long_name, -1, &r);
    assert_result(&r, SEND_OK, "", -1);
    assert_string_equal(r.provider_id, "");
    classify_fcm(200, NULL, -1, &r);
    assert_result(&r, SEND_OK, "", -1);
}

static void
test_fcm_permanent_errors(void **state)
{
    struct send_result r;

    classify_fcm(404, fcm_unregistered, 1000, &r);
    assert_result(&r, SEND_PERMANENT, "UNREGISTERED", -1);
    classify_fcm(400, fcm_invalid_token, -1, &r);
    assert_result(&r, SEND_PERMANENT, "INVALID_ARGUMENT", -1);
    classify_fcm(400, fcm_bad_field, -1, &r);
    assert_result(&r, SEND_PERMANENT, "INVALID_ARGUMENT", -1);
    /* The FCM code wins over the PERMISSION_DENIED status. */
    classify_fcm(403, fcm_sender_mismatch, -1, &r);
    assert_result(&r, SEND_PERMANENT, "SENDER_ID_MISMATCH", -1);
}

static void
test_fcm_retryable_errors(void **state)
{
    struct send_result r;

    classify_fcm(429, fcm_quota, 30000, &r);
    assert_result(&r, SEND_RETRY, "QUOTA_EXCEEDED", 30000);
    classify_fcm(503, fcm_unavailable, -1, &r);
    assert_result(&r, SEND_RETRY, "UNAVAILABLE", -1);
    classify_fcm(503, fcm_unavailable, 10000, &r);
    assert_result(&r, SEND_RETRY, "UNAVAILABLE", 10000);
    classify_fcm(500, fcm_internal, -1, &r);
    assert_result(&r, SEND_RETRY, "INTERNAL", -1);
    classify_fcm(500, fcm_unspecified, -1, &r);
    assert_result(&r, SEND_RETRY, "INTERNAL", -1);
}

/* Our access token expired: retry after refreshing it, not an outage of FCM. */
static void
test_fcm_our_token_expired(void **state)
{
    struct send_result r;

    classify_fcm(401, fcm_token_expired, -1, &r);
    assert_result(&r, SEND_RETRY, "UNAUTHENTICATED", -1);
    classify_fcm(401, "<html><body>Unauthorized</body></html>", -1, &r);
    assert_result(&r, SEND_RETRY, "UNAUTHENTICATED", -1);
}

static void
test_fcm_config_errors(void **state)
{
    struct send_result r;

    /* APNs credentials missing in the Firebase project: the code wins over UNAUTHENTICATED. */
    classify_fcm(401, fcm_third_party, -1, &r);
    assert_result(&r, SEND_CONFIG, "THIRD_PARTY_AUTH_ERROR", -1);
    classify_fcm(403, fcm_permission_denied, -1, &r);
    assert_result(&r, SEND_CONFIG, "PERMISSION_DENIED", -1);
    classify_fcm(404, fcm_project_not_found, 5000, &r);
    assert_result(&r, SEND_CONFIG, "http 404", -1);
}

static void
test_fcm_unparsable_bodies_by_status(void **state)
{
    struct send_result r;

    classify_fcm(502, "<html><title>502 Bad Gateway</title></html>", -1, &r);
    assert_result(&r, SEND_RETRY, "http 502", -1);
    classify_fcm(504, "", 2000, &r);
    assert_result(&r, SEND_RETRY, "http 504", 2000);
    classify_fcm(429, NULL, 60000, &r);
    assert_result(&r, SEND_RETRY, "http 429", 60000);
    classify_fcm(408, "timeout", -1, &r);
    assert_result(&r, SEND_RETRY, "http 408", -1);
    classify_fcm(400, "bad", -1, &r);
    assert_result(&r, SEND_PERMANENT, "http 400", -1);
    classify_fcm(413, "{\"error\":\"too big\"}", -1, &r);
    assert_result(&r, SEND_PERMANENT, "http 413", -1);
    classify_fcm(403, "Forbidden", -1, &r);
    assert_result(&r, SEND_CONFIG, "http 403", -1);
    classify_fcm(404, "Not Found", -1, &r);
    assert_result(&r, SEND_CONFIG, "http 404", -1);
    classify_fcm(301, "", -1, &r);
    assert_result(&r, SEND_CONFIG, "http 301", -1);
    /* An error object with an unknown code and status falls back to HTTP. */
    classify_fcm(418,
                 "{\"error\":{\"code\":418,\"status\":\"TEAPOT\",\"details\":[{\"@type\":"
                 "\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":"
                 "\"NEW_CODE\"}]}}",
                 -1, &r);
    assert_result(&r, SEND_PERMANENT, "http 418", -1);
}

/* Answers of Twilio's Messages.json. */

static const char twilio_created[] =
    "{\"account_sid\": \"AC5ef872f6da5a21de157d80997a64bd33\", \"api_version\": \"2010-04-01\", "
    "\"body\": \"Armonia: Visitante en porteria para la unidad 101.\", \"date_created\": \"Wed, "
    "01 May 2024 12:00:00 +0000\", \"date_sent\": null, \"date_updated\": \"Wed, 01 May 2024 "
    "12:00:00 +0000\", \"direction\": \"outbound-api\", \"error_code\": null, \"error_message\": "
    "null, \"from\": \"+15017122661\", \"messaging_service_sid\": null, \"num_media\": \"0\", "
    "\"num_segments\": \"1\", \"price\": null, \"price_unit\": \"USD\", \"sid\": "
    "\"SM1f0e8ae6ade43cb3c0ce4525424e404f\", \"status\": \"queued\", \"to\": \"+573001234567\", "
    "\"uri\": \"/2010-04-01/Accounts/AC5ef872f6da5a21de157d80997a64bd33/Messages/"
    "SM1f0e8ae6ade43cb3c0ce4525424e404f.json\"}";

/* Builds a Twilio error body like the API's. */
static const char *
twilio_error(int code, const char *message, int status)
{
    static char buf[512];

    snprintf(buf, sizeof(buf),
             "{\"code\": %d, \"message\": \"%s\", \"more_info\": "
             "\"https://www.twilio.com/docs/errors/%d\", \"status\": %d}",
             code, message, code, status);
    return buf;
}

static void
test_twilio_ok(void **state)
{
    struct send_result r;

    classify_twilio(201, twilio_created, -1, &r);
    assert_result(&r, SEND_OK, "", -1);
    assert_string_equal(r.provider_id, "SM1f0e8ae6ade43cb3c0ce4525424e404f");
    classify_twilio(200, "{\"sid\":\"SMabc\"}", -1, &r);
    assert_result(&r, SEND_OK, "", -1);
    assert_string_equal(r.provider_id, "SMabc");
}

static void
test_twilio_recipient_errors_are_permanent(void **state)
{
    static const struct {
        int code;
        const char *message;
    } cases[] = {
        {21211, "Invalid 'To' Phone Number: +5730012ABCD"},
        {21614, "'To' number +576015551234 is not a valid mobile number"},
        {21610, "Attempt to send to unsubscribed recipient"},
        {21408, "Permission to send an SMS has not been enabled for the region indicated by the "
                "'To' number: +882351234567"},
        {21612, "The 'To' phone number: +573001234567, is not currently reachable using the "
                "'From' phone number: +15017122661 via SMS."},
        {21608, "The number +573001234567 is unverified. Trial accounts cannot send messages to "
                "unverified numbers"},
        {21604, "A 'To' phone number is required."},
        {21617, "The concatenated message body exceeds the 1600 character limit."},
    };
    struct send_result r;
    char want[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        classify_twilio(400, twilio_error(cases[i].code, cases[i].message, 400), 5000, &r);
        snprintf(want, sizeof(want), "twilio %d", cases[i].code);
        assert_result(&r, SEND_PERMANENT, want, -1);
    }
}

static void
test_twilio_retryable_errors(void **state)
{
    struct send_result r;

    classify_twilio(429, twilio_error(20429, "Too Many Requests", 429), 1000, &r);
    assert_result(&r, SEND_RETRY, "twilio 20429", 1000);
    classify_twilio(429, "", -1, &r);
    assert_result(&r, SEND_RETRY, "http 429", -1);
    classify_twilio(500, twilio_error(20500, "Internal Server Error", 500), -1, &r);
    assert_result(&r, SEND_RETRY, "twilio 20500", -1);
    classify_twilio(503, "<html>Service Unavailable</html>", 7000, &r);
    assert_result(&r, SEND_RETRY, "http 503", 7000);
    classify_twilio(400,
                    twilio_error(21611,
                                 "This 'From' number has exceeded the maximum number of "
                                 "queued messages",
                                 400),
                    -1, &r);
    assert_result(&r, SEND_RETRY, "twilio 21611", -1);
    /* An unknown code on a 5xx is still retried, and still named. */
    classify_twilio(502, twilio_error(20999, "Bad Gateway", 502), -1, &r);
    assert_result(&r, SEND_RETRY, "twilio 20999", -1);
}

static void
test_twilio_config_errors(void **state)
{
    struct send_result r;

    classify_twilio(401,
                    "{\"code\": 20003, \"detail\": \"Your AccountSid or AuthToken was "
                    "incorrect.\", \"message\": \"Authenticate\", \"more_info\": "
                    "\"https://www.twilio.com/docs/errors/20003\", \"status\": 401}",
                    -1, &r);
    assert_result(&r, SEND_CONFIG, "twilio 20003", -1);
    classify_twilio(401, "Unauthorized", -1, &r);
    assert_result(&r, SEND_CONFIG, "http 401", -1);
    classify_twilio(
        404,
        twilio_error(
            20404,
            "The requested resource /2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/"
            "Messages.json was not found",
            404),
        -1, &r);
    assert_result(&r, SEND_CONFIG, "twilio 20404", -1);
    classify_twilio(400,
                    twilio_error(21606,
                                 "The From phone number +15005550001 is not a valid, "
                                 "SMS-capable inbound phone number or short code for your "
                                 "account.",
                                 400),
                    -1, &r);
    assert_result(&r, SEND_CONFIG, "twilio 21606", -1);
    classify_twilio(400, twilio_error(21212, "Invalid 'From' Phone Number", 400), -1, &r);
    assert_result(&r, SEND_CONFIG, "twilio 21212", -1);
    classify_twilio(401, twilio_error(10001, "Account is not active", 401), -1, &r);
    assert_result(&r, SEND_CONFIG, "twilio 10001", -1);
    classify_twilio(403, "", -1, &r);
    assert_result(&r, SEND_CONFIG, "http 403", -1);
}

static void
test_twilio_other_client_errors_are_permanent(void **state)
{
    struct send_result r;

    classify_twilio(400, twilio_error(21999, "Something new", 400), 3000, &r);
    assert_result(&r, SEND_PERMANENT, "twilio 21999", -1);
    classify_twilio(400, "<html>Bad Request</html>", -1, &r);
    assert_result(&r, SEND_PERMANENT, "http 400", -1);
    classify_twilio(422, NULL, -1, &r);
    assert_result(&r, SEND_PERMANENT, "http 422", -1);
}

/* Requests that ended without an answer. */

static void
test_transport_retryable(void **state)
{
    static const struct {
        CURLcode code;
        const char *prefix;
    } cases[] = {
        {CURLE_OPERATION_TIMEDOUT, "timeout: "},
        {CURLE_COULDNT_CONNECT, "connect: "},
        {CURLE_COULDNT_RESOLVE_HOST, "resolve: "},
        {CURLE_SEND_ERROR, "send: "},
        {CURLE_RECV_ERROR, "recv: "},
        {CURLE_PARTIAL_FILE, "partial reply: "},
        {CURLE_GOT_NOTHING, "empty reply: "},
        {CURLE_HTTP2, "http2: "},
        {CURLE_HTTP2_STREAM, "http2 stream: "},
        {CURLE_SSL_CONNECT_ERROR, "tls handshake: "},
        {CURLE_ABORTED_BY_CALLBACK, "aborted: "},
        {CURLE_FILESIZE_EXCEEDED, "transport: "},
    };
    struct send_result r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        classify_transport(cases[i].code, NULL, &r);
        assert_int_equal(r.outcome, SEND_RETRY);
        assert_int_equal(r.retry_after_ms, -1);
        assert_int_equal(strncmp(r.detail, cases[i].prefix, strlen(cases[i].prefix)), 0);
        /* curl's generic text follows the name. */
        assert_string_equal(r.detail + strlen(cases[i].prefix), curl_easy_strerror(cases[i].code));
    }
}

static void
test_transport_uses_error_buffer(void **state)
{
    struct send_result r;

    classify_transport(CURLE_OPERATION_TIMEDOUT,
                       "Operation timed out after 10001 milliseconds with 0 bytes received", &r);
    assert_result(&r, SEND_RETRY,
                  "timeout: Operation timed out after 10001 milliseconds with 0 bytes received",
                  -1);
    classify_transport(CURLE_COULDNT_CONNECT,
                       "Failed to connect to api.twilio.com port 443 after 3 ms: Couldn't connect "
                       "to server",
                       &r);
    assert_result(&r, SEND_RETRY,
                  "connect: Failed to connect to api.twilio.com port 443 after 3 ms: Couldn't "
                  "connect to server",
                  -1);
}

static void
test_transport_long_error_is_cut(void **state)
{
    char error[1000];
    struct send_result r;

    memset(error, 'x', sizeof(error) - 1);
    error[sizeof(error) - 1] = '\0';
    classify_transport(CURLE_RECV_ERROR, error, &r);
    assert_int_equal(strlen(r.detail), sizeof(r.detail) - 1);
}

static void
test_transport_config(void **state)
{
    static const CURLcode codes[] = {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL,
                                     CURLE_PEER_FAILED_VERIFICATION, CURLE_LOGIN_DENIED,
                                     CURLE_USE_SSL_FAILED};
    struct send_result r;

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        classify_transport(codes[i], "whatever", &r);
        assert_int_equal(r.outcome, SEND_CONFIG);
        assert_non_null(strstr(r.detail, ": whatever"));
    }
    classify_transport(CURLE_URL_MALFORMAT, NULL, &r);
    assert_int_equal(strncmp(r.detail, "bad url: ", 9), 0);
}

static void
test_transport_ok_is_not_success(void **state)
{
    struct send_result r;

    classify_transport(CURLE_OK, NULL, &r);
    assert_result(&r, SEND_RETRY, "no answer", -1);
}

/* SMTP transfers. */

static void
test_smtp(void **state)
{
    struct send_result r;

    classify_smtp(CURLE_OK, 250, &r);
    assert_result(&r, SEND_OK, "", -1);
    /* RCPT TO refused: curl reports a send error, the reply tells why. */
    classify_smtp(CURLE_SEND_ERROR, 550, &r);
    assert_result(&r, SEND_PERMANENT, "smtp 550", -1);
    classify_smtp(CURLE_SEND_ERROR, 553, &r);
    assert_result(&r, SEND_PERMANENT, "smtp 553", -1);
    classify_smtp(CURLE_SEND_ERROR, 552, &r);
    assert_result(&r, SEND_PERMANENT, "smtp 552", -1);
    classify_smtp(CURLE_SEND_ERROR, 554, &r);
    assert_result(&r, SEND_PERMANENT, "smtp 554", -1);
    /* Greylisting and a busy server. */
    classify_smtp(CURLE_SEND_ERROR, 451, &r);
    assert_result(&r, SEND_RETRY, "smtp 451", -1);
    classify_smtp(CURLE_WEIRD_SERVER_REPLY, 421, &r);
    assert_result(&r, SEND_RETRY, "smtp 421", -1);
    classify_smtp(CURLE_SEND_ERROR, 450, &r);
    assert_result(&r, SEND_RETRY, "smtp 450", -1);
}

static void
test_smtp_login(void **state)
{
    struct send_result r;

    classify_smtp(CURLE_LOGIN_DENIED, 535, &r);
    assert_result(&r, SEND_CONFIG, "smtp 535 login denied", -1);
    classify_smtp(CURLE_LOGIN_DENIED, 0, &r);
    assert_result(&r, SEND_CONFIG, "smtp login denied", -1);
    classify_smtp(CURLE_SEND_ERROR, 530, &r);
    assert_result(&r, SEND_CONFIG, "smtp 530 login denied", -1);
    /* 454: temporary authentication failure. */
    classify_smtp(CURLE_LOGIN_DENIED, 454, &r);
    assert_result(&r, SEND_RETRY, "smtp 454", -1);
}

static void
test_smtp_without_reply(void **state)
{
    struct send_result r;

    classify_smtp(CURLE_COULDNT_CONNECT, 0, &r);
    assert_int_equal(r.outcome, SEND_RETRY);
    assert_int_equal(strncmp(r.detail, "connect: ", 9), 0);
    classify_smtp(CURLE_USE_SSL_FAILED, 0, &r);
    assert_int_equal(r.outcome, SEND_CONFIG);
    classify_smtp(CURLE_OPERATION_TIMEDOUT, 0, &r);
    assert_int_equal(r.outcome, SEND_RETRY);
}

static void
test_outcome_names(void **state)
{
    assert_string_equal(send_outcome_name(SEND_OK), "ok");
    assert_string_equal(send_outcome_name(SEND_RETRY), "retry");
    assert_string_equal(send_outcome_name(SEND_PERMANENT), "permanent");
    assert_string_equal(send_outcome_name(SEND_CONFIG), "config");
    assert_string_equal(send_outcome_name((enum send_outcome)9), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fcm_ok),
        cmocka_unit_test(test_fcm_ok_without_name),
        cmocka_unit_test(test_fcm_permanent_errors),
        cmocka_unit_test(test_fcm_retryable_errors),
        cmocka_unit_test(test_fcm_our_token_expired),
        cmocka_unit_test(test_fcm_config_errors),
        cmocka_unit_test(test_fcm_unparsable_bodies_by_status),
        cmocka_unit_test(test_twilio_ok),
        cmocka_unit_test(test_twilio_recipient_errors_are_permanent),
        cmocka_unit_test(test_twilio_retryable_errors),
        cmocka_unit_test(test_twilio_config_errors),
        cmocka_unit_test(test_twilio_other_client_errors_are_permanent),
        cmocka_unit_test(test_transport_retryable),
        cmocka_unit_test(test_transport_uses_error_buffer),
        cmocka_unit_test(test_transport_long_error_is_cut),
        cmocka_unit_test(test_transport_config),
        cmocka_unit_test(test_transport_ok_is_not_success),
        cmocka_unit_test(test_smtp),
        cmocka_unit_test(test_smtp_login),
        cmocka_unit_test(test_smtp_without_reply),
        cmocka_unit_test(test_outcome_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
