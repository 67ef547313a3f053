/*
 * buf.c - reference-counted, immutable byte buffers shared by many sockets.
 *
 * A buffer is one allocation: the header, LWS_PRE bytes of headroom for the
 * WebSocket header that lws_write() writes in place, then the payload. The
 * hub runs on a single event loop, so the reference count is a plain
 * counter, not an atomic.
 */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>

/*
 * Allocates a buffer for len payload bytes with one reference, owned by the
 * caller. The payload is left uninitialised for the caller to fill. Returns
 * NULL when the allocation fails or its size would overflow.
 */
struct buf *
buf_new(size_t len, int binary)
{
    struct buf *b;

    if (len > SIZE_MAX - sizeof(*b) - LWS_PRE)
        return NULL;
    b = malloc(sizeof(*b) + LWS_PRE + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = len;
    b->binary = binary ? 1 : 0;
    b->framed = 0;
    b->seq = 0;
    return b;
}

/* Drops one reference and frees the buffer with the last one. */
void
buf_unref(struct buf *b)
{
    if (b == NULL)
        return;
    if (--b->refs == 0)
        free(b);
}

size_t
ws_header(unsigned char *h, size_t len, int binary)
{
    h[0] = (unsigned char)(0x80 | (binary ? 2 : 1));
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int k = 0; k < 8; k++)
        h[2 + k] = (unsigned char)((uint64_t)len >> (56 - 8 * k));
    return 10;
}
