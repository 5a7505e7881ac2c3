/*
 * Starting a command for exec and spawn: argv/env/cwd parsing with the base
 * environment, fork + exec with exec failures reported back to the agent
 * (so a missing argv[0] is a request error, not an exit code), and signal
 * names. The caller owns the pipes or pty it passes and reaps the child.
 */
#ifndef TFC_CMD_H
#define TFC_CMD_H

#include <stddef.h>
#include <sys/types.h>

#include "agent.h"

typedef struct {
    char **argv;       /* points into the request document */
    char **envp;
    char **owned;      /* the "K=V" strings allocated for envp */
    size_t owned_count;
    const char *cwd;   /* points into the request document; NULL: the agent's */
} cmd_spec;

/*
 * Reads argv, env and cwd from req. `term` is the TERM of the base
 * environment ("dumb" for pipes, "xterm-256color" for a pty). On failure
 * err is filled (BAD_REQUEST); call cmd_free in both cases.
 */
int cmd_parse(const json_value *req, cmd_spec *c, const char *term, op_error *err);
void cmd_free(cmd_spec *c);

/*
 * Forks and executes c in a new session. Without ctty, in/out/err become
 * fds 0, 1, 2; with ctty (a pty slave), that slave becomes the controlling
 * terminal and all three. Waits only until exec succeeded or failed.
 * Returns the pid, or -1 with err filled: EXEC_NOT_FOUND when argv[0] does
 * not exist, EXEC_FAILED otherwise (the failed child is reaped here).
 */
pid_t cmd_start(const cmd_spec *c, int in_fd, int out_fd, int err_fd, int ctty, op_error *err);

/* "SIGTERM" for SIGTERM; "SIG<n>" (in tmp) for a signal without a name. */
const char *signal_name(int sig, char *tmp, size_t size);

/* The signal number of a name signal_name returns, or 0. */
int signal_number(const char *name);

#endif
