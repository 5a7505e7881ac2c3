/*
 * Minimal JSON for the agent protocol: a parser that builds a read-only tree
 * (strings decoded in place in the caller's buffer, so a 16 MiB base64
 * payload is never copied) and a streaming writer that appends to a buf_t.
 * Only what the protocol needs: numbers are exposed as unsigned integers when
 * they are non-negative integer literals, because every numeric field of the
 * protocol is a uint; other numbers parse but carry no value.
 */
#ifndef TFC_JSON_H
#define TFC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int boolean;
    int is_uint;          /* number is a non-negative integer literal <= UINT64_MAX */
    uint64_t uint_value;
    char *str;            /* decoded string, NUL-terminated; may contain NULs */
    size_t len;           /* string length in bytes, or element count */
    json_value *child;    /* first element / member */
    json_value *next;     /* next sibling inside the parent container */
    const char *key;      /* member name when the parent is an object */
    size_t key_len;
};

typedef struct json_node_block json_node_block;

/* Owns every node of one parsed document. */
typedef struct {
    json_node_block *blocks;
    json_value *root;
} json_doc;

/*
 * Parses text[0..len) in place (the buffer is modified: strings are decoded
 * into it). Returns 0 and sets doc->root, or -1 with a message in err.
 * json_doc_free must be called in both cases.
 */
int json_parse(json_doc *doc, char *text, size_t len, char *err, size_t err_size);
void json_doc_free(json_doc *doc);

/* Member lookup; the last duplicate wins, as in JavaScript. */
const json_value *json_get(const json_value *obj, const char *key);

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
size_t utf8_seq_len(const unsigned char *p, size_t avail);

/* Streaming writer. Nesting deeper than JSON_WRITER_DEPTH is a bug. */
#define JSON_WRITER_DEPTH 16
typedef struct {
    buf_t *out;
    int depth;
    int after_key;
    unsigned char has_items[JSON_WRITER_DEPTH];
} json_writer;

void jw_init(json_writer *w, buf_t *out);
void jw_object_begin(json_writer *w);
void jw_object_end(json_writer *w);
void jw_array_begin(json_writer *w);
void jw_array_end(json_writer *w);
void jw_key(json_writer *w, const char *key);
/* Invalid UTF-8 is replaced by U+FFFD so the output is always valid JSON. */
void jw_string(json_writer *w, const char *s, size_t n);
void jw_cstring(json_writer *w, const char *s);
void jw_uint(json_writer *w, uint64_t v);
void jw_int(json_writer *w, int64_t v);
void jw_bool(json_writer *w, int v);
void jw_null(json_writer *w);
void jw_base64(json_writer *w, const void *data, size_t n);

#endif
