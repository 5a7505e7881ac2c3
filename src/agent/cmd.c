/* Command start shared by exec and spawn (see cmd.h). */
#define _GNU_SOURCE
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

static const char *const base_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.tfc/bin", "HOME=/root"};

enum { STAGE_SETUP, STAGE_CHDIR, STAGE_EXEC };

static const char *const signal_names[] = {
    [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
    [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
    [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
    [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
    [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",     [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
    [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",
    [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
    [SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",       [SIGSYS] = "SIGSYS",
};

const char *signal_name(int sig, char *tmp, size_t size)
{
    if (sig > 0 && (size_t)sig < sizeof(signal_names) / sizeof(signal_names[0]) && signal_names[sig])
        return signal_names[sig];
    snprintf(tmp, size, "SIG%d", sig);
    return tmp;
}

int signal_number(const char *name)
{
    for (size_t i = 1; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (signal_names[i] && strcmp(signal_names[i], name) == 0)
            return (int)i;
    return 0;
}

void cmd_free(cmd_spec *c)
{
    for (size_t i = 0; i < c->owned_count; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->envp);
    free(c->argv);
    memset(c, 0, sizeof(*c));
}

static int parse_env(const json_value *req, cmd_spec *c, const char *term, op_error *err)
{
    const size_t nbase = sizeof(base_env) / sizeof(base_env[0]) + 1;
    const json_value *env = json_get(req, "env");
    if (env && env->type != JSON_NULL && env->type != JSON_OBJECT)
        return op_fail(err, "BAD_REQUEST", "'env' must be an object of strings");
    size_t nenv = env && env->type == JSON_OBJECT ? env->len : 0;
    /* One more for the TERM entry. */
    c->owned = xmalloc((nenv + 1) * sizeof(char *));
    for (const json_value *e = nenv ? env->child : NULL; e; e = e->next) {
        if (e->key_len == 0 || strlen(e->key) != e->key_len || strchr(e->key, '='))
            return op_fail(err, "BAD_REQUEST", "'env' names must be non-empty, without '=' or NUL");
        if (e->type != JSON_STRING || strlen(e->str) != e->len)
            return op_fail(err, "BAD_REQUEST", "'env.%.64s' must be a string without NUL characters", e->key);
        char *kv = xmalloc(e->key_len + e->len + 2);
        sprintf(kv, "%s=%s", e->key, e->str);
        c->owned[c->owned_count++] = kv;
    }
    size_t nrequest = c->owned_count;
    char *term_kv = xmalloc(strlen(term) + 6);
    sprintf(term_kv, "TERM=%s", term);
    c->owned[c->owned_count++] = term_kv;
    /* The base environment, minus what the request overrides, then the request's variables. */
    c->envp = xmalloc((nbase + nenv + 1) * sizeof(char *));
    size_t n = 0;
    for (size_t b = 0; b < nbase; b++) {
        const char *entry = b < nbase - 1 ? base_env[b] : term_kv;
        size_t name_len = (size_t)(strchr(entry, '=') - entry) + 1;
        int overridden = 0;
        for (size_t k = 0; k < nrequest; k++)
            overridden |= strncmp(c->owned[k], entry, name_len) == 0;
        if (!overridden)
            c->envp[n++] = (char *)entry;
    }
    for (size_t k = 0; k < nrequest; k++)
        c->envp[n++] = c->owned[k];
    c->envp[n] = NULL;
    return 0;
}

int cmd_parse(const json_value *req, cmd_spec *c, const char *term, op_error *err)
{
    memset(c, 0, sizeof(*c));
    const json_value *argv = json_get(req, "argv");
    if (!argv || argv->type != JSON_ARRAY || argv->len == 0)
        return op_fail(err, "BAD_REQUEST", "'argv' must be a non-empty array of strings");
    c->argv = xmalloc((argv->len + 1) * sizeof(char *));
    size_t i = 0;
    for (const json_value *a = argv->child; a; a = a->next) {
        if (a->type != JSON_STRING || strlen(a->str) != a->len)
            return op_fail(err, "BAD_REQUEST", "'argv' must contain only strings without NUL characters");
        c->argv[i++] = a->str;
    }
    c->argv[i] = NULL;
    if (c->argv[0][0] == '\0')
        return op_fail(err, "BAD_REQUEST", "'argv[0]' must not be empty");
    if (parse_env(req, c, term, err) < 0 || param_string(req, "cwd", 0, &c->cwd, err) < 0)
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
static void run_child(const cmd_spec *c, int in_fd, int out_fd, int err_fd, int ctty, int report_fd)
{
    /* Ignored signals and the signal mask survive exec: give the command a clean slate. */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        report_and_exit(report_fd, STAGE_SETUP);
    if (ctty >= 0) {
        /* As the new session leader, adopt the pty slave as the controlling terminal. */
        if (ioctl(ctty, TIOCSCTTY, 0) < 0)
            report_and_exit(report_fd, STAGE_SETUP);
        in_fd = out_fd = err_fd = ctty;
    }
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        report_and_exit(report_fd, STAGE_SETUP);
    mark_fds_cloexec();
    if (c->cwd && chdir(c->cwd) < 0)
        report_and_exit(report_fd, STAGE_CHDIR);
    /* execvp searches the PATH of environ, so the request's PATH must be there. */
    environ = c->envp;
    execvp(c->argv[0], c->argv);
    report_and_exit(report_fd, STAGE_EXEC);
}

static int child_failure(const cmd_spec *c, int stage, int e, op_error *err)
{
    if (stage == STAGE_EXEC && e == ENOENT)
        return op_fail(err, "EXEC_NOT_FOUND", "command not found in guest: %.512s", c->argv[0]);
    if (stage == STAGE_EXEC)
        return op_fail(err, "EXEC_FAILED", "cannot execute %.512s: %s", c->argv[0], strerror(e));
    if (stage == STAGE_CHDIR)
        return op_fail(err, "EXEC_FAILED", "cannot change directory to %.512s: %s", c->cwd, strerror(e));
    return op_fail(err, "EXEC_FAILED", "cannot set up the child process: %s", strerror(e));
}

pid_t cmd_start(const cmd_spec *c, int in_fd, int out_fd, int err_fd, int ctty, op_error *err)
{
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0)
        return op_fail(err, "EXEC_FAILED", "cannot create pipes: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0)
        run_child(c, in_fd, out_fd, err_fd, ctty, rep[1]);
    int fork_errno = errno;
    close(rep[1]);
    if (pid < 0) {
        close(rep[0]);
        return op_fail(err, "EXEC_FAILED", "cannot start %.512s: %s", c->argv[0], strerror(fork_errno));
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
    close(rep[0]);
    if (got == sizeof(msg)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return child_failure(c, msg[0], msg[1], err);
    }
    return pid;
}
