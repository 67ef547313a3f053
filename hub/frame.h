/*
 * frame.h - the wire codec: client frames in, server frames out.
 *
 * Both subprotocols carry the same logical maps: armonia.v1.json as UTF-8
 * JSON text frames, armonia.v1.msgpack as MessagePack binary frames. Frames
 * are represented in memory as jansson objects (json_t), so one handler
 * serves both formats.
 */
#ifndef HUB_FRAME_H
#define HUB_FRAME_H

#include <stddef.h>
#include <jansson.h>
#include "buf.h"

enum frame_fmt { FRAME_JSON = 0, FRAME_MSGPACK = 1 };

/* Maximum nesting depth accepted when decoding (deeper input is rejected). */
#define FRAME_MAX_DEPTH 32

/*
 * Decodes one complete client frame. Returns a new reference to a JSON
 * object, or NULL with *why set to a short, static, user-facing reason
 * ("not valid JSON", "not a map", "not valid MessagePack", "trailing bytes
 * after the map", "nesting too deep", "map key is not a string", ...).
 * A JSON frame must be valid UTF-8. MessagePack bin/ext values are rejected;
 * integers map to json integers, floats to reals, nil to null.
 */
json_t *frame_decode(enum frame_fmt fmt, const void *data, size_t len, const char **why);

/*
 * Encodes msg (an object) into a new buffer of the given format, with
 * LWS_PRE headroom. JSON output is compact. Returns NULL on OOM or when msg
 * holds something the format cannot carry.
 */
struct buf *frame_encode(enum frame_fmt fmt, const json_t *msg);

/*
 * Helpers for replies. Each returns a new buffer (caller owns the reference)
 * or NULL on OOM. ref, when not NULL, is copied into the reply as "ref".
 */
struct buf *frame_error(enum frame_fmt fmt, const char *code, const char *message,
                        const json_t *ref);

#endif
