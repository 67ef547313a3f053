/*
 * template.c - the Spanish (es-CO) and English texts of the fallback
 * notifications.
 *
 * Each kind has one function that writes a title and a body into growable
 * buffers. The sentences are written once, with their accents; the SMS
 * variant prefixes the brand and then passes the whole text, template and
 * substituted data alike, through sms_gsm7_fold(), which is what keeps
 * "PÁNICO" and "portería" inside GSM-7 as "PANICO" and "porteria". E-mail
 * adds a signature and an HTML part built from the same title and body.
 */
#include "template.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sms_text.h"

/* Data fields one rendering may read; each kind reads at most four. */
#define TEMPLATE_MAX_FIELDS 8
/* Amounts beyond this many units of a currency are treated as malformed. */
#define TEMPLATE_MAX_AMOUNT 1e13

/* A growable string. A failed allocation sets failed and turns every later
 * append into a no-op, so callers check once at the end. */
struct sb {
    char *p;
    size_t len, cap;
    int failed;
};

/* What one rendering reads: the language, the channel and the data fields
 * fetched so far (owned here, freed by ctx_release). */
struct ctx {
    int en;
    enum channel ch;
    json_t *data;
    char *fields[TEMPLATE_MAX_FIELDS];
    size_t n_fields;
    int failed;
};

static void
sb_addn(struct sb *b, const char *s, size_t n)
{
    if (b->failed || s == NULL)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends s; a NULL s appends nothing. */
static void
sb_add(struct sb *b, const char *s)
{
    if (s != NULL)
        sb_addn(b, s, strlen(s));
}

/* Appends the pieces a, b, c in order; NULL pieces are skipped. */
static void
sb_add3(struct sb *b, const char *x, const char *y, const char *z)
{
    sb_add(b, x);
    sb_add(b, y);
    sb_add(b, z);
}

/* Returns 1 when s ends with punctuation that closes a sentence. */
static int
ends_sentence(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return 0;
    if (strchr(".!?", s[n - 1]) != NULL)
        return 1;
    return n >= 3 && memcmp(s + n - 3, "\xE2\x80\xA6", 3) == 0; /* … */
}

/* Appends s as a sentence: with a full stop unless it already ends one. */
static void
sb_sentence(struct sb *b, const char *s)
{
    sb_add(b, s);
    if (!ends_sentence(s))
        sb_add(b, ".");
}

/* Hands the string over to the caller (an empty string when nothing was
 * appended) and resets b. Returns NULL when an allocation failed. */
static char *
sb_take(struct sb *b)
{
    char *p;

    if (!b->failed && b->p == NULL)
        sb_addn(b, "", 0);
    if (b->failed) {
        free(b->p);
        memset(b, 0, sizeof(*b));
        return NULL;
    }
    p = b->p;
    memset(b, 0, sizeof(*b));
    return p;
}

/*
 * Returns a cleaned copy of text, owned by the caller: control characters
 * become spaces (in multi-line text, CR LF and lone CR become LF and LF
 * stays), surrounding white space is trimmed, and at most max_chars
 * characters are kept. Returns NULL for text that is empty after
 * cleaning, and when memory runs out (then *failed is set).
 */
static char *
clean_text(const char *text, size_t max_chars, int multiline, int *failed)
{
    size_t n = strlen(text), o = 0, start = 0;
    char *out = malloc(n + 1);

    if (out == NULL) {
        *failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (multiline && ch == '\r') {
            if (text[i + 1] != '\n')
                out[o++] = '\n';
        } else if (multiline && ch == '\n') {
            out[o++] = '\n';
        } else if (ch < 0x20 || ch == 0x7F) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    while (out[start] != '\0' && isspace((unsigned char)out[start]))
        start++;
    memmove(out, out + start, o - start + 1);
    o = sms_truncate(out, max_chars);
    while (o > 0 && isspace((unsigned char)out[o - 1]))
        out[--o] = '\0';
    if (o == 0) {
        free(out);
        return NULL;
    }
    return out;
}

/*
 * Returns the text of data field key (a string, or a number written out),
 * cleaned by clean_text(), or NULL when it is missing, of another type or
 * empty. The string lives until ctx_release().
 */
static const char *
field(struct ctx *c, const char *key, size_t max_chars, int multiline)
{
    json_t *v = json_object_get(c->data, key);
    char num[64];
    const char *text;
    char *s;

    if (v == NULL || c->n_fields == TEMPLATE_MAX_FIELDS)
        return NULL;
    if (json_is_string(v)) {
        text = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
    } else if (json_is_real(v) && isfinite(json_real_value(v))) {
        snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        text = num;
    } else {
        return NULL;
    }
    s = clean_text(text, max_chars, multiline, &c->failed);
    if (s != NULL)
        c->fields[c->n_fields++] = s;
    return s;
}

/* A one-line field such as a name or a unit id. */
static const char *
short_field(struct ctx *c, const char *key)
{
    return field(c, key, TEMPLATE_MAX_FIELD_CHARS, 0);
}

/* A free-text field such as a panic message or an announcement body. */
static const char *
text_field(struct ctx *c, const char *key)
{
    return field(c, key, TEMPLATE_MAX_TEXT_CHARS, 1);
}

static void
ctx_release(struct ctx *c)
{
    for (size_t i = 0; i < c->n_fields; i++)
        free(c->fields[i]);
    c->n_fields = 0;
}

/*
 * Reads an amount (a JSON integer, real, or decimal string such as
 * "150000.50") as a whole number of hundredths, rounded half away from
 * zero. Returns 0, or -1 when it is missing, malformed or implausibly
 * large.
 */
static int
amount_cents(json_t *v, long long *cents)
{
    double x;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > (json_int_t)TEMPLATE_MAX_AMOUNT || i < -(json_int_t)TEMPLATE_MAX_AMOUNT)
            return -1;
        *cents = (long long)i * 100;
        return 0;
    }
    if (json_is_real(v)) {
        x = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t i = 0;
        while (s[i] == ' ')
            i++;
        if (s[i] == '-')
            i++;
        if (!isdigit((unsigned char)s[i]))
            return -1;
        while (isdigit((unsigned char)s[i]))
            i++;
        if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
            i++;
            while (isdigit((unsigned char)s[i]))
                i++;
        }
        while (s[i] == ' ')
            i++;
        if (s[i] != '\0')
            return -1;
        x = strtod(s, NULL); /* the C locale's '.' decimal point */
    } else {
        return -1;
    }
    if (!isfinite(x) || fabs(x) > TEMPLATE_MAX_AMOUNT)
        return -1;
    *cents = llround(x * 100.0);
    return 0;
}

/* Writes the decimal digits of v (non-negative) into b, grouped by three
 * with sep when sep is not 0. */
static void
sb_grouped(struct sb *b, long long v, char sep)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", v);

    for (int i = 0; i < n; i++) {
        if (sep != 0 && i > 0 && (n - i) % 3 == 0)
            sb_addn(b, &sep, 1);
        sb_addn(b, &digits[i], 1);
    }
}

/*
 * Appends an amount the way a Colombian reads it: pesos as "$150.000 COP"
 * (thousands separated by dots, no decimals; English text uses commas,
 * "$150,000 COP", so an English reader does not see 150 dollars), any
 * other currency as "150.00 USD". A currency that is not three letters is
 * left out. Returns 0, or -1 (nothing appended) when the amount is
 * missing or malformed.
 */
static int
sb_amount(struct ctx *c, struct sb *b)
{
    json_t *cur = json_object_get(c->data, "currency");
    const char *code = "COP";
    char upper[4], frac[8];
    long long cents, whole;

    if (amount_cents(json_object_get(c->data, "amount"), &cents) < 0)
        return -1;
    if (json_is_string(cur) && json_string_length(cur) > 0) {
        const char *s = json_string_value(cur);
        code = NULL;
        if (strlen(s) == 3 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
            isalpha((unsigned char)s[2])) {
            for (int i = 0; i < 3; i++)
                upper[i] = (char)toupper((unsigned char)s[i]);
            upper[3] = '\0';
            code = upper;
        }
    }
    if (cents < 0) {
        sb_add(b, "-");
        cents = -cents;
    }
    if (code != NULL && strcmp(code, "COP") == 0) {
        whole = cents / 100 + (cents % 100 >= 50);
        sb_add(b, "$");
        sb_grouped(b, whole, c->en ? ',' : '.');
        sb_add(b, " COP");
        return 0;
    }
    sb_grouped(b, cents / 100, 0);
    snprintf(frac, sizeof(frac), ".%02lld", cents % 100);
    sb_add(b, frac);
    if (code != NULL)
        sb_add3(b, " ", code, NULL);
    return 0;
}

/* Who pressed the panic button: "Unidad 101 (Ana Gómez)", "Unidad 101",
 * "Ana Gómez" or, when nothing is known, "Un residente". */
static void
sb_who(struct ctx *c, struct sb *b, const char *unit, const char *name)
{
    if (unit != NULL) {
        sb_add3(b, c->en ? "Unit " : "Unidad ", unit, NULL);
        if (name != NULL)
            sb_add3(b, " (", name, ")");
    } else if (name != NULL) {
        sb_add(b, name);
    } else {
        sb_add(b, c->en ? "A resident" : "Un residente");
    }
}

/* panic: a resident pressed the panic button; goes to guards and admins. */
static void
render_panic(struct ctx *c, struct sb *title, struct sb *body)
{
    const char *unit = short_field(c, "unitId");
    const char *name = short_field(c, "userName");
    const char *msg = text_field(c, "message");

    if (c->ch == CHANNEL_SMS)
        sb_add(body, c->en ? "PANIC ALERT - " : "ALERTA DE PÁNICO - ");
    sb_who(c, body, unit, name);
    if (msg != NULL) {
        sb_add(body, ": ");
        sb_sentence(body, msg);
    } else {
        sb_add(body, c->en ? " asked for help." : " pidió ayuda.");
    }
    sb_add(body, c->en ? " Respond at the gate." : " Atienda en la portería.");
    if (c->ch == CHANNEL_SMS)
        sb_add(body, " Armonia");

    sb_add(title, c->en ? "Panic alert" : "Alerta de pánico");
    if (unit != NULL)
        sb_add3(title, c->en ? " - Unit " : " - Unidad ", unit, NULL);
}

/* visitor: the gate registered a visitor for a unit; goes to its residents. */
static void
render_visitor(struct ctx *c, struct sb *title, struct sb *body)
{
    const char *unit = short_field(c, "unitId");
    const char *name = short_field(c, "name");
    const char *ask = c->en ? " Authorize entry in the app." : " Autorice el ingreso en la app.";

    sb_add(title, c->en ? "Visitor at the gate" : "Visitante en portería");
    if (c->ch == CHANNEL_SMS) {
        sb_add(body, c->en ? "Armonia: Visitor at the gate" : "Armonia: Visitante en portería");
        if (unit != NULL)
            sb_add3(body, c->en ? " for unit " : " para la unidad ", unit, NULL);
        if (name != NULL) {
            sb_add(body, ": ");
            sb_sentence(body, name);
        } else {
            sb_add(body, ".");
        }
        sb_add(body, ask);
        return;
    }
    if (name != NULL)
        sb_add(body, name);
    else
        sb_add(body, c->en ? "A visitor" : "Un visitante");
    sb_add(body, c->en ? " is waiting at the gate" : " espera en la portería");
    if (unit != NULL)
        sb_add3(body, c->en ? " (unit " : " (unidad ", unit, ")");
    sb_add(body, ".");
    sb_add(body, ask);
}

/* The sentences of a payment status: title, then the text before and after
 * the amount. */
struct payment_text {
    const char *status;
    const char *title_es, *lead_es, *tail_es;
    const char *title_en, *lead_en, *tail_en;
};

static const struct payment_text payment_texts[] = {
    {"COMPLETED", "Pago aprobado", "su pago", " fue aprobado.", "Payment approved", "your payment",
     " was approved."},
    {"FAILED", "Pago rechazado", "su pago",
     " fue rechazado. Intente de nuevo o use otro medio de pago.", "Payment declined",
     "your payment", " was declined. Please try again or use another payment method."},
    {"PENDING", "Pago en proceso", "su pago", " está en proceso. Le avisaremos cuando se confirme.",
     "Payment pending", "your payment",
     " is being processed. We will let you know when it is confirmed."},
    {"CANCELLED", "Pago cancelado", "su pago", " fue cancelado.", "Payment cancelled",
     "your payment", " was cancelled."},
    {"REFUNDED", "Pago reembolsado", "su pago", " fue reembolsado.", "Payment refunded",
     "your payment", " was refunded."},
    {NULL, "Novedad en su pago", "hay una novedad en su pago", ". Consulte el detalle en la app.",
     "Payment update", "there is an update on your payment", ". See the details in the app."},
};

/* payment: a payment's status changed; goes to the paying resident. */
static void
render_payment(struct ctx *c, struct sb *title, struct sb *body)
{
    const char *status = short_field(c, "status");
    const struct payment_text *t = &payment_texts[0];
    struct sb amount = {0};
    size_t start;

    while (t->status != NULL && (status == NULL || strcasecmp(status, t->status) != 0))
        t++;
    sb_add(title, c->en ? t->title_en : t->title_es);
    if (c->ch == CHANNEL_SMS)
        sb_add(body, "Armonia: ");
    start = body->len;
    sb_add(body, c->en ? t->lead_en : t->lead_es);
    if (sb_amount(c, &amount) == 0 && !amount.failed)
        sb_add3(body, c->en ? " of " : " de ", amount.p, NULL);
    body->failed |= amount.failed;
    free(amount.p);
    sb_add(body, c->en ? t->tail_en : t->tail_es);
    /* Without the brand prefix the sentence starts the text: capitalise it. */
    if (c->ch != CHANNEL_SMS && !body->failed && body->len > start)
        body->p[start] = (char)toupper((unsigned char)body->p[start]);
}

/* announcement: the administration published one (emergencies reach everyone). */
static void
render_announcement(struct ctx *c, struct sb *title, struct sb *body)
{
    const char *head = short_field(c, "title");
    const char *text = text_field(c, "body");
    const char *generic =
        c->en ? "Announcement from the administration" : "Comunicado de la administración";

    if (c->ch == CHANNEL_EMAIL && head != NULL)
        sb_add3(title, c->en ? "Announcement: " : "Comunicado: ", head, NULL);
    else
        sb_add(title, head != NULL ? head : generic);

    if (c->ch == CHANNEL_SMS) {
        if (head == NULL && text == NULL) {
            sb_add(body, c->en ? "Armonia: there is a new announcement from the administration. "
                                 "See it in the app."
                               : "Armonia: hay un nuevo comunicado de la administración. "
                                 "Consúltelo en la app.");
            return;
        }
        sb_add3(body, "Armonia - ", head != NULL ? head : (c->en ? "Announcement" : "Comunicado"),
                NULL);
        if (text != NULL)
            sb_add3(body, ends_sentence(head != NULL ? head : "") ? " " : ": ", text, NULL);
        else
            sb_add(body, ends_sentence(head) ? "" : ".");
        return;
    }
    if (text != NULL)
        sb_add(body, text);
    else if (head != NULL)
        sb_add(body,
               c->en ? "See the announcement in the app." : "Consulte el comunicado en la app.");
    else
        sb_add(body, c->en ? "The administration published an announcement. See it in the app."
                           : "La administración publicó un comunicado. Consúltelo en la app.");
}

/* panic_claimed: a guard took charge of a panic alert; goes to the other guards. */
static void
render_panic_claimed(struct ctx *c, struct sb *title, struct sb *body)
{
    const char *guard = short_field(c, "guardId");
    const char *unit = short_field(c, "unitId");

    sb_add(title, c->en ? "Panic alert claimed" : "Alerta de pánico atendida");
    if (c->ch == CHANNEL_SMS)
        sb_add(body, "Armonia: ");
    if (c->en)
        sb_add(body, c->ch == CHANNEL_SMS ? "the panic alert" : "The panic alert");
    else
        sb_add(body, c->ch == CHANNEL_SMS ? "la alerta de pánico" : "La alerta de pánico");
    if (unit != NULL)
        sb_add3(body, c->en ? " from unit " : " de la unidad ", unit, NULL);
    sb_add(body, c->en ? " was claimed" : " fue atendida");
    if (guard != NULL)
        sb_add3(body, c->en ? " by guard " : " por el guarda ", guard, NULL);
    sb_add(body, ".");
}

/* Any kind without its own text. */
static void
render_generic(struct ctx *c, const char *kind, struct sb *title, struct sb *body)
{
    const char *label = c->en ? "New notification" : "Nueva notificación";
    int failed = 0;
    char *k = kind != NULL ? clean_text(kind, TEMPLATE_MAX_FIELD_CHARS, 0, &failed) : NULL;

    body->failed |= failed;
    sb_add(title, label);
    if (c->ch == CHANNEL_SMS)
        sb_add(body, "Armonia - ");
    sb_add(body, label);
    if (k != NULL)
        sb_add3(body, ": ", k, NULL);
    free(k);
}

/* Appends s with the five HTML-significant characters escaped and, when
 * newlines is set, each line break written as <br>. */
static void
sb_html(struct sb *b, const char *s, int newlines)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            sb_add(b, "&amp;");
            break;
        case '<':
            sb_add(b, "&lt;");
            break;
        case '>':
            sb_add(b, "&gt;");
            break;
        case '"':
            sb_add(b, "&quot;");
            break;
        case '\'':
            sb_add(b, "&#39;");
            break;
        case '\n':
            sb_add(b, newlines ? "<br>\n" : " ");
            break;
        default:
            sb_addn(b, s, 1);
        }
    }
}

/* The HTML part of an e-mail: the title as heading, the body, a signature. */
static void
sb_email_html(struct sb *b, int en, const char *title, const char *body)
{
    sb_add3(b, "<!DOCTYPE html>\n<html lang=\"", en ? "en" : "es",
            "\">\n<head><meta charset=\"utf-8\"><title>");
    sb_html(b, title, 0);
    sb_add(b, "</title></head>\n<body style=\"font-family:Arial,sans-serif\">\n<h2>");
    sb_html(b, title, 0);
    sb_add(b, "</h2>\n<p>");
    sb_html(b, body, 1);
    sb_add(b, "</p>\n<p style=\"color:#777777\">Armonía</p>\n</body>\n</html>\n");
}

/* Folds an SMS text into GSM-7 and cuts it to SMS_MAX_CHARS, marking a cut
 * with "...". Returns the new string (text is consumed), or NULL. */
static char *
sms_finish(char *text)
{
    char *folded = sms_gsm7_fold(text);
    size_t len;

    free(text);
    if (folded == NULL)
        return NULL;
    len = strlen(folded);
    if (sms_truncate(folded, SMS_MAX_CHARS) < len) {
        len = sms_truncate(folded, SMS_MAX_CHARS - 3);
        memcpy(folded + len, "...", 4);
    }
    return folded;
}

/* Returns 1 for "en", "en-*" and "en_*", in any case. */
static int
locale_is_english(const char *locale)
{
    if (locale == NULL || strncasecmp(locale, "en", 2) != 0)
        return 0;
    return locale[2] == '\0' || locale[2] == '-' || locale[2] == '_';
}

/* Picks the kind's text, then adds what the channel needs: the e-mail
 * signature and HTML part, or the SMS folding and cut. One unwind path
 * frees whatever was built when an allocation fails. */
int
template_render(const char *kind, const char *locale, json_t *data, enum channel ch,
                struct rendered *out)
{
    struct ctx c = {0};
    struct sb title = {0}, body = {0}, html = {0};

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if ((unsigned)ch >= CHANNEL_COUNT)
        return -1;
    c.en = locale_is_english(locale);
    c.ch = ch;
    c.data = json_is_object(data) ? data : NULL;

    if (kind != NULL && strcmp(kind, "panic") == 0)
        render_panic(&c, &title, &body);
    else if (kind != NULL && strcmp(kind, "visitor") == 0)
        render_visitor(&c, &title, &body);
    else if (kind != NULL && strcmp(kind, "payment") == 0)
        render_payment(&c, &title, &body);
    else if (kind != NULL && strcmp(kind, "announcement") == 0)
        render_announcement(&c, &title, &body);
    else if (kind != NULL && strcmp(kind, "panic_claimed") == 0)
        render_panic_claimed(&c, &title, &body);
    else
        render_generic(&c, kind, &title, &body);
    if (c.failed)
        goto err;

    if (ch == CHANNEL_EMAIL && !title.failed && !body.failed) {
        sb_email_html(&html, c.en, title.p, body.p);
        sb_add(&body, "\n\n-- \nArmonía\n");
        if ((out->html = sb_take(&html)) == NULL)
            goto err;
    }
    if ((out->title = sb_take(&title)) == NULL || (out->body = sb_take(&body)) == NULL)
        goto err;
    if (ch == CHANNEL_SMS) {
        if ((out->title = sms_finish(out->title)) == NULL ||
            (out->body = sms_finish(out->body)) == NULL)
            goto err;
    }
    ctx_release(&c);
    return 0;

err:
    ctx_release(&c);
    free(title.p);
    free(body.p);
    free(html.p);
    template_free(out);
    return -1;
}

/* Frees the three strings; safe on a zeroed struct. */
void
template_free(struct rendered *r)
{
    if (r == NULL)
        return;
    free(r->title);
    free(r->body);
    free(r->html);
    memset(r, 0, sizeof(*r));
}
