/*
 * Shared declarations of the guest agent: the per-process context, the
 * signature every operation implements, request parameter helpers and small
 * time utilities. See docs/agent-protocol.md for the wire protocol.
 */
#ifndef TFC_AGENT_H
#define TFC_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "transport.h"

#define AGENT_VERSION "0.1.0"
#define PROTOCOL_VERSION 1
#define MIB (1024u * 1024u)
/* Requests are capped at 16 MiB; replies may be larger (see frame.h). */
#define MAX_REQUEST_BYTES (16u * MIB)

typedef struct {
    transport *transport;
    uint64_t ready_uptime_ms;
    /* Set by the shutdown op; acted upon only after its reply is sent. */
    int shutdown_cmd;
    int shutdown_pending;
    /* A host is attached: replies and events can be sent. Cleared when a send fails. */
    int connected;
    /* Counts connections: a deferred reply goes only to the connection that asked. */
    uint64_t connection;
    /* The id of the request being handled. */
    uint64_t request_id;
    /* The frame of the event being sent (see proc.c). */
    buf_t events;
} agent_ctx;

/*
 * Sends a frame built after frame_begin. May block while the host does not
 * read. Returns 0, or -1 when the host is gone (then ctx->connected is 0 and
 * the main loop ends the connection).
 */
int agent_send_frame(agent_ctx *ctx, buf_t *frame);
/* agent_send_frame of ctx->events. */
int agent_send_event(agent_ctx *ctx);

typedef struct {
    const char *code;   /* stable error code, e.g. "BAD_REQUEST" */
    char message[1024];
} op_error;

/*
 * An operation reads its parameters from req and appends the members of its
 * result object to res. On failure it fills err and returns -1; whatever it
 * wrote to res is then discarded. EXEC_DEFERRED means the op replies later
 * by itself (exec), with ctx->request_id.
 */
#define EXEC_DEFERRED 1
typedef int (*op_fn)(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);

int op_fail(op_error *err, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Parameter helpers: a missing member or JSON null means "use the default"
 * (or BAD_REQUEST when required); a member of the wrong type is BAD_REQUEST.
 * Strings must not contain NUL since they end up as C strings.
 */
int param_uint(const json_value *req, const char *key, int required, uint64_t def, uint64_t max, uint64_t *out,
               op_error *err);
int param_bool(const json_value *req, const char *key, int def, int *out, op_error *err);
int param_string(const json_value *req, const char *key, int required, const char **out, op_error *err);
/* On success *out is malloc'd (free it); on failure nothing is allocated. */
int param_base64(const json_value *req, const char *key, int required, unsigned char **out, size_t *len,
                 op_error *err);

uint64_t monotonic_ms(void);
uint64_t uptime_ms(void);

int op_hello(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_ping(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_exec(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_write_file(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_read_file(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_set_clock(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_add_entropy(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_shutdown(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_list_dir(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_stat(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_mkdir(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_remove(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
/* spawn, proc_write, proc_signal, proc_resize and proc_list are in proc.h. */

#endif
