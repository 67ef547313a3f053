/*
 * b64url.h - base64url without padding (RFC 4648 section 5): the text form
 * of JWT parts, used by the hub's token check and the FCM channel's own
 * token.
 */
#ifndef COMMON_B64URL_H
#define COMMON_B64URL_H

#include <stddef.h>

/*
 * Strict base64url decoding (RFC 4648 §5, no padding). Returns the number
 * of bytes written to out (which must hold at least len * 3 / 4 + 1
 * bytes), or -1 for malformed input.
 */
long b64url_decode(const char *in, size_t len, unsigned char *out);

/* Base64url encoding without padding; out must hold len * 4 / 3 + 4 bytes.
 * Returns the number of characters written (NUL-terminated). */
size_t b64url_encode(const void *in, size_t len, char *out);

#endif
