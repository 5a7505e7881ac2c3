/*
 * Byte transports between the host and the agent. A transport delivers one
 * "connection" at a time: a period during which one host peer is attached.
 *
 * - serial: a virtio-serial port. The fd stays open for the agent's whole
 *   life; the host attaching and detaching (including a snapshot clone
 *   reattaching through a new host socket) only shows as EOF, and SIGIO when
 *   a host attaches again.
 * - vsock / unix: a listening socket; each accepted socket is a connection,
 *   served until EOF, then the next one is accepted.
 */
#ifndef TFC_TRANSPORT_H
#define TFC_TRANSPORT_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum { TRANSPORT_SERIAL, TRANSPORT_VSOCK, TRANSPORT_UNIX } transport_kind;

#define SERIAL_PORT_NAME "org.tfc.agent"
#define SERIAL_FALLBACK_DEVICE "/dev/vport0p1"

typedef struct {
    transport_kind kind;
    const char *path;   /* serial device (NULL: discover by port name) or unix socket path */
    unsigned port;      /* vsock port */
    int listen_fd;
    int fd;             /* serial device, or the accepted connection; -1 when none */
    int lost;           /* serial: the host detached; wait before reading again */
    sigset_t wait_mask; /* serial: signal mask with SIGIO unblocked, for ppoll while no host is attached */
} transport;

const char *transport_name(transport_kind kind);

/*
 * Opens the device or listening socket, retrying transient failures for up
 * to 30 s. Returns 0, or -1 after printing why (the caller exits and init
 * restarts the agent).
 */
int transport_open(transport *t);

/*
 * The fd to poll (for *events) until a host is attached or while one is:
 * the connection, or the listening socket. -1 for a serial port without a
 * host: then sleep in ppoll with wait_mask (SIGIO ends it) for at most
 * SERIAL_RECONNECT_POLL_MS, and call transport_try_accept.
 */
/* Upper bound on a missed SIGIO: how long a reattached host may wait. */
#define SERIAL_RECONNECT_POLL_MS 50
int transport_wait_fd(const transport *t, short *events);

/* Attaches the next host if one is there (never blocks). Returns 1 when a host is attached. */
int transport_try_accept(transport *t);

/* Marks the current connection as finished (EOF, error, or host gone). */
void transport_disconnect(transport *t);

/* Reads up to n bytes without blocking. Returns > 0, 0 when the host went away, -1 when nothing is there yet. */
ssize_t transport_try_read(transport *t, void *buf, size_t n);

/* Writes all n bytes. Returns 0, or -1 when the host went away. */
int transport_write_all(transport *t, const void *buf, size_t n);

/* Releases everything (unix: also unlinks the socket path). */
void transport_close(transport *t);

#endif
