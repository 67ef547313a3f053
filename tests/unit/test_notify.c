/*
 * test_notify.c - unit tests for hub/notify.c, the service manager's
 * notification protocol.
 *
 * What systemd sees: each message arrives as one datagram on the socket
 * $NOTIFY_SOCKET names, a path or an @abstract name; the watchdog
 * interval is taken only when $WATCHDOG_PID names this process; and the
 * variables are gone from the environment afterwards, so nothing the hub
 * starts or loads answers in its name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Binds a datagram socket at path (@ first: abstract) and returns it. */
static int
bind_sink(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    size_t len = strlen(path);
    memcpy(a.sun_path, path, len);
    if (path[0] == '@')
        a.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, alen), 0);
    return fd;
}

/* The next datagram on fd, as a string. */
static void
receive(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
}

static void
setup_env(const char *socket_path, const char *usec, const char *pid)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (socket_path)
        setenv("NOTIFY_SOCKET", socket_path, 1);
    if (usec)
        setenv("WATCHDOG_USEC", usec, 1);
    if (pid)
        setenv("WATCHDOG_PID", pid, 1);
    notify_init();
}

static void
test_messages_arrive_on_a_path(void **state)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/tmp/hub-notify-%d.sock", (int)getpid());
    unlink(path);
    int fd = bind_sink(path);
    setup_env(path, "3000000", NULL);
    assert_true(notify_enabled());
    assert_int_equal(notify_watchdog_ms(), 3000);
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_null(getenv("WATCHDOG_USEC"));
    assert_int_equal(notify_send("READY=1\nSTATUS=up"), 0);
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "READY=1\nSTATUS=up");
    assert_int_equal(notify_send("WATCHDOG=1"), 0);
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "WATCHDOG=1");
    close(fd);
    unlink(path);
}

static void
test_messages_arrive_on_an_abstract_name(void **state)
{
    char name[64], buf[256];
    snprintf(name, sizeof(name), "@hub-notify-test-%d", (int)getpid());
    int fd = bind_sink(name);
    setup_env(name, NULL, NULL);
    assert_true(notify_enabled());
    assert_int_equal(notify_watchdog_ms(), 0);
    assert_int_equal(notify_send("STOPPING=1"), 0);
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "STOPPING=1");
    close(fd);
}

static void
test_the_watchdog_of_another_process_is_not_ours(void **state)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setup_env("@hub-notify-unused", "1000000", pid);
    assert_int_equal(notify_watchdog_ms(), 0);
    assert_null(getenv("WATCHDOG_PID"));
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setup_env("@hub-notify-unused", "1000000", pid);
    assert_int_equal(notify_watchdog_ms(), 1000);
}

static void
test_malformed_values_turn_their_part_off(void **state)
{
    setup_env("relative/path", "1000000", NULL);
    assert_false(notify_enabled());
    assert_int_equal(notify_watchdog_ms(), 0); /* no one to ping */
    setup_env("@hub-notify-unused", "soon", NULL);
    assert_true(notify_enabled());
    assert_int_equal(notify_watchdog_ms(), 0);
    setup_env("@hub-notify-unused", "0", NULL);
    assert_int_equal(notify_watchdog_ms(), 0);
}

static void
test_without_a_manager_sending_is_a_no_op(void **state)
{
    setup_env(NULL, "1000000", NULL);
    assert_false(notify_enabled());
    assert_int_equal(notify_watchdog_ms(), 0);
    assert_int_equal(notify_send("READY=1"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_arrive_on_a_path),
        cmocka_unit_test(test_messages_arrive_on_an_abstract_name),
        cmocka_unit_test(test_the_watchdog_of_another_process_is_not_ours),
        cmocka_unit_test(test_malformed_values_turn_their_part_off),
        cmocka_unit_test(test_without_a_manager_sending_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
