/*
 * frame_common.h - the body of the two client-frame targets
 * (fuzz_frame_json.c, fuzz_frame_msgpack.c): one frame as a client sends it
 * goes through frame_decode(), and whatever it accepts must go back out in
 * both formats and come in again unchanged, since the hub answers a frame in
 * the format it came in and the same maps travel in the other.
 */
#ifndef FUZZ_FRAME_COMMON_H
#define FUZZ_FRAME_COMMON_H

#include <jansson.h>

#include "frame.h"
#include "fuzz.h"

/*
 * Encodes msg in fmt and decodes it again; the result must equal msg.
 * frame_encode() may refuse what a format cannot carry (NULL), but what it
 * writes must read back.
 */
static void
fuzz_frame_roundtrip(enum frame_fmt fmt, json_t *msg)
{
    struct buf *b = frame_encode(fmt, msg);
    const char *why = NULL;
    json_t *again;

    if (b == NULL)
        return;
    FUZZ_CHECK(b->binary == (fmt == FRAME_MSGPACK));
    again = frame_decode(fmt, buf_data(b), b->len, &why);
    if (again == NULL)
        fprintf(stderr, "re-decoding an encoded frame failed: %s\n", why);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(json_equal(again, msg));
    json_decref(again);
    buf_unref(b);
}

/* Decodes data as a client frame of format fmt and checks what comes out. */
static void
fuzz_frame_one(enum frame_fmt fmt, const uint8_t *data, size_t size)
{
    const char *why = NULL;
    json_t *msg = frame_decode(fmt, data, size, &why);

    if (msg == NULL) {
        /* Refused: the client gets a reason, never an empty one. */
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        return;
    }
    FUZZ_CHECK(json_is_object(msg));
    fuzz_frame_roundtrip(FRAME_JSON, msg);
    fuzz_frame_roundtrip(FRAME_MSGPACK, msg);
    json_decref(msg);
}

#endif
