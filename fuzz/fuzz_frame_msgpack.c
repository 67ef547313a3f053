/*
 * fuzz_frame_msgpack.c - client frames of the armonia.v1.msgpack
 * subprotocol: any bytes a client can put in a binary frame, decoded by
 * frame_decode() and, when accepted, re-encoded in both formats
 * (frame_common.h).
 */
#include "frame_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frame_one(FRAME_MSGPACK, data, size);
    return 0;
}
