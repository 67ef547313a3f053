/*
 * metric.c - the label values of the metric families in struct
 * hub_metrics (hub.h), and the slot each value is counted in.
 */
#include "hub.h"

#include <string.h>

/* Every close code the hub sends (docs/protocol.md) and the ones clients
 * commonly send; any other is counted as "other". */
const uint16_t metric_close_codes[METRIC_CLOSE_CODES - 2] = {
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4008, 4029};

const char *const metric_error_codes[METRIC_ERRORS] = {
    "unauthorized", "bad_request", "forbidden", "rate_limited", "too_large", "internal", "other"};

const char *const metric_fallback_outcomes[METRIC_FALLBACK_OUTCOMES] = {"sent", "failed", "retry",
                                                                        "skipped", "deferred"};

unsigned
metric_close_slot(unsigned code)
{
    if (!code)
        return METRIC_CLOSE_CODES - 1; /* "none" */
    for (unsigned i = 0; i < METRIC_CLOSE_CODES - 2; i++)
        if (metric_close_codes[i] == code)
            return i;
    return METRIC_CLOSE_CODES - 2; /* "other" */
}

unsigned
metric_error_slot(const char *code)
{
    for (unsigned i = 0; i < METRIC_ERRORS - 1; i++)
        if (!strcmp(metric_error_codes[i], code))
            return i;
    return METRIC_ERRORS - 1;
}

unsigned
metric_fallback_slot(const char *outcome)
{
    for (unsigned i = 0; i < METRIC_FALLBACK_OUTCOMES; i++)
        if (!strcmp(metric_fallback_outcomes[i], outcome))
            return i;
    return 1; /* the outcomes fallback.c records are the five above; anything else failed */
}
