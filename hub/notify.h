/*
 * notify.h - the service manager's notification protocol (sd_notify(3)),
 * without libsystemd: one datagram per message to the AF_UNIX socket named
 * by $NOTIFY_SOCKET.
 *
 * Under systemd with Type=notify the hub says READY=1 once it listens and
 * knows its outbox cursor, STOPPING=1 when it starts draining, and, when
 * the unit sets WatchdogSec, WATCHDOG=1 from its event loop at half the
 * interval systemd passes in $WATCHDOG_USEC: a loop that stops turning
 * stops the pings, and systemd restarts the service.
 *
 * Only the process systemd started may talk to it (NotifyAccess=main).
 * With HUB_WORKERS > 1 that is the supervisor: the workers report
 * readiness and loop heartbeats through their slots of the shared table
 * (workers.h) and the supervisor speaks for all of them.
 */
#ifndef HUB_NOTIFY_H
#define HUB_NOTIFY_H

#include <stdint.h>

/*
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, keeps what they
 * say for this process and removes them from the environment, so nothing
 * the hub starts or loads takes them for its own. Call once, early, before
 * any fork. A malformed value turns the part it belongs to off (logged).
 */
void notify_init(void);

/* Whether a service manager listens ($NOTIFY_SOCKET was set and usable). */
int notify_enabled(void);

/* The watchdog interval in milliseconds ($WATCHDOG_USEC, meant for this
 * process), 0 when there is none. Pings are due every half of it. */
int64_t notify_watchdog_ms(void);

/*
 * Sends one message ("READY=1", "WATCHDOG=1", "STATUS=...", several
 * separated by newlines). Returns 0, or a negative errno when it could not
 * be sent (not logged: the caller knows whether it matters); 0 without
 * doing anything when no service manager listens.
 */
int notify_send(const char *msg);

#endif
