/*
 * Background processes (spawn and the proc_* ops): a bounded table of
 * children whose stdout/stderr (or pty master) the main loop polls and turns
 * into output events, whose stdin is fed from a bounded per-process queue,
 * and whose exit becomes an exit event once their output is drained.
 *
 * Nothing here blocks: the main loop asks which fds to poll, hands back the
 * poll results, and calls proc_step to reap children and send exit events.
 * Output is only read while a host is attached (otherwise the pipes fill
 * and the processes block), and exit events wait for the next host.
 */
#ifndef TFC_PROC_H
#define TFC_PROC_H

#include <poll.h>

#include "agent.h"

/* Processes whose exit was not yet reported to a host. */
#define PROC_MAX_LIVE 32
/* Exited processes kept for proc_list after their exit event. */
#define PROC_MAX_DONE 32
/* Raw bytes per output event and per read. */
#define PROC_OUTPUT_CHUNK 65536
/* stdin bytes queued per process. */
#define PROC_STDIN_MAX_BYTES (1u * MIB)

/* Appends the fds to watch to p (at most PROC_POLL_MAX entries); returns how many. */
#define PROC_POLL_MAX (PROC_MAX_LIVE * 3)
int proc_poll_fill(const agent_ctx *ctx, struct pollfd *p);

/* Handles the revents of the entries proc_poll_fill added (same array, same order). */
void proc_poll_handle(agent_ctx *ctx, const struct pollfd *p);

/*
 * Reaps every exited child (of spawn or not), then sends the exit events
 * that are due. Call once per loop iteration.
 */
void proc_step(agent_ctx *ctx);

/* The poll timeout proc_step needs (a drain deadline), or -1. */
int proc_timeout_ms(void);

/* Host gone: processes that were draining wait for the next host. */
void proc_host_lost(void);

int op_spawn(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_proc_write(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_proc_signal(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_proc_resize(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);
int op_proc_list(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err);

#endif
