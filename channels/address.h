/*
 * address.h - the checks a contact point (device token, phone number,
 * e-mail address) passes before a provider sees it.
 *
 * Addresses come from the tenants' own tables (hub.audience), typed by
 * users: a value that could smuggle protocol text into a provider request
 * (a CR/LF in an SMTP recipient, a second "<...>" in an address) is refused
 * here, and its delivery row is skipped with the reason these functions
 * return, instead of being sent.
 */
#ifndef CHANNELS_ADDRESS_H
#define CHANNELS_ADDRESS_H

#include "channel.h"

/* Longest e-mail address (RFC 5321 §4.5.3.1.3: a 256-octet path minus "<>"). */
#define ADDRESS_EMAIL_MAX 254
/* Longest local part, before the '@' (RFC 5321 §4.5.3.1.1). */
#define ADDRESS_EMAIL_LOCAL_MAX 64
/* Longest domain label (RFC 1035 §2.3.4). */
#define ADDRESS_DOMAIN_LABEL_MAX 63
/* Digits of an E.164 number after the '+': at least this many... */
#define ADDRESS_PHONE_MIN_DIGITS 8
/* ...and at most this many (ITU-T E.164 §6). */
#define ADDRESS_PHONE_MAX_DIGITS 15
/* Longest device token taken (FCM registration tokens are about 160 characters). */
#define ADDRESS_TOKEN_MAX 4096

/*
 * True for a conservative addr-spec: local@domain, ASCII only (an
 * internationalized domain must come as punycode), at most
 * ADDRESS_EMAIL_MAX characters. The local part is a dot-atom of printable
 * characters other than space, quotes and ()<>[]\,;:@; the domain has at
 * least two dot-separated labels of letters, digits and inner hyphens.
 */
int address_email_ok(const char *s);

/* True for a strict E.164 number: '+', a non-zero digit, 8 to 15 digits in all. */
int address_phone_ok(const char *s);

/* True for a device token of 1 to ADDRESS_TOKEN_MAX characters from [A-Za-z0-9_:.-]. */
int address_token_ok(const char *s);

/*
 * Checks addr for channel ch. Returns NULL when it may be sent to, or the
 * detail to store on the skipped row ("invalid e-mail address", "invalid
 * phone number (expected E.164, e.g. +573001234567)", "invalid device
 * token"). The text never contains the address itself.
 */
const char *address_check(enum channel ch, const char *addr);

#endif
