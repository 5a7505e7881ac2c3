#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "base64.h"

int op_fail(op_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

static const json_value *lookup(const json_value *req, const char *key)
{
    const json_value *v = json_get(req, key);
    return v && v->type == JSON_NULL ? NULL : v;
}

int param_uint(const json_value *req, const char *key, int required, uint64_t def, uint64_t max, uint64_t *out,
               op_error *err)
{
    const json_value *v = lookup(req, key);
    if (!v) {
        if (required)
            return op_fail(err, "BAD_REQUEST", "missing required field '%s'", key);
        *out = def;
        return 0;
    }
    if (v->type != JSON_NUMBER || !v->is_uint || v->uint_value > max)
        return op_fail(err, "BAD_REQUEST", "'%s' must be an unsigned integer <= %llu", key, (unsigned long long)max);
    *out = v->uint_value;
    return 0;
}

int param_bool(const json_value *req, const char *key, int def, int *out, op_error *err)
{
    const json_value *v = lookup(req, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (v->type != JSON_BOOL)
        return op_fail(err, "BAD_REQUEST", "'%s' must be a boolean", key);
    *out = v->boolean;
    return 0;
}

int param_string(const json_value *req, const char *key, int required, const char **out, op_error *err)
{
    const json_value *v = lookup(req, key);
    if (!v) {
        if (required)
            return op_fail(err, "BAD_REQUEST", "missing required field '%s'", key);
        *out = NULL;
        return 0;
    }
    if (v->type != JSON_STRING)
        return op_fail(err, "BAD_REQUEST", "'%s' must be a string", key);
    if (strlen(v->str) != v->len)
        return op_fail(err, "BAD_REQUEST", "'%s' must not contain NUL characters", key);
    *out = v->str;
    return 0;
}

int param_base64(const json_value *req, const char *key, int required, unsigned char **out, size_t *len,
                 op_error *err)
{
    const json_value *v = lookup(req, key);
    if (!v) {
        if (required)
            return op_fail(err, "BAD_REQUEST", "missing required field '%s'", key);
        *out = NULL;
        *len = 0;
        return 0;
    }
    if (v->type != JSON_STRING || base64_decode(v->str, v->len, out, len) < 0)
        return op_fail(err, "BAD_REQUEST", "'%s' must be a base64 string", key);
    return 0;
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

/* CLOCK_BOOTTIME is the clock behind /proc/uptime, without its 10 ms steps. */
uint64_t uptime_ms(void) { return clock_ms(CLOCK_BOOTTIME); }
