/*
 * hist.h - latency histograms for /metrics, kept as plain counters so that
 * they sum across worker processes like every other counter (workers.h).
 */
#ifndef HUB_HIST_H
#define HUB_HIST_H

#include <stdint.h>

/* Upper bounds of the buckets, in seconds: one set for every histogram,
 * from a socket write on an idle hub (1 ms) to a provider's timeout (30 s). */
#define HIST_BOUNDS 14
extern const double hist_bounds_s[HIST_BOUNDS];

/* One histogram. bucket[i] counts the observations in bucket i alone (not
 * cumulative; /metrics adds them up), bucket[HIST_BOUNDS] those above the
 * last bound. Only uint64_t members: struct hub_metrics is summed word by
 * word. */
struct hist {
    uint64_t bucket[HIST_BOUNDS + 1];
    uint64_t sum_us; /* sum of the observations, microseconds */
    uint64_t count;
};

/* Records one observation of us microseconds (negative counts as 0: two
 * clocks a little apart). */
void hist_observe(struct hist *h, int64_t us);

#endif
