/*
 * notify.c - sd_notify(3) spoken directly: a datagram per message on an
 * AF_UNIX socket, the path from $NOTIFY_SOCKET ('@' first: the abstract
 * namespace). See notify.h for what the hub says and when.
 */
#include "notify.h"

#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* What notify_init() read; process-wide, copied into forked workers (which
 * never send: see notify.h). */
static struct sockaddr_un notify_addr; /* the manager's socket */
static socklen_t notify_addr_len;      /* 0: no manager listens */
static int64_t notify_wd_ms;           /* the watchdog interval, 0: none */

/* Parses a decimal unsigned number that fills all of s; -1 if it is not one. */
static long long
notify_number(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    return v;
}

void
notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    notify_addr_len = 0;
    notify_wd_ms = 0;
    if (path && *path) {
        size_t len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path)) {
            log_warn("notify", "NOTIFY_SOCKET: expected an absolute path or an @abstract name "
                               "shorter than 108 bytes: not telling the service manager anything");
        } else {
            memset(&notify_addr, 0, sizeof(notify_addr));
            notify_addr.sun_family = AF_UNIX;
            memcpy(notify_addr.sun_path, path, len);
            if (path[0] == '@')
                notify_addr.sun_path[0] = '\0'; /* abstract: the length says where it ends */
            notify_addr_len =
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
        }
    }
    if (usec && *usec && notify_addr_len) {
        long long us = notify_number(usec);
        long long owner = pid && *pid ? notify_number(pid) : (long long)getpid();
        if (us <= 0)
            log_warn("notify",
                     "WATCHDOG_USEC: expected a positive number of microseconds, got "
                     "'%s': no watchdog pings",
                     usec);
        else if (owner == (long long)getpid())
            notify_wd_ms = us / 1000 > 0 ? us / 1000 : 1;
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int
notify_enabled(void)
{
    return notify_addr_len != 0;
}

int64_t
notify_watchdog_ms(void)
{
    return notify_wd_ms;
}

int
notify_send(const char *msg)
{
    if (!notify_addr_len)
        return 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&notify_addr,
                       notify_addr_len);
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}
