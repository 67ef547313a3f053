/*
 * frame.c - the wire codec: client frames in, server frames out.
 *
 * Decoding turns one complete WebSocket message into a jansson object, or
 * into a short static reason the caller can put into a bad_request error.
 * JSON goes through jansson's parser and a depth check. MessagePack is first
 * walked by mp_scan(), which checks its structure, lengths and depth without
 * allocating, and only then unpacked by msgpack-c and converted to jansson
 * values. The scan comes first because msgpack-c allocates room for all the
 * elements a container header announces before reading them: five hostile
 * bytes could otherwise ask for gigabytes.
 *
 * Encoding writes straight into one struct buf sized in advance (a counting
 * pass, then the writing pass), so an outbound frame costs exactly one
 * allocation of our own in either format.
 *
 * Event frames take their data as the JSON text PostgreSQL wrote: copied
 * into JSON frames, converted token by token into MessagePack ones, without
 * recursion (jt_walk() below).
 */
#include "frame.h"
#include "sioframe.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

/* Reasons handed back through *why: short, static, safe to show a client. */
#define R_EMPTY "empty frame"
#define R_JSON "not valid JSON"
#define R_MSGPACK "not valid MessagePack"
#define R_TRUNCATED "truncated MessagePack"
#define R_TRAILING "trailing bytes after the map"
#define R_NOT_MAP "frame must be a map"
#define R_DEEP "nesting too deep"
#define R_KEY "map key is not a string"
#define R_DUP "duplicate map key"
#define R_UTF8 "not valid UTF-8"
#define R_NUL "string contains a NUL byte"
#define R_INT_RANGE "integer out of range"
#define R_NUM_RANGE "number out of range"
#define R_NOT_FINITE "number is not finite"
#define R_BINARY "binary values are not accepted"
#define R_NOMEM "out of memory"

/*
 * Bound on nesting when encoding. Outbound data is ours (events come from
 * jsonb rows), so it may nest deeper than FRAME_MAX_DEPTH; this is the depth
 * jansson's own parser accepts, and it stops the MessagePack walk on a tree
 * that contains itself.
 */
#define ENCODE_MAX_DEPTH 2048

/*
 * Returns the length of the well-formed UTF-8 sequence at the start of s
 * (left > 0 bytes available), or 0 when it is malformed: truncated, overlong,
 * a surrogate, above U+10FFFF, or a stray continuation byte (RFC 3629).
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Returns how many leading bytes of s form complete, well-formed UTF-8. */
static size_t
utf8_valid_prefix(const unsigned char *s, size_t len)
{
    size_t i = 0, n;

    while (i < len && (n = utf8_seq_len(s + i, len - i)) != 0)
        i += n;
    return i;
}

/* Maps a jansson parse error to the reason the client is given. */
static const char *
json_reason(const json_error_t *err)
{
    switch (json_error_code(err)) {
    case json_error_out_of_memory:
        return R_NOMEM;
    case json_error_stack_overflow:
        return R_DEEP;
    case json_error_invalid_utf8:
        return R_UTF8;
    case json_error_end_of_input_expected:
        return R_TRAILING;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return R_NUL;
    case json_error_duplicate_key:
        return R_DUP;
    case json_error_numeric_overflow:
        return R_NUM_RANGE;
    default:
        return R_JSON;
    }
}

/*
 * True when no container in v sits deeper than FRAME_MAX_DEPTH, counting v
 * itself at depth. Stops at the first level past the limit, so the recursion
 * is bounded whatever the input.
 */
static int
json_depth_ok(json_t *v, int depth)
{
    const char *key;
    json_t *child;
    size_t i;

    if (!json_is_object(v) && !json_is_array(v))
        return 1;
    if (depth > FRAME_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child) if (!json_depth_ok(child, depth + 1)) return 0;
    } else {
        json_array_foreach(v, i, child) if (!json_depth_ok(child, depth + 1)) return 0;
    }
    return 1;
}

/* Decodes a JSON text frame; see frame_decode(). */
json_t *
frame_decode_value(const void *data, size_t len, const char **why)
{
    json_error_t err;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (v == NULL) {
        *why = json_reason(&err);
        return NULL;
    }
    if (!json_depth_ok(v, 1)) {
        *why = R_DEEP;
        json_decref(v);
        return NULL;
    }
    return v;
}

static json_t *
decode_json(const char *data, size_t len, const char **why)
{
    json_error_t err;
    json_t *v;

    v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (v == NULL) {
        *why = json_reason(&err);
        return NULL;
    }
    if (!json_is_object(v)) {
        *why = R_NOT_MAP;
        goto err;
    }
    if (!json_depth_ok(v, 1)) {
        *why = R_DEEP;
        goto err;
    }
    return v;

err:
    json_decref(v);
    return NULL;
}

/* What a MessagePack type byte introduces, as far as mp_scan() cares. */
enum mp_kind { MP_SCALAR, MP_ARRAY, MP_MAP, MP_BINARY, MP_INVALID };

struct mp_head {
    enum mp_kind kind;
    size_t width; /* bytes of the big-endian length or count after the type byte */
    size_t n;     /* payload bytes, or entries for containers, when width is 0 */
};

/* Classifies the type byte b of a MessagePack item. */
static struct mp_head
mp_classify(unsigned char b)
{
    static const size_t fixed[] = {1, 2, 4, 8};

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return (struct mp_head){MP_SCALAR, 0, 0};
    if (b <= 0x8f)
        return (struct mp_head){MP_MAP, 0, b & 0x0fu};
    if (b <= 0x9f)
        return (struct mp_head){MP_ARRAY, 0, b & 0x0fu};
    if (b <= 0xbf)
        return (struct mp_head){MP_SCALAR, 0, b & 0x1fu};
    if ((b >= 0xc4 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8))
        return (struct mp_head){MP_BINARY, 0, 0};
    if (b == 0xca)
        return (struct mp_head){MP_SCALAR, 0, 4};
    if (b == 0xcb)
        return (struct mp_head){MP_SCALAR, 0, 8};
    if (b >= 0xcc && b <= 0xcf)
        return (struct mp_head){MP_SCALAR, 0, fixed[b - 0xcc]};
    if (b >= 0xd0 && b <= 0xd3)
        return (struct mp_head){MP_SCALAR, 0, fixed[b - 0xd0]};
    if (b >= 0xd9 && b <= 0xdb)
        return (struct mp_head){MP_SCALAR, fixed[b - 0xd9], 0};
    if (b == 0xdc || b == 0xdd)
        return (struct mp_head){MP_ARRAY, b == 0xdc ? 2 : 4, 0};
    if (b == 0xde || b == 0xdf)
        return (struct mp_head){MP_MAP, b == 0xde ? 2 : 4, 0};
    return (struct mp_head){MP_INVALID, 0, 0};
}

/*
 * Checks that p[0..len) is exactly one well-formed MessagePack map without
 * bin or ext values and with no container deeper than FRAME_MAX_DEPTH (the
 * map itself is depth 1). Every container must announce no more entries than
 * bytes remain, so whatever msgpack-c allocates afterwards is bounded by len.
 * Returns 0, or -1 with *why set. Allocates nothing.
 */
static int
mp_scan(const unsigned char *p, size_t len, const char **why)
{
    size_t left[FRAME_MAX_DEPTH + 1]; /* items still due at each open level */
    size_t pos = 0;
    int depth = 0;

    left[0] = 1;
    do {
        struct mp_head h;

        if (pos == len) {
            *why = R_TRUNCATED;
            return -1;
        }
        h = mp_classify(p[pos++]);
        if (h.kind == MP_INVALID) {
            *why = R_MSGPACK;
            return -1;
        }
        if (h.kind == MP_BINARY) {
            *why = R_BINARY;
            return -1;
        }
        if (len - pos < h.width) {
            *why = R_TRUNCATED;
            return -1;
        }
        for (size_t i = 0; i < h.width; i++)
            h.n = h.n << 8 | p[pos++];
        left[depth]--;
        if (h.kind == MP_SCALAR) {
            if (len - pos < h.n) {
                *why = R_TRUNCATED;
                return -1;
            }
            pos += h.n;
        } else {
            if (depth == FRAME_MAX_DEPTH) {
                *why = R_DEEP;
                return -1;
            }
            if (h.n > (h.kind == MP_MAP ? (len - pos) / 2 : len - pos)) {
                *why = R_TRUNCATED;
                return -1;
            }
            left[++depth] = h.kind == MP_MAP ? 2 * h.n : h.n;
        }
        while (depth > 0 && left[depth] == 0)
            depth--;
    } while (depth > 0);

    if (pos != len) {
        *why = R_TRAILING;
        return -1;
    }
    if (mp_classify(p[0]).kind != MP_MAP) {
        *why = R_NOT_MAP;
        return -1;
    }
    return 0;
}

/* Returns the reason a MessagePack string cannot become a jansson string, or NULL. */
static const char *
mp_str_problem(const msgpack_object_str *s)
{
    if (s->size == 0)
        return NULL;
    if (memchr(s->ptr, '\0', s->size) != NULL)
        return R_NUL;
    if (utf8_valid_prefix((const unsigned char *)s->ptr, s->size) != s->size)
        return R_UTF8;
    return NULL;
}

static json_t *mp_to_json(const msgpack_object *o, const char **why);

/* Converts a MessagePack map with string keys, each key once; see mp_to_json(). */
static json_t *
mp_map_to_json(const msgpack_object_map *m, const char **why)
{
    json_t *obj = json_object();

    if (obj == NULL)
        return NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        const char *key;
        size_t keylen;
        json_t *val;

        if (kv->key.type != MSGPACK_OBJECT_STR) {
            *why = R_KEY;
            goto err;
        }
        if ((*why = mp_str_problem(&kv->key.via.str)) != NULL)
            goto err;
        keylen = kv->key.via.str.size;
        key = keylen ? kv->key.via.str.ptr : "";
        if (json_object_getn(obj, key, keylen) != NULL) {
            *why = R_DUP;
            goto err;
        }
        if ((val = mp_to_json(&kv->val, why)) == NULL)
            goto err;
        if (json_object_setn_new_nocheck(obj, key, keylen, val) != 0) {
            *why = R_NOMEM;
            goto err;
        }
    }
    return obj;

err:
    json_decref(obj);
    return NULL;
}

/*
 * Converts one unpacked MessagePack value into a new jansson value, or
 * returns NULL with *why set. Depth needs no check here: mp_scan() has
 * bounded it before msgpack-c saw the bytes.
 */
static json_t *
mp_to_json(const msgpack_object *o, const char **why)
{
    json_t *v = NULL;

    *why = R_NOMEM;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            *why = R_INT_RANGE;
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            *why = R_NOT_FINITE;
            return NULL;
        }
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        if ((*why = mp_str_problem(&o->via.str)) != NULL)
            return NULL;
        *why = R_NOMEM;
        return json_stringn_nocheck(o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        if ((v = json_array()) == NULL)
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *item = mp_to_json(&o->via.array.ptr[i], why);

            if (item == NULL)
                goto err;
            if (json_array_append_new(v, item) != 0) {
                *why = R_NOMEM;
                goto err;
            }
        }
        return v;
    case MSGPACK_OBJECT_MAP:
        return mp_map_to_json(&o->via.map, why);
    default:
        *why = R_BINARY;
        return NULL;
    }

err:
    json_decref(v);
    return NULL;
}

/* Decodes a MessagePack binary frame; see frame_decode(). */
static json_t *
decode_msgpack(const char *data, size_t len, const char **why)
{
    msgpack_unpacked up;
    size_t off = 0;
    json_t *v = NULL;

    if (mp_scan((const unsigned char *)data, len, why) != 0)
        return NULL;
    msgpack_unpacked_init(&up);
    switch (msgpack_unpack_next(&up, data, len, &off)) {
    case MSGPACK_UNPACK_SUCCESS:
        if (off != len)
            *why = R_TRAILING;
        else
            v = mp_to_json(&up.data, why);
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        *why = R_NOMEM;
        break;
    default:
        *why = R_MSGPACK;
        break;
    }
    msgpack_unpacked_destroy(&up);
    return v;
}

/*
 * Decodes one complete client frame into a new JSON object, or returns NULL
 * with *why set to a static reason. data may be NULL when len is 0.
 */
json_t *
frame_decode(enum frame_fmt fmt, const void *data, size_t len, const char **why)
{
    const char *ignored;

    if (why == NULL)
        why = &ignored;
    if (len == 0) {
        *why = R_EMPTY;
        return NULL;
    }
    if (fmt == FRAME_JSON)
        return decode_json(data, len, why);
    if (fmt == FRAME_MSGPACK)
        return decode_msgpack(data, len, why);
    *why = "unknown frame format";
    return NULL;
}

/*
 * Where the MessagePack packer writes: with out NULL it only counts, which
 * is how the final size is learnt before the one allocation.
 */
struct mp_sink {
    unsigned char *out;
    size_t cap;
    size_t len;
};

/* msgpack_packer write callback: appends bytes to the sink, or counts them. */
static int
mp_sink_write(void *data, const char *bytes, size_t n)
{
    struct mp_sink *s = data;

    if (s->out != NULL && n > 0) {
        if (n > s->cap - s->len)
            return -1;
        memcpy(s->out + s->len, bytes, n);
    }
    s->len += n;
    return 0;
}

/*
 * Packs v: integers in their smallest MessagePack form, reals as float64,
 * strings as str. Returns 0, or -1 when a length does not fit MessagePack's
 * 32-bit counts, nesting passes ENCODE_MAX_DEPTH, or the sink is full.
 * jansson's iterators take a non-const object; they do not modify it.
 */
static int
mp_pack(msgpack_packer *pk, const json_t *v, int depth)
{
    size_t n;

    if (depth > ENCODE_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if ((n = json_object_size(v)) > UINT32_MAX || msgpack_pack_map(pk, n) != 0)
            return -1;
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            size_t keylen = json_object_iter_key_len(it);

            if (keylen > UINT32_MAX ||
                msgpack_pack_str_with_body(pk, json_object_iter_key(it), keylen) != 0 ||
                mp_pack(pk, json_object_iter_value(it), depth + 1) != 0)
                return -1;
        }
        return 0;
    case JSON_ARRAY:
        if ((n = json_array_size(v)) > UINT32_MAX || msgpack_pack_array(pk, n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (mp_pack(pk, json_array_get(v, i), depth + 1) != 0)
                return -1;
        return 0;
    case JSON_STRING:
        if ((n = json_string_length(v)) > UINT32_MAX)
            return -1;
        return msgpack_pack_str_with_body(pk, json_string_value(v), n);
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

/*
 * Encodes msg as compact JSON text into a new text buffer. Replies are
 * small: they are written once on the stack and copied, and only longer
 * ones are measured first and written again.
 */
static struct buf *
encode_json(const json_t *msg)
{
    char tmp[1024];
    struct buf *b;
    size_t n;

    if ((n = json_dumpb(msg, tmp, sizeof(tmp), JSON_COMPACT)) == 0)
        return NULL;
    if ((b = buf_new(n, 0)) == NULL)
        return NULL;
    if (n <= sizeof(tmp))
        memcpy(buf_data(b), tmp, n);
    else if (json_dumpb(msg, (char *)buf_data(b), n, JSON_COMPACT) != n)
        goto err;
    return b;

err:
    buf_unref(b);
    return NULL;
}

/* Encodes msg as MessagePack into a new binary buffer: count, allocate, write. */
static struct buf *
encode_msgpack(const json_t *msg)
{
    struct mp_sink sink = {NULL, 0, 0};
    msgpack_packer pk;
    struct buf *b;

    msgpack_packer_init(&pk, &sink, mp_sink_write);
    if (mp_pack(&pk, msg, 1) != 0)
        return NULL;
    if ((b = buf_new(sink.len, 1)) == NULL)
        return NULL;
    sink = (struct mp_sink){buf_data(b), b->len, 0};
    if (mp_pack(&pk, msg, 1) != 0 || sink.len != b->len)
        goto err;
    return b;

err:
    buf_unref(b);
    return NULL;
}

/*
 * Encodes the object msg once into a new buffer (one reference, the
 * caller's) that every recipient on that subprotocol can share. Returns NULL
 * on OOM, when msg is not an object, or when it cannot be carried.
 */
struct buf *
frame_encode(enum frame_fmt fmt, const json_t *msg)
{
    if (!json_is_object(msg))
        return NULL;
    if (fmt == FRAME_JSON)
        return encode_json(msg);
    if (fmt == FRAME_MSGPACK)
        return encode_msgpack(msg);
    if (fmt == FRAME_SIO)
        return sioframe_reply(msg);
    return NULL;
}

/*
 * Event data arrives as JSON text (jsonb::text) and is never turned into
 * jansson values: jansson refuses integers beyond int64 and numbers beyond
 * double, which would lose the whole event. jt_walk() reads the text once,
 * checking it, and hands each token to a callback: the JSON encoder copies
 * the tokens, the MessagePack encoder converts them. It keeps one bit per
 * open container, so nesting is bounded by FRAME_DATA_MAX_DEPTH, not by the
 * C stack.
 */
#define R_DATA "data is not valid JSON"
#define R_DATA_MAP "data is not a JSON object"
#define R_DATA_DEEP "data nests deeper than FRAME_DATA_MAX_DEPTH"
#define R_DATA_UTF8 "data is not valid UTF-8"
#define R_DATA_SURROGATE "data has a \\u surrogate escape without its pair"

enum jt_kind {
    JT_OBJ,   /* '{' */
    JT_ARR,   /* '[' */
    JT_END,   /* '}' or ']' */
    JT_SEP,   /* ',' or ':' */
    JT_KEY,   /* a string before ':' (s..n includes the quotes) */
    JT_STR,   /* a string value (with its quotes) */
    JT_NUM,   /* a number, as written */
    JT_TRUE,  /* true */
    JT_FALSE, /* false */
    JT_NULL,  /* null */
};

struct jt_tok {
    enum jt_kind kind;
    const char *s; /* the token's text in the input */
    size_t n;
    unsigned in_array : 1; /* a value that is an array element */
    unsigned escaped : 1;  /* JT_KEY, JT_STR: has a backslash escape */
    unsigned integer : 1;  /* JT_NUM: no fraction, no exponent */
};

typedef int (*jt_fn)(void *ud, const struct jt_tok *t);

/* The value of the hex digit c, or -1. */
static int
hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the 4 hex digits at p (end - p >= 4 checked by the caller), or -1. */
static long
hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_val(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/*
 * Reads the string starting at p[0] == '"'. Returns its length with both
 * quotes, or 0 with *why set when it is malformed: unterminated, a raw
 * control character, a bad escape, a lone surrogate escape, bad UTF-8.
 * *escaped tells whether it holds any escape.
 */
static size_t
jt_string(const unsigned char *p, const unsigned char *end, int *escaped, const char **why)
{
    const unsigned char *q = p + 1;
    *escaped = 0;
    *why = R_DATA;
    while (q < end) {
        unsigned char c = *q;
        if (c == '"')
            return (size_t)(q + 1 - p);
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            size_t n = utf8_seq_len(q, (size_t)(end - q));
            if (n == 0) {
                *why = R_DATA_UTF8;
                return 0;
            }
            q += n;
            continue;
        }
        if (c != '\\') {
            q++;
            continue;
        }
        *escaped = 1;
        if (end - q < 2)
            return 0;
        c = q[1];
        if (c != 'u') {
            if (!strchr("\"\\/bfnrt", c) || c == '\0')
                return 0;
            q += 2;
            continue;
        }
        long u = end - q >= 6 ? hex4(q + 2) : -1;
        if (u < 0)
            return 0;
        q += 6;
        if (u >= 0xdc00 && u <= 0xdfff) {
            *why = R_DATA_SURROGATE;
            return 0;
        }
        if (u >= 0xd800 && u <= 0xdbff) {
            long lo = end - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) {
                *why = R_DATA_SURROGATE;
                return 0;
            }
            q += 6;
        }
    }
    return 0;
}

/* Digits at p, before end. */
static size_t
digits(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return (size_t)(q - p);
}

/*
 * Reads the number at p (RFC 8259 grammar). Returns its length, or 0 when
 * malformed; *integer tells whether it has neither fraction nor exponent.
 */
static size_t
jt_number(const unsigned char *p, const unsigned char *end, int *integer)
{
    const unsigned char *q = p;
    size_t n;
    if (q < end && *q == '-')
        q++;
    if (q < end && *q == '0')
        q++;
    else if ((n = digits(q, end)) > 0)
        q += n;
    else
        return 0;
    *integer = 1;
    if (q < end && *q == '.') {
        if ((n = digits(q + 1, end)) == 0)
            return 0;
        q += 1 + n;
        *integer = 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if ((n = digits(q, end)) == 0)
            return 0;
        q += n;
        *integer = 0;
    }
    return (size_t)(q - p);
}

/* What jt_walk() expects next. */
enum jt_want { W_VALUE, W_VALUE_OR_CLOSE, W_KEY, W_KEY_OR_CLOSE, W_COLON, W_COMMA_OR_CLOSE };

/*
 * Walks text[0..len), which must be exactly one JSON object (blanks around
 * tokens allowed), calling fn for each token in order. Stops at the first
 * error: returns -1 with *why set, or fn's non-zero return (*why is then
 * R_NOMEM). Returns 0 when the whole text was walked.
 */
static int
jt_walk(const char *text, size_t len, jt_fn fn, void *ud, const char **why)
{
    unsigned char is_array[(FRAME_DATA_MAX_DEPTH + 7) / 8]; /* one bit per open container */
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    enum jt_want want = W_VALUE;
    size_t depth = 0;
    int first = 1;

    *why = R_DATA;
    for (;;) {
        struct jt_tok t = {0};
        int flag = 0;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p == end) {
            if (first)
                *why = R_DATA_MAP;
            return -1;
        }
        t.s = (const char *)p;
        unsigned char c = *p;
        if ((c == '}' || c == ']') &&
            (want == W_COMMA_OR_CLOSE || want == W_KEY_OR_CLOSE || want == W_VALUE_OR_CLOSE)) {
            int arr = is_array[(depth - 1) / 8] >> ((depth - 1) % 8) & 1;
            if (arr != (c == ']') || (want == W_KEY_OR_CLOSE && arr) ||
                (want == W_VALUE_OR_CLOSE && !arr))
                return -1;
            t.kind = JT_END;
            t.n = 1;
            depth--;
            want = W_COMMA_OR_CLOSE;
        } else if (want == W_COLON || want == W_COMMA_OR_CLOSE) {
            if (c != (want == W_COLON ? ':' : ','))
                return -1;
            t.kind = JT_SEP;
            t.n = 1;
            want = want == W_COLON                                      ? W_VALUE
                   : is_array[(depth - 1) / 8] >> ((depth - 1) % 8) & 1 ? W_VALUE
                                                                        : W_KEY;
        } else if (want == W_KEY || want == W_KEY_OR_CLOSE) {
            if (c != '"' || (t.n = jt_string(p, end, &flag, why)) == 0)
                return -1;
            t.kind = JT_KEY;
            t.escaped = flag != 0;
            want = W_COLON;
        } else {
            if (first && c != '{') {
                *why = R_DATA_MAP;
                return -1;
            }
            t.in_array = depth > 0 && (is_array[(depth - 1) / 8] >> ((depth - 1) % 8) & 1);
            want = W_COMMA_OR_CLOSE;
            if (c == '{' || c == '[') {
                if (depth == FRAME_DATA_MAX_DEPTH) {
                    *why = R_DATA_DEEP;
                    return -1;
                }
                if (c == '[')
                    is_array[depth / 8] |= (unsigned char)(1u << depth % 8);
                else
                    is_array[depth / 8] &= (unsigned char)~(1u << depth % 8);
                depth++;
                t.kind = c == '[' ? JT_ARR : JT_OBJ;
                t.n = 1;
                want = c == '[' ? W_VALUE_OR_CLOSE : W_KEY_OR_CLOSE;
            } else if (c == '"') {
                if ((t.n = jt_string(p, end, &flag, why)) == 0)
                    return -1;
                t.kind = JT_STR;
                t.escaped = flag != 0;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if ((t.n = jt_number(p, end, &flag)) == 0)
                    return -1;
                t.kind = JT_NUM;
                t.integer = flag != 0;
            } else if ((size_t)(end - p) >= 4 && !memcmp(p, "true", 4)) {
                t.kind = JT_TRUE;
                t.n = 4;
            } else if ((size_t)(end - p) >= 5 && !memcmp(p, "false", 5)) {
                t.kind = JT_FALSE;
                t.n = 5;
            } else if ((size_t)(end - p) >= 4 && !memcmp(p, "null", 4)) {
                t.kind = JT_NULL;
                t.n = 4;
            } else {
                return -1;
            }
        }
        first = 0;
        p += t.n;
        if (fn && fn(ud, &t) != 0) {
            *why = R_NOMEM;
            return -1;
        }
        if (depth == 0)
            break;
    }
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p != end) {
        *why = R_DATA;
        return -1;
    }
    return 0;
}

int
frame_data_check(const char *data, size_t len, const char **why)
{
    const char *ignored;
    return jt_walk(data, len, NULL, NULL, why ? why : &ignored);
}

/* Appends each token's text at *at: event data as JSON without blanks. */
static int
jt_copy(void *ud, const struct jt_tok *t)
{
    char **at = ud;
    memcpy(*at, t->s, t->n);
    *at += t->n;
    return 0;
}

/*
 * The JSON event frame: msg's compact text with its closing brace replaced
 * by ,"data": and data's tokens. One allocation; data can only shrink.
 */
static struct buf *
encode_json_event(const json_t *msg, const char *data, size_t len)
{
    static const char key[] = "\"data\":";
    char tmp[512];
    const char *ignored;
    char *head = tmp;
    size_t n = json_dumpb(msg, tmp, sizeof(tmp), JSON_COMPACT);
    struct buf *b = NULL;

    if (n < 2)
        return NULL;
    if (n > sizeof(tmp)) {
        if ((head = malloc(n)) == NULL || json_dumpb(msg, head, n, JSON_COMPACT) != n)
            goto out;
    }
    if ((b = buf_new(n + 1 + sizeof(key) - 1 + len, 0)) == NULL)
        goto out;
    char *at = (char *)buf_data(b);
    memcpy(at, head, n - 1); /* without its '}' */
    at += n - 1;
    if (n > 2)
        *at++ = ',';
    memcpy(at, key, sizeof(key) - 1);
    at += sizeof(key) - 1;
    if (jt_walk(data, len, jt_copy, &at, &ignored) != 0) {
        buf_unref(b);
        b = NULL;
        goto out;
    }
    *at++ = '}';
    b->len = (size_t)(at - (char *)buf_data(b));

out:
    if (head != tmp)
        free(head);
    return b;
}

/*
 * Bytes msgpack-c's map or array header takes for n entries: fixmap/fixarray,
 * then the 16-bit, then the 32-bit form.
 */
static size_t
mp_container_len(uint32_t n)
{
    return n < 16 ? 1 : n < 65536 ? 3 : 5;
}

/* Appends the UTF-8 form of code point u at out; returns its length. */
static size_t
utf8_put(unsigned char *out, unsigned long u)
{
    if (u < 0x80) {
        out[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (unsigned char)(0xc0 | u >> 6);
        out[1] = (unsigned char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (unsigned char)(0xe0 | u >> 12);
        out[1] = (unsigned char)(0x80 | (u >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (u & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | u >> 18);
    out[1] = (unsigned char)(0x80 | (u >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (u >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (u & 0x3f));
    return 4;
}

/*
 * Unescapes the body of a checked JSON string (s..n without its quotes),
 * writing the bytes to pk when pk is not NULL. Returns the unescaped length.
 */
static size_t
mp_unescape(msgpack_packer *pk, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t total = 0;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p != '\\')
            p++;
        if (p > run) {
            total += (size_t)(p - run);
            if (pk)
                msgpack_pack_str_body(pk, run, (size_t)(p - run));
        }
        if (p == end)
            break;
        unsigned char out[4];
        size_t k = 1;
        switch (p[1]) {
        case 'b':
            out[0] = '\b';
            break;
        case 'f':
            out[0] = '\f';
            break;
        case 'n':
            out[0] = '\n';
            break;
        case 'r':
            out[0] = '\r';
            break;
        case 't':
            out[0] = '\t';
            break;
        case 'u': {
            unsigned long u = (unsigned long)hex4(p + 2);
            if (u >= 0xd800 && u <= 0xdbff) {
                u = 0x10000 + ((u - 0xd800) << 10) + ((unsigned long)hex4(p + 8) - 0xdc00);
                p += 6;
            }
            k = utf8_put(out, u);
            p += 4;
            break;
        }
        default: /* " \ / */
            out[0] = p[1];
            break;
        }
        p += 2;
        total += k;
        if (pk)
            msgpack_pack_str_body(pk, out, k);
    }
    return total;
}

/* Packs a checked JSON string token (with quotes) as a MessagePack str. */
static int
mp_pack_jstring(msgpack_packer *pk, const struct jt_tok *t)
{
    const char *body = t->s + 1;
    size_t n = t->n - 2;
    if (!t->escaped)
        return msgpack_pack_str_with_body(pk, body, n);
    size_t out = mp_unescape(NULL, body, n);
    if (out > UINT32_MAX || msgpack_pack_str(pk, out) != 0)
        return -1;
    mp_unescape(pk, body, n);
    return 0;
}

/* The token as a double (strtod in the C locale the hub stays in, on a copy ended by NUL). */
static int
jt_strtod(const struct jt_tok *t, double *d)
{
    char local[64], *copy = t->n < sizeof(local) ? local : malloc(t->n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, t->s, t->n);
    copy[t->n] = '\0';
    *d = strtod(copy, NULL);
    if (copy != local)
        free(copy);
    return 0;
}

/*
 * Whether d, an integer token's value beyond uint64, carries every digit the
 * token has: its significant digits (trailing zeros aside) are at most
 * DBL_DECIMAL_DIG and d printed with that many gives them back. PostgreSQL
 * writes 1.5e300 or 1e21 as plain integers; those pass, 2^64 written out in
 * full does not.
 */
static int
integer_fits_double(const struct jt_tok *t, double d)
{
    const char *p = t->s + (t->s[0] == '-'), *end = t->s + t->n;
    size_t total = (size_t)(end - p), k = total;
    char out[40];
    while (k > 1 && p[k - 1] == '0')
        k--;
    if (k > DBL_DECIMAL_DIG || !isfinite(d))
        return 0;
    int n = snprintf(out, sizeof(out), "%.*e", (int)k - 1, fabs(d));
    char *e = strchr(out, 'e');
    if (n <= 0 || e == NULL || out[0] != p[0] || strtol(e + 1, NULL, 10) != (long)total - 1)
        return 0;
    return k == 1 ||
           (out[1] == '.' && (size_t)(e - out - 2) == k - 1 && !memcmp(out + 2, p + 1, k - 1));
}

/*
 * Packs a checked JSON number token. An integer that fits int64 or uint64
 * is packed as an integer (int64 while it fits, as jansson values were), a
 * larger one as float64 when that carries all its digits
 * (integer_fits_double()). A number with a fraction or exponent is packed as
 * float64 when its magnitude is zero or within [DBL_MIN, DBL_MAX], as before.
 * Anything else (1e400, 2^64 written out, 1e-400) is packed as a str holding
 * the number's text, so no digit is lost.
 */
static int
mp_pack_jnumber(msgpack_packer *pk, const struct jt_tok *t)
{
    const char *s = t->s, *end = t->s + t->n;
    int neg = *s == '-';
    double d;
    if (t->integer) {
        uint64_t v = 0;
        const char *p;
        for (p = s + neg; p < end; p++) {
            unsigned digit = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - digit) / 10)
                break;
            v = v * 10 + digit;
        }
        if (p == end) {
            if (!neg && v > INT64_MAX)
                return msgpack_pack_uint64(pk, v);
            if (!neg)
                return msgpack_pack_int64(pk, (int64_t)v);
            if (v <= (uint64_t)INT64_MAX + 1)
                return msgpack_pack_int64(pk,
                                          v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
        }
        if (jt_strtod(t, &d) != 0)
            return -1;
        if (integer_fits_double(t, d))
            return msgpack_pack_double(pk, d);
    } else {
        if (jt_strtod(t, &d) != 0)
            return -1;
        int zero = 1;
        for (const char *p = s + neg; p < end && *p != 'e' && *p != 'E'; p++)
            if (*p >= '1' && *p <= '9')
                zero = 0;
        if (isfinite(d) && (zero || fabs(d) >= DBL_MIN))
            return msgpack_pack_double(pk, d);
    }
    return msgpack_pack_str_with_body(pk, s, t->n);
}

/* Packs one scalar token; containers are packed by the callers. */
static int
mp_pack_scalar(msgpack_packer *pk, const struct jt_tok *t)
{
    switch (t->kind) {
    case JT_KEY:
    case JT_STR:
        return mp_pack_jstring(pk, t);
    case JT_NUM:
        return mp_pack_jnumber(pk, t);
    case JT_TRUE:
        return msgpack_pack_true(pk);
    case JT_FALSE:
        return msgpack_pack_false(pk);
    case JT_NULL:
        return msgpack_pack_nil(pk);
    default:
        return 0;
    }
}

/* Growable array of uint32_t with room for a few on the stack first. */
struct u32v {
    uint32_t *v;
    size_t n, cap;
    uint32_t local[64];
};

static int
u32v_push(struct u32v *a, uint32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap * 2;
        uint32_t *v = a->v == a->local ? malloc(cap * sizeof(*v)) : realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        if (a->v == a->local)
            memcpy(v, a->local, sizeof(a->local));
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static void
u32v_init(struct u32v *a)
{
    a->v = a->local;
    a->n = 0;
    a->cap = sizeof(a->local) / sizeof(a->local[0]);
}

static void
u32v_free(struct u32v *a)
{
    if (a->v != a->local)
        free(a->v);
}

/*
 * Data to MessagePack in two walks. The first learns each container's entry
 * count (MessagePack writes it first, JSON only ends with it) and the exact
 * size; the second writes into the buffer allocated for that size.
 */
struct mp_conv {
    struct u32v counts; /* entries of each container, in the order they open */
    struct u32v open;   /* first walk: the index in counts of each open container */
    size_t next;        /* second walk: the next container's index in counts */
    size_t size;        /* first walk: bytes of the packed data */
    msgpack_packer *pk; /* the packer (counting in the first walk) */
};

/* First walk: entry counts and sizes. */
static int
mp_conv_count(void *ud, const struct jt_tok *t)
{
    struct mp_conv *cv = ud;
    if ((t->kind == JT_KEY || t->in_array) && cv->open.n)
        cv->counts.v[cv->open.v[cv->open.n - 1]]++;
    switch (t->kind) {
    case JT_OBJ:
    case JT_ARR:
        return u32v_push(&cv->open, (uint32_t)cv->counts.n) || u32v_push(&cv->counts, 0) ? -1 : 0;
    case JT_END:
        cv->size += mp_container_len(cv->counts.v[cv->open.v[--cv->open.n]]);
        return 0;
    case JT_SEP:
        return 0;
    default:
        return mp_pack_scalar(cv->pk, t);
    }
}

/* Second walk: the bytes. */
static int
mp_conv_write(void *ud, const struct jt_tok *t)
{
    struct mp_conv *cv = ud;
    switch (t->kind) {
    case JT_OBJ:
        return msgpack_pack_map(cv->pk, cv->counts.v[cv->next++]);
    case JT_ARR:
        return msgpack_pack_array(cv->pk, cv->counts.v[cv->next++]);
    case JT_END:
    case JT_SEP:
        return 0;
    default:
        return mp_pack_scalar(cv->pk, t);
    }
}

/* Packs msg's members (the map header announces one more, "data"), then the key "data". */
static int
mp_pack_event_head(msgpack_packer *pk, const json_t *msg)
{
    size_t n = json_object_size(msg);
    if (n >= UINT32_MAX || msgpack_pack_map(pk, n + 1) != 0)
        return -1;
    for (void *it = json_object_iter((json_t *)msg); it != NULL;
         it = json_object_iter_next((json_t *)msg, it)) {
        size_t keylen = json_object_iter_key_len(it);
        if (keylen > UINT32_MAX ||
            msgpack_pack_str_with_body(pk, json_object_iter_key(it), keylen) != 0 ||
            mp_pack(pk, json_object_iter_value(it), 2) != 0)
            return -1;
    }
    return msgpack_pack_str_with_body(pk, "data", 4);
}

/* The MessagePack event frame: msg's members, then data converted. */
static struct buf *
encode_msgpack_event(const json_t *msg, const char *data, size_t len)
{
    struct mp_sink sink = {NULL, 0, 0};
    struct mp_conv cv = {.pk = NULL};
    msgpack_packer pk;
    struct buf *b = NULL;
    const char *ignored;

    msgpack_packer_init(&pk, &sink, mp_sink_write);
    u32v_init(&cv.counts);
    u32v_init(&cv.open);
    cv.pk = &pk;
    if (mp_pack_event_head(&pk, msg) != 0 || jt_walk(data, len, mp_conv_count, &cv, &ignored) != 0)
        goto out;
    size_t total = sink.len + cv.size;
    if ((b = buf_new(total, 1)) == NULL)
        goto out;
    sink = (struct mp_sink){buf_data(b), b->len, 0};
    if (mp_pack_event_head(&pk, msg) != 0 ||
        jt_walk(data, len, mp_conv_write, &cv, &ignored) != 0 || sink.len != total) {
        buf_unref(b);
        b = NULL;
    }

out:
    u32v_free(&cv.counts);
    u32v_free(&cv.open);
    return b;
}

struct buf *
frame_encode_event(enum frame_fmt fmt, const json_t *msg, const char *data, size_t len)
{
    if (!json_is_object(msg) || data == NULL)
        return NULL;
    if (fmt == FRAME_JSON)
        return encode_json_event(msg, data, len);
    if (fmt == FRAME_MSGPACK)
        return encode_msgpack_event(msg, data, len);
    if (fmt == FRAME_SIO)
        return sioframe_event(msg, encode_json_event(msg, data, len));
    return NULL;
}

/*
 * Builds and encodes {"type":"error","code":code,"message":message} with a
 * deep copy of ref as "ref" when ref is not NULL. A NULL message is sent as
 * "", and a message that is not valid UTF-8 (say, cut inside client input)
 * is sent up to its last complete character. Returns NULL on OOM or when
 * code is NULL or not valid UTF-8.
 */
struct buf *
frame_error(enum frame_fmt fmt, const char *code, const char *message, const json_t *ref)
{
    struct buf *b = NULL;
    json_t *msg;
    size_t mlen;

    if (message == NULL)
        message = "";
    mlen = utf8_valid_prefix((const unsigned char *)message, strlen(message));
    if ((msg = json_object()) == NULL)
        return NULL;
    if (json_object_set_new_nocheck(msg, "type", json_string("error")) != 0 ||
        json_object_set_new_nocheck(msg, "code", json_string(code)) != 0 ||
        json_object_set_new_nocheck(msg, "message", json_stringn_nocheck(message, mlen)) != 0)
        goto out;
    if (ref != NULL && json_object_set_new_nocheck(msg, "ref", json_deep_copy(ref)) != 0)
        goto out;
    b = frame_encode(fmt, msg);

out:
    json_decref(msg);
    return b;
}
