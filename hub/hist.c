/*
 * hist.c - latency histograms (hist.h).
 */
#include "hist.h"

const double hist_bounds_s[HIST_BOUNDS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10,   30};

/* The same bounds in microseconds, for the comparisons. */
static const int64_t bounds_us[HIST_BOUNDS] = {1000,    2500,    5000,     10000,   25000,
                                               50000,   100000,  250000,   500000,  1000000,
                                               2500000, 5000000, 10000000, 30000000};

void
hist_observe(struct hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    unsigned i = 0;
    while (i < HIST_BOUNDS && us > bounds_us[i])
        i++;
    h->bucket[i]++;
    h->sum_us += (uint64_t)us;
    h->count++;
}
