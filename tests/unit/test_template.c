/*
 * test_template.c - unit tests for channels/template.c: the texts a
 * resident or guard reads in a push notification, an SMS or an e-mail.
 *
 * What they rely on: every kind renders something readable in Spanish and
 * English on every channel; an SMS never switches to UCS-2 because of an
 * accented name; an e-mail's HTML cannot be injected into; missing data
 * never prints "(null)".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sms_text.h"
#include "template.h"

static const char *const kinds[] = {"panic",         "visitor",          "payment", "announcement",
                                    "panic_claimed", "package_received", NULL};
static const char *const locales[] = {NULL, "es-CO", "es", "en", "en-US", "EN_gb", "pt-BR"};

/* Data full of characters outside GSM-7 for every kind. */
static json_t *
accented_data(const char *kind)
{
    if (kind == NULL)
        return json_object();
    if (strcmp(kind, "panic") == 0)
        return json_pack("{s:s,s:s,s:s}", "unitId", "Torre 2 – 301", "userName",
                         "Ángela Gómez Núñez", "message", "¡Auxilio! Hay humo en la cocina…");
    if (strcmp(kind, "visitor") == 0)
        return json_pack("{s:s,s:s}", "unitId", "101", "name", "Domiciliario “Rappi” — Óscar Díaz");
    if (strcmp(kind, "payment") == 0)
        return json_pack("{s:i,s:s,s:s}", "amount", 150000, "currency", "COP", "status",
                         "COMPLETED");
    if (strcmp(kind, "announcement") == 0)
        return json_pack("{s:s,s:s}", "title", "Corte de agua en la Torre Ñ", "body",
                         "Mañana habrá corte de agua de 8 a 12. ¿Dudas? Llame a la portería.");
    if (strcmp(kind, "panic_claimed") == 0)
        return json_pack("{s:s,s:s}", "guardId", "Julián Ramírez", "unitId", "502");
    return json_pack("{s:s}", "whatever", "ó");
}

/* Counts characters as UTF-16 code units, the way sms_truncate() does. */
static size_t
utf16_len(const char *s)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80)
            n += *p >= 0xF0 ? 2 : 1;
    }
    return n;
}

static void
render_ok(const char *kind, const char *locale, json_t *data, enum channel ch, struct rendered *r)
{
    assert_int_equal(template_render(kind, locale, data, ch, r), 0);
    assert_non_null(r->title);
    assert_non_null(r->body);
    assert_true(strlen(r->title) > 0);
    assert_true(strlen(r->body) > 0);
    assert_null(strstr(r->title, "(null)"));
    assert_null(strstr(r->body, "(null)"));
    assert_null(strchr(r->title, '\n'));
    assert_null(strchr(r->title, '\r'));
    if (ch == CHANNEL_EMAIL)
        assert_non_null(r->html);
    else
        assert_null(r->html);
}

/* Renders one case and checks the text against want. */
static void
assert_body(const char *kind, const char *locale, json_t *data, enum channel ch, const char *want)
{
    struct rendered r;

    render_ok(kind, locale, data, ch, &r);
    assert_string_equal(r.body, want);
    template_free(&r);
}

static void
test_every_kind_locale_and_channel_renders(void **state)
{
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        json_t *data = accented_data(kinds[k]);
        assert_non_null(data);
        for (size_t l = 0; l < sizeof(locales) / sizeof(locales[0]); l++) {
            for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
                struct rendered r;
                render_ok(kinds[k], locales[l], data, (enum channel)ch, &r);
                template_free(&r);
            }
        }
        json_decref(data);
    }
}

/* However accented the data, every SMS stays in GSM-7. */
static void
test_sms_of_every_kind_is_gsm7(void **state)
{
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        json_t *data = accented_data(kinds[k]);
        for (size_t l = 0; l < sizeof(locales) / sizeof(locales[0]); l++) {
            struct rendered r;
            int ucs2 = -1;
            render_ok(kinds[k], locales[l], data, CHANNEL_SMS, &r);
            assert_true(sms_segments(r.body, &ucs2, NULL) >= 1);
            assert_int_equal(ucs2, 0);
            template_free(&r);
        }
        json_decref(data);
    }
}

static void
test_panic_sms_spanish(void **state)
{
    json_t *d =
        json_pack("{s:s,s:s,s:s}", "unitId", "101", "userName", "Ana Gómez", "message", "Ayuda");

    assert_body(
        "panic", "es-CO", d, CHANNEL_SMS,
        "ALERTA DE PANICO - Unidad 101 (Ana Gomez): Ayuda. Atienda en la porteria. Armonia");
    assert_body(
        "panic", NULL, d, CHANNEL_SMS,
        "ALERTA DE PANICO - Unidad 101 (Ana Gomez): Ayuda. Atienda en la porteria. Armonia");
    assert_body("panic", "en", d, CHANNEL_SMS,
                "PANIC ALERT - Unit 101 (Ana Gomez): Ayuda. Respond at the gate. Armonia");
    json_decref(d);
}

/* Push and e-mail keep the accents SMS has to drop. */
static void
test_panic_push_keeps_accents(void **state)
{
    json_t *d =
        json_pack("{s:i,s:s,s:s}", "unitId", 101, "userName", "Ana Gómez", "message", "¡Ayuda!");
    struct rendered r;

    render_ok("panic", "es-CO", d, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Alerta de pánico - Unidad 101");
    assert_string_equal(r.body, "Unidad 101 (Ana Gómez): ¡Ayuda! Atienda en la portería.");
    template_free(&r);
    render_ok("panic", "en-US", d, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Panic alert - Unit 101");
    assert_string_equal(r.body, "Unit 101 (Ana Gómez): ¡Ayuda! Respond at the gate.");
    template_free(&r);
    json_decref(d);
}

static void
test_visitor_texts(void **state)
{
    json_t *d = json_pack("{s:s,s:s}", "unitId", "101", "name", "Mensajero Rappi");
    struct rendered r;

    assert_body("visitor", "es-CO", d, CHANNEL_SMS,
                "Armonia: Visitante en porteria para la unidad 101: Mensajero Rappi. Autorice el "
                "ingreso en la app.");
    assert_body("visitor", "en", d, CHANNEL_SMS,
                "Armonia: Visitor at the gate for unit 101: Mensajero Rappi. Authorize entry in "
                "the app.");
    render_ok("visitor", "es", d, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Visitante en portería");
    assert_string_equal(r.body,
                        "Mensajero Rappi espera en la portería (unidad 101). Autorice el ingreso "
                        "en la app.");
    template_free(&r);
    json_decref(d);
}

static void
test_payment_each_status_has_its_sentence(void **state)
{
    static const struct {
        const char *status, *sms_es, *push_en;
    } cases[] = {
        {"COMPLETED", "Armonia: su pago de $150.000 COP fue aprobado.",
         "Your payment of $150,000 COP was approved."},
        {"FAILED",
         "Armonia: su pago de $150.000 COP fue rechazado. Intente de nuevo o use otro medio de "
         "pago.",
         "Your payment of $150,000 COP was declined. Please try again or use another payment "
         "method."},
        {"PENDING",
         "Armonia: su pago de $150.000 COP esta en proceso. Le avisaremos cuando se confirme.",
         "Your payment of $150,000 COP is being processed. We will let you know when it is "
         "confirmed."},
        {"CANCELLED", "Armonia: su pago de $150.000 COP fue cancelado.",
         "Your payment of $150,000 COP was cancelled."},
        {"REFUNDED", "Armonia: su pago de $150.000 COP fue reembolsado.",
         "Your payment of $150,000 COP was refunded."},
        {"ON_HOLD",
         "Armonia: hay una novedad en su pago de $150.000 COP. Consulte el detalle en la app.",
         "There is an update on your payment of $150,000 COP. See the details in the app."},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *d = json_pack("{s:i,s:s,s:s}", "amount", 150000, "currency", "COP", "status",
                              cases[i].status);
        assert_body("payment", "es-CO", d, CHANNEL_SMS, cases[i].sms_es);
        assert_body("payment", "en", d, CHANNEL_PUSH, cases[i].push_en);
        json_decref(d);
    }
}

static void
test_payment_push_spanish_keeps_accents(void **state)
{
    json_t *d = json_pack("{s:i,s:s}", "amount", 80000, "status", "pending");
    struct rendered r;

    render_ok("payment", NULL, d, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Pago en proceso");
    assert_string_equal(
        r.body, "Su pago de $80.000 COP está en proceso. Le avisaremos cuando se confirme.");
    template_free(&r);
    json_decref(d);
}

static void
test_payment_amount_formats(void **state)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"amount\":1234567,\"status\":\"COMPLETED\"}",
         "Su pago de $1.234.567 COP fue aprobado."},
        {"{\"amount\":\"150000.00\",\"currency\":\"COP\",\"status\":\"COMPLETED\"}",
         "Su pago de $150.000 COP fue aprobado."},
        {"{\"amount\":150000.5,\"currency\":\"COP\",\"status\":\"COMPLETED\"}",
         "Su pago de $150.001 COP fue aprobado."},
        {"{\"amount\":999,\"currency\":\"COP\",\"status\":\"COMPLETED\"}",
         "Su pago de $999 COP fue aprobado."},
        {"{\"amount\":0,\"status\":\"COMPLETED\"}", "Su pago de $0 COP fue aprobado."},
        {"{\"amount\":150,\"currency\":\"USD\",\"status\":\"COMPLETED\"}",
         "Su pago de 150.00 USD fue aprobado."},
        {"{\"amount\":\"42.5\",\"currency\":\"usd\",\"status\":\"COMPLETED\"}",
         "Su pago de 42.50 USD fue aprobado."},
        {"{\"amount\":10.999,\"currency\":\"EUR\",\"status\":\"REFUNDED\"}",
         "Su pago de 11.00 EUR fue reembolsado."},
        {"{\"amount\":12,\"currency\":\"dollars\",\"status\":\"COMPLETED\"}",
         "Su pago de 12.00 fue aprobado."},
        {"{\"amount\":\"mucho\",\"status\":\"COMPLETED\"}", "Su pago fue aprobado."},
        {"{\"amount\":1e300,\"status\":\"COMPLETED\"}", "Su pago fue aprobado."},
        {"{\"amount\":null,\"status\":\"COMPLETED\"}", "Su pago fue aprobado."},
        {"{\"status\":\"COMPLETED\"}", "Su pago fue aprobado."},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *d = json_loads(cases[i].json, 0, NULL);
        assert_non_null(d);
        assert_body("payment", "es-CO", d, CHANNEL_PUSH, cases[i].want);
        json_decref(d);
    }
}

static void
test_announcement_texts(void **state)
{
    json_t *d =
        json_pack("{s:s,s:s}", "title", "Corte de agua", "body", "Mañana no habrá agua de 8 a 12.");
    struct rendered r;

    assert_body("announcement", "es-CO", d, CHANNEL_SMS,
                "Armonia - Corte de agua: Mañana no habra agua de 8 a 12.");
    render_ok("announcement", "es-CO", d, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Corte de agua");
    assert_string_equal(r.body, "Mañana no habrá agua de 8 a 12.");
    template_free(&r);
    render_ok("announcement", "es-CO", d, CHANNEL_EMAIL, &r);
    assert_string_equal(r.title, "Comunicado: Corte de agua");
    assert_string_equal(r.body, "Mañana no habrá agua de 8 a 12.\n\n-- \nArmonía\n");
    template_free(&r);
    json_decref(d);

    d = json_pack("{s:s,s:s}", "title", "¡Evacuación!", "body", "Salgan por la escalera B.");
    assert_body("announcement", "es", d, CHANNEL_SMS,
                "Armonia - ¡Evacuacion! Salgan por la escalera B.");
    json_decref(d);
}

static void
test_long_announcement_sms_is_cut(void **state)
{
    size_t n = 3000;
    char *text = malloc(n * 2 + 1);
    json_t *d;
    struct rendered r;
    int ucs2 = -1;

    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * 2, "ó", 2);
    text[n * 2] = '\0';
    d = json_pack("{s:s,s:s}", "title", "Asamblea", "body", text);
    render_ok("announcement", "es-CO", d, CHANNEL_SMS, &r);
    assert_true(utf16_len(r.body) <= SMS_MAX_CHARS);
    assert_true(utf16_len(r.body) >= SMS_MAX_CHARS - 3);
    assert_string_equal(r.body + strlen(r.body) - 3, "...");
    assert_int_equal(strncmp(r.body, "Armonia - Asamblea: ooo", 23), 0);
    sms_segments(r.body, &ucs2, NULL);
    assert_int_equal(ucs2, 0);
    template_free(&r);

    /* Push and e-mail carry the whole text. */
    render_ok("announcement", "es-CO", d, CHANNEL_PUSH, &r);
    assert_int_equal(strlen(r.body), n * 2);
    template_free(&r);
    json_decref(d);
    free(text);
}

/* A text that cannot be folded (emoji) still respects the limit. */
static void
test_long_sms_with_emoji_is_cut_on_a_boundary(void **state)
{
    size_t n = 1000;
    char *text = malloc(n * 4 + 1);
    json_t *d;
    struct rendered r;

    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * 4, "🔥", 4);
    text[n * 4] = '\0';
    d = json_pack("{s:s}", "body", text);
    render_ok("announcement", "en", d, CHANNEL_SMS, &r);
    assert_true(utf16_len(r.body) <= SMS_MAX_CHARS);
    assert_int_equal(sms_segments(r.body, NULL, NULL) > 0, 1);
    assert_string_equal(r.body + strlen(r.body) - 3, "...");
    assert_memory_equal(r.body + strlen(r.body) - 7, "🔥", 4);
    template_free(&r);
    json_decref(d);
    free(text);
}

static void
test_email_html_is_escaped(void **state)
{
    json_t *d = json_pack("{s:s,s:s}", "title", "<script>alert('x')</script>", "body",
                          "Pague en <b>efectivo</b> & \"rápido\"\nGracias");
    struct rendered r;

    render_ok("announcement", "es-CO", d, CHANNEL_EMAIL, &r);
    assert_null(strstr(r.html, "<script>"));
    assert_null(strstr(r.html, "<b>"));
    assert_non_null(strstr(r.html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert_non_null(strstr(
        r.html, "Pague en &lt;b&gt;efectivo&lt;/b&gt; &amp; &quot;rápido&quot;<br>\nGracias"));
    assert_non_null(strstr(r.html, "<html lang=\"es\">"));
    assert_non_null(strstr(r.html, "<meta charset=\"utf-8\">"));
    /* The plain-text part and the subject are not HTML: left as written. */
    assert_string_equal(r.title, "Comunicado: <script>alert('x')</script>");
    assert_non_null(strstr(r.body, "Pague en <b>efectivo</b>"));
    template_free(&r);
    json_decref(d);
}

/* A name with a line break must not reach an e-mail subject (header injection). */
static void
test_control_characters_never_reach_a_title(void **state)
{
    json_t *d = json_pack("{s:s,s:s}", "title", "Hola\r\nBcc: intruso@example.com", "body",
                          "Línea 1\r\nLínea 2\rLínea 3\x01");
    struct rendered r;

    render_ok("announcement", "es-CO", d, CHANNEL_EMAIL, &r);
    assert_string_equal(r.title, "Comunicado: Hola  Bcc: intruso@example.com");
    assert_string_equal(r.body, "Línea 1\nLínea 2\nLínea 3\n\n-- \nArmonía\n");
    template_free(&r);
    json_decref(d);
}

static void
test_missing_fields_degrade(void **state)
{
    json_t *empty = json_object();
    json_t *wrong =
        json_pack("{s:b,s:[],s:n,s:s}", "unitId", 1, "userName", "message", "name", "   ");

    assert_body("panic", "es-CO", NULL, CHANNEL_PUSH,
                "Un residente pidió ayuda. Atienda en la portería.");
    assert_body("panic", "es-CO", empty, CHANNEL_SMS,
                "ALERTA DE PANICO - Un residente pidio ayuda. Atienda en la porteria. Armonia");
    assert_body("panic", "en", wrong, CHANNEL_PUSH,
                "A resident asked for help. Respond at the gate.");
    assert_body("visitor", "es-CO", wrong, CHANNEL_PUSH,
                "Un visitante espera en la portería. Autorice el ingreso en la app.");
    assert_body("visitor", "es-CO", empty, CHANNEL_SMS,
                "Armonia: Visitante en porteria. Autorice el ingreso en la app.");
    assert_body("payment", "es-CO", empty, CHANNEL_PUSH,
                "Hay una novedad en su pago. Consulte el detalle en la app.");
    assert_body("announcement", "es-CO", empty, CHANNEL_SMS,
                "Armonia: hay un nuevo comunicado de la administracion. Consultelo en la app.");
    assert_body("announcement", "es-CO", empty, CHANNEL_PUSH,
                "La administración publicó un comunicado. Consúltelo en la app.");
    assert_body("panic_claimed", "es-CO", empty, CHANNEL_PUSH, "La alerta de pánico fue atendida.");
    json_decref(empty);
    json_decref(wrong);
}

static void
test_partial_fields(void **state)
{
    json_t *d = json_pack("{s:s}", "userName", "Ana");
    json_t *u = json_pack("{s:s}", "unitId", "7");

    assert_body("panic", "es-CO", d, CHANNEL_PUSH, "Ana pidió ayuda. Atienda en la portería.");
    assert_body("panic", "en", u, CHANNEL_PUSH, "Unit 7 asked for help. Respond at the gate.");
    assert_body("visitor", "es-CO", u, CHANNEL_SMS,
                "Armonia: Visitante en porteria para la unidad 7. Autorice el ingreso en la app.");
    json_decref(d);
    json_decref(u);
}

static void
test_panic_claimed(void **state)
{
    json_t *d = json_pack("{s:s,s:s}", "guardId", "g-17", "unitId", "302");

    assert_body("panic_claimed", "es-CO", d, CHANNEL_PUSH,
                "La alerta de pánico de la unidad 302 fue atendida por el guarda g-17.");
    assert_body("panic_claimed", "es-CO", d, CHANNEL_SMS,
                "Armonia: la alerta de panico de la unidad 302 fue atendida por el guarda g-17.");
    assert_body("panic_claimed", "en", d, CHANNEL_PUSH,
                "The panic alert from unit 302 was claimed by guard g-17.");
    json_decref(d);
}

static void
test_unknown_kind_is_generic(void **state)
{
    struct rendered r;

    render_ok("package_received", "es-CO", NULL, CHANNEL_PUSH, &r);
    assert_string_equal(r.title, "Nueva notificación");
    assert_string_equal(r.body, "Nueva notificación: package_received");
    template_free(&r);
    assert_body("package_received", "en", NULL, CHANNEL_PUSH, "New notification: package_received");
    assert_body("package_received", "es", NULL, CHANNEL_SMS,
                "Armonia - Nueva notificacion: package_received");
    assert_body(NULL, "es", NULL, CHANNEL_PUSH, "Nueva notificación");
}

static void
test_locale_selection(void **state)
{
    json_t *d = json_pack("{s:s}", "unitId", "1");

    assert_body("visitor", "EN-us", d, CHANNEL_SMS,
                "Armonia: Visitor at the gate for unit 1. Authorize entry in the app.");
    assert_body("visitor", "english", d, CHANNEL_SMS,
                "Armonia: Visitante en porteria para la unidad 1. Autorice el ingreso en la app.");
    assert_body("visitor", "", d, CHANNEL_SMS,
                "Armonia: Visitante en porteria para la unidad 1. Autorice el ingreso en la app.");
    json_decref(d);
}

static void
test_email_english_html(void **state)
{
    json_t *d = json_pack("{s:s,s:s}", "unitId", "101", "name", "Rappi");
    struct rendered r;

    render_ok("visitor", "en", d, CHANNEL_EMAIL, &r);
    assert_string_equal(r.title, "Visitor at the gate");
    assert_non_null(strstr(r.html, "<html lang=\"en\">"));
    assert_non_null(strstr(r.html, "<h2>Visitor at the gate</h2>"));
    assert_non_null(strstr(r.html, "Rappi is waiting at the gate (unit 101)."));
    template_free(&r);
    json_decref(d);
}

/* The channel names of hub.policies, from channel.c, which the templates key on. */
static void
test_channel_names(void **state)
{
    enum channel c = CHANNEL_EMAIL;

    assert_string_equal(channel_name(CHANNEL_PUSH), "push");
    assert_string_equal(channel_name(CHANNEL_SMS), "sms");
    assert_string_equal(channel_name(CHANNEL_EMAIL), "email");
    assert_string_equal(channel_name((enum channel)3), "?");
    assert_int_equal(channel_parse("push", &c), 0);
    assert_int_equal(c, CHANNEL_PUSH);
    assert_int_equal(channel_parse("sms", &c), 0);
    assert_int_equal(c, CHANNEL_SMS);
    assert_int_equal(channel_parse("email", &c), 0);
    assert_int_equal(c, CHANNEL_EMAIL);
    assert_int_equal(channel_parse("ws", &c), -1);
    assert_int_equal(channel_parse("SMS", &c), -1);
    assert_int_equal(channel_parse("", &c), -1);
    assert_int_equal(channel_parse(NULL, &c), -1);
    assert_int_equal(c, CHANNEL_EMAIL);
}

static void
test_bad_arguments(void **state)
{
    struct rendered r = {0};

    assert_int_equal(template_render("panic", NULL, NULL, (enum channel)7, &r), -1);
    assert_null(r.title);
    assert_null(r.body);
    assert_int_equal(template_render("panic", NULL, NULL, CHANNEL_PUSH, NULL), -1);
    template_free(NULL);
    template_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_locale_and_channel_renders),
        cmocka_unit_test(test_sms_of_every_kind_is_gsm7),
        cmocka_unit_test(test_panic_sms_spanish),
        cmocka_unit_test(test_panic_push_keeps_accents),
        cmocka_unit_test(test_visitor_texts),
        cmocka_unit_test(test_payment_each_status_has_its_sentence),
        cmocka_unit_test(test_payment_push_spanish_keeps_accents),
        cmocka_unit_test(test_payment_amount_formats),
        cmocka_unit_test(test_announcement_texts),
        cmocka_unit_test(test_long_announcement_sms_is_cut),
        cmocka_unit_test(test_long_sms_with_emoji_is_cut_on_a_boundary),
        cmocka_unit_test(test_email_html_is_escaped),
        cmocka_unit_test(test_control_characters_never_reach_a_title),
        cmocka_unit_test(test_missing_fields_degrade),
        cmocka_unit_test(test_partial_fields),
        cmocka_unit_test(test_panic_claimed),
        cmocka_unit_test(test_unknown_kind_is_generic),
        cmocka_unit_test(test_locale_selection),
        cmocka_unit_test(test_email_english_html),
        cmocka_unit_test(test_channel_names),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
