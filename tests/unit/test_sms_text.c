/*
 * test_sms_text.c - unit tests for channels/sms_text.c: the GSM-7 tables,
 * folding of Spanish text into GSM-7, segment counting and truncation.
 *
 * What a resident's bill depends on: an accented name must not turn a
 * panic SMS into UCS-2 (70 characters a segment instead of 160), and the
 * segment count must match what the carrier bills.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sms_text.h"

/* Returns a malloc'd string of n copies of unit (a UTF-8 character). */
static char *
repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

/* Returns a malloc'd concatenation of a, b and c. */
static char *
concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);

    assert_non_null(s);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static void
assert_fold(const char *in, const char *want)
{
    char *got = sms_gsm7_fold(in);

    assert_non_null(got);
    assert_string_equal(got, want);
    assert_true(strlen(got) <= strlen(in));
    free(got);
}

/* The standard's tables hold 127 basic characters (128 minus the escape)
 * and 10 extension characters; nothing else is GSM-7. */
static void
test_table_sizes_match_the_standard(void **state)
{
    int basic = 0, ext = 0;

    for (uint32_t cp = 0; cp < 0x30000; cp++) {
        int s = sms_gsm7_septets(cp);
        if (s == 1)
            basic++;
        else if (s == 2)
            ext++;
        else
            assert_int_equal(s, 0);
    }
    assert_int_equal(basic, 127);
    assert_int_equal(ext, 10);
}

static void
test_spanish_characters_in_and_out_of_gsm7(void **state)
{
    /* In the basic table: é ñ Ñ ü Ü ¡ ¿ É. */
    const uint32_t in[] = {0xE9, 0xF1, 0xD1, 0xFC, 0xDC, 0xA1, 0xBF, 0xC9, '@', '$', '_'};
    /* Not in GSM-7 at all: á í ó ú Á Í Ó Ú, the grave accent, tab, ç's small form. */
    const uint32_t out[] = {0xE1, 0xED, 0xF3, 0xFA, 0xC1, 0xCD, 0xD3, 0xDA, '`', '\t', 0xE7};
    /* Two septets each: the extension table. */
    const uint32_t ext[] = {'^', '{', '}', '\\', '[', '~', ']', '|', 0x20AC, '\f'};

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_int_equal(sms_gsm7_septets(in[i]), 1);
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        assert_int_equal(sms_gsm7_septets(out[i]), 0);
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        assert_int_equal(sms_gsm7_septets(ext[i]), 2);
}

static void
test_fold_accented_names(void **state)
{
    assert_fold("Ana Gómez", "Ana Gomez");
    assert_fold("José Núñez", "José Nuñez");
    assert_fold("ÁNGELA DÍAZ ÓRTIZ ÚSUGA", "ANGELA DIAZ ORTIZ USUGA");
    assert_fold("María Fernanda Muñoz", "Maria Fernanda Muñoz");
    assert_fold("Françoise", "FranÇoise");
    assert_fold("São Tomé", "Sao Tomé");
}

static void
test_fold_keeps_what_gsm7_has(void **state)
{
    assert_fold("¿Autoriza el ingreso? ¡Gracias! Pingüino, Ñandú",
                "¿Autoriza el ingreso? ¡Gracias! Pingüino, Ñandu");
    assert_fold("Cuota {extra} [torre 2] 50€ ~ ^ | \\", "Cuota {extra} [torre 2] 50€ ~ ^ | \\");
    assert_fold("", "");
}

static void
test_fold_punctuation_and_spaces(void **state)
{
    assert_fold("“Hola” ‘vecino’ «ya»", "\"Hola\" 'vecino' \"ya\"");
    assert_fold("Torre 3 – Apto 201 — hoy", "Torre 3 - Apto 201 - hoy");
    assert_fold("Espere…", "Espere...");
    assert_fold("$\xC2\xA0"
                "150.000\tCOP",
                "$ 150.000 COP");
    assert_fold("Calle 5ª n.º 10", "Calle 5a n.o 10");
    assert_fold("in\xC2\xADgreso\xE2\x80\x8B", "ingreso");
    assert_fold("`code`", "'code'");
}

/* macOS and some Android keyboards send decomposed accents (NFD). */
static void
test_fold_decomposed_accents(void **state)
{
    assert_fold("Go\xCC\x81mez", "Gomez");
    assert_fold("Nu\xCC\x81n\xCC\x83"
                "ez",
                "Nuñez");
    assert_fold("Jose\xCC\x81", "José");
    assert_fold("Pingu\xCC\x88ino", "Pingüino");
    assert_fold("c\xCC\xA7", "Ç");
    /* A mark after a non-letter is not ours to drop. */
    assert_fold("1\xCC\x81", "1\xCC\x81");
}

/* Found by fuzz/fuzz_sms_text.c: an invisible character dropped between a
 * letter and its combining mark left the mark in, so the text needed UCS-2
 * and folding it again changed it. */
static void
test_fold_decomposed_accents_across_dropped_characters(void **state)
{
    assert_fold("Jose\xC2\xAD\xCC\x81", "José");
    assert_fold("b\xC2\xAD\xCC\xA7", "b");
    assert_fold("Go\xE2\x80\x8B\xCC\x81mez", "Gomez");
    assert_fold("1\xC2\xAD\xCC\x81", "1\xCC\x81");

    char *once = sms_gsm7_fold("Nun\xC2\xAD\xCC\x83"
                               "ez");
    int ucs2 = -1;
    assert_non_null(once);
    assert_string_equal(once, "Nuñez");
    assert_int_equal(sms_segments(once, &ucs2, NULL), 1);
    assert_int_equal(ucs2, 0);
    free(once);
}

static void
test_fold_leaves_what_has_no_equivalent(void **state)
{
    int ucs2 = 0;
    char *s = sms_gsm7_fold("Llegó su pedido 📦 — 訪問者");

    assert_non_null(s);
    assert_string_equal(s, "Llego su pedido 📦 - 訪問者");
    assert_int_equal(sms_segments(s, &ucs2, NULL), 1);
    assert_int_equal(ucs2, 1);
    free(s);
}

static void
test_fold_invalid_utf8(void **state)
{
    assert_fold("a\xFF"
                "b\xC3",
                "a?b?");
    assert_fold("\xC0\xAF", "??");           /* overlong '/' */
    assert_fold("\xED\xA0\x80", "???");      /* a surrogate */
    assert_fold("\xF4\x90\x80\x80", "????"); /* past U+10FFFF */
    assert_null(sms_gsm7_fold(NULL));
}

/* Folded Latin-1 letters all land in GSM-7. */
static void
test_fold_result_is_gsm7_for_latin_letters(void **state)
{
    for (uint32_t cp = 0xC0; cp <= 0xFF; cp++) {
        char in[3] = {(char)(0xC0 | cp >> 6), (char)(0x80 | (cp & 0x3F)), 0};
        int ucs2 = -1;
        char *s;
        if (cp == 0xD7 || cp == 0xF7 || cp == 0xD0 || cp == 0xF0 || cp == 0xDE || cp == 0xFE)
            continue; /* × ÷ Ð ð Þ þ have no GSM-7 equivalent */
        s = sms_gsm7_fold(in);
        assert_non_null(s);
        sms_segments(s, &ucs2, NULL);
        assert_int_equal(ucs2, 0);
        free(s);
    }
}

static void
test_segments_gsm7_limits(void **state)
{
    const size_t lens[] = {1, 160, 161, 306, 307, 459, 460};
    const int want[] = {1, 1, 2, 2, 3, 3, 4};

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *s = repeat("a", lens[i]);
        int ucs2 = -1;
        size_t units = 0;
        assert_int_equal(sms_segments(s, &ucs2, &units), want[i]);
        assert_int_equal(ucs2, 0);
        assert_int_equal(units, lens[i]);
        free(s);
    }
}

static void
test_segments_extension_chars_count_two(void **state)
{
    char *s = repeat("€", 80);
    int ucs2 = -1;
    size_t units = 0;

    assert_int_equal(sms_segments(s, &ucs2, &units), 1);
    assert_int_equal(ucs2, 0);
    assert_int_equal(units, 160);
    free(s);
    s = repeat("[", 81);
    assert_int_equal(sms_segments(s, &ucs2, &units), 2);
    assert_int_equal(units, 162);
    free(s);
}

/* 152 + 2 + 152 = 306 septets: ceil(306 / 153) would say 2, but the escape
 * sequence cannot straddle the first boundary, so it takes 3. */
static void
test_segments_escape_never_split(void **state)
{
    char *a = repeat("a", 152);
    char *s = concat3(a, "€", a);
    size_t units = 0;

    assert_int_equal(sms_segments(s, NULL, &units), 3);
    assert_int_equal(units, 306);
    free(s);
    free(a);
}

static void
test_segments_ucs2_limits(void **state)
{
    const size_t lens[] = {70, 71, 134, 135};
    const int want[] = {1, 2, 2, 3};

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *a = repeat("a", lens[i] - 1);
        char *s = concat3("á", a, "");
        int ucs2 = 0;
        size_t units = 0;
        assert_int_equal(sms_segments(s, &ucs2, &units), want[i]);
        assert_int_equal(ucs2, 1);
        assert_int_equal(units, lens[i]);
        free(s);
        free(a);
    }
}

/* One accent is enough to switch the whole message to UCS-2. */
static void
test_one_acute_accent_costs_segments(void **state)
{
    char *a = repeat("a", 100);
    char *s = concat3("Gómez ", a, "");
    char *folded = sms_gsm7_fold(s);
    int ucs2 = 0;

    assert_int_equal(sms_segments(s, &ucs2, NULL), 2);
    assert_int_equal(ucs2, 1);
    assert_non_null(folded);
    assert_int_equal(sms_segments(folded, &ucs2, NULL), 1);
    assert_int_equal(ucs2, 0);
    free(folded);
    free(s);
    free(a);
}

static void
test_segments_astral_count_two_and_never_split(void **state)
{
    char *s = repeat("😀", 35);
    int ucs2 = 0;
    size_t units = 0;

    assert_int_equal(sms_segments(s, &ucs2, &units), 1);
    assert_int_equal(ucs2, 1);
    assert_int_equal(units, 70);
    free(s);
    /* 72 units: 33 pairs (66 units) fill the first segment, as a 34th would straddle it. */
    s = repeat("😀", 36);
    assert_int_equal(sms_segments(s, NULL, &units), 2);
    assert_int_equal(units, 72);
    free(s);
}

static void
test_segments_empty_and_null(void **state)
{
    int ucs2 = -1;
    size_t units = 9;

    assert_int_equal(sms_segments("", &ucs2, &units), 0);
    assert_int_equal(ucs2, 0);
    assert_int_equal(units, 0);
    assert_int_equal(sms_segments(NULL, &ucs2, &units), -1);
}

static void
test_truncate_ascii(void **state)
{
    char *s = repeat("a", 2000);

    assert_int_equal(sms_truncate(s, SMS_MAX_CHARS), 1600);
    assert_int_equal(strlen(s), 1600);
    assert_int_equal(sms_truncate(s, SMS_MAX_CHARS), 1600);
    free(s);
}

static void
test_truncate_on_character_boundary(void **state)
{
    char *s = repeat("ñ", 2000);
    char *a, *t;

    assert_int_equal(sms_truncate(s, SMS_MAX_CHARS), 3200);
    assert_int_equal(strlen(s), 3200);
    assert_memory_equal(s + 3198, "ñ", 2);
    free(s);

    /* An astral character that would end at 1601 units is dropped whole. */
    a = repeat("a", 1599);
    t = concat3(a, "😀", "b");
    assert_int_equal(sms_truncate(t, SMS_MAX_CHARS), 1599);
    assert_string_equal(t, a);
    free(t);
    free(a);
}

static void
test_truncate_short_text_untouched(void **state)
{
    char s[] = "Armonia: hola";

    assert_int_equal(sms_truncate(s, SMS_MAX_CHARS), strlen("Armonia: hola"));
    assert_string_equal(s, "Armonia: hola");
    assert_int_equal(sms_truncate(s, 0), 0);
    assert_string_equal(s, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sizes_match_the_standard),
        cmocka_unit_test(test_spanish_characters_in_and_out_of_gsm7),
        cmocka_unit_test(test_fold_accented_names),
        cmocka_unit_test(test_fold_keeps_what_gsm7_has),
        cmocka_unit_test(test_fold_punctuation_and_spaces),
        cmocka_unit_test(test_fold_decomposed_accents),
        cmocka_unit_test(test_fold_decomposed_accents_across_dropped_characters),
        cmocka_unit_test(test_fold_leaves_what_has_no_equivalent),
        cmocka_unit_test(test_fold_invalid_utf8),
        cmocka_unit_test(test_fold_result_is_gsm7_for_latin_letters),
        cmocka_unit_test(test_segments_gsm7_limits),
        cmocka_unit_test(test_segments_extension_chars_count_two),
        cmocka_unit_test(test_segments_escape_never_split),
        cmocka_unit_test(test_segments_ucs2_limits),
        cmocka_unit_test(test_one_acute_accent_costs_segments),
        cmocka_unit_test(test_segments_astral_count_two_and_never_split),
        cmocka_unit_test(test_segments_empty_and_null),
        cmocka_unit_test(test_truncate_ascii),
        cmocka_unit_test(test_truncate_on_character_boundary),
        cmocka_unit_test(test_truncate_short_text_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
