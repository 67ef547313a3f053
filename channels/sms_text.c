/*
 * sms_text.c - GSM 03.38 (3GPP TS 23.038) alphabet checks, folding of
 * user text into it, segment counting and truncation for SMS bodies.
 *
 * The GSM 7-bit default alphabet, checked against the 3GPP TS 23.038
 * tables (basic table and its extension table, no national shift tables):
 * besides ASCII letters, digits and most punctuation, the basic table has
 * £ ¥ è é ù ì ò Ç Ø ø Å å Æ æ ß É ¤ ¡ Ä Ö Ñ Ü § ¿ ä ö ñ ü à, ten Greek
 * capitals and LF and CR. Note for Spanish text: é, ñ, ü, ¡ and ¿ ARE in
 * the basic table (¿ at 0x60, ¡ at 0x40), but á, í, ó, ú and every
 * accented capital except É and the umlauts are NOT, so "Gómez" needs
 * folding while "¿Autoriza?" does not. The grave accent ` is not in
 * GSM-7 either (0x60 is ¿). The extension table adds, at two septets
 * each, ^ { } \ [ ~ ] | € and form feed. The basic table's 0x09 is
 * drawn as a capital C-cedilla in the standard and mapped to U+00C7 by
 * the Unicode consortium's GSM0338 mapping (whose notes say the intent
 * was the small letter); ç is therefore folded to Ç, the one code point
 * for both.
 */
#include "sms_text.h"

#include <stdlib.h>
#include <string.h>

/* What utf8_next() reports for a byte that does not start a valid sequence. */
#define CP_INVALID 0xFFFFFFFFu

/*
 * Decodes the code point at s into *cp and returns its length in bytes,
 * or 0 at the terminating NUL. Overlong forms, surrogates and values past
 * U+10FFFF are invalid: such a byte reports CP_INVALID with length 1. The
 * NUL terminator is never a continuation byte, so reading stops there.
 */
static size_t
utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];

    if (c == 0)
        return 0;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF && (s[1] & 0xC0) == 0x80) {
        *cp = (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : 0xBF;
        if (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) {
            *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
            return 3;
        }
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
        if (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
                  (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
            return 4;
        }
    }
    *cp = CP_INVALID;
    return 1;
}

/* The non-ASCII code points of the GSM-7 basic table, in ascending order. */
static const uint16_t gsm7_basic_latin1_greek[] = {
    0x00A1, /* ¡ */ 0x00A3, /* £ */ 0x00A4, /* ¤ */ 0x00A5, /* ¥ */ 0x00A7, /* § */
    0x00BF, /* ¿ */ 0x00C4, /* Ä */ 0x00C5, /* Å */ 0x00C6, /* Æ */ 0x00C7, /* Ç */
    0x00C9, /* É */ 0x00D1, /* Ñ */ 0x00D6, /* Ö */ 0x00D8, /* Ø */ 0x00DC, /* Ü */
    0x00DF, /* ß */ 0x00E0, /* à */ 0x00E4, /* ä */ 0x00E5, /* å */ 0x00E6, /* æ */
    0x00E8, /* è */ 0x00E9, /* é */ 0x00EC, /* ì */ 0x00F1, /* ñ */ 0x00F2, /* ò */
    0x00F6, /* ö */ 0x00F8, /* ø */ 0x00F9, /* ù */ 0x00FC, /* ü */ 0x0393, /* Γ */
    0x0394, /* Δ */ 0x0398, /* Θ */ 0x039B, /* Λ */ 0x039E, /* Ξ */ 0x03A0, /* Π */
    0x03A3, /* Σ */ 0x03A6, /* Φ */ 0x03A8, /* Ψ */ 0x03A9,                 /* Ω */
};

/* ASCII is decided by range, the rest by the sorted table above. */
int
sms_gsm7_septets(uint32_t cp)
{
    if (cp < 0x80) {
        if (cp == '\n' || cp == '\r')
            return 1;
        if (cp == '\f')
            return 2;
        if (cp < 0x20 || cp == '`' || cp == 0x7F)
            return 0;
        if (strchr("^{}\\[~]|", (int)cp) != NULL)
            return 2;
        return 1;
    }
    if (cp == 0x20AC) /* € */
        return 2;
    for (size_t i = 0; i < sizeof(gsm7_basic_latin1_greek) / sizeof(gsm7_basic_latin1_greek[0]);
         i++) {
        if (gsm7_basic_latin1_greek[i] == cp)
            return 1;
        if (gsm7_basic_latin1_greek[i] > cp)
            break;
    }
    return 0;
}

/* A character outside GSM-7 and the GSM-7 text that stands for it ("" drops it). */
struct fold {
    uint32_t cp;
    const char *to;
};

/* Sorted by code point: fold_lookup() searches it by bisection. */
static const struct fold folds[] = {
    {0x0009, " "},        /* tab */
    {0x0060, "'"},        /* grave accent, not in GSM-7 */
    {0x00A0, " "},        /* no-break space */
    {0x00AA, "a"},        /* feminine ordinal ª */
    {0x00AB, "\""},       /* « */
    {0x00AD, ""},         /* soft hyphen, invisible */
    {0x00B4, "'"},        /* acute accent */
    {0x00BA, "o"},        /* masculine ordinal º */
    {0x00BB, "\""},       /* » */
    {0x00C0, "A"},        /* À */
    {0x00C1, "A"},        /* Á */
    {0x00C2, "A"},        /* Â */
    {0x00C3, "A"},        /* Ã */
    {0x00C8, "E"},        /* È */
    {0x00CA, "E"},        /* Ê */
    {0x00CB, "E"},        /* Ë */
    {0x00CC, "I"},        /* Ì */
    {0x00CD, "I"},        /* Í */
    {0x00CE, "I"},        /* Î */
    {0x00CF, "I"},        /* Ï */
    {0x00D2, "O"},        /* Ò */
    {0x00D3, "O"},        /* Ó */
    {0x00D4, "O"},        /* Ô */
    {0x00D5, "O"},        /* Õ */
    {0x00D9, "U"},        /* Ù */
    {0x00DA, "U"},        /* Ú */
    {0x00DB, "U"},        /* Û */
    {0x00DD, "Y"},        /* Ý */
    {0x00E1, "a"},        /* á */
    {0x00E2, "a"},        /* â */
    {0x00E3, "a"},        /* ã */
    {0x00E7, "\xC3\x87"}, /* ç → Ç, see the note at the top of the file */
    {0x00EA, "e"},        /* ê */
    {0x00EB, "e"},        /* ë */
    {0x00ED, "i"},        /* í */
    {0x00EE, "i"},        /* î */
    {0x00EF, "i"},        /* ï */
    {0x00F3, "o"},        /* ó */
    {0x00F4, "o"},        /* ô */
    {0x00F5, "o"},        /* õ */
    {0x00FA, "u"},        /* ú */
    {0x00FB, "u"},        /* û */
    {0x00FD, "y"},        /* ý */
    {0x00FF, "y"},        /* ÿ */
    {0x2002, " "},        /* en space */
    {0x2003, " "},        /* em space */
    {0x2004, " "},        /* three-per-em space */
    {0x2005, " "},        /* four-per-em space */
    {0x2006, " "},        /* six-per-em space */
    {0x2007, " "},        /* figure space */
    {0x2008, " "},        /* punctuation space */
    {0x2009, " "},        /* thin space */
    {0x200A, " "},        /* hair space */
    {0x200B, ""},         /* zero-width space */
    {0x2010, "-"},        /* hyphen */
    {0x2011, "-"},        /* non-breaking hyphen */
    {0x2012, "-"},        /* figure dash */
    {0x2013, "-"},        /* en dash */
    {0x2014, "-"},        /* em dash */
    {0x2015, "-"},        /* horizontal bar */
    {0x2018, "'"},        /* ‘ */
    {0x2019, "'"},        /* ’ */
    {0x201A, "'"},        /* ‚ */
    {0x201B, "'"},        /* ‛ */
    {0x201C, "\""},       /* “ */
    {0x201D, "\""},       /* ” */
    {0x201E, "\""},       /* „ */
    {0x201F, "\""},       /* ‟ */
    {0x2026, "..."},      /* … */
    {0x202F, " "},        /* narrow no-break space */
    {0x2032, "'"},        /* prime */
    {0x2033, "\""},       /* double prime */
    {0x2212, "-"},        /* minus sign */
    {0xFEFF, ""},         /* zero-width no-break space (byte order mark) */
};

/* Returns the replacement for cp, or NULL when it has none. */
static const char *
fold_lookup(uint32_t cp)
{
    size_t lo = 0, hi = sizeof(folds) / sizeof(folds[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (folds[mid].cp == cp)
            return folds[mid].to;
        if (folds[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A letter followed by a combining mark that together make a GSM-7 character. */
struct compose {
    char base;
    uint16_t mark;
    const char *to;
};

static const struct compose composes[] = {
    {'a', 0x0300, "\xC3\xA0"}, /* à */
    {'e', 0x0300, "\xC3\xA8"}, /* è */
    {'i', 0x0300, "\xC3\xAC"}, /* ì */
    {'o', 0x0300, "\xC3\xB2"}, /* ò */
    {'u', 0x0300, "\xC3\xB9"}, /* ù */
    {'e', 0x0301, "\xC3\xA9"}, /* é */
    {'E', 0x0301, "\xC3\x89"}, /* É */
    {'n', 0x0303, "\xC3\xB1"}, /* ñ */
    {'N', 0x0303, "\xC3\x91"}, /* Ñ */
    {'a', 0x0308, "\xC3\xA4"}, /* ä */
    {'o', 0x0308, "\xC3\xB6"}, /* ö */
    {'u', 0x0308, "\xC3\xBC"}, /* ü */
    {'A', 0x0308, "\xC3\x84"}, /* Ä */
    {'O', 0x0308, "\xC3\x96"}, /* Ö */
    {'U', 0x0308, "\xC3\x9C"}, /* Ü */
    {'a', 0x030A, "\xC3\xA5"}, /* å */
    {'A', 0x030A, "\xC3\x85"}, /* Å */
    {'c', 0x0327, "\xC3\x87"}, /* ç → Ç */
    {'C', 0x0327, "\xC3\x87"}, /* Ç */
};

/* Returns the GSM-7 character that base + mark compose to, or NULL. */
static const char *
compose_lookup(char base, uint32_t mark)
{
    for (size_t i = 0; i < sizeof(composes) / sizeof(composes[0]); i++) {
        if (composes[i].base == base && composes[i].mark == mark)
            return composes[i].to;
    }
    return NULL;
}

static int
is_ascii_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Every replacement is at most as long as what it replaces: one- to
 * three-byte characters become at most three ASCII bytes ("..." replaces
 * the three-byte ellipsis), two-byte letters become one or two bytes, and
 * a composed letter (two bytes) replaces an ASCII letter plus a two-byte
 * combining mark. So the output fits in strlen(utf8) + 1 bytes.
 */
char *
sms_gsm7_fold(const char *utf8)
{
    const unsigned char *s = (const unsigned char *)utf8;
    char *out;
    size_t o = 0, n;
    uint32_t cp;
    /* Set while the last character written is a Latin letter whose
     * combining marks are composed into it or dropped. */
    int latin_base = 0;

    if (utf8 == NULL)
        return NULL;
    out = malloc(strlen(utf8) + 1);
    if (out == NULL)
        return NULL;
    while ((n = utf8_next(s, &cp)) > 0) {
        const char *to;

        if (cp >= 0x0300 && cp <= 0x036F && latin_base) {
            to = o > 0 && is_ascii_letter(out[o - 1]) ? compose_lookup(out[o - 1], cp) : NULL;
            if (to != NULL) {
                o--;
                memcpy(out + o, to, strlen(to));
                o += strlen(to);
            }
            s += n;
            continue;
        }
        if (cp == CP_INVALID) {
            out[o++] = '?';
            latin_base = 0;
        } else if (sms_gsm7_septets(cp) == 0 && (to = fold_lookup(cp)) != NULL) {
            memcpy(out + o, to, strlen(to));
            o += strlen(to);
            /* A dropped character (soft hyphen, zero-width space) leaves the
             * letter before it as the base of the marks that follow. */
            if (to[0] != '\0')
                latin_base = strlen(to) == 1 && is_ascii_letter(to[0]);
        } else {
            memcpy(out + o, s, n);
            o += n;
            latin_base = n == 1 && is_ascii_letter((char)cp);
        }
        s += n;
    }
    out[o] = '\0';
    return out;
}

/*
 * Packs characters of the given costs (1 or 2 units) into segments of
 * per_segment units without splitting a two-unit character, and returns
 * how many segments that takes. Called only for text longer than one
 * single-segment message.
 */
static int
pack_segments(const unsigned char *s, int ucs2, size_t per_segment)
{
    size_t used = 0, n;
    uint32_t cp;
    int segments = 1;

    while ((n = utf8_next(s, &cp)) > 0) {
        size_t cost;
        if (ucs2)
            cost = cp != CP_INVALID && cp > 0xFFFF ? 2 : 1;
        else
            cost = (size_t)sms_gsm7_septets(cp);
        if (used + cost > per_segment) {
            segments++;
            used = 0;
        }
        used += cost;
        s += n;
    }
    return segments;
}

/* One pass counts both alphabets; only long texts take a second, packing pass. */
int
sms_segments(const char *utf8, int *is_ucs2, size_t *units)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t septets = 0, u16 = 0, n;
    uint32_t cp;
    int gsm = 1;

    if (utf8 == NULL)
        return -1;
    while ((n = utf8_next(s, &cp)) > 0) {
        int sep = cp == CP_INVALID ? 0 : sms_gsm7_septets(cp);
        if (sep == 0)
            gsm = 0;
        septets += (size_t)sep;
        u16 += cp != CP_INVALID && cp > 0xFFFF ? 2 : 1;
        s += n;
    }
    if (is_ucs2 != NULL)
        *is_ucs2 = !gsm;
    if (units != NULL)
        *units = gsm ? septets : u16;
    if (gsm) {
        if (septets == 0)
            return 0;
        if (septets <= SMS_GSM7_SINGLE)
            return 1;
        return pack_segments((const unsigned char *)utf8, 0, SMS_GSM7_SEGMENT);
    }
    if (u16 <= SMS_UCS2_SINGLE)
        return 1;
    return pack_segments((const unsigned char *)utf8, 1, SMS_UCS2_SEGMENT);
}

/* Walks whole characters and cuts before the first that would not fit. */
size_t
sms_truncate(char *utf8, size_t max_chars)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t chars = 0, off = 0, n;
    uint32_t cp;

    while ((n = utf8_next(s + off, &cp)) > 0) {
        size_t cost = cp != CP_INVALID && cp > 0xFFFF ? 2 : 1;
        if (chars + cost > max_chars) {
            utf8[off] = '\0';
            return off;
        }
        chars += cost;
        off += n;
    }
    return off;
}
