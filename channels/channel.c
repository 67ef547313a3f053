/*
 * channel.c - the names of the fallback channels, as they appear in
 * hub.policies (fallback, always) and in hub.deliveries.channel.
 */
#include "channel.h"

#include <string.h>

static const char *const channel_names[CHANNEL_COUNT] = {
    [CHANNEL_PUSH] = "push",
    [CHANNEL_SMS] = "sms",
    [CHANNEL_EMAIL] = "email",
};

/*
 * Returns the database name of a channel ("push", "sms", "email"), or "?"
 * for a value outside the enum, so a log line never dereferences NULL.
 */
const char *
channel_name(enum channel c)
{
    if ((unsigned)c >= CHANNEL_COUNT)
        return "?";
    return channel_names[c];
}

/*
 * Parses an exact, lower-case channel name as stored in hub.policies.
 * Returns 0 and sets *out, or -1 (leaving *out alone) for NULL or any
 * other text, "ws" included: WebSocket delivery is not a fallback channel.
 */
int
channel_parse(const char *name, enum channel *out)
{
    if (name == NULL || out == NULL)
        return -1;
    for (int i = 0; i < CHANNEL_COUNT; i++) {
        if (strcmp(name, channel_names[i]) == 0) {
            *out = (enum channel)i;
            return 0;
        }
    }
    return -1;
}
