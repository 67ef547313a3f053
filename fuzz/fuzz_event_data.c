/*
 * fuzz_event_data.c - event data on its way out: the JSON text PostgreSQL
 * wrote for an event's data (hub.emit() takes it from whoever writes an
 * event row), checked by frame_data_check() and encoded by
 * frame_encode_event() into a JSON and a MessagePack event frame.
 *
 * Checks: data without NUL bytes that jansson reads as an object is
 * accepted (jansson is stricter: it refuses big integers and nests less
 * deep); accepted data
 * encodes in both formats; the JSON frame carries the text exactly, only
 * the blanks between tokens dropped; the MessagePack frame is one complete
 * map. Refused data gets a reason and no frame.
 */
#include <jansson.h>

#include "frame.h"
#include "fuzz.h"

/* Returns a new copy of text[0..len) without the JSON blanks outside strings. */
static char *
strip_blanks(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    int in_str = 0, esc = 0;

    FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Bytes of the length field that follows a MessagePack type byte b of the
 * sized kinds (str, bin, ext, array, map), or -1 for other kinds. */
static int
mp_len_bytes(uint8_t b)
{
    switch (b) {
    case 0xd9:
    case 0xc4:
    case 0xc7:
        return 1;
    case 0xda:
    case 0xc5:
    case 0xc8:
    case 0xdc:
    case 0xde:
        return 2;
    case 0xdb:
    case 0xc6:
    case 0xc9:
    case 0xdd:
    case 0xdf:
        return 4;
    default:
        return -1;
    }
}

/*
 * Walks exactly one MessagePack object starting at p, without recursion
 * (a count of objects still to read), and returns the byte after it, or
 * NULL when it is malformed or runs past end. msgpack-c's own unpacker
 * stops at 32 levels, less than event data may nest.
 */
static const uint8_t *
mp_skip(const uint8_t *p, const uint8_t *end)
{
    uint64_t pending = 1;

    while (pending > 0) {
        if (p == NULL || p >= end)
            return NULL;
        uint8_t b = *p++;
        uint64_t n = 0, body = 0, children = 0;
        pending--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            continue;
        if ((b & 0xf0) == 0x80) {
            children = 2 * (uint64_t)(b & 0x0f);
        } else if ((b & 0xf0) == 0x90) {
            children = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0) {
            body = b & 0x1f;
        } else if (b >= 0xca && b <= 0xd3) {
            static const uint8_t fixed[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
            body = fixed[b - 0xca];
        } else if (b >= 0xd4 && b <= 0xd8) {
            body = 1 + (1u << (b - 0xd4));
        } else {
            int lb = mp_len_bytes(b);
            if (lb < 0 || end - p < lb)
                return NULL;
            for (int i = 0; i < lb; i++)
                n = n << 8 | *p++;
            if (b == 0xdc || b == 0xdd)
                children = n;
            else if (b == 0xde || b == 0xdf)
                children = 2 * n;
            else
                body = n + (b >= 0xc7 && b <= 0xc9); /* ext: a type byte */
        }
        if ((uint64_t)(end - p) < body)
            return NULL;
        p += body;
        pending += children;
    }
    return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *why = NULL;
    json_t *msg = json_pack("{s:s, s:I, s:s, s:s}", "type", "event", "seq", (json_int_t)42, "kind",
                            "panic", "priority", "critical");
    json_t *parsed = json_loadb(text, size, 0, NULL);
    int ok = frame_data_check(text, size, &why);

    FUZZ_CHECK(msg != NULL);
    /* jansson lets a NUL byte right after a number through; PostgreSQL text has none. */
    if (json_is_object(parsed) && memchr(text, '\0', size) == NULL)
        FUZZ_CHECK(ok == 0);
    json_decref(parsed);
    if (ok != 0) {
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        FUZZ_CHECK(frame_encode_event(FRAME_JSON, msg, text, size) == NULL);
        FUZZ_CHECK(frame_encode_event(FRAME_MSGPACK, msg, text, size) == NULL);
        json_decref(msg);
        return 0;
    }

    /* JSON: {"type":...,"priority":"critical","data":<data without blanks>} */
    struct buf *b = frame_encode_event(FRAME_JSON, msg, text, size);
    FUZZ_CHECK(b != NULL);
    size_t want_len;
    char *want = strip_blanks(text, size, &want_len);
    static const char tail_key[] = ",\"data\":";
    const char *frame = (const char *)buf_data(b);
    FUZZ_CHECK(b->len > want_len + sizeof(tail_key));
    FUZZ_CHECK(frame[0] == '{' && frame[b->len - 1] == '}');
    FUZZ_CHECK(memcmp(frame + b->len - 1 - want_len, want, want_len) == 0);
    FUZZ_CHECK(memcmp(frame + b->len - 1 - want_len - (sizeof(tail_key) - 1), tail_key,
                      sizeof(tail_key) - 1) == 0);
    free(want);
    buf_unref(b);

    /* MessagePack: one complete map of five, the last "data" and a map. */
    b = frame_encode_event(FRAME_MSGPACK, msg, text, size);
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(b->binary);
    const uint8_t *p = buf_data(b), *end = p + b->len;
    FUZZ_CHECK(mp_skip(p, end) == end);
    FUZZ_CHECK(*p++ == 0x85);
    for (int i = 0; i < 4; i++) {
        p = mp_skip(p, end); /* key */
        p = mp_skip(p, end); /* value */
        FUZZ_CHECK(p != NULL);
    }
    FUZZ_CHECK(end - p > 5 && memcmp(p,
                                     "\xa4"
                                     "data",
                                     5) == 0);
    p += 5;
    FUZZ_CHECK((*p & 0xf0) == 0x80 || *p == 0xde || *p == 0xdf);
    buf_unref(b);
    json_decref(msg);
    return 0;
}
