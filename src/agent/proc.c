/* Background processes, the main loop's side: polling, output and exit events, reaping (see proc.h). */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cmd.h"
#include "exec.h"
#include "frame.h"
#include "proc_table.h"

proc proc_table[PROC_SLOTS];
static uint64_t done_counter;
static char scratch[PROC_OUTPUT_CHUNK];

int proc_live(const proc *p) { return p->state == P_RUNNING || p->state == P_EXITED || p->state == P_DRAINING; }

void proc_close_stream(proc *p, int s)
{
    if (p->fd[s] >= 0 && p->fd[s] != p->master)
        close(p->fd[s]);
    p->fd[s] = -1;
}

void proc_free_slot(proc *p)
{
    for (int s = 0; s < S_COUNT; s++)
        proc_close_stream(p, s);
    if (p->master >= 0)
        close(p->master);
    buf_free(&p->in_q);
    for (size_t i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    memset(p, 0, sizeof(*p));
    p->state = P_FREE;
}
/* ---- events ---- */

static void event_begin(agent_ctx *ctx, json_writer *w, const char *event, const proc *p)
{
    frame_begin(&ctx->events);
    jw_init(w, &ctx->events);
    jw_object_begin(w);
    jw_key(w, "v");
    jw_uint(w, PROTOCOL_VERSION);
    jw_key(w, "event");
    jw_cstring(w, event);
    jw_key(w, "pid");
    jw_uint(w, (uint64_t)p->pid);
}

static void send_output(agent_ctx *ctx, const proc *p, int s, const char *data, size_t n)
{
    json_writer w;
    event_begin(ctx, &w, "output", p);
    jw_key(&w, "stream");
    jw_cstring(&w, s == S_ERR ? "stderr" : "stdout");
    jw_key(&w, "data_b64");
    jw_base64(&w, data, n);
    jw_object_end(&w);
    agent_send_event(ctx);
}

static int send_exit(agent_ctx *ctx, const proc *p)
{
    json_writer w;
    char tmp[16];
    event_begin(ctx, &w, "exit", p);
    jw_key(&w, "exit_code");
    if (WIFEXITED(p->status))
        jw_int(&w, WEXITSTATUS(p->status));
    else
        jw_null(&w);
    jw_key(&w, "signal");
    if (WIFSIGNALED(p->status))
        jw_cstring(&w, signal_name(WTERMSIG(p->status), tmp, sizeof(tmp)));
    else
        jw_null(&w);
    jw_key(&w, "duration_ms");
    jw_uint(&w, p->exit_ms - p->start_ms);
    jw_object_end(&w);
    return agent_send_event(ctx);
}

/* ---- the loop's side ---- */

int proc_poll_fill(const agent_ctx *ctx, struct pollfd *pfds)
{
    int n = 0;
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        proc *p = &proc_table[i];
        for (int s = 0; s < S_COUNT; s++)
            p->pfd[s] = -1;
        if (!proc_live(p))
            continue;
        /* Without a host, output stays in the pipes (the writers block): nothing is lost. */
        if (ctx->connected) {
            for (int s = S_OUT; s <= S_ERR; s++) {
                if (p->fd[s] < 0)
                    continue;
                p->pfd[s] = n;
                pfds[n++] = (struct pollfd){p->fd[s], POLLIN, 0};
            }
        }
        if (p->fd[S_IN] >= 0 && p->in_q.len > p->in_off) {
            if (p->pty && p->pfd[S_OUT] >= 0) {
                /* One pollfd per fd: the master is already in the array for reading. */
                pfds[p->pfd[S_OUT]].events |= POLLOUT;
                p->pfd[S_IN] = p->pfd[S_OUT];
            } else {
                p->pfd[S_IN] = n;
                pfds[n++] = (struct pollfd){p->fd[S_IN], POLLOUT, 0};
            }
        }
    }
    return n;
}

static void stdin_done(proc *p)
{
    proc_close_stream(p, S_IN);
    buf_free(&p->in_q);
    p->in_off = 0;
    p->in_closed = 1;
}

void proc_flush_stdin(proc *p)
{
    while (p->fd[S_IN] >= 0 && p->in_q.len > p->in_off) {
        ssize_t w = write(p->fd[S_IN], p->in_q.data + p->in_off, p->in_q.len - p->in_off);
        if (w > 0) {
            p->in_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        /* EPIPE: the process closed its stdin, which is its right. */
        stdin_done(p);
        return;
    }
    p->in_q.len = p->in_off = 0;
    if (p->in_q.cap > 64 * 1024)
        buf_free(&p->in_q);
    if (p->in_eof && p->fd[S_IN] >= 0)
        stdin_done(p);
}

/* Reads one chunk of output into an event; returns 1 when there was data. */
static int read_output(agent_ctx *ctx, proc *p, int s)
{
    ssize_t n = read(p->fd[s], scratch, sizeof(scratch));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        /* EOF, or EIO from a pty master whose slave side is closed everywhere. */
        proc_close_stream(p, s);
        return 0;
    }
    send_output(ctx, p, s, scratch, (size_t)n);
    return 1;
}

void proc_poll_handle(agent_ctx *ctx, const struct pollfd *pfds)
{
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        proc *p = &proc_table[i];
        if (!proc_live(p))
            continue;
        if (p->pfd[S_IN] >= 0 && (pfds[p->pfd[S_IN]].revents & (POLLOUT | POLLERR | POLLHUP)))
            proc_flush_stdin(p);
        for (int s = S_OUT; s <= S_ERR; s++) {
            if (p->pfd[s] < 0 || p->fd[s] < 0 || !(pfds[p->pfd[s]].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (!ctx->connected)
                return; /* the host went away while we sent: the rest waits for the next one */
            if (read_output(ctx, p, s))
                p->last_data_ms = monotonic_ms();
        }
    }
}

void proc_reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (exec_on_exit(pid, status))
            continue;
        for (size_t i = 0; i < PROC_SLOTS; i++) {
            proc *p = &proc_table[i];
            if (p->state != P_RUNNING || p->pid != pid)
                continue;
            p->state = P_EXITED;
            p->status = status;
            p->exit_ms = monotonic_ms();
            /* Nobody is left who is meant to read stdin. */
            if (!p->pty)
                proc_close_stream(p, S_IN);
            p->fd[S_IN] = -1;
            buf_free(&p->in_q);
            p->in_off = 0;
            p->in_closed = 1;
        }
    }
}

void proc_step(agent_ctx *ctx)
{
    proc_reap();
    if (!ctx->connected)
        return;
    uint64_t now = monotonic_ms();
    for (size_t i = 0; i < PROC_SLOTS && ctx->connected; i++) {
        proc *p = &proc_table[i];
        if (p->state == P_EXITED) {
            p->state = P_DRAINING;
            p->drain_start_ms = p->last_data_ms = now;
        }
        if (p->state != P_DRAINING)
            continue;
        int open_streams = p->fd[S_OUT] >= 0 || p->fd[S_ERR] >= 0;
        if (open_streams && now - p->last_data_ms < DRAIN_QUIET_MS && now - p->drain_start_ms < DRAIN_MAX_MS)
            continue;
        if (send_exit(ctx, p) < 0)
            break; /* host gone: the next one gets the exit */
        /* A grandchild still holding the pipes gets EPIPE from now on. */
        for (int s = 0; s < S_COUNT; s++)
            proc_close_stream(p, s);
        if (p->master >= 0)
            close(p->master);
        p->master = -1;
        p->state = P_DONE;
        p->done_seq = ++done_counter;
    }
}

int proc_timeout_ms(void)
{
    uint64_t now = monotonic_ms();
    int64_t best = -1;
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        const proc *p = &proc_table[i];
        if (p->state != P_DRAINING)
            continue;
        uint64_t due = p->last_data_ms + DRAIN_QUIET_MS;
        if (p->drain_start_ms + DRAIN_MAX_MS < due)
            due = p->drain_start_ms + DRAIN_MAX_MS;
        int64_t left = due > now ? (int64_t)(due - now) : 0;
        if (best < 0 || left < best)
            best = left;
    }
    return (int)best;
}

void proc_host_lost(void)
{
    for (size_t i = 0; i < PROC_SLOTS; i++)
        if (proc_table[i].state == P_DRAINING)
            proc_table[i].state = P_EXITED;
}
