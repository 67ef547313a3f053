/*
 * fuzz_template.c - the words of a fallback notification rendered from
 * arbitrary event data: template_render() for any kind, locale and
 * channel, with data read from the input as the fallback reads it from its
 * row (json_loads(), any JSON value or none).
 *
 * Input: byte 0 picks the channel (modulo 3), byte 1 the locale, then the
 * kind up to the first '\n', then the data's JSON text.
 *
 * Checks: a rendering succeeds (only memory can make it fail), title and
 * body are valid UTF-8 and the title one line; SMS text fits
 * SMS_MAX_CHARS; e-mail has an HTML part in which every '<' opens one of
 * the template's own tags, so no data becomes markup; push and SMS have none.
 */
#include <jansson.h>

#include "fuzz.h"
#include "sms_text.h"
#include "template.h"

static const char *const locales[] = {NULL,    "es-CO", "es", "en", "en-US",
                                      "en_GB", "EN",    "fr", "",   "e"};

/* The tags the e-mail template writes, each as it follows '<'. */
static const char *const tags[] = {"!DOCTYPE ", "html",   "/html>",  "head>", "/head>",
                                   "meta ",     "title>", "/title>", "body",  "/body>",
                                   "h2",        "/h2>",   "p",       "/p>",   "br"};

/* True when html's '<' at p opens one of tags, followed by '>', ' ' or '/' when the tag is
 * open-ended. */
static int
tag_ok(const char *p)
{
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        size_t n = strlen(tags[i]);
        if (strncmp(p + 1, tags[i], n) != 0)
            continue;
        char c = p[1 + n];
        char last = tags[i][n - 1];
        if (last == '>' || last == ' ' || c == '>' || c == ' ' || c == '/')
            return 1;
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    enum channel ch = (enum channel)(fuzz_byte(&in) % CHANNEL_COUNT);
    const char *locale = locales[fuzz_byte(&in) % (sizeof(locales) / sizeof(locales[0]))];
    size_t kind_len;
    char *kind = fuzz_line(&in, &kind_len);
    char *text = fuzz_rest(&in, NULL);
    json_t *ev = json_loads(text, JSON_DECODE_ANY, NULL);
    struct rendered r;

    /* Kind and data come from text columns, which PostgreSQL keeps valid UTF-8. */
    if (!fuzz_utf8_valid(kind, kind_len)) {
        json_decref(ev);
        free(text);
        free(kind);
        return 0;
    }
    /* A kind with a NUL in it is read up to the NUL, as a C string; "" stands for none. */
    FUZZ_CHECK(template_render(kind[0] ? kind : NULL, locale, ev, ch, &r) == 0);
    FUZZ_CHECK(r.title != NULL && r.body != NULL);
    FUZZ_CHECK(fuzz_utf8_valid(r.title, strlen(r.title)));
    FUZZ_CHECK(fuzz_utf8_valid(r.body, strlen(r.body)));
    FUZZ_CHECK(strchr(r.title, '\n') == NULL && strchr(r.title, '\r') == NULL);
    if (ch == CHANNEL_SMS) {
        size_t n = strlen(r.body);
        FUZZ_CHECK(sms_truncate(r.body, SMS_MAX_CHARS) == n);
    }
    if (ch == CHANNEL_EMAIL) {
        FUZZ_CHECK(r.html != NULL);
        FUZZ_CHECK(fuzz_utf8_valid(r.html, strlen(r.html)));
        for (const char *p = strchr(r.html, '<'); p != NULL; p = strchr(p + 1, '<'))
            FUZZ_CHECK(tag_ok(p));
    } else {
        FUZZ_CHECK(r.html == NULL);
    }
    template_free(&r);
    FUZZ_CHECK(r.title == NULL && r.body == NULL && r.html == NULL);
    json_decref(ev);
    free(text);
    free(kind);
    return 0;
}
