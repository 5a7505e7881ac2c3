/*
 * tfc-agent: the guest side of the terraphim-firecracker agent protocol
 * (docs/agent-protocol.md). One poll loop reads framed JSON requests from
 * the transport and answers them in order, and streams the output and exit
 * of background processes (proc.c) as events in between. Only exec still
 * runs to completion inside its request.
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
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "frame.h"
#include "json.h"
#include "exec.h"
#include "proc.h"

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
    {"spawn", op_spawn},
    {"proc_write", op_proc_write},
    {"proc_signal", op_proc_signal},
    {"proc_resize", op_proc_resize},
    {"proc_list", op_proc_list},
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

int agent_send_frame(agent_ctx *ctx, buf_t *out)
{
    if (!ctx->connected)
        return -1;
    if (frame_send(ctx->transport, out) < 0) {
        ctx->connected = 0;
        return -1;
    }
    return 0;
}

int agent_send_event(agent_ctx *ctx) { return agent_send_frame(ctx, &ctx->events); }

static int send_error(agent_ctx *ctx, buf_t *out, uint64_t id, const op_error *err)
{
    json_writer w;
    frame_begin(out);
    jw_init(&w, out);
    write_error(&w, id, err);
    return agent_send_frame(ctx, out);
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
    ctx->request_id = *id;
    int rc = fn(ctx, req, w, err);
    if (rc != 0)
        return rc;
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
    if (rc == EXEC_DEFERRED)
        return ctx->connected ? 0 : -1;
    return agent_send_frame(ctx, out);
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

/* The request being received: its header, then its body, or the bytes of an oversized one to skip. */
typedef struct {
    unsigned char hdr[FRAME_HEADER_BYTES];
    size_t hdr_got;
    char *body; /* NULL until the header is complete */
    size_t len, got;
    size_t skip;
} reader;

static void reader_reset(reader *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Bytes of requests read per wake-up, so processes get their turn during a large upload. */
#define READ_BUDGET_BYTES (4u * MIB)

/*
 * Reads what the host sent and handles every complete request, without
 * blocking on input. Returns -1 when the host went away.
 */
static int read_requests(agent_ctx *ctx, reader *r, buf_t *out)
{
    static char scratch[65536];
    size_t budget = READ_BUDGET_BYTES;
    while (budget > 0) {
        ssize_t n;
        if (r->skip > 0) {
            n = transport_try_read(ctx->transport, scratch, r->skip < sizeof(scratch) ? r->skip : sizeof(scratch));
            if (n > 0)
                r->skip -= (size_t)n;
        } else if (!r->body && r->hdr_got < FRAME_HEADER_BYTES) {
            n = transport_try_read(ctx->transport, r->hdr + r->hdr_got, FRAME_HEADER_BYTES - r->hdr_got);
            if (n > 0)
                r->hdr_got += (size_t)n;
        } else {
            n = transport_try_read(ctx->transport, r->body + r->got, r->len - r->got);
            if (n > 0)
                r->got += (size_t)n;
        }
        if (n < 0)
            return 0; /* nothing more for now */
        if (n == 0)
            return -1;
        budget -= (size_t)n < budget ? (size_t)n : budget;

        if (!r->body && r->skip == 0 && r->hdr_got == FRAME_HEADER_BYTES) {
            size_t len = ((size_t)r->hdr[0] << 24) | ((size_t)r->hdr[1] << 16) | ((size_t)r->hdr[2] << 8) | r->hdr[3];
            op_error err;
            r->hdr_got = 0;
            if (len == 0) {
                op_fail(&err, "BAD_REQUEST", "empty frame");
                if (send_error(ctx, out, 0, &err) < 0)
                    return -1;
            } else if (len > MAX_REQUEST_BYTES) {
                /* Answer at once, then skip the body so the stream stays in sync. */
                op_fail(&err, "FRAME_TOO_LARGE", "frame of %zu bytes exceeds the limit of %u bytes", len,
                        MAX_REQUEST_BYTES);
                if (send_error(ctx, out, 0, &err) < 0)
                    return -1;
                r->skip = len;
            } else {
                r->body = xmalloc(len + 1);
                r->len = len;
                r->got = 0;
            }
        }
        if (r->body && r->got == r->len) {
            char *body = r->body;
            size_t len = r->len;
            r->body = NULL;
            body[len] = '\0';
            int sent = handle_request(ctx, body, len, out);
            free(body);
            if (out->cap > KEEP_REPLY_BUFFER_BYTES)
                buf_free(out);
            if (ctx->shutdown_pending)
                do_shutdown(ctx);
            if (sent < 0)
                return -1;
        }
    }
    return 0;
}

/* SIGCHLD as a readable fd, so the poll loop wakes when a process exits. */
static int open_sigchld_fd(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "tfc-agent: signalfd: %s; process exits are noticed within %d ms\n", strerror(errno),
                SERIAL_RECONNECT_POLL_MS);
    return fd;
}

/*
 * The agent's life after its transport is open: wait for a host, serve it
 * until it goes away, wait for the next, forever. Processes keep running in
 * between; their children are reaped on every turn.
 */
static void serve(agent_ctx *ctx, int sigchld_fd) __attribute__((noreturn));
static void serve(agent_ctx *ctx, int sigchld_fd)
{
    transport *t = ctx->transport;
    buf_t out;
    reader r;
    buf_init(&out);
    memset(&r, 0, sizeof(r));
    struct pollfd pfds[2 + PROC_POLL_MAX + EXEC_POLL_MAX];
    for (;;) {
        if (!ctx->connected && transport_try_accept(t))
            ctx->connected = 1;

        int n = 0, i_sig = -1, i_t = -1;
        if (sigchld_fd >= 0) {
            i_sig = n;
            pfds[n++] = (struct pollfd){sigchld_fd, POLLIN, 0};
        }
        short events;
        int tfd = transport_wait_fd(t, &events);
        if (tfd >= 0) {
            i_t = n;
            pfds[n++] = (struct pollfd){tfd, events, 0};
        }
        int i_proc = n;
        n += proc_poll_fill(ctx, pfds + n);
        int i_exec = n;
        n += exec_poll_fill(pfds + n);

        int timeout = proc_timeout_ms(), exec_timeout = exec_timeout_ms();
        if (exec_timeout >= 0 && (timeout < 0 || exec_timeout < timeout))
            timeout = exec_timeout;
        int capped = tfd < 0 || sigchld_fd < 0;
        if (capped && (timeout < 0 || timeout > SERIAL_RECONNECT_POLL_MS))
            timeout = SERIAL_RECONNECT_POLL_MS;
        struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
        /* Without a host on the serial port, SIGIO (a host attaching) may interrupt the wait. */
        int rc = ppoll(pfds, (nfds_t)n, timeout < 0 ? NULL : &ts,
                       t->kind == TRANSPORT_SERIAL && tfd < 0 ? &t->wait_mask : NULL);
        if (rc < 0)
            continue;

        if (i_sig >= 0 && pfds[i_sig].revents) {
            struct signalfd_siginfo si;
            while (read(sigchld_fd, &si, sizeof(si)) > 0)
                ; /* proc_step reaps every exited child */
        }
        if (i_t >= 0 && pfds[i_t].revents && ctx->connected) {
            if (read_requests(ctx, &r, &out) < 0)
                ctx->connected = 0;
        }
        exec_poll_handle(pfds + i_exec);
        if (ctx->connected)
            proc_poll_handle(ctx, pfds + i_proc);
        proc_step(ctx); /* reaps exec commands too */
        exec_step(ctx);
        if (!ctx->connected && (t->fd >= 0 && !(t->kind == TRANSPORT_SERIAL && t->lost))) {
            /* EOF, a failed send, or the host vanished: drop any partial request. */
            reader_reset(&r);
            proc_host_lost();
            ctx->connection++;
            transport_disconnect(t);
        }
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
    /* Before the transport is opened: its SIGIO wait mask must keep SIGCHLD blocked too. */
    int sigchld_fd = open_sigchld_fd();
    /*
     * Orphans of the commands we start (a backgrounded grandchild whose
     * parent exited) become our children instead of init's, and the loop's
     * waitpid(-1) reaps them: no zombies pile up whatever init does.
     */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

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

    serve(&ctx, sigchld_fd);
}
