/*
 * Growable byte buffer. Allocation failure aborts the agent: a guest that
 * cannot allocate a few MiB is unusable anyway, and init restarts us, which is
 * simpler and safer than threading ENOMEM through every JSON writer call.
 */
#ifndef TFC_BUF_H
#define TFC_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_putc(buf_t *b, char c);
void buf_puts(buf_t *b, const char *s);

/* malloc that never returns NULL (see above). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);

#endif
