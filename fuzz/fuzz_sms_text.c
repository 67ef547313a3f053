/*
 * fuzz_sms_text.c - SMS text built from user data (names, panic messages,
 * announcement bodies, any bytes once the database hands them over):
 * sms_gsm7_fold(), sms_segments() and sms_truncate().
 *
 * Input: the first two bytes give the character limit for sms_truncate(),
 * the rest is the text (cut at its first NUL, as the functions read C
 * strings).
 *
 * Checks: folding never lengthens the text, turns invalid UTF-8 into
 * valid UTF-8 and is stable (folding the result again changes nothing);
 * segments agree with the units counted; truncation keeps a prefix, cut on
 * a character boundary, within the limit, and leaves text that fits alone.
 */
#include "fuzz.h"
#include "sms_text.h"

/* UTF-16 code units of valid UTF-8 s: 2 for 4-byte sequences, else 1. */
static size_t
utf16_units(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n += (*p >= 0xF0) ? 2 : 1;
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t max_chars = (size_t)(fuzz_byte(&in) << 8 | fuzz_byte(&in)) % (SMS_MAX_CHARS + 100);
    char *text = fuzz_rest(&in, NULL);
    size_t len = strlen(text);
    char *folded = sms_gsm7_fold(text);
    int ucs2 = -1;
    size_t units = 0;

    FUZZ_CHECK(folded != NULL);
    size_t flen = strlen(folded);
    FUZZ_CHECK(flen <= len);
    FUZZ_CHECK(fuzz_utf8_valid(folded, flen));
    char *again = sms_gsm7_fold(folded);
    FUZZ_CHECK(again != NULL && strcmp(again, folded) == 0);
    free(again);

    int segs = sms_segments(text, &ucs2, &units);
    FUZZ_CHECK(segs >= 0 && (ucs2 == 0 || ucs2 == 1));
    FUZZ_CHECK((segs == 0) == (len == 0));
    if (segs > 0) {
        size_t single = ucs2 ? SMS_UCS2_SINGLE : SMS_GSM7_SINGLE;
        size_t seg = ucs2 ? SMS_UCS2_SEGMENT : SMS_GSM7_SEGMENT;
        if (units <= single)
            FUZZ_CHECK(segs == 1);
        else
            FUZZ_CHECK((size_t)segs >= (units + seg - 1) / seg &&
                       (size_t)segs <= (units + seg - 1) / seg + 1);
    }
    FUZZ_CHECK(sms_segments(NULL, NULL, NULL) == -1);

    /* Truncation, on the folded (valid) text, as the SMS template does. */
    char *cut = strdup(folded);
    FUZZ_CHECK(cut != NULL);
    size_t clen = sms_truncate(cut, max_chars);
    FUZZ_CHECK(clen == strlen(cut) && clen <= flen);
    FUZZ_CHECK(memcmp(cut, folded, clen) == 0);
    FUZZ_CHECK(fuzz_utf8_valid(cut, clen));
    FUZZ_CHECK(utf16_units(cut) <= max_chars);
    if (utf16_units(folded) <= max_chars)
        FUZZ_CHECK(clen == flen);
    free(cut);

    /* Truncating the raw text must not read or write past it either. */
    clen = sms_truncate(text, max_chars);
    FUZZ_CHECK(clen == strlen(text) && clen <= len);
    free(folded);
    free(text);
    return 0;
}
