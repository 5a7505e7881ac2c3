/* Standard base64 (RFC 4648 section 4, the alphabet Node's Buffer uses). */
#ifndef TFC_BASE64_H
#define TFC_BASE64_H

#include <stddef.h>

#include "buf.h"

void base64_encode_append(buf_t *out, const void *data, size_t n);

/*
 * Decodes src[0..n) into a new malloc'd buffer (*out, *out_len; free it).
 * Padding is optional; whitespace and any other character are rejected.
 * Returns 0, or -1 on malformed input (nothing to free then).
 */
int base64_decode(const char *src, size_t n, unsigned char **out, size_t *out_len);

#endif
