#define _GNU_SOURCE
#include "transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "agent.h"

#define OPEN_RETRY_MS 30000
#define OPEN_RETRY_INTERVAL_MS 10

const char *transport_name(transport_kind kind)
{
    switch (kind) {
    case TRANSPORT_SERIAL: return "serial";
    case TRANSPORT_VSOCK: return "vsock";
    case TRANSPORT_UNIX: return "unix";
    }
    return "unknown";
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Finds /dev/<port> whose virtio-serial port name is SERIAL_PORT_NAME. */
static int find_serial_device(char *out, size_t size)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    if (!d)
        return -1;
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512], name[128];
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, name, sizeof(name) - 1);
        close(fd);
        if (n <= 0)
            continue;
        while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == ' '))
            n--;
        name[n] = '\0';
        if (strcmp(name, SERIAL_PORT_NAME) == 0) {
            snprintf(out, size, "/dev/%s", e->d_name);
            found = 0;
        }
    }
    closedir(d);
    return found;
}

static void on_sigio(int sig)
{
    (void)sig; /* only here so SIGIO interrupts ppoll instead of killing us */
}

static int open_serial(transport *t)
{
    /*
     * SIGIO stays blocked except inside the main loop's ppoll while no host is
     * attached (wait_mask), so it can
     * only ever interrupt that wait, never a read or write in progress.
     */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigio;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGIO, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGIO);
    sigprocmask(SIG_BLOCK, &block, &t->wait_mask);
    sigdelset(&t->wait_mask, SIGIO);

    uint64_t deadline = monotonic_ms() + OPEN_RETRY_MS;
    char found[300];
    for (;;) {
        const char *path = t->path;
        if (!path)
            path = find_serial_device(found, sizeof(found)) == 0 ? found : SERIAL_FALLBACK_DEVICE;
        /* Right after the device node appears, open can fail with ENXIO or ENOENT. */
        int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            /* The virtio_console driver sends SIGIO when a host attaches. */
            if (fcntl(fd, F_SETOWN, getpid()) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) < 0)
                fprintf(stderr, "tfc-agent: cannot enable SIGIO on %s (%s); reconnects are noticed within %d ms\n",
                        path, strerror(errno), SERIAL_RECONNECT_POLL_MS);
            t->fd = fd;
            return 0;
        }
        if (monotonic_ms() >= deadline) {
            fprintf(stderr, "tfc-agent: cannot open %s: %s (gave up after %d s)\n", path, strerror(errno),
                    OPEN_RETRY_MS / 1000);
            return -1;
        }
        sleep_ms(OPEN_RETRY_INTERVAL_MS);
    }
}

static int open_listener(transport *t)
{
    uint64_t deadline = monotonic_ms() + OPEN_RETRY_MS;
    for (;;) {
        int fd;
        int rc;
        if (t->kind == TRANSPORT_UNIX) {
            struct sockaddr_un sa;
            memset(&sa, 0, sizeof(sa));
            sa.sun_family = AF_UNIX;
            if (strlen(t->path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tfc-agent: unix socket path too long: %s\n", t->path);
                return -1;
            }
            strcpy(sa.sun_path, t->path);
            unlink(t->path);
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        } else {
            struct sockaddr_vm sa;
            memset(&sa, 0, sizeof(sa));
            sa.svm_family = AF_VSOCK;
            sa.svm_cid = VMADDR_CID_ANY;
            sa.svm_port = t->port;
            /* Fails with EAFNOSUPPORT until the vsock transport module is loaded. */
            fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        }
        if (rc == 0)
            rc = listen(fd, 8);
        if (rc == 0) {
            t->listen_fd = fd;
            return 0;
        }
        int saved = errno;
        if (fd >= 0)
            close(fd);
        if (monotonic_ms() >= deadline) {
            fprintf(stderr, "tfc-agent: cannot listen on %s: %s (gave up after %d s)\n", transport_name(t->kind),
                    strerror(saved), OPEN_RETRY_MS / 1000);
            return -1;
        }
        sleep_ms(OPEN_RETRY_INTERVAL_MS);
    }
}

int transport_open(transport *t)
{
    t->fd = -1;
    t->listen_fd = -1;
    t->lost = 0;
    return t->kind == TRANSPORT_SERIAL ? open_serial(t) : open_listener(t);
}

int transport_wait_fd(const transport *t, short *events)
{
    *events = POLLIN;
    if (t->fd >= 0 && !(t->kind == TRANSPORT_SERIAL && t->lost))
        return t->fd;
    if (t->kind != TRANSPORT_SERIAL)
        return t->listen_fd;
    /*
     * No host attached: poll() on the port reports POLLHUP at once, so the
     * caller sleeps with SIGIO unblocked (sent when a host attaches) or at
     * most SERIAL_RECONNECT_POLL_MS in case the signal raced with its wait.
     */
    return -1;
}

int transport_try_accept(transport *t)
{
    if (t->kind == TRANSPORT_SERIAL) {
        /* virtio_console reports POLLHUP exactly while no host is attached. */
        struct pollfd p = {t->fd, POLLIN | POLLOUT, 0};
        if (poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP | POLLNVAL)))
            return 0;
        t->lost = 0;
        return 1;
    }
    if (t->fd >= 0)
        return 1;
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
        t->fd = fd;
        return 1;
    }
    if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
        /* Resource exhaustion is temporary; the agent must not exit over it. */
        fprintf(stderr, "tfc-agent: accept: %s\n", strerror(errno));
        sleep_ms(100);
    }
    return 0;
}

void transport_disconnect(transport *t)
{
    if (t->kind == TRANSPORT_SERIAL) {
        t->lost = 1; /* the fd stays open: the next host attaches to the same port */
        return;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

ssize_t transport_try_read(transport *t, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = read(t->fd, buf, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return -1;
        return 0; /* ECONNRESET and friends: the host is gone either way */
    }
}

int transport_write_all(transport *t, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(t->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            /*
             * A detached virtio-serial host shows as POLLHUP without POLLOUT:
             * drop the reply rather than block until some later host
             * attaches and receives an answer to a question it never asked.
             */
            struct pollfd pfd = {t->fd, POLLOUT, 0};
            int r = poll(&pfd, 1, -1);
            if (r > 0 && !(pfd.revents & POLLOUT) && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

void transport_close(transport *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->listen_fd >= 0)
        close(t->listen_fd);
    t->fd = t->listen_fd = -1;
    if (t->kind == TRANSPORT_UNIX)
        unlink(t->path);
}
