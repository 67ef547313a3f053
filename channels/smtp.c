/*
 * smtp.c - e-mail through an SMTP relay with libcurl (smtp:// upgrading
 * with STARTTLS when the server offers it, or smtps://), as a
 * multipart/alternative message: the plain text and a simple HTML part
 * rendered from the same template. Works with SES and SendGrid relays.
 *
 * With HUB_SMTP_USER set the login never goes out in clear: smtp:// then
 * requires STARTTLS (CURLUSESSL_ALL), and a relay that does not offer it
 * fails the send before AUTH, unless HUB_SMTP_ALLOW_PLAINTEXT_AUTH allows
 * clear text to a relay on loopback. The recipient is checked again here
 * (address_email_ok) so that nothing but a plain addr-spec ever reaches
 * RCPT TO or the To: header.
 */
#include "address.h"
#include "classify.h"
#include "http.h"
#include "log.h"
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct smtp {
    struct provider base; /* first */
    char *url, *user, *password;
    char *from;     /* bare address for the envelope (MAIL FROM) */
    char *from_hdr; /* the From: header value, display name encoded */
    long use_ssl;   /* CURLOPT_USE_SSL: CURLUSESSL_ALL with credentials, else _TRY */
};

/* One e-mail in flight: the message and how much curl has read of it. */
struct smtp_req {
    char *data;
    size_t len, off;
    send_cb cb;
    void *ud;
};

static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct smtp_req *q = ud;
    size_t room = size * nitems, left = q->len - q->off;
    size_t n = left < room ? left : room;
    memcpy(buf, q->data + q->off, n);
    q->off += n;
    return n;
}

static void
on_done(void *ud, const struct http_response *r)
{
    struct smtp_req *q = ud;
    struct send_result res;
    memset(&res, 0, sizeof(res));
    classify_smtp(r->code, r->status, &res);
    q->cb(q->ud, &res);
    free(q->data);
    free(q);
}

/* Encodes s as an RFC 2047 UTF-8 word when it is not plain ASCII; caller frees. */
static char *
header_word(const char *s)
{
    int ascii = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p == '\r' || *p == '\n')
            ascii = 0;
    if (ascii)
        return strdup(s);
    size_t n = strlen(s);
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    char *out = malloc(4 * ((n + 2) / 3) + 16);
    if (!b64 || !out) {
        free(b64);
        free(out);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)s, (int)n);
    sprintf(out, "=?UTF-8?B?%s?=", b64);
    free(b64);
    return out;
}

/* Builds the whole message (headers and both parts) with CRLF line ends. */
static char *
build_message(const struct smtp *s, const struct message *m, size_t *len)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f)
        return NULL;
    unsigned char rnd[12];
    RAND_bytes(rnd, sizeof(rnd));
    char boundary[40], id[32];
    for (int i = 0; i < 12; i++) {
        snprintf(boundary + 2 * i, 3, "%02x", rnd[i]);
    }
    snprintf(id, sizeof(id), "%.16s", boundary);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *subject = header_word(m->title ? m->title : "Armonía");
    const char *at = strchr(s->from, '@');
    fprintf(f,
            "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s.%s@%s>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"=_armonia_%s\"\r\n\r\n",
            date, s->from_hdr, m->to, subject ? subject : "Armonia", m->event_id, id,
            at ? at + 1 : "armonia.local", boundary);
    free(subject);
    fprintf(f,
            "--=_armonia_%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n",
            boundary);
    /* Body lines get CRLF. A leading dot is left alone: libcurl doubles it
     * on the wire (RFC 5321 §4.5.2), and doing it here too doubled it twice. */
    const char *parts[2] = {m->body ? m->body : "", m->html};
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            if (!m->html)
                break;
            fprintf(f,
                    "\r\n--=_armonia_%s\r\nContent-Type: text/html; charset=UTF-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n",
                    boundary);
        }
        for (const char *p = parts[k]; *p; p++) {
            if (*p == '\n') {
                fputs("\r\n", f);
            } else if (*p != '\r') {
                fputc(*p, f);
            }
        }
    }
    fprintf(f, "\r\n--=_armonia_%s--\r\n", boundary);
    if (fclose(f)) {
        free(out);
        return NULL;
    }
    *len = size;
    return out;
}

/*
 * Splits HUB_SMTP_FROM, "addr@host" or "Display Name <addr@host>", into the
 * bare envelope address and the From: header (the display name RFC 2047
 * encoded when it is not ASCII). Returns 0, or -1 when there is no usable
 * address (missing, no '@', spaces or angle brackets in it).
 */
static int
parse_from(const char *value, char **addr, char **hdr)
{
    *addr = *hdr = NULL;
    if (!value)
        return -1;
    const char *lt = strchr(value, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    const char *a = lt ? lt + 1 : value;
    size_t n = lt ? (gt ? (size_t)(gt - a) : 0) : strlen(value);
    while (n && (*a == ' ' || *a == '\t'))
        a++, n--;
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    if (!n || (lt && !gt) || !memchr(a, '@', n) || strcspn(a, " \t<>\r\n\"") < n)
        return -1;
    *addr = strndup(a, n);
    if (*addr && !address_email_ok(*addr)) {
        free(*addr);
        *addr = NULL;
        return -1;
    }
    char *name = NULL;
    if (lt && lt > value) {
        size_t m = (size_t)(lt - value);
        while (m && (value[m - 1] == ' ' || value[m - 1] == '"'))
            m--;
        const char *b = value;
        while (m && (*b == ' ' || *b == '"'))
            b++, m--;
        if (m)
            name = strndup(b, m);
    }
    char *word = name ? header_word(name) : NULL;
    free(name);
    size_t len = n + (word ? strlen(word) : 0) + 8;
    *hdr = malloc(len);
    if (!*addr || !*hdr) {
        free(word);
        free(*addr);
        free(*hdr);
        *addr = *hdr = NULL;
        return -1;
    }
    if (word)
        snprintf(*hdr, len, "%s <%s>", word, *addr);
    else
        snprintf(*hdr, len, "%s", *addr);
    free(word);
    return 0;
}

static int
smtp_send(struct provider *p, const struct message *m, send_cb cb, void *ud)
{
    struct smtp *s = (struct smtp *)p;
    struct smtp_req *q = calloc(1, sizeof(*q));
    CURL *easy = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    if (!address_email_ok(m->to)) {
        /* The fallback engine skips such rows first; this is the last guard. */
        log_err("smtp", "refused to send to an invalid e-mail address (event %s)", m->event_id);
        goto err;
    }
    if (!q || !easy)
        goto err;
    q->data = build_message(s, m, &q->len);
    rcpt = curl_slist_append(NULL, m->to);
    if (!q->data || !rcpt)
        goto err;
    q->cb = cb;
    q->ud = ud;
    curl_easy_setopt(easy, CURLOPT_URL, s->url);
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, s->from);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(easy, CURLOPT_USE_SSL, s->use_ssl);
    if (s->user) {
        curl_easy_setopt(easy, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(easy, CURLOPT_READDATA, q);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    /* The recipient list is freed with the transfer, like a header list. */
    if (http_engine_add(p->http, easy, rcpt, on_done, q)) {
        free(q->data);
        free(q);
        return -1;
    }
    return 0;
err:
    if (q)
        free(q->data);
    free(q);
    curl_slist_free_all(rcpt);
    if (easy)
        curl_easy_cleanup(easy);
    return -1;
}

/*
 * True when url's host is a loopback address (localhost, 127.0.0.0/8, ::1),
 * where clear text never leaves the machine.
 */
static int
url_host_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int loopback = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        struct in_addr v4;
        /* A name must be exactly "localhost": "127.0.0.1.evil.test" is not. */
        if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]"))
            loopback = 1;
        else if (inet_pton(AF_INET, host, &v4) == 1)
            loopback = (ntohl(v4.s_addr) >> 24) == 127;
    }
    curl_free(host);
    curl_url_cleanup(u);
    return loopback;
}

static void
smtp_free(struct provider *p)
{
    struct smtp *s = (struct smtp *)p;
    free(s->url);
    free(s->from);
    free(s->from_hdr);
    free(s->user);
    free(s->password);
    free(s);
}

struct provider *
smtp_provider_new(const struct smtp_settings *set, struct http_engine *http, const char **why)
{
    static const char *const schemes[] = {"smtp", "smtps", NULL};
    *why = NULL;
    if (!set->url)
        return NULL;
    if (!url_has_scheme(set->url, schemes)) {
        *why = "HUB_SMTP_URL: expected an smtp:// or smtps:// URL";
        return NULL;
    }
    if (set->plain_auth && !url_host_is_loopback(set->url)) {
        *why = "HUB_SMTP_ALLOW_PLAINTEXT_AUTH: allowed only for a relay on loopback (localhost, "
               "127.0.0.0/8, [::1]); HUB_SMTP_URL names another host";
        return NULL;
    }
    struct smtp *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    /* Credentials require TLS (smtps://, or STARTTLS on smtp://); without
     * them, or with clear text explicitly allowed, TLS is used when offered. */
    s->use_ssl = set->user && !set->plain_auth ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY;
    if (parse_from(set->from, &s->from, &s->from_hdr)) {
        free(s);
        *why = "HUB_SMTP_FROM: required with HUB_SMTP_URL: an address, or \"Name <address>\"";
        return NULL;
    }
    s->url = strdup(set->url);
    s->user = set->user ? strdup(set->user) : NULL;
    s->password = set->password ? strdup(set->password) : NULL;
    if (!s->url) {
        smtp_free(&s->base);
        return NULL;
    }
    s->base.channel = CHANNEL_EMAIL;
    s->base.name = "smtp";
    s->base.send = smtp_send;
    s->base.free = smtp_free;
    s->base.http = http;
    log_info("smtp", "e-mail through an SMTP relay%s",
             s->use_ssl == CURLUSESSL_ALL ? " (TLS required for the login)"
             : s->user                    ? " (login allowed in clear text on loopback)"
                                          : "");
    return &s->base;
}
