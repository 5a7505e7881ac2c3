/*
 * tfc-agent: the guest side of the terraphim-firecracker agent protocol
 * (docs/agent-protocol.md). Reads framed JSON requests from one transport,
 * handles them one at a time in order, and writes one reply per request.
 *
 * It runs under an init script that restarts it, but it never exits on its
 * own once its transport is open: a host that goes away is just a
 * disconnection, and the next host (possibly a snapshot clone's) is served.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "agent.h"
#include "frame.h"
#include "json.h"

#define DEFAULT_VSOCK_PORT 1024
/* Largest integer a JavaScript number holds exactly: ids round-trip intact. */
#define MAX_SAFE_ID 9007199254740991ull
/* Keep at most this much reply buffer between requests. */
#define KEEP_REPLY_BUFFER_BYTES (1u * MIB)

static const struct {
    const char *name;
    op_fn fn;
} ops[] = {
    {"hello", op_hello},
    {"ping", op_ping},
    {"exec", op_exec},
    {"write_file", op_write_file},
    {"read_file", op_read_file},
    {"set_clock", op_set_clock},
    {"add_entropy", op_add_entropy},
    {"shutdown", op_shutdown},
    {"list_dir", op_list_dir},
    {"stat", op_stat},
    {"mkdir", op_mkdir},
    {"remove", op_remove},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tfc-agent [--serial [PATH] | --vsock PORT | --unix PATH]\n"
            "Without arguments, reads tfc.agent=serial|vsock and tfc.agent_port=N\n"
            "from /proc/cmdline (default: serial, port %d).\n",
            DEFAULT_VSOCK_PORT);
}

static int parse_port(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v >= 0xFFFFFFFFul)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The kernel command line is how an image chooses the transport without a rebuild. */
static void read_cmdline(transport *t)
{
    char line[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0)
        return;
    line[n] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (strcmp(tok, "tfc.agent=serial") == 0)
            t->kind = TRANSPORT_SERIAL;
        else if (strcmp(tok, "tfc.agent=vsock") == 0)
            t->kind = TRANSPORT_VSOCK;
        else if (strncmp(tok, "tfc.agent=", 10) == 0)
            fprintf(stderr, "tfc-agent: ignoring unknown %s (expected serial or vsock)\n", tok);
        else if (strncmp(tok, "tfc.agent_port=", 15) == 0 && parse_port(tok + 15, &t->port) < 0)
            fprintf(stderr, "tfc-agent: ignoring invalid %s\n", tok);
    }
}

static int parse_args(int argc, char **argv, transport *t)
{
    if (argc == 1) {
        read_cmdline(t);
        return 0;
    }
    const char *opt = argv[1];
    if (strcmp(opt, "--serial") == 0 && argc <= 3) {
        t->kind = TRANSPORT_SERIAL;
        t->path = argc == 3 ? argv[2] : NULL;
        return 0;
    }
    if (strcmp(opt, "--vsock") == 0 && argc == 3 && parse_port(argv[2], &t->port) == 0) {
        t->kind = TRANSPORT_VSOCK;
        return 0;
    }
    if (strcmp(opt, "--unix") == 0 && argc == 3 && argv[2][0]) {
        t->kind = TRANSPORT_UNIX;
        t->path = argv[2];
        return 0;
    }
    if (strcmp(opt, "--version") == 0) {
        printf("tfc-agent %s protocol %d\n", AGENT_VERSION, PROTOCOL_VERSION);
        exit(0);
    }
    if (strcmp(opt, "--help") == 0) {
        usage(stdout);
        exit(0);
    }
    return -1;
}

static void write_error(json_writer *w, uint64_t id, const op_error *err)
{
    jw_object_begin(w);
    jw_key(w, "v");
    jw_uint(w, PROTOCOL_VERSION);
    jw_key(w, "id");
    jw_uint(w, id);
    jw_key(w, "ok");
    jw_bool(w, 0);
    jw_key(w, "error");
    jw_object_begin(w);
    jw_key(w, "code");
    jw_cstring(w, err->code);
    jw_key(w, "message");
    jw_cstring(w, err->message);
    jw_object_end(w);
    jw_object_end(w);
}

static int send_error(agent_ctx *ctx, buf_t *out, uint64_t id, const op_error *err)
{
    json_writer w;
    frame_begin(out);
    jw_init(&w, out);
    write_error(&w, id, err);
    return frame_send(ctx->transport, out);
}

/* Validates the envelope, runs the op, and writes the success envelope around its result. */
static int dispatch(agent_ctx *ctx, const json_value *req, json_writer *w, uint64_t *id, op_error *err)
{
    if (req->type != JSON_OBJECT)
        return op_fail(err, "BAD_REQUEST", "a request must be a JSON object");
    /* Take the id first so that even a version error can be matched to its request. */
    const json_value *idv = json_get(req, "id");
    int id_ok = idv && idv->type == JSON_NUMBER && idv->is_uint && idv->uint_value <= MAX_SAFE_ID;
    if (id_ok)
        *id = idv->uint_value;
    const json_value *v = json_get(req, "v");
    if (!v || v->type != JSON_NUMBER)
        return op_fail(err, "BAD_REQUEST", "missing protocol version 'v'");
    if (!v->is_uint || v->uint_value != PROTOCOL_VERSION)
        return op_fail(err, "UNSUPPORTED_VERSION", "unsupported protocol version; this agent speaks version %d",
                       PROTOCOL_VERSION);
    if (!id_ok)
        return op_fail(err, "BAD_REQUEST", "'id' must be an unsigned integer <= 2^53-1");
    const json_value *op = json_get(req, "op");
    if (!op || op->type != JSON_STRING)
        return op_fail(err, "BAD_REQUEST", "missing 'op'");
    op_fn fn = NULL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(op->str, ops[i].name) == 0 && strlen(ops[i].name) == op->len)
            fn = ops[i].fn;
    if (!fn)
        return op_fail(err, "UNKNOWN_OP", "unknown op '%.64s'", op->str);

    jw_object_begin(w);
    jw_key(w, "v");
    jw_uint(w, PROTOCOL_VERSION);
    jw_key(w, "id");
    jw_uint(w, *id);
    jw_key(w, "ok");
    jw_bool(w, 1);
    jw_key(w, "result");
    jw_object_begin(w);
    if (fn(ctx, req, w, err) < 0)
        return -1;
    jw_object_end(w);
    jw_object_end(w);
    return 0;
}

/* Returns 0, or -1 when the reply could not be sent (host gone). */
static int handle_request(agent_ctx *ctx, char *body, size_t len, buf_t *out)
{
    json_doc doc;
    json_writer w;
    op_error err;
    uint64_t id = 0;
    char parse_err[128];
    int rc;

    frame_begin(out);
    jw_init(&w, out);
    if (json_parse(&doc, body, len, parse_err, sizeof(parse_err)) < 0)
        rc = op_fail(&err, "BAD_REQUEST", "%s", parse_err);
    else
        rc = dispatch(ctx, doc.root, &w, &id, &err);
    json_doc_free(&doc);
    if (rc < 0)
        return send_error(ctx, out, id, &err);
    return frame_send(ctx->transport, out);
}

static void do_shutdown(agent_ctx *ctx)
{
    ctx->shutdown_pending = 0;
    if (ctx->transport->kind == TRANSPORT_UNIX) {
        /* Host-side test mode: rebooting would take the host down. */
        transport_close(ctx->transport);
        fprintf(stderr, "tfc-agent: exiting on shutdown request (unix transport never reboots)\n");
        exit(0);
    }
    sync();
    /*
     * Firecracker's vsock device forwards our reply from its own thread;
     * give it a moment before the reboot ends the VM under it.
     */
    usleep(50 * 1000);
    reboot(ctx->shutdown_cmd);
    fprintf(stderr, "tfc-agent: reboot failed: %s\n", strerror(errno));
}

/* Serves requests from one attached host until it goes away. */
static void serve_connection(agent_ctx *ctx, buf_t *out)
{
    transport *t = ctx->transport;
    for (;;) {
        char *body = NULL;
        size_t len = 0;
        op_error err;
        int sent;
        frame_status st = frame_read(t, MAX_REQUEST_BYTES, &body, &len);
        switch (st) {
        case FRAME_EOF:
            return;
        case FRAME_EMPTY:
            op_fail(&err, "BAD_REQUEST", "empty frame");
            sent = send_error(ctx, out, 0, &err);
            break;
        case FRAME_TOO_LARGE:
            /* Answer at once, then skip the body so the stream stays in sync. */
            op_fail(&err, "FRAME_TOO_LARGE", "frame of %zu bytes exceeds the limit of %u bytes", len,
                    MAX_REQUEST_BYTES);
            sent = send_error(ctx, out, 0, &err);
            if (sent == 0 && frame_skip(t, len) < 0)
                sent = -1;
            break;
        default:
            sent = handle_request(ctx, body, len, out);
            free(body);
        }
        if (out->cap > KEEP_REPLY_BUFFER_BYTES)
            buf_free(out);
        if (ctx->shutdown_pending)
            do_shutdown(ctx);
        if (sent < 0)
            return;
    }
}

int main(int argc, char **argv)
{
    /* A host that disconnects mid-reply must cost us an EPIPE, not our life. */
    signal(SIGPIPE, SIG_IGN);
    /* Inherited SIG_IGN would make the kernel reap exec children before waitpid sees them. */
    signal(SIGCHLD, SIG_DFL);
    /* If init left 0-2 closed, pipes would land there and dup2 in the child would be a no-op. */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0)
            open("/dev/null", O_RDWR);

    transport t;
    memset(&t, 0, sizeof(t));
    t.kind = TRANSPORT_SERIAL;
    t.port = DEFAULT_VSOCK_PORT;
    if (parse_args(argc, argv, &t) < 0) {
        usage(stderr);
        return 2;
    }
    if (transport_open(&t) < 0)
        return 1;

    agent_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.transport = &t;
    ctx.ready_uptime_ms = uptime_ms();
    fprintf(stderr, "tfc-agent: ready transport=%s uptime_ms=%llu\n", transport_name(t.kind),
            (unsigned long long)ctx.ready_uptime_ms);

    buf_t out;
    buf_init(&out);
    for (;;) {
        transport_accept(&t);
        serve_connection(&ctx, &out);
        transport_disconnect(&t);
    }
}
