#include "frame.h"

#include <stdlib.h>
#include <string.h>

void frame_begin(buf_t *b)
{
    static const char zero[FRAME_HEADER_BYTES];
    b->len = 0;
    buf_append(b, zero, sizeof(zero));
}

int frame_send(transport *t, buf_t *b)
{
    size_t n = b->len - FRAME_HEADER_BYTES;
    unsigned char *h = (unsigned char *)b->data;
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    return transport_write_all(t, b->data, b->len);
}
