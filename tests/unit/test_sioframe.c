/*
 * test_sioframe.c - unit tests for hub/sioframe.c, the Socket.IO codec
 * (reached through frame.c's FRAME_SIO, as the hub reaches it): what a
 * socket.io-client reads for each map the hub sends (docs/protocol.md,
 * "Socket.IO compatibility"), compared as text the way the client's parser
 * sees it, and how the packets a client sends are taken apart.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"
#include "sioframe.h"

/* The payload of b (a single text frame) as a NUL-terminated string (the caller
 * frees it); b is released. */
static char *
text(struct buf *b)
{
    assert_non_null(b);
    assert_int_equal(b->binary, 0);
    assert_int_equal(b->framed, 0);
    char *s = malloc(b->len + 1);
    memcpy(s, buf_data(b), b->len);
    s[b->len] = '\0';
    buf_unref(b);
    return s;
}

/* Whether s starts with prefix. */
static int
starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/* Splits a framed buffer of two short text frames into their payloads
 * (the caller frees both) and releases it. */
static void
two_texts(struct buf *b, char **first, char **second)
{
    assert_non_null(b);
    assert_int_equal(b->framed, 1);
    const unsigned char *p = buf_data(b), *end = p + b->len;
    char **out[2] = {first, second};
    for (int i = 0; i < 2; i++) {
        assert_true(end - p >= 2);
        assert_int_equal(p[0], 0x81); /* final text frame */
        size_t n = p[1] & 0x7f, hl = 2;
        if (n == 126) {
            n = (size_t)p[2] << 8 | p[3];
            hl = 4;
        }
        assert_true((size_t)(end - p) >= hl + n);
        *out[i] = strndup((const char *)p + hl, n);
        p += hl + n;
    }
    assert_ptr_equal(p, end);
    buf_unref(b);
}

/* Encodes the welcome w, checks that its CONNECT answer is connect, and
 * returns the packet after it (the caller frees it). */
static char *
after_connect(const json_t *w, const char *connect)
{
    char *first, *second;
    two_texts(frame_encode(FRAME_SIO, w), &first, &second);
    assert_string_equal(first, connect);
    free(first);
    return second;
}

static json_t *
event_map(const char *kind, int ack)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s, s:b, s:I, s:s}", "type", "event", "id",
                     (json_int_t)42, "seq", (json_int_t)1234, "kind", kind, "priority", "high",
                     "ack", ack, "ts", (json_int_t)1764262800123, "room", "all");
}

static void
test_event_without_ack(void **state)
{
    (void)state;
    json_t *m = event_map("visitor", 0);
    static const char data[] = "{\"name\": \"Ana\", \"n\": 12345678901234567890}";
    char *s = text(frame_encode_event(FRAME_SIO, m, data, strlen(data)));
    assert_string_equal(s,
                        "42[\"visitor\",{\"type\":\"event\",\"id\":42,\"seq\":1234,\"kind\":"
                        "\"visitor\",\"priority\":\"high\",\"ack\":false,\"ts\":1764262800123,"
                        "\"room\":\"all\",\"data\":{\"name\":\"Ana\",\"n\":12345678901234567890}},"
                        "\"1234\"]");
    free(s);
    json_decref(m);
}

static void
test_event_with_ack_then_offset(void **state)
{
    (void)state;
    json_t *m = event_map("panic", 1);
    char *first, *second;
    two_texts(frame_encode_event(FRAME_SIO, m, "{}", 2), &first, &second);
    assert_true(starts(first, "4242[\"panic\",{\"type\":\"event\",\"id\":42,"));
    assert_non_null(strstr(first, "\"data\":{}},\"1234\"]"));
    assert_string_equal(second, "42[\"hub:offset\",\"1234\"]");
    free(first);
    free(second);
    json_decref(m);
}

static void
test_event_reserved_kind(void **state)
{
    (void)state;
    json_t *m = event_map("disconnect", 0);
    char *s = text(frame_encode_event(FRAME_SIO, m, "{}", 2));
    assert_true(starts(s, "42[\"hub:disconnect\",{"));
    free(s);
    json_decref(m);
}

static void
test_unauthorized_is_connect_error(void **state)
{
    (void)state;
    char *s = text(frame_error(FRAME_SIO, "unauthorized", "token expired", NULL));
    assert_string_equal(s,
                        "44{\"message\":\"token expired\",\"data\":{\"code\":\"unauthorized\"}}");
    free(s);
}

static void
test_reply_to_ack_id(void **state)
{
    (void)state;
    json_t *ref = json_integer(7);
    char *s = text(frame_error(FRAME_SIO, "forbidden", "no", ref));
    assert_string_equal(s, "437[{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"no\"}]");
    free(s);
    json_t *m = json_pack("{s:s, s:s, s:i}", "type", "subscribed", "room", "unit:302", "ref", 0);
    s = text(frame_encode(FRAME_SIO, m));
    assert_string_equal(s, "430[{\"type\":\"subscribed\",\"room\":\"unit:302\"}]");
    free(s);
    json_decref(m);
    json_decref(ref);
}

static void
test_error_without_ack_is_an_event(void **state)
{
    (void)state;
    json_t *ref = json_string("0011223344556677-9");
    char *s = text(frame_error(FRAME_SIO, "resume_gap", "gone", ref));
    assert_string_equal(
        s, "42[\"error\",{\"type\":\"error\",\"code\":\"resume_gap\",\"message\":\"gone\"}]");
    free(s);
    json_decref(ref);
}

static void
test_welcome_is_connect_then_event(void **state)
{
    (void)state;
    json_t *w = json_pack("{s:s, s:s, s:s, s:I}", "type", "welcome", "session", "0011223344556677",
                          "user", "g1", "last_seq", (json_int_t)99);
    char *ev = after_connect(w, "40{\"sid\":\"0011223344556677\",\"pid\":\"0011223344556677-99\"}");
    assert_true(starts(ev, "42[\"welcome\",{\"type\":\"welcome\","));
    free(ev);

    /* A recovered session: the pid the client sent (the auth's ref) comes back. */
    json_object_set_new(w, "ref", json_string("ffeeddccbbaa9988-5"));
    ev = after_connect(w, "40{\"sid\":\"0011223344556677\",\"pid\":\"ffeeddccbbaa9988-5\"}");
    assert_null(strstr(ev, "ffeeddccbbaa9988"));
    free(ev);

    /* A refresh's welcome (it carries exp) is no second CONNECT. */
    json_object_set_new(w, "exp", json_integer(2000000000));
    json_object_set_new(w, "ref", json_integer(3));
    char *s = text(frame_encode(FRAME_SIO, w));
    assert_true(starts(s, "433[{\"type\":\"welcome\","));
    free(s);
    json_decref(w);
}

/* sioframe_parse() on a NUL-terminated s; returns its result. */
static int
parse(const char *s, struct sioframe_packet *pk, const char **why)
{
    *why = NULL;
    return sioframe_parse(s, strlen(s), pk, why);
}

static void
test_parse_packets(void **state)
{
    (void)state;
    struct sioframe_packet pk;
    const char *why;
    assert_int_equal(parse("40{\"token\":\"t\"}", &pk, &why), 0);
    assert_int_equal(pk.eio, '4');
    assert_int_equal(pk.type, '0');
    assert_int_equal(pk.nsp_len, 1);
    assert_int_equal(pk.id, -1);
    assert_int_equal(pk.len, 13);
    assert_true(starts(pk.data, "{\"token\""));

    assert_int_equal(parse("4217[\"subscribe\",{}]", &pk, &why), 0);
    assert_int_equal(pk.type, '2');
    assert_int_equal(pk.id, 17);
    assert_true(starts(pk.data, "[\"subscribe\""));

    assert_int_equal(parse("43123[]", &pk, &why), 0);
    assert_int_equal(pk.type, '3');
    assert_int_equal(pk.id, 123);
    assert_int_equal(pk.len, 2);

    assert_int_equal(parse("40/admin,{}", &pk, &why), 0);
    assert_int_equal(pk.nsp_len, 6);
    assert_true(starts(pk.nsp, "/admin"));
    assert_int_equal(pk.len, 2);

    assert_int_equal(parse("3", &pk, &why), 0);
    assert_int_equal(pk.eio, '3');
    assert_int_equal(parse("2probe", &pk, &why), 0);
    assert_int_equal(pk.len, 5);
}

static void
test_parse_refusals(void **state)
{
    (void)state;
    struct sioframe_packet pk;
    const char *why;
    static const char *const bad[] = {
        "",                         /* empty */
        "0{}",                      /* the open packet is the server's */
        "7",                        /* no such Engine.IO type */
        "4",                        /* a message without a Socket.IO type */
        "49[]",                     /* no such Socket.IO type */
        "4212345678901234567890[]", /* an ack id over 18 digits */
        "40/a\"b,{}",               /* a namespace that cannot be echoed */
        "40/0123456789012345678901234567890123456789012345678901234567890123,{}", /* 65 bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &pk, &why), -1);
        assert_non_null(why);
    }
    /* Only the bytes given are read: a namespace cut by the end of the message. */
    static const char cut[] = "40/admin";
    assert_int_equal(sioframe_parse(cut, 5, &pk, &why), 0);
    assert_int_equal(pk.nsp_len, 3);
    assert_int_equal(pk.len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_without_ack),
        cmocka_unit_test(test_event_with_ack_then_offset),
        cmocka_unit_test(test_event_reserved_kind),
        cmocka_unit_test(test_unauthorized_is_connect_error),
        cmocka_unit_test(test_reply_to_ack_id),
        cmocka_unit_test(test_error_without_ack_is_an_event),
        cmocka_unit_test(test_welcome_is_connect_then_event),
        cmocka_unit_test(test_parse_packets),
        cmocka_unit_test(test_parse_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
