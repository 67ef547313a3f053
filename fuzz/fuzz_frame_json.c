/*
 * fuzz_frame_json.c - client frames of the armonia.v1.json subprotocol:
 * any bytes a client can put in a text frame, decoded by frame_decode()
 * and, when accepted, re-encoded in both formats (frame_common.h).
 */
#include "frame_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frame_one(FRAME_JSON, data, size);
    return 0;
}
