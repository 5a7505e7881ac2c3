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
