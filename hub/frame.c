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
 */
#include "frame.h"

#include <math.h>
#include <stdint.h>
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
