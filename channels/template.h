/*
 * template.h - the words of a notification: one event rendered for one
 * recipient, in the recipient's language, for one fallback channel.
 *
 * Spanish as spoken in Colombia (es-CO) is the default; English is used
 * for locales "en" and "en-*" (or "en_*"). Push and e-mail text keep their
 * accents ("Alerta de pánico", "portería"). SMS text is folded into the
 * GSM 7-bit alphabet after substitution (see sms_text.h), so an accented
 * name never turns a panic SMS into UCS-2, and is cut to Twilio's 1600
 * characters. Missing or malformed data fields leave their part of the
 * sentence out rather than printing "(null)".
 */
#ifndef CHANNELS_TEMPLATE_H
#define CHANNELS_TEMPLATE_H

#include <jansson.h>

#include "channel.h"

/* Longest text taken from a one-line data field (names, unit ids), in characters. */
#define TEMPLATE_MAX_FIELD_CHARS 120
/* Longest text taken from a free-text field (panic message, announcement body). */
#define TEMPLATE_MAX_TEXT_CHARS 10000

/* One rendered notification. Every string is owned by the struct; release
 * it with template_free(). */
struct rendered {
    char *title; /* push title / e-mail subject; one line, never NULL after success */
    char *body;  /* push body / SMS text / e-mail plain-text part; never NULL after success */
    char *html;  /* e-mail HTML part with every substituted value escaped; NULL for push and SMS */
};

/*
 * Renders event kind with its data (a JSON object, may be NULL) for
 * channel ch in locale (NULL means es-CO) into *out. Known kinds: panic
 * (unitId, userName, message), visitor (unitId, name), payment (amount,
 * currency, status), announcement (title, body) and panic_claimed
 * (guardId, optional unitId); any other kind, NULL included, gets a
 * generic "Nueva notificación: <kind>". String and number fields are
 * accepted; control characters in them become spaces (newlines survive in
 * the free-text fields). Returns 0, or -1 when out is NULL, ch is not a
 * channel, or memory runs out; on failure *out holds no allocation.
 */
int template_render(const char *kind, const char *locale, json_t *data, enum channel ch,
                    struct rendered *out);

/* Frees the strings of r and zeroes it; r may be zeroed already or NULL. */
void template_free(struct rendered *r);

#endif
