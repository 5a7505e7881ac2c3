/*
 * The exec op: run a command to completion and return its status and output.
 *
 * The child gets its own session (so a timeout can kill everything it
 * started), pipes for stdin/stdout/stderr and nothing else. One poll loop
 * feeds stdin, drains both outputs and watches for the child's exit, so no
 * combination of a child that ignores stdin, floods output or backgrounds a
 * grandchild can block the agent.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_TIMEOUT_MS 0xFFFFFFFFull
#define DEFAULT_MAX_OUTPUT_BYTES (1u * MIB)
#define MAX_MAX_OUTPUT_BYTES (8u * MIB)
/* After the child exits, grandchildren may hold the pipes open: wait this long for more output. */
#define DRAIN_QUIET_MS 100
/* Without pidfd_open (kernels before 5.3), how often to check whether the child exited. */
#define WAIT_POLL_MS 10
#define IO_CHUNK 65536

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

static const char *const base_env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb"};

enum { STAGE_SETUP, STAGE_CHDIR, STAGE_EXEC };

typedef struct {
    int fd;        /* -1 after EOF */
    buf_t data;
    size_t max;
    int truncated;
} out_stream;

typedef struct {
    char **argv;     /* points into the request document */
    char **envp;
    char **owned;    /* the "K=V" strings we allocated for envp */
    size_t owned_count;
    const char *cwd;
    unsigned char *stdin_data;
    size_t stdin_len;
    uint64_t timeout_ms;
    uint64_t max_output;
} exec_request;

static const char *signal_name(int sig, char *tmp, size_t size)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
        [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",     [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
        [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",
        [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",       [SIGSYS] = "SIGSYS",
    };
    if (sig > 0 && (size_t)sig < sizeof(names) / sizeof(names[0]) && names[sig])
        return names[sig];
    snprintf(tmp, size, "SIG%d", sig);
    return tmp;
}

static void free_request(exec_request *r)
{
    for (size_t i = 0; i < r->owned_count; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->envp);
    free(r->argv);
    free(r->stdin_data);
}

static int parse_env(const json_value *req, exec_request *r, op_error *err)
{
    const size_t nbase = sizeof(base_env) / sizeof(base_env[0]);
    const json_value *env = json_get(req, "env");
    if (env && env->type != JSON_NULL && env->type != JSON_OBJECT)
        return op_fail(err, "BAD_REQUEST", "'env' must be an object of strings");
    size_t nenv = env && env->type == JSON_OBJECT ? env->len : 0;
    r->owned = xmalloc(nenv * sizeof(char *));
    for (const json_value *e = nenv ? env->child : NULL; e; e = e->next) {
        if (e->key_len == 0 || strlen(e->key) != e->key_len || strchr(e->key, '='))
            return op_fail(err, "BAD_REQUEST", "'env' names must be non-empty, without '=' or NUL");
        if (e->type != JSON_STRING || strlen(e->str) != e->len)
            return op_fail(err, "BAD_REQUEST", "'env.%.64s' must be a string without NUL characters", e->key);
        char *kv = xmalloc(e->key_len + e->len + 2);
        sprintf(kv, "%s=%s", e->key, e->str);
        r->owned[r->owned_count++] = kv;
    }
    /* The base environment, minus what the request overrides, then the request's variables. */
    r->envp = xmalloc((nbase + nenv + 1) * sizeof(char *));
    size_t n = 0;
    for (size_t b = 0; b < nbase; b++) {
        size_t name_len = (size_t)(strchr(base_env[b], '=') - base_env[b]) + 1;
        int overridden = 0;
        for (size_t k = 0; k < r->owned_count; k++)
            overridden |= strncmp(r->owned[k], base_env[b], name_len) == 0;
        if (!overridden)
            r->envp[n++] = (char *)base_env[b];
    }
    for (size_t k = 0; k < r->owned_count; k++)
        r->envp[n++] = r->owned[k];
    r->envp[n] = NULL;
    return 0;
}

static int parse_request(const json_value *req, exec_request *r, op_error *err)
{
    const json_value *argv = json_get(req, "argv");
    if (!argv || argv->type != JSON_ARRAY || argv->len == 0)
        return op_fail(err, "BAD_REQUEST", "'argv' must be a non-empty array of strings");
    r->argv = xmalloc((argv->len + 1) * sizeof(char *));
    size_t i = 0;
    for (const json_value *a = argv->child; a; a = a->next) {
        if (a->type != JSON_STRING || strlen(a->str) != a->len)
            return op_fail(err, "BAD_REQUEST", "'argv' must contain only strings without NUL characters");
        r->argv[i++] = a->str;
    }
    r->argv[i] = NULL;
    if (r->argv[0][0] == '\0')
        return op_fail(err, "BAD_REQUEST", "'argv[0]' must not be empty");
    if (parse_env(req, r, err) < 0 || param_string(req, "cwd", 0, &r->cwd, err) < 0 ||
        param_uint(req, "timeout_ms", 0, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, &r->timeout_ms, err) < 0 ||
        param_uint(req, "max_output_bytes", 0, DEFAULT_MAX_OUTPUT_BYTES, MAX_MAX_OUTPUT_BYTES, &r->max_output,
                   err) < 0 ||
        param_base64(req, "stdin_b64", 0, &r->stdin_data, &r->stdin_len, err) < 0)
        return -1;
    return 0;
}

static void report_and_exit(int fd, int stage) __attribute__((noreturn));
static void report_and_exit(int fd, int stage)
{
    int msg[2] = {stage, errno};
    while (write(fd, msg, sizeof(msg)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Everything but 0, 1 and 2 must be gone once the command runs. */
static void mark_fds_cloexec(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return; /* Linux >= 5.11 */
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d))
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
}

/* Runs in the forked child. Failures travel to the parent over report_fd (CLOEXEC). */
static void run_child(const exec_request *r, int in_fd, int out_fd, int err_fd, int report_fd)
{
    /* Ignored signals and the signal mask survive exec: give the command a clean slate. */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        report_and_exit(report_fd, STAGE_SETUP);
    mark_fds_cloexec();
    if (r->cwd && chdir(r->cwd) < 0)
        report_and_exit(report_fd, STAGE_CHDIR);
    /* execvp searches the PATH of environ, so the request's PATH must be there. */
    environ = r->envp;
    execvp(r->argv[0], r->argv);
    report_and_exit(report_fd, STAGE_EXEC);
}

static int child_failure(const exec_request *r, int stage, int e, op_error *err)
{
    if (stage == STAGE_EXEC && e == ENOENT)
        return op_fail(err, "EXEC_NOT_FOUND", "command not found in guest: %.512s", r->argv[0]);
    if (stage == STAGE_EXEC)
        return op_fail(err, "EXEC_FAILED", "cannot execute %.512s: %s", r->argv[0], strerror(e));
    if (stage == STAGE_CHDIR)
        return op_fail(err, "EXEC_FAILED", "cannot change directory to %.512s: %s", r->cwd, strerror(e));
    return op_fail(err, "EXEC_FAILED", "cannot set up the child process: %s", strerror(e));
}

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

/* Reads one chunk; keeps what fits under the cap and discards the rest so the child never blocks. */
static int drain_once(out_stream *s, char *scratch)
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

static int clamp_timeout(uint64_t ms)
{
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int run(const exec_request *r, json_writer *res, op_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        pipe2(rep, O_CLOEXEC) < 0) {
        int e = errno;
        int *all[] = {&in[0], &in[1], &out[0], &out[1], &errp[0], &errp[1], &rep[0], &rep[1]};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            close_fd(all[i]);
        return op_fail(err, "EXEC_FAILED", "cannot create pipes: %s", strerror(e));
    }

    uint64_t start = monotonic_ms();
    pid_t pid = fork();
    if (pid == 0)
        run_child(r, in[0], out[1], errp[1], rep[1]);
    int fork_errno = errno;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    close_fd(&rep[1]);
    if (pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&errp[0]);
        close_fd(&rep[0]);
        return op_fail(err, "EXEC_FAILED", "cannot start %.512s: %s", r->argv[0], strerror(fork_errno));
    }

    /* EOF here means exec succeeded (the CLOEXEC pipe closed); 8 bytes mean it failed. */
    int msg[2];
    size_t got = 0;
    while (got < sizeof(msg)) {
        ssize_t n = read(rep[0], (char *)msg + got, sizeof(msg) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close_fd(&rep[0]);
    if (got == sizeof(msg)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&errp[0]);
        return child_failure(r, msg[0], msg[1], err);
    }

    out_stream so = {out[0], {NULL, 0, 0}, (size_t)r->max_output, 0};
    out_stream se = {errp[0], {NULL, 0, 0}, (size_t)r->max_output, 0};
    int in_fd = in[1];
    size_t in_off = 0;
    if (r->stdin_len == 0)
        close_fd(&in_fd);
    set_nonblock(in_fd);
    set_nonblock(so.fd);
    set_nonblock(se.fd);
    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* Linux >= 5.3; otherwise poll waitpid */
#endif

    char *scratch = xmalloc(IO_CHUNK);
    uint64_t deadline = r->timeout_ms ? start + r->timeout_ms : 0;
    uint64_t exit_at = 0, last_data = 0;
    int exited = 0, status = 0, status_known = 0, timed_out = 0;
    for (;;) {
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD)) {
                exited = 1;
                status_known = w == pid;
                exit_at = last_data = monotonic_ms();
                /* Nobody left who is meant to read stdin. */
                close_fd(&in_fd);
                close_fd(&pidfd);
            }
        }
        uint64_t now = monotonic_ms();
        int timeout = -1;
        if (exited) {
            /* Background grandchildren may keep the pipes open forever: do not wait for them. */
            if ((so.fd < 0 && se.fd < 0) || now - last_data >= DRAIN_QUIET_MS)
                break;
            timeout = clamp_timeout(DRAIN_QUIET_MS - (now - last_data));
        } else {
            if (deadline && !timed_out && now >= deadline) {
                /* The child leads its own session: its process group is everything it started. */
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                timed_out = 1;
                close_fd(&in_fd);
            }
            if (deadline && !timed_out)
                timeout = clamp_timeout(deadline - now);
            if (pidfd < 0 && (timeout < 0 || timeout > WAIT_POLL_MS))
                timeout = WAIT_POLL_MS;
        }

        struct pollfd p[4];
        int n = 0, i_in = -1, i_out = -1, i_err = -1;
        if (in_fd >= 0) {
            i_in = n;
            p[n++] = (struct pollfd){in_fd, POLLOUT, 0};
        }
        if (so.fd >= 0) {
            i_out = n;
            p[n++] = (struct pollfd){so.fd, POLLIN, 0};
        }
        if (se.fd >= 0) {
            i_err = n;
            p[n++] = (struct pollfd){se.fd, POLLIN, 0};
        }
        if (pidfd >= 0)
            p[n++] = (struct pollfd){pidfd, POLLIN, 0};
        if (poll(p, (nfds_t)n, timeout) <= 0)
            continue;

        if (i_in >= 0 && p[i_in].revents) {
            size_t left = r->stdin_len - in_off;
            ssize_t w = write(in_fd, r->stdin_data + in_off, left < IO_CHUNK ? left : IO_CHUNK);
            if (w > 0)
                in_off += (size_t)w;
            /* EPIPE: the child closed its stdin, which is its right. */
            if (in_off == r->stdin_len || (w < 0 && errno != EAGAIN && errno != EINTR))
                close_fd(&in_fd);
        }
        int got_data = 0;
        if (i_out >= 0 && p[i_out].revents)
            got_data |= drain_once(&so, scratch);
        if (i_err >= 0 && p[i_err].revents)
            got_data |= drain_once(&se, scratch);
        if (got_data && exited)
            last_data = monotonic_ms();
    }
    free(scratch);
    close_fd(&so.fd);
    close_fd(&se.fd);

    char tmp[16];
    jw_key(res, "exit_code");
    if (status_known && WIFEXITED(status))
        jw_int(res, WEXITSTATUS(status));
    else
        jw_null(res);
    jw_key(res, "signal");
    if (status_known && WIFSIGNALED(status))
        jw_cstring(res, signal_name(WTERMSIG(status), tmp, sizeof(tmp)));
    else
        jw_null(res);
    jw_key(res, "stdout_b64");
    jw_base64(res, so.data.data, so.data.len);
    jw_key(res, "stderr_b64");
    jw_base64(res, se.data.data, se.data.len);
    jw_key(res, "stdout_truncated");
    jw_bool(res, so.truncated);
    jw_key(res, "stderr_truncated");
    jw_bool(res, se.truncated);
    jw_key(res, "timed_out");
    jw_bool(res, timed_out);
    jw_key(res, "duration_ms");
    jw_uint(res, exit_at - start);
    buf_free(&so.data);
    buf_free(&se.data);
    return 0;
}

int op_exec(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    exec_request r;
    memset(&r, 0, sizeof(r));
    int rc = parse_request(req, &r, err);
    if (rc == 0)
        rc = run(&r, res, err);
    free_request(&r);
    return rc;
}
