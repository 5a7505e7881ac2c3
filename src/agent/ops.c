/* The small operations: identity, liveness, files, clock, entropy, shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_FILE_MODE 0644
#define DEFAULT_READ_MAX_BYTES (8u * MIB)
/* 16 MiB in base64 still fits the 32 MiB reply limit. */
#define MAX_READ_MAX_BYTES (16u * MIB)
/* off_t is signed 64-bit. */
#define MAX_READ_OFFSET ((uint64_t)INT64_MAX)
/* 9999-12-31T23:59:59.999Z: keeps the time_t conversion far from overflow. */
#define MAX_UNIX_MS 253402300799999ull

int op_hello(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)req;
    (void)err;
    struct utsname u;
    if (uname(&u) < 0)
        strcpy(u.release, "unknown");
    jw_key(res, "agent_version");
    jw_cstring(res, AGENT_VERSION);
    jw_key(res, "protocol");
    jw_uint(res, PROTOCOL_VERSION);
    jw_key(res, "transport");
    jw_cstring(res, transport_name(ctx->transport->kind));
    jw_key(res, "pid");
    jw_uint(res, (uint64_t)getpid());
    jw_key(res, "kernel_release");
    jw_cstring(res, u.release);
    jw_key(res, "ready_uptime_ms");
    jw_uint(res, ctx->ready_uptime_ms);
    jw_key(res, "uptime_ms");
    jw_uint(res, uptime_ms());
    /* Lets a host tell this agent from one without spawn and events (same protocol version). */
    jw_key(res, "features");
    jw_array_begin(res);
    jw_cstring(res, "processes");
    jw_cstring(res, "pty");
    jw_array_end(res);
    return 0;
}

int op_ping(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    jw_key(res, "uptime_ms");
    jw_uint(res, uptime_ms());
    return 0;
}

/* mkdir -p of the directory part of path. */
static int make_parents(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *p = '/';
    }
    int saved = errno;
    free(copy);
    errno = saved;
    return rc;
}

static int write_all_fd(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int op_write_file(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    const char *path;
    uint64_t mode;
    int append, mkdirs;
    unsigned char *data;
    size_t len;
    if (param_string(req, "path", 1, &path, err) < 0 || param_uint(req, "mode", 0, DEFAULT_FILE_MODE, 07777, &mode, err) < 0 ||
        param_bool(req, "append", 0, &append, err) < 0 || param_bool(req, "mkdirs", 0, &mkdirs, err) < 0)
        return -1;
    if (!*path)
        return op_fail(err, "BAD_REQUEST", "'path' must not be empty");
    /* An explicit mode is applied even to an existing file; the default only on creation. */
    const json_value *mv = json_get(req, "mode");
    int mode_given = mv && mv->type != JSON_NULL;
    if (param_base64(req, "data_b64", 1, &data, &len, err) < 0)
        return -1;

    int rc = -1;
    if (mkdirs && make_parents(path) < 0) {
        op_fail(err, "FILE_ERROR", "cannot create parent directories of %s: %s", path, strerror(errno));
        goto out;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | (append ? O_APPEND : O_TRUNC), (mode_t)mode);
    if (fd < 0) {
        op_fail(err, "FILE_ERROR", "cannot open %s for writing: %s", path, strerror(errno));
        goto out;
    }
    if (write_all_fd(fd, data, len) < 0 || (mode_given && fchmod(fd, (mode_t)mode) < 0)) {
        op_fail(err, "FILE_ERROR", "cannot write %s: %s", path, strerror(errno));
        close(fd);
        goto out;
    }
    /* close can report a deferred write error (e.g. ENOSPC on some filesystems). */
    if (close(fd) < 0 && errno != EINTR) {
        op_fail(err, "FILE_ERROR", "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    jw_key(res, "bytes_written");
    jw_uint(res, len);
    rc = 0;
out:
    free(data);
    return rc;
}

int op_read_file(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    const char *path;
    uint64_t max, offset;
    if (param_string(req, "path", 1, &path, err) < 0 ||
        param_uint(req, "max_bytes", 0, DEFAULT_READ_MAX_BYTES, MAX_READ_MAX_BYTES, &max, err) < 0 ||
        param_uint(req, "offset", 0, 0, MAX_READ_OFFSET, &offset, err) < 0)
        return -1;
    /* O_NONBLOCK: a FIFO or tty without data must not hang the agent. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return op_fail(err, "FILE_NOT_FOUND", "no such file in guest: %s", path);
        return op_fail(err, "FILE_ERROR", "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    int e = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return op_fail(err, "FILE_ERROR", "cannot read %s: %s", path, strerror(e));
    }
    /* Chunked reads (the host's readFileChunks) continue where the last stopped. */
    if (offset > 0 && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        e = errno;
        close(fd);
        return op_fail(err, "FILE_ERROR", "cannot read %s from offset %llu: %s", path, (unsigned long long)offset,
                       strerror(e));
    }
    /*
     * Reading max + 1 bytes tells truncation apart from an exact fit. Regular
     * files are sized up front; /proc files and devices report 0, so those
     * grow as they are read.
     */
    size_t cap;
    uint64_t left = S_ISREG(st.st_mode) && (uint64_t)st.st_size > offset ? (uint64_t)st.st_size - offset : 0;
    if (S_ISREG(st.st_mode))
        cap = left < max ? (size_t)left + 1 : (size_t)max + 1;
    else
        cap = max + 1 < 65536 ? (size_t)max + 1 : 65536;
    unsigned char *data = xmalloc(cap);
    size_t len = 0;
    int truncated = 0;
    for (;;) {
        if (len == cap) {
            if (len > max)
                break;
            cap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
            data = xrealloc(data, cap);
        }
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break; /* nothing more without blocking */
        if (r < 0) {
            e = errno;
            close(fd);
            free(data);
            return op_fail(err, "FILE_ERROR", "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len > max) {
        truncated = 1;
        len = (size_t)max;
    }
    /* /proc files are "regular" with st_size 0: never report less than was read. */
    uint64_t size = S_ISREG(st.st_mode) && (uint64_t)st.st_size > offset + len ? (uint64_t)st.st_size : offset + len;
    jw_key(res, "data_b64");
    jw_base64(res, data, len);
    jw_key(res, "size");
    jw_uint(res, size);
    jw_key(res, "truncated");
    jw_bool(res, truncated);
    jw_key(res, "offset");
    jw_uint(res, offset);
    free(data);
    return 0;
}

/* In --unix mode the agent runs on the host (tests, the fake Firecracker's
 * "guest"): machine-wide changes are validated but not applied there, so a
 * test can never move the host's clock or reseed its RNG. */
static int host_mode(const agent_ctx *ctx)
{
    return ctx->transport->kind == TRANSPORT_UNIX;
}

int op_set_clock(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    uint64_t ms;
    if (param_uint(req, "unix_ms", 1, 0, MAX_UNIX_MS, &ms, err) < 0)
        return -1;
    struct timespec prev, now = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    clock_gettime(CLOCK_REALTIME, &prev);
    if (!host_mode(ctx) && clock_settime(CLOCK_REALTIME, &now) < 0)
        return op_fail(err, "SYSTEM_ERROR", "cannot set the guest clock: %s", strerror(errno));
    jw_key(res, "previous_unix_ms");
    jw_int(res, (int64_t)prev.tv_sec * 1000 + prev.tv_nsec / 1000000);
    jw_key(res, "applied");
    jw_bool(res, !host_mode(ctx));
    return 0;
}

int op_add_entropy(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    unsigned char *data;
    size_t len;
    if (param_base64(req, "data_b64", 1, &data, &len, err) < 0)
        return -1;
    int rc = 0;
    if (len > 0 && !host_mode(ctx)) {
        /* The request cap (16 MiB) keeps 8 * len within an int. */
        struct rand_pool_info *info = xmalloc(sizeof(*info) + len);
        info->entropy_count = (int)(len * 8);
        info->buf_size = (int)len;
        memcpy(info->buf, data, len);
        int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ioctl(fd, RNDADDENTROPY, info) < 0)
            rc = op_fail(err, "SYSTEM_ERROR", "cannot add entropy: %s", strerror(errno));
        /* Snapshot clones wake with the template's CRNG state; credited
         * entropy alone is only folded in at the next periodic reseed, so
         * two clones would read the same /dev/urandom bytes until then.
         * Force the reseed now (Linux >= 4.17, needs CAP_SYS_ADMIN). */
        else if (ioctl(fd, RNDRESEEDCRNG) < 0)
            rc = op_fail(err, "SYSTEM_ERROR", "entropy added but the CRNG reseed failed: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        free(info);
    }
    free(data);
    if (rc < 0)
        return -1;
    jw_key(res, "bytes_added");
    jw_uint(res, len);
    jw_key(res, "applied");
    jw_bool(res, !host_mode(ctx));
    return 0;
}

int op_shutdown(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)res;
    const char *mode;
    if (param_string(req, "mode", 0, &mode, err) < 0)
        return -1;
    if (!mode || strcmp(mode, "reboot") == 0)
        ctx->shutdown_cmd = RB_AUTOBOOT;
    else if (strcmp(mode, "poweroff") == 0)
        ctx->shutdown_cmd = RB_POWER_OFF;
    else
        return op_fail(err, "BAD_REQUEST", "'mode' must be \"reboot\" or \"poweroff\"");
    /* The main loop acts on this only after the reply has been sent. */
    ctx->shutdown_pending = 1;
    return 0;
}
