/* The JSON parser (see json.h). */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests are flat; a deep document is either a bug or an attack on the stack. */
#define JSON_MAX_DEPTH 32
#define NODES_PER_BLOCK 128

struct json_node_block {
    json_node_block *next;
    size_t used;
    json_value nodes[NODES_PER_BLOCK];
};

typedef struct {
    json_doc *doc;
    char *p;
    char *end;
    char *start;
    char *err;
    size_t err_size;
} parser;

static json_value *new_node(parser *ps, json_type type)
{
    json_node_block *b = ps->doc->blocks;
    if (!b || b->used == NODES_PER_BLOCK) {
        b = xmalloc(sizeof(*b));
        b->next = ps->doc->blocks;
        b->used = 0;
        ps->doc->blocks = b;
    }
    json_value *v = &b->nodes[b->used++];
    memset(v, 0, sizeof(*v));
    v->type = type;
    return v;
}

static int fail(parser *ps, const char *what)
{
    snprintf(ps->err, ps->err_size, "invalid JSON at byte %zu: %s", (size_t)(ps->p - ps->start), what);
    return -1;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    if (avail == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static char *put_utf8(char *w, uint32_t cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    }
    return w;
}

static int hex4(parser *ps, const char *s, uint32_t *out)
{
    uint32_t v = 0;
    if (ps->end - s < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/*
 * Decodes the string starting after the opening quote, writing into the same
 * buffer: every escape is at least as long as what it decodes to, so the
 * write cursor never overtakes the read cursor.
 */
static int parse_string_raw(parser *ps, char **out, size_t *out_len)
{
    char *r = ps->p + 1;
    char *w = r;
    char *start = w;
    for (;;) {
        if (r >= ps->end) {
            ps->p = r;
            return fail(ps, "unterminated string");
        }
        unsigned char c = (unsigned char)*r;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            /* Plain ASCII, the whole of a base64 payload: the hot path. */
            *w++ = *r++;
            continue;
        }
        if (c == '"') {
            r++;
            break;
        }
        if (c < 0x20) {
            ps->p = r;
            return fail(ps, "control character in string");
        }
        if (c == '\\') {
            if (r + 1 >= ps->end) {
                ps->p = r;
                return fail(ps, "unterminated escape");
            }
            char e = r[1];
            r += 2;
            switch (e) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '/': *w++ = '/'; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (hex4(ps, r, &cp) < 0) {
                    ps->p = r;
                    return fail(ps, "bad \\u escape");
                }
                r += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (ps->end - r >= 6 && r[0] == '\\' && r[1] == 'u' && hex4(ps, r + 2, &lo) == 0 &&
                        lo >= 0xDC00 && lo <= 0xDFFF) {
                        r += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        cp = 0xFFFD; /* lone surrogate: what JavaScript's UTF-8 encoder does */
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    cp = 0xFFFD;
                }
                w = put_utf8(w, cp);
                break;
            }
            default:
                ps->p = r - 2;
                return fail(ps, "bad escape");
            }
            continue;
        }
        size_t n = utf8_seq_len((const unsigned char *)r, (size_t)(ps->end - r));
        if (n == 0) {
            ps->p = r;
            return fail(ps, "invalid UTF-8 in string");
        }
        memmove(w, r, n);
        w += n;
        r += n;
    }
    *out_len = (size_t)(w - start);
    *w = '\0'; /* w < r: the closing quote at least was consumed */
    *out = start;
    ps->p = r;
    return 0;
}

static int parse_value(parser *ps, json_value **out, int depth);

static int parse_number(parser *ps, json_value **out)
{
    char *s = ps->p;
    char *q = s;
    int negative = 0, integral = 1;
    if (q < ps->end && *q == '-') {
        negative = 1;
        q++;
    }
    if (q >= ps->end)
        return fail(ps, "bad number");
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    } else {
        return fail(ps, "bad number");
    }
    if (q < ps->end && *q == '.') {
        integral = 0;
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, "bad number");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    json_value *v = new_node(ps, JSON_NUMBER);
    if (!negative && integral) {
        uint64_t acc = 0;
        int overflow = 0;
        for (char *d = s; d < q; d++) {
            uint64_t digit = (uint64_t)(*d - '0');
            if (acc > (UINT64_MAX - digit) / 10) {
                overflow = 1;
                break;
            }
            acc = acc * 10 + digit;
        }
        if (!overflow) {
            v->is_uint = 1;
            v->uint_value = acc;
        }
    }
    ps->p = q;
    *out = v;
    return 0;
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected token");
    ps->p += n;
    return 0;
}

static int parse_container(parser *ps, json_value **out, int depth, int is_object)
{
    json_value *c = new_node(ps, is_object ? JSON_OBJECT : JSON_ARRAY);
    json_value **tail = &c->child;
    char close = is_object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        *out = c;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        skip_ws(ps);
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected member name");
            if (parse_string_raw(ps, &key, &key_len) < 0)
                return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        json_value *item;
        if (parse_value(ps, &item, depth + 1) < 0)
            return -1;
        item->key = key;
        item->key_len = key_len;
        *tail = item;
        tail = &item->next;
        c->len++;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, "unterminated container");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            break;
        }
        return fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    *out = c;
    return 0;
}

static int parse_value(parser *ps, json_value **out, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(ps, "nesting too deep");
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, out, depth, 1);
    case '[':
        return parse_container(ps, out, depth, 0);
    case '"': {
        json_value *v = new_node(ps, JSON_STRING);
        if (parse_string_raw(ps, &v->str, &v->len) < 0)
            return -1;
        *out = v;
        return 0;
    }
    case 't':
        if (literal(ps, "true") < 0)
            return -1;
        *out = new_node(ps, JSON_BOOL);
        (*out)->boolean = 1;
        return 0;
    case 'f':
        if (literal(ps, "false") < 0)
            return -1;
        *out = new_node(ps, JSON_BOOL);
        return 0;
    case 'n':
        if (literal(ps, "null") < 0)
            return -1;
        *out = new_node(ps, JSON_NULL);
        return 0;
    default:
        return parse_number(ps, out);
    }
}

int json_parse(json_doc *doc, char *text, size_t len, char *err, size_t err_size)
{
    parser ps = {doc, text, text + len, text, err, err_size};
    doc->blocks = NULL;
    doc->root = NULL;
    json_value *root;
    if (parse_value(&ps, &root, 0) < 0)
        return -1;
    skip_ws(&ps);
    if (ps.p != ps.end)
        return fail(&ps, "trailing data");
    doc->root = root;
    return 0;
}

void json_doc_free(json_doc *doc)
{
    json_node_block *b = doc->blocks;
    while (b) {
        json_node_block *next = b->next;
        free(b);
        b = next;
    }
    doc->blocks = NULL;
    doc->root = NULL;
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    const json_value *found = NULL;
    for (const json_value *m = obj->child; m; m = m->next)
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            found = m;
    return found;
}
