/*
 * exec as a task of the main loop (see exec.c): op_exec starts the command
 * and returns EXEC_DEFERRED; the loop polls the task's pipes, and exec_step
 * sends the reply once the command has exited and its output is drained.
 */
#ifndef TFC_EXEC_H
#define TFC_EXEC_H

#include <poll.h>
#include <sys/types.h>

#include "agent.h"

/* Commands of exec running at once (each may keep 2 x 8 MiB of output). */
#define EXEC_MAX_RUNNING 16
#define EXEC_POLL_MAX (EXEC_MAX_RUNNING * 3)

int exec_poll_fill(struct pollfd *p);
void exec_poll_handle(const struct pollfd *p);
/* Records the exit of pid if it is an exec command's; returns 1 then. */
int exec_on_exit(pid_t pid, int status);
/* Kills commands past their timeout; replies for those that ended. */
void exec_step(agent_ctx *ctx);
/* The poll timeout exec_step needs, or -1. */
int exec_timeout_ms(void);

#endif
