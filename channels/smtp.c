/*
 * smtp.c - e-mail through an SMTP relay with libcurl (smtp:// upgrading
 * with STARTTLS when the server offers it, or smtps://), as a
 * multipart/alternative message: the plain text and a simple HTML part
 * rendered from the same template. Works with SES and SendGrid relays.
 * curl's MIME API builds the message (boundary, part headers) and curl
 * dot-stuffs it on the wire; this file chooses the headers and normalises
 * the line ends of the bodies.
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

/* One e-mail in flight: what curl reads while it sends, and whom to tell. */
struct smtp_req {
    curl_mime *mime;            /* owned; the body parts, freed after the transfer */
    struct curl_slist *headers; /* owned; the message headers */
    struct curl_slist *rcpt;    /* owned; the one recipient (RCPT TO) */
    char *text, *html;          /* owned; the bodies with CRLF line ends (html may be NULL) */
    send_cb cb;
    void *ud;
};

static void
smtp_req_free(struct smtp_req *q)
{
    if (!q)
        return;
    curl_mime_free(q->mime);
    curl_slist_free_all(q->headers);
    curl_slist_free_all(q->rcpt);
    free(q->text);
    free(q->html);
    free(q);
}

static void
on_done(void *ud, const struct http_response *r)
{
    struct smtp_req *q = ud;
    struct send_result res;
    memset(&res, 0, sizeof(res));
    classify_smtp(r->code, r->status, &res);
    q->cb(q->ud, &res);
    smtp_req_free(q);
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

/*
 * Returns a copy of text with every line ended by CRLF (a lone CR is
 * dropped, LF becomes CRLF). A leading dot is left alone: libcurl doubles
 * it on the wire (RFC 5321 section 4.5.2), and doing it here too doubled it
 * twice. Caller frees; NULL on OOM.
 */
static char *
crlf_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n' ? 2 : *p != '\r';
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            *o++ = '\r';
            *o++ = '\n';
        } else if (*p != '\r') {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Appends one "Name: value" header to *list; returns 0, or -1 on OOM. */
static int
add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (!line)
        return -1;
    snprintf(line, len, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* Adds a body part of type (UTF-8, sent as 8bit) holding text to mime. */
static int
add_part(curl_mime *mime, const char *type, const char *text)
{
    curl_mimepart *part = curl_mime_addpart(mime);
    if (!part || curl_mime_data(part, text, CURL_ZERO_TERMINATED) != CURLE_OK ||
        curl_mime_type(part, type) != CURLE_OK || curl_mime_encoder(part, "8bit") != CURLE_OK)
        return -1;
    return 0;
}

/*
 * Fills q with the e-mail m as s sends it: the headers (Date, From, To,
 * Subject RFC 2047 encoded when not plain ASCII, Message-ID, MIME-Version,
 * and the multipart/alternative type, to which curl adds its boundary),
 * the plain-text part and the HTML part when there is one, and the
 * recipient; then sets them on easy. Returns 0, or -1 on OOM (q keeps what
 * was made; smtp_req_free() frees it).
 */
static int
smtp_prepare(const struct smtp *s, const struct message *m, CURL *easy, struct smtp_req *q)
{
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof(rnd));
    char id[17];
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *at = strchr(s->from, '@');
    char msgid[200];
    snprintf(msgid, sizeof(msgid), "<%s.%s@%s>", m->event_id, id, at ? at + 1 : "armonia.local");
    char *subject = header_word(m->title ? m->title : "Armonía");
    int rc = add_header(&q->headers, "Date", date) ||
             add_header(&q->headers, "From", s->from_hdr) || add_header(&q->headers, "To", m->to) ||
             add_header(&q->headers, "Subject", subject ? subject : "Armonia") ||
             add_header(&q->headers, "Message-ID", msgid) ||
             add_header(&q->headers, "MIME-Version", "1.0") ||
             add_header(&q->headers, "Content-Type", "multipart/alternative");
    free(subject);
    if (rc)
        return -1;
    q->text = crlf_lines(m->body ? m->body : "");
    q->html = m->html ? crlf_lines(m->html) : NULL;
    q->mime = curl_mime_init(easy);
    q->rcpt = curl_slist_append(NULL, m->to);
    if (!q->text || (m->html && !q->html) || !q->mime || !q->rcpt ||
        add_part(q->mime, "text/plain; charset=UTF-8", q->text) ||
        (q->html && add_part(q->mime, "text/html; charset=UTF-8", q->html)))
        return -1;
    curl_easy_setopt(easy, CURLOPT_URL, s->url);
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, s->from);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, q->rcpt);
    curl_easy_setopt(easy, CURLOPT_USE_SSL, s->use_ssl);
    if (s->user) {
        curl_easy_setopt(easy, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(easy, CURLOPT_MIMEPOST, q->mime);
    return 0;
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
    if (!address_email_ok(m->to)) {
        /* The fallback engine skips such rows first; this is the last guard. */
        log_err("smtp", "refused to send to an invalid e-mail address (event %s)", m->event_id);
        return -1;
    }
    struct smtp_req *q = calloc(1, sizeof(*q));
    CURL *easy = curl_easy_init();
    if (!q || !easy || smtp_prepare(s, m, easy, q)) {
        if (easy)
            curl_easy_cleanup(easy);
        smtp_req_free(q);
        return -1;
    }
    q->cb = cb;
    q->ud = ud;
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    /* q's lists and parts live until on_done, which runs before curl lets go of easy. */
    if (http_engine_add(p->http, easy, NULL, on_done, q)) {
        smtp_req_free(q);
        return -1;
    }
    return 0;
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
