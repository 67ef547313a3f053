/*
 * test_smtp.c - unit tests for channels/smtp.c (included, to reach its
 * static functions): the message as it crosses the wire to a relay, and
 * when the login may go without TLS.
 *
 * The message goes to a minimal SMTP relay in a thread of this test, which
 * keeps the DATA exactly as received. libcurl dot-stuffs an SMTP upload
 * itself, so a body line's leading dot must be doubled once on the wire,
 * never twice (a second stuffing is what made ".x" arrive as "..x"); and
 * no header may carry a line break the recipient did not write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../channels/smtp.c"

/* The relay: one connection, every command accepted, the DATA kept. */
struct relay {
    int lfd;  /* listening socket on loopback */
    int port; /* its port */
    pthread_t thread;
    char data[8192]; /* the DATA as received, dot-stuffing and all, up to "\r\n.\r\n" */
    size_t len;
};

/* Reads one CRLF-terminated line into line (at most size - 1 bytes); returns its length or -1. */
static int
read_line(int fd, char *line, size_t size)
{
    size_t n = 0;
    char c;
    while (n + 1 < size && read(fd, &c, 1) == 1) {
        line[n++] = c;
        if (c == '\n')
            break;
    }
    line[n] = '\0';
    return n ? (int)n : -1;
}

static void
reply(int fd, const char *text)
{
    if (write(fd, text, strlen(text)) < 0)
        return;
}

static void *
relay_serve(void *arg)
{
    struct relay *r = arg;
    int fd = accept(r->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char line[1024];
    reply(fd, "220 relay.test ESMTP\r\n");
    while (read_line(fd, line, sizeof(line)) > 0) {
        if (!strncasecmp(line, "EHLO", 4)) {
            reply(fd, "250 relay.test\r\n");
        } else if (!strncasecmp(line, "DATA", 4)) {
            reply(fd, "354 go ahead\r\n");
            int n;
            while ((n = read_line(fd, line, sizeof(line))) > 0 && strcmp(line, ".\r\n")) {
                if (r->len + (size_t)n < sizeof(r->data)) {
                    memcpy(r->data + r->len, line, (size_t)n);
                    r->len += (size_t)n;
                }
            }
            reply(fd, "250 2.0.0 Ok: queued as 1\r\n");
        } else if (!strncasecmp(line, "QUIT", 4)) {
            reply(fd, "221 bye\r\n");
            break;
        } else {
            reply(fd, "250 ok\r\n");
        }
    }
    close(fd);
    return NULL;
}

/* Sends m through a fresh relay with curl_easy_perform(); returns what it received. */
static const char *
send_through_relay(struct relay *r, const struct message *m)
{
    memset(r, 0, sizeof(*r));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(r->lfd >= 0);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sa, &salen), 0);
    assert_int_equal(listen(r->lfd, 1), 0);
    r->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&r->thread, NULL, relay_serve, r), 0);

    char url[64];
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", r->port);
    struct smtp s = {
        .url = url,
        .from = "notificaciones@armonia.test",
        .from_hdr = "notificaciones@armonia.test",
        .use_ssl = CURLUSESSL_TRY,
    };
    struct smtp_req *q = calloc(1, sizeof(*q));
    CURL *easy = curl_easy_init();
    assert_non_null(q);
    assert_non_null(easy);
    assert_int_equal(smtp_prepare(&s, m, easy, q), 0);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(easy), CURLE_OK);
    curl_easy_cleanup(easy);
    smtp_req_free(q);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    r->data[r->len] = '\0';
    return r->data;
}

static void
test_body_dots_stuffed_once(void **state)
{
    static struct relay r;
    struct message m = {
        .to = "ana@demo.co", .title = "Puntos", .body = ".x\n.\n..x\nfin", .event_id = "7"};
    const char *wire = send_through_relay(&r, &m);
    /* On the wire each leading dot is doubled once; the relay removes one. */
    assert_non_null(strstr(wire, "\r\n\r\n..x\r\n..\r\n...x\r\nfin\r\n"));
    assert_null(strstr(wire, "\r\n...x\r\n...\r\n"));
    assert_null(strstr(wire, "\r\n....x\r\n"));
}

static void
test_headers_and_parts(void **state)
{
    static struct relay r;
    struct message m = {.to = "ana@demo.co",
                        .title = "Pago aprobado",
                        .body = "Hola\nAdiós",
                        .html = "<p>Hola</p>",
                        .event_id = "42"};
    const char *wire = send_through_relay(&r, &m);
    assert_non_null(strstr(wire, "\r\nTo: ana@demo.co\r\n"));
    assert_non_null(strstr(wire, "\r\nFrom: notificaciones@armonia.test\r\n"));
    assert_non_null(strstr(wire, "\r\nSubject: Pago aprobado\r\n"));
    assert_non_null(strstr(wire, "\r\nMessage-ID: <42."));
    assert_non_null(strstr(wire, "@armonia.test>\r\n"));
    assert_non_null(strstr(wire, "\r\nDate: "));
    assert_non_null(strstr(wire, "\r\nMIME-Version: 1.0\r\n"));
    assert_null(strstr(wire, "Mime-Version"));
    /* The message is multipart/alternative at the top; no second Content-Type there. */
    const char *top = strstr(wire, "Content-Type: multipart/alternative; boundary=");
    assert_non_null(top);
    assert_null(strstr(wire, "Content-Type: multipart/mixed"));
    assert_null(strstr(top + 1, "Content-Type: multipart/"));
    const char *plain = strstr(wire, "Content-Type: text/plain; charset=UTF-8\r\n");
    const char *html = strstr(wire, "Content-Type: text/html; charset=UTF-8\r\n");
    assert_non_null(plain);
    assert_non_null(html);
    assert_true(plain < html);
    assert_non_null(strstr(plain, "Content-Transfer-Encoding: 8bit\r\n"));
    assert_non_null(strstr(plain, "\r\n\r\nHola\r\nAdiós\r\n"));
    assert_non_null(strstr(html, "\r\n\r\n<p>Hola</p>\r\n"));
}

static void
test_subject_encoded_never_broken(void **state)
{
    static struct relay r;
    /* UTF-8 becomes one RFC 2047 word; a line break cannot start a header. */
    struct message m = {.to = "ana@demo.co",
                        .title = "Corte de agua mañana\r\nBcc: x@evil.test",
                        .body = "b",
                        .event_id = "9"};
    const char *wire = send_through_relay(&r, &m);
    assert_non_null(strstr(wire, "\r\nSubject: =?UTF-8?B?"));
    assert_null(strstr(wire, "Bcc:"));
    struct message plain_text = {
        .to = "ana@demo.co", .title = "Sin acentos\nX-Evil: 1", .body = "b", .event_id = "10"};
    wire = send_through_relay(&r, &plain_text);
    assert_null(strstr(wire, "X-Evil"));
    /* No HTML part when the template has none. */
    assert_null(strstr(wire, "text/html"));
}

static void
test_from_must_be_a_plain_address(void **state)
{
    (void)state;
    char *addr, *hdr;
    assert_int_equal(parse_from("Armonía <hub@armonia.test>", &addr, &hdr), 0);
    assert_string_equal(addr, "hub@armonia.test");
    free(addr);
    free(hdr);
    assert_int_equal(parse_from("hub@armonia.test>\r\nRCPT TO:<x@evil.test", &addr, &hdr), -1);
    assert_int_equal(parse_from("<hub@armonia.test\r\nX: y>", &addr, &hdr), -1);
    assert_int_equal(parse_from("hub@localhost", &addr, &hdr), -1);
}

/* Builds the provider for url with a login; returns it or NULL with *why. */
static struct provider *
provider_for(const char *url, int plain, const char **why)
{
    struct smtp_settings set = {
        .url = url,
        .from = "hub@armonia.test",
        .user = "hub",
        .password = "secret",
        .plain_auth = plain,
    };
    return smtp_provider_new(&set, NULL, why);
}

static void
test_login_requires_tls(void **state)
{
    (void)state;
    const char *why;
    struct provider *p = provider_for("smtp://smtp.example.com:587", 0, &why);
    assert_non_null(p);
    assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_ALL);
    p->free(p);
    p = provider_for("smtp://127.0.0.1:2525", 0, &why);
    assert_non_null(p);
    assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_ALL);
    p->free(p);
}

static void
test_plaintext_login_only_on_loopback(void **state)
{
    (void)state;
    const char *why = NULL;
    const char *loopback[] = {"smtp://127.0.0.1:2525", "smtp://localhost:25", "smtp://[::1]:2525",
                              "smtp://127.8.9.10"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        struct provider *p = provider_for(loopback[i], 1, &why);
        assert_non_null(p);
        assert_int_equal(((struct smtp *)p)->use_ssl, (long)CURLUSESSL_TRY);
        p->free(p);
    }
    const char *remote[] = {"smtp://smtp.example.com:587", "smtp://10.0.0.5",
                            "smtp://127.0.0.1.evil.test", "smtp://localhost.evil.test"};
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        why = NULL;
        assert_null(provider_for(remote[i], 1, &why));
        assert_non_null(why);
        assert_non_null(strstr(why, "HUB_SMTP_ALLOW_PLAINTEXT_AUTH"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_dots_stuffed_once),
        cmocka_unit_test(test_headers_and_parts),
        cmocka_unit_test(test_subject_encoded_never_broken),
        cmocka_unit_test(test_from_must_be_a_plain_address),
        cmocka_unit_test(test_login_requires_tls),
        cmocka_unit_test(test_plaintext_login_only_on_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
