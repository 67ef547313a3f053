/*
 * test_b64url.c - unit tests for common/b64url.c: the RFC 4648 vectors, the
 * strictness the token check relies on (one accepted encoding per byte
 * string), and round trips of every length up to 64 bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "b64url.h"

static void
test_b64url_known_vectors(void **state)
{
    static const struct {
        const char *plain, *enc;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char out[32];
    unsigned char dec[32];

    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(b64url_encode(v[i].plain, strlen(v[i].plain), out), strlen(v[i].enc));
        assert_string_equal(out, v[i].enc);
        assert_int_equal(b64url_decode(v[i].enc, strlen(v[i].enc), dec), strlen(v[i].plain));
        assert_memory_equal(dec, v[i].plain, strlen(v[i].plain));
    }
    /* The two characters that differ from standard base64. */
    const unsigned char url[] = {0xfb, 0xff};
    assert_int_equal(b64url_encode(url, 2, out), 3);
    assert_string_equal(out, "-_8");
}

static void
test_b64url_decode_rejects(void **state)
{
    unsigned char dec[32];
    assert_int_equal(b64url_decode("Zg==", 4, dec), -1);
    assert_int_equal(b64url_decode("Zm9v+A", 6, dec), -1);
    assert_int_equal(b64url_decode("Zm9v/A", 6, dec), -1);
    assert_int_equal(b64url_decode("Zm 9v", 5, dec), -1);
    assert_int_equal(b64url_decode("Zm9v\n", 5, dec), -1);
    assert_int_equal(b64url_decode("Zh", 2, dec), -1);
    assert_int_equal(b64url_decode("Zm9", 3, dec), -1);
    assert_int_equal(b64url_decode("Zm9vY", 5, dec), -1);
    assert_int_equal(b64url_decode("Z", 1, dec), -1);
    assert_int_equal(b64url_decode("Zm\0v", 4, dec), -1);
    assert_int_equal(b64url_decode("Zm\xc3\xa9", 4, dec), -1);
}

/* A small deterministic generator so failures reproduce. */
static uint32_t
next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
test_b64url_round_trip_random(void **state)
{
    uint32_t seed = 0x2545f491;
    unsigned char in[64], dec[64 * 3 / 4 + 64];
    char enc[64 * 4 / 3 + 4];

    for (size_t len = 0; len <= 64; len++) {
        for (int round = 0; round < 16; round++) {
            for (size_t i = 0; i < len; i++)
                in[i] = (unsigned char)next_rand(&seed);
            size_t n = b64url_encode(in, len, enc);
            assert_int_equal(n, strlen(enc));
            assert_int_equal(n, (len * 4 + 2) / 3);
            assert_null(strpbrk(enc, "=+/"));
            assert_int_equal(b64url_decode(enc, n, dec), len);
            assert_memory_equal(dec, in, len);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_known_vectors),
        cmocka_unit_test(test_b64url_decode_rejects),
        cmocka_unit_test(test_b64url_round_trip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
