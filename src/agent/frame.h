/*
 * Framing: a 4-byte big-endian length N, then N bytes of UTF-8 JSON.
 * Requests may be 1..MAX_REQUEST_BYTES long; main.c reads them without
 * blocking. Events are at most base64(64 KiB) plus their envelope. Replies are not capped here:
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

/* Starts a frame: reserves the header in an empty buffer. */
void frame_begin(buf_t *b);

/* Fills the header of a frame started with frame_begin and sends it whole. */
int frame_send(transport *t, buf_t *b);

#endif
