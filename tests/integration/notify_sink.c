/*
 * notify_sink.c - stands in for the service manager's end of sd_notify(3)
 * in hub_notify.test.mjs (Node has no AF_UNIX datagram sockets).
 *
 *   notify_sink PATH
 *
 * Binds a datagram socket at PATH (an absolute path, or @name for the
 * abstract namespace), prints "bound", then prints every datagram it
 * receives as one line, its own newlines shown as ';'. Runs until killed
 * or until its standard input closes, so it never outlives the test.
 */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "usage: notify_sink PATH|@NAME (shorter than 108 bytes)\n");
        return 2;
    }
    const char *path = argv[1];
    size_t len = strlen(path);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] != '@'));
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, alen) < 0) {
        perror("notify_sink: bind");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bound\n");
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    char buf[4096];
    for (;;) {
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents) {
            /* The test went away (or closed our input): so do we. */
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0)
                break;
        }
        if (p[0].revents & POLLIN) {
            ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
            if (n < 0)
                continue;
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\n')
                    buf[i] = ';';
            buf[n] = '\0';
            printf("%s\n", buf);
        }
    }
    if (path[0] == '/')
        unlink(path);
    return 0;
}
