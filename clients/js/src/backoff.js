// backoff.js - how long to wait before the next reconnection attempt.
//
// Exponential backoff with full jitter: attempt n (1 for the first retry)
// waits a uniformly random time in [0, min(cap, initial * 2^(n-1))). Full
// jitter spreads a crowd of clients that lost the same hub over the whole
// window instead of bunching them at its end, which is what keeps a
// restarted hub from being hit by every console at the same instant.

/** Defaults of the reconnection schedule, in milliseconds. */
export const BACKOFF_DEFAULTS = Object.freeze({
  initialMs: 500, // the first retry waits up to this
  capMs: 30_000, // no retry waits longer than this
  stableMs: 10_000, // a connection open this long resets the attempt count
});

/**
 * The upper bound of the wait before attempt `attempt` (1-based):
 * min(capMs, initialMs * 2^(attempt-1)).
 */
export function backoffCeiling(attempt, { initialMs = BACKOFF_DEFAULTS.initialMs, capMs = BACKOFF_DEFAULTS.capMs } = {}) {
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n-1) overflows to Infinity for large n, which min() turns into capMs.
  return Math.min(capMs, initialMs * 2 ** (n - 1));
}

/**
 * The wait before attempt `attempt`, in whole milliseconds: random() times
 * the ceiling (random() returns a number in [0, 1), like Math.random).
 */
export function backoffDelay(attempt, random = Math.random, opts = {}) {
  return Math.floor(random() * backoffCeiling(attempt, opts));
}
