/*
 * fuzz_address.c - contact points typed by users into the tenants' tables
 * (hub.audience): a device token, a phone number or an e-mail address,
 * read by address_token_ok(), address_phone_ok(), address_email_ok() and
 * address_check() before a provider request is built from them.
 *
 * Input: the first byte picks the channel (modulo 4: push, sms, email, or
 * a value outside enum channel), the rest is the address (a C string: the
 * functions read it up to its first NUL).
 *
 * Checks: each *_ok() answers as address.h's rule, written out again here;
 * whatever is accepted can go into a protocol line (no byte <= ' ' or
 * >= 0x7f); address_check() returns NULL exactly when the channel's check
 * accepts, and otherwise its fixed detail, never text made from the address.
 */
#include "address.h"
#include "fuzz.h"

static int
alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* address.h: 1..ADDRESS_TOKEN_MAX characters of [A-Za-z0-9_:.-]. */
static int
token_rule(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > ADDRESS_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!alnum((unsigned char)s[i]) && !strchr("_:.-", s[i]))
            return 0;
    return 1;
}

/* address.h: '+', a digit 1-9, then digits, 8..15 digits in all. */
static int
phone_rule(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 + ADDRESS_PHONE_MIN_DIGITS || n > 1 + ADDRESS_PHONE_MAX_DIGITS || s[0] != '+' ||
        s[1] == '0')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* A label: 1..ADDRESS_DOMAIN_LABEL_MAX letters, digits, inner hyphens. */
static int
label_rule(const char *s, size_t n)
{
    if (n < 1 || n > ADDRESS_DOMAIN_LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!alnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/*
 * address.h: local@domain within ADDRESS_EMAIL_MAX; the local part 1..64
 * printable ASCII other than space and "()<>[]\,;:@, no leading, trailing
 * or doubled dot; the domain two or more labels.
 */
static int
email_rule(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n > ADDRESS_EMAIL_MAX || !at || strchr(at + 1, '@'))
        return 0;
    size_t local = (size_t)(at - s);
    if (local < 1 || local > ADDRESS_EMAIL_LOCAL_MAX || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("\"()<>[]\\,;:@", c))
            return 0;
        if (c == '.' && s[i + 1] == '.')
            return 0;
    }
    const char *d = at + 1;
    size_t labels = 0;
    for (;;) {
        const char *dot = strchr(d, '.');
        size_t len = dot ? (size_t)(dot - d) : strlen(d);
        if (!label_rule(d, len))
            return 0;
        labels++;
        if (!dot)
            break;
        d = dot + 1;
    }
    return labels >= 2;
}

/* Whether every byte of s could sit in an SMTP command or a URL unescaped. */
static int
printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    static const char *const detail[] = {
        "invalid device token",
        "invalid phone number (expected E.164, e.g. +573001234567)",
        "invalid e-mail address",
        "unknown channel",
    };
    uint8_t which = fuzz_byte(&in) % 4;
    char *addr = fuzz_rest(&in, NULL);
    int ok[3];

    ok[CHANNEL_PUSH] = address_token_ok(addr);
    ok[CHANNEL_SMS] = address_phone_ok(addr);
    ok[CHANNEL_EMAIL] = address_email_ok(addr);
    FUZZ_CHECK(ok[CHANNEL_PUSH] == token_rule(addr));
    FUZZ_CHECK(ok[CHANNEL_SMS] == phone_rule(addr));
    FUZZ_CHECK(ok[CHANNEL_EMAIL] == email_rule(addr));
    for (int c = 0; c < 3; c++)
        FUZZ_CHECK(!ok[c] || printable(addr));
    if (ok[CHANNEL_EMAIL]) {
        const char *at = strchr(addr, '@');
        FUZZ_CHECK(at != NULL && strchr(at + 1, '@') == NULL);
        FUZZ_CHECK(strlen(addr) <= ADDRESS_EMAIL_MAX && strpbrk(addr, "()<>[]\\,;:\"") == NULL);
    }

    const char *why = address_check((enum channel)which, addr);
    if (which < 3)
        FUZZ_CHECK((why == NULL) == (ok[which] != 0));
    if (why != NULL)
        FUZZ_CHECK(strcmp(why, detail[which]) == 0);
    else
        FUZZ_CHECK(which < 3);

    FUZZ_CHECK(!address_token_ok(NULL) && !address_phone_ok(NULL) && !address_email_ok(NULL));
    free(addr);
    return 0;
}
