/*
 * The process table shared by proc.c (the loop's side: polling, events,
 * reaping) and proc_ops.c (the spawn and proc_* ops). Private to those two.
 */
#ifndef TFC_PROC_TABLE_H
#define TFC_PROC_TABLE_H

#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

/* After the exit, output that keeps coming this often is still awaited... */
#define DRAIN_QUIET_MS 50
/* ...but never for longer than this (a grandchild may hold the pipe forever). */
#define DRAIN_MAX_MS 1000
/* proc_list keeps this much of each argv (the rest is cut): bounds its reply. */
#define LIST_ARGV_BYTES 1024
#define LIST_ARGV_MAX 64
#define MAX_PTY_SIZE 1000

typedef enum { P_FREE, P_RUNNING, P_EXITED, P_DRAINING, P_DONE } proc_state;

enum { S_IN, S_OUT, S_ERR, S_COUNT };

typedef struct {
    proc_state state;
    pid_t pid;
    int pty;
    int master;          /* pty master (owns the fd); -1 without pty */
    int fd[S_COUNT];     /* stdin write end, stdout and stderr read ends; -1 when closed (aliases of master for a pty) */
    int pfd[S_COUNT];    /* index into the poll array, or -1 */
    buf_t in_q;          /* stdin bytes not yet written, from in_off */
    size_t in_off;
    int in_eof;          /* close stdin once in_q is written (pipes) */
    int in_closed;       /* proc_write refuses more */
    char **argv;         /* cut to LIST_ARGV_BYTES, for proc_list */
    size_t argc;
    uint64_t started_uptime_ms, start_ms, exit_ms, drain_start_ms, last_data_ms, done_seq;
    int status;
} proc;

#define PROC_SLOTS (PROC_MAX_LIVE + PROC_MAX_DONE)
extern proc proc_table[PROC_SLOTS];

/* Running, or exited with the exit event not sent yet. */
int proc_live(const proc *p);
/* Closes one of the process's streams (a pty alias only forgets the fd). */
void proc_close_stream(proc *p, int s);
/* Releases everything a slot holds; it becomes P_FREE. */
void proc_free_slot(proc *p);
/* Writes what the pipe or pty takes now; closes stdin after an eof request once all is written. */
void proc_flush_stdin(proc *p);
/* Reaps every exited child (exec commands' too) and records the status. */
void proc_reap(void);

#endif
