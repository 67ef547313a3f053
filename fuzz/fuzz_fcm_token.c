/*
 * fuzz_fcm_token.c - the OAuth2 token endpoint's answer, which comes from
 * the network (the account's token_uri): any body, read by
 * fcm_token_response_parse().
 *
 * Checks: an accepted token is non-empty printable ASCII without spaces
 * (it goes into an Authorization header, so no CR or LF may reach one) and
 * its lifetime is within 1..FCM_MAX_TOKEN_TTL_S; a refused answer touches
 * neither output.
 */
#include "fcm_auth.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    char *body = fuzz_rest(&in, NULL);
    char *token = (char *)"untouched";
    int ttl = -12345;

    if (fcm_token_response_parse(body, &token, &ttl) != 0) {
        FUZZ_CHECK(strcmp(token, "untouched") == 0 && ttl == -12345);
    } else {
        FUZZ_CHECK(token != NULL && token[0] != '\0');
        for (const char *p = token; *p; p++)
            FUZZ_CHECK((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f);
        FUZZ_CHECK(ttl >= 1 && ttl <= FCM_MAX_TOKEN_TTL_S);
        free(token);
    }
    free(body);
    return 0;
}
