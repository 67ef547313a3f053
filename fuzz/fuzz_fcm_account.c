/*
 * fuzz_fcm_account.c - the FCM service-account JSON
 * (FIREBASE_SERVICE_ACCOUNT_KEY or the file it names), read by
 * fcm_account_parse(). An operator provides it, but it is a file copied
 * around by hand, and the parser must refuse any mistake with a reason.
 *
 * A random PEM key is out of the fuzzer's reach, so every "@KEY@" in the
 * input is replaced by a real 2048-bit RSA key made once at start-up
 * (JSON-escaped), and the seeds use it: that is how inputs reach the
 * checks after the key. Checks: a refusal gives a reason; an accepted
 * account has the fields fcm_auth.h promises (URL schemes are
 * case-insensitive, RFC 3986 §3.1), and its send URL and signed
 * assertion can be made.
 */
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fcm_auth.h"
#include "fuzz.h"

/* The test key's PEM text with each newline written as \n, for JSON; owned here. */
static char *key_json;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long n;

    FUZZ_CHECK(key != NULL && bio != NULL);
    FUZZ_CHECK(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1);
    n = BIO_get_mem_data(bio, &pem);
    FUZZ_CHECK(n > 0);
    key_json = malloc((size_t)n * 2 + 1);
    FUZZ_CHECK(key_json != NULL);
    char *o = key_json;
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = pem[i];
        }
    }
    *o = '\0';
    BIO_free(bio);
    EVP_PKEY_free(key);
    return 0;
}

/* Returns a new NUL-terminated copy of data with every "@KEY@" replaced by key_json. */
static char *
with_key(const uint8_t *data, size_t size)
{
    static const char mark[] = "@KEY@";
    const size_t mlen = sizeof(mark) - 1, klen = strlen(key_json);
    size_t marks = 0;

    for (size_t i = 0; i + mlen <= size; i++)
        if (memcmp(data + i, mark, mlen) == 0)
            marks++, i += mlen - 1;
    char *out = malloc(size + marks * klen + 1), *o = out;
    FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < size;) {
        if (i + mlen <= size && memcmp(data + i, mark, mlen) == 0) {
            memcpy(o, key_json, klen);
            o += klen;
            i += mlen;
        } else {
            *o++ = (char)data[i++];
        }
    }
    *o = '\0';
    return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = with_key(data, size);
    struct fcm_account a;
    const char *why = NULL;

    if (fcm_account_parse(text, &a, &why) != 0) {
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        FUZZ_CHECK(a.project_id == NULL && a.client_email == NULL && a.token_uri == NULL &&
                   a.key == NULL);
        free(text);
        return 0;
    }
    FUZZ_CHECK(a.project_id != NULL && a.project_id[0] != '\0');
    FUZZ_CHECK(strspn(a.project_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789._:-") == strlen(a.project_id));
    FUZZ_CHECK(a.client_email != NULL && a.client_email[0] != '\0');
    FUZZ_CHECK(a.token_uri != NULL && (strncasecmp(a.token_uri, "http://", 7) == 0 ||
                                       strncasecmp(a.token_uri, "https://", 8) == 0));
    FUZZ_CHECK(a.key != NULL && EVP_PKEY_get_bits(a.key) >= FCM_MIN_RSA_BITS);

    char *url = fcm_send_url("https://fcm.googleapis.com/", &a);
    FUZZ_CHECK(url != NULL);
    FUZZ_CHECK(strchr(url, '\n') == NULL && strchr(url, '\r') == NULL && strchr(url, ' ') == NULL);
    free(url);
    char *assertion = NULL;
    FUZZ_CHECK(fcm_assertion(&a, 1764262800, &assertion) == 0 && assertion != NULL);
    char *body = fcm_token_request_body(assertion);
    FUZZ_CHECK(body != NULL);
    free(body);
    free(assertion);
    fcm_account_free(&a);
    FUZZ_CHECK(a.project_id == NULL && a.key == NULL);
    free(text);
    return 0;
}
