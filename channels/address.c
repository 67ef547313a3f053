/*
 * address.c - checks on contact points before they reach a provider (see
 * address.h). Pure functions over ASCII: no locale, no allocation.
 */
#include "address.h"

#include <string.h>

static int
is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A character of an unquoted local part: printable ASCII minus specials. */
static int
is_local_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"()<>[]\\,;:@", c);
}

/*
 * True when s[0..n) is a domain of at least two labels, each 1 to
 * ADDRESS_DOMAIN_LABEL_MAX letters, digits and hyphens, not starting or
 * ending with a hyphen.
 */
static int
domain_ok(const char *s, size_t n)
{
    size_t label = 0, labels = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || s[i - 1] == '-' || s[i - label] == '-')
                return 0;
            labels++;
            label = 0;
            continue;
        }
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
        if (++label > ADDRESS_DOMAIN_LABEL_MAX)
            return 0;
    }
    return labels >= 2;
}

int
address_email_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, ADDRESS_EMAIL_MAX + 1);
    if (n == 0 || n > ADDRESS_EMAIL_MAX)
        return 0;
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@'))
        return 0;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > ADDRESS_EMAIL_LOCAL_MAX)
        return 0;
    /* dot-atom: no leading, trailing or doubled dot */
    if (s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        if (!is_local_char((unsigned char)s[i]))
            return 0;
        if (s[i] == '.' && s[i + 1] == '.')
            return 0;
    }
    return domain_ok(at + 1, n - local - 1);
}

int
address_phone_ok(const char *s)
{
    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    size_t digits = 0;
    for (const char *p = s + 1; *p; p++) {
        if (*p < '0' || *p > '9' || ++digits > ADDRESS_PHONE_MAX_DIGITS)
            return 0;
    }
    return digits >= ADDRESS_PHONE_MIN_DIGITS;
}

int
address_token_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!is_alnum(*p) && !strchr("_:.-", *p))
            return 0;
        if (++n > ADDRESS_TOKEN_MAX)
            return 0;
    }
    return n > 0;
}

const char *
address_check(enum channel ch, const char *addr)
{
    switch (ch) {
    case CHANNEL_PUSH:
        return address_token_ok(addr) ? NULL : "invalid device token";
    case CHANNEL_SMS:
        return address_phone_ok(addr) ? NULL
                                      : "invalid phone number (expected E.164, e.g. +573001234567)";
    case CHANNEL_EMAIL:
        return address_email_ok(addr) ? NULL : "invalid e-mail address";
    }
    return "unknown channel";
}
