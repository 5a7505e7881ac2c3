/* The streaming JSON writer (see json.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "json.h"

void jw_init(json_writer *w, buf_t *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

static void before_value(json_writer *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1])
            buf_putc(w->out, ',');
        w->has_items[w->depth - 1] = 1;
    }
}

static void open_container(json_writer *w, char c)
{
    before_value(w);
    if (w->depth >= JSON_WRITER_DEPTH)
        abort();
    buf_putc(w->out, c);
    w->has_items[w->depth++] = 0;
}

void jw_object_begin(json_writer *w) { open_container(w, '{'); }
void jw_array_begin(json_writer *w) { open_container(w, '['); }

void jw_object_end(json_writer *w)
{
    w->depth--;
    buf_putc(w->out, '}');
}

void jw_array_end(json_writer *w)
{
    w->depth--;
    buf_putc(w->out, ']');
}

static void write_escaped(buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    buf_reserve(out, n + 2);
    buf_putc(out, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\')
                j++;
            buf_append(out, p + i, j - i);
            i = j;
            continue;
        }
        if (c >= 0x80) {
            size_t len = utf8_seq_len(p + i, n - i);
            if (len == 0) {
                buf_puts(out, "\\ufffd");
                i++;
            } else {
                buf_append(out, p + i, len);
                i += len;
            }
            continue;
        }
        switch (c) {
        case '"': buf_puts(out, "\\\""); break;
        case '\\': buf_puts(out, "\\\\"); break;
        case '\n': buf_puts(out, "\\n"); break;
        case '\r': buf_puts(out, "\\r"); break;
        case '\t': buf_puts(out, "\\t"); break;
        case '\b': buf_puts(out, "\\b"); break;
        case '\f': buf_puts(out, "\\f"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            buf_puts(out, u);
        }
        }
        i++;
    }
    buf_putc(out, '"');
}

void jw_key(json_writer *w, const char *key)
{
    before_value(w);
    write_escaped(w->out, key, strlen(key));
    buf_putc(w->out, ':');
    w->after_key = 1;
}

void jw_string(json_writer *w, const char *s, size_t n)
{
    before_value(w);
    write_escaped(w->out, s, n);
}

void jw_cstring(json_writer *w, const char *s) { jw_string(w, s, strlen(s)); }

void jw_uint(json_writer *w, uint64_t v)
{
    char tmp[32];
    before_value(w);
    snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    buf_puts(w->out, tmp);
}

void jw_int(json_writer *w, int64_t v)
{
    char tmp[32];
    before_value(w);
    snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    buf_puts(w->out, tmp);
}

void jw_bool(json_writer *w, int v)
{
    before_value(w);
    buf_puts(w->out, v ? "true" : "false");
}

void jw_null(json_writer *w)
{
    before_value(w);
    buf_puts(w->out, "null");
}

void jw_base64(json_writer *w, const void *data, size_t n)
{
    before_value(w);
    buf_putc(w->out, '"');
    base64_encode_append(w->out, data, n);
    buf_putc(w->out, '"');
}
