/*
 * Framing: a 4-byte big-endian length N, then N bytes of UTF-8 JSON.
 * Requests may be 1..MAX_REQUEST_BYTES long. Replies are not capped here:
 * an exec reply carrying two 8 MiB streams in base64 is about 22 MiB, and the
 * host accepts replies up to 32 MiB (docs/agent-protocol.md).
 */
#ifndef TFC_FRAME_H
#define TFC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "transport.h"

#define FRAME_HEADER_BYTES 4

typedef enum {
    FRAME_OK,        /* *body (malloc'd, NUL-terminated) holds *len bytes */
    FRAME_EOF,       /* the host went away; any partial frame is discarded */
    FRAME_EMPTY,     /* a zero-length frame: nothing to skip */
    FRAME_TOO_LARGE  /* *len is the declared length, whose bytes are not read yet */
} frame_status;

frame_status frame_read(transport *t, size_t max, char **body, size_t *len);

/* Reads and discards n bytes. Returns 0, or -1 when the host went away. */
int frame_skip(transport *t, size_t n);

/* Starts a frame: reserves the header in an empty buffer. */
void frame_begin(buf_t *b);

/* Fills the header of a frame started with frame_begin and sends it whole. */
int frame_send(transport *t, buf_t *b);

#endif
