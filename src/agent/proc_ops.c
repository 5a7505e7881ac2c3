/* The spawn and proc_* ops (see proc.h); the loop's side is proc.c. */
#define _GNU_SOURCE
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
#include "proc_table.h"

/* The process a request names: a live one first (a pid of a reported exit may be reused by then). */
static proc *find(uint64_t pid)
{
    proc *done = NULL;
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        proc *p = &proc_table[i];
        if (p->state == P_FREE || (uint64_t)p->pid != pid)
            continue;
        if (proc_live(p))
            return p;
        if (!done || p->done_seq > done->done_seq)
            done = p;
    }
    return done;
}

static int lookup(const json_value *req, proc **out, op_error *err)
{
    uint64_t pid;
    if (param_uint(req, "pid", 1, 0, INT32_MAX, &pid, err) < 0)
        return -1;
    *out = find(pid);
    if (!*out)
        return op_fail(err, "PROCESS_NOT_FOUND", "no process %llu was started by this agent", (unsigned long long)pid);
    return 0;
}

static int require_running(const proc *p, op_error *err)
{
    if (p->state != P_RUNNING)
        return op_fail(err, "PROCESS_NOT_FOUND", "process %d has exited", (int)p->pid);
    return 0;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
/* ---- ops ---- */

/* A free slot; the oldest reported process is forgotten when none is. */
static proc *alloc_slot(op_error *err)
{
    size_t nlive = 0;
    proc *free_p = NULL, *oldest = NULL;
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        proc *p = &proc_table[i];
        if (proc_live(p))
            nlive++;
        else if (p->state == P_FREE && !free_p)
            free_p = p;
        else if (p->state == P_DONE && (!oldest || p->done_seq < oldest->done_seq))
            oldest = p;
    }
    if (nlive >= PROC_MAX_LIVE) {
        op_fail(err, "TOO_MANY_PROCESSES",
                "%d processes are running or have unreported exits (the limit); wait for one to exit or kill one",
                PROC_MAX_LIVE);
        return NULL;
    }
    if (!free_p) {
        proc_free_slot(oldest);
        free_p = oldest;
    }
    return free_p;
}

static void keep_argv(proc *p, char *const *argv)
{
    size_t n = 0, budget = LIST_ARGV_BYTES;
    while (argv[n] && n < LIST_ARGV_MAX)
        n++;
    p->argv = xmalloc(n * sizeof(char *));
    for (size_t i = 0; i < n && budget > 0; i++) {
        size_t len = strlen(argv[i]);
        if (len > budget)
            len = budget;
        budget -= len;
        p->argv[i] = xmalloc(len + 1);
        memcpy(p->argv[i], argv[i], len);
        p->argv[i][len] = '\0';
        p->argc = i + 1;
    }
}

static int parse_pty(const json_value *req, int *use, struct winsize *ws, op_error *err)
{
    const json_value *v = json_get(req, "pty");
    *use = 0;
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_OBJECT)
        return op_fail(err, "BAD_REQUEST", "'pty' must be an object {cols, rows}");
    uint64_t cols, rows;
    if (param_uint(v, "cols", 1, 0, MAX_PTY_SIZE, &cols, err) < 0 || param_uint(v, "rows", 1, 0, MAX_PTY_SIZE, &rows, err) < 0)
        return -1;
    if (cols == 0 || rows == 0)
        return op_fail(err, "BAD_REQUEST", "'pty.cols' and 'pty.rows' must be between 1 and %d", MAX_PTY_SIZE);
    memset(ws, 0, sizeof(*ws));
    ws->ws_col = (unsigned short)cols;
    ws->ws_row = (unsigned short)rows;
    *use = 1;
    return 0;
}

/* Opens a pty pair of size ws; both fds CLOEXEC, the master non-blocking. */
static int open_pty(int *master, int *slave, const struct winsize *ws, op_error *err)
{
    char name[128];
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return op_fail(err, "EXEC_FAILED", "cannot open a pty (is devpts mounted on /dev/pts?): %s", strerror(errno));
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0) {
        int e = errno;
        close(m);
        return op_fail(err, "EXEC_FAILED", "cannot set up the pty: %s", strerror(e));
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0 || ioctl(m, TIOCSWINSZ, ws) < 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        close(m);
        return op_fail(err, "EXEC_FAILED", "cannot open the pty %s: %s", name, strerror(e));
    }
    set_nonblock(m);
    *master = m;
    *slave = s;
    return 0;
}

int op_spawn(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    cmd_spec c;
    int use_pty;
    struct winsize ws;
    if (cmd_parse(req, &c, "dumb", err) < 0 || parse_pty(req, &use_pty, &ws, err) < 0) {
        cmd_free(&c);
        return -1;
    }
    if (use_pty) {
        cmd_free(&c);
        if (cmd_parse(req, &c, "xterm-256color", err) < 0) {
            cmd_free(&c);
            return -1;
        }
    }
    proc *p = alloc_slot(err);
    if (!p) {
        cmd_free(&c);
        return -1;
    }
    int fds[6] = {-1, -1, -1, -1, -1, -1}; /* in r/w, out r/w, err r/w */
    int master = -1, slave = -1, rc = -1;
    pid_t pid = -1;
    uint64_t start = monotonic_ms(), started = uptime_ms();
    if (use_pty) {
        if (open_pty(&master, &slave, &ws, err) < 0)
            goto out;
        pid = cmd_start(&c, -1, -1, -1, slave, err);
        close(slave);
        if (pid < 0) {
            close(master);
            goto out;
        }
    } else {
        if (pipe2(fds, O_CLOEXEC) < 0 || pipe2(fds + 2, O_CLOEXEC) < 0 || pipe2(fds + 4, O_CLOEXEC) < 0) {
            op_fail(err, "EXEC_FAILED", "cannot create pipes: %s", strerror(errno));
            for (int i = 0; i < 6; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            goto out;
        }
        pid = cmd_start(&c, fds[0], fds[3], fds[5], -1, err);
        close(fds[0]);
        close(fds[3]);
        close(fds[5]);
        if (pid < 0) {
            close(fds[1]);
            close(fds[2]);
            close(fds[4]);
            goto out;
        }
        set_nonblock(fds[1]);
        set_nonblock(fds[2]);
        set_nonblock(fds[4]);
    }
    memset(p, 0, sizeof(*p));
    p->state = P_RUNNING;
    p->pid = pid;
    p->pty = use_pty;
    p->master = master;
    p->fd[S_IN] = use_pty ? master : fds[1];
    p->fd[S_OUT] = use_pty ? master : fds[2];
    p->fd[S_ERR] = use_pty ? -1 : fds[4];
    buf_init(&p->in_q);
    p->start_ms = start;
    p->started_uptime_ms = started;
    keep_argv(p, c.argv);
    jw_key(res, "pid");
    jw_uint(res, (uint64_t)pid);
    rc = 0;
out:
    cmd_free(&c);
    return rc;
}

int op_proc_write(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    proc *p;
    int eof;
    unsigned char *data;
    size_t len;
    if (lookup(req, &p, err) < 0 || param_bool(req, "eof", 0, &eof, err) < 0)
        return -1;
    if (p->state != P_RUNNING)
        return op_fail(err, "STDIN_CLOSED", "process %d has exited", (int)p->pid);
    if (p->in_closed || p->in_eof)
        return op_fail(err, "STDIN_CLOSED", "the stdin of process %d is closed", (int)p->pid);
    if (param_base64(req, "data_b64", 0, &data, &len, err) < 0)
        return -1;
    size_t queued = p->in_q.len - p->in_off;
    /* A pty's end of file is a character of its own: it goes through the queue too. */
    size_t extra = eof && p->pty ? 1 : 0;
    if (queued + len + extra > PROC_STDIN_MAX_BYTES) {
        free(data);
        return op_fail(err, "STDIN_FULL",
                       "process %d has %zu bytes of stdin waiting; %zu more would exceed %u: retry when it has read them",
                       (int)p->pid, queued, len, PROC_STDIN_MAX_BYTES);
    }
    buf_append(&p->in_q, data, len);
    free(data);
    if (eof && p->pty) {
        struct termios t;
        char veof = tcgetattr(p->master, &t) == 0 && t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
        buf_append(&p->in_q, &veof, 1);
    } else if (eof) {
        p->in_eof = 1;
    }
    proc_flush_stdin(p);
    jw_key(res, "bytes_accepted");
    jw_uint(res, len);
    return 0;
}

static const char *const allowed_signals[] = {"SIGINT",  "SIGTERM", "SIGKILL", "SIGHUP",  "SIGQUIT",
                                              "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT", "SIGWINCH"};

int op_proc_signal(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    (void)res;
    proc *p;
    const char *name;
    if (lookup(req, &p, err) < 0 || param_string(req, "signal", 1, &name, err) < 0)
        return -1;
    int sig = 0;
    for (size_t i = 0; i < sizeof(allowed_signals) / sizeof(allowed_signals[0]); i++)
        if (strcmp(name, allowed_signals[i]) == 0)
            sig = signal_number(name);
    if (!sig)
        return op_fail(err, "BAD_REQUEST",
                       "'signal' must be one of SIGINT SIGTERM SIGKILL SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGSTOP SIGCONT SIGWINCH");
    /* Only while unreaped: after that the pid (and group id) may belong to someone else. */
    if (require_running(p, err) < 0)
        return -1;
    /* The process leads its own session: its group is everything it started. */
    if (kill(-p->pid, sig) < 0 && kill(p->pid, sig) < 0)
        return op_fail(err, "SYSTEM_ERROR", "cannot signal process %d: %s", (int)p->pid, strerror(errno));
    return 0;
}

int op_proc_resize(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    (void)res;
    proc *p;
    uint64_t cols, rows;
    if (lookup(req, &p, err) < 0 || param_uint(req, "cols", 1, 0, MAX_PTY_SIZE, &cols, err) < 0 ||
        param_uint(req, "rows", 1, 0, MAX_PTY_SIZE, &rows, err) < 0)
        return -1;
    if (cols == 0 || rows == 0)
        return op_fail(err, "BAD_REQUEST", "'cols' and 'rows' must be between 1 and %d", MAX_PTY_SIZE);
    if (!p->pty)
        return op_fail(err, "NOT_A_PTY", "process %d has no terminal (spawn it with pty)", (int)p->pid);
    if (require_running(p, err) < 0)
        return -1;
    struct winsize ws;
    memset(&ws, 0, sizeof(ws));
    ws.ws_col = (unsigned short)cols;
    ws.ws_row = (unsigned short)rows;
    /* The kernel sends SIGWINCH to the terminal's foreground process group. */
    if (ioctl(p->master, TIOCSWINSZ, &ws) < 0)
        return op_fail(err, "SYSTEM_ERROR", "cannot resize the terminal of process %d: %s", (int)p->pid, strerror(errno));
    return 0;
}

int op_proc_list(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    char tmp[16];
    proc_reap();
    jw_key(res, "processes");
    jw_array_begin(res);
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        const proc *p = &proc_table[i];
        if (p->state == P_FREE)
            continue;
        int running = p->state == P_RUNNING;
        jw_object_begin(res);
        jw_key(res, "pid");
        jw_uint(res, (uint64_t)p->pid);
        jw_key(res, "argv");
        jw_array_begin(res);
        for (size_t a = 0; a < p->argc; a++)
            jw_cstring(res, p->argv[a]);
        jw_array_end(res);
        jw_key(res, "pty");
        jw_bool(res, p->pty);
        jw_key(res, "running");
        jw_bool(res, running);
        jw_key(res, "exit_code");
        if (!running && WIFEXITED(p->status))
            jw_int(res, WEXITSTATUS(p->status));
        else
            jw_null(res);
        jw_key(res, "signal");
        if (!running && WIFSIGNALED(p->status))
            jw_cstring(res, signal_name(WTERMSIG(p->status), tmp, sizeof(tmp)));
        else
            jw_null(res);
        jw_key(res, "started_uptime_ms");
        jw_uint(res, p->started_uptime_ms);
        jw_object_end(res);
    }
    jw_array_end(res);
    return 0;
}
