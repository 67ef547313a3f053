/*
 * fuzz_sio_packet.c - Engine.IO/Socket.IO packets a socket.io-client (or
 * anyone on /socket.io/) sends: any bytes of a text message, taken apart by
 * sioframe_parse(), and a message's JSON payload decoded as sio.c decodes it
 * (frame_decode_value() for events, frame_decode() for CONNECT).
 */
#include "fuzz.h"
#include "frame.h"
#include "sioframe.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sioframe_packet pk;
    const char *why = NULL;
    const char *p = (const char *)data;
    if (sioframe_parse(p, size, &pk, &why)) {
        FUZZ_CHECK(why && *why);
        return 0;
    }
    /* Everything it points at lies inside the message. */
    FUZZ_CHECK(pk.data >= p && pk.data + pk.len == p + size);
    FUZZ_CHECK(pk.nsp_len >= 1 && pk.nsp_len <= 63);
    FUZZ_CHECK(pk.id >= -1);
    if (pk.nsp_len > 1)
        FUZZ_CHECK(pk.nsp > p && pk.nsp + pk.nsp_len <= p + size && pk.nsp[0] == '/');
    if (pk.eio != '4' || !pk.len)
        return 0;
    json_t *v = pk.type == '0' ? frame_decode(FRAME_JSON, pk.data, pk.len, &why)
                               : frame_decode_value(pk.data, pk.len, &why);
    FUZZ_CHECK(v || (why && *why));
    json_decref(v);
    return 0;
}
