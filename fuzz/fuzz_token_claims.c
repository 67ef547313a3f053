/*
 * fuzz_token_claims.c - tokens with arbitrary claims: the input is taken
 * as the claims part, signed with the HS256 header under the secret the
 * target verifies with, so auth_verify() gets past the signature and its
 * claim parser reads whatever the fuzzer wrote. This is what a backend
 * that mints tokens from user-controlled fields, or anyone holding the
 * secret, can make the hub read.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth_common.h"

#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t h_len = (sizeof(HEADER) - 1) * 4 / 3 + 4, p_len = size * 4 / 3 + 4;
    char *tok = malloc(h_len + 1 + p_len + 1 + EVP_MAX_MD_SIZE * 2);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t n;

    FUZZ_CHECK(tok != NULL);
    n = b64url_encode(HEADER, sizeof(HEADER) - 1, tok);
    tok[n++] = '.';
    n += b64url_encode(data, size, tok + n);
    FUZZ_CHECK(HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (unsigned char *)tok, n,
                    mac, &mac_len) != NULL);
    tok[n++] = '.';
    n += b64url_encode(mac, mac_len, tok + n);
    fuzz_token_one(tok, n);
    free(tok);
    return 0;
}
