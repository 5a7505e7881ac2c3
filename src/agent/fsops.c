/*
 * Filesystem operations beyond one file's bytes: list_dir, stat, mkdir and
 * remove (docs/agent-protocol.md). Every reply is bounded: list_dir stops at
 * max_entries and says so with `truncated`. Nothing here follows a symlink
 * it did not have to: stat is lstat, and a recursive remove deletes links,
 * never what they point to.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_LIST_MAX_ENTRIES 10000u
#define MAX_LIST_MAX_ENTRIES 10000u
#define DEFAULT_DIR_MODE 0755
/* Directory descriptors nftw may hold open during a recursive remove. */
#define REMOVE_OPEN_FDS 32

static const char *type_name(mode_t m)
{
    if (S_ISREG(m))
        return "file";
    if (S_ISDIR(m))
        return "dir";
    if (S_ISLNK(m))
        return "symlink";
    return "other";
}

static int64_t mtime_ms(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* ENOENT (and ENOTDIR on a path component) is FILE_NOT_FOUND; everything else FILE_ERROR. */
static int fail_errno(op_error *err, int e, const char *what, const char *path)
{
    if (e == ENOENT)
        return op_fail(err, "FILE_NOT_FOUND", "no such file or directory in guest: %s", path);
    return op_fail(err, "FILE_ERROR", "cannot %s %s: %s", what, path, strerror(e));
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/* A name that is not UTF-8 goes out lossy in `name` and exact in `name_b64`. */
static void write_name(json_writer *w, const char *key, const char *name)
{
    size_t n = strlen(name);
    jw_key(w, key);
    jw_string(w, name, n);
    if (!valid_utf8(name, n)) {
        char b64key[64];
        snprintf(b64key, sizeof(b64key), "%s_b64", key);
        jw_key(w, b64key);
        jw_base64(w, name, n);
    }
}

static const char *required_path(const json_value *req, op_error *err)
{
    const char *path;
    if (param_string(req, "path", 1, &path, err) < 0)
        return NULL;
    if (!*path) {
        op_fail(err, "BAD_REQUEST", "'path' must not be empty");
        return NULL;
    }
    return path;
}

int op_list_dir(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    uint64_t max;
    const char *path = required_path(req, err);
    if (!path || param_uint(req, "max_entries", 0, DEFAULT_LIST_MAX_ENTRIES, MAX_LIST_MAX_ENTRIES, &max, err) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(err, errno, "list", path);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return fail_errno(err, e, "list", path);
    }
    jw_key(res, "entries");
    jw_array_begin(res);
    uint64_t count = 0;
    int truncated = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                int e = errno;
                closedir(d);
                return fail_errno(err, e, "list", path);
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (count == max) {
            truncated = 1;
            break;
        }
        struct stat st;
        /* An entry removed since readdir is skipped, not an error. */
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        jw_object_begin(res);
        write_name(res, "name", de->d_name);
        jw_key(res, "type");
        jw_cstring(res, type_name(st.st_mode));
        jw_key(res, "size");
        jw_uint(res, (uint64_t)st.st_size);
        jw_key(res, "mode");
        jw_uint(res, st.st_mode & 07777);
        jw_key(res, "mtime_ms");
        jw_int(res, mtime_ms(&st));
        jw_object_end(res);
        count++;
    }
    closedir(d);
    jw_array_end(res);
    jw_key(res, "truncated");
    jw_bool(res, truncated);
    return 0;
}

int op_stat(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    const char *path = required_path(req, err);
    if (!path)
        return -1;
    struct stat st;
    if (lstat(path, &st) < 0)
        return fail_errno(err, errno, "stat", path);
    jw_key(res, "type");
    jw_cstring(res, type_name(st.st_mode));
    jw_key(res, "size");
    jw_uint(res, (uint64_t)st.st_size);
    jw_key(res, "mode");
    jw_uint(res, st.st_mode & 07777);
    jw_key(res, "uid");
    jw_uint(res, st.st_uid);
    jw_key(res, "gid");
    jw_uint(res, st.st_gid);
    jw_key(res, "mtime_ms");
    jw_int(res, mtime_ms(&st));
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX + 1];
        ssize_t n = readlink(path, target, PATH_MAX);
        if (n < 0)
            return fail_errno(err, errno, "read link", path);
        target[n] = '\0';
        write_name(res, "symlink_target", target);
    } else {
        jw_key(res, "symlink_target");
        jw_null(res);
    }
    return 0;
}

/* mkdir -p: every missing component of path, including path itself. */
static int make_dirs(const char *path, mode_t mode)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(copy, c ? 0755 : mode) < 0) {
            /* An existing component must be a directory (or a link to one). */
            if (errno != EEXIST || stat(copy, &st) < 0 || !S_ISDIR(st.st_mode)) {
                if (errno == EEXIST)
                    errno = ENOTDIR;
                rc = -1;
                break;
            }
        }
        *p = c;
        if (!c)
            break;
    }
    int saved = errno;
    free(copy);
    errno = saved;
    return rc;
}

int op_mkdir(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    uint64_t mode;
    int parents;
    const char *path = required_path(req, err);
    if (!path || param_bool(req, "parents", 0, &parents, err) < 0 ||
        param_uint(req, "mode", 0, DEFAULT_DIR_MODE, 07777, &mode, err) < 0)
        return -1;
    struct stat st;
    int existed = lstat(path, &st) == 0;
    if (existed && !parents)
        return op_fail(err, "FILE_EXISTS", "%s already exists in guest", path);
    if (existed && !S_ISDIR(st.st_mode))
        return op_fail(err, "FILE_EXISTS", "%s already exists in guest and is not a directory", path);
    if (!existed && (parents ? make_dirs(path, (mode_t)mode) : mkdir(path, (mode_t)mode)) < 0)
        return fail_errno(err, errno, "create directory", path);
    /* Like write_file: a mode given explicitly is applied exactly (no umask). */
    const json_value *mv = json_get(req, "mode");
    if (!existed && mv && mv->type != JSON_NULL && chmod(path, (mode_t)mode) < 0)
        return fail_errno(err, errno, "set the mode of", path);
    jw_key(res, "created");
    jw_bool(res, !existed);
    return 0;
}

/* nftw reports through globals: the agent handles one request at a time. */
static uint64_t removed_count;
static int remove_errno;
static char remove_failed_path[PATH_MAX];

static int remove_one(const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftwbuf)
{
    (void)sb;
    (void)ftwbuf;
    /* FTW_DNR: a directory we cannot read; its rmdir below reports why. */
    int rc = typeflag == FTW_DP || typeflag == FTW_DNR ? rmdir(fpath) : unlink(fpath);
    if (rc < 0 && errno != ENOENT) {
        remove_errno = errno;
        snprintf(remove_failed_path, sizeof(remove_failed_path), "%s", fpath);
        return 1;
    }
    if (rc == 0)
        removed_count++;
    return 0;
}

int op_remove(agent_ctx *ctx, const json_value *req, json_writer *res, op_error *err)
{
    (void)ctx;
    int recursive;
    const char *path = required_path(req, err);
    if (!path || param_bool(req, "recursive", 0, &recursive, err) < 0)
        return -1;
    /*
     * "link/" would resolve through a symlink to its target's tree; with the
     * trailing slashes gone, the link itself is what gets removed.
     */
    char clean[PATH_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n >= sizeof(clean))
        return op_fail(err, "FILE_ERROR", "cannot remove %.64s...: path too long", path);
    memcpy(clean, path, n);
    clean[n] = '\0';
    path = clean;
    struct stat st, root;
    if (lstat(path, &st) < 0)
        return fail_errno(err, errno, "remove", path);
    /* Compared by inode, so "//", "/." and "/x/.." are refused as well. */
    if (stat("/", &root) == 0 && st.st_dev == root.st_dev && st.st_ino == root.st_ino)
        return op_fail(err, "BAD_REQUEST", "refusing to remove the root directory (%s)", path);
    removed_count = 0;
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0)
            return fail_errno(err, errno, "remove", path);
        removed_count = 1;
    } else if (!recursive) {
        if (rmdir(path) < 0) {
            if (errno == ENOTEMPTY || errno == EEXIST)
                return op_fail(err, "FILE_ERROR", "cannot remove %s: directory not empty; pass recursive to remove its contents",
                               path);
            return fail_errno(err, errno, "remove", path);
        }
        removed_count = 1;
    } else {
        /* FTW_PHYS: links are removed, never followed; FTW_DEPTH: contents before their directory. */
        remove_errno = 0;
        int rc = nftw(path, remove_one, REMOVE_OPEN_FDS, FTW_PHYS | FTW_DEPTH);
        if (rc != 0) {
            if (remove_errno)
                return op_fail(err, "FILE_ERROR", "cannot remove %s (removed %llu entries before): %s",
                               remove_failed_path, (unsigned long long)removed_count, strerror(remove_errno));
            return fail_errno(err, errno, "remove", path);
        }
    }
    jw_key(res, "removed");
    jw_uint(res, removed_count);
    return 0;
}
