/*
 * buf.h - reference-counted, immutable byte buffers shared by many sockets.
 *
 * An outbound frame is encoded once and the same buffer is queued on every
 * connection that must receive it. Each buffer keeps LWS_PRE bytes of headroom
 * in front of its payload so lws_write() can prepend the WebSocket header in
 * place. The last buf_unref() frees it.
 */
#ifndef HUB_BUF_H
#define HUB_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>

struct buf {
    unsigned refs;        /* owners: every queue entry and the creator */
    size_t len;           /* payload bytes, after the headroom */
    unsigned char binary; /* 1: send as a binary frame, 0: text */
    /* 1: the payload already is whole WebSocket frames, headers included
     * (a Socket.IO event followed by its offset, sio.c): written as it is. */
    unsigned char framed;
    int64_t seq;         /* the event's seq for event frames, 0 for replies */
    unsigned char mem[]; /* LWS_PRE headroom, then len payload bytes */
};

/* Allocates a buffer with room for len payload bytes and refs = 1; NULL on OOM. */
struct buf *buf_new(size_t len, int binary);

/* The first payload byte (after the headroom). */
static inline unsigned char *
buf_data(struct buf *b)
{
    return b->mem + LWS_PRE;
}

static inline struct buf *
buf_ref(struct buf *b)
{
    b->refs++;
    return b;
}

/* Bytes of the WebSocket header of a server frame of len payload bytes (2, 4 or 10). */
static inline size_t
ws_header_len(size_t len)
{
    return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

/*
 * Writes the header of an unmasked, final text (binary: binary) frame of
 * len payload bytes at h (ws_header_len(len) bytes); returns that length.
 * It fits in a buffer's headroom (LWS_PRE), right before buf_data().
 */
size_t ws_header(unsigned char *h, size_t len, int binary);

/*
 * The bytes of b as they go on the wire, stored at *start: the payload with
 * its frame header written into the headroom, or, for a framed buffer, the
 * payload alone. Returns their length.
 */
static inline size_t
buf_wire(struct buf *b, unsigned char **start)
{
    if (b->framed) {
        *start = buf_data(b);
        return b->len;
    }
    *start = buf_data(b) - ws_header_len(b->len);
    return ws_header(*start, b->len, b->binary) + b->len;
}

/* Bytes buf_wire() gives for b. */
static inline size_t
buf_wire_len(const struct buf *b)
{
    return b->framed ? b->len : ws_header_len(b->len) + b->len;
}

/* Drops one reference; frees the buffer when none is left. NULL is ignored. */
void buf_unref(struct buf *b);

#endif
