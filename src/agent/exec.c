/*
 * The exec op: run a command to completion and reply with its status and
 * output. The reply is deferred: the command becomes a task of the main
 * poll loop, which feeds its stdin, collects both outputs and watches for
 * its exit and timeout, so requests sent after an exec are answered (and
 * events sent) while it runs. The exec's reply comes when it ends.
 *
 * The child gets its own session (so a timeout can kill everything it
 * started), pipes for stdin/stdout/stderr and nothing else. No combination
 * of a child that ignores stdin, floods output or backgrounds a grandchild
 * can block the agent.
 */
#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "frame.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_TIMEOUT_MS 0xFFFFFFFFull
#define DEFAULT_MAX_OUTPUT_BYTES (1u * MIB)
#define MAX_MAX_OUTPUT_BYTES (8u * MIB)
/* After the child exits, grandchildren may hold the pipes open: wait this long for more output. */
#define DRAIN_QUIET_MS 100
#define IO_CHUNK 65536

enum { X_IN, X_OUT, X_ERR, X_COUNT };

typedef struct {
    int fd;        /* -1 after EOF */
    buf_t data;
    size_t max;
    int truncated;
} out_stream;

typedef struct {
    int used;
    uint64_t id;          /* the request to answer */
    uint64_t connection;  /* ...on this connection only */
    pid_t pid;
    int in_fd;
    unsigned char *stdin_data;
    size_t stdin_len, in_off;
    out_stream out[2];
    uint64_t start, deadline, exit_at, last_data;
    int exited, status, timed_out;
    int pfd[X_COUNT];
} exec_task;

static exec_task tasks[EXEC_MAX_RUNNING];
static char scratch[IO_CHUNK];

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void set_nonblock(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void free_task(exec_task *x)
{
    close_fd(&x->in_fd);
    for (int s = 0; s < 2; s++) {
        close_fd(&x->out[s].fd);
        buf_free(&x->out[s].data);
    }
    free(x->stdin_data);
    memset(x, 0, sizeof(*x));
}

int op_exec(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)res;
    exec_task *x = NULL;
    for (size_t i = 0; i < EXEC_MAX_RUNNING && !x; i++)
        if (!tasks[i].used)
            x = &tasks[i];
    if (!x)
        return op_fail(err, "TOO_MANY_PROCESSES", "%d exec commands are running (the limit); wait for one to finish",
                       EXEC_MAX_RUNNING);

    cmd_spec cmd;
    uint64_t timeout_ms, max_output;
    unsigned char *stdin_data = NULL;
    size_t stdin_len = 0;
    if (cmd_parse(req, &cmd, "dumb", err) < 0 ||
        param_uint(req, "timeout_ms", 0, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, &timeout_ms, err) < 0 ||
        param_uint(req, "max_output_bytes", 0, DEFAULT_MAX_OUTPUT_BYTES, MAX_MAX_OUTPUT_BYTES, &max_output, err) < 0 ||
        param_base64(req, "stdin_b64", 0, &stdin_data, &stdin_len, err) < 0) {
        cmd_free(&cmd);
        return -1;
    }

    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    int rc = -1;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        int e = errno;
        int *all[] = {&in[0], &in[1], &out[0], &out[1], &errp[0], &errp[1]};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            close_fd(all[i]);
        op_fail(err, "EXEC_FAILED", "cannot create pipes: %s", strerror(e));
        goto out;
    }
    uint64_t start = monotonic_ms();
    pid_t pid = cmd_start(&cmd, in[0], out[1], errp[1], -1, err);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    if (pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&errp[0]);
        goto out;
    }
    memset(x, 0, sizeof(*x));
    x->used = 1;
    x->id = ctx->request_id;
    x->connection = ctx->connection;
    x->pid = pid;
    x->in_fd = in[1];
    x->stdin_data = stdin_data;
    x->stdin_len = stdin_len;
    stdin_data = NULL;
    if (x->stdin_len == 0)
        close_fd(&x->in_fd);
    x->out[0] = (out_stream){out[0], {NULL, 0, 0}, (size_t)max_output, 0};
    x->out[1] = (out_stream){errp[0], {NULL, 0, 0}, (size_t)max_output, 0};
    set_nonblock(x->in_fd);
    set_nonblock(x->out[0].fd);
    set_nonblock(x->out[1].fd);
    x->start = start;
    x->deadline = timeout_ms ? start + timeout_ms : 0;
    rc = EXEC_DEFERRED;
out:
    free(stdin_data);
    cmd_free(&cmd);
    return rc;
}

int exec_poll_fill(struct pollfd *pfds)
{
    int n = 0;
    for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
        exec_task *x = &tasks[i];
        for (int s = 0; s < X_COUNT; s++)
            x->pfd[s] = -1;
        if (!x->used)
            continue;
        if (x->in_fd >= 0) {
            x->pfd[X_IN] = n;
            pfds[n++] = (struct pollfd){x->in_fd, POLLOUT, 0};
        }
        for (int s = 0; s < 2; s++) {
            if (x->out[s].fd < 0)
                continue;
            x->pfd[X_OUT + s] = n;
            pfds[n++] = (struct pollfd){x->out[s].fd, POLLIN, 0};
        }
    }
    return n;
}

/* Reads one chunk; keeps what fits under the cap and discards the rest so the child never blocks. */
static int drain_once(out_stream *s)
{
    ssize_t n = read(s->fd, scratch, IO_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        close_fd(&s->fd);
        return 0;
    }
    size_t room = s->max - s->data.len;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    buf_append(&s->data, scratch, keep);
    if (keep < (size_t)n)
        s->truncated = 1;
    return 1;
}

void exec_poll_handle(const struct pollfd *pfds)
{
    for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
        exec_task *x = &tasks[i];
        if (!x->used)
            continue;
        if (x->pfd[X_IN] >= 0 && x->in_fd >= 0 && pfds[x->pfd[X_IN]].revents) {
            size_t left = x->stdin_len - x->in_off;
            ssize_t w = write(x->in_fd, x->stdin_data + x->in_off, left < IO_CHUNK ? left : IO_CHUNK);
            if (w > 0)
                x->in_off += (size_t)w;
            /* EPIPE: the child closed its stdin, which is its right. */
            if (x->in_off == x->stdin_len || (w < 0 && errno != EAGAIN && errno != EINTR))
                close_fd(&x->in_fd);
        }
        int got = 0;
        for (int s = 0; s < 2; s++)
            if (x->pfd[X_OUT + s] >= 0 && x->out[s].fd >= 0 && pfds[x->pfd[X_OUT + s]].revents)
                got |= drain_once(&x->out[s]);
        if (got && x->exited)
            x->last_data = monotonic_ms();
    }
}

int exec_on_exit(pid_t pid, int status)
{
    for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
        exec_task *x = &tasks[i];
        if (!x->used || x->exited || x->pid != pid)
            continue;
        x->exited = 1;
        x->status = status;
        x->exit_at = x->last_data = monotonic_ms();
        /* Nobody left who is meant to read stdin. */
        close_fd(&x->in_fd);
        return 1;
    }
    return 0;
}

static int send_reply(agent_ctx *ctx, exec_task *x)
{
    buf_t b;
    json_writer w;
    char tmp[16];
    buf_init(&b);
    frame_begin(&b);
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "v");
    jw_uint(&w, PROTOCOL_VERSION);
    jw_key(&w, "id");
    jw_uint(&w, x->id);
    jw_key(&w, "ok");
    jw_bool(&w, 1);
    jw_key(&w, "result");
    jw_object_begin(&w);
    jw_key(&w, "exit_code");
    if (WIFEXITED(x->status))
        jw_int(&w, WEXITSTATUS(x->status));
    else
        jw_null(&w);
    jw_key(&w, "signal");
    if (WIFSIGNALED(x->status))
        jw_cstring(&w, signal_name(WTERMSIG(x->status), tmp, sizeof(tmp)));
    else
        jw_null(&w);
    jw_key(&w, "stdout_b64");
    jw_base64(&w, x->out[0].data.data, x->out[0].data.len);
    jw_key(&w, "stderr_b64");
    jw_base64(&w, x->out[1].data.data, x->out[1].data.len);
    jw_key(&w, "stdout_truncated");
    jw_bool(&w, x->out[0].truncated);
    jw_key(&w, "stderr_truncated");
    jw_bool(&w, x->out[1].truncated);
    jw_key(&w, "timed_out");
    jw_bool(&w, x->timed_out);
    jw_key(&w, "duration_ms");
    jw_uint(&w, x->exit_at - x->start);
    jw_object_end(&w);
    jw_object_end(&w);
    int rc = agent_send_frame(ctx, &b);
    buf_free(&b);
    return rc;
}

void exec_step(agent_ctx *ctx)
{
    uint64_t now = monotonic_ms();
    for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
        exec_task *x = &tasks[i];
        if (!x->used)
            continue;
        if (!x->exited) {
            if (x->deadline && !x->timed_out && now >= x->deadline) {
                /* The child leads its own session: its process group is everything it started. */
                kill(-x->pid, SIGKILL);
                kill(x->pid, SIGKILL);
                x->timed_out = 1;
                close_fd(&x->in_fd);
            }
            continue;
        }
        /* Background grandchildren may keep the pipes open forever: do not wait for them. */
        if ((x->out[0].fd >= 0 || x->out[1].fd >= 0) && now - x->last_data < DRAIN_QUIET_MS)
            continue;
        /* A host that went away since the request gets no reply (the next host never asked). */
        if (ctx->connected && ctx->connection == x->connection)
            send_reply(ctx, x);
        free_task(x);
    }
}

int exec_timeout_ms(void)
{
    uint64_t now = monotonic_ms();
    int64_t best = -1;
    for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
        const exec_task *x = &tasks[i];
        uint64_t due;
        if (!x->used)
            continue;
        if (x->exited)
            due = x->last_data + DRAIN_QUIET_MS;
        else if (x->deadline && !x->timed_out)
            due = x->deadline;
        else
            continue;
        int64_t left = due > now ? (int64_t)(due - now) : 0;
        if (left > INT_MAX)
            left = INT_MAX;
        if (best < 0 || left < best)
            best = left;
    }
    return (int)best;
}
