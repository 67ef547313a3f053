/*
 * sms_text.h - the text of an SMS as the network sees it: which alphabet
 * it travels in, how many billed segments it takes, and how to keep it
 * within both.
 *
 * An SMS travels in the GSM 7-bit default alphabet (3GPP TS 23.038, "GSM
 * 03.38") when every character is in its basic table or its extension
 * table, and in UCS-2 otherwise. One character outside GSM-7 turns the
 * whole message into UCS-2, which cuts a segment from 160 characters to
 * 70, so the SMS templates stay inside GSM-7 and user data is folded into
 * it (sms_gsm7_fold) before it is substituted.
 *
 * All functions take NUL-terminated UTF-8. Invalid UTF-8 never crashes
 * them: each invalid byte counts as one character outside GSM-7.
 */
#ifndef CHANNELS_SMS_TEXT_H
#define CHANNELS_SMS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Twilio's limit on the Body parameter, in characters. */
#define SMS_MAX_CHARS 1600

/* Septets in a single GSM-7 message, and per segment of a concatenated one
 * (the user data header takes the other 7). */
#define SMS_GSM7_SINGLE 160
#define SMS_GSM7_SEGMENT 153
/* UTF-16 code units in a single UCS-2 message, and per concatenated segment. */
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_SEGMENT 67

/*
 * Returns how many septets code point cp takes in GSM-7: 1 for the basic
 * table, 2 for the extension table (escape plus the character: ^ { } \ [
 * ~ ] | € and form feed), or 0 when it is not representable at all.
 */
int sms_gsm7_septets(uint32_t cp);

/*
 * Returns a new string, owned by the caller (free()), in which every
 * character that is not in GSM-7 but has a close GSM-7 equivalent is
 * replaced by it: accented vowels lose the accent GSM-7 lacks (á → a,
 * Í → I, ô → o; é, è, à, ü, ñ... are kept since GSM-7 has them), ç
 * becomes Ç, curly quotes and guillemets become straight quotes, dashes
 * become '-', the ellipsis becomes "...", no-break and other typographic
 * spaces and the tab become a space, invisible soft hyphens and zero-width
 * spaces are dropped, and decomposed accents (a letter followed by a
 * combining mark) are composed or dropped the same way. Characters
 * without an equivalent (emoji, other scripts) are left as they are, so
 * such a message still goes out, as UCS-2. Invalid UTF-8 bytes become '?'.
 * The result is never longer than the input. Returns NULL when utf8 is
 * NULL or memory runs out.
 */
char *sms_gsm7_fold(const char *utf8);

/*
 * Counts the billed segments of utf8. Sets *is_ucs2 to 1 when the text
 * needs UCS-2, else 0, and *units to its length in the units that
 * alphabet counts: septets for GSM-7 (extension characters count 2),
 * UTF-16 code units for UCS-2 (characters beyond the BMP count 2). Either
 * pointer may be NULL. A message fits one segment up to 160 septets or 70
 * units; longer ones are split into segments of 153 septets or 67 units,
 * and, as handsets and carriers do, an escape sequence or surrogate pair
 * is never split across two segments, so the count can exceed
 * ceil(n / 153) by one in rare cases. Returns the number of segments (0
 * for the empty string), or -1 when utf8 is NULL.
 */
int sms_segments(const char *utf8, int *is_ucs2, size_t *units);

/*
 * Cuts utf8 in place after at most max_chars characters, always on a
 * UTF-8 character boundary. Characters are counted as UTF-16 code units
 * (a character beyond the BMP counts 2), which is never fewer than what a
 * provider counts. Returns the resulting length in bytes; text that
 * already fits is left untouched. utf8 must not be NULL.
 */
size_t sms_truncate(char *utf8, size_t max_chars);

#endif
