#include "frame.h"

#include <stdlib.h>
#include <string.h>

static int read_exact(transport *t, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = transport_read(t, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

frame_status frame_read(transport *t, size_t max, char **body, size_t *len)
{
    unsigned char hdr[FRAME_HEADER_BYTES];
    if (read_exact(t, hdr, sizeof(hdr)) < 0)
        return FRAME_EOF;
    size_t n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    *len = n;
    if (n == 0)
        return FRAME_EMPTY;
    if (n > max)
        return FRAME_TOO_LARGE;
    char *data = xmalloc(n + 1);
    if (read_exact(t, data, n) < 0) {
        free(data);
        return FRAME_EOF;
    }
    data[n] = '\0';
    *body = data;
    return FRAME_OK;
}

int frame_skip(transport *t, size_t n)
{
    char scratch[65536];
    while (n > 0) {
        ssize_t r = transport_read(t, scratch, n < sizeof(scratch) ? n : sizeof(scratch));
        if (r <= 0)
            return -1;
        n -= (size_t)r;
    }
    return 0;
}

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
