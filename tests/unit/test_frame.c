/*
 * test_frame.c - unit tests for hub/frame.c, the JSON and MessagePack codec.
 *
 * Server frames must survive encode then decode unchanged in both formats and
 * mean the same map in either; every malformed client frame must be refused
 * with the reason the client will read in its bad_request error. MessagePack
 * inputs that are meant to be malformed are written out byte by byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"

#define FMT_NAME(fmt) ((fmt) == FRAME_JSON ? "json" : "msgpack")

/* Decodes what frame_encode() produced, failing the test with the reason if refused. */
static json_t *
decode_buf(enum frame_fmt fmt, struct buf *b)
{
    const char *why = NULL;
    json_t *v = frame_decode(fmt, buf_data(b), b->len, &why);

    if (v == NULL)
        fail_msg("%s decode refused its own output: %s", FMT_NAME(fmt), why);
    return v;
}

/* Asserts decode(encode(x)) equals x and the frame type matches the format. */
static void
assert_round_trip(enum frame_fmt fmt, const json_t *x)
{
    struct buf *b = frame_encode(fmt, x);
    json_t *y;

    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->binary, fmt == FRAME_MSGPACK ? 1 : 0);
    y = decode_buf(fmt, b);
    if (!json_equal(x, y))
        fail_msg("%s round trip changed the frame", FMT_NAME(fmt));
    json_decref(y);
    buf_unref(b);
}

/* Asserts data is refused with exactly the given reason. */
static void
assert_rejected(enum frame_fmt fmt, const void *data, size_t len, const char *reason)
{
    const char *why = NULL;
    json_t *v = frame_decode(fmt, data, len, &why);

    if (v != NULL) {
        json_decref(v);
        fail_msg("%s input accepted, expected \"%s\"", FMT_NAME(fmt), reason);
    }
    assert_non_null(why);
    assert_string_equal(why, reason);
}

/* Asserts data decodes to the same value as the JSON text expect. */
static void
assert_decodes_to(enum frame_fmt fmt, const void *data, size_t len, const char *expect)
{
    const char *why = NULL;
    json_t *want = json_loads(expect, 0, NULL);
    json_t *got = frame_decode(fmt, data, len, &why);

    assert_non_null(want);
    if (got == NULL)
        fail_msg("%s input refused: %s", FMT_NAME(fmt), why);
    if (!json_equal(want, got))
        fail_msg("%s input decoded to something else than %s", FMT_NAME(fmt), expect);
    json_decref(want);
    json_decref(got);
}

#define REJECT_JSON(text, reason) assert_rejected(FRAME_JSON, text, sizeof(text) - 1, reason)

#define REJECT_MP(reason, ...)                                                                     \
    do {                                                                                           \
        static const unsigned char in_[] = {__VA_ARGS__};                                          \
        assert_rejected(FRAME_MSGPACK, in_, sizeof(in_), reason);                                  \
    } while (0)

static json_t *
welcome_frame(void)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s,s,s], s:I}", "type", "welcome",
                          "session", "c0ffee-01", "user", "u-7", "tenant", "torres_del_parque",
                          "role", "guard", "rooms", "all", "user:u-7", "role:guard", "unit:302",
                          "last_seq", (json_int_t)9007199254740993LL);

    assert_non_null(v);
    return v;
}

static json_t *
event_frame(void)
{
    json_t *v = json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:b, s:I, s:s,"
        " s:{s:s, s:s, s:I, s:f, s:s, s:n, s:{s:b, s:b}, s:[I,I,I,I,I,I,I,I,I,I,f,f,f], s:[]}}",
        "type", "event", "id", (json_int_t)42, "seq", (json_int_t)9007199254740993LL, "kind",
        "panic", "priority", "critical", "ack", 1, "ts", (json_int_t)1764262800123LL, "room",
        "role:guard", "data", "message", "pánico ñ ¡ \xf0\x9f\x9a\xa8", "unit", "302", "delta",
        (json_int_t)-5, "amount", 12500.75, "note", "", "resolved", "flags", "read", 0, "urgent", 1,
        "ints", (json_int_t)-1, (json_int_t)127, (json_int_t)128, (json_int_t)-32, (json_int_t)-33,
        (json_int_t)-129, (json_int_t)65536, (json_int_t)-2147483649LL, (json_int_t)INT64_MAX,
        (json_int_t)INT64_MIN, 0.1, -2.5e300, 1.0, "empty");

    assert_non_null(v);
    return v;
}

static void
test_round_trip_welcome(void **state)
{
    json_t *x = welcome_frame();

    assert_round_trip(FRAME_JSON, x);
    assert_round_trip(FRAME_MSGPACK, x);
    json_decref(x);
}

static void
test_round_trip_event(void **state)
{
    json_t *x = event_frame();

    assert_round_trip(FRAME_JSON, x);
    assert_round_trip(FRAME_MSGPACK, x);
    json_decref(x);
}

static void
test_round_trip_small_frames(void **state)
{
    const char *texts[] = {
        "{}",
        "{\"type\":\"pong\"}",
        "{\"type\":\"subscribed\",\"room\":\"unit:302\",\"ref\":null}",
        "{\"type\":\"error\",\"code\":\"resume_gap\",\"message\":\"\",\"oldest\":0}",
        "{\"\":\"\",\"t\":true,\"f\":false,\"n\":null,\"r\":-0.5,\"i\":-5}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *x = json_loads(texts[i], 0, NULL);

        assert_non_null(x);
        assert_round_trip(FRAME_JSON, x);
        assert_round_trip(FRAME_MSGPACK, x);
        json_decref(x);
    }
}

/* The same frame through either format reaches the handler as the same map. */
static void
test_cross_format_encoded(void **state)
{
    json_t *x = event_frame();
    struct buf *bj = frame_encode(FRAME_JSON, x);
    struct buf *bm = frame_encode(FRAME_MSGPACK, x);
    json_t *vj, *vm;

    assert_non_null(bj);
    assert_non_null(bm);
    vj = decode_buf(FRAME_JSON, bj);
    vm = decode_buf(FRAME_MSGPACK, bm);
    assert_true(json_equal(vj, vm));
    assert_int_equal(json_integer_value(json_object_get(vm, "seq")), 9007199254740993LL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(vm, "data"), "message")),
                        "pánico ñ ¡ \xf0\x9f\x9a\xa8");
    json_decref(vj);
    json_decref(vm);
    buf_unref(bj);
    buf_unref(bm);
    json_decref(x);
}

/* A client's subscribe written by hand in both formats. */
static void
test_cross_format_client_frame(void **state)
{
    static const char text[] = "{\"type\":\"subscribe\",\"room\":\"unit:302\",\"ref\":-5}";
    static const unsigned char mp[] = {0x83, 0xa4, 't', 'y',  'p', 'e', 0xa9, 's',  'u',
                                       'b',  's',  'c', 'r',  'i', 'b', 'e',  0xa4, 'r',
                                       'o',  'o',  'm', 0xa8, 'u', 'n', 'i',  't',  ':',
                                       '3',  '0',  '2', 0xa3, 'r', 'e', 'f',  0xfb};

    assert_decodes_to(FRAME_JSON, text, sizeof(text) - 1, text);
    assert_decodes_to(FRAME_MSGPACK, mp, sizeof(mp), text);
}

/* Every MessagePack width a client library may choose decodes to the same values. */
static void
test_msgpack_wide_forms(void **state)
{
    static const unsigned char mp[] = {
        0xde, 0x00, 0x04,                                     /* map16, 4 pairs */
        0xd9, 0x01, 'a',                                      /* str8 key */
        0xdc, 0x00, 0x03, 0xd0, 0xfb, 0xcc, 0xff, 0xd1, 0x01, /* array16: int8, uint8, int16 */
        0x00, 0xda, 0x00, 0x01, 'b',                          /* str16 key */
        0xca, 0x3f, 0xc0, 0x00, 0x00,                         /* float32 1.5 */
        0xdb, 0x00, 0x00, 0x00, 0x01, 'c',                    /* str32 key */
        0xdd, 0x00, 0x00, 0x00, 0x02,                         /* array32 */
        0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* int64 min */
        0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* uint64 INT64_MAX */
        0xa1, 'd',                                            /* fixstr key */
        0xdf, 0x00, 0x00, 0x00, 0x01,                         /* map32 */
        0xa1, 'e',  0xce, 0x00, 0x01, 0x00, 0x00,             /* uint32 65536 */
    };

    assert_decodes_to(FRAME_MSGPACK, mp, sizeof(mp),
                      "{\"a\":[-5,255,256],\"b\":1.5,"
                      "\"c\":[-9223372036854775808,9223372036854775807],\"d\":{\"e\":65536}}");
}

/* Integers go out in their smallest MessagePack form, reals as float64. */
static void
test_msgpack_encoding_bytes(void **state)
{
    static const unsigned char want[] = {
        0x8a, 0xa1, 'a',  0x01, 0xa1, 'b',  0xfb, 0xa1, 'c',  0xcd, 0x01, 0x2c, 0xa1, 'd',
        0xd1, 0xff, 0x7f, 0xa1, 'e',  0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0xa1, 'f',  0xcb, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa1, 'g',  0xa2,
        0xc3, 0xb1, 0xa1, 'h',  0xc0, 0xa1, 'i',  0xc3, 0xa1, 'j',  0x90,
    };
    json_t *x = json_pack("{s:i, s:i, s:i, s:i, s:I, s:f, s:s, s:n, s:b, s:[]}", "a", 1, "b", -5,
                          "c", 300, "d", -129, "e", (json_int_t)9007199254740993LL, "f", 1.5, "g",
                          "ñ", "h", "i", 1, "j");
    struct buf *b;

    assert_non_null(x);
    b = frame_encode(FRAME_MSGPACK, x);
    assert_non_null(b);
    assert_int_equal(b->binary, 1);
    assert_int_equal(b->len, sizeof(want));
    assert_memory_equal(buf_data(b), want, sizeof(want));
    assert_ptr_equal(buf_data(b), b->mem + LWS_PRE);
    buf_unref(b);
    json_decref(x);
}

static void
test_json_encoding_is_compact_text(void **state)
{
    static const char want[] = "{\"type\":\"pong\",\"ref\":7,\"note\":\"pánico\"}";
    json_t *x = json_pack("{s:s, s:i, s:s}", "type", "pong", "ref", 7, "note", "pánico");
    struct buf *b;

    assert_non_null(x);
    b = frame_encode(FRAME_JSON, x);
    assert_non_null(b);
    assert_int_equal(b->binary, 0);
    assert_int_equal(b->len, sizeof(want) - 1);
    assert_memory_equal(buf_data(b), want, sizeof(want) - 1);
    buf_unref(b);
    json_decref(x);
}

static void
test_encode_refuses_non_objects(void **state)
{
    json_t *arr = json_array();
    json_t *num = json_integer(1);
    json_t *obj = json_object();

    assert_null(frame_encode(FRAME_JSON, arr));
    assert_null(frame_encode(FRAME_MSGPACK, arr));
    assert_null(frame_encode(FRAME_JSON, num));
    assert_null(frame_encode(FRAME_MSGPACK, num));
    assert_null(frame_encode(FRAME_JSON, NULL));
    assert_null(frame_encode(FRAME_MSGPACK, NULL));
    assert_null(frame_encode((enum frame_fmt)7, obj));
    json_decref(arr);
    json_decref(num);
    json_decref(obj);
}

static void
test_json_malformed(void **state)
{
    REJECT_JSON("{\"a\":", "not valid JSON");
    REJECT_JSON("{a:1}", "not valid JSON");
    REJECT_JSON("nope", "not valid JSON");
    REJECT_JSON("{\"a\":1} x", "trailing bytes after the map");
    REJECT_JSON("{}{}", "trailing bytes after the map");
    REJECT_JSON("{\"a\":99999999999999999999}", "number out of range");
    REJECT_JSON("{\"a\":\"\\u0000\"}", "string contains a NUL byte");
}

static void
test_json_top_level_must_be_map(void **state)
{
    REJECT_JSON("[{\"type\":\"ping\"}]", "frame must be a map");
    REJECT_JSON("\"ping\"", "frame must be a map");
    REJECT_JSON("42", "frame must be a map");
    REJECT_JSON("null", "frame must be a map");
}

static void
test_json_invalid_utf8(void **state)
{
    REJECT_JSON("{\"a\":\"\xff\"}", "not valid UTF-8");
    REJECT_JSON("{\"a\":\"\xc0\x80\"}", "not valid UTF-8");
    REJECT_JSON("{\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8");
    REJECT_JSON("{\"\xc3\":1}", "not valid UTF-8");
}

static void
test_json_duplicate_keys(void **state)
{
    REJECT_JSON("{\"type\":\"ping\",\"type\":\"auth\"}", "duplicate map key");
    REJECT_JSON("{\"a\":{\"b\":1,\"b\":1}}", "duplicate map key");
}

static void
test_empty_input(void **state)
{
    assert_rejected(FRAME_JSON, NULL, 0, "empty frame");
    assert_rejected(FRAME_JSON, "", 0, "empty frame");
    assert_rejected(FRAME_MSGPACK, NULL, 0, "empty frame");
    assert_rejected(FRAME_MSGPACK, "", 0, "empty frame");
}

static void
test_unknown_format_and_null_why(void **state)
{
    const char *why = NULL;

    assert_null(frame_decode((enum frame_fmt)7, "{}", 2, &why));
    assert_non_null(why);
    assert_null(frame_decode(FRAME_JSON, "[]", 2, NULL));
}

static void
test_msgpack_truncated(void **state)
{
    REJECT_MP("truncated MessagePack", 0x82, 0xa1, 'a', 0x01);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0xa5, 'a', 'b');
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0xcd, 0x01);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0xcb, 0x3f, 0xf8);
    REJECT_MP("truncated MessagePack", 0xde, 0x00);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0x92, 0x01);
}

/*
 * Headers announcing far more entries or bytes than the frame holds are
 * refused before anything is allocated for them.
 */
static void
test_msgpack_huge_counts(void **state)
{
    REJECT_MP("truncated MessagePack", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REJECT_MP("truncated MessagePack", 0xdf, 0xff, 0xff, 0xff, 0xff);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01);
    REJECT_MP("truncated MessagePack", 0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff);
    REJECT_MP("truncated MessagePack", 0x8f, 0xa1, 'a', 0x01);
}

static void
test_msgpack_trailing_bytes(void **state)
{
    REJECT_MP("trailing bytes after the map", 0x80, 0x00);
    REJECT_MP("trailing bytes after the map", 0x81, 0xa1, 'a', 0x01, 0x81);
    REJECT_MP("trailing bytes after the map", 0x81, 0xa1, 'a', 0x01, 0x81, 0xa1, 'a', 0x01);
}

static void
test_msgpack_top_level_must_be_map(void **state)
{
    REJECT_MP("frame must be a map", 0x91, 0x80);
    REJECT_MP("frame must be a map", 0xdc, 0x00, 0x00);
    REJECT_MP("frame must be a map", 0xa4, 'p', 'i', 'n', 'g');
    REJECT_MP("frame must be a map", 0x01);
    REJECT_MP("frame must be a map", 0xc0);
}

static void
test_msgpack_invalid_byte(void **state)
{
    REJECT_MP("not valid MessagePack", 0xc1);
    REJECT_MP("not valid MessagePack", 0x81, 0xa1, 'a', 0xc1);
}

static void
test_msgpack_non_string_key(void **state)
{
    REJECT_MP("map key is not a string", 0x81, 0x01, 0x01);
    REJECT_MP("map key is not a string", 0x81, 0xc0, 0x01);
    REJECT_MP("map key is not a string", 0x81, 0x91, 0x01, 0x01);
    REJECT_MP("map key is not a string", 0x81, 0xa1, 'a', 0x81, 0xcb, 0x3f, 0xf8, 0x00, 0x00, 0x00,
              0x00, 0x00, 0x00, 0x01);
}

static void
test_msgpack_bin_and_ext(void **state)
{
    REJECT_MP("binary values are not accepted", 0x81, 0xa1, 'a', 0xc4, 0x01, 0x00);
    REJECT_MP("binary values are not accepted", 0x81, 0xa1, 'a', 0xc5, 0x00, 0x00);
    REJECT_MP("binary values are not accepted", 0x81, 0xc4, 0x01, 'a', 0x01);
    REJECT_MP("binary values are not accepted", 0x81, 0xa1, 'a', 0xd4, 0x01, 0x00);
    REJECT_MP("binary values are not accepted", 0x81, 0xa1, 'a', 0xc7, 0x01, 0x05, 0x00);
    REJECT_MP("binary values are not accepted", 0x81, 0xa1, 'a', 0x91, 0xd6, 0xff, 0x00, 0x00, 0x00,
              0x00);
}

static void
test_msgpack_duplicate_keys(void **state)
{
    REJECT_MP("duplicate map key", 0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02);
    REJECT_MP("duplicate map key", 0x81, 0xa1, 'x', 0x82, 0xa0, 0xc0, 0xa0, 0xc0);
}

static void
test_msgpack_invalid_utf8(void **state)
{
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa1, 0xff);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa2, 0xc0, 0x80);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa3, 0xed, 0xa0, 0x80);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa2, 0xe2, 0x82);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa4, 0xf4, 0x90, 0x80, 0x80);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 'a', 0xa1, 0x80);
    REJECT_MP("not valid UTF-8", 0x81, 0xa1, 0xfe, 0x01);
    REJECT_MP("string contains a NUL byte", 0x81, 0xa1, 'a', 0xa2, 'x', 0x00);
}

static void
test_msgpack_valid_utf8_accepted(void **state)
{
    static const unsigned char mp[] = {0x81, 0xa1, 'a',  0xac, 'p',  0xc3, 0xa1, 'n',
                                       0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x9a, 0xa8, 0x21};

    assert_decodes_to(FRAME_MSGPACK, mp, sizeof(mp), "{\"a\":\"pán€\xf0\x9f\x9a\xa8!\"}");
}

static void
test_msgpack_integer_range(void **state)
{
    REJECT_MP("integer out of range", 0x81, 0xa1, 'a', 0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
              0x00, 0x00);
    REJECT_MP("integer out of range", 0x81, 0xa1, 'a', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
              0xff, 0xff);
}

static void
test_msgpack_non_finite_reals(void **state)
{
    REJECT_MP("number is not finite", 0x81, 0xa1, 'a', 0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00,
              0x00, 0x00);
    REJECT_MP("number is not finite", 0x81, 0xa1, 'a', 0xca, 0x7f, 0x80, 0x00, 0x00);
}

enum nest_kind { NEST_MAPS, NEST_ARRAYS, NEST_EMPTY_LAST };

/*
 * Builds a frame whose deepest container sits at depth (the frame's own map
 * is depth 1), in the requested format. Returns a malloc'd buffer and its
 * length in *len.
 */
static unsigned char *
nested(enum frame_fmt fmt, enum nest_kind kind, int depth, size_t *len)
{
    unsigned char *p = malloc((size_t)depth * 6 + 8), *q = p;

    assert_non_null(p);
    for (int i = 1; i <= depth; i++) {
        int last = i == depth;

        if (fmt == FRAME_JSON) {
            if (last && kind == NEST_EMPTY_LAST) {
                *q++ = '{';
            } else if (i == 1 || kind != NEST_ARRAYS) {
                memcpy(q, "{\"a\":", 5);
                q += 5;
            } else {
                *q++ = '[';
            }
        } else {
            if (last && kind == NEST_EMPTY_LAST) {
                *q++ = 0x80;
            } else if (i == 1 || kind != NEST_ARRAYS) {
                *q++ = 0x81;
                *q++ = 0xa1;
                *q++ = 'a';
            } else {
                *q++ = 0x91;
            }
        }
    }
    if (kind != NEST_EMPTY_LAST)
        *q++ = fmt == FRAME_JSON ? '1' : 0x01;
    for (int i = depth; i >= 1 && fmt == FRAME_JSON; i--)
        *q++ = (i == 1 || kind != NEST_ARRAYS) ? '}' : ']';
    *len = (size_t)(q - p);
    return p;
}

static void
assert_depth(enum frame_fmt fmt, enum nest_kind kind, int depth, int accepted)
{
    size_t len;
    unsigned char *in = nested(fmt, kind, depth, &len);
    const char *why = NULL;
    json_t *v = frame_decode(fmt, in, len, &why);

    if (accepted && v == NULL)
        fail_msg("%s depth %d refused: %s", FMT_NAME(fmt), depth, why);
    if (!accepted) {
        assert_null(v);
        assert_string_equal(why, "nesting too deep");
    }
    json_decref(v);
    free(in);
}

static void
test_depth_limit(void **state)
{
    enum frame_fmt fmts[] = {FRAME_JSON, FRAME_MSGPACK};
    enum nest_kind kinds[] = {NEST_MAPS, NEST_ARRAYS, NEST_EMPTY_LAST};

    for (size_t f = 0; f < 2; f++) {
        for (size_t k = 0; k < 3; k++) {
            assert_depth(fmts[f], kinds[k], 1, 1);
            assert_depth(fmts[f], kinds[k], FRAME_MAX_DEPTH, 1);
            assert_depth(fmts[f], kinds[k], FRAME_MAX_DEPTH + 1, 0);
        }
        assert_depth(fmts[f], NEST_MAPS, 5000, 0);
    }
}

/* Outbound data is ours: it may nest deeper than clients may send. */
static void
test_encode_deeper_than_inbound_limit(void **state)
{
    json_t *root = json_object(), *cur = root;
    struct buf *bj, *bm;

    assert_non_null(root);
    for (int i = 1; i < 40; i++) {
        json_t *child = json_object();

        assert_int_equal(json_object_set_new(cur, "a", child), 0);
        cur = child;
    }
    bj = frame_encode(FRAME_JSON, root);
    bm = frame_encode(FRAME_MSGPACK, root);
    assert_non_null(bj);
    assert_non_null(bm);
    assert_rejected(FRAME_JSON, buf_data(bj), bj->len, "nesting too deep");
    assert_rejected(FRAME_MSGPACK, buf_data(bm), bm->len, "nesting too deep");
    buf_unref(bj);
    buf_unref(bm);
    json_decref(root);
}

/* Decodes an error buffer and checks it against the JSON text expect. */
static void
assert_error_frame(enum frame_fmt fmt, struct buf *b, const char *expect)
{
    json_t *want = json_loads(expect, 0, NULL);
    json_t *got;

    assert_non_null(b);
    assert_non_null(want);
    assert_int_equal(b->binary, fmt == FRAME_MSGPACK ? 1 : 0);
    got = decode_buf(fmt, b);
    if (!json_equal(want, got))
        fail_msg("%s error frame differs from %s", FMT_NAME(fmt), expect);
    json_decref(want);
    json_decref(got);
    buf_unref(b);
}

static void
test_error_without_ref(void **state)
{
    static const char want[] =
        "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"room must be 1-100 bytes\"}";
    struct buf *b = frame_error(FRAME_JSON, "bad_request", "room must be 1-100 bytes", NULL);

    assert_non_null(b);
    assert_int_equal(b->len, sizeof(want) - 1);
    assert_memory_equal(buf_data(b), want, sizeof(want) - 1);
    buf_unref(b);
    assert_error_frame(FRAME_MSGPACK,
                       frame_error(FRAME_MSGPACK, "bad_request", "room must be 1-100 bytes", NULL),
                       want);
}

static void
test_error_with_string_ref(void **state)
{
    json_t *ref = json_string("sub-1");

    assert_error_frame(
        FRAME_JSON, frame_error(FRAME_JSON, "forbidden", "residents may not join unit:9", ref),
        "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"residents may not join "
        "unit:9\",\"ref\":\"sub-1\"}");
    assert_error_frame(
        FRAME_MSGPACK,
        frame_error(FRAME_MSGPACK, "forbidden", "residents may not join unit:9", ref),
        "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"residents may not join "
        "unit:9\",\"ref\":\"sub-1\"}");
    assert_int_equal(ref->refcount, 1);
    assert_string_equal(json_string_value(ref), "sub-1");
    json_decref(ref);
}

static void
test_error_with_integer_ref(void **state)
{
    json_t *ref = json_integer(7);
    static const char want[] =
        "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"slow down\",\"ref\":7}";

    assert_error_frame(FRAME_JSON, frame_error(FRAME_JSON, "rate_limited", "slow down", ref), want);
    assert_error_frame(FRAME_MSGPACK, frame_error(FRAME_MSGPACK, "rate_limited", "slow down", ref),
                       want);
    assert_int_equal(ref->refcount, 1);
    json_decref(ref);
}

/* A message cut inside client input still yields a valid frame, up to the last character. */
static void
test_error_message_edge_cases(void **state)
{
    assert_error_frame(FRAME_JSON, frame_error(FRAME_JSON, "bad_request", "bad room p\xc3", NULL),
                       "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"bad room p\"}");
    assert_error_frame(FRAME_MSGPACK, frame_error(FRAME_MSGPACK, "internal", NULL, NULL),
                       "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"\"}");
    assert_null(frame_error(FRAME_JSON, NULL, "no code", NULL));
}

/*
 * Event data: frame_encode_event() takes the data object as the JSON text
 * PostgreSQL writes for jsonb. The head used below, {"t":1}, packs to
 * 82 a1 74 01 a4 64 61 74 61 ({"t":1,"data": ...) in MessagePack.
 */
static const unsigned char EVENT_HEAD_MP[] = {0x82, 0xa1, 't', 0x01, 0xa4, 'd', 'a', 't', 'a'};

/* Encodes data after the head {"t":1} in fmt; fails the test when refused. */
static struct buf *
encode_event(enum frame_fmt fmt, const char *data, size_t len)
{
    json_t *head = json_pack("{s:i}", "t", 1);
    struct buf *b = frame_encode_event(fmt, head, data, len);

    json_decref(head);
    if (b == NULL)
        fail_msg("%s encoding refused data %.80s", FMT_NAME(fmt), data);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->binary, fmt == FRAME_MSGPACK ? 1 : 0);
    return b;
}

/* Asserts the JSON event frame for data is exactly want. */
static void
assert_json_event(const char *data, const char *want)
{
    struct buf *b = encode_event(FRAME_JSON, data, strlen(data));

    if (b->len != strlen(want) || memcmp(buf_data(b), want, b->len) != 0)
        fail_msg("JSON event frame is %.*s, expected %s", (int)b->len, (char *)buf_data(b), want);
    buf_unref(b);
}

/* Asserts the MessagePack event frame for data carries exactly the bytes want as "data". */
static void
assert_msgpack_data(const char *data, const unsigned char *want, size_t n)
{
    struct buf *b = encode_event(FRAME_MSGPACK, data, strlen(data));
    const unsigned char *got = buf_data(b);

    assert_int_equal(b->len, sizeof(EVENT_HEAD_MP) + n);
    assert_memory_equal(got, EVENT_HEAD_MP, sizeof(EVENT_HEAD_MP));
    if (memcmp(got + sizeof(EVENT_HEAD_MP), want, n) != 0) {
        char hex[512] = "";
        for (size_t i = sizeof(EVENT_HEAD_MP); i < b->len && strlen(hex) < sizeof(hex) - 4; i++)
            sprintf(hex + strlen(hex), "%02x ", got[i]);
        fail_msg("MessagePack data of %s is %s", data, hex);
    }
    buf_unref(b);
}

#define MP_DATA(data, ...)                                                                         \
    do {                                                                                           \
        static const unsigned char want_[] = {__VA_ARGS__};                                        \
        assert_msgpack_data(data, want_, sizeof(want_));                                           \
    } while (0)

/* JSON frames carry every number as PostgreSQL wrote it, blanks between tokens dropped. */
static void
test_event_json_numbers_as_written(void **state)
{
    assert_json_event("{\"amount\": 9223372036854775808, \"x\": 1e400, \"y\": "
                      "12345678901234567890.123, \"z\": [1E+2, -0, 0.1, 1.50, "
                      "-9223372036854775809, 18446744073709551616]}",
                      "{\"t\":1,\"data\":{\"amount\":9223372036854775808,\"x\":1e400,\"y\":"
                      "12345678901234567890.123,\"z\":[1E+2,-0,0.1,1.50,-9223372036854775809,"
                      "18446744073709551616]}}");
    assert_json_event("{}", "{\"t\":1,\"data\":{}}");
    assert_json_event(" {\"a\" : [ ] , \"b\" : { } } ", "{\"t\":1,\"data\":{\"a\":[],\"b\":{}}}");
    /* Blanks inside strings and escapes are kept as they are. */
    assert_json_event("{\"s\": \"a b\\n\\\"c\\\" \\u00e9\\ud83d\\ude00 \xc3\xb1\"}",
                      "{\"t\":1,\"data\":{\"s\":\"a b\\n\\\"c\\\" \\u00e9\\ud83d\\ude00 "
                      "\xc3\xb1\"}}");
}

/* A head with no members still makes a valid frame. */
static void
test_event_json_empty_head(void **state)
{
    json_t *head = json_object();
    struct buf *b = frame_encode_event(FRAME_JSON, head, "{\"a\": 1}", 8);

    assert_non_null(b);
    assert_int_equal(b->len, strlen("{\"data\":{\"a\":1}}"));
    assert_memory_equal(buf_data(b), "{\"data\":{\"a\":1}}", b->len);
    buf_unref(b);
    json_decref(head);
}

/* Integers at the edges of int64 and uint64, and past them. */
static void
test_event_msgpack_integers(void **state)
{
    MP_DATA("{\"a\": 9223372036854775807}", 0x81, 0xa1, 'a', 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff);
    MP_DATA("{\"a\": 9223372036854775808}", 0x81, 0xa1, 'a', 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": 18446744073709551615}", 0x81, 0xa1, 'a', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff);
    MP_DATA("{\"a\": 18446744073709551616}", 0x81, 0xa1, 'a', 0xb4, '1', '8', '4', '4', '6', '7',
            '4', '4', '0', '7', '3', '7', '0', '9', '5', '5', '1', '6', '1', '6');
    MP_DATA("{\"a\": -9223372036854775808}", 0x81, 0xa1, 'a', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": -9223372036854775809}", 0x81, 0xa1, 'a', 0xb4, '-', '9', '2', '2', '3', '3',
            '7', '2', '0', '3', '6', '8', '5', '4', '7', '7', '5', '8', '0', '9');
    MP_DATA("{\"a\": -0, \"b\": 0, \"c\": -1, \"d\": 127, \"e\": 150000}", 0x85, 0xa1, 'a', 0x00,
            0xa1, 'b', 0x00, 0xa1, 'c', 0xff, 0xa1, 'd', 0x7f, 0xa1, 'e', 0xce, 0x00, 0x02, 0x49,
            0xf0);
}

/* Numbers with a fraction or exponent: float64 when it holds their magnitude, else text. */
static void
test_event_msgpack_reals(void **state)
{
    MP_DATA("{\"a\": 1e400}", 0x81, 0xa1, 'a', 0xa5, '1', 'e', '4', '0', '0');
    MP_DATA("{\"a\": -1e400}", 0x81, 0xa1, 'a', 0xa6, '-', '1', 'e', '4', '0', '0');
    MP_DATA("{\"a\": 1e-400}", 0x81, 0xa1, 'a', 0xa6, '1', 'e', '-', '4', '0', '0');
    MP_DATA("{\"a\": 1.5}", 0x81, 0xa1, 'a', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": 0.1}", 0x81, 0xa1, 'a', 0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a);
    MP_DATA("{\"a\": 1E+2}", 0x81, 0xa1, 'a', 0xcb, 0x40, 0x59, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": -0.0}", 0x81, 0xa1, 'a', 0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": 0e-999}", 0x81, 0xa1, 'a', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0);
    MP_DATA("{\"a\": 12345678901234567890.123}", 0x81, 0xa1, 'a', 0xcb, 0x43, 0xe5, 0x6a, 0x95,
            0x31, 0x9d, 0x63, 0xe1);
    char data[512], want[512];
    size_t n = 0;
    /* PostgreSQL writes 1e21 or 1.5e300 as plain integers: float64 carries all their digits. */
    MP_DATA("{\"a\": 1000000000000000000000}", 0x81, 0xa1, 'a', 0xcb, 0x44, 0x4b, 0x1a, 0xe4, 0xd6,
            0xe2, 0xef, 0x50);
    MP_DATA("{\"a\": -18446744073709552000}", 0x81, 0xa1, 'a', 0xcb, 0xc3, 0xf0, 0, 0, 0, 0, 0, 0);
    snprintf(data, sizeof(data), "{\"a\": 15%0299d}", 0);
    n = 0;
    want[n++] = (char)0x81;
    want[n++] = (char)0xa1;
    want[n++] = 'a';
    want[n++] = (char)0xcb;
    double big = 1.5e300;
    for (int i = 7; i >= 0; i--) {
        uint64_t bits;
        memcpy(&bits, &big, sizeof(bits));
        want[n++] = (char)(bits >> (8 * i));
    }
    assert_msgpack_data(data, (const unsigned char *)want, n);
    /* 2^64 + 1 and 2^64 in full have more digits than float64 carries: text. */
    MP_DATA("{\"a\": 18446744073709551617}", 0x81, 0xa1, 'a', 0xb4, '1', '8', '4', '4', '6', '7',
            '4', '4', '0', '7', '3', '7', '0', '9', '5', '5', '1', '6', '1', '7');
    /* PostgreSQL writes 1e400 as 1 and 400 zeros: beyond float64, kept as text. */
    snprintf(data, sizeof(data), "{\"a\": 1%0400d}", 0);
    n = 0;
    want[n++] = (char)0x81;
    want[n++] = (char)0xa1;
    want[n++] = 'a';
    want[n++] = (char)0xda; /* str16 */
    want[n++] = (char)(401 >> 8);
    want[n++] = (char)(401 & 0xff);
    want[n++] = '1';
    memset(want + n, '0', 400);
    n += 400;
    assert_msgpack_data(data, (const unsigned char *)want, n);
}

/* Strings: escapes decoded, surrogate pairs joined, raw UTF-8 kept; keys too. */
static void
test_event_msgpack_strings(void **state)
{
    MP_DATA("{\"s\": \"a\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\t\\b\\f\\r\"}", 0x81, 0xa1, 's', 0xaf,
            'a', 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, '\n', '"', '\\', '/', '\t', '\b', '\f', '\r');
    MP_DATA("{\"\\u00f1o\": \"\xc3\xb1\", \"\": \"\"}", 0x82, 0xa3, 0xc3, 0xb1, 'o', 0xa2, 0xc3,
            0xb1, 0xa0, 0xa0);
    MP_DATA("{\"s\": \"\\u0041\\u20ac\"}", 0x81, 0xa1, 's', 0xa4, 'A', 0xe2, 0x82, 0xac);
}

/* Empty containers, nesting, literals. */
static void
test_event_msgpack_containers(void **state)
{
    MP_DATA("{}", 0x80);
    MP_DATA("{\"a\": [], \"b\": {}}", 0x82, 0xa1, 'a', 0x90, 0xa1, 'b', 0x80);
    MP_DATA("{\"a\": [true, false, null, [1, {\"b\": [2]}]]}", 0x81, 0xa1, 'a', 0x94, 0xc3, 0xc2,
            0xc0, 0x92, 0x01, 0x81, 0xa1, 'b', 0x91, 0x02);
}

/* An array of 70000 elements needs the 32-bit array header, 20 the 16-bit one. */
static void
test_event_msgpack_big_array(void **state)
{
    size_t count = 70000, len = 0;
    char *data = malloc(16 + 2 * count);
    struct buf *b;

    assert_non_null(data);
    len += (size_t)sprintf(data, "{\"a\": [");
    for (size_t i = 0; i < count; i++) {
        if (i)
            data[len++] = ',';
        data[len++] = '7';
    }
    len += (size_t)sprintf(data + len, "]}");
    b = encode_event(FRAME_MSGPACK, data, len);
    assert_int_equal(b->len, sizeof(EVENT_HEAD_MP) + 3 + 5 + count);
    assert_memory_equal(buf_data(b) + sizeof(EVENT_HEAD_MP) + 3,
                        ((unsigned char[]){0xdd, 0x00, 0x01, 0x11, 0x70}), 5);
    buf_unref(b);
    free(data);
    MP_DATA("{\"a\": [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]}", 0x81, 0xa1, 'a', 0xdc, 0x00, 0x14,
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
}

/* Builds {"a": [[...]]} with depth levels counting the outer object. */
static char *
nested_data(size_t depth, size_t *len)
{
    size_t arrays = depth - 1;
    char *s = malloc(arrays * 2 + 16);

    assert_non_null(s);
    *len = (size_t)sprintf(s, "{\"a\": ");
    memset(s + *len, '[', arrays);
    *len += arrays;
    memset(s + *len, ']', arrays);
    *len += arrays;
    s[(*len)++] = '}';
    s[*len] = '\0';
    return s;
}

/* Nesting up to FRAME_DATA_MAX_DEPTH works in both formats, one more is refused, without recursion.
 */
static void
test_event_deep_nesting(void **state)
{
    size_t len;
    char *s = nested_data(FRAME_DATA_MAX_DEPTH, &len);
    const char *why = NULL;
    struct buf *b;

    assert_int_equal(frame_data_check(s, len, &why), 0);
    b = encode_event(FRAME_MSGPACK, s, len);
    assert_int_equal(b->len, sizeof(EVENT_HEAD_MP) + 3 + (FRAME_DATA_MAX_DEPTH - 1));
    assert_int_equal(buf_data(b)[b->len - 2], 0x91);
    assert_int_equal(buf_data(b)[b->len - 1], 0x90);
    buf_unref(b);
    b = encode_event(FRAME_JSON, s, len);
    assert_int_equal(b->len, strlen("{\"t\":1,\"data\":}") + len - 1);
    buf_unref(b);
    free(s);

    s = nested_data(FRAME_DATA_MAX_DEPTH + 1, &len);
    assert_int_equal(frame_data_check(s, len, &why), -1);
    assert_string_equal(why, "data nests deeper than FRAME_DATA_MAX_DEPTH");
    json_t *head = json_object();
    assert_null(frame_encode_event(FRAME_MSGPACK, head, s, len));
    assert_null(frame_encode_event(FRAME_JSON, head, s, len));
    json_decref(head);
    free(s);
}

/* What PostgreSQL never writes is refused with a reason, by the check and both encoders. */
static void
test_event_data_refused(void **state)
{
    static const struct {
        const char *data, *why;
    } bad[] = {
        {"", "data is not a JSON object"},
        {"[1]", "data is not a JSON object"},
        {"5", "data is not a JSON object"},
        {"{", "data is not valid JSON"},
        {"{\"a\": 1", "data is not valid JSON"},
        {"{\"a\" 1}", "data is not valid JSON"},
        {"{\"a\": }", "data is not valid JSON"},
        {"{\"a\": 1,}", "data is not valid JSON"},
        {"{\"a\": [1,]}", "data is not valid JSON"},
        {"{\"a\": [1}", "data is not valid JSON"},
        {"{\"a\": {]}", "data is not valid JSON"},
        {"{1: 2}", "data is not valid JSON"},
        {"{\"a\": 01}", "data is not valid JSON"},
        {"{\"a\": 1.}", "data is not valid JSON"},
        {"{\"a\": 1e}", "data is not valid JSON"},
        {"{\"a\": -}", "data is not valid JSON"},
        {"{\"a\": tru}", "data is not valid JSON"},
        {"{\"a\": \"x}", "data is not valid JSON"},
        {"{\"a\": \"\\x\"}", "data is not valid JSON"},
        {"{\"a\": \"\\u12\"}", "data is not valid JSON"},
        {"{\"a\": \"\x01\"}", "data is not valid JSON"},
        {"{} {}", "data is not valid JSON"},
        {"{\"a\": \"\xc3\"}", "data is not valid UTF-8"},
        {"{\"a\": \"\xed\xa0\x80\"}", "data is not valid UTF-8"},
        {"{\"a\": \"\\ud83d\"}", "data has a \\u surrogate escape without its pair"},
        {"{\"a\": \"\\ude00\"}", "data has a \\u surrogate escape without its pair"},
        {"{\"a\": \"\\ud83d\\u0041\"}", "data has a \\u surrogate escape without its pair"},
    };
    json_t *head = json_object();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        size_t len = strlen(bad[i].data);

        if (frame_data_check(bad[i].data, len, &why) == 0)
            fail_msg("data %s accepted", bad[i].data);
        if (strcmp(why, bad[i].why) != 0)
            fail_msg("data %s refused with \"%s\", expected \"%s\"", bad[i].data, why, bad[i].why);
        assert_null(frame_encode_event(FRAME_JSON, head, bad[i].data, len));
        assert_null(frame_encode_event(FRAME_MSGPACK, head, bad[i].data, len));
    }
    /* The length is what counts, not a terminator: a cut text is incomplete. */
    assert_int_equal(frame_data_check("{\"a\": 1}", 7, NULL), -1);
    assert_int_equal(frame_data_check("{\"a\": 1.5}", 9, NULL), -1);
    json_decref(head);
}

/*
 * Data jansson could read before is encoded exactly as when it went through
 * jansson: the same MessagePack bytes, and in JSON the same text whenever
 * jansson would print it the same way (integers; strings with UTF-8 as is and
 * the escapes PostgreSQL writes).
 */
static void
test_event_same_as_before_for_ordinary_data(void **state)
{
    static const char *data[] = {
        "{\"unitId\":\"101\",\"amount\":150000,\"currency\":\"COP\",\"status\":\"PAID\"}",
        ("{\"alertId\":42,\"message\":\"Ayuda en la torre 1\",\"guard\":null,\"n\":[1,-2,300,"
         "70000,5000000000,-5000000000],\"ok\":true,\"no\":false,\"nested\":{\"a\":{\"b\":[{}]}}}"),
        "{\"s\":\"l\xc3\xadnea\\n\\\"comillas\\\" \\\\ \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "{}",
    };
    json_t *head = json_pack("{s:s,s:I,s:I,s:s,s:s,s:b,s:I,s:s}", "type", "event", "id",
                             (json_int_t)42, "seq", (json_int_t)1234, "kind", "payment", "priority",
                             "normal", "ack", 0, "ts", (json_int_t)1764262800123, "room", "user:7");

    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
        json_t *whole = json_deep_copy(head);
        json_object_set_new(whole, "data", json_loads(data[i], 0, NULL));
        assert_non_null(json_object_get(whole, "data"));
        for (int fmt = FRAME_JSON; fmt <= FRAME_MSGPACK; fmt++) {
            struct buf *old = frame_encode((enum frame_fmt)fmt, whole);
            struct buf *b = frame_encode_event((enum frame_fmt)fmt, head, data[i], strlen(data[i]));
            assert_non_null(old);
            assert_non_null(b);
            if (b->len != old->len || memcmp(buf_data(b), buf_data(old), b->len) != 0)
                fail_msg("%s frame of %s differs from jansson's", FMT_NAME(fmt), data[i]);
            buf_unref(old);
            buf_unref(b);
        }
        json_decref(whole);
    }
    /* Reals: the same float64 in MessagePack. */
    const char *reals = "{\"a\":1.5,\"b\":0.1,\"c\":-2.75e3,\"d\":1e-300}";
    json_t *whole = json_deep_copy(head);
    json_object_set_new(whole, "data", json_loads(reals, 0, NULL));
    struct buf *old = frame_encode(FRAME_MSGPACK, whole);
    struct buf *b = frame_encode_event(FRAME_MSGPACK, head, reals, strlen(reals));
    assert_int_equal(b->len, old->len);
    assert_memory_equal(buf_data(b), buf_data(old), b->len);
    buf_unref(old);
    buf_unref(b);
    json_decref(whole);
    json_decref(head);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_welcome),
        cmocka_unit_test(test_round_trip_event),
        cmocka_unit_test(test_round_trip_small_frames),
        cmocka_unit_test(test_cross_format_encoded),
        cmocka_unit_test(test_cross_format_client_frame),
        cmocka_unit_test(test_msgpack_wide_forms),
        cmocka_unit_test(test_msgpack_encoding_bytes),
        cmocka_unit_test(test_json_encoding_is_compact_text),
        cmocka_unit_test(test_encode_refuses_non_objects),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_json_top_level_must_be_map),
        cmocka_unit_test(test_json_invalid_utf8),
        cmocka_unit_test(test_json_duplicate_keys),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_unknown_format_and_null_why),
        cmocka_unit_test(test_msgpack_truncated),
        cmocka_unit_test(test_msgpack_huge_counts),
        cmocka_unit_test(test_msgpack_trailing_bytes),
        cmocka_unit_test(test_msgpack_top_level_must_be_map),
        cmocka_unit_test(test_msgpack_invalid_byte),
        cmocka_unit_test(test_msgpack_non_string_key),
        cmocka_unit_test(test_msgpack_bin_and_ext),
        cmocka_unit_test(test_msgpack_duplicate_keys),
        cmocka_unit_test(test_msgpack_invalid_utf8),
        cmocka_unit_test(test_msgpack_valid_utf8_accepted),
        cmocka_unit_test(test_msgpack_integer_range),
        cmocka_unit_test(test_msgpack_non_finite_reals),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_encode_deeper_than_inbound_limit),
        cmocka_unit_test(test_error_without_ref),
        cmocka_unit_test(test_error_with_string_ref),
        cmocka_unit_test(test_error_with_integer_ref),
        cmocka_unit_test(test_error_message_edge_cases),
        cmocka_unit_test(test_event_json_numbers_as_written),
        cmocka_unit_test(test_event_json_empty_head),
        cmocka_unit_test(test_event_msgpack_integers),
        cmocka_unit_test(test_event_msgpack_reals),
        cmocka_unit_test(test_event_msgpack_strings),
        cmocka_unit_test(test_event_msgpack_containers),
        cmocka_unit_test(test_event_msgpack_big_array),
        cmocka_unit_test(test_event_deep_nesting),
        cmocka_unit_test(test_event_data_refused),
        cmocka_unit_test(test_event_same_as_before_for_ordinary_data),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
