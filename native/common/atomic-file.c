#include "crib-atomic-file.h"

#include "crib-io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directory and last component of path; a path without a slash lives in ".". */
static int split(const char *path, char *dir, size_t dir_n, const char **base, crib_err *err) {
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
    return crib_fail(err, EINVAL, "atomic write of `%s`: the path names no file", path);
  size_t n = slash ? (size_t)(slash - path) : 1;
  if (slash == path) n = 1; /* "/name": the root directory */
  if (n >= dir_n) return crib_fail(err, ENAMETOOLONG, "atomic write of `%s`", path);
  memcpy(dir, slash ? path : ".", n);
  dir[n] = '\0';
  return 0;
}

/* ".tmp-<base>-<12 hex>": random, so concurrent writers never share a temp file (O_EXCL would
 * refuse the second one) and a leftover never blocks a later write. */
static int temp_name(const char *base, char *out, size_t n, crib_err *err) {
  unsigned char r[6];
  ssize_t got;
  do got = getrandom(r, sizeof r, 0);
  while (got < 0 && errno == EINTR);
  if (got < 0) return crib_fail(err, errno, "getrandom (a temp name for `%s`)", base);
  if (got != (ssize_t)sizeof r) return crib_fail(err, EIO, "getrandom: %zd of %zu bytes", got, sizeof r);
  int len = snprintf(out, n, "%s%s-%02x%02x%02x%02x%02x%02x", CRIB_ATOMIC_TEMP_PREFIX, base, r[0],
                     r[1], r[2], r[3], r[4], r[5]);
  if (len < 0 || (size_t)len >= n || len > NAME_MAX)
    return crib_fail(err, ENAMETOOLONG, "temp name for `%s` (the name is too long)", base);
  return 0;
}

/* After a failure: remove the temp file; if even that fails, say so (a sweep must find it). */
static void remove_temp(int dirfd, const char *tmp, crib_err *err) {
  if (unlinkat(dirfd, tmp, 0) == 0 || errno == ENOENT) return;
  size_t used = strnlen(err->msg, sizeof err->msg);
  snprintf(err->msg + used, sizeof err->msg - used, " (and removing the temp file failed: unlink: %s)",
           strerror(errno));
}

/* Create and fill the temp file, and sync it when `durable`; on failure it is removed again. */
static int write_temp(int dirfd, const char *dir, const char *base, const void *data, size_t len,
                      mode_t mode, bool durable, char *tmp, size_t tmp_n, crib_err *err) {
  int fd = -1;
  for (int attempt = 0; fd < 0; attempt++) {
    if (temp_name(base, tmp, tmp_n, err) < 0) return -1;
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    /* EEXIST: a random name taken (a leftover, or a name planted there): draw another. */
    if (fd < 0 && (errno != EEXIST || attempt == 4))
      return crib_fail(err, errno, "open `%s/%s`", dir, tmp);
  }
  int rc = 0;
  /* open() applied the umask; the caller asked for this exact mode. */
  if (fchmod(fd, mode) < 0) rc = crib_fail(err, errno, "fchmod `%s/%s` to %04o", dir, tmp, (unsigned)mode);
  else if (crib_write_all(fd, data, len) < 0) rc = crib_fail(err, errno, "write `%s/%s`", dir, tmp);
  else if (durable && fsync(fd) < 0) rc = crib_fail(err, errno, "fsync `%s/%s`", dir, tmp);
  /* close reports late write-back errors on some filesystems (NFS): they count too. */
  if (close(fd) < 0 && rc == 0) rc = crib_fail(err, errno, "close `%s/%s`", dir, tmp);
  if (rc < 0) remove_temp(dirfd, tmp, err);
  return rc;
}

/* The temp file `tmp` in dirfd renamed over `base` (path names both in errors); on failure the
 * temp file is removed, so the target keeps its old content. */
static int rename_temp(int dirfd, const char *dir, const char *tmp, const char *base, const char *path, crib_err *err) {
  if (renameat(dirfd, tmp, dirfd, base) == 0) return 0;
  int rc = crib_fail(err, errno, "rename `%s/%s` to `%s`", dir, tmp, path);
  remove_temp(dirfd, tmp, err);
  return rc;
}

/* The directory `dir` (open at dirfd) synced: the renames and removals made in it are durable. */
static int sync_dirfd(int dirfd, const char *dir, crib_err *err) {
  return fsync(dirfd) < 0 ? crib_fail(err, errno, "fsync directory `%s`", dir) : 0;
}

/* Closes the directory's descriptor, recording a failure only when nothing failed before. */
static int close_dir(int dirfd, const char *dir, int rc, crib_err *err) {
  if (close(dirfd) < 0 && rc == 0) return crib_fail(err, errno, "close directory `%s`", dir);
  return rc;
}

/* The directory of `path`, opened: a descriptor (its name in dir, the last component at *base), or
 * -1 with err. */
static int open_parent(const char *path, char *dir, size_t dir_n, const char **base, crib_err *err) {
  if (split(path, dir, dir_n, base, err) < 0) return -1;
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return crib_fail(err, errno, "open directory `%s`", dir);
  return dirfd;
}

static int replace_file(const char *path, const void *data, size_t len, mode_t mode, bool durable,
                        crib_err *err) {
  char dir[PATH_MAX];
  const char *base;
  int dirfd = open_parent(path, dir, sizeof dir, &base, err);
  if (dirfd < 0) return -1;
  char tmp[NAME_MAX + 1];
  int rc = write_temp(dirfd, dir, base, data, len, mode, durable, tmp, sizeof tmp, err);
  if (rc == 0) rc = rename_temp(dirfd, dir, tmp, base, path, err);
  /* The rename is durable only once the directory is. */
  if (rc == 0 && durable) rc = sync_dirfd(dirfd, dir, err);
  return close_dir(dirfd, dir, rc, err);
}

int crib_atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, crib_err *err) {
  return replace_file(path, data, len, mode, true, err);
}

int crib_atomic_replace_file(const char *path, const void *data, size_t len, mode_t mode, crib_err *err) {
  return replace_file(path, data, len, mode, false, err);
}

int crib_atomic_prepare(const char *path, const void *data, size_t len, mode_t mode, char *tmp, size_t tmp_n,
                        crib_err *err) {
  char dir[PATH_MAX];
  const char *base;
  int dirfd = open_parent(path, dir, sizeof dir, &base, err);
  if (dirfd < 0) return -1;
  int rc = write_temp(dirfd, dir, base, data, len, mode, true, tmp, tmp_n, err);
  return close_dir(dirfd, dir, rc, err);
}

int crib_atomic_commit(const char *path, const char *tmp, bool sync_dir, crib_err *err) {
  if (strchr(tmp, '/') != NULL || strncmp(tmp, CRIB_ATOMIC_TEMP_PREFIX, strlen(CRIB_ATOMIC_TEMP_PREFIX)) != 0)
    return crib_fail(err, EINVAL, "commit of `%s`: `%s` is not a temp file's name", path, tmp);
  char dir[PATH_MAX];
  const char *base;
  int dirfd = open_parent(path, dir, sizeof dir, &base, err);
  if (dirfd < 0) return -1;
  int rc = rename_temp(dirfd, dir, tmp, base, path, err);
  if (rc < 0) return close_dir(dirfd, dir, rc, err);
  /* Past the rename, a failure leaves the new content in place, maybe not durable: told apart. */
  rc = sync_dir ? sync_dirfd(dirfd, dir, err) : 0;
  return close_dir(dirfd, dir, rc, err) < 0 ? -2 : 0;
}

int crib_sync_dir(const char *dir, crib_err *err) {
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return crib_fail(err, errno, "open directory `%s`", dir);
  return close_dir(dirfd, dir, sync_dirfd(dirfd, dir, err), err);
}
