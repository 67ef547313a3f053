/*
 * frame.h - the wire codec: client frames in, server frames out.
 *
 * Both subprotocols carry the same logical maps: armonia.v1.json as UTF-8
 * JSON text frames, armonia.v1.msgpack as MessagePack binary frames. Frames
 * are represented in memory as jansson objects (json_t), so one handler
 * serves both formats.
 * Event data is the exception: it stays the JSON text PostgreSQL wrote, so no
 * number is rounded or refused on the way (frame_encode_event()).
 */
#ifndef HUB_FRAME_H
#define HUB_FRAME_H

#include <stddef.h>
#include <jansson.h>
#include "buf.h"

/*
 * FRAME_SIO is Socket.IO v5 over Engine.IO v4 on /socket.io/ (sio.c): text
 * frames whose maps are the JSON ones, wrapped in Socket.IO packets.
 */
enum frame_fmt { FRAME_JSON = 0, FRAME_MSGPACK = 1, FRAME_SIO = 2 };

/* How many formats an event is encoded in at most (one buffer each). */
#define FRAME_FMTS 3

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
 * Decodes one JSON value of any type (Socket.IO packets carry arrays), under
 * the rules frame_decode() applies to JSON frames: UTF-8, no duplicate keys,
 * nesting within FRAME_MAX_DEPTH. Returns a new reference, or NULL with
 * *why set to a static reason.
 */
json_t *frame_decode_value(const void *data, size_t len, const char **why);

/*
 * Encodes msg (an object) into a new buffer of the given format, with
 * LWS_PRE headroom. JSON output is compact. Returns NULL on OOM or when msg
 * holds something the format cannot carry.
 */
struct buf *frame_encode(enum frame_fmt fmt, const json_t *msg);

/*
 * Deepest nesting of event data accepted (objects and arrays, the data object
 * itself at depth 1). hub.emit() caps data at 32768 bytes of text and every
 * level takes at least two of them, so whatever it accepts fits.
 */
#define FRAME_DATA_MAX_DEPTH 16384

/*
 * Checks that data[0..len) is one JSON object as frame_encode_event() takes
 * it: valid JSON, valid UTF-8, no surrogate escape without its pair, nesting
 * within FRAME_DATA_MAX_DEPTH. Returns 0, or -1 with *why set to a static
 * reason. Allocates nothing.
 */
int frame_data_check(const char *data, size_t len, const char **why);

/*
 * Encodes msg (an object without "data") followed by "data" whose value is
 * the JSON text data[0..len), an object as PostgreSQL writes jsonb. JSON
 * frames carry that text as written, only the blanks between tokens dropped,
 * so every number arrives with all its digits. MessagePack frames convert it
 * (docs/protocol.md, "Numbers in event data"): integers that fit int64 or
 * uint64 as integers, other numbers as float64 when float64 holds their
 * magnitude, and the rest as a string with the number's text. Returns a new
 * buffer, or NULL on OOM or when data fails frame_data_check().
 */
struct buf *frame_encode_event(enum frame_fmt fmt, const json_t *msg, const char *data, size_t len);

/*
 * Helpers for replies. Each returns a new buffer (caller owns the reference)
 * or NULL on OOM. ref, when not NULL, is copied into the reply as "ref".
 */
struct buf *frame_error(enum frame_fmt fmt, const char *code, const char *message,
                        const json_t *ref);

#endif
