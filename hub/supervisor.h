/*
 * supervisor.h - several worker processes on one port (HUB_WORKERS > 1).
 *
 * The supervisor is a small parent process with no lws, libpq or curl in
 * it: it maps the table the workers share (workers.h), forks the workers
 * before any of those libraries is set up, and then only waits for
 * signals. Each worker runs the whole hub (its own loop, its own database
 * sessions) and opens its own listening socket with SO_REUSEPORT, so the
 * kernel spreads new connections over the workers.
 *
 * A worker that dies is restarted after a delay that doubles from
 * SUP_BACKOFF_MIN_MS to SUP_BACKOFF_MAX_MS while it keeps dying within
 * SUP_EARLY_DEATH_MS of its start; after SUP_EARLY_DEATHS_MAX such deaths
 * in a row the supervisor gives up: it stops the other workers and exits
 * non-zero (2 at once when a worker exits 2: it refused the configuration,
 * as a lone hub would). SIGTERM and SIGINT go to every worker (each drains
 * its clients with 1001) and the supervisor exits once all have: 0 when
 * every worker exited 0. SIGHUP is passed on too.
 *
 * Under a service manager (notify.h) the supervisor is the process it
 * started, so it speaks for the workers: READY=1 once every worker listens
 * and knows its outbox cursor, STOPPING=1 when it stops them, and watchdog
 * pings only while every running worker's loop has turned (its heartbeat
 * in the shared table) within the watchdog interval: one stuck worker
 * stops the pings and the service manager restarts the hub.
 */
#ifndef HUB_SUPERVISOR_H
#define HUB_SUPERVISOR_H

#include <stdint.h>

struct workers;

/* First delay before a dead worker is started again, and the longest. */
#define SUP_BACKOFF_MIN_MS 100
#define SUP_BACKOFF_MAX_MS 5000
/* A worker that dies sooner than this after its start died "at start". */
#define SUP_EARLY_DEATH_MS 2000
/* Deaths at start in a row of one worker after which the supervisor gives up. */
#define SUP_EARLY_DEATHS_MAX 5
/* Beyond the workers' own shutdown deadline, how long the supervisor waits
 * for them before it kills what is left with SIGKILL. */
#define SUP_STOP_GRACE_MS 5000
/* Under a service manager, how often the workers' slots are looked at
 * until every worker is ready. */
#define SUP_READY_POLL_MS 50

/*
 * The restart policy, for one worker that has just died after lived_ms:
 * updates *early_deaths (deaths at start in a row) and returns the delay in
 * milliseconds before the worker is started again, or -1 when the
 * supervisor should give up.
 */
int sup_restart_delay(int *early_deaths, int64_t lived_ms);

/*
 * What a worker runs: the hub, as slot k of the shared table w. Called in
 * the forked child with the signal mask and dispositions of the process
 * before supervisor_run(), SIGHUP ignored; its return value is the
 * worker's exit status.
 */
typedef int (*sup_worker_fn)(int k, struct workers *w, void *ud);

/*
 * Runs n workers until SIGTERM or SIGINT, or until one keeps dying at
 * start; returns the exit status for the supervisor's process (0 after a
 * clean stop). shutdown_timeout_ms is the workers' own drain deadline
 * (HUB_SHUTDOWN_TIMEOUT_MS). Must be called before anything that a forked
 * child must not share (lws, libpq, curl, threads) is created.
 */
int supervisor_run(int n, int shutdown_timeout_ms, sup_worker_fn fn, void *ud);

#endif
